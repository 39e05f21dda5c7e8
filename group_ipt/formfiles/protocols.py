"""Group-cycle protocols defined as data in ``forms/protocols/*.yaml``.

A protocol says how many sessions a cycle has, the phase and length of each,
which instruments are due when, and the programme rules that go with it
(group size, completion, absence follow-up, fidelity checklist, follow-up
measures). The loader fails loudly: every problem names the file, the session,
the field and, where known, the line. See ``docs/forms-protocols.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeGuard

from .yamlfile import DataFileError, FileChecker, valid, yaml_files

PHASES = ("pre-group", "initial", "middle", "termination")
DEFAULT_ABSENCES_FOR_FOLLOWUP = 2
MAX_SESSION_MINUTES = 240

_TOP_KEYS = {
    "id": True,
    "name": True,
    "version": True,
    "description": False,
    "pre_group": True,
    "group_size": True,
    "completion": True,
    "absences_for_followup": False,
    "fidelity_checklist": True,
    "followup": False,
    "maintenance": False,
    "sessions": True,
}
_SESSION_KEYS = {
    "number": True,
    "phase": True,
    "minutes": True,
    "goals": True,
    "instruments": False,
}
_PROTOCOL_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_INSTRUMENT_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
_CHECKLIST_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class ProtocolFileError(DataFileError):
    """A protocol file that cannot be used, with where and why (the session and the field)."""


@dataclass(frozen=True)
class SessionPlan:
    """One planned session of a cycle; number 0 is the individual pre-group one."""

    number: int
    phase: str
    minutes: int
    goals: tuple[str, ...]
    instruments_due: tuple[str, ...]
    is_group: bool


@dataclass(frozen=True)
class FidelityItem:
    """One question of the facilitator's after-session fidelity checklist."""

    id: str
    text: str


@dataclass(frozen=True)
class FollowUp:
    """An instrument given again some months after the last group session."""

    instrument: str
    months_after_end: int


@dataclass(frozen=True)
class Protocol:
    """A whole group-cycle protocol, as loaded from one file."""

    id: str
    name: str
    version: int
    pre_group: bool
    sessions: tuple[SessionPlan, ...]
    group_size_min: int
    group_size_max: int
    min_attended_share: float
    absences_for_followup: int
    fidelity_checklist: tuple[FidelityItem, ...]
    followup: tuple[FollowUp, ...]
    maintenance_monthly_sessions: int
    description: str = ""

    @property
    def group_sessions(self) -> tuple[SessionPlan, ...]:
        """Return the group sessions, without the individual pre-group session."""
        return tuple(s for s in self.sessions if s.is_group)

    def session(self, number: int) -> SessionPlan:
        """Return the plan of session ``number``; KeyError if there is none."""
        for plan in self.sessions:
            if plan.number == number:
                return plan
        raise KeyError(f"protocol {self.id!r} has no session {number}")

    def instruments_due(self, number: int) -> tuple[str, ...]:
        """Return the instrument ids due at session ``number``."""
        return self.session(number).instruments_due

    def phase_of(self, number: int) -> str:
        """Return the phase of session ``number``."""
        return self.session(number).phase

    def is_completed(self, attended_group_sessions: int) -> bool:
        """Tell whether a member who attended this many group sessions completed."""
        if attended_group_sessions < 0:
            raise ValueError("attended_group_sessions cannot be negative")
        # Exact arithmetic: 0.75 of 12 sessions must mean 9, not 8.999...
        attended = Fraction(attended_group_sessions, len(self.group_sessions))
        return attended >= Fraction(repr(self.min_attended_share))


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


# --- checking one file ------------------------------------------------------


