"""Sync obeys the record rules: natural keys merge, parents come first, the safety rules hold."""

from __future__ import annotations

import pytest

from group_ipt.store.db import new_id, row, rows, utcnow, write
from group_ipt.sync import client, engine, review
from group_ipt.sync.engine import SyncRejected

from .syncing import CYCLE_ROW
from .syncing import sync_laptop as laptop


def insert(db, table: str, *, gate: bool = True, **data) -> str:
    """Write one row on a laptop as its software would (the triggers log it for sync).

    ``gate=False``: as older or broken software would, without today's commit checks.
    """
    site = row(db, "select id from sites limit 1")["id"]
    now = utcnow()
    data = {"id": new_id(), "site_id": site, "created_at": now, "updated_at": now, **data}
    with write(db, checks=gate):
        db[table].insert(data)
    return data["id"]


def a_group(db) -> dict:
    """A participant enrolled in a cycle with one session, written on a laptop."""
    user = row(db, "select id from users where username = 'amina'")["id"]
    p = insert(db, "participants", code="KMP-0001-A", name="Achen", sex="female", village="Kisenyi")
    c = insert(
        db,
        "cycles",
        code="KMP-C001",
        **CYCLE_ROW,
        created_by=user,
    )
    s = insert(
        db,
        "sessions",
        cycle_id=c,
        number=1,
        kind="group",
        phase="initial",
        scheduled_date="2026-09-29",
        start_time="10:00",
        minutes=90,
        status="scheduled",
        version=0,
    )
    m = insert(db, "members", cycle_id=c, participant_id=p, status="active", enrolled_on="2026-09-20", created_by=user)
    return {"participant": p, "cycle": c, "session": s, "member": m, "user": user}


def fk_clean(*dbs) -> bool:
    return all(not list(d.query("pragma foreign_key_check")) for d in dbs)


def device(cdb, name: str) -> dict:
    return row(cdb, "select * from sync_devices where name = ?", (name,))


