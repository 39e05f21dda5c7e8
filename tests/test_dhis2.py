"""DHIS2 dataValueSets export: the document's structure, the mapping file and its errors, the command."""

from __future__ import annotations

import json
from datetime import date

import pytest

from group_ipt.base.settings import REPO_DIR
from group_ipt.core import users
from group_ipt.reporting import dhis2
from group_ipt.reporting.periods import parse_period

from .report_data import build

EXAMPLE = REPO_DIR / "docs" / "dhis2-mapping.example.yaml"
TODAY = date(2026, 7, 20)
MAPPING = {
    "dataSet": "pBOMPrpg1QX",
    "org_units": {"KMP": "DiszpKrYNg8", "MSK": "Vth0fbpFcsO"},
    "data_elements": {
        "enrolled": "GIPTenrl001",
        "completion_rate": ["GIPTcmpR001", {"dataElement": "GIPTcmpN001", "value": "numerator"}],
        "referrals.risk_answer": {"dataElement": "GIPTref0001", "categoryOptionCombo": "RiskAnsw001"},
        "dropout_rate.2": {"dataElement": "GIPTdrp0002", "value": "numerator"},
        "everyone_change_mean": {"dataElement": "GIPTchgM001", "attributeOptionCombo": "Funder00001"},
    },
}


def check_structure(document):
    """The dataValueSets structure as DHIS2 documents it (Web API, Data: dataValueSets), checked apart."""
    assert isinstance(document, dict)
    assert set(document) <= {"dataSet", "completeDate", "period", "orgUnit", "attributeOptionCombo", "dataValues"}
    for value in document["dataValues"]:
        assert {"dataElement", "period", "orgUnit", "value"} <= set(value)
        assert set(value) <= {
            "dataElement",
            "period",
            "orgUnit",
            "categoryOptionCombo",
            "attributeOptionCombo",
            "value",
        }
        assert all(isinstance(v, str) and v for v in value.values())


def test_data_value_set_of_a_period(db, protocols):
    build(db, protocols)
    mapping = dhis2.parse_mapping(MAPPING)
    document = dhis2.export(db, mapping, parse_period("2026Q2"), protocols, today=TODAY, site_codes=["KMP"])
    check_structure(document)
    assert dhis2.validate(document) == []
    assert {k: document[k] for k in ("dataSet", "period", "orgUnit")} == {
        "dataSet": "pBOMPrpg1QX",
        "period": "2026Q2",
        "orgUnit": "DiszpKrYNg8",
    }
    values = {
        (v["dataElement"], v.get("categoryOptionCombo"), v.get("attributeOptionCombo")): v["value"]
        for v in document["dataValues"]
    }
    assert values == {
        ("GIPTenrl001", None, None): "0",  # everyone was enrolled in Q1
        ("GIPTcmpR001", None, None): "66.7",  # percent
        ("GIPTcmpN001", None, None): "4",
        ("GIPTref0001", "RiskAnsw001", None): "0",  # Dora's referral was in Q1
        ("GIPTdrp0002", None, None): "1",
        ("GIPTchgM001", None, "Funder00001"): "-8",
    }
    assert all(v["period"] == "2026Q2" and v["orgUnit"] == "DiszpKrYNg8" for v in document["dataValues"])


def test_every_site_gets_its_org_unit_and_empty_figures_are_left_out(db, protocols):
    build(db, protocols)
    document = dhis2.export(
        db, dhis2.parse_mapping(MAPPING), parse_period("2026"), protocols, today=TODAY, complete_date=TODAY
    )
    assert dhis2.validate(document) == [] and "orgUnit" not in document
    assert document["completeDate"] == "2026-07-20"
    msk = [v for v in document["dataValues"] if v["orgUnit"] == "Vth0fbpFcsO"]
    # MSK closed no cycle: no completion rate and no mean change (DHIS2 refuses empty values).
    assert {v["dataElement"] for v in msk} == {"GIPTenrl001", "GIPTcmpN001", "GIPTref0001", "GIPTdrp0002"}


