"""Sync through the record rules: merged rows, and quarantine reasons a coordinator can act on.

- ``sync_aliases``: a row received for a natural key the centre already had (attendance of one
  member at one session marked on two laptops) joins the stored row; its id is kept here so
  later versions and children sent with the old id land on the row it joined.
- ``sync_quarantine.reason_json``: the reason as a message and its values, shown translated.
- ``sync_quarantine.waiting_for``: ``table:id`` of the record a quarantined one waits for (its
  parent, or a risk screening's referral); it is applied by itself when that record arrives.
"""

SQL = """
create table sync_aliases (
    table_name text not null,
    record_id text not null,
    canonical_id text not null,
    site_id text,
    created_at text not null,
    primary key (table_name, record_id)
);
alter table sync_quarantine add column reason_json text;
alter table sync_quarantine add column waiting_for text;
create index sync_quarantine_waiting on sync_quarantine(waiting_for) where status = 'open';
"""
