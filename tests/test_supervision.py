"""Supervision: rating forms as data, ratings that are never scored 0 for a blank, and the
supervisor's flags on a hand-built data set whose answers are known."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from group_ipt.base.settings import REPO_DIR
from group_ipt.core import clinical, cycles, sessions, supervision, users
from group_ipt.core.sessions import SessionEntry
from group_ipt.core.supervision import SupervisionError
from group_ipt.formfiles import forms as formsmod
from group_ipt.formfiles import ratings

from .conftest import FAST_HASH, PASSWORD, add_participant, login, post_form
from .test_clinical import PLAN, give_phq9
from .test_cycles import make_cycle, session_no

TODAY = date(2026, 3, 31)
ADHERENCE = ratings.load_ratings(REPO_DIR / "forms" / "ratings")["adherence"]
ITEMS = [i.id for i in ADHERENCE.items]


def user(db, name):
    return users.get_user_by_username(db, name)


def all_items(value, *, blank=()):
    return {i: ("" if i in blank else str(value)) for i in ITEMS}


# --- the rating form as data ----------------------------------------------------------


def test_shipped_rating_form_loads_and_scores():
    assert ADHERENCE.threshold == 67 and (ADHERENCE.low, ADHERENCE.high) == (0, 3)
    result = ADHERENCE.score(ADHERENCE.parse(all_items(2)))
    assert (result.complete, result.score, result.percent) == (True, 2.0, 66.7)
    assert result.sections == {"adherence": 66.7, "competence": 66.7}


def test_blank_items_make_an_incomplete_rating_never_a_zero():
    answers = ADHERENCE.parse(all_items(3, blank=("warmth", "safety")))
    result = ADHERENCE.score(answers)
    assert (result.complete, result.score, result.percent) == (False, None, None)
    assert result.missing == ["warmth", "safety"]
    assert ADHERENCE.score(ADHERENCE.parse({})).score is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"structure": "4"}, "not on the scale"),
        ({"structure": "two"}, "not on the scale"),
        ({"nonsense": "1"}, "no such item"),
    ],
)
def test_answers_off_the_scale_are_refused(raw, message):
    with pytest.raises(ValueError, match=message):
        ADHERENCE.parse(raw)


BROKEN = """id: adherence
name: Broken rating
version: 1
scale:
  - {value: 0, label: Not done}
  - {value: 1, label: Done}
scoring:
  method: median
  missing: zero
  threshold: 140
items:
  - id: structure
    text: Followed the plan.
    section: adherence
    colour: blue
  - id: warmth
    section: kindness
