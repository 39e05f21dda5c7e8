"""Security hardening: sessions that end, login throttling, headers, bounds, redirects (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from group_ipt.core import users
from group_ipt.store import db as dbmod

from .conftest import FAST_HASH, PASSWORD, csrf_token, login, post_form

# ---- 1. sessions end when they should ------------------------------------------------------


def _cookie(client) -> str:
    return client.get_cookie("group_ipt_session").value


def _with_cookie(app, value: str):
    other = app.test_client()
    other.set_cookie("group_ipt_session", value)
    return other


def test_session_cookie_copied_before_logout_is_refused_after(app, logged_in):
    copied = _cookie(logged_in)
    assert _with_cookie(app, copied).get("/").status_code == 200
    post_form(logged_in, "/logout", {})
    response = _with_cookie(app, copied).get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_password_change_ends_the_users_other_sessions_only(app, client, db):
    login(client)
    elsewhere = app.test_client()
    login(elsewhere)
    grace = app.test_client()
    login(grace, "grace")
    r = post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "new-password-1", "repeat_password": "new-password-1"},
        form_page="/account/",
    )
    assert r.status_code == 303
    assert client.get("/").status_code == 200  # the session that changed it goes on
    assert elsewhere.get("/").status_code == 302
    assert grace.get("/").status_code == 200
    ended = [r["ended_reason"] for r in db.query("select ended_reason from login_sessions where ended_at is not null")]
    assert ended == ["password_changed"]


def test_password_reset_by_admin_and_disabling_end_every_session(app, db):
    first, second = app.test_client(), app.test_client()
    login(first)
    login(second, "grace")
    users.set_password(db, "amina", "reset-password-1", hash_method=FAST_HASH)
    assert first.get("/").status_code == 302
    users.set_active(db, "grace", False)
    response = second.get("/")
    assert response.status_code == 302
    assert "Your session has expired" in second.get(response.headers["Location"]).get_data(as_text=True)


def test_password_arriving_by_sync_ends_sessions_made_with_the_old_one(app, logged_in, db):
    """The laptop's copy of a user is overwritten by the centre's (sync): no users function runs."""
    with dbmod.write(db):
        db.execute("update users set password_hash = 'pbkdf2:sha256:1000$x$y' where username = 'amina'")
    assert logged_in.get("/").status_code == 302


def test_idle_timeout_defaults_to_eight_hours(app):
    from group_ipt.base.settings import defaults

    assert defaults()["SESSION_IDLE_MINUTES"] == 480


def test_session_older_than_its_lifetime_ends(app, logged_in, db):
    old = datetime.now(UTC) - timedelta(hours=app.config["SESSION_LIFETIME_HOURS"], minutes=1)
    with dbmod.write(db):
        db.execute("update login_sessions set created_at = ?", (old.replace(microsecond=0).isoformat(),))
    assert logged_in.get("/").status_code == 302


def test_database_keeps_only_a_hash_of_the_session_token(logged_in, db):
    from group_ipt.core import login_sessions

    stored = db.execute("select id from login_sessions").fetchone()[0]
    with logged_in.session_transaction() as s:
        token = s["sid"]
    assert stored != token
    assert stored == login_sessions._digest(token)


# ---- 2. no username discovery ----------------------------------------------------------------


def test_unknown_username_is_checked_against_the_same_hash_method(app, client, db, monkeypatch):
    import group_ipt.core.users as usersmod

    method = "pbkdf2:sha256:2000"  # the programme's method; the old dummy was always pbkdf2 with 1000 rounds
    monkeypatch.setitem(app.config, "PASSWORD_HASH_METHOD", method)
    users.set_password(db, "amina", PASSWORD, hash_method=method)
    checked = []
    real = usersmod.check_password_hash

    def spy(pwhash, password):
        checked.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(usersmod, "check_password_hash", spy)
    login(client, "amina", "wrong-password")
    login(client, "nobody-here", "wrong-password")
    assert checked == [method, method]


def test_unknown_username_costs_a_scrypt_check_by_default(db):
    import group_ipt.core.users as usersmod

    assert usersmod.dummy_hash("scrypt").startswith("scrypt:32768:8:1$")


# ---- 3. throttling that cannot be turned against staff ----------------------------------------


def _fail(db, username, addr, now, times=1):
    for _ in range(times):
        result = users.authenticate(db, username, "wrong-password", addr, now=now, hash_method=FAST_HASH)
        assert result.error == "bad_credentials"


def test_failures_from_one_address_do_not_lock_the_user_elsewhere(db):
    now = datetime.now(UTC)
    _fail(db, "coord", "10.0.0.66", now, 5)
    assert users.authenticate(db, "coord", PASSWORD, "10.0.0.66", now=now).error == "throttled"
    assert users.authenticate(db, "coord", PASSWORD, "10.0.0.7", now=now).user is not None


def test_delays_grow_with_each_failure(db):
    now = datetime.now(UTC).replace(microsecond=0)
    _fail(db, "amina", "10.0.0.66", now, 5)
    first = users.authenticate(db, "amina", PASSWORD, "10.0.0.66", now=now)
    assert first.error == "throttled" and 29 <= first.retry_after_seconds <= 31
    later = now + timedelta(seconds=31)
    _fail(db, "amina", "10.0.0.66", later)
    second = users.authenticate(db, "amina", PASSWORD, "10.0.0.66", now=later)
    assert second.error == "throttled" and 59 <= second.retry_after_seconds <= 61
    assert users.authenticate(db, "amina", PASSWORD, "10.0.0.66", now=later + timedelta(seconds=62)).user


def test_many_addresses_slow_the_username_but_never_lock_it_long(db):
    now = datetime.now(UTC).replace(microsecond=0)
    for i in range(20):
        _fail(db, "coord", f"10.0.1.{i}", now)
    result = users.authenticate(db, "coord", PASSWORD, "10.0.9.9", now=now)
    assert result.error == "throttled" and result.retry_after_seconds <= 31
    assert users.authenticate(db, "coord", PASSWORD, "10.0.9.9", now=now + timedelta(seconds=31)).user


def test_password_reset_lifts_the_throttle_and_is_audited(client, db):
    for _ in range(5):
        login(client, "amina", "bad-password")
    assert login(client).status_code == 429
    users.set_password(db, "amina", "reset-password-1", hash_method=FAST_HASH)
    assert login(client, "amina", "reset-password-1").status_code == 302
    actions = [r["action"] for r in db.query("select action from audit_log order by id")]
    assert "login_throttled" in actions
    assert "login_unlock" in actions


def test_throttled_login_says_when_to_retry(client):
    for _ in range(5):
        login(client, "amina", "bad-password")
    response = login(client)
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 31


def test_users_page_shows_the_lock_and_an_admin_lifts_it(app, client, db):
    for _ in range(5):
        login(client, "amina", "bad-password")
    admin = app.test_client()
    login(admin, "admin")
    page = admin.get("/users/").get_data(as_text=True)
    assert "5 failed logins from 127.0.0.1" in page
    amina = users.get_user_by_username(db, "amina")
    r = post_form(admin, f"/users/{amina['id']}/unlock", {}, form_page="/users/")
    assert r.status_code == 303
    assert "failed logins from" not in admin.get("/users/").get_data(as_text=True)
    assert login(client).status_code == 302
    entry = db.execute("select username, after_json from audit_log where action = 'login_unlock'").fetchone()
    assert entry[0] == "admin" and '"reason": "admin"' in entry[1]


@pytest.mark.parametrize("username", ["amina", "coord"])
def test_users_page_is_for_admins_only(app, client, username):
    login(client, username)
    assert client.get("/users/").status_code == 403


def test_cli_users_unlock_and_list(runner):
    from group_ipt.cli import initialise

    db = initialise(runner.data_dir)
    site = users.create_site(db, "KMP", "Kampala")
    users.create_user(db, "coord", PASSWORD, "coordinator", site_ids=[site["id"]], hash_method=FAST_HASH)
    _fail(db, "coord", "10.0.0.66", datetime.now(UTC), 5)
    listed = runner.invoke(["users", "list"])
    assert "slowed down: 5 failed logins from 10.0.0.66" in listed.output
    result = runner.invoke(["users", "unlock", "coord"])
    assert result.exit_code == 0, result.output
    assert users.authenticate(db, "coord", PASSWORD, "10.0.0.66").user is not None
    assert runner.invoke(["users", "unlock", "nobody"]).exit_code == 1


def test_csrf_token_helper_still_reads_login(client):
    assert csrf_token(client)


# ---- 6. security headers on every answer ------------------------------------------------------


def _assert_security_headers(response, *, no_store: bool = True):
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    if no_store:
        assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/participants/", "/account/", "/referrals/", "/cycles/", "/no-such-page"])
def test_pages_carry_security_headers_and_are_not_cached(logged_in, path):
    _assert_security_headers(logged_in.get(path))


def test_login_page_api_and_static_files_carry_security_headers(client):
    _assert_security_headers(client.get("/login"))
    _assert_security_headers(client.get("/api/v1/sync/hello"))
    with client.get("/static/css/group-ipt-0.1.css") as static:  # closes the file the answer streams
        _assert_security_headers(static, no_store=False)
        assert static.headers.get("Cache-Control") != "no-store"  # versioned file names: no personal data


def test_csv_and_pdf_answers_are_not_cached(app, client):
    login(client, "coord")
    _assert_security_headers(client.get("/forms/phq9/form.pdf"))
    _assert_security_headers(client.get("/reports/export/indicators.csv"))


def test_no_template_has_inline_script_or_event_handler():
    import re

    from group_ipt.base.settings import REPO_DIR

    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    found = []
    for path in sorted((REPO_DIR / "group_ipt" / "web" / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        if inline_script.search(text) or handler.search(text) or "javascript:" in text.lower():
            found.append(path.name)
    assert found == []


# ---- 7. bounded input everywhere, one safe redirect ---------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "period=9999W52",
        "period=9999",
        "period=0000",
        "period=0001Q1",
        "period=999912",
        "from=2026-01-01&to=9999-12-31",
        "from=0001-01-01&to=0001-01-02",
        "from=2026-03-01&to=2026-01-01",
        "from=2026-1-1&to=2026-02-01",
        "from=%EF%BC%92026-01-01&to=2026-02-01",
        "period=2026-01-01..9999-12-31",
    ],
)
def test_report_periods_out_of_bounds_answer_400(app, client, query):
    login(client, "coord")
    for path in ("/reports/", "/reports/export/indicators.csv"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)


def test_report_period_message_is_clear(app, client):
    login(client, "coord")
    page = client.get("/reports/?from=2026-01-01&to=9999-12-31").get_data(as_text=True)
    assert "9999-12-31 is outside the years this software accepts (1900 to 2199)." in page


@pytest.mark.parametrize("period", ["9999W52", "2026-01-01..9999-12-31", "0000"])
def test_cli_export_refuses_out_of_bounds_period_without_traceback(runner, tmp_path, period):
    from group_ipt.cli import initialise

    initialise(runner.data_dir).close()
    result = runner.invoke(["export", "csv", str(tmp_path / "out"), "--period", period])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception  # a message, not a traceback
    assert period.split("..")[-1] in result.output


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2026-03-02", True),
        ("1900-01-01", True),
        ("2199-12-31", True),
        ("9999-12-31", False),
        ("0000-01-01", False),
        ("2026-02-30", False),
        ("20260302", False),
        ("2026-03-02T00:00", False),
        ("", False),
        (None, False),
    ],
)
def test_bounded_date_parser(text, ok):
    from group_ipt.base import bounds

    if ok:
        assert bounds.parse_date(text).isoformat() == text
    else:
        with pytest.raises(bounds.BoundsError):
            bounds.parse_date(text)


@pytest.mark.parametrize("text", ["1_0", " 1 0", "+", "²", "١٢", "99999999999999999999", "-1", "1.0", ""])
def test_bounded_int_parser_refuses(text):
    from group_ipt.base import bounds

    with pytest.raises(bounds.BoundsError):
        bounds.parse_int(text, minimum=0, maximum=bounds.MAX_INTEGER)


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "//evil.example",
        "/\\/evil.example",
        "https://evil.example",
        "/\r\n//evil.example",
        "/\t/evil.example",
        "evil.example",
        "javascript:alert(1)",
    ],
)
def test_safe_redirect_refuses_other_sites(target):
    from group_ipt.web.redirects import safe_target

    assert safe_target(target, "/") == "/"
    assert safe_target("/participants/?q=a", "/") == "/participants/?q=a"


def test_login_next_backslash_is_not_followed(client):
    token = csrf_token(client)
    r = client.post(
        "/login?next=/%5Cevil.example", data={"username": "amina", "password": PASSWORD, "csrf_token": token}
    )
    assert r.headers["Location"] == "/"


def test_language_back_backslash_is_not_followed(logged_in):
    r = post_form(logged_in, "/account/language", {"lang": "fr", "back": "/\\evil.example"}, form_page="/account/")
    assert r.status_code == 303
    assert r.headers["Location"] == "/account/"


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "2026-1-2"])
def test_screening_date_out_of_bounds_is_refused_and_saves_nothing(logged_in, db, day):
    from .screening_helpers import count, phq9, register, submit

    sarah = register(db)
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), administered_on=day)
    assert response.status_code == 400
    assert count(db, "screenings") == 0


# ---- 9. failure messages, not tracebacks ----------------------------------------------------------


def _damage(path):
    path.write_bytes(b"this is not an SQLite file at all" * 200)


@pytest.mark.parametrize("args", [["users", "list"], ["migrate"], ["serve", "--port", "0"], ["sync", "status"]])
def test_damaged_database_names_the_file_and_the_restore_command(runner, args):
    from group_ipt.cli import initialise

    initialise(runner.data_dir).close()
    db_file = runner.data_dir / "group-ipt.db"
    for side in ("-wal", "-shm"):
        (runner.data_dir / f"group-ipt.db{side}").unlink(missing_ok=True)
    _damage(db_file)
    result = runner.invoke(args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert str(db_file) in result.output and "group-ipt restore" in result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_restore_replaces_a_damaged_database_and_keeps_it(runner, tmp_path):
    from group_ipt.cli import initialise

    db = initialise(runner.data_dir)
    users.create_site(db, "KMP", "Kampala")
    db.close()
    backup_file = tmp_path / "copy.db"
    assert runner.invoke(["backup", str(backup_file)]).exit_code == 0
    for side in ("-wal", "-shm"):
        (runner.data_dir / f"group-ipt.db{side}").unlink(missing_ok=True)
    _damage(runner.data_dir / "group-ipt.db")
    result = runner.invoke(["restore", str(backup_file)])
    assert result.exit_code == 0, result.output
    assert "KMP" in runner.invoke(["sites", "list"]).output
    kept = list((runner.data_dir / "restore-backups").glob("group-ipt-damaged-*.db"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not an SQLite file")


def test_damaged_database_answers_a_page_not_a_traceback(app, logged_in):
    from pathlib import Path

    path = Path(app.config["DATABASE"])
    for side in ("-wal", "-shm"):
        path.with_name(path.name + side).unlink(missing_ok=True)
    _damage(path)
    response = logged_in.get("/participants/")
    assert response.status_code == 500
    assert "The database file is damaged" in response.get_data(as_text=True)


def test_serve_demo_central_on_a_fresh_folder_starts(runner, monkeypatch):
    import waitress

    started = {}

    class FakeServer:
        effective_port = 5999

        def run(self):
            started["ran"] = True

    def create_server(app, **kwargs):
        started["central"] = app.config["SYNC_CENTRAL"]
        started["key"] = app.config["SECRET_KEY"]
        return FakeServer()

    monkeypatch.setattr(waitress, "create_server", create_server)
    monkeypatch.setattr("group_ipt.reporting.report_store.start_background_refresh", lambda app, seconds: None)
    result = runner.invoke(["serve", "--demo", "--central"])
    assert result.exit_code == 0, result.output
    from group_ipt.base.settings import DEV_SECRET_KEY

    assert started == {"central": True, "key": started["key"], "ran": True}
    assert started["key"] != DEV_SECRET_KEY


# ---- 8. streams limited while reading ------------------------------------------------------------


def _bomb(megabytes: int) -> bytes:
    """A gzip body of a few hundred KB that unpacks to ``megabytes`` MB of spaces."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * 1_000_000
    return b"".join(packer.compress(chunk) for _ in range(megabytes)) + packer.flush()


