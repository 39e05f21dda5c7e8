"""Sync: the hybrid logical clock, row versions, the change log, devices, batches,
conflicts and quarantine. See docs/sync.md for the design."""

import uuid

SQL = """
-- One row: this database's hybrid logical clock and its node id. ``applying`` is 1 only
-- inside a sync transaction, so the change-capture triggers ignore records sync writes.
create table sync_clock (
    id integer primary key check (id = 1),
    wall integer not null default 0,     -- milliseconds since 1970, never goes back
    counter integer not null default 0,  -- orders events within one millisecond (or a clock behind)
    node text not null,                  -- random id of this database
    applying integer not null default 0
);

-- Key/value state of the sync client and server (server address, token, cursors, last success).
create table sync_state (
    key text primary key,
    value text
);

-- The version of every synced record: its last hybrid logical clock value (hlc), whether it
-- is deleted (a tombstone), and on a laptop the last version exchanged with the central office
-- (synced_hlc: sent in a batch or received; hlc != synced_hlc means a local change waits).
create table sync_rows (
    table_name text not null,
    record_id text not null,
    site_id text,
    hlc text not null,
    synced_hlc text,
    deleted integer not null default 0,
    tombstone_json text,                 -- the record as it was when deleted
    unacked_batch integer,               -- laptop: the batch carrying this version, until acknowledged
    primary key (table_name, record_id)
) without rowid;

-- The change log. On a laptop: local changes not yet acknowledged (the outbox). On the
-- central server: every change received or made there, the feed laptops pull from.
create table sync_log (
    seq integer primary key autoincrement,
    table_name text not null,
    record_id text not null,
    site_id text,
    origin text not null                 -- node id (local change) or device id (received)
);
create index sync_log_by_site on sync_log(site_id, seq);

-- Laptop: batches cut from the outbox, kept byte for byte until acknowledged, so a resent
-- batch is the same batch.
create table sync_outbox_batches (
    batch_no integer primary key,
    last_seq integer not null,
    records integer not null,
    payload blob not null,               -- gzip-compressed JSON
    created_at text not null
);

-- Central: the laptops allowed to sync, each tied to one site.
create table sync_devices (
    id text primary key,
    name text not null unique,
    site_id text not null references sites(id),
    token_hash text not null unique,     -- sha256 of the token; the token is shown once
    signing_key text not null,           -- HMAC(token, "group-ipt file signing"), verifies export files
    created_at text not null,
    revoked_at text,
    last_seen_at text,
    last_batch_no integer not null default 0,
    clock_skew_seconds integer           -- laptop clock minus server clock at the last contact
);

-- Central: every batch applied, so a resent batch is acknowledged without applying it again.
create table sync_batches (
    device_id text not null references sync_devices(id),
    batch_no integer not null,
    received_at text not null,
    records integer not null,
    applied integer not null,
    quarantined integer not null,
    conflicts integer not null,
    via text not null default 'http',    -- http or file
    primary key (device_id, batch_no)
);

-- Central: sync files imported, so a replayed file is refused.
create table sync_files (
    file_id text primary key,
    device_id text not null,
    imported_at text not null
);

-- Two versions of one record made without seeing each other: the winner (the later hybrid
-- logical clock) is in the table, the loser is kept here until a coordinator resolves it.
create table sync_conflicts (
    id integer primary key,
    table_name text not null,
    record_id text not null,
    site_id text,
    winner_hlc text not null,
    winner_json text,                    -- null = the winner is a deletion
    loser_hlc text not null,
    loser_json text,                     -- null = the loser is a deletion
    loser_origin text,
    created_at text not null,
    status text not null default 'open' check (status in ('open', 'kept', 'replaced')),
    resolved_by text,
    resolved_at text
);
create index sync_conflicts_by_status on sync_conflicts(status, site_id);

-- Records that could not be applied, with the error; the rest of their batch went through.
create table sync_quarantine (
    id integer primary key,
    direction text not null check (direction in ('in', 'pull')),
    device_id text,
    batch_no integer,
    table_name text,
    record_id text,
    site_id text,
    record_json text not null,
    error text not null,
    created_at text not null,
    status text not null default 'open' check (status in ('open', 'applied', 'dismissed'))
);
create index sync_quarantine_by_status on sync_quarantine(status);
"""


def up(db):
    db.execute("insert into sync_clock (id, wall, counter, node) values (1, 0, 0, ?)", (uuid.uuid4().hex[:12],))
