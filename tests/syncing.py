"""Helpers for the sync tests: a central app, laptops on their own databases, an in-process transport."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from group_ipt.cli import initialise
from group_ipt.core import users
from group_ipt.store import db as dbmod
from group_ipt.sync import devices
from group_ipt.sync.client import SyncError
from group_ipt.sync.engine import SyncRejected
from group_ipt.web.app import create_app

from .conftest import FAST_HASH, PASSWORD


def make_central(data_dir: Path, **overrides):
    initialise(data_dir).close()
    app = create_app(
        {
            "DATA_DIR": str(data_dir),
            "TESTING": True,
            "PASSWORD_HASH_METHOD": FAST_HASH,
            "SYNC_CENTRAL": True,
            **overrides,
        }
    )
    db = dbmod.connect(app.config["DATABASE"])
    kmp = users.create_site(db, "KMP", "Kampala North", "en")
    msk = users.create_site(db, "MSK", "Masaka Rural", "sw")
    users.create_user(db, "admin", PASSWORD, "admin", hash_method=FAST_HASH)
    users.create_user(db, "coord", PASSWORD, "coordinator", site_ids=[kmp["id"], msk["id"]], hash_method=FAST_HASH)
    users.create_user(db, "amina", PASSWORD, "facilitator", site_ids=[kmp["id"]], hash_method=FAST_HASH)
    users.create_user(db, "grace", PASSWORD, "facilitator", site_ids=[msk["id"]], hash_method=FAST_HASH)
    db.close()
    return app


def add_device(app, name: str, site: str = "KMP") -> tuple[dict, str]:
    db = dbmod.connect(app.config["DATABASE"])
    try:
        return devices.add_device(db, name, site)
    finally:
        db.close()


class AppTransport:
    """Speaks the sync HTTP protocol to an app through Flask's test client.

    ``fail`` is a hook called with the stage ("push-before", "push-after", "pull-before")
    that may raise to simulate a dropped connection before or after the server acted.
    """

    def __init__(self, app, token: str, fail=None):
        self.app = app
        self.token = token
        self.fail = fail or (lambda stage: None)

    def _call(self, method: str, path: str, body: bytes | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}", "Accept-Encoding": "gzip"}
        if body is not None:
            headers.update({"Content-Type": "application/json", "Content-Encoding": "gzip"})
        response = self.app.test_client().open(path, method=method, data=body, headers=headers)
        raw = response.get_data()
        if response.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
        if response.status_code >= 400:
            raise SyncRejected(
                f"The server refused: {data['error']} (HTTP {response.status_code})", response.status_code
            )
        return data

    def hello(self) -> dict:
        return self._call("GET", "/api/v1/sync/hello")

    def push(self, payload: bytes) -> dict:
        self.fail("push-before")
        ack = self._call("POST", "/api/v1/sync/push", payload)
        self.fail("push-after")
        return ack

    def pull(self, request: dict) -> dict:
        self.fail("pull-before")
        return self._call("POST", "/api/v1/sync/pull", gzip.compress(json.dumps(request).encode()))

    def register_key(self, public_key: str) -> dict:
        return self._call("POST", "/api/v1/sync/key", gzip.compress(json.dumps({"public_key": public_key}).encode()))


class Dropped(SyncError):
    pass


def new_laptop(path: Path) -> dbmod.sqlite_utils.Database:
    """A fresh laptop database (as 'group-ipt init' makes), with its own clock and node id."""
    return initialise(path)


def sync_laptop(tmp_path: Path, centre, name: str, site: str = "KMP"):
    """A laptop registered at ``centre``, set up and synced once; return its database and transport."""
    from group_ipt.sync import client

    _device, token = add_device(centre, name, site)
    db = new_laptop(tmp_path / name)
    transport = AppTransport(centre, token)
    client.setup(db, "http://centre", token, transport)
    client.sync(db, transport)
    return db, transport


# A cycle row as a laptop's software writes it (who-8, a women's group on Tuesdays at 10:00):
# the sync tests give its code, site and anything that differs.
CYCLE_ROW = {
    "protocol_id": "who-8",
    "protocol_version": 1,
    "group_type": "women",
    "venue": "Hall",
    "weekday": 1,
    "start_time": "10:00",
    "first_date": "2026-09-22",
    "status": "active",
}
