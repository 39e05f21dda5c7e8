"""group-ipt demo --scale N: a large generated programme obeys the schema and the app rules, and the app serves it."""

from __future__ import annotations

import json
from datetime import date

import pytest

from group_ipt.base import clock
from group_ipt.core import clinical, followup, participants, referrals
from group_ipt.core.participants import code_is_valid
from group_ipt.demo import scale as scalemod
from group_ipt.demo.programme import DEMO_PASSWORD
from group_ipt.store import db as dbmod
from group_ipt.store.tracking import synced_tables

from .conftest import login, make_app

PEOPLE = 300

pytestmark = pytest.mark.slow  # the big-data generator (group-ipt demo --scale), checked on a generated programme


@pytest.fixture(scope="module")
def programme(tmp_path_factory):
    """One generated programme for the whole module (the tests only read it)."""
    app = make_app(tmp_path_factory.mktemp("scale") / "data")
    db = dbmod.connect(app.config["DATABASE"])
    summary = scalemod.generate(db, app, PEOPLE, today=clock.today())
    journal_mode = db.execute("pragma journal_mode").fetchone()[0]
    db.close()
    return app, summary, journal_mode


@pytest.fixture
def app(programme):
    return programme[0]


@pytest.fixture
def generated(programme):
    return programme[1]


def count(db, sql: str, params: tuple = ()) -> int:
    return db.execute(sql, params).fetchone()[0]


def test_generated_rows_follow_the_schema_and_the_app_rules(programme, generated, app, db):
    assert programme[2] == "wal", "the database is back in WAL mode after a fast write"
    assert generated.created["participants"] == PEOPLE
    assert count(db, "select count(*) from participants where code like 'S0%'") == PEOPLE
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db.execute("pragma foreign_key_check").fetchall() == []
    tables = (
        "cycles",
        "sessions",
        "members",
        "attendance",
        "symptom_checks",
        "screenings",
        "referrals",
        "referral_followups",
        "referral_events",
        "duplicate_flags",
        "absence_followups",
        "pregroup_records",
        "inventory_people",
        "timeline_events",
        "problem_area_history",
        "goal_progress",
        "outcome_decisions",
    )
    counts = {t: count(db, f"select count(*) from {t}") for t in tables}  # noqa: S608
    assert counts == {t: generated.created[t] for t in tables}
    # Per person about as at 100,000 (8,000 cycles and 1.4 million attendance rows there).
    assert PEOPLE / 16 <= counts["cycles"] <= PEOPLE / 9, counts
    assert 10 * PEOPLE <= counts["attendance"] <= 18 * PEOPLE, counts
    assert PEOPLE * 0.8 <= counts["members"] <= PEOPLE * 1.25 and counts["symptom_checks"] > 0
    assert counts["screenings"] > 3 * PEOPLE
    assert 0.1 * PEOPLE <= counts["referrals"] <= 0.5 * PEOPLE
    assert counts["referral_followups"] >= 12 * counts["referrals"]
    assert 0 < counts["duplicate_flags"] < 0.2 * PEOPLE and 0 < counts["absence_followups"] < counts["members"]
    assert 0.1 * counts["members"] < counts["pregroup_records"] < 0.5 * counts["members"]
    assert all(counts[t] > 0 for t in tables), counts
    codes = [r[0] for r in db.execute("select code from participants where code like 'S0%'")]
    assert all(code_is_valid(c) for c in codes)
    # Occasions and statuses are those the app writes.
    occasions = {r[0] for r in db.execute("select distinct occasion from screenings")}
    assert occasions <= {"screening", "baseline", "mid", "end", "followup"} and "baseline" in occasions
    assert {r[0] for r in db.execute("select distinct status from participants")} <= {
        "eligible",
        "not_eligible",
        "enrolled",
        "completed",
        "dropped_out",
        "registered",
    }
    # A participant's status is the last of its history; enrolled means in an active cycle.
    assert (
        count(
            db,
            "select count(*) from participants p where status != (select h.status from"
            " participant_status_history h where h.participant_id = p.id"
            " order by h.created_at desc, h.rowid desc limit 1)",
        )
        == 0
    )
    assert (
        count(
            db,
            "select count(*) from participants p where (status = 'enrolled') !="
            " exists (select 1 from members m where m.participant_id = p.id and m.status = 'active')",
        )
        == 0
    )
    # Held sessions carry a version; attendance only at held sessions of the member's own cycle.
    assert count(db, "select count(*) from sessions where status != 'scheduled' and version = 0") == 0
    assert (
        count(
            db,
            "select count(*) from attendance a join sessions x on x.id = a.session_id"
            " join members m on m.id = a.member_id where x.status != 'held' or x.cycle_id != m.cycle_id",
        )
        == 0
    )
    assert (
        count(
            db,
            "select count(*) from sessions where status = 'held' and scheduled_date >= ?",
            (clock.today().isoformat(),),
        )
        == 0
    )
    with pytest.raises(ValueError):
        scalemod.generate(db, app, 10, today=date.today())  # a second programme in the same database


