"""The session sheet as a facilitator corrects it: answers back to "not asked", absent members
without a symptom check, Enter never saves, a questionnaire given from inside the session."""

from __future__ import annotations

import re
from datetime import date

import pytest

from group_ipt.core import cycles, sessions, users

from .conftest import add_participant, login, post_form
from .test_cycles import make_cycle, session_no
from .test_sessions import sheet_data


@pytest.fixture
def group(db, protocols):
    """A who-8 cycle at KMP led by amina, first session 2 March 2026, with three members."""
    cycle = make_cycle(db, protocols)
    people = [add_participant(db, name=n) for n in ("Agnes Auma", "Betty Birungi", "Carol Cherop")]
    member_ids = [cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"] for p in people]
    return {"cycle": cycle, "members": member_ids, "people": people}


def checked(page: str, member_id: str, field: str) -> str | None:
    """Return the value of the checked radio button ``field`` of a member on the page."""
    found = re.search(rf'id="{field}-{member_id}-[a-z]+" name="{field}-{member_id}" value="([a-z]*)" checked', page)
    return found.group(1) if found else None


def test_absent_member_answers_are_not_stored_and_the_facilitator_is_told(client, db, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    m = group["members"]
    r = post_form(
        client,
        f"/sessions/{s1['id']}",
        sheet_data(
            m,
            ["absent", "excused", "present"],
            **{f"trend-{m[0]}": "better", f"rating-{m[0]}": "6", f"rating-{m[1]}": "3", f"trend-{m[2]}": "same"},
        ),
        form_page=f"/sessions/{s1['id']}",
        follow_redirects=True,
    )
    assert r.status_code == 200
    assert "No symptom check was stored for members not marked present: Agnes Auma, Betty Birungi." in r.get_data(
        as_text=True
    )
    checks = {row["member_id"]: (row["trend"], row["rating"]) for row in db.query("select * from symptom_checks")}
    assert checks == {m[2]: ("same", None)}


def test_a_symptom_answer_can_go_back_to_not_asked_and_reopening_shows_what_was_saved(client, db, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    m = group["members"]
    url = f"/sessions/{s1['id']}"
    post_form(
        client,
        url,
        sheet_data(
            m,
            ["present", "present", "late"],
            **{f"trend-{m[0]}": "worse", f"rating-{m[0]}": "2", f"trend-{m[1]}": "better"},
        ),
        form_page=url,
    )
    page = client.get(url).get_data(as_text=True)
    assert [checked(page, x, "att") for x in m] == ["present", "present", "late"]
    assert [checked(page, x, "trend") for x in m] == ["worse", "better", ""]  # "" is "not asked"
    assert (
        f'id="rating-{m[0]}" name="rating-{m[0]}" type="number" min="0" max="10" step="1" inputmode="numeric" '
        'value="2"' in page
    )
    # Marked present by mistake: back to "not asked", then absent.
    r = post_form(
        client,
        url,
        sheet_data(
            m,
            ["present", "absent", "late"],
            version=1,
            **{f"trend-{m[0]}": "", f"rating-{m[0]}": "", f"trend-{m[1]}": "better"},
        ),
        form_page=url,
    )
    assert r.status_code == 303
    assert db["symptom_checks"].count == 0
    page = client.get(url).get_data(as_text=True)
    assert [checked(page, x, "att") for x in m] == ["present", "absent", "late"]
    assert [checked(page, x, "trend") for x in m] == ["", "", ""]


def test_enter_in_a_field_cannot_submit_the_sheet(client, db, group, set_today):
    """Implicit submission uses the form's first submit button: on the sheet it is a disabled guard."""
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    page = client.get(f"/sessions/{s1['id']}").get_data(as_text=True)
    form = page[page.index('id="session-sheet"') :]
    first_button = re.search(r"<button[^>]*>", form).group(0)
    assert 'type="submit"' in first_button and "disabled" in first_button
    assert "js/session-sheet-0.1.js" in page and "<script>" not in page


def give_now(client, url, member_ids, participant_id, instrument="phq9", **extra):
    return post_form(
        client,
        url,
        sheet_data(
            member_ids,
            ["present", "absent", "present"],
            note="half done",
            give=f"{participant_id}|{instrument}",
            **extra,
        ),
        form_page=url,
    )


def test_give_a_questionnaire_keeps_the_marks_and_comes_back(client, db, group, set_today, app):
    s4 = session_no(db, group["cycle"]["id"], 4)
    set_today(s4["scheduled_date"])
    login(client, "amina")
    m, people = group["members"], group["people"]
    url = f"/sessions/{s4['id']}"
    r = give_now(client, url, m, people[0]["id"], **{f"trend-{m[0]}": "better", f"rating-{m[2]}": "8"})
    assert r.status_code == 303
    assert r.headers["Location"].startswith(f"/screening/{people[0]['id']}/phq9?")
    assert f"session_id={s4['id']}" in r.headers["Location"]
    assert db["attendance"].count == 0  # nothing saved yet: a draft only
    form_page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert f'href="/sessions/{s4["id"]}">Back to the session sheet without saving this questionnaire' in form_page

    # Save the PHQ-9 (no risk) and follow the result page's way back.
    answers = {f"answer_q{i}": "1" for i in range(1, 9)} | {"answer_q9": "0", "answer_q10": "1"}
    saved = post_form(
        client,
        r.headers["Location"].split("?")[0],
        {
            **answers,
            "participant_id": people[0]["id"],
            "instrument_id": "phq9",
            "instrument_version": "1",
            "submission_key": re.search(r'name="submission_key" value="([^"]+)"', form_page).group(1),
            "occasion": "mid",
            "administered_on": s4["scheduled_date"],
            "cycle_id": group["cycle"]["id"],
            "session_id": s4["id"],
        },
        form_page=r.headers["Location"],
        follow_redirects=True,
    )
    result = saved.get_data(as_text=True)
    assert saved.status_code == 200, result
    assert f'href="/sessions/{s4["id"]}">Back to the session sheet</a>' in result

    sheet = client.get(url).get_data(as_text=True)
    assert "Your unsaved marks are back" in sheet
    assert [checked(sheet, x, "att") for x in m] == ["present", "absent", "present"]
    assert checked(sheet, m[0], "trend") == "better"
    assert ">half done</textarea>" in sheet and 'value="8"' in sheet
    assert re.search(r"<li>\s*<bdi>Agnes Auma</bdi>:\s*done", sheet)

    # Saving the sheet saves the marks and drops the draft.
    r = post_form(
        client, url, sheet_data(m, ["present", "absent", "present"], **{f"trend-{m[0]}": "better"}), form_page=url
    )
    assert r.status_code == 303
    assert db["attendance"].count == 3
    assert sessions.load_draft(db, s4["id"], users.get_user_by_username(db, "amina")["id"]) is None
    assert "Your unsaved marks are back" not in client.get(url).get_data(as_text=True)


def test_a_draft_can_be_discarded(client, db, group, set_today):
    s4 = session_no(db, group["cycle"]["id"], 4)
    set_today(s4["scheduled_date"])
    login(client, "amina")
    m, people = group["members"], group["people"]
    url = f"/sessions/{s4['id']}"
    give_now(client, url, m, people[1]["id"])
    r = post_form(client, f"{url}/draft/discard", {}, form_page=url, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Your unsaved marks were discarded" in page
    assert [checked(page, x, "att") for x in m] == ["present", "present", "present"]  # a new sheet's default
    assert db["session_drafts"].count == 0


def test_give_refuses_someone_or_something_not_due(client, db, group, set_today):
    s4 = session_no(db, group["cycle"]["id"], 4)
    set_today(s4["scheduled_date"])
    login(client, "amina")
    m, people = group["members"], group["people"]
    url = f"/sessions/{s4['id']}"
    assert give_now(client, url, m, people[0]["id"], instrument="gad7").status_code == 400
    assert give_now(client, url, m, "someone-else").status_code == 400
    assert post_form(client, url, sheet_data(m, ["present"] * 3, give="no-bar"), form_page=url).status_code == 400
    assert db["session_drafts"].count == 0
