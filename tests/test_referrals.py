"""Safety: every risk answer raises an alert and a referral that stays on the home page until closed."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from group_ipt.core import audit, participants, referrals, screening, users
from group_ipt.core.referrals import FollowupPlan, ReferralError
from group_ipt.core.screening import OCCASIONS

from .conftest import login, make_app, post_form
from .screening_helpers import count, phq9, register, submit

PLAN = FollowupPlan()


def checks(examples: int) -> settings:
    """Hypothesis settings for tests that reuse one app and database across examples."""
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def sarah(db):
    return register(db)


@pytest.fixture
def forms(app):
    return app.extensions["group_ipt_forms"]


def only(db, table: str) -> dict:
    found = list(db.query(f"select * from {table}"))
    assert len(found) == 1, found
    return found[0]


def save(db, forms, participant, answers, *, key=None, instrument="phq9", **kwargs):
    return screening.save_screening(
        db,
        participant=participant,
        instrument=forms.instruments[instrument],
        raw_answers=answers,
        submission_key=key or screening.new_submission_key(),
        actor=users.get_user_by_username(db, "amina"),
        intake=forms.intake,
        plan=PLAN,
        administered_on=kwargs.pop("administered_on", date(2026, 3, 2)),
        **kwargs,
    )


def q(*values) -> dict:
    return {f"q{i}": v for i, v in enumerate(values, start=1)}


# The referral a risk answer creates ---------------------------------------------


def test_item9_answer_creates_referral_with_followups_in_the_same_save(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 1))
    saved = only(db, "screenings")
    referral = only(db, "referrals")
    assert (saved["risk"], json.loads(saved["risk_items_json"])) == (1, ["q9"])
    assert referral["screening_id"] == saved["id"] and referral["participant_id"] == sarah["id"]
    assert (referral["status"], referral["urgency"], referral["acknowledged_at"]) == ("open", "routine", None)
    assert json.loads(referral["triggers_json"]) == [
        {"kind": "risk_item", "instrument": "phq9", "item": "q9", "value": 1}
    ]
    assert "phq9 question 9" in referral["reason"]
    due = [r["due_on"] for r in db.query("select due_on from referral_followups order by due_on")]
    start = date(2026, 3, 2)
    weekly = [start + timedelta(weeks=n) for n in range(1, 9)]
    later = [weekly[-1] + timedelta(weeks=3 * n) for n in range(1, 5)]
    assert due == [d.isoformat() for d in weekly + later]
    # Risk is not an exclusion: the person may still join a group, with follow-up.
    assert db["participants"].get(sarah["id"])["status"] == "not_eligible"
    assert [e["action"] for e in audit.entries(db, "referrals")] == ["create"]
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert page.index("Safety alert") < page.index("<h1>")
    assert "Talk with the person in private." in page
    assert "question 9 (“You had thoughts of being better off dead, or thoughts of harming yourself.”)" in page
    assert "answered “On a few days”" in page
    assert re.search(r'action="/referrals/[^"]+/acknowledge"', page)


@pytest.mark.parametrize(
    ("answers", "extra", "urgency"),
    [
        (q(0, 0, 0, 0, 0, 0, 0, 0, 1), {}, "routine"),
        (q(0, 0, 0, 0, 0, 0, 0, 0, 2), {}, "urgent"),  # question 9 of 2 or 3 is urgent
        (q(0, 0, 0, 0, 0, 0, 0, 0, 3), {}, "urgent"),
        (q(0, 0, 0, 0, 0, 0, 0, 0, 0), {"risk_observed": True}, "urgent"),
        (q(0, 0, 0, 0, 0, 0, 0, 0, 0), {"exclusions": ["imminent_risk"]}, "urgent"),
        (q(0, 0, 0, 0, 0, 0, 0, 0, 0), {"exclusions": ["bipolar"]}, "routine"),
        (q(3, 3, 3, 3, 3, 3, 3, 3, None), {"risk_observed": True}, "urgent"),
    ],
)
def test_urgency(db, forms, sarah, answers, extra, urgency):
    outcome = save(db, forms, sarah, answers, **extra)
    assert outcome.referral["urgency"] == urgency
    assert only(db, "referrals")["urgency"] == urgency


def test_risk_observed_alone_raises_alert(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), risk_observed="1")
    referral = only(db, "referrals")
    assert json.loads(referral["triggers_json"]) == [{"kind": "risk_observed"}]
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Do not leave the person alone." in page and "The facilitator observed a risk" in page


def test_risk_item_of_another_instrument(db, forms, sarah):
    instrument = forms.instruments["local-depression-example"]
    answers = {item.id: 0 for item in instrument.items}
    answers["life-not-worth-living"] = 1
    outcome = save(db, forms, sarah, answers, instrument=instrument.id)
    assert outcome.referral["urgency"] == "routine"
    assert json.loads(only(db, "referrals")["triggers_json"])[0]["item"] == "life-not-worth-living"


@pytest.mark.parametrize("code", ["psychosis", "bipolar", "substance", "imminent_risk", "complex_trauma"])
def test_exclusion_routes_to_referral_not_enrolment(logged_in, sarah, db, code):
    response = submit(logged_in, sarah["id"], phq9(3, 3, 3, 3, 3, 3, 3, 3, 0), exclusion=code)
    assert response.status_code == 303
    saved, referral = only(db, "screenings"), only(db, "referrals")
    assert (saved["total"], saved["eligible"], json.loads(saved["exclusions_json"])) == (24, 0, [code])
    assert json.loads(referral["triggers_json"]) == [{"kind": "exclusion", "code": code}]
    assert db["participants"].get(sarah["id"])["status"] == "referred"
    with pytest.raises(participants.EnrolmentBlocked):
        participants.set_status(db, sarah["id"], "enrolled", "cycle", None)
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Not for a group now: refer the person." in page and "Eligible for a group." not in page


def test_later_screening_without_exclusion_lifts_the_block(db, forms, sarah):
    save(db, forms, sarah, q(2, 2, 2, 2, 2, 0, 0, 0, 0), exclusions=["substance"])
    save(db, forms, sarah, q(2, 2, 2, 2, 2, 0, 0, 0, 0), administered_on=date(2026, 4, 1))
    assert participants.enrolment_blockers(db, sarah["id"]) == []
    participants.set_status(db, sarah["id"], "enrolled", "cycle", None)


def test_risk_for_an_enrolled_member_keeps_status_and_refers(db, forms, sarah):
    participants.set_status(db, sarah["id"], "enrolled", "cycle", None)
    outcome = save(db, forms, sarah, q(0, 0, 0, 0, 0, 0, 0, 0, 2), occasion="mid")
    assert outcome.referral is not None
    assert db["participants"].get(sarah["id"])["status"] == "enrolled"


def test_referral_failure_saves_no_screening(db, forms, sarah, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(referrals, "create", broken)
    with pytest.raises(RuntimeError):
        save(db, forms, sarah, q(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert count(db, "screenings") == 0 and count(db, "referrals") == 0
    assert db["participants"].get(sarah["id"])["status"] == "registered"


# The property: item 9 above 0 is never saved without an alert and a referral -------

ANSWER = st.one_of(st.none(), st.integers(0, 3))
OTHER_ANSWERS = st.fixed_dictionaries({f"q{i}": ANSWER for i in (1, 2, 3, 4, 5, 6, 7, 8, 10)})


@checks(150)
@given(
    others=OTHER_ANSWERS,
    item9=st.integers(1, 3),
    as_text=st.booleans(),
    risk_observed=st.booleans(),
    exclusions=st.lists(st.sampled_from(["psychosis", "bipolar", "substance", "imminent_risk"]), unique=True),
    occasion=st.sampled_from(OCCASIONS),
)
def test_property_core_item9_always_saved_with_alert_and_referral(
    db, forms, sarah, others, item9, as_text, risk_observed, exclusions, occasion
):
    answers = {**others, "q9": item9}
    if as_text:
        answers = {k: "" if v is None else str(v) for k, v in answers.items()}
    outcome = save(db, forms, sarah, answers, risk_observed=risk_observed, exclusions=exclusions, occasion=occasion)
    saved = db["screenings"].get(outcome.screening["id"])
    referral = referrals.for_screening(db, saved["id"])
    assert saved["risk"] == 1 and "q9" in json.loads(saved["risk_items_json"])
    assert referral is not None and referral["status"] == "open" and referral["acknowledged_at"] is None
    assert {"kind": "risk_item", "instrument": "phq9", "item": "q9", "value": item9} in referral["triggers"]
    assert len(referrals.followups(db, referral["id"])) == 12
    assert any(r["id"] == referral["id"] for r in referrals.home_summary(db, [sarah["site_id"]])["unacknowledged"])


@checks(100)
@given(others=OTHER_ANSWERS, item9=st.sampled_from([0, None]))
def test_property_core_no_risk_no_referral(db, forms, sarah, others, item9):
    outcome = save(db, forms, sarah, {**others, "q9": item9})
    assert outcome.referral is None and outcome.screening["risk"] == 0
    assert referrals.for_screening(db, outcome.screening["id"]) is None


@checks(25)
@given(others=OTHER_ANSWERS, item9=st.integers(1, 3))
def test_property_web_item9_always_saved_with_alert_and_referral(logged_in, db, sarah, others, item9):
    answers = {f"answer_{k}": "" if v is None else str(v) for k, v in others.items()}
    response = submit(logged_in, sarah["id"], {**answers, "answer_q9": str(item9)})
    assert response.status_code == 303
    screening_id = response.headers["Location"].rsplit("/", 1)[1]
    referral = referrals.for_screening(db, screening_id)
    assert referral is not None and referral["acknowledged_at"] is None
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert 'class="alert-box safety-alert" role="alert"' in page
    assert f'action="/referrals/{referral["id"]}/acknowledge"' in page
    assert referral["participant_code"] in logged_in.get("/").get_data(as_text=True)


def test_every_phq9_answer_combination_with_item9_is_a_risk(forms):
    """Exhaustively, in the scoring core: no answer set with item 9 above 0 escapes the risk list."""
    phq = forms.instruments["phq9"]
    values = [None, 0, 3]  # the extremes and a gap, for every other item: 3^9 combinations
    for combo in itertools.product(values, repeat=9):
        for item9 in (1, 2, 3):
            answers = dict(zip(["q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q10"], combo, strict=True))
            assert "q9" in phq.score({**answers, "q9": item9}).risk_items


# Acknowledge, status, follow-ups -------------------------------------------------


def test_acknowledge_records_who_and_when_and_audit(logged_in, sarah, db):
    response = submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 2))
    referral = only(db, "referrals")
    home = logged_in.get("/").get_data(as_text=True)
    assert "Safety alerts not yet acknowledged: 1" in home
    assert home.index("Safety alerts not yet acknowledged") < home.index("My sites")
    ack = post_form(logged_in, f"/referrals/{referral['id']}/acknowledge", {"next": response.headers["Location"]})
    assert ack.status_code == 303 and ack.headers["Location"] == response.headers["Location"]
    after = db["referrals"].get(referral["id"])
    assert after["acknowledged_by"] == users.get_user_by_username(db, "amina")["id"]
    assert after["acknowledged_at"] is not None
    assert [e["action"] for e in audit.entries(db, "referrals", referral["id"])] == ["create", "acknowledge"]
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Acknowledged by Amina Nakato" in page and "/acknowledge" not in page
    home = logged_in.get("/").get_data(as_text=True)
    assert "Safety alerts not yet acknowledged" not in home
    assert "Open safety referrals: 1" in home and sarah["code"] in home
    # A second acknowledgement changes nothing.
    post_form(logged_in, f"/referrals/{referral['id']}/acknowledge", {})
    assert db["referrals"].get(referral["id"])["acknowledged_at"] == after["acknowledged_at"]


def test_acknowledge_next_must_stay_on_site(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 2))
    referral = only(db, "referrals")
    ack = post_form(logged_in, f"/referrals/{referral['id']}/acknowledge", {"next": "//evil.example/"})
    assert ack.headers["Location"] == f"/referrals/{referral['id']}"


def test_referral_of_another_site_is_404(app, logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 2))
    referral = only(db, "referrals")
    grace = app.test_client()
    login(grace, "grace")
    assert grace.get(f"/referrals/{referral['id']}").status_code == 404
    assert post_form(grace, f"/referrals/{referral['id']}/acknowledge", {}).status_code == 404
    assert db["referrals"].get(referral["id"])["acknowledged_at"] is None
    assert sarah["code"] not in grace.get("/").get_data(as_text=True)
    assert sarah["code"] not in grace.get("/referrals/").get_data(as_text=True)


def test_status_moves_forward_after_acknowledgement(app, logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 2))
    referral = only(db, "referrals")
    url = f"/referrals/{referral['id']}"
    early = post_form(logged_in, f"{url}/status", {"status": "referred", "referred_to": "Kawempe HC"})
    assert early.status_code == 400 and "Acknowledge the safety alert" in early.get_data(as_text=True)
    post_form(logged_in, f"{url}/acknowledge", {})
    no_place = post_form(logged_in, f"{url}/status", {"status": "referred"})
    assert no_place.status_code == 400
    assert post_form(logged_in, f"{url}/status", {"status": "referred", "referred_to": "Kawempe HC"}).status_code == 303
    back = post_form(logged_in, f"{url}/status", {"status": "open"})
    assert back.status_code == 400 and "forward only" in back.get_data(as_text=True)
    assert post_form(logged_in, f"{url}/status", {"status": "followed_up", "note": "seen"}).status_code == 303
    facilitator_close = post_form(logged_in, f"{url}/status", {"status": "closed", "note": "well"})
    assert facilitator_close.status_code == 400
    coord = app.test_client()
    login(coord, "coord")
    no_outcome = post_form(coord, f"{url}/status", {"status": "closed", "note": "Stable after 3 months"})
    assert no_outcome.status_code == 400 and "Choose the outcome" in no_outcome.get_data(as_text=True)
    no_contact = post_form(coord, f"{url}/status", {"status": "closed", "outcome": "seen"})
    assert no_contact.status_code == 400 and "at least one follow-up contact" in no_contact.get_data(as_text=True)
    first = referrals.followups(db, referral["id"])[0]
    assert (
        post_form(
            logged_in, f"{url}/followups/{first['id']}", {"done_on": date.today().isoformat(), "note": "called"}
        ).status_code
        == 303
    )
    assert db["referrals"].get(referral["id"])["status"] == "followed_up"
    assert (
        post_form(
            coord, f"{url}/status", {"status": "closed", "outcome": "seen", "note": "Stable after 3 months"}
        ).status_code
        == 303
    )
    closed = db["referrals"].get(referral["id"])
    assert (closed["status"], closed["referred_to"], closed["outcome"]) == ("closed", "Kawempe HC", "seen")
    assert closed["closed_at"]
    events = [e["status"] for e in referrals.events(db, referral["id"])]
    assert events == ["open", "referred", "followed_up", "closed"]
    page = coord.get(url, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Outcome: seen by a health worker" in page and "alert acknowledged" in page
    assert "follow-up contact of" in page
    assert sarah["code"] not in logged_in.get("/").get_data(as_text=True)
    assert post_form(logged_in, f"{url}/status", {"status": "bogus"}).status_code == 400


def test_overdue_followups_on_top_of_home_until_closed(app, logged_in, sarah, db, set_today):
    set_today("2026-03-02")
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 1))
    referral = only(db, "referrals")
    post_form(logged_in, f"/referrals/{referral['id']}/acknowledge", {})
    set_today("2026-03-20")  # follow-ups due 9 and 16 March are overdue
    summary = referrals.home_summary(db, [sarah["site_id"]])
    assert [f["due_on"] for f in summary["overdue"]] == ["2026-03-09", "2026-03-16"]
    coord = app.test_client()
    login(coord, "coord")
    # Coord works at an English and a Swahili site: ask for English, as a browser would.
    home = coord.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Follow-ups overdue: 2" in home and "follow-up overdue since" in home
    assert home.index("Open safety referrals") < home.index("My sites")
    first = referrals.followups(db, referral["id"])[0]
    done = post_form(
        logged_in,
        f"/referrals/{referral['id']}/followups/{first['id']}",
        {"done_on": "2026-03-19", "note": "Called; feeling safer"},
    )
    assert done.status_code == 303
    assert len(referrals.home_summary(db, [sarah["site_id"]])["overdue"]) == 1
    again = post_form(logged_in, f"/referrals/{referral['id']}/followups/{first['id']}", {"done_on": "2026-03-19"})
    assert again.status_code == 400
    future = referrals.followups(db, referral["id"])[1]
    bad = post_form(logged_in, f"/referrals/{referral['id']}/followups/{future['id']}", {"done_on": "2026-04-01"})
    assert bad.status_code == 400
    bad = post_form(logged_in, f"/referrals/{referral['id']}/followups/{future['id']}", {"done_on": "soon"})
    assert bad.status_code == 400


def test_last_followup_done_plans_another(db, forms, sarah):
    plan = FollowupPlan(weekly=1, later_interval_weeks=2, later_count=0)
    outcome = screening.save_screening(
        db,
        participant=sarah,
        instrument=forms.instruments["phq9"],
        raw_answers=q(0, 0, 0, 0, 0, 0, 0, 0, 1),
        submission_key=screening.new_submission_key(),
        actor=users.get_user_by_username(db, "amina"),
        intake=forms.intake,
        plan=plan,
        administered_on=date(2026, 3, 2),
    )
    referral = outcome.referral
    (only_one,) = referrals.followups(db, referral["id"])
    assert only_one["due_on"] == "2026-03-09"
    referrals.record_followup(
        db,
        referral,
        only_one["id"],
        users.get_user_by_username(db, "amina"),
        note=None,
        done_on=date(2026, 3, 9),
        plan=plan,
    )
    assert [f["due_on"] for f in referrals.followups(db, referral["id"])] == ["2026-03-09", "2026-03-23"]


@pytest.mark.parametrize(
    "kwargs",
    [{"later_interval_weeks": 5}, {"later_interval_weeks": 1}, {"weekly": -1}, {"weekly": 0, "later_count": 0}],
)
def test_followup_plan_limits(kwargs):
    with pytest.raises(ValueError):
        FollowupPlan(**kwargs)


def test_followup_plan_setting_checked_at_start(tmp_path):
    from group_ipt.base.settings import ConfigError

    with pytest.raises(ConfigError, match="REFERRAL_LATER_INTERVAL_WEEKS"):
        make_app(tmp_path / "data", REFERRAL_LATER_INTERVAL_WEEKS=6)


def test_followup_plan_from_settings(tmp_path, db, forms, sarah):
    plan = FollowupPlan.from_config(
        {"REFERRAL_WEEKLY_FOLLOWUPS": 4, "REFERRAL_LATER_INTERVAL_WEEKS": 2, "REFERRAL_LATER_FOLLOWUPS": 2}
    )
    assert plan.dates(date(2026, 1, 1)) == [
        date(2026, 1, 8),
        date(2026, 1, 15),
        date(2026, 1, 22),
        date(2026, 1, 29),
        date(2026, 2, 12),
        date(2026, 2, 26),
    ]


def test_manual_referral_from_the_participant_page(logged_in, sarah, db):
    response = post_form(
        logged_in, f"/referrals/new/{sarah['id']}", {"reason": "Said she wants to <end> it all", "urgency": "urgent"}
    )
    assert response.status_code == 303
    referral = only(db, "referrals")
    assert referral["urgency"] == "urgent" and referral["screening_id"] is None
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "Said she wants to &lt;end&gt; it all" in page and "Do not leave the person alone." in page
    bad = post_form(logged_in, f"/referrals/new/{sarah['id']}", {"reason": "", "urgency": "urgent"})
    assert bad.status_code == 400
    bad = post_form(logged_in, f"/referrals/new/{sarah['id']}", {"reason": "x", "urgency": "whenever"})
    assert bad.status_code == 400
    assert count(db, "referrals") == 1


def test_participant_page_shows_unacknowledged_alert_first(logged_in, sarah, db):
    submit(logged_in, sarah["id"], phq9(0, 0, 0, 0, 0, 0, 0, 0, 3))
    page = logged_in.get(f"/participants/{sarah['id']}").get_data(as_text=True)
    assert page.index("Safety alert") < page.index("Screen with a questionnaire")
    assert page.index("Safety alert") < page.index("Measures due")


def test_referrals_list_puts_unacknowledged_first(logged_in, db, forms, sarah):
    other = register(db, "Joseph Okello", sex="male")
    first = save(db, forms, sarah, q(0, 0, 0, 0, 0, 0, 0, 0, 1)).referral
    second = save(db, forms, other, q(0, 0, 0, 0, 0, 0, 0, 0, 1)).referral
    referrals.acknowledge(db, first, users.get_user_by_username(db, "amina"))
    listed = referrals.listing(db, [sarah["site_id"]])
    assert [r["id"] for r in listed] == [second["id"], first["id"]]
    page = logged_in.get("/referrals/").get_data(as_text=True)
    assert page.index("Joseph Okello") < page.index("Sarah Namuli")


def test_set_status_core_errors(db, forms, sarah):
    referral = save(db, forms, sarah, q(0, 0, 0, 0, 0, 0, 0, 0, 1)).referral
    amina = users.get_user_by_username(db, "amina")
    with pytest.raises(ReferralError, match="Acknowledge"):
        referrals.set_status(db, referral, "referred", amina, referred_to="HC")
    referrals.acknowledge(db, referral, amina)
    with pytest.raises(ReferralError, match="coordinator or supervisor"):
        referrals.set_status(db, referral, "closed", amina, note="ok")


def test_home_lists_overdue_referrals_and_a_few_others_with_a_link_to_all(monkeypatch, logged_in, sarah, db):
    from group_ipt.web.views import referrals as views

    submit(logged_in, sarah["id"], phq9(1, 1, 1, 1, 1, 1, 1, 1, 1))
    monkeypatch.setattr(views, "HOME_OPEN_SHOWN", 0)
    db.execute("update referral_followups set due_on = '2026-01-01'")  # overdue: always listed
    db.conn.commit()
    page = logged_in.get("/").get_data(as_text=True)
    assert "follow-up overdue since" in page and "See all" not in page
    db.execute("update referral_followups set due_on = '2999-01-01'")  # not overdue: beyond the few shown
    db.conn.commit()
    page = logged_in.get("/").get_data(as_text=True)
    assert "See all 1 open referrals" in page
