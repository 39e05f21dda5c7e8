"""The sync core, on plain data: cut batches on a laptop, apply them on the central server,
serve the pull feed, apply it on the laptop. No Flask, no network (see client.py, views/api.py).

A record on the wire::

    {"t": table, "id": record id, "site": site id, "hlc": its version,
     "base": the version it was made on top of (null = unknown), "del": true for a deletion,
     "data": {column: value} or null for a deletion}

The conflict rule (docs/sync.md): the version with the larger hybrid logical clock wins; a
version made on top of the current one simply replaces it; two versions made without seeing
each other are a conflict: the larger clock wins and the other is kept in ``sync_conflicts``.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import json
import operator
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from ..core import audit, cycles, participants
from ..store import tracking
from ..store.db import one, row, rows, scalar, utcnow, write
from ..store.tracking import PRIVATE_FIELDS, observe, row_json
from . import rules

CHUNK = 500
MAX_BATCH_RECORDS = 5000
INGEST_CHECKPOINT_PAGES = 8000  # WAL pages between checkpoints while applying (see applying)
MAX_INTEGER = 2**63 - 1  # SQLite's largest integer: a batch number or cursor above it cannot be looked up
_match_hlc = tracking.HLC_RE.match


class SyncRejected(Exception):
    """A whole batch, file or request is refused: nothing of it was written."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# ---- state --------------------------------------------------------------------------


def get_state(db: sqlite_utils.Database, key: str, default=None):
    found = row(db, "select value from sync_state where key = ?", (key,))
    return default if found is None or found["value"] is None else json.loads(found["value"])


def set_state(db: sqlite_utils.Database, key: str, value) -> None:
    db.execute(
        "insert into sync_state (key, value) values (?, ?) on conflict (key) do update set value = excluded.value",
        (key, json.dumps(value)),
    )


class _CollectorPause:
    """Hold off Python's cyclic garbage collector while batches are applied.

    A batch of 5,000 records makes some 50,000 short-lived dicts and tuples, none of them in
    a reference cycle: reference counting frees each as soon as it is done with. Yet their
    number sets the cyclic collector off again and again, now and then for a pass over the
    whole heap, which found nothing to free and cost about a tenth of the central ingest
    (benchmarks/sync_bench.py). The collector is process-wide and a server applies batches
    on several threads, so it is turned back on when the last of them ends (if it was on);
    a cycle made meanwhile is collected then.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


collector_paused = _CollectorPause()


@contextlib.contextmanager
def applying(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One transaction that writes synced records without logging them as local changes.

    Foreign keys are off while applying: a record may arrive before the record it refers
    to, or refer to one deleted elsewhere; each was checked where it was written.
    """
    fk_was_on = db.execute("pragma foreign_keys").fetchone()[0]
    outermost = not db.conn.in_transaction
    checkpoint_every = db.execute("pragma wal_autocheckpoint").fetchone()[0] if outermost else 0
    if outermost:
        db.execute("pragma foreign_keys = off")
        # A batch writes at random UUID keys into two indexes (the record table's id and
        # sync_rows' key); the default 2 MB page cache makes large ingests read pages over and over.
        db.execute("pragma cache_size = -65536")
        # Each table group is written inside a savepoint, whose undo copy of every page it
        # touches (a few MB a batch) spilled to a temporary file on disk; it stays in memory.
        db.execute("pragma temp_store = memory")
        # A batch writes thousands of pages to the WAL. Checkpointing after every batch copied
        # the same index pages into the database file again and again; with up to ~32 MB of
        # WAL between checkpoints, a page changed by several batches is copied once.
        db.execute(f"pragma wal_autocheckpoint = {max(checkpoint_every, INGEST_CHECKPOINT_PAGES)}")
    try:
        # Received records were screened by the record rules already (rules.screen_batch).
        # The collector is paused once the write lock is held: threads still waiting for it
        # (many laptops at once) do not keep it off.
        with write(db, checks=False), collector_paused():
            db.execute("update sync_clock set applying = 1 where id = 1")
            yield db
            db.execute("update sync_clock set applying = 0 where id = 1")
    finally:
        if outermost:
            db.execute(f"pragma wal_autocheckpoint = {checkpoint_every}")
        if fk_was_on and not db.conn.in_transaction:
            db.execute("pragma foreign_keys = on")


def compress(obj) -> bytes:
    return gzip.compress(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), 6)


def decompress(blob: bytes, limit: int) -> object:
    """Decode a gzip JSON body, refusing one that inflates beyond ``limit`` bytes (zip bombs)."""
    try:
        with gzip.GzipFile(fileobj=_bytes_io(blob)) as f:
            raw = f.read(limit + 1)
    except (OSError, EOFError) as exc:
        raise SyncRejected(f"The body is not valid gzip data: {exc}") from exc
    if len(raw) > limit:
        raise SyncRejected(f"The unpacked body is larger than {limit} bytes.", 413)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SyncRejected(f"The body is not valid JSON: {exc}") from exc


