"""Bad input on every HTML form and every JSON endpoint: never a 500 or a traceback, nothing written on a refusal.

The routes are walked from the URL map (a new form is fuzzed without touching this file).
URL arguments get real ids of the demo programme, so the forms are reached, not only 404s;
the fields are the names used by the templates plus random junk, with a valid CSRF token.
Kept small (a few examples per route) so the whole file runs in well under a minute.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from group_ipt.base.settings import REPO_DIR
from group_ipt.core import users
from group_ipt.demo import programme as demo
from group_ipt.store import db as dbmod

from .conftest import CSRF_RE, FAST_HASH, PASSWORD, login, make_app

TEMPLATES = REPO_DIR / "group_ipt" / "web" / "templates"
FIELD_NAMES = sorted(
    {n for p in TEMPLATES.rglob("*.html") for n in re.findall(r'name="([a-z_0-9]+)"', p.read_text(encoding="utf-8"))}
    - {"csrf_token"}
)
NASTY = [
    "",
    "0",
    "-1",
    "1",
    "99999999999999999999",
    "2026-02-30",
    "2026-03-02",
    "31/12/2026",
    "25:99",
    "10:00",
    "present",
    "absent",
    "female",
    "phq9",
    "who-8",
    "null",
    "<script>alert(1)</script>",
    "' or 1=1 --",
    "\x00",
    "\u202e\u0645",
    "x" * 5000,
    "NaN",
    "1e309",
    "true",
]
VALUES = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
FORMS = st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=10)), VALUES, max_size=8)
SETTINGS = settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ARG_SQL = {
    "participant_id": "select id from participants",
    "flag_id": "select id from duplicate_flags",
    "referral_id": "select id from referrals",
    "followup_id": "select id from referral_followups",
    "cycle_id": "select id from cycles",
    "session_id": "select id from sessions",
    "member_id": "select id from members",
    "holiday_id": "select id from site_holidays",
    "assignment_id": "select id from supervisor_facilitators",
    "entry_id": "select id from timeline_events",
    "code": "select code from sites",
}
ARG_CONST = {"instrument_id": "phq9", "kind": "timeline", "conflict_id": 1, "item_id": 1}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("fuzz") / "data")
    db = dbmod.connect(app.config["DATABASE"])
    kmp = users.create_site(db, "KMP", "Kampala North", "en")
    msk = users.create_site(db, "MSK", "Masaka Rural", "sw")
    users.create_user(db, "coord", PASSWORD, "coordinator", site_ids=[kmp["id"], msk["id"]], hash_method=FAST_HASH)
    users.create_user(db, "amina", PASSWORD, "facilitator", site_ids=[kmp["id"]], hash_method=FAST_HASH)
    with app.app_context():
        demo.load_demo(db, app)
    db.close()
    return app


def url_for_rule(app, rule) -> str | None:
    db = dbmod.connect(app.config["DATABASE"])
    try:
        values = {}
        for arg in rule.arguments:
            if arg in ARG_CONST:
                values[arg] = ARG_CONST[arg]
            elif arg in ARG_SQL:
                found = db.execute(ARG_SQL[arg] + " limit 1").fetchone()
                values[arg] = found[0] if found else "missing"
            else:
                return None
        return rule.build(values, append_unknown=False)[1]
    finally:
        db.close()


def html_rules(app):
    return [
        r
        for r in app.url_map.iter_rules()
        if "POST" in r.methods and not r.rule.startswith("/api/") and r.endpoint not in ("auth.login", "auth.logout")
    ]


def writes(path) -> tuple:
    """What a write would change: the change log, the audit log (not its access lines) and the settings."""
    conn = sqlite3.connect(str(path))
    try:
        return tuple(
            conn.execute(sql).fetchone()[0]
            for sql in (
                "select coalesce(max(seq), 0) from sync_log",
                "select count(*) from audit_log where action != 'view'",  # reading a clinical record is logged
                "select count(*) || group_concat(value) from settings",
            )
        )
    finally:
        conn.close()


def check(response, before, after) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code < 500, (response.status_code, body[:300])
    assert "Traceback" not in body
    if response.status_code >= 400:
        assert before == after, f"refused with {response.status_code} but wrote"


@pytest.mark.slow  # every form of the app, fuzzed, for two roles
@pytest.mark.parametrize("username", ["coord", "amina"])
def test_every_html_form_survives_bad_input(fuzz_app, username):
    client = fuzz_app.test_client()
    assert login(client, username).status_code == 302
    token = CSRF_RE.search(client.get("/account/").get_data(as_text=True)).group(1)
    database = fuzz_app.config["DATABASE"]
    rules = html_rules(fuzz_app)
    assert len(rules) > 30

    for rule in rules:
        url = url_for_rule(fuzz_app, rule)
        if url is None:
            continue

        @SETTINGS
        @given(form=FORMS)
        def post(form):
            before = writes(database)
            response = client.post(url, data={**form, "csrf_token": token})
            check(response, before, writes(database))

        post()


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    from .syncing import add_device, make_central

    app = make_central(tmp_path_factory.mktemp("fuzz-central") / "central")
    _device, token = add_device(app, "fuzz-laptop")
    return app, token


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
API_KEYS = [
    "batch_no",
    "node",
    "records",
    "table",
    "id",
    "site_id",
    "hlc",
    "base",
    "data",
    "deleted",
    "cursor",
    "name",
    "sex",
    "age",
    "village",
    "phone",
    "language",
    "consents",
    "status",
    "answers",
    "instrument_id",
    "participant_id",
    "attendance",
    "member_id",
    "session_id",
    "urgency",
    "reason",
    "expected_version",
]
API_BODIES = st.one_of(JSON, st.dictionaries(st.sampled_from(API_KEYS), JSON, max_size=6))


def test_every_json_endpoint_survives_bad_input(central):
    app, token = central
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    database = app.config["DATABASE"]
    rules = [
        r for r in app.url_map.iter_rules() if r.rule.startswith("/api/") and r.methods & {"POST", "PATCH", "DELETE"}
    ]
    assert len(rules) >= 8
    for rule in rules:
        values = {a: {"resource": "participants"}.get(a, "no-such-id") for a in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods & {"POST", "PATCH", "DELETE"}):

            @SETTINGS
            @given(body=API_BODIES, raw=st.booleans())
            def send(body, raw):
                import json

                before = writes(database)
                data = json.dumps(body).encode()[:-1] if raw else json.dumps(body)  # raw: broken JSON
                response = client.open(url, method=method, data=data, headers=headers, content_type="application/json")
                check(response, before, writes(database))
                if response.status_code >= 400:
                    assert "error" in response.get_json()

            send()
