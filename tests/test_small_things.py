"""Small things a user trips on (issue 19, item 7): plurals, times without seconds, facilitator pickers,
the demo supervisor's facilitators, and a follow-up plan that moves on after an early contact."""

from __future__ import annotations

import re
from datetime import date

import pytest
from flask import render_template_string
from flask_babel import force_locale

from group_ipt.base.errors import NP_
from group_ipt.core import cycles, referrals, screening, supervision, users
from group_ipt.core.cycles import CycleError, Message
from group_ipt.core.referrals import FollowupPlan
from group_ipt.demo import programme as demo
from group_ipt.store import db as dbmod
from group_ipt.web.views.cycles import tr

from .conftest import add_participant, login, make_app, post_form
from .test_cycles import make_cycle


def closing_message(count: int) -> CycleError:
    return CycleError(
        NP_(
            "%(count)s session has no attendance yet; record or cancel it, or close the cycle early with a reason.",
            "%(count)s sessions have no attendance yet; record or cancel them, or close the cycle early with a reason.",
        ),
        count=count,
    )


def test_a_count_picks_its_plural_form_in_english_and_in_each_language(app):
    assert str(closing_message(1)).startswith("1 session has no attendance yet; record or cancel it")
    assert str(closing_message(3)).startswith("3 sessions have no attendance yet")
    with app.test_request_context():
        assert tr(closing_message(1)).startswith("1 session has")
        with force_locale("fr"):
            one, many = tr(closing_message(1)), tr(closing_message(4))
            assert one != many and "1" in one and "4" in many and "session has" not in one
        message = Message(
            NP_(
                "The group has %(count)s member; the protocol recommends %(min)s to %(max)s.",
                "The group has %(count)s members; the protocol recommends %(min)s to %(max)s.",
            ),
            {"count": 1, "min": 5, "max": 12},
        )
        assert str(message) == tr(message) == "The group has 1 member; the protocol recommends 5 to 12."


def test_enrolling_one_person_says_person(client, db, protocols):
    cycle = make_cycle(db, protocols)
    esther = add_participant(db, name="Esther Eligible")
    login(client, "coord")
    r = post_form(
        client,
        f"/cycles/{cycle['id']}/enrol",
        {"participant_id": esther["id"]},
        form_page=f"/cycles/{cycle['id']}/enrol",
        follow_redirects=True,
    )
    assert "1 person enrolled in KMP-C001." in r.get_data(as_text=True)


@pytest.mark.parametrize(("lang", "expected"), [("en", "2:00\u202fPM"), ("fr", "14:00"), ("sw", "14:00")])
def test_times_show_in_the_locales_format_without_seconds(app, lang, expected):
    with app.test_request_context(), force_locale(lang):
        assert render_template_string("{{ '14:00'|time_of_day }}") == expected
        moment = render_template_string("{{ '2026-03-02T09:05:07+00:00'|datetime }}")
        assert "9:05" in moment and ":07" not in moment and "2026" in moment


def test_the_facilitator_picker_lists_the_cycles_site_staff_once_each(client, db):
    msk = users.get_site(db, "MSK")
    users.create_user(
        db,
        "both",
        "x" * 12,
        "facilitator",
        display_name="Bea Both",
        site_ids=[users.get_site(db, "KMP")["id"], msk["id"]],
        hash_method="pbkdf2:sha256:1000",
    )
    login(client, "coord")
    first = client.get("/cycles/new").get_data(as_text=True)
    assert 'name="facilitator_1"' not in first and 'method="get"' in first  # two sites: the site comes first
    page = client.get(f"/cycles/new?site_id={users.get_site(db, 'KMP')['id']}").get_data(as_text=True)
    picker = page[page.index('id="facilitator_1"') : page.index('id="facilitator_2"')]
    names = re.findall(r"<option value=\"[^\"]+\"[^>]*>([^<]+) \(", picker)
    assert sorted(names) == ["Amina Nakato", "Bea Both", "Ruth Coordinator"]
    assert "Grace Wanjiru" not in page


