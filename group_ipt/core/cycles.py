"""Group cycles: create one with its weekly sessions, move and cancel sessions, enrol members.

Plain functions on the database and the loaded protocols (no Flask). Dates are
local calendar dates (``datetime.date``), stored as ``YYYY-MM-DD``; the date
rules themselves live in :mod:`group_ipt.core.scheduling`. Every change is one
``with write(db):`` block with its audit entry and, for sessions, a row in
``session_changes`` so the history of a cycle is never lost.

Messages (errors and warnings) are English msgids marked with ``N_`` plus
parameters, so the web edge can translate them and the CLI can print them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlite_utils

from ..base.bounds import BoundsError
from ..base.bounds import parse_date as bounded_date
from ..base.errors import N_, NP_, DomainError, english, required
from ..formfiles.protocols import Protocol
from ..store.db import code_block, in_clock_order, marks, new_id, row, rows, utcnow, write
from . import audit, calendar_ics, participants, scheduling
from .attendance import attended_group_sessions

GROUP_TYPES = ("women", "men", "mixed", "adolescents")
PROBLEM_AREAS = ("grief", "disputes", "transitions", "isolation")
ADOLESCENT_AGES = (10, 19)  # WHO's definition of adolescence
MEMBER_END_STATUSES = ("completed", "withdrawn", "transferred", "dropped_out")
REGULAR_KINDS = ("pre-group", "group")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@dataclass(frozen=True)
class Message:
    """A msgid with its parameters: ``str()`` gives English, the web edge translates it."""

    msgid: str | tuple[str, str]  # a pair (NP_) when the text depends on params["count"]
    params: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return english(self.msgid, {k: _plain(v) for k, v in self.params.items()})


class CycleError(DomainError):
    """A cycle, session or membership change that cannot be made; the message says why."""


# --- reading ----------------------------------------------------------------------


def get_cycle(db: sqlite_utils.Database, cycle_id: str, site_ids: list[str] | None = None) -> dict | None:
    """Return the cycle by id (or by code), or None; with ``site_ids``, only one of those sites."""
    sql = (
        "select c.*, s.code as site_code, s.name as site_name from cycles c join sites s on s.id = c.site_id"
        " where (c.id = ? or c.code = ?)"
    )
    params: list = [cycle_id, cycle_id.upper()]
    if site_ids is not None:
        sql += f" and c.site_id in ({marks(site_ids)})"
        params += site_ids
    return row(db, sql, params)


def list_cycles(
    db: sqlite_utils.Database,
    site_ids: list[str],
    *,
    user_id: str | None = None,
    statuses: tuple[str, ...] | None = None,
) -> list[dict]:
    """Return the cycles of ``site_ids`` (only those ``user_id`` facilitates, or in ``statuses``), newest first."""
    sql = (
        "select c.*, s.code as site_code,"
        " (select group_concat(u.display_name, ', ') from cycle_facilitators f join users u on u.id = f.user_id"
        "  where f.cycle_id = c.id) as facilitator_names,"
        " (select count(*) from members m where m.cycle_id = c.id and m.status = 'active') as active_members,"
        " (select count(*) from sessions x where x.cycle_id = c.id and x.kind = 'group'"
        "  and x.status = 'held') as held_sessions,"
        " (select count(*) from sessions x where x.cycle_id = c.id and x.kind = 'group') as group_sessions"
        f" from cycles c join sites s on s.id = c.site_id where c.site_id in ({marks(site_ids)})"
    )
    params: list = list(site_ids)
    if user_id:
        sql += " and c.id in (select cycle_id from cycle_facilitators where user_id = ?)"
        params.append(user_id)
    if statuses:  # a site has hundreds of closed cycles after a few years: count only the ones asked for
        sql += f" and c.status in ({marks(statuses)})"
        params += statuses
    return rows(db, sql + " order by c.first_date desc, c.code", params)


def facilitators(db: sqlite_utils.Database, cycle_id: str) -> list[dict]:
    return rows(
        db,
        "select u.id, u.username, u.display_name, f.role from cycle_facilitators f join users u on u.id = f.user_id"
        " where f.cycle_id = ? order by f.role = 'co', u.display_name",
        (cycle_id,),
    )


def sessions(db: sqlite_utils.Database, cycle_id: str) -> list[dict]:
    """Return a cycle's sessions in date order, make-ups and cancelled ones included."""
    return sessions_of(db, [cycle_id]).get(cycle_id, [])


def get_session(db: sqlite_utils.Database, session_id: str, site_ids: list[str] | None = None) -> dict | None:
    sql = "select * from sessions where id = ?"
    params: list = [session_id]
    if site_ids is not None:
        sql += f" and site_id in ({marks(site_ids)})"
        params += site_ids
    return row(db, sql, params)


_CHANGES_JOIN, _CHANGES_ORDER = in_clock_order("session_changes", "c")


def session_history(db: sqlite_utils.Database, cycle_id: str) -> list[dict]:
    return rows(
        db,
        "select c.*, x.number, x.kind, u.display_name as changed_by_name from session_changes c"
        f" join sessions x on x.id = c.session_id left join users u on u.id = c.changed_by{_CHANGES_JOIN}"
        f" where c.cycle_id = ? order by {_CHANGES_ORDER}, x.scheduled_date",
        (cycle_id,),
    )


MEMBERS_SQL = (
    "select m.*, p.code as participant_code, p.name, p.sex, p.birth_year, p.village, p.phone,"
    " p.status as participant_status, t.cycle_id as transferred_to_cycle_id,"
    " (select code from cycles where id = t.cycle_id) as transferred_to_code"
    " from members m join participants p on p.id = m.participant_id"
    " left join members t on t.id = m.transferred_to where m.cycle_id in ({cycles})"
)
MEMBERS_ORDER = " order by m.status != 'active', p.name collate nocase"


