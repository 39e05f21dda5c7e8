"""Signed sync files (for a USB stick), and the form and translation files the centre sends out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ..base import inflate, oscompat
from . import keys
from .engine import SyncRejected, compress

FILE_FORMAT = "group-ipt-sync"
# Version 2: signed with Ed25519 (the laptop's own key for its exports, the centre's key for
# replies); its payload is JSON lines (a summary, then one batch, acknowledgement or page a
# line), so a file of any size is written and read one part at a time. Version 1: an HMAC
# with a key derived from the device token, which the centre had to keep, and one JSON body;
# still read and written for devices that have not registered a key yet.
FILE_VERSION = 2
LEGACY_VERSION = 1
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PART_BYTES = 64 * 1024 * 1024  # one batch or page of a version 2 file, unpacked
# Which files the centre keeps up to date on laptops, by folder: forms (instruments,
# protocols, scripts) and translations. Compiled catalogs are rebuilt on the laptop.
SHARED_SUFFIXES = (".yaml", ".yml", ".po", ".md", ".txt")
BAD_SIGNATURE = (
    "The file's signature does not match: it was changed after it was written, "
    "or it was not written by this device. Nothing was imported."
)


# ---- signed files ---------------------------------------------------------------------


def _message(version: int, kind: str, device_id: str, file_id: str, payload: str) -> bytes:
    return "\n".join([FILE_FORMAT, str(version), kind, device_id, file_id, payload]).encode("utf-8")


def _mac(key: str, kind: str, device_id: str, file_id: str, payload: str) -> str:
    message = _message(LEGACY_VERSION, kind, device_id, file_id, payload)
    return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()


class Parts:
    """The body of a version 2 file: JSON lines, unpacked and parsed one at a time.

    The first line is the file's summary (``meta``); each other line is one part (a batch,
    an acknowledgement, a page of changes). However large the file, one part is in memory
    at a time, and ``parts()`` can be read more than once (check everything, then apply).
    """

    def __init__(self, blob: bytes, limit: int):
        self.blob, self.limit = blob, limit
        meta = next(self._lines(), None)
        if not isinstance(meta, dict):
            raise SyncRejected("The file's payload has no summary line.")
        self.meta: dict = meta

    def _lines(self) -> Iterator[object]:
        try:
            for line in inflate.inflate_lines(self.blob, self.limit, line_limit=MAX_PART_BYTES):
                yield json.loads(line)
        except inflate.TooLarge as exc:
            raise SyncRejected(f"The file's payload is too large: {exc}", 413) from exc
        except (inflate.Unreadable, ValueError) as exc:
            raise SyncRejected(f"The file's payload is damaged: {exc}") from exc

    def parts(self) -> Iterator[dict]:
        lines = self._lines()
        next(lines)  # the summary
        for part in lines:
            if not isinstance(part, dict) or len(part) != 1:
                raise SyncRejected("The file's payload has a part that is not one named object.")
            yield part


def write_signed(
    path: Path,
    *,
    kind: str,
    device_id: str,
    file_id: str,
    body: dict,
    key: str | None = None,
    private_key: keys.Ed25519PrivateKey | None = None,
    parts: Iterable[dict] = (),
) -> None:
    """Write a signed file: with ``private_key`` (version 2), else with the legacy HMAC ``key`` (version 1).

    Version 2 writes ``body`` as the summary line and then each of ``parts`` as a line,
    compressed as they come (a generator of parts is never held whole). Version 1 writes
    ``body`` alone, as the old software reads it.
    """
    if private_key is not None:
        payload = base64.b64encode(inflate.deflate_lines(itertools.chain([body], parts))).decode("ascii")
    else:
        payload = base64.b64encode(compress(body)).decode("ascii")
    if private_key is not None:
        version = FILE_VERSION
        signature = keys.sign(private_key, _message(version, kind, device_id, file_id, payload))
    elif key:
        version, signature = LEGACY_VERSION, _mac(key, kind, device_id, file_id, payload)
    else:
        raise SyncRejected("No key to sign the file with.")
    doc = {
        "format": FILE_FORMAT,
        "version": version,
        "kind": kind,
        "device_id": device_id,
        "file_id": file_id,
        "payload": payload,
        "signature": signature,
    }
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    tmp.replace(path)  # a half-written file never carries the final name


def read_header(path: Path) -> dict:
    """Read a sync file's envelope (not yet verified); raise SyncRejected if it is not one."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SyncRejected(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.", 413)
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SyncRejected(f"{path} is not a group-ipt sync file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        raise SyncRejected(f"{path} is not a group-ipt sync file.")
    if doc.get("version") not in (LEGACY_VERSION, FILE_VERSION) or isinstance(doc.get("version"), bool):
        raise SyncRejected(
            f"{path} has sync file version {doc.get('version')}; this software reads "
            f"{LEGACY_VERSION} and {FILE_VERSION}."
        )
    for key in ("kind", "device_id", "file_id", "payload", "signature"):
        if not isinstance(doc.get(key), str):
            raise SyncRejected(f"{path} lacks its {key}.")
    return doc


def verify(
    doc: dict, key: str | None = None, *, public_key: str | None = None, limit: int = MAX_FILE_BYTES * 4
) -> dict | Parts:
    """Check the signature (tampering or the wrong device) and return the body.

    A version 2 file needs the signer's ``public_key`` and gives ``Parts`` (read one at a
    time); a version 1 file needs the legacy HMAC ``key`` and gives the decoded body whole.
    """
    if doc["version"] == FILE_VERSION:
        message = _message(FILE_VERSION, doc["kind"], doc["device_id"], doc["file_id"], doc["payload"])
        if not public_key or not keys.verify(public_key, doc["signature"], message):
            raise SyncRejected(BAD_SIGNATURE, 403)
        try:
            return Parts(base64.b64decode(doc["payload"], validate=True), limit)
        except ValueError as exc:
            raise SyncRejected(f"The file's payload is damaged: {exc}") from exc
    else:
        expected = _mac(key or "", doc["kind"], doc["device_id"], doc["file_id"], doc["payload"])
        if not key or not hmac.compare_digest(expected, doc["signature"]):
            raise SyncRejected(BAD_SIGNATURE, 403)
    try:
        blob = base64.b64decode(doc["payload"], validate=True)
    except ValueError as exc:
        raise SyncRejected(f"The file's payload is damaged: {exc}") from exc
    try:
        body = inflate.inflate_json(blob, limit)
    except inflate.TooLarge as exc:
        raise SyncRejected(f"The file's payload is too large: {exc}", 413) from exc
    except inflate.Unreadable as exc:
        raise SyncRejected(f"The file's payload is damaged: {exc}") from exc
    if not isinstance(body, dict):
        raise SyncRejected("The file's payload is not a JSON object.")
    return body


# ---- shared form and translation files --------------------------------------------------


def manifest(folders: dict[str, Path]) -> dict[str, str]:
    """Return {"forms/instruments/phq9.yaml": sha256, ...} for the shared files in ``folders``."""
    found = {}
    for prefix, folder in folders.items():
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in SHARED_SUFFIXES:
                found[f"{prefix}/{path.relative_to(folder).as_posix()}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def files_to_send(folders: dict[str, Path], theirs: dict) -> dict[str, str]:
    """Return base64 contents of our shared files that the other side lacks or has in another version."""
    if not isinstance(theirs, dict):
        return {}
    out = {}
    for key, digest in manifest(folders).items():
        if theirs.get(key) != digest:
            prefix, rel = key.split("/", 1)
            out[key] = base64.b64encode((Path(folders[prefix]) / rel).read_bytes()).decode("ascii")
    return out


def _safe_target(folders: dict[str, Path], key: str) -> Path | None:
    prefix, _, rel = key.partition("/")
    if prefix not in folders or not rel:
        return None
    safe = oscompat.safe_relative(rel)  # inside the folder on Windows too (no C:, no backslash)
    if safe is None or safe.suffix not in SHARED_SUFFIXES:
        return None
    return Path(folders[prefix]).joinpath(*safe.parts)


def install_files(folders: dict[str, Path], files: dict, backup_dir: Path) -> tuple[list[str], list[str]]:
    """Write the centre's files into the laptop's folders; return (written, problems).

    Forms are checked first on a copy (a broken file would stop the app from starting);
    every replaced file is kept in ``backup_dir``.
    """
    if not files:
        return [], []
    problems: list[str] = []
    todo: dict[str, tuple[Path, bytes]] = {}
    for key, content in files.items():
        target = _safe_target(folders, key)
        if target is None:
            problems.append(f"refused file {key!r}: not a shared form or translation file")
            continue
        try:
            todo[key] = (target, base64.b64decode(content, validate=True))
        except (ValueError, TypeError):
            problems.append(f"refused file {key!r}: damaged content")
    form_keys = [k for k in todo if k.startswith("forms/")]
    if form_keys and "forms" in folders and Path(folders["forms"]).is_dir():
        from ..formfiles.forms import check_all

        with tempfile.TemporaryDirectory() as tmp:
            staged = Path(tmp) / "forms"
            shutil.copytree(folders["forms"], staged)
            for k in form_keys:
                dest = staged / k.split("/", 1)[1]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(todo[k][1])
            errors = check_all(staged)
        if errors:
            problems.append(
                "the centre's form files were not installed, they have errors: " + "; ".join(str(e) for e in errors[:5])
            )
            todo = {k: v for k, v in todo.items() if k not in form_keys}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    written = []
    for key, (target, content) in todo.items():
        if target.exists():
            keep = backup_dir / stamp / key
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, keep)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        part.write_bytes(content)
        oscompat.replace(part, target)
        written.append(key)
    return written, problems
