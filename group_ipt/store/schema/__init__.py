"""Forward-only, numbered schema migrations.

Each module ``mNNNN_name.py`` in this folder defines ``SQL`` (a script) and/or a
function ``up(db)``. They run in number order, each in its own transaction, and
the number is recorded in ``schema_migrations``; a migration that ran is never
run again, and a released migration is never edited: add a new one instead.
"""

from __future__ import annotations

import importlib
import pkgutil
import sqlite3
from dataclasses import dataclass

import sqlite_utils

from ..db import utcnow


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    module: object


def all_migrations() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("m") or not info.name[1:5].isdigit():
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(Migration(int(info.name[1:5]), info.name[6:], module))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


def split_sql(script: str) -> list[str]:
    """Split a script into complete statements (so each runs inside our transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        raise ValueError(f"incomplete SQL statement: {current.strip()[:80]}")
    return statements


def applied_versions(db: sqlite_utils.Database) -> set[int]:
    if "schema_migrations" not in db.table_names():
        return set()
    return {r["version"] for r in db.query("select version from schema_migrations")}


def current_version(db: sqlite_utils.Database) -> int:
    return max(applied_versions(db), default=0)


def pending(db: sqlite_utils.Database) -> list[Migration]:
    done = applied_versions(db)
    return [m for m in all_migrations() if m.version not in done]


def migrate(db: sqlite_utils.Database, upto: int | None = None) -> list[Migration]:
    """Apply every pending migration (up to ``upto``), each atomically; return those applied."""
    db.execute(
        "create table if not exists schema_migrations ("
        " version integer primary key, name text not null, applied_at text not null)"
    )
    applied = []
    for m in pending(db):
        if upto is not None and m.version > upto:
            break
        db.execute("BEGIN IMMEDIATE")
        try:
            # Re-check inside the lock: another process may have migrated meanwhile.
            if m.version in applied_versions(db):
                db.conn.rollback()
                continue
            for statement in split_sql(getattr(m.module, "SQL", "")):
                db.execute(statement)
            if hasattr(m.module, "up"):
                m.module.up(db)
            db.execute(
                "insert into schema_migrations (version, name, applied_at) values (?, ?, ?)",
                (m.version, m.name, utcnow()),
            )
        except BaseException:
            if db.conn.in_transaction:
                db.conn.rollback()
            raise
        db.conn.commit()
        applied.append(m)
    return applied
