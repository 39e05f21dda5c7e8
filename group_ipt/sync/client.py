"""The laptop's side of sync: setup, push, pull, status, and the file export/import for a USB stick."""

from __future__ import annotations

import gzip
import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from .. import __version__
from ..base import inflate
from ..store import tracking
from ..store.db import new_id, one, row, rows, utcnow, write
from . import devices, engine, files, keys
from .engine import SyncRejected, get_state, set_state

Progress = Callable[[str, int, int], None]
BATCH_RECORDS = 1000


class SyncError(RuntimeError):
    """Sync could not run (no server set up, network down); what was done so far is kept."""


# ---- HTTP -------------------------------------------------------------------------------


class HttpTransport:
    """Talks to the central server's /api/v1/sync endpoints with the device token (stdlib only)."""

    def __init__(self, server: str, token: str, timeout: float = 60):
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip",
            devices.VERSION_HEADER: __version__,
        }
        if body is not None:
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        # The address was checked to start with http:// or https:// by setup.
        request = urllib.request.Request(  # noqa: S310
            self.server + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (http(s) only)
                return _read_json(response.read(), response.headers.get("Content-Encoding"))
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = _read_json(raw, exc.headers.get("Content-Encoding")).get("error") or exc.reason
            except (ValueError, OSError):
                message = exc.reason
            raise SyncRejected(f"The server refused: {message} (HTTP {exc.code})", exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise SyncError(f"Cannot reach the server {self.server}: {getattr(exc, 'reason', exc)}") from exc

    def hello(self) -> dict:
        return self._call("GET", "/api/v1/sync/hello")

    def push(self, payload: bytes) -> dict:
        return self._call("POST", "/api/v1/sync/push", payload)

    def pull(self, request: dict) -> dict:
        return self._call("POST", "/api/v1/sync/pull", engine.compress(request))

    def register_key(self, public_key: str) -> dict:
        return self._call("POST", "/api/v1/sync/key", engine.compress({"public_key": public_key}))


# The most a server's answer may unpack to (a pull page, with form and translation files).
MAX_REPLY_UNPACKED = 128 * 1024 * 1024


def _read_json(raw: bytes, encoding: str | None) -> dict:
    if encoding == "gzip":
        try:
            found = inflate.inflate_json(raw, MAX_REPLY_UNPACKED)
        except inflate.TooLarge as exc:
            raise SyncRejected(f"The server's answer is too large: {exc}", 413) from exc
        except inflate.Unreadable as exc:
            raise ValueError(str(exc)) from exc
    else:
        found = json.loads(raw)
    if not isinstance(found, dict):
        raise ValueError("The server's answer is not a JSON object.")
    return found


def transport_for(db: sqlite_utils.Database, timeout: float = 60) -> HttpTransport:
    server, token = get_state(db, "server"), get_state(db, "token")
    if not server or not token:
        raise SyncError("This laptop is not set up for sync: run 'group-ipt sync setup --server URL --token TOKEN'.")
    return HttpTransport(server, token, timeout)


# ---- setup --------------------------------------------------------------------------------


def setup(db: sqlite_utils.Database, server: str, token: str, transport=None) -> dict:
    """Check the token with the server, then save the address and token on this laptop."""
    if not server.startswith(("http://", "https://")):
        raise SyncError("The server address starts with http:// or https://, e.g. http://10.0.0.5:5000")
    transport = transport or HttpTransport(server, token)
    info = transport.hello()
    site = info["site"]
    local = row(db, "select id from sites where code = ?", (site["code"],))
    if local and local["id"] != site["id"]:
        raise SyncError(
            f"This laptop already has a site {site['code']} made locally, not the central office's. "
            "Set up sync on a laptop whose site came from the centre (a fresh 'group-ipt init')."
        )
    with write(db):
        set_state(db, "server", server.rstrip("/"))
        set_state(db, "token", token)
        set_state(db, "device_id", info["device_id"])
        set_state(db, "device_name", info["device_name"])
        set_state(db, "site", site)
        set_state(db, "send_names", bool(info["settings"]["send_names"]))
        _keep_code_block(db, info["settings"].get("code_block"))
        set_state(db, "key_registered", False)  # (again) with this server
    _ensure_key(db, transport)
    return info


# ---- the laptop's signing key -----------------------------------------------------------------


def device_key(db: sqlite_utils.Database):
    """This laptop's private key (made on first use, mode 600, beside the database)."""
    try:
        return keys.load_or_create(keys.data_dir_of(db) / keys.DEVICE_KEY_FILE)
    except (keys.KeyError_, OSError) as exc:
        raise SyncError(f"This laptop's signing key cannot be used: {exc}") from exc


def register_key(db: sqlite_utils.Database, transport) -> None:
    """Send this laptop's public key to the centre (token-authenticated) and keep the centre's."""
    try:
        answer = transport.register_key(keys.public_text(device_key(db)))
        keys.parse_public(answer.get("centre_key"))
    except keys.KeyError_ as exc:
        raise SyncError(f"The signing keys could not be set up: {exc}") from exc
    with write(db):
        set_state(db, "centre_key", answer["centre_key"])
        set_state(db, "key_registered", True)


def _ensure_key(db: sqlite_utils.Database, transport) -> None:
    """A laptop set up before signing keys existed registers its key at its next network sync.

    A central server older than this laptop has no key endpoint: the files stay signed the old way.
    """
    if get_state(db, "key_registered"):
        return
    try:
        register_key(db, transport)
    except SyncRejected as exc:
        if exc.status not in (404, 405):
            raise


def _require_setup(db) -> None:
    if not get_state(db, "token") or not get_state(db, "device_id"):
        raise SyncError("This laptop is not set up for sync: run 'group-ipt sync setup --server URL --token TOKEN'.")


def _record_error(db, message: str) -> None:
    with write(db):
        set_state(db, "last_error", {"at": utcnow(), "message": message})


# ---- push and pull ----------------------------------------------------------------------------


def push(db: sqlite_utils.Database, transport, progress: Progress | None = None) -> dict:
    """Send every waiting change in batches; each is forgotten here only once acknowledged."""
    _require_setup(db)
    engine.restamp_future(db)
    total = engine.pending_records(db)
    sent = batches = quarantined = conflicts = 0
    try:
        _ensure_key(db, transport)
        while True:
            waiting = engine.unacked_batches(db)
            if not waiting:
                if engine.cut_batch(db, max_records=BATCH_RECORDS, send_names=get_state(db, "send_names", False)):
                    continue
                break
            batch = waiting[0]
            ack = transport.push(batch["payload"])
            if ack.get("batch_no") != batch["batch_no"]:
                raise SyncError(f"The server acknowledged batch {ack.get('batch_no')}, not {batch['batch_no']}.")
            engine.acknowledge(db, batch["batch_no"])
            sent += batch["records"]
            batches += 1
            quarantined += ack.get("quarantined", 0)
            conflicts += ack.get("conflicts", 0)
            if progress:
                progress("push", sent, max(total, sent))
    except (SyncError, SyncRejected) as exc:
        _record_error(db, str(exc))
        raise
    with write(db):
        set_state(db, "last_error", None)
    return {"records": sent, "batches": batches, "quarantined": quarantined, "conflicts": conflicts}


def pull(
    db: sqlite_utils.Database,
    transport,
    *,
    folders: dict[str, Path] | None = None,
    backup_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Fetch the site's changes from the centre page by page; each page is applied atomically."""
    _require_setup(db)
    summary: dict[str, Any] = {"applied": 0, "skipped": 0, "quarantined": 0, "files": [], "problems": []}
    first = True
    try:
        _ensure_key(db, transport)
        while True:
            request = {"cursor": get_state(db, "pull_cursor", 0), "first": first}
            if first:
                request["files"] = files.manifest(folders or {})
            page = transport.pull(request)
            _apply_page(db, page, summary, folders=folders, backup_dir=backup_dir, first=first)
            first = False
            if progress:
                progress("pull", summary["applied"] + summary["skipped"], 0)
            if not page.get("more"):
                break
    except (SyncError, SyncRejected) as exc:
        _record_error(db, str(exc))
        raise
    with write(db):
        set_state(db, "last_pull_ok", utcnow())
        set_state(db, "last_error", None)
    return summary


def _keep_code_block(db, block: object) -> None:
    """Remember the block of codes the centre gave this laptop (participants.py, cycles.py use it)."""
    value = block if isinstance(block, int) and not isinstance(block, bool) and 0 < block < 10 else None
    if get_state(db, "code_block") != value:
        with write(db):
            set_state(db, "code_block", value)


def _apply_page(db, page: dict, summary: dict, *, folders, backup_dir, first: bool) -> None:
    if not isinstance(page, dict) or not isinstance(page.get("cursor"), int):
        raise SyncRejected("The server's reply is not a sync page.")
    settings = page.get("settings") or {}
    if "send_names" in settings:
        with write(db):
            set_state(db, "send_names", bool(settings["send_names"]))
    if "code_block" in settings:
        _keep_code_block(db, settings["code_block"])
    if first and page.get("reference"):
        summary["problems"] += engine.apply_reference(db, page["reference"])
    counts = engine.apply_feed(db, page, send_names=get_state(db, "send_names", False))
    for key in ("applied", "skipped", "quarantined"):
        summary[key] += counts[key]
    if first and page.get("files") and folders:
        written, problems = files.install_files(folders, page["files"], backup_dir or Path("sync-backups"))
        summary["files"] += written
        summary["problems"] += problems


def sync(db, transport, **kwargs) -> dict:
    """Push, then pull (so the centre has decided on this laptop's changes before it answers)."""
    return {"push": push(db, transport, kwargs.get("progress")), "pull": pull(db, transport, **kwargs)}


# ---- by file ----------------------------------------------------------------------------------


def export_file(db: sqlite_utils.Database, path: Path, *, folders: dict[str, Path] | None = None) -> dict:
    """Write every waiting change to one signed file for the USB stick."""
    _require_setup(db)
    engine.restamp_future(db)
    while engine.cut_batch(db, max_records=BATCH_RECORDS, send_names=get_state(db, "send_names", False)):
        pass
    waiting = one(db, "select count(*) as batches, coalesce(sum(records), 0) as records from sync_outbox_batches")
    body = {
        "cursor": get_state(db, "pull_cursor", 0),
        "files": files.manifest(folders or {}),
        "made_at": utcnow(),
        "app_version": __version__,
    }
    device_id, file_id = get_state(db, "device_id"), new_id()
    signing: dict[str, Any]
    if get_state(db, "key_registered"):  # one batch at a time into the file (version 2)
        signing = {"private_key": device_key(db), "parts": ({"batch": b} for b in _stored_batches(db))}
    else:  # set up before signing keys: the centre still checks this laptop's files the old way
        body["batches"] = list(_stored_batches(db))
        signing = {"key": devices.signing_key(get_state(db, "token"))}
    files.write_signed(path, kind="push", device_id=device_id, file_id=file_id, body=body, **signing)
    return {"batches": waiting["batches"], "records": waiting["records"], "file": str(path)}


def _stored_batches(db: sqlite_utils.Database):
    """The unacknowledged batches in order, read from the database one at a time."""
    numbers = [r["batch_no"] for r in rows(db, "select batch_no from sync_outbox_batches order by batch_no")]
    for number in numbers:
        found = row(db, "select payload from sync_outbox_batches where batch_no = ?", (number,))
        if found:
            yield json.loads(gzip.decompress(found["payload"]))


def import_reply(
    db: sqlite_utils.Database, path: Path, *, folders: dict[str, Path] | None = None, backup_dir: Path | None = None
) -> dict:
    """Apply the centre's reply file: acknowledgements first, then the centre's changes."""
    _require_setup(db)
    doc = files.read_header(path)
    body = _verify_reply(db, path, doc)
    done = get_state(db, "imported_replies", [])
    if doc["file_id"] in done:
        raise SyncRejected(f"{path} was already imported on this laptop; nothing was done.", 409)
    summary = _apply_reply(db, _reply_parts(body), folders=folders, backup_dir=backup_dir)
    with write(db):
        set_state(db, "imported_replies", [*done[-99:], doc["file_id"]])
        set_state(db, "last_pull_ok", utcnow())
        if summary["acknowledged"]:
            set_state(db, "last_push_ok", utcnow())
    return summary


def _verify_reply(db: sqlite_utils.Database, path: Path, doc: dict) -> dict | files.Parts:
    """Check that the reply is for this laptop and signed by the centre as this laptop expects."""
    if doc["kind"] != "reply":
        raise SyncRejected(f"{path} is a laptop's export; import it on the central server.")
    if doc["device_id"] != get_state(db, "device_id"):
        raise SyncRejected(f"{path} is a reply for another device.", 403)
    if doc["version"] == files.FILE_VERSION:
        if not get_state(db, "centre_key"):
            raise SyncRejected(
                f"{path} is signed with the centre's key, which this laptop does not know yet: "
                "run 'group-ipt sync setup --server URL --token TOKEN' again.",
                403,
            )
        return files.verify(doc, public_key=get_state(db, "centre_key"))
    if get_state(db, "key_registered"):
        # Once the laptop has its own key, the centre signs every reply with its key: an old-style reply
        # could have been made from a copy of the centre's database.
        raise SyncRejected(
            f"{path} is signed the old way (version 1), which this laptop no longer accepts. "
            "Export a new file and import it on the central server again.",
            403,
        )
    return files.verify(doc, devices.signing_key(get_state(db, "token")))


def _reply_parts(body: dict | files.Parts):
    """The reply's acknowledgements, then its pages, as parts (a version 2 file's one at a time)."""
    if isinstance(body, files.Parts):
        return body.parts()
    return itertools.chain(({"ack": a} for a in body.get("acks") or []), ({"page": p} for p in body.get("pages") or []))


def _apply_reply(db: sqlite_utils.Database, parts, *, folders, backup_dir) -> dict:
    """Acknowledge the batches and apply the pages the centre sent back; return what was done."""
    summary: dict[str, Any] = {
        "acknowledged": 0,
        "applied": 0,
        "skipped": 0,
        "quarantined": 0,
        "files": [],
        "problems": [],
    }
    n = 0
    for part in parts:
        if "ack" in part:
            summary["acknowledged"] += int(engine.acknowledge(db, part["ack"]["batch_no"]))
        elif "page" in part:
            page = part["page"]
            if not n or page["cursor"] > get_state(db, "pull_cursor", 0):  # else pulled over the network since
                _apply_page(db, page, summary, folders=folders, backup_dir=backup_dir, first=n == 0)
            n += 1
    return summary


# ---- status -----------------------------------------------------------------------------------


def status(db: sqlite_utils.Database) -> dict:
    """What waits to be sent, the last successes, the last error, conflicts and quarantined records."""
    return {
        "server": get_state(db, "server"),
        "device": get_state(db, "device_name"),
        "site": (get_state(db, "site") or {}).get("code"),
        "send_names": get_state(db, "send_names", False),
        "pending_records": engine.pending_records(db),
        "unacked_batches": len(engine.unacked_batches(db)),
        "last_push_ok": get_state(db, "last_push_ok"),
        "last_pull_ok": get_state(db, "last_pull_ok"),
        "last_error": get_state(db, "last_error"),
        "pull_cursor": get_state(db, "pull_cursor", 0),
        "open_conflicts_here": engine.open_conflicts(db),
        "open_conflicts_at_centre": get_state(db, "central_open_conflicts"),
        "quarantined": engine.local_quarantine(db),
        "dangling_references": len(db.execute("pragma foreign_key_check").fetchall()),
        "synced_tables": len(tracking.synced_tables(db)),
    }
