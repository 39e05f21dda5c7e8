"""Open the SQLite database, hand one connection to each request, and run writes atomically.

The database is one plain SQLite file (``group-ipt.db`` in the data folder) so an
analyst can open it read-only with any SQLite tool.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

DB_FILENAME = "group-ipt.db"


class DatabaseMissing(RuntimeError):
    """The data folder has no database yet: ``group-ipt init`` makes one."""


def is_damaged(exc: BaseException) -> bool:
    """Tell whether an SQLite error means the file is damaged or not a database (not a lock or a full disk)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or any(
        word in str(exc) for word in ("not a database", "malformed", "corrupt")
    )


def damaged_message(path: Path | str, exc: BaseException) -> str:
    """Say which file is damaged, what SQLite found, and how to bring the data back."""
    return (
        f"The database {path} is damaged or is not a group-ipt database ({exc}). "
        "Nothing more was changed. Restore the latest backup: 'group-ipt restore BACKUP_FILE' "
        "(a backup is a file made by 'group-ipt backup'; the damaged file is kept in restore-backups/). "
        "A laptop can also be set up again and fetch its site's data with 'group-ipt sync'."
    )


def new_id() -> str:
    """Return a new random UUID as text: ids are made on the laptop, so they must never clash."""
    return str(uuid.uuid4())


def utcnow() -> str:
    """Return the current UTC time as ISO 8601 text with seconds, the format of every timestamp column."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def connect(path: Path | str) -> sqlite_utils.Database:
    """Open the database file with the pragmas every connection needs."""
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    # WAL lets readers go on while one writer writes; foreign keys are off by default in SQLite.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def database_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / DB_FILENAME


@contextlib.contextmanager
def write(db: sqlite_utils.Database, *, checks: bool = True) -> Iterator[sqlite_utils.Database]:
    """Run a group of writes as one transaction that takes the write lock at once.

    ``BEGIN IMMEDIATE`` avoids the deadlock a deferred transaction meets when two
    connections both read and then try to write; nested ``db.atomic()`` blocks
    inside become savepoints. On any error nothing of the group is kept. Before it commits, the
    registered commit checks (``on_commit``) see the rows it changed; ``checks=False`` is for sync
    applying received records, which screens them itself (sync/rules.screen_batch).
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        mark = _change_mark(db) if checks and _COMMIT_CHECKS else None
        yield db
        if mark is not None:
            for check in _COMMIT_CHECKS:
                check(db, mark)
    except BaseException:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise
    else:
        db.conn.commit()


# Checks every write runs on the rows it changed, just before it commits: (db, mark) -> None,
# raising to undo the write. The record rules register theirs (sync/rules.py, check_local): they
# sit above this module, which only knows that changed rows are logged in sync_log after ``mark``.
_COMMIT_CHECKS: list[Callable[[sqlite_utils.Database, int], None]] = []


def on_commit(check: Callable[[sqlite_utils.Database, int], None]) -> None:
    if check not in _COMMIT_CHECKS:
        _COMMIT_CHECKS.append(check)


def _change_mark(db: sqlite_utils.Database) -> int | None:
    """The last change logged before this write (None: a database without sync tables yet)."""
    try:
        return db.execute("select coalesce(max(seq), 0) from sync_log").fetchone()[0]
    except sqlite3.OperationalError:
        return None


Params = Mapping[str, Any] | Sequence[Any]


def _bound(params: Params) -> dict | tuple:
    """sqlite-utils is typed for a dict or a tuple; lists and other mappings are given as those."""
    if isinstance(params, dict | tuple):
        return params
    return dict(params) if isinstance(params, Mapping) else tuple(params)


def row(db: sqlite_utils.Database, sql: str, params: Params = ()) -> dict[str, Any] | None:
    """Return the first row of a query as a dict, or None."""
    for r in db.query(sql, _bound(params)):
        return r
    return None


def rows(db: sqlite_utils.Database, sql: str, params: Params = ()) -> list[dict[str, Any]]:
    return list(db.query(sql, _bound(params)))


def one(db: sqlite_utils.Database, sql: str, params: Params = ()) -> dict[str, Any]:
    """Return the first row of a query that always finds one (a row known to exist); else raise."""
    found = row(db, sql, params)
    if found is None:
        raise LookupError(f"no row for: {sql}")
    return found


def scalar(db: sqlite_utils.Database, sql: str, params: Params = ()) -> Any:
    """The first column of the first row: a count, a sum, a max (None when there is no row)."""
    found = db.execute(sql, _bound(params)).fetchone()
    return None if found is None else found[0]


def marks(values: Sized) -> str:
    """Placeholders for ``in (...)``: one ``?`` per value, or ``''`` so an empty list matches nothing.

    ``in ()`` is a syntax error in SQLite; ``in ('')`` is valid and matches no id.
    """
    return ",".join("?" * len(values)) or "''"


def in_clock_order(table: str, alias: str) -> tuple[str, str]:
    """Return (join, order by) that list a synced table's rows in the order they were made.

    The hybrid clock of sync (``sync_rows.hlc``) orders changes made on different laptops
    truthfully: a change made after seeing another sorts after it, whatever the laptops'
    wall clocks said. ``created_at`` is a laptop's wall clock and only breaks ties.
    """
    join = f" left join sync_rows clock_v on clock_v.table_name = '{table}' and clock_v.record_id = {alias}.id"
    return join, f"clock_v.hlc is null, clock_v.hlc, {alias}.created_at, {alias}.rowid"


def code_block(db: sqlite_utils.Database) -> int | None:
    """The block of codes this laptop makes codes from (given by the central server), or None.

    Participant codes start with it and cycle numbers end with it, so two laptops of one site
    never make the same code offline (schema/m0017_code_blocks.py).
    """
    try:
        found = row(db, "select value from sync_state where key = 'code_block'")
    except sqlite3.OperationalError:  # a database from before sync
        return None
    value = found and found["value"]
    return int(value) if value and value.isdigit() and 0 <= int(value) <= 9 else None
