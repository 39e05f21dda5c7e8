"""The reports page in a real browser: figures, charts and a link to the records behind a figure."""

from __future__ import annotations

import pytest

from .browser import browser_page, log_in, screenshot
from .conftest import PASSWORD
from .report_data import build

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_reports_page_in_the_browser(app, db, protocols, set_today):
    set_today("2026-04-20")
    build(db, protocols)
    with browser_page(app) as (page, base):
        log_in(page, base, "coord", PASSWORD)
        page.goto(f"{base}/reports/?period=2026-01-01..2026-06-30")
        assert page.locator("svg.chart").count() == 3
        screenshot(page, "reports-index")
        page.locator("#indicator-completion_rate td.figure a").click()
        page.wait_for_load_state()
        assert "Completion rate" in page.locator("h1").inner_text()
        assert page.locator("tbody tr").count() == 6
        screenshot(page, "reports-records")
