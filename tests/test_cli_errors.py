"""Bad input on the command line: exit 2, one paragraph naming the problem, no traceback, no files.

The cases call the command line in-process (cli.main, as the `sdbench` script does); the last
tests run the real entry points in a subprocess and check they answer exactly the same.
"""

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


def run_bad_suite(run, case: str, folder) -> tuple[tuple[int, str, str], object]:
    """`sdbench run` of the BAD_SUITES case through `run`: its answer, and the suite's path."""
    suite = folder / "bad.toml"
    suite.write_text(BAD_SUITES[case][0])
    return run("run", suite, "--out", folder / "results"), suite


@pytest.mark.parametrize("case", BAD_SUITES)
def test_a_bad_suite_exits_2_with_one_paragraph_and_writes_nothing(
    case, tmp_path, run_cli_in_process
):
    (code, stdout, stderr), suite = run_bad_suite(run_cli_in_process, case, tmp_path)
    assert_clear_error(code, stdout, stderr, BAD_SUITES[case][1])
    assert stderr.startswith(f"sdbench run: {suite}: ")
    assert not (tmp_path / "results").exists()


def test_a_device_not_present_exits_2_and_writes_nothing(tiny_suite, tmp_path, run_cli_in_process):
    out = tmp_path / "results"
    suite = tiny_suite(matrix={"device": ["cuda:7"]})
    code, stdout, stderr = run_cli_in_process("run", suite, "--out", out)
    assert_clear_error(code, stdout, stderr, 'Device "cuda:7" is not present on this machine')
    assert not out.exists()


def test_a_bad_cpu_thread_count_exits_2_and_writes_nothing(
    tiny_suite, tmp_path, run_cli_in_process
):
    out = tmp_path / "results"
    code, stdout, stderr = run_cli_in_process(
        "run", tiny_suite(), "--out", out, env={"SDBENCH_CPU_THREADS": "two"}
    )
    assert_clear_error(code, stdout, stderr, 'SDBENCH_CPU_THREADS="two" is not a thread count')
    assert not out.exists()


def test_run_without_a_suite_or_resume_is_a_clear_error(run_cli_in_process):
    code, stdout, stderr = run_cli_in_process("run")
    assert_clear_error(code, stdout, stderr, "Give a suite: a packaged name (sdbench run quick")


def test_resume_of_an_unknown_run_is_a_clear_error(tmp_path, run_cli_in_process):
    code, stdout, stderr = run_cli_in_process("run", "--resume", "nope", "--out", tmp_path)
    assert_clear_error(code, stdout, stderr, 'No journal for run "nope"')


def _damaged_results(tmp_path):
    good = write_run(
        [{"schema_version": 1, "run_id": "r", "cell_id": "c", "status": "ok"}],
        tmp_path / "good.parquet",
    )
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(good.read_bytes()[:-30])  # the footer is cut off
    return good, damaged


def truncated_results_args(verb: str, tmp_path) -> tuple[list, object]:
    """`verb`'s arguments naming a results file whose footer is cut off, and that file."""
    good, damaged = _damaged_results(tmp_path)
    return (
        [good, damaged] if verb == "compare" else [damaged, "--out", tmp_path / "site"]
    ), damaged


@pytest.mark.parametrize("verb", ["compare", "report"])
def test_a_truncated_results_file_is_named_by_report_and_compare(
    verb, tmp_path, run_cli_in_process
):
    args, damaged = truncated_results_args(verb, tmp_path)
    code, stdout, stderr = run_cli_in_process(verb, *args)
    assert_clear_error(code, stdout, stderr, f'"{damaged}" is not a readable sdbench results file')
    assert not (tmp_path / "site").exists()


def subprocess_and_in_process_answers(verb: str, tmp_path, run_cli, run_cli_in_process):
    """`verb` with a bad input, run by `python -m sdbench` and by main(): both answers."""
    answers = []
    for run, folder in [
        (run_cli, tmp_path / "subprocess"),
        (run_cli_in_process, tmp_path / "here"),
    ]:
        folder.mkdir()
        if verb == "run":
            answer, bad_file = run_bad_suite(run, "unknown key", folder)
        else:
            args, bad_file = truncated_results_args(verb, folder)
            answer = run(verb, *args)
        answers.append((answer, str(bad_file)))
    return answers


@pytest.mark.parametrize("verb", ["run", "report"])
def test_python_m_sdbench_answers_bad_input_exactly_as_main_does(
    verb, tmp_path, run_cli, run_cli_in_process
):
    ((code, stdout, stderr), bad_file), (here, bad_file_here) = subprocess_and_in_process_answers(
        verb, tmp_path, run_cli, run_cli_in_process
    )
    assert_clear_error(code, stdout, stderr, bad_file)
    assert (code, stdout, stderr.replace(bad_file, bad_file_here)) == here
    assert not (tmp_path / "subprocess" / "results").exists()
    assert not (tmp_path / "subprocess" / "site").exists()
