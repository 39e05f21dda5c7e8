"""Stored per-cycle figures behind the indicators page, recomputed only for the cycles that changed.

Why: a quarter of a national programme is ~70,000 attendance pairs and ~7,000 members
with scores; recomputing them from the records on every view took 5 s on 100,000
participants. The figures of one cycle only change when the cycle, its sessions,
members, attendance, fidelity checklists or a member's PHQ-9 change, so:

- triggers (migration 0007) put the cycle of every such change in ``report_stale``, on
  every write path (web, API, sync, file import, the scale generator);
- :func:`refresh` recomputes the stale cycles with the *same code* that lists the records
  behind an indicator (``indicator_records.RecordReader`` limited to those cycles, all time) and stores
  per cycle: enrolments per day, attendance counted per session number and date, the members
  of a closed cycle counted per outcome (with their scores summed), one fidelity row per held
  group session, the first held session's date;
- the indicators then sum the stored rows of the cycles matching the filters over the period.

A figure and the records listed behind it therefore come from the same rules; a test
checks they agree on generated programmes. A different rules version, set of protocols or
grace period (the ``fingerprint``) makes every cycle stale. Refreshing runs in chunks, each
in its own write transaction (the stale marks of a chunk are removed in the transaction
that stores its figures, so a change made meanwhile is never lost), so a big refresh does
not hold the write lock for long.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar, cast
from typing import Protocol as Interface

import sqlite_utils

from ..formfiles import forms as formsmod
from ..formfiles.protocols import Protocol
from ..store.db import marks, utcnow, write
from .indicator_definitions import Filters
from .indicator_records import RecordReader

# Raise when the rules of indicator_definitions.py, indicator_records.py or this module change:
# every stored figure is recomputed.
RULES_VERSION = 1
CHUNK = 50  # cycles per write transaction (~0.5 s of holding the write lock)
log = logging.getLogger(__name__)
T = TypeVar("T")


def fingerprint(protocols: dict[str, Protocol], grace_days: int) -> str:
    """Return what the stored figures depend on besides the records: rules, protocols, grace days."""
    described = {
        pid: {"group_sessions": [s.number for s in p.group_sessions], "share": repr(p.min_attended_share)}
        for pid, p in sorted(protocols.items())
    }
    text = json.dumps({"rules": RULES_VERSION, "grace_days": grace_days, "protocols": described}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def data_version(db: sqlite_utils.Database) -> tuple:
    """Return a value that changes whenever a record the indicators read may have changed.

    Every change to a synced table is logged in ``sync_log`` (triggers, or the sync engine
    for received changes), whose AUTOINCREMENT ``seq`` never goes back, even when a laptop
    prunes acknowledged lines; a restore (which can bring back an older ``seq``) writes a new
    ``epoch``; sites are not synced that way, so their last change is part of it too.
    """
    found = db.execute(
        "select (select seq from sqlite_sequence where name = 'sync_log'),"
        " (select value from report_meta where key = 'epoch'), (select max(updated_at) from sites)"
    ).fetchone()
    return tuple(found)


class Remembered:
    """The last figures computed per report and data version, shared by a server's threads.

    Opening the same report again (a reload, the way back from the records behind a figure,
    the CSV of the figures) reads one row to learn the data version instead of recounting.
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.found: dict[tuple, object] = {}
        self.lock = threading.Lock()

    def get(self, key: tuple, compute: Callable[[], T]) -> T:
        """Return the value remembered under ``key``, else ``compute()`` (then remembered)."""
        with self.lock:
            if key in self.found:
                value = self.found.pop(key)
                self.found[key] = value  # most recently used last
                return cast(T, value)  # put there by a compute() of the same key
        value = compute()
        with self.lock:
            self.found[key] = value
            while len(self.found) > self.size:
                self.found.pop(next(iter(self.found)))
        return value


REMEMBERED = Remembered(256)  # a report view keeps 5 entries: figures, enrolment, scores, screening, referrals
# Per query and filters, {site: (generation, stored rows summed)}: each site's rows until
# that site's figures are stored again (indicators.Report._summed; 8 queries per filters).
SITE_SUMS = Remembered(512)


def stale_count(db: sqlite_utils.Database) -> int:
    return db.execute("select count(*) from report_stale").fetchone()[0]


def _needs_work(db: sqlite_utils.Database, print_: str) -> bool:
    stored = db.execute("select value from report_meta where key = 'fingerprint'").fetchone()
    if stored is None or stored[0] != print_:
        return True
    return db.execute("select exists (select 1 from report_stale)").fetchone()[0] == 1