def test_the_sample_mapping_is_valid():
    mapping = dhis2.load_mapping(EXAMPLE)
    assert mapping.org_units == {"KMP": "DiszpKrYNg8", "MSK": "Vth0fbpFcsO"}
    assert len(mapping.elements) > 10


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"org_units": None}, "org_units: must be a non-empty mapping"),
        ({"data_elements": {}}, "data_elements: must be a non-empty mapping"),
        ({"orgunits": {}}, "orgunits: unknown key"),
        ({"data_elements": {"enroled": "X"}}, "data_elements.enroled: unknown indicator 'enroled'"),
        ({"data_elements": {"enrolled.women": "X"}}, "data_elements.enrolled.women: enrolled has no breakdown"),
        ({"data_elements": {"referrals.fever": "X"}}, "data_elements.referrals.fever: referrals has no part 'fever'"),
        ({"data_elements": {"enrolled": {"categoryOptionCombo": "X"}}}, "data_elements.enrolled.dataElement: missing"),
        ({"data_elements": {"enrolled": {"dataElement": "X", "coc": "Y"}}}, "data_elements.enrolled.coc: unknown key"),
        ({"data_elements": {"enrolled": {"dataElement": "has space"}}}, "data_elements.enrolled.dataElement: must be"),
        ({"data_elements": {"enrolled": {"dataElement": "X", "value": "share"}}}, "data_elements.enrolled.value"),
        ({"data_elements": {"enrolled": []}}, "data_elements.enrolled: the list is empty"),
        ({"org_units": {"KMP": ""}}, "org_units.KMP: must be a DHIS2 id"),
    ],
)
def test_mapping_errors_name_the_key(change, message):
    data = {**MAPPING, **change}
    if change.get("org_units") is None and "org_units" in change:
        data["org_units"] = None
    with pytest.raises(dhis2.MappingError, match=message.replace("(", r"\(").replace(".", r"\.")):
        dhis2.parse_mapping(data, "m.yaml")


def test_mapping_missing_key_and_bad_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("data_elements: {enrolled: X}\n", encoding="utf-8")
    with pytest.raises(dhis2.MappingError, match="m.yaml: org_units: missing"):
        dhis2.load_mapping(path)
    path.write_text("org_units: {KMP: [\n", encoding="utf-8")
    with pytest.raises(dhis2.MappingError, match="not valid YAML or JSON"):
        dhis2.load_mapping(path)
    with pytest.raises(dhis2.MappingError, match="cannot read"):
        dhis2.load_mapping(tmp_path / "none.yaml")
    path.write_text(json.dumps(MAPPING), encoding="utf-8")  # JSON works too
    assert dhis2.load_mapping(path).data_set == "pBOMPrpg1QX"


def test_sites_and_periods_dhis2_cannot_take(db, protocols):
    mapping = dhis2.parse_mapping({**MAPPING, "org_units": {"KMP": "DiszpKrYNg8"}})
    with pytest.raises(dhis2.DHIS2Error, match="no org unit for site\\(s\\) MSK"):
        dhis2.export(db, mapping, parse_period("2026Q1"), protocols, today=TODAY)
    with pytest.raises(dhis2.DHIS2Error, match="DHIS2 needs a period id"):
        dhis2.export(db, mapping, parse_period("2026-01-01..2026-02-01"), protocols, today=TODAY)
    typo = dhis2.parse_mapping({**MAPPING, "org_units": {"KPM": "DiszpKrYNg8"}})
    with pytest.raises(dhis2.DHIS2Error, match="org_units.KPM: no site has this code"):
        dhis2.export(db, typo, parse_period("2026Q1"), protocols, today=TODAY)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"dataValues": [{"dataElement": "a", "period": "2026Q1", "orgUnit": "b", "value": 3}]}, "value must be"),
        ({"dataValues": [{"dataElement": "a", "period": "2026-Q1", "orgUnit": "b", "value": "3"}]}, "not a DHIS2"),
        ({"dataValues": {}}, "dataValues must be a list"),
        ({"dataValues": [], "when": "x"}, "unknown top-level key 'when'"),
        ({"dataValues": [{"dataElement": "a", "period": "2026", "orgUnit": "b", "value": "1"}] * 2}, "repeats"),
    ],
)
def test_validate_finds_problems(document, problem):
    assert any(problem in p for p in dhis2.validate(document))


