"""Sync simulation at scale: many seeded schedules of laptops syncing through faults.

Run: .venv/bin/python benchmarks/sync_sim.py [--schedules 1000] [--steps 60] [--workers 2]

Each schedule (tests/sync_simulation.py) gives two sites' four laptops random offline edits
that collide on natural keys and on codes made offline, clock skew, dropped connections
before and after a push and during a pull, batches sent twice and centre restarts, then
syncs to quiet. It prints the totals of what must be zero (lost, duplicated, diverged,
dangling, quarantined) and what the schedules exercised (merges, renamed codes, conflicts);
it exits non-zero if any of the first is not zero. tests/test_sync_simulation.py runs a few.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sync_simulation import make_template, schedule  # noqa: E402

MUST_BE_ZERO = ("lost", "duplicated", "diverged", "dangling", "quarantined", "errors")


def _worker(args: tuple[int, list[int], int]) -> tuple[Counter, Counter, list[int]]:
    worker, seeds, steps = args
    faults, exercised, failing = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        template, tokens = make_template(Path(tmp) / "template")
        for seed in seeds:
            try:
                counts, seen = schedule(template, tokens, Path(tmp) / f"world-{seed}", seed, steps)
            except Exception as exc:  # noqa: BLE001 (a schedule that breaks is a fault to report, with its seed)
                print(f"seed {seed}: {type(exc).__name__}: {exc}", flush=True)
                faults["errors"] += 1
                failing.append(seed)
                continue
            faults.update(counts)
            exercised.update(seen)
            if any(counts.values()):
                failing.append(seed)
    return faults, exercised, failing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000, help="how many seeded schedules to run")
    parser.add_argument("--steps", type=int, default=60, help="random steps in each schedule")
    parser.add_argument("--workers", type=int, default=2, help="processes running schedules at once")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first schedule")
    args = parser.parse_args()
    seeds = list(range(args.first_seed, args.first_seed + args.schedules))
    jobs = [(w, seeds[w :: args.workers], args.steps) for w in range(args.workers)]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        results = pool.map(_worker, jobs)
    faults, exercised, failing = Counter(), Counter(), []
    for f, e, bad in results:
        faults.update(f)
        exercised.update(e)
        failing += bad
    print(
        f"simulation: {args.schedules} schedules of {args.steps} steps in {time.perf_counter() - started:.0f}s; "
        + ", ".join(f"{k} {faults[k]}" for k in MUST_BE_ZERO)
        + f"; exercised: {exercised['merged']} merges, {exercised['renamed']} renamed codes, "
        f"{exercised['conflicts']} conflicts kept"
    )
    if failing:
        print(f"schedules with a fault (seeds): {sorted(failing)[:50]}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
