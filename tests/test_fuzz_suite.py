"""Fuzz the suite loader: any text or value gives a valid suite or a one-paragraph BadInput."""

from __future__ import annotations

import string

from conftest import toml_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdbench.errors import BadInput
from sdbench.suite import expand, parse_suite
from sdbench.suite.axes import ATTENTIONS, AXES, PRECISIONS, STAGES
from sdbench.suite.load import OPTION_DEFAULTS, SECTIONS, Suite

FUZZ = settings(
    max_examples=200,
    deadline=2000,  # ms per example: a hang or quadratic blow-up fails the test
    suppress_health_check=[HealthCheck.too_slow],
)
KNOWN_WORDS = (
    list(SECTIONS)
    + list(AXES)
    + list(OPTION_DEFAULTS)
    + ["warmup", "min_repeats", "max_repeats", "max_time_s", "target_rel_ci", "cell_timeout_s"]
    + ["tiny", "sd15", "cpu", "cuda:0", "auto", "512", "768x512", "true", "nan", "inf"]
    + list(STAGES + PRECISIONS + ATTENTIONS)
)


def check(text: str) -> None:
    """The property: a Suite that expands, or a BadInput with a one-paragraph message."""
    try:
        suite = parse_suite(text, source="fuzz.toml")
    except BadInput as error:
        message = str(error)
        assert message.startswith("fuzz.toml: ") and "\n" not in message.strip(), message
        assert "Traceback" not in message
        return
    assert isinstance(suite, Suite)
    try:
        cells = expand(suite, ["cpu", "cuda:0"])
    except BadInput:
        return
    assert len({c.cell_id for c in cells}) == len(cells)


# Text made of TOML's own punctuation and the words a suite uses, so it often nearly parses.
toml_ish_text = st.lists(
    st.one_of(
        st.sampled_from(KNOWN_WORDS),
        st.sampled_from(list("[]{}=,.\"' \n\t#") + ["[[", "]]", '"""', "\n[matrix]\n"]),
        st.text(alphabet=string.printable, max_size=5),
        st.text(max_size=3),  # any unicode
    ),
    max_size=40,
).map("".join)


@FUZZ
@given(toml_ish_text)
def test_random_text_gives_a_suite_or_a_clear_error(text):
    check(text)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_decoded_as_text_give_a_suite_or_a_clear_error(data):
    check(data.decode("utf-8", errors="replace"))


scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.sampled_from(KNOWN_WORDS),
    st.sampled_from([64, 72, 512, 4096, 8192, 8200, 0, 1, 2, -8]),
)
values = st.one_of(
    scalars, st.lists(scalars, max_size=6), st.lists(st.lists(scalars, max_size=3), max_size=3)
)
keys = st.one_of(st.sampled_from(KNOWN_WORDS), st.text(min_size=1, max_size=12))
tables = st.dictionaries(keys, values, max_size=6)


def _toml(sections: dict[str, dict], excludes: list[dict]) -> str:
    lines = []
    for name, table in sections.items():
        lines.append(f"[{toml_value(name)}]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in table.items()]
    for rule in excludes:
        lines.append("[[exclude]]")
        lines += [f"{toml_value(k)} = {toml_value(v)}" for k, v in rule.items()]
    return "\n".join(lines) + "\n"


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["suite", "matrix", "options", "measure"]) | keys, tables, max_size=5
    ),
    st.lists(tables, max_size=3),
)
def test_random_values_in_a_valid_structure_give_a_suite_or_a_clear_error(sections, excludes):
    check(_toml(sections, excludes))


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.lists(st.sampled_from(["tiny", "sd15", "sdxl", "nope"]), max_size=3),
            "resolution": st.lists(
                st.integers(0, 9000) | st.from_regex(r"\d{1,4}x\d{1,4}", fullmatch=True), max_size=3
            ),
            "batch_size": st.lists(st.integers(-2, 5000), max_size=3),
            "device": st.lists(
                st.sampled_from(["auto", "cpu", "cuda", "cuda:0", "cuda:7", "rocm", "mps", "gpu"]),
                max_size=3,
            ),
            "precision": st.lists(st.sampled_from(PRECISIONS + ("fp64",)), max_size=3),
        },
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "warmup",
                "min_repeats",
                "max_repeats",
                "max_time_s",
                "target_rel_ci",
                "cell_timeout_s",
            ]
        ),
        st.integers(-5, 10**6) | st.floats(allow_nan=True),
        max_size=4,
    ),
)
def test_near_valid_suites_give_a_suite_or_a_clear_error(matrix, measure):
    check(_toml({"matrix": matrix, "measure": measure}, []))
