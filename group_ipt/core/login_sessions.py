"""Login sessions kept on the server, so that ending one really ends it.

The browser's cookie holds a random token; the database holds only its hash, the user,
when it was last used and whether it ended. A copied cookie is worth nothing once its
row has ended (logout), once the user's password changed (the row keeps a digest of the
password hash it was made with, so a new password that arrives by sync ends it too), once
the user is disabled, after ``idle_minutes`` without a request and after ``lifetime_hours``.
Plain functions on the database, no Flask.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from ..store.db import row, utcnow, write

# A request refreshes ``last_seen_at`` only when it is older than this, so that reading
# pages does not write to the database on every click.
TOUCH_SECONDS = 60
# Sessions unused this long are deleted when someone logs in (they ended long ago anyway).
KEEP_DAYS = 30


@dataclass(frozen=True)
class SessionCheck:
    user: dict | None
    reason: str | None  # why there is no user: missing, ended, idle, expired, password_changed, disabled


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def password_tag(password_hash: str) -> str:
    return _digest("group-ipt session\n" + password_hash)[:32]


def _parse(at: str) -> datetime:
    return datetime.fromisoformat(at)


def start(db: sqlite_utils.Database, user: dict, remote_addr: str | None = None) -> str:
    """Open a session for ``user`` and return the token to keep in the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    forget = (datetime.now(UTC) - timedelta(days=KEEP_DAYS)).replace(microsecond=0).isoformat()
    with write(db):
        db.execute("delete from login_sessions where last_seen_at < ?", (forget,))
        db.table("login_sessions").insert(
            {
                "id": _digest(token),
                "user_id": user["id"],
                "password_tag": password_tag(user["password_hash"]),
                "remote_addr": remote_addr,
                "created_at": now,
                "last_seen_at": now,
            }
        )
    return token


def check(
    db: sqlite_utils.Database,
    token: str | None,
    *,
    idle_minutes: float,
    lifetime_hours: float,
    now: datetime | None = None,
) -> SessionCheck:
    """Return the session's user if it may go on; end it (with the reason) when it may not."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return SessionCheck(None, "missing")
    found = row(
        db,
        "select s.*, u.password_hash, u.active from login_sessions s join users u on u.id = s.user_id where s.id = ?",
        (_digest(token),),
    )
    if found is None:
        return SessionCheck(None, "missing")
    if found["ended_at"]:
        # Ended by the server (password changed, user disabled): say so; a logout says nothing more.
        return SessionCheck(None, "ended" if found["ended_reason"] == "logout" else found["ended_reason"])
    now = now or datetime.now(UTC)
    reason = None
    if not found["active"]:
        reason = "disabled"
    elif found["password_tag"] != password_tag(found["password_hash"]):
        reason = "password_changed"
    elif now - _parse(found["last_seen_at"]) > timedelta(minutes=idle_minutes):
        reason = "idle"
    elif now - _parse(found["created_at"]) > timedelta(hours=lifetime_hours):
        reason = "expired"
    if reason:
        _end(db, "id = ?", (found["id"],), reason)
        return SessionCheck(None, reason)
    if (now - _parse(found["last_seen_at"])).total_seconds() >= TOUCH_SECONDS:
        with write(db):
            db.execute(
                "update login_sessions set last_seen_at = ? where id = ?",
                (now.replace(microsecond=0).isoformat(), found["id"]),
            )
    return SessionCheck(row(db, "select * from users where id = ?", (found["user_id"],)), None)


def retag(db: sqlite_utils.Database, token: str, password_hash: str) -> None:
    """Let the session of ``token`` go on under a new password (the one that changed it)."""
    with write(db):
        db.execute(
            "update login_sessions set password_tag = ? where id = ?", (password_tag(password_hash), _digest(token))
        )


def _end(db: sqlite_utils.Database, where: str, params: tuple, reason: str) -> int:
    with write(db):
        sql = f"update login_sessions set ended_at = ?, ended_reason = ? where ended_at is null and {where}"
        return db.execute(sql, (utcnow(), reason, *params)).rowcount


def end(db: sqlite_utils.Database, token: str | None, reason: str = "logout") -> None:
    """End the session holding ``token`` (logout); a copy of its cookie is refused from now on."""
    if token and isinstance(token, str):
        _end(db, "id = ?", (_digest(token),), reason)


def end_all(db: sqlite_utils.Database, user_id: str, reason: str, *, keep_token: str | None = None) -> int:
    """End every open session of a user (password changed or reset, user disabled), except ``keep_token``'s."""
    if keep_token:
        return _end(db, "user_id = ? and id != ?", (user_id, _digest(keep_token)), reason)
    return _end(db, "user_id = ?", (user_id,), reason)


def open_sessions(db: sqlite_utils.Database, user_id: str) -> int:
    return db.execute(
        "select count(*) from login_sessions where user_id = ? and ended_at is null", (user_id,)
    ).fetchone()[0]
