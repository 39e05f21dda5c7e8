"""Which tables sync, the triggers that capture every change to them, and the hybrid logical clock.

Any table with ``id``, ``site_id``, ``created_at`` and ``updated_at`` syncs, except the
few in ``NOT_SYNCED``. Triggers (installed by ``ensure_triggers`` after every migration)
write each insert, update and delete into ``sync_rows`` (the record's version) and
``sync_log`` (the change log), so every write path is captured without calling sync code.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time

import sqlite_utils

# Local-only tables, and tables that travel another way (users, sites: central to laptop).
NOT_SYNCED = frozenset({"users", "sites", "user_sites", "audit_log", "login_attempts", "settings", "schema_migrations"})
REQUIRED_COLUMNS = ("id", "site_id", "created_at", "updated_at")
# Never leave the laptop when the programme keeps names local (SYNC_SEND_NAMES off): the
# value the central office stores instead.
# A callable gets the local value. Add here any new column that holds a name or a phone number.
PRIVATE_FIELDS: dict[str, dict[str, object]] = {
    "participants": {"name": "", "name_key": "", "phone": None},
    "consents": {"given_by": lambda v: v if v in (None, "participant") else "guardian"},
    # The people in a member's interpersonal inventory are named too.
    "inventory_people": {"name": ""},
}
# Facts: written once, corrected by a new row, never edited in place by the app.
FACT_TABLES = frozenset(
    {"screenings", "participant_status_history", "consents", "referral_events", "session_changes", "absence_followups"}
)

NOW_MS = "cast((julianday('now') - 2440587.5) * 86400000 as integer)"
HLC_SQL = "(select printf('%015d.%010d.%s', wall, counter, node) from sync_clock where id = 1)"
TICK_SQL = (
    f"update sync_clock set counter = case when {NOW_MS} > wall then 0 else counter + 1 end,"
    f" wall = max(wall, {NOW_MS}) where id = 1;"
)


def is_sync_table(name: str) -> bool:
    return name.startswith(("sync_", "sqlite_")) or name in NOT_SYNCED


def table_columns(db: sqlite_utils.Database, table: str) -> list[str]:
    return [r[1] for r in db.execute(f'pragma table_info("{table}")').fetchall()]


# (database file, schema version) -> synced tables: the schema is read again only when it changes.
_SYNCED: dict[tuple[str, int], dict[str, list[str]]] = {}


def synced_tables(db: sqlite_utils.Database) -> dict[str, list[str]]:
    """Return {table: columns} for every table that syncs, from the current schema (do not change it).

    A push reads it once per batch: the answer is kept per database file and ``schema_version``
    (which SQLite raises on every change of a table or index), so a migration is seen at once.
    """
    path = db.execute("pragma database_list").fetchone()[2]
    key = (path, db.execute("pragma schema_version").fetchone()[0])
    if path and key in _SYNCED:
        return _SYNCED[key]
    found = _read_synced_tables(db)
    if path:
        if len(_SYNCED) > 32:
            _SYNCED.clear()
        _SYNCED[key] = found
    return found


def _read_synced_tables(db: sqlite_utils.Database) -> dict[str, list[str]]:
    found = {}
    names = [r[0] for r in db.execute("select name from sqlite_master where type = 'table' order by name")]
    for name in names:
        if is_sync_table(name):
            continue
        columns = table_columns(db, name)
        if all(c in columns for c in REQUIRED_COLUMNS):
            found[name] = columns
    return found


# ---- hybrid logical clock -------------------------------------------------------------


def format_hlc(wall: int, counter: int, node: str) -> str:
    """Fixed-width text, so comparing two values as strings compares them as clocks."""
    return f"{wall:015d}.{counter:010d}.{node}"


def parse_hlc(value: str) -> tuple[int, int, str]:
    wall, counter, node = value.split(".", 2)
    return int(wall), int(counter), node


HLC_RE = re.compile(r"[0-9]{15}\.[0-9]{10}\.[A-Za-z0-9_-]{1,40}\Z")  # ASCII digits only


def valid_hlc(value: object) -> bool:
    return isinstance(value, str) and HLC_RE.match(value) is not None


def node_id(db: sqlite_utils.Database) -> str:
    return db.execute("select node from sync_clock where id = 1").fetchone()[0]


def tick(db: sqlite_utils.Database) -> str:
    """Advance the clock for a local event and return its value (call inside a transaction)."""
    db.execute(TICK_SQL)
    return db.execute("select " + HLC_SQL).fetchone()[0]


def observe(db: sqlite_utils.Database, remote: str | None) -> None:
    """Move the clock past a value received from elsewhere, so later local events sort after it.

    This is what makes the rule independent of wall clocks: a change made after seeing
    another always gets a larger value, however wrong this laptop's clock is.
    """
    if not remote:
        return
    wall, counter, _node = parse_hlc(remote)
    db.execute(
        "update sync_clock set counter = case when ? > wall then ? when ? = wall then max(counter, ?)"
        " else counter end, wall = max(wall, ?) where id = 1",
        (wall, counter, wall, counter, wall),
    )


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- triggers -------------------------------------------------------------------------


def trigger_sql(table: str, columns: list[str]) -> dict[str, str]:
    """Return the three triggers that record changes to ``table``, by trigger name."""
    guard = "when (select applying from sync_clock where id = 1) = 0"
    snapshot = "json_object(" + ", ".join(f"'{c}', old.\"{c}\"" for c in columns) + ")"

    def upsert(ref: str, deleted: int, tombstone: str) -> str:
        return (
            f"insert into sync_rows (table_name, record_id, site_id, hlc, deleted, tombstone_json)"
            f" values ('{table}', {ref}.id, {ref}.site_id, {HLC_SQL}, {deleted}, {tombstone})"
            " on conflict (table_name, record_id) do update set site_id = excluded.site_id,"
            " hlc = excluded.hlc, deleted = excluded.deleted, tombstone_json = excluded.tombstone_json;"
        )

    def after_version(ref: str) -> str:
        # A new version sorts after the record's previous one even if this clock was set back
        # (a laptop restored from a backup): versions of one record only ever grow.
        return (
            "update sync_clock set counter = case when r.w > wall then r.c when r.w = wall then max(counter, r.c)"
            " else counter end, wall = max(wall, r.w) from (select cast(substr(hlc, 1, 15) as integer) as w,"
            " cast(substr(hlc, 17, 10) as integer) as c from sync_rows"
            f" where table_name = '{table}' and record_id = {ref}.id) as r where id = 1;"
        )

    def log(ref: str) -> str:
        return (
            "insert into sync_log (table_name, record_id, site_id, origin)"
            f" values ('{table}', {ref}.id, {ref}.site_id, (select node from sync_clock where id = 1));"
        )

    return {
        f"sync_{table}_ins": (
            f'CREATE TRIGGER "sync_{table}_ins" after insert on "{table}" {guard}\nbegin\n'
            f"  {after_version('new')}\n  {TICK_SQL}\n  {upsert('new', 0, 'null')}\n  {log('new')}\nend"
        ),
        f"sync_{table}_upd": (
            f'CREATE TRIGGER "sync_{table}_upd" after update on "{table}" {guard}\nbegin\n'
            f"  {after_version('new')}\n  {TICK_SQL}\n  {upsert('new', 0, 'null')}\n  {log('new')}\nend"
        ),
        f"sync_{table}_del": (
            f'CREATE TRIGGER "sync_{table}_del" after delete on "{table}" {guard}\nbegin\n'
            f"  {after_version('old')}\n  {TICK_SQL}\n  {upsert('old', 1, snapshot)}\n  {log('old')}\nend"
        ),
    }


def ensure_triggers(db: sqlite_utils.Database) -> list[str]:
    """Install or refresh the change-capture triggers of every synced table; return the tables changed.

    Safe to call at every start. A table that gets triggers for the first time has its
    existing records logged as changes, so data made before sync was set up travels too.
    """
    if "sync_clock" not in db.table_names():
        return []
    existing = {r[0]: r[1] for r in db.execute("select name, sql from sqlite_master where type = 'trigger'")}
    changed = []
    tables = synced_tables(db)
    todo = {t: trigger_sql(t, cols) for t, cols in tables.items()}
    todo = {t: sqls for t, sqls in todo.items() if any(existing.get(n) != s for n, s in sqls.items())}
    if not todo:
        return []
    from .db import write

    # Logging rows that exist already changes no record; the commit checks (which read every
    # changed row) would make an upgrade of a big database slow, or refuse it for old data.
    with write(db, checks=False):
        for table, sqls in todo.items():
            first_time = not any(name in existing for name in sqls)
            for name, sql in sqls.items():
                if existing.get(name) != sql:
                    db.execute(f'drop trigger if exists "{name}"')
                    db.execute(sql)
            if first_time:
                log_existing_rows(db, table)
            changed.append(table)
    return changed


def log_existing_rows(db: sqlite_utils.Database, table: str) -> None:
    hlc = tick(db)
    node = node_id(db)
    db.execute(
        f'insert into sync_rows (table_name, record_id, site_id, hlc) select ?, id, site_id, ? from "{table}"'
        " where true on conflict do nothing",
        (table, hlc),
    )
    db.execute(
        f'insert into sync_log (table_name, record_id, site_id, origin) select ?, id, site_id, ? from "{table}"',
        (table, node),
    )


def row_json(row: dict | None) -> str | None:
    return None if row is None else json.dumps(row, ensure_ascii=False, sort_keys=True, default=str)


def is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError | sqlite3.OperationalError | sqlite3.InterfaceError)
