"""Sync benchmarks: central ingest speed against raw sqlite3, and 50 laptops syncing at once.

Run: .venv/bin/python benchmarks/sync_bench.py [--records 100000] [--laptops 50]

1. Ingest: 100,000 changed participant records applied by the central server in batches
   (validation, conflict check, row versions, change log, all in one transaction per batch),
   as a ratio to raw sqlite3 ``executemany`` upserts of the same rows in the same run.
   Every record goes through the record rules (sync/rules.py). Target: at least 0.4.
2. 50 laptops, each with its own database and changes, sync at the same time with a real
   central server (waitress on 127.0.0.1); every sync must succeed and the centre must hold
   every record.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from group_ipt.cli import initialise  # noqa: E402
from group_ipt.core import users  # noqa: E402
from group_ipt.store import db as dbmod  # noqa: E402
from group_ipt.store import tracking  # noqa: E402
from group_ipt.store.schema import m0002_participants  # noqa: E402
from group_ipt.sync import client, devices, engine  # noqa: E402
from group_ipt.web.app import create_app  # noqa: E402

BATCH = 5000


def make_rows(site_id: str, n: int) -> list[dict]:
    now = "2026-03-01T09:00:00+00:00"
    return [
        {
            "id": str(uuid.uuid4()),
            "site_id": site_id,
            "code": f"KMP-{i:06d}",
            "name": "",
            "name_key": "",
            "sex": "female",
            "birth_year": 1990,
            "age_is_estimate": 0,
            "village": f"village {i % 50}",
            "phone": None,
            "language": "en",
            "status": "registered",
            "created_by": None,
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n)
    ]


def bench_raw(path: Path, rows: list[dict]) -> float:
    conn = sqlite3.connect(path)
    conn.execute("pragma journal_mode=wal")
    conn.execute("pragma synchronous=normal")
    conn.executescript(
        "create table sites (id text primary key, code text, name text, default_language text,"
        " created_at text, updated_at text);"
    )
    conn.executescript(m0002_participants.SQL.split("-- Every status")[0])
    cols = list(rows[0])
    sql = (
        f"insert into participants ({', '.join(cols)}) values ({', '.join('?' * len(cols))})"
        f" on conflict (id) do update set {', '.join(f'{c} = excluded.{c}' for c in cols if c != 'id')}"
    )
    values = [tuple(r[c] for c in cols) for r in rows]
    started = time.perf_counter()
    for i in range(0, len(values), BATCH):
        with conn:
            conn.executemany(sql, values[i : i + BATCH])
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def bench_ingest(folder: Path, n: int) -> None:
    db = initialise(folder / "central")
    site = users.create_site(db, "KMP", "Kampala North")
    device, _token = devices.add_device(db, "bench-laptop", "KMP")
    rows = make_rows(site["id"], n)
    node = "benchnode0001"
    batches = []
    for b, i in enumerate(range(0, n, BATCH), 1):
        records = [
            {
                "t": "participants",
                "id": r["id"],
                "site": r["site_id"],
                "hlc": tracking.format_hlc(tracking.now_ms(), j, node),
                "base": None,
                "del": False,
                "data": r,
            }
            for j, r in enumerate(rows[i : i + BATCH])
        ]
        batches.append({"batch_no": b, "node": node, "records": records})
    started = time.perf_counter()
    for body in batches:
        engine.apply_batch(db, device, body, send_names=False)
    ingest = time.perf_counter() - started
    assert db.execute("select count(*) from participants").fetchone()[0] == n
    db.close()
    raw = bench_raw(folder / "raw.db", rows)
    print(
        f"ingest: {n} records in {ingest:.2f}s ({n / ingest:,.0f}/s); raw executemany upsert {raw:.2f}s "
        f"({n / raw:,.0f}/s); ratio {raw / ingest:.2f} (target >= 0.4)"
    )


def bench_laptops(folder: Path, laptops: int, per_laptop: int) -> None:
    import logging

    import waitress

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # a queue is expected with 50 at once
    initialise(folder / "central").close()
    app = create_app({"DATA_DIR": str(folder / "central"), "SYNC_CENTRAL": True})
    db = dbmod.connect(app.config["DATABASE"])
    site = users.create_site(db, "KMP", "Kampala North")
    tokens = [devices.add_device(db, f"laptop-{n:02d}", "KMP")[1] for n in range(laptops)]
    db.close()
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    url = f"http://127.0.0.1:{server.effective_port}"
    threading.Thread(target=server.run, daemon=True).start()
    dbs = []
    for n, token in enumerate(tokens):
        ldb = initialise(folder / f"laptop-{n:02d}")
        client.setup(ldb, url, token)
        client.pull(ldb, client.HttpTransport(url, token))
        now = "2026-03-01T09:00:00+00:00"
        with dbmod.write(ldb):
            ldb.conn.executemany(
                "insert into participants (id, site_id, code, name, sex, created_at, updated_at)"
                " values (?, ?, ?, 'x', 'female', ?, ?)",
                [(str(uuid.uuid4()), site["id"], f"KMP-{n:02d}-{i:05d}", now, now) for i in range(per_laptop)],
            )
        dbs.append(ldb)
    errors: list[str] = []

    def work(n: int) -> None:
        try:
            client.sync(dbs[n], client.HttpTransport(url, tokens[n], timeout=300))
        except Exception as exc:  # noqa: BLE001 (counted and printed)
            errors.append(f"laptop {n}: {exc}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(laptops)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server.close()
    cdb = dbmod.connect(app.config["DATABASE"])
    total = cdb.execute("select count(*) from participants").fetchone()[0]
    cdb.close()
    print(
        f"{laptops} laptops x {per_laptop} records synced at once in {elapsed:.1f}s; errors: {len(errors)}; "
        f"records at the centre: {total} of {laptops * per_laptop}"
    )
    for e in errors[:10]:
        print("  ", e)
    if errors or total != laptops * per_laptop:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records for the ingest benchmark")
    parser.add_argument("--laptops", type=int, default=50, help="laptops syncing at once")
    parser.add_argument("--per-laptop", type=int, default=200, help="changed records on each laptop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_ingest(Path(tmp) / "ingest", args.records)
        bench_laptops(Path(tmp) / "laptops", args.laptops, args.per_laptop)


if __name__ == "__main__":
    main()