def members(db: sqlite_utils.Database, cycle_id: str, *, active_only: bool = False) -> list[dict]:
    """Return a cycle's members with their participant's name, code, sex, village and phone."""
    sql = MEMBERS_SQL.format(cycles="?")
    if active_only:
        sql += " and m.status = 'active'"
    return rows(db, sql + MEMBERS_ORDER, (cycle_id,))


def members_of(db: sqlite_utils.Database, cycle_ids: list[str]) -> dict[str, list[dict]]:
    """Return :func:`members` of several cycles in one query: {cycle id: members in the same order}."""
    result: dict[str, list[dict]] = {}
    for r in db.query(MEMBERS_SQL.format(cycles=marks(cycle_ids)) + MEMBERS_ORDER, list(cycle_ids)):
        result.setdefault(r["cycle_id"], []).append(r)
    return result


def sessions_of(db: sqlite_utils.Database, cycle_ids: list[str]) -> dict[str, list[dict]]:
    """Return :func:`sessions` of several cycles in one query: {cycle id: sessions in date order}."""
    result: dict[str, list[dict]] = {}
    for r in db.query(
        f"select * from sessions where cycle_id in ({marks(cycle_ids)}) order by scheduled_date, number, created_at",
        list(cycle_ids),
    ):
        result.setdefault(r["cycle_id"], []).append(r)
    return result


def get_member(db: sqlite_utils.Database, member_id: str, site_ids: list[str] | None = None) -> dict | None:
    sql = (
        "select m.*, p.name, p.sex, p.code as participant_code from members m"
        " join participants p on p.id = m.participant_id where m.id = ?"
    )
    params: list = [member_id]
    if site_ids is not None:
        sql += f" and m.site_id in ({marks(site_ids)})"
        params += site_ids
    return row(db, sql, params)


def active_membership(db: sqlite_utils.Database, participant_id: str) -> dict | None:
    return row(
        db,
        "select m.*, c.code as cycle_code from members m join cycles c on c.id = m.cycle_id"
        " where m.participant_id = ? and m.status = 'active'",
        (participant_id,),
    )


def eligible_participants(db: sqlite_utils.Database, site_id: str, *, include_not_eligible: bool = False) -> list[dict]:
    """Return the site's participants who can join a cycle: eligible and not in an active cycle."""
    sql = (
        "select p.* from participants p where p.site_id = ?"
        " and not exists (select 1 from members m where m.participant_id = p.id and m.status = 'active')"
    )
    if not include_not_eligible:
        sql += " and p.status = 'eligible'"
    return rows(db, sql + " order by p.name collate nocase", (site_id,))


def protocol_of(cycle: dict, protocols: dict[str, Protocol]) -> Protocol:
    """Return the protocol a cycle runs; CycleError if its file is gone."""
    protocol = protocols.get(cycle["protocol_id"])
    if protocol is None:
        raise CycleError(
            N_("The protocol %(protocol)s of this cycle is missing from the forms folder."),
            protocol=cycle["protocol_id"],
        )
    return protocol


# --- site holidays ----------------------------------------------------------------


def holidays(db: sqlite_utils.Database, site_id: str) -> list[dict]:
    return rows(db, "select * from site_holidays where site_id = ? order by date", (site_id,))


def holiday_dates(db: sqlite_utils.Database, site_id: str) -> set[date]:
    return {date.fromisoformat(h["date"]) for h in holidays(db, site_id)}


def add_holiday(db: sqlite_utils.Database, site_id: str, day: date, label: str, *, actor: dict | None) -> list[dict]:
    """Add a blackout date to a site; return the sessions already planned on it (to move by hand)."""
    if row(db, "select id from site_holidays where site_id = ? and date = ?", (site_id, day.isoformat())):
        raise CycleError(N_("%(date)s is already in the list."), date=day)
    now = utcnow()
    holiday = {
        "id": new_id(),
        "site_id": site_id,
        "date": day.isoformat(),
        "label": label.strip(),
        "created_at": now,
        "updated_at": now,
    }
    with write(db):
        audit.insert(db, "site_holidays", holiday, user=actor)
    return rows(
        db,
        "select x.*, c.code as cycle_code from sessions x join cycles c on c.id = x.cycle_id"
        " where x.site_id = ? and x.scheduled_date = ? and x.status = 'scheduled'",
        (site_id, day.isoformat()),
    )


def remove_holiday(db: sqlite_utils.Database, site_id: str, holiday_id: str, *, actor: dict | None) -> None:
    holiday = row(db, "select * from site_holidays where id = ? and site_id = ?", (holiday_id, site_id))
    if holiday is None:
        raise CycleError(N_("This date is not in the list."))
    with write(db):
        db.execute("delete from site_holidays where id = ?", (holiday_id,))
        audit.log(
            db,
            user=actor,
            action="delete",
            table="site_holidays",
            record_id=holiday_id,
            site_id=site_id,
            before=holiday,
        )


# --- creating a cycle ---------------------------------------------------------------


def parse_time(text: str) -> str:
    """Return ``text`` as HH:MM; CycleError if it is no time of day."""
    text = (text or "").strip()
    if len(text) == 4 and text[1] == ":":
        text = "0" + text
    if not _TIME.match(text):
        raise CycleError(N_("%(time)s is not a time of day; write it as 14:30."), time=text or "?")
    return text


def parse_date(text: str) -> date:
    """Return ``text`` (YYYY-MM-DD) as a date; CycleError if the date does not exist or is out of bounds."""
    try:
        return bounded_date(text)
    except BoundsError as exc:
        raise CycleError(exc.message, **exc.params) from None