def _bytes_io(blob: bytes):
    import io

    return io.BytesIO(blob)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _versions(db, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Return sync_rows for (table, id) keys, by key."""
    by_table: dict[str, list[str]] = {}
    for t, i in keys:
        by_table.setdefault(t, []).append(i)
    found = {}
    for t, ids in by_table.items():
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            for r in db.query(
                "select record_id, site_id, hlc, synced_hlc, deleted, unacked_batch from sync_rows"
                f" where table_name = ? and record_id in ({marks})",
                [t, *chunk],
            ):
                found[(t, r["record_id"])] = r
    return found


def _records(db, table: str, ids: list[str]) -> dict[str, dict]:
    found = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        for r in db.query(f'select * from "{table}" where id in ({marks})', chunk):
            found[r["id"]] = r
    return found


# The private fields each table replaces by a fixed value (most of them): merged at C speed.
_FIXED_PRIVATE = {t: fields for t, fields in PRIVATE_FIELDS.items() if not any(callable(v) for v in fields.values())}


def strip_private(table: str, data: dict | None) -> dict | None:
    if data is None or table not in PRIVATE_FIELDS:
        return data
    fixed = _FIXED_PRIVATE.get(table)
    if fixed is not None and fixed.keys() <= data.keys():
        return data | fixed  # same keys in the same order; only the private values replaced
    out = dict(data)
    for k, v in PRIVATE_FIELDS[table].items():
        if k in out:
            out[k] = v(out[k]) if callable(v) else v
    return out


def read_changes(db, keys: list[tuple[str, str]], *, send_names: bool = True) -> list[dict]:
    """Return wire records for these (table, id) keys with their current data and version."""
    versions = _versions(db, keys)
    by_table: dict[str, list[str]] = {}
    for t, i in keys:
        by_table.setdefault(t, []).append(i)
    tables = tracking.synced_tables(db)
    data = {t: _records(db, t, ids) for t, ids in by_table.items() if t in tables}
    out = []
    for t, i in keys:
        v = versions.get((t, i))
        if v is None:
            continue
        current = data.get(t, {}).get(i)
        deleted = bool(v["deleted"]) or current is None
        record = None if deleted else (current if send_names else strip_private(t, current))
        out.append(
            {
                "t": t,
                "id": i,
                "site": v["site_id"],
                "hlc": v["hlc"],
                "base": v["synced_hlc"],
                "del": deleted,
                "data": record,
            }
        )
    return out


# ---- laptop: the outbox -------------------------------------------------------------


def pending_records(db) -> int:
    """Local changes not yet acknowledged by the central office (records, not edits)."""
    waiting = scalar(
        db,
        "select count(*) from (select distinct table_name, record_id from sync_log where seq > ?)",
        (get_state(db, "outbox_cut_seq", 0),),
    )
    in_batches = scalar(db, "select coalesce(sum(records), 0) from sync_outbox_batches")
    return waiting + in_batches


def cut_batch(db, *, max_records: int = 1000, send_names: bool = False) -> dict | None:
    """Cut the next batch from the outbox and store it until acknowledged; None if nothing waits."""
    with write(db):
        last = get_state(db, "outbox_cut_seq", 0)
        entries = rows(
            db,
            "select seq, table_name, record_id from sync_log where seq > ? order by seq limit ?",
            (last, max_records),
        )
        if not entries:
            return None
        keys = list(dict.fromkeys((e["table_name"], e["record_id"]) for e in entries))
        records = read_changes(db, keys, send_names=send_names)
        batch_no = get_state(db, "outbox_batch_no", 0) + 1
        body = {"batch_no": batch_no, "node": tracking.node_id(db), "records": records}
        db.execute(
            "insert into sync_outbox_batches (batch_no, last_seq, records, payload, created_at) values (?, ?, ?, ?, ?)",
            (batch_no, entries[-1]["seq"], len(records), compress(body), utcnow()),
        )
        # The next version of each record is made on top of this one, as far as the centre knows.
        db.conn.executemany(
            "update sync_rows set synced_hlc = ?, unacked_batch = ? where table_name = ? and record_id = ?",
            [(r["hlc"], batch_no, r["t"], r["id"]) for r in records],
        )
        set_state(db, "outbox_cut_seq", entries[-1]["seq"])
        set_state(db, "outbox_batch_no", batch_no)
    return body


def restamp_future(db) -> int:
    """Give this laptop's unsent changes new stamps when they are more than a day ahead of its clock.

    The hybrid clock never goes back by itself, and the centre refuses changes stamped more
    than a day ahead of its own clock. Changes nobody has seen yet (waiting in the log or in
    unacknowledged batches) that are stamped more than a day ahead of this computer's time
    (someone set the date right since) are stamped again from the real time, each still after
    the version it was made on; a clock still ahead is set back. Versions the centre already
    holds keep their stamps. Return how many were stamped again.
    """
    with write(db):
        now = tracking.now_ms()
        future = f"{now + MAX_AHEAD_MS:015d}"
        ahead = rows(
            db, "select table_name, record_id, hlc, synced_hlc, unacked_batch from sync_rows where hlc > ?", (future,)
        )
        clock_ahead = scalar(db, "select wall from sync_clock where id = 1") > now + MAX_AHEAD_MS
        if clock_ahead:
            db.execute("update sync_clock set wall = ?, counter = 0 where id = 1", (now,))
        unsent = [v for v in ahead if v["hlc"] != v["synced_hlc"] or v["unacked_batch"] is not None]
        if not unsent:
            return 0
        sent_as: dict[tuple[str, str], tuple[str, str]] = {}  # key -> (stamp in its batch, new stamp)
        for batch in unacked_batches(db):
            body = json.loads(gzip.decompress(batch["payload"]))
            changed = False
            for r in body["records"]:
                if r["hlc"] > future:
                    _after(db, r["base"], future)
                    fresh = tracking.tick(db)
                    sent_as[(r["t"], r["id"])] = (r["hlc"], fresh)
                    r["hlc"], changed = fresh, True
            if changed:
                db.execute(
                    "update sync_outbox_batches set payload = ? where batch_no = ?", (compress(body), batch["batch_no"])
                )
        for v in unsent:
            key = (v["table_name"], v["record_id"])
            if key in sent_as and v["hlc"] == sent_as[key][0]:
                stamp = synced = sent_as[key][1]  # the version in the batch is the newest
            else:
                # A version not cut yet; if an earlier one waits in a batch, this one sorts after it.
                synced = sent_as[key][1] if key in sent_as else v["synced_hlc"]
                _after(db, synced, future)
                stamp = tracking.tick(db)
            db.execute(
                "update sync_rows set hlc = ?, synced_hlc = ? where table_name = ? and record_id = ?",
                (stamp, synced, *key),
            )
    return len(unsent)


def _after(db, version: str | None, future: str) -> None:
    """Move the clock past ``version`` (the one a change was made on), unless it is itself too far ahead."""
    if version and version <= future:
        observe(db, version)


def unacked_batches(db) -> list[dict]:
    return rows(db, "select batch_no, last_seq, records, payload from sync_outbox_batches order by batch_no")


def acknowledge(db, batch_no: int) -> bool:
    """The central office applied (or quarantined) every record of the batch: forget it here."""
    with write(db):
        batch = row(db, "select * from sync_outbox_batches where batch_no = ?", (batch_no,))
        if batch is None:
            return False
        db.execute("update sync_rows set unacked_batch = null where unacked_batch = ?", (batch_no,))
        db.execute("delete from sync_log where seq <= ?", (batch["last_seq"],))
        db.execute("delete from sync_outbox_batches where batch_no = ?", (batch_no,))
        set_state(db, "last_push_ok", utcnow())
    return True


# ---- central: applying a batch -------------------------------------------------------


def validate_batch(
    db, body: object, device: dict, *, max_records: int = MAX_BATCH_RECORDS, versions: dict | None = None
) -> list[dict]:
    """Check a batch before anything is written; raise SyncRejected naming the first problem."""
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SyncRejected("A batch is a JSON object with a 'records' list.")
    batch_no = body.get("batch_no")
    if not isinstance(batch_no, int) or isinstance(batch_no, bool) or batch_no < 1:
        raise SyncRejected("A batch needs a positive integer 'batch_no'.")
    if batch_no > MAX_INTEGER:  # the lookup would overflow (API and files alike)
        raise SyncRejected(f"'batch_no' must be at most {MAX_INTEGER}.")
    records = body["records"]
    if len(records) > max_records:
        raise SyncRejected(f"A batch holds at most {max_records} records; this one has {len(records)}.", 413)
    site_id = device["site_id"] if records else None
    laptop_tables: dict[str, bool] = {}  # table name: may a laptop send it (asked once per name)
    for n, r in enumerate(records, 1):
        if not _plainly_valid(r, site_id, laptop_tables):
            _check_record(n, r, site_id)  # raises, naming the problem
    _check_clocks(records, device)
    found = _versions(db, [(r["t"], r["id"]) for r in records])
    if versions is not None:
        versions.update(found)
    for key, v in found.items():
        if v["site_id"] != device["site_id"]:
            raise SyncRejected(f"{key[0]} {key[1]} belongs to another site than this device's.", 403)
    return records


MAX_AHEAD_MS = 24 * 3600 * 1000  # a stamp further ahead of the centre's clock is refused


def _check_clocks(records: list[dict], device: dict) -> None:
    """Refuse a batch stamped more than a day ahead of this server's clock.

    Accepting it would drag the hybrid clock forward for everyone: every later change at any
    laptop would carry that future time. The laptop's clock is wrong; it must be set right.
    """
    if not records:
        return
    newest = max(r["hlc"] for r in records)
    wall = int(newest.split(".", 1)[0])
    if wall > tracking.now_ms() + MAX_AHEAD_MS:
        stamp = datetime.fromtimestamp(wall / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        raise SyncRejected(
            f"The laptop {device.get('name') or device.get('id')} stamped its changes {stamp}, more than a day "
            "ahead of the central server's clock. Set the laptop's date and time right, then sync again: "
            "nothing of this batch was stored.",
            400,
        )


def _plainly_valid(r: object, site_id: str | None, laptop_tables: dict[str, bool]) -> bool:
    """A quick test, per record, that passes only records ``_check_record`` accepts (it may refuse
    some of those too, e.g. a dict subclass: they then go through ``_check_record``)."""
    if type(r) is not dict:
        return False
    t, rid, site, hlc, base, deleted, data = (
        r.get("t"),
        r.get("id"),
        r.get("site"),
        r.get("hlc"),
        r.get("base"),
        r.get("del"),
        r.get("data"),
    )
    if not (
        type(t) is str
        and type(rid) is str
        and type(site) is str
        and type(hlc) is str
        and 0 < len(t) <= 200
        and 0 < len(rid) <= 200
        and 0 < len(site) <= 200
        and site == site_id
    ):
        return False
    # A valid clock value is 28 to 67 characters long, so within the 200 allowed.
    if _match_hlc(hlc) is None or (base is not None and not tracking.valid_hlc(base)):
        return False
    ok = laptop_tables.get(t)
    if ok is None:
        ok = laptop_tables[t] = not tracking.is_sync_table(t)
    if not ok:
        return False
    if deleted is True:
        return data is None
    return deleted is False and type(data) is dict and data.get("id") == rid and data.get("site_id") == site


def _check_record(n: int, r: object, site_id: str | None) -> None:
    """Raise SyncRejected naming the first problem of record ``n``, if it has one."""
    where = f"record {n}"
    if not isinstance(r, dict):
        raise SyncRejected(f"{where} is not an object.")
    for key in ("t", "id", "site", "hlc"):
        if not isinstance(r.get(key), str) or not r[key] or len(r[key]) > 200:
            raise SyncRejected(f"{where} has no valid '{key}'.")
    if not tracking.valid_hlc(r["hlc"]) or (r.get("base") is not None and not tracking.valid_hlc(r["base"])):
        raise SyncRejected(f"{where} has a malformed clock value.")
    if tracking.is_sync_table(r["t"]):
        raise SyncRejected(f"{where}: the table {r['t']!r} does not sync from a laptop.")
    if r["site"] != site_id:
        raise SyncRejected(f"{where} ({r['t']} {r['id']}) belongs to another site than this device's.", 403)
    deleted = r.get("del")
    if not isinstance(deleted, bool):
        raise SyncRejected(f"{where} needs 'del' true or false.")
    data = r.get("data")
    if deleted:
        if data is not None:
            raise SyncRejected(f"{where}: a deletion carries no data.")
    elif not isinstance(data, dict) or data.get("id") != r["id"] or data.get("site_id") != r["site"]:
        raise SyncRejected(f"{where}: its data must be an object with the same id and site_id.")


class _Apply:
    """Collects the writes of one batch, then makes them in bulk (one statement per table and column set)."""

    def __init__(self, db, origin: str, tables: dict[str, list[str]], described: dict[str, rules.Table] | None = None):
        self.db = db
        self.origin = origin
        self.tables = tables
        self.described = described or {}
        self.upserts: dict[tuple[str, tuple[str, ...]], list[dict]] = {}
        self.deletes: dict[str, list[dict]] = {}
        self.quarantine: list[tuple[dict, str | rules.Problem]] = []

    def add(self, rec: dict) -> None:
        if rec["del"]:
            self.deletes.setdefault(rec["t"], []).append(rec)
        else:
            self.upserts.setdefault((rec["t"], tuple(rec["data"])), []).append(rec)

    def run(self) -> list[dict]:
        """Write everything; return the records applied (the others are in self.quarantine)."""
        done = []
        # Parents first; a record whose parent in this batch could not be written waits with it
        # (a constraint the rules do not foresee, e.g. one active membership per person).
        rank = {name: n for n, name in enumerate(rules.table_order(self.described))}
        failed: set[tuple[str, str]] = set()
        for (table, cols), recs in sorted(self.upserts.items(), key=lambda item: rank.get(item[0][0], -1)):
            if failed:
                recs = self._without_failed_parents(table, recs, failed)
                if not recs:
                    continue
            before = len(self.quarantine)
            done += self._write(table, cols, recs)
            failed.update((r["t"], r["id"]) for r, _p in self.quarantine[before:])
        for table, recs in self.deletes.items():
            self.db.conn.executemany(f'delete from "{table}" where id = ?', [(r["id"],) for r in recs])
            done += recs
        return done

    def _without_failed_parents(self, table: str, recs: list[dict], failed: set) -> list[dict]:
        keep = []
        for r in recs:
            parent = next(
                (
                    (ref.parent, r["data"].get(ref.column))
                    for ref in self.described[table].references
                    if (ref.parent, r["data"].get(ref.column)) in failed
                ),
                None,
            )
            if parent is None:
                keep.append(r)
            else:
                self.quarantine.append(
                    (
                        r,
                        rules.Problem(
                            rules.WAITING_WITH_PARENT, {"table": table, "parent": parent[0]}, waiting_for=parent
                        ),
                    )
                )
                failed.add((r["t"], r["id"]))
        return keep

    def _write(self, table: str, cols: tuple[str, ...], recs: list[dict]) -> list[dict]:
        """Upsert one table's records of one column set; return those written."""
        done: list[dict] = []
        unknown = [c for c in cols if c not in self.tables[table]]
        if unknown:
            self.quarantine += [(r, f"unknown column(s) in {table}: {', '.join(unknown)}") for r in recs]
            return done
        names = ", ".join(f'"{c}"' for c in cols)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c != "id") or '"id" = excluded."id"'
        head, tail = f'insert into "{table}" ({names})', f"on conflict (id) do update set {updates}"
        sql = f"{head} values ({', '.join('?' * len(cols))}) {tail}"
        values = _values(recs, cols)
        try:
            with self.db.atomic():
                _upsert_staged(self.db.conn, head, tail, values)
            done += recs
        except Exception:  # noqa: BLE001 (find the bad records one by one below)
            if not self.db.conn.in_transaction:
                # SQLite gave up the whole transaction (a full disk, an I/O error, a trigger's
                # RAISE(ROLLBACK)): nothing of the batch is kept, so nothing more may be written.
                raise
            for r, v in zip(recs, values, strict=True):
                try:
                    with self.db.atomic():
                        self.db.execute(sql, v)
                    done.append(r)
                except Exception as exc:  # noqa: BLE001 (quarantined with its reason)
                    self.quarantine.append((r, _store_problem(table, exc)))
        return done


