"""Record who changed what, and when, in the append-only ``audit_log`` table."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from ..store.db import utcnow

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
