"""The facilitator's script page: a session's script with the group's context, in the user's language."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from group_ipt.core import cycles, sessions, users

from .conftest import add_participant, post_form


@pytest.fixture
def cycle_with_history(app, db, protocols):
    """A who-8 cycle at KMP whose pre-group session and session 1 were held."""
    kmp = users.get_site(db, "KMP")
    amina = users.get_user_by_username(db, "amina")
    cycle = cycles.create_cycle(
        db,
        site_id=kmp["id"],
        protocol=protocols["who-8"],
        facilitator_ids=[amina["id"]],
        group_type="women",
        venue="St. Luke's hall",
        first_date=date(2026, 3, 2),
        weekday=0,
        start_time="10:00",
        actor=amina,
        now=datetime(2026, 2, 1, 9, 0),
    )
    people = [add_participant(db, name=n) for n in ("Nakato Ŋŋ", "<b>Sarah</b>", "Aisha Nambi")]
    members = []
    for p in people:
        member, _warnings = cycles.enrol(db, cycle["id"], p["id"], actor=amina, today=date(2026, 2, 1))
        members.append(member)
    areas = ["grief", "disputes", None]
    for m, area in zip(members, areas, strict=True):
        if area:
            cycles.set_member_plan(db, m["id"], area, None, "Sleep better", actor=amina)
    plan = cycles.sessions(db, cycle["id"])
    session1 = next(s for s in plan if s["number"] == 1)
    entry = sessions.SessionEntry(
        attendance={members[0]["id"]: "present", members[1]["id"]: "absent", members[2]["id"]: "late"}
    )
    sessions.record_session(
        db,
        session1["id"],
        entry,
        expected_version=session1["version"],
        protocols=protocols,
        actor=amina,
        today=date.fromisoformat(session1["scheduled_date"]),
    )
    return cycle


def test_script_index_lists_every_protocol(logged_in):
    page = logged_in.get("/scripts/").get_data(as_text=True)
    for name in ("who-8", "uganda-16", "strongminds-12", "short-6"):
        assert f"/scripts/{name}/1" in page


@pytest.mark.parametrize(("protocol", "number"), [("who-8", 0), ("who-8", 8), ("uganda-16", 16), ("short-6", 3)])
def test_protocol_script_page(logged_in, protocol, number):
    response = logged_in.get(f"/scripts/{protocol}/{number}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Safety reminder" in page
    assert "Agenda" in page
    assert "%(" not in page  # every placeholder filled


def test_protocol_script_unknown_is_404(logged_in):
    assert logged_in.get("/scripts/who-8/99").status_code == 404
    assert logged_in.get("/scripts/nope/1").status_code == 404


def test_session_script_shows_group_context(logged_in, cycle_with_history, set_today):
    set_today("2026-03-05")
    response = logged_in.get(f"/cycles/{cycle_with_history['id']}/sessions/2/script")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Session 2 of 8" in page
    assert "St. Luke" in page
    assert "Nakato Ŋŋ" in page and "Aisha Nambi" in page  # present or late last time
    assert "&lt;b&gt;Sarah&lt;/b&gt;" not in page.split("Problem areas in this group")[0]  # absent: not listed
    assert "<b>Sarah</b>" not in page
    assert "Problem areas in this group:" in page
    assert "For members working on: grief" in page
    assert "For members working on: loneliness" not in page  # only this group's areas


def test_session_script_other_site_is_404(client, cycle_with_history):
    from .conftest import login

    login(client, "grace")  # MSK facilitator
    assert client.get(f"/cycles/{cycle_with_history['id']}/sessions/2/script").status_code == 404


def test_session_script_in_swahili(logged_in, cycle_with_history):
    post_form(logged_in, "/account/language", {"lang": "sw"}, form_page="/account/")
    page = logged_in.get(f"/cycles/{cycle_with_history['id']}/sessions/2/script").get_data(as_text=True)
    assert '<html lang="sw"' in page
    assert "Jumatatu" in page  # the session's weekday, localised
