"""A real browser logs in, switches to French and sees French text."""

from __future__ import annotations

import pytest

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_browser_login_and_switch_to_french(app):
    with browser_page(app) as (page, base_url):
        log_in(page, base_url, "amina", PASSWORD)
        assert "Welcome, Amina Nakato" in page.content()
        page.select_option("#topbar-lang", "fr")
        page.locator("#topbar-lang ~ button").click()
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.get_by_role("heading", name="Bienvenue, Amina Nakato").is_visible()
        assert page.get_by_role("link", name="Mon compte").is_visible()
        shot = screenshot(page, "foundation-home-fr")
        assert shot.stat().st_size > 5000


def test_browser_wrong_password_message(app):
    with browser_page(app) as (page, base_url):
        log_in(page, base_url, "amina", "not-the-password")
        assert page.get_by_role("alert").inner_text() == "Wrong username or password."
        assert page.url.startswith(f"{base_url}/login")


def test_browser_phone_layout_has_no_horizontal_scroll(app):
    with browser_page(app, viewport=(390, 844)) as (page, base_url):
        log_in(page, base_url, "amina", PASSWORD)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        screenshot(page, "foundation-home-phone")
