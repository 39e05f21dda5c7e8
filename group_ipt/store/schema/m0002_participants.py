"""Participants, consent, status history, duplicate flags, screenings and safety referrals."""

SQL = """
create table participants (
    id text primary key,
    site_id text not null references sites(id),
    code text not null,                 -- programme code, e.g. KMP-4821-C, unique per site
    name text not null,                 -- exactly as typed (any script); shown escaped
    name_key text not null default '',  -- NFKC + casefold + single spaces: for search and duplicates
    sex text not null check (sex in ('female', 'male', 'other')),
    birth_year integer,                 -- from the age when only an age was given
    age_is_estimate integer not null default 0,
    village text not null default '',
    phone text,
    language text,
    status text not null default 'registered',
    created_by text references users(id),
    created_at text not null,
    updated_at text not null,
    unique (site_id, code)
);
create index participants_by_site_name on participants(site_id, name collate nocase);

-- Every status a participant has had, newest last: the current one is on participants.status.
create table participant_status_history (
    id text primary key,
    site_id text not null references sites(id),
    participant_id text not null references participants(id),
    status text not null,
    reason text,
    changed_by text references users(id),
    created_at text not null,
    updated_at text not null
);
create index participant_status_by_participant on participant_status_history(participant_id, created_at);

create table consents (
    id text primary key,
    site_id text not null references sites(id),
    participant_id text not null references participants(id),
    purpose text not null,              -- screening, group, data_sharing
    given integer not null,
    given_by text not null default 'participant',  -- the participant, or the name of a guardian
    recorded_by text references users(id),
    created_at text not null,
    updated_at text not null
);
create index consents_by_participant on consents(participant_id);

-- Possible duplicates (same name, village and age band), never merged without review.
create table duplicate_flags (
    id text primary key,
    site_id text not null references sites(id),
    participant_id text not null references participants(id),
    other_participant_id text not null references participants(id),
    reason text not null,
    status text not null default 'open' check (status in ('open', 'not_duplicate', 'duplicate')),
    reviewed_by text references users(id),
    reviewed_at text,
    created_at text not null,
    updated_at text not null
);
create index duplicate_flags_by_status on duplicate_flags(site_id, status);

create table screenings (
    id text primary key,
    site_id text not null references sites(id),
    participant_id text not null references participants(id),
    instrument_id text not null,
    instrument_version text not null,
    occasion text not null default 'screening',   -- screening, baseline, mid, end, followup, session
    cycle_id text,
    session_id text,
    answers_json text not null,                   -- {item id: value or null}
    total real,                                   -- null when too many answers are missing
    raw_total real,
    band text,
    eligible integer,                             -- 1, 0 or null (unknown); 0 when an exclusion was ticked
    cutoff integer,                               -- the eligibility cut-off used, as settings change
    missing_json text not null default '[]',
    prorated integer not null default 0,
    risk integer not null default 0,              -- a risk answer or risk observed
    risk_items_json text not null default '[]',
    risk_observed integer not null default 0,
    exclusions_json text not null default '[]',
    administered_on text not null,                -- local date
    administered_by text references users(id),
    language text,
    submission_key text not null unique,          -- one per form shown: a double submit saves once
    note text,
    created_at text not null,
    updated_at text not null
);
create index screenings_by_participant on screenings(participant_id, administered_on);

create table referrals (
    id text primary key,
    site_id text not null references sites(id),
    participant_id text not null references participants(id),
    screening_id text references screenings(id),
    reason text not null,               -- plain English summary (for analysts); triggers_json is the detail
    triggers_json text not null default '[]',  -- [{"kind": "risk_item"|"risk_observed"|"exclusion"|"manual", ...}]
    urgency text not null check (urgency in ('urgent', 'routine')),
    status text not null default 'open' check (status in ('open', 'referred', 'followed_up', 'closed')),
    referred_to text,
    note text,
    acknowledged_by text references users(id),
    acknowledged_at text,
    created_by text references users(id),
    closed_at text,
    created_at text not null,
    updated_at text not null
);
create index referrals_open_by_site on referrals(site_id, status);
create index referrals_by_participant on referrals(participant_id);

create table referral_events (
    id text primary key,
    site_id text not null references sites(id),
    referral_id text not null references referrals(id),
    status text not null,
    note text,
    by_user text references users(id),
    created_at text not null,
    updated_at text not null
);
create index referral_events_by_referral on referral_events(referral_id, created_at);

create table referral_followups (
    id text primary key,
    site_id text not null references sites(id),
    referral_id text not null references referrals(id),
    due_on text not null,
    done_on text,
    done_by text references users(id),
    note text,
    created_at text not null,
    updated_at text not null
);
create index referral_followups_due on referral_followups(site_id, done_on, due_on);
"""
