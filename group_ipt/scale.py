"""A national-programme-sized database for benchmarks: ``group-ipt demo --scale N``.

The domain functions (``participants.register``, ``sessions.record_session``...) check and
audit every write and take minutes per thousand people, so this module writes the same
rows with plain INSERTs, one transaction per site. The rows follow every schema rule and
look like what the app writes: programme codes with their check letter, cycle codes
``S001-C001``, statuses and status history, consents, PHQ-9 screenings scored by the
instrument (occasions screening / baseline / mid / end, as the protocol says), sessions
numbered and phased by the protocol (held ones recorded, version 1), attendance, symptom
checks and fidelity checklists.

Sync: the change-capture triggers are switched off while writing (``sync_clock.applying``,
as sync does), and each table's rows are then logged with one INSERT ... SELECT, exactly
as ``ensure_triggers`` logs the rows of a table that existed before sync was set up. So
the database obeys the sync invariant (every record has a version and a log line) and
costs a third of the time. Not generated: referrals (every generated answer to the risk
item is 0), duplicate flags, session moves, the clinical record, supervision.
"""

from __future__ import annotations

import base64
import json
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlite_utils
from flask import Flask
from werkzeug.security import generate_password_hash

from .db import row, utcnow, write
from .demo import DEMO_PASSWORD
from .followup import occasion_of
from .participants import make_code, name_key
from .sync.tracking import _log_existing_rows, synced_tables

SCALE_MARKER = "scale_programme"
PEOPLE_PER_SITE = 2500
PEOPLE_PER_CYCLE = 12.5  # of everyone registered: 100,000 people give 8,000 cycles
FACILITATORS_PER_SITE = 5
PROTOCOL_MIX = (("strongminds-12", 0.7), ("who-8", 0.2), ("short-6", 0.1))
FIRST_NAMES = ("Amina", "Grace", "Sarah", "Florence", "Harriet", "Rebecca", "Juliet", "Prossy", "Agnes", "Betty",
               "Mercy", "Esther", "Rose", "John", "Peter", "Moses", "David", "Samuel", "Joseph", "Fatuma")
LAST_NAMES = ("Nakato", "Nambi", "Achieng", "Nabirye", "Atim", "Namutebi", "Akello", "Okello", "Ssali", "Kato",
              "Wasswa", "Kizza", "Mukasa", "Njeri", "Nantongo", "Apio", "Lubega", "Mugerwa", "Ochieng", "Ŋŋanda")
VILLAGES = ("Kawempe", "Bwaise", "Kanyanya", "Mpererwe", "Nyendo", "Kimaanya", "Masaka town", "Gulu")
VENUES = ("Church hall", "Health centre", "Primary school", "Community centre", "Market shelter")
AREAS = ("grief", "disputes", "transitions", "isolation")
GOALS = ("Sleep better and go back to the market", "Talk calmly with my family", "Make one new friend")


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


def _insert(db: sqlite_utils.Database, table: str, records: list[tuple], summary: ScaleSummary,
            columns: tuple[str, ...]) -> None:
    if not records:
        return
    marks = ", ".join("?" for _ in columns)
    records.sort()  # by id: neighbouring keys land in the same B-tree pages
    db.conn.executemany(f'insert into "{table}" ({", ".join(columns)}) values ({marks})', records)
    summary.add(table, len(records))