def _store_problem(table: str, exc: Exception) -> rules.Problem:
    """The reason a write the rules let through still failed, in words a coordinator can act on."""
    text = str(exc)
    if table == "members" and "UNIQUE" in text and "participant_id" in text:
        return rules.Problem(rules.ACTIVE_ELSEWHERE)
    if "CHECK constraint failed" in text:
        return rules.Problem(rules.NOT_ALLOWED, {"table": table, "rule": text.split(":", 1)[-1].strip()[:200]})
    if "UNIQUE" in text:
        fields = text.split(":", 1)[-1].strip().replace(f"{table}.", "")
        return rules.Problem(rules.KEY_TAKEN, {"table": table, "fields": fields})
    return rules.Problem(rules.NOT_STORED, {"error": f"{type(exc).__name__}: {text}"[:300]})


def _values(recs: list[dict], cols: tuple[str, ...]) -> list[tuple]:
    """The rows to write, as tuples in the order of ``cols`` (every record of the group has those keys)."""
    if len(cols) == 1:
        return [(r["data"][cols[0]],) for r in recs]
    get = operator.itemgetter(*cols)
    return [get(r["data"]) for r in recs]


def _upsert_staged(conn, head: str, tail: str, values: list[tuple]) -> None:
    """Run ``{head} values (?, ...) {tail}`` for each row of ``values`` in order, as one statement.

    Call inside a savepoint. The rows go into a temporary table first (its untyped columns
    keep each value exactly as bound), then one ``insert ... select`` takes them in their
    order: the same rows, values, triggers and constraints as one statement per row. But a
    statement per row on a table with triggers keeps its own statement journal, which inside
    the savepoint grows by a few pages per row and spills to a temporary file; one statement
    journals each page once. If anything fails, the savepoint undoes all of it (the
    temporary table's rows too) and the caller tries the rows one by one.
    """
    width = len(values[0])
    stage = f'temp."sync_apply_stage_{width}"'
    conn.execute(f"create table if not exists {stage} ({', '.join(f'c{i}' for i in range(width))})")
    conn.execute(f"delete from {stage}")
    conn.executemany(f"insert into {stage} values ({', '.join('?' * width)})", values)
    conn.execute(f"{head} select * from {stage} where true order by rowid {tail}")
    conn.execute(f"delete from {stage}")


