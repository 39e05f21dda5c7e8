"""The central server's side of sync, shared by the HTTP endpoints and file import."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from ..store.db import new_id, row, utcnow, write
from . import devices, engine, files, keys
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
    reply_key_path: Path | None = None  # the centre's own signing key, a 0600 file beside the database

    @classmethod
    def from_app_config(cls, config, instruments: dict | None = None) -> CentralConfig:
        return cls(
            instruments=instruments,
            send_names=bool(config.get("SYNC_SEND_NAMES")),
            folders={"forms": Path(config["FORMS_DIR"]), "translations": Path(config["TRANSLATIONS_DIR"])},
            max_batch_records=int(config.get("SYNC_MAX_BATCH_RECORDS") or engine.MAX_BATCH_RECORDS),
            reply_key_path=Path(config["DATA_DIR"]) / keys.CENTRE_KEY_FILE,
        )

    def reply_key(self):
        if self.reply_key_path is None:
            raise SyncRejected("The central server has no place for its signing key (DATA_DIR).")
        try:
            return keys.load_or_create(self.reply_key_path)
        except (keys.KeyError_, OSError) as exc:
            raise SyncRejected(f"The central server's signing key cannot be used: {exc}", 500) from exc


def hello(db: sqlite_utils.Database, device: dict, config: CentralConfig) -> dict:
    site = row(db, "select id, code, name from sites where id = ?", (device["site_id"],))
    return {
        "device_id": device["id"],
        "device_name": device["name"],
        "site": site,
        "settings": {"send_names": config.send_names, "code_block": device.get("code_block")},
        "server_time": utcnow(),
        "centre_key": keys.public_text(config.reply_key()),
        "key_state": devices.key_state(device),
    }


def register_key(db, device: dict, body: object, config: CentralConfig) -> dict:
    """Keep the laptop's public key (token-authenticated) and answer with the centre's own."""
    if not isinstance(body, dict):
        raise SyncRejected("A key registration is a JSON object with 'public_key'.")
    try:
        devices.register_key(db, device, body.get("public_key"))
    except keys.KeyError_ as exc:
        raise SyncRejected(str(exc)) from exc
    return {"centre_key": keys.public_text(config.reply_key()), "key_state": "ed25519"}


def push(db, device: dict, body: object, config: CentralConfig, *, via: str = "http") -> dict:
    return engine.apply_batch(
        db,
        device,
        body,
        send_names=config.send_names,
        via=via,
        max_records=config.max_batch_records,
        instruments=config.instruments,
    )


def pull(db, device: dict, request: object, config: CentralConfig) -> dict:
    if not isinstance(request, dict):
        raise SyncRejected("A pull request is a JSON object.")
    cursor, limit = _cursor(request.get("cursor", 0)), request.get("limit", PULL_LIMIT)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 10_000:
        raise SyncRejected("'limit' must be between 1 and 10000.")
    page = engine.feed(db, device, cursor, limit=limit)
    page["settings"] = {"send_names": config.send_names, "code_block": device.get("code_block")}
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


def _verify_push(path: Path, doc: dict, device: dict) -> dict | files.Parts:
    """Check a laptop's file with the device's public key (version 2) or its legacy key (version 1)."""
    if doc["version"] == files.FILE_VERSION:
        if not device.get("public_key"):
            raise SyncRejected(
                f"{path} is signed with a key this server does not know yet. On the laptop, run "
                "'group-ipt sync setup --server URL --token TOKEN' once with the network (or "
                "'group-ipt sync') to register it, then export again.",
                403,
            )
        return files.verify(doc, public_key=device["public_key"])
    if not device.get("signing_key"):
        raise SyncRejected(
            f"{path} is signed the old way (version 1), which this device no longer uses: "
            "update group-ipt on the laptop and export again.",
            403,
        )
    return files.verify(doc, device["signing_key"])


def _file_batches(body: dict | files.Parts):
    """The batches of a laptop's file, in order (a version 2 file's one at a time)."""
    if not isinstance(body, files.Parts):
        batches = body.get("batches")
        if not isinstance(batches, list):
            raise SyncRejected("The file has no list of batches.")
        yield from batches
        return
    for part in body.parts():
        if "batch" not in part:
            raise SyncRejected(f"The file holds a part that is not a batch: {', '.join(part)}.")
        yield part["batch"]


def import_file(db, path: Path, reply_path: Path, config: CentralConfig) -> dict:
    """Apply a laptop's export file and write the signed reply; refuse replays and tampering."""
    doc = files.read_header(path)
    device = _sending_device(db, path, doc)
    body = _verify_push(path, doc, device)
    meta = body.meta if isinstance(body, files.Parts) else body
    try:
        devices.note_version(db, device, meta.get("app_version"))
    except devices.DeviceError as exc:
        raise SyncRejected(f"{path}: {exc}") from exc
    _refuse_replay(db, path, doc)
    cursor = _cursor(meta.get("cursor", 0))  # all checked before anything is applied
    for batch in _file_batches(body):  # validate all before applying any, one batch in memory at a time
        engine.validate_batch(db, batch, device, max_records=config.max_batch_records)
    acks = [push(db, device, batch, config, via="file") for batch in _file_batches(body)]
    pages = _ReplyPages(db, device, config, cursor=cursor, laptop_files=meta.get("files") or {})
    _write_reply(reply_path, doc, device, acks, pages, config)
    with write(db):
        db.execute(
            "insert into sync_files (file_id, device_id, imported_at) values (?, ?, ?)",
            (doc["file_id"], device["id"], utcnow()),
        )
    return {
        "device": device["name"],
        "batches": len(acks),
        "applied": sum(a["applied"] for a in acks),
        "quarantined": sum(a["quarantined"] for a in acks),
        "conflicts": sum(a["conflicts"] for a in acks),
        "changes_back": pages.changes,
        "reply": str(reply_path),
    }


