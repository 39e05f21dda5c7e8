"""Logging in and out, throttling, CSRF, sessions and roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from group_ipt.core import users
from group_ipt.store import db as dbmod

from .conftest import PASSWORD, csrf_token, login, post_form


def test_login_success_redirects_home(client):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert "Welcome, Amina Nakato" in page


@pytest.mark.parametrize(
    ("username", "password", "status", "message"),
    [
        ("amina", "wrong-password", 401, "Wrong username or password."),
        ("nobody", PASSWORD, 401, "Wrong username or password."),
        ("", "", 400, "Enter your username and your password."),
    ],
)
def test_login_bad_credentials(client, username, password, status, message):
    response = login(client, username, password)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_disabled_user_refused(client, db):
    users.set_active(db, "amina", False)
    response = login(client)
    assert response.status_code == 403
    assert "This account has been disabled" in response.get_data(as_text=True)


def test_disabled_while_logged_in_is_logged_out(logged_in, db):
    users.set_active(db, "amina", False)
    response = logged_in.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_login_throttled_after_repeated_failures(client, app):
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login(client, "amina", "bad-password").status_code == 401
    response = login(client)  # even the right password is refused while locked
    assert response.status_code == 429
    assert "Too many failed attempts" in response.get_data(as_text=True)


def test_login_records_audit_and_attempts(client, db):
    login(client, "amina", "bad-password")
    login(client)
    actions = [r["action"] for r in db.query("select action from audit_log order by id")]
    assert actions[-2:] == ["login_failed", "login"]
    attempts = [(r["username"], r["success"]) for r in db.query("select * from login_attempts order by id")]
    assert attempts == [("amina", 0), ("amina", 1)]


def test_login_next_is_followed_only_on_site(client):
    token = csrf_token(client)
    r = client.post("/login?next=/account/", data={"username": "amina", "password": PASSWORD, "csrf_token": token})
    assert r.headers["Location"] == "/account/"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account/")})
    token = csrf_token(client)
    r = client.post(
        "/login?next=//evil.example/x", data={"username": "amina", "password": PASSWORD, "csrf_token": token}
    )
    assert r.headers["Location"] == "/"


def test_post_without_csrf_token_is_refused(client, db):
    before = db["login_attempts"].count
    response = client.post("/login", data={"username": "amina", "password": PASSWORD})
    assert response.status_code == 400
    assert "This form has expired or did not come from this app" in response.get_data(as_text=True)
    assert db["login_attempts"].count == before


def test_forged_post_when_logged_in_changes_nothing(logged_in, db):
    response = logged_in.post("/account/language", data={"lang": "fr", "csrf_token": "forged"})
    assert response.status_code == 400
    assert users.get_user_by_username(db, "amina")["language"] is None


def test_logout_requires_post_and_ends_session(logged_in):
    assert logged_in.get("/logout").status_code == 405
    response = post_form(logged_in, "/logout", {})
    assert response.status_code == 303
    assert logged_in.get("/").status_code == 302


def test_idle_session_expires(logged_in, app, db):
    # The server keeps when the session was last used (a cookie's own clock could be replayed).
    idle = datetime.now(UTC) - timedelta(minutes=app.config["SESSION_IDLE_MINUTES"], seconds=5)
    with dbmod.write(db):
        db.execute("update login_sessions set last_seen_at = ?", (idle.replace(microsecond=0).isoformat(),))
    response = logged_in.get("/")
    assert response.status_code == 302
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session has expired" in page


def test_tampered_cookie_is_ignored(logged_in):
    cookie = logged_in.get_cookie("group_ipt_session")
    assert cookie is not None
    value = cookie.value
    tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    logged_in.set_cookie("group_ipt_session", tampered)
    response = logged_in.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_session_cookie_flags(client):
    response = login(client)
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header


def test_password_change(logged_in, db):
    r = post_form(
        logged_in,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "new-password-1", "repeat_password": "new-password-1"},
        form_page="/account/",
    )
    assert r.status_code == 303
    user = users.get_user_by_username(db, "amina")
    assert users.authenticate(db, "amina", "new-password-1").user["id"] == user["id"]


@pytest.mark.parametrize(
    ("current", "new", "repeat", "message"),
    [
        ("wrong", "new-password-1", "new-password-1", "Your current password is not right."),
        (PASSWORD, "new-password-1", "other-password", "The two new passwords are not the same."),
        (PASSWORD, "short", "short", "The password must have at least 8 characters."),
    ],
)
def test_password_change_errors(logged_in, db, current, new, repeat, message):
    before = users.get_user_by_username(db, "amina")["password_hash"]
    r = post_form(
        logged_in,
        "/account/password",
        {"current_password": current, "new_password": new, "repeat_password": repeat},
        form_page="/account/",
    )
    assert r.status_code == 400
    assert message in r.get_data(as_text=True)
    assert users.get_user_by_username(db, "amina")["password_hash"] == before


def test_passwords_are_stored_hashed(db):
    stored = users.get_user_by_username(db, "amina")["password_hash"]
    assert PASSWORD not in stored
    assert stored.startswith("pbkdf2:sha256")


def test_audit_log_never_contains_password_hash(db):
    for r in db.query("select after_json from audit_log where after_json is not null"):
        assert "password_hash" not in r["after_json"]


def test_user_site_scope(db):
    amina = users.get_user_by_username(db, "amina")
    admin = users.get_user_by_username(db, "admin")
    kmp = users.get_site(db, "KMP")
    assert users.user_site_ids(db, amina) == [kmp["id"]]
    assert len(users.user_site_ids(db, admin)) == 2


def test_last_admin_cannot_be_disabled(db):
    with pytest.raises(users.UserError, match="last active admin"):
        users.set_active(db, "admin", False)


def test_failed_write_leaves_database_unchanged(db):
    before = db["users"].count
    with pytest.raises(users.UserError):
        users.create_user(db, "newbie", PASSWORD, "facilitator", site_ids=["no-such-site"])
    assert db["users"].count == before
    settings_before = db["settings"].count  # the database already records the version that made it
    with pytest.raises(ZeroDivisionError), dbmod.write(db):
        db.execute("insert into settings (key, value, updated_at) values ('x', '1', 'now')")
        1 / 0  # noqa: B018
    assert db["settings"].count == settings_before
    assert db.execute("select count(*) from settings where key = 'x'").fetchone()[0] == 0
