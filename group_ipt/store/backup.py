"""Copy a live database safely (``group-ipt backup``) and bring a copy back (``group-ipt restore``).

Both use SQLite's online backup API, so the copy is one consistent snapshot even while the
app writes (WAL readers and the writer go on), and the restore replaces the pages of the
live file inside SQLite's own locking, so a running server never reads half a file.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
from datetime import UTC, date, datetime
from pathlib import Path

from ..base import clock
from ..base.oscompat import sqlite_uri

log = logging.getLogger(__name__)


class BackupError(RuntimeError):
    """The backup or restore cannot be done; the message says why and what to do."""


# Pages copied per step: small steps let the app's writers go on between steps.
PAGES_PER_STEP = 1024
RESTORE_KEEP_DIR = "restore-backups"


def _open(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        return sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, timeout=30)
    return sqlite3.connect(str(path), timeout=30)


def integrity_problems(path: Path) -> list[str]:
    """Return what ``PRAGMA integrity_check`` finds wrong with the file (empty: it is sound)."""
    try:
        conn = _open(path, readonly=True)
        try:
            found = [r[0] for r in conn.execute("pragma integrity_check").fetchall()]
            tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database ({exc})"]
    problems = [] if found == ["ok"] else found
    if "schema_migrations" not in tables:
        problems.append("not a group-ipt database (it has no schema_migrations table)")
    return problems


def _copy(src: sqlite3.Connection, dest_path: Path) -> None:
    """Copy ``src`` into ``dest_path`` (created or overwritten) with the backup API."""
    dest = sqlite3.connect(str(dest_path), timeout=30)
    try:
        src.backup(dest, pages=PAGES_PER_STEP)
        # A copy is one self-contained file: no -wal beside it.
        dest.execute("pragma journal_mode=DELETE")
    finally:
        dest.close()


def backup(db_path: Path, dest: Path) -> dict:
    """Write a consistent copy of the database ``db_path`` to ``dest``; refuse to overwrite a file.

    The copy is written next to ``dest`` under a temporary name, checked with
    ``integrity_check`` and only then renamed, so ``dest`` is either a sound copy or absent.
    """
    db_path, dest = Path(db_path), Path(dest)
    if not db_path.exists():
        raise BackupError(f"There is no database at {db_path}.")
    if dest.exists():
        raise BackupError(f"{dest} already exists; choose a new file name. Nothing was written.")
    if not dest.parent.is_dir():
        raise BackupError(f"The folder {dest.parent} does not exist. Nothing was written.")
    tmp = dest.with_name(dest.name + ".part")
    src = _open(db_path)
    try:
        _copy(src, tmp)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"The backup failed: {exc}. Nothing was written.") from exc
    finally:
        src.close()
    problems = integrity_problems(tmp)
    if problems:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"The copy failed its integrity check ({'; '.join(problems[:3])}). Nothing was written.")
    tmp.replace(dest)
    return {"path": str(dest), "bytes": dest.stat().st_size}


def _readable(db_path: Path) -> bool:
    """Tell whether SQLite can read the file's tables (a damaged or foreign file cannot)."""
    try:
        conn = _open(db_path, readonly=True)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
            unsynced_changes(db_path)
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return False
    return True