"""


def test_a_broken_rating_file_names_file_item_and_field(tmp_path, runner):
    forms_dir = tmp_path / "forms"
    shutil.copytree(REPO_DIR / "forms", forms_dir)
    path = forms_dir / "ratings" / "adherence.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    errors = [str(e) for e in formsmod.check_all(forms_dir)]
    assert errors == [
        f"{path}:8: field 'method': must be one of mean, sum, not 'median'",
        f"{path}:9: field 'missing': must be 'incomplete' (a rating with a blank item gets no score), not 'zero'",
        f"{path}:10: field 'threshold': must be a percentage from 0 to 100, not 140",
        f"{path}:15: item structure: field 'colour': unknown field; allowed: id, text, section, description, phases",
        f"{path}:16: item warmth: field 'text': is missing",
        f"{path}:17: item warmth: field 'section': must be one of adherence, competence, not 'kindness'",
    ]
    with pytest.raises(formsmod.FormsError):
        formsmod.load_all(forms_dir)
    result = runner.invoke(["forms", "check", "--forms-dir", str(forms_dir)])
    assert result.exit_code != 0
    assert "field 'missing': must be 'incomplete'" in result.output


def test_forms_without_a_ratings_folder_still_load(tmp_path):
    forms_dir = tmp_path / "forms"
    shutil.copytree(REPO_DIR / "forms", forms_dir)
    shutil.rmtree(forms_dir / "ratings")
    assert formsmod.check_all(forms_dir) == []
    assert formsmod.load_all(forms_dir).ratings == {}


# --- the hand-built data set ----------------------------------------------------------


def hold(db, protocols, cycle_id, number, attendance, *, actor="amina", fidelity=None):
    s = session_no(db, cycle_id, number)
    sessions.record_session(
        db,
        s["id"],
        SessionEntry(attendance, fidelity=fidelity),
        expected_version=s["version"],
        protocols=protocols,
        actor=user(db, actor),
        today=TODAY,
    )
    return s


@pytest.fixture
def programme(app, db, protocols, supervisor, set_today):
    """amina's who-8 cycle (5 members, sessions 0-4 held) and bob's (no members, session 1 held), both
    supervised by sam; the expected flags are written next to each fact."""
    set_today("2026-03-31")
    kmp = users.get_site(db, "KMP")
    bob = users.create_user(
        db, "bob", PASSWORD, "facilitator", display_name="Bob Okello", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    users.create_user(
        db, "sue", PASSWORD, "supervisor", display_name="Sue Unassigned", site_ids=[kmp["id"]], hash_method=FAST_HASH
    )
    supervision.assign(
        db, supervisor_id=supervisor["id"], facilitator_id=bob["id"], site_id=kmp["id"], actor=user(db, "coord")
    )
    cycle = make_cycle(db, protocols)
    names = ("Agnes Auma", "Betty Birungi", "Carol Cherop", "Dora Dembe", "Eve Esiru")
    people = {n.split()[0]: add_participant(db, name=n) for n in names}
    members = {
        k: cycles.enrol(db, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"]
        for k, p in people.items()
    }
    everyone = dict.fromkeys(members.values(), "present")
    s0 = hold(db, protocols, cycle["id"], 0, everyone)
    hold(db, protocols, cycle["id"], 1, everyone, fidelity={"started_on_time": True, "ended_on_time": True})
    hold(db, protocols, cycle["id"], 2, everyone)
    # Carol: absent twice in a row (sessions 3 and 4) -> repeated absence.
    hold(db, protocols, cycle["id"], 3, {**everyone, members["Carol"]: "absent"})
    hold(db, protocols, cycle["id"], 4, {**everyone, members["Carol"]: "absent"})
    base = {"occasion": "baseline", "on": date(2026, 3, 2), "cycle_id": cycle["id"], "session_id": s0["id"]}
    mid = {"occasion": "mid", "on": date(2026, 3, 30), "cycle_id": cycle["id"]}
    # Agnes: 10 -> 15, up 5 -> worsening.
    give_phq9(app, db, people["Agnes"], [2, 2, 1, 1, 1, 1, 1, 1, 0], **base)
    give_phq9(app, db, people["Agnes"], [2, 2, 2, 2, 2, 2, 2, 1, 0], **mid)
    # Betty: 10 -> 14, up 4 -> not on the list; a later form with 3 blanks has no total and is skipped.
    give_phq9(app, db, people["Betty"], [2, 2, 1, 1, 1, 1, 1, 1, 0], **base)
    give_phq9(app, db, people["Betty"], [2, 2, 2, 2, 2, 2, 1, 1, 0], **mid)
    give_phq9(app, db, people["Betty"], [3, 3, 3, 3, 3, 3, None, None, None], **{**mid, "on": date(2026, 3, 31)})
    # Dora: question 9 answered 1 -> an open safety referral.
    give_phq9(app, db, people["Dora"], [1, 1, 1, 1, 1, 1, 1, 1, 1], **base)
    # Eve: a medication referral is open, which is no safety risk.
    clinical.save_pregroup(
        db,
        clinical.get_member(db, members["Eve"]),
        actor=user(db, "amina"),
        plan=PLAN,
        screening_id=None,
        problem_area="isolation",
        problem_area_2=None,
        formulation="",
        goals="",
        medication_assessment="yes",
        group_consent=True,
        today=date(2026, 3, 2),
    )
    # sam rates amina: session 1 all 3 (100%), session 2 all 1 (33.3%, low), session 3 with two blanks
    # (incomplete); session 4 stays unrated. The latest complete rating is low -> amina is flagged.
    for number, answers, on in (
        (1, all_items(3), "2026-03-09"),
        (2, all_items(1), "2026-03-16"),
        (3, all_items(2, blank=("warmth", "safety")), "2026-03-23"),
    ):
        supervision.save_rating(
            db,
            session_no(db, cycle["id"], number),
            ADHERENCE,
            answers,
            actor=supervisor,
            observed_on=date.fromisoformat(on),
            note="",
            today=TODAY,
        )
    bob_cycle = make_cycle(db, protocols, first="2026-03-03", facilitators=("bob",), venue="School")
    hold(db, protocols, bob_cycle["id"], 1, {}, actor="bob")
    # Session 1 is the initial phase: its 8 general and 2 initial items count, the 4 others are not asked.
    bob_answers = {**all_items(3), "safety": "2"}  # (9 * 3 + 2) / 10 = 2.9 -> 96.7%
    supervision.save_rating(
        db,
        session_no(db, bob_cycle["id"], 1),
        ADHERENCE,
        bob_answers,
        actor=supervisor,
        observed_on=date(2026, 3, 10),
        note="",
        today=TODAY,
        phase="initial",
    )
    return {"cycle": cycle, "bob_cycle": bob_cycle, "members": members, "bob": bob, "sam": supervisor}


def overview_of(db, viewer, protocols, threshold=67.0):
    sites = users.user_site_ids(db, viewer)
    return supervision.overview(
        db, viewer, sites, protocols, threshold=threshold, today=TODAY, due_days=7, worsening_points=5
    )


def test_supervisor_flags_on_the_hand_built_data_set(db, protocols, programme):
    amina_s, bob_s = overview_of(db, programme["sam"], protocols)
    assert (amina_s.facilitator["username"], bob_s.facilitator["username"]) == ("amina", "bob")
    # Adherence over time, oldest first; the incomplete rating has no score.
    assert [(r["session"]["number"], r["percent"], r["complete"], r["low"]) for r in amina_s.ratings] == [
        (1, 100.0, 1, False),
        (2, 33.3, 1, True),
        (3, None, 0, 0),
    ]
    assert amina_s.ratings[2]["missing"] == ["warmth", "safety"]
    assert (amina_s.latest_percent, amina_s.low_adherence, len(amina_s.incomplete)) == (33.3, True, 1)
    # Self-rated fidelity beside the supervisor's rating: 2 of 8 checklist items ticked at session 1.
    assert amina_s.ratings[0]["self_fidelity"] == 25.0
    assert [s["number"] for s in amina_s.unrated] == [4]
    concerns = {c["member"]["name"]: [r["kind"] for r in c["reasons"]] for c in amina_s.concerns}
    assert concerns == {"Agnes Auma": ["worsening"], "Carol Cherop": ["absence"], "Dora Dembe": ["risk"]}
    agnes = next(c for c in amina_s.concerns if c["member"]["name"] == "Agnes Auma")["reasons"][0]
    assert (agnes["baseline"], agnes["latest"], agnes["rise"]) == (10, 15, 5)
    carol = next(c for c in amina_s.concerns if c["member"]["name"] == "Carol Cherop")["reasons"][0]
    assert (carol["streak"], carol["since"], carol["overdue"]) == (2, "2026-03-30", False)
    assert (bob_s.latest_percent, bob_s.low_adherence, bob_s.unrated, bob_s.concerns) == (96.7, False, [], [])


def test_threshold_and_worsening_points_are_settings(db, protocols, programme):
    amina_s = next(
        s for s in overview_of(db, programme["sam"], protocols, threshold=30.0) if s.facilitator["username"] == "amina"
    )
    assert amina_s.latest_percent == 33.3 and not amina_s.low_adherence
    sites = users.user_site_ids(db, programme["sam"])
    stricter = supervision.members_of_concern(
        db, user(db, "amina")["id"], sites, protocols, today=TODAY, due_days=7, worsening_points=4
    )
    assert {c["member"]["name"] for c in stricter} == {"Agnes Auma", "Betty Birungi", "Carol Cherop", "Dora Dembe"}


def test_a_closed_risk_referral_takes_the_member_off_the_list(db, protocols, programme):
    from group_ipt.core import referrals

    coord = user(db, "coord")
    dora = clinical.get_member(db, programme["members"]["Dora"])
    referral = referrals.for_participant(db, dora["participant_id"])[0]
    referrals.acknowledge(db, referral, coord)
    first = referrals.followups(db, referral["id"])[0]
    referrals.record_followup(
        db, referral, first["id"], coord, note="called", done_on=date(2026, 3, 3), plan=referrals.FollowupPlan()
    )
    referrals.set_status(db, referral, "closed", coord, note="seen by the nurse, safe", outcome="seen")
    names = {c["member"]["name"] for c in overview_of(db, programme["sam"], protocols)[0].concerns}
    assert "Dora Dembe" not in names


def test_supervisors_see_only_their_facilitators(app, db, protocols, programme):
    assert overview_of(db, user(db, "sue"), protocols) == []
    coordinator_view = [s.facilitator["username"] for s in overview_of(db, user(db, "coord"), protocols)]
    assert coordinator_view == ["amina", "bob"]
    amina_id = user(db, "amina")["id"]
    codes = {}
    for name in ("sam", "sue", "coord", "amina"):
        client = app.test_client()
        login(client, name)
        codes[name] = (
            client.get("/supervision/").status_code,
            client.get(f"/supervision/facilitators/{amina_id}").status_code,
        )
    assert codes == {"sam": (200, 200), "sue": (200, 404), "coord": (200, 200), "amina": (403, 403)}


def test_supervision_page_shows_chart_flags_and_members(app, db, programme):
    client = app.test_client()
    login(client, "sam")
    html = client.get("/supervision/").get_data(as_text=True)
    assert html.count('<svg class="chart"') == 2
    assert "Low adherence: below 67%" in html and "1 incomplete rating<" in html  # singular since issue 19
    assert "PHQ-9 up from 10 to 15 (+5)" in html and "2 absences in a row" in html and "open safety referral" in html
    # Betty's last form left question 9 blank: on the urgent list (risk not asked), not a member of concern.
    urgent, members = html.split('id="urgent-concerns-list"')[1].split("</section>", 1)
    assert "Betty Birungi" in urgent and "safety question not asked" in urgent
    assert "Betty Birungi" not in members and "Eve Esiru" not in html
    assert html.index("Amina Nakato") < html.index("Bob Okello")
    # sam supervises amina, so each member of concern links to the record.
    assert f"/members/{programme['members']['Agnes']}/record" in html
    amina_id = user(db, "amina")["id"]
    page = client.get(f"/supervision/facilitators/{amina_id}").get_data(as_text=True)
    assert "PHQ-9 up from 10 to 15 (+5)" in page and f"/members/{programme['members']['Agnes']}/record" in page


def test_rating_through_the_page_saves_blanks_as_incomplete(app, db, programme):
    session = session_no(db, programme["cycle"]["id"], 4)
    client = app.test_client()
    login(client, "sam")
    path = f"/supervision/sessions/{session['id']}/rate"
    assert client.get(path).status_code == 200
    data = {f"item-{i}": "2" for i in ITEMS[:5]} | {"observed_on": "2026-03-30", "note": "left early"}
    response = post_form(client, path, data, form_page=path)
    assert response.status_code == 303
    saved = supervision.get_rating(db, session["id"], programme["sam"]["id"])
    assert (saved["complete"], saved["score"], saved["percent"]) == (0, None, None)
    # Session 4 is in the middle phase: its two middle items are asked, the other phases' are not.
    assert saved["missing"] == ["warmth", "group_process", "safety", "middle_work", "middle_safety_home"]
    assert saved["answers"]["initial_rules"] == saved["answers"]["termination_review"] == "na"
    page = client.get(path).get_data(as_text=True)
    assert 'name="item-middle_work"' in page and 'name="item-initial_rules"' not in page
    assert 'value="na"' in page and "Not applicable in this session" in page
    everything = {f"item-{i}": "3" for i in ITEMS[:8]} | {
        "item-middle_work": "na",
        "item-middle_safety_home": "1",
        "observed_on": "2026-03-30",
    }
    assert post_form(client, path, everything, form_page=path).status_code == 303
    saved = supervision.get_rating(db, session["id"], programme["sam"]["id"])
    # "Not applicable" is left out of the score: (8 * 3 + 1) / 9 = 2.78 -> 92.6%.
    assert (saved["complete"], saved["score"], saved["percent"], saved["missing"]) == (1, 2.78, 92.6, [])
    future = post_form(client, path, {**data, "observed_on": "2026-04-30"}, form_page=path)
    assert future.status_code == 400
    off_scale = post_form(client, path, {**data, "item-structure": "7"}, form_page=path)
    assert off_scale.status_code == 400
    for name, code in (("sue", 403), ("coord", 403), ("amina", 403)):
        other = app.test_client()
        login(other, name)
        assert other.get(path).status_code == code, name


def test_supervision_log_and_assignments(app, db, programme):
    amina_id = user(db, "amina")["id"]
    client = app.test_client()
    login(client, "sam")
    page = f"/supervision/logs/new?facilitator_id={amina_id}"
    base = {"facilitator_id": amina_id, "held_on": "2026-03-31", "cases": "Dora: safety plan", "actions": "visit"}
    future = post_form(client, "/supervision/logs/new", {**base, "held_on": "2026-04-02"}, form_page=page)
    assert future.status_code == 400
    not_hers = post_form(
        client, "/supervision/logs/new", {**base, "cycle_ids": programme["bob_cycle"]["id"]}, form_page=page
    )
    assert not_hers.status_code == 400
    ok = post_form(client, "/supervision/logs/new", {**base, "cycle_ids": programme["cycle"]["id"]}, form_page=page)
    assert ok.status_code == 303
    html = client.get(f"/supervision/facilitators/{amina_id}").get_data(as_text=True)
    assert "Dora: safety plan" in html and "KMP-C001" in html
    # A coordinator assigns amina to sue; then sue sees her.
    coord = app.test_client()
    login(coord, "coord")
    kmp = users.get_site(db, "KMP")
    choice = {"site_id": kmp["id"], "supervisor_id": user(db, "sue")["id"], "facilitator_id": amina_id}
    assigned = post_form(coord, "/supervision/assignments", choice, form_page="/supervision/assignments")
    assert assigned.status_code == 303
    assert [s.facilitator["username"] for s in overview_of(db, user(db, "sue"), {})] == ["amina"]
    facilitator = app.test_client()
    login(facilitator, "amina")
    assert post_form(facilitator, "/supervision/assignments", {}).status_code == 403


def test_assign_refuses_people_of_other_sites(db, supervisor):
    msk = users.get_site(db, "MSK")
    with pytest.raises(SupervisionError, match="supervisor who works at this site"):
        supervision.assign(
            db,
            supervisor_id=supervisor["id"],
            facilitator_id=user(db, "grace")["id"],
            site_id=msk["id"],
            actor=user(db, "coord"),
        )
