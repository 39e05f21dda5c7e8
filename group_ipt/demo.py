"""A small, realistic demo programme so a newcomer sees a live app.

Everything is keyed by natural keys (site code, username, ...), so loading the
demo twice adds nothing the second time. Demo passwords are printed: never use
a demo database for real people.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlite_utils
from flask import Flask

from . import clock, users
from .db import row, utcnow, write

DEMO_PASSWORD = "demo-pass"  # noqa: S105 (printed on purpose; demo data only)

DEMO_SITES = [
    ("KMP", "Kampala North", "en"),
    ("MSK", "Masaka Rural", "sw"),
]

# username, role, display name, site codes, language
DEMO_USERS = [
    ("admin", "admin", "Programme Admin", [], None),
    ("coord", "coordinator", "Ruth Nansubuga", ["KMP", "MSK"], None),
    ("super", "supervisor", "Dr. Samuel Mugisha", ["KMP", "MSK"], None),
    ("amina", "facilitator", "Amina Nakato", ["KMP"], None),
    ("joseph", "facilitator", "Joseph Okello", ["KMP"], None),
    ("grace", "facilitator", "Grace Wanjiru", ["MSK"], "sw"),
    ("peter", "facilitator", "Peter Ssemwogerere", ["MSK"], "fr"),
]


@dataclass
class DemoSummary:
    created: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


def load_demo(db: sqlite_utils.Database, app: Flask) -> DemoSummary:
    """Create the demo sites and users, then the demo participants, screenings and cycles."""
    summary = DemoSummary()
    hash_method = app.config["PASSWORD_HASH_METHOD"]
    for code, name, lang in DEMO_SITES:
        if users.get_site(db, code) is None:
            users.create_site(db, code, name, lang)
            summary.add("sites")
    for username, role, display, site_codes, lang in DEMO_USERS:
        summary.logins.append((username, role))
        if users.get_user_by_username(db, username) is None:
            site_ids = [users.get_site(db, c)["id"] for c in site_codes]
            users.create_user(
                db,
                username,
                DEMO_PASSWORD,
                role,
                display_name=display,
                site_ids=site_ids,
                language=lang,
                hash_method=hash_method,
            )
            summary.add("users")
    if row(db, "select value from settings where key = ?", (DEMO_MARKER,)) is None:
        load_programme(db, app, summary, clock.today())
    return summary


# name, sex, age, village, site, PHQ-9 answers (q1..q9), PHQ-9 difficulty (q10)
DEMO_PEOPLE = [
    ("Nakato Ŋŋanda", "female", 34, "Kawempe", "KMP", [2, 2, 1, 2, 1, 2, 1, 1, 0], 2),
    ("Aisha Nambi", "female", 28, "Kawempe", "KMP", [2, 3, 2, 2, 1, 2, 2, 1, 0], 2),
    ("Sarah Achieng", "female", 41, "Bwaise", "KMP", [1, 2, 2, 2, 2, 1, 1, 1, 0], 1),
    ("Florence Nabirye", "female", 37, "Bwaise", "KMP", [2, 2, 2, 1, 1, 2, 1, 1, 0], 2),
    ("Harriet Kyomuhendo", "female", 52, "Kanyanya", "KMP", [3, 2, 2, 2, 1, 2, 1, 2, 0], 3),
    ("Rebecca Atim", "female", 23, "Kanyanya", "KMP", [2, 2, 1, 1, 2, 1, 2, 1, 0], 1),
    ("Juliet Nansubuga", "female", 45, "Kawempe", "KMP", [1, 2, 2, 2, 2, 2, 1, 1, 0], 2),
    ("Prossy Namutebi", "female", 31, "Mpererwe", "KMP", [2, 1, 2, 2, 1, 1, 2, 1, 0], 1),
    ("Agnes Akello", "female", 29, "Mpererwe", "KMP", [2, 2, 2, 2, 2, 2, 2, 1, 0], 2),
    ("Betty Nalwoga", "female", 38, "Bwaise", "KMP", [1, 2, 1, 2, 2, 1, 1, 2, 0], 2),
    ("Grace Auma", "female", 33, "Kawempe", "KMP", [2, 2, 2, 2, 1, 2, 1, 1, 0], 2),
    ("Mercy Nakalema", "female", 26, "Kanyanya", "KMP", [3, 2, 2, 1, 1, 2, 2, 1, 0], 2),
    ("Esther Namugga", "female", 48, "Mpererwe", "KMP", [2, 2, 2, 2, 2, 1, 1, 1, 0], 2),
    ("Rose Apio", "female", 36, "Bwaise", "KMP", [2, 2, 1, 2, 2, 2, 1, 2, 0], 2),
    ("Lydia Namusoke", "female", 30, "Kawempe", "KMP", [2, 3, 2, 2, 2, 2, 1, 1, 0], 2),
    ("Joan Nakabugo", "female", 44, "Kanyanya", "KMP", [1, 2, 2, 2, 1, 2, 1, 1, 0], 1),
    ("Winnie Nabukenya", "female", 27, "Mpererwe", "KMP", [2, 2, 2, 1, 2, 2, 1, 1, 0], 2),
    ("Ruth Adongo", "female", 35, "Bwaise", "KMP", [2, 2, 2, 2, 2, 2, 2, 1, 0], 2),
    # Not eligible (low scores) and safety cases.
    ("Mary Nanyonga", "female", 40, "Kawempe", "KMP", [1, 1, 0, 1, 0, 1, 0, 0, 0], 0),
    ("Olivia Nakiganda", "female", 22, "Bwaise", "KMP", [0, 1, 1, 0, 1, 0, 0, 0, 0], 0),
    ("Teopista Nalubega", "female", 50, "Kanyanya", "KMP", [2, 3, 2, 2, 2, 3, 2, 1, 2], 3),
    ("Ñandú Kasule", "male", 39, "Mpererwe", "KMP", [1, 2, 1, 2, 1, 1, 1, 0, 1], 1),
    ("Robert Ssekandi", "male", 46, "Kawempe", "KMP", [1, 1, 1, 1, 0, 1, 0, 0, 0], 0),
    ("Moses Ochieng", "male", 31, "Bwaise", "KMP", [2, 2, 2, 2, 2, 1, 1, 1, 0], 2),
    ("John Mugerwa", "male", 42, "Masaka town", "MSK", [2, 2, 2, 2, 1, 2, 1, 1, 0], 2),
    ("Peter Lubega", "male", 36, "Nyendo", "MSK", [2, 2, 1, 2, 2, 2, 1, 1, 0], 2),
    ("Charles Ssali", "male", 51, "Kimaanya", "MSK", [1, 2, 2, 2, 2, 1, 2, 1, 0], 2),
    ("David Kato", "male", 29, "Nyendo", "MSK", [2, 2, 2, 1, 1, 2, 1, 1, 0], 1),
    ("Samuel Wasswa", "male", 33, "Masaka town", "MSK", [2, 3, 2, 2, 1, 2, 1, 1, 0], 2),
    ("Joseph Kizza", "male", 47, "Kimaanya", "MSK", [2, 2, 2, 2, 2, 2, 1, 1, 0], 2),
    ("Emmanuel Mukasa", "male", 25, "Nyendo", "MSK", [1, 2, 2, 2, 1, 2, 1, 1, 0], 1),
    ("Godfrey Sserwadda", "male", 38, "Masaka town", "MSK", [2, 2, 1, 2, 2, 1, 2, 1, 0], 2),
    ("Henry Kaweesa", "male", 44, "Kimaanya", "MSK", [2, 2, 2, 2, 1, 1, 1, 1, 0], 2),
    ("Isaac Mutebi", "male", 30, "Nyendo", "MSK", [1, 1, 1, 0, 1, 1, 0, 0, 0], 0),
    ("Wanjiru Njeri", "female", 34, "Masaka town", "MSK", [2, 2, 2, 2, 2, 2, 1, 1, 0], 2),
    ("Fatuma Nabatanzi", "female", 43, "Kimaanya", "MSK", [2, 2, 1, 2, 1, 2, 1, 1, 0], 1),
    ("Immaculate Nantongo", "female", 27, "Nyendo", "MSK", [1, 2, 2, 2, 2, 1, 1, 1, 1], 2),
    ("Annet Nakayiza", "female", 55, "Masaka town", "MSK", [1, 1, 1, 1, 1, 0, 0, 0, 0], 0),
    ("Stella Namaganda", "female", 32, "Kimaanya", "MSK", [2, 2, 2, 1, 2, 2, 1, 1, 0], 2),
    ("Brenda Nakimuli", "female", 24, "Nyendo", "MSK", [2, 2, 2, 2, 1, 2, 2, 1, 0], 2),
]
AREAS = ("grief", "disputes", "transitions", "isolation")
GOALS = (
    "Sleep better and go back to the market",
    "Talk calmly with my husband",
    "Make one new friend",
    "Visit my sister again",
    "Find work after moving here",
)
DEMO_MARKER = "demo_programme"


def _by_name(db: sqlite_utils.Database, name: str) -> dict:
    return row(db, "select * from participants where name = ?", (name,))


def _screen(db, app, participant, answers, q10, on, actor, *, occasion="screening", cycle_id=None, session_id=None):
    from . import referrals, screening

    forms = app.extensions["group_ipt_forms"]
    raw = {f"q{i + 1}": str(a) for i, a in enumerate(answers)}
    raw["q10"] = str(q10)
    return screening.save_screening(
        db,
        participant=participant,
        instrument=forms.instruments["phq9"],
        raw_answers=raw,
        submission_key=screening.new_submission_key(),
        actor=actor,
        intake=forms.intake,
        plan=referrals.FollowupPlan.from_config(app.config),
        occasion=occasion,
        administered_on=on,
        cycle_id=cycle_id,
        session_id=session_id,
    )


def _first_on_weekday(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def _run_sessions(db, app, cycle, members, upto: int, rng: random.Random, actor, absent_streak: dict | None = None):
    """Record attendance, symptom checks and fidelity for the cycle's sessions numbered up to ``upto``."""
    from . import cycles, sessions
    from .followup import occasion_of

    forms = app.extensions["group_ipt_forms"]
    protocol = forms.protocols[cycle["protocol_id"]]
    last_number = max(s.number for s in protocol.group_sessions)
    for session in cycles.sessions(db, cycle["id"]):
        if session["number"] > upto or session["kind"] != "group" and session["kind"] != "pre-group":
            continue
        day = date.fromisoformat(session["scheduled_date"])
        attendance, checks = {}, {}
        for m in members:
            skip = absent_streak and m["id"] in absent_streak and session["number"] in absent_streak[m["id"]]
            status = "absent" if skip else rng.choices(["present", "present", "present", "late", "excused"])[0]
            attendance[m["id"]] = status
            if status in ("present", "late") and session["number"] > 0:
                trend = rng.choices(["better", "same", "worse"], weights=[5, 3, 1])[0]
                checks[m["id"]] = (trend, max(0, min(10, 7 - session["number"] // 2 + rng.randint(-1, 1))))
        fidelity = {item.id: rng.random() > 0.15 for item in protocol.fidelity_checklist}
        note = "Group met as planned." if session["number"] else "Individual meetings held."
        entry = sessions.SessionEntry(attendance=attendance, checks=checks, fidelity=fidelity, note=note)
        sessions.record_session(
            db,
            session["id"],
            entry,
            expected_version=session["version"],
            protocols=forms.protocols,
            actor=actor,
            today=day,
        )
        due = protocol.instruments_due(session["number"]) if session["number"] <= last_number else ()
        if "phq9" in due:
            occasion = occasion_of(session["number"], protocol)
            for m in members:
                if attendance[m["id"]] in ("present", "late"):
                    participant = row(db, "select * from participants where id = ?", (m["participant_id"],))
                    base = max(4, 14 - session["number"] - rng.randint(0, 4))
                    answers = [min(3, base // 9 + (1 if i < base % 9 else 0)) for i in range(9)]
                    answers[8] = 0
                    _screen(
                        db,
                        app,
                        participant,
                        answers,
                        1,
                        day,
                        actor,
                        occasion=occasion,
                        cycle_id=cycle["id"],
                        session_id=session["id"],
                    )


def load_programme(db: sqlite_utils.Database, app: Flask, summary: DemoSummary, today: date) -> None:
    """Register the demo people, screen them, and run three cycles at different stages around ``today``."""
    from . import cycles, participants, referrals

    rng = random.Random(2026)  # noqa: S311 (made-up demo data, not secrets)
    forms = app.extensions["group_ipt_forms"]
    sites = {code: users.get_site(db, code) for code, _, _ in DEMO_SITES}
    people = {u: users.get_user_by_username(db, u) for u, *_ in DEMO_USERS}
    screened_on = today - timedelta(weeks=12)
    for name, sex, age, village, site_code, answers, q10 in DEMO_PEOPLE:
        actor = people["amina"] if site_code == "KMP" else people["grace"]
        reg = participants.register(
            db,
            site=sites[site_code],
            actor=actor,
            consents=["screening", "group", "data_sharing"],
            today=screened_on,
            name=name,
            sex=sex,
            age=age,
            village=village,
            phone=f"07{rng.randint(10000000, 99999999)}",
            language=None,
        )
        # Risk answers were screened this week, so their weekly follow-ups are just starting.
        on = today - timedelta(days=4) if answers[8] else screened_on + timedelta(days=rng.randint(0, 6))
        _screen(db, app, reg.participant, answers, q10, on, actor)
        summary.add("participants")
    # One open referral acknowledged with a follow-up visit; the other waits for acknowledgement.
    teopista = _by_name(db, "Teopista Nalubega")
    for referral in referrals.for_participant(db, teopista["id"]):
        referrals.acknowledge(db, referral, people["amina"])

    def start(site_code, protocol_id, group_type, venue, first, facilitators, names, time="10:00"):
        cycle = cycles.create_cycle(
            db,
            site_id=sites[site_code]["id"],
            protocol=forms.protocols[protocol_id],
            facilitator_ids=[people[f]["id"] for f in facilitators],
            group_type=group_type,
            venue=venue,
            first_date=first,
            weekday=first.weekday(),
            start_time=time,
            actor=people["coord"],
            now=datetime.combine(first - timedelta(days=7), datetime.min.time()),
        )
        members = []
        for n in names:
            member, _warnings = cycles.enrol(
                db, cycle["id"], _by_name(db, n)["id"], actor=people["coord"], today=first - timedelta(days=3)
            )
            cycles.set_member_plan(
                db, member["id"], rng.choice(AREAS), None, rng.choice(GOALS), actor=people[facilitators[0]]
            )
            members.append(member)
        summary.add("cycles")
        return cycle, members

    # 1. A who-8 women's group at Kampala North that has finished.
    first = _first_on_weekday(today - timedelta(weeks=11), 1)
    done, done_members = start(
        "KMP", "who-8", "women", "St. Luke's church hall", first, ["amina", "joseph"], [p[0] for p in DEMO_PEOPLE[:8]]
    )
    _run_sessions(db, app, done, done_members, 8, rng, people["amina"])
    cycles.close_cycle(
        db, done["id"], forms.protocols["who-8"], early=False, actor=people["coord"], today=today - timedelta(days=3)
    )
    # 2. A strongminds-12 women's group, five sessions in; one member missed the last two.
    first = _first_on_weekday(today - timedelta(weeks=6), 3)
    running, running_members = start(
        "KMP",
        "strongminds-12",
        "women",
        "Bwaise health centre",
        first,
        ["amina"],
        [p[0] for p in DEMO_PEOPLE[8:18]],
        time="14:00",
    )
    _run_sessions(
        db, app, running, running_members, 4, rng, people["amina"], absent_streak={running_members[1]["id"]: {3, 4}}
    )
    # 3. A short-6 men's group at Masaka that starts next week.
    first = _first_on_weekday(today + timedelta(days=2), 2)
    start(
        "MSK", "short-6", "men", "Nyendo primary school", first, ["grace", "peter"], [p[0] for p in DEMO_PEOPLE[24:32]]
    )
    _supervision(db, people, sites, running, today)
    with write(db):
        db.execute(
            "insert into settings (key, value, updated_at) values (?, ?, ?)",
            (DEMO_MARKER, json.dumps({"loaded_on": today.isoformat()}), utcnow()),
        )


def _supervision(db, people: dict, sites: dict, running: dict, today: date) -> None:
    """Give the demo supervisor the four facilitators and one weekly meeting, so the supervision pages show them."""
    from . import supervision

    for username, site_code in (("amina", "KMP"), ("joseph", "KMP"), ("grace", "MSK"), ("peter", "MSK")):
        supervision.assign(
            db,
            supervisor_id=people["super"]["id"],
            facilitator_id=people[username]["id"],
            site_id=sites[site_code]["id"],
            actor=people["coord"],
        )
    supervision.add_log(
        db,
        supervisor=people["super"],
        facilitator_id=people["amina"]["id"],
        site_id=sites["KMP"]["id"],
        held_on=today - timedelta(days=2),
        cycle_ids=[running["id"]],
        cases="One member missed two sessions in a row; a home visit is planned.",
        actions="Amina visits her this week and calls the supervisor after.",
        today=today,
    )


def describe(summary: DemoSummary) -> str:
    made = ", ".join(f"{n} {what}" for what, n in summary.created.items()) or "nothing new (already loaded)"
    lines = [f"Demo programme: created {made}.", f"Demo logins (password for all: {DEMO_PASSWORD}):"]
    lines += [f"  {username:<8} {role}" for username, role in summary.logins]
    return "\n".join(lines)