def refresh(
    db: sqlite_utils.Database, protocols: dict[str, Protocol], *, today: date, grace_days: int, chunk: int = CHUNK
) -> int:
    """Recompute the stored figures of every stale cycle; return how many cycles were recomputed."""
    print_ = fingerprint(protocols, grace_days)
    if not _needs_work(db, print_):  # the usual case: a plain read, no write lock
        return 0
    with write(db):
        stored = db.execute("select value from report_meta where key = 'fingerprint'").fetchone()
        if stored is None or stored[0] != print_:
            db.execute("insert or ignore into report_stale (cycle_id) select id from cycles")
            db.execute("insert or replace into report_meta (key, value) values ('fingerprint', ?)", (print_,))
        # A transferred member's baseline comes from their first cycle: a change there
        # reaches every cycle they moved to.
        db.execute(
            "with recursive chain(id) as (select id from members where cycle_id in (select cycle_id from report_stale)"
            " union select m.id from members m join chain on m.transferred_from = chain.id)"
            " insert or ignore into report_stale (cycle_id) select distinct m.cycle_id from members m"
            " where m.id in (select id from chain)"
        )
    done = 0
    while True:
        with write(db):
            ids = [r[0] for r in db.execute("select cycle_id from report_stale order by cycle_id limit ?", (chunk,))]
            if not ids:
                break
            _store(db, ids, protocols, today=today, grace_days=grace_days)
            db.execute(f"delete from report_stale where cycle_id in ({marks(ids)})", ids)
        done += len(ids)
    return done


STORED_TABLES = ("report_cycles", "report_enrolment", "report_attendance", "report_outcomes", "report_fidelity")
# Per cycle: site, protocol, group type, code, status, closed on (the columns every stored row repeats).
CycleFacts = dict[str, tuple]


def _store(
    db: sqlite_utils.Database, cycle_ids: list[str], protocols: dict[str, Protocol], *, today: date, grace_days: int
) -> None:
    """Replace the stored rows of ``cycle_ids`` with rows summed from their records."""
    sites = tuple(
        r[0] for r in db.execute(f"select distinct site_id from cycles where id in ({marks(cycle_ids)})", cycle_ids)
    )
    _new_generations(db, cycle_ids, sites)
    for table in STORED_TABLES:
        db.execute(f"delete from {table} where cycle_id in ({marks(cycle_ids)})", cycle_ids)
    if not sites:  # every cycle of the chunk was deleted
        return
    records = RecordReader(
        db, Filters(site_ids=sites, cycle_ids=tuple(cycle_ids)), protocols, today=today, grace_days=grace_days
    )
    about: CycleFacts = {
        r[0]: r[1:]
        for r in db.execute(
            "select id, site_id, protocol_id, group_type, code, status, closed_on from cycles"
            f" where id in ({marks(cycle_ids)})",
            cycle_ids,
        )
    }
    _store_cycles(db, records, about)
    _store_enrolment(db, records, about)
    _store_attendance(db, records, about)
    _store_outcomes(db, records, about)
    _store_fidelity(db, records, about)


def _new_generations(db: sqlite_utils.Database, cycle_ids: list[str], sites: tuple[str, ...]) -> None:
    """Count one more refresh for every site whose stored rows change (a cycle can move site, or be gone).

    The sums remembered for such a site are then read again (indicators.Report._summed).
    """
    touched = set(sites).union(
        *(
            {
                r[0]
                for r in db.execute(
                    f"select distinct site_id from {table} where cycle_id in ({marks(cycle_ids)})", cycle_ids
                )
            }
            for table in STORED_TABLES
        )
    )
    db.conn.executemany(
        "insert into report_sites (site_id, generation) values (?, 1)"
        " on conflict (site_id) do update set generation = generation + 1",
        [(s,) for s in sorted(touched)],
    )


def _store_cycles(db: sqlite_utils.Database, records: RecordReader, about: CycleFacts) -> None:
    stamp = utcnow()
    db.conn.executemany(
        "insert into report_cycles (cycle_id, site_id, protocol_id, group_type, status, closed_on, first_held_on,"
        " computed_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [(c["id"], *about[c["id"]][:3], *about[c["id"]][4:], c["first_held_on"], stamp) for c in records.cycles],
    )


def _store_enrolment(db: sqlite_utils.Database, records: RecordReader, about: CycleFacts) -> None:
    """Store the members enrolled per cycle and day."""
    enrolled: dict[tuple[str, str], int] = {}
    for r in records.enrolment:
        key = (r["enrolled_on"][:10], r["cycle_id"])
        enrolled[key] = enrolled.get(key, 0) + 1
    db.conn.executemany(
        "insert into report_enrolment (enrolled_on, cycle_id, site_id, protocol_id, group_type, members)"
        " values (?, ?, ?, ?, ?, ?)",
        [(day, cycle_id, *about[cycle_id][:3], n) for (day, cycle_id), n in enrolled.items()],
    )