def test_an_error_keeps_the_sites_already_written_and_a_sound_database(tmp_path, monkeypatch):
    app = make_app(tmp_path / "data")
    db = dbmod.connect(app.config["DATABASE"])
    real_insert = scalemod._insert

    def failing_insert(db, table, records, summary, columns):
        if table == "attendance" and summary.created.get("attendance"):  # the second site
            raise OSError("disk full")
        real_insert(db, table, records, summary, columns)

    monkeypatch.setattr(scalemod, "_insert", failing_insert)
    with pytest.raises(OSError):
        scalemod.generate(db, app, PEOPLE, today=clock.today())
    assert db.execute("pragma journal_mode").fetchone()[0] == "wal"
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert {r[0][:4] for r in db.execute("select code from participants")} == {"S001"}
    assert count(db, "select count(*) from participants") == PEOPLE // 2
    db.close()


def test_every_record_is_in_the_sync_log(generated, db):
    """As if made before sync was set up: one version and one log line per record, new tables included."""
    for table in synced_tables(db):
        n = count(db, f'select count(*) from "{table}"')  # noqa: S608
        assert count(db, "select count(*) from sync_rows where table_name = ?", (table,)) == n, table
        assert count(db, "select count(*) from sync_log where table_name = ?", (table,)) == n, table


def test_no_risk_answer_without_its_referral(generated, app, db):
    """As save_screening: a PHQ-9 answering question 9 above 0 is saved with its referral, never alone."""
    phq9 = app.extensions["group_ipt_forms"].instruments["phq9"]
    risky = db.execute(
        "select id, participant_id, answers_json, risk, risk_items_json from screenings"
        " where json_extract(answers_json, '$.q9') > 0"
    ).fetchall()
    assert risky, "some screenings answer the risk item"
    assert count(db, "select count(*) from screenings where risk = 1") == len(risky)
    for screening_id, participant_id, answers_json, risk, risk_items in risky:
        referral = referrals.for_screening(db, screening_id)
        value = json.loads(answers_json)["q9"]
        assert referral is not None and referral["participant_id"] == participant_id
        assert risk == 1 and json.loads(risk_items) == ["q9"]
        assert referral["triggers"] == [{"kind": "risk_item", "instrument": "phq9", "item": "q9", "value": value}]
        assert referral["urgency"] == ("urgent" if value == max(phq9.item("q9").values) else "routine")
        assert referral["reason"] == f"phq9 question 9 (q9) answered {value}"
    # Totals are the instrument's.
    for answers_json, total, band in db.execute("select answers_json, total, band from screenings"):
        answers = json.loads(answers_json)
        assert total == sum(answers[item.id] for item in phq9.scored_items)
        assert band == phq9.band_for(int(total)).label


def test_referrals_move_forward_with_their_follow_ups(generated, db):
    kinds = {json.loads(r[0])[0]["kind"] for r in db.execute("select triggers_json from referrals")}
    assert "risk_item" in kinds and kinds <= {"risk_item", "medication_assessment", "outcome_referral"}
    statuses = dict(db.execute("select status, count(*) from referrals group by status").fetchall())
    assert statuses["closed"] > sum(n for s, n in statuses.items() if s != "closed") > 0  # most closed, some open
    site_ids = [r[0] for r in db.execute("select id from sites")]
    today = clock.today().isoformat()
    for referral in referrals.listing(db, site_ids, include_closed=True):
        steps = [e["status"] for e in referrals.events(db, referral["id"])]
        assert steps[0] == "open" and steps[-1] == referral["status"]
        assert [referrals.STATUSES.index(s) for s in steps] == sorted(referrals.STATUSES.index(s) for s in steps)
        if referral["status"] != "open":
            assert referral["acknowledged_at"] and referral["referred_to"]
        if referral["status"] == "closed":
            assert referral["closed_at"] and referral["note"]
        else:
            assert referral["next_due_on"], "an open referral always has a follow-up planned"
        planned = referrals.followups(db, referral["id"])
        assert len(planned) >= 12 and all(f["done_on"] is None or f["done_on"] <= today for f in planned)
    summary = referrals.home_summary(db, site_ids, clock.today())
    assert summary["open"]


def test_duplicate_flags_are_those_registration_raises(generated, db):
    site_ids = [r[0] for r in db.execute("select id from sites")]
    flags = participants.duplicate_flags(db, site_ids, status=None)
    assert flags and {f["status"] for f in flags} <= {"open", "not_duplicate", "duplicate"}
    assert any(f["status"] != "open" and f["reviewed_by"] and f["reviewed_at"] for f in flags)
    # Every pair registration would flag, once, on the later of the two.
    assert all(
        f["created_at"] == f["participant_created_at"] >= f["other_created_at"]
        for f in db.query(
            "select f.created_at, a.created_at as participant_created_at, b.created_at as other_created_at"
            " from duplicate_flags f join participants a on a.id = f.participant_id"
            " join participants b on b.id = f.other_participant_id"
        )
    )
    flagged = [frozenset((f["participant_id"], f["other_participant_id"])) for f in flags]
    expected = {
        frozenset((person["id"], other["id"]))
        for person in db.query("select * from participants")
        for other in participants.possible_duplicates(db, person)
    }
    assert len(flagged) == len(set(flagged)) and set(flagged) == expected


