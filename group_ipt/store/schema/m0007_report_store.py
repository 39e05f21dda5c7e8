"""Stored per-cycle figures for the indicators page, kept fresh by triggers (see group_ipt/reporting/report_store.py).

The indicators of a whole national programme cannot be recomputed from attendance and
scores on every page view (5 s on 100,000 participants). Each cycle's figures are stored
here once; any change to a cycle, its sessions, members, attendance, fidelity checklists
or a member's PHQ-9 marks the cycle in ``report_stale`` (triggers below, so every write
path is covered: web, API, sync, file import), and the report recomputes only those
cycles before it reads. These tables are derived, local to each database and never
synced (they have no ``id``/``site_id``): the central office computes its own.
"""


def _mark(cycles: str) -> str:
    """Return a statement that marks the cycles selected by ``cycles`` (a query of cycle ids) stale.

    Not ``insert or ignore``: a trigger's conflict clause gives way to the outer statement's
    (an upsert, ``insert or replace``), so the statement must not conflict at all.
    """
    return (
        f"insert into report_stale (cycle_id) select distinct c.cycle_id from ({cycles}) c"
        " where c.cycle_id is not null"
        " and not exists (select 1 from report_stale s where s.cycle_id = c.cycle_id);"
    )


def _triggers(table: str, cycles_of_row: str, when: dict[str, str] | None = None) -> str:
    """Return the insert, update and delete triggers of ``table``; ``cycles_of_row`` uses ROW for new/old."""
    made = []
    for event, rows in (("insert", ("new",)), ("update", ("new", "old")), ("delete", ("old",))):
        condition = f" when {when[event]}" if when else ""
        body = " ".join(_mark(cycles_of_row.replace("ROW", row)) for row in rows)
        made.append(
            f"create trigger report_stale_{table}_{event[:3]} after {event} on {table}{condition} begin {body} end;"
        )
    return "\n".join(made)


TRIGGERS = "\n".join(
    [
        _triggers("cycles", "select ROW.id as cycle_id"),
        _triggers("sessions", "select ROW.cycle_id as cycle_id"),
        _triggers("members", "select ROW.cycle_id as cycle_id"),
        _triggers("attendance", "select cycle_id from sessions where id = ROW.session_id"),
        _triggers("fidelity_checklists", "select cycle_id from sessions where id = ROW.session_id"),
        # A PHQ-9 counts as a baseline or end score in every cycle the person is a member of.
        _triggers(
            "screenings",
            "select cycle_id from members where participant_id = ROW.participant_id",
            when={
                "insert": "new.instrument_id = 'phq9'",
                "delete": "old.instrument_id = 'phq9'",
                "update": "new.instrument_id = 'phq9' or old.instrument_id = 'phq9'",
            },
        ),
    ]
)

SQL = (
    """
-- Cycles whose stored figures must be recomputed before the next report.
create table report_stale (cycle_id text primary key);
-- The figures are filtered by their cycle's site, protocol and group type, and counted over a
-- period by a date: those are copied into every row (a change to the cycle makes it stale).
-- The row tables are WITHOUT ROWID, keyed by that date first, so the rows of a period are
-- stored together and a report reads one short range of one table, joining nothing
-- (a quarter of 100,000 participants: ~6,000 rows per table, a few ms each).
-- One row per cycle with figures stored (every cycle once refreshed).
create table report_cycles (
    cycle_id text primary key,
    site_id text not null,
    protocol_id text not null,
    group_type text not null,
    status text not null,
    closed_on text,
    first_held_on text,                 -- date of the first held group session, if any
    computed_at text not null
);
create index report_cycles_by_first_held_on on report_cycles(first_held_on);
create index report_cycles_by_closed_on on report_cycles(closed_on);
-- Members enrolled per cycle and day (a transfer is not an enrolment).
create table report_enrolment (
    enrolled_on text not null,
    cycle_id text not null,
    site_id text not null,
    protocol_id text not null,
    group_type text not null,
    members integer not null,
    primary key (enrolled_on, cycle_id)
) without rowid;
create index report_enrolment_by_cycle on report_enrolment(cycle_id);
-- Attendance pairs (member, session number: a make-up counts for its session) of a
-- cycle, counted per session number and date of the pair's first session.
create table report_attendance (
    session_date text not null,
    cycle_id text not null,
    session_number integer not null,
    site_id text not null,
    protocol_id text not null,
    group_type text not null,
    attended integer not null,
    marked integer not null,
    primary key (session_date, cycle_id, session_number)
) without rowid;
create index report_attendance_by_cycle on report_attendance(cycle_id);
-- The members (not transferred out) of a closed cycle, counted per outcome and last group
-- session attended; of those with both PHQ-9 scores: how many, the sums of their baseline,
-- end and change, how many at least halved their score and how many ended below 5.
-- closed_on is '' for a closed cycle without a date: counted in "all time" only.
create table report_outcomes (
    closed_on text not null,
    cycle_id text not null,
    outcome text not null,
    last_session_attended integer not null,
    site_id text not null,
    protocol_id text not null,
    group_type text not null,
    cycle_code text not null,
    members integer not null,
    scored integer not null,
    baseline_sum real not null,
    end_sum real not null,
    change_sum real not null,
    improved integer not null,
    below_5 integer not null,
    primary key (closed_on, cycle_id, outcome, last_session_attended)
) without rowid;
create index report_outcomes_by_cycle on report_outcomes(cycle_id);
-- One row per held group session: fidelity checklists and their items.
create table report_fidelity (
    session_date text not null,
    session_id text not null,
    cycle_id text not null,
    site_id text not null,
    protocol_id text not null,
    group_type text not null,
    session_number integer not null,
    checklists integer not null,
    items_done integer not null,
    items_answered integer not null,
    primary key (session_date, session_id)
) without rowid;
create index report_fidelity_by_cycle on report_fidelity(cycle_id);
-- What the stored figures were computed with (rules version, protocols, grace days):
-- a different fingerprint makes every cycle stale.
create table report_meta (key text primary key, value text not null);

insert into report_stale (cycle_id) select id from cycles;
"""
    + TRIGGERS
    + """
-- The indicators' own queries over a period.
-- "People screened in the period": screenings by occasion and date, covering the columns counted
-- (read from the index alone: 24 to ~5 ms for a quarter of 100,000 participants).
create index if not exists screenings_by_occasion_date
    on screenings(occasion, administered_on, site_id, participant_id, eligible, administered_by);
-- Transfers followed back to the first membership (baseline of a transferred member).
create index if not exists members_by_transferred_from on members(transferred_from) where transferred_from is not null;
"""
)