def test_gzip_bomb_to_the_api_is_refused_while_inflating(tmp_path):
    import tracemalloc

    from .syncing import add_device, make_central

    centre = make_central(tmp_path / "c")
    token = add_device(centre, "lap-a", "KMP")[1]
    client = centre.test_client()
    bomb = _bomb(300)
    assert len(bomb) < centre.config["SYNC_MAX_BODY_MB"] * 1024 * 1024
    tracemalloc.start()
    try:
        response = client.post(
            "/api/v1/sync/push",
            data=bomb,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Encoding": "gzip",
                "Content-Type": "application/json",
            },
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert "larger than" in response.json["error"]
    limit = centre.config["SYNC_MAX_UNPACKED_MB"] * 1024 * 1024
    assert peak < limit * 1.5, f"{peak / 1e6:.0f} MB held for a {limit / 1e6:.0f} MB limit"


def test_a_servers_gzip_bomb_does_not_fill_the_laptop(monkeypatch):
    from group_ipt.sync import client as clientmod
    from group_ipt.sync.engine import SyncRejected

    monkeypatch.setattr(clientmod, "MAX_REPLY_UNPACKED", 8 * 1024 * 1024)
    with pytest.raises(SyncRejected, match="too large"):
        clientmod._read_json(_bomb(40), "gzip")


