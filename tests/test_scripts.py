"""Facilitator scripts in forms/scripts/: the shipped scripts, the checker, assembly and placeholders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from group_ipt.formfiles import forms as formsmod
from group_ipt.formfiles.i18n_extract import extract_yaml
from group_ipt.formfiles.protocols import load_protocols
from group_ipt.formfiles.scripts import (
    PLACEHOLDERS,
    PROBLEM_AREAS,
    Script,
    ScriptFileError,
    ScriptLibrary,
    ScriptNotFound,
    check_scripts,
    load_scripts,
    placeholders_filled,
    session_context,
)

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "forms" / "scripts"
PROTOCOLS = load_protocols(REPO / "forms" / "protocols")
LIBRARY = load_scripts(SCRIPTS, PROTOCOLS)
SESSIONS = [(pid, plan.number) for pid, protocol in sorted(PROTOCOLS.items()) for plan in protocol.sessions]
STAGES = ("recognise", "understand", "options", "practice", "support", "progress")
TEXT_KEYS = {"title", "name", "description", "say", "ask", "activity", "watch", "homework", "reminder"}
ID_KEYS = {"id", "code", "block", "template", "guidance", "phases", "slot"}


def all_texts(script: Script) -> list[str]:
    texts = [script.title, *script.goals, *script.watch, *script.reminder]
    for step in script.agenda:
        texts += [step.title, *step.say, *step.ask, *step.activity, *step.watch, *step.homework]
        for guidance in step.guidance:
            texts += [
                guidance.name,
                *guidance.say,
                *guidance.ask,
                *guidance.activity,
                *guidance.watch,
                *guidance.homework,
            ]
    return texts


def copy_scripts(tmp_path: Path) -> Path:
    target = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, target)
    return target


def edit(path: Path, old: str, new: str) -> int:
    """Replace ``old`` (which must occur once) in ``path``; return the line it was on."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def messages(tmp_dir: Path) -> list[str]:
    return [str(e) for e in check_scripts(tmp_dir, PROTOCOLS)]


# --- the shipped scripts -------------------------------------------------------


def test_shipped_scripts_check_clean():
    assert check_scripts(SCRIPTS, PROTOCOLS) == []
    assert LIBRARY.protocol_ids == tuple(sorted(PROTOCOLS))


@pytest.mark.parametrize(("protocol_id", "number"), SESSIONS)
def test_every_session_has_a_complete_script(protocol_id, number):
    plan = PROTOCOLS[protocol_id].session(number)
    script = LIBRARY.script_for(protocol_id, number)
    assert (script.protocol_id, script.session_number, script.phase) == (protocol_id, number, plan.phase)
    assert sum(step.minutes for step in script.agenda) == plan.minutes == script.minutes
    assert script.title and script.goals == plan.goals
    assert script.say and script.ask and script.reminder
    assert all(step.title and step.minutes > 0 for step in script.agenda)
    assert any("self-harm" in text or "harming" in text for text in script.reminder)


@pytest.mark.parametrize("protocol_id", sorted(PROTOCOLS))
def test_session_titles_and_agendas_differ_within_a_protocol(protocol_id):
    scripts = [LIBRARY.script_for(protocol_id, plan.number) for plan in PROTOCOLS[protocol_id].sessions]
    assert len({s.title for s in scripts}) == len(scripts)
    agendas = {tuple((step.title, step.say, step.ask) for step in s.agenda) for s in scripts}
    assert len(agendas) == len(scripts)


@pytest.mark.parametrize("protocol_id", sorted(PROTOCOLS))
def test_cycle_position_shapes_the_script(protocol_id):
    protocol = PROTOCOLS[protocol_id]
    middle = [plan.number for plan in protocol.sessions if plan.phase == "middle"]
    last = protocol.sessions[-1].number
    blocks = {n: [step.block for step in LIBRARY.script_for(protocol_id, n).agenda] for n in (*middle, last)}
    assert "middle-start" in blocks[middle[0]]
    assert "middle-start" not in blocks[middle[-1]] and "work-progress" in blocks[middle[-1]]
    assert "goodbye" in blocks[last] and "homework-set" not in blocks[last]
    assert LIBRARY.script_for(protocol_id, 0).template == "individual"


