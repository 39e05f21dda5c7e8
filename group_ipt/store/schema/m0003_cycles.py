"""Group cycles: site holidays, cycles, facilitators, sessions and their history, members,
attendance, symptom checks, fidelity checklists and absence follow-ups."""

SQL = """
-- Days a site's groups cannot meet (public holidays, market days, a closed venue).
create table site_holidays (
    id text primary key,
    site_id text not null references sites(id),
    date text not null,                 -- local date YYYY-MM-DD
    label text not null default '',
    created_at text not null,
    updated_at text not null,
    unique (site_id, date)              -- also serves "the holidays of a site" in date order
);

create table cycles (
    id text primary key,
    site_id text not null references sites(id),
    code text not null,                 -- e.g. KMP-C003, unique per site, shown everywhere
    name text not null default '',
    protocol_id text not null,          -- the id in forms/protocols/*.yaml
    protocol_version integer not null,  -- the file's version when the cycle was made
    group_type text not null check (group_type in ('women', 'men', 'mixed', 'adolescents')),
    venue text not null,
    weekday integer not null check (weekday between 0 and 6),   -- Monday = 0
    start_time text not null,           -- local HH:MM, no time zone
    first_date text not null,           -- local date of the first session
    status text not null default 'planned'
        check (status in ('planned', 'active', 'closed', 'closed_early')),
    closed_on text,
    closed_reason text,
    created_by text references users(id),
    created_at text not null,
    updated_at text not null,
    unique (site_id, code)
);
-- Coordinator home and cycle list: the cycles of my sites by stage.
create index cycles_by_site_status on cycles(site_id, status);

create table cycle_facilitators (
    id text primary key,
    site_id text not null references sites(id),
    cycle_id text not null references cycles(id),
    user_id text not null references users(id),
    role text not null default 'lead' check (role in ('lead', 'co')),
    created_at text not null,
    updated_at text not null,
    unique (cycle_id, user_id)
);
-- Facilitator home: "my cycles" and double-booking checks by facilitator.
create index cycle_facilitators_by_user on cycle_facilitators(user_id);

create table sessions (
    id text primary key,
    site_id text not null references sites(id),
    cycle_id text not null references cycles(id),
    number integer not null,            -- protocol session number (0 = pre-group); a make-up repeats it
    kind text not null check (kind in ('pre-group', 'group', 'makeup', 'maintenance')),
    phase text not null,
    makeup_for text references sessions(id),
    scheduled_date text not null,       -- local date YYYY-MM-DD
    start_time text not null,           -- local HH:MM
    minutes integer not null,
    status text not null default 'scheduled' check (status in ('scheduled', 'held', 'cancelled')),
    note text not null default '',
    recorded_by text references users(id),
    recorded_at text,
    version integer not null default 0, -- raised by every save: a save carrying an older one is refused
    created_at text not null,
    updated_at text not null
);
-- A cycle's sessions in order (cycle page, rescheduling, rates).
create index sessions_by_cycle on sessions(cycle_id, scheduled_date);
-- Home pages and double-booking checks: sessions of a site on or around a date.
create index sessions_by_site_date on sessions(site_id, scheduled_date, status);
-- Double-booking checks: every session on a date, whatever the site (facilitators work at several).
create index sessions_by_date on sessions(scheduled_date);

-- Every move, cancellation and make-up, newest last; sessions keep only their current date.
create table session_changes (
    id text primary key,
    site_id text not null references sites(id),
    cycle_id text not null references cycles(id),
    session_id text not null references sessions(id),
    action text not null check (action in ('moved', 'cancelled', 'makeup_added', 'closed_early')),
    old_date text,
    new_date text,
    reason text not null default '',
    changed_by text references users(id),
    created_at text not null,
    updated_at text not null
);
-- The history shown on the cycle page, and SEQUENCE numbers in the calendar export.
create index session_changes_by_cycle on session_changes(cycle_id, created_at);
create index session_changes_by_session on session_changes(session_id);

create table members (
    id text primary key,
    site_id text not null references sites(id),
    cycle_id text not null references cycles(id),
    participant_id text not null references participants(id),
    status text not null default 'active'
        check (status in ('active', 'completed', 'withdrawn', 'transferred', 'dropped_out')),
    problem_area text check (problem_area in ('grief', 'disputes', 'transitions', 'isolation')),
    problem_area_2 text check (problem_area_2 in ('grief', 'disputes', 'transitions', 'isolation')),
    goals text not null default '',
    enrolled_on text not null,          -- local date
    override_reason text,               -- why someone not (yet) eligible was enrolled
    ended_on text,
    end_reason text,
    transferred_to text references members(id),
    transferred_from text references members(id),
    created_by text references users(id),
    created_at text not null,
    updated_at text not null
);
-- A participant is in at most one active cycle.
create unique index members_one_active_per_participant on members(participant_id) where status = 'active';
-- A cycle's members (cycle page, session page, rates).
create index members_by_cycle on members(cycle_id, status);
-- "The participant's last membership" (measures due on the participant page).
create index members_by_participant on members(participant_id, created_at);

create table attendance (
    id text primary key,
    site_id text not null references sites(id),
    session_id text not null references sessions(id),
    member_id text not null references members(id),
    status text not null check (status in ('present', 'absent', 'excused', 'late')),
    recorded_by text references users(id),
    created_at text not null,
    updated_at text not null,
    unique (session_id, member_id)      -- also serves "attendance of a session"
);
-- A member's attendance over time (follow-up streaks, completion).
create index attendance_by_member on attendance(member_id);

create table symptom_checks (
    id text primary key,
    site_id text not null references sites(id),
    session_id text not null references sessions(id),
    member_id text not null references members(id),
    trend text check (trend in ('better', 'same', 'worse')),
    rating integer check (rating between 0 and 10),
    created_at text not null,
    updated_at text not null,
    unique (session_id, member_id)
);
-- A member's symptom trend over the cycle.
create index symptom_checks_by_member on symptom_checks(member_id);

-- The facilitator's after-session self-check; answers keyed by the protocol's checklist ids.
create table fidelity_checklists (
    id text primary key,
    site_id text not null references sites(id),
    session_id text not null references sessions(id),
    user_id text not null references users(id),
    answers_json text not null,         -- {item id: true/false}
    created_at text not null,
    updated_at text not null,
    unique (session_id, user_id)
);

-- A call or home visit after repeated absences.
create table absence_followups (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null references members(id),
    done_on text not null,              -- local date of the call or visit
    note text not null default '',
    done_by text references users(id),
    created_at text not null,
    updated_at text not null
);
-- "Is there a follow-up since the member's absences began?"
create index absence_followups_by_member on absence_followups(member_id, done_on);
"""
