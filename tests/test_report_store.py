"""The stored per-cycle figures (report_store) agree with the records, and every change reaches them."""

from __future__ import annotations

import random
from datetime import date

import pytest

from group_ipt.base import clock
from group_ipt.demo import scale as scalemod
from group_ipt.reporting import indicators, report_store
from group_ipt.reporting.periods import parse_period

from .report_data import add_screening, build
from .test_indicators import HALF, TODAY, site_ids

FIELDS = ("value", "numerator", "denominator")


def assert_same(stored: list[indicators.Indicator], counted: list[indicators.Indicator]) -> None:
    """Every figure and part of the stored path equals the one counted from the records."""
    assert [i.id for i in stored] == [i.id for i in counted]
    for a, b in zip(stored, counted, strict=True):
        for name in FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None) and (x is None or x == pytest.approx(y)), (a.id, name, x, y)
        assert [(p.key, p.label, p.params) for p in a.parts] == [(p.key, p.label, p.params) for p in b.parts], a.id
        for p, q in zip(a.parts, b.parts, strict=True):
            for name in FIELDS:
                x, y = getattr(p, name), getattr(q, name)
                assert (x is None) == (y is None) and (x is None or x == pytest.approx(y)), (a.id, p.key, name)


def both(db, protocols, filters: indicators.Filters, today: date = TODAY):
    stored = indicators.Report(db, filters, protocols, today=today).indicators
    counted = indicators.Report(db, filters, protocols, today=today).indicators_from_records()
    return stored, counted


@pytest.fixture
def programme(db, protocols):
    return build(db, protocols)


def kmp(db, period=HALF, **more):
    return indicators.Filters(site_ids=site_ids(db, "KMP"), period=parse_period(period) if period else None, **more)


@pytest.mark.parametrize("period", [HALF, "2026Q1", "202603", "202604", "2026W12", None])
def test_stored_figures_equal_the_records_on_the_hand_built_programme(db, protocols, programme, period):
    assert_same(*both(db, protocols, kmp(db, period)))
    assert_same(
        *both(
            db,
            protocols,
            indicators.Filters(site_ids=site_ids(db, "KMP", "MSK"), period=parse_period(period) if period else None),
        )
    )
    for more in ({"group_type": "women"}, {"protocol_id": "who-8"}, {"protocol_id": "short-6"}):
        assert_same(*both(db, protocols, kmp(db, period, **more)))


def test_a_change_reaches_the_stored_figures(db, protocols, programme):
    before = {i.id: i for i in both(db, protocols, kmp(db))[0]}
    assert report_store.stale_count(db) == 0
    # A late end score for Carol (cycle A): the cycle is marked, recomputed, and the figure moves.
    carol = db.execute("select p.* from participants p where p.name like 'Carol%'").fetchone()
    assert carol is not None
    participant = dict(
        zip([d[0] for d in db.execute("select * from participants limit 0").description], carol, strict=True)
    )
    add_screening(db, participant, 4, "2026-04-13", occasion="end")
    assert report_store.stale_count(db) >= 1
    stored, counted = both(db, protocols, kmp(db))
    assert_same(stored, counted)
    after = {i.id: i for i in stored}
    assert after["everyone_scored"].value == before["everyone_scored"].value + 1
    assert report_store.stale_count(db) == 0

    # An attendance mark changed directly (as sync or a file import would): the rate follows.
    # Agnes attended all six group sessions of cycle A, none at a make-up.
    db.execute(
        "update attendance set status = 'absent' where id = (select a.id from attendance a"
        " join sessions x on x.id = a.session_id join members m on m.id = a.member_id"
        " join participants p on p.id = m.participant_id where p.name like 'Agnes%' and x.number = 3)"
    )
    db.conn.commit()
    stored, counted = both(db, protocols, kmp(db))
    assert_same(stored, counted)
    assert {i.id: i for i in stored}["attendance_rate"].numerator == before["attendance_rate"].numerator - 1


