"""Screening: the form, server-side scoring, missing answers, bad input, double submits, the chart."""

from __future__ import annotations

import html
import json
import shutil
from datetime import date

import pytest
from markupsafe import escape

from group_ipt.base.settings import REPO_DIR, ConfigError
from group_ipt.core import users
from group_ipt.formfiles.forms import FormsError, check_all
from group_ipt.reporting import charts
from group_ipt.store import db as dbmod

from .conftest import FAST_HASH, PASSWORD, login, make_app, post_form
from .screening_helpers import count, phq9, register, screening_form, submit


@pytest.fixture
def sarah(db):
    return register(db)


def only_screening(db) -> dict:
    rows = list(db.query("select * from screenings"))
    assert len(rows) == 1
    return rows[0]


# The form ----------------------------------------------------------------------


def test_form_shows_every_item_with_labelled_choices(logged_in, sarah):
    page = logged_in.get(f"/screening/{sarah['id']}/phq9").get_data(as_text=True)
    for i in range(1, 11):
        assert f'name="answer_q{i}"' in page
        assert f'<label class="choice" for="a-q{i}-0">' in page
        assert f'id="a-q{i}-none" name="answer_q{i}" value="" checked' in page
    assert "You had thoughts of being better off dead, or thoughts of harming yourself." in page
    assert 'id="a-q9-1" name="answer_q9" value="1" data-risk="1"' in page
    assert 'id="a-q9-0" name="answer_q9" value="0">' in page  # 0 is not a risk answer
    assert 'name="risk_observed"' in page and 'value="imminent_risk"' in page
    assert 'name="csrf_token"' in page and 'name="submission_key"' in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "/static/js/screening-0.1.js" in page


def test_each_form_gets_a_new_submission_key(logged_in, sarah):
    first = screening_form(logged_in, sarah["id"])["submission_key"]
    second = screening_form(logged_in, sarah["id"])["submission_key"]
    assert first != second and len(first) >= 16


def test_form_in_the_facilitators_language(tmp_path):
    """Instrument texts go through the catalogs: a French facilitator sees French questions."""
    from .i18n_walk import translations

    fr = translations("fr")
    question, option = "You felt sad, low, or without hope.", "On a few days"
    assert fr.get(question) and fr[question] != question
    app = make_app(tmp_path / "data")
    db = dbmod.connect(app.config["DATABASE"])
    site = users.create_site(db, "KMP", "Kampala North", "fr")
    users.create_user(db, "amina", PASSWORD, "facilitator", site_ids=[site["id"]], language="fr", hash_method=FAST_HASH)
    sarah = register(db)
    client = app.test_client()
    login(client)
    page = client.get(f"/screening/{sarah['id']}/phq9").get_data(as_text=True)
    assert '<html lang="fr"' in page
    assert html.escape(fr[question], quote=False) in page and html.escape(fr[option], quote=False) in page
    assert question not in page


def test_unknown_instrument_is_404_with_a_reason(logged_in, sarah, db):
    response = logged_in.get(f"/screening/{sarah['id']}/phq99")
    assert response.status_code == 404
    assert "no instrument called phq99" in response.get_data(as_text=True)
    hidden = screening_form(logged_in, sarah["id"])
    assert submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 0), "phq99", hidden=hidden).status_code == 404
    assert count(db, "screenings") == 0


# Scoring on the server ---------------------------------------------------------


def test_complete_phq9_scored_banded_and_eligible(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(2, 2, 1, 2, 1, 1, 2, 1, 0, q10=2))
    assert response.status_code == 303
    saved = only_screening(db)
    assert response.headers["Location"] == f"/screening/result/{saved['id']}"
    assert (saved["total"], saved["band"], saved["eligible"], saved["cutoff"], saved["risk"]) == (
        12,
        "Moderate",
        1,
        10,
        0,
    )
    assert json.loads(saved["answers_json"])["q10"] == 2
    assert json.loads(saved["missing_json"]) == []
    assert saved["language"] == "en" and saved["administered_on"] == "2026-03-02"
    assert db["participants"].get(sarah["id"])["status"] == "eligible"
    assert count(db, "referrals") == 0
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert '<span class="total">12</span> / 27' in page
    assert "Clear signs of depression. The group is likely to help." in page
    assert "Eligible for a group." in page and "cut-off of 10" in page
    assert "Safety alert" not in page


