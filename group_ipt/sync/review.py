"""What a coordinator reviews after sync: conflicts between two versions, and quarantined records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlite_utils

from ..core import audit
from ..store import tracking
from ..store.db import row, rows, utcnow, write
from . import engine, rules


class ReviewError(ValueError):
    """A conflict or quarantined record cannot be resolved as asked; the message says why."""


def _site_filter(site_ids: list[str] | None) -> tuple[str, list]:
    if site_ids is None:
        return "", []
    return f" and site_id in ({','.join('?' * len(site_ids)) or chr(39) * 2})", list(site_ids)


def list_conflicts(db: sqlite_utils.Database, site_ids: list[str] | None, status: str = "open") -> list[dict]:
    where, params = _site_filter(site_ids)
    found = rows(
        db, f"select * from sync_conflicts where status = ?{where} order by id desc limit 500", [status, *params]
    )
    names = {d["id"]: d["name"] for d in rows(db, "select id, name from sync_devices")}
    for c in found:
        # Which version is in use and why, told truthfully: the larger hybrid clock wins, and a
        # stamp is the sending laptop's clock (possibly wrong), not when the change really was made.
        c["winner_stamp"], c["loser_stamp"] = _stamp(c["winner_hlc"]), _stamp(c["loser_hlc"])
        c["loser_device"] = names.get(c["loser_origin"] or "")
        c["winner_ahead"] = bool(c["winner_stamp"] and c["winner_stamp"] > _later(c["created_at"]))
        c["winner"] = json.loads(c["winner_json"]) if c["winner_json"] else None
        c["loser"] = json.loads(c["loser_json"]) if c["loser_json"] else None
        keys = sorted(set(c["winner"] or {}) | set(c["loser"] or {}))
        c["fields"] = [(k, (c["winner"] or {}).get(k), (c["loser"] or {}).get(k)) for k in keys]
    return found


def _stamp(hlc: str | None) -> str | None:
    """The time a version's clock says it was made, as UTC ISO text (the |datetime filter shows it)."""
    if not hlc or not tracking.valid_hlc(hlc):
        return None
    wall = tracking.parse_hlc(hlc)[0]
    return datetime.fromtimestamp(wall / 1000, UTC).replace(microsecond=0).isoformat()


def _later(iso: str) -> str:
    """``iso`` plus ten minutes: a stamp past it was ahead of the centre's clock when it arrived."""
    return (datetime.fromisoformat(iso) + timedelta(minutes=10)).isoformat()


def get_conflict(db, conflict_id: int, site_ids: list[str] | None) -> dict:
    return _of_sites(db, "select * from sync_conflicts where id = ?", conflict_id, site_ids, "No such conflict.")


def _of_sites(db, query: str, record_id: int, site_ids: list[str] | None, missing: str) -> dict:
    """The row ``query`` finds for ``record_id`` if it is of the user's sites; else ReviewError(``missing``)."""
    where, params = _site_filter(site_ids)
    found = row(db, query + where, [record_id, *params])
    if found is None:
        raise ReviewError(missing)
    return found


def resolve_conflict(db, conflict_id: int, action: str, *, user: dict, site_ids: list[str] | None) -> dict:
    """Keep the current version, or replace it by the other one (a new change that travels everywhere)."""
    conflict = get_conflict(db, conflict_id, site_ids)
    if conflict["status"] != "open":
        raise ReviewError("This conflict was already resolved.")
    if action not in ("keep", "use_other"):
        raise ReviewError(f"Unknown action {action!r}.")
    table, record_id = conflict["table_name"], conflict["record_id"]
    if table not in tracking.synced_tables(db):
        raise ReviewError(f"The table {table} does not exist here.")
    with write(db):
        if action == "use_other":
            before = row(db, f'select * from "{table}" where id = ?', (record_id,))
            other = json.loads(conflict["loser_json"]) if conflict["loser_json"] else None
            if other is None:
                db.execute(f'delete from "{table}" where id = ?', (record_id,))
            else:
                columns = set(tracking.table_columns(db, table))
                data = {k: v for k, v in other.items() if k in columns}
                data["updated_at"] = utcnow()
                db[table].upsert(data, pk="id")
            audit.log(
                db,
                user=user,
                action="resolve_conflict",
                table=table,
                record_id=record_id,
                site_id=conflict["site_id"],
                before=before,
                after=other,
            )
        db.execute(
            "update sync_conflicts set status = ?, resolved_by = ?, resolved_at = ? where id = ?",
            ("replaced" if action == "use_other" else "kept", user.get("username"), utcnow(), conflict_id),
        )
    return get_conflict(db, conflict_id, site_ids)


def list_quarantine(db, site_ids: list[str] | None, status: str = "open") -> list[dict]:
    where, params = _site_filter(site_ids)
    return rows(
        db, f"select * from sync_quarantine where status = ?{where} order by id desc limit 500", [status, *params]
    )


def reason_text(item: dict, gettext) -> str:
    """The reason a record is in quarantine, translated with ``gettext`` when it was kept as a message."""
    if not item.get("reason_json"):
        return item["error"]
    reason = json.loads(item["reason_json"])
    return rules.Problem(reason["message"], reason["params"]).translated(gettext)


def retry_quarantined(
    db, item_id: int, *, user: dict, site_ids: list[str] | None, instruments: dict | None = None
) -> bool:
    """Apply a quarantined record again (after the cause was fixed); return True if it went in."""
    item = _open_quarantined(db, item_id, site_ids)
    record = json.loads(item["record_json"])
    if item["direction"] != "in" or not {"t", "id", "site", "hlc", "del"} <= set(record):
        raise ReviewError("Only records received from a laptop can be retried here; sync the laptop again.")
    with engine.applying(db):
        counts = engine.reapply_quarantined(db, item, instruments=instruments)
        if not (counts["applied"] or counts["merged"] or counts["duplicates"]):
            return False
        _close_quarantined(db, item, "applied", user=user, action="retry_quarantined")
    return True


def dismiss_quarantined(db, item_id: int, *, user: dict, site_ids: list[str] | None) -> None:
    item = _open_quarantined(db, item_id, site_ids)
    with write(db):
        _close_quarantined(
            db, item, "dismissed", user=user, action="dismiss_quarantined", before=json.loads(item["record_json"])
        )


def _open_quarantined(db, item_id: int, site_ids: list[str] | None) -> dict:
    """The open quarantined record ``item_id`` of the user's sites, or ReviewError."""
    query = "select * from sync_quarantine where id = ? and status = 'open'"
    return _of_sites(db, query, item_id, site_ids, "No such quarantined record.")


def _close_quarantined(db, item: dict, status: str, *, user: dict, action: str, before: dict | None = None) -> None:
    """Mark a quarantined record applied or dismissed and log who did it (inside the caller's transaction)."""
    db.execute("update sync_quarantine set status = ? where id = ?", (status, item["id"]))
    audit.log(
        db,
        user=user,
        action=action,
        table=item["table_name"],
        record_id=item["record_id"],
        site_id=item["site_id"],
        before=before,
    )
