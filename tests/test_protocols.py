"""Protocol presets in forms/protocols/ and the loader that checks them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from group_ipt.formfiles.i18n_extract import extract_yaml
from group_ipt.formfiles.protocols import (
    Protocol,
    ProtocolFileError,
    check_protocols,
    load_protocol,
    load_protocols,
)

REPO = Path(__file__).resolve().parent.parent
PRESETS = REPO / "forms" / "protocols"
KNOWN = {"phq9", "phq2", "gad7", "who5", "whodas12"}
TRANSLATABLE_KEYS = {"text", "label", "title", "name", "description", "goals"}
ID_KEYS = {"id", "phase", "instrument", "instruments"}


@pytest.fixture(scope="module")
def presets() -> dict[str, Protocol]:
    return load_protocols(PRESETS, known_instruments=KNOWN)


def minimal() -> dict:
    """Return the smallest valid protocol, as parsed YAML."""
    return {
        "id": "test-3",
        "name": "Test protocol",
        "version": 1,
        "pre_group": True,
        "group_size": {"min": 5, "max": 10},
        "completion": {"min_attended_share": 0.75},
        "fidelity_checklist": [{"id": "started_on_time", "text": "The session started on time."}],
        "sessions": [
            {"number": 0, "phase": "pre-group", "minutes": 60, "goals": ["Meet."], "instruments": ["phq9"]},
            {"number": 1, "phase": "initial", "minutes": 90, "goals": ["Start."]},
            {"number": 2, "phase": "middle", "minutes": 90, "goals": ["Work."]},
            {"number": 3, "phase": "termination", "minutes": 90, "goals": ["End."], "instruments": ["phq9"]},
        ],
    }


def write(directory: Path, data: dict, name: str = "test-3.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


# --- the presets -------------------------------------------------------------


def test_presets_check_clean():
    assert check_protocols(PRESETS, KNOWN) == []


def test_presets_are_the_four_from_the_domain_brief(presets):
    assert sorted(presets) == ["short-6", "strongminds-12", "uganda-16", "who-8"]


@pytest.mark.parametrize(
    ("protocol_id", "initial", "middle", "termination"),
    [
        ("who-8", [1], range(2, 8), [8]),
        ("uganda-16", range(1, 5), range(5, 14), range(14, 17)),
        ("strongminds-12", range(1, 5), range(5, 10), range(10, 13)),
        ("short-6", [1], range(2, 6), [6]),
    ],
)
def test_preset_phases(presets, protocol_id, initial, middle, termination):
    protocol = presets[protocol_id]
    expected = {0: "pre-group"}
    expected |= dict.fromkeys(initial, "initial")
    expected |= dict.fromkeys(middle, "middle")
    expected |= dict.fromkeys(termination, "termination")
    assert {s.number: s.phase for s in protocol.sessions} == expected
    assert protocol.pre_group is True
    assert [s.number for s in protocol.group_sessions] == list(range(1, max(expected) + 1))


@pytest.mark.parametrize(
    ("protocol_id", "size_min", "size_max"),
    [("who-8", 6, 10), ("uganda-16", 8, 12), ("strongminds-12", 12, 15), ("short-6", 6, 10)],
)
def test_preset_group_size(presets, protocol_id, size_min, size_max):
    protocol = presets[protocol_id]
    assert (protocol.group_size_min, protocol.group_size_max) == (size_min, size_max)


@pytest.mark.parametrize(
    ("protocol_id", "mid_cycle", "last"),
    [("who-8", 4, 8), ("uganda-16", 8, 16), ("strongminds-12", 6, 12), ("short-6", 3, 6)],
)
def test_preset_phq9_at_pre_group_mid_cycle_and_last_session(presets, protocol_id, mid_cycle, last):
    protocol = presets[protocol_id]
    due = [s.number for s in protocol.sessions if "phq9" in s.instruments_due]
    assert due == [0, mid_cycle, last]


@pytest.mark.parametrize("protocol_id", ["who-8", "uganda-16", "strongminds-12", "short-6"])
def test_preset_rules(presets, protocol_id):
    protocol = presets[protocol_id]
    assert protocol.version == 1
    assert protocol.min_attended_share == 0.75
    assert protocol.absences_for_followup == 2
    assert 6 <= len(protocol.fidelity_checklist) <= 8
    assert [f.instrument for f in protocol.followup] == ["phq9"]
    assert protocol.session(0).minutes == 60
    assert {s.minutes for s in protocol.group_sessions} == {90}
    assert all(s.goals for s in protocol.sessions)


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_preset_instruments_exist_as_instrument_files(path):
    instrument_ids = {
        yaml.safe_load(f.read_text(encoding="utf-8"))["id"] for f in (REPO / "forms" / "instruments").glob("*.yaml")
    }
    protocol = load_protocol(path)
    used = {i for s in protocol.sessions for i in s.instruments_due} | {f.instrument for f in protocol.followup}
    assert used <= instrument_ids


def _untranslatable_strings(node, key=None):
    """Yield (key, value) for text that would escape gettext extraction."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _untranslatable_strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _untranslatable_strings(v, key)
    elif isinstance(node, str) and key not in TRANSLATABLE_KEYS | ID_KEYS:
        yield key, node


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_preset_text_sits_under_translatable_keys(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(_untranslatable_strings(data)) == []


@pytest.mark.parametrize("path", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_preset_text_is_extracted_for_translation(path):
    protocol = load_protocol(path)
    with path.open("rb") as f:
        messages = {message for _, _, message, _ in extract_yaml(f, (), (), {})}
    shown = {protocol.name, protocol.description}
    shown |= {goal for s in protocol.sessions for goal in s.goals}
    shown |= {item.text for item in protocol.fidelity_checklist}
    assert shown <= messages


# --- Protocol helpers --------------------------------------------------------


def test_protocol_session_helpers(presets):
    who = presets["who-8"]
    assert who.phase_of(0) == "pre-group"
    assert who.phase_of(5) == "middle"
    assert who.instruments_due(4) == ("phq9",)
    assert who.instruments_due(3) == ()
    assert who.session(0).is_group is False
    assert who.session(8).is_group is True
    assert len(who.group_sessions) == 8


def test_protocol_session_unknown_number(presets):
    with pytest.raises(KeyError, match="no session 9"):
        presets["who-8"].session(9)


def test_protocol_is_frozen(presets):
    with pytest.raises(dataclasses.FrozenInstanceError):
        presets["who-8"].name = "changed"


@pytest.mark.parametrize(
    ("protocol_id", "attended", "completed"),
    [
        ("who-8", 8, True),
        ("who-8", 6, True),
        ("who-8", 5, False),
        ("uganda-16", 12, True),
        ("uganda-16", 11, False),
        ("strongminds-12", 9, True),
        ("strongminds-12", 8, False),
        ("short-6", 5, True),
        ("short-6", 4, False),
        ("short-6", 0, False),
    ],
)
def test_protocol_is_completed(presets, protocol_id, attended, completed):
    assert presets[protocol_id].is_completed(attended) is completed


@pytest.mark.parametrize(
    ("share", "sessions_needed"),
    [(0.7, 12), (0.5, 8), (1, 16), (0.0625, 1)],
)
def test_protocol_is_completed_at_exact_share(presets, share, sessions_needed):
    protocol = dataclasses.replace(presets["uganda-16"], min_attended_share=share)
    assert protocol.is_completed(sessions_needed)
    assert not protocol.is_completed(sessions_needed - 1)


def test_protocol_is_completed_negative(presets):
    with pytest.raises(ValueError, match="negative"):
        presets["who-8"].is_completed(-1)


# --- loading -----------------------------------------------------------------


def test_load_protocol_minimal(tmp_path):
    protocol = load_protocol(write(tmp_path, minimal()))
    assert protocol.id == "test-3"
    assert protocol.description == ""
    assert protocol.absences_for_followup == 2
    assert protocol.followup == ()
    assert protocol.maintenance_monthly_sessions == 0
    assert protocol.session(0).instruments_due == ("phq9",)
    assert protocol.session(1).goals == ("Start.",)


def test_load_protocol_optional_fields(tmp_path):
    data = minimal()
    data["description"] = "A test."
    data["absences_for_followup"] = 3
    data["maintenance"] = {"monthly_sessions": 4}
    data["followup"] = [
        {"instrument": "phq9", "months_after_end": 3},
        {"instrument": "phq9", "months_after_end": 6},
    ]
    protocol = load_protocol(write(tmp_path, data))
    assert protocol.description == "A test."
    assert protocol.absences_for_followup == 3
    assert protocol.maintenance_monthly_sessions == 4
    assert [(f.instrument, f.months_after_end) for f in protocol.followup] == [("phq9", 3), ("phq9", 6)]


def test_load_protocol_without_pre_group(tmp_path):
    data = minimal()
    data["pre_group"] = False
    del data["sessions"][0]
    protocol = load_protocol(write(tmp_path, data))
    assert protocol.pre_group is False
    assert [s.number for s in protocol.sessions] == [1, 2, 3]
    assert protocol.group_sessions == protocol.sessions


def test_load_protocol_share_of_one_is_allowed(tmp_path):
    data = minimal()
    data["completion"]["min_attended_share"] = 1
    protocol = load_protocol(write(tmp_path, data))
    assert protocol.is_completed(3) and not protocol.is_completed(2)


def _set(path, value):
    def mutate(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path):
    def mutate(data):
        *parents, last = path
        node = data
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


def _swap_phases(a, b):
    def mutate(data):
        sessions = data["sessions"]
        sessions[a]["phase"], sessions[b]["phase"] = sessions[b]["phase"], sessions[a]["phase"]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "session", "field", "message"),
    [
        (
            _set(("sessions", 3, "phase"), "closing"),
            3,
            "phase",
            "must be one of pre-group, initial, middle, termination",
        ),
        (_set(("colour",), "blue"), None, "colour", "unknown key"),
        (_set(("sessions", 2, "room"), "hall"), 2, "room", "unknown key"),
        (_set(("group_size", "mean"), 7), None, "group_size.mean", "unknown key"),
        (_delete(("name",)), None, "name", "is missing"),
        (_delete(("sessions", 1, "minutes")), 1, "minutes", "is missing"),
        (_delete(("sessions", 2, "number")), None, "sessions[2].number", "is missing"),
        (_delete(("sessions", 2)), 3, "number", "expected 2"),
        (_set(("sessions", 3, "number"), 2), 2, "number", "expected 3"),
        (_set(("sessions", 2, "number"), "two"), None, "sessions[2].number", "must be a whole number"),
        (_swap_phases(2, 3), 3, "phase", "'middle' cannot come after 'termination'"),
        (_set(("sessions", 3, "phase"), "middle"), 3, "phase", "termination phase"),
        (_set(("sessions", 1, "phase"), "middle"), 1, "phase", "first group session must be in the initial phase"),
        (_set(("sessions", 0, "phase"), "initial"), 0, "phase", "session 0 must be in the pre-group phase"),
        (_set(("sessions", 1, "phase"), "pre-group"), 1, "phase", "only session 0"),
        (_set(("sessions", 1, "minutes"), 0), 1, "minutes", "from 1 to 240"),
        (_set(("sessions", 1, "minutes"), "90"), 1, "minutes", "whole number"),
        (_set(("sessions", 1, "goals"), []), 1, "goals", "non-empty list"),
        (_set(("sessions", 1, "goals"), ["Start.", ""]), 1, "goals[1]", "non-empty text"),
        (_set(("sessions", 1, "instruments"), "phq9"), 1, "instruments", "must be a list"),
        (_set(("sessions", 1, "instruments"), ["PHQ 9"]), 1, "instruments[0]", "instrument id"),
        (_set(("sessions", 1, "instruments"), ["phq9", "phq9"]), 1, "instruments[1]", "listed twice"),
        (_set(("group_size", "min"), 12), None, "group_size", "min (12) is larger than max (10)"),
        (_set(("group_size", "min"), 0), None, "group_size.min", "at least 1"),
        (_set(("completion", "min_attended_share"), 0), None, "completion.min_attended_share", "greater than 0"),
        (_set(("completion", "min_attended_share"), 1.5), None, "completion.min_attended_share", "at most 1"),
        (_set(("completion", "min_attended_share"), "75%"), None, "completion.min_attended_share", "such as 0.75"),
        (_set(("completion", "min_attended_share"), True), None, "completion.min_attended_share", "such as 0.75"),
        (_set(("completion",), 0.75), None, "completion", "must be a mapping"),
        (_set(("pre_group",), "yes please"), None, "pre_group", "true or false"),
        (_set(("pre_group",), False), 0, "number", "pre_group is false"),
        (_delete(("sessions", 0)), None, "pre_group", "no session 0"),
        (_set(("sessions",), []), None, "sessions", "non-empty list"),
        (_set(("id",), "Test 3"), None, "id", "such as who-8"),
        (_set(("version",), "one"), None, "version", "whole number"),
        (_set(("version",), 0), None, "version", "at least 1"),
        (_set(("absences_for_followup",), 0), None, "absences_for_followup", "at least 1"),
        (_set(("fidelity_checklist",), []), None, "fidelity_checklist", "non-empty list"),
        (_set(("fidelity_checklist", 0, "id"), "Started on time"), None, "fidelity_checklist[0].id", "lower-case"),
        (_delete(("fidelity_checklist", 0, "text")), None, "fidelity_checklist[0].text", "is missing"),
        (
            _set(("fidelity_checklist",), [{"id": "a", "text": "A."}, {"id": "a", "text": "B."}]),
            None,
            "fidelity_checklist[1].id",
            "used twice",
        ),
        (
            _set(("followup",), [{"instrument": "phq9", "months_after_end": 0}]),
            None,
            "followup[0].months_after_end",
            None,
        ),
        (_set(("followup",), [{"instrument": "phq9"}]), None, "followup[0].months_after_end", "is missing"),
        (_set(("followup",), {"phq9": 3}), None, "followup", "must be a list"),
        (_set(("maintenance",), {"monthly_sessions": -1}), None, "maintenance.monthly_sessions", "at least 0"),
        (_set(("maintenance",), {"monthly": 2}), None, "maintenance.monthly", "unknown key"),
    ],
)
def test_load_protocol_error(tmp_path, mutate, session, field, message):
    data = minimal()
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    error = caught.value
    assert (error.file, error.session, error.field) == (str(path), session, field)
    if message is not None:
        assert message in error.message