@pytest.mark.parametrize(
    ("protocol_id", "number", "left"),
    [("who-8", 7, 1), ("short-6", 5, 1), ("uganda-16", 14, 2), ("strongminds-12", 10, 2)],
)
def test_session_before_the_end_announces_it(protocol_id, number, left):
    protocol = PROTOCOLS[protocol_id]
    script = placeholders_filled(LIBRARY.script_for(protocol_id, number), session_context(protocol, number))
    assert f"Meetings left after today: {left}." in script.say
    earlier = placeholders_filled(LIBRARY.script_for(protocol_id, number - 1), session_context(protocol, number - 1))
    assert not any(text.startswith("Meetings left") for text in earlier.say)


@pytest.mark.parametrize(("protocol_id", "number"), [s for s in SESSIONS if PROTOCOLS[s[0]].phase_of(s[1]) == "middle"])
def test_middle_sessions_carry_guidance_for_every_area(protocol_id, number):
    script = LIBRARY.script_for(protocol_id, number)
    areas = {g.area for step in script.agenda for g in step.guidance}
    assert areas == set(PROBLEM_AREAS)


@pytest.mark.parametrize("area", PROBLEM_AREAS)
@pytest.mark.parametrize("stage", STAGES)
def test_problem_area_guidance_for_every_stage(area, stage):
    guidance = LIBRARY.problem_areas[area].stages[stage]
    assert (guidance.area, guidance.stage) == (area, stage)
    assert guidance.name == LIBRARY.problem_areas[area].name
    assert guidance.say and guidance.ask


def test_problem_area_names_are_the_plain_ones():
    names = {code: area.name for code, area in LIBRARY.problem_areas.items()}
    assert names == {
        "grief": "Grief",
        "disputes": "Disagreements",
        "transitions": "Life changes",
        "isolation": "Loneliness",
    }


@pytest.mark.parametrize(
    ("areas", "expected"), [({"grief"}, ["grief"]), ({"isolation", "disputes"}, ["disputes", "isolation"]), (set(), [])]
)
def test_script_for_keeps_only_the_group_areas(areas, expected):
    script = LIBRARY.script_for("who-8", 5, problem_areas=areas)
    practice = next(step for step in script.agenda if step.block == "work-practice")
    assert [g.area for g in practice.guidance] == expected
    assert all(g.stage == "practice" for g in practice.guidance)


def test_script_for_pre_group_gives_every_area_to_choose_from():
    script = LIBRARY.script_for("short-6", 0)
    step = next(step for step in script.agenda if step.block == "meeting-problem-area")
    assert [g.area for g in step.guidance] == list(PROBLEM_AREAS)
    assert {g.stage for g in step.guidance} == {"recognise"}
    # the session's own text comes after the block's
    assert step.say[-1].startswith("Each group is for people with the same kind of problem.")


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: LIBRARY.script_for("nope-3", 1), ScriptNotFound, "no scripts for protocol 'nope-3'"),
        (lambda: LIBRARY.script_for("who-8", 9), ScriptNotFound, "protocol 'who-8' has no script for session 9"),
        (lambda: LIBRARY.script_for("who-8", 3, {"grief", "money"}), ValueError, "unknown problem area(s) money"),
    ],
)
def test_script_for_refuses_unknown(call, error, message):
    with pytest.raises(error) as excinfo:
        call()
    assert message in str(excinfo.value)


def test_script_start_minutes():
    script = LIBRARY.script_for("who-8", 5)
    assert script.start_minutes == (0, 5, 25, 35, 75, 85)
    assert [step.block for step in script.agenda] == [
        "welcome",
        "symptom-check",
        "homework-review",
        "work-practice",
        "homework-set",
        "closing",
    ]


# --- placeholders --------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol_id", "number", "expected"),
    [
        ("who-8", 0, {"session_number": 0, "sessions_total": 8, "sessions_left": 8}),
        ("who-8", 3, {"session_number": 3, "sessions_total": 8, "sessions_left": 5}),
        ("uganda-16", 16, {"session_number": 16, "sessions_total": 16, "sessions_left": 0}),
    ],
)
def test_session_context(protocol_id, number, expected):
    assert session_context(PROTOCOLS[protocol_id], number) == expected
    assert set(expected) == set(PLACEHOLDERS)


@pytest.mark.parametrize(("protocol_id", "number"), SESSIONS)
def test_placeholders_filled_leaves_no_placeholder(protocol_id, number):
    script = LIBRARY.script_for(protocol_id, number)
    assert script.placeholders <= set(PLACEHOLDERS)
    filled = placeholders_filled(script, session_context(PROTOCOLS[protocol_id], number))
    assert not any("%" in text for text in all_texts(filled))


