"""Indexes for a national-sized database (measured with benchmarks/run on 100,000 participants)."""

SQL = """
-- The per-cycle counts of the cycle lists (cycle page, home, /cycles/: group sessions and
-- held ones) and the indicators' "first held group session" read only this index (covering)
-- instead of each session row: the site's cycle list went from 9 to 5 ms on 180 cycles.
create index if not exists sessions_by_cycle_kind on sessions(cycle_id, kind, status, scheduled_date);
"""
