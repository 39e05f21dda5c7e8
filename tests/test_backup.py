"""group-ipt backup / restore: consistent copies of a live database, and a careful restore."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from click.testing import CliRunner

from group_ipt.cli import cli
from group_ipt.store import backup as backupmod
from group_ipt.store import db as dbmod

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
        db.execute(
            "insert into sync_state (key, value) values ('outbox_cut_seq', ?)"
            " on conflict (key) do update set value = excluded.value",
            (str(top),),
        )
    db.close()
    assert backupmod.unsynced_changes(Path(app.config["DATABASE"])) == 0
    result = invoke(app, "restore", str(copy))
    assert result.exit_code == 0, result.output


def test_backup_of_a_live_database_while_writes_go_on(app, db, tmp_path, monkeypatch):
    monkeypatch.setattr(backupmod, "PAGES_PER_STEP", 8)  # many steps, so writes land in between
    with dbmod.write(db):
        for i in range(3000):
            db.execute(
                "insert into settings (key, value, updated_at) values (?, ?, '2026-01-01')", (f"filler-{i}", "x" * 400)
            )
    acked: list[str] = []
    stop = threading.Event()

    def writer():
        conn = dbmod.connect(app.config["DATABASE"])
        n = 0
        while not stop.is_set():
            n += 1
            with dbmod.write(conn):
                conn.execute(
                    "insert into settings (key, value, updated_at) values (?, 'v', '2026-01-01')", (f"live-{n}",)
                )
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


# ---- backups without thinking ----------------------------------------------------------------------


def test_rotation_keeps_the_last_seven_days_and_the_newest_of_four_weeks():
    from datetime import date, timedelta

    today = date(2026, 12, 4)  # a Friday
    days = [today - timedelta(days=n) for n in range(60)]
    kept = backupmod.to_keep(days, today)
    last_seven = {today - timedelta(days=n) for n in range(7)}
    assert last_seven <= kept
    older = sorted(kept - last_seven)
    # this week's and the three weeks before: their newest day (Sundays for full past weeks)
    assert older == [date(2026, 11, 15), date(2026, 11, 22)]
    assert len(kept) == 9
    # with gaps (the laptop stayed off for weeks) the four most recent weeks that have a backup are kept
    sparse = [date(2026, 9, 1), date(2026, 9, 20), date(2026, 10, 10), date(2026, 10, 30), date(2026, 11, 2)]
    assert backupmod.to_keep(sparse, today) == {
        date(2026, 9, 20),
        date(2026, 10, 10),
        date(2026, 10, 30),
        date(2026, 11, 2),
    }


def test_daily_backup_once_a_day_checked_and_pruned(app, db, tmp_path):
    from datetime import date

    add_participant(db, name="Daily")
    data_dir = Path(app.config["DATA_DIR"])
    folder = data_dir / "backups"
    folder.mkdir()
    for old in ("2026-01-01", "2026-01-02"):  # long gone: the two fall in one ISO week beyond the four kept
        (folder / f"group-ipt-{old}.db").write_bytes(b"old")
    (folder / "group-ipt-2026-12-03.db.part").write_bytes(b"cut short")
    (folder / "notes.txt").write_text("not a backup")
    db.close()
    first = backupmod.daily_backup(Path(app.config["DATABASE"]), data_dir, today=date(2026, 12, 4))
    assert first["made"] and Path(first["made"]).name == "group-ipt-2026-12-04.db"
    assert backupmod.integrity_problems(Path(first["made"])) == []
    assert "Daily" in {r[0] for r in sqlite3.connect(first["made"]).execute("select name from participants")}
    assert not (folder / "group-ipt-2026-12-03.db.part").exists() and (folder / "notes.txt").exists()
    # 2026-01-02 is the newest of its week and one of the four most recent weeks with a backup: kept
    assert sorted(p.name for p in folder.glob("group-ipt-*.db")) == [
        "group-ipt-2026-01-02.db",
        "group-ipt-2026-12-04.db",
    ]
    again = backupmod.daily_backup(Path(app.config["DATABASE"]), data_dir, today=date(2026, 12, 4))
    assert again["made"] is None


def test_daily_backups_run_while_serving_and_can_be_turned_off(app, tmp_path):
    import time

    app.config["BACKUP_DAILY"] = False
    assert backupmod.start_daily_backups(app) is None
    app.config["BACKUP_DAILY"] = True
    stop = backupmod.start_daily_backups(app, every_seconds=60)
    try:
        deadline = time.monotonic() + 10
        while not backupmod.daily_backups(Path(app.config["DATA_DIR"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(backupmod.daily_backups(Path(app.config["DATA_DIR"]))) == 1
    finally:
        stop.set()


def test_backup_to_a_folder_names_it_by_date_and_remembers_the_copy(app, tmp_path):
    usb = tmp_path / "usb"
    usb.mkdir()
    result = invoke(app, "backup", "--to", str(usb))
    assert result.exit_code == 0, result.output
    (copy,) = usb.glob("group-ipt-backup-*.db")
    assert backupmod.integrity_problems(copy) == []
    assert backupmod.last_copy(Path(app.config["DATA_DIR"])) is not None
    missing = invoke(app, "backup", "--to", str(tmp_path / "no-stick"))
    assert missing.exit_code == 1 and "USB stick plugged in" in missing.output
    for args in (["backup"], ["backup", str(tmp_path / "x.db"), "--to", str(usb)]):
        wrong = invoke(app, *args)
        assert wrong.exit_code == 2 and "Give either FILE or --to FOLDER" in wrong.output


def test_home_page_warns_a_coordinator_when_no_backup_is_recent(app, client, set_today):
    from datetime import date

    from .conftest import login

    set_today("2026-12-04")
    login(client, "coord")
    page = client.get("/").get_data(as_text=True)
    assert 'id="backup-warning"' in page and "never been backed up" in page
    data_dir = Path(app.config["DATA_DIR"])
    backupmod.daily_backup(Path(app.config["DATABASE"]), data_dir, today=date(2026, 11, 20))
    page = client.get("/").get_data(as_text=True)
    assert 'id="backup-warning"' in page and "more than 7 days ago" in page
    backupmod.daily_backup(Path(app.config["DATABASE"]), data_dir, today=date(2026, 11, 28))
    assert 'id="backup-warning"' not in client.get("/").get_data(as_text=True)
    facilitator = app.test_client()
    set_today("2026-12-30")
    login(facilitator, "amina")
    assert 'id="backup-warning"' not in facilitator.get("/").get_data(as_text=True)
    assert 'id="backup-warning"' in client.get("/").get_data(as_text=True)
