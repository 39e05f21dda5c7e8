"""Property: 3 laptops and the centre edit, delete and sync in random orders with random failures
(dropped connections before and after the server acts, duplicated batches, server restarts,
skewed clocks); afterwards everyone holds the same data and no version anyone kept is lost."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from group_ipt.store import db as dbmod
from group_ipt.store.db import new_id, row, utcnow, write
from group_ipt.sync import client
from group_ipt.sync.client import SyncError
from group_ipt.web.app import create_app

from .conftest import FAST_HASH
from .syncing import AppTransport, add_device, make_central, new_laptop

DEVICES = 3
FAST_TMP = "/dev/shm" if Path("/dev/shm").is_dir() else None  # memory-backed where available
CENTRE = DEVICES  # index of the centre in the ops


@pytest.fixture(scope="module", autouse=True)
def forms_loaded_once():
    """Loading the form files takes most of create_app's time; a restarted centre reuses them."""
    from group_ipt.formfiles import forms

    cache = {}
    original = forms.load_all

    def load_all(folder):
        if str(folder) not in cache:
            cache[str(folder)] = original(folder)
        return cache[str(folder)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(forms, "load_all", load_all)
        yield


@pytest.fixture(scope="module")
def template(tmp_path_factory, forms_loaded_once):
    """A central server with 3 registered laptops, all set up and synced once: copied per example."""
    root = tmp_path_factory.mktemp("sync-template")
    app = make_central(root / "central", SYNC_SEND_NAMES=True)
    tokens = []
    for n in range(DEVICES):
        _device, token = add_device(app, f"laptop-{n}")
        laptop = new_laptop(root / f"laptop-{n}")
        client.setup(laptop, "http://centre", token, AppTransport(app, token))
        client.sync(laptop, AppTransport(app, token))
        laptop.close()
        tokens.append(token)
    return root, tokens


class World:
    def __init__(self, root: Path, tokens: list[str]):
        self.root = root
        self.tokens = tokens
        self.app = self.start_centre()
        self.centre = dbmod.connect(self.app.config["DATABASE"])
        self.laptops = [dbmod.connect(root / f"laptop-{n}" / "group-ipt.db") for n in range(DEVICES)]
        self.site = row(self.centre, "select id from sites where code = 'KMP'")["id"]
        self.written: dict[str, dict] = {}  # token -> {"record": id, "superseded": bool}
        self.ids: list[str] = []
        self.fault: str | None = None
        self.counter = 0

    def start_centre(self):
        return create_app(
            {
                "DATA_DIR": str(self.root / "central"),
                "TESTING": True,
                "SYNC_CENTRAL": True,
                "SYNC_SEND_NAMES": True,
                "PASSWORD_HASH_METHOD": FAST_HASH,
            }
        )

    def db(self, who: int):
        return self.centre if who == CENTRE else self.laptops[who]

    def next_token(self, who: int) -> str:
        self.counter += 1
        return f"v{self.counter}-{who}"

    def _supersede_current(self, db, record_id: str) -> None:
        current = row(db, "select village from participants where id = ?", (record_id,))
        if current and current["village"] in self.written:
            self.written[current["village"]]["superseded"] = True

    def create(self, who: int) -> None:
        db, token, now = self.db(who), self.next_token(who), utcnow()
        record_id = new_id()
        with write(db):
            db["participants"].insert(
                {
                    "id": record_id,
                    "site_id": self.site,
                    "code": f"KMP-{self.counter:05d}",
                    "name": f"Person {self.counter}",
                    "sex": "female",
                    "village": token,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        self.ids.append(record_id)
        self.written[token] = {"record": record_id, "superseded": False}

    def edit(self, who: int, pick: int) -> None:
        db = self.db(who)
        local = [r["id"] for r in db.query("select id from participants order by id")]
        if not local:
            return
        record_id = local[pick % len(local)]
        token = self.next_token(who)
        with write(db):
            self._supersede_current(db, record_id)
            db.execute("update participants set village = ?, updated_at = ? where id = ?", (token, utcnow(), record_id))
        self.written[token] = {"record": record_id, "superseded": False}

    def delete(self, who: int, pick: int) -> None:
        db = self.db(who)
        local = [r["id"] for r in db.query("select id from participants order by id")]
        if not local:
            return
        record_id = local[pick % len(local)]
        with write(db):
            self._supersede_current(db, record_id)
            db.execute("delete from participants where id = ?", (record_id,))

    def transport(self, who: int, fault: str | None) -> AppTransport:
        state = {"armed": fault}

        def fail(stage: str) -> None:
            if (
                state["armed"] == "drop-before-push"
                and stage == "push-before"
                or state["armed"] == "drop-after-push"
                and stage == "push-after"
                or state["armed"] == "drop-pull"
                and stage == "pull-before"
            ):
                state["armed"] = None
                raise SyncError("connection dropped")

        transport = AppTransport(self.app, self.tokens[who], fail)
        if fault == "duplicate":
            original = transport.push

            def push_twice(payload: bytes) -> dict:
                first = original(payload)
                second = original(payload)
                assert second["duplicate"] and second["batch_no"] == first["batch_no"]
                return second

            transport.push = push_twice
        return transport

    def sync(self, who: int, fault: str | None) -> None:
        if who == CENTRE:
            return
        with contextlib.suppress(SyncError):  # a dropped connection: the next sync resumes
            client.sync(self.laptops[who], self.transport(who, fault))

    def restart_centre(self) -> None:
        self.centre.close()
        self.app = self.start_centre()
        self.centre = dbmod.connect(self.app.config["DATABASE"])

    def skew(self, who: int, hours: int) -> None:
        """Move a clock ahead (less than the day the centre accepts), or set it back as a laptop
        restored from an old backup would be."""
        db = self.db(who)
        with write(db):
            db.execute("update sync_clock set wall = wall + ? where id = 1", (hours * 3_600_000,))

    def close(self) -> None:
        for db in [self.centre, *self.laptops]:
            db.close()


ops = st.one_of(
    st.tuples(st.just("create"), st.integers(0, DEVICES)),
    st.tuples(st.just("edit"), st.integers(0, DEVICES), st.integers(0, 50)),
    st.tuples(st.just("edit"), st.integers(0, DEVICES), st.integers(0, 50)),
    st.tuples(st.just("delete"), st.integers(0, DEVICES), st.integers(0, 50)),
    st.tuples(
        st.just("sync"),
        st.integers(0, DEVICES - 1),
        st.sampled_from([None, None, "drop-before-push", "drop-after-push", "drop-pull", "duplicate"]),
    ),
    st.tuples(st.just("restart")),
    st.tuples(st.just("skew"), st.integers(0, DEVICES), st.sampled_from([-72, 6, 20])),
)


def snapshot(db) -> list[dict]:
    return list(db.query("select * from participants order by id"))


@pytest.mark.slow  # 30 whole worlds of 3 laptops and a centre: about a minute
def test_devices_and_centre_converge_and_lose_nothing(template):
    stats = {"conflicts": 0, "examples": 0}

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(ops, min_size=5, max_size=35))
    def converge(program):
        run_world(template, program, stats)

    converge()
    # Guard against a vacuous property: the examples must have made conflicts. Checked here, not in a
    # test of its own, so that it holds whatever order the tests run in.
    assert stats["examples"]
    assert stats["conflicts"] > 0


def run_world(template, program, stats: dict[str, int]) -> None:
    """Play ``program`` on a copy of the template world, heal it, and check it converged and lost nothing."""
    root, tokens = template
    with tempfile.TemporaryDirectory(dir=FAST_TMP) as tmp:
        work = Path(tmp) / "world"
        shutil.copytree(root, work)
        world = World(work, tokens)
        try:
            # Start from shared records, so random edits often meet on the same record.
            for who in range(DEVICES + 1):
                world.create(who)
            for who in [*range(DEVICES), *range(DEVICES)]:
                world.sync(who, None)
            for op in program:
                if op[0] == "create":
                    world.create(op[1])
                elif op[0] == "edit":
                    world.edit(op[1], op[2])
                elif op[0] == "delete":
                    world.delete(op[1], op[2])
                elif op[0] == "sync":
                    world.sync(op[1], op[2])
                elif op[0] == "restart":
                    world.restart_centre()
                elif op[0] == "skew":
                    world.skew(op[1], op[2])
            # Heal: everyone syncs without failures until nothing moves.
            for _round in range(3):
                for who in range(DEVICES):
                    world.sync(who, None)
            centre = snapshot(world.centre)
            for who in range(DEVICES):
                assert client.status(world.laptops[who])["pending_records"] == 0
                assert snapshot(world.laptops[who]) == centre, f"laptop {who} differs from the centre"
            # Nothing lost: every version nobody edited over is in use or kept as a conflict.
            kept = {r["village"] for r in centre}
            for c in world.centre.query("select winner_json, loser_json from sync_conflicts"):
                for blob in (c["winner_json"], c["loser_json"]):
                    if blob:
                        kept.add(json.loads(blob)["village"])
            lost = [t for t, w in world.written.items() if not w["superseded"] and t not in kept]
            assert not lost, f"versions lost: {lost}"
            stats["examples"] += 1
            stats["conflicts"] += world.centre.execute("select count(*) from sync_conflicts").fetchone()[0]
            assert not list(world.centre.query("select * from sync_quarantine"))
        finally:
            world.close()
