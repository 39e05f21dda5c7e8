"""The record rules of sync ingest also hold at commit for every local write (sync/rules.check_local).

The domain functions refuse bad input first, in the person's words; these tests go past them on
purpose (raw SQL inside ``db.write``, as a buggy page or command could) and check the last gate.
"""

from __future__ import annotations

from datetime import date

import pytest

from group_ipt.base import errors
from group_ipt.core import participants, referrals, screening, users
from group_ipt.store import db as dbmod
from group_ipt.sync.rules import LOCAL_REFUSAL, RecordRuleError

from .conftest import login, post_form
from .screening_helpers import register

PLAN = referrals.FollowupPlan()


@pytest.fixture
def sarah(db):
    return register(db)


def risk_screening(app, db, person) -> screening.Outcome:
    forms = app.extensions["group_ipt_forms"]
    return screening.save_screening(
        db,
        participant=person,
        instrument=forms.instruments["phq9"],
        raw_answers={f"q{i}": (2 if i == 9 else 0) for i in range(1, 10)},
        submission_key=screening.new_submission_key(),
        actor=users.get_user_by_username(db, "amina"),
        intake=forms.intake,
        plan=PLAN,
        administered_on=date(2026, 3, 2),
    )


def snapshot(db) -> dict:
    return {
        t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in ("participants", "screenings", "referrals")
    }


def refused(db, sql: str, params=()) -> RecordRuleError:
    with pytest.raises(RecordRuleError) as caught, dbmod.write(db):
        db.execute(sql, params)
    return caught.value


def test_domain_writes_pass_the_gate(app, db, sarah):
    outcome = risk_screening(app, db, sarah)
    assert outcome.referral is not None
    assert snapshot(db) == {"participants": 1, "screenings": 1, "referrals": 1}


def test_a_referral_is_never_deleted_by_a_local_write(app, db, sarah):
    referral = risk_screening(app, db, sarah).referral
    with pytest.raises(RecordRuleError) as caught, dbmod.write(db):
        for table in ("referral_followups", "referral_events"):
            db.execute(f"delete from {table} where referral_id = ?", (referral["id"],))
        db.execute("delete from referrals where id = ?", (referral["id"],))
    error = caught.value
    assert "Referrals are never deleted" in str(error) and str(error).startswith("Nothing was saved")
    assert db["referrals"].get(referral["id"])["status"] == "open"
    assert db.execute("select count(*) from referral_followups").fetchone()[0] > 0


def test_a_risk_screening_without_its_referral_is_refused(app, db, sarah):
    screened = risk_screening(app, db, sarah).screening
    before = snapshot(db)
    copy = {**screened, "id": "copy", "submission_key": screening.new_submission_key()}
    with pytest.raises(RecordRuleError) as caught, dbmod.write(db):
        db["screenings"].insert(copy)
    assert "without its safety referral" in str(caught.value)
    assert snapshot(db) == before


def test_a_closed_referral_needs_what_the_app_asks(app, db, sarah):
    referral = risk_screening(app, db, sarah).referral
    refused(db, "update referrals set status = 'closed' where id = ?", (referral["id"],))
    assert db["referrals"].get(referral["id"])["status"] == "open"


def test_text_longer_than_the_form_allows_is_refused(db, sarah):
    error = refused(db, "update participants set village = ? where id = ?", ("x" * 10_000, sarah["id"]))
    assert "longer than" in str(error)
    assert db["participants"].get(sarah["id"])["village"] == sarah["village"]


def test_a_row_never_points_at_another_site(app, db, sarah):
    other = users.get_site(db, "MSK")
    outcome = risk_screening(app, db, sarah)
    # The screening moved to another site while its person stays at Kampala North.
    error = refused(db, "update screenings set site_id = ? where id = ?", (other["id"], outcome.screening["id"]))
    assert "another site" in str(error)
    assert db["screenings"].get(outcome.screening["id"])["site_id"] == sarah["site_id"]


def test_the_refusal_reaches_the_web_as_a_translated_400(app, client, db, sarah, monkeypatch):
    """A page whose write breaks a rule the domain missed answers 400 with the reason, in the
    user's language; nothing of the write is kept."""

    def buggy(db_, participant_id, status, reason, actor):
        with dbmod.write(db_):
            db_.execute("update participants set village = ? where id = ?", ("x" * 10_000, participant_id))
        raise AssertionError("not reached")

    monkeypatch.setattr(participants, "set_status", buggy)
    login(client, "coord")
    post_form(client, "/account/language", {"lang": "fr"})
    answer = post_form(
        client,
        f"/participants/{sarah['id']}/status",
        {"status": "dropped_out", "reason": "moved away"},
        form_page=f"/participants/{sarah['id']}",
    )
    assert answer.status_code == 400
    assert "Rien n&#39;a été enregistré" in answer.get_data(as_text=True)
    assert db["participants"].get(sarah["id"])["village"] == sarah["village"]


def test_a_record_gone_meanwhile_answers_404_not_500(app, client, db, sarah, monkeypatch):
    """A stale form naming a row another user's change removed reaches a core lookup that finds
    nothing (errors.RecordMissing): the page says 404, never a traceback."""

    def gone(*args, **kwargs):
        raise errors.RecordMissing("participant x is not in the database")

    monkeypatch.setattr(participants, "set_status", gone)
    login(client, "coord")
    answer = post_form(
        client,
        f"/participants/{sarah['id']}/status",
        {"status": "dropped_out", "reason": "moved away"},
        form_page=f"/participants/{sarah['id']}",
    )
    assert answer.status_code == 404
    assert "This page does not exist." in answer.get_data(as_text=True)


def test_the_local_message_is_a_msgid_with_the_reason():
    assert "%(reason)s" in LOCAL_REFUSAL
