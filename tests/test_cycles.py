"""Group cycles: creation with weekly dates around holidays, moving sessions, members, warnings."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from group_ipt.core import audit, cycles, users
from group_ipt.core.cycles import CycleError

from .conftest import add_participant

NOW = datetime(2026, 2, 20, 9, 0)


def D(text: str) -> date:
    return date.fromisoformat(text)


def make_cycle(
    db,
    protocols,
    *,
    protocol="who-8",
    first="2026-03-02",
    site="KMP",
    facilitators=("amina",),
    venue="Church hall",
    group_type="women",
    time="14:00",
    holidays=(),
    now=NOW,
):
    site_row = users.get_site(db, site)
    coord = users.get_user_by_username(db, "coord")
    for day in holidays:
        cycles.add_holiday(db, site_row["id"], D(day), "holiday", actor=coord)
    return cycles.create_cycle(
        db,
        site_id=site_row["id"],
        protocol=protocols[protocol],
        facilitator_ids=[users.get_user_by_username(db, f)["id"] for f in facilitators],
        group_type=group_type,
        venue=venue,
        first_date=D(first),
        weekday=D(first).weekday(),
        start_time=time,
        actor=coord,
        now=now,
    )


def dates(db, cycle_id):
    return [(s["number"], s["scheduled_date"], s["status"]) for s in cycles.sessions(db, cycle_id)]


def coord(db):
    return users.get_user_by_username(db, "coord")


# --- creating ---------------------------------------------------------------------


def test_create_cycle_makes_weekly_sessions_with_pre_group_first(db, protocols):
    cycle = make_cycle(db, protocols)
    assert cycle["code"] == "KMP-C001"
    assert cycle["protocol_version"] == 1
    got = dates(db, cycle["id"])
    assert [n for n, _, _ in got] == list(range(9))
    assert got[0][1] == "2026-03-02" and got[1][1] == "2026-03-09" and got[-1][1] == "2026-04-27"
    kinds = [s["kind"] for s in cycles.sessions(db, cycle["id"])]
    assert kinds == ["pre-group"] + ["group"] * 8
    assert [f["username"] for f in cycles.facilitators(db, cycle["id"])] == ["amina"]
    assert audit.entries(db, "cycles", cycle["id"])[0]["action"] == "create"


@pytest.mark.parametrize(
    ("first", "holidays", "expected"),
    [
        pytest.param("2026-03-30", ["2026-04-06"], ["2026-03-30", "2026-04-13", "2026-04-20"], id="month-end-holiday"),
        pytest.param("2026-12-22", ["2026-12-29"], ["2026-12-22", "2027-01-05", "2027-01-12"], id="year-end-holiday"),
        pytest.param("2026-12-25", ["2026-12-25"], ["2027-01-01", "2027-01-08", "2027-01-15"], id="first-is-holiday"),
        pytest.param("2027-02-22", [], ["2027-02-22", "2027-03-01", "2027-03-08"], id="february-non-leap"),
        pytest.param("2028-02-22", [], ["2028-02-22", "2028-02-29", "2028-03-07"], id="february-leap"),
        # 29 March 2026 is when Europe changes clocks; local dates simply step a week.
        pytest.param("2026-03-22", [], ["2026-03-22", "2026-03-29", "2026-04-05"], id="dst-change-is-irrelevant"),
    ],
)
def test_create_cycle_dates_around_holidays_month_and_year_ends(db, protocols, first, holidays, expected):
    cycle = make_cycle(db, protocols, first=first, holidays=holidays, now=datetime(2026, 1, 1, 8))
    assert [d for _, d, _ in dates(db, cycle["id"])][:3] == expected


def test_holidays_are_per_site(db, protocols):
    make_cycle(db, protocols, holidays=["2026-03-09"])
    other = make_cycle(db, protocols, site="MSK", facilitators=("grace",), first="2026-03-02")
    assert dates(db, other["id"])[1][1] == "2026-03-09"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first": "2026-02-16"}, "in the past"),
        ({"first": "2026-02-20", "time": "08:30"}, "in the past"),
        ({"venue": "  "}, "venue"),
        ({"group_type": "elders"}, "kind of group"),
        ({"facilitators": ()}, "one or two facilitators"),
        ({"facilitators": ("amina", "grace", "coord")}, "one or two facilitators"),
        ({"facilitators": ("grace",)}, "does not work at this site"),
        ({"time": "25:00"}, "not a time of day"),
    ],
)
def test_create_cycle_refuses_bad_input(db, protocols, kwargs, message):
    with pytest.raises(CycleError, match=message):
        make_cycle(db, protocols, **kwargs)
    assert db["cycles"].count == 0 and db["sessions"].count == 0


def test_create_cycle_first_date_must_be_on_the_weekday(db, protocols):
    site = users.get_site(db, "KMP")
    with pytest.raises(CycleError, match="not on the weekday"):
        cycles.create_cycle(
            db,
            site_id=site["id"],
            protocol=protocols["who-8"],
            facilitator_ids=[users.get_user_by_username(db, "amina")["id"]],
            group_type="women",
            venue="Hall",
            first_date=D("2026-03-02"),
            weekday=1,
            start_time="14:00",
            actor=None,
            now=NOW,
        )


def test_create_cycle_today_later_in_the_day_is_fine(db, protocols):
    cycle = make_cycle(db, protocols, first="2026-02-20", time="10:00")
    assert cycle["first_date"] == "2026-02-20"


@pytest.mark.parametrize("text", ["2026-02-30", "2026-13-01", "", "next week"])
def test_parse_date_refuses_dates_that_do_not_exist(text):
    with pytest.raises(CycleError, match="not a date that exists"):
        cycles.parse_date(text)


def test_codes_count_up_per_site(db, protocols):
    assert make_cycle(db, protocols)["code"] == "KMP-C001"
    assert make_cycle(db, protocols, first="2026-03-03")["code"] == "KMP-C002"
    assert make_cycle(db, protocols, site="MSK", facilitators=("grace",))["code"] == "MSK-C001"


# --- holidays ---------------------------------------------------------------------


def test_add_holiday_reports_sessions_already_on_it_and_refuses_duplicates(db, protocols):
    cycle = make_cycle(db, protocols)
    site = users.get_site(db, "KMP")
    clash = cycles.add_holiday(db, site["id"], D("2026-03-16"), "Market day", actor=coord(db))
    assert [(s["cycle_code"], s["number"]) for s in clash] == [(cycle["code"], 2)]
    with pytest.raises(CycleError, match="already in the list"):
        cycles.add_holiday(db, site["id"], D("2026-03-16"), "again", actor=coord(db))
    holiday = cycles.holidays(db, site["id"])[0]
    cycles.remove_holiday(db, site["id"], holiday["id"], actor=coord(db))
    assert cycles.holidays(db, site["id"]) == []


# --- moving, cancelling, make-ups ---------------------------------------------------


def session_no(db, cycle_id, number, kind=None):
    return next(
        s for s in cycles.sessions(db, cycle_id) if s["number"] == number and (kind is None or s["kind"] == kind)
    )


def test_reschedule_only_this_one_keeps_the_others(db, protocols):
    cycle = make_cycle(db, protocols)
    s3 = session_no(db, cycle["id"], 3)
    moved = cycles.reschedule_session(db, s3["id"], D("2026-03-18"), "only", reason="funeral", actor=coord(db))
    assert [m["number"] for m in moved] == [3]
    got = {n: d for n, d, _ in dates(db, cycle["id"])}
    assert (got[2], got[3], got[4]) == ("2026-03-16", "2026-03-18", "2026-03-30")
    change = cycles.session_history(db, cycle["id"])[0]
    assert (change["action"], change["old_date"], change["new_date"], change["reason"]) == (
        "moved",
        "2026-03-23",
        "2026-03-18",
        "funeral",
    )


def test_reschedule_shift_moves_all_later_sessions_and_skips_holidays(db, protocols):
    cycle = make_cycle(db, protocols, holidays=["2026-04-15"])
    s3 = session_no(db, cycle["id"], 3)
    cycles.reschedule_session(db, s3["id"], D("2026-03-25"), "shift", actor=coord(db))
    got = [d for _, d, _ in dates(db, cycle["id"])]
    # Wednesdays from session 3; 15 April is a holiday, so session 6 and later move a week more.
    assert got[3:] == ["2026-03-25", "2026-04-01", "2026-04-08", "2026-04-22", "2026-04-29", "2026-05-06"]
    assert len(cycles.session_history(db, cycle["id"])) == 6


@pytest.mark.parametrize(
    ("number", "new", "mode", "message"),
    [
        (3, "2026-04-01", "only", "shift all later sessions"),
        (3, "2026-03-16", "only", "already a session"),
        (3, "2026-03-10", "shift", "on or before"),
        (3, "2026-03-24", "only", "holiday"),
    ],
)
def test_reschedule_refuses_impossible_moves(db, protocols, number, new, mode, message):
    cycle = make_cycle(db, protocols, holidays=["2026-03-24"])
    before = dates(db, cycle["id"])
    with pytest.raises(CycleError, match=message):
        cycles.reschedule_session(db, session_no(db, cycle["id"], number)["id"], D(new), mode, actor=coord(db))
    assert dates(db, cycle["id"]) == before


def test_cancel_and_makeup_keep_history(db, protocols):
    cycle = make_cycle(db, protocols)
    s2 = session_no(db, cycle["id"], 2)
    with pytest.raises(CycleError, match="why"):
        cycles.cancel_session(db, s2["id"], reason="", actor=coord(db))
    cycles.cancel_session(db, s2["id"], reason="venue flooded", actor=coord(db))
    with pytest.raises(CycleError, match="already cancelled"):
        cycles.cancel_session(db, s2["id"], reason="again", actor=coord(db))
    with pytest.raises(CycleError, match="already a session"):
        cycles.add_makeup(db, s2["id"], D("2026-03-23"), "14:00", actor=coord(db))
    makeup = cycles.add_makeup(db, s2["id"], D("2026-03-19"), "10:00", reason="catch up", actor=coord(db))
    assert (makeup["kind"], makeup["number"], makeup["makeup_for"], makeup["phase"]) == (
        "makeup",
        2,
        s2["id"],
        "middle",
    )
    assert [c["action"] for c in cycles.session_history(db, cycle["id"])] == ["cancelled", "makeup_added"]
    assert session_no(db, cycle["id"], 2, "group")["status"] == "cancelled"


def test_cancelling_every_session_is_refused(db, protocols):
    cycle = make_cycle(db, protocols, protocol="short-6")
    all_sessions = cycles.sessions(db, cycle["id"])
    for s in all_sessions[:-1]:
        cycles.cancel_session(db, s["id"], reason="x", actor=coord(db))
    with pytest.raises(CycleError, match="at least one session"):
        cycles.cancel_session(db, all_sessions[-1]["id"], reason="x", actor=coord(db))


# --- members ----------------------------------------------------------------------


def test_enrol_transfer_withdraw_keep_history(db, protocols):
    cycle = make_cycle(db, protocols)
    other = make_cycle(db, protocols, first="2026-03-04")
    p = add_participant(db, name="Sarah Namukasa")
    member, warnings = cycles.enrol(db, cycle["id"], p["id"], actor=coord(db), today=D("2026-02-20"))
    assert warnings == []
    assert db["participants"].get(p["id"])["status"] == "enrolled"
    with pytest.raises(CycleError, match="already in cycle KMP-C001"):
        cycles.enrol(db, other["id"], p["id"], actor=coord(db), today=D("2026-02-20"))
    new = cycles.transfer(db, member["id"], other["id"], reason="moved village", actor=coord(db), today=D("2026-02-21"))
    old = db["members"].get(member["id"])
    assert (old["status"], old["transferred_to"], old["end_reason"]) == ("transferred", new["id"], "moved village")
    assert new["transferred_from"] == member["id"] and new["status"] == "active"
    with pytest.raises(CycleError, match="why"):
        cycles.withdraw(db, new["id"], reason=" ", actor=coord(db), today=D("2026-02-22"))
    cycles.withdraw(db, new["id"], reason="found work", actor=coord(db), today=D("2026-02-22"))
    assert db["members"].get(new["id"])["status"] == "withdrawn"
    assert db["participants"].get(p["id"])["status"] == "dropped_out"
    assert db["members"].count == 2


def test_one_active_membership_is_enforced_by_the_database(db, protocols):
    import sqlite3

    cycle = make_cycle(db, protocols)
    p = add_participant(db)
    member, _ = cycles.enrol(db, cycle["id"], p["id"], actor=None, today=D("2026-02-20"))
    copy = {**db["members"].get(member["id"]), "id": "other"}
    with pytest.raises(sqlite3.IntegrityError):
        db["members"].insert(copy)


def test_enrol_needs_eligible_or_a_reason(db, protocols):
    cycle = make_cycle(db, protocols)
    p = add_participant(db, status="screened")
    with pytest.raises(CycleError, match="not marked eligible"):
        cycles.enrol(db, cycle["id"], p["id"], actor=None, today=D("2026-02-20"))
    member, _ = cycles.enrol(
        db, cycle["id"], p["id"], actor=None, today=D("2026-02-20"), override_reason="PHQ-9 of 9, clinician agreed"
    )
    assert member["override_reason"] == "PHQ-9 of 9, clinician agreed"


def test_enrol_refuses_a_participant_of_another_site(db, protocols):
    cycle = make_cycle(db, protocols)
    p = add_participant(db, "MSK")
    with pytest.raises(CycleError, match="not registered at the cycle's site"):
        cycles.enrol(db, cycle["id"], p["id"], actor=None, today=D("2026-02-20"))


def test_member_plan_records_problem_areas_and_goals(db, protocols):
    cycle = make_cycle(db, protocols)
    member, _ = cycles.enrol(db, cycle["id"], add_participant(db)["id"], actor=None, today=D("2026-02-20"))
    cycles.set_member_plan(db, member["id"], "grief", "isolation", "Visit my sister", actor=coord(db))
    saved = db["members"].get(member["id"])
    assert (saved["problem_area"], saved["problem_area_2"], saved["goals"]) == ("grief", "isolation", "Visit my sister")
    with pytest.raises(CycleError, match="Unknown problem area"):
        cycles.set_member_plan(db, member["id"], "money", None, "", actor=None)


# --- warnings ---------------------------------------------------------------------


def test_warnings_double_booking_group_size_and_single_sex(db, protocols):
    first = make_cycle(db, protocols)
    second = make_cycle(db, protocols, time="15:00", group_type="men")
    man = add_participant(db, name="John Okello", sex="male")
    woman = add_participant(db, name="Mary Achieng", sex="female")
    cycles.enrol(db, second["id"], man["id"], actor=None, today=D("2026-02-20"))
    _, warnings = cycles.enrol(db, second["id"], woman["id"], actor=None, today=D("2026-02-20"))
    assert [str(w) for w in warnings] == ["Mary Achieng is not a man, but KMP-C002 is a men's group."]
    texts = [
        str(w)
        for w in cycles.cycle_warnings(
            db, cycles.get_cycle(db, second["id"]), protocols["who-8"], today=D("2026-02-20")
        )
    ]
    # The 60-minute pre-group sessions (14:00-15:00) do not overlap 15:00; the 90-minute group sessions do.
    assert "Amina Nakato also leads KMP-C001 at the same time: 8 sessions, the first on 2026-03-09 at 14:00." in texts
    assert (
        "The venue Church hall is also booked for KMP-C001 at the same time: 8 sessions, the first on "
        "2026-03-09 at 14:00." in texts
    )
    assert "The group has 2 members; the protocol recommends 6 to 10." in texts
    assert "Mary Achieng is not a man, but KMP-C002 is a men's group." in texts
    assert first["id"] != second["id"]


def test_no_double_booking_warning_when_times_do_not_overlap(db, protocols):
    make_cycle(db, protocols, time="09:00")
    second = make_cycle(db, protocols, time="14:00")
    texts = [
        str(w)
        for w in cycles.cycle_warnings(
            db, cycles.get_cycle(db, second["id"]), protocols["who-8"], today=D("2026-02-20")
        )
    ]
    assert not any("also" in t for t in texts)


def test_adolescent_group_warns_about_adults(db, protocols):
    cycle = cycles.get_cycle(db, make_cycle(db, protocols, group_type="adolescents")["id"])
    adult = add_participant(db, name="Old Tom", sex="male", birth_year=1970)
    teen = add_participant(db, name="Young Ann", birth_year=2011)
    assert cycles.enrol(db, cycle["id"], teen["id"], actor=None, today=D("2026-02-20"))[1] == []
    _, warnings = cycles.enrol(db, cycle["id"], adult["id"], actor=None, today=D("2026-02-20"))
    assert [str(w) for w in warnings] == ["Old Tom is about 56 years old, but KMP-C001 is a group for adolescents."]


# --- closing ----------------------------------------------------------------------


def test_close_early_cancels_open_sessions_and_sets_outcomes(db, protocols):
    cycle = make_cycle(db, protocols)
    p = add_participant(db)
    member, _ = cycles.enrol(db, cycle["id"], p["id"], actor=None, today=D("2026-02-20"))
    with pytest.raises(CycleError, match="sessions have no attendance"):
        cycles.close_cycle(db, cycle["id"], protocols["who-8"], early=False, actor=None, today=D("2026-02-25"))
    with pytest.raises(CycleError, match="why"):
        cycles.close_cycle(db, cycle["id"], protocols["who-8"], early=True, actor=None, today=D("2026-02-25"))
    counts = cycles.close_cycle(
        db,
        cycle["id"],
        protocols["who-8"],
        early=True,
        reason="facilitator left",
        actor=coord(db),
        today=D("2026-02-25"),
    )
    assert counts == {"completed": 0, "dropped_out": 1}
    assert cycles.get_cycle(db, cycle["id"])["status"] == "closed_early"
    assert {s["status"] for s in cycles.sessions(db, cycle["id"])} == {"cancelled"}
    assert len(cycles.session_history(db, cycle["id"])) == 9
    assert db["members"].get(member["id"])["status"] == "dropped_out"
    assert db["participants"].get(p["id"])["status"] == "dropped_out"
    with pytest.raises(CycleError, match="closed"):
        cycles.add_makeup(db, cycles.sessions(db, cycle["id"])[1]["id"], D("2026-03-05"), "10:00", actor=None)


# --- pages ------------------------------------------------------------------------

from .conftest import login, post_form  # noqa: E402


def new_cycle_form(db, **overrides):
    return {
        "site_id": users.get_site(db, "KMP")["id"],
        "protocol_id": "who-8",
        "group_type": "women",
        "facilitator_1": users.get_user_by_username(db, "amina")["id"],
        "facilitator_2": "",
        "venue": "Church hall",
        "first_date": "2026-03-02",
        "weekday": "",
        "start_time": "14:00",
        **overrides,
    }


def test_coordinator_creates_a_cycle_from_the_form(client, db, set_today):
    set_today("2026-02-20")
    login(client, "coord")
    r = post_form(client, "/cycles/new", new_cycle_form(db), form_page="/cycles/new")
    assert r.status_code == 303
    cycle = cycles.get_cycle(db, "KMP-C001")
    assert r.headers["Location"] == f"/cycles/{cycle['id']}"
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "KMP-C001: session 8 (termination phase)" in page
    assert "The group has 0 members; the protocol recommends 6 to 10." in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"first_date": "2026-02-30"}, "is not a date that exists"),
        ({"first_date": "2026-02-16"}, "is in the past"),
        ({"weekday": "2"}, "is not on the weekday chosen"),
        ({"protocol_id": "nope"}, "Choose a protocol."),
        ({"site_id": "elsewhere"}, "Choose the site."),
    ],
)
def test_new_cycle_form_errors_keep_the_input(client, db, set_today, overrides, message):
    set_today("2026-02-20")
    login(client, "coord")
    r = post_form(client, "/cycles/new", new_cycle_form(db, venue="My venue", **overrides), form_page="/cycles/new")
    page = r.get_data(as_text=True)
    assert r.status_code == 400
    assert message in page
    assert 'value="My venue"' in page
    assert db["cycles"].count == 0


def test_facilitator_cannot_create_or_change_cycles(client, db, protocols):
    cycle = make_cycle(db, protocols)
    login(client, "amina")
    assert client.get("/cycles/new").status_code == 403
    s1 = session_no(db, cycle["id"], 1)
    r = post_form(client, f"/cycles/{cycle['id']}/sessions/{s1['id']}/cancel", {"reason": "x"}, form_page="/")
    assert r.status_code == 403
    assert client.get(f"/cycles/{cycle['id']}").status_code == 200
    assert "KMP-C001" in client.get("/cycles/").get_data(as_text=True)


def test_other_site_cycle_is_404(client, db, protocols):
    cycle = make_cycle(db, protocols)
    login(client, "grace")
    assert client.get(f"/cycles/{cycle['id']}").status_code == 404
    assert "KMP-C001" not in client.get("/cycles/").get_data(as_text=True)


def test_reschedule_page_shift_mode(client, db, protocols):
    cycle = make_cycle(db, protocols)
    login(client, "coord")
    s7 = session_no(db, cycle["id"], 7)
    page = f"/cycles/{cycle['id']}/sessions/{s7['id']}/change"
    assert "Shift all later sessions" in client.get(page).get_data(as_text=True)
    r = post_form(
        client,
        f"/cycles/{cycle['id']}/sessions/{s7['id']}/reschedule",
        {"new_date": "2026-04-21", "mode": "shift", "reason": "Easter"},
        form_page=page,
    )
    assert r.status_code == 303
    assert [d for _, d, _ in dates(db, cycle["id"])][-2:] == ["2026-04-21", "2026-04-28"]
    bad = post_form(
        client,
        f"/cycles/{cycle['id']}/sessions/{s7['id']}/reschedule",
        {"new_date": "2026-04-31", "mode": "only"},
        form_page=page,
    )
    assert bad.status_code == 400 and "is not a date that exists" in bad.get_data(as_text=True)


def test_enrol_page_lists_eligible_and_enrols(client, db, protocols):
    cycle = make_cycle(db, protocols)
    eligible = add_participant(db, name="Esther Eligible")
    waiting = add_participant(db, name="Wendy Waiting", status="screened")
    login(client, "coord")
    page = client.get(f"/cycles/{cycle['id']}/enrol").get_data(as_text=True)
    assert "Esther Eligible" in page and "Wendy Waiting" in page
    r = post_form(
        client,
        f"/cycles/{cycle['id']}/enrol",
        {
            "participant_id": eligible["id"],
            "override_participant_id": waiting["id"],
            "override_reason": "clinician agreed",
        },
        form_page=f"/cycles/{cycle['id']}/enrol",
    )
    assert r.status_code == 303
    assert len(cycles.members(db, cycle["id"], active_only=True)) == 2


def test_holidays_page(client, db, protocols):
    login(client, "coord")
    r = post_form(
        client,
        "/sites/KMP/holidays",
        {"date": "2026-10-09", "label": "Independence Day"},
        form_page="/sites/KMP/holidays",
    )
    assert r.status_code == 303
    assert "Independence Day" in client.get("/sites/KMP/holidays").get_data(as_text=True)
    bad = post_form(client, "/sites/KMP/holidays", {"date": "2026-10-32"}, form_page="/sites/KMP/holidays")
    assert bad.status_code == 400


def test_holidays_page_of_a_site_not_mine_is_404(app, db):
    client = app.test_client()
    db.execute(
        "delete from user_sites where user_id = (select id from users where username = 'coord')"
        " and site_id = (select id from sites where code = 'MSK')"
    )
    db.conn.commit()
    login(client, "coord")
    assert client.get("/sites/MSK/holidays").status_code == 404