def _conflicting_rows(db, latest: dict, versions: dict, tables: dict) -> dict[tuple[str, str], dict]:
    """The current rows of the records received without seeing their current version, by key:
    one query per table for the batch (a key missing here is read on its own)."""
    ids: dict[str, list[str]] = {}
    for key, ex in versions.items():
        rec = latest.get(key)
        if (
            rec is not None
            and key[0] in tables
            and not ex["deleted"]
            and ex["hlc"] != rec["hlc"]
            and rec.get("base") != ex["hlc"]
        ):
            ids.setdefault(key[0], []).append(key[1])
    return {(t, i): r for t, table_ids in ids.items() for i, r in _records(db, t, table_ids).items()}


def _current_json(db, table: str, record_id: str) -> str | None:
    return row_json(row(db, f'select * from "{table}" where id = ?', (record_id,)))


def _same(a: dict | None, b: dict | None) -> bool:
    return a == b


# Over 60 lines by its signature and docstring: the body is one line per step of a batch.
def apply_records(
    db,
    records: list[dict],
    *,
    origin: str,
    device_id: str | None = None,
    batch_no: int | None = None,
    send_names: bool = True,
    versions: dict | None = None,
    instruments: dict | None = None,
) -> dict:
    """Merge received records into this (central) database. Call inside ``applying(db)``.

    Every record is first checked against the record rules (``rules.screen_batch``): a refused
    one is quarantined with its reason, one whose parent is missing waits for it, a new row of
    a natural key the centre has joins that row, a code made twice is renamed. Records that
    were waiting for one applied here are applied too.

    Returns counts: applied, duplicates, conflicts, quarantined.
    """
    tables = tracking.synced_tables(db)
    described = rules.schema(db, tables)
    known, unknown = _known_records(records, tables, send_names)
    if versions is None:
        versions = _versions(db, list(known))
    parked = _parked_parents(db, known, described)
    for key, (_item_id, rec) in parked.items():
        known.setdefault(key, rec)
    duplicates = _drop_resent(known, versions)
    screened = rules.screen_batch(
        db, known, described, versions, rules.screening_risk(instruments), renamer=_rename_code
    )
    versions = _restamp_rewritten(db, screened, versions)
    work = _Apply(db, origin, tables, described)
    work.quarantine = [*unknown, *screened.refused]
    now = utcnow()
    decided = _decide(db, work, screened.accepted, versions, tables, origin, now)
    conflicts = decided.conflicts
    for rec, into in screened.merged:
        conflicts += _merge(db, work, rec, into, screened.accepted, origin, now)
    for rec in screened.aliased:
        # The laptop still holds its copy of a merged row (it changed it before the deletion came,
        # so it kept it): the deletion is sent again, newer than anything it sent.
        _send_deletion(db, rec["t"], rec["id"], rec["site"], rec["hlc"])
    done = work.run()
    conflicts = _log_applied(db, done, screened, decided.reemit, conflicts, origin)
    _audit_renames(db, screened, origin)
    applied_keys = {(r["t"], r["id"]) for r in done} | {(r["t"], r["id"]) for r, _into in screened.merged}
    for key, (item_id, _rec) in parked.items():
        if key in applied_keys:
            db.execute("update sync_quarantine set status = 'applied' where id = ?", (item_id,))
    # A parked parent refused again stays in its own quarantine entry.
    work.quarantine = [(r, p) for r, p in work.quarantine if (r.get("t"), r.get("id")) not in parked]
    quarantine(db, work.quarantine, direction="in", device_id=device_id, batch_no=batch_no)
    if records:
        observe(db, max(r["hlc"] for r in records))
    return {
        "applied": len(done),
        "duplicates": duplicates + decided.duplicates,
        "conflicts": len(conflicts),
        "quarantined": len(work.quarantine),
        "merged": len(screened.merged),
        "renamed": len(screened.renamed),
        "released": _release_waiting(db, done, send_names=send_names, instruments=instruments),
    }


