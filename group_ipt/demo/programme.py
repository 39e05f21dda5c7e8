"""A small, realistic demo programme so a newcomer sees a live app.

Everything is keyed by natural keys (site code, username, ...), so loading the
demo twice adds nothing the second time. Demo passwords are printed: never use
a demo database for real people.
"""

from __future__ import annotations

import json
import random
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlite_utils

from ..base import clock
from ..core import users
from ..formfiles import forms as formsmod
from ..store.db import row, utcnow, write

if TYPE_CHECKING:
    from ..core.screening import Outcome
    from ..core.sessions import SessionEntry
    from ..formfiles.protocols import Protocol

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


class Running(typing.Protocol):
    """A running app as the commands pass it: its settings and its extensions (the loaded forms)."""

    @property
    def config(self) -> Mapping[str, Any]: ...

    @property
    def extensions(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Programme:
    """What demo data is made from: the programme's settings and its checked forms.

    Plain data, so the demo (and the generator at scale) runs from a database and the
    forms folder (``forms.load_all``) without a web app.
    """

    config: Mapping[str, Any]
    forms: formsmod.Forms

    @classmethod
    def of(cls, source: Programme | Running) -> Programme:
        """Return ``source`` itself, or the settings and forms of a running app."""
        if isinstance(source, Programme):
            return source
        return cls(source.config, formsmod.loaded(source.extensions))


@dataclass
class DemoSummary:
    created: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


def load_demo(db: sqlite_utils.Database, source: Programme | Running) -> DemoSummary:
    """Create the demo sites and users, then the demo participants, screenings and cycles.

    ``source`` is a Programme, or the running app (its settings and loaded forms).
    """
    programme = Programme.of(source)
    summary = DemoSummary()
    hash_method = programme.config["PASSWORD_HASH_METHOD"]
    for code, name, lang in DEMO_SITES:
        if users.get_site(db, code) is None:
            users.create_site(db, code, name, lang)
            summary.add("sites")
    for username, role, display, site_codes, language in DEMO_USERS:
        summary.logins.append((username, role))
        if users.get_user_by_username(db, username) is None:
            site_ids = [_required(users.get_site(db, c), c)["id"] for c in site_codes]
            users.create_user(
                db,
                username,
                DEMO_PASSWORD,
                role,
                display_name=display,
                site_ids=site_ids,
                language=language,
                hash_method=hash_method,
            )
            summary.add("users")
    if row(db, "select value from settings where key = ?", (DEMO_MARKER,)) is None:
        load_programme(db, programme, summary, clock.today())
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


def _by_name(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    return _required(row(db, "select * from participants where name = ?", (name,)), name)


def _required(found: dict[str, Any] | None, what: str) -> dict[str, Any]:
    assert found is not None, what  # written by an earlier step of the demo
    return found


def _first_on_weekday(day: date, weekday: int) -> date:
    return day + timedelta(days=(weekday - day.weekday()) % 7)


@dataclass
class _Demo:
    """The demo programme being written: the database, the programme, the random source, sites and staff."""

    db: sqlite_utils.Database
    programme: Programme
    rng: random.Random
    sites: dict[str, dict[str, Any]]  # by site code
    people: dict[str, dict[str, Any]]  # the demo users, by username
    summary: DemoSummary

    def screen(
        self,
        participant: dict[str, Any],
        answers: list[int],
        q10: int,
        on: date,
        actor: dict[str, Any],
        *,
        occasion: str = "screening",
        cycle_id: str | None = None,
        session_id: str | None = None,
    ) -> Outcome:
        from ..core import referrals, screening

        forms = self.programme.forms
        assert forms.intake is not None  # forms.load_all always reads intake.yaml
        raw: dict[str, str | int | None] = {f"q{i + 1}": str(a) for i, a in enumerate(answers)}
        raw["q10"] = str(q10)
        return screening.save_screening(
            self.db,
            participant=participant,
            instrument=forms.instruments["phq9"],
            raw_answers=raw,
            submission_key=screening.new_submission_key(),
            actor=actor,
            intake=forms.intake,
            plan=referrals.FollowupPlan.from_config(self.programme.config),
            occasion=occasion,
            administered_on=on,
            cycle_id=cycle_id,
            session_id=session_id,
        )

    def register_people(self, today: date) -> None:
        """Register and screen every demo person twelve weeks ago (risk answers this week)."""
        from ..core import participants

        screened_on = today - timedelta(weeks=12)
        for name, sex, age, village, site_code, answers, q10 in DEMO_PEOPLE:
            actor = self.people["amina"] if site_code == "KMP" else self.people["grace"]
            reg = participants.register(
                self.db,
                site=self.sites[site_code],
                actor=actor,
                consents=["screening", "group", "data_sharing"],
                today=screened_on,
                name=name,
                sex=sex,
                age=age,
                village=village,
                phone=f"07{self.rng.randint(10000000, 99999999)}",
                language=None,
            )
            # Risk answers were screened this week, so their weekly follow-ups are just starting.
            on = today - timedelta(days=4) if answers[8] else screened_on + timedelta(days=self.rng.randint(0, 6))
            self.screen(reg.participant, answers, q10, on, actor)
            self.summary.add("participants")

    def start(
        self,
        site_code: str,
        protocol_id: str,
        group_type: str,
        venue: str,
        first: date,
        facilitators: list[str],
        names: list[str],
        time: str = "10:00",
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Create a cycle and enrol the named people, each with a problem area and a goal."""
        from ..core import cycles

        db, people = self.db, self.people
        cycle = cycles.create_cycle(
            db,
            site_id=self.sites[site_code]["id"],
            protocol=self.programme.forms.protocols[protocol_id],
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
                db, member["id"], self.rng.choice(AREAS), None, self.rng.choice(GOALS), actor=people[facilitators[0]]
            )
            members.append(member)
        self.summary.add("cycles")
        return cycle, members

    def run_sessions(
        self,
        cycle: dict[str, Any],
        members: list[dict[str, Any]],
        upto: int,
        actor: dict[str, Any],
        absent_streak: dict[str, set[int]] | None = None,
    ) -> None:
        """Record attendance, symptom checks and fidelity for the cycle's sessions numbered up to ``upto``."""
        from ..core import cycles, sessions

        protocols = self.programme.forms.protocols
        protocol = protocols[cycle["protocol_id"]]
        last_number = max(s.number for s in protocol.group_sessions)
        for session in cycles.sessions(self.db, cycle["id"]):
            if session["number"] > upto or session["kind"] != "group" and session["kind"] != "pre-group":
                continue
            day = date.fromisoformat(session["scheduled_date"])
            entry = self.session_entry(session["number"], protocol, members, absent_streak or {})
            sessions.record_session(
                self.db,
                session["id"],
                entry,
                expected_version=session["version"],
                protocols=protocols,
                actor=actor,
                today=day,
            )
            due = protocol.instruments_due(session["number"]) if session["number"] <= last_number else ()
            if "phq9" in due:
                self.screen_members(cycle, session, protocol, members, entry.attendance, actor)

    def session_entry(
        self, number: int, protocol: Protocol, members: list[dict[str, Any]], absent_streak: dict[str, set[int]]
    ) -> SessionEntry:
        """Make up what the facilitator fills in for session ``number``: attendance, checks, fidelity."""
        from ..core import sessions

        rng = self.rng
        attendance: dict[str, str] = {}
        checks: dict[str, tuple[str | None, int | None]] = {}
        for m in members:
            skip = m["id"] in absent_streak and number in absent_streak[m["id"]]
            status = "absent" if skip else rng.choices(["present", "present", "present", "late", "excused"])[0]
            attendance[m["id"]] = status
            if status in ("present", "late") and number > 0:
                trend = rng.choices(["better", "same", "worse"], weights=[5, 3, 1])[0]
                checks[m["id"]] = (trend, max(0, min(10, 7 - number // 2 + rng.randint(-1, 1))))
        fidelity = {item.id: rng.random() > 0.15 for item in protocol.fidelity_checklist}
        note = "Group met as planned." if number else "Individual meetings held."
        return sessions.SessionEntry(attendance=attendance, checks=checks, fidelity=fidelity, note=note)

    def screen_members(
        self,
        cycle: dict[str, Any],
        session: dict[str, Any],
        protocol: Protocol,
        members: list[dict[str, Any]],
        attendance: dict[str, str],
        actor: dict[str, Any],
    ) -> None:
        """Give the PHQ-9 due at a session to the members who came, with scores falling as the cycle goes on."""
        from ..core.followup import occasion_of

        occasion = occasion_of(session["number"], protocol)
        day = date.fromisoformat(session["scheduled_date"])
        for m in members:
            if attendance[m["id"]] not in ("present", "late"):
                continue
            participant = _required(
                row(self.db, "select * from participants where id = ?", (m["participant_id"],)), m["participant_id"]
            )
            base = max(4, 14 - session["number"] - self.rng.randint(0, 4))
            answers = [min(3, base // 9 + (1 if i < base % 9 else 0)) for i in range(9)]
            answers[8] = 0
            self.screen(
                participant,
                answers,
                1,
                day,
                actor,
                occasion=occasion,
                cycle_id=cycle["id"],
                session_id=session["id"],
            )


def load_programme(db: sqlite_utils.Database, source: Programme | Running, summary: DemoSummary, today: date) -> None:
    """Register the demo people, screen them, and run three cycles at different stages around ``today``."""
    from ..core import referrals

    demo = _Demo(
        db,
        Programme.of(source),
        random.Random(2026),  # noqa: S311 (made-up demo data, not secrets)
        sites={code: _required(users.get_site(db, code), code) for code, _, _ in DEMO_SITES},
        people={u: _required(users.get_user_by_username(db, u), u) for u, *_ in DEMO_USERS},
        summary=summary,
    )
    demo.register_people(today)
    # One open referral acknowledged with a follow-up visit; the other waits for acknowledgement.
    teopista = _by_name(db, "Teopista Nalubega")
    for referral in referrals.for_participant(db, teopista["id"]):
        referrals.acknowledge(db, referral, demo.people["amina"])
    running = _cycles(demo, today)
    _supervision(db, demo.people, demo.sites, running, today)
    with write(db):
        db.execute(
            "insert into settings (key, value, updated_at) values (?, ?, ?)",
            (DEMO_MARKER, json.dumps({"loaded_on": today.isoformat()}), utcnow()),
        )


def _cycles(demo: _Demo, today: date) -> dict[str, Any]:
    """Run three cycles: one finished, one five sessions in, one starting next week; return the running one."""
    from ..core import cycles

    people = demo.people
    # 1. A who-8 women's group at Kampala North that has finished.
    first = _first_on_weekday(today - timedelta(weeks=11), 1)
    done, done_members = demo.start(
        "KMP", "who-8", "women", "St. Luke's church hall", first, ["amina", "joseph"], [p[0] for p in DEMO_PEOPLE[:8]]
    )
    demo.run_sessions(done, done_members, 8, people["amina"])
    cycles.close_cycle(
        demo.db,
        done["id"],
        demo.programme.forms.protocols["who-8"],
        early=False,
        actor=people["coord"],
        today=today - timedelta(days=3),
    )
    # 2. A strongminds-12 women's group, five sessions in; one member missed the last two.
    first = _first_on_weekday(today - timedelta(weeks=6), 3)
    running, running_members = demo.start(
        "KMP",
        "strongminds-12",
        "women",
        "Bwaise health centre",
        first,
        ["amina"],
        [p[0] for p in DEMO_PEOPLE[8:18]],
        time="14:00",
    )
    demo.run_sessions(running, running_members, 4, people["amina"], absent_streak={running_members[1]["id"]: {3, 4}})
    # 3. A short-6 men's group at Masaka that starts next week.
    first = _first_on_weekday(today + timedelta(days=2), 2)
    demo.start(
        "MSK", "short-6", "men", "Nyendo primary school", first, ["grace", "peter"], [p[0] for p in DEMO_PEOPLE[24:32]]
    )
    return running


def _supervision(db, people: dict, sites: dict, running: dict, today: date) -> None:
    """Give the demo supervisor the four facilitators and one weekly meeting, so the supervision pages show them."""
    from ..core import supervision

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
