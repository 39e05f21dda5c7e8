"""Follow-up after absences, completion and dropout, attendance rates, measures due, home panel."""

from __future__ import annotations

from datetime import date

import pytest

from group_ipt.core import cycles, followup, users
from group_ipt.core.sessions import SessionEntry, record_session

from .conftest import add_participant, login, post_form
from .test_cycles import make_cycle, session_no


@pytest.fixture
def group(db, protocols):
    cycle = make_cycle(db, protocols, protocol="short-6")
    people = [
        add_participant(db, name=n, phone=f"0772 00000{i}", village=f"Village {i}")
        for i, n in enumerate(("Agnes Auma", "Betty Birungi"))
    ]
    members = [cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"] for p in people]
    return {"cycle": cycle, "members": members, "people": people}


def take(db, protocols, cycle_id, number, statuses, *, today=date(2026, 6, 1)):
    session = session_no(db, cycle_id, number)
    members = [m["id"] for m in cycles.members(db, cycle_id, active_only=True)]
    record_session(
        db,
        session["id"],
        SessionEntry(dict(zip(members, statuses, strict=True))),
        expected_version=session["version"],
        protocols=protocols,
        actor=None,
        today=today,
    )


@pytest.mark.parametrize(
    ("statuses", "streak"),
    [
        ([], 0),
        (["absent"], 1),
        (["absent", "absent"], 2),
        (["absent", "present", "absent"], 1),
        (["absent", "excused", "absent"], 2),
        (["absent", "absent", "late"], 0),
        (["present", "excused"], 0),
    ],
)
def test_absence_streak(statuses, streak):
    assert followup.absence_streak(statuses) == streak


def needs(db, protocols, today, **kwargs):
    return followup.followups_needed(
        db, [users.get_site(db, "KMP")["id"]], protocols, today=today, due_days=7, **kwargs
    )


def test_two_absences_in_a_row_put_a_member_on_the_list_until_visited(db, protocols, group):
    cid = group["cycle"]["id"]
    take(db, protocols, cid, 0, ["present", "present"])
    take(db, protocols, cid, 1, ["present", "absent"])
    assert needs(db, protocols, date(2026, 3, 10)) == []
    take(db, protocols, cid, 2, ["present", "absent"])  # 16 March
    found = needs(db, protocols, date(2026, 3, 17))
    assert [
        (f["member"]["name"], f["member"]["phone"], f["member"]["village"], f["need"].streak, f["need"].since)
        for f in found
    ] == [("Betty Birungi", "0772 000001", "Village 1", 2, "2026-03-16")]
    assert not found[0]["need"].overdue
    assert needs(db, protocols, date(2026, 3, 24))[0]["need"].overdue
    followup.record_followup(
        db, group["members"][1], date(2026, 3, 18), "Sick child", actor=None, today=date(2026, 3, 18)
    )
    assert needs(db, protocols, date(2026, 3, 24)) == []


def test_followup_in_the_future_is_refused(db, protocols, group):
    with pytest.raises(cycles.CycleError, match="future"):
        followup.record_followup(db, group["members"][0], date(2026, 3, 20), "", actor=None, today=date(2026, 3, 18))


def test_rates_and_completion_by_protocol_rule(db, protocols, group):
    cid = group["cycle"]["id"]
    take(db, protocols, cid, 0, ["present", "present"])
    for n in (1, 2, 3, 4):
        take(db, protocols, cid, n, ["present", "absent" if n > 1 else "present"])
    rates = followup.session_rates(db, cid)
    s2 = session_no(db, cid, 2)
    assert (rates[s2["id"]]["attended"], rates[s2["id"]]["marked"], rates[s2["id"]]["rate"]) == (1, 2, 0.5)
    cycle = cycles.get_cycle(db, cid)
    summary = followup.member_summaries(db, cycle, protocols["short-6"])
    agnes, betty = group["members"]
    # short-6: 6 group sessions, 75% = 4.5, so 5 are needed. Agnes attended 4 of 4 so far.
    assert summary[agnes]["group_attended"] == 4 and summary[agnes]["outcome"] == "on_track"
    assert summary[betty]["group_attended"] == 1 and summary[betty]["outcome"] == "dropping_out"
    assert summary[betty]["rate"] == 2 / 5
    take(db, protocols, cid, 5, ["present", "present"])
    take(db, protocols, cid, 6, ["absent", "present"])
    counts = cycles.close_cycle(db, cid, protocols["short-6"], early=False, actor=None, today=date(2026, 6, 1))
    assert counts == {"completed": 1, "dropped_out": 1}
    assert db["participants"].get(group["people"][0]["id"])["status"] == "completed"
    assert db["participants"].get(group["people"][1]["id"])["status"] == "dropped_out"


def test_makeup_attendance_counts_for_the_session_it_makes_up(db, protocols, group):
    cid = group["cycle"]["id"]
    take(db, protocols, cid, 0, ["present", "present"])
    take(db, protocols, cid, 1, ["present", "absent"])
    makeup = cycles.add_makeup(db, session_no(db, cid, 1)["id"], date(2026, 3, 11), "10:00", actor=None)
    record_session(
        db,
        makeup["id"],
        SessionEntry({group["members"][1]: "present"}),
        expected_version=0,
        protocols=protocols,
        actor=None,
        today=date(2026, 6, 1),
    )
    assert followup.attended_group_sessions(db, cid) == {group["members"][0]: 1, group["members"][1]: 1}


# --- measures due -----------------------------------------------------------------


def add_screening(db, participant, instrument, occasion, on, *, cycle_id=None, session_id=None):
    import uuid

    db["screenings"].insert(
        {
            "id": str(uuid.uuid4()),
            "site_id": participant["site_id"],
            "participant_id": participant["id"],
            "instrument_id": instrument,
            "instrument_version": "1",
            "occasion": occasion,
            "cycle_id": cycle_id,
            "session_id": session_id,
            "answers_json": "{}",
            "administered_on": on,
            "submission_key": str(uuid.uuid4()),
            "created_at": "2026-01-01T00:00:00+00:00",
            "updated_at": "2026-01-01T00:00:00+00:00",
        }
    )


def test_measures_due_from_the_protocol(db, protocols, group):
    agnes = group["people"][0]
    cid = group["cycle"]["id"]
    s0 = session_no(db, cid, 0)
    add_screening(db, agnes, "phq9", "baseline", "2026-03-02", cycle_id=cid, session_id=s0["id"])
    add_screening(db, agnes, "phq9", "mid", "2026-03-24")  # saved without its cycle, near the mid-cycle date
    due = followup.measures_due(db, agnes["id"], protocols, today=date(2026, 4, 20), grace_days=14)
    got = [(d["instrument_id"], d["occasion"], d["due_on"], d["status"]) for d in due]
    # short-6 (pre-group 2 March, group sessions weekly from 9 March; PHQ-9 at 0, 3 and 6; 3 months after).
    assert got == [
        ("phq9", "baseline", "2026-03-02", "done"),
        ("who5", "baseline", "2026-03-02", "overdue"),
        ("phq9", "mid", "2026-03-23", "done"),
        ("phq9", "end", "2026-04-13", "due"),
        ("who5", "end", "2026-04-13", "due"),
        ("phq9", "followup", "2026-07-13", "upcoming"),
    ]


def test_measures_due_stop_after_withdrawal_and_follow_the_transfer(db, protocols, group):
    agnes, betty = group["people"]
    cycles.withdraw(db, group["members"][1], reason="moved", actor=None, today=date(2026, 3, 10))
    assert {
        d["occasion"] for d in followup.measures_due(db, betty["id"], protocols, today=date(2026, 3, 10), grace_days=14)
    } == {"baseline"}
    other = make_cycle(db, protocols, first="2026-03-04", protocol="who-8")
    cycles.transfer(db, group["members"][0], other["id"], reason="closer", actor=None, today=date(2026, 2, 25))
    due = followup.measures_due(db, agnes["id"], protocols, today=date(2026, 2, 25), grace_days=14)
    assert {d["cycle_code"] for d in due} == {other["code"]}
    assert followup.measures_due(db, add_participant(db)["id"], protocols, today=date(2026, 2, 25), grace_days=14) == []


def test_participant_page_include_renders(app, db, protocols, group, set_today):
    set_today("2026-04-20")
    with app.test_request_context("/"):
        from flask_login import login_user

        from group_ipt.web.auth import load_user

        login_user(load_user(users.get_user_by_username(db, "amina")["id"]))
        from flask import render_template_string

        from group_ipt.web.views.cycles import measures_due

        participant = group["people"][0]
        html = render_template_string(
            '{% include "cycles/_participant_due.html" %}', participant=participant, due_items=measures_due(participant)
        )
    assert "overdue" in html and "KMP-C001" in html


# --- pages ------------------------------------------------------------------------


def test_followup_page_and_cycle_page_show_the_member(client, db, protocols, group, set_today):
    cid = group["cycle"]["id"]
    take(db, protocols, cid, 0, ["present", "present"])
    take(db, protocols, cid, 1, ["present", "absent"])
    take(db, protocols, cid, 2, ["present", "absent"])
    set_today("2026-03-30")
    login(client, "amina")
    page = client.get("/cycles/followups").get_data(as_text=True)
    assert "Betty Birungi" in page and "0772 000001" in page and "Village 1" in page and "overdue" in page
    cycle_page = client.get(f"/cycles/{cid}").get_data(as_text=True)
    assert "1 of 2 (50%)" in cycle_page
    r = post_form(
        client,
        f"/cycles/{cid}/members/{group['members'][1]}/followup",
        {"done_on": "2026-03-29", "note": "visited", "back": "followups"},
        form_page="/cycles/followups",
    )
    assert r.status_code == 303 and r.headers["Location"].endswith("/cycles/followups")
    assert "0772 000001" not in client.get("/cycles/followups").get_data(as_text=True)


def test_home_panels(app, client, db, protocols, group, set_today):
    cid = group["cycle"]["id"]
    take(db, protocols, cid, 0, ["present", "present"])
    set_today("2026-03-12")  # session 1 (9 March) has no attendance
    login(client, "amina")
    home = client.get("/").get_data(as_text=True)
    assert "My next session" in home and "KMP-C001: session 2" in home
    assert "Agnes Auma" in home
    assert "Sessions with no attendance recorded: 1" in home
    client = app.test_client()
    login(client, "coord")
    home = client.get("/").get_data(as_text=True)
    assert "Cycles of my sites" in home and "session 0 of 6 held" in home
    assert "Sessions with no attendance recorded: 1" in home


def test_participant_page_shows_measures_due(client, db, protocols, group, set_today):
    set_today("2026-03-03")
    login(client, "amina")
    r = client.get(f"/participants/{group['people'][0]['id']}")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Measures due" in page and "pre-group session" in page and "KMP-C001" in page
    assert 'class="measure-due' in page
