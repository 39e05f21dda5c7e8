"""A facilitator's day in a real browser: a whole session by touch on a 360 px phone, then by
keyboard at 1366 px with a PHQ-9 given from inside the session (items 1-4 of issue 19)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from group_ipt.core import cycles, users

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD, add_participant
from .test_cycles import make_cycle, session_no

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAMES = [
    "Agnes Auma",
    "Betty Birungi",
    "Carol Cherop",
    "Dora Draru",
    "Esther Ejang",
    "Faith Fualu",
    "Gloria Gumisiriza",
    "Hadijah Hasasha",
    "Irene Ikiror",
    "Joy Jjuuko",
]


@pytest.fixture
def ten_member_cycle(db, protocols):
    cycle = make_cycle(db, protocols)
    people = [add_participant(db, name=n) for n in NAMES]
    members = {
        p["name"]: cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"] for p in people
    }
    return cycle, members


def watch(page, base_url):
    """Collect console errors and any request that leaves the app."""
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("request", lambda r: None if r.url.startswith((base_url, "data:")) else problems.append(r.url))
    return problems


def tap_choice(page, label: str) -> None:
    """Tap the visible button of a radio input found by its label (e.g. "absent, Betty Birungi")."""
    choice = page.get_by_label(label, exact=True)
    page.locator(f"label[for='{choice.get_attribute('id')}']").tap()


def test_browser_record_a_whole_session_by_touch_at_360px(app, db, ten_member_cycle, set_today):
    cycle, members = ten_member_cycle
    s1 = session_no(db, cycle["id"], 1)
    set_today(s1["scheduled_date"])
    with browser_page(app, viewport=(360, 740), touch=True) as (page, base_url):
        problems = watch(page, base_url)
        log_in(page, base_url, "amina", PASSWORD)
        page.goto(f"{base_url}/sessions/today")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert page.locator(".topbar").bounding_box()["height"] <= 100
        cards = page.locator("li.sheet-row")
        assert cards.count() == 10
        for i in range(10):  # each card: the name on top, its controls inside the screen
            box = cards.nth(i).bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 360
        # Betty: "better" chosen, then marked absent: her symptom answers go away, and the card says so.
        tap_choice(page, "better, Betty Birungi")
        tap_choice(page, "absent, Betty Birungi")
        betty = cards.filter(has_text="Betty Birungi")
        assert betty.get_by_text("Not present: no symptom check is stored.").is_visible()
        assert not page.get_by_label("better, Betty Birungi").locator("xpath=..").is_visible()
        # Agnes: "worse" chosen by mistake, back to "not asked".
        tap_choice(page, "worse, Agnes Auma")
        tap_choice(page, "not asked, Agnes Auma")
        assert page.get_by_label("not asked, Agnes Auma", exact=True).is_checked()
        tap_choice(page, "excused, Dora Draru")
        tap_choice(page, "same, Carol Cherop")
        for name in NAMES[4:]:
            tap_choice(page, f"better, {name}")
        rating = page.get_by_label("Mood 0-10, Carol Cherop")
        rating.tap()
        page.keyboard.type("7")
        shot = screenshot(page, "field-day-sheet-360-touch")
        assert shot.stat().st_size > 20000
        page.get_by_role("button", name="Save the session").tap()
        page.wait_for_load_state()
        statuses = page.get_by_role("status")
        assert "Session saved" in statuses.first.inner_text()
        assert (
            "No symptom check was stored for members not marked present: Betty Birungi."
            in page.locator("main").inner_text()
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # The cycle page's actions are on the screen, not in a sideways-scrolling table.
        edit = page.locator("tr.session-row[data-number='1']").get_by_role("link", name="Edit")
        box = edit.bounding_box()
        assert box["x"] + box["width"] <= 360
        screenshot(page, "field-day-cycle-page-360")

        checks = {r["member_id"]: (r["trend"], r["rating"]) for r in db.query("select * from symptom_checks")}
        assert members["Betty Birungi"] not in checks and members["Agnes Auma"] not in checks
        assert checks[members["Carol Cherop"]] == ("same", 7)
        assert len(checks) == 7
        att = {r["member_id"]: r["status"] for r in db.query("select * from attendance")}
        assert att[members["Betty Birungi"]] == "absent" and att[members["Dora Draru"]] == "excused"

        # Reopening shows exactly what was saved.
        edit.tap()
        page.wait_for_load_state()
        assert page.get_by_label("absent, Betty Birungi", exact=True).is_checked()
        assert page.get_by_label("not asked, Agnes Auma", exact=True).is_checked()
        assert page.get_by_label("Mood 0-10, Carol Cherop").input_value() == "7"
        assert problems == []


def test_browser_keyboard_enter_never_saves_and_phq9_comes_back_at_1366(app, db, ten_member_cycle, set_today):
    cycle, members = ten_member_cycle
    s4 = session_no(db, cycle["id"], 4)  # who-8 gives the PHQ-9 at session 4
    set_today(s4["scheduled_date"])
    with browser_page(app) as (page, base_url):
        problems = watch(page, base_url)
        log_in(page, base_url, "amina", PASSWORD)
        page.goto(f"{base_url}/sessions/{s4['id']}")
        rating = page.get_by_label("Mood 0-10, Agnes Auma")
        rating.focus()
        page.keyboard.type("5")
        page.keyboard.press("Enter")  # moves on, never saves
        assert page.url == f"{base_url}/sessions/{s4['id']}"
        assert db["attendance"].count == 0
        focused = page.evaluate("document.activeElement.id")
        assert focused and focused != f"rating-{members['Agnes Auma']}"
        page.get_by_label("absent, Joy Jjuuko", exact=True).focus()
        page.keyboard.press("Space")
        page.keyboard.press("Enter")
        assert db["attendance"].count == 0 and page.url.endswith(s4["id"])
        page.get_by_role("textbox", name="Session note (optional)").fill("PHQ-9 for Agnes halfway")

        # Give the PHQ-9 to Agnes from the sheet, by keyboard.
        page.get_by_role("button", name=re.compile(r"^give it now\W+Agnes Auma$")).focus()
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/screening/" in page.url
        assert page.get_by_role("link", name="Back to the session sheet without saving this questionnaire").is_visible()
        for item in page.locator("li.item").all()[:9]:
            item.get_by_label("Not at all").check()
        page.locator("li.item").nth(9).get_by_label("Not hard at all").check()
        page.get_by_role("button", name="Save").last.click()
        page.wait_for_load_state()
        assert "/screening/result/" in page.url
        screenshot(page, "field-day-phq9-result-1366")
        page.get_by_role("link", name="Back to the session sheet").click()
        page.wait_for_load_state()
        assert page.url == f"{base_url}/sessions/{s4['id']}"
        assert page.get_by_role("heading", name="Your unsaved marks are back").is_visible()
        assert page.get_by_label("Mood 0-10, Agnes Auma").input_value() == "5"
        assert page.get_by_label("absent, Joy Jjuuko", exact=True).is_checked()
        assert page.get_by_role("textbox", name="Session note (optional)").input_value() == "PHQ-9 for Agnes halfway"
        due = page.locator("section").filter(has_text="Questionnaires due today")
        assert "Agnes Auma: done" in " ".join(due.inner_text().split())
        screenshot(page, "field-day-sheet-back-1366")
        page.get_by_role("button", name="Save the session").click()
        page.wait_for_load_state()
        assert "Session saved" in page.get_by_role("status").first.inner_text()
        assert db["attendance"].count == 10
        assert (
            db.execute("select rating from symptom_checks where member_id = ?", (members["Agnes Auma"],)).fetchone()[0]
            == 5
        )
        assert db["session_drafts"].count == 0
        assert users.get_user_by_username(db, "amina") is not None
        assert problems == []


@pytest.mark.parametrize(("username", "lang"), [("coord", "en"), ("amina", "sw")])
def test_browser_every_page_fits_a_360px_phone(tmp_path, username, lang):
    """Every page of the URL map, on the demo programme: no sideways scrolling, a small header."""
    from group_ipt.demo import programme as demo
    from group_ipt.store import db as dbmod

    from .conftest import make_app
    from .test_i18n_pages import ARGUMENTS, html_pages

    app = make_app(tmp_path / "data")
    db = dbmod.connect(app.config["DATABASE"])
    with app.app_context():
        demo.load_demo(db, app)
    app.config["DEMO_URL_VALUES"] = {
        name: (db.execute(value).fetchone() or [None])[0]
        if isinstance(value, str) and value.startswith("select")
        else value
        for name, value in ARGUMENTS.items()
    }
    db.close()
    pages = html_pages(app)
    assert len(pages) >= 20
    wide = {}
    with browser_page(app, viewport=(360, 740), touch=True) as (page, base_url):
        log_in(page, base_url, username, demo.DEMO_PASSWORD)
        page.goto(f"{base_url}/account/")
        page.select_option("#account-lang", lang)
        with page.expect_navigation():
            page.locator("main form[action='/account/language'] button[type=submit]").tap()
        assert page.locator("html").get_attribute("lang") == lang
        for url in pages:
            page.goto(base_url + url)
            width = page.evaluate("document.documentElement.scrollWidth")
            header = page.locator(".topbar").bounding_box()["height"]
            if width > 360 or header > 100:
                wide[url] = (width, header)
        screenshot(page, f"field-day-last-page-360-{lang}")
    assert wide == {}, wide
