"""Taking a session: one atomic write, edits kept in the audit log, stale saves refused, bad input."""

from __future__ import annotations

import json
from datetime import date

import pytest

from group_ipt.core import audit, cycles, sessions, users
from group_ipt.core.cycles import CycleError
from group_ipt.core.sessions import SessionEntry, StaleSession

from .conftest import add_participant, login, post_form
from .test_cycles import make_cycle, session_no

TODAY = date(2026, 3, 9)


@pytest.fixture
def group(db, protocols):
    """A who-8 cycle at KMP led by amina, first session 2 March 2026, with three members."""
    cycle = make_cycle(db, protocols)
    people = [add_participant(db, name=n) for n in ("Agnes Auma", "Betty Birungi", "Carol Cherop")]
    member_ids = [cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"] for p in people]
    return {"cycle": cycle, "members": member_ids, "people": people}


def amina(db):
    return users.get_user_by_username(db, "amina")


def record(db, protocols, session, attendance, *, checks=None, version=None, note="", fidelity=None, plans=None):
    entry = SessionEntry(attendance, checks or {}, note, fidelity, plans or {})
    return sessions.record_session(
        db,
        session["id"],
        entry,
        protocols=protocols,
        actor=amina(db),
        today=TODAY,
        expected_version=session["version"] if version is None else version,
    )


def test_record_session_writes_everything_once_with_audit(db, protocols, group):
    m1, m2, m3 = group["members"]
    s1 = session_no(db, group["cycle"]["id"], 1)
    saved = record(
        db,
        protocols,
        s1,
        {m1: "present", m2: "absent", m3: "late"},
        checks={m1: ("better", 6), m3: (None, 4)},
        note="Good energy",
        fidelity={"started_on_time": True, "set_homework": False},
    )
    assert (saved["status"], saved["version"], saved["note"]) == ("held", 1, "Good energy")
    att = {r["member_id"]: r["status"] for r in db.query("select * from attendance")}
    assert att == {m1: "present", m2: "absent", m3: "late"}
    checks = {r["member_id"]: (r["trend"], r["rating"]) for r in db.query("select * from symptom_checks")}
    assert checks == {m1: ("better", 6), m3: (None, 4)}
    fidelity = db.execute("select answers_json from fidelity_checklists").fetchone()[0]
    assert json.loads(fidelity) == {"set_homework": False, "started_on_time": True}
    assert cycles.get_cycle(db, group["cycle"]["id"])["status"] == "active"
    log = audit.entries(db, "sessions", s1["id"])
    assert [e["action"] for e in log] == ["record_session"]
    assert json.loads(log[0]["after_json"])["attendance"][m2] == "absent"


def test_edit_keeps_the_change_in_the_audit_log(db, protocols, group):
    m1, m2, m3 = group["members"]
    s1 = session_no(db, group["cycle"]["id"], 1)
    record(db, protocols, s1, {m1: "present", m2: "absent", m3: "present"})
    s1 = session_no(db, group["cycle"]["id"], 1)
    record(db, protocols, s1, {m1: "present", m2: "excused", m3: "present"})
    log = audit.entries(db, "sessions", s1["id"])
    assert [e["action"] for e in log] == ["record_session", "edit_session"]
    assert json.loads(log[1]["before_json"])["attendance"][m2] == "absent"
    assert json.loads(log[1]["after_json"])["attendance"][m2] == "excused"
    assert db["attendance"].count == 3


def test_stale_version_is_refused_with_what_changed(db, protocols, group):
    m1, m2, m3 = group["members"]
    s1 = session_no(db, group["cycle"]["id"], 1)
    record(db, protocols, s1, {m1: "present", m2: "absent", m3: "present"})  # tab A saves first
    with pytest.raises(StaleSession) as caught:  # tab B still holds version 0
        record(db, protocols, s1, {m1: "present", m2: "present", m3: "present"}, version=0)
    assert caught.value.current_version == 1
    assert [str(d) for d in caught.value.differences] == ["Betty Birungi: saved as absent, you chose present."]
    assert {r["status"] for r in db.query("select status from attendance where member_id = ?", (m2,))} == {"absent"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e, m: e.attendance.pop(m[2]), "Mark the attendance of: Carol Cherop"),
        (lambda e, m: e.attendance.update({"not-a-member": "present"}), "not a member of this cycle"),
        (lambda e, m: e.attendance.update({m[0]: "asleep"}), "Choose present, absent"),
        (lambda e, m: e.checks.update({m[1]: ("better", None)}), "not marked present but has a symptom check"),
        (lambda e, m: e.checks.update({m[0]: (None, 11)}), "from 0 to 10"),
        (lambda e, m: e.checks.update({m[0]: ("great", None)}), "better, same or worse"),
        (lambda e, m: setattr(e, "fidelity", {"danced": True}), "Unknown checklist question"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(db, protocols, group, change, message):
    m = group["members"]
    s1 = session_no(db, group["cycle"]["id"], 1)
    entry = SessionEntry({m[0]: "present", m[1]: "absent", m[2]: "present"}, {}, "", None, {})
    change(entry, m)
    with pytest.raises(CycleError, match=message):
        sessions.record_session(
            db, s1["id"], entry, expected_version=0, protocols=protocols, actor=amina(db), today=TODAY
        )
    assert db["attendance"].count == 0 and session_no(db, group["cycle"]["id"], 1)["status"] == "scheduled"


def test_member_of_another_cycle_is_refused(db, protocols, group):
    other = make_cycle(db, protocols, first="2026-03-03")
    stranger, _ = cycles.enrol(
        db, other["id"], add_participant(db, name="Dora")["id"], actor=None, today=date(2026, 2, 20)
    )
    m = group["members"]
    s1 = session_no(db, group["cycle"]["id"], 1)
    with pytest.raises(CycleError, match="not a member of this cycle"):
        record(db, protocols, s1, {m[0]: "present", m[1]: "present", m[2]: "present", stranger["id"]: "present"})


def test_cancelled_and_future_sessions_are_refused(db, protocols, group):
    m = group["members"]
    s2 = session_no(db, group["cycle"]["id"], 2)
    cycles.cancel_session(db, s2["id"], reason="rain", actor=None)
    with pytest.raises(CycleError, match="cancelled"):
        record(db, protocols, session_no(db, group["cycle"]["id"], 2), dict.fromkeys(m, "present"))
    with pytest.raises(CycleError, match="can be taken on the day"):
        record(db, protocols, session_no(db, group["cycle"]["id"], 3), dict.fromkeys(m, "present"))


def test_pre_group_session_records_problem_areas_and_goals(db, protocols, group):
    m1, m2, m3 = group["members"]
    s0 = session_no(db, group["cycle"]["id"], 0)
    record(
        db,
        protocols,
        s0,
        dict.fromkeys(group["members"], "present"),
        plans={m1: ("grief", None, "Talk about my mother"), m2: ("disputes", "transitions", ""), m3: (None, None, "")},
    )
    assert db["members"].get(m1)["problem_area"] == "grief"
    assert db["members"].get(m1)["goals"] == "Talk about my mother"
    assert (db["members"].get(m2)["problem_area"], db["members"].get(m2)["problem_area_2"]) == (
        "disputes",
        "transitions",
    )


def test_makeup_sheet_records_only_those_who_came(db, protocols, group):
    m1, m2, m3 = group["members"]
    s1 = session_no(db, group["cycle"]["id"], 1)
    record(db, protocols, s1, {m1: "present", m2: "absent", m3: "present"})
    makeup = cycles.add_makeup(db, s1["id"], date(2026, 3, 8), "10:00", actor=None)
    record(db, protocols, makeup, {m2: "present"})
    assert {
        r["member_id"] for r in db.query("select member_id from attendance where session_id = ?", (makeup["id"],))
    } == {m2}


# --- the page ---------------------------------------------------------------------


def sheet_data(member_ids, statuses, version=0, **extra):
    data = {"version": str(version), "note": ""}
    for member_id, status in zip(member_ids, statuses, strict=True):
        data[f"att-{member_id}"] = status
    data.update(extra)
    return data


def test_take_page_defaults_everyone_to_present_and_saves(client, db, protocols, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    page = client.get(f"/sessions/{s1['id']}").get_data(as_text=True)
    assert page.count('value="present" checked') == 3
    assert "Agnes Auma" in page and "The session started on time." in page
    m = group["members"]
    r = post_form(
        client,
        f"/sessions/{s1['id']}",
        sheet_data(
            m,
            ["present", "absent", "present"],
            **{f"rating-{m[0]}": "7", f"trend-{m[0]}": "same", "fid-welcomed_members": "1"},
        ),
        form_page=f"/sessions/{s1['id']}",
    )
    assert r.status_code == 303
    assert r.headers["Location"].endswith(f"/cycles/{group['cycle']['id']}#sessions")
    assert db["symptom_checks"].count == 1 and db["fidelity_checklists"].count == 1


def test_take_page_bad_rating_keeps_what_was_typed(client, db, protocols, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    m = group["members"]
    r = post_form(
        client,
        f"/sessions/{s1['id']}",
        sheet_data(m, ["present", "absent", "present"], note="kept", **{f"rating-{m[0]}": "seven"}),
        form_page=f"/sessions/{s1['id']}",
    )
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert "The rating of Agnes Auma must be a whole number from 0 to 10." in page
    assert ">kept</textarea>" in page
    assert f'id="att-{m[1]}-absent" name="att-{m[1]}" value="absent" checked' in page
    assert db["attendance"].count == 0


def test_two_tabs_second_save_gets_409_and_keeps_its_entries(client, db, protocols, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    m = group["members"]
    first = post_form(
        client,
        f"/sessions/{s1['id']}",
        sheet_data(m, ["present", "absent", "present"]),
        form_page=f"/sessions/{s1['id']}",
    )
    assert first.status_code == 303
    second = post_form(
        client,
        f"/sessions/{s1['id']}",
        sheet_data(m, ["present", "present", "excused"]),
        form_page=f"/sessions/{s1['id']}",
    )
    page = second.get_data(as_text=True)
    assert second.status_code == 409
    assert "Betty Birungi: saved as absent, you chose present." in page
    assert 'name="version" value="1"' in page
    assert f'id="att-{m[2]}-excused" name="att-{m[2]}" value="excused" checked' in page
    assert [r["status"] for r in db.query("select status from attendance where member_id = ?", (m[2],))] == ["present"]


def test_take_page_of_another_site_is_404(client, db, protocols, group, set_today):
    set_today("2026-03-09")
    login(client, "grace")
    s1 = session_no(db, group["cycle"]["id"], 1)
    assert client.get(f"/sessions/{s1['id']}").status_code == 404


def test_sessions_today_redirects_to_my_session(client, db, protocols, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    r = client.get("/sessions/today")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/sessions/{s1['id']}")
    set_today("2026-03-10")
    assert client.get("/sessions/today").headers["Location"].endswith("/")
