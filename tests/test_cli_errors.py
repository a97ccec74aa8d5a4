"""Bad input on the command line: exit 2, one paragraph naming the problem, no traceback, no files."""

from __future__ import annotations

import pytest

from sdbench.store.files import write_run

BAD_SUITES = {
    "malformed TOML": ("[matrix\nmodel = ['tiny']\n", "not valid TOML"),
    "unknown key": ("[matrix]\nresolutoin = [64]\n", 'Did you mean "resolution"?'),
    "resolution not a multiple of 8": ("[matrix]\nresolution = [100]\n", "multiple of 8"),
    "batch below 1": ("[matrix]\nbatch_size = [0]\n", "must be an integer from 1 to 4096"),
    "empty axis": ("[matrix]\nprecision = []\n", "[matrix.precision] is empty"),
    "unknown device": ("[matrix]\ndevice = ['tpu']\n", "unknown device 'tpu'"),
    "missing weights folder": ("[options]\nweights = 'no-such-dir'\n", "weights folder"),
    "unknown allocator": ("[options]\nallocator = 'tunned'\n", 'Did you mean "tuned"?'),
}


def assert_clear_error(code: int, stdout: str, stderr: str, expected: str) -> None:
    assert code == 2, stderr
    assert expected in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert len(stderr.strip().splitlines()) == 1  # one paragraph


@pytest.mark.parametrize("case", BAD_SUITES)
def test_a_bad_suite_exits_2_with_one_paragraph_and_writes_nothing(case, tmp_path, run_cli):
    text, expected = BAD_SUITES[case]
    suite = tmp_path / "bad.toml"
    suite.write_text(text)
    out = tmp_path / "results"
    code, stdout, stderr = run_cli("run", suite, "--out", out)
    assert_clear_error(code, stdout, stderr, expected)
    assert stderr.startswith(f"sdbench run: {suite}: ")
    assert not out.exists()


def test_a_device_not_present_exits_2_and_writes_nothing(tiny_suite, tmp_path, run_cli):
    out = tmp_path / "results"
    code, stdout, stderr = run_cli("run", tiny_suite(matrix={"device": ["cuda:7"]}), "--out", out)
    assert_clear_error(code, stdout, stderr, 'Device "cuda:7" is not present on this machine')
    assert not out.exists()


def test_a_bad_cpu_thread_count_exits_2_and_writes_nothing(tiny_suite, tmp_path, run_cli):
    out = tmp_path / "results"
    code, stdout, stderr = run_cli(
        "run", tiny_suite(), "--out", out, env={"SDBENCH_CPU_THREADS": "two"}
    )
    assert_clear_error(code, stdout, stderr, 'SDBENCH_CPU_THREADS="two" is not a thread count')
    assert not out.exists()


def test_run_without_a_suite_or_resume_is_a_clear_error(run_cli):
    code, stdout, stderr = run_cli("run")
    assert_clear_error(code, stdout, stderr, "Give a suite: a packaged name (sdbench run quick")


def test_resume_of_an_unknown_run_is_a_clear_error(tmp_path, run_cli):
    code, stdout, stderr = run_cli("run", "--resume", "nope", "--out", tmp_path)
    assert_clear_error(code, stdout, stderr, 'No journal for run "nope"')


def _damaged_results(tmp_path):
    good = write_run(
        [{"schema_version": 1, "run_id": "r", "cell_id": "c", "status": "ok"}],
        tmp_path / "good.parquet",
    )
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(good.read_bytes()[:-30])  # the footer is cut off
    return good, damaged


@pytest.mark.parametrize("verb", ["compare", "report"])
def test_a_truncated_results_file_is_named_by_report_and_compare(verb, tmp_path, run_cli):
    good, damaged = _damaged_results(tmp_path)
    args = [good, damaged] if verb == "compare" else [damaged, "--out", tmp_path / "site"]
    code, stdout, stderr = run_cli(verb, *args)
    assert_clear_error(code, stdout, stderr, f'"{damaged}" is not a readable sdbench results file')
    assert not (tmp_path / "site").exists()