def test_new_rules_recompute_every_cycle(db, protocols, programme):
    report = indicators.Report(db, kmp(db), protocols, today=TODAY)
    report.indicators
    cycles = db.execute("select count(*) from cycles").fetchone()[0]
    assert report_store.refresh(db, protocols, today=TODAY, grace_days=14) == 0  # nothing changed
    assert report_store.refresh(db, protocols, today=TODAY, grace_days=21) == cycles  # another grace period
    fewer = {k: v for k, v in protocols.items() if k != "who-8"}
    assert report_store.refresh(db, fewer, today=TODAY, grace_days=21) == cycles  # another set of protocols


def test_refresh_works_in_chunks_and_forgets_deleted_cycles(db, protocols, programme):
    db.execute("insert or ignore into report_stale (cycle_id) select id from cycles")
    db.execute("insert into report_stale (cycle_id) values ('no-such-cycle')")
    db.conn.commit()
    assert report_store.refresh(db, protocols, today=TODAY, grace_days=14, chunk=1) == 4
    assert report_store.stale_count(db) == 0
    assert db.execute("select count(*) from report_cycles").fetchone()[0] == 3
    assert_same(*both(db, protocols, kmp(db)))


def test_stored_figures_equal_the_records_on_a_generated_programme(app, db, protocols):
    scalemod.generate(db, app, 400, today=clock.today())
    sites = tuple(r[0] for r in db.execute("select id from sites"))
    facilitator = db.execute("select user_id from cycle_facilitators limit 1").fetchone()[0]
    rng = random.Random(7)
    today = clock.today()
    periods = [None, str(today.year), f"{today.year}Q{(today.month - 1) // 3 + 1}", today.strftime("%Y%m")]
    for period in periods:
        for more in ({}, {"protocol_id": "strongminds-12"}, {"facilitator_id": facilitator}):
            chosen = tuple(rng.sample(sites, k=rng.randint(1, len(sites))))
            filters = indicators.Filters(site_ids=chosen, period=parse_period(period) if period else None, **more)
            stored, counted = both(db, protocols, filters, today)
            assert_same(stored, counted)
    everything = {i.id: i for i in both(db, protocols, indicators.Filters(site_ids=sites), today)[0]}
    assert everything["members_ended"].value > 0 and everything["attendance_rate"].denominator > 0


def test_the_score_chart_goes_per_site_when_cycles_are_many(app, db, protocols, monkeypatch):
    from group_ipt.demo.programme import DEMO_PASSWORD
    from group_ipt.web.views import reports as views

    from .conftest import login

    scalemod.generate(db, app, 400, today=clock.today())
    client = app.test_client()
    assert login(client, "scale-coord", DEMO_PASSWORD).status_code == 302
    period = f"?period={clock.today().year}"
    assert "Mean PHQ-9 score per cycle" in client.get("/reports/" + period).get_data(as_text=True)
    monkeypatch.setattr(views, "CHART_CYCLES", 2)
    page = client.get("/reports/" + period).get_data(as_text=True)
    assert "Mean PHQ-9 score per site" in page and "Mean PHQ-9 score per cycle" not in page
    site = db.execute(
        "select s.code from report_outcomes o join sites s on s.id = o.site_id where o.scored > 0"
        " and o.closed_on like ? group by s.code order by count(distinct o.cycle_id) desc limit 1",
        (f"{clock.today().year}%",),
    ).fetchone()[0]
    page = client.get(f"/reports/{period}&site={site}").get_data(as_text=True)
    assert "Mean PHQ-9 score of the 2 latest cycles" in page
    # Per site, the means weigh every member alike (not a mean of the cycles' means).
    report = indicators.Report(
        db,
        indicators.Filters(site_ids=tuple(r[0] for r in db.execute("select id from sites"))),
        protocols,
        today=clock.today(),
    )
    cycles = report.score_change_by_cycle()
    sites = report.score_change_by_site()
    assert sum(c["members"] for c in cycles) == sum(s["members"] for s in sites)
    assert sum(c["baseline"] * c["members"] for c in cycles) == pytest.approx(
        sum(s["baseline"] * s["members"] for s in sites)
    )


