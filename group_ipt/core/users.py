"""Users, roles, sites and password checks: plain functions on the database, no Flask."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from ..base.errors import required
from ..store.db import new_id, row, rows, utcnow, write
from . import audit, login_sessions

ROLES = ("facilitator", "coordinator", "supervisor", "admin")
MIN_PASSWORD_LENGTH = 8
USERNAME_RE = re.compile(r"^[A-Za-z0-9._-]{2,40}$")
SITE_CODE_RE = re.compile(r"^[A-Z0-9]{2,8}$")
# Hashes of a throw-away password, one per hash method, so that checking an unknown username
# costs exactly what checking a known one does (same algorithm, same cost parameters).
_DUMMY_HASHES: dict[str, str] = {}
# The first delay once a username has failed LOGIN_MAX_FAILURES times from one address; it
# doubles with each further failure, up to LOGIN_LOCK_MINUTES.
FIRST_DELAY_SECONDS = 30
# Failures for one username from every address, or from one address for every username,
# before that username (or that address) is slowed down too: room for a shared laptop
# where several people mistype, and for a username tried from many places.
WIDE_FACTOR = 4


def dummy_hash(method: str) -> str:
    """Return a hash made with ``method`` to check when the username does not exist."""
    if method not in _DUMMY_HASHES:
        _DUMMY_HASHES[method] = generate_password_hash(new_id(), method=method)
    return _DUMMY_HASHES[method]


class UserError(ValueError):
    """A user or site could not be created or changed; the message says why."""


@dataclass(frozen=True)
class LoginResult:
    user: dict | None
    error: str | None  # one of: bad_credentials, disabled, throttled
    retry_after_seconds: int = 0

    @property
    def retry_after_minutes(self) -> int:
        return max(1, -(-self.retry_after_seconds // 60))


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
        audit.insert(db, "sites", site, user=actor, site_id=site["id"])
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
    site_ids: Sequence[str] = (),
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
    user: dict[str, Any] = {
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
        db.table("users").insert(user)
        for site_id in site_ids:
            db.table("user_sites").insert({"user_id": user["id"], "site_id": site_id})
        audit.log(db, user=actor, action="create", table="users", record_id=user["id"], after=user)
    return user


def get_user(db: sqlite_utils.Database, user_id: str) -> dict | None:
    return row(db, "select * from users where id = ?", (user_id,))


def get_user_by_username(db: sqlite_utils.Database, username: str) -> dict | None:
    return row(db, "select * from users where username = ?", (username.strip(),))


def _existing_user(db: sqlite_utils.Database, username: str) -> dict:
    """Return the user called ``username``; refuse an unknown name."""
    user = get_user_by_username(db, username)
    if user is None:
        raise UserError(f"No user called {username!r}.")
    return user


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
    return [
        r["site_id"]
        for r in db.query(
            "select us.site_id from user_sites us join sites s on s.id = us.site_id where us.user_id = ?"
            " order by s.name",
            (user["id"],),
        )
    ]


def set_active(db: sqlite_utils.Database, username: str, active: bool, *, actor: dict | None = None) -> dict:
    user = _existing_user(db, username)
    if user["active"] == int(active):
        return user
    if not active and user["role"] == "admin":
        admins = db.execute("select count(*) from users where role = 'admin' and active = 1").fetchone()[0]
        if admins <= 1:
            raise UserError("This is the last active admin; add another admin before disabling it.")
    with write(db):
        db.execute("update users set active = ?, updated_at = ? where id = ?", (int(active), utcnow(), user["id"]))
        if not active:
            login_sessions.end_all(db, user["id"], "disabled")
        after = required(get_user(db, user["id"]), "the user just changed")
        audit.log(
            db,
            user=actor,
            action="enable" if active else "disable",
            table="users",
            record_id=user["id"],
            before=user,
            after=after,
        )
    return after


def set_password(
    db: sqlite_utils.Database,
    username: str,
    password: str,
    *,
    actor: dict | None = None,
    hash_method: str = "scrypt",
    keep_session: str | None = None,
) -> None:
    """Set a new password; end the user's sessions (but ``keep_session``'s) and lift any login throttle."""
    user = _existing_user(db, username)
    validate_password(password)
    password_hash = generate_password_hash(password, method=hash_method)
    with write(db):
        db.execute(
            "update users set password_hash = ?, updated_at = ? where id = ?",
            (password_hash, utcnow(), user["id"]),
        )
        ended = login_sessions.end_all(db, user["id"], "password_changed", keep_token=keep_session)
        audit.log(
            db, user=actor, action="set_password", table="users", record_id=user["id"], after={"sessions_ended": ended}
        )
        _unlock(db, user, "password_reset", actor)
    if keep_session:
        # The session that changed the password goes on, under the new password.
        login_sessions.retag(db, keep_session, password_hash)


def set_language(db: sqlite_utils.Database, user: dict, language: str | None) -> None:
    with write(db):
        db.execute("update users set language = ?, updated_at = ? where id = ?", (language, utcnow(), user["id"]))
        audit.log(
            db,
            user=user,
            action="update",
            table="users",
            record_id=user["id"],
            before={"language": user.get("language")},
            after={"language": language},
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Throttle:
    """Failed logins counted against one key and when the next try is allowed."""

    scope: str  # user_address (this username from this address), user (from anywhere), address (any username)
    failures: int
    retry_at: datetime | None  # None: not slowed down
    remote_addr: str | None = None


def _delay(failures: int, threshold: int, cap_seconds: int) -> int:
    """Seconds to wait after ``failures`` (0 below the threshold; doubling from FIRST_DELAY_SECONDS)."""
    if failures < threshold:
        return 0
    return min(cap_seconds, FIRST_DELAY_SECONDS * 2 ** min(failures - threshold, 20))


def _last_unlock(db: sqlite_utils.Database, username: str) -> str:
    """Return when the username's failed logins were last cleared ("" if never): older ones no longer count."""
    return db.execute("select max(at) from login_unlocks where username = ?", (username,)).fetchone()[0] or ""