def _kept_path(db_path: Path, label: str, now: datetime | None) -> Path:
    """Return a free name in ``restore-backups/`` beside the database for a copy kept as ``label``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    keep_dir = db_path.parent / RESTORE_KEEP_DIR
    keep_dir.mkdir(exist_ok=True)
    kept = keep_dir / f"{db_path.stem}-{label}-{stamp}.db"
    n = 1
    while kept.exists():
        n += 1
        kept = keep_dir / f"{db_path.stem}-{label}-{stamp}-{n}.db"
    return kept


def _move_aside(db_path: Path, now: datetime | None) -> Path:
    """Move a damaged database (and its -wal and -shm files) into ``restore-backups/``; return its new path."""
    kept = _kept_path(db_path, "damaged", now)
    for suffix in ("-wal", "-shm"):
        side = db_path.with_name(db_path.name + suffix)
        if side.exists():
            side.replace(kept.with_name(kept.name + suffix))
    db_path.replace(kept)
    return kept


def unsynced_changes(db_path: Path) -> int:
    """Records changed on this laptop and not yet acknowledged by the central server (0 on a central server)."""
    if not Path(db_path).exists():
        return 0
    conn = _open(Path(db_path), readonly=True)
    try:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
        if "sync_log" not in tables:
            return 0
        if conn.execute("select count(*) from sync_devices").fetchone()[0]:
            return 0  # a central server: nothing of its own waits to be sent
        found = conn.execute("select value from sync_state where key = 'outbox_cut_seq'").fetchone()
        cut = int(found[0]) if found and found[0] is not None else 0
        waiting = conn.execute(
            "select count(*) from (select distinct table_name, record_id from sync_log where seq > ?)", (cut,)
        ).fetchone()[0]
        in_batches = conn.execute("select coalesce(sum(records), 0) from sync_outbox_batches").fetchone()[0]
        return waiting + in_batches
    finally:
        conn.close()


def _keep_copy(db_path: Path, now: datetime | None) -> Path:
    """Back the current database up into ``restore-backups/`` beside it (a new name each time); return the copy."""
    kept = _kept_path(db_path, "before-restore", now)
    backup(db_path, kept)
    return kept


def _copy_into(src: sqlite3.Connection, db_path: Path) -> None:
    """Copy the open backup ``src`` into the live database file, page by page."""
    dest = sqlite3.connect(str(db_path), timeout=30)
    try:
        # Into the live file through SQLite's locks: a running server sees the old or the new data.
        src.backup(dest)
        dest.execute("pragma journal_mode=WAL")
        # Running servers remember report figures per data version; the restored file may
        # carry an older version number, so it gets a new epoch (report_store.data_version).
        # (suppress: a backup older than the report tables has none to mark)
        with contextlib.suppress(sqlite3.OperationalError), dest:
            dest.execute("insert or replace into report_meta (key, value) values ('epoch', lower(hex(randomblob(8))))")
    finally:
        dest.close()


def restore(source: Path, db_path: Path, *, force: bool = False, now: datetime | None = None) -> dict:
    """Replace the database ``db_path`` with the backup ``source``; return what was done.

    Checks the backup's integrity first; refuses (changing nothing) when the current
    database has changes not yet synced, unless ``force``; keeps a copy of the replaced
    database in ``restore-backups/`` beside it.
    """
    source, db_path = Path(source), Path(db_path)
    if not source.is_file():
        raise BackupError(f"There is no backup file {source}.")
    problems = integrity_problems(source)
    if problems:
        raise BackupError(f"{source} cannot be restored: {'; '.join(problems[:3])}. Nothing was changed.")
    kept = None
    if db_path.exists() and integrity_problems(db_path) and not _readable(db_path):
        # The current file is damaged (the usual reason to restore): it cannot be read for
        # unsynced changes nor copied page by page, so it is moved aside as it is.
        kept = _move_aside(db_path, now)
    if db_path.exists():
        waiting = unsynced_changes(db_path)
        if waiting and not force:
            raise BackupError(
                f"The current database has {waiting} record(s) changed since the last sync; restoring would "
                "lose them. Run 'group-ipt sync' first, or restore with --force (a copy of the current "
                "database is kept). Nothing was changed."
            )
        kept = _keep_copy(db_path, now)
    src = _open(source, readonly=True)
    try:
        _copy_into(src, db_path)
    except sqlite3.Error as exc:
        raise BackupError(f"The restore failed: {exc}. The previous database is kept at {kept}.") from exc
    finally:
        src.close()
    problems = integrity_problems(db_path)
    if problems:
        raise BackupError(
            f"The restored database failed its integrity check ({'; '.join(problems[:3])}); "
            f"the previous database is kept at {kept}: restore that file."
        )
    return {"restored": str(db_path), "kept": str(kept) if kept else None}


# ---- backups without thinking: daily copies in the data folder, copies to a USB stick ------------

BACKUP_DIR = "backups"
DAILY_PREFIX = "group-ipt-"
COPY_MARKER = "last-copy.txt"  # when and where the last copy outside the data folder was written
_DAILY_RE = re.compile(r"^group-ipt-(\d{4}-\d{2}-\d{2})\.db$")


def backup_dir(data_dir: Path) -> Path:
    return Path(data_dir) / BACKUP_DIR


def daily_backups(data_dir: Path) -> list[tuple[date, Path]]:
    """Return the daily backups in the data folder as (day, file), oldest first."""
    found = []
    folder = backup_dir(data_dir)
    if folder.is_dir():
        for path in folder.iterdir():
            m = _DAILY_RE.match(path.name)
            if m:
                with contextlib.suppress(ValueError):
                    found.append((date.fromisoformat(m.group(1)), path))
    return sorted(found)


def to_keep(days: list[date], today: date, *, keep_days: int = 7, keep_weeks: int = 4) -> set[date]:
    """Return which backup days to keep: every one of the last ``keep_days`` days, and the newest
    backup of each of the ``keep_weeks`` most recent ISO weeks that have one."""
    keep = {d for d in days if (today - d).days < keep_days}
    newest_of_week: dict[tuple[int, int], date] = {}
    for d in days:
        week = d.isocalendar()[:2]
        if d > newest_of_week.get(week, date.min):
            newest_of_week[week] = d
    for week in sorted(newest_of_week, reverse=True)[:keep_weeks]:
        keep.add(newest_of_week[week])
    return keep


def daily_backup(db_path: Path, data_dir: Path, *, today: date, keep_days: int = 7, keep_weeks: int = 4) -> dict:
    """Make today's backup in ``DATA_DIR/backups/`` if there is none yet, then drop the ones no longer kept.

    Returns {"made": path or None, "removed": [paths]}. Safe to call every hour.
    """
    folder = backup_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{DAILY_PREFIX}{today.isoformat()}.db"
    made = None
    if not target.exists():
        for leftover in folder.glob("*.part"):  # a copy cut short by a power cut
            leftover.unlink(missing_ok=True)
        made = backup(db_path, target)["path"]
    existing = daily_backups(data_dir)
    keep = to_keep([d for d, _ in existing], today, keep_days=keep_days, keep_weeks=keep_weeks)
    removed = []
    for d, path in existing:
        if d not in keep:
            path.unlink(missing_ok=True)
            removed.append(str(path))
    return {"made": made, "removed": removed}


def backup_to_folder(db_path: Path, data_dir: Path, folder: Path, *, now: datetime | None = None) -> dict:
    """Write a backup into ``folder`` (e.g. a USB stick) under a dated name, and remember when."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError(f"The folder {folder} does not exist (is the USB stick plugged in?). Nothing was written.")
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d-%H%M%S")
    dest = folder / f"group-ipt-backup-{stamp}.db"
    n = 1
    while dest.exists():
        n += 1
        dest = folder / f"group-ipt-backup-{stamp}-{n}.db"
    info = backup(db_path, dest)
    note_copy(data_dir, dest, now=now)
    return info