class _FileChecker(FileChecker[ProtocolFileError]):
    """Turn one parsed protocol file into a Protocol, collecting every error."""

    error_class = ProtocolFileError

    def __init__(self, path: str | Path, known_instruments: set[str] | None) -> None:
        super().__init__()
        self.path = path
        self.known_instruments = known_instruments

    def error(
        self,
        message: str,
        field: str | None = None,
        at: Any = None,
        key: Any = None,
        session: int | None = None,
    ) -> None:
        """Record a problem; ``at`` and ``key`` locate its line in the file."""
        self.report(self.path, message, at=at, key=key, session=session, field=field)

    def keys(
        self, node: Any, spec: dict[str, bool], prefix: str = "", session: int | None = None
    ) -> TypeGuard[dict[Any, Any]]:
        """Report unknown and missing keys; return False if ``node`` is no mapping."""
        return self.spec_keys(self.path, node, spec, prefix, session=session)

    def text(self, node: dict, key: str, field: str) -> str:
        value = node.get(key, "")
        if key in node and not _is_text(value):
            self.error("must be non-empty text", field, node, key)
            return ""
        return value.strip()

    def integer(
        self,
        node: dict,
        key: str,
        field: str,
        minimum: int,
        maximum: int | None = None,
        session: int | None = None,
    ) -> int | None:
        if key not in node:
            return None
        value = node[key]
        if _is_int(value) and minimum <= value and (maximum is None or value <= maximum):
            return value
        if maximum is None:
            message = f"must be a whole number of at least {minimum}"
        else:
            message = f"must be a whole number from {minimum} to {maximum}"
        self.error(message, field, node, key, session)
        return None

    def instrument(self, value: Any, field: str, at: Any, key: str, session: int | None = None) -> str | None:
        """Return ``value`` if it is a usable instrument id; ``at[key]`` holds it."""
        if not isinstance(value, str) or not _INSTRUMENT_ID.match(value):
            self.error("must be an instrument id such as phq9", field, at, key, session)
            return None
        known = self.known_instruments
        if known is not None and value not in known:
            message = f"unknown instrument {value!r} (known: {', '.join(sorted(known))})"
            self.error(message, field, at, key, session)
            return None
        return value

    # -- sections --

    def group_size(self, data: dict) -> tuple[int, int]:
        node = data.get("group_size")
        if "group_size" not in data or not self.keys(node, {"min": True, "max": True}, "group_size."):
            return 0, 0
        low = self.integer(node, "min", "group_size.min", 1)
        high = self.integer(node, "max", "group_size.max", 1)
        if low is not None and high is not None and low > high:
            self.error(
                f"min ({low}) is larger than max ({high})",
                "group_size",
                data,
                "group_size",
            )
        return low or 0, high or 0

    def completion(self, data: dict) -> float:
        node = data.get("completion")
        if "completion" not in data:
            return 0.0
        spec = {"min_attended_share": True}
        if not self.keys(node, spec, "completion.") or "min_attended_share" not in node:
            return 0.0
        share = node["min_attended_share"]
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            message = "must be a number greater than 0 and at most 1, such as 0.75"
            self.error(message, "completion.min_attended_share", node, "min_attended_share")
            return 0.0
        return float(share)

    def maintenance(self, data: dict) -> int:
        node = data.get("maintenance", {"monthly_sessions": 0})
        if not self.keys(node, {"monthly_sessions": True}, "maintenance."):
            return 0
        return self.integer(node, "monthly_sessions", "maintenance.monthly_sessions", 0) or 0

    def fidelity_checklist(self, data: dict) -> tuple[FidelityItem, ...]:
        if "fidelity_checklist" not in data:
            return ()
        items = data["fidelity_checklist"]
        if not isinstance(items, list) or not items:
            message = "must be a non-empty list of {id, text} items"
            self.error(message, "fidelity_checklist", data, "fidelity_checklist")
            return ()
        result: list[FidelityItem] = []
        for i, item in enumerate(items):
            prefix = f"fidelity_checklist[{i}]."
            if not self.keys(item, {"id": True, "text": True}, prefix) or "id" not in item:
                continue
            item_id = item["id"]
            if not isinstance(item_id, str) or not _CHECKLIST_ID.match(item_id):
                message = "must be lower-case letters, digits and _ (such as set_homework)"
                self.error(message, prefix + "id", item, "id")
            elif item_id in {r.id for r in result}:
                self.error(f"checklist id {item_id!r} is used twice", prefix + "id", item, "id")
            else:
                result.append(FidelityItem(item_id, self.text(item, "text", prefix + "text")))
        return tuple(result)

    def followup(self, data: dict) -> tuple[FollowUp, ...]:
        items = data.get("followup", [])
        if not isinstance(items, list):
            message = "must be a list of {instrument, months_after_end} items"
            self.error(message, "followup", data, "followup")
            return ()
        result: list[FollowUp] = []
        for i, item in enumerate(items):
            prefix = f"followup[{i}]."
            if not self.keys(item, {"instrument": True, "months_after_end": True}, prefix):
                continue
            instrument = None
            if "instrument" in item:
                instrument = self.instrument(item["instrument"], prefix + "instrument", item, "instrument")
            months = self.integer(item, "months_after_end", prefix + "months_after_end", 1)
            if instrument is not None and months is not None:
                result.append(FollowUp(instrument, months))
        return tuple(result)

    def sessions(self, data: dict, pre_group: bool | None) -> tuple[SessionPlan, ...]:
        items = data.get("sessions")
        if not isinstance(items, list) or not items:
            if "sessions" in data:
                self.error("must be a non-empty list of sessions", "sessions", data, "sessions")
            return ()
        plans: list[SessionPlan] = []
        expected: int | None = None
        numbers: set[int] = set()
        previous_phase: str | None = None
        for i, item in enumerate(items):
            number = self.session_number(item, i)
            prefix = "" if number is not None else f"sessions[{i}]."
            if not self.keys(item, _SESSION_KEYS, prefix, number) or number is None:
                continue
            numbers.add(number)
            expected = self.numbered_in_order(item, number, expected, pre_group)
            plan = self.session(item, number)
            if plan is not None:
                self.phase_order(plan, previous_phase, item)
                plans.append(plan)
            # Order is judged against the session listed just before, even if that
            # one has other errors; after an unknown phase it cannot be judged.
            previous_phase = item.get("phase") if item.get("phase") in PHASES else "?"
        self.check_sessions(data, pre_group, plans, numbers, started=expected is not None)
        return tuple(plans)

    def session_number(self, item: Any, i: int) -> int | None:
        """Return the number of the ``i``-th session listed, or None (reported) if it has no usable one."""
        number = item.get("number") if isinstance(item, dict) else None
        if _is_int(number) and number >= 0:
            return number
        if isinstance(item, dict) and "number" in item:
            message = "must be a whole number (0 for the pre-group session)"
            self.error(message, f"sessions[{i}].number", item, "number")
        return None

    def numbered_in_order(self, item: dict, number: int, expected: int | None, pre_group: bool | None) -> int:
        """Report a session number out of order or against pre_group; return the number expected next."""
        if expected is None:
            # Start at 0 or 1; a missing session 0 is reported under pre_group.
            expected = 0 if number == 0 else 1
        if number == 0 and pre_group is False:
            message = "session 0 is the pre-group session, but pre_group is false"
            self.error(message, "number", item, "number", number)
        if number != expected:
            message = f"session numbers must run in order, without gaps or repeats: expected {expected}"
            self.error(message, "number", item, "number", number)
        return number + 1

    def check_sessions(
        self, data: dict, pre_group: bool | None, plans: list[SessionPlan], numbers: set[int], *, started: bool
    ) -> None:
        """Check the list as a whole: session 0 when pre_group, a group session, termination last."""
        if pre_group is True and started and 0 not in numbers:
            self.error(
                "pre_group is true, but there is no session 0",
                "pre_group",
                data,
                "pre_group",
            )
        group = [p for p in plans if p.is_group]
        if plans and not group:
            self.error("must include at least one group session", "sessions", data, "sessions")
        # Judge the last session only if it loaded, or one error would cause two.
        if group and group[-1].number == max(numbers) and group[-1].phase != "termination":
            message = "the last group session must be in the termination phase"
            self.error(message, "phase", session=group[-1].number)

    def session(self, item: dict, number: int) -> SessionPlan | None:
        before = len(self.errors)
        phase = item.get("phase")
        if "phase" in item:
            if phase not in PHASES:
                message = f"must be one of {', '.join(PHASES)}"
            elif number == 0 and phase != "pre-group":
                message = "session 0 must be in the pre-group phase"
            elif number != 0 and phase == "pre-group":
                message = "only session 0 can be in the pre-group phase"
            else:
                message = ""
            if message:
                self.error(message, "phase", item, "phase", number)
        minutes = self.integer(item, "minutes", "minutes", 1, MAX_SESSION_MINUTES, number)
        goals = item.get("goals", [])
        if "goals" in item and (not isinstance(goals, list) or not goals):
            self.error("must be a non-empty list of sentences", "goals", item, "goals", number)
            goals = []
        for g, goal in enumerate(goals):
            if not _is_text(goal):
                self.error("must be non-empty text", f"goals[{g}]", item, "goals", number)
        instruments = self.instruments_due(item, number)
        if len(self.errors) > before or phase not in PHASES or minutes is None:
            return None
        if not goals:
            return None
        return SessionPlan(
            number=number,
            phase=phase,
            minutes=minutes,
            goals=tuple(goal.strip() for goal in goals),
            instruments_due=instruments,
            is_group=number != 0,
        )

    def instruments_due(self, item: dict, number: int) -> tuple[str, ...]:
        values = item.get("instruments", [])
        if not isinstance(values, list):
            message = "must be a list of instrument ids"
            self.error(message, "instruments", item, "instruments", number)
            return ()
        result: list[str] = []
        for i, value in enumerate(values):
            field = f"instruments[{i}]"
            instrument = self.instrument(value, field, item, "instruments", number)
            if instrument in result:
                message = f"instrument {instrument!r} is listed twice"
                self.error(message, field, item, "instruments", number)
            elif instrument is not None:
                result.append(instrument)
        return tuple(result)

    def phase_order(self, plan: SessionPlan, previous: str | None, item: dict) -> None:
        if not plan.is_group or previous == "?":
            return
        if previous in (None, "pre-group") and plan.phase != "initial":
            message = "the first group session must be in the initial phase"
        elif previous is not None and PHASES.index(plan.phase) < PHASES.index(previous):
            message = f"{plan.phase!r} cannot come after {previous!r}: phases run {', '.join(PHASES)}"
        else:
            return
        self.error(message, "phase", item, "phase", plan.number)

    # -- the whole file --

    def check(self) -> Protocol | None:
        data = self.read(self.path)
        if self.errors:
            return None
        if not isinstance(data, dict):
            self.error("must be a mapping of protocol fields (id, name, sessions, ...)")
            return None
        self.keys(data, _TOP_KEYS)
        protocol_id = data.get("id")
        if "id" in data and (not isinstance(protocol_id, str) or not _PROTOCOL_ID.match(protocol_id)):
            message = "must be lower-case letters and digits joined by - (such as who-8)"
            self.error(message, "id", data, "id")
        pre_group = data.get("pre_group")
        if "pre_group" in data and not isinstance(pre_group, bool):
            self.error("must be true or false", "pre_group", data, "pre_group")
            pre_group = None
        name = self.text(data, "name", "name")
        version = self.integer(data, "version", "version", 1)
        sessions = self.sessions(data, pre_group)
        min_attended_share = self.completion(data)
        absences = self.integer(data, "absences_for_followup", "absences_for_followup", 1)
        fidelity_checklist = self.fidelity_checklist(data)
        followup = self.followup(data)
        maintenance = self.maintenance(data)
        description = self.text(data, "description", "description")
        group_size_min, group_size_max = self.group_size(data)
        if self.errors:
            return None
        # Without errors every required field is there with its type (a missing one is an error).
        assert isinstance(protocol_id, str) and version is not None and isinstance(pre_group, bool)
        return Protocol(
            id=protocol_id,
            name=name,
            version=version,
            pre_group=pre_group,
            sessions=sessions,
            group_size_min=group_size_min,
            group_size_max=group_size_max,
            min_attended_share=min_attended_share,
            absences_for_followup=absences or DEFAULT_ABSENCES_FOR_FOLLOWUP,
            fidelity_checklist=fidelity_checklist,
            followup=followup,
            maintenance_monthly_sessions=maintenance,
            description=description,
        )


