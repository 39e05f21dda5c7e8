"""``sync_rows`` becomes an ordinary (rowid) table with a unique index on its key.

It was a ``without rowid`` table keyed by (table_name, record_id). A record id is a random
UUID, so each batch of received records lands all over that B-tree, and its leaves hold
whole rows (two clock values, the tombstone): a batch of 5,000 rewrote about 2,500 pages of
it. Now the rows are appended and only the narrow index is written at random: the central
ingest writes about a third fewer pages (benchmarks/sync_bench.py). Same columns, same key,
same queries (each one by the key is answered by the index).

Triggers on the synced tables write to ``sync_rows`` by name; the rename below keeps that
name pointing at the new table (``legacy_alter_table`` leaves other tables' triggers as
written instead of checking them against a schema that, for a moment, has no sync_rows).
"""


def up(db):
    legacy = db.execute("pragma legacy_alter_table").fetchone()[0]
    db.execute("pragma legacy_alter_table = on")
    try:
        db.execute(
            """create table sync_rows_new (
                table_name text not null,
                record_id text not null,
                site_id text,
                hlc text not null,
                synced_hlc text,
                deleted integer not null default 0,
                tombstone_json text,                 -- the record as it was when deleted
                unacked_batch integer                -- laptop: the batch carrying this version, until acknowledged
            )"""
        )
        db.execute(
            "insert into sync_rows_new (table_name, record_id, site_id, hlc, synced_hlc, deleted, tombstone_json,"
            " unacked_batch) select table_name, record_id, site_id, hlc, synced_hlc, deleted, tombstone_json,"
            " unacked_batch from sync_rows order by table_name, record_id"
        )
        db.execute("drop table sync_rows")
        db.execute("alter table sync_rows_new rename to sync_rows")
        db.execute("create unique index sync_rows_key on sync_rows(table_name, record_id)")
    finally:
        db.execute(f"pragma legacy_alter_table = {'on' if legacy else 'off'}")
