"""A real central server (group-ipt serve --central on 127.0.0.1) and the CLI run as subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from group_ipt.base.settings import REPO_DIR

CLI = [sys.executable, str(REPO_DIR / "cli.py")]


# Slow: a real central server (waitress) and the CLI in child processes, seconds apiece.
pytestmark = pytest.mark.slow


def run(data_dir, *args, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*CLI, "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GROUP_IPT_DATA": str(data_dir)},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed: {result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def central(tmp_path):
    data = tmp_path / "central"
    run(data, "init", "--admin", "boss", stdin="long-password\nlong-password\n")
    run(data, "sites", "add", "KMP", "Kampala North")
    out = run(data, "devices", "add", "kmp-laptop-1", "--site", "KMP").stdout
    token = out.splitlines()[1].strip()
    server = subprocess.Popen(
        [*CLI, "--data-dir", str(data), "serve", "--central", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert "running at" in line, line + server.stderr.read()
        url = line.split("running at ", 1)[1].split()[0].rstrip("/")
        yield {"data": data, "url": url, "token": token}
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()
        server.stderr.close()


def test_laptop_syncs_with_a_real_central_server(tmp_path, central):
    laptop = tmp_path / "laptop"
    run(laptop, "init", "--admin", "local-admin", stdin="long-password\nlong-password\n")
    setup = run(laptop, "sync", "setup", "--server", central["url"], "--token", central["token"])
    assert "kmp-laptop-1" in setup.stdout
    run(laptop, "sync", "pull")
    conn = sqlite3.connect(laptop / "group-ipt.db")
    site_id = conn.execute("select id from sites where code = 'KMP'").fetchone()[0]
    pid = str(uuid.uuid4())
    conn.execute(
        "insert into participants (id, site_id, code, name, sex, village, created_at, updated_at)"
        " values (?, ?, 'KMP-0001-A', 'Amina', 'female', 'Kisenyi', '2026-01-01', '2026-01-01')",
        (pid, site_id),
    )
    conn.commit()
    conn.close()
    assert "waiting to send:   1 record(s)" in run(laptop, "sync", "status").stdout
    synced = run(laptop, "sync")
    assert "Sent 1 record(s) in 1 batch(es)" in synced.stdout
    status = run(laptop, "sync", "status").stdout
    assert "waiting to send:   0 record(s)" in status and "last push:         never" not in status
    centre = sqlite3.connect(central["data"] / "group-ipt.db")
    assert centre.execute("select code, name, village from participants").fetchall() == [("KMP-0001-A", "", "Kisenyi")]
    centre.close()
    # Revoked: refused with a clear message, nothing more arrives.
    run(central["data"], "devices", "revoke", "kmp-laptop-1")
    conn = sqlite3.connect(laptop / "group-ipt.db")
    conn.execute("update participants set village = 'Nsambya'")
    conn.commit()
    conn.close()
    refused = run(laptop, "sync", "push", check=False)
    assert refused.returncode == 1 and "revoked" in refused.stderr
    assert "revoked" in run(laptop, "sync", "status").stdout


def test_wrong_token_and_unreachable_server_are_clear(tmp_path, central):
    laptop = tmp_path / "laptop"
    run(laptop, "init", "--admin", "local-admin", stdin="long-password\nlong-password\n")
    wrong = run(laptop, "sync", "setup", "--server", central["url"], "--token", "gipt_wrong", check=False)
    assert wrong.returncode == 1 and "Unknown token" in wrong.stderr
    nothing = run(laptop, "sync", "push", check=False)
    assert nothing.returncode == 1 and "not set up for sync" in nothing.stderr
    started = time.monotonic()
    down = run(laptop, "sync", "setup", "--server", "http://127.0.0.1:9", "--token", central["token"], check=False)
    assert down.returncode == 1 and "Cannot reach the server" in down.stderr
    assert time.monotonic() - started < 60


def test_usb_file_round_trip_with_the_cli(tmp_path, central):
    laptop = tmp_path / "laptop"
    run(laptop, "init", "--admin", "local-admin", stdin="long-password\nlong-password\n")
    run(laptop, "sync", "setup", "--server", central["url"], "--token", central["token"])
    run(laptop, "sync", "pull")
    conn = sqlite3.connect(laptop / "group-ipt.db")
    site_id = conn.execute("select id from sites").fetchone()[0]
    conn.execute(
        "insert into participants (id, site_id, code, name, sex, created_at, updated_at)"
        " values ('p-usb', ?, 'KMP-0002-B', 'Grace', 'female', '2026-01-01', '2026-01-01')",
        (site_id,),
    )
    conn.commit()
    conn.close()
    usb = tmp_path / "usb.gipt"
    assert "Wrote 1 record(s)" in run(laptop, "sync", "export", str(usb)).stdout
    imported = run(central["data"], "sync", "import", str(usb))
    assert "1 applied" in imported.stdout
    replay = run(central["data"], "sync", "import", str(usb), check=False)
    assert replay.returncode == 1 and "already imported" in replay.stderr
    reply = usb.with_name("usb.gipt.reply")
    assert "1 batch(es) acknowledged" in run(laptop, "sync", "import", str(reply)).stdout
    assert "waiting to send:   0 record(s)" in run(laptop, "sync", "status").stdout
