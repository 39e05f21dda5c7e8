"""Instrument files in forms/instruments/: loading, checking and scoring."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from group_ipt.formfiles.instruments import (
    Band,
    FormFileError,
    Instrument,
    InvalidAnswer,
    InvalidCutoff,
    check_instruments,
    load_instrument,
    load_instruments,
)

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms" / "instruments"
SHIPPED = ["gad7", "local-depression-example", "phq2", "phq9", "who5", "whodas12"]
PHQ9 = load_instrument(FORMS_DIR / "phq9.yaml")

# A small valid instrument; the error tests break one thing in it at a time.
MINI = """\
id: mini
name: Mini scale
version: 1
recall: Last week
options:
  - {value: 0, label: Never}
  - {value: 1, label: Sometimes}
  - {value: 2, label: Often}
items:
  - id: q1
    text: First question
  - id: q2
    text: Second question
    risk: {when: ">= 1"}
  - id: q3
    text: Third question
scoring:
  method: sum
  missing: {prorate_max_missing: 1}
bands:
  - {min: 0, max: 2, label: Low, explanation: Few signs.}
  - {min: 3, max: 6, label: High, explanation: Many signs.}
eligibility:
  cutoff: 3
  direction: ">="
  configurable: true
"""


def write(folder: Path, text: str, name: str = "mini.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def broken(old: str, new: str) -> str:
    assert old in MINI, old
    return MINI.replace(old, new, 1)


def phq9_answers(total: int) -> dict[str, int | None]:
    """Return PHQ-9 answers adding up to total, leaving question 9 at 0 up to 24."""
    answers: dict[str, int | None] = {}
    left = total
    for number in range(1, 10):
        answers[f"q{number}"] = min(3, left)
        left -= answers[f"q{number}"]
    assert left == 0
    answers["q10"] = 1
    return answers


# Loading the shipped files


def test_load_instruments_loads_every_shipped_file():
    instruments = load_instruments(FORMS_DIR)
    assert sorted(instruments) == SHIPPED
    assert all(isinstance(instrument, Instrument) for instrument in instruments.values())


def test_check_instruments_finds_no_error_in_shipped_files():
    assert check_instruments(FORMS_DIR) == []


@pytest.mark.parametrize(
    ("instrument_id", "item_count", "min_total", "max_total", "cutoff"),
    [
        ("phq9", 10, 0, 27, 10),
        ("phq2", 2, 0, 6, 3),
        ("gad7", 7, 0, 21, None),
        ("who5", 5, 0, 100, None),
        ("whodas12", 12, 12, 60, None),
        ("local-depression-example", 8, 0, 21, 10),
    ],
)
def test_load_instrument_shipped_shape(instrument_id, item_count, min_total, max_total, cutoff):
    instrument = load_instrument(FORMS_DIR / f"{instrument_id}.yaml")
    assert instrument.id == instrument_id
    assert len(instrument.items) == item_count
    assert (instrument.min_total, instrument.max_total) == (min_total, max_total)
    assert (instrument.eligibility.cutoff if instrument.eligibility else None) == cutoff


def test_load_instrument_phq9_marks_q9_as_risk_and_q10_as_unscored():
    assert [item.id for item in PHQ9.risk_items] == ["q9"]
    assert str(PHQ9.item("q9").risk) == ">= 1"
    assert PHQ9.item("q10").scored is False
    assert [item.id for item in PHQ9.scored_items] == [f"q{n}" for n in range(1, 10)]
    assert PHQ9.item("q1").values == (0, 1, 2, 3)
    assert PHQ9.eligibility is not None and PHQ9.eligibility.configurable


# Scoring


@pytest.mark.parametrize(
    ("total", "band", "eligible"),
    [
        (0, "Minimal", False),
        (4, "Minimal", False),
        (5, "Mild", False),
        (9, "Mild", False),
        (10, "Moderate", True),
        (14, "Moderate", True),
        (15, "Moderately severe", True),
        (19, "Moderately severe", True),
        (20, "Severe", True),
        (24, "Severe", True),
        (27, "Severe", True),
    ],
)
def test_score_phq9_band_at_every_boundary(total, band, eligible):
    result = PHQ9.score(phq9_answers(total))
    assert result.total == total
    assert result.raw_total == total
    assert result.scaled_total is None
    assert result.band is not None and result.band.label == band
    assert result.eligible is eligible
    assert result.cutoff == 10
    assert result.complete is True
    assert result.prorated is False
    assert result.missing == []


def test_score_phq9_difficulty_question_is_not_added():
    answers = {f"q{n}": 0 for n in range(1, 10)} | {"q10": 3}
    assert PHQ9.score(answers).total == 0


@pytest.mark.parametrize(
    ("total", "cutoff", "eligible"), [(9, None, False), (9, 9, True), (8, 9, False), (10, 11, False)]
)
def test_score_phq9_cutoff_override(total, cutoff, eligible):
    result = PHQ9.score(phq9_answers(total), cutoff=cutoff)
    assert result.eligible is eligible
    assert result.cutoff == (10 if cutoff is None else cutoff)


@pytest.mark.parametrize(("answers", "raw", "scaled", "band"), [
    ([5, 5, 5, 5, 5], 25, 100, "Fair or good well-being"),
    ([0, 0, 0, 0, 0], 0, 0, "Likely depression"),
    ([1, 1, 1, 2, 2], 7, 28, "Likely depression"),  # 28 or below: likely depression, assess
    ([2, 1, 1, 2, 2], 8, 32, "Poor well-being"),
    ([3, 3, 3, 3, 0], 12, 48, "Poor well-being"),
    ([3, 3, 3, 3, 1], 13, 52, "Fair or good well-being"),
])  # fmt: skip
def test_score_who5_scales_raw_by_four(answers, raw, scaled, band):
    who5 = load_instrument(FORMS_DIR / "who5.yaml")
    result = who5.score({f"q{n}": value for n, value in enumerate(answers, start=1)})
    assert (result.raw_total, result.scaled_total, result.total) == (raw, scaled, scaled)
    assert result.band is not None and result.band.label == band
    assert result.eligible is None


@pytest.mark.parametrize(
    ("answers", "total"), [([1] * 12, 12), ([5] * 12, 60), ([1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2], 33)]
)
def test_score_whodas12_simple_sum(answers, total):
    whodas = load_instrument(FORMS_DIR / "whodas12.yaml")
    result = whodas.score({f"s{n}": value for n, value in enumerate(answers, start=1)})
    assert result.total == result.raw_total == total
    assert result.band is None
    assert result.eligible is None


def test_score_missing_beyond_rule_gives_no_total():
    answers = phq9_answers(20) | {"q1": None, "q2": None, "q3": None}
    result = PHQ9.score(answers)
    assert result.total is None
    assert result.raw_total is None
    assert result.band is None
    assert result.eligible is None
    assert result.missing == ["q1", "q2", "q3"]
    assert result.complete is False
    assert result.prorated is False


@pytest.mark.parametrize(
    ("given", "total"),
    [
        # 8 answers summing to 16: mean 2, times 9 items.
        ([None, 2, 2, 2, 2, 2, 2, 2, 2], 18),
        # 13 * 9 / 8 = 14.625, rounded to 15.
        ([3, 3, 3, None, 2, 1, 1, 0, 0], 15),
        # 4 * 9 / 8 = 4.5 rounds half up to 5 (band Mild, not Minimal).
        ([1, 1, 1, 1, 0, 0, 0, None, 0], 5),
        # Two missing: 15 * 9 / 7 = 19.29, rounded to 19.
        ([None, None, 3, 3, 3, 2, 2, 2, 0], 19),
        # 7 * 9 / 7 = 9; with two missing, still a total.
        ([1, 1, 1, 1, 1, None, None, 1, 1], 9),
    ],
)
def test_score_prorates_one_or_two_missing_phq9_items(given, total):
    answers = {f"q{n}": value for n, value in enumerate(given, start=1)} | {"q10": 0}
    result = PHQ9.score(answers)
    assert result.total == total
    assert result.prorated is True
    assert result.complete is False
    assert result.risk_unanswered == []


@pytest.mark.parametrize("others", [[3] * 8, [3, 3, 3, 3, 3, 3, None, 3], [0] * 8])
def test_score_phq9_without_question_9_has_no_total_and_no_eligibility(others):
    answers = {f"q{n}": value for n, value in enumerate(others, start=1)} | {"q9": None, "q10": 0}
    result = PHQ9.score(answers)
    assert (result.total, result.raw_total, result.band, result.eligible) == (None, None, None, None)
    assert result.prorated is False
    assert result.risk_unanswered == ["q9"]
    assert result.risk_items == []


@pytest.mark.parametrize(("q9", "urgent"), [(0, []), (1, []), (2, ["q9"]), (3, ["q9"])])
def test_score_phq9_question_9_of_2_or_3_is_urgent(q9, urgent):
    result = PHQ9.score(phq9_answers(5) | {"q9": q9})
    assert result.urgent_items == urgent
    assert result.risk_items == ([] if q9 == 0 else ["q9"])


@pytest.mark.parametrize(("q1", "q2", "next_instrument"), [(1, 1, None), (2, 1, "phq9"), (3, 3, "phq9")])
def test_score_phq2_positive_asks_for_phq9_never_eligible(q1, q2, next_instrument):
    phq2 = load_instrument(FORMS_DIR / "phq2.yaml")
    result = phq2.score({"q1": q1, "q2": q2})
    assert result.next_instrument == next_instrument
    assert result.eligible is None


def test_score_missing_is_never_zero_when_rule_is_none():
    who5 = load_instrument(FORMS_DIR / "who5.yaml")
    result = who5.score({"q1": 5, "q2": 5, "q3": 5, "q4": 5})
    assert result.total is None
    assert result.scaled_total is None
    assert result.band is None
    assert result.missing == ["q5"]


def test_score_absent_and_none_answers_are_both_missing():
    assert PHQ9.score({}).missing == [f"q{n}" for n in range(1, 11)]
    assert PHQ9.score({"q1": None}).missing == [f"q{n}" for n in range(1, 11)]


def test_score_unscored_missing_item_makes_result_incomplete_but_total_stands():
    answers = phq9_answers(12)
    del answers["q10"]
    result = PHQ9.score(answers)
    assert result.total == 12
    assert result.prorated is False
    assert result.complete is False
    assert result.missing == ["q10"]


@pytest.mark.parametrize("value", [1, 2, 3])
def test_score_phq9_q9_raises_risk_even_with_everything_else_missing(value):
    result = PHQ9.score({"q9": value})
    assert result.risk_items == ["q9"]
    assert result.total is None


def test_score_phq9_q9_zero_raises_no_risk():
    assert PHQ9.score(phq9_answers(27) | {"q9": 0}).risk_items == []


def test_score_local_example_has_its_own_risk_item():
    local = load_instrument(FORMS_DIR / "local-depression-example.yaml")
    result = local.score({"life-not-worth-living": 1})
    assert result.risk_items == ["life-not-worth-living"]


# No example database: runs share no state, and a failure prints its example.
@settings(database=None)
@given(
    q9=st.integers(min_value=1, max_value=3),
    others=st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=3)), min_size=9, max_size=9),
    cutoff=st.one_of(st.none(), st.integers(min_value=0, max_value=27)),
)
def test_score_phq9_q9_above_zero_always_raises_risk(q9, others, cutoff):
    answers = {f"q{n}": value for n, value in zip([1, 2, 3, 4, 5, 6, 7, 8, 10], others, strict=True)}
    result = PHQ9.score(answers | {"q9": q9}, cutoff=cutoff)
    assert result.risk_items == ["q9"]


@pytest.mark.parametrize(
    ("answers", "item"),
    [({"q99": 1}, "q99"), ({"q1": 4}, "q1"), ({"q1": -1}, "q1"), ({"q2": True}, "q2"), ({"q3": "2"}, "q3")],
)
def test_score_rejects_answers_that_are_not_options(answers, item):
    with pytest.raises(InvalidAnswer) as caught:
        PHQ9.score(answers)
    assert caught.value.item == item


@pytest.mark.parametrize(
    ("instrument_id", "cutoff", "message"),
    [("phq9", 28, "outside"), ("phq9", -1, "outside"), ("gad7", 10, "no eligibility cut-off")],
)
def test_score_rejects_cutoff_override(instrument_id, cutoff, message):
    instrument = load_instrument(FORMS_DIR / f"{instrument_id}.yaml")
    with pytest.raises(InvalidCutoff, match=message):
        instrument.score({}, cutoff=cutoff)


def test_score_rejects_override_of_fixed_cutoff(tmp_path):
    mini = load_instrument(write(tmp_path, broken("configurable: true", "configurable: false")))
    assert mini.score({"q1": 1, "q2": 1, "q3": 1}).eligible is True
    with pytest.raises(InvalidCutoff, match="fixed at 3"):
        mini.score({"q1": 1, "q2": 1, "q3": 1}, cutoff=4)


def test_score_direction_at_most(tmp_path):
    mini = load_instrument(write(tmp_path, broken('direction: ">="', 'direction: "<="')))
    assert mini.score({"q1": 1, "q2": 1, "q3": 1}).eligible is True
    assert mini.score({"q1": 2, "q2": 1, "q3": 1}).eligible is False


def test_band_for_returns_band_holding_total():
    assert PHQ9.band_for(10) == Band(10, 14, "Moderate", "Clear signs of depression. The group is likely to help.")
    assert PHQ9.band_for(None) is None


# Parsing submitted form strings


def test_validate_answers_parses_strings_and_blanks():
    raw = {"q1": "0", "q2": " 3 ", "q3": "", "q9": "1"}
    answers = PHQ9.validate_answers(raw)
    assert answers == {
        "q1": 0,
        "q2": 3,
        "q3": None,
        "q4": None,
        "q5": None,
        "q6": None,
        "q7": None,
        "q8": None,
        "q9": 1,
        "q10": None,
    }


@pytest.mark.parametrize(
    ("raw", "item", "message"),
    [
        ({"q1": "often"}, "q1", "not a number"),
        ({"q1": "1.5"}, "q1", "not a number"),
        ({"q1": "4"}, "q1", "4 is not one of the answers (0, 1, 2, 3)"),
        ({"q1": "-1"}, "q1", "not one of the answers"),
        ({"q11": "1"}, "q11", "no such question in phq9"),
    ],
)
def test_validate_answers_rejects(raw, item, message):
    with pytest.raises(InvalidAnswer) as caught:
        PHQ9.validate_answers(raw)
    assert caught.value.item == item
    assert message in caught.value.message
    assert str(caught.value).startswith(f"item {item}: ")


# Errors in form files


def test_form_file_error_str_names_file_item_and_field():
    error = FormFileError("forms/instruments/phq9.yaml", "q9", "options", "values must be integers")
    assert str(error) == "forms/instruments/phq9.yaml: item q9: field 'options': values must be integers"
    with_line = FormFileError("phq9.yaml", None, "bands", "gap", line=12)
    assert str(with_line) == "phq9.yaml:12: field 'bands': gap"


@pytest.mark.parametrize(
    ("old", "new", "item", "field", "message"),
    [
        ("- {value: 2, label: Often}", "- {value: two, label: Often}", None, "options", "values must be integers"),
        (
            "text: Second question\n",
            "text: Second question\n    options:\n      - {value: 0, label: A}\n      - {value: 1.5, label: B}\n",
            "q2",
            "options",
            "values must be integers",
        ),
        (
            "text: Second question\n",
            "text: Second question\n    options:\n      - {value: 0, label: A}\n      - {value: 0, label: B}\n",
            "q2",
            "options",
            "value 0 is listed twice",
        ),
        ("- {value: 1, label: Sometimes}", "- {value: 1, label: yes}", None, "label", "put quotes around it"),
        ("    text: First question", "    txt: First question", "q1", "txt", "did you mean 'text'"),
        ("    text: First question", "    txt: First question", "q1", "text", "is missing"),
        ("name: Mini scale\n", "", None, "name", "is missing"),
        ("recall: Last week\n", "recall: Last week\ncolour: blue\n", None, "colour", "unknown field"),
        ("  - id: q3", "  - id: q1", "q1", "id", "duplicate item id 'q1'"),
        ("  - id: q3", "  - id: Q 3", "#3", "id", "lower-case"),
        ("id: mini\n", "id: 9mini\n", None, "id", "must start with a letter"),
        ('risk: {when: ">= 1"}', 'risk: {when: ">= 7"}', "q2", "risk", "not an answer value"),
        ('risk: {when: ">= 1"}', 'risk: {when: "> 2"}', "q2", "risk", "can never match"),
        ('risk: {when: ">= 1"}', "risk: {when: sometimes}", "q2", "risk", "must look like"),
        ('risk: {when: ">= 1"}', 'risk: {if: ">= 1"}', "q2", "risk", "declares a risk item but no alert rule"),
        ('risk: {when: ">= 1"}', "risk: {}", "q2", "risk", "declares a risk item but no alert rule"),
        ('risk: {when: ">= 1"}', "risk: yes", "q2", "risk", "declares a risk item but no alert rule"),
        ('risk: {when: ">= 1"}', 'risk: {when: ">= 1", colour: red}', "q2", "colour", "unknown field"),
        ('risk: {when: ">= 1"}', 'risk: {when: ">= 2", urgent: ">= 1"}', "q2", "urgent", "raise no alert"),
        ("method: sum", "method: average", None, "method", "must be one of sum, scaled, none"),
        ("method: sum", "method: scaled", None, "multiplier", "positive multiplier"),
        ("method: sum", "method: sum\n  multiplier: 4", None, "multiplier", "only used with method: scaled"),
        ("{prorate_max_missing: 1}", "{prorate_max_missing: 3}", None, "missing", "below the number of scored"),
        (
            "text: Third question\n",
            "text: Third question\n    options:\n      - {value: 0, label: A}\n      - {value: 2, label: B}\n",
            None,
            "missing",
            "prorating needs every scored item to have the same answer values",
        ),
        ("{prorate_max_missing: 1}", "{prorate_max_missing: -1}", None, "prorate_max_missing", "0 or more"),
        (
            "{min: 3, max: 6,",
            "{min: 4, max: 6,",
            None,
            "bands",
            "gap between band 'Low' (ends 2) and 'High' (starts 4)",
        ),
        ("{min: 3, max: 6,", "{min: 2, max: 6,", None, "bands", "band 'Low' (0-2) overlaps 'High' (2-6)"),
        ("{min: 3, max: 6,", "{min: 3, max: 5,", None, "bands", "the last band ends at 5; totals go up to 6"),
        ("{min: 0, max: 2,", "{min: 1, max: 2,", None, "bands", "the first band starts at 1; totals start at 0"),
        ("{min: 3, max: 6,", "{min: 7, max: 6,", None, "min", "starts at 7, after its end 6"),
        ("cutoff: 3", "cutoff: 7", None, "cutoff", "7 is outside the possible totals 0-6"),
        ('direction: ">="', 'direction: ">"', None, "direction", "must be one of >=, <="),
        ("configurable: true", "configurable: sometimes", None, "configurable", "true or false"),
        ("version: 1\n", "", None, "version", "is missing"),
    ],
)
def test_load_instrument_error_names_file_item_and_field(tmp_path, old, new, item, field, message):
    path = write(tmp_path, broken(old, new))
    errors = check_instruments(tmp_path)
    assert [(e.file, e.item, e.field) for e in errors if message in e.message] == [(str(path), item, field)]
    with pytest.raises(FormFileError) as caught:
        load_instrument(path)
    text = str(caught.value)
    assert text.startswith(str(path))
    assert caught.value.file == str(path)


def test_load_instrument_error_str_has_line_of_the_field(tmp_path):
    path = write(tmp_path, broken("    text: First question", "    txt: First question"))
    errors = check_instruments(tmp_path)
    line = MINI.splitlines().index("    text: First question") + 1
    unknown = next(e for e in errors if e.field == "txt")
    assert unknown.line == line == 11
    assert str(unknown).startswith(f"{path}:11: item q1: field 'txt': unknown field (did you mean 'text'?)")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (MINI + "name: Again\n", 27, "duplicate key 'name'"),
        (MINI.replace("  - id: q3", "  - id: [q3"), 16, "not valid YAML"),
        ("", None, "must be a YAML mapping"),
        ("- just\n- a list\n", None, "must be a YAML mapping"),
    ],
)
def test_load_instrument_rejects_unusable_yaml(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(FormFileError, match=message) as caught:
        load_instrument(path)
    assert caught.value.file == str(path)
    if line is not None:
        assert caught.value.line == line


def test_check_instruments_collects_every_error_of_every_file(tmp_path):
    write(tmp_path, MINI.replace("method: sum", "method: average").replace("name: Mini scale", "name: ''"), "a.yaml")
    write(tmp_path, MINI.replace("id: q3", "id: q1"), "b.yaml")
    write(tmp_path, MINI, "c.yaml")
    write(tmp_path, MINI, "d.yaml")
    errors = check_instruments(tmp_path)
    found = [(Path(e.file).name, e.item, e.field) for e in errors]
    assert found == [
        ("a.yaml", None, "name"),
        ("a.yaml", None, "method"),
        ("b.yaml", "q1", "id"),
        ("d.yaml", None, "id"),
    ]
    assert f"already used by {tmp_path / 'c.yaml'}" in errors[-1].message


def test_load_instruments_raises_instead_of_loading_part(tmp_path):
    write(tmp_path, MINI, "good.yaml")
    write(tmp_path, broken("cutoff: 3", "cutoff: 9"), "other.yaml")
    with pytest.raises(FormFileError) as caught:
        load_instruments(tmp_path)
    assert caught.value.file == str(tmp_path / "other.yaml")
    assert caught.value.field == "cutoff"


def test_load_instruments_rejects_missing_folder(tmp_path):
    with pytest.raises(FormFileError, match="no such directory"):
        load_instruments(tmp_path / "absent")


def test_load_instrument_item_options_override_shared_options(tmp_path):
    text = broken(
        "text: Third question\n",
        "text: Third question\n    options:\n      - {value: 0, label: A}\n      - {value: 2, label: B}\n",
    )
    mini = load_instrument(write(tmp_path, text.replace("{prorate_max_missing: 1}", "none")))
    assert mini.item("q3").values == (0, 2)
    assert mini.item("q1").values == (0, 1, 2)
    assert mini.version == "1"
