"""Every page, walked from the URL map on the demo programme, shows no English UI string in fr, sw or lg."""

from __future__ import annotations

import pytest

from group_ipt.base.settings import REPO_DIR
from group_ipt.demo import programme as demo
from group_ipt.store import db as dbmod
from group_ipt.web.i18n import load_languages

from .conftest import make_app
from .i18n_walk import untranslated

LANGUAGES = [code for code in load_languages(REPO_DIR / "translations") if code != "en"]

# How to fill a URL argument from the demo data: a query returning one id, or a fixed value.
ARGUMENTS = {
    "participant_id": "select id from participants where status = 'enrolled' limit 1",
    "cycle_id": "select id from cycles where status = 'active' limit 1",
    "session_id": "select id from sessions where status = 'held' and number > 0 limit 1",
    "sid": "select id from sessions where status = 'held' and number > 0 limit 1",
    "member_id": "select id from members where status = 'active' limit 1",
    "mid": "select id from members where status = 'active' limit 1",
    "referral_id": "select id from referrals limit 1",
    "screening_id": "select id from screenings where risk = 1 limit 1",
    "user_id": "select id from users where username = 'amina'",
    "instrument_id": "phq9",
    "protocol_id": "who-8",
    "number": 2,
    "code": "KMP",
}


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("demo") / "data")
    db = dbmod.connect(app.config["DATABASE"])
    with app.app_context():
        demo.load_demo(db, app)
    values = {}
    for name, value in ARGUMENTS.items():
        if isinstance(value, str) and value.startswith("select"):
            found = db.execute(value).fetchone()
            values[name] = found[0] if found else None
        else:
            values[name] = value
    db.close()
    app.config["DEMO_URL_VALUES"] = values
    return app


def html_pages(app) -> list[str]:
    values = app.config["DEMO_URL_VALUES"]
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static" or rule.rule.startswith("/api/"):
            continue
        if any(rule.rule.endswith(ext) for ext in (".pdf", ".ics", ".csv", ".json")):
            continue
        if not all(values.get(arg) is not None for arg in rule.arguments):
            continue
        urls.append(rule.build({arg: values[arg] for arg in rule.arguments}, append_unknown=False)[1])
    return sorted(set(urls))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_fully_translated(demo_app, lang):
    client = demo_app.test_client()
    token_page = client.get("/login").get_data(as_text=True)
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', token_page).group(1)
    client.post("/login", data={"username": "admin", "password": demo.DEMO_PASSWORD, "csrf_token": token})
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/account/").get_data(as_text=True)).group(1)
    client.post("/account/language", data={"lang": lang, "csrf_token": token})
    pages = html_pages(demo_app)
    assert len(pages) >= 20, pages
    problems = {}
    for url in pages:
        response = client.get(url)
        assert response.status_code < 500, url
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        assert f'<html lang="{lang}"' in html, url
        missing = untranslated(html, lang)
        if missing:
            problems[url] = missing
    assert not problems, f"{lang}: English UI strings shown: {problems}"


def test_every_field_has_a_visible_label(demo_app):
    from .i18n_walk import unlabelled_fields

    client = demo_app.test_client()
    import re

    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin", "password": demo.DEMO_PASSWORD, "csrf_token": token})
    problems = {}
    login_page = unlabelled_fields(demo_app.test_client().get("/login").get_data(as_text=True))
    if login_page:
        problems["/login"] = login_page
    for url in html_pages(demo_app):
        response = client.get(url)
        if response.status_code == 200 and response.mimetype == "text/html":
            missing = unlabelled_fields(response.get_data(as_text=True))
            if missing:
                problems[url] = missing
    assert not problems, problems