def _count(db, where: str, params: tuple) -> tuple[int, str | None]:
    sql = f"select count(*), max(at) from login_attempts where success = 0 and {where}"
    failures, last = db.execute(sql, params).fetchone()
    return failures, last


def throttles(
    db: sqlite_utils.Database,
    username: str,
    remote_addr: str | None,
    *,
    max_failures: int = 5,
    lock_minutes: int = 15,
    now: datetime | None = None,
) -> list[Throttle]:
    """Return what slows down a login of ``username`` from ``remote_addr`` now (growing delays).

    One username from one address waits after ``max_failures`` failures, twice as long after
    each further one, up to ``lock_minutes``; a login from another address is not affected
    until the username failed ``WIDE_FACTOR`` times as often from everywhere (then one try
    each FIRST_DELAY_SECONDS for it: slow for a guesser, a short wait for its owner). An
    address failing that often for any usernames waits too. A success clears its pair; a
    password reset or an admin's unlock clears the username.
    """
    now = now or datetime.now(UTC)
    since = _iso(now - timedelta(minutes=lock_minutes))
    unlocked = _last_unlock(db, username)
    cap = lock_minutes * 60
    found = []
    pair_success = (
        db.execute(
            "select max(at) from login_attempts where username = ? and remote_addr is ? and success = 1",
            (username, remote_addr),
        ).fetchone()[0]
        or ""
    )
    # Failures after (not at) the moment that cleared them: a reset in the same second clears them too.
    n, last = _count(
        db,
        "username = ? and remote_addr is ? and at >= ? and at > ?",
        (username, remote_addr, since, max(unlocked, pair_success)),
    )
    found.append(Throttle("user_address", n, _retry(last, _delay(n, max_failures, cap)), remote_addr))
    n, last = _count(db, "username = ? and at >= ? and at > ?", (username, since, unlocked))
    wide = max_failures * WIDE_FACTOR
    found.append(Throttle("user", n, _retry(last, FIRST_DELAY_SECONDS if n >= wide else 0)))
    if remote_addr:
        n, last = _count(db, "remote_addr = ? and at >= ?", (remote_addr, since))
        found.append(Throttle("address", n, _retry(last, _delay(n, wide, cap)), remote_addr))
    return found


def _retry(last: str | None, delay: int) -> datetime | None:
    return datetime.fromisoformat(last) + timedelta(seconds=delay) if last and delay else None


