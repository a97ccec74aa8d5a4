"""Every bad suite is a BadInput naming the file, the key and what to do; good ones load."""

from __future__ import annotations

import pytest
from conftest import suite_text

from sdbench.errors import BadInput
from sdbench.suite import load_suite, parse_suite
from sdbench.suite.load import MAX_AXIS_VALUES, Resolution


def _error(text: str) -> str:
    with pytest.raises(BadInput) as failure:
        parse_suite(text, source="s.toml")
    message = str(failure.value)
    assert message.startswith("s.toml: ")
    assert "\n" not in message.strip()  # one paragraph
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[matrix\nmodel = 1", "not valid TOML"),
        ("a = " + "[" * 5000, "nested too deeply"),
        ("[matrx]\nmodel = ['tiny']", 'Did you mean "matrix"?'),
        ("[matrix]\nresolutoin = [64]", 'unknown axis. Did you mean "resolution"?'),
        ("[matrix]\nmodel = ['sd1.5']", 'Did you mean "sd15"?'),
        ("[matrix]\nresolution = [500]", "must be a multiple of 8 between 64 and 8192"),
        ("[matrix]\nresolution = ['512x500']", "got 500. Try 496"),
        ("[matrix]\nresolution = ['big']", "is not a resolution"),
        (
            "[matrix]\nbatch_size = [0]",
            "[matrix.batch_size] must be an integer from 1 to 4096, got 0",
        ),
        ("[matrix]\nbatch_size = [true]", "got True"),
        ("[matrix]\nprecision = []", "[matrix.precision] is empty"),
        ("[matrix]\ndevice = ['gpu']", "unknown device 'gpu'. Allowed: auto, cpu, cuda"),
        ("[matrix]\nattention = ['flash2']", "Allowed: sdpa, math, flash"),
        ("[options]\nsteps = 0", "[options.steps] must be an integer from 1 to 1000"),
        ("[options]\ncfgg = true", 'unknown option. Did you mean "cfg"?'),
        (
            "[options]\nweights = '/no/such/folder'",
            "weights folder '/no/such/folder' does not exist",
        ),
        ("[options]\nweights = 'a\\u0000b'", "does not exist"),
        ("[options]\nweights = '" + "x" * 5000 + "'", "does not exist"),
        ("[measure]\nmax_time_s = nan", "[measure.max_time_s] must be a number"),
        ("[measure]\ncell_timeout_s = 0.5", "from 1.0 to"),
        ("[measure]\nmin_repeats = 5\nmax_repeats = 2", "is below min_repeats"),
        ("[measure]\nrepeats = 5", 'Did you mean "min_repeats"?'),
        ("[[exclude]]", "is empty and would exclude every cell"),
        ("[exclude]\ndevice = 'cpu'", "must be an array of tables"),
        ("[[exclude]]\nprecison = 'fp16'", 'Did you mean "precision"?'),
        ("[suite]\nname = 3", "[suite.name] must be a string, got 3"),
        ("suite = 1", "[suite] must be a table"),
        ('[matrix]\n"bad\\nkey" = 1', "[matrix.bad\\nkey] unknown axis"),
        ("[matrix]\nbatch_size = [" + "1," * (MAX_AXIS_VALUES + 1) + "]", "Split the suite"),
        (
            "[matrix]\nbatch_size = ["
            + ",".join(map(str, range(1, 401)))
            + "]\nresolution = ["
            + ",".join(str(8 * i) for i in range(8, 308))
            + "]",
            "more than 100000",
        ),
    ],
)
def test_bad_suites_name_the_key_and_the_fix(text, expected):
    assert expected in _error(text)


def test_long_values_are_cut_so_the_message_stays_short():
    message = _error("[matrix]\nmodel = ['" + "m" * 10_000 + "']")
    assert len(message) < 600 and "..." in message


def test_a_missing_suite_file_lists_the_suites_there_are(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "mine.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput) as caught:
        load_suite("suites/quik.toml")
    message = str(caught.value)
    assert 'Did you mean "quick"?' in message
    assert "Suites in ./suites: mine." in message
    assert "Packaged suites: attention, ci," in message


def test_packaged_suites_run_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_suite("quick").name == "quick"
    assert load_suite("quick.toml").name == "quick"
    # the path in a clone before the suites moved into the package still names them
    assert load_suite("suites/tiny.toml").name == "tiny"


def test_a_local_suite_file_wins_over_the_packaged_one_of_the_same_name(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "quick.toml").write_text(
        '[suite]\nname = "my-quick"\n[matrix]\nmodel = ["tiny"]\n'
    )
    monkeypatch.chdir(tmp_path)
    assert load_suite("suites/quick.toml").name == "my-quick"
    assert load_suite("quick").name == "quick"


def test_a_suite_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_bytes(b"[suite]\nname = '\xff'\n")
    with pytest.raises(BadInput, match="readable UTF-8 TOML"):
        load_suite(path)


def test_a_good_suite_keeps_values_in_order_without_duplicates(tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    suite = parse_suite(
        suite_text(
            matrix={"resolution": [512, "768x512", 512], "stage": ["denoiser", "unet"]},
            options={"weights": "weights", "skip_larger_after_oom": False},
        ),
        source=str(tmp_path / "s.toml"),
    )
    assert suite.matrix["resolution"] == (Resolution(512, 512), Resolution(768, 512))
    assert suite.matrix["stage"] == ("unet",)  # the alias and the name are the same axis value
    assert suite.options["weights"] == str(weights.resolve())  # relative to the suite file
    assert suite.options["skip_larger_after_oom"] is False
    assert suite.measure.min_repeats == 1 and suite.measure.cell_timeout_s == 300


def test_the_shipped_suites_load_and_are_named_after_their_files():
    from sdbench.suite.packaged import packaged_suites

    suites = packaged_suites()
    assert {"quick", "tiny", "ci", "gpu-check"} <= set(suites)
    for name, path in suites.items():
        assert load_suite(path).name == name


def test_the_distilled_suite_shrinks_to_its_native_size_bf16_slice_on_a_cpu():
    from sdbench.suite.expand import expand

    suite = load_suite("distilled")
    cpu = expand(suite, ["cpu"])
    assert len(cpu) == 18
    assert {(c.height, c.batch_size, c.precision) for c in cpu} == {(512, 1, "bf16")}
    assert {c.model for c in cpu} == {
        "sd15", "bk-sdm-base", "bk-sdm-small", "bk-sdm-tiny", "lcm-sd15", "sdxl-turbo",
    }  # fmt: skip
    gpu = expand(suite, ["cpu", "cuda:0"])  # auto: the accelerator only, the whole matrix
    assert {c.device for c in gpu} == {"cuda:0"}
    assert {c.precision for c in gpu} == {"fp16", "bf16"} and {c.batch_size for c in gpu} == {1, 4}
    assert any(c.model == "ssd-1b" and c.height == 1024 for c in gpu)
