"""The safety loop at its edges: risk questions not asked, referral outcomes, risk seen in a session.

- ``risk_checks``: a screening whose risk question (PHQ-9 question 9) was left blank.
  The person's risk is unknown, so the check stays with the safety alerts until the
  question is asked (``answered``, by a new screening, ``answer_screening_id``) or a
  coordinator or facilitator records why it cannot be (``acknowledged``, ``reason``).
  One per screening. Synced like every table with id/site_id/created_at/updated_at.
- ``referrals.outcome``: how a referral ended (``referrals.OUTCOMES``); closing needs one.
- ``referrals.session_id``: the session where a facilitator marked "risk noticed", so a
  second save of the same sheet does not raise a second referral.
- ``referrals.escalated``: urgency raised by hand (the facilitator's judgement).
"""

SQL = """
create table risk_checks (
    id text primary key,
    site_id text not null references sites(id),
    participant_id text not null references participants(id),
    screening_id text not null unique references screenings(id),
    instrument_id text not null,
    items_json text not null,             -- the risk items left blank, e.g. ["q9"]
    status text not null default 'open' check (status in ('open', 'answered', 'acknowledged')),
    answer_screening_id text references screenings(id),
    reason text,                          -- why it could not be asked (acknowledged)
    resolved_by text references users(id),
    resolved_at text,
    created_at text not null,
    updated_at text not null
);
-- The home page and the supervisor's list read the open ones of a site.
create index risk_checks_open on risk_checks(site_id, status);
create index risk_checks_by_participant on risk_checks(participant_id);

alter table referrals add column outcome text check (outcome is null or outcome in
    ('seen', 'admitted', 'declined', 'unreachable', 'moved', 'died', 'other'));
alter table referrals add column session_id text references sessions(id);
alter table referrals add column escalated integer not null default 0 check (escalated in (0, 1));
create index referrals_by_session on referrals(session_id) where session_id is not null;
"""
