"""Users, roles, sites and password checks: plain functions on the database, no Flask."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .db import new_id, row, rows, utcnow, write

ROLES = ("facilitator", "coordinator", "supervisor", "admin")
MIN_PASSWORD_LENGTH = 8
USERNAME_RE = re.compile(r"^[A-Za-z0-9._-]{2,40}$")
SITE_CODE_RE = re.compile(r"^[A-Z0-9]{2,8}$")
# A hash computed once so that an unknown username costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password", method="pbkdf2:sha256:1000")


class UserError(ValueError):
    """A user or site could not be created or changed; the message says why."""


@dataclass(frozen=True)
class LoginResult:
    user: dict | None
    error: str | None  # one of: bad_credentials, disabled, throttled
    retry_after_minutes: int = 0


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def create_site(
    db: sqlite_utils.Database, code: str, name: str, default_language: str = "en", *, actor: dict | None = None
) -> dict:
    code = code.strip().upper()
    if not SITE_CODE_RE.match(code):
        raise UserError("A site code is 2 to 8 capital letters or digits, e.g. KMP.")
    if not name.strip():
        raise UserError("A site needs a name.")
    if row(db, "select id from sites where code = ?", (code,)):
        raise UserError(f"A site with code {code} already exists.")
    now = utcnow()
    site = {
        "id": new_id(),
        "code": code,
        "name": name.strip(),
        "default_language": default_language,
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        db["sites"].insert(site)
        audit.log(db, user=actor, action="create", table="sites", record_id=site["id"], site_id=site["id"], after=site)
    return site


def get_site(db: sqlite_utils.Database, code_or_id: str) -> dict | None:
    return row(db, "select * from sites where code = ? or id = ?", (code_or_id.upper(), code_or_id))


def list_sites(db: sqlite_utils.Database) -> list[dict]:
    return rows(db, "select * from sites order by name")


def create_user(
    db: sqlite_utils.Database,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str | None = None,
    site_ids: list[str] = (),
    language: str | None = None,
    actor: dict | None = None,
    hash_method: str = "scrypt",
) -> dict:
    """Create a user with a hashed password; raise UserError with a reason on bad input."""
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise UserError("A username is 2 to 40 letters, digits, dots, dashes or underscores.")
    if role not in ROLES:
        raise UserError(f"Unknown role {role!r}; choose one of: {', '.join(ROLES)}.")
    validate_password(password)
    if get_user_by_username(db, username):
        raise UserError(f"The username {username!r} is already taken.")
    if role != "admin" and not site_ids:
        raise UserError("A facilitator, coordinator or supervisor must work at a site (--site).")
    for site_id in site_ids:
        if not row(db, "select id from sites where id = ?", (site_id,)):
            raise UserError(f"Unknown site {site_id!r}.")
    now = utcnow()
    user = {
        "id": new_id(),
        "username": username,
        "display_name": (display_name or username).strip(),
        "password_hash": generate_password_hash(password, method=hash_method),
        "role": role,
        "language": language,
        "active": 1,
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        db["users"].insert(user)
        for site_id in site_ids:
            db["user_sites"].insert({"user_id": user["id"], "site_id": site_id})
        audit.log(db, user=actor, action="create", table="users", record_id=user["id"], after=user)
    return user


def get_user(db: sqlite_utils.Database, user_id: str) -> dict | None:
    return row(db, "select * from users where id = ?", (user_id,))


def get_user_by_username(db: sqlite_utils.Database, username: str) -> dict | None:
    return row(db, "select * from users where username = ?", (username.strip(),))


def list_users(db: sqlite_utils.Database) -> list[dict]:
    return rows(
        db,
        "select u.*, group_concat(s.code, ', ') as site_codes from users u"
        " left join user_sites us on us.user_id = u.id left join sites s on s.id = us.site_id"
        " group by u.id order by u.username",
    )


def user_site_ids(db: sqlite_utils.Database, user: dict) -> list[str]:
    """Return the ids of the sites whose data this user may see (every site for an admin)."""
    if user["role"] == "admin":
        return [r["id"] for r in db.query("select id from sites order by name")]
    return [r["site_id"] for r in db.query(
        "select us.site_id from user_sites us join sites s on s.id = us.site_id where us.user_id = ?"
        " order by s.name", (user["id"],))]


def set_active(db: sqlite_utils.Database, username: str, active: bool, *, actor: dict | None = None) -> dict:
    user = get_user_by_username(db, username)
    if user is None:
        raise UserError(f"No user called {username!r}.")
    if user["active"] == int(active):
        return user
    if not active and user["role"] == "admin":
        admins = row(db, "select count(*) as n from users where role = 'admin' and active = 1")["n"]
        if admins <= 1:
            raise UserError("This is the last active admin; add another admin before disabling it.")
    with write(db):
        db.execute("update users set active = ?, updated_at = ? where id = ?", (int(active), utcnow(), user["id"]))
        after = get_user(db, user["id"])
        audit.log(
            db, user=actor, action="enable" if active else "disable", table="users",
            record_id=user["id"], before=user, after=after,
        )
    return after


def set_password(db: sqlite_utils.Database, username: str, password: str, *, actor: dict | None = None,
                 hash_method: str = "scrypt") -> None:
    user = get_user_by_username(db, username)
    if user is None:
        raise UserError(f"No user called {username!r}.")
    validate_password(password)
    with write(db):
        db.execute(
            "update users set password_hash = ?, updated_at = ? where id = ?",
            (generate_password_hash(password, method=hash_method), utcnow(), user["id"]),
        )
        audit.log(db, user=actor, action="set_password", table="users", record_id=user["id"])


def set_language(db: sqlite_utils.Database, user: dict, language: str | None) -> None:
    with write(db):
        db.execute("update users set language = ?, updated_at = ? where id = ?", (language, utcnow(), user["id"]))
        audit.log(
            db, user=user, action="update", table="users", record_id=user["id"],
            before={"language": user.get("language")}, after={"language": language},
        )


def _since(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


def recent_failures(db: sqlite_utils.Database, username: str, remote_addr: str | None, minutes: int) -> tuple[int, int]:
    """Count failed logins in the last ``minutes`` for this username and for this address."""
    since = _since(minutes)
    # Failures count only since the last success, so one good login clears the slate.
    by_user = row(
        db,
        "select count(*) as n from login_attempts where username = ? and at >= ? and success = 0"
        " and at >= coalesce((select max(at) from login_attempts where username = ? and success = 1), '')",
        (username, since, username),
    )["n"]
    by_addr = 0
    if remote_addr:
        by_addr = row(
            db,
            "select count(*) as n from login_attempts where remote_addr = ? and at >= ? and success = 0",
            (remote_addr, since),
        )["n"]
    return by_user, by_addr


def authenticate(
    db: sqlite_utils.Database,
    username: str,
    password: str,
    remote_addr: str | None = None,
    *,
    max_failures: int = 5,
    lock_minutes: int = 15,
) -> LoginResult:
    """Check a login; record the attempt; refuse for a while after repeated failures."""
    username = username.strip()
    by_user, by_addr = recent_failures(db, username, remote_addr, lock_minutes)
    # An address may mistype for several people on a shared laptop, so it gets more room.
    if by_user >= max_failures or by_addr >= max_failures * 4:
        with write(db):
            db.execute(
                "insert into login_attempts (username, remote_addr, at, success) values (?, ?, ?, 0)",
                (username, remote_addr, utcnow()),
            )
        return LoginResult(None, "throttled", lock_minutes)
    user = get_user_by_username(db, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        ok = False
    else:
        ok = check_password_hash(user["password_hash"], password)
    with write(db):
        db.execute(
            "insert into login_attempts (username, remote_addr, at, success) values (?, ?, ?, ?)",
            (username, remote_addr, utcnow(), int(ok and bool(user["active"]))),
        )
        if ok and user["active"]:
            db.execute("update users set last_login_at = ? where id = ?", (utcnow(), user["id"]))
            audit.log(db, user=user, action="login", table="users", record_id=user["id"])
        else:
            audit.log(db, user=None, action="login_failed", table="users",
                      record_id=user["id"] if user else None, after={"username": username})
    if not ok:
        return LoginResult(None, "bad_credentials")
    if not user["active"]:
        return LoginResult(None, "disabled")
    return LoginResult(user, None)
