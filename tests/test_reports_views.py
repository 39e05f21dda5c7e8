"""The reports page: figures, links to the records behind them, filters, site scope, CSV downloads."""

from __future__ import annotations

import csv
import io
import re

import pytest

from group_ipt.core import users

from .conftest import FAST_HASH, PASSWORD, login
from .report_data import build

HALF = {"period": "2026-01-01..2026-06-30"}


@pytest.fixture
def programme(db, protocols, set_today):
    set_today("2026-04-20")
    kmp = users.get_site(db, "KMP")
    users.create_user(
        db, "sup", PASSWORD, "supervisor", display_name="Sam Supervisor", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    return build(db, protocols)


def page(client, path, **params):
    response = client.get(path, query_string=params)
    return response, response.get_data(as_text=True)


def read_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def figure(html: str, indicator_id: str) -> str:
    match = re.search(
        rf'<tr id="indicator-{indicator_id}">.*?<td class="figure"><a href="([^"]+)">([^<]+)</a>', html, re.S
    )
    assert match, indicator_id
    return match.group(2).strip()


def test_page_shows_figures_definitions_and_links(client, programme):
    login(client, "coord")
    response, html = page(client, "/reports/", **HALF)
    assert response.status_code == 200
    assert figure(html, "screened") == "8"  # both of Ruth's sites
    assert figure(html, "enrolled") == "7"
    assert figure(html, "completion_rate") == "66.7%"
    assert figure(html, "everyone_change_mean") == "-8"
    assert "People with at least one screening questionnaire" in html  # the one-line definition
    assert '/reports/records/completion_rate?period=2026-01-01..2026-06-30"' in html
    assert "/reports/records/attendance_rate?part=5&amp;period=" in html
    assert html.count("<svg") == 3 and "Attendance by session number" in html
    assert "http://" not in html and "https://" not in html


def test_records_behind_a_figure(client, programme):
    login(client, "coord")
    response, html = page(client, "/reports/records/referrals_overdue", **HALF)
    assert response.status_code == 200
    assert "Gina Test" in html and "Dora Test" not in html
    response, html = page(client, "/reports/records/dropout_rate", part="2", **HALF)
    assert "Dora Test" in html and "Esther Test" not in html
    assert page(client, "/reports/records/nope", **HALF)[0].status_code == 404
    assert page(client, "/reports/records/screened", part="x", **HALF)[0].status_code == 404


def test_filters(client, programme, db):
    login(client, "coord")
    amina = users.get_user_by_username(db, "amina")["id"]
    _, html = page(client, "/reports/", site="KMP", facilitator=amina, **HALF)
    assert (figure(html, "enrolled"), figure(html, "cycles_started")) == ("5", "1")
    assert "Not filtered by: protocol" not in html
    _, html = page(client, "/reports/", protocol="who-8", **HALF)
    assert figure(html, "enrolled") == "0"
    assert "Not filtered by: protocol." in html
    _, html = page(client, "/reports/", group_type="mixed", **{"from": "2026-04-01", "to": "2026-04-30"})
    assert figure(html, "cycles_closed_early") == "1"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "2026Q7"}, "Unknown period 2026Q7"),
        ({"from": "2026-04-01"}, "Give both dates"),
        ({"group_type": "giants"}, "Choose a group type"),
        ({"protocol": "nope"}, "Choose a protocol"),
    ],
)
def test_bad_filters_answer_400_with_a_message(client, programme, params, message):
    login(client, "coord")
    response, html = page(client, "/reports/", **params)
    assert response.status_code == 400
    assert message in html


def test_site_scope(client, programme, db):
    login(client, "sup")  # a supervisor of KMP only
    _, html = page(client, "/reports/", **HALF)
    assert figure(html, "screened") == "7"
    assert page(client, "/reports/", site="MSK", **HALF)[0].status_code == 404
    rows = read_csv(client.get("/reports/export/tables/participants.csv"))
    assert {r[rows[0].index("site_id")] for r in rows[1:]} == {users.get_site(db, "KMP")["id"]}
    assert client.get("/reports/export/tables/participants.csv?site=MSK").status_code == 404


def test_facilitators_cannot_see_reports(client, programme, app):
    login(client, "amina")
    assert client.get("/reports/").status_code == 403
    assert client.get("/reports/export/tables/participants.csv").status_code == 403
    assert 'href="/reports/"' not in client.get("/").get_data(as_text=True)
    other = app.test_client()
    login(other, "coord")
    assert 'href="/reports/"' in other.get("/").get_data(as_text=True)


def test_csv_downloads(client, programme):
    login(client, "coord")
    response = client.get("/reports/export/indicators.csv", query_string=HALF)
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    header = rows[0]
    by_id = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    assert by_id["completion_rate"]["value"] == "0.6667"
    assert (by_id["completion_rate"]["numerator"], by_id["completion_rate"]["denominator"]) == ("4", "6")
    assert by_id["referrals.exclusion_psychosis"]["value"] == "1"
    assert by_id["screened"]["period"] == "2026-01-01..2026-06-30"

    records = read_csv(client.get("/reports/export/records/enrolled.csv", query_string=HALF))
    assert records[0] == ["Code", "Site", "Cycle", "Enrolled on", "Status"]  # no names: EXPORT_NAMES is off
    assert len(records) == 1 + 7
    participants = read_csv(client.get("/reports/export/tables/participants.csv"))
    cols = participants[0]
    assert "name_key" not in cols
    assert all(
        r[cols.index("name")] == r[cols.index("code")] and r[cols.index("phone")] == "" for r in participants[1:]
    )
    assert client.get("/reports/export/tables/audit_log.csv").status_code == 404


def test_csv_with_names_when_the_setting_allows(client, programme, app):
    app.config["EXPORT_NAMES"] = True
    login(client, "coord")
    records = read_csv(client.get("/reports/export/records/referrals_overdue.csv", query_string=HALF))
    assert records[0][:2] == ["Code", "Name"] and records[1][1] == "Gina Test"
    participants = read_csv(client.get("/reports/export/tables/participants.csv"))
    assert "Gina Test" in {r[participants[0].index("name")] for r in participants[1:]}