def test_load_protocol_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ProtocolFileError, match="must be a mapping of protocol fields"):
        load_protocol(path)


def test_load_protocol_error_names_the_line(tmp_path):
    text = yaml.safe_dump(minimal(), sort_keys=False).replace("phase: termination", "phase: ending")
    path = tmp_path / "test-3.yaml"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("  phase: ending") + 1
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    assert caught.value.line == line
    assert str(caught.value) == (
        f"{path}:{line}: session 3: field 'phase': must be one of pre-group, initial, middle, termination"
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("id: a\nname: [unclosed\n", 3, "not valid YAML"),
        ("id: a\nname: A\nid: b\n", 3, "duplicate key 'id'"),
        ("id: a\n? [1, 2]\n: x\n", 2, "unhashable key"),
    ],
)
def test_load_protocol_bad_yaml(tmp_path, text, line, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProtocolFileError) as caught:
        load_protocol(path)
    assert caught.value.line == line
    assert message in str(caught.value)


def test_protocol_file_error_str_without_line():
    error = ProtocolFileError(
        "forms/protocols/who-8.yaml",
        "must be one of pre-group, initial, middle, termination",
        session=3,
        field="phase",
    )
    assert str(error) == (
        "forms/protocols/who-8.yaml: session 3: field 'phase': must be one of pre-group, initial, middle, termination"
    )
    assert (error.file, error.session, error.field) == ("forms/protocols/who-8.yaml", 3, "phase")


