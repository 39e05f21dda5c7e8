"""Read and write the main resources as plain records for the JSON API, within one site.

The API writes rows with the schema's own checks (types, required columns, unique keys);
the change-capture triggers log every write for sync like any other write path.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from .. import audit
from ..db import new_id, row, rows, utcnow, write
from . import tracking

# API name -> table. Each is a synced table (id, site_id, created_at, updated_at).
RESOURCES = {
    "participants": "participants",
    "screenings": "screenings",
    "referrals": "referrals",
    "cycles": "cycles",
    "sessions": "sessions",
    "attendance": "attendance",
}
MANAGED = ("id", "site_id", "created_at", "updated_at")
MAX_PAGE = 500


class RecordError(ValueError):
    """A record could not be read or written; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def columns(db: sqlite_utils.Database, resource: str) -> list[dict]:
    """Return the table's columns: name, type, required (not null without a default)."""
    table = _table(resource)
    out = []
    for _cid, name, ctype, notnull, default, pk in db.execute(f'pragma table_info("{table}")').fetchall():
        out.append({"name": name, "type": ctype.lower(), "required": bool(notnull) and default is None and not pk,
                    "pk": bool(pk)})
    return out


def _table(resource: str) -> str:
    if resource not in RESOURCES:
        raise RecordError(f"Unknown resource {resource!r}; choose one of: {', '.join(RESOURCES)}.", 404)
    return RESOURCES[resource]


def list_records(db, resource: str, site_id: str, *, after: str | None = None, limit: int = 100,
                 updated_since: str | None = None) -> dict:
    table = _table(resource)
    if not 1 <= limit <= MAX_PAGE:
        raise RecordError(f"'limit' must be between 1 and {MAX_PAGE}.")
    sql, params = f'select * from "{table}" where site_id = ?', [site_id]
    if after:
        sql += " and id > ?"
        params.append(after)
    if updated_since:
        sql += " and updated_at >= ?"
        params.append(updated_since)
    found = rows(db, sql + " order by id limit ?", [*params, limit])
    return {"items": found, "next_after": found[-1]["id"] if len(found) == limit else None}


def get_record(db, resource: str, site_id: str, record_id: str) -> dict:
    found = row(db, f'select * from "{_table(resource)}" where id = ? and site_id = ?', (record_id, site_id))
    if found is None:  # another site's record answers exactly as a missing one
        raise RecordError(f"No {resource} record {record_id!r}.", 404)
    return found


def _check_fields(db, resource: str, data: object, *, creating: bool) -> dict:
    if not isinstance(data, dict):
        raise RecordError("The body must be a JSON object of fields.")
    cols = {c["name"]: c for c in columns(db, resource)}
    unknown = sorted(set(data) - set(cols))
    if unknown:
        raise RecordError(f"Unknown field(s) for {resource}: {', '.join(unknown)}.")
    managed = sorted(k for k in data if k in MANAGED)
    if managed:
        raise RecordError(f"These fields are set by the server: {', '.join(managed)}.")
    if creating:
        missing = sorted(n for n, c in cols.items() if c["required"] and n not in MANAGED and n not in data)
        if missing:
            raise RecordError(f"Missing required field(s) for {resource}: {', '.join(missing)}.")
    for key, value in data.items():
        if isinstance(value, dict | list):
            raise RecordError(f"Field {key!r} must be text, a number or null (JSON fields are sent as text).")
    return data


def _actor(device: dict) -> dict:
    return {"id": None, "username": f"device:{device['name']}"}


def create_record(db, resource: str, device: dict, data: object) -> dict:
    table = _table(resource)
    data = _check_fields(db, resource, data, creating=True)
    now = utcnow()
    record = {**data, "id": new_id(), "site_id": device["site_id"], "created_at": now, "updated_at": now}
    try:
        with write(db):
            db[table].insert(record)
            audit.log(db, user=_actor(device), action="create", table=table, record_id=record["id"],
                      site_id=device["site_id"], after=record)
    except sqlite3.IntegrityError as exc:
        raise RecordError(f"The record breaks a rule of the {table} table: {exc}.", 409) from exc
    return get_record(db, resource, device["site_id"], record["id"])


def update_record(db, resource: str, device: dict, record_id: str, data: object) -> dict:
    table = _table(resource)
    data = _check_fields(db, resource, data, creating=False)
    before = get_record(db, resource, device["site_id"], record_id)
    if not data:
        return before
    sets = ", ".join(f'"{k}" = ?' for k in data)
    try:
        with write(db):
            db.execute(f'update "{table}" set {sets}, updated_at = ? where id = ?',
                       [*data.values(), utcnow(), record_id])
            after = get_record(db, resource, device["site_id"], record_id)
            audit.log(db, user=_actor(device), action="update", table=table, record_id=record_id,
                      site_id=device["site_id"], before=before, after=after)
    except sqlite3.IntegrityError as exc:
        raise RecordError(f"The change breaks a rule of the {table} table: {exc}.", 409) from exc
    return after


def delete_record(db, resource: str, device: dict, record_id: str) -> None:
    table = _table(resource)
    before = get_record(db, resource, device["site_id"], record_id)
    try:
        with write(db):
            db.execute(f'delete from "{table}" where id = ?', (record_id,))
            audit.log(db, user=_actor(device), action="delete", table=table, record_id=record_id,
                      site_id=device["site_id"], before=before)
    except sqlite3.IntegrityError as exc:
        raise RecordError(f"Other records refer to this one; delete or change them first ({exc}).", 409) from exc


def resource_tables_are_synced(db) -> list[str]:
    """Resources whose table does not exist (yet) in this database."""
    tables = tracking.synced_tables(db)
    return [r for r, t in RESOURCES.items() if t not in tables]
