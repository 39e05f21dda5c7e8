"""Record who changed what, and when, in the append-only ``audit_log`` table."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from ..store.db import new_id, utcnow

# Never written to the log, even inside a before/after snapshot.
SECRET_FIELDS = {"password_hash", "token_hash", "password"}


def _clean(record: dict[str, Any] | None) -> str | None:
    if record is None:
        return None
    safe = {k: v for k, v in record.items() if k not in SECRET_FIELDS}
    return json.dumps(safe, ensure_ascii=False, sort_keys=True, default=str)


def log(
    db: sqlite_utils.Database,
    *,
    user: dict | None,
    action: str,
    table: str | None = None,
    record_id: str | None = None,
    site_id: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    """Append one audit entry; call it inside the same transaction as the change."""
    db.execute(
        "insert into audit_log (at, user_id, username, action, table_name, record_id,"
        " site_id, before_json, after_json) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            utcnow(),
            user["id"] if user else None,
            user["username"] if user else None,
            action,
            table,
            record_id,
            site_id,
            _clean(before),
            _clean(after),
        ),
    )


def insert(
    db: sqlite_utils.Database,
    table: str,
    record: dict,
    *,
    user: dict | None,
    action: str = "create",
    site_id: str | None = None,
    extra: dict | None = None,
) -> dict:
    """Insert ``record`` into ``table`` and log it; call it inside the caller's transaction.

    The entry's site is the record's own ``site_id`` unless ``site_id`` is given (a
    site itself); ``extra`` adds what the log should keep beyond the row.
    """
    db.table(table).insert(record)
    log(
        db,
        user=user,
        action=action,
        table=table,
        record_id=record["id"],
        site_id=site_id or record.get("site_id"),
        after={**record, **extra} if extra else record,
    )
    return record


def replace(
    db: sqlite_utils.Database,
    table: str,
    before: dict | None,
    values: dict,
    *,
    user: dict | None,
    now: str,
    extra: dict | None = None,
) -> dict:
    """Save ``values`` as the one row that ``before`` was (None: a new row), log it, return the row.

    The row keeps ``before``'s id and creation time; call it inside the caller's
    transaction, which read ``before``. ``extra`` adds what the log should keep
    beyond the row.
    """
    record = {
        "id": before["id"] if before else new_id(),
        **values,
        "created_at": before["created_at"] if before else now,
        "updated_at": now,
    }
    db.table(table).upsert(record, pk="id")
    log(
        db,
        user=user,
        action="update" if before else "create",
        table=table,
        record_id=record["id"],
        site_id=record.get("site_id"),
        before=before,
        after={**record, **extra} if extra else record,
    )
    return record


def entries(db: sqlite_utils.Database, table: str | None = None, record_id: str | None = None):
    sql = "select * from audit_log"
    params: list = []
    if table:
        sql += " where table_name = ?"
        params.append(table)
        if record_id:
            sql += " and record_id = ?"
            params.append(record_id)
    return list(db.query(sql + " order by id", params))