def test_low_total_not_eligible(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(1, 1, 0, 1, 0, 0, 0, 0, 0))
    saved = only_screening(db)
    assert (saved["total"], saved["band"], saved["eligible"]) == (3, "Minimal", 0)
    assert db["participants"].get(sarah["id"])["status"] == "not_eligible"


def test_cutoff_comes_from_the_setting(tmp_path):
    app = make_app(tmp_path / "data", ELIGIBILITY_CUTOFFS={"phq9": 9})
    db = dbmod.connect(app.config["DATABASE"])
    site = users.create_site(db, "KMP", "Kampala North")
    users.create_user(db, "amina", PASSWORD, "facilitator", site_ids=[site["id"]], hash_method=FAST_HASH)
    sarah = register(db)
    client = app.test_client()
    login(client)
    submit(client, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 2, 0))
    saved = only_screening(db)
    assert (saved["total"], saved["cutoff"], saved["eligible"]) == (9, 9, 1)


@pytest.mark.parametrize("cutoffs", [{"who5": 50}, {"phq9": 40}, {"nope": 3}, {"phq9": "ten"}])
def test_unusable_cutoff_setting_stops_the_app(tmp_path, cutoffs):
    with pytest.raises(ConfigError, match="ELIGIBILITY_CUTOFFS"):
        make_app(tmp_path / "data", ELIGIBILITY_CUTOFFS=cutoffs)


def test_one_missing_answer_is_prorated_and_flagged(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(2, 2, 2, 2, None, 2, 2, 2, 0))
    saved = only_screening(db)
    assert json.loads(saved["missing_json"]) == ["q5", "q10"]
    assert saved["prorated"] == 1 and saved["total"] == 16  # 14 over 8 answers, times 9
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "the total is estimated" in page and "You ate much less than usual" in page


def test_too_many_missing_answers_give_no_total_never_zero(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(3, 3, None, None, None, 3, 3, 3, 0))
    saved = only_screening(db)
    assert saved["total"] is None and saved["band"] is None and saved["eligible"] is None
    assert db["participants"].get(sarah["id"])["status"] == "screened"
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "A missing answer is never counted as 0" in page
    assert "Eligibility unknown." in page


def test_all_missing_is_saved_and_flagged(logged_in, sarah, db):
    submit(logged_in, sarah["id"], {})
    saved = only_screening(db)
    assert saved["total"] is None and len(json.loads(saved["missing_json"])) == 10


def test_unanswered_safety_question_is_called_out(logged_in, sarah):
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, None))
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "The safety question was not asked: this person's risk of self-harm is unknown." in page
    assert "Ask it now" in page and "Eligibility unknown." in page


def test_scaled_instrument_who5(logged_in, sarah, db):
    answers = {f"answer_q{i}": "2" for i in range(1, 6)}
    response = submit(logged_in, sarah["id"], answers, "who5")
    assert response.status_code == 303
    saved = only_screening(db)
    assert (saved["raw_total"], saved["total"], saved["band"], saved["eligible"]) == (10, 40, "Poor well-being", None)
    assert db["participants"].get(sarah["id"])["status"] == "screened"


# Bad input: a clear 4xx, nothing saved ------------------------------------------


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (phq9(4, 0, 0, 0, 0, 0, 0, 0, 0), "4 is not one of the answers"),
        (phq9(-1, 0, 0, 0, 0, 0, 0, 0, 0), "-1 is not one of the answers"),
        (phq9("abc", 0, 0, 0, 0, 0, 0, 0, 0), "is not a number"),
        (phq9("1.5", 0, 0, 0, 0, 0, 0, 0, 0), "is not a number"),
        ({**phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), "answer_q99": "1"}, "no such question"),
    ],
)
def test_bad_answers_are_refused_and_nothing_saved(logged_in, sarah, db, answers, reason):
    response = submit(logged_in, sarah["id"], {**answers, "answer_q2": "2"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert reason in str(escape(reason)) and str(escape(reason)) in page
    assert 'id="a-q2-2" name="answer_q2" value="2" checked' in page  # typed values kept
    assert count(db, "screenings") == 0 and count(db, "referrals") == 0


@pytest.mark.parametrize("field", ["occasion", "administered_on"])
@pytest.mark.parametrize("value", ["yesterday-ish", ""])
def test_bad_occasion_or_date_refused(logged_in, sarah, db, field, value):
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), **{field: value})
    assert response.status_code == 400
    assert count(db, "screenings") == 0


