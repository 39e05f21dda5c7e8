"""A member's clinical record through a whole who-8 cycle, and who can and cannot see it."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from group_ipt.core import audit, clinical, cycles, referrals, screening, sessions, users
from group_ipt.core.clinical import ClinicalError
from group_ipt.core.sessions import SessionEntry

from .conftest import FAST_HASH, PASSWORD, add_participant, login, post_form
from .test_cycles import make_cycle, session_no

END = date(2026, 5, 1)
PLAN = referrals.FollowupPlan()
BASELINE = [2, 2, 2, 2, 2, 2, 1, 1, 0]  # 14
AT_END = [1, 1, 1, 1, 0, 0, 0, 0, 0]  # 4


def user(db, name):
    return users.get_user_by_username(db, name)


def give_phq9(app, db, participant, values, *, occasion, on, cycle_id=None, session_id=None, actor="amina"):
    forms = app.extensions["group_ipt_forms"]
    return screening.save_screening(
        db,
        participant=participant,
        instrument=forms.instruments["phq9"],
        raw_answers={f"q{i}": "" if v is None else str(v) for i, v in enumerate(values, start=1)},
        submission_key=screening.new_submission_key(),
        actor=user(db, actor),
        intake=forms.intake,
        plan=PLAN,
        occasion=occasion,
        administered_on=on,
        cycle_id=cycle_id,
        session_id=session_id,
    ).screening


def enrolled(db, cycle, participant):
    member_id = cycles.enrol(db, cycle["id"], participant["id"], actor=None, today=date(2026, 2, 20))[0]["id"]
    return clinical.get_member(db, member_id)


def hold(db, protocols, cycle_id, number, member_ids, fidelity=None):
    s = session_no(db, cycle_id, number)
    sessions.record_session(
        db,
        s["id"],
        SessionEntry(dict.fromkeys(member_ids, "present"), fidelity=fidelity),
        expected_version=s["version"],
        protocols=protocols,
        actor=user(db, "amina"),
        today=END,
    )
    return s


@pytest.fixture
def people(app, db, supervisor):
    """Everyone who might try to open the record: two more KMP users and the MSK facilitator."""
    kmp = users.get_site(db, "KMP")
    users.create_user(
        db, "bob", PASSWORD, "facilitator", display_name="Bob Other", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    users.create_user(
        db, "sue", PASSWORD, "supervisor", display_name="Sue Unassigned", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    return supervisor


def test_record_of_one_member_through_a_whole_who8_cycle(app, db, protocols, people, set_today):
    set_today("2026-05-01")
    amina = user(db, "amina")
    cycle = make_cycle(db, protocols)
    agnes = add_participant(db, name="Agnes Auma")
    member_id = cycles.enrol(db, cycle["id"], agnes["id"], actor=None, today=date(2026, 2, 20))[0]["id"]
    member = clinical.get_member(db, member_id)

    # Pre-group (individual) session.
    s0 = session_no(db, cycle["id"], 0)
    baseline = give_phq9(
        app, db, agnes, BASELINE, occasion="baseline", on=date(2026, 3, 2), cycle_id=cycle["id"], session_id=s0["id"]
    )
    clinical.save_pregroup(
        db,
        member,
        actor=amina,
        plan=PLAN,
        screening_id=baseline["id"],
        problem_area="grief",
        problem_area_2=None,
        formulation="Low since her mother died in June",
        goals="Sleep better; visit her sister",
        medication_assessment="yes",
        group_consent=True,
        today=date(2026, 3, 2),
    )
    clinical.add_person(
        db,
        member,
        actor=amina,
        name="Mary",
        relationship="sister",
        closeness="close",
        quality="supportive",
        recent_change="moved to town",
    )
    clinical.add_person(
        db,
        member,
        actor=amina,
        name="John",
        relationship="husband",
        closeness="distant",
        quality="conflicted",
        recent_change="",
    )
    clinical.add_event(db, member, actor=amina, happened="2025-06", event="Mother died", mood="lower")
    clinical.add_event(db, member, actor=amina, happened="2025-01", event="Good harvest", mood="better")
    hold(db, protocols, cycle["id"], 0, [member_id])
    medication = referrals.for_participant(db, agnes["id"])
    assert [(r["urgency"], r["status"], r["triggers"][0]["kind"]) for r in medication] == [
        ("routine", "open", "medication_assessment")
    ]
    consent = db.execute(
        "select given from consents where participant_id = ? and purpose = 'group'", (agnes["id"],)
    ).fetchall()
    assert consent == [(1,)]

    # The group sessions; progress on goals and a revised problem area along the way.
    for number in range(1, 9):
        hold(db, protocols, cycle["id"], number, [member_id], fidelity={"started_on_time": True})
        if number == 4:
            clinical.record_goal_progress(
                db,
                member,
                actor=amina,
                session_id=session_no(db, cycle["id"], 4)["id"],
                progress="some",
                note="slept better twice",
                today=END,
            )
        if number == 5:
            clinical.revise_problem_area(
                db,
                member,
                actor=amina,
                problem_area="disputes",
                problem_area_2="grief",
                reason="the quarrels with John came out in session 5",
                session_id=session_no(db, cycle["id"], 5)["id"],
            )
    s8 = session_no(db, cycle["id"], 8)
    give_phq9(app, db, agnes, AT_END, occasion="end", on=date(2026, 4, 27), cycle_id=cycle["id"], session_id=s8["id"])

    # Termination.
    clinical.save_relapse_plan(
        db,
        member,
        actor=amina,
        warning_signs="Not sleeping, staying in the house",
        people="Mary; the group",
        actions="Call Mary; see the health worker",
    )
    with pytest.raises(ClinicalError, match="close the cycle first"):
        clinical.decide_outcome(
            db,
            member,
            actor=amina,
            decision="maintenance",
            note="",
            plan=PLAN,
            protocols={"who-8": dataclasses.replace(protocols["who-8"], maintenance_monthly_sessions=3)},
            today=END,
        )
    counts = cycles.close_cycle(db, cycle["id"], protocols["who-8"], early=False, actor=user(db, "coord"), today=END)
    assert counts == {"completed": 1, "dropped_out": 0}
    with pytest.raises(ClinicalError, match="has no maintenance sessions"):
        clinical.decide_outcome(
            db, member, actor=amina, decision="maintenance", note="", plan=PLAN, protocols=protocols, today=END
        )
    with_maintenance = {"who-8": dataclasses.replace(protocols["who-8"], maintenance_monthly_sessions=3)}
    outcome = clinical.decide_outcome(
        db,
        member,
        actor=amina,
        decision="maintenance",
        note="keeps meeting",
        plan=PLAN,
        protocols=with_maintenance,
        today=END,
    )
    assert outcome["sessions_added"] == 3
    again = clinical.decide_outcome(
        db,
        member,
        actor=amina,
        decision="maintenance",
        note="keeps meeting",
        plan=PLAN,
        protocols=with_maintenance,
        today=END,
    )
    assert again["sessions_added"] == 0  # once per cycle
    maintenance = [
        (s["kind"], s["scheduled_date"]) for s in cycles.sessions(db, cycle["id"]) if s["kind"] == "maintenance"
    ]
    assert maintenance == [("maintenance", "2026-05-25"), ("maintenance", "2026-06-22"), ("maintenance", "2026-07-20")]
    # The completed member's attendance is taken at the first maintenance session, after the cycle closed.
    first_maintenance = next(s for s in cycles.sessions(db, cycle["id"]) if s["kind"] == "maintenance")
    assert [m["id"] for m in sessions.expected_members(db, first_maintenance)] == [member_id]
    sessions.record_session(
        db,
        first_maintenance["id"],
        sessions.SessionEntry(attendance={member_id: "present"}),
        expected_version=first_maintenance["version"],
        protocols=with_maintenance,
        actor=amina,
        today=date(2026, 5, 25),
    )
    assert db.execute("select status from attendance where session_id = ?", (first_maintenance["id"],)).fetchall() == [
        ("present",)
    ]

    # The record holds all three phases.
    data = clinical.record(db, clinical.get_member(db, member_id))
    assert data["pregroup"]["formulation"] == "Low since her mother died in June"
    assert data["pregroup"]["medication_referral_id"] == medication[0]["id"]
    assert [p["name"] for p in data["inventory"]] == ["Mary", "John"]
    assert [e["event"] for e in data["timeline"]] == ["Good harvest", "Mother died"]
    assert [(h["problem_area"], h["problem_area_2"]) for h in data["problem_area_history"]] == [
        ("grief", None),
        ("disputes", "grief"),
    ]
    assert data["problem_area_history"][1]["formulation"] == "Low since her mother died in June"
    assert (data["member"]["problem_area"], data["member"]["goals"]) == ("disputes", "Sleep better; visit her sister")
    assert [(g["number"], g["progress"]) for g in data["goal_progress"]] == [(4, "some")]
    assert [(s["occasion"], s["total"]) for s in data["screenings"]] == [("baseline", 14), ("end", 4)]
    assert data["relapse_plan"]["people"] == "Mary; the group"
    assert (data["outcome"]["decision"], data["outcome"]["extra_sessions"]) == ("maintenance", 3)
    # The new tables sync like every other (the sync triggers picked them up).
    synced = {r[0] for r in db.execute("select distinct table_name from sync_rows")}
    assert {
        "pregroup_records",
        "inventory_people",
        "timeline_events",
        "problem_area_history",
        "goal_progress",
        "relapse_plans",
        "outcome_decisions",
    } <= synced

    # Who can see it, who can change it; every view is logged.
    path = f"/members/{member_id}/record"
    expected = {"amina": 200, "sam": 200, "coord": 200, "admin": 200, "bob": 404, "sue": 404, "grace": 404}
    seen = {}
    for name in expected:
        client = app.test_client()
        login(client, name)
        response = client.get(path)
        seen[name] = response.status_code
        if response.status_code == 200:
            html = response.get_data(as_text=True)
            for text in ("Mary", "Mother died", "Call Mary; see the health worker", "the quarrels with John"):
                assert text in html, (name, text)
        refused = post_form(
            client,
            f"{path}/relapse-plan",
            {
                "warning_signs": "Not sleeping, staying in the house",
                "people": "Mary; the group",
                "actions": "Call Mary; see the health worker",
            },
        )
        assert refused.status_code == {"amina": 303, "coord": 303, "admin": 303, "sam": 403}.get(name, 404), name
    assert seen == expected
    views = [e["username"] for e in audit.entries(db, "members", member_id) if e["action"] == "view"]
    assert sorted(views) == ["admin", "amina", "coord", "sam"]  # one per page shown, none for the refused
    can_see = {
        name: clinical.can_see_record(db, user(db, name), clinical.get_member(db, member_id)) for name in expected
    }
    assert can_see == {name: code == 200 for name, code in expected.items()}


def test_supervisor_loses_access_when_unassigned(app, db, protocols, supervisor):
    from group_ipt.core import supervision

    cycle = make_cycle(db, protocols)
    p = add_participant(db, name="Agnes Auma")
    member = enrolled(db, cycle, p)
    assert clinical.can_see_record(db, supervisor, member)
    kmp = users.get_site(db, "KMP")
    assignment = supervision.assignments(db, [kmp["id"]])[0]
    supervision.unassign(db, assignment["id"], [kmp["id"]], actor=user(db, "coord"))
    assert not clinical.can_see_record(db, supervisor, member)


def test_extend_adds_weekly_sessions_after_the_last_once(app, db, protocols, set_today):
    set_today("2026-04-27")
    cycle = make_cycle(db, protocols)
    ids = [enrolled(db, cycle, add_participant(db, name=n))["id"] for n in ("Agnes Auma", "Betty Birungi")]
    amina = user(db, "amina")
    for member_id in ids:  # two members need it: the group gets the extra sessions once
        result = clinical.decide_outcome(
            db,
            clinical.get_member(db, member_id),
            actor=amina,
            decision="extend",
            note="",
            extra_sessions=2,
            plan=PLAN,
            protocols=protocols,
            today=date(2026, 4, 27),
        )
    assert result["sessions_added"] == 0
    extra = [
        (s["kind"], s["number"], s["scheduled_date"]) for s in cycles.sessions(db, cycle["id"]) if s["kind"] == "makeup"
    ]
    assert extra == [("makeup", 8, "2026-05-04"), ("makeup", 8, "2026-05-11")]


@pytest.mark.parametrize(
    ("decision", "extra", "note", "message"),
    [
        ("extend", 0, "", "Choose from 1 to 4 extra sessions"),
        ("extend", 9, "", "Choose from 1 to 4 extra sessions"),
        ("refer", 0, "", "Say where the member is referred"),
        ("maybe", 0, "", "Unknown answer"),
        ("", 0, "", "Choose one of the answers"),
    ],
)
def test_outcome_decision_refuses_bad_input(app, db, protocols, decision, extra, note, message):
    cycle = make_cycle(db, protocols)
    p = add_participant(db)
    member = enrolled(db, cycle, p)
    with pytest.raises(ClinicalError, match=message):
        clinical.decide_outcome(
            db,
            member,
            actor=user(db, "amina"),
            decision=decision,
            note=note,
            extra_sessions=extra,
            plan=PLAN,
            protocols=protocols,
            today=END,
        )
    assert db["outcome_decisions"].count == 0


def test_refer_decision_opens_one_routine_referral(app, db, protocols):
    cycle = make_cycle(db, protocols)
    p = add_participant(db)
    member = enrolled(db, cycle, p)
    for _ in range(2):
        clinical.decide_outcome(
            db,
            member,
            actor=user(db, "amina"),
            decision="refer",
            note="psychiatric clinic",
            plan=PLAN,
            protocols=protocols,
            today=END,
        )
    found = referrals.for_participant(db, p["id"])
    assert [(r["urgency"], r["triggers"][0]["kind"]) for r in found] == [("routine", "outcome_referral")]


def test_revising_to_the_same_area_without_news_is_refused(app, db, protocols):
    cycle = make_cycle(db, protocols)
    p = add_participant(db)
    member = enrolled(db, cycle, p)
    amina = user(db, "amina")
    clinical.revise_problem_area(db, member, actor=amina, problem_area="grief", problem_area_2=None, reason="first")
    with pytest.raises(ClinicalError, match="already the member's problem area"):
        clinical.revise_problem_area(db, member, actor=amina, problem_area="grief", problem_area_2=None, reason="x")
    with pytest.raises(ClinicalError, match="cannot be empty"):
        clinical.revise_problem_area(
            db, member, actor=amina, problem_area="isolation", problem_area_2=None, reason="  "
        )
    with pytest.raises(ClinicalError, match="Unknown problem area"):
        clinical.revise_problem_area(db, member, actor=amina, problem_area="money", problem_area_2=None, reason="x")
    assert db["problem_area_history"].count == 1


def test_goal_progress_only_at_past_sessions_of_the_members_cycle(app, db, protocols):
    cycle = make_cycle(db, protocols)
    other = make_cycle(db, protocols, first="2026-03-03")
    p = add_participant(db)
    member = enrolled(db, cycle, p)
    amina = user(db, "amina")
    with pytest.raises(ClinicalError, match="not happened yet"):
        clinical.record_goal_progress(
            db,
            member,
            actor=amina,
            session_id=session_no(db, cycle["id"], 8)["id"],
            progress="some",
            note="",
            today=date(2026, 3, 10),
        )
    with pytest.raises(ClinicalError, match="Choose a session of the member's cycle"):
        clinical.record_goal_progress(
            db,
            member,
            actor=amina,
            session_id=session_no(db, other["id"], 1)["id"],
            progress="some",
            note="",
            today=END,
        )
    with pytest.raises(ClinicalError, match="Choose one of the answers"):
        clinical.record_goal_progress(
            db, member, actor=amina, session_id=session_no(db, cycle["id"], 1)["id"], progress="", note="", today=END
        )


def test_record_page_links_from_the_cycle_page_only_for_who_may_see_it(app, db, protocols, supervisor):
    cycle = make_cycle(db, protocols)
    p = add_participant(db, name="Agnes Auma")
    member_id = cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"]
    kmp = users.get_site(db, "KMP")
    users.create_user(db, "bob", PASSWORD, "facilitator", site_ids=[kmp["id"]], hash_method=FAST_HASH)
    users.create_user(db, "sue", PASSWORD, "supervisor", site_ids=[kmp["id"]], hash_method=FAST_HASH)
    # sam supervises amina; sue supervises nobody here; bob leads no cycle.
    for name, linked in (("amina", True), ("coord", True), ("sam", True), ("bob", False), ("sue", False)):
        client = app.test_client()
        login(client, name)
        html = client.get(f"/cycles/{cycle['id']}").get_data(as_text=True)
        assert (f"/members/{member_id}/record" in html) is linked, name


def test_record_page_rejects_bad_input_with_400(app, db, protocols, set_today):
    set_today("2026-03-02")
    cycle = make_cycle(db, protocols)
    p = add_participant(db, name="Agnes Auma")
    member_id = cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"]
    client = app.test_client()
    login(client)
    response = post_form(client, f"/members/{member_id}/record/inventory", {"person_name": " ", "closeness": "close"})
    assert response.status_code == 400
    assert "This field cannot be empty." in response.get_data(as_text=True)
    response = post_form(
        client, f"/members/{member_id}/record/timeline", {"happened": "2025-06", "event": "Moved", "mood": "angry"}
    )
    assert response.status_code == 400
    assert db["inventory_people"].count == 0 and db["timeline_events"].count == 0
    ok = post_form(
        client,
        f"/members/{member_id}/record/pregroup",
        {
            "problem_area": "grief",
            "formulation": "since the funeral",
            "goals": "sleep",
            "medication_assessment": "no",
            "group_consent": "1",
        },
    )
    assert ok.status_code == 303
    assert clinical.get_member(db, member_id)["problem_area"] == "grief"
    assert referrals.for_participant(db, p["id"]) == []