@pytest.mark.parametrize("blob", [b"", b"not gzip", b"\x1f\x8b\x08\x00" + b"\x00" * 6])
def test_inflate_refuses_damaged_gzip(blob):
    from group_ipt.base import inflate

    with pytest.raises(inflate.Unreadable):
        inflate.inflate(blob, 1000)


# ---- 5. laptops hold only the verifiers they need -------------------------------------------------


def test_laptop_receives_only_its_sites_users_verifiers(tmp_path):
    from group_ipt.sync import engine

    from .syncing import make_central

    centre = make_central(tmp_path / "c")
    cdb = dbmod.connect(centre.config["DATABASE"])
    kmp = users.get_site(cdb, "KMP")
    users.create_user(cdb, "site-admin", PASSWORD, "admin", site_ids=[kmp["id"]], hash_method=FAST_HASH)
    users.create_user(cdb, "gone", PASSWORD, "facilitator", site_ids=[kmp["id"]], hash_method=FAST_HASH)
    users.set_active(cdb, "gone", False)
    with dbmod.write(cdb):
        cdb.execute("update users set last_login_at = '2026-01-01T00:00:00+00:00'")
    sent = engine.reference_data(cdb, kmp["id"])["users"]
    assert [u["username"] for u in sent] == ["amina", "coord", "gone"]  # not grace (MSK), not the admins
    by_name = {u["username"]: u for u in sent}
    assert by_name["amina"]["password_hash"] == users.get_user_by_username(cdb, "amina")["password_hash"]
    assert by_name["gone"]["password_hash"] == engine.NO_PASSWORD and by_name["gone"]["active"] == 0
    assert all("last_login_at" not in u for u in sent)
    cdb.close()


