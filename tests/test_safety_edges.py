"""The safety loop at its edges: a risk question not asked, PHQ-2 routing, referral outcomes, urgency,
the supervisor's concern list, risk noticed in a session, safety contacts; through web, API and CLI."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date

import pytest

from group_ipt.core import referrals, screening, sessions, users
from group_ipt.core.referrals import FollowupPlan, ReferralError
from group_ipt.core.sessions import SessionEntry
from group_ipt.store import db as dbmod
from group_ipt.store.db import row

from .conftest import login, post_form
from .screening_helpers import count, phq9, register, submit
from .syncing import add_device, make_central
from .test_cycles import make_cycle, session_no

PLAN = FollowupPlan()


@pytest.fixture
def sarah(db):
    return register(db)


@pytest.fixture
def forms(app):
    return app.extensions["group_ipt_forms"]


def actor(db, username="amina"):
    return users.get_user_by_username(db, username)


def save(db, forms, person, answers, instrument="phq9", **kwargs):
    return screening.save_screening(
        db,
        participant=person,
        instrument=forms.instruments[instrument],
        raw_answers=answers,
        submission_key=screening.new_submission_key(),
        actor=actor(db),
        intake=forms.intake,
        plan=PLAN,
        administered_on=date(2026, 3, 2),
        **kwargs,
    )


def q(*values) -> dict:
    return {f"q{i}": v for i, v in enumerate(values, start=1)}


# 1. Item 9 not asked --------------------------------------------------------------------


def test_blank_item9_with_high_answers_decides_nothing_and_raises_a_risk_alert(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(3, 3, 3, 3, 3, 3, 3, 3, None))
    saved = db.execute("select total, eligible, risk, prorated from screenings").fetchone()
    assert tuple(saved) == (None, None, 0, 0)
    assert db["participants"].get(sarah["id"])["status"] == "screened"
    check = row(db, "select * from risk_checks")
    assert (check["status"], json.loads(check["items_json"])) == ("open", ["q9"])
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "The safety question was not asked" in page and "Ask it now" in page
    assert "Eligible for a group" not in page
    home = logged_in.get("/").get_data(as_text=True)
    assert "safety question not asked" in home and sarah["code"] in home


@pytest.mark.parametrize(
    ("item9", "referral", "status", "urgency"),
    [("0", False, "eligible", None), ("1", True, "eligible", "routine"), ("3", True, "eligible", "urgent")],
)
def test_ask_it_now_scores_in_full_and_closes_the_check(logged_in, sarah, db, item9, referral, status, urgency):
    submit(logged_in, sarah["id"], phq9(3, 3, 3, 3, 3, 3, 3, 3, None))
    check = row(db, "select * from risk_checks")
    page = logged_in.get(f"/screening/risk-check/{check['id']}").get_data(as_text=True)
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    answered = post_form(
        logged_in, f"/screening/risk-check/{check['id']}/answer", {"submission_key": key, "answer_q9": item9}
    )
    assert answered.status_code == 303
    new = row(db, "select * from screenings where id != ?", (check["screening_id"],))
    assert (new["total"], new["eligible"]) == (24 + int(item9), 1)
    assert json.loads(new["answers_json"])["q1"] == 3
    done = db["risk_checks"].get(check["id"])
    assert (done["status"], done["answer_screening_id"]) == ("answered", new["id"]) and done["resolved_by"]
    found = referrals.for_screening(db, new["id"])
    assert (found is not None) == referral and (found or {}).get("urgency") == urgency
    assert db["participants"].get(sarah["id"])["status"] == status
    assert "safety question not asked" not in logged_in.get("/").get_data(as_text=True)
    earlier = logged_in.get(f"/screening/result/{check['screening_id']}").get_data(as_text=True)
    assert "Asked later by" in earlier


def test_ask_it_now_without_the_answer_saves_nothing(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(3, 3, 3, 3, 3, 3, 3, 3, None))
    check = row(db, "select * from risk_checks")
    refused = post_form(
        logged_in,
        f"/screening/risk-check/{check['id']}/answer",
        {"submission_key": screening.new_submission_key(), "answer_q9": ""},
        form_page=f"/screening/risk-check/{check['id']}",
    )
    assert refused.status_code == 400 and "Answer the safety question" in refused.get_data(as_text=True)
    other = post_form(
        logged_in,
        f"/screening/risk-check/{check['id']}/answer",
        {"submission_key": screening.new_submission_key(), "answer_q9": "0", "answer_q1": "0"},
        form_page=f"/screening/risk-check/{check['id']}",
    )
    assert other.status_code == 400
    assert count(db, "screenings") == 1 and db["risk_checks"].get(check["id"])["status"] == "open"


def test_acknowledge_risk_check_needs_a_reason(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(3, 3, 3, 3, 3, 3, 3, 3, None))
    check = row(db, "select * from risk_checks")
    url = f"/screening/risk-check/{check['id']}/acknowledge"
    assert post_form(logged_in, url, {"reason": "  "}).status_code == 400
    assert db["risk_checks"].get(check["id"])["status"] == "open"
    assert post_form(logged_in, url, {"reason": "Her husband stayed in the room"}).status_code == 303
    done = db["risk_checks"].get(check["id"])
    assert (done["status"], done["reason"]) == ("acknowledged", "Her husband stayed in the room")
    assert post_form(logged_in, url, {"reason": "again"}).status_code == 400
    assert "safety question not asked" not in logged_in.get("/").get_data(as_text=True)


def test_risk_check_of_another_site_is_404(app, db):
    grace_person = register(db, "Mary Nansubuga", site_code="MSK", actor="grace")
    forms = app.extensions["group_ipt_forms"]
    outcome = screening.save_screening(
        db,
        participant=grace_person,
        instrument=forms.instruments["phq9"],
        raw_answers=q(1, 1, 1, 1, 1, 1, 1, 1),
        submission_key=screening.new_submission_key(),
        actor=actor(db, "grace"),
        intake=forms.intake,
        plan=PLAN,
    )
    client = app.test_client()
    login(client, "amina")
    assert client.get(f"/screening/risk-check/{outcome.risk_check['id']}").status_code == 404


def test_prorated_phq9_with_item9_answered_opens_no_risk_check(db, forms, sarah):
    outcome = save(db, forms, sarah, q(None, None, 3, 3, 3, 2, 2, 2, 0))
    assert (outcome.result.total, outcome.result.prorated, outcome.risk_check) == (19, True, None)
    assert count(db, "risk_checks") == 0


# 2. Prorating and WHO-5 through the web -------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "prorated"),
    [
        (phq9(None, None, 3, 3, 3, 2, 2, 2, 0), 19, 1),  # two missing: 15 * 9 / 7 = 19.3 -> 19
        (phq9(None, 2, 2, 2, 2, 2, 2, 2, 0), 16, 1),  # 14 * 9 / 8 = 15.75 -> 16
        (phq9(None, None, None, 3, 3, 3, 3, 3, 0), None, 0),  # three missing: no total
    ],
)
def test_web_prorates_up_to_two_missing(logged_in, sarah, db, answers, total, prorated):
    response = submit(logged_in, sarah["id"], answers)
    saved = row(db, "select total, prorated from screenings")
    assert (saved["total"], saved["prorated"]) == (total, prorated)
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert ("estimated from the mean of the other answers" in page) == bool(prorated)


def test_web_who5_28_or_below_says_likely_depression(logged_in, sarah, db):
    response = submit(
        logged_in, sarah["id"], {f"answer_q{i}": v for i, v in enumerate("11122", start=1)}, instrument_id="who5"
    )
    assert row(db, "select total, band from screenings")["band"] == "Likely depression"
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Likely depression" in page and "assess the person with the PHQ-9 now" in page


# 3. PHQ-2 ----------------------------------------------------------------------------------


def test_phq2_positive_routes_to_phq9_never_eligible(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], {"answer_q1": "3", "answer_q2": "3"}, instrument_id="phq2")
    saved = row(db, "select * from screenings")
    assert (saved["total"], saved["eligible"]) == (6, None)
    assert db["participants"].get(sarah["id"])["status"] == "screened"
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Positive pre-screen: give the full PHQ-9 (depression symptoms) now." in page
    assert f"/screening/{sarah['id']}/phq9" in page and "Eligible for a group" not in page


def test_phq2_negative_does_not_ask_for_phq9(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], {"answer_q1": "1", "answer_q2": "1"}, instrument_id="phq2")
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Positive pre-screen" not in page


# 4. Referral outcome, urgency, concerns, history -----------------------------------------------


def _acknowledged_referral(db, forms, person, item9=1):
    outcome = save(db, forms, person, q(0, 0, 0, 0, 0, 0, 0, 0, item9))
    referrals.acknowledge(db, outcome.referral, actor(db))
    return referrals.get(db, outcome.referral["id"], [person["site_id"]])


@pytest.mark.parametrize(
    ("outcome", "note", "contacts", "message"),
    [
        (None, "fine", 1, "Choose the outcome"),
        ("bogus", "fine", 1, "Choose the outcome"),
        ("seen", None, 0, "at least one follow-up contact"),
        ("other", None, 1, "what the outcome was"),
        ("unreachable", None, 2, "at least %(n)d times"),
    ],
)
def test_close_refused_without_what_it_needs(db, forms, sarah, outcome, note, contacts, message):
    referral = _acknowledged_referral(db, forms, sarah)
    for f in referrals.followups(db, referral["id"])[:contacts]:
        referrals.record_followup(db, referral, f["id"], actor(db), note="called", done_on=date(2026, 3, 3), plan=PLAN)
    with pytest.raises(ReferralError) as caught:
        referrals.set_status(db, referral, "closed", actor(db, "coord"), note=note, outcome=outcome)
    assert message in caught.value.message
    assert db["referrals"].get(referral["id"])["status"] == "open"


def test_close_unreachable_after_enough_tries(db, forms, sarah):
    referral = _acknowledged_referral(db, forms, sarah)
    for f in referrals.followups(db, referral["id"])[:3]:
        referrals.record_followup(
            db, referral, f["id"], actor(db), note="no answer", done_on=date(2026, 3, 3), plan=PLAN
        )
    closed = referrals.set_status(db, referral, "closed", actor(db, "coord"), outcome="unreachable")
    assert (closed["status"], closed["outcome"]) == ("closed", "unreachable")
    with pytest.raises(ReferralError):
        referrals.set_status(db, referral, "followed_up", actor(db, "coord"), outcome="seen")


def test_outcome_only_when_closing(db, forms, sarah):
    referral = _acknowledged_referral(db, forms, sarah)
    with pytest.raises(ReferralError, match="only when the referral is closed"):
        referrals.set_status(db, referral, "referred", actor(db), referred_to="HC", outcome="seen")


def test_raise_urgency_by_hand_puts_it_on_the_supervisors_list(app, logged_in, db, forms, sarah, set_today):
    set_today("2026-03-02")
    referral = _acknowledged_referral(db, forms, sarah)
    assert referral["urgency"] == "routine"
    url = f"/referrals/{referral['id']}"
    assert post_form(logged_in, f"{url}/urgency", {"note": "Said she has a rope at home"}).status_code == 303
    saved = db["referrals"].get(referral["id"])
    assert (saved["urgency"], saved["escalated"]) == ("urgent", 1)
    assert post_form(logged_in, f"{url}/urgency", {}).status_code == 400  # already urgent
    assert referrals.concerns(db, [sarah["site_id"]], date(2026, 3, 2)) == []  # acknowledged, nothing overdue
    set_today("2026-03-12")  # the first weekly follow-up (9 March) is overdue
    listed = referrals.concerns(db, [sarah["site_id"]], date(2026, 3, 12))
    assert [r["id"] for r in listed] == [referral["id"]] and listed[0]["overdue"]
    page = logged_in.get(url).get_data(as_text=True)
    assert "made urgent" in page and "Said she has a rope at home" in page and "raised by hand" in page


def test_unacknowledged_urgent_referral_escalates_after_its_day(app, db, forms, sarah, supervisor, set_today):
    set_today("2026-03-02")
    outcome = save(db, forms, sarah, q(0, 0, 0, 0, 0, 0, 0, 0, 3))
    routine = save(db, forms, register(db, "Joan Akello"), q(0, 0, 0, 0, 0, 0, 0, 0, 1))
    site = [sarah["site_id"]]
    assert referrals.concerns(db, site, date(2026, 3, 2)) == []  # the same day: the facilitator's to act on
    listed = referrals.concerns(db, site, date(2026, 3, 3))
    assert [r["id"] for r in listed] == [outcome.referral["id"]] and listed[0]["unacknowledged"]
    assert routine.referral["id"] not in [r["id"] for r in listed]
    set_today("2026-03-03")
    client = app.test_client()
    login(client, "coord")
    page = client.get("/supervision/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Urgent safety concerns: 1" in page and sarah["code"] in page


def test_referral_history_and_slip(app, logged_in, db, forms, sarah):
    app.config["SAFETY_CONTACTS"] = [{"name": "Ambulance", "phone": "112"}]
    referral = _acknowledged_referral(db, forms, sarah, item9=2)
    page = logged_in.get(f"/referrals/{referral['id']}").get_data(as_text=True)
    assert "safety alert raised" in page and "alert acknowledged" in page
    slip = logged_in.get(f"/referrals/{referral['id']}/slip").get_data(as_text=True)
    assert "Referral slip" in slip and "Ambulance" in slip and 'href="tel:112"' in slip
    assert sarah["code"] in slip and "urgent" in slip


def test_alert_says_when_no_safety_contact_is_set(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 1))
    referral = row(db, "select id from referrals")
    page = logged_in.get(f"/referrals/{referral['id']}").get_data(as_text=True)
    assert "No local emergency number is set for this programme." in page


@pytest.mark.parametrize(
    "contacts",
    [
        "nope",
        [{"name": "Ambulance"}],
        [{"name": "", "phone": "112"}],
        [{"name": "A", "phone": "call me"}],
        [{"name": "A", "phone": "112", "email": "x"}],
    ],
)
def test_bad_safety_contacts_refuse_to_start(tmp_path, contacts):
    from group_ipt.base.settings import ConfigError

    from .conftest import make_app

    with pytest.raises(ConfigError, match="SAFETY_CONTACTS"):
        make_app(tmp_path / "data", SAFETY_CONTACTS=contacts)


# 5. Risk noticed in a session --------------------------------------------------------------


@pytest.fixture
def group(db, protocols):
    from group_ipt.core import cycles

    from .conftest import add_participant

    cycle = make_cycle(db, protocols)
    people = [add_participant(db, name=n) for n in ("Agnes Auma", "Betty Birungi")]
    members = [cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"] for p in people]
    return {"cycle": cycle, "members": members, "people": people}


def test_risk_noticed_on_the_session_sheet_opens_the_alert_once(client, db, group, set_today):
    set_today("2026-03-09")
    login(client, "amina")
    s1 = session_no(db, group["cycle"]["id"], 1)
    m1, m2 = group["members"]
    page = client.get(f"/sessions/{s1['id']}").get_data(as_text=True)
    assert f'name="risk-{m1}"' in page
    data = {"version": "0", "note": "", f"att-{m1}": "present", f"att-{m2}": "present", f"risk-{m2}": "1"}
    saved = post_form(client, f"/sessions/{s1['id']}", data, form_page=f"/sessions/{s1['id']}")
    referral = row(db, "select * from referrals")
    assert saved.status_code == 303 and saved.headers["Location"].endswith(f"/referrals/{referral['id']}")
    assert (referral["participant_id"], referral["urgency"], referral["session_id"], referral["status"]) == (
        group["people"][1]["id"],
        "urgent",
        s1["id"],
        "open",
    )
    assert json.loads(referral["triggers_json"])[0]["kind"] == "session_risk"
    assert count(db, "referral_followups") == 12
    alert = client.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Risk noticed by the facilitator in group session 1" in alert and "Do not leave the person alone" in alert
    again = client.get(f"/sessions/{s1['id']}").get_data(as_text=True)
    assert "Risk noticed: safety referral raised" in again
    data.update(version="1")
    assert post_form(client, f"/sessions/{s1['id']}", data, form_page=f"/sessions/{s1['id']}").status_code == 303
    assert count(db, "referrals") == 1


def test_risk_noticed_for_someone_not_in_the_cycle_saves_nothing(db, protocols, group):
    s1 = session_no(db, group["cycle"]["id"], 1)
    m1, m2 = group["members"]
    entry = SessionEntry({m1: "present", m2: "present"}, risk_noticed={"not-a-member"})
    with pytest.raises(Exception, match="not a member"):
        sessions.record_session(
            db, s1["id"], entry, expected_version=0, protocols=protocols, actor=actor(db), today=date(2026, 3, 9)
        )
    assert count(db, "referrals") == 0 and count(db, "attendance") == 0


# 6. The same rules through the JSON API and the CLI -------------------------------------------


@pytest.fixture
def centre(tmp_path):
    return make_central(tmp_path / "central", SYNC_SEND_NAMES=True)


def _api(client, token, method, path, body):
    return getattr(client, method)(f"/api/v1{path}", json=body, headers={"Authorization": f"Bearer {token}"})


def test_api_screening_edges(centre):
    token = add_device(centre, "lap-a", "KMP")[1]
    client = centre.test_client()
    person = _api(
        client,
        token,
        "post",
        "/participants",
        {"name": "Sarah Namuli", "sex": "female", "age": 34, "village": "Kawempe", "consents": ["screening", "group"]},
    ).json

    def screen(values, instrument="phq9"):
        return _api(
            client,
            token,
            "post",
            "/screenings",
            {
                "participant_id": person["id"],
                "instrument_id": instrument,
                "answers": values,
                "submission_key": uuid.uuid4().hex,
            },
        )

    blank = screen(q(3, 3, 3, 3, 3, 3, 3, 3))
    assert blank.status_code == 201 and (blank.json["total"], blank.json["eligible"]) == (None, None)
    urgent = screen(q(0, 0, 0, 0, 0, 0, 0, 0, 2))
    assert urgent.json["referral_urgency"] == "urgent"
    phq2 = screen({"q1": 3, "q2": 3}, "phq2")
    assert phq2.json["eligible"] is None
    conn = dbmod.connect(centre.config["DATABASE"])
    try:
        check = row(conn, "select * from risk_checks where screening_id = ?", (blank.json["id"],))
        assert check["status"] == "open"
        referral_id = urgent.json["referral_id"]
        assert _api(client, token, "patch", f"/referrals/{referral_id}", {"acknowledge": True}).status_code == 200
        closing = _api(client, token, "patch", f"/referrals/{referral_id}", {"status": "closed", "note": "ok"})
        assert closing.status_code == 400
        deleted = client.delete(f"/api/v1/referrals/{referral_id}", headers={"Authorization": f"Bearer {token}"})
        assert deleted.status_code == 405
        assert row(conn, "select status from referrals where id = ?", (referral_id,))["status"] == "open"
    finally:
        conn.close()


def cli_on(app, args):
    from click.testing import CliRunner

    from group_ipt.cli import cli

    return CliRunner().invoke(cli, ["--data-dir", app.config["DATA_DIR"], *args])


def test_cli_close_obeys_the_referral_rules(app, db, forms, sarah, set_today):
    set_today("2026-03-02")
    outcome = save(db, forms, sarah, q(0, 0, 0, 0, 0, 0, 0, 0, 3))
    referral_id = outcome.referral["id"]
    concerns = cli_on(app, ["referrals", "concerns"])
    assert concerns.exit_code == 0 and "No urgent safety concerns." in concerns.output  # raised today
    set_today("2026-03-03")
    concerns = cli_on(app, ["referrals", "concerns", "--site", "KMP"])
    assert concerns.exit_code == 1 and "urgent referral" in concerns.output and sarah["code"] in concerns.output
    refused = cli_on(app, ["referrals", "close", referral_id, "--outcome", "seen", "--by", "coord"])
    assert refused.exit_code == 1 and "Acknowledge the safety alert" in refused.output
    referrals.acknowledge(db, outcome.referral, actor(db))
    refused = cli_on(app, ["referrals", "close", referral_id, "--outcome", "seen", "--by", "coord"])
    assert refused.exit_code == 1 and "at least one follow-up contact" in refused.output
    first = referrals.followups(db, referral_id)[0]
    referrals.record_followup(
        db, outcome.referral, first["id"], actor(db), note="seen", done_on=date(2026, 3, 3), plan=PLAN
    )
    facilitator = cli_on(app, ["referrals", "close", referral_id, "--outcome", "seen", "--by", "amina"])
    assert facilitator.exit_code == 1 and "Only a coordinator or supervisor" in facilitator.output
    other = cli_on(app, ["referrals", "close", referral_id, "--outcome", "other", "--by", "coord"])
    assert other.exit_code == 1 and "what the outcome was" in other.output
    assert db["referrals"].get(referral_id)["status"] == "open"
    closed = cli_on(app, ["referrals", "close", referral_id, "--outcome", "seen", "--by", "coord"])
    assert closed.exit_code == 0, closed.output
    assert db["referrals"].get(referral_id)["outcome"] == "seen"
    assert cli_on(app, ["referrals", "close", "nope", "--outcome", "seen", "--by", "coord"]).exit_code == 1


def test_cli_concerns_lists_unasked_risk_and_exits_1(app, db, forms, sarah):
    save(db, forms, sarah, q(1, 1, 1, 1, 1, 1, 1, 1))
    listed = cli_on(app, ["referrals", "concerns", "--site", "KMP"])
    assert listed.exit_code == 1 and "risk not asked" in listed.output and sarah["code"] in listed.output
    unknown = cli_on(app, ["referrals", "concerns", "--site", "XXX"])
    assert unknown.exit_code == 1 and "Unknown site" in unknown.output


@pytest.mark.parametrize("lang", ["en", "sw"])
def test_referral_slip_pdf_prints_the_numbers_in_the_language(app, logged_in, db, forms, sarah, lang):
    import io

    from pypdf import PdfReader

    app.config["SAFETY_CONTACTS"] = [{"name": "Ambulance", "phone": "112"}]
    referral = _acknowledged_referral(db, forms, sarah, item9=2)
    response = logged_in.get(f"/referrals/{referral['id']}/slip.pdf?lang={lang}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.data)).pages)
    assert "Ambulance: 112" in text and sarah["code"] in text
    assert ("Referral slip" if lang == "en" else "Karatasi ya rufaa") in text
    assert ("urgent" if lang == "en" else "ya dharura") in text
    other = register(db, "Mary Nansubuga", site_code="MSK", actor="grace")
    theirs = save(db, forms, other, q(0, 0, 0, 0, 0, 0, 0, 0, 1)).referral
    assert logged_in.get(f"/referrals/{theirs['id']}/slip.pdf").status_code == 404