def test_future_date_refused(logged_in, sarah, db, set_today):
    set_today("2026-03-01")
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), administered_on="2026-03-02")
    assert response.status_code == 400 and "cannot be in the future" in response.get_data(as_text=True)
    assert count(db, "screenings") == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("instrument_version", "2"),
        ("instrument_id", "gad7"),
        ("participant_id", "someone-else"),
        ("submission_key", "short"),
        ("submission_key", ""),
    ],
)
def test_edited_hidden_field_is_400_and_nothing_saved(logged_in, sarah, db, field, value):
    hidden = screening_form(logged_in, sarah["id"])
    hidden[field] = value
    response = submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 2), hidden=hidden)
    assert response.status_code == 400
    assert "Nothing was saved" in response.get_data(as_text=True)
    assert count(db, "screenings") == 0 and count(db, "referrals") == 0


def test_unknown_exclusion_code_is_400(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), exclusion="flying")
    assert response.status_code == 400 and count(db, "screenings") == 0


def test_answers_for_a_participant_of_another_site_are_404(app, logged_in, db, sarah):
    hidden = screening_form(logged_in, sarah["id"])  # a real form, as amina saw it
    client = app.test_client()
    login(client, "grace")
    assert client.get(f"/screening/{sarah['id']}/phq9").status_code == 404
    response = post_form(
        client,
        f"/screening/{sarah['id']}/phq9",
        {**hidden, **phq9(1, 1, 1, 1, 1, 1, 1, 1, 2), "occasion": "screening", "administered_on": "2026-03-02"},
    )
    assert response.status_code == 404
    assert count(db, "screenings") == 0 and count(db, "referrals") == 0


def test_result_of_another_site_is_404(app, logged_in, sarah):
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0))
    grace = app.test_client()
    login(grace, "grace")
    assert grace.get(response.headers["Location"]).status_code == 404
    assert grace.get("/screening/result/no-such-id").status_code == 404


# Double submit -------------------------------------------------------------------


def test_double_submit_saves_once_and_shows_the_same_result(logged_in, sarah, db):
    hidden = screening_form(logged_in, sarah["id"])
    answers = phq9(1, 1, 1, 1, 1, 1, 1, 1, 2)
    first = submit(logged_in, sarah["id"], answers, hidden=hidden)
    second = submit(logged_in, sarah["id"], answers, hidden=hidden)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert count(db, "screenings") == 1 and count(db, "referrals") == 1
    page = logged_in.get(second.headers["Location"]).get_data(as_text=True)
    assert "it was not saved twice" in page


def test_a_used_key_cannot_be_reused_for_another_person(logged_in, sarah, db):
    other = register(db, "Joseph Okello", sex="male")
    hidden = screening_form(logged_in, sarah["id"])
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), hidden=hidden)
    reused = {**hidden, "participant_id": other["id"]}
    response = submit(logged_in, other["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), hidden=reused)
    assert response.status_code == 400
    assert count(db, "screenings") == 1


# History and chart ---------------------------------------------------------------


def test_history_and_svg_chart_of_totals(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(2, 2, 2, 2, 2, 2, 2, 2, 0), administered_on="2026-01-05")
    submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 0), administered_on="2026-02-02")
    submit(logged_in, sarah["id"], phq9(None, None, None, 1, 1, 1, 1, 1, 0), administered_on="2026-02-20")
    page = logged_in.get(f"/participants/{sarah['id']}").get_data(as_text=True)
    assert page.count('role="img"') == 1
    assert '<title id="chart-0-title">PHQ-9 (depression symptoms): total at each screening</title>' in page
    assert "Jan 5, 2026: 16; Feb 2, 2026: 8; Feb 20, 2026: no total (answers missing)" in page
    assert "<polyline" in page and page.count("<circle") == 2
    assert "4 questions not answered" in page  # q1, q2, q3 and the unscored q10
    assert '<script src="http' not in page


def test_chart_escapes_every_text():
    svg = charts.totals_chart(
        [charts.Point(date(2026, 1, 5), 12)],
        low=0,
        high=27,
        title="<b>&",
        format_date=lambda d: "<i>",
        cutoff=10,
        cutoff_label='"x"',
    )
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg
    assert "<i>" not in svg and "&#34;x&#34;" in svg or "&quot;x&quot;" in svg


