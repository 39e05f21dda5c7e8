"""A seeded simulation of a programme's laptops syncing with one centre, for tests and benchmarks.

Two sites: three laptops at KMP, one at MSK. Each schedule starts from a shared group (a
cycle with sessions and members, synced everywhere), then runs random steps: offline edits
that collide on natural keys (attendance of one member at one session, enrolling one person
in one cycle) and on codes made offline (cycles and participants), edits of one record on
two laptops, clock skew (ahead by less than the day the centre accepts, or set back), and
syncs that drop the connection before or after the push, during the pull, or send a batch
twice; the centre restarts. Then every laptop syncs until nothing moves, and ``measure``
counts what must be zero:

- lost: a record a laptop made that is at the centre neither under its id nor merged into another;
- duplicated: two rows of one natural key, or two records of one code at a site, anywhere;
- diverged: a laptop whose rows differ from the centre's rows of its site;
- dangling: rows whose parent is missing (``PRAGMA foreign_key_check``), anywhere;
- quarantined: records waiting in quarantine at the centre or on a laptop.

Run many schedules with ``benchmarks/sync_sim.py``; ``tests/test_sync_simulation.py`` runs a few.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import uuid
from pathlib import Path

from group_ipt.cli import initialise
from group_ipt.core import users
from group_ipt.store import db as dbmod
from group_ipt.store import tracking
from group_ipt.store.db import row, rows, utcnow, write
from group_ipt.sync import client, devices, rules
from group_ipt.sync.client import SyncError
from group_ipt.web.app import create_app

from .syncing import CYCLE_ROW, AppTransport

FAST_HASH = "pbkdf2:sha256:1000"
LAPTOPS = (("kmp-1", "KMP"), ("kmp-2", "KMP"), ("kmp-3", "KMP"), ("msk-1", "MSK"))
SKIP = {"created_at", "updated_at"}


def make_template(root: Path) -> tuple[Path, list[str]]:
    """A centre with two sites and four registered, set-up laptops, to copy for each schedule."""
    initialise(root / "central").close()
    app = _app(root)
    db = dbmod.connect(app.config["DATABASE"])
    sites = {code: users.create_site(db, code, code, "en") for code in ("KMP", "MSK")}
    users.create_user(
        db, "amina", "secret-password-1", "facilitator", site_ids=[sites["KMP"]["id"]], hash_method=FAST_HASH
    )
    users.create_user(
        db, "grace", "secret-password-1", "facilitator", site_ids=[sites["MSK"]["id"]], hash_method=FAST_HASH
    )
    tokens = []
    for name, site in LAPTOPS:
        _device, token = devices.add_device(db, name, site)
        tokens.append(token)
    db.close()
    for (name, _site), token in zip(LAPTOPS, tokens, strict=True):
        laptop = initialise(root / name)
        client.setup(laptop, "http://centre", token, AppTransport(app, token))
        client.sync(laptop, AppTransport(app, token))
        laptop.close()
    return root, tokens


def _app(root: Path):
    return create_app(
        {
            "DATA_DIR": str(root / "central"),
            "TESTING": True,
            "SYNC_CENTRAL": True,
            "SYNC_SEND_NAMES": True,
            "PASSWORD_HASH_METHOD": FAST_HASH,
        }
    )


class World:
    """One schedule: the centre and the laptops, with what each laptop made."""

    def __init__(self, template: Path, tokens: list[str], root: Path, seed: int):
        shutil.copytree(template, root)
        self.root, self.tokens, self.rng = root, tokens, random.Random(seed)
        self.app = _app(root)
        self.centre = dbmod.connect(self.app.config["DATABASE"])
        self.laptops = [dbmod.connect(root / name / "group-ipt.db") for name, _site in LAPTOPS]
        self.made: list[tuple[str, str]] = []  # (table, id) of every record a laptop made
        self.mine: dict[int, set[str]] = {}  # laptop -> ids of the participants and cycles it made

    def close(self) -> None:
        for db in (self.centre, *self.laptops):
            db.close()

    # ---- writing on a laptop, as its software would --------------------------------------

    def insert(self, who: int, table: str, **data) -> str:
        db = self.laptops[who]
        site = row(db, "select id from sites")["id"]
        now = utcnow()
        record_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))  # the same ids for a seed
        data = {"id": record_id, "site_id": site, "created_at": now, "updated_at": now, **data}
        with write(db):
            db[table].insert(data)
        self.made.append((table, data["id"]))
        self.mine.setdefault(who, set()).add(data["id"])
        return data["id"]

    def user(self, who: int) -> str:
        return row(self.laptops[who], "select id from users limit 1")["id"]

    def new_participant(self, who: int) -> str:
        db = self.laptops[who]
        site = row(db, "select code from sites")["code"]
        digits = f"{self.rng.randrange(30):04d}"  # few codes: laptops make the same ones offline
        from group_ipt.core.participants import generate_code, make_code

        code = make_code(site, digits)
        if row(db, "select 1 as x from participants where code = ?", (code,)):
            code = generate_code(db, row(db, "select id from sites")["id"], site)
        return self.insert(who, "participants", code=code, name=f"P {code}", sex="female", village="V")

    def new_cycle(self, who: int) -> str:
        db = self.laptops[who]
        site = row(db, "select code from sites")["code"]
        n = row(db, "select count(*) as n from cycles")["n"] + 1  # as the app numbers them offline
        while row(db, "select 1 as x from cycles where code = ?", (f"{site}-C{n:03d}",)):
            n += 1
        cycle = self.insert(
            who,
            "cycles",
            code=f"{site}-C{n:03d}",
            **CYCLE_ROW,
            created_by=self.user(who),
        )
        for number in (1, 2):
            self.insert(
                who,
                "sessions",
                cycle_id=cycle,
                number=number,
                kind="group",
                phase="initial",
                scheduled_date=f"2026-09-{21 + 7 * number}",
                start_time="10:00",
                minutes=90,
                status="scheduled",
                version=0,
            )
        return cycle

    def enrol(self, who: int, cycle: str, participant: str) -> str | None:
        db = self.laptops[who]
        if row(db, "select 1 as x from members where participant_id = ? and status = 'active'", (participant,)):
            return None
        return self.insert(
            who,
            "members",
            cycle_id=cycle,
            participant_id=participant,
            status="active",
            enrolled_on="2026-09-20",
            created_by=self.user(who),
        )

    def mark(self, who: int, *, first: bool = False) -> None:
        """Mark attendance at a random session of a random member (insert, or correct the mark)."""
        db = self.laptops[who]
        pairs = rows(
            db,
            "select s.id as session_id, m.id as member_id from sessions s join members m"
            " on m.cycle_id = s.cycle_id where m.status = 'active' order by s.id, m.id",
        )
        if not pairs:
            return
        pair = pairs[0] if first else self.rng.choice(pairs)
        status = self.rng.choice(["present", "absent", "late", "excused"])
        found = row(
            db,
            "select id from attendance where session_id = ? and member_id = ?",
            (pair["session_id"], pair["member_id"]),
        )
        if found:
            with write(db):
                db.execute(
                    "update attendance set status = ?, updated_at = ? where id = ?", (status, utcnow(), found["id"])
                )
        else:
            self.insert(who, "attendance", status=status, **pair)

    def edit_village(self, who: int) -> None:
        db = self.laptops[who]
        found = rows(db, "select id from participants order by id")
        if found:
            with write(db):
                db.execute(
                    "update participants set village = ?, updated_at = ? where id = ?",
                    (f"V{self.rng.randrange(1000)}", utcnow(), self.rng.choice(found)["id"]),
                )

    def skew(self, who: int) -> None:
        hours = self.rng.choice([-72, -5, 3, 20])  # the centre refuses more than a day ahead
        with write(self.laptops[who]):
            self.laptops[who].execute(
                "update sync_clock set wall = max(0, wall + ?) where id = 1", (hours * 3_600_000,)
            )

    # ---- syncing -------------------------------------------------------------------------

    def transport(self, who: int, fault: str | None) -> AppTransport:
        state = {"armed": fault}

        def fail(stage: str) -> None:
            if (state["armed"], stage) in {
                ("drop-before-push", "push-before"),
                ("drop-after-push", "push-after"),
                ("drop-pull", "pull-before"),
            }:
                state["armed"] = None
                raise SyncError("connection dropped")

        transport = AppTransport(self.app, self.tokens[who], fail)
        if fault == "duplicate":
            once = transport.push

            def push_twice(payload: bytes) -> dict:
                once(payload)
                return once(payload)

            transport.push = push_twice
        return transport

    def sync(self, who: int, fault: str | None = None) -> None:
        with contextlib.suppress(SyncError):  # a dropped connection: the next sync resumes
            client.sync(self.laptops[who], self.transport(who, fault))

    def restart_centre(self) -> None:
        self.centre.close()
        self.app = _app(self.root)
        self.centre = dbmod.connect(self.app.config["DATABASE"])

    def quiet(self) -> None:
        """Sync every laptop, round after round, until a whole round moves nothing."""
        for _round in range(6):
            moved = 0
            for who in range(len(self.laptops)):
                result = client.sync(self.laptops[who], self.transport(who, None))
                moved += result["push"]["records"] + result["pull"]["applied"]
            if not moved:
                return

    # ---- one schedule ---------------------------------------------------------------------

    def run(self, steps: int) -> None:
        kmp = [i for i, (_n, site) in enumerate(LAPTOPS) if site == "KMP"]
        # A shared group everyone has: a cycle, its sessions, three people enrolled.
        shared_cycle = self.new_cycle(0)
        shared_people = [self.new_participant(0) for _ in range(3)]
        # Only the shared cycle takes the shared people: two laptops enrolling one person in two
        # cycles is a choice for a person to make (it waits in quarantine), not a sync fault.
        self.mine[0] -= set(shared_people)
        self.enrol(0, shared_cycle, shared_people[0])
        self.new_cycle(3)
        for who in range(len(self.laptops)):
            self.sync(who)
        for who in range(len(self.laptops)):
            self.sync(who)
        # Every schedule starts with the clashes the rules are for: two laptops mark the same
        # member at the same session, and each numbers a new cycle the same way, offline.
        for who in (0, 1):
            self.mark(who, first=True)
            self.new_cycle(who)
        for _step in range(steps):
            who = self.rng.randrange(len(self.laptops))
            action = self.rng.choice(
                [
                    "mark",
                    "mark",
                    "mark",
                    "participant",
                    "cycle",
                    "enrol",
                    "edit",
                    "sync",
                    "sync",
                    "sync",
                    "skew",
                    "restart",
                ]
            )
            if action == "mark":
                self.mark(who)
            elif action == "participant":
                self.new_participant(who)
            elif action == "cycle":
                self.new_cycle(who)
            elif action == "enrol":
                if who in kmp and self.rng.random() < 0.5:  # two laptops enrol one person in one cycle
                    self.enrol(who, shared_cycle, self.rng.choice(shared_people))
                else:  # a person this laptop registered, in a cycle it made
                    db = self.laptops[who]
                    mine = self.mine.get(who, set())
                    people = [r["id"] for r in rows(db, "select id from participants") if r["id"] in mine]
                    cycles = [r["id"] for r in rows(db, "select id from cycles") if r["id"] in mine]
                    if people and cycles:
                        self.enrol(who, self.rng.choice(cycles), self.rng.choice(people))
            elif action == "edit":
                self.edit_village(who)
            elif action == "sync":
                self.sync(
                    who, self.rng.choice([None, None, "drop-before-push", "drop-after-push", "drop-pull", "duplicate"])
                )
            elif action == "skew":
                self.skew(who)
            else:
                self.restart_centre()
        self.quiet()


# ---- measuring -------------------------------------------------------------------------------


def _site_rows(db, tables: dict[str, list[str]], site_id: str) -> dict[str, set]:
    out = {}
    for table, columns in tables.items():
        cols = [c for c in columns if c not in SKIP]
        out[table] = {
            tuple(str(r[c]) for c in cols) for r in rows(db, f'select * from "{table}" where site_id = ?', (site_id,))
        }
    return out


def measure(world: World) -> dict[str, int]:
    centre = world.centre
    tables = tracking.synced_tables(centre)
    described = rules.schema(centre, tables)
    aliased = {(r["table_name"], r["record_id"]) for r in rows(centre, "select * from sync_aliases")}
    lost = sum(
        1
        for t, i in world.made
        if (t, i) not in aliased and row(centre, f'select 1 as x from "{t}" where id = ?', (i,)) is None
    )
    duplicated = dangling = quarantined = diverged = 0
    for db in (centre, *world.laptops):
        for table in described.values():
            for cols in rules.natural_keys(table):
                group = ", ".join(f'"{c}"' for c in cols)
                duplicated += row(
                    db,
                    f'select count(*) as n from (select 1 from "{table.name}" where'
                    f" {' and '.join(f'{chr(34)}{c}{chr(34)} is not null' for c in cols)}"
                    f" group by {group} having count(*) > 1)",
                )["n"]
        dangling += len(list(db.query("pragma foreign_key_check")))
        quarantined += row(db, "select count(*) as n from sync_quarantine where status = 'open'")["n"]
    for db in world.laptops:
        site = row(db, "select id from sites")["id"]
        if _site_rows(db, tables, site) != _site_rows(centre, tables, site):
            diverged += 1
    return {
        "lost": lost,
        "duplicated": duplicated,
        "diverged": diverged,
        "dangling": dangling,
        "quarantined": quarantined,
    }


def exercised(world: World) -> dict[str, int]:
    """What the schedule made the centre do (so a run that exercised nothing is seen)."""
    c = world.centre
    return {
        "merged": row(c, "select count(*) as n from sync_aliases")["n"],
        "renamed": row(c, "select count(*) as n from audit_log where action = 'rename_code'")["n"],
        "conflicts": row(c, "select count(*) as n from sync_conflicts")["n"],
    }


def schedule(template: Path, tokens: list[str], root: Path, seed: int, steps: int) -> tuple[dict, dict]:
    """Run one schedule; return what must be zero (``measure``) and what it exercised."""
    world = World(template, tokens, root, seed)
    try:
        world.run(steps)
        return measure(world), exercised(world)
    finally:
        world.close()