def test_disabled_user_cannot_log_in_on_the_laptop_after_a_pull(tmp_path):
    from group_ipt.sync import engine

    from .syncing import make_central

    centre = make_central(tmp_path / "c")
    cdb = dbmod.connect(centre.config["DATABASE"])
    kmp = users.get_site(cdb, "KMP")
    users.set_active(cdb, "amina", False)
    from .syncing import new_laptop

    laptop = new_laptop(tmp_path / "laptop")
    engine.apply_reference(laptop, engine.reference_data(cdb, kmp["id"]))
    assert users.authenticate(laptop, "coord", PASSWORD).user is not None
    assert users.authenticate(laptop, "amina", PASSWORD).error == "bad_credentials"
    assert users.get_user_by_username(laptop, "grace") is None
    cdb.close()
    laptop.close()


# ---- 4. per-device Ed25519 keys for USB files --------------------------------------------------------


def _laptop(tmp_path, centre, name="lap-a"):
    from group_ipt.sync import client

    from .syncing import AppTransport, add_device, new_laptop

    _device, token = add_device(centre, name, "KMP")
    db = new_laptop(tmp_path / name)
    transport = AppTransport(centre, token)
    client.setup(db, "http://centre", token, transport)
    client.sync(db, transport)  # the site and its users arrive
    return db, transport, token