def _known_records(
    records: list[dict], tables: dict[str, list[str]], send_names: bool
) -> tuple[dict[tuple[str, str], dict], list[tuple[dict, rules.Problem]]]:
    """The batch's records by (table, id), the last of a key counting, names stripped when they do
    not travel; and those of a table this server does not know, each with its reason."""
    latest: dict[tuple[str, str], dict] = {}
    for r in records:  # a record twice in one batch: the last one counts
        latest[(r["t"], r["id"])] = r
    unknown = [
        (rec, rules.Problem(rules.UNKNOWN_TABLE, {"table": key[0]}))
        for key, rec in latest.items()
        if key[0] not in tables
    ]
    private = {} if send_names else PRIVATE_FIELDS  # tables whose data is stripped of names
    known = {
        key: ({**rec, "data": strip_private(key[0], rec["data"])} if key[0] in private and not rec["del"] else rec)
        for key, rec in latest.items()
        if key[0] in tables
    }
    return known, unknown


def _drop_resent(known: dict[tuple[str, str], dict], versions: dict) -> int:
    """Take out the records this server already holds at the same version; return how many."""
    resent = [key for key, rec in known.items() if (ex := versions.get(key)) is not None and ex["hlc"] == rec["hlc"]]
    for key in resent:
        del known[key]
    return len(resent)


def _restamp_rewritten(db, screened: rules.Screened, versions: dict) -> dict:
    """A version the centre rewrote (a merged reference, a new code) is a new version, made at the
    centre on top of the one received; return the versions with those of merged-away ids added."""
    if screened.changed - versions.keys():  # a record sent under a merged-away id: its row's version
        versions = {**versions, **_versions(db, [k for k in screened.changed if k not in versions])}
    for key in screened.changed & screened.accepted.keys():
        observe(db, screened.accepted[key]["hlc"])
        screened.accepted[key] = {**screened.accepted[key], "hlc": tracking.tick(db)}
    return versions


@dataclass
class _Decided:
    conflicts: list[tuple]
    reemit: list[tuple[str, str, str]]  # (table, id, site) whose outcome goes back to the whole site
    duplicates: int


def _decide(db, work: _Apply, accepted: dict, versions: dict, tables: dict, origin: str, now: str) -> _Decided:
    """Which received versions are written: one made on the current version goes in; one made
    without seeing it is a conflict, the larger clock winning, both kept when they differ."""
    out = _Decided([], [], 0)
    current_rows = _conflicting_rows(db, accepted, versions, tables)
    for key, rec in accepted.items():
        ex = versions.get(key)
        if ex is not None and ex["hlc"] == rec["hlc"]:
            out.duplicates += 1
            continue
        if ex is None or rec.get("base") == ex["hlc"]:
            work.add(rec)
            continue
        if ex["deleted"]:
            current_json = None
        elif key in current_rows:
            current_json = row_json(current_rows[key])
        else:
            current_json = _current_json(db, key[0], key[1])
        current = json.loads(current_json) if current_json else None
        if rec["hlc"] > ex["hlc"]:
            work.add(rec)
            winner_hlc, winner, loser_hlc, loser, loser_origin = rec["hlc"], rec["data"], ex["hlc"], current, None
        else:
            winner_hlc, winner, loser_hlc, loser, loser_origin = ex["hlc"], current, rec["hlc"], rec["data"], origin
        # Either way the sender must learn the outcome, so it is fed back to the whole site.
        out.reemit.append(key + (rec["site"],))
        if not _same(winner, loser):
            out.conflicts.append(
                (
                    key[0],
                    key[1],
                    rec["site"],
                    winner_hlc,
                    row_json(winner),
                    loser_hlc,
                    row_json(loser),
                    loser_origin,
                    now,
                )
            )
    return out


def _log_applied(
    db, done: list[dict], screened: rules.Screened, reemit: list, conflicts: list[tuple], origin: str
) -> list[tuple]:
    """Record what was written: its version, its entry in the change log (what the centre rewrote
    goes back to the sender too: its origin is left empty), and the conflicts kept. Return those."""
    db.conn.executemany(
        "insert into sync_rows (table_name, record_id, site_id, hlc, synced_hlc, deleted, tombstone_json)"
        " values (?, ?, ?, ?, ?, ?, null) on conflict (table_name, record_id) do update set"
        " site_id = excluded.site_id, hlc = excluded.hlc, synced_hlc = excluded.synced_hlc,"
        " deleted = excluded.deleted",
        [(r["t"], r["id"], r["site"], r["hlc"], r["hlc"], int(r["del"])) for r in done],
    )
    changed = screened.changed | {(r["t"], into) for r, into in screened.merged}
    db.conn.executemany(
        "insert into sync_log (table_name, record_id, site_id, origin) values (?, ?, ?, ?)",
        [(r["t"], r["id"], r["site"], "" if (r["t"], r["id"]) in changed else origin) for r in done]
        + [(t, i, s, "") for t, i, s in reemit],
    )
    if conflicts:
        applied_keys = {(r["t"], r["id"]) for r in done}
        conflicts = [c for c in conflicts if (c[0], c[1]) in applied_keys or c[7] is not None]
    db.conn.executemany(
        "insert into sync_conflicts (table_name, record_id, site_id, winner_hlc, winner_json, loser_hlc,"
        " loser_json, loser_origin, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        conflicts,
    )
    return conflicts