def test_reports_refresh_command(runner):
    pw = "a-long-pass-phrase"
    assert runner.invoke(["init", "--admin", "boss"], input=f"{pw}\n{pw}\n").exit_code == 0
    assert runner.invoke(["demo"]).exit_code == 0
    first = runner.invoke(["reports", "refresh"])
    assert first.exit_code == 0, first.output
    assert "Recomputed the figures of 3 cycle(s)" in first.output  # the demo's three cycles, new
    assert "of 0 cycle(s)" in runner.invoke(["reports", "refresh"]).output  # nothing changed since
    assert "of 3 cycle(s)" in runner.invoke(["reports", "refresh", "--all"]).output


def test_background_refresh_keeps_the_figures_fresh(app, db, protocols, programme):
    import time

    db.execute("insert or ignore into report_stale (cycle_id) select id from cycles")
    db.conn.commit()
    background = report_store.start_background_refresh(app, 0.05)
    assert background is not None and background.thread.daemon
    try:
        deadline = time.monotonic() + 20
        while report_store.stale_count(db) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert report_store.stale_count(db) == 0
    finally:
        background.stop()
    assert not background.thread.is_alive()
    assert report_store.start_background_refresh(app, 0) is None  # REPORT_REFRESH_SECONDS = 0: off


def test_figures_are_remembered_until_the_data_changes(db, protocols, programme, monkeypatch):
    first = indicators.Report(db, kmp(db), protocols, today=TODAY).indicators
    counted = []
    real = indicators.Report._stored_figures

    def counting(self):
        counted.append(1)
        return real(self)

    monkeypatch.setattr(indicators.Report, "_stored_figures", counting)
    assert indicators.Report(db, kmp(db), protocols, today=TODAY).indicators == first  # remembered
    assert counted == []
    indicators.Report(db, kmp(db, "2026Q1"), protocols, today=TODAY).indicators  # other filters
    indicators.Report(db, kmp(db), protocols, today=date(2026, 4, 21)).indicators  # another day
    assert len(counted) == 2
    db.execute("update attendance set updated_at = updated_at where rowid = (select min(rowid) from attendance)")
    db.conn.commit()
    indicators.Report(db, kmp(db), protocols, today=TODAY).indicators  # a record changed
    assert len(counted) == 3


def test_a_restore_gets_a_new_data_version(app, db, protocols, programme, tmp_path):
    from group_ipt.store import backup

    copy = tmp_path / "copy.db"
    backup.backup(app.config["DATABASE"], copy)
    before = report_store.data_version(db)
    backup.restore(copy, app.config["DATABASE"], force=True)
    assert report_store.data_version(db) != before  # same log number, but another epoch


def test_referrals_in_a_period_are_all_found_through_the_indexes(app, db, protocols):
    scalemod.generate(db, app, 400, today=clock.today())
    sites = tuple(r[0] for r in db.execute("select id from sites"))
    assert db.execute("select count(*) from referrals where screening_id is null").fetchone()[0] > 0
    assert db.execute("select count(*) from referrals where screening_id is not null").fetchone()[0] > 0
    year = clock.today().year
    for period in (str(year), str(year - 1), f"{year}Q{(clock.today().month - 1) // 3 + 1}", None):
        bounds = parse_period(period).bounds() if period else ("0000", "9999")
        plain = db.execute(
            f"select count(*) from referrals r left join screenings s on s.id = r.screening_id"
            f" where {indicators.RAISED_ON} between ? and ?",
            bounds,
        ).fetchone()[0]
        still_open = db.execute(
            f"select count(*) from referrals r left join screenings s on s.id = r.screening_id"
            f" where {indicators.RAISED_ON} <= ? and r.status != 'closed'",
            (bounds[1],),
        ).fetchone()[0]
        found = {
            i.id: i
            for i in indicators.Report(
                db,
                indicators.Filters(site_ids=sites, period=parse_period(period) if period else None),
                protocols,
                today=clock.today(),
            ).indicators
        }
        assert (found["referrals"].value, found["referrals_open"].value) == (plain, still_open), period


def expected_referral_rows(db) -> list[tuple]:
    """Each referral's stored row worked out from the records (migration 0010's definition)."""
    return db.execute(
        f"select r.id, r.site_id, {indicators.RAISED_ON}, r.triggers_json, r.created_by, r.status != 'closed',"
        f" {indicators.NEXT_DUE} from referrals r left join screenings s on s.id = r.screening_id"
        " order by r.id"
    ).fetchall()