def test_placeholders_filled_with_numbers():
    filled = placeholders_filled(LIBRARY.script_for("uganda-16", 6), session_context(PROTOCOLS["uganda-16"], 6))
    assert filled.agenda[0].say[0] == "Welcome back, everyone. This is meeting 6 of 16."
    assert LIBRARY.script_for("uganda-16", 6).agenda[0].say[0] == (
        "Welcome back, everyone. This is meeting %(session_number)s of %(sessions_total)s."
    )


def test_placeholders_filled_translates_first():
    msgid = "Welcome back, everyone. This is meeting %(session_number)s of %(sessions_total)s."
    french = {msgid: "Bon retour à tous. C'est la rencontre %(session_number)s sur %(sessions_total)s (100 %%)."}
    script = LIBRARY.script_for("who-8", 2)
    filled = placeholders_filled(script, session_context(PROTOCOLS["who-8"], 2), translate=lambda t: french.get(t, t))
    assert filled.agenda[0].say[0] == "Bon retour à tous. C'est la rencontre 2 sur 8 (100 %)."
    assert filled.agenda[0].say[1] == script.agenda[0].say[1]


def test_placeholders_filled_needs_every_value():
    script = LIBRARY.script_for("who-8", 7)
    with pytest.raises(ValueError, match="no value for placeholder.s. sessions_left, sessions_total"):
        placeholders_filled(script, {"session_number": 7})


# --- the checker on broken files -------------------------------------------------


