"""A generation number per site, raised whenever a refresh stores that site's figures again;
counts of changes to screenings and to the stored referral rows.

The indicators page sums the stored ``report_*`` rows site by site and a server keeps
each site's sums under its generation (``indicators.Report._summed``): after a change to
one cycle, the next view recounts that cycle's site only. ``report_store._store`` raises
the number for every site whose stored rows it replaces or removes, in the same
transaction. A site missing here is at generation 0. Derived and local, never synced.

Every database also gets its ``epoch`` here (before, only a restore wrote one): the
remembered figures are keyed by the file's path, and a database made again at the same
path starts its generations and change log from the beginning too.
"""

COUNTERS = "\n".join(
    f"create trigger report_changes_{name}_{event[:3]} after {event} on {table}"
    f" begin update report_meta set value = value + 1 where key = 'changes:{name}'; end;"
    for table, name in (("screenings", "screenings"), ("report_referrals", "referrals"))
    for event in ("insert", "update", "delete")
)

SQL = f"""
create table report_sites (
    site_id text primary key,
    generation integer not null
) without rowid;
-- The stored rows of some sites over a period (indicators.Report._summed reads the sites
-- whose figures changed): covering, so no row of the table is read.
create index report_cycles_by_site on report_cycles(site_id, first_held_on, closed_on, status, protocol_id,
    group_type);
create index report_enrolment_by_site on report_enrolment(site_id, enrolled_on, members, protocol_id, group_type);
create index report_attendance_by_site on report_attendance(site_id, session_date, session_number, attended, marked,
    protocol_id, group_type);
create index report_outcomes_by_site on report_outcomes(site_id, closed_on);
create index report_fidelity_by_site on report_fidelity(site_id, session_date, checklists, items_done,
    items_answered, protocol_id, group_type);
-- How often screenings and the stored referral rows changed: the screening and referral
-- figures are remembered until then (indicators.Report._unless_changed).
insert into report_meta (key, value) values ('changes:screenings', 0), ('changes:referrals', 0);
{COUNTERS}
-- The open referrals (migration 0010) by an index holding "open" itself: as a partial
-- index "where open" SQLite still read each row for that column (9 ms instead of 1).
drop index report_referrals_open;
create index report_referrals_open on report_referrals(open, site_id, raised_on, next_due_on, created_by);
insert into report_meta (key, value) select 'epoch', lower(hex(randomblob(8)))
    where not exists (select 1 from report_meta where key = 'epoch');
"""