def _audit_renames(db, screened: rules.Screened, origin: str) -> None:
    for rec, old_code in screened.renamed:
        audit.log(
            db,
            user={"id": None, "username": f"sync:{origin}"},
            action="rename_code",
            table=rec["t"],
            record_id=rec["id"],
            site_id=rec["site"],
            before={"code": old_code},
            after={"code": rec["data"]["code"]},
        )


def _parked_parents(db, known: dict, described: dict) -> dict[tuple[str, str], tuple[int, dict]]:
    """Quarantined records that records of this batch refer to: they are tried again with it.

    A risk screening waits for its referral, and the referral refers to the screening: the two
    go in together. Likewise a parent refused for a reason fixed since.
    """
    if row(db, "select 1 as x from sync_quarantine where status = 'open' and direction = 'in' limit 1") is None:
        return {}
    parked = {
        (q["table_name"], q["record_id"]): q
        for q in rows(
            db,
            "select id, table_name, record_id, record_json from sync_quarantine"
            " where status = 'open' and direction = 'in' order by id",
        )
    }
    found = {}
    for (t, _i), rec in known.items():
        if rec["del"] or t not in described:
            continue
        for ref in described[t].references:
            key = (ref.parent, rec["data"].get(ref.column))
            if key in parked and key not in known and key not in found:
                found[key] = (parked[key]["id"], json.loads(parked[key]["record_json"]))
    return found


def _rename_code(db, table: str, data: dict, taken: set) -> str:
    """A new code for a record whose code another record of its site already has (made offline twice).

    The centre's own block (0) keeps the new code apart from every laptop's.
    """
    site = one(db, "select id, code from sites where id = ?", (data["site_id"],))
    if table == "participants":
        for _ in range(200):
            code = participants.generate_code(db, site["id"], site["code"], block=0)
            if code not in taken:
                return code
        raise SyncRejected("No free programme code is left for this site.", 409)
    return cycles.next_code(db, site, block=0, taken=frozenset(taken))


_MERGE_SKIP = ("id", "created_at", "updated_at")


def _merge(db, work: _Apply, rec: dict, into: str, accepted: dict, origin: str, now: str) -> list[tuple]:
    """Join a record received for a natural key the centre has onto the row that holds the key.

    The version with the larger clock gives the row its values; when the two differ, the
    other is kept as a conflict for the coordinator. The record's own id becomes an alias of
    the row (later versions and children sent with it land there), and a deletion of that id
    is sent back so the laptop that made it keeps one row too.
    """
    t = rec["t"]
    target = accepted.get((t, into))
    if target is not None:
        stored, stored_hlc = target["data"], target["hlc"]
    else:
        stored = row(db, f'select * from "{t}" where id = ?', (into,))
        version = row(db, "select hlc from sync_rows where table_name = ? and record_id = ?", (t, into))
        stored_hlc = version["hlc"] if version else ""
    incoming = {**rec["data"], "id": into, "created_at": stored["created_at"]}
    differs = any(incoming.get(k) != stored.get(k) for k in incoming if k not in _MERGE_SKIP)
    out: list[tuple] = []
    if rec["hlc"] > stored_hlc:
        merged = {**rec, "id": into, "base": None, "data": incoming}
        if target is not None:
            work_recs = work.upserts.get((t, tuple(target["data"])), [])
            if target in work_recs:
                work_recs.remove(target)
        work.add(merged)
        accepted[(t, into)] = merged
        if differs:
            out.append((t, into, rec["site"], rec["hlc"], row_json(incoming), stored_hlc, row_json(stored), None, now))
    elif differs:
        out.append((t, into, rec["site"], stored_hlc, row_json(stored), rec["hlc"], row_json(incoming), origin, now))
    db.execute(
        "insert into sync_aliases (table_name, record_id, canonical_id, site_id, created_at)"
        " values (?, ?, ?, ?, ?) on conflict do update set canonical_id = excluded.canonical_id",
        (t, rec["id"], into, rec["site"], now),
    )
    _send_deletion(db, t, rec["id"], rec["site"], rec["hlc"])
    if rec["hlc"] <= stored_hlc:  # the sender learns the row it joined
        db.execute(
            "insert into sync_log (table_name, record_id, site_id, origin) values (?, ?, ?, '')", (t, into, rec["site"])
        )
    return out


def _send_deletion(db, table: str, record_id: str, site_id: str, after: str) -> None:
    """Log a deletion of a merged-away id for the site's laptops, stamped after ``after``."""
    observe(db, after)
    db.execute(
        "insert into sync_rows (table_name, record_id, site_id, hlc, synced_hlc, deleted) values"
        " (?, ?, ?, ?, ?, 1) on conflict (table_name, record_id) do update set hlc = excluded.hlc,"
        " synced_hlc = excluded.synced_hlc, deleted = 1",
        (table, record_id, site_id, tracking.tick(db), None),
    )
    db.execute(
        "insert into sync_log (table_name, record_id, site_id, origin) values (?, ?, ?, '')",
        (table, record_id, site_id),
    )


def _release_waiting(db, done: list[dict], *, send_names: bool, instruments: dict | None) -> int:
    """Apply the quarantined records that were waiting for one of ``done`` (their parent, a referral)."""
    keys = rules.keys_applied(done)
    released = 0
    while keys:
        waiting = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            waiting += rows(
                db,
                "select * from sync_quarantine where status = 'open' and direction = 'in'"
                f" and waiting_for in ({marks}) order by id",
                chunk,
            )
        if not waiting:
            return released
        keys = []
        for item in waiting:
            counts = reapply_quarantined(db, item, send_names=send_names, instruments=instruments)
            if counts["applied"] or counts["merged"]:
                db.execute("update sync_quarantine set status = 'applied' where id = ?", (item["id"],))
                released += 1
    return released