def _sending_device(db, path: Path, doc: dict) -> dict:
    """The active device a laptop's export file says it comes from."""
    if doc["kind"] != "push":
        raise SyncRejected(f"{path} is a reply for a laptop; import it on the laptop, not on the central server.")
    device = devices.get_device(db, doc["device_id"])
    if device is None:
        raise SyncRejected(f"{path} comes from a device this server does not know.", 403)
    if device["revoked_at"]:
        raise SyncRejected(f"{path} comes from the device {device['name']!r}, revoked on {device['revoked_at']}.", 403)
    return device


def _refuse_replay(db, path: Path, doc: dict) -> None:
    seen = row(db, "select imported_at from sync_files where file_id = ?", (doc["file_id"],))
    if seen:
        raise SyncRejected(
            f"{path} was already imported on {seen['imported_at']}; nothing was done. "
            "Export a new file on the laptop to sync again.",
            409,
        )


class _ReplyPages:
    """The centre's changes for the laptop, a page at a time (written to the reply as they come)."""

    def __init__(self, db, device: dict, config: CentralConfig, *, cursor: int, laptop_files: dict) -> None:
        self.db, self.device, self.config = db, device, config
        self.cursor, self.laptop_files = cursor, laptop_files  # the laptop's shared files: path -> sha256
        self.changes = 0  # how many were sent back

    def __iter__(self):
        first = True
        while True:
            request = {"cursor": self.cursor, "limit": PULL_LIMIT, "files": self.laptop_files, "first": first}
            page = pull(self.db, self.device, request, self.config)
            first = False
            self.changes += len(page["changes"])
            self.cursor = page["cursor"]
            yield page
            if not page["more"] or self.changes >= FILE_REPLY_MAX_CHANGES:
                return


def _write_reply(
    reply_path: Path, doc: dict, device: dict, acks: list[dict], pages: Iterable[dict], config: CentralConfig
) -> None:
    """Write the signed reply: the acknowledgements, then the pages (signed as the laptop can check)."""
    reply = {"in_reply_to": doc["file_id"], "made_at": utcnow()}
    signing: dict[str, Any]
    if device.get("public_key"):
        parts = itertools.chain(({"ack": a} for a in acks), ({"page": p} for p in pages))
        signing = {"private_key": config.reply_key(), "parts": parts}
    else:  # a laptop with the old software reads version 1 only: one body
        reply.update(acks=acks, pages=list(pages))
        signing = {"key": device["signing_key"]}
    files.write_signed(reply_path, kind="reply", device_id=device["id"], file_id=new_id(), body=reply, **signing)