def _participant(db, code="KMP-0001-A"):
    from group_ipt.store.db import new_id, row, utcnow

    site_id = row(db, "select id from sites where code = 'KMP'")["id"]
    now = utcnow()
    with dbmod.write(db):
        db["participants"].insert(
            {
                "id": new_id(),
                "site_id": site_id,
                "code": code,
                "name": "",
                "sex": "female",
                "created_at": now,
                "updated_at": now,
            }
        )


def _config(centre):
    from group_ipt.sync import server

    return server.CentralConfig.from_app_config(centre.config)


def test_centre_keeps_only_the_laptops_public_key(tmp_path, centre, cdb):
    import os
    import stat

    from group_ipt.sync import keys

    laptop, _t, _token = _laptop(tmp_path, centre)
    device = cdb.execute("select signing_key, public_key from sync_devices").fetchone()
    assert device[0] == "" and len(device[1]) == 44
    key_file = tmp_path / "lap-a" / keys.DEVICE_KEY_FILE
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    centre_key = tmp_path / "central" / keys.CENTRE_KEY_FILE
    assert stat.S_IMODE(os.stat(centre_key).st_mode) == 0o600
    dumped = "\n".join(cdb.conn.iterdump())
    assert centre_key.read_text().split("\n")[1] not in dumped  # the centre's private key is not in the database
    laptop.close()