@pytest.mark.parametrize(
    ("value", "kind", "field", "text"),
    [
        (4, "count", "value", "4"),
        (0.8333, "share", "value", "83.3"),
        (0.8, "share", "value", "80"),
        (4, "share", "numerator", "4"),
        (-8.04, "mean", "value", "-8"),
        (16.333, "mean", "value", "16.3"),
        (None, "mean", "value", None),
    ],
)
def test_format_value(value, kind, field, text):
    assert dhis2.format_value(value, kind, field) == text


def test_export_dhis2_command(runner, tmp_path):
    assert runner.invoke(["init", "--admin", "boss"], input="password1\npassword1\n").exit_code == 0
    for code in ("KMP", "MSK"):
        assert runner.invoke(["sites", "add", code, code.title()]).exit_code == 0
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "2026Q4.json"
    result = runner.invoke(["export", "dhis2", "--period", "2026Q4", "--mapping", str(EXAMPLE), "-o", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text(encoding="utf-8"))
    check_structure(document)
    assert document["period"] == "2026Q4" and len(document["dataValues"]) > 10
    assert list((tmp_path / "out").iterdir()) == [out]  # no temporary file left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "2026-01-01..2026-02-01"], "DHIS2 needs a period id"),
        (["--period", "26Q4"], "Unknown period 26Q4"),
        (["--period", "2026Q4", "--site", "XYZ"], "Unknown site 'XYZ'"),
    ],
)
def test_export_dhis2_command_refuses_bad_input(runner, tmp_path, args, message):
    assert runner.invoke(["init", "--admin", "boss"], input="password1\npassword1\n").exit_code == 0
    for code in ("KMP", "MSK"):
        runner.invoke(["sites", "add", code, code.title()])
    out = tmp_path / "out.json"
    result = runner.invoke(["export", "dhis2", "--mapping", str(EXAMPLE), "-o", str(out), *args])
    assert result.exit_code == 1 and message in result.output
    assert not out.exists()


def test_export_dhis2_command_with_a_broken_mapping(runner, tmp_path):
    assert runner.invoke(["init", "--admin", "boss"], input="password1\npassword1\n").exit_code == 0
    mapping = tmp_path / "m.yaml"
    mapping.write_text("org_units: {KMP: abc}\n", encoding="utf-8")
    result = runner.invoke(
        ["export", "dhis2", "--period", "2026Q4", "--mapping", str(mapping), "-o", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 1 and "data_elements: missing" in result.output
    assert not (tmp_path / "o.json").exists()
    for code in ("KMP", "MSK"):
        runner.invoke(["sites", "add", code, code.title()])
    unwritable = runner.invoke(
        ["export", "dhis2", "--period", "2026Q4", "--mapping", str(EXAMPLE), "-o", str(tmp_path / "no" / "o.json")]
    )
    assert unwritable.exit_code == 1 and "Cannot write" in unwritable.output


def test_site_codes_are_case_insensitive_in_the_mapping(db):
    kmp = users.get_site(db, "KMP")
    mapping = dhis2.parse_mapping({**MAPPING, "org_units": {"kmp": "DiszpKrYNg8", "MSK": "Vth0fbpFcsO"}})
    assert mapping.org_units[kmp["code"]] == "DiszpKrYNg8"
