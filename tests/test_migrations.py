"""Schema migrations: numbered, forward-only, and an old database upgrades cleanly."""

from __future__ import annotations

import pytest

from group_ipt.store import db as dbmod
from group_ipt.store.schema import all_migrations, current_version, migrate, split_sql


def test_migrations_are_numbered_from_one_without_gaps():
    versions = [m.version for m in all_migrations()]
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize("start", [m.version for m in all_migrations()])
def test_upgrade_from_every_earlier_version_keeps_data(tmp_path, start):
    db = dbmod.connect(tmp_path / "old.db")
    migrate(db, upto=start)
    assert current_version(db) == start
    db.execute(
        "insert into sites (id, code, name, default_language, created_at, updated_at)"
        " values ('s1', 'OLD', 'Old site', 'en', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
    )
    db.conn.commit()
    applied = migrate(db)
    assert [m.version for m in applied] == [m.version for m in all_migrations() if m.version > start]
    assert current_version(db) == all_migrations()[-1].version
    assert db["sites"].get("s1")["code"] == "OLD"
    assert migrate(db) == []  # re-running is safe
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_pragmas_wal_and_foreign_keys(tmp_path):
    db = dbmod.connect(tmp_path / "x.db")
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert db.execute("pragma foreign_keys").fetchone()[0] == 1


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    import types

    db = dbmod.connect(tmp_path / "x.db")
    migrate(db)
    version = current_version(db)
    broken = types.SimpleNamespace(SQL="create table half_done (x integer);\ninsert into no_such_table values (1);")
    from group_ipt.store import schema

    monkeypatch.setattr(
        schema, "all_migrations", lambda: [*all_migrations(), schema.Migration(version + 1, "broken", broken)]
    )
    with pytest.raises(Exception, match="no such table"):
        migrate(db)
    assert current_version(db) == version
    assert "half_done" not in db.table_names()


def test_split_sql_keeps_statements_whole():
    script = "create table a (x text default ';');\n-- comment\ncreate table b (y integer);\n"
    assert split_sql(script) == ["create table a (x text default ';');", "-- comment\ncreate table b (y integer);"]


def test_synced_tables_have_uuid_timestamps_and_site(tmp_path):
    """Every table that will sync has an id, created/updated timestamps and its site."""
    db = dbmod.connect(tmp_path / "x.db")
    migrate(db)
    local_only = {
        "schema_migrations",
        "audit_log",
        "login_attempts",
        "settings",
        "user_sites",
        "users",
        "sites",
        "login_sessions",
        "login_unlocks",  # an installation's own logins: never synced
        "session_drafts",
    }  # a facilitator's unsaved sheet, on this laptop only
    for table in db.table_names():
        # sync_*: sync's own tables; report_*: figures derived from the records, recomputed on each database
        if table in local_only or table.startswith(("sqlite_", "sync_", "report_")):
            continue
        columns = db[table].columns_dict
        for needed in ("id", "created_at", "updated_at", "site_id"):
            assert needed in columns, f"{table} lacks {needed}"


def test_sync_rows_rebuilt_by_rowid_keeps_versions_and_triggers(tmp_path):
    """m0020 rebuilds sync_rows under the triggers of every synced table: a laptop's versions
    (waiting changes, tombstones, the batch carrying them) survive, and the triggers installed
    before it still log into the new table, one row per record."""
    from group_ipt.store import tracking

    db = dbmod.connect(tmp_path / "laptop.db")
    migrate(db, upto=19)
    tracking.ensure_triggers(db)
    now = "2026-01-01T00:00:00+00:00"
    with dbmod.write(db):
        db.execute(
            "insert into sites (id, code, name, default_language, created_at, updated_at)"
            " values ('s1', 'OLD', 'Old site', 'en', ?, ?)",
            (now, now),
        )
        for n in (1, 2):
            db.execute(
                "insert into participants (id, site_id, code, name, sex, created_at, updated_at)"
                " values (?, 's1', ?, 'x', 'female', ?, ?)",
                (f"p{n}", f"OLD-{n}", now, now),
            )
        db.execute("delete from participants where id = 'p2'")
        db.execute("update sync_rows set unacked_batch = 7 where record_id = 'p1'")
    before = [dict(r) for r in db.query("select * from sync_rows order by table_name, record_id")]
    assert {r["record_id"] for r in before} >= {"p1", "p2"}

    assert [m.version for m in migrate(db)][0] == 20
    assert [dict(r) for r in db.query("select * from sync_rows order by table_name, record_id")] == before
    assert db.execute("pragma legacy_alter_table").fetchone()[0] == 0
    assert tracking.ensure_triggers(db) == []  # the triggers were kept as they were
    with dbmod.write(db):
        db.execute("update participants set village = 'Kawempe' where id = 'p1'")
    p1 = list(db.query("select * from sync_rows where table_name = 'participants' and record_id = 'p1'"))
    assert len(p1) == 1 and p1[0]["hlc"] > before[[r["record_id"] for r in before].index("p1")]["hlc"]
    assert p1[0]["unacked_batch"] == 7
    with pytest.raises(Exception, match="UNIQUE"):
        db.execute("insert into sync_rows (table_name, record_id, hlc) values ('participants', 'p1', 'x')")
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db.execute("pragma foreign_key_check").fetchall() == []