def stored_referral_rows(db) -> list[tuple]:
    return db.execute(
        "select referral_id, site_id, raised_on, triggers_json, created_by, open, next_due_on"
        " from report_referrals order by referral_id"
    ).fetchall()


def test_stored_referral_rows_follow_every_kind_of_write(app, db, protocols):
    scalemod.generate(db, app, 300, today=clock.today())
    assert stored_referral_rows(db) == expected_referral_rows(db) and stored_referral_rows(db)
    rng = random.Random(7)
    referral_ids = [r[0] for r in db.execute("select id from referrals order by id")]

    def pick() -> str:
        return rng.choice(referral_ids)

    def screening_of(referral_id: str) -> str | None:
        return db.execute("select screening_id from referrals where id = ?", (referral_id,)).fetchone()[0]

    writes = [
        # a follow-up done, a new one, one moved, one deleted
        lambda: db.execute(
            "update referral_followups set done_on = '2026-01-02' where id ="
            " (select id from referral_followups where done_on is null limit 1)"
        ),
        lambda: db.execute(
            "insert into referral_followups (id, site_id, referral_id, due_on, created_at, updated_at)"
            " select 'fu-new-' || abs(random()), site_id, id, '2020-01-01', created_at, created_at"
            " from referrals where id = ?",
            (pick(),),
        ),
        lambda: db.execute(
            "update referral_followups set due_on = '2019-05-05' where id ="
            " (select id from referral_followups where done_on is null order by id desc limit 1)"
        ),
        lambda: db.execute("delete from referral_followups where id = (select min(id) from referral_followups)"),
        # the referral closed, reopened, its reasons and author changed
        lambda: db.execute("update referrals set status = 'closed' where id = ?", (pick(),)),
        lambda: db.execute(
            "update referrals set status = 'open', triggers_json = '[{\"kind\": \"manual\"}]',"
            " created_by = null where id = ?",
            (pick(),),
        ),
        # its screening's day changed, the screening removed (sync may do both), a referral
        # written before its screening (foreign keys are off while sync applies a batch)
        lambda: db.execute(
            "update screenings set administered_on = '2025-02-03' where id = ?", (screening_of(pick()),)
        ),
        lambda: db.execute("update referrals set screening_id = null where id = ?", (pick(),)),
        # an upsert and a replace of the same referral, as sync and file imports write
        lambda: db.execute(
            "insert into referrals select * from referrals where id = ? on conflict (id) do update"
            " set created_at = '2024-12-31T10:00:00+00:00'",
            (pick(),),
        ),
        lambda: db.execute("insert or replace into referrals select * from referrals where id = ?", (pick(),)),
    ]
    for i in range(60):
        writes[i % len(writes)]()
        assert stored_referral_rows(db) == expected_referral_rows(db), i
    db.conn.commit()

    # Foreign keys off, as sync applies a batch: a screening deleted, then written again after its referral.
    moved = next(r for r in referral_ids if screening_of(r) is not None)
    # (given on another day than the referral was made, so the two days differ)
    screening = db.execute("select * from screenings where id = ?", (screening_of(moved),)).fetchone()
    columns = [r[1] for r in db.execute("pragma table_info(screenings)")]
    screening = tuple("2021-06-01" if name == "administered_on" else v for name, v in zip(columns, screening))
    db.execute("pragma foreign_keys = off")
    try:
        db.execute("delete from referral_followups where referral_id = ?", (moved,))
        db.execute("update screenings set administered_on = '2021-06-02' where id = ?", (screening[0],))
        db.execute("delete from screenings where id = ?", (screening[0],))
        assert stored_referral_rows(db) == expected_referral_rows(db)
        db.execute(f"insert into screenings values ({','.join('?' * len(screening))})", screening)
        assert stored_referral_rows(db) == expected_referral_rows(db)
        db.execute("delete from referrals where id = ?", (moved,))
        assert stored_referral_rows(db) == expected_referral_rows(db)
        assert moved not in {r[0] for r in stored_referral_rows(db)}
    finally:
        db.conn.commit()
        db.execute("pragma foreign_keys = on")