def reapply_quarantined(db, item: dict, *, send_names: bool = True, instruments: dict | None = None) -> dict:
    """Apply a quarantined record again (inside ``applying``); return the counts of apply_records.

    A record refused again keeps one quarantine entry: the new entry goes and the old one takes
    its reason (what it waits for may have changed). Marking the old entry applied is the caller's.
    """
    before = scalar(db, "select max(id) from sync_quarantine")
    counts = apply_records(
        db,
        [json.loads(item["record_json"])],
        origin=item["device_id"] or "",
        device_id=item["device_id"],
        batch_no=item["batch_no"],
        send_names=send_names,
        instruments=instruments,
    )
    newest = row(db, "select * from sync_quarantine where id > ? order by id limit 1", (before,))
    if newest and not (counts["applied"] or counts["merged"]):
        db.execute("delete from sync_quarantine where id > ?", (before,))
        db.execute(
            "update sync_quarantine set error = ?, reason_json = ?, waiting_for = ? where id = ?",
            (newest["error"], newest["reason_json"], newest["waiting_for"], item["id"]),
        )
    return counts


def quarantine(
    db,
    items: Sequence[tuple[dict, str | rules.Problem]],
    *,
    direction: str,
    device_id: str | None = None,
    batch_no: int | None = None,
) -> None:
    """Keep records that could not be applied, each with its reason (a Problem, or a plain message)."""
    now = utcnow()
    db.conn.executemany(
        "insert into sync_quarantine (direction, device_id, batch_no, table_name, record_id, site_id,"
        " record_json, error, created_at, reason_json, waiting_for) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                direction,
                device_id,
                batch_no,
                r.get("t"),
                r.get("id"),
                r.get("site"),
                row_json(r),
                str(error)[:2000],
                now,
                error.as_json() if isinstance(error, rules.Problem) else None,
                rules.waiting_key(error.waiting_for) if isinstance(error, rules.Problem) else None,
            )
            for r, error in items
        ],
    )


def apply_batch(
    db,
    device: dict,
    body: object,
    *,
    send_names: bool,
    via: str = "http",
    max_records: int = MAX_BATCH_RECORDS,
    instruments: dict | None = None,
) -> dict:
    """Apply one batch from a device atomically; a batch applied before is only acknowledged again."""
    batch_no = body.get("batch_no") if isinstance(body, dict) else None
    with applying(db):
        # Validated inside the write lock, so the versions looked up are still current.
        versions: dict = {}
        records = validate_batch(db, body, device, max_records=max_records, versions=versions)
        seen = row(db, "select * from sync_batches where device_id = ? and batch_no = ?", (device["id"], batch_no))
        if seen:
            return {
                "batch_no": batch_no,
                "duplicate": True,
                "applied": seen["applied"],
                "quarantined": seen["quarantined"],
                "conflicts": seen["conflicts"],
            }
        counts = apply_records(
            db,
            records,
            origin=device["id"],
            device_id=device["id"],
            batch_no=batch_no,
            send_names=send_names,
            versions=versions,
            instruments=instruments,
        )
        db.execute(
            "insert into sync_batches (device_id, batch_no, received_at, records, applied, quarantined, conflicts, via)"
            " values (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                device["id"],
                batch_no,
                utcnow(),
                len(records),
                counts["applied"],
                counts["quarantined"],
                counts["conflicts"],
                via,
            ),
        )
        db.execute(
            "update sync_devices set last_batch_no = max(last_batch_no, ?), last_seen_at = ? where id = ?",
            (batch_no, utcnow(), device["id"]),
        )
    return {"batch_no": batch_no, "duplicate": False, **counts}


# ---- central: the pull feed ----------------------------------------------------------


def feed(db, device: dict, cursor: int, *, limit: int = 1000) -> dict:
    """Changes for the device's site after ``cursor``, except those the device sent itself."""
    entries = rows(
        db,
        "select seq, table_name, record_id, origin from sync_log where site_id = ? and seq > ? order by seq limit ?",
        (device["site_id"], cursor, limit),
    )
    # Each record once, at its last change: a deletion the centre made to merge two rows then
    # always comes before the row they were merged into.
    last = {(e["table_name"], e["record_id"]): e["seq"] for e in entries if e["origin"] != device["id"]}
    keys = sorted(last, key=last.__getitem__)
    # A record sent by the device and changed since by someone else still travels.
    changes = read_changes(db, keys)
    for c in changes:
        c["base"] = None
    return {
        "changes": changes,
        "cursor": entries[-1]["seq"] if entries else cursor,
        "more": len(entries) == limit,
    }


# What a laptop keeps of a user for offline login: no last login, nothing else.
LAPTOP_USER_FIELDS = (
    "id",
    "username",
    "display_name",
    "password_hash",
    "role",
    "language",
    "active",
    "created_at",
    "updated_at",
)
# Stored instead of a disabled user's password hash: no password matches it.
NO_PASSWORD = "!"  # noqa: S105 (not a password: a value no password matches)


def reference_data(db, site_id: str) -> dict:
    """What a laptop needs that it never edits: its site and that site's users (logins work offline).

    Only the people who may work on the site's laptops travel: the site's facilitators,
    coordinators and supervisors, with the same (strong) hash as at the centre. Admins work
    at the centre and their verifiers never leave it; a disabled user travels without one,
    so the laptop refuses them too.
    """
    site = row(db, "select * from sites where id = ?", (site_id,))
    fields = ", ".join(f"u.{f}" for f in LAPTOP_USER_FIELDS)
    users = rows(
        db,
        f"select {fields} from users u join user_sites us on us.user_id = u.id"
        " where us.site_id = ? and u.role != 'admin' order by u.username",
        (site_id,),
    )
    for user in users:
        if not user["active"]:
            user["password_hash"] = NO_PASSWORD
    return {"site": site, "users": users}


def open_conflicts(db, site_id: str | None = None) -> int:
    sql = "select count(*) as n from sync_conflicts where status = 'open'"
    return scalar(db, sql + (" and site_id = ?" if site_id else ""), (site_id,) if site_id else ())


# ---- laptop: applying the feed -------------------------------------------------------