def test_protocol_file_error_str_file_only():
    assert str(ProtocolFileError("p.yaml", "cannot be read")) == "p.yaml: cannot be read"


def test_check_protocols_collects_every_error_in_file_order(tmp_path):
    data = minimal()
    data["colour"] = "blue"
    data["sessions"][1]["minutes"] = -5
    data["sessions"][3]["phase"] = "closing"
    data["group_size"]["min"] = 20
    write(tmp_path, data)
    errors = check_protocols(tmp_path)
    assert [(e.session, e.field) for e in errors] == [
        (None, "group_size"),
        (1, "minutes"),
        (3, "phase"),
        (None, "colour"),
    ]
    assert [e.line for e in errors] == sorted(e.line for e in errors)


def test_check_protocols_unknown_instrument_only_when_known_given(tmp_path):
    data = minimal()
    data["sessions"][2]["instruments"] = ["local-checklist"]
    data["followup"] = [{"instrument": "phq8", "months_after_end": 3}]
    write(tmp_path, data)
    assert check_protocols(tmp_path) == []
    errors = check_protocols(tmp_path, known_instruments=KNOWN)
    assert [(e.session, e.field) for e in errors] == [(2, "instruments[0]"), (None, "followup[0].instrument")]
    assert "unknown instrument 'local-checklist'" in errors[0].message