def _store_attendance(db: sqlite_utils.Database, records: RecordReader, about: CycleFacts) -> None:
    """Store the attendance marked and attended per cycle, session number and date."""
    counted: dict[tuple[str, int, str], list[int]] = {}
    for r in records.attendance:
        found = counted.setdefault((r["cycle_id"], r["session_number"], r["session_date"]), [0, 0])
        found[0] += r["attended"]
        found[1] += 1
    db.conn.executemany(
        "insert into report_attendance (session_date, cycle_id, session_number, site_id, protocol_id, group_type,"
        " attended, marked) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [(day, cycle_id, number, *about[cycle_id][:3], a, m) for (cycle_id, number, day), (a, m) in counted.items()],
    )


def _store_outcomes(db: sqlite_utils.Database, records: RecordReader, about: CycleFacts) -> None:
    """Store the members of a closed cycle per outcome and last session attended, their scores summed."""
    ended: dict[tuple[str, str, int], list] = {}
    for r in records.outcome:
        found = ended.setdefault((r["cycle_id"], r["outcome"], r["last_session_attended"]), [0, 0, 0.0, 0.0, 0.0, 0, 0])
        found[0] += 1
        if r["change"] is not None:  # both scores
            found[1] += 1
            found[2] += r["baseline"]
            found[3] += r["end"]
            found[4] += r["change"]
            found[5] += r["improved_50"]
            found[6] += r["below_5"]
    db.conn.executemany(
        "insert into report_outcomes (closed_on, cycle_id, outcome, last_session_attended, site_id, protocol_id,"
        " group_type, cycle_code, members, scored, baseline_sum, end_sum, change_sum, improved, below_5)"
        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (about[cycle_id][5] or "", cycle_id, outcome, last, *about[cycle_id][:4], *sums)
            for (cycle_id, outcome, last), sums in ended.items()
        ],
    )


def _store_fidelity(db: sqlite_utils.Database, records: RecordReader, about: CycleFacts) -> None:
    """Store one row per held group session: its checklists and items done and answered."""
    db.conn.executemany(
        "insert into report_fidelity (session_date, session_id, cycle_id, site_id, protocol_id, group_type,"
        " session_number, checklists, items_done, items_answered) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r["session_date"],
                r["session_id"],
                r["cycle_id"],
                *about[r["cycle_id"]][:3],
                r["session_number"],
                r["checklists"],
                r["items_done"],
                r["items_answered"],
            )
            for r in records.fidelity
        ],
    )


def mark_all_stale(db: sqlite_utils.Database) -> int:
    """Mark every cycle stale (``group-ipt reports refresh --all``); return how many cycles there are."""
    with write(db):
        db.execute("insert or ignore into report_stale (cycle_id) select id from cycles")
    return db.execute("select count(*) from cycles").fetchone()[0]


class BackgroundRefresh:
    """The refresh thread of ``group-ipt serve``; ``stop()`` ends it after its current round."""

    def __init__(self, thread: threading.Thread, stopping: threading.Event) -> None:
        self.thread, self.stopping = thread, stopping

    def stop(self, timeout: float = 30) -> None:
        self.stopping.set()
        self.thread.join(timeout)


class ServingApp(Interface):
    """What the refresh thread reads of the web application (this layer imports no Flask)."""

    config: Any
    extensions: Any


def start_background_refresh(app: ServingApp, seconds: float) -> BackgroundRefresh | None:
    """Refresh the stale cycles every ``seconds`` in a daemon thread of ``group-ipt serve``.

    A central server takes in changes from hundreds of laptops; without this the first
    coordinator to open the reports page after a busy day would wait for all of them.
    Errors are logged and the thread goes on (a full disk must not stop the server).
    """
    if seconds <= 0:
        return None
    from ..base.clock import today
    from ..store import db as dbmod

    stopping = threading.Event()

    def run() -> None:
        while not stopping.is_set():
            try:
                conn = dbmod.connect(app.config["DATABASE"])
                try:
                    done = refresh(
                        conn,
                        formsmod.loaded(app.extensions).protocols,
                        today=today(),
                        grace_days=app.config["MEASURE_GRACE_DAYS"],
                    )
                finally:
                    conn.close()
                if done:
                    log.info("stored report figures refreshed for %d cycles", done)
            except Exception:  # noqa: BLE001 (logged; the next round tries again)
                log.exception("background refresh of the report figures failed")
            stopping.wait(seconds)

    thread = threading.Thread(target=run, name="report-refresh", daemon=True)
    thread.start()
    return BackgroundRefresh(thread, stopping)
