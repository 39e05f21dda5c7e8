"""A national-programme-sized database for benchmarks: ``group-ipt demo --scale N``.

The domain functions (``participants.register``, ``sessions.record_session``...) check and
audit every write and take minutes per thousand people, so this module writes the same
rows with plain INSERTs, one transaction per site of 2,500 people. The rows follow every
schema rule and look like what those functions write (the audit log aside):

- participants with programme codes and their check letter, consents, status history
  (registered, eligible, enrolled, completed...), and duplicate flags exactly where
  registration raises them (same name, village and age band; about 1% of people are
  registered twice), most reviewed by the coordinator;
- PHQ-9 screenings scored by the instrument: at registration, at the sessions the
  protocol says (baseline / mid / end) and at its follow-up months after the cycle. About
  6% of them answer the risk item (question 9) above 0, and each of those is saved with
  its safety referral as ``screening.save_screening`` saves it (reason, triggers, urgency,
  planned follow-ups, events): no PHQ-9 with a risk answer exists without its referral.
  Most referrals are closed, some open, a few with overdue follow-ups;
- cycles ``S001-C001`` of four protocols (strongminds-12, uganda-16, who-8, short-6; groups
  start full, from the top of the protocol's group size), members, sessions numbered and
  phased by the protocol (held ones recorded, version 1), attendance, symptom checks and
  fidelity checklists; cycles closed as ``cycles.close_cycle`` closes them (completed or
  dropped out by the protocol's rule; 3% closed early, their later sessions cancelled);
  about half of the dropouts and of the members still depressed at the end join a later
  group (with an override reason); a call or visit after most runs of two absences in a row;
- for a quarter of the members, the clinical record: pre-group record (a medication
  assessment sometimes opens a referral), interpersonal inventory, timeline, problem-area
  history (some revised mid-cycle), goal progress, relapse-prevention plan and outcome
  decision (some referred on); the supervisor supervises every facilitator.

Not generated: session moves and make-up sessions, supervision logs and session ratings,
instruments other than PHQ-9, exclusions at intake, transfers and withdrawals, holidays.

N = 100,000 gives 40 sites, about 8,300 cycles, 105,000 memberships, 1.4 million attendance
rows and 27,000 referrals: 4.8 million rows, a 3.7 GB file, in 5-7 minutes on 2 cores (into
a new database the rollback journal is kept in memory instead of the WAL: see ``generate``).

Sync: the change-capture triggers are switched off while writing (``sync_clock.applying``,
as sync does), and each table's rows are then logged with one INSERT ... SELECT, exactly
as ``ensure_triggers`` logs the rows of a table that existed before sync was set up. So
the database obeys the sync invariant (every record has a version and a log line) and
costs a third of the time.
"""

from __future__ import annotations

import base64
import heapq
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlite_utils
from werkzeug.security import generate_password_hash

from ..core.followup import add_months, occasion_of
from ..core.participants import AGE_BAND_YEARS, make_code, name_key
from ..core.referrals import FollowupPlan
from ..core.screening import referral_reason as screening_reason
from ..formfiles.instruments import Instrument
from ..formfiles.protocols import Protocol, SessionPlan
from ..store.db import marks, row, utcnow, write
from ..store.tracking import log_existing_rows, synced_tables
from .programme import DEMO_PASSWORD, Programme, Running

SCALE_MARKER = "scale_programme"
PEOPLE_PER_SITE = 2500
FACILITATORS_PER_SITE = 5
# Share of cycles run with each protocol; groups start full (the top two sizes of the protocol's range).
PROTOCOL_MIX = (("strongminds-12", 0.45), ("uganda-16", 0.45), ("who-8", 0.07), ("short-6", 0.03))
NOT_ELIGIBLE_SHARE = 0.06  # people come pre-screened by health workers: most score above the cut-off
REREGISTERED_SHARE = 0.01  # registered a second time (a duplicate flag the coordinator confirms)
DROPOUT_SHARE = 0.12  # stop coming at some session (other members miss a session now and then)
NON_RESPONDER_SHARE = 0.2  # PHQ-9 falls little over the cycle
REJOIN_SHARE = 0.5  # of dropouts, and of completers still depressed: enrolled again in a later cycle
EARLY_CLOSE_SHARE = 0.03  # cycles closed early: the sessions not held are cancelled
ABSENCE_FOLLOWED_UP = 0.85  # runs of absences followed by a call or visit
CLINICAL_SHARE = 0.25  # members whose clinical record is filled in
REFERRAL_STALLED = 0.1  # of the last months' referrals: follow-ups stopped being done (open, overdue)
FOLLOWUP_SCREENED = {"completed": 0.7, "dropped_out": 0.3}  # reached for the follow-up PHQ-9
# Cumulative chances of each attendance mark: the pre-group meeting, then a group session.
PREGROUP_MARKS = ((0.92, "present"), (0.95, "late"), (0.99, "absent"), (1.0, "excused"))
SESSION_MARKS = ((0.80, "present"), (0.88, "late"), (0.96, "absent"), (1.0, "excused"))
TRENDS = ((5 / 9, "better"), (8 / 9, "same"), (1.0, "worse"))  # the symptom check's "since last week"
NOISE = (-1, 0, 0, 1)  # picked by two random bits
ITEMS = tuple(f"q{n}" for n in range(1, 10))  # PHQ-9 answers made from a severity (q9, the risk item, apart)
FIRST_NAMES = (
    "Amina",
    "Grace",
    "Sarah",
    "Florence",
    "Harriet",
    "Rebecca",
    "Juliet",
    "Prossy",
    "Agnes",
    "Betty",
    "Mercy",
    "Esther",
    "Rose",
    "John",
    "Peter",
    "Moses",
    "David",
    "Samuel",
    "Joseph",
    "Fatuma",
    "Aisha",
    "Brenda",
    "Christine",
    "Dorothy",
    "Eunice",
    "Faith",
    "Gladys",
    "Halima",
    "Irene",
    "Janet",
    "Judith",
    "Lydia",
    "Margaret",
    "Night",
    "Olivia",
    "Patience",
    "Ruth",
    "Stella",
    "Winnie",
    "Zawadi",
)
LAST_NAMES = (
    "Nakato",
    "Nambi",
    "Achieng",
    "Nabirye",
    "Atim",
    "Namutebi",
    "Akello",
    "Okello",
    "Ssali",
    "Kato",
    "Wasswa",
    "Kizza",
    "Mukasa",
    "Njeri",
    "Nantongo",
    "Apio",
    "Lubega",
    "Mugerwa",
    "Ochieng",
    "Ŋŋanda",
    "Auma",
    "Babirye",
    "Kemigisha",
    "Nalubega",
    "Namatovu",
    "Nansubuga",
    "Ninsiima",
    "Tumusiime",
    "Wanjiru",
    "Kamau",
    "Otieno",
    "Adong",
    "Akot",
    "Mutesi",
    "Nyakato",
    "Kyomuhendo",
    "Byaruhanga",
    "Ssempijja",
    "Opio",
    "Lamwaka",
)
VILLAGES = ("Kawempe", "Bwaise", "Kanyanya", "Mpererwe", "Nyendo", "Kimaanya", "Masaka town", "Gulu")
VENUES = ("Church hall", "Health centre", "Primary school", "Community centre", "Market shelter")
AREAS = ("grief", "disputes", "transitions", "isolation")
GOALS = ("Sleep better and go back to the market", "Talk calmly with my family", "Make one new friend")
FORMULATIONS = {
    "grief": "Low mood since her mother died in the rainy season; grief",
    "disputes": "Low mood with the quarrels over land at home; disputes",
    "transitions": "Low mood since moving to town for work; a life change",
    "isolation": "Low mood and alone since the children left; isolation",
}
RELATIONS = (
    "husband",
    "wife",
    "mother",
    "sister",
    "brother",
    "daughter",
    "son",
    "neighbour",
    "friend",
    "co-wife",
    "mother-in-law",
    "pastor",
)
CHANGES = ("", "", "", "moved away", "died last year", "stopped talking to me", "lost his job", "got married")
EVENTS = (
    ("Husband lost his job", "lower"),
    ("Mother died", "lower"),
    ("Moved to town", "lower"),
    ("Quarrel over land with in-laws", "lower"),
    ("Harvest was good", "better"),
    ("Child started school", "same"),
    ("Joined a savings group", "better"),
)
REFERRED_TO = (
    "Health centre IV mental health clinic",
    "District hospital psychiatric unit",
    "Psychiatric clinical officer at the health centre",
    "Village health team and health centre III",
)
CLOSING_NOTES = (
    "Safe; no more thoughts of self-harm; attending group.",
    "Seen at the clinic, on treatment, safe.",
    "Risk resolved at review with the supervisor.",
)
# A referral closes with an outcome (referrals.OUTCOMES); read from its note, so the random draws stay as they were.
CLOSING_OUTCOMES = dict(zip(CLOSING_NOTES, ("seen", "seen", "other"), strict=True))
FOLLOWUP_NOTES = (
    "Called: feeling safer, attending group.",
    "Home visit: safe, family aware.",
    "Called: still some thoughts, no plan; safety steps repeated.",
)
ABSENCE_NOTES = (
    "Phone call: was sick, will come next week.",
    "Home visit: caring for a sick child.",
    "Home visit: away for work in town.",
    "Phone call: no answer; message left with a neighbour.",
)
REFER_ON_NOTES = ("Still depressed: refer to the health centre clinic.", "Needs help with alcohol at home.")
EARLY_REASONS = ("Group stopped meeting", "Venue no longer available", "Facilitator left the programme")


