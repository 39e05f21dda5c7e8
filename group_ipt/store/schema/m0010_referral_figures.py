"""What the indicators count of each referral, stored and kept exact by triggers.

The referral figures (raised in the period and per reason, still open, overdue) were
counted from ``referrals`` on every recount of the indicators page. A referral's day is
its screening's ``administered_on``, else the day it was made (``indicators.RAISED_ON``),
and its next follow-up due is the earliest one not done (``indicators.NEXT_DUE``): at
100,000 participants that read 32,000 screenings a quarter to find 1,800 referrals, and
one screening and the follow-ups of each of 3,300 open ones, ~100 ms in all. Here each
referral's day, reasons, author, openness and next due date are one short row, read
through the two covering indexes below (~2 ms).

Derived and local like the other ``report_*`` tables (no ``id``/``created_at``: never
synced). Triggers keep each row equal to those expressions whatever writes the records
(web, API, sync, file import). Sync may write a referral before its screening or its
follow-ups, so screenings and follow-ups update the row too. Each trigger deletes then
inserts, never ``insert or replace``/``or ignore``: a trigger's conflict clause gives way
to the outer statement's (see m0007). ``tests/test_report_store.py`` checks the rows
against the expressions after every kind of write.
"""

RAISED_ON = (
    "coalesce((select s.administered_on from screenings s where s.id = r.screening_id), substr(r.created_at, 1, 10))"
)
NEXT_DUE = "(select min(f.due_on) from referral_followups f where f.referral_id = r.id and f.done_on is null)"
COLUMNS = "referral_id, site_id, raised_on, triggers_json, created_by, open, next_due_on"
VALUES = f"r.id, r.site_id, {RAISED_ON}, r.triggers_json, r.created_by, r.status != 'closed', {NEXT_DUE}"


def _put(referrals: str) -> str:
    """Statements that store again the rows of the referrals selected by ``referrals`` (alias r)."""
    return (
        f"delete from report_referrals where referral_id in (select r.id from {referrals});"
        f" insert into report_referrals ({COLUMNS}) select {VALUES} from {referrals};"
    )


SQL = f"""
create table report_referrals (
    referral_id text primary key,
    site_id text not null,
    raised_on text not null,     -- indicators.RAISED_ON
    triggers_json text not null, -- the reasons
    created_by text,             -- the facilitator filter
    open integer not null,       -- status is not 'closed'
    next_due_on text             -- indicators.NEXT_DUE
) without rowid;
-- Raised in a period, per reason: one range, no row read.
create index report_referrals_by_day on report_referrals(raised_on, site_id, triggers_json, created_by);
-- Still open at the period's end, and overdue: only the open ones are in it.
create index report_referrals_open on report_referrals(site_id, raised_on, next_due_on, created_by) where open;

insert into report_referrals ({COLUMNS}) select {VALUES} from referrals r;

create trigger report_referrals_ins after insert on referrals
begin {_put("referrals r where r.id = new.id")} end;
create trigger report_referrals_upd
    after update of id, site_id, screening_id, triggers_json, created_by, status, created_at on referrals
begin delete from report_referrals where referral_id = old.id; {_put("referrals r where r.id = new.id")} end;
create trigger report_referrals_del after delete on referrals
begin delete from report_referrals where referral_id = old.id; end;

create trigger report_referrals_screening_ins after insert on screenings
begin {_put("referrals r where r.screening_id = new.id")} end;
create trigger report_referrals_screening_upd after update of id, administered_on on screenings
begin {_put("referrals r where r.screening_id in (old.id, new.id)")} end;
create trigger report_referrals_screening_del after delete on screenings
begin {_put("referrals r where r.screening_id = old.id")} end;

create trigger report_referrals_followup_ins after insert on referral_followups
begin {_put("referrals r where r.id = new.referral_id")} end;
create trigger report_referrals_followup_upd after update of referral_id, due_on, done_on on referral_followups
begin {_put("referrals r where r.id in (old.referral_id, new.referral_id)")} end;
create trigger report_referrals_followup_del after delete on referral_followups
begin {_put("referrals r where r.id = old.referral_id")} end;

-- Made for the same count (m0009) and no longer read.
drop index if exists referrals_by_day_without_screening;
"""