def test_check_protocols_duplicate_ids(tmp_path):
    write(tmp_path, minimal(), "a.yaml")
    write(tmp_path, minimal(), "b.yml")
    errors = check_protocols(tmp_path)
    assert len(errors) == 1
    assert errors[0].file == str(tmp_path / "b.yml")
    assert errors[0].field == "id"
    assert "already used by" in errors[0].message


def test_check_protocols_missing_directory(tmp_path):
    errors = check_protocols(tmp_path / "nowhere")
    assert [e.message for e in errors] == ["protocol directory not found"]


def test_load_protocols_raises_first_error_and_loads_nothing(tmp_path):
    write(tmp_path, minimal(), "a-good.yaml")
    bad = minimal()
    bad["id"] = "bad"
    bad["sessions"][1]["phase"] = "opening"
    bad["version"] = "x"
    bad_path = write(tmp_path, bad, "b-bad.yaml")
    with pytest.raises(ProtocolFileError) as caught:
        load_protocols(tmp_path)
    assert caught.value.file == str(bad_path)
    assert caught.value.field == "version"  # nearer the top than the phase


def test_load_protocols_reads_only_yaml_files(tmp_path):
    write(tmp_path, minimal())
    (tmp_path / "README.txt").write_text("not a protocol", encoding="utf-8")
    (tmp_path / "old.yaml.bak").write_text("::", encoding="utf-8")
    assert list(load_protocols(tmp_path)) == ["test-3"]


def test_load_protocols_empty_directory(tmp_path):
    assert load_protocols(tmp_path) == {}


def test_load_protocols_missing_directory(tmp_path):
    with pytest.raises(ProtocolFileError, match="not found"):
        load_protocols(tmp_path / "nowhere")


def test_load_protocol_reads_utf8(tmp_path):
    data = minimal()
    data["name"] = "Kikundi cha IPT – wiki nane"
    path = write(tmp_path, data)
    assert load_protocol(path).name == "Kikundi cha IPT – wiki nane"