def generate(db: sqlite_utils.Database, app: Flask, n_people: int, *, today: date, seed: int = 2026,
             progress=None) -> ScaleSummary:
    """Write a programme of ``n_people`` participants (sites, users, cycles...) into ``db``."""
    if row(db, "select value from settings where key = ?", (SCALE_MARKER,)):
        raise ValueError("This database already holds a generated programme; use a new data folder.")
    forms = app.extensions["group_ipt_forms"]
    phq9 = forms.instruments["phq9"]
    cutoff = int(app.config.get("ELIGIBILITY_CUTOFFS", {}).get("phq9", 10))
    protocols = {pid: forms.protocols[pid] for pid, _ in PROTOCOL_MIX}
    rng = random.Random(seed)  # noqa: S311 (made-up benchmark data, not secrets)
    new_id = _Ids(rng)
    summary = ScaleSummary()
    now = utcnow()
    pw_hash = generate_password_hash(DEMO_PASSWORD, method=app.config["PASSWORD_HASH_METHOD"])
    n_sites = max(2, math.ceil(n_people / PEOPLE_PER_SITE))
    existing_codes = {r["code"] for r in db.query("select code from sites")}
    site_codes, k = [], 1
    while len(site_codes) < n_sites:
        if f"S{k:03d}" not in existing_codes:
            site_codes.append(f"S{k:03d}")
        k += 1

    # Random-key inserts into big indexes: a large page cache saves most of the reads.
    db.execute("pragma cache_size = -1048576")
    with write(db):
        sites = [(new_id(), code, f"Site {code}", "en", now, now) for code in site_codes]
        _insert(db, "sites", sites, summary, ("id", "code", "name", "default_language", "created_at", "updated_at"))
        site_ids = [s[0] for s in sites]
        user_cols = ("id", "username", "display_name", "password_hash", "role", "active", "created_at", "updated_at")
        staff, links, facilitators = [], [], {}
        for username, role in (("scale-admin", "admin"), ("scale-coord", "coordinator"),
                               ("scale-super", "supervisor")):
            uid = new_id()
            staff.append((uid, username, username.replace("-", " ").title(), pw_hash, role, 1, now, now))
            if role != "admin":
                links += [(uid, sid) for sid in site_ids]
        for sid, code in zip(site_ids, site_codes, strict=True):
            facilitators[sid] = []
            for i in range(1, FACILITATORS_PER_SITE + 1):
                uid = new_id()
                staff.append((uid, f"fac-{code.lower()}-{i}", f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
                              pw_hash, "facilitator", 1, now, now))
                links.append((uid, sid))
                facilitators[sid].append(uid)
        _insert(db, "users", staff, summary, user_cols)
        _insert(db, "user_sites", links, summary, ("user_id", "site_id"))

    base, extra = divmod(n_people, n_sites)
    for index, (sid, code) in enumerate(zip(site_ids, site_codes, strict=True)):
        size = base + (1 if index < extra else 0)
        with write(db):
            db.execute("update sync_clock set applying = 1 where id = 1")
            _site(db, sid, code, size, facilitators[sid], rng, new_id, summary, now=now, today=today,
                  phq9=phq9, cutoff=cutoff, protocols=protocols)
            db.execute("update sync_clock set applying = 0 where id = 1")
        if progress:
            progress(index + 1, n_sites)

    with write(db):
        for table in synced_tables(db):
            if table in summary.created:
                _log_existing_rows(db, table)
        db.execute("insert into settings (key, value, updated_at) values (?, ?, ?)",
                   (SCALE_MARKER, json.dumps({"participants": n_people, "seed": seed,
                                               "generated_on": today.isoformat()}), now))
    db.execute("analyze")
    return summary