def test_attendance_marked_on_two_laptops_is_one_row_everywhere(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    g = a_group(a)
    client.sync(a, ta)
    client.sync(b, tb)
    first = insert(a, "attendance", session_id=g["session"], member_id=g["member"], status="present")
    with write(b):  # b corrects it later (a co-facilitator's sheet)
        b.execute("update sync_clock set wall = wall + 60000")
    insert(b, "attendance", session_id=g["session"], member_id=g["member"], status="absent")
    client.sync(a, ta)
    summary = client.sync(b, tb)
    assert summary["push"]["quarantined"] == 0
    client.sync(a, ta)
    for db in (cdb, a, b):
        assert [(r["id"], r["status"]) for r in rows(db, "select id, status from attendance")] == [(first, "absent")]
    assert fk_clean(cdb, a, b)
    [conflict] = review.list_conflicts(cdb, None)  # both values are kept for the coordinator
    assert (conflict["winner"]["status"], conflict["loser"]["status"]) == ("absent", "present")
    assert review.list_quarantine(cdb, None) == []


def test_a_member_enrolled_on_two_laptops_is_one_member_and_its_marks_follow(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    g = a_group(a)
    with write(a):
        a.execute("delete from members")
    client.sync(a, ta)
    client.sync(b, tb)
    user = g["user"]
    kept = insert(
        a,
        "members",
        cycle_id=g["cycle"],
        participant_id=g["participant"],
        status="active",
        enrolled_on="2026-09-20",
        created_by=user,
    )
    client.sync(a, ta)
    twin = insert(
        b,
        "members",
        cycle_id=g["cycle"],
        participant_id=g["participant"],
        status="active",
        enrolled_on="2026-09-21",
        created_by=user,
    )
    insert(b, "attendance", session_id=g["session"], member_id=twin, status="present")
    assert client.sync(b, tb)["push"]["quarantined"] == 0
    client.sync(a, ta)
    client.sync(b, tb)
    for db in (cdb, a, b):
        assert [r["id"] for r in rows(db, "select id from members")] == [kept]
        assert [r["member_id"] for r in rows(db, "select member_id from attendance")] == [kept]
    assert fk_clean(cdb, a, b)


def test_a_mark_sent_in_a_later_batch_than_its_merged_member_lands_on_the_joined_member(tmp_path, centre, cdb):
    """The member made twice was merged in one push; the laptop, not having pulled yet, marks
    the twin's attendance and pushes again: the centre's merged ids (sync_aliases) take the
    mark to the joined member, in that later batch."""
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    g = a_group(a)
    with write(a):
        a.execute("delete from members")
    client.sync(a, ta)
    client.sync(b, tb)
    user = g["user"]
    member = {"cycle_id": g["cycle"], "participant_id": g["participant"], "status": "active", "created_by": user}
    kept = insert(a, "members", enrolled_on="2026-09-20", **member)
    client.sync(a, ta)
    twin = insert(b, "members", enrolled_on="2026-09-21", **member)
    assert client.push(b, tb)["quarantined"] == 0
    assert row(cdb, "select canonical_id from sync_aliases where record_id = ?", (twin,))["canonical_id"] == kept
    insert(b, "attendance", session_id=g["session"], member_id=twin, status="present")
    assert client.push(b, tb)["quarantined"] == 0
    client.sync(a, ta)
    client.sync(b, tb)
    for db in (cdb, a, b):
        assert [r["id"] for r in rows(db, "select id from members")] == [kept]
        assert [r["member_id"] for r in rows(db, "select member_id from attendance")] == [kept]
    assert fk_clean(cdb, a, b)


def test_a_cycle_code_made_on_two_laptops_is_renamed_and_its_sessions_follow(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    a_group(a)
    ga = row(a, "select code from cycles")["code"]
    g = a_group(b)  # b made its own KMP-C001 and KMP-0001-A offline
    client.sync(a, ta)
    assert client.sync(b, tb)["push"]["quarantined"] == 0
    client.sync(a, ta)
    codes = sorted(r["code"] for r in rows(cdb, "select code from cycles"))
    assert codes == [ga, "KMP-C010"]  # renamed within the centre's own block (0)
    assert row(b, "select code from cycles where id = ?", (g["cycle"],))["code"] == "KMP-C010"
    assert row(cdb, "select count(*) as n from sessions")["n"] == 2
    assert len({r["code"] for r in rows(cdb, "select code from participants")}) == 2
    assert fk_clean(cdb, a, b)


def test_a_record_whose_parent_is_missing_waits_and_goes_in_with_it(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    g = a_group(a)
    records = engine.read_changes(
        a, [(r["table_name"], r["record_id"]) for r in rows(a, "select distinct table_name, record_id from sync_log")]
    )
    children = [r for r in records if r["t"] in ("sessions", "members")]
    parents = [r for r in records if r["t"] not in ("sessions", "members")]
    with engine.applying(cdb):
        counts = engine.apply_records(cdb, children, origin="x")
    assert counts == {**counts, "applied": 0, "quarantined": 2}
    waiting = review.list_quarantine(cdb, None)
    assert {w["waiting_for"] for w in waiting} <= {f"cycles:{g['cycle']}", f"participants:{g['participant']}"}
    assert all("record the central server does not have" in w["error"] for w in waiting)
    with engine.applying(cdb):
        counts = engine.apply_records(cdb, parents, origin="x")
    assert counts["released"] == 2 and review.list_quarantine(cdb, None) == []
    assert row(cdb, "select count(*) as n from members")["n"] == 1
    assert fk_clean(cdb)


def test_a_row_of_another_site_or_pointing_at_one_is_refused(tmp_path, centre, cdb):
    m, tm = laptop(tmp_path, centre, "lap-m", site="MSK")
    a, ta = laptop(tmp_path, centre, "lap-a")
    g = a_group(a)
    client.sync(a, ta)
    # An MSK laptop makes a member of KMP's cycle (its own site id, KMP's cycle id).
    site = row(m, "select id from sites")["id"]
    p = insert(m, "participants", code="MSK-0001-A", name="N", sex="female", village="V")
    m.execute("pragma foreign_keys = off")  # the laptop does not even have that cycle
    insert(m, "members", cycle_id=g["cycle"], participant_id=p, status="active", enrolled_on="2026-09-20")
    client.sync(m, tm)
    [item] = review.list_quarantine(cdb, None)
    assert item["table_name"] == "members" and item["site_id"] == site
    assert "refers to a cycle record of another site" in item["error"]
    assert row(cdb, "select count(*) as n from members")["n"] == 1
    assert fk_clean(cdb)


def screening_rows(db, participant: str, *, risk: int) -> dict:
    sid = insert(
        db,
        "screenings",
        participant_id=participant,
        instrument_id="phq9",
        instrument_version="1",
        answers_json='{"q1": 3, "q2": 3, "q3": 3, "q4": 3, "q5": 3, "q6": 3, "q7": 3, "q8": 3, "q9": 3}',
        risk=risk,
        administered_on="2026-10-01",
        submission_key=new_id(),
    )
    return sid


def test_a_risk_screening_without_its_referral_waits_for_it(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    g = a_group(a)
    client.sync(a, ta)
    # Old or broken software: item 9 answered 3, the risk flag cleared, no referral.
    sid = screening_rows(a, g["participant"], risk=0)
    assert client.sync(a, ta)["push"]["quarantined"] == 1
    assert row(cdb, "select 1 as x from screenings where id = ?", (sid,)) is None
    [item] = review.list_quarantine(cdb, None)
    assert item["waiting_for"] == f"referrals:screening:{sid}"
    assert "arrived without its safety referral" in item["error"]
    insert(
        a,
        "referrals",
        participant_id=g["participant"],
        screening_id=sid,
        reason="q9 answered 3",
        triggers_json="[]",
        urgency="urgent",
        status="open",
    )
    client.sync(a, ta)
    assert row(cdb, "select risk from screenings where id = ?", (sid,)) is not None
    assert review.list_quarantine(cdb, None) == []


def test_a_referral_is_never_deleted_nor_closed_without_a_note_by_a_laptop(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    g = a_group(a)
    ref = insert(
        a,
        "referrals",
        participant_id=g["participant"],
        reason="seen at home",
        triggers_json="[]",
        urgency="urgent",
        status="open",
    )
    client.sync(a, ta)
    # Software of today refuses both writes on the laptop itself (test_write_gate.py); a laptop
    # with older or broken software has no such gate (checks=False), and the centre must hold.
    with write(a, checks=False):
        a.execute("update referrals set status = 'closed', note = null where id = ?", (ref,))
    assert client.sync(a, ta)["push"]["quarantined"] == 1
    with write(a, checks=False):
        a.execute("delete from referrals where id = ?", (ref,))
    assert client.sync(a, ta)["push"]["quarantined"] == 1
    assert row(cdb, "select status from referrals where id = ?", (ref,))["status"] == "open"
    errors = [q["error"] for q in review.list_quarantine(cdb, None)]
    assert any("Referrals are never deleted" in e for e in errors)
    assert any("closed without what closing needs" in e for e in errors)


def test_a_batch_stamped_days_ahead_is_refused_and_nothing_stored(tmp_path, centre, cdb):
    a, _ta = laptop(tmp_path, centre, "lap-a")
    with write(a):
        a.execute("update sync_clock set wall = wall + 2 * 86400000")
    pid = insert(a, "participants", code="KMP-0002-B", name="N", sex="female", village="V")
    [rec] = engine.read_changes(a, [("participants", pid)])
    wall = int(row(cdb, "select wall from sync_clock")["wall"])
    with pytest.raises(SyncRejected, match="lap-a stamped its changes .* more than a day ahead"):
        engine.apply_batch(cdb, device(cdb, "lap-a"), {"batch_no": 1, "records": [rec]}, send_names=True)
    assert row(cdb, "select 1 as x from participants where id = ?", (pid,)) is None
    assert int(row(cdb, "select wall from sync_clock")["wall"]) == wall


def test_a_laptop_whose_date_was_set_right_stamps_its_unsent_changes_again(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    with write(a):  # the date was days ahead while these were made, then set right
        a.execute("update sync_clock set wall = wall + 3 * 86400000")
    first = insert(a, "participants", code="KMP-0002-B", name="N", sex="female", village="V")
    engine.cut_batch(a)  # one already cut into a batch, one still in the log
    second = insert(a, "participants", code="KMP-0003-C", name="M", sex="male", village="V")
    assert client.push(a, ta)["records"] == 2
    assert row(cdb, "select count(*) as n from participants where id in (?, ?)", (first, second))["n"] == 2
    now = engine.tracking.now_ms()
    for db in (a, cdb):
        assert int(row(db, "select wall from sync_clock")["wall"]) < now + 60_000


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("village", "x" * 121, "longer than 120 characters"),
        ("sex", None, "The sex of this participant record is empty"),
        ("birth_year", "nineteen", "should be a whole number"),
    ],
)
def test_a_malformed_row_is_refused_with_its_reason(tmp_path, centre, cdb, field, value, message):
    a, _ta = laptop(tmp_path, centre, "lap-a")
    pid = insert(a, "participants", code="KMP-0003-C", name="N", sex="female", village="V")
    [rec] = engine.read_changes(a, [("participants", pid)])
    rec["data"][field] = value
    ack = engine.apply_batch(cdb, device(cdb, "lap-a"), {"batch_no": 1, "records": [rec]}, send_names=True)
    assert ack["quarantined"] == 1 and ack["applied"] == 0
    [item] = review.list_quarantine(cdb, None)
    assert message in item["error"]
    assert row(cdb, "select 1 as x from participants where id = ?", (pid,)) is None


def test_a_member_the_database_refuses_takes_its_marks_into_quarantine_with_it(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    g = a_group(a)
    client.sync(a, ta)
    client.sync(b, tb)
    # b enrols the same person in a second cycle offline (a person is active in one cycle only)
    other = insert(
        b,
        "cycles",
        code="KMP-C009",
        **{**CYCLE_ROW, "weekday": 2, "first_date": "2026-09-23"},
    )
    session = insert(
        b,
        "sessions",
        cycle_id=other,
        number=1,
        kind="group",
        phase="initial",
        scheduled_date="2026-09-30",
        start_time="10:00",
        minutes=90,
        status="scheduled",
        version=0,
    )
    with write(b):
        b.execute("update members set status = 'withdrawn' where id = ?", (g["member"],))
    client.sync(b, tb)  # (b's own withdrawal goes first; now a re-activates it)
    with write(a):
        a.execute("update members set status = 'active', updated_at = 'x' where id = ?", (g["member"],))
    client.sync(a, ta)
    twin = insert(
        b, "members", cycle_id=other, participant_id=g["participant"], status="active", enrolled_on="2026-09-21"
    )
    mark = insert(b, "attendance", session_id=session, member_id=twin, status="present")
    summary = client.push(b, tb)
    assert summary["quarantined"] == 2
    waiting = {q["record_id"]: q for q in review.list_quarantine(cdb, None)}
    assert "already an active member of another cycle" in waiting[twin]["error"]
    assert waiting[mark]["waiting_for"] == f"members:{twin}"
    assert row(cdb, "select 1 as x from attendance where id = ?", (mark,)) is None
    assert fk_clean(cdb)


def test_a_history_is_in_the_order_changes_were_made_whatever_the_laptops_clocks(tmp_path, centre, cdb):
    from group_ipt.core import participants

    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = insert(a, "participants", code="KMP-0001-A", name="N", sex="female", village="V")
    with write(a):  # a's clock is 20 hours ahead: its wall clock says tomorrow
        a.execute("update sync_clock set wall = wall + 20 * 3600000")
    insert(
        a, "participant_status_history", participant_id=pid, status="eligible", created_at="2099-01-01T00:00:00+00:00"
    )
    client.sync(a, ta)
    client.sync(b, tb)
    insert(b, "participant_status_history", participant_id=pid, status="enrolled")  # made after seeing a's
    client.sync(b, tb)
    client.sync(a, ta)
    for db in (cdb, a, b):
        assert [h["status"] for h in participants.status_history(db, pid)] == ["eligible", "enrolled"]


def test_the_sync_page_says_truthfully_which_version_is_in_use_and_why(tmp_path, centre, cdb):
    from .conftest import login

    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = insert(a, "participants", code="KMP-0001-A", name="N", sex="female", village="V")
    client.sync(a, ta)
    client.sync(b, tb)
    with write(a):  # a is 20 hours ahead: its edit, made first, wins
        a.execute("update sync_clock set wall = wall + 20 * 3600000")
        a.execute("update participants set village = 'from-a' where id = ?", (pid,))
    client.sync(a, ta)
    with write(b):
        b.execute("update participants set village = 'from-b' where id = ?", (pid,))
    client.sync(b, tb)
    web = centre.test_client()
    login(web, "coord")
    html = web.get("/sync/").get_data(as_text=True)
    assert "The later one is in use" not in html
    assert "sent by lap-b" in html
    assert "had its clock ahead, so it may not be the later change" in html
    # A reason kept as a message is shown in the reader's language.
    insert(b, "participants", gate=False, code="KMP-0002-B", name="M", sex="female", village="x" * 200)
    client.sync(b, tb)
    with write(cdb):
        cdb.execute("update users set language = 'fr' where username = 'coord'")
    html = web.get("/sync/").get_data(as_text=True)
    assert "is longer than 120 characters" not in html
    assert "Le champ village de cette fiche" in html and "dépasse 120 caractères" in html


def test_the_cli_says_run_the_sync_again_only_when_that_can_help(tmp_path, centre, cdb):
    from click.testing import CliRunner

    from group_ipt.cli import cli
    from group_ipt.sync.engine import set_state

    a, ta = laptop(tmp_path, centre, "lap-a")
    insert(a, "participants", code="KMP-0002-B", name="N", sex="female", village="V")
    client.export_file(a, tmp_path / "a.gipt")
    with write(a):  # nothing listens there: the network is down
        set_state(a, "server", "http://127.0.0.1:9")
    a.close()
    runner = CliRunner()
    down = runner.invoke(cli, ["--data-dir", str(tmp_path / "lap-a"), "sync"])
    assert down.exit_code == 1 and "run the sync again when the network" in down.output
    central = ["--data-dir", centre.config["DATA_DIR"], "sync", "import", str(tmp_path / "a.gipt")]
    assert runner.invoke(cli, central).exit_code == 0
    again = runner.invoke(cli, central)
    assert again.exit_code == 1 and "already imported" in again.output
    assert "run the sync again" not in again.output and "will not help until that is fixed" in again.output


def test_each_laptop_makes_codes_from_its_own_block(tmp_path, centre, cdb):
    from group_ipt.core import cycles, participants

    a, _ta = laptop(tmp_path, centre, "lap-a")
    b, _tb = laptop(tmp_path, centre, "lap-b")
    m, _tm = laptop(tmp_path, centre, "lap-m", site="MSK")
    blocks = {r["name"]: r["code_block"] for r in rows(cdb, "select name, code_block from sync_devices")}
    assert blocks == {"lap-a": 1, "lap-b": 2, "lap-m": 1}
    site = row(a, "select * from sites")
    made = {}
    for name, db in (("a", a), ("b", b)):
        codes = set()
        for _ in range(40):  # each code is written, as the app does, before the next is made
            code = participants.generate_code(db, site["id"], site["code"])
            insert(db, "participants", code=code, name="N", sex="female", village="V")
            codes.add(code)
        made[name] = codes
    assert not made["a"] & made["b"]
    assert {c.split("-")[1][0] for c in made["a"]} == {"1"} and {c.split("-")[1][0] for c in made["b"]} == {"2"}
    assert [cycles.next_code(a, site), cycles.next_code(b, site)] == ["KMP-C001", "KMP-C002"]
    insert(
        a,
        "cycles",
        code="KMP-C001",
        **CYCLE_ROW,
    )
    assert cycles.next_code(a, site) == "KMP-C011"
    # A laptop registered before blocks existed gets one at its next sync.
    with write(a):
        engine.set_state(a, "code_block", None)
    client.sync(a, _ta)
    assert engine.get_state(a, "code_block") == 1


def test_a_referral_closed_as_the_app_closes_it_goes_in(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    g = a_group(a)
    ref = insert(
        a,
        "referrals",
        participant_id=g["participant"],
        reason="seen at home",
        triggers_json="[]",
        urgency="urgent",
        status="open",
    )
    client.sync(a, ta)
    insert(a, "referral_followups", referral_id=ref, due_on="2026-10-02", done_on="2026-10-02", note="called")
    with write(a):
        a.execute("update referrals set status = 'closed', outcome = 'seen', note = null where id = ?", (ref,))
    assert client.sync(a, ta)["push"]["quarantined"] == 0
    assert row(cdb, "select status, outcome from referrals where id = ?", (ref,)) == {
        "status": "closed",
        "outcome": "seen",
    }


def test_deleting_a_merged_away_copy_keeps_the_row_it_joined(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    g = a_group(a)
    client.sync(a, ta)
    client.sync(b, tb)
    kept = insert(a, "attendance", session_id=g["session"], member_id=g["member"], status="present")
    client.sync(a, ta)
    copy = insert(b, "attendance", session_id=g["session"], member_id=g["member"], status="present")
    client.push(b, tb)  # merged into a's row at the centre
    with write(b):  # b deletes its copy before it pulls the merge
        b.execute("delete from attendance where id = ?", (copy,))
    client.sync(b, tb)
    assert [r["id"] for r in rows(cdb, "select id from attendance")] == [kept]
    assert [r["id"] for r in rows(b, "select id from attendance")] == [kept]
    assert review.list_quarantine(cdb, None) == []


def test_a_usb_file_obeys_the_safety_rules_too(tmp_path, centre, cdb):
    from group_ipt.sync import server

    a, ta = laptop(tmp_path, centre, "lap-a")
    g = a_group(a)
    client.sync(a, ta)
    sid = screening_rows(a, g["participant"], risk=0)  # item 9 answered 3, no referral
    ref = insert(
        a,
        "referrals",
        participant_id=g["participant"],
        reason="seen at home",
        triggers_json="[]",
        urgency="urgent",
        status="open",
    )
    client.sync(a, ta)
    with write(a, checks=False):  # older software: today's refuses this on the laptop already
        a.execute("delete from referrals where id = ?", (ref,))
    client.export_file(a, tmp_path / "a.gipt")
    config = server.CentralConfig.from_app_config(centre.config, centre.extensions["group_ipt_forms"].instruments)
    summary = server.import_file(cdb, tmp_path / "a.gipt", tmp_path / "a.gipt.reply", config)
    assert summary["quarantined"] == 1
    assert row(cdb, "select 1 as x from referrals where id = ?", (ref,)) is not None
    assert row(cdb, "select 1 as x from screenings where id = ?", (sid,)) is None
    reasons = [q["error"] for q in review.list_quarantine(cdb, None)]
    assert any("Referrals are never deleted" in r for r in reasons)
    assert any("arrived without its safety referral" in r for r in reasons)


def test_changes_stamped_while_the_clock_was_ahead_go_in_after_it_is_set_back(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    pid = insert(a, "participants", code="KMP-0002-B", name="N", sex="female", village="first")
    client.sync(a, ta)
    with write(a):  # the date was more than a day ahead while these were made ...
        a.execute("update sync_clock set wall = wall + 29 * 3600000")
        a.execute("update participants set village = 'in a batch' where id = ?", (pid,))
    engine.cut_batch(a)
    with write(a):  # ... the same record changed again after the batch was cut ...
        a.execute("update participants set village = 'newest' where id = ?", (pid,))
        a.execute("update sync_clock set wall = wall - 72 * 3600000")  # ... then the date was set back
    client.sync(a, ta)
    assert row(cdb, "select village from participants where id = ?", (pid,))["village"] == "newest"
    assert row(a, "select village from participants where id = ?", (pid,))["village"] == "newest"
    assert client.status(a)["pending_records"] == 0


def test_a_copy_changed_again_before_the_merge_arrived_is_deleted_in_the_end(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    g = a_group(a)
    with write(a):
        a.execute("delete from members")
    client.sync(a, ta)
    client.sync(b, tb)
    kept = insert(
        a, "members", cycle_id=g["cycle"], participant_id=g["participant"], status="active", enrolled_on="2026-09-20"
    )
    mark = insert(a, "attendance", session_id=g["session"], member_id=kept, status="present")
    client.sync(a, ta)
    twin = insert(
        b, "members", cycle_id=g["cycle"], participant_id=g["participant"], status="active", enrolled_on="2026-09-21"
    )
    copy = insert(b, "attendance", session_id=g["session"], member_id=twin, status="late")
    client.push(b, tb)  # both merged into a's rows at the centre; b has not pulled yet
    with write(b):  # b corrects its mark: the centre's deletion of it is left alone at the next pull
        b.execute("update attendance set status = 'absent' where id = ?", (copy,))
    client.sync(b, tb)
    client.sync(b, tb)
    client.sync(a, ta)
    for db in (cdb, a, b):
        assert [(r["id"], r["status"]) for r in rows(db, "select id, status from attendance")] == [(mark, "absent")]
        assert [r["id"] for r in rows(db, "select id from members")] == [kept]
    assert fk_clean(cdb, a, b)