@dataclass
class ScaleSummary:
    created: dict[str, int] = field(default_factory=dict)

    def add(self, table: str, n: int) -> None:
        self.created[table] = self.created.get(table, 0) + n


class _Ids:
    """Random UUIDs from a seeded generator: the same N and seed give the same programme."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def __call__(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


# Inserted in this order (parents before children: foreign keys are checked on insert).
COLUMNS: dict[str, tuple[str, ...]] = {
    "supervisor_facilitators": (
        "id",
        "site_id",
        "supervisor_id",
        "facilitator_id",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "participants": (
        "id",
        "site_id",
        "code",
        "name",
        "name_key",
        "sex",
        "birth_year",
        "age_is_estimate",
        "village",
        "phone",
        "status",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "consents": (
        "id",
        "site_id",
        "participant_id",
        "purpose",
        "given",
        "given_by",
        "recorded_by",
        "created_at",
        "updated_at",
    ),
    "participant_status_history": (
        "id",
        "site_id",
        "participant_id",
        "status",
        "reason",
        "changed_by",
        "created_at",
        "updated_at",
    ),
    "duplicate_flags": (
        "id",
        "site_id",
        "participant_id",
        "other_participant_id",
        "reason",
        "status",
        "reviewed_by",
        "reviewed_at",
        "created_at",
        "updated_at",
    ),
    "cycles": (
        "id",
        "site_id",
        "code",
        "protocol_id",
        "protocol_version",
        "group_type",
        "venue",
        "weekday",
        "start_time",
        "first_date",
        "status",
        "closed_on",
        "closed_reason",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "cycle_facilitators": ("id", "site_id", "cycle_id", "user_id", "role", "created_at", "updated_at"),
    "sessions": (
        "id",
        "site_id",
        "cycle_id",
        "number",
        "kind",
        "phase",
        "scheduled_date",
        "start_time",
        "minutes",
        "status",
        "note",
        "recorded_by",
        "recorded_at",
        "version",
        "created_at",
        "updated_at",
    ),
    "session_changes": (
        "id",
        "site_id",
        "cycle_id",
        "session_id",
        "action",
        "old_date",
        "new_date",
        "reason",
        "changed_by",
        "created_at",
        "updated_at",
    ),
    "members": (
        "id",
        "site_id",
        "cycle_id",
        "participant_id",
        "status",
        "problem_area",
        "problem_area_2",
        "goals",
        "enrolled_on",
        "override_reason",
        "ended_on",
        "end_reason",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "screenings": (
        "id",
        "site_id",
        "participant_id",
        "instrument_id",
        "instrument_version",
        "occasion",
        "cycle_id",
        "session_id",
        "answers_json",
        "total",
        "raw_total",
        "band",
        "eligible",
        "cutoff",
        "risk",
        "risk_items_json",
        "administered_on",
        "administered_by",
        "submission_key",
        "created_at",
        "updated_at",
    ),
    "referrals": (
        "id",
        "site_id",
        "participant_id",
        "screening_id",
        "reason",
        "triggers_json",
        "urgency",
        "status",
        "referred_to",
        "note",
        "acknowledged_by",
        "acknowledged_at",
        "created_by",
        "closed_at",
        "outcome",
        "created_at",
        "updated_at",
    ),
    "referral_events": ("id", "site_id", "referral_id", "status", "note", "by_user", "created_at", "updated_at"),
    "referral_followups": (
        "id",
        "site_id",
        "referral_id",
        "due_on",
        "done_on",
        "done_by",
        "note",
        "created_at",
        "updated_at",
    ),
    "attendance": ("id", "site_id", "session_id", "member_id", "status", "recorded_by", "created_at", "updated_at"),
    "symptom_checks": ("id", "site_id", "session_id", "member_id", "trend", "rating", "created_at", "updated_at"),
    "fidelity_checklists": ("id", "site_id", "session_id", "user_id", "answers_json", "created_at", "updated_at"),
    "absence_followups": ("id", "site_id", "member_id", "done_on", "note", "done_by", "created_at", "updated_at"),
    "pregroup_records": (
        "id",
        "site_id",
        "member_id",
        "screening_id",
        "formulation",
        "medication_assessment",
        "medication_referral_id",
        "group_consent",
        "recorded_by",
        "created_at",
        "updated_at",
    ),
    "inventory_people": (
        "id",
        "site_id",
        "member_id",
        "name",
        "relationship",
        "closeness",
        "quality",
        "recent_change",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "timeline_events": (
        "id",
        "site_id",
        "member_id",
        "happened",
        "sort_key",
        "event",
        "mood",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "problem_area_history": (
        "id",
        "site_id",
        "member_id",
        "problem_area",
        "problem_area_2",
        "formulation",
        "reason",
        "session_id",
        "changed_by",
        "created_at",
        "updated_at",
    ),
    "goal_progress": (
        "id",
        "site_id",
        "member_id",
        "session_id",
        "progress",
        "note",
        "recorded_by",
        "created_at",
        "updated_at",
    ),
    "relapse_plans": (
        "id",
        "site_id",
        "member_id",
        "warning_signs",
        "people",
        "actions",
        "recorded_by",
        "created_at",
        "updated_at",
    ),
    "outcome_decisions": (
        "id",
        "site_id",
        "member_id",
        "decision",
        "note",
        "extra_sessions",
        "referral_id",
        "decided_by",
        "created_at",
        "updated_at",
    ),
}


def _insert(
    db: sqlite_utils.Database, table: str, records: list[tuple], summary: ScaleSummary, columns: tuple[str, ...]
) -> None:
    if not records:
        return
    records.sort()  # by id: neighbouring keys land in the same B-tree pages
    db.conn.executemany(f'insert into "{table}" ({", ".join(columns)}) values ({marks(columns)})', records)
    summary.add(table, len(records))


def _stamp(day: date, time: str = "09:00:00") -> str:
    return f"{day.isoformat()}T{time}+00:00"


def _mark(table: tuple[tuple[float, str], ...], r: float) -> str:
    for threshold, status in table:
        if r < threshold:
            return status
    return table[-1][1]


def generate(
    db: sqlite_utils.Database,
    source: Programme | Running,
    n_people: int,
    *,
    today: date,
    seed: int = 2026,
    progress: Callable[[int, int], None] | None = None,
) -> ScaleSummary:
    """Write a programme of ``n_people`` participants (sites, users, cycles...) into ``db``.

    ``source`` is a demo.Programme (settings and forms), or the running app.
    """
    if row(db, "select value from settings where key = ?", (SCALE_MARKER,)):
        raise ValueError("This database already holds a generated programme; use a new data folder.")
    # Random-key inserts into big indexes: a large page cache saves most of the reads.
    db.execute("pragma cache_size = -1048576")
    # Into a new database (no participant yet), write without the WAL file: every page is written
    # once instead of twice (WAL, then checkpoint), a third less time at 100,000 people. The
    # rollback journal stays in memory, so an error still undoes the site being written, but a
    # killed process leaves a database to throw away (as a half-generated programme is anyway).
    fast = (
        db.execute("select count(*) from participants").fetchone()[0] == 0
        and db.execute("pragma journal_mode = memory").fetchone()[0] == "memory"
    )
    if fast:
        db.execute("pragma synchronous = off")
    try:
        return _generate(db, Programme.of(source), n_people, today=today, seed=seed, progress=progress)
    finally:
        if fast:
            db.execute("pragma journal_mode = wal")
            db.execute("pragma synchronous = normal")


def _generate(
    db: sqlite_utils.Database,
    programme: Programme,
    n_people: int,
    *,
    today: date,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> ScaleSummary:
    forms = programme.forms
    rng = random.Random(seed)  # noqa: S311 (made-up benchmark data, not secrets)
    new_id = _Ids(rng)
    summary = ScaleSummary()
    now = utcnow()
    pw_hash = generate_password_hash(DEMO_PASSWORD, method=programme.config["PASSWORD_HASH_METHOD"])
    site_codes = _new_site_codes(db, max(2, math.ceil(n_people / PEOPLE_PER_SITE)))
    with write(db):
        staff = _Staff.insert(db, site_codes, rng, new_id, pw_hash, now, summary)
    shared = _Shared(
        rng=rng,
        new_id=new_id,
        today=today,
        phq9=forms.instruments["phq9"],
        cutoff=int(programme.config.get("ELIGIBILITY_CUTOFFS", {}).get("phq9", 10)),
        protocols={pid: forms.protocols[pid] for pid, _ in PROTOCOL_MIX},
        plan=FollowupPlan.from_config(programme.config),
        coordinator=staff.roles["coordinator"],
        supervisor=staff.roles["supervisor"],
    )
    base, extra = divmod(n_people, len(site_codes))
    for index, (sid, code) in enumerate(zip(staff.site_ids, site_codes, strict=True)):
        site = _Site(shared, sid, code, staff.facilitators[sid], now)
        site.build(base + (1 if index < extra else 0))
        with write(db):
            db.execute("update sync_clock set applying = 1 where id = 1")
            for table, columns in COLUMNS.items():
                _insert(db, table, site.rows[table], summary, columns)
            db.execute("update sync_clock set applying = 0 where id = 1")
        if progress:
            progress(index + 1, len(site_codes))
    # Logging the generated rows for sync changes no record: the commit checks would read every
    # row of a national-sized programme again (tests/test_scale.py checks the data itself).
    with write(db, checks=False):
        for table in synced_tables(db):
            if table in summary.created:
                log_existing_rows(db, table)
        db.execute(
            "insert into settings (key, value, updated_at) values (?, ?, ?)",
            (
                SCALE_MARKER,
                json.dumps({"participants": n_people, "seed": seed, "generated_on": today.isoformat()}),
                now,
            ),
        )
    db.execute("analyze")
    return summary


def _new_site_codes(db: sqlite_utils.Database, n_sites: int) -> list[str]:
    """Return ``n_sites`` codes S001, S002... that no site of ``db`` has yet."""
    existing_codes = {r["code"] for r in db.query("select code from sites")}
    site_codes: list[str] = []
    k = 1
    while len(site_codes) < n_sites:
        if f"S{k:03d}" not in existing_codes:
            site_codes.append(f"S{k:03d}")
        k += 1
    return site_codes


@dataclass
class _Staff:
    """The sites and the people who work in them: an admin, a coordinator, a supervisor, facilitators."""

    site_ids: list[str]
    roles: dict[str, str]  # role -> user id, for the admin, coordinator and supervisor
    facilitators: dict[str, list[str]]  # site id -> its facilitators' user ids

    @classmethod
    def insert(
        cls,
        db: sqlite_utils.Database,
        site_codes: list[str],
        rng: random.Random,
        new_id: _Ids,
        pw_hash: str,
        now: str,
        summary: ScaleSummary,
    ) -> _Staff:
        """Insert the sites, users and their site links; return who is who."""
        sites = [(new_id(), code, f"Site {code}", "en", now, now) for code in site_codes]
        _insert(db, "sites", sites, summary, ("id", "code", "name", "default_language", "created_at", "updated_at"))
        site_ids = [s[0] for s in sites]
        user_cols = ("id", "username", "display_name", "password_hash", "role", "active", "created_at", "updated_at")
        staff: list[tuple] = []
        links: list[tuple[str, str]] = []
        facilitators: dict[str, list[str]] = {}
        roles: dict[str, str] = {}
        for username, role in (("scale-admin", "admin"), ("scale-coord", "coordinator"), ("scale-super", "supervisor")):
            uid = new_id()
            roles[role] = uid
            staff.append((uid, username, username.replace("-", " ").title(), pw_hash, role, 1, now, now))
            if role != "admin":
                links += [(uid, sid) for sid in site_ids]
        for sid, code in zip(site_ids, site_codes, strict=True):
            facilitators[sid] = []
            for i in range(1, FACILITATORS_PER_SITE + 1):
                uid = new_id()
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
                staff.append((uid, f"fac-{code.lower()}-{i}", name, pw_hash, "facilitator", 1, now, now))
                links.append((uid, sid))
                facilitators[sid].append(uid)
        _insert(db, "users", staff, summary, user_cols)
        _insert(db, "user_sites", links, summary, ("user_id", "site_id"))
        return cls(site_ids, roles, facilitators)


@dataclass
class _Shared:
    rng: random.Random
    new_id: _Ids
    today: date
    phq9: Instrument
    cutoff: int
    protocols: dict[str, Protocol]
    plan: FollowupPlan
    coordinator: str
    supervisor: str


@dataclass
class _Cycle:
    """One cycle being made up: its schedule, how far it got, and who leads it."""

    id: str
    code: str
    protocol: Protocol
    first: date
    plans: list[SessionPlan]  # by number
    dates: list[date]  # of each plan
    last_group: int  # the number of the last group session
    early: bool  # closed early: the sessions from ``stop`` on are cancelled
    stop: int
    closing: date | None
    close_stamp: str | None
    held_count: int
    status: str
    lead: str
    enrolled_on: date
    created: str
    reason: str | None  # why it closed early
    start_time: str


@dataclass
class _Member:
    id: str
    person: int  # index in _Site.people
    severity: int  # PHQ-9 total at screening
    responder: bool
    drop_at: int | None  # group session number from which the member stops coming
    attended: int = 0  # group sessions attended (present or late)
    streak: int = 0  # absences in a row, "excused" neither counting nor breaking it
    triggers: list[date] = field(default_factory=list)  # dates at which a run of absences needed a visit
    baseline_id: str | None = None
    present_at: list[tuple[int, str, date]] = field(default_factory=list)  # group sessions attended


@dataclass
class _Referral:
    """A referral being made up: its status, who acknowledged it, and its events so far."""

    id: str
    by: str  # who opened it
    created: str
    status: str = "open"
    updated: str = ""
    referred_to: str | None = None
    note: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    closed_at: str | None = None
    events: list[tuple[str, str | None, str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.updated = self.created
        self.events.append(("open", None, self.by, self.created))

    def move(self, status: str, stamp: str, note: str | None = None, by: str | None = None) -> None:
        """Record a change of status at ``stamp``, as a referral event."""
        self.status, self.updated = status, stamp
        self.events.append((status, note, by or self.by, stamp))

    def row(
        self, sid: str, participant_id: str, screening_id: str | None, reason: str, triggers: list[dict], urgency: str
    ) -> tuple:
        return (
            self.id,
            sid,
            participant_id,
            screening_id,
            reason,
            json.dumps(triggers, ensure_ascii=False),
            urgency,
            self.status,
            self.referred_to,
            self.note,
            self.acknowledged_by,
            self.acknowledged_at,
            self.by,
            self.closed_at,
            CLOSING_OUTCOMES[self.note] if self.status == "closed" and self.note else None,
            self.created,
            self.updated,
        )


class _Site:
    """The rows of one site, built in memory, then inserted table by table in one transaction."""

    def __init__(self, shared: _Shared, sid: str, code: str, facs: list[str], now: str):
        self.s, self.sid, self.code, self.facs, self.now = shared, sid, code, facs, now
        self.rng, self.new_id, self.today = shared.rng, shared.new_id, shared.today
        self.rows: dict[str, list[tuple]] = {table: [] for table in COLUMNS}
        self.people: list[list] = []
        self.severity: list[int] = []
        phq9 = shared.phq9
        self.scored = [item.id for item in phq9.scored_items]
        # (item id, its alert rule, its highest answer) of each risk item: risk_items all have a rule.
        self.risk_rules = [(item.id, item.risk, max(item.values)) for item in phq9.risk_items if item.risk is not None]

    # --- people ---------------------------------------------------------------------------

    def build(self, size: int) -> None:
        rows = self.rows
        for fac in self.facs:
            rows["supervisor_facilitators"].append(
                (self.new_id(), self.sid, self.s.supervisor, fac, self.s.coordinator, self.now, self.now)
            )
        eligible = self._people(size)
        self._duplicates()
        self._cycles(eligible)
        rows["participants"] = [tuple(person) for person in self.people]

    def _people(self, size: int) -> list[tuple[date, int]]:
        rng, sid, today = self.rng, self.sid, self.today
        if size > 10000:
            raise ValueError(f"At most 10,000 participants fit in one site; got {size}.")
        digits = rng.sample(range(10000), size)
        start = today - timedelta(days=720)
        people = self.people
        for d in digits:
            screened = start + timedelta(days=rng.randint(0, 700))
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            people.append(
                [
                    self.new_id(),
                    sid,
                    make_code(self.code, f"{d:04d}"),
                    name,
                    name_key(name),
                    rng.choice(("female", "female", "female", "male")),
                    today.year - rng.randint(18, 65),
                    1,
                    rng.choice(VILLAGES),
                    f"07{rng.randint(10000000, 99999999)}",
                    "registered",
                    rng.choice(self.facs),
                    _stamp(screened),
                    _stamp(screened),
                ]
            )
        # A few people are registered twice (a new code, the same person): registration flags them.
        self.twins: set[frozenset[int]] = set()
        for i in rng.sample(range(size), round(size * REREGISTERED_SHARE)):
            j = rng.randrange(size)
            if j != i:
                twin, other = people[i], people[j]
                twin[3:7] = [other[3], other[4], other[5], other[6] + rng.randint(-1, 1)]
                twin[8:10] = other[8:10]
                self.twins.add(frozenset((i, j)))
        eligible = []
        for i, person in enumerate(people):
            pid, by, stamp = person[0], person[11], person[12]
            screened = date.fromisoformat(stamp[:10])
            severity = rng.randint(3, 8) if rng.random() < NOT_ELIGIBLE_SHARE else rng.randint(12, 23)
            self.severity.append(severity)
            for purpose in ("screening", "group", "data_sharing"):
                self.rows["consents"].append((self.new_id(), sid, pid, purpose, 1, "participant", by, stamp, stamp))
            self._status(i, "registered", None, by, stamp)
            _sid, is_eligible = self._screening(i, "screening", screened, by, severity, time="09:10:00")
            status = "eligible" if is_eligible else "not_eligible"
            self._status(i, status, f"{self.s.phq9.id} screening", by, _stamp(screened, "09:10:00"))
            if is_eligible:
                eligible.append((screened, i))
        return eligible

    def _status(self, i: int, status: str, reason: str | None, by: str | None, stamp: str) -> None:
        person = self.people[i]
        person[10], person[13] = status, stamp
        self.rows["participant_status_history"].append(
            (self.new_id(), self.sid, person[0], status, reason, by, stamp, stamp)
        )

    def _duplicates(self) -> None:
        """Flag possible duplicates as registration does: same name, village and age band as someone earlier."""
        rng, people = self.rng, self.people
        seen: dict[tuple[str, str], list[int]] = {}
        for i in sorted(range(len(people)), key=lambda i: people[i][12]):
            person = people[i]
            key = (person[4], name_key(person[8]))
            for j in seen.get(key, ()):
                if abs(people[j][6] - person[6]) > AGE_BAND_YEARS:
                    continue
                stamp = person[12]
                day = date.fromisoformat(stamp[:10])
                age = (self.today - day).days
                status, by, at = "open", None, None
                if age > 14 and rng.random() < 0.85:
                    status = "duplicate" if frozenset((i, j)) in self.twins else "not_duplicate"
                    by, at = self.s.coordinator, _stamp(day + timedelta(days=rng.randint(2, min(age, 45))), "11:00:00")
                self.rows["duplicate_flags"].append(
                    (
                        self.new_id(),
                        self.sid,
                        person[0],
                        people[j][0],
                        "same name, village and age band",
                        status,
                        by,
                        at,
                        stamp,
                        at or stamp,
                    )
                )
            seen.setdefault(key, []).append(i)

    # --- screenings and referrals ---------------------------------------------------------

    def _screening(
        self,
        i: int,
        occasion: str,
        on: date,
        by: str,
        severity: int,
        *,
        cycle_id: str | None = None,
        session_id: str | None = None,
        time: str = "12:30:00",
    ) -> tuple[str, bool]:
        """Add a PHQ-9 answered at about ``severity``; a risk answer adds its referral. Return (id, eligible)."""
        rng, phq9 = self.rng, self.s.phq9
        answers = self._answers(severity)
        total = sum(answers[item] for item in self.scored)
        band = phq9.band_for(total)
        risk_items = [item for item, rule, _top in self.risk_rules if rule.matches(answers[item])]
        eligible = total >= self.s.cutoff
        screening_id, stamp = self.new_id(), _stamp(on, time)
        self.rows["screenings"].append(
            (
                screening_id,
                self.sid,
                self.people[i][0],
                phq9.id,
                str(phq9.version),
                occasion,
                cycle_id,
                session_id,
                json.dumps(answers),
                float(total),
                float(total),
                band.label if band else None,
                int(eligible),
                self.s.cutoff,
                int(bool(risk_items)),
                json.dumps(risk_items),
                on.isoformat(),
                by,
                base64.urlsafe_b64encode(rng.randbytes(18)).decode(),
                stamp,
                stamp,
            )
        )
        if risk_items:
            self._risk_referral(i, answers, risk_items, on=on, by=by, time=time, screening_id=screening_id)
        return screening_id, eligible

    def _answers(self, severity: int) -> dict[str, int]:
        """Return PHQ-9 answers adding up to about ``severity``, with a risk answer as often as in real screening."""
        rng = self.rng
        severity = max(0, min(27, severity))
        high, extra = divmod(severity, 9)
        bits = rng.getrandbits
        answers = {item: min(3, max(0, high + (n <= extra) + NOISE[bits(2)])) for n, item in enumerate(ITEMS, 1)}
        # Thoughts of self-harm: more often the more depressed (about 1 in 10 at screening).
        answers["q9"] = 0
        if rng.random() < min(0.15, max(0.01, (severity - 7) * 0.008)):
            answers["q9"] = rng.choices((1, 2, 3), (6, 3, 1))[0]
        answers["q10"] = rng.randint(0, 3)
        return answers

    def _risk_referral(
        self, i: int, answers: dict[str, int], risk_items: list[str], *, on: date, by: str, time: str, screening_id: str
    ) -> None:
        """Add the safety referral a risk answer raises, worded and graded as ``screening.save_screening`` does."""
        phq9 = self.s.phq9
        triggers = [
            {"kind": "risk_item", "instrument": phq9.id, "item": item, "value": answers[item]} for item in risk_items
        ]
        urgent = any(answers[item] == top for item, _rule, top in self.risk_rules if item in risk_items)
        self._referral(
            i,
            reason=screening_reason(phq9, triggers),
            triggers=triggers,
            urgency="urgent" if urgent else "routine",
            on=on,
            by=by,
            time=time,
            screening_id=screening_id,
        )

    def _referral(
        self,
        i: int,
        *,
        reason: str,
        triggers: list[dict],
        urgency: str,
        on: date,
        by: str,
        time: str,
        screening_id: str | None = None,
    ) -> str:
        """Add a referral with its planned follow-ups and its life so far: most closed, some open or overdue."""
        rng, today = self.rng, self.today
        ref = _Referral(self.new_id(), by, _stamp(on, time))
        age = (today - on).days
        stalled = age < 150 and rng.random() < REFERRAL_STALLED
        closing = on + timedelta(days=rng.randint(35, 120))
        closed = not stalled and closing < today
        limit = closing if closed else today  # follow-ups are done up to here
        stop = on + timedelta(days=rng.randint(10, 60)) if stalled else limit
        if age > 2 or rng.random() < 0.5:  # the alert is acknowledged at once, but a few are still waiting
            ref.acknowledged_by, ref.acknowledged_at = by, _stamp(on, "19:00:00")
            ref.updated = ref.acknowledged_at
            referred_on = on + timedelta(days=rng.randint(1, 5))
            if referred_on <= limit:
                ref.move("referred", _stamp(referred_on, "12:00:00"))
                ref.referred_to = rng.choice(REFERRED_TO)
        self._referral_followups(ref, on, stop, limit)
        if closed and ref.acknowledged_at:
            ref.note = rng.choice(CLOSING_NOTES)
            ref.closed_at = _stamp(closing, "16:00:00")
            ref.move("closed", ref.closed_at, ref.note, rng.choice((self.s.coordinator, self.s.supervisor)))
        for event_status, event_note, event_by, stamp in ref.events:
            self.rows["referral_events"].append(
                (self.new_id(), self.sid, ref.id, event_status, event_note, event_by, stamp, stamp)
            )
        self.rows["referrals"].append(ref.row(self.sid, self.people[i][0], screening_id, reason, triggers, urgency))
        return ref.id

    def _referral_followups(self, ref: _Referral, on: date, stop: date, limit: date) -> None:
        """Add the planned follow-ups of a referral, done up to ``stop`` (and ``limit``), the rest still due."""
        rng, sid, rid, by, created = self.rng, self.sid, ref.id, ref.by, ref.created
        followups, done = self.rows["referral_followups"], 0
        for due in self.s.plan.dates(on):
            done_on = due + timedelta(days=rng.randint(0, 2))
            if not (due <= stop and done_on <= limit):
                followups.append((self.new_id(), sid, rid, due.isoformat(), None, None, None, created, created))
                continue
            stamp = _stamp(done_on, "15:00:00")
            followups.append(
                (
                    self.new_id(),
                    sid,
                    rid,
                    due.isoformat(),
                    done_on.isoformat(),
                    by,
                    rng.choice(FOLLOWUP_NOTES),
                    created,
                    stamp,
                )
            )
            done += 1
            ref.updated = max(ref.updated, stamp)
            if done == 2 and ref.status == "referred":
                ref.status = "followed_up"
                ref.events.append(("followed_up", None, by, stamp))

    # --- cycles ---------------------------------------------------------------------------

    def _cycles(self, eligible: list[tuple[date, int]]) -> None:
        rng, protocols = self.rng, self.s.protocols
        names, weights = [p for p, _ in PROTOCOL_MIX], [w for _, w in PROTOCOL_MIX]
        pool = [(day, i) for day, i in eligible]  # people waiting for a group, by the date they can join
        heapq.heapify(pool)
        self.rejoining: dict[int, str] = {}  # person joining again -> why (the override reason of enrolment)
        number = 0
        while pool:
            protocol = protocols[rng.choices(names, weights)[0]]
            size = rng.randint(max(protocol.group_size_min, protocol.group_size_max - 1), protocol.group_size_max)
            if len(pool) < protocol.group_size_min:
                break
            group = [heapq.heappop(pool) for _ in range(min(size, len(pool)))]
            number += 1
            for rejoin_on, i in self._cycle(number, protocol, group):
                heapq.heappush(pool, (rejoin_on, i))

    def _cycle(self, number: int, protocol: Protocol, group: list[tuple[date, int]]) -> list[tuple[date, int]]:
        """Add one cycle with its sessions, members and what happened at each session; return who joins again."""
        cycle = self._plan_cycle(number, protocol, group)
        self._cycle_rows(cycle)
        members = self._enrol(cycle, group)
        self._cycle_sessions(cycle, members)
        rejoin: list[tuple[date, int]] = []
        for m in members:
            self._member(cycle, m, rejoin)
        return rejoin

    def _plan_cycle(self, number: int, protocol: Protocol, group: list[tuple[date, int]]) -> _Cycle:
        """Choose a cycle's dates, how far it got (held, closed, closed early) and its lead facilitator."""
        rng, today = self.rng, self.today
        latest = max(day for day, _i in group)
        first = min(latest + timedelta(days=rng.randint(7, 30)), today + timedelta(days=rng.randint(1, 20)))
        plans = sorted(protocol.sessions, key=lambda p: p.number)
        dates = [first + timedelta(weeks=p.number if protocol.pre_group else p.number - 1) for p in plans]
        # How far it got: every session before today held, unless the cycle was closed early.
        stop = len(plans)
        closing: date | None = None
        early = dates[-1] < today and rng.random() < EARLY_CLOSE_SHARE
        if early:
            stop = rng.randint(3, len(plans) - 2)
            closing = min(today, dates[stop - 1] + timedelta(days=rng.randint(1, 6)))
        elif dates[-1] < today:
            closing = dates[-1] + timedelta(days=rng.randint(1, 10))
            closing = closing if closing <= today else None  # all held, not closed yet
        held_count = min(stop, sum(1 for d in dates if d < today))
        status = (
            "planned" if held_count == 0 else "active" if closing is None else "closed_early" if early else "closed"
        )
        cid, lead = self.new_id(), rng.choice(self.facs)
        enrolled_on = min(today, max(latest + timedelta(days=1), first - timedelta(days=7)))
        reason = rng.choice(EARLY_REASONS) if early else None
        start_time = rng.choice(("10:00", "14:00"))
        return _Cycle(
            id=cid,
            first=first,
            code=f"{self.code}-C{number:03d}",
            protocol=protocol,
            plans=plans,
            dates=dates,
            last_group=max(p.number for p in protocol.group_sessions),
            early=early,
            stop=stop,
            closing=closing,
            close_stamp=_stamp(closing, "17:00:00") if closing else None,
            held_count=held_count,
            status=status,
            lead=lead,
            enrolled_on=enrolled_on,
            created=_stamp(enrolled_on, "08:00:00"),
            reason=reason,
            start_time=start_time,
        )

    def _cycle_rows(self, c: _Cycle) -> None:
        """Add the cycle's row and its facilitators: the lead, and a co-facilitator in 40% of cycles."""
        rng, sid, rows = self.rng, self.sid, self.rows
        first = c.first
        rows["cycles"].append(
            (
                c.id,
                sid,
                c.code,
                c.protocol.id,
                c.protocol.version,
                rng.choice(("women", "women", "men", "mixed")),
                rng.choice(VENUES),
                first.weekday(),
                c.start_time,
                first.isoformat(),
                c.status,
                c.closing.isoformat() if c.closing else None,
                c.reason,
                c.lead,
                c.created,
                c.close_stamp or (_stamp(c.dates[0], "12:00:00") if c.held_count else c.created),
            )
        )
        team = [c.lead] + ([rng.choice([f for f in self.facs if f != c.lead])] if rng.random() < 0.4 else [])
        for role, uid in zip(("lead", "co"), team, strict=False):
            rows["cycle_facilitators"].append((self.new_id(), sid, c.id, uid, role, c.created, c.created))

    def _enrol(self, c: _Cycle, group: list[tuple[date, int]]) -> list[_Member]:
        """Enrol the group: each member's chance to drop out and to respond is drawn now."""
        rng = self.rng
        members = []
        for _day, i in group:
            drops = rng.random() < DROPOUT_SHARE
            members.append(
                _Member(
                    self.new_id(),
                    i,
                    self.severity[i],
                    rng.random() >= NON_RESPONDER_SHARE,
                    rng.randint(2, max(2, c.last_group - 2)) if drops else None,
                )
            )
            self._status(i, "enrolled", f"enrolled in {c.code}", c.lead, c.created)
        return members

    def _cycle_sessions(self, c: _Cycle, members: list[_Member]) -> None:
        """Add every session of the cycle: held ones with attendance and fidelity, later ones scheduled or cancelled."""
        fidelity_items = [item.id for item in c.protocol.fidelity_checklist]
        for index, (plan, day) in enumerate(zip(c.plans, c.dates, strict=True)):
            ses_id = self.new_id()
            held, cancelled = index < c.held_count, c.early and index >= c.stop
            self._session_rows(c, plan, day, ses_id, held=held, cancelled=cancelled)
            if held:
                self._held_session(c.protocol, plan, day, ses_id, c.id, c.lead, members, c.last_group)
                answers = {item: self.rng.random() > 0.15 for item in fidelity_items}
                stamp = _stamp(day, "12:00:00")
                self.rows["fidelity_checklists"].append(
                    (self.new_id(), self.sid, ses_id, c.lead, json.dumps(answers, sort_keys=True), stamp, stamp)
                )

    def _session_rows(
        self, c: _Cycle, plan: SessionPlan, day: date, ses_id: str, *, held: bool, cancelled: bool
    ) -> None:
        """Add a session's row, and the change that cancelled it when the cycle closed early."""
        stamp = _stamp(day, "12:00:00")
        self.rows["sessions"].append(
            (
                ses_id,
                self.sid,
                c.id,
                plan.number,
                "group" if plan.is_group else "pre-group",
                plan.phase,
                day.isoformat(),
                c.start_time,
                plan.minutes,
                "held" if held else "cancelled" if cancelled else "scheduled",
                "Group met as planned." if held else "",
                c.lead if held else None,
                stamp if held else None,
                1 if held or cancelled else 0,
                c.created,
                stamp if held else c.close_stamp if cancelled else c.created,
            )
        )
        if cancelled:
            self.rows["session_changes"].append(
                (
                    self.new_id(),
                    self.sid,
                    c.id,
                    ses_id,
                    "closed_early",
                    day.isoformat(),
                    None,
                    c.reason,
                    self.s.coordinator,
                    c.close_stamp,
                    c.close_stamp,
                )
            )

    def _member(self, c: _Cycle, m: _Member, rejoin: list[tuple[date, int]]) -> None:
        """Add a member's row and what follows from it: the close, absence visits, clinical record, follow-up PHQ-9."""
        rng, i = self.rng, m.person
        override = self.rejoining.pop(i, None)
        m_status = "active" if c.closing is None else self._close_member(c, m, rejoin)
        area: str | None = None
        area2: str | None = None
        goals = ""
        pregroup_held = c.held_count > 0
        if pregroup_held:
            area, goals = rng.choice(AREAS), rng.choice(GOALS)
            area2 = rng.choice([a for a in AREAS if a != area]) if rng.random() < 0.15 else None
        self._absence_followups(c, m)
        if pregroup_held and rng.random() < CLINICAL_SHARE:
            assert area is not None  # chosen at the pre-group session
            area, area2 = self._record(c, m, area, area2, m_status)
        self.rows["members"].append(
            (
                m.id,
                self.sid,
                c.id,
                self.people[i][0],
                m_status,
                area,
                area2,
                goals,
                c.enrolled_on.isoformat(),
                override,
                c.closing.isoformat() if m_status != "active" and c.closing else None,
                c.reason if m_status != "active" else None,
                c.lead,
                c.created,
                c.close_stamp or c.created,
            )
        )
        # The protocol's follow-up PHQ-9, months after the last group session (not after an early close).
        if c.status == "closed" and rng.random() < FOLLOWUP_SCREENED.get(m_status, 0):
            self._followup_screening(c, m)

    def _close_member(self, c: _Cycle, m: _Member, rejoin: list[tuple[date, int]]) -> str:
        """Close a member's place as the protocol's rule says; some join a later group. Return the status."""
        rng, i = self.rng, m.person
        assert c.closing is not None and c.close_stamp is not None
        m_status = "completed" if c.protocol.is_completed(m.attended) else "dropped_out"
        self._status(i, m_status, f"cycle {c.code} closed", self.s.coordinator, c.close_stamp)
        # Dropouts, and members still depressed at the end, may join a later group.
        again = m_status == "dropped_out" or not m.responder
        rejoin_on = c.closing + timedelta(days=rng.randint(14, 90))
        if again and rng.random() < REJOIN_SHARE and rejoin_on < self.today - timedelta(days=7):
            rejoin.append((rejoin_on, i))
            self.rejoining[i] = (
                f"Joins again after dropping out of {c.code}"
                if m_status == "dropped_out"
                else f"Joins again: still depressed at the end of {c.code}"
            )
        return m_status

    def _absence_followups(self, c: _Cycle, m: _Member) -> None:
        """Add the call or visit after most runs of absences, a few days after the run."""
        rng = self.rng
        for when in m.triggers:
            done_on = when + timedelta(days=rng.randint(1, 6))
            if rng.random() < ABSENCE_FOLLOWED_UP and done_on <= self.today:
                stamp = _stamp(done_on, "16:00:00")
                self.rows["absence_followups"].append(
                    (
                        self.new_id(),
                        self.sid,
                        m.id,
                        done_on.isoformat(),
                        rng.choice(ABSENCE_NOTES),
                        c.lead,
                        stamp,
                        stamp,
                    )
                )

    def _followup_screening(self, c: _Cycle, m: _Member) -> None:
        """Add the PHQ-9s the protocol's follow-up asks for, months after the last group session, when due."""
        last_day = c.dates[[p.number for p in c.plans].index(c.last_group)]
        for item in c.protocol.followup:
            due = add_months(last_day, item.months_after_end)
            if item.instrument == self.s.phq9.id and due <= self.today:
                on = min(self.today, due + timedelta(days=self.rng.randint(0, 14)))
                severity = self._severity_at(m, c.last_group, c.last_group) + 1
                self._screening(m.person, "followup", on, c.lead, severity, cycle_id=c.id)

    def _severity_at(self, m: _Member, number: int, last_group: int) -> int:
        fall = 0.6 if m.responder else 0.15
        return round(m.severity * (1 - fall * number / last_group)) + self.rng.randint(-2, 2)

    def _held_session(
        self,
        protocol: Protocol,
        plan,
        day: date,
        ses_id: str,
        cid: str,
        lead: str,
        members: list[_Member],
        last_group: int,
    ) -> None:
        rng, sid, rows = self.rng, self.sid, self.rows
        stamp = _stamp(day, "12:00:00")
        attendance, checks = rows["attendance"], rows["symptom_checks"]
        threshold = protocol.absences_for_followup
        phq9_due = self.s.phq9.id in plan.instruments_due
        for m in members:
            if m.drop_at is not None and plan.number >= m.drop_at:
                att = "absent"
            else:
                att = _mark(SESSION_MARKS if plan.number else PREGROUP_MARKS, rng.random())
            attendance.append((self.new_id(), sid, ses_id, m.id, att, lead, stamp, stamp))
            if att == "absent":
                m.streak += 1
                if m.streak == threshold:
                    m.triggers.append(day)
                continue
            if att == "excused":
                continue
            m.streak = 0
            if plan.number > 0:
                m.attended += 1
                m.present_at.append((plan.number, ses_id, day))
                checks.append(
                    (
                        self.new_id(),
                        sid,
                        ses_id,
                        m.id,
                        _mark(TRENDS, rng.random()),
                        max(0, min(10, 7 - plan.number // 2 + NOISE[rng.getrandbits(2)])),
                        stamp,
                        stamp,
                    )
                )
            if phq9_due:
                screening_id, _eligible = self._screening(
                    m.person,
                    occasion_of(plan.number, protocol),
                    day,
                    lead,
                    self._severity_at(m, plan.number, last_group),
                    cycle_id=cid,
                    session_id=ses_id,
                )
                if plan.number == 0:
                    m.baseline_id = screening_id

    # --- clinical record ------------------------------------------------------------------

    def _record(self, c: _Cycle, m: _Member, area: str, area2: str | None, m_status: str) -> tuple[str, str | None]:
        """Fill in a member's clinical record, as ``clinical`` saves it; return the problem areas it ends with."""
        formulation = self._pregroup_record(c, m, area, area2)
        self._inventory_and_timeline(c, m)
        area, area2 = self._revised_area(c, m, area, area2, formulation)
        self._goal_progress(c, m)
        if c.closing is not None:
            self._end_of_cycle(c, m, m_status)
        return area, area2

    def _pregroup_record(self, c: _Cycle, m: _Member, area: str, area2: str | None) -> str:
        """Add the pre-group record (a medication assessment sometimes opens a referral); return the formulation."""
        rng, sid, rows, i = self.rng, self.sid, self.rows, m.person
        day0 = c.dates[0]
        stamp0 = _stamp(day0, "13:00:00")
        medication = rng.choices(("no", "yes", None), (90, 5, 5))[0]
        referral_id = None
        if medication == "yes":
            why = "medication assessment asked at the pre-group session"
            referral_id = self._referral(
                i,
                reason=why,
                triggers=[{"kind": "medication_assessment", "reason": why}],
                urgency="routine",
                on=day0,
                by=c.lead,
                time="13:00:00",
            )
        formulation = FORMULATIONS[area]
        rows["pregroup_records"].append(
            (self.new_id(), sid, m.id, m.baseline_id, formulation, medication, referral_id, 1, c.lead, stamp0, stamp0)
        )
        # Consent to the group, asked again at the pre-group session, is recorded anew.
        rows["consents"].append(
            (self.new_id(), sid, self.people[i][0], "group", 1, "participant", c.lead, stamp0, stamp0)
        )
        rows["problem_area_history"].append(
            (self.new_id(), sid, m.id, area, area2, formulation, "pre-group session", None, c.lead, stamp0, stamp0)
        )
        return formulation

    def _inventory_and_timeline(self, c: _Cycle, m: _Member) -> None:
        """Add the interpersonal inventory (2-5 people) and the timeline (1-3 events) of the pre-group session."""
        rng, sid, rows, lead = self.rng, self.sid, self.rows, c.lead
        day0 = c.dates[0]
        stamp0 = _stamp(day0, "13:00:00")
        for _n in range(rng.randint(2, 5)):
            rows["inventory_people"].append(
                (
                    self.new_id(),
                    sid,
                    m.id,
                    f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                    rng.choice(RELATIONS),
                    rng.choice(("close", "distant", None)),
                    rng.choice(("supportive", "conflicted", "mixed", None)),
                    rng.choice(CHANGES),
                    lead,
                    stamp0,
                    stamp0,
                )
            )
        for _n in range(rng.randint(1, 3)):
            event, mood = rng.choice(EVENTS)
            when = day0 - timedelta(days=rng.randint(30, 400))
            happened, sort_key = (
                (when.isoformat()[:7], when.isoformat()[:7]) if rng.random() < 0.7 else ("after the harvest", "")
            )
            rows["timeline_events"].append(
                (self.new_id(), sid, m.id, happened, sort_key, event, mood, lead, stamp0, stamp0)
            )

    def _revised_area(
        self, c: _Cycle, m: _Member, area: str, area2: str | None, formulation: str
    ) -> tuple[str, str | None]:
        """Sometimes revise the problem area at a group session (a new problem came out); return the areas."""
        rng = self.rng
        attended = [p for p in m.present_at if p[0] < c.last_group]
        if not attended or rng.random() >= 0.15:
            return area, area2
        number, ses_id, day = rng.choice(attended)
        area, area2 = rng.choice([a for a in AREAS if a != area]), None
        stamp = _stamp(day, "13:30:00")
        self.rows["problem_area_history"].append(
            (
                self.new_id(),
                self.sid,
                m.id,
                area,
                area2,
                formulation,
                f"A new problem came out at session {number}.",
                ses_id,
                c.lead,
                stamp,
                stamp,
            )
        )
        return area, area2

    def _goal_progress(self, c: _Cycle, m: _Member) -> None:
        """Note the member's goal progress at 2-4 of the sessions they came to (faster for responders)."""
        rng = self.rng
        progress = ("none", "some", "good", "achieved")
        noted = sorted(rng.sample(m.present_at, min(len(m.present_at), rng.randint(2, 4))))
        for step, (_number, ses_id, day) in enumerate(noted):
            stamp = _stamp(day, "13:30:00")
            self.rows["goal_progress"].append(
                (
                    self.new_id(),
                    self.sid,
                    m.id,
                    ses_id,
                    progress[min(3, step + (1 if m.responder else 0))],
                    "",
                    c.lead,
                    stamp,
                    stamp,
                )
            )

    def _end_of_cycle(self, c: _Cycle, m: _Member, m_status: str) -> None:
        """Add the relapse-prevention plan of a completer and the outcome decision (some referred on)."""
        rng, sid, rows, lead = self.rng, self.sid, self.rows, c.lead
        assert c.closing is not None and c.close_stamp is not None
        if m_status == "completed" and c.status == "closed":
            last_stamp = _stamp(c.dates[c.held_count - 1], "13:30:00")
            rows["relapse_plans"].append(
                (
                    self.new_id(),
                    sid,
                    m.id,
                    "Not sleeping; staying in the house all day",
                    "My sister; the people of my group",
                    "Call my sister; go to the market with a friend; see the health worker if it lasts two weeks",
                    lead,
                    last_stamp,
                    last_stamp,
                )
            )
        if m_status == "dropped_out" and rng.random() < 0.5:
            return
        decision, note, referral_id = "well", "", None
        if rng.random() < (0.1 if m_status == "completed" else 0.3):
            decision, note = "refer", rng.choice(REFER_ON_NOTES)
            referral_id = self._referral(
                m.person,
                reason=f"referred elsewhere at the end of the cycle: {note}",
                triggers=[{"kind": "outcome_referral", "reason": note}],
                urgency="routine",
                on=c.closing,
                by=lead,
                time="17:00:00",
            )
        rows["outcome_decisions"].append(
            (self.new_id(), sid, m.id, decision, note, 0, referral_id, lead, c.close_stamp, c.close_stamp)
        )


def describe(summary: ScaleSummary) -> str:
    parts = ", ".join(f"{n:,} {table}" for table, n in summary.created.items())
    total = sum(summary.created.values())
    return (
        f"Generated programme ({total:,} rows): {parts}.\nLogins (password for all: {DEMO_PASSWORD}): "
        "scale-admin, scale-coord, scale-super, and facilitators fac-s001-1 ... (five per site)."
    )
