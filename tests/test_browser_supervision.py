"""A real browser: a supervisor rates an observed session and sees the adherence on the supervision page."""

from __future__ import annotations

from datetime import date

import pytest

from group_ipt.core import cycles, sessions, supervision, users
from group_ipt.core.sessions import SessionEntry

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD, add_participant
from .test_cycles import make_cycle, session_no

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_browser_supervisor_rates_an_observed_session(app, db, protocols, supervisor, set_today):
    set_today("2026-03-17")
    amina = users.get_user_by_username(db, "amina")
    cycle = make_cycle(db, protocols)
    member_id = cycles.enrol(
        db, cycle["id"], add_participant(db, name="Agnes Auma")["id"], actor=None, today=date(2026, 2, 20)
    )[0]["id"]
    for number in (0, 1, 2):
        s = session_no(db, cycle["id"], number)
        sessions.record_session(
            db,
            s["id"],
            SessionEntry({member_id: "present"}, fidelity={"started_on_time": True}),
            expected_version=0,
            protocols=protocols,
            actor=amina,
            today=date(2026, 3, 17),
        )
    with browser_page(app) as (page, base_url):
        log_in(page, base_url, "sam", PASSWORD)
        page.get_by_role("link", name="Supervision", exact=True).click()
        page.wait_for_load_state()
        card = page.locator("section.facilitator-card").filter(has_text="Amina Nakato")
        assert card.locator("li.unrated-row").count() == 2
        first = card.locator("li.unrated-row").filter(has_text="session 1")
        first.get_by_role("link", name="Rate this session").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Rate an observed session").is_visible()
        items = page.locator("li.rating-item")
        assert items.count() == 10  # the 8 general items and the 2 of the initial phase
        # Seven items observed, one left "not observed", the two initial-phase items not applicable:
        # saved as incomplete, no score.
        for i in range(7):
            items.nth(i).locator("label", has_text="Done well").click()
        for i in (8, 9):
            items.nth(i).locator("label", has_text="Not applicable in this session").click()
        page.fill("#observed_on", "2026-03-09")
        page.fill("#note", "Warm and on time.")
        page.get_by_role("button", name="Save the rating").click()
        page.wait_for_load_state()
        assert "Rating saved as incomplete: 1 item is blank" in page.get_by_role("status").first.inner_text()
        assert page.locator("tr.rating-row.incomplete").count() == 1

        # Back to the form: fill the last item; now it scores.
        page.get_by_role("link", name="Edit").first.click()
        page.wait_for_load_state()
        page.locator("li.rating-item").nth(7).locator("label", has_text="Done partly or poorly").click()
        page.get_by_role("button", name="Save the rating").click()
        page.wait_for_load_state()
        assert "Rating saved: adherence 91.7%." in page.get_by_role("status").first.inner_text()
        row = page.locator("tr.rating-row").first
        assert "91.7%" in row.inner_text() and "12.5%" in row.inner_text()  # beside the self-rated checklist

        page.get_by_role("link", name="Supervision", exact=True).click()
        page.wait_for_load_state()
        card = page.locator("section.facilitator-card").filter(has_text="Amina Nakato")
        assert "Latest adherence: 91.7%" in card.inner_text()
        assert card.locator("svg.chart").count() == 1
        assert card.locator("li.unrated-row").count() == 1
        screenshot(page, "supervision-page-supervisor")
    saved = supervision.get_rating(db, session_no(db, cycle["id"], 1)["id"], supervisor["id"])
    assert (saved["complete"], saved["percent"], saved["note"]) == (1, 91.7, "Warm and on time.")
