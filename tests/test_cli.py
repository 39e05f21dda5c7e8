"""The group-ipt command: init, users, sites, migrate, demo, serve checks."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from group_ipt.base.settings import REPO_DIR
from group_ipt.core import users
from group_ipt.store import db as dbmod


def init(runner, password="admin-password"):
    return runner.invoke(["init", "--admin", "boss"], input=f"{password}\n{password}\n")


def test_init_creates_database_secret_and_admin(runner):
    result = init(runner)
    assert result.exit_code == 0, result.output
    assert (runner.data_dir / "group-ipt.db").exists()
    assert (runner.data_dir / "secret_key").stat().st_mode & 0o077 == 0
    db = dbmod.connect(runner.data_dir / "group-ipt.db")
    admin = users.get_user_by_username(db, "boss")
    assert admin["role"] == "admin"
    assert users.authenticate(db, "boss", "admin-password").user is not None


def test_init_twice_refused_and_changes_nothing(runner):
    init(runner)
    key = (runner.data_dir / "secret_key").read_text()
    result = runner.invoke(["init", "--admin", "other"], input="pw-pw-pw-pw\npw-pw-pw-pw\n")
    assert result.exit_code == 1
    assert "already exists and has users; nothing was changed" in result.output
    assert (runner.data_dir / "secret_key").read_text() == key
    db = dbmod.connect(runner.data_dir / "group-ipt.db")
    assert users.get_user_by_username(db, "other") is None


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("one-password\nanother-password\n", "The two passwords are not the same"),
        ("short\nshort\n", "at least 8 characters"),
        ("", "No password given"),
    ],
)
def test_init_bad_password_makes_nothing(runner, stdin, message):
    result = runner.invoke(["init", "--admin", "boss"], input=stdin)
    assert result.exit_code == 1
    assert message in result.output
    assert not (runner.data_dir / "group-ipt.db").exists()


def test_users_add_list_disable_enable(runner):
    init(runner)
    assert runner.invoke(["sites", "add", "KMP", "Kampala North"]).exit_code == 0
    result = runner.invoke(
        ["users", "add", "joseph", "--role", "facilitator", "--site", "KMP", "--name", "Joseph Okello"],
        input="joseph-pass\njoseph-pass\n",
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(["users", "list"]).output
    assert "joseph" in listing and "facilitator" in listing and "KMP" in listing and "active" in listing
    assert runner.invoke(["users", "disable", "joseph"]).exit_code == 0
    assert "disabled" in runner.invoke(["users", "list"]).output
    assert runner.invoke(["users", "enable", "joseph"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "add", "x1", "--role", "facilitator", "--site", "NOPE"], "Unknown site 'NOPE'"),
        (["users", "add", "x1", "--role", "facilitator"], "must work at a site"),
        (["users", "add", "bad name!", "--role", "admin"], "A username is 2 to 40"),
        (["users", "add", "boss", "--role", "admin"], "already taken"),
        (["users", "disable", "ghost"], "No user called 'ghost'"),
        (["sites", "add", "k", "Lower case"], "A site code is 2 to 8 capital letters"),
        (["sites", "add", "KMP", "Twice", "--language", "xx"], "Unknown language 'xx'"),
    ],
)
def test_cli_bad_input_clear_error(runner, args, message):
    init(runner)
    result = runner.invoke(args, input="some-password\nsome-password\n")
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_commands_without_database_say_init(runner):
    result = runner.invoke(["users", "list"])
    assert result.exit_code == 1
    assert "Run 'group-ipt init --admin NAME' first" in result.output


def test_migrate_reports_up_to_date(runner):
    init(runner)
    result = runner.invoke(["migrate"])
    assert result.exit_code == 0
    assert "up to date" in result.output


def test_demo_twice_does_not_duplicate(runner):
    first = runner.invoke(["demo"])
    assert first.exit_code == 0, first.output
    assert "Demo logins" in first.output
    db = dbmod.connect(runner.data_dir / "group-ipt.db")
    counts = {t: db[t].count for t in db.table_names() if t not in ("audit_log", "login_attempts")}
    second = runner.invoke(["demo"])
    assert second.exit_code == 0
    assert "nothing new" in second.output
    assert {t: db[t].count for t in counts} == counts
    assert counts["sites"] == 2 and counts["users"] == 7
    assert counts["participants"] == 40 and counts["cycles"] == 3
    stages = dict(db.execute("select protocol_id, status from cycles").fetchall())
    assert stages == {"who-8": "closed", "strongminds-12": "active", "short-6": "planned"}
    assert db.execute("select count(*) from referrals where status = 'open'").fetchone()[0] >= 2
    assert db.execute("select count(*) from attendance").fetchone()[0] > 100


def test_serve_refuses_dev_key_without_init(runner):
    # A database without a secret key file (e.g. copied without it).
    runner.data_dir.mkdir(parents=True)
    dbmod.connect(runner.data_dir / "group-ipt.db").close()
    result = runner.invoke(["serve", "--port", "0"])
    assert result.exit_code == 1
    assert "There is no secret key" in result.output


def test_serve_without_database_says_init(runner):
    result = runner.invoke(["serve"])
    assert result.exit_code == 1
    assert "No database" in result.output


def test_forms_check_passes_on_shipped_files(runner):
    result = runner.invoke(["forms", "check"])
    assert result.exit_code == 0, result.output
    assert "All form files are valid" in result.output


def test_cli_shim_runs_from_checkout():
    result = subprocess.run(
        [sys.executable, str(REPO_DIR / "cli.py"), "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_serve_demo_starts_real_server_and_answers(tmp_path):
    """The README's run command: one command gives a working app with demo data."""
    data_dir = tmp_path / "served"
    proc = subprocess.Popen(
        [sys.executable, str(REPO_DIR / "cli.py"), "--data-dir", str(data_dir), "serve", "--demo", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        address = None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "is running at" in line:
                address = line.split("is running at ")[1].split()[0]
                break
            if not line and proc.poll() is not None:
                break
        assert address, "".join(lines)
        with urllib.request.urlopen(address + "login", timeout=10) as response:  # noqa: S310
            assert response.status == 200
            assert "Log in" in response.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
