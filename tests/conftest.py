"""Fixtures shared by the tests: an app on a temporary data folder, clients, the CLI runner."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from group_ipt.base.settings import REPO_DIR
from group_ipt.cli import cli, initialise
from group_ipt.core import users
from group_ipt.store import db as dbmod
from group_ipt.web.app import create_app
from group_ipt.web.i18n import compile_catalogs

PASSWORD = "correct-horse"
FAST_HASH = "pbkdf2:sha256:1000"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs():
    """The test step compiles the .po catalogs, as the install step does."""
    compile_catalogs(REPO_DIR / "translations")


def make_app(data_dir: Path, **overrides):
    db = initialise(data_dir)
    db.close()
    return create_app({"DATA_DIR": str(data_dir), "TESTING": True, "PASSWORD_HASH_METHOD": FAST_HASH, **overrides})


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path / "data")
    db = dbmod.connect(app.config["DATABASE"])
    kmp = users.create_site(db, "KMP", "Kampala North", "en")
    msk = users.create_site(db, "MSK", "Masaka Rural", "sw")
    users.create_user(db, "admin", PASSWORD, "admin", display_name="Ada Admin", hash_method=FAST_HASH)
    users.create_user(
        db,
        "coord",
        PASSWORD,
        "coordinator",
        display_name="Ruth Coordinator",
        site_ids=[kmp["id"], msk["id"]],
        hash_method=FAST_HASH,
    )
    users.create_user(
        db, "amina", PASSWORD, "facilitator", display_name="Amina Nakato", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    users.create_user(
        db, "grace", PASSWORD, "facilitator", display_name="Grace Wanjiru", site_ids=[msk["id"]], hash_method=FAST_HASH
    )
    db.close()
    return app


@pytest.fixture
def db(app):
    conn = dbmod.connect(app.config["DATABASE"])
    yield conn
    conn.close()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(client, path: str = "/login") -> str:
    """Return the CSRF token of the form on ``path``, as a browser would read it."""
    html = client.get(path).get_data(as_text=True)
    match = CSRF_RE.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def login(client, username: str = "amina", password: str = PASSWORD):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def post_form(client, path: str, data: dict, *, form_page: str = "/", **kwargs):
    """POST ``data`` with a valid CSRF token taken from ``form_page``."""
    token = csrf_token(client, form_page)
    return client.post(path, data={**data, "csrf_token": token}, **kwargs)


@pytest.fixture
def logged_in(client):
    response = login(client)
    assert response.status_code == 302
    return client


@pytest.fixture
def runner(tmp_path):
    """Invoke the CLI on its own data folder: ``runner.invoke(args, input=...)``."""
    data_dir = tmp_path / "cli-data"

    class Runner:
        def __init__(self):
            self.data_dir = data_dir
            self.cli = CliRunner()

        def invoke(self, args, **kwargs):
            env = {"GROUP_IPT_DATA": str(data_dir)}
            return self.cli.invoke(cli, ["--data-dir", str(data_dir), *args], env=env, **kwargs)

    return Runner()


def chromium_path() -> str | None:
    return (
        os.environ.get("CHROMIUM_BIN")
        or shutil.which("chromium")
        or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    )


# --- group cycles (tests/test_cycles.py, test_sessions.py, test_followup.py, ...) ---


def add_participant(
    db,
    site_code: str = "KMP",
    name: str = "Participant",
    *,
    sex: str = "female",
    status: str = "eligible",
    village: str = "Kawempe",
    phone: str | None = "0772 000000",
    birth_year: int | None = 1990,
) -> dict:
    """Insert a participant straight into the database (as screening would leave one)."""
    import uuid

    site = users.get_site(db, site_code)
    n = db.execute("select count(*) from participants").fetchone()[0] + 1
    record = {
        "id": str(uuid.uuid4()),
        "site_id": site["id"],
        "code": f"{site_code}-{n:04d}-T",
        "name": name,
        "sex": sex,
        "birth_year": birth_year,
        "age_is_estimate": 0,
        "village": village,
        "phone": phone,
        "language": None,
        "status": status,
        "created_by": None,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    if "name_key" in db["participants"].columns_dict:
        record["name_key"] = name.casefold()
    with dbmod.write(db):
        db["participants"].insert(record)
    return record


@pytest.fixture
def protocols(app):
    return app.extensions["group_ipt_forms"].protocols


@pytest.fixture
def set_today(monkeypatch):
    """Set the app's local date and time: ``set_today("2026-03-02", "09:00")``."""
    from datetime import date, datetime

    from group_ipt.base import clock

    def set_to(day: str, time: str = "08:00"):
        monkeypatch.setattr(clock, "today", lambda: date.fromisoformat(day))
        monkeypatch.setattr(clock, "now", lambda: datetime.fromisoformat(f"{day}T{time}"))

    return set_to


# --- supervision and the clinical record (tests/test_clinical.py, test_supervision.py, ...) ---


@pytest.fixture
def supervisor(app, db):
    """A supervisor at KMP, ``sam`` (password PASSWORD), to whom amina is assigned."""
    from group_ipt.core import supervision

    kmp = users.get_site(db, "KMP")
    sam = users.create_user(
        db, "sam", PASSWORD, "supervisor", display_name="Sam Supervisor", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    supervision.assign(
        db,
        supervisor_id=sam["id"],
        facilitator_id=users.get_user_by_username(db, "amina")["id"],
        site_id=kmp["id"],
        actor=users.get_user_by_username(db, "coord"),
    )
    return sam


# ---- sync: a central server and its database (tests/syncing.py has the laptops) ----------------


@pytest.fixture
def centre(tmp_path):
    """A central server with sites KMP and MSK and the usual users (a module may override it)."""
    from .syncing import make_central

    return make_central(tmp_path / "central")


@pytest.fixture
def cdb(centre):
    conn = dbmod.connect(centre.config["DATABASE"])
    yield conn
    conn.close()