def next_code(db: sqlite_utils.Database, site: dict, *, block: int | None = -1, taken: frozenset = frozenset()) -> str:
    """The next free cycle code of the site, e.g. KMP-C004.

    A laptop that syncs numbers its cycles within its own block (numbers ending in its block
    digit: block 3 makes C003, C013, C023...), so two laptops never make the same code
    offline. ``block`` -1: this database's own (none: any number); ``taken``: codes to avoid too.
    """
    block = code_block(db) if block == -1 else block
    n = db.execute("select count(*) from cycles where site_id = ?", (site["id"],)).fetchone()[0] + 1
    while True:
        code = f"{site['code']}-C{n:03d}"
        if (
            (block is None or n % 10 == block)
            and code not in taken
            and not row(db, "select 1 as x from cycles where site_id = ? and code = ?", (site["id"], code))
        ):
            return code
        n += 1


def _check_facilitators(db: sqlite_utils.Database, site_id: str, facilitator_ids: list[str]) -> list[dict]:
    ids = [f for f in dict.fromkeys(facilitator_ids) if f]
    if not 1 <= len(ids) <= 2:
        raise CycleError(N_("Choose one or two facilitators."))
    found = []
    for user_id in ids:
        user = row(
            db,
            "select u.* from users u where u.id = ? and u.active = 1 and (u.role = 'admin' or exists"
            " (select 1 from user_sites us where us.user_id = u.id and us.site_id = ?))",
            (user_id, site_id),
        )
        if user is None:
            raise CycleError(N_("A chosen facilitator does not work at this site."))
        found.append(user)
    return found


def site_facilitators(db: sqlite_utils.Database, site_id: str) -> list[dict]:
    """Return the active users of a site who may lead a group."""
    return facilitators_of_sites(db, [site_id])


def facilitators_of_sites(db: sqlite_utils.Database, site_ids: list[str]) -> list[dict]:
    """Return the active users of any of these sites who may lead a group, each once."""
    return rows(
        db,
        "select u.id, u.username, u.display_name, u.role from users u"
        f" where u.id in (select user_id from user_sites where site_id in ({marks(site_ids)}))"
        " and u.active = 1 and u.role in ('facilitator', 'coordinator', 'supervisor')"
        " order by u.role != 'facilitator', u.display_name",
        list(site_ids),
    )