def test_usb_round_trip_is_signed_with_ed25519_both_ways(tmp_path, centre, cdb):
    import json

    from group_ipt.sync import client, files, server

    laptop, _t, _token = _laptop(tmp_path, centre)
    _participant(laptop)
    export, reply = tmp_path / "push.gipt", tmp_path / "reply.gipt"
    client.export_file(laptop, export)
    assert json.loads(export.read_text())["version"] == files.FILE_VERSION == 2
    assert server.import_file(cdb, export, reply, _config(centre))["applied"] == 1
    assert json.loads(reply.read_text())["version"] == 2
    assert client.import_reply(laptop, reply)["acknowledged"] == 1
    laptop.close()


def test_a_copy_of_the_central_database_cannot_forge_a_laptops_file(tmp_path, centre, cdb):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from group_ipt.store.db import new_id
    from group_ipt.sync import files, server
    from group_ipt.sync.engine import SyncRejected

    laptop, _t, _token = _laptop(tmp_path, centre)
    device = next(cdb.query("select id, signing_key, token_hash from sync_devices"))
    body = {"batches": [], "cursor": 0, "files": {}}
    forged = tmp_path / "forged.gipt"
    # Everything the database holds about the device, used as a key, and a key of one's own.
    for secret in (device["signing_key"], device["token_hash"]):
        files.write_signed(
            forged, kind="push", device_id=device["id"], file_id=new_id(), body=body, key=secret or "empty"
        )
        with pytest.raises(SyncRejected) as caught:
            server.import_file(cdb, forged, tmp_path / "r.gipt", _config(centre))
        assert caught.value.status == 403
    files.write_signed(
        forged,
        kind="push",
        device_id=device["id"],
        file_id=new_id(),
        body=body,
        private_key=Ed25519PrivateKey.generate(),
    )
    with pytest.raises(SyncRejected, match="signature does not match"):
        server.import_file(cdb, forged, tmp_path / "r.gipt", _config(centre))
    assert not (tmp_path / "r.gipt").exists()
    laptop.close()


def test_laptop_refuses_a_reply_not_signed_by_the_centres_key(tmp_path, centre, cdb):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from group_ipt.store.db import new_id
    from group_ipt.sync import client, devices, files
    from group_ipt.sync.engine import SyncRejected, get_state

    laptop, _t, token = _laptop(tmp_path, centre)
    fake = tmp_path / "fake-reply.gipt"
    body = {"acks": [], "pages": []}
    files.write_signed(
        fake,
        kind="reply",
        device_id=get_state(laptop, "device_id"),
        file_id=new_id(),
        body=body,
        private_key=Ed25519PrivateKey.generate(),
    )
    with pytest.raises(SyncRejected, match="signature does not match"):
        client.import_reply(laptop, fake)
    # Nor an old-style reply, which a copy of the centre's database from before the upgrade could sign.
    files.write_signed(
        fake,
        kind="reply",
        device_id=get_state(laptop, "device_id"),
        file_id=new_id(),
        body=body,
        key=devices.signing_key(token),
    )
    with pytest.raises(SyncRejected, match="old way"):
        client.import_reply(laptop, fake)
    laptop.close()