def test_after_a_change_only_its_site_is_counted_again(db, protocols, programme):
    both_sites = indicators.Filters(site_ids=site_ids(db, "KMP", "MSK"), period=parse_period(HALF))
    first = indicators.Report(db, both_sites, protocols, today=TODAY).indicators
    read: list[str] = []
    db.conn.set_trace_callback(lambda sql: read.append(sql) if "sum(a.attended)" in sql else None)
    try:
        assert indicators.Report(db, both_sites, protocols, today=TODAY).indicators == first  # nothing changed
        assert read == []
        # An attendance mark in a KMP cycle: the next view recounts KMP's stored rows only.
        db.execute(
            "update attendance set status = 'absent' where id = (select a.id from attendance a"
            " join sessions x on x.id = a.session_id join cycles c on c.id = x.cycle_id"
            " join sites s on s.id = c.site_id where s.code = 'KMP' and a.status = 'present' limit 1)"
        )
        db.conn.commit()
        stored = indicators.Report(db, both_sites, protocols, today=TODAY).indicators
        kmp_id = site_ids(db, "KMP")[0]
        assert len(read) == 1 and kmp_id in read[0] and site_ids(db, "MSK")[0] not in read[0]
    finally:
        db.conn.set_trace_callback(None)
    counted = indicators.Report(db, both_sites, protocols, today=TODAY).indicators_from_records()
    assert_same(stored, counted)
    assert {i.id: i for i in stored}["attendance_rate"].numerator == {i.id: i for i in first}[
        "attendance_rate"
    ].numerator - 1
    # MSK's cycle moved to KMP: both sites are counted again (MSK for the rows it lost).
    msk = indicators.Filters(site_ids=site_ids(db, "MSK"), period=parse_period(HALF))
    before = {i.id: i for i in indicators.Report(db, msk, protocols, today=TODAY).indicators}
    assert before["enrolled"].value > 0
    db.execute("update cycles set site_id = ? where site_id = ?", (kmp_id, site_ids(db, "MSK")[0]))
    db.conn.commit()
    for filters in (both_sites, kmp(db), msk):
        assert_same(*both(db, protocols, filters))
    assert {i.id: i for i in indicators.Report(db, msk, protocols, today=TODAY).indicators}["enrolled"].value == 0


def test_screening_and_referral_figures_are_counted_again_only_when_theirs_change(db, protocols, programme):
    filters = kmp(db)
    read: list[str] = []
    db.conn.set_trace_callback(read.append)

    def counted(table_sql: str) -> int:
        return sum(1 for sql in read if table_sql in sql)

    try:
        indicators.Report(db, filters, protocols, today=TODAY).indicators
        read.clear()
        db.execute("update attendance set updated_at = updated_at where rowid = (select min(rowid) from attendance)")
        db.conn.commit()
        indicators.Report(db, filters, protocols, today=TODAY).indicators  # a session saved: not these
        assert counted("from screenings s where s.occasion") == 0 and counted("from report_referrals d indexed") == 0
        # Someone screened (again) in the period: the screening figures are counted again.
        before = {i.id: i for i in indicators.Report(db, filters, protocols, today=TODAY).indicators}
        someone = next(db.query("select * from participants where site_id = ? limit 1", (site_ids(db, "KMP")[0],)))
        add_screening(db, someone, 14, "2026-04-01", eligible=1)
        stored, records = both(db, protocols, filters)
        assert counted("from screenings s where s.occasion") == 1
        assert_same(stored, records)
        # A referral closed: the referral figures are counted again.
        db.execute(
            "update referrals set status = 'closed' where status != 'closed' and rowid ="
            " (select min(rowid) from referrals where status != 'closed')"
        )
        db.conn.commit()
        read.clear()
        stored, records = both(db, protocols, filters)
        assert counted("from report_referrals d indexed") == 2  # raised, and open
        assert_same(stored, records)
        assert {i.id: i for i in stored}["referrals_open"].value == before["referrals_open"].value - 1
    finally:
        db.conn.set_trace_callback(None)