def apply_feed(db, page: dict, *, send_names: bool) -> dict:
    """Apply one page of pulled changes and move the cursor, in one transaction.

    A record with a local change not yet confirmed by the centre is left alone: the centre
    decides between the two when the local change arrives, and sends the outcome back.
    """
    changes = page.get("changes") or []
    if not isinstance(changes, list):
        raise SyncRejected("The server's reply has no list of changes.")
    tables = tracking.synced_tables(db)
    applied, skipped, bad, todo = 0, 0, [], []
    with applying(db):
        versions = _versions(db, [(c["t"], c["id"]) for c in changes if c.get("t") in tables])
        for c in changes:
            table = c.get("t")
            if table not in tables:
                bad.append((c, f"unknown table {table!r} (is this laptop's software older than the centre's?)"))
                continue
            ex = versions.get((table, c["id"]))
            if ex is not None and (ex["hlc"] != ex["synced_hlc"] or ex["unacked_batch"] is not None):
                skipped += 1
                continue
            if ex is not None and ex["hlc"] >= c["hlc"]:
                continue  # the centre's versions of a record only grow: an older one is a stale page
            todo.append((c, not send_names and ex is not None))
        sql_cache: dict = {}
        try:  # all at once; if one fails, one by one below to find it
            with db.atomic():
                for c, keep in todo:
                    _write_pulled(db, c["t"], tables[c["t"]], c, keep_private=keep, cache=sql_cache)
                db.conn.executemany(_PULLED_VERSION_SQL, [_pulled_version(c) for c, _keep in todo])
            applied = len(todo)
        except Exception:  # noqa: BLE001
            described = rules.schema(db, tables)
            for c, keep in todo:
                for attempt in (1, 2):
                    try:
                        with db.atomic():
                            _write_pulled(db, c["t"], tables[c["t"]], c, keep_private=keep, cache=sql_cache)
                            db.execute(_PULLED_VERSION_SQL, _pulled_version(c))
                        applied += 1
                        break
                    except Exception as exc:  # noqa: BLE001 (quarantined with its message, the rest goes on)
                        if attempt == 2 or not _drop_merged_twin(db, described[c["t"]], c):
                            bad.append((c, f"{type(exc).__name__}: {exc}"))
                            break
        quarantine(db, bad, direction="pull")
        if changes:
            observe(db, max(c["hlc"] for c in changes if isinstance(c.get("hlc"), str)))
        set_state(db, "pull_cursor", page["cursor"])
        if "open_conflicts" in page:
            set_state(db, "central_open_conflicts", page["open_conflicts"])
    return {"applied": applied, "skipped": skipped, "quarantined": len(bad)}


def _drop_merged_twin(db, table: rules.Table, c: dict) -> bool:
    """Drop this laptop's row of the same natural key as a pulled row, if the centre merged them.

    The centre keeps one row per natural key (attendance of a member at a session...): the
    laptop's own row, once acknowledged, was joined to the pulled one, and its deletion is on
    its way. A row with a change not yet acknowledged is never dropped (its change still counts).
    Return True if a row was dropped.
    """
    if c["del"] or not isinstance(c.get("data"), dict):
        return False
    dropped = False
    for cols in rules.natural_keys(table):
        values = [c["data"].get(col) for col in cols]
        if None in values:
            continue
        where = " and ".join(f'"{col}" = ?' for col in cols)
        for twin in rows(db, f'select id from "{table.name}" where {where} and id != ?', (*values, c["id"])):
            version = row(
                db,
                "select hlc, synced_hlc, unacked_batch from sync_rows where table_name = ? and record_id = ?",
                (table.name, twin["id"]),
            )
            if version is not None and (version["hlc"] != version["synced_hlc"] or version["unacked_batch"]):
                return False
            db.execute(f'delete from "{table.name}" where id = ?', (twin["id"],))
            dropped = True
    return dropped


_PULLED_VERSION_SQL = (
    "insert into sync_rows (table_name, record_id, site_id, hlc, synced_hlc, deleted)"
    " values (?, ?, ?, ?, ?, ?) on conflict (table_name, record_id) do update set"
    " site_id = excluded.site_id, hlc = excluded.hlc, synced_hlc = excluded.synced_hlc,"
    " deleted = excluded.deleted, unacked_batch = null"
)


def _pulled_version(c: dict) -> tuple:
    return (c["t"], c["id"], c["site"], c["hlc"], c["hlc"], int(bool(c["del"])))


def _write_pulled(db, table: str, columns: list[str], c: dict, *, keep_private: bool, cache: dict) -> None:
    if c["del"]:
        db.execute(f'delete from "{table}" where id = ?', (c["id"],))
        return
    if not isinstance(c.get("data"), dict):
        raise ValueError("a change without data")
    cols = tuple(c["data"])
    key = (table, cols, keep_private)
    if key not in cache:
        unknown = set(cols) - set(columns)
        if unknown:
            raise ValueError(f"unknown column(s) in {table}: {', '.join(sorted(unknown))}")
        private = set(PRIVATE_FIELDS.get(table, {})) if keep_private else set()
        updates = ", ".join(f'"{k}" = excluded."{k}"' for k in cols if k != "id" and k not in private)
        names = ", ".join(f'"{k}"' for k in cols)
        cache[key] = (
            f'insert into "{table}" ({names}) values ({", ".join("?" * len(cols))})'
            f" on conflict (id) do update set {updates or 'id = excluded.id'}"
        )
    db.execute(cache[key], [c["data"][k] for k in cols])


def apply_reference(db, ref: dict) -> list[str]:
    """Bring the laptop's copy of its site and its users up to date; return problems (also quarantined)."""
    problems: list[tuple[dict, str]] = []
    with write(db):
        site = ref.get("site")
        if site:
            try:
                with db.atomic():
                    db["sites"].upsert(site, pk="id")
            except Exception as exc:  # noqa: BLE001
                problems.append(
                    (
                        {"t": "sites", "id": site.get("id"), "data": site},
                        f"{exc}: this laptop has a site with code {site.get('code')} made locally",
                    )
                )
        for user in ref.get("users") or []:
            try:
                with db.atomic():
                    db["users"].upsert(user, pk="id")
                    if site:
                        db.execute(
                            "insert or ignore into user_sites (user_id, site_id) values (?, ?)",
                            (user["id"], site["id"]),
                        )
            except Exception as exc:  # noqa: BLE001
                safe = {k: v for k, v in user.items() if k != "password_hash"}
                problems.append(
                    (
                        {"t": "users", "id": user.get("id"), "data": safe},
                        f"{exc}: a local user is called {user.get('username')!r} too",
                    )
                )
        already = {
            (r["table_name"], r["record_id"])
            for r in rows(
                db,
                "select table_name, record_id from sync_quarantine where direction = 'pull'"
                " and status = 'open' and table_name in ('sites', 'users')",
            )
        }
        problems = [p for p in problems if (p[0]["t"], p[0]["id"]) not in already]
        quarantine(db, problems, direction="pull")
    return [p[1] for p in problems]


def local_quarantine(db, status: str = "open") -> list[dict]:
    return rows(db, "select * from sync_quarantine where status = ? order by id", (status,))