def test_device_set_up_before_keys_keeps_working_then_moves_to_its_own_key(tmp_path, centre, cdb):
    """A laptop and its centre upgraded from the HMAC files: old files work until the laptop registers a key."""
    import json

    from group_ipt.sync import client, devices, server
    from group_ipt.sync.engine import get_state, set_state

    laptop, transport, token = _laptop(tmp_path, centre)
    # As the data stood before migration 0016: the centre held the token's HMAC key, the laptop no key.
    with dbmod.write(cdb):
        cdb.execute("update sync_devices set signing_key = ?, public_key = null", (devices.signing_key(token),))
    with dbmod.write(laptop):
        set_state(laptop, "key_registered", False)
        set_state(laptop, "centre_key", None)
    _participant(laptop)
    export, reply = tmp_path / "old.gipt", tmp_path / "old-reply.gipt"
    client.export_file(laptop, export)
    assert json.loads(export.read_text())["version"] == 1
    assert server.import_file(cdb, export, reply, _config(centre))["applied"] == 1
    assert json.loads(reply.read_text())["version"] == 1
    assert client.import_reply(laptop, reply)["acknowledged"] == 1
    # Its next network sync registers its key; the centre forgets the HMAC key.
    client.sync(laptop, transport)
    assert get_state(laptop, "key_registered") is True
    assert cdb.execute("select signing_key from sync_devices").fetchone()[0] == ""
    old_style = tmp_path / "old-again.gipt"
    with dbmod.write(laptop):
        set_state(laptop, "key_registered", False)  # a stale copy of the laptop's software
    _participant(laptop, "KMP-0002-B")
    client.export_file(laptop, old_style)
    from group_ipt.sync.engine import SyncRejected

    with pytest.raises(SyncRejected, match="old way"):
        server.import_file(cdb, old_style, tmp_path / "r2.gipt", _config(centre))
    laptop.close()


def test_key_registration_refuses_what_is_not_a_key(centre):
    from .syncing import add_device

    _device, token = add_device(centre, "lap-z", "KMP")
    response = centre.test_client().post(
        "/api/v1/sync/key", json={"public_key": "not a key"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400
    assert "Ed25519" in response.json["error"]


def test_serve_trusts_forwarded_headers_only_from_the_configured_proxy(runner, monkeypatch):
    import waitress

    from group_ipt.cli import initialise

    initialise(runner.data_dir).close()
    (runner.data_dir / "config.toml").write_text('TRUSTED_PROXY = "127.0.0.1"\n')
    seen = {}

    class FakeServer:
        effective_port = 5999

        def run(self):
            pass

    def create_server(app, **kwargs):
        seen.update(kwargs)
        return FakeServer()

    monkeypatch.setattr(waitress, "create_server", create_server)
    monkeypatch.setattr("group_ipt.reporting.report_store.start_background_refresh", lambda app, seconds: None)
    assert runner.invoke(["serve"]).exit_code == 0
    assert seen["trusted_proxy"] == "127.0.0.1" and "x-forwarded-for" in seen["trusted_proxy_headers"]
    assert seen["clear_untrusted_proxy_headers"] is True


# ---- 10. docs/security.md ---------------------------------------------------------------------------


def test_security_doc_covers_each_threat_and_the_deployers_duties():
    from group_ipt.base.settings import REPO_DIR

    text = (REPO_DIR / "docs" / "security.md").read_text(encoding="utf-8")
    for heading in (
        "A lost or stolen laptop",
        "A curious facilitator of another site",
        "A rogue or revoked device",
        "Someone on the same network",
        "A copied central database",
        "What the deployer must do",
        "Out of scope",
    ):
        assert f"## {heading}" in text or f"### {heading}" in text, heading
    assert "Full-disk encryption" in text and "reverse_proxy 127.0.0.1:5000" in text