def create_cycle(
    db: sqlite_utils.Database,
    *,
    site_id: str,
    protocol: Protocol,
    facilitator_ids: list[str],
    group_type: str,
    venue: str,
    first_date: date,
    weekday: int,
    start_time: str,
    name: str = "",
    actor: dict | None,
    now: datetime,
) -> dict:
    """Create a cycle and its sessions, one a week from ``first_date``, skipping the site's holidays.

    ``now`` is the local time: a first session before it is refused.
    """
    site, venue = _check_group(db, site_id, group_type, venue)
    start_time = parse_time(start_time)
    _check_first_session(first_date, weekday, start_time, now)
    chosen = _check_facilitators(db, site_id, facilitator_ids)
    dates = _session_dates(db, site_id, protocol, first_date)
    stamp = utcnow()
    cycle: dict[str, Any] = {
        "id": new_id(),
        "site_id": site_id,
        "code": next_code(db, site),
        "name": (name or "").strip(),
        "protocol_id": protocol.id,
        "protocol_version": protocol.version,
        "group_type": group_type,
        "venue": venue,
        "weekday": weekday,
        "start_time": start_time,
        "first_date": first_date.isoformat(),
        "status": "planned",
        "closed_on": None,
        "closed_reason": None,
        "created_by": actor["id"] if actor else None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    logged = {"facilitators": [u["id"] for u in chosen], "dates": [d.isoformat() for d in dates]}
    with write(db):
        audit.insert(db, "cycles", cycle, user=actor, extra=logged)
        _add_facilitators(db, cycle, chosen, stamp)
        _add_sessions(db, cycle, protocol, dates, stamp)
    return cycle


def _add_sessions(db: sqlite_utils.Database, cycle: dict, protocol: Protocol, dates: list[date], stamp: str) -> None:
    """Add the protocol's sessions to a new cycle, one on each of ``dates``."""
    for plan, day in zip(protocol.sessions, dates, strict=True):
        db.table("sessions").insert(
            session_record(
                cycle,
                number=plan.number,
                kind="group" if plan.is_group else "pre-group",
                phase=plan.phase,
                day=day,
                minutes=plan.minutes,
                stamp=stamp,
            )
        )


def _check_group(db: sqlite_utils.Database, site_id: str, group_type: str, venue: str) -> tuple[dict, str]:
    """Return the site and the venue of a new group; refuse an unknown site or kind of group, or no venue."""
    site = row(db, "select * from sites where id = ?", (site_id,))
    if site is None:
        raise CycleError(N_("Unknown site."))
    if group_type not in GROUP_TYPES:
        raise CycleError(N_("Choose the kind of group."))
    venue = (venue or "").strip()
    if not venue:
        raise CycleError(N_("Say where the group meets (the venue)."))
    return site, venue


def _session_dates(db: sqlite_utils.Database, site_id: str, protocol: Protocol, first_date: date) -> list[date]:
    """Return one date a week from ``first_date`` for each session of the protocol, skipping holidays."""
    try:
        return scheduling.weekly_dates(first_date, len(protocol.sessions), holiday_dates(db, site_id))
    except scheduling.ScheduleError as exc:
        raise CycleError(N_("The protocol gives this cycle no sessions.")) from exc


def _add_facilitators(db: sqlite_utils.Database, cycle: dict, chosen: list[dict], stamp: str) -> None:
    """Make the first chosen user the cycle's lead facilitator and the second its co-facilitator."""
    for i, user in enumerate(chosen):
        db.table("cycle_facilitators").insert(
            {
                "id": new_id(),
                "site_id": cycle["site_id"],
                "cycle_id": cycle["id"],
                "user_id": user["id"],
                "role": "lead" if i == 0 else "co",
                "created_at": stamp,
                "updated_at": stamp,
            }
        )


def _check_first_session(first_date: date, weekday: int, start_time: str, now: datetime) -> None:
    """Refuse a weekday out of range, a first date on another weekday, or a first session already past."""
    if not 0 <= weekday <= 6:
        raise CycleError(N_("Choose the day of the week the group meets."))
    if first_date.weekday() != weekday:
        raise CycleError(
            N_("%(date)s is not on the weekday chosen for the group; pick a date on that weekday."),
            date=first_date,
        )
    if first_date < now.date() or (first_date == now.date() and start_time <= now.strftime("%H:%M")):
        raise CycleError(
            N_("The first session (%(date)s %(time)s) is in the past; choose a later date."),
            date=first_date,
            time=start_time,
        )


def session_record(
    cycle: dict,
    *,
    number: int,
    kind: str,
    phase: str,
    day: date,
    minutes: int,
    stamp: str,
    makeup_for: str | None = None,
    start_time: str | None = None,
) -> dict:
    """Return a new scheduled session row of ``cycle`` (at the cycle's start time unless given)."""
    return {
        "id": new_id(),
        "site_id": cycle["site_id"],
        "cycle_id": cycle["id"],
        "number": number,
        "kind": kind,
        "phase": phase,
        "makeup_for": makeup_for,
        "scheduled_date": day.isoformat(),
        "start_time": start_time or cycle["start_time"],
        "minutes": minutes,
        "status": "scheduled",
        "note": "",
        "recorded_by": None,
        "recorded_at": None,
        "version": 0,
        "created_at": stamp,
        "updated_at": stamp,
    }


# --- warnings (shown, never blocking) ----------------------------------------------


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _overlap(a_start: str, a_minutes: int, b_start: str, b_minutes: int) -> bool:
    a, b = _minutes(a_start), _minutes(b_start)
    return a < b + b_minutes and b < a + a_minutes


def _age(birth_year: int | None, on: date) -> int | None:
    return None if birth_year is None else on.year - birth_year


def member_warnings(cycle: dict, member: dict, on: date) -> list[Message]:
    """Warn when a member does not fit a single-sex or adolescent group."""
    found = []
    wanted = {"women": "female", "men": "male"}.get(cycle["group_type"])
    if wanted and member["sex"] != wanted:
        msgid = (
            N_("%(name)s is not a woman, but %(cycle)s is a women's group.")
            if wanted == "female"
            else N_("%(name)s is not a man, but %(cycle)s is a men's group.")
        )
        found.append(Message(msgid, {"name": member["name"], "cycle": cycle["code"]}))
    age = _age(member.get("birth_year"), on)
    if cycle["group_type"] == "adolescents" and age is not None and not ADOLESCENT_AGES[0] <= age <= ADOLESCENT_AGES[1]:
        found.append(
            Message(
                N_("%(name)s is about %(age)s years old, but %(cycle)s is a group for adolescents."),
                {"name": member["name"], "age": age, "cycle": cycle["code"]},
            )
        )
    return found


def cycle_warnings(db: sqlite_utils.Database, cycle: dict, protocol: Protocol, *, today: date) -> list[Message]:
    """Return the cycle's warnings: double bookings, group size, members not fitting the group."""
    own_facilitators = {f["id"]: f for f in facilitators(db, cycle["id"])}
    found = _clash_messages(cycle, _clashes(db, cycle, own_facilitators), own_facilitators)
    active = members(db, cycle["id"], active_only=True)
    if cycle["status"] not in ("closed", "closed_early") and not (
        protocol.group_size_min <= len(active) <= protocol.group_size_max
    ):
        found.append(
            Message(
                NP_(
                    "The group has %(count)s member; the protocol recommends %(min)s to %(max)s.",
                    "The group has %(count)s members; the protocol recommends %(min)s to %(max)s.",
                ),
                {"count": len(active), "min": protocol.group_size_min, "max": protocol.group_size_max},
            )
        )
    for member in active:
        found.extend(member_warnings(cycle, member, today))
    return found


def _clashes(db: sqlite_utils.Database, cycle: dict, own_facilitators: dict[str, dict]) -> dict[tuple, list[dict]]:
    """Return the other cycles' sessions that overlap ours, by (facilitator or venue, user id, other cycle)."""
    own = [s for s in sessions(db, cycle["id"]) if s["status"] != "cancelled"]
    # Only these can clash: open cycles of the same site (venue) and cycles sharing a
    # facilitator. They are found first, then their sessions on our dates through
    # sessions_by_cycle; starting from the dates read every group meeting in the country on
    # those days (6 ms at national size, 0.5 ms this way).
    others = rows(
        db,
        "with candidates(id) as (select id from cycles where site_id = :site"
        "  and status not in ('closed', 'closed_early')"
        " union select f.cycle_id from cycle_facilitators f"
        "  join cycle_facilitators mine on mine.user_id = f.user_id where mine.cycle_id = :cycle)"
        " select o.*, c.code as cycle_code, c.venue, c.site_id as cycle_site from candidates"
        " cross join cycles c on c.id = candidates.id cross join sessions o on o.cycle_id = c.id"
        " where c.id != :cycle and c.status not in ('closed', 'closed_early') and o.status != 'cancelled'"
        " and o.scheduled_date in (select scheduled_date from sessions where cycle_id = :cycle"
        "  and status != 'cancelled')",
        {"site": cycle["site_id"], "cycle": cycle["id"]},
    )
    other_facilitators: dict[str, set[str]] = {}
    for o in others:
        if o["cycle_id"] not in other_facilitators:
            other_facilitators[o["cycle_id"]] = {
                r["user_id"]
                for r in db.query("select user_id from cycle_facilitators where cycle_id = ?", (o["cycle_id"],))
            }
    clashes: dict[tuple, list[dict]] = {}
    by_date: dict[str, list[dict]] = {}
    for s in own:
        by_date.setdefault(s["scheduled_date"], []).append(s)
    for o in others:
        for s in by_date.get(o["scheduled_date"], []):
            if not _overlap(s["start_time"], s["minutes"], o["start_time"], o["minutes"]):
                continue
            for user_id in own_facilitators.keys() & other_facilitators[o["cycle_id"]]:
                clashes.setdefault(("facilitator", user_id, o["cycle_id"]), []).append(o)
            if o["cycle_site"] == cycle["site_id"] and o["venue"].strip().casefold() == cycle["venue"].casefold():
                clashes.setdefault(("venue", None, o["cycle_id"]), []).append(o)
    return clashes


def _clash_messages(cycle: dict, clashes: dict[tuple, list[dict]], own_facilitators: dict[str, dict]) -> list[Message]:
    """Say each clash once per clashing cycle, not once per date: how many sessions, and the first."""
    found: list[Message] = []
    for (kind, user_id, _other), found_sessions in clashes.items():
        first = min(found_sessions, key=lambda o: (o["scheduled_date"], o["start_time"]))
        params = {
            "other": first["cycle_code"],
            "count": len({o["id"] for o in found_sessions}),
            "date": date.fromisoformat(first["scheduled_date"]),
            "time": first["start_time"],
        }
        if kind == "facilitator":
            found.append(
                Message(
                    NP_(
                        "%(name)s also leads %(other)s at the same time: %(count)s session, on %(date)s at %(time)s.",
                        "%(name)s also leads %(other)s at the same time: %(count)s sessions, "
                        "the first on %(date)s at %(time)s.",
                    ),
                    {"name": own_facilitators[user_id]["display_name"], **params},
                )
            )
        else:
            found.append(
                Message(
                    NP_(
                        "The venue %(venue)s is also booked for %(other)s at the same time: "
                        "%(count)s session, on %(date)s at %(time)s.",
                        "The venue %(venue)s is also booked for %(other)s at the same time: "
                        "%(count)s sessions, the first on %(date)s at %(time)s.",
                    ),
                    {"venue": cycle["venue"], **params},
                )
            )
    return found


# --- moving, cancelling and adding sessions ----------------------------------------

_SCHEDULE_MESSAGES = {
    "blackout": N_("%(date)s is a holiday or blackout date at this site."),
    "before_previous": N_("The session would come on or before the session before it (%(other)s)."),
    "after_next": N_(
        'The session would come on or after the next session (%(other)s); choose "shift all later sessions" instead.'
    ),
    "same_date": N_("There is already a session on %(date)s."),
    "cancelled": N_("A cancelled session cannot be moved; add a make-up session instead."),
}


def _schedule_error(exc: scheduling.ScheduleError) -> CycleError:
    msgid = _SCHEDULE_MESSAGES.get(exc.reason, N_("These dates do not work: %(detail)s."))
    dates = list(exc.dates) + [None, None]
    return CycleError(msgid, date=dates[0], other=dates[1], detail=str(exc))


def session_row(db: sqlite_utils.Database, session_id: str) -> dict:
    """Return a session the caller found in its site scope (a view or sync); RecordMissing if gone."""
    return required(row(db, "select * from sessions where id = ?", (session_id,)), f"session {session_id}")


def member_row(db: sqlite_utils.Database, member_id: str) -> dict:
    """Return a membership the caller found in its site scope; RecordMissing if gone."""
    return required(row(db, "select * from members where id = ?", (member_id,)), f"member {member_id}")


def cycle_row(db: sqlite_utils.Database, cycle_id: str) -> dict:
    """Return a cycle the caller found in its site scope, or that a session or member points to."""
    return required(row(db, "select * from cycles where id = ?", (cycle_id,)), f"cycle {cycle_id}")


def _editable_cycle(db: sqlite_utils.Database, cycle_id: str) -> dict:
    cycle = cycle_row(db, cycle_id)
    if cycle["status"] in ("closed", "closed_early"):
        raise CycleError(N_("Cycle %(cycle)s is closed; its sessions can no longer change."), cycle=cycle["code"])
    return cycle


def _change(db, session: dict, action: str, old: str | None, new: str | None, reason: str, actor, stamp) -> None:
    db.table("session_changes").insert(
        {
            "id": new_id(),
            "site_id": session["site_id"],
            "cycle_id": session["cycle_id"],
            "session_id": session["id"],
            "action": action,
            "old_date": old,
            "new_date": new,
            "reason": reason,
            "changed_by": actor["id"] if actor else None,
            "created_at": stamp,
            "updated_at": stamp,
        }
    )


def _moves(session: dict, everything: list[dict], new_date: date, mode: str, blackout: set[date]) -> dict[str, date]:
    """Return the new date of each session that moves: a make-up on its own, a regular one by ``mode``."""
    if session["kind"] not in REGULAR_KINDS:
        if mode != "only":
            raise CycleError(N_("A make-up session moves on its own; the other sessions stay."))
        existing = [
            date.fromisoformat(s["scheduled_date"])
            for s in everything
            if s["status"] != "cancelled" and s["id"] != session["id"]
        ]
        try:
            scheduling.check_makeup_date(existing, new_date, blackout)
        except scheduling.ScheduleError as exc:
            raise _schedule_error(exc) from exc
        moves = {session["id"]: new_date}
    else:
        regular = [s for s in everything if s["kind"] in REGULAR_KINDS]
        regular.sort(key=lambda s: s["number"])
        dates = [None if s["status"] == "cancelled" else date.fromisoformat(s["scheduled_date"]) for s in regular]
        index = next(i for i, s in enumerate(regular) if s["id"] == session["id"])
        try:
            result = scheduling.reschedule(dates, index, new_date, mode, blackout)
        except scheduling.ScheduleError as exc:
            raise _schedule_error(exc) from exc
        # A cancelled session (None) stays cancelled, so a move always has a new date.
        moves = {
            s["id"]: new for s, old, new in zip(regular, dates, result, strict=True) if new != old and new is not None
        }
        held = [s for s in regular if s["id"] in moves and s["status"] == "held"]
        if held:
            raise CycleError(
                N_("Session %(number)s already has attendance recorded; it cannot be moved."), number=held[0]["number"]
            )
    return moves


def reschedule_session(
    db: sqlite_utils.Database, session_id: str, new_date: date, mode: str, *, reason: str = "", actor: dict | None
) -> list[dict]:
    """Move a session: ``mode="only"`` this one, ``"shift"`` it and every later one; return the moved sessions."""
    session = session_row(db, session_id)
    cycle = _editable_cycle(db, session["cycle_id"])
    if session["status"] == "held":
        raise CycleError(
            N_("Session %(number)s already has attendance recorded; it cannot be moved."), number=session["number"]
        )
    everything = sessions(db, cycle["id"])
    moves = _moves(session, everything, new_date, mode, holiday_dates(db, cycle["site_id"]))
    stamp = utcnow()
    moved = []
    with write(db):
        for s in everything:
            if s["id"] not in moves:
                continue
            new = moves[s["id"]].isoformat()
            db.execute(
                "update sessions set scheduled_date = ?, version = version + 1, updated_at = ? where id = ?",
                (new, stamp, s["id"]),
            )
            _change(db, s, "moved", s["scheduled_date"], new, reason.strip(), actor, stamp)
            moved.append({**s, "scheduled_date": new, "old_date": s["scheduled_date"]})
        audit.log(
            db,
            user=actor,
            action="reschedule",
            table="cycles",
            record_id=cycle["id"],
            site_id=cycle["site_id"],
            before={m["id"]: m["old_date"] for m in moved},
            after={"mode": mode, "reason": reason, **{m["id"]: m["scheduled_date"] for m in moved}},
        )
    return moved


def cancel_session(db: sqlite_utils.Database, session_id: str, *, reason: str, actor: dict | None) -> None:
    """Cancel a session (it stays in the history); at least one session must remain."""
    session = session_row(db, session_id)
    cycle = _editable_cycle(db, session["cycle_id"])
    if not (reason or "").strip():
        raise CycleError(N_("Say why the session is cancelled."))
    if session["status"] == "cancelled":
        raise CycleError(N_("This session is already cancelled."))
    if session["status"] == "held":
        raise CycleError(
            N_("Session %(number)s already has attendance recorded; it cannot be cancelled."), number=session["number"]
        )
    remaining = db.execute(
        "select count(*) from sessions where cycle_id = ? and status != 'cancelled'", (cycle["id"],)
    ).fetchone()[0]
    if remaining <= 1:
        raise CycleError(N_("A cycle needs at least one session; close the cycle early instead."))
    stamp = utcnow()
    with write(db):
        db.execute(
            "update sessions set status = 'cancelled', version = version + 1, updated_at = ? where id = ?",
            (stamp, session_id),
        )
        _change(db, session, "cancelled", session["scheduled_date"], None, reason.strip(), actor, stamp)
        audit.log(
            db,
            user=actor,
            action="cancel",
            table="sessions",
            record_id=session_id,
            site_id=session["site_id"],
            before={"status": session["status"]},
            after={"status": "cancelled", "reason": reason.strip()},
        )


def add_makeup(
    db: sqlite_utils.Database, session_id: str, day: date, start_time: str, *, reason: str = "", actor: dict | None
) -> dict:
    """Add a make-up session for session ``session_id`` (cancelled or missed by some) on ``day``."""
    original = session_row(db, session_id)
    cycle = _editable_cycle(db, original["cycle_id"])
    start_time = parse_time(start_time)
    existing = [
        date.fromisoformat(s["scheduled_date"]) for s in sessions(db, cycle["id"]) if s["status"] != "cancelled"
    ]
    try:
        scheduling.check_makeup_date(existing, day, holiday_dates(db, cycle["site_id"]))
    except scheduling.ScheduleError as exc:
        raise _schedule_error(exc) from exc
    stamp = utcnow()
    makeup = session_record(
        cycle,
        number=original["number"],
        kind="makeup",
        phase=original["phase"],
        day=day,
        minutes=original["minutes"],
        stamp=stamp,
        makeup_for=original["id"],
        start_time=start_time,
    )
    with write(db):
        audit.insert(db, "sessions", makeup, user=actor)
        _change(
            db,
            makeup,
            "makeup_added",
            original["scheduled_date"],
            makeup["scheduled_date"],
            reason.strip(),
            actor,
            stamp,
        )
    return makeup


# --- members ----------------------------------------------------------------------


def set_participant_status(
    db: sqlite_utils.Database, participant_id: str, status: str, reason: str, actor: dict | None
) -> None:
    """Set a participant's status through the participants module (inside the caller's transaction)."""
    participants.set_status(db, participant_id, status, reason, actor)


def _enrollable(db: sqlite_utils.Database, cycle: dict, participant_id: str, override_reason: str) -> dict:
    """Return the participant if they may join the cycle: of its site, in no other cycle, eligible or a reason."""
    participant = row(db, "select * from participants where id = ? and site_id = ?", (participant_id, cycle["site_id"]))
    if participant is None:
        raise CycleError(N_("This participant is not registered at the cycle's site."))
    current = active_membership(db, participant_id)
    if current is not None:
        raise CycleError(
            N_("%(name)s is already in cycle %(cycle)s; transfer them instead."),
            name=participant["name"],
            cycle=current["cycle_code"],
        )
    if participant["status"] != "eligible" and not override_reason:
        raise CycleError(
            N_("%(name)s is not marked eligible (status: %(status)s); give a reason to enrol anyway."),
            name=participant["name"],
            status=participant["status"],
        )
    return participant


def enrol(
    db: sqlite_utils.Database,
    cycle_id: str,
    participant_id: str,
    *,
    actor: dict | None,
    today: date,
    override_reason: str = "",
) -> tuple[dict, list[Message]]:
    """Enrol an eligible participant (or anyone, with a reason); return the member and warnings."""
    cycle = _editable_cycle(db, cycle_id)
    override_reason = (override_reason or "").strip()
    participant = _enrollable(db, cycle, participant_id, override_reason)
    stamp = utcnow()
    member = {
        "id": new_id(),
        "site_id": cycle["site_id"],
        "cycle_id": cycle_id,
        "participant_id": participant_id,
        "status": "active",
        "problem_area": None,
        "problem_area_2": None,
        "goals": "",
        "enrolled_on": today.isoformat(),
        "override_reason": override_reason or None,
        "ended_on": None,
        "end_reason": None,
        "transferred_to": None,
        "transferred_from": None,
        "created_by": actor["id"] if actor else None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    with write(db):
        db.table("members").insert(member)
        set_participant_status(db, participant_id, "enrolled", f"enrolled in {cycle['code']}", actor)
        audit.log(
            db,
            user=actor,
            action="enrol",
            table="members",
            record_id=member["id"],
            site_id=cycle["site_id"],
            after=member,
        )
    return member, member_warnings(cycle, participant, today)


def transfer(
    db: sqlite_utils.Database, member_id: str, to_cycle_id: str, *, reason: str, actor: dict | None, today: date
) -> dict:
    """Move an active member to another open cycle of the same site; both memberships stay."""
    member = member_row(db, member_id)
    if member["status"] != "active":
        raise CycleError(N_("Only an active member can be transferred."))
    if not (reason or "").strip():
        raise CycleError(N_("Say why the member is transferred."))
    target = get_cycle(db, to_cycle_id, [member["site_id"]])
    if target is None or target["id"] == member["cycle_id"]:
        raise CycleError(N_("Choose another cycle of the same site."))
    _editable_cycle(db, target["id"])
    stamp = utcnow()
    new = {
        **member,
        "id": new_id(),
        "cycle_id": target["id"],
        "status": "active",
        "enrolled_on": today.isoformat(),
        "transferred_from": member_id,
        "transferred_to": None,
        "ended_on": None,
        "end_reason": None,
        "created_by": actor["id"] if actor else None,
        "created_at": stamp,
        "updated_at": stamp,
    }
    with write(db):
        # End the old membership first: the index allows one active membership per participant.
        db.execute(
            "update members set status = 'transferred', ended_on = ?, end_reason = ?, updated_at = ? where id = ?",
            (today.isoformat(), reason.strip(), stamp, member_id),
        )
        db.table("members").insert(new)
        db.execute("update members set transferred_to = ? where id = ?", (new["id"], member_id))
        audit.log(
            db,
            user=actor,
            action="transfer",
            table="members",
            record_id=member_id,
            site_id=member["site_id"],
            before=member,
            after={"status": "transferred", "to": new["id"], "reason": reason.strip()},
        )
    return new


def withdraw(db: sqlite_utils.Database, member_id: str, *, reason: str, actor: dict | None, today: date) -> None:
    """End an active membership at the member's or programme's wish, with a reason."""
    member = member_row(db, member_id)
    if member["status"] != "active":
        raise CycleError(N_("Only an active member can be withdrawn."))
    if not (reason or "").strip():
        raise CycleError(N_("Say why the member leaves the group."))
    stamp = utcnow()
    with write(db):
        db.execute(
            "update members set status = 'withdrawn', ended_on = ?, end_reason = ?, updated_at = ? where id = ?",
            (today.isoformat(), reason.strip(), stamp, member_id),
        )
        set_participant_status(db, member["participant_id"], "dropped_out", f"withdrawn: {reason.strip()}", actor)
        audit.log(
            db,
            user=actor,
            action="withdraw",
            table="members",
            record_id=member_id,
            site_id=member["site_id"],
            before=member,
            after={"status": "withdrawn", "reason": reason.strip()},
        )


def check_plan(problem_area: str | None, problem_area_2: str | None) -> tuple[str | None, str | None]:
    area = problem_area or None
    area2 = problem_area_2 or None
    for value in (area, area2):
        if value is not None and value not in PROBLEM_AREAS:
            raise CycleError(N_("Unknown problem area %(area)s."), area=value)
    if area2 is not None and area is None:
        area, area2 = area2, None
    if area2 == area:
        area2 = None
    return area, area2


def set_member_plan(
    db: sqlite_utils.Database,
    member_id: str,
    problem_area: str | None,
    problem_area_2: str | None,
    goals: str,
    *,
    actor: dict | None,
) -> None:
    """Record a member's focal problem area(s) and personal goals (chosen in the pre-group session)."""
    area, area2 = check_plan(problem_area, problem_area_2)
    member = member_row(db, member_id)
    after = {"problem_area": area, "problem_area_2": area2, "goals": (goals or "").strip()}
    with write(db):
        db.execute(
            "update members set problem_area = ?, problem_area_2 = ?, goals = ?, updated_at = ? where id = ?",
            (area, area2, after["goals"], utcnow(), member_id),
        )
        audit.log(
            db,
            user=actor,
            action="update",
            table="members",
            record_id=member_id,
            site_id=member["site_id"],
            before={k: member[k] for k in after},
            after=after,
        )


# --- closing ----------------------------------------------------------------------


def close_cycle(
    db: sqlite_utils.Database,
    cycle_id: str,
    protocol: Protocol,
    *,
    early: bool,
    reason: str = "",
    actor: dict | None,
    today: date,
) -> dict[str, int]:
    """Close a cycle; each active member completes or drops out by the protocol's rule.

    Closing early needs a reason and cancels the sessions not yet held (they
    stay in the history). A normal close needs every session held or cancelled.
    Returns how many members completed and dropped out.
    """
    cycle = _editable_cycle(db, cycle_id)
    reason = (reason or "").strip()
    open_sessions = [s for s in sessions(db, cycle_id) if s["status"] == "scheduled"]
    if early and not reason:
        raise CycleError(N_("Say why the cycle closes early."))
    if not early and open_sessions:
        raise CycleError(
            NP_(
                "%(count)s session has no attendance yet; record or cancel it, or close the cycle early with a reason.",
                "%(count)s sessions have no attendance yet; record or cancel them, "
                "or close the cycle early with a reason.",
            ),
            count=len(open_sessions),
        )
    attended = attended_group_sessions(db, cycle_id)
    stamp = utcnow()
    with write(db):
        for s in open_sessions:
            db.execute(
                "update sessions set status = 'cancelled', version = version + 1, updated_at = ? where id = ?",
                (stamp, s["id"]),
            )
            _change(db, s, "closed_early", s["scheduled_date"], None, reason, actor, stamp)
        counts = _end_memberships(db, cycle, protocol, attended, reason=reason, actor=actor, today=today, stamp=stamp)
        status = "closed_early" if early else "closed"
        db.execute(
            "update cycles set status = ?, closed_on = ?, closed_reason = ?, updated_at = ? where id = ?",
            (status, today.isoformat(), reason or None, stamp, cycle_id),
        )
        audit.log(
            db,
            user=actor,
            action="close",
            table="cycles",
            record_id=cycle_id,
            site_id=cycle["site_id"],
            before={"status": cycle["status"]},
            after={"status": status, "reason": reason, **counts},
        )
    return counts


def _end_memberships(
    db: sqlite_utils.Database,
    cycle: dict,
    protocol: Protocol,
    attended: dict[str, int],
    *,
    reason: str,
    actor: dict | None,
    today: date,
    stamp: str,
) -> dict[str, int]:
    """End each active membership of a closing cycle: completed or dropped out by the protocol's rule."""
    counts = {"completed": 0, "dropped_out": 0}
    for member in members(db, cycle["id"], active_only=True):
        outcome = "completed" if protocol.is_completed(attended.get(member["id"], 0)) else "dropped_out"
        counts[outcome] += 1
        db.execute(
            "update members set status = ?, ended_on = ?, end_reason = ?, updated_at = ? where id = ?",
            (outcome, today.isoformat(), reason or None, stamp, member["id"]),
        )
        set_participant_status(db, member["participant_id"], outcome, f"cycle {cycle['code']} closed", actor)
    return counts


def stage(cycle: dict, cycle_sessions: list[dict]) -> Message:
    """Describe where a cycle is: planned, at session n of N, or closed."""
    if cycle["status"] == "closed":
        return Message(N_("closed"))
    if cycle["status"] == "closed_early":
        return Message(N_("closed early"))
    group = [s for s in cycle_sessions if s["kind"] == "group"]
    held = [s for s in group if s["status"] == "held"]
    if not any(s["status"] == "held" for s in cycle_sessions):
        return Message(N_("planned"))
    return Message(N_("session %(held)s of %(total)s held"), {"held": len(held), "total": len(group)})


def next_session(cycle_sessions: list[dict], today: date) -> dict | None:
    """Return the first session not yet held, today or later, or None."""
    for s in cycle_sessions:
        if s["status"] == "scheduled" and s["scheduled_date"] >= today.isoformat():
            return s
    return None


def session_end(session: dict) -> datetime:
    start = datetime.fromisoformat(f"{session['scheduled_date']}T{session['start_time']}")
    return start + timedelta(minutes=session["minutes"])


PHASE_LABELS = {
    # I18N: the phases of a group IPT cycle
    "pre-group": N_("pre-group"),
    "initial": N_("initial phase"),
    "middle": N_("middle phase"),
    "termination": N_("termination phase"),
}
PROBLEM_AREA_LABELS = {
    # I18N: the four problem areas, in the plain names used with lay facilitators
    "grief": N_("grief"),
    "disputes": N_("disagreements / disputes"),
    "transitions": N_("life changes"),
    "isolation": N_("loneliness / isolation"),
}


def _english(msgid: str, **params: Any) -> str:
    return msgid % params if params else msgid


def session_title(cycle: dict, session: dict, translate=_english) -> str:
    """Name a session the same way on every screen: "KMP-C001: session 3 (middle phase)"."""
    if session["kind"] == "pre-group":
        return translate(N_("%(cycle)s: pre-group meetings"), cycle=cycle["code"])
    phase = translate(PHASE_LABELS.get(session["phase"], session["phase"]))
    if session["kind"] == "makeup":
        return translate(
            N_("%(cycle)s: make-up for session %(number)s (%(phase)s)"),
            cycle=cycle["code"],
            number=session["number"],
            phase=phase,
        )
    return translate(
        N_("%(cycle)s: session %(number)s (%(phase)s)"), cycle=cycle["code"], number=session["number"], phase=phase
    )


def calendar(
    db: sqlite_utils.Database, cycle: dict, protocol: Protocol, *, translate=_english, now: datetime | None = None
) -> str:
    """Return the cycle's sessions as iCalendar text; cancelled ones are marked cancelled."""
    cycle_sessions = sessions(db, cycle["id"])
    if not any(s["status"] != "cancelled" for s in cycle_sessions):
        raise CycleError(N_("Cycle %(cycle)s has no sessions to put in a calendar."), cycle=cycle["code"])
    changes = {
        r["session_id"]: r["n"]
        for r in db.query(
            "select session_id, count(*) as n from session_changes where cycle_id = ? group by session_id",
            (cycle["id"],),
        )
    }
    events = []
    for s in cycle_sessions:
        start = datetime.fromisoformat(f"{s['scheduled_date']}T{s['start_time']}")
        try:
            goals = protocol.session(s["number"]).goals
        except KeyError:
            goals = ()
        events.append(
            calendar_ics.Event(
                uid=f"{s['id']}@group-ipt",
                start=start,
                end=session_end(s),
                summary=session_title(cycle, s, translate),
                location=cycle["venue"],
                description="\n".join(f"- {translate(g)}" for g in goals),
                cancelled=s["status"] == "cancelled",
                sequence=changes.get(s["id"], 0),
            )
        )
    return calendar_ics.render(events, name=cycle["code"], now=now)
