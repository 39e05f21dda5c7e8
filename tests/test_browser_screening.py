"""A real browser registers a person, screens them, sees the safety alert at once and acknowledges it."""

from __future__ import annotations

import pytest

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHQ9_ANSWERS = {"q1": 2, "q2": 2, "q3": 1, "q4": 2, "q5": 1, "q6": 1, "q7": 1, "q8": 0, "q9": 2, "q10": 1}


def test_browser_register_screen_alert_acknowledge(app, db):
    with browser_page(app) as (page, base_url):
        log_in(page, base_url, "amina", PASSWORD)
        page.get_by_role("link", name="Participants").click()
        page.get_by_role("link", name="Register a person").click()
        page.locator("#name").fill("مريم Namuli")
        page.get_by_label("female").check()
        page.locator("#age").fill("31")
        page.locator("#village").fill("Kawempe")
        page.locator("#consent_screening").check()
        page.get_by_role("button", name="Register").click()
        page.wait_for_load_state()
        code = db.execute("select code from participants").fetchone()[0]
        assert code in page.content()

        page.get_by_role("link", name="PHQ-9 (depression symptoms)").click()
        page.wait_for_load_state()
        warning = page.locator("#risk-warning")
        assert warning.is_hidden()
        for item, value in PHQ9_ANSWERS.items():
            if item != "q9":
                page.locator(f"#a-{item}-{value}").check()
        # Keyboard: focus question 9's first answer and move with the arrow keys, as a radio group does.
        page.locator("#a-q9-0").focus()
        page.keyboard.press("Space")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert page.locator("#a-q9-2").is_checked()
        assert warning.is_visible()  # the early warning, before the form is sent
        screenshot(page, "screening-form-risk-warning")
        page.get_by_role("button", name="Save the answers").click()
        page.wait_for_load_state()

        alert = page.locator(".safety-alert").first
        assert alert.is_visible()
        # Question 9 answered 2 ("more than half of the days") is urgent: the urgent steps and the numbers.
        assert "Do not leave the person alone." in alert.inner_text()
        assert "Emergency and referral numbers" in alert.inner_text()
        assert page.locator("span.total").inner_text() == "12"
        screenshot(page, "screening-result-alert")
        page.get_by_role("button", name="I have read the steps: acknowledge").click()
        page.wait_for_load_state()
        assert "Acknowledged by Amina Nakato" in page.content()

        page.get_by_role("link", name="Home").click()
        page.wait_for_load_state()
        panel = page.locator(".referrals-panel")
        assert panel.is_visible() and code in panel.inner_text()
        assert page.locator(".safety-alert").count() == 0
        screenshot(page, "home-open-referral")

    referral = db.execute("select status, acknowledged_by from referrals").fetchone()
    assert referral[0] == "open" and referral[1] is not None


def test_browser_screening_without_javascript_still_alerts(app, db):
    from group_ipt.core import participants, users

    participants.register(
        db,
        site=users.get_site(db, "KMP"),
        actor=users.get_user_by_username(db, "amina"),
        consents=["screening"],
        name="Ann Apio",
        sex="female",
        age="40",
        village="Nansana",
    )
    pid = db.execute("select id from participants").fetchone()[0]
    with browser_page(app) as (page, base_url):
        page.context.set_offline(False)
        page.route("**/*.js", lambda route: route.abort())
        log_in(page, base_url, "amina", PASSWORD)
        page.goto(f"{base_url}/screening/{pid}/phq9")
        page.locator("#a-q9-1").check()
        assert page.locator("#risk-warning").is_hidden()  # no script: the server must do it
        page.get_by_role("button", name="Save the answers").click()
        page.wait_for_load_state()
        assert page.locator(".safety-alert").first.is_visible()
        assert "Safety alert" in page.locator(".safety-alert").first.inner_text()


def test_browser_blank_question_9_is_asked_later_in_one_click(app, db):
    """PHQ-9 with question 9 left blank: no total, a red alert and "Ask it now"; answering scores it in full."""
    from .screening_helpers import register

    person = register(db, "Joan Akello")
    with browser_page(app, viewport=(360, 740)) as (page, base_url):
        log_in(page, base_url, "amina", PASSWORD)
        page.goto(f"{base_url}/screening/{person['id']}/phq9")
        for n in range(1, 9):
            page.locator(f"#a-q{n}-3").check()
        page.get_by_role("button", name="Save the answers").click()
        page.wait_for_load_state()
        alert = page.locator("#risk-not-asked")
        assert alert.is_visible() and "risk of self-harm is unknown" in alert.inner_text()
        assert "Eligible for a group" not in page.content()
        screenshot(page, "screening-question-9-not-asked")
        page.get_by_role("link", name="Home").click()
        page.wait_for_load_state()
        assert "safety question not asked" in page.locator(".safety-alert").inner_text()
        page.locator(".safety-alert a").first.click()
        page.wait_for_load_state()
        page.locator("#a-q9-0").check()
        screenshot(page, "screening-ask-question-9-now")
        page.get_by_role("button", name="Save the answer").click()
        page.wait_for_load_state()
        assert "Eligible for a group." in page.content()
        assert page.locator("span.total").inner_text() == "24"
        page.get_by_role("link", name="Home").click()
        page.wait_for_load_state()
        assert page.locator(".safety-alert").count() == 0
    assert db.execute("select status from risk_checks").fetchone()[0] == "answered"
