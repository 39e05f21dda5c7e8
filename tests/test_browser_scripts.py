"""A facilitator reads a Swahili script page in a real browser."""

from __future__ import annotations

import pytest

from group_ipt.core import users

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD
from .i18n_walk import translations

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_browser_reads_swahili_script(app, db):
    users.set_language(db, users.get_user_by_username(db, "amina"), "sw")
    sw = translations("sw")
    script = app.extensions["group_ipt_forms"].scripts.script_for("who-8", 1)
    with browser_page(app, viewport=(390, 844)) as (page, base_url):
        log_in(page, base_url, "amina", PASSWORD)
        page.goto(f"{base_url}/scripts/who-8/1")
        assert page.locator("html").get_attribute("lang") == "sw"
        for english in ("Agenda", "Safety reminder", script.title, script.agenda[0].title):
            assert sw.get(english) and sw[english] != english, f"no Swahili for {english!r}"
        assert sw[script.title] in page.locator("h1").inner_text()
        assert page.get_by_role("heading", name=sw["Agenda"]).is_visible()
        assert page.get_by_role("heading", name=sw["Safety reminder"]).is_visible()
        assert sw[script.agenda[0].title] in page.locator(".step h3").first.inner_text()
        first_say = script.agenda[0].say[0]
        assert sw[first_say] in page.content()
        assert "Safety reminder" not in page.content()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # readable on a phone
        screenshot(page, "script-sw-phone")