def test_checker_missing_session(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "who-8.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["sessions"] = [s for s in data["sessions"] if s["number"] != 6]
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert messages(scripts) == [
        f"{path}:2: session 6: has no script; protocol 'who-8' has this middle session",
    ]


def test_checker_bad_minutes(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "who-8.yaml"
    line = edit(path, "{block: work-practice, minutes: 40}", "{block: work-practice, minutes: 30}")
    assert messages(scripts) == [
        f"{path}:{line - 1}: session 5: field 'agenda': minutes add up to 80 "
        "(template 'weekly-meeting' 50 + session 30), the protocol says 90",
    ]


def test_checker_bad_minutes_in_a_template_names_every_session_using_it(tmp_path):
    scripts = copy_scripts(tmp_path)
    edit(scripts / "shared" / "templates.yaml", "{block: goodbye, minutes: 15}", "{block: goodbye, minutes: 5}")
    found = messages(scripts)
    assert len(found) == len(PROTOCOLS)
    assert all("template 'last-meeting' 30 + session 50), the protocol says 90" in m for m in found)


def test_checker_unknown_block(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "who-8.yaml"
    line = edit(path, "{block: work-practice, minutes: 40}", "{block: role-pley, minutes: 40}")
    found = messages(scripts)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:{line}: session 5: field 'agenda[0].block': unknown block 'role-pley' (known: ")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Welcome, %(group_name)s.",
            "unknown placeholder %(group_name)s (allowed: %(session_number)s, %(sessions_total)s, %(sessions_left)s)",
        ),
        ("This is meeting {session_number}.", "placeholders are written %(name)s, not {session_number}"),
        ("Half of us, 50%, feel better.", "a % sign may only start a placeholder"),
        ("This is meeting %s.", "a % sign may only start a placeholder"),
    ],
)
def test_checker_bad_placeholder(tmp_path, text, message):
    scripts = copy_scripts(tmp_path)
    path = scripts / "shared" / "blocks.yaml"
    line = edit(path, "- Welcome back, everyone.", f"- {text!r}\n      - Welcome back, everyone.")
    found = messages(scripts)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:{line - 1}: block 'welcome': field 'say': {message}")


def test_checker_bad_placeholder_in_a_session_title(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "short-6.yaml"
    line = edit(path, "title: Starting work on our problem\n", "title: Meeting %(number)s\n")
    assert messages(scripts) == [
        f"{path}:{line}: session 2: field 'title': unknown placeholder %(number)s (allowed: %(session_number)s, "
        "%(sessions_total)s, %(sessions_left)s)",
    ]


def test_checker_unknown_keys(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "short-6.yaml"
    line = edit(path, "    template: early-meeting\n", "    template: early-meeting\n    sey: Hello.\n")
    found = messages(scripts)
    assert found == [
        f"{path}:{line + 1}: session 2: field 'sey': unknown key (allowed: number, title, template, "
        "agenda, watch, reminder)"
    ]


def test_checker_unknown_template_and_wrong_phase(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "short-6.yaml"
    edit(
        path,
        "title: Practising new ways of talking\n    template: weekly-meeting",
        "title: Practising new ways of talking\n    template: last-meeting",
    )
    edit(
        path,
        "title: Weighing up the choices\n    template: weekly-meeting",
        "title: Weighing up the choices\n    template: weakly-meeting",
    )
    found = messages(scripts)
    assert len(found) == 2
    assert "session 3: field 'template': unknown template 'weakly-meeting' (known: early-meeting" in found[0]
    assert found[1].endswith(
        "session 4: field 'template': template 'last-meeting' is for termination sessions, not for a middle session"
    )


def test_checker_unknown_guidance_stage(tmp_path):
    scripts = copy_scripts(tmp_path)
    edit(scripts / "shared" / "blocks.yaml", "guidance: options", "guidance: choices")
    found = messages(scripts)
    assert len(found) == 1
    assert "block 'work-options': field 'guidance': unknown guidance stage 'choices' (known: options, " in found[0]


def test_checker_problem_area_missing_and_stage_missing(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "shared" / "problem-areas.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["problem_areas"] = [a for a in data["problem_areas"] if a["code"] != "isolation"]
    data["problem_areas"][0]["stages"].pop()
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert messages(scripts) == [
        f"{scripts / 'shared'}: no guidance for problem area(s) isolation: every area needs its guidance",
        f"{scripts / 'shared'}: problem area 'grief': no guidance for stage(s) progress, which other areas have",
    ]


def test_checker_protocol_without_script_file_is_an_error(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "short-6.yaml").unlink()
    assert messages(scripts) == [
        f"{scripts / 'short-6.yaml'}: protocol 'short-6' has no script file: every session needs a script "
        "(see docs/scripts.md)",
    ]


def test_checker_script_for_unknown_protocol_and_session(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "extra.yaml").write_text("id: who-9\nsessions:\n  - {number: 1, title: One}\n", encoding="utf-8")
    line = edit(scripts / "who-8.yaml", "  - number: 8\n", "  - number: 9\n")
    found = messages(scripts)
    assert found[0] == (
        f"{scripts / 'extra.yaml'}:1: field 'id': no protocol 'who-9' in forms/protocols "
        "(known: short-6, strongminds-12, uganda-16, who-8)"
    )
    assert found[1:] == [
        f"{scripts / 'who-8.yaml'}:8: session 8: has no script; protocol 'who-8' has this termination session",
        f"{scripts / 'who-8.yaml'}:{line}: session 9: field 'number': protocol 'who-8' has no such session "
        "(it has 0, 1, 2, 3, 4, 5, 6, 7, 8)",
    ]


def test_checker_broken_yaml_and_missing_folder(tmp_path):
    scripts = copy_scripts(tmp_path)
    (scripts / "who-8.yaml").write_text("id: who-8\nsessions: [\n", encoding="utf-8")
    found = messages(scripts)
    assert found[0].startswith(f"{scripts / 'who-8.yaml'}:3: not valid YAML")
    assert check_scripts(tmp_path / "none", PROTOCOLS)[0].message == "script directory not found"


def test_checker_without_protocols_checks_only_the_files(tmp_path):
    scripts = copy_scripts(tmp_path)
    edit(scripts / "who-8.yaml", "{block: work-practice, minutes: 40}", "{block: work-practice, minutes: 30}")
    assert check_scripts(scripts, None) == []


def test_load_scripts_raises_the_first_error(tmp_path):
    scripts = copy_scripts(tmp_path)
    edit(scripts / "who-8.yaml", "{block: work-practice, minutes: 40}", "{block: work-practice, minutes: 0}")
    with pytest.raises(ScriptFileError) as excinfo:
        load_scripts(scripts, PROTOCOLS)
    assert (excinfo.value.session, excinfo.value.field) == (5, "agenda[0].minutes")
    assert excinfo.value.message == "must be a whole number from 1 to 240"


def test_script_file_error_str():
    error = ScriptFileError(
        "forms/scripts/who-8.yaml", "minutes add up to 80, the protocol says 90", session=3, field="agenda", line=12
    )
    assert str(error) == (
        "forms/scripts/who-8.yaml:12: session 3: field 'agenda': minutes add up to 80, the protocol says 90"
    )
    error = ScriptFileError("forms/scripts/shared/blocks.yaml", "is missing", item="block 'welcome'", field="title")
    assert str(error) == "forms/scripts/shared/blocks.yaml: block 'welcome': field 'title': is missing"


# --- translation and the forms loader -----------------------------------------------


def _untranslatable_strings(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _untranslatable_strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _untranslatable_strings(v, key)
    elif isinstance(node, str) and key not in TEXT_KEYS | ID_KEYS:
        yield key, node


SCRIPT_FILES = sorted(SCRIPTS.rglob("*.yaml"))


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_script_text_sits_under_translatable_keys(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(_untranslatable_strings(data)) == []


def test_every_script_text_is_extracted_for_translation():
    extracted = set()
    for path in SCRIPT_FILES:
        with path.open("rb") as f:
            extracted |= {message for _, _, message, _ in extract_yaml(f, (), (), {})}
    for protocol_id, number in SESSIONS:
        script = LIBRARY.script_for(protocol_id, number)
        shown = set(all_texts(script)) - set(script.goals)  # goals are extracted from the protocol files
        assert shown <= extracted, (protocol_id, number, shown - extracted)


def test_forms_load_all_includes_scripts():
    forms = formsmod.load_all(REPO / "forms")
    assert forms.scripts.script_for("who-8", 1).title == "The first meeting: getting started"
    assert formsmod.Forms(instruments={}, protocols={}).scripts == ScriptLibrary()


def test_forms_check_all_reports_script_errors(tmp_path):
    forms_dir = tmp_path / "forms"
    shutil.copytree(REPO / "forms", forms_dir)
    path = forms_dir / "scripts" / "who-8.yaml"
    line = edit(path, "{block: work-practice, minutes: 40}", "{block: work-practice}")
    errors = formsmod.check_all(forms_dir)
    assert [str(e) for e in errors] == [f"{path}:{line}: session 5: field 'agenda[0].minutes': is missing"]
    with pytest.raises(formsmod.FormsError):
        formsmod.load_all(forms_dir)


def test_session_step_of_its_own_and_own_reminder(tmp_path):
    scripts = copy_scripts(tmp_path)
    edit(
        scripts / "short-6.yaml",
        "      - {block: work-practice, minutes: 40}\n",
        "      - title: Telling the group's story\n"
        "        minutes: 40\n"
        "        say: Today each of us tells one thing that changed.\n"
        "        ask: ['What changed for you?']\n"
        "    reminder: Talk with the supervisor first.\n",
    )
    script = load_scripts(scripts, PROTOCOLS).script_for("short-6", 4)
    step = script.agenda[3]
    assert (step.title, step.minutes, step.block, step.guidance) == ("Telling the group's story", 40, None, ())
    assert (step.say, step.ask) == (("Today each of us tells one thing that changed.",), ("What changed for you?",))
    assert script.reminder == ("Talk with the supervisor first.",)


SESSION_4 = "    template: weekly-meeting\n    agenda:\n      - {block: work-practice, minutes: 40}\n"


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (
            "    template: weekly-meeting\n",
            "session 4: field 'agenda': is missing: template 'weekly-meeting' has a slot for the session's own steps",
        ),
        (
            "    template: weekly-meeting\n    agenda:\n      - {minutes: 40, say: Hello.}\n",
            "session 4: field 'agenda[0]': needs a 'block' to use or a 'title' of its own",
        ),
        ("", "session 4: needs an 'agenda', a 'template', or both"),
        (
            "    template: individual\n    agenda:\n      - {block: work-practice, minutes: 40}\n",
            "session 4: field 'template': template 'individual' is for pre-group sessions, not for a middle session",
        ),
    ],
)
def test_checker_session_agenda_rules(tmp_path, new, message):
    scripts = copy_scripts(tmp_path)
    edit(scripts / "short-6.yaml", "title: Practising new ways of talking\n" + SESSION_4, "title: Practising\n" + new)
    found = messages(scripts)
    assert len(found) == 1 and found[0].endswith(message), found


def test_checker_reminder_given_twice(tmp_path):
    scripts = copy_scripts(tmp_path)
    path = scripts / "shared" / "templates.yaml"
    path.write_text("reminder: Call the supervisor.\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    assert messages(scripts) == [
        f"{path}:1: field 'reminder': the safety reminder is already given in {scripts / 'shared' / 'blocks.yaml'}"
    ]