def test_the_demo_supervisor_has_facilitators_and_a_meeting(tmp_path):
    app = make_app(tmp_path / "data")
    db = dbmod.connect(app.config["DATABASE"])
    with app.app_context():
        demo.load_demo(db, app)
        demo.load_demo(db, app)  # twice adds nothing
    sam = users.get_user_by_username(db, "super")
    watched = {
        r["username"]
        for r in supervision.supervised(
            db, sam, sam["site_ids"] if "site_ids" in sam else [s["id"] for s in users.list_sites(db)]
        )
    }
    assert watched == {"amina", "joseph", "grace", "peter"}
    assert db["supervisor_facilitators"].count == 4 and db["supervision_logs"].count == 1
    client = app.test_client()
    login(client, "super", demo.DEMO_PASSWORD)
    page = client.get("/supervision/").get_data(as_text=True)
    assert "Amina Nakato" in page and "Joseph Okello" in page


@pytest.fixture
def referral(db, app):
    sarah = add_participant(db, name="Sarah Namuli")
    forms = app.extensions["group_ipt_forms"]
    answers = {f"q{i}": 0 for i in range(1, 9)} | {"q9": 1}
    outcome = screening.save_screening(
        db,
        participant=sarah,
        instrument=forms.instruments["phq9"],
        raw_answers=answers,
        submission_key=screening.new_submission_key(),
        actor=users.get_user_by_username(db, "amina"),
        intake=forms.intake,
        plan=PLAN,
        administered_on=date(2026, 3, 2),
    )
    return outcome.referral


PLAN = FollowupPlan(weekly=3, later_interval_weeks=2, later_count=1)


def dues(db, referral) -> list[tuple[str, str | None]]:
    return [(f["due_on"], f["done_on"]) for f in referrals.followups(db, referral["id"])]


def test_an_early_contact_moves_the_plan_on_without_a_gap(db, referral, set_today):
    set_today("2026-03-12")
    assert dues(db, referral) == [
        ("2026-03-09", None),
        ("2026-03-16", None),
        ("2026-03-23", None),
        ("2026-04-06", None),
    ]
    first = referrals.followups(db, referral["id"])[0]
    referrals.record_followup(
        db,
        referral,
        first["id"],
        users.get_user_by_username(db, "amina"),
        note=None,
        done_on=date(2026, 3, 5),
        plan=PLAN,
    )  # four days early
    assert dues(db, referral) == [
        ("2026-03-09", "2026-03-05"),
        ("2026-03-12", None),
        ("2026-03-19", None),
        ("2026-04-02", None),
    ]


def test_a_contact_on_time_or_late_changes_no_date(db, referral, set_today):
    set_today("2026-03-12")
    first = referrals.followups(db, referral["id"])[0]
    referrals.record_followup(
        db,
        referral,
        first["id"],
        users.get_user_by_username(db, "amina"),
        note=None,
        done_on=date(2026, 3, 11),
        plan=PLAN,
    )
    assert [d for d, _ in dues(db, referral)] == ["2026-03-09", "2026-03-16", "2026-03-23", "2026-04-06"]


def test_the_last_contact_done_early_plans_the_next_from_the_contact(db, set_today, app):
    set_today("2026-03-20")
    sarah = add_participant(db, name="Sarah Namuli")
    forms = app.extensions["group_ipt_forms"]
    plan = FollowupPlan(weekly=1, later_interval_weeks=2, later_count=0)
    outcome = screening.save_screening(
        db,
        participant=sarah,
        instrument=forms.instruments["phq9"],
        raw_answers={f"q{i}": 0 for i in range(1, 9)} | {"q9": 1},
        submission_key=screening.new_submission_key(),
        actor=users.get_user_by_username(db, "amina"),
        intake=forms.intake,
        plan=plan,
        administered_on=date(2026, 3, 2),
    )
    (only,) = referrals.followups(db, outcome.referral["id"])
    referrals.record_followup(
        db,
        outcome.referral,
        only["id"],
        users.get_user_by_username(db, "amina"),
        note=None,
        done_on=date(2026, 3, 6),
        plan=plan,
    )
    assert [f["due_on"] for f in referrals.followups(db, outcome.referral["id"])] == ["2026-03-09", "2026-03-20"]
    assert cycles  # the cycles module is the home of the plural messages tested above