def note_copy(data_dir: Path, dest: Path, *, now: datetime | None = None) -> None:
    """Remember that a copy was written outside the data folder (the home page's warning reads it)."""
    folder = backup_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    when = (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
    (folder / COPY_MARKER).write_text(f"{when}\n{dest}\n", encoding="utf-8")


def last_copy(data_dir: Path) -> datetime | None:
    try:
        text = (backup_dir(data_dir) / COPY_MARKER).read_text(encoding="utf-8").splitlines()[0]
        return datetime.fromisoformat(text)
    except (OSError, IndexError, ValueError):
        return None


def backup_state(data_dir: Path, *, today: date, warn_days: int = 7) -> dict:
    """Return the newest daily backup's day, the last copy's time, and whether no backup is newer than ``warn_days``."""
    dailies = daily_backups(data_dir)
    newest_daily = dailies[-1][0] if dailies else None
    copy = last_copy(data_dir)
    newest = max([d for d in (newest_daily, copy.date() if copy else None) if d is not None], default=None)
    return {
        "newest_daily": newest_daily,
        "last_copy": copy,
        "newest": newest,
        "stale": newest is None or (today - newest).days > warn_days,
    }


def start_daily_backups(app, *, every_seconds: float = 3600) -> threading.Event | None:
    """While ``group-ipt serve`` runs, make the day's backup (checked hourly) in a daemon thread.

    Errors are logged and the thread goes on; the home page warns a coordinator when backups stop.
    """
    if not app.config.get("BACKUP_DAILY"):
        return None
    stopping = threading.Event()

    def run() -> None:
        while not stopping.is_set():
            try:
                daily_backup(
                    Path(app.config["DATABASE"]),
                    Path(app.config["DATA_DIR"]),
                    today=clock.today(),
                    keep_days=app.config["BACKUP_KEEP_DAYS"],
                    keep_weeks=app.config["BACKUP_KEEP_WEEKS"],
                )
            except Exception:  # noqa: BLE001 (logged; the next round tries again)
                log.exception("the daily backup failed")
            stopping.wait(every_seconds)

    threading.Thread(target=run, name="daily-backup", daemon=True).start()
    return stopping