def _screening(rng, new_id, phq9, cutoff, *, sid, pid, occasion, on, by, severity, cycle_id=None,
               session_id=None) -> tuple:
    answers = {f"q{i}": min(3, max(0, severity // 9 + (1 if i <= severity % 9 else 0) + rng.choice((-1, 0, 0, 1))))
               for i in range(1, 10)}
    answers["q9"] = 0
    answers["q10"] = rng.randint(0, 3)
    total = sum(v for k, v in answers.items() if k != "q10")
    band = phq9.band_for(total)
    return (new_id(), sid, pid, "phq9", str(phq9.version), occasion, cycle_id, session_id,
            json.dumps(answers), float(total), float(total), band.label if band else None,
            1 if total >= cutoff else 0, cutoff, on.isoformat(), by,
            base64.urlsafe_b64encode(rng.randbytes(18)).decode(),
            f"{on.isoformat()}T09:00:00+00:00", f"{on.isoformat()}T09:00:00+00:00")


SCREENING_COLS = ("id", "site_id", "participant_id", "instrument_id", "instrument_version", "occasion", "cycle_id",
                  "session_id", "answers_json", "total", "raw_total", "band", "eligible", "cutoff",
                  "administered_on", "administered_by", "submission_key", "created_at", "updated_at")


def _site(db, sid, code, size, facs, rng, new_id, summary, *, now, today, phq9, cutoff, protocols) -> None:
    people, consents, history, screenings = [], [], [], []
    digits = rng.sample(range(10000), size) if size <= 10000 else None
    if digits is None:
        raise ValueError(f"At most 10,000 participants fit in one site; got {size}.")
    start = today - timedelta(days=720)
    eligible = []
    for d in digits:
        pid = new_id()
        screened = start + timedelta(days=rng.randint(0, 700))
        stamp = f"{screened.isoformat()}T09:00:00+00:00"
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        by = rng.choice(facs)
        severity = rng.choices((rng.randint(3, 9), rng.randint(10, 22)), weights=(1, 11))[0]
        s = _screening(rng, new_id, phq9, cutoff, sid=sid, pid=pid, occasion="screening", on=screened, by=by,
                       severity=severity)
        screenings.append(s)
        status = "eligible" if s[12] else "not_eligible"
        people.append([pid, sid, make_code(code, f"{d:04d}"), name, name_key(name),
                       rng.choice(("female", "female", "female", "male")), today.year - rng.randint(18, 65), 1,
                       rng.choice(VILLAGES), f"07{rng.randint(10000000, 99999999)}", status, by, stamp, stamp])
        for purpose in ("screening", "group", "data_sharing"):
            consents.append((new_id(), sid, pid, purpose, 1, "participant", by, stamp, stamp))
        history.append((new_id(), sid, pid, "registered", None, by, stamp, stamp))
        history.append((new_id(), sid, pid, status, "phq9 screening", by, stamp, stamp))
        if status == "eligible":
            eligible.append((screened, len(people) - 1))
    eligible.sort()

    n_cycles = round(size / PEOPLE_PER_CYCLE)
    cycles, cfacs, sessions, members, attendance, checks, fidelity = [], [], [], [], [], [], []
    pool = list(eligible)
    for c in range(1, n_cycles + 1):
        group = [pool.pop(0)[1] for _ in range(min(len(pool), rng.randint(9, 14)))]
        if len(group) < 4:
            break
        protocol_id = rng.choices([p for p, _ in PROTOCOL_MIX], weights=[w for _, w in PROTOCOL_MIX])[0]
        protocol = protocols[protocol_id]
        latest = max(date.fromisoformat(people[i][12][:10]) for i in group)
        first = min(latest + timedelta(days=rng.randint(7, 30)), today + timedelta(days=rng.randint(1, 20)))
        plans = sorted(protocol.sessions, key=lambda p: p.number)
        dates = {p.number: first + timedelta(weeks=p.number if protocol.pre_group else p.number - 1) for p in plans}
        last = max(dates.values())
        early = last < today and rng.random() < 0.03
        status = ("planned" if first > today else "active" if last >= today
                  else "closed_early" if early else "closed")
        cid, lead = new_id(), rng.choice(facs)
        created = f"{(first - timedelta(days=7)).isoformat()}T08:00:00+00:00"
        closed_on = (last + timedelta(days=3)).isoformat() if status.startswith("closed") else None
        cycles.append((cid, sid, f"{code}-C{c:03d}", protocol_id, protocol.version,
                       rng.choice(("women", "women", "men", "mixed")), rng.choice(VENUES), first.weekday(),
                       rng.choice(("10:00", "14:00")), first.isoformat(), status, closed_on,
                       "Group stopped meeting" if early else None, lead, created, created))
        team = [lead] + ([rng.choice([f for f in facs if f != lead])] if rng.random() < 0.4 else [])
        for role, uid in zip(("lead", "co"), team, strict=False):
            cfacs.append((new_id(), sid, cid, uid, role, created, created))
        member_ids = []
        for i in group:
            person = people[i]
            mid = new_id()
            if status in ("planned", "active"):
                m_status, person[10] = "active", "enrolled"
            else:
                m_status = "dropped_out" if rng.random() < 0.15 else "completed"
                person[10] = m_status
            history.append((new_id(), sid, person[0], "enrolled", None, lead, created, created))
            if m_status != "active":
                history.append((new_id(), sid, person[0], m_status, None, lead, f"{closed_on}T12:00:00+00:00",
                                f"{closed_on}T12:00:00+00:00"))
            members.append((mid, sid, cid, person[0], m_status, rng.choice(AREAS), rng.choice(GOALS),
                            (first - timedelta(days=3)).isoformat(), closed_on if m_status != "active" else None,
                            lead, created, created))
            member_ids.append((mid, person[0], m_status == "dropped_out", rng.randint(3, 8)))
        for plan in plans:
            day = dates[plan.number]
            held = day < today
            ses_id = new_id()
            stamp = f"{day.isoformat()}T12:00:00+00:00"
            sessions.append((ses_id, sid, cid, plan.number, "group" if plan.is_group else "pre-group", plan.phase,
                             day.isoformat(), cycles[-1][8], plan.minutes, "held" if held else "scheduled",
                             "Group met as planned." if held else "", lead if held else None,
                             stamp if held else None, 1 if held else 0, created, stamp if held else created))
            if not held:
                continue
            due = plan.instruments_due
            for mid, pid, drops, drop_at in member_ids:
                att = "absent" if drops and plan.number >= drop_at else rng.choices(
                    ("present", "late", "absent", "excused"), weights=(80, 8, 8, 4))[0]
                attendance.append((new_id(), sid, ses_id, mid, att, lead, stamp, stamp))
                if att in ("present", "late") and plan.number > 0:
                    checks.append((new_id(), sid, ses_id, mid, rng.choices(("better", "same", "worse"), (5, 3, 1))[0],
                                   max(0, min(10, 7 - plan.number // 2 + rng.randint(-1, 1))), stamp, stamp))
                if att in ("present", "late") and "phq9" in due:
                    screenings.append(_screening(
                        rng, new_id, phq9, cutoff, sid=sid, pid=pid, occasion=occasion_of(plan.number, protocol),
                        on=day, by=lead, severity=max(2, 16 - plan.number - rng.randint(0, 5)), cycle_id=cid,
                        session_id=ses_id))
            answers = {item.id: rng.random() > 0.15 for item in protocol.fidelity_checklist}
            fidelity.append((new_id(), sid, ses_id, lead, json.dumps(answers, sort_keys=True), stamp, stamp))

    _insert(db, "participants", [tuple(p) for p in people], summary,
            ("id", "site_id", "code", "name", "name_key", "sex", "birth_year", "age_is_estimate", "village", "phone",
             "status", "created_by", "created_at", "updated_at"))
    _insert(db, "consents", consents, summary,
            ("id", "site_id", "participant_id", "purpose", "given", "given_by", "recorded_by", "created_at",
             "updated_at"))
    _insert(db, "participant_status_history", history, summary,
            ("id", "site_id", "participant_id", "status", "reason", "changed_by", "created_at", "updated_at"))
    _insert(db, "cycles", cycles, summary,
            ("id", "site_id", "code", "protocol_id", "protocol_version", "group_type", "venue", "weekday",
             "start_time", "first_date", "status", "closed_on", "closed_reason", "created_by", "created_at",
             "updated_at"))
    _insert(db, "cycle_facilitators", cfacs, summary,
            ("id", "site_id", "cycle_id", "user_id", "role", "created_at", "updated_at"))
    _insert(db, "sessions", sessions, summary,
            ("id", "site_id", "cycle_id", "number", "kind", "phase", "scheduled_date", "start_time", "minutes",
             "status", "note", "recorded_by", "recorded_at", "version", "created_at", "updated_at"))
    _insert(db, "members", members, summary,
            ("id", "site_id", "cycle_id", "participant_id", "status", "problem_area", "goals", "enrolled_on",
             "ended_on", "created_by", "created_at", "updated_at"))
    _insert(db, "screenings", screenings, summary, SCREENING_COLS)
    _insert(db, "attendance", attendance, summary,
            ("id", "site_id", "session_id", "member_id", "status", "recorded_by", "created_at", "updated_at"))
    _insert(db, "symptom_checks", checks, summary,
            ("id", "site_id", "session_id", "member_id", "trend", "rating", "created_at", "updated_at"))
    _insert(db, "fidelity_checklists", fidelity, summary,
            ("id", "site_id", "session_id", "user_id", "answers_json", "created_at", "updated_at"))


def describe(summary: ScaleSummary) -> str:
    parts = ", ".join(f"{n:,} {table}" for table, n in summary.created.items())
    return (f"Generated programme: {parts}.\nLogins (password for all: {DEMO_PASSWORD}): scale-admin, scale-coord, "
            "scale-super, and facilitators fac-s001-1 ... (five per site).")