def login_locks(
    db: sqlite_utils.Database,
    username: str,
    *,
    max_failures: int = 5,
    lock_minutes: int = 15,
    now: datetime | None = None,
) -> list[Throttle]:
    """Return the addresses (and the username as a whole) that must wait before trying ``username`` again."""
    now = now or datetime.now(UTC)
    since = _iso(now - timedelta(minutes=lock_minutes))
    addresses = [
        r["remote_addr"]
        for r in db.query(
            "select distinct remote_addr from login_attempts where username = ? and success = 0 and at >= ?",
            (username, since),
        )
    ]
    found = []
    for addr in addresses:
        for t in throttles(db, username, addr, max_failures=max_failures, lock_minutes=lock_minutes, now=now):
            if t.scope != "address" and t.retry_at and t.retry_at > now and t not in found:
                found.append(t)
    return found


def _unlock(db, user: dict, reason: str, actor: dict | None) -> bool:
    """Record that the user's failed logins no longer count; audit it if any did."""
    since = _last_unlock(db, user["username"])
    failures = db.execute(
        "select count(*) from login_attempts where username = ? and success = 0 and at > ?",
        (user["username"], since),
    ).fetchone()[0]
    db.execute(
        "insert into login_unlocks (username, at, reason, actor_id) values (?, ?, ?, ?)",
        (user["username"], utcnow(), reason, actor["id"] if actor else None),
    )
    if failures:
        audit.log(
            db,
            user=actor,
            action="login_unlock",
            table="users",
            record_id=user["id"],
            after={"reason": reason, "failures_cleared": failures},
        )
    return bool(failures)


def unlock_login(db: sqlite_utils.Database, username: str, *, actor: dict | None = None) -> dict:
    """Let a throttled user try again at once (an admin's decision); audited."""
    user = _existing_user(db, username)
    with write(db):
        _unlock(db, user, "admin", actor)
    return user


def authenticate(
    db: sqlite_utils.Database,
    username: str,
    password: str,
    remote_addr: str | None = None,
    *,
    max_failures: int = 5,
    lock_minutes: int = 15,
    hash_method: str = "scrypt",
    now: datetime | None = None,
) -> LoginResult:
    """Check a login; record the attempt; slow down repeated failures (see ``throttles``).

    An unknown username is checked against a hash of the same method as real ones
    (``hash_method``), so its answer takes as long as a wrong password's.
    """
    username = username.strip()[:200]
    now = now or datetime.now(UTC)
    waits = [
        t.retry_at
        for t in throttles(db, username, remote_addr, max_failures=max_failures, lock_minutes=lock_minutes, now=now)
        if t.retry_at and t.retry_at > now
    ]
    if waits:
        # Refused without checking the password, and not counted: waiting is what lifts it.
        return LoginResult(None, "throttled", int((max(waits) - now).total_seconds()) + 1)
    user = get_user_by_username(db, username)
    if user is None:
        check_password_hash(dummy_hash(hash_method), password)
        ok = False
    else:
        ok = check_password_hash(user["password_hash"], password)
    active = user is not None and bool(user["active"])
    at = _iso(now)
    with write(db):
        db.execute(
            "insert into login_attempts (username, remote_addr, at, success) values (?, ?, ?, ?)",
            (username, remote_addr, at, int(ok and active)),
        )
        if ok and active and user is not None:
            db.execute("update users set last_login_at = ? where id = ?", (at, user["id"]))
            audit.log(db, user=user, action="login", table="users", record_id=user["id"])
        else:
            audit.log(
                db,
                user=None,
                action="login_failed",
                table="users",
                record_id=user["id"] if user else None,
                after={"username": username},
            )
            if not ok:
                _audit_new_lock(db, user, username, remote_addr, max_failures, lock_minutes, now)
    if not ok or user is None:  # an unknown username never has ok
        return LoginResult(None, "bad_credentials")
    if not active:
        return LoginResult(None, "disabled")
    return LoginResult(user, None)


def _audit_new_lock(db, user, username, remote_addr, max_failures, lock_minutes, now) -> None:
    """Audit the failure that starts (or lengthens) a wait, naming the username and the address."""
    for t in throttles(db, username, remote_addr, max_failures=max_failures, lock_minutes=lock_minutes, now=now):
        if t.retry_at and t.retry_at > now:
            audit.log(
                db,
                user=None,
                action="login_throttled",
                table="users",
                record_id=user["id"] if user else None,
                after={
                    "username": username,
                    "remote_addr": remote_addr,
                    "scope": t.scope,
                    "failures": t.failures,
                    "retry_at": _iso(t.retry_at),
                },
            )
