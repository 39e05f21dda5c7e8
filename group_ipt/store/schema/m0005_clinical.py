"""Clinical record and supervision: the pre-group record, interpersonal inventory, timeline,
problem-area history, goal progress, relapse-prevention plans, outcome decisions,
supervisor assignments, session ratings and supervision logs."""

SQL = """
-- Which facilitators a supervisor supervises, at which site (managed by coordinators).
create table supervisor_facilitators (
    id text primary key,
    site_id text not null references sites(id),
    supervisor_id text not null references users(id),
    facilitator_id text not null references users(id),
    created_by text references users(id),
    created_at text not null,
    updated_at text not null,
    unique (supervisor_id, facilitator_id, site_id)
);
-- "Who supervises this facilitator?" (access to a member's record).
create index supervisor_facilitators_by_facilitator on supervisor_facilitators(facilitator_id);

-- The individual pre-group session of one member: one row per membership.
create table pregroup_records (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null unique references members(id),
    screening_id text references screenings(id),   -- the symptom review given at this session
    formulation text not null default '',           -- one line linking mood, problem area and events
    medication_assessment text check (medication_assessment in ('yes', 'no')),
    medication_referral_id text references referrals(id),
    group_consent integer check (group_consent in (0, 1)),
    recorded_by text references users(id),
    created_at text not null,
    updated_at text not null
);

-- The interpersonal inventory: the important people in a member's life.
create table inventory_people (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null references members(id),
    name text not null,
    relationship text not null default '',
    closeness text check (closeness in ('close', 'distant')),
    quality text check (quality in ('supportive', 'conflicted', 'mixed')),
    recent_change text not null default '',
    created_by text references users(id),
    created_at text not null,
    updated_at text not null
);
create index inventory_people_by_member on inventory_people(member_id);

-- The timeline linking changes in mood to life events.
create table timeline_events (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null references members(id),
    happened text not null,             -- free text as the person dates it: "June 2025", "after the harvest"
    sort_key text not null default '',  -- YYYY-MM(-DD) when known, for ordering
    event text not null,
    mood text check (mood in ('lower', 'same', 'better')),
    created_by text references users(id),
    created_at text not null,
    updated_at text not null
);
create index timeline_events_by_member on timeline_events(member_id);

-- Every choice and revision of a member's focal problem area(s); members.problem_area is the current one.
create table problem_area_history (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null references members(id),
    problem_area text check (problem_area in ('grief', 'disputes', 'transitions', 'isolation')),
    problem_area_2 text check (problem_area_2 in ('grief', 'disputes', 'transitions', 'isolation')),
    formulation text not null default '',
    reason text not null default '',
    session_id text references sessions(id),
    changed_by text references users(id),
    created_at text not null,
    updated_at text not null
);
create index problem_area_history_by_member on problem_area_history(member_id, created_at);

-- Progress on a member's goals, noted at chosen sessions.
create table goal_progress (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null references members(id),
    session_id text not null references sessions(id),
    progress text not null check (progress in ('none', 'some', 'good', 'achieved')),
    note text not null default '',
    recorded_by text references users(id),
    created_at text not null,
    updated_at text not null,
    unique (member_id, session_id)
);

-- The relapse-prevention plan written at termination.
create table relapse_plans (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null unique references members(id),
    warning_signs text not null,
    people text not null,               -- people to turn to
    actions text not null,              -- what to do
    recorded_by text references users(id),
    created_at text not null,
    updated_at text not null
);

-- What happens after the cycle for each member.
create table outcome_decisions (
    id text primary key,
    site_id text not null references sites(id),
    member_id text not null unique references members(id),
    decision text not null check (decision in ('well', 'extend', 'refer', 'maintenance')),
    note text not null default '',
    extra_sessions integer not null default 0,  -- sessions added by "extend" or "maintenance"
    referral_id text references referrals(id),
    decided_by text references users(id),
    created_at text not null,
    updated_at text not null
);

-- A supervisor's adherence and competence rating of an observed session (forms/ratings/).
create table session_ratings (
    id text primary key,
    site_id text not null references sites(id),
    session_id text not null references sessions(id),
    supervisor_id text not null references users(id),
    form_id text not null,
    form_version integer not null,
    answers_json text not null,         -- {item id: value or null}
    missing_json text not null default '[]',
    complete integer not null,          -- 0: an item was left blank; never scored
    score real,                         -- null when incomplete
    percent real,                       -- 0-100 of the scale; null when incomplete
    sections_json text not null default '{}',
    observed_on text not null,          -- local date
    note text not null default '',
    created_at text not null,
    updated_at text not null,
    unique (session_id, supervisor_id)
);
create index session_ratings_by_session on session_ratings(session_id);

-- The weekly supervision meeting with a facilitator.
create table supervision_logs (
    id text primary key,
    site_id text not null references sites(id),
    facilitator_id text not null references users(id),
    supervisor_id text not null references users(id),
    held_on text not null,              -- local date
    cycles_json text not null default '[]',  -- ids of the cycles discussed
    cases text not null default '',     -- cases of concern
    actions text not null default '',
    created_at text not null,
    updated_at text not null
);
create index supervision_logs_by_facilitator on supervision_logs(facilitator_id, held_on);
"""
