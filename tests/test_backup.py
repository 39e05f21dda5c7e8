"""group-ipt backup / restore: consistent copies of a live database, and a careful restore."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from click.testing import CliRunner

from group_ipt import backup as backupmod
from group_ipt import db as dbmod
from group_ipt.cli import cli

from .conftest import add_participant


def invoke(app, *args):
    data_dir = app.config["DATA_DIR"]
    return CliRunner().invoke(cli, ["--data-dir", data_dir, *args], catch_exceptions=False)


def codes(path) -> set[str]:
    conn = sqlite3.connect(str(path))
    try:
        return {r[0] for r in conn.execute("select code from participants")}
    finally:
        conn.close()


def test_backup_then_restore_brings_back_the_data(app, db, tmp_path):
    first = add_participant(db, name="Before Backup")
    copy = tmp_path / "copy.db"
    result = invoke(app, "backup", str(copy))
    assert result.exit_code == 0, result.output
    assert "integrity check passed" in result.output
    assert backupmod.integrity_problems(copy) == []
    assert not Path(str(copy) + "-wal").exists()
    later = add_participant(db, name="After Backup")
    db.close()

    # Every record in a never-synced laptop database is unsynced: restore refuses without --force.
    refused = invoke(app, "restore", str(copy))
    assert refused.exit_code != 0
    assert "not yet synced" in refused.output or "changed since the last sync" in refused.output
    assert later["code"] in codes(app.config["DATABASE"])

    done = invoke(app, "restore", str(copy), "--force")
    assert done.exit_code == 0, done.output
    now = codes(app.config["DATABASE"])
    assert first["code"] in now and later["code"] not in now
    kept = list((Path(app.config["DATA_DIR"]) / "restore-backups").glob("*.db"))
    assert len(kept) == 1 and later["code"] in codes(kept[0])
    assert backupmod.integrity_problems(Path(app.config["DATABASE"])) == []
    # The app still works on the restored file.
    client = app.test_client()
    assert client.get("/login").status_code == 200


def test_backup_refuses_to_overwrite_and_restore_checks_the_file(app, tmp_path):
    existing = tmp_path / "exists.db"
    existing.write_text("keep me")
    result = invoke(app, "backup", str(existing))
    assert result.exit_code != 0 and "already exists" in result.output
    assert existing.read_text() == "keep me"

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    before = Path(app.config["DATABASE"]).read_bytes()
    result = invoke(app, "restore", str(broken), "--force")
    assert result.exit_code != 0 and "cannot be restored" in result.output
    assert Path(app.config["DATABASE"]).read_bytes() == before

    other = tmp_path / "other.db"
    sqlite3.connect(str(other)).execute("create table t (x)").connection.close()
    result = invoke(app, "restore", str(other), "--force")
    assert result.exit_code != 0 and "not a group-ipt database" in result.output


def test_restore_without_unsynced_changes_needs_no_force(app, db, tmp_path):
    add_participant(db, name="Synced Already")
    copy = tmp_path / "copy.db"
    assert invoke(app, "backup", str(copy)).exit_code == 0
    # As after a successful push: the outbox is cut past every logged change and acknowledged.
    with dbmod.write(db):
        top = db.execute("select max(seq) from sync_log").fetchone()[0]
        db.execute("insert into sync_state (key, value) values ('outbox_cut_seq', ?)"
                   " on conflict (key) do update set value = excluded.value", (str(top),))
    db.close()
    assert backupmod.unsynced_changes(Path(app.config["DATABASE"])) == 0
    result = invoke(app, "restore", str(copy))
    assert result.exit_code == 0, result.output


def test_backup_of_a_live_database_while_writes_go_on(app, db, tmp_path, monkeypatch):
    monkeypatch.setattr(backupmod, "PAGES_PER_STEP", 8)  # many steps, so writes land in between
    with dbmod.write(db):
        for i in range(3000):
            db.execute("insert into settings (key, value, updated_at) values (?, ?, '2026-01-01')",
                       (f"filler-{i}", "x" * 400))
    acked: list[str] = []
    stop = threading.Event()

    def writer():
        conn = dbmod.connect(app.config["DATABASE"])
        n = 0
        while not stop.is_set():
            n += 1
            with dbmod.write(conn):
                conn.execute("insert into settings (key, value, updated_at) values (?, 'v', '2026-01-01')",
                             (f"live-{n}",))
            acked.append(f"live-{n}")  # acknowledged: committed before this line
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(acked) < 20:
            pass
        before_backup = list(acked)
        copy = tmp_path / "live.db"
        backupmod.backup(Path(app.config["DATABASE"]), copy)
    finally:
        stop.set()
        thread.join()
    assert len(acked) > len(before_backup)  # writes went on
    assert backupmod.integrity_problems(copy) == []
    conn = sqlite3.connect(str(copy))
    keys = {r[0] for r in conn.execute("select key from settings where key like 'live-%'")}
    conn.close()
    assert set(before_backup) <= keys
    # A snapshot: the live keys in the copy are a prefix of the acknowledged ones.
    assert keys == {f"live-{i}" for i in range(1, len(keys) + 1)}


def test_backup_without_a_database(tmp_path):
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "none"), "backup", str(tmp_path / "x.db")])
    assert result.exit_code != 0 and "No database" in result.output
