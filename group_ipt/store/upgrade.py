"""Versions on a laptop: which version last used the database, refusing an older one, upgrading safely.

The database remembers the group-ipt version that last started on it (``settings`` key
``app_version``) and, through ``schema_migrations``, the schema it has. An older version
refuses to start on a database a newer one has used: it would not know the newer tables
or the newer meaning of a field. ``group-ipt upgrade`` (run by the offline kit's installer)
backs the database up, migrates it, records the new version and lists what changed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from .. import __version__
from .backup import backup, backup_dir
from .db import connect, row, utcnow, write
from .schema import all_migrations, current_version, migrate, pending
from .tracking import ensure_triggers

VERSION_KEY = "app_version"

# What changed in each release, in plain words for the person installing it (newest last).
CHANGES: list[tuple[str, list[str]]] = [
    (
        "0.2.0",
        [
            "Installs from a package or the offline kit; updating keeps the data folder and backs it up first.",
            "A daily backup in the data folder while the app runs; 'group-ipt backup --to' copies to a USB stick.",
            "The central office sees which version each laptop runs.",
        ],
    ),
]


class NewerDatabase(RuntimeError):
    """The database was used by a newer group-ipt than this one; the message says what to do."""


def version_key(text: str | None) -> tuple[int, ...]:
    """Turn "0.10.2" into (0, 10, 2) so versions compare as numbers; anything unreadable counts as oldest."""
    if not text:
        return ()
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:4])


def is_older(version: str | None, than: str | None) -> bool:
    return version_key(version) < version_key(than)


def recorded_version(db: sqlite_utils.Database) -> str | None:
    """Return the version that last started on this database (None: made before 0.2.0 or never started)."""
    if "settings" not in db.table_names():
        return None
    found = row(db, "select value from settings where key = ?", (VERSION_KEY,))
    if not found:
        return None
    try:
        value = json.loads(found["value"])
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, str) else None


def record_version(db: sqlite_utils.Database, version: str = __version__) -> None:
    if recorded_version(db) == version:
        return
    with write(db):
        db.execute(
            "insert into settings (key, value, updated_at) values (?, ?, ?)"
            " on conflict(key) do update set value = excluded.value, updated_at = excluded.updated_at",
            (VERSION_KEY, json.dumps(version), utcnow()),
        )


def check_not_newer(db: sqlite_utils.Database, version: str = __version__) -> None:
    """Refuse (NewerDatabase) when a newer group-ipt has used this database."""
    known = all_migrations()[-1].version
    schema = current_version(db)
    last = recorded_version(db)
    if schema > known or is_older(version, last):
        by = f"group-ipt {last}" if last else "a newer group-ipt"
        raise NewerDatabase(
            f"This data was last used by {by} (database schema {schema}); this is group-ipt {version}, which "
            f"knows schema {known} at most. Install {by} again (or a later one); nothing was changed."
        )


def changes_between(old: str | None, new: str) -> list[tuple[str, list[str]]]:
    """Return the release notes of the versions after ``old`` up to ``new``."""
    return [(v, notes) for v, notes in CHANGES if is_older(old, v) and not is_older(new, v)]


def upgrade(db_path: Path, data_dir: Path, *, version: str = __version__, now: datetime | None = None) -> dict:
    """Bring the database up to this version: back it up first, migrate, record the version.

    Returns {"from", "to", "backup" (path or None), "migrations" [(number, name)], "changes"}.
    Nothing is backed up or written when the database is already at this version.
    """
    # sync sits above the store; the lead moves trigger setup below upgrade (issue 20 report).

    db = connect(db_path)
    try:
        check_not_newer(db, version)
        old = recorded_version(db)
        todo = pending(db)
        result: dict[str, Any] = {"from": old, "to": version, "backup": None, "migrations": [], "changes": []}
        if not todo and old == version:
            return result
        if todo:
            stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
            folder = backup_dir(data_dir)
            folder.mkdir(parents=True, exist_ok=True)
            dest = folder / f"before-upgrade-{old or 'old'}-to-{version}-{stamp}.db"
            result["backup"] = backup(db_path, dest)["path"]
        result["migrations"] = [(m.version, m.name) for m in migrate(db)]
        ensure_triggers(db)
        record_version(db, version)
        result["changes"] = changes_between(old, version)
        return result
    finally:
        db.close()
