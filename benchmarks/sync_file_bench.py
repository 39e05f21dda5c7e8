"""USB-file sync at size: the peak memory of exporting and importing a file of 100,000 records.

Run: .venv/bin/python benchmarks/sync_file_bench.py [--records 100000]

A laptop with its own signing key holds N changed participant records; ``sync export`` writes
them to one file and the centre's ``sync import`` applies it and writes the reply; then the
laptop imports the reply. Each step runs in its own process and prints that process's peak
memory (resident set). Target: the centre's import under 200 MB, whatever the file's size (a
version 2 file is read one batch at a time).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STEP = """
import sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from group_ipt.web.app import create_app
from group_ipt.store import db as dbmod
from group_ipt.sync import client, server
started = time.perf_counter()
step = {step!r}
if step == "export":
    db = dbmod.connect({laptop!r})
    out = client.export_file(db, Path({file!r}))
elif step == "import":
    app = create_app({{"DATA_DIR": {central!r}, "SYNC_CENTRAL": True}})
    db = dbmod.connect(app.config["DATABASE"])
    config = server.CentralConfig.from_app_config(app.config, app.extensions["group_ipt_forms"].instruments)
    out = server.import_file(db, Path({file!r}), Path({reply!r}), config)
else:
    db = dbmod.connect({laptop!r})
    out = client.import_reply(db, Path({reply!r}))
db.close()
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak over the fork).
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(f"{{step}}|{{time.perf_counter() - started:.1f}}|{{peak / 1024:.0f}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="changed records in the file")
    args = parser.parse_args()
    from group_ipt.store.db import utcnow, write
    from group_ipt.sync import client
    from tests.syncing import AppTransport, add_device, make_central, new_laptop

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        app = make_central(tmp / "central")
        _device, token = add_device(app, "usb-laptop")
        laptop = new_laptop(tmp / "laptop")
        client.setup(laptop, "http://centre", token, AppTransport(app, token))
        client.sync(laptop, AppTransport(app, token))
        site = laptop.execute("select id from sites").fetchone()[0]
        now = utcnow()
        with write(laptop):
            laptop.conn.executemany(
                "insert into participants (id, site_id, code, name, sex, village, created_at, updated_at)"
                " values (?, ?, ?, ?, 'female', ?, ?, ?)",
                [
                    (str(uuid.uuid4()), site, f"KMP-{i:06d}", f"Person {i}", f"village {i % 50}", now, now)
                    for i in range(args.records)
                ],
            )
        laptop.close()
        paths = {
            "root": str(ROOT),
            "laptop": str(tmp / "laptop" / "group-ipt.db"),
            "central": str(tmp / "central"),
            "file": str(tmp / "usb.gipt"),
            "reply": str(tmp / "usb.gipt.reply"),
        }
        failed = False
        for step in ("export", "import", "reply"):
            started = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-c", STEP.format(step=step, **paths)], capture_output=True, text=True
            )
            if result.returncode:
                raise SystemExit(f"{step} failed: {result.stderr[-2000:]}")
            _name, seconds, peak = result.stdout.strip().splitlines()[-1].split("|")
            size = Path(paths["file"] if step == "export" else paths["reply"]).stat().st_size / 1e6
            target = " (target < 200 MB)" if step == "import" else ""
            print(
                f"file {step}: {args.records} records, file {size:.1f} MB, {seconds}s "
                f"(with start-up {time.perf_counter() - started:.1f}s); peak memory {peak} MB{target}"
            )
            if step == "import" and int(peak) >= 200:
                failed = True

        if failed:
            raise SystemExit("the import's peak memory is above its target")


if __name__ == "__main__":
    main()