# The intake file -----------------------------------------------------------------


def test_shipped_intake_file_is_valid(app):
    intake = app.extensions["group_ipt_forms"].intake
    assert set(intake.codes) == {"psychosis", "bipolar", "substance", "imminent_risk", "complex_trauma"}
    assert intake.exclusion("imminent_risk").urgency == "urgent"
    assert intake.safety_steps["urgent"].steps and intake.safety_steps["routine"].steps
    assert check_all(REPO_DIR / "forms") == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    urgency: urgent", "    urgency: soon"), ("intake.yaml:", "field 'urgency'", "must be one of")),
        (("  - code: bipolar", "  - code: Bipolar"), ("field 'code'",)),
        (("  routine:\n", "  later:\n"), ("field 'later'", "unknown field")),
        (("    label: Bipolar", "    labl: Bipolar"), ("item bipolar", "field 'labl'")),
    ],
)
def test_broken_intake_file_is_reported_and_stops_the_app(tmp_path, change, expected):
    forms = tmp_path / "forms"
    shutil.copytree(REPO_DIR / "forms", forms)
    path = forms / "intake.yaml"
    text = path.read_text(encoding="utf-8")
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    errors = [str(e) for e in check_all(forms)]
    assert errors and all(part in errors[0] for part in expected), errors
    with pytest.raises(FormsError):
        make_app(tmp_path / "data", FORMS_DIR=str(forms))


# A screening given for a cycle (the "measures due" link) --------------------------


def add_membership(db, participant: dict) -> tuple[str, str]:
    """Insert a minimal cycle, one session and the participant's membership; return their ids."""
    stamp = "2026-01-01T00:00:00+00:00"
    site = participant["site_id"]
    db["cycles"].insert(
        {
            "id": "c1",
            "site_id": site,
            "code": "KMP-C001",
            "protocol_id": "who-8",
            "protocol_version": 1,
            "group_type": "women",
            "venue": "Church",
            "weekday": 0,
            "start_time": "10:00",
            "first_date": "2026-02-02",
            "created_at": stamp,
            "updated_at": stamp,
        }
    )
    db["sessions"].insert(
        {
            "id": "s1",
            "site_id": site,
            "cycle_id": "c1",
            "number": 1,
            "kind": "group",
            "phase": "initial",
            "scheduled_date": "2026-02-02",
            "start_time": "10:00",
            "minutes": 90,
            "created_at": stamp,
            "updated_at": stamp,
        }
    )
    db["members"].insert(
        {
            "id": "m1",
            "site_id": site,
            "cycle_id": "c1",
            "participant_id": participant["id"],
            "enrolled_on": "2026-01-20",
            "created_at": stamp,
            "updated_at": stamp,
        }
    )
    db.conn.commit()
    return "c1", "s1"


def test_screening_for_a_cycle_session_keeps_the_link(logged_in, sarah, db):
    cycle_id, session_id = add_membership(db, sarah)
    page = logged_in.get(f"/screening/{sarah['id']}/phq9?occasion=mid&cycle_id={cycle_id}&session_id={session_id}")
    html = page.get_data(as_text=True)
    assert f'name="cycle_id" value="{cycle_id}"' in html and '<option value="mid" selected>' in html
    hidden = screening_form(logged_in, sarah["id"])
    hidden.update(cycle_id=cycle_id, session_id=session_id)
    response = submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 0), hidden=hidden, occasion="mid")
    assert response.status_code == 303
    saved = only_screening(db)
    assert (saved["cycle_id"], saved["session_id"], saved["occasion"]) == (cycle_id, session_id, "mid")


@pytest.mark.parametrize(("cycle_id", "session_id"), [("c9", ""), ("", "s1"), ("c1", "s9")])
def test_screening_for_a_cycle_the_person_is_not_in_is_400(logged_in, sarah, db, cycle_id, session_id):
    add_membership(db, sarah)
    hidden = {**screening_form(logged_in, sarah["id"]), "cycle_id": cycle_id, "session_id": session_id}
    response = submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 0), hidden=hidden)
    assert response.status_code == 400
    assert count(db, "screenings") == 0
