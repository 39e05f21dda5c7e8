"""A real browser: create a cycle, enrol members, take attendance, see an absentee on the follow-up list."""

from __future__ import annotations

import pytest

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD, add_participant

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()


def take_session(page, number: int, absent: str):
    row = page.locator(f"tr.session-row[data-number='{number}']").filter(has_text="session")
    row.get_by_role("link", name="Take attendance").click()
    page.wait_for_load_state()
    sheet_row = page.locator("li.sheet-row").filter(has_text=absent)
    sheet_row.locator("label", has_text="absent").click()
    agnes = page.locator("li.sheet-row").filter(has_text="Agnes Auma")
    agnes.locator("label", has_text="better").click()
    agnes.get_by_label("Mood 0-10").fill("7")
    return page


def test_browser_cycle_attendance_and_follow_up(app, db, set_today):
    set_today("2026-02-20")
    for name in ("Agnes Auma", "Betty Birungi", "Carol Cherop"):
        add_participant(db, name=name, phone="0772 123456" if name.startswith("Betty") else None, village="Kawempe")
    with browser_page(app) as (page, base_url):
        log_in(page, base_url, "coord", PASSWORD)
        page.get_by_role("link", name="Cycles", exact=True).click()
        page.get_by_role("link", name="New cycle").click()
        page.select_option("#site_id", label="Kampala North (KMP)")  # two sites: the site comes first
        page.get_by_role("button", name="Next").click()
        page.wait_for_load_state()
        page.select_option("#protocol_id", value="who-8")
        page.select_option("#group_type", value="women")
        page.select_option("#facilitator_1", label="Amina Nakato (facilitator)")
        page.fill("#venue", "St. Jude church hall")
        page.fill("#first_date", "2026-03-02")
        page.fill("#start_time", "14:00")
        page.get_by_role("button", name="Create the cycle").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Cycle KMP-C001").is_visible()
        assert page.locator("tr.session-row").count() == 9

        page.get_by_role("link", name="Enrol members").click()
        for name in ("Agnes Auma", "Betty Birungi", "Carol Cherop"):
            page.get_by_label(name).check()
        page.get_by_role("button", name="Enrol").click()
        page.wait_for_load_state()
        assert "3 people enrolled in KMP-C001." in page.get_by_role("status").first.inner_text()
        assert page.locator("tr.member-row").count() == 3
        screenshot(page, "cycles-page-coordinator")
        log_out(page)

        set_today("2026-03-09")
        log_in(page, base_url, "amina", PASSWORD)
        assert page.get_by_role("heading", name="My next session").is_visible()
        page.get_by_role("link", name="Cycle page").click()
        take_session(page, 1, "Betty Birungi")
        screenshot(page, "cycles-take-session")
        page.get_by_role("button", name="Save the session").click()
        page.wait_for_load_state()
        assert "Session saved" in page.get_by_role("status").first.inner_text()
        assert "2 of 3 (67%)" in page.locator("tr.session-row[data-number='1']").inner_text()

        set_today("2026-03-16")
        page.reload()
        take_session(page, 2, "Betty Birungi")
        page.get_by_role("button", name="Save the session").click()
        page.wait_for_load_state()

        followups = page.locator("#followups")
        assert "Betty Birungi" in followups.inner_text()
        assert "0772 123456" in followups.inner_text()
        page.goto(f"{base_url}/cycles/followups")
        assert page.locator("table.followups").filter(has_text="Betty Birungi").is_visible()
        assert "Agnes Auma" not in page.locator("table.followups").inner_text()
        shot = screenshot(page, "cycles-follow-up-list")
        assert shot.stat().st_size > 5000