def test_cycles_close_and_members_are_followed_up_as_the_app_does(generated, app, db):
    protocols = app.extensions["group_ipt_forms"].protocols
    closed = db.execute("select id, protocol_id from cycles where status in ('closed', 'closed_early')").fetchall()
    assert closed
    for cycle_id, protocol_id in closed:
        attended = followup.attended_group_sessions(db, cycle_id)
        for member_id, status in db.execute("select id, status from members where cycle_id = ?", (cycle_id,)):
            expected = "completed" if protocols[protocol_id].is_completed(attended.get(member_id, 0)) else "dropped_out"
            assert status == expected
    # Cancelled sessions are those of a cycle closed early, each with its history line.
    assert (
        count(
            db,
            "select count(*) from sessions x join cycles c on c.id = x.cycle_id where x.status = 'cancelled'"
            " and (c.status != 'closed_early' or not exists (select 1 from session_changes g"
            " where g.session_id = x.id and g.action = 'closed_early'))",
        )
        == 0
    )
    # Some dropouts joined a later group, with the reason the app asks for.
    assert count(db, "select count(*) from members where override_reason like 'Joins again%'") > 0
    # A call or visit comes after a run of absences: never before the run began.
    for member_id, done_on in db.execute("select member_id, done_on from absence_followups"):
        absences = [
            r[0]
            for r in db.execute(
                "select x.scheduled_date from attendance a join sessions x on x.id = a.session_id"
                " where a.member_id = ? and a.status = 'absent' and x.scheduled_date < ?",
                (member_id, done_on),
            )
        ]
        assert len(absences) >= 2
    site_ids = [r[0] for r in db.execute("select id from sites")]
    followup.followups_needed(db, site_ids, protocols, today=clock.today(), due_days=7)


def test_clinical_records_belong_to_their_member(generated, db):
    assert (
        count(
            db,
            "select count(*) from pregroup_records g join members m on m.id = g.member_id"
            " join screenings s on s.id = g.screening_id where s.participant_id != m.participant_id",
        )
        == 0
    )
    assert (
        count(
            db,
            "select count(*) from goal_progress g join members m on m.id = g.member_id"
            " join sessions x on x.id = g.session_id"
            " where x.cycle_id != m.cycle_id or x.status != 'held'",
        )
        == 0
    )
    assert (
        count(
            db,
            "select count(*) from members m where exists (select 1 from problem_area_history h"
            " where h.member_id = m.id) and m.problem_area is not (select h.problem_area from"
            " problem_area_history h where h.member_id = m.id order by h.created_at desc, h.rowid desc"
            " limit 1)",
        )
        == 0
    )
    assert (
        count(
            db,
            "select count(*) from outcome_decisions o join members m on m.id = o.member_id"
            " where m.status = 'active' or (o.decision = 'refer') != (o.referral_id is not null)",
        )
        == 0
    )
    member_id = db.execute("select member_id from relapse_plans limit 1").fetchone()[0]
    record = clinical.record(db, clinical.get_member(db, member_id))
    assert record["pregroup"] and record["inventory"] and record["timeline"] and record["problem_area_history"]
    assert record["goal_progress"] and record["relapse_plan"]


def test_main_pages_answer_on_a_generated_programme(generated, app, db):
    client = app.test_client()
    assert login(client, "fac-s001-1", DEMO_PASSWORD).status_code == 302
    member = db.execute(
        "select m.participant_id, m.cycle_id from members m join cycle_facilitators f on f.cycle_id = m.cycle_id"
        " join users u on u.id = f.user_id where u.username = 'fac-s001-1' limit 1"
    ).fetchone()
    assert member, "the facilitator leads at least one cycle"
    session = db.execute("select id from sessions where cycle_id = ? order by number limit 1", (member[1],)).fetchone()
    for path in (
        "/",
        "/sessions/today",
        f"/participants/{member[0]}",
        f"/cycles/{member[1]}",
        f"/sessions/{session[0]}",
        "/participants/?q=S001",
        "/cycles/",
    ):
        response = client.get(path, follow_redirects=True)  # /sessions/today redirects
        assert response.status_code == 200, path
    coord = app.test_client()
    assert login(coord, "scale-coord", DEMO_PASSWORD).status_code == 302
    referral = db.execute("select id from referrals where status != 'closed' limit 1").fetchone()[0]
    record = db.execute("select member_id from pregroup_records limit 1").fetchone()[0]
    for path in (
        "/",
        "/reports/",
        "/cycles/",
        "/referrals/",
        f"/referrals/{referral}",
        "/participants/duplicates",
        "/cycles/followups",
        f"/members/{record}/record",
    ):
        assert coord.get(path).status_code == 200, path
    supervisor = app.test_client()
    assert login(supervisor, "scale-super", DEMO_PASSWORD).status_code == 302
    for path in ("/supervision/", f"/members/{record}/record"):
        assert supervisor.get(path).status_code == 200, path
