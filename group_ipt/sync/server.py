"""The central server's side of sync, shared by the HTTP endpoints and file import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from ..db import row, utcnow, write
from . import devices, engine, files
from .engine import SyncRejected

PULL_LIMIT = 2000
FILE_REPLY_MAX_CHANGES = 200_000


@dataclass
class CentralConfig:
    send_names: bool = False
    folders: dict[str, Path] = field(default_factory=dict)
    max_batch_records: int = engine.MAX_BATCH_RECORDS
    # The instrument files: a received screening is scored again to find a risk the laptop did not flag.
    instruments: dict | None = None

    @classmethod
    def from_app_config(cls, config, instruments: dict | None = None) -> CentralConfig:
        return cls(
            instruments=instruments,
            send_names=bool(config.get("SYNC_SEND_NAMES")),
            folders={"forms": Path(config["FORMS_DIR"]), "translations": Path(config["TRANSLATIONS_DIR"])},
            max_batch_records=int(config.get("SYNC_MAX_BATCH_RECORDS") or engine.MAX_BATCH_RECORDS),
        )


def hello(db: sqlite_utils.Database, device: dict, config: CentralConfig) -> dict:
    site = row(db, "select id, code, name from sites where id = ?", (device["site_id"],))
    return {"device_id": device["id"], "device_name": device["name"], "site": site,
            "settings": {"send_names": config.send_names}, "server_time": utcnow()}


def push(db, device: dict, body: object, config: CentralConfig, *, via: str = "http") -> dict:
    return engine.apply_batch(db, device, body, send_names=config.send_names, via=via,
                              max_records=config.max_batch_records, instruments=config.instruments)


def pull(db, device: dict, request: object, config: CentralConfig) -> dict:
    if not isinstance(request, dict):
        raise SyncRejected("A pull request is a JSON object.")
    cursor, limit = _cursor(request.get("cursor", 0)), request.get("limit", PULL_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
        raise SyncRejected("'limit' must be between 1 and 10000.")
    page = engine.feed(db, device, cursor, limit=limit)
    page["settings"] = {"send_names": config.send_names}
    page["open_conflicts"] = engine.open_conflicts(db, device["site_id"])
    if request.get("first", True):
        page["reference"] = engine.reference_data(db, device["site_id"])
        page["files"] = files.files_to_send(config.folders, request.get("files") or {})
    with write(db):
        db.execute("update sync_devices set last_seen_at = ? where id = ?", (utcnow(), device["id"]))
    return page


def _cursor(cursor: object) -> int:
    """Check a pull cursor (API, HTTP sync and files alike)."""
    if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
        raise SyncRejected("'cursor' must be a whole number of at least 0.")
    if cursor > engine.MAX_INTEGER:  # the lookup would overflow
        raise SyncRejected(f"'cursor' must be at most {engine.MAX_INTEGER}.")
    return cursor


def import_file(db, path: Path, reply_path: Path, config: CentralConfig) -> dict:
    """Apply a laptop's export file and write the signed reply; refuse replays and tampering."""
    doc = files.read_header(path)
    if doc["kind"] != "push":
        raise SyncRejected(f"{path} is a reply for a laptop; import it on the laptop, not on the central server.")
    device = devices.get_device(db, doc["device_id"])
    if device is None:
        raise SyncRejected(f"{path} comes from a device this server does not know.", 403)
    if device["revoked_at"]:
        raise SyncRejected(f"{path} comes from the device {device['name']!r}, revoked on {device['revoked_at']}.", 403)
    body = files.verify(doc, device["signing_key"])
    try:
        devices.note_version(db, device, body.get("app_version"))
    except devices.DeviceError as exc:
        raise SyncRejected(f"{path}: {exc}") from exc
    seen = row(db, "select imported_at from sync_files where file_id = ?", (doc["file_id"],))
    if seen:
        raise SyncRejected(f"{path} was already imported on {seen['imported_at']}; nothing was done. "
                           "Export a new file on the laptop to sync again.", 409)
    batches, cursor = body.get("batches"), _cursor(body.get("cursor", 0))  # all checked before anything is applied
    if not isinstance(batches, list):
        raise SyncRejected("The file has no list of batches.")
    for batch in batches:  # validate all before applying any
        engine.validate_batch(db, batch, device, max_records=config.max_batch_records)
    acks = [push(db, device, batch, config, via="file") for batch in batches]
    pages = []
    while True:
        page = pull(db, device, {"cursor": cursor, "limit": PULL_LIMIT, "files": body.get("files") or {},
                                 "first": not pages}, config)
        pages.append(page)
        cursor = page["cursor"]
        if not page["more"] or sum(len(p["changes"]) for p in pages) >= FILE_REPLY_MAX_CHANGES:
            break
    with write(db):
        db.execute("insert into sync_files (file_id, device_id, imported_at) values (?, ?, ?)",
                   (doc["file_id"], device["id"], utcnow()))
    reply = {"in_reply_to": doc["file_id"], "acks": acks, "pages": pages, "made_at": utcnow()}
    from ..db import new_id

    files.write_signed(reply_path, kind="reply", device_id=device["id"], file_id=new_id(), body=reply,
                       key=device["signing_key"])
    return {"device": device["name"], "batches": len(acks),
            "applied": sum(a["applied"] for a in acks), "quarantined": sum(a["quarantined"] for a in acks),
            "conflicts": sum(a["conflicts"] for a in acks),
            "changes_back": sum(len(p["changes"]) for p in pages), "reply": str(reply_path)}