# --- public loaders ---------------------------------------------------------


def _check_file(
    path: str | Path, known_instruments: set[str] | None
) -> tuple[Protocol | None, list[ProtocolFileError]]:
    checker = _FileChecker(path, known_instruments)
    protocol = checker.check()
    # Report in file order, so "the first error" is the one nearest the top.
    errors = sorted(checker.errors, key=lambda e: (e.line is None, e.line or 0))
    return protocol, errors


def _protocol_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ProtocolFileError(directory, "protocol directory not found")
    return yaml_files(directory)


def load_protocol(path: str | Path, *, known_instruments: set[str] | None = None) -> Protocol:
    """Load one protocol file; raise ProtocolFileError for its first problem."""
    return valid(_check_file(path, known_instruments))


def _check_all(
    directory: str | Path, known_instruments: set[str] | None
) -> tuple[dict[str, Protocol], list[ProtocolFileError]]:
    protocols: dict[str, Protocol] = {}
    first_file: dict[str, Path] = {}
    errors: list[ProtocolFileError] = []
    for path in _protocol_files(directory):
        protocol, file_errors = _check_file(path, known_instruments)
        errors.extend(file_errors)
        if protocol is None:
            continue
        if protocol.id in protocols:
            errors.append(
                ProtocolFileError(
                    path,
                    f"protocol id {protocol.id!r} is already used by {first_file[protocol.id]}",
                    field="id",
                )
            )
            continue
        protocols[protocol.id] = protocol
        first_file[protocol.id] = path
    return protocols, errors


def load_protocols(directory: str | Path, *, known_instruments: set[str] | None = None) -> dict[str, Protocol]:
    """Load every protocol file in ``directory``, keyed by protocol id.

    Nothing is returned unless every file is valid: the first problem found is
    raised as ProtocolFileError.
    """
    return valid(_check_all(directory, known_instruments))


def check_protocols(directory: str | Path, known_instruments: set[str] | None = None) -> list[ProtocolFileError]:
    """Return every problem in the protocol files of ``directory`` (empty if none)."""
    try:
        _, errors = _check_all(directory, known_instruments)
    except ProtocolFileError as exc:
        return [exc]
    return errors
