"""Facilitator scripts defined as data in ``forms/scripts/``.

A script tells a lay facilitator what to do in one session of a protocol: a
timed agenda of steps, what to say and ask, the activities, what to watch for,
and the safety reminder. Text shared by many sessions lives once, in the files
under ``forms/scripts/shared/`` (blocks, phase templates, problem-area guidance,
the safety reminder); each protocol's file (``forms/scripts/<protocol>.yaml``)
says which template and blocks each session uses and adds what is specific to
it. The loader checks everything against the loaded protocols and fails loudly
with the file, line, session and field. See ``docs/scripts.md``.

Texts are English msgids. Placeholders are written ``%(session_number)s``
(python-format, as gettext and Babel expect), and only PLACEHOLDERS may be used.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocols import PHASES, Protocol, SessionPlan
from .yamlfile import DataFileError, FileChecker, valid, yaml_files

logger = logging.getLogger(__name__)

PROBLEM_AREAS = ("grief", "disputes", "transitions", "isolation")
PLACEHOLDERS = {
    "session_number": "the number of this session (0 for the individual pre-group session)",
    "sessions_total": "the number of group sessions in the cycle",
    "sessions_left": "the number of group sessions still to come after this one",
}
SHARED_DIR = "shared"
SLOT = "session"
MAX_STEP_MINUTES = 240
# Text fields of a step, a block and problem-area guidance: each a list of strings.
STEP_TEXTS = ("say", "ask", "activity", "watch", "homework")

_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
_PERCENT = re.compile(r"%(?:\((\w+)\)s|%)")
_BRACES = re.compile(r"\{\s*\w*\s*\}")

_SHARED_KEYS = {"reminder": False, "blocks": False, "templates": False, "problem_areas": False}
_BLOCK_KEYS = {"id": True, "title": True, "guidance": False, **dict.fromkeys(STEP_TEXTS, False)}
_TEMPLATE_KEYS = {"id": True, "phases": False, "agenda": True, "watch": False, "reminder": False}
_AREA_KEYS = {"code": True, "name": True, "description": False, "stages": True}
_STAGE_KEYS = {"id": True, **dict.fromkeys(STEP_TEXTS, False)}
_FILE_KEYS = {"id": True, "description": False, "sessions": True}
_SESSION_KEYS = {
    "number": True,
    "title": True,
    "template": False,
    "agenda": False,
    "watch": False,
    "reminder": False,
}
_ITEM_KEYS = {"block": False, "minutes": True, "title": False, "guidance": False, **dict.fromkeys(STEP_TEXTS, False)}


class ScriptFileError(DataFileError):
    """A script file that cannot be used, with where and why (the session, the item and the field)."""


class ScriptNotFound(LookupError):
    """No script for this protocol or session."""


@dataclass(frozen=True)
class Guidance:
    """What to do for one problem area at one stage of the work (e.g. disputes, practice)."""

    area: str
    name: str
    stage: str
    say: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    activity: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    homework: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProblemArea:
    """One of the four problem areas, with its guidance for every stage."""

    code: str
    name: str
    description: tuple[str, ...]
    stages: Mapping[str, Guidance]


@dataclass(frozen=True)
class Step:
    """One timed step of a session's agenda."""

    title: str
    minutes: int
    say: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    activity: tuple[str, ...] = ()
    watch: tuple[str, ...] = ()
    homework: tuple[str, ...] = ()
    block: str | None = None  # the shared block it comes from; None for a session's own step
    guidance: tuple[Guidance, ...] = ()


@dataclass(frozen=True)
class Script:
    """The assembled script of one session of one protocol."""

    protocol_id: str
    session_number: int
    phase: str
    minutes: int
    title: str
    goals: tuple[str, ...]  # the protocol's goals for the session: one source of truth
    agenda: tuple[Step, ...]
    watch: tuple[str, ...]
    reminder: tuple[str, ...]  # what to do if someone talks about self-harm
    template: str | None = None

    @property
    def say(self) -> tuple[str, ...]:
        """Return every text to read aloud, in agenda order."""
        return tuple(text for step in self.agenda for text in step.say)

    @property
    def ask(self) -> tuple[str, ...]:
        """Return every question to ask, in agenda order."""
        return tuple(text for step in self.agenda for text in step.ask)

    @property
    def start_minutes(self) -> tuple[int, ...]:
        """Return the minute each step starts at, counted from the start of the session."""
        starts, elapsed = [], 0
        for step in self.agenda:
            starts.append(elapsed)
            elapsed += step.minutes
        return tuple(starts)

    @property
    def placeholders(self) -> frozenset[str]:
        """Return the placeholder names used anywhere in the script."""
        return frozenset(name for text in _texts(self) for name in _PLACEHOLDER.findall(text))


@dataclass(frozen=True)
class ScriptLibrary:
    """Every assembled script, by protocol id and session number, with all guidance."""

    scripts: Mapping[str, Mapping[int, Script]] = field(default_factory=dict)
    problem_areas: Mapping[str, ProblemArea] = field(default_factory=dict)

    @property
    def protocol_ids(self) -> tuple[str, ...]:
        """Return the ids of the protocols that have scripts."""
        return tuple(sorted(self.scripts))

    def script_for(self, protocol_id: str, session_number: int, problem_areas: set[str] | None = None) -> Script:
        """Return the script of one session, with guidance for ``problem_areas`` only.

        ``problem_areas`` are the codes present in the group (PROBLEM_AREAS);
        None keeps the guidance for all four, e.g. for a printed booklet or the
        pre-group session, where the area is not chosen yet.
        """
        sessions = self.scripts.get(protocol_id)
        if sessions is None:
            raise ScriptNotFound(f"no scripts for protocol {protocol_id!r}")
        script = sessions.get(session_number)
        if script is None:
            raise ScriptNotFound(f"protocol {protocol_id!r} has no script for session {session_number}")
        if problem_areas is None:
            return script
        unknown = set(problem_areas) - set(PROBLEM_AREAS)
        if unknown:
            raise ValueError(
                f"unknown problem area(s) {', '.join(sorted(unknown))} (known: {', '.join(PROBLEM_AREAS)})"
            )
        agenda = tuple(
            dataclasses.replace(step, guidance=tuple(g for g in step.guidance if g.area in problem_areas))
            for step in script.agenda
        )
        return dataclasses.replace(script, agenda=agenda)


def session_context(protocol: Protocol, session_number: int) -> dict[str, int]:
    """Return the placeholder values for session ``session_number`` of ``protocol``."""
    protocol.session(session_number)  # KeyError for a session the protocol does not have
    total = len(protocol.group_sessions)
    return {
        "session_number": session_number,
        "sessions_total": total,
        "sessions_left": max(total - session_number, 0),
    }


def placeholders_filled(
    script: Script, context: Mapping[str, Any], translate: Callable[[str], str] | None = None
) -> Script:
    """Return ``script`` with every text translated (if ``translate`` is given) and filled.

    ``context`` gives a value for each placeholder the script uses (see
    session_context); a missing one raises ValueError. Translation happens
    first, because the msgid is the text with its placeholders.
    """
    missing = script.placeholders - set(context)
    if missing:
        raise ValueError(f"no value for placeholder(s) {', '.join(sorted(missing))}")

    def fill(text: str) -> str:
        translated = translate(text) if translate is not None else text
        return _PERCENT.sub(lambda m: _fill_one(m, context, translated), translated)

    return _map_texts(script, fill)


def _fill_one(match: re.Match, context: Mapping[str, Any], text: str) -> str:
    name = match.group(1)
    if name is None:
        return "%"  # "%%", as in python-format
    if name not in context:
        # A translation that names a placeholder its msgid does not have: show it as is.
        logger.warning("unknown placeholder %%(%s)s in script text %r", name, text)
        return match.group(0)
    return str(context[name])


def _texts(script: Script) -> Iterator[str]:
    """Yield every text of ``script``: title, goals, steps, guidance, watch and reminder."""
    yield script.title
    yield from script.goals
    for step in script.agenda:
        yield step.title
        for name in STEP_TEXTS:
            yield from getattr(step, name)
        for guidance in step.guidance:
            yield guidance.name
            for name in STEP_TEXTS:
                yield from getattr(guidance, name)
    yield from script.watch
    yield from script.reminder


def _map_texts(script: Script, fn: Callable[[str], str]) -> Script:
    """Return a copy of ``script`` with ``fn`` applied to every text in it."""

    def many(texts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(fn(t) for t in texts)

    def texts_of(obj: Any) -> dict[str, Any]:  # Any: mypy checks ** of a uniform dict against every field
        return {name: many(getattr(obj, name)) for name in STEP_TEXTS}

    agenda = tuple(
        dataclasses.replace(
            step,
            title=fn(step.title),
            guidance=tuple(dataclasses.replace(g, name=fn(g.name), **texts_of(g)) for g in step.guidance),
            **texts_of(step),
        )
        for step in script.agenda
    )
    return dataclasses.replace(
        script,
        title=fn(script.title),
        goals=many(script.goals),
        agenda=agenda,
        watch=many(script.watch),
        reminder=many(script.reminder),
    )


# --- reading and checking ---------------------------------------------------


@dataclass
class _Where:
    """Where in which file a piece of data sits, for error messages."""

    path: Path
    session: int | None = None
    item: str | None = None


@dataclass
class _Block:
    id: str
    title: str
    texts: dict[str, tuple[str, ...]]
    guidance: str | None


@dataclass
class _Template:
    id: str
    phases: tuple[str, ...]
    agenda: list[_Item | str]  # SLOT marks where a session's own steps go
    watch: tuple[str, ...]
    reminder: tuple[str, ...]


@dataclass
class _Item:
    """One agenda entry as written: a block reference and/or the step's own text."""

    minutes: int
    block: str | None
    title: str | None
    texts: dict[str, tuple[str, ...]]
    guidance: str | None


class _Checker(FileChecker[ScriptFileError]):
    """Read the shared files and the protocol script files, collecting every error."""

    error_class = ScriptFileError

    def __init__(self, directory: Path, protocols: Mapping[str, Protocol] | None) -> None:
        super().__init__()
        self.directory = directory
        self.protocols = protocols
        self.reminder: tuple[str, ...] = ()
        self.reminder_file: Path | None = None
        self.blocks: dict[str, _Block] = {}
        self.templates: dict[str, _Template] = {}
        self.areas: dict[str, ProblemArea] = {}
        self.scripts: dict[str, dict[int, Script]] = {}
        # (where, node, field, stage) of every guidance reference, checked once the areas are known.
        self.guidance_refs: list[tuple[_Where, Any, str, str | None]] = []

    def error(self, where: _Where, message: str, field: str | None = None, at: Any = None, key: Any = None) -> None:
        self.report(where.path, message, at=at, key=key, session=where.session, item=where.item, field=field)

    # -- small readers --

    def keys(self, where: _Where, node: Any, spec: dict[str, bool], prefix: str = "") -> bool:
        """Report unknown and missing keys; return False if ``node`` is no mapping."""
        return self.spec_keys(where.path, node, spec, prefix, session=where.session, item=where.item)

    def ident(self, where: _Where, node: dict, key: str, field: str) -> str | None:
        value = node.get(key)
        if key not in node:
            return None
        if not isinstance(value, str) or not _ID.match(value):
            self.error(
                where, "must be lower-case letters and digits joined by - (such as symptom-check)", field, node, key
            )
            return None
        return value

    def texts(self, where: _Where, node: dict, key: str, field: str) -> tuple[str, ...]:
        """Return ``node[key]`` as a tuple of texts: one text or a list of them."""
        if key not in node:
            return ()
        value = node[key]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v.strip() for v in values):
            self.error(where, "must be non-empty text or a list of non-empty texts", field, node, key)
            return ()
        for text in values:
            problem = placeholder_problem(text)
            if problem:
                self.error(where, problem, field, node, key)
        return tuple(v.strip() for v in values)

    def title(self, where: _Where, node: dict, key: str, field: str) -> str | None:
        if key not in node:
            return None
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            self.error(where, "must be non-empty text", field, node, key)
            return None
        problem = placeholder_problem(value)
        if problem:
            self.error(where, problem, field, node, key)
        return value.strip()

    def step_texts(self, where: _Where, node: dict, prefix: str = "") -> dict[str, tuple[str, ...]]:
        return {name: self.texts(where, node, name, prefix + name) for name in STEP_TEXTS}

    def items(self, where: _Where, node: dict, key: str, field: str) -> list:
        value = node.get(key)
        if not isinstance(value, list) or not value:
            self.error(where, "must be a non-empty list", field, node, key)
            return []
        return value

    def section(self, where: _Where, data: dict, key: str) -> list:
        """Return the entries of an optional top-level list of a shared file."""
        return self.items(where, data, key, key) if key in data else []

    # -- shared files --

    def shared(self) -> None:
        shared_dir = self.directory / SHARED_DIR
        if not shared_dir.is_dir():
            self.errors.append(ScriptFileError(shared_dir, "shared script folder not found"))
            return
        files = []
        for path in yaml_files(shared_dir):
            data = self.read(path)
            if data is not None and self.keys(_Where(path), data, _SHARED_KEYS):
                files.append((path, data))
        # Blocks and areas first, from every file: a template may use a block from another file.
        for path, data in files:
            where = _Where(path)
            if "reminder" in data:
                self.shared_reminder(where, data)
            for node in self.section(where, data, "blocks"):
                self.block(path, node)
            for node in self.section(where, data, "problem_areas"):
                self.problem_area(path, node)
        for path, data in files:
            for node in self.section(_Where(path), data, "templates"):
                self.template(path, node)
        missing = [code for code in PROBLEM_AREAS if code not in self.areas]
        if missing:
            message = f"no guidance for problem area(s) {', '.join(missing)}: every area needs its guidance"
            self.errors.append(ScriptFileError(shared_dir, message))
        for area in self.areas.values():
            lacking = sorted(self.stages - set(area.stages))
            if lacking:
                message = f"no guidance for stage(s) {', '.join(lacking)}, which other areas have"
                self.errors.append(ScriptFileError(shared_dir, message, item=f"problem area {area.code!r}"))
        if self.reminder_file is None:
            self.errors.append(ScriptFileError(shared_dir, "no shared file gives the safety 'reminder'"))

    def shared_reminder(self, where: _Where, data: dict) -> None:
        if self.reminder_file is not None:
            self.error(
                where, f"the safety reminder is already given in {self.reminder_file}", "reminder", data, "reminder"
            )
            return
        self.reminder_file = where.path
        self.reminder = self.texts(where, data, "reminder", "reminder")

    def block(self, path: Path, node: Any) -> None:
        block_id = node.get("id") if isinstance(node, dict) else None
        where = _Where(path, item=f"block {block_id!r}" if isinstance(block_id, str) else None)
        if not self.keys(where, node, _BLOCK_KEYS):
            return
        block_id = self.ident(where, node, "id", "id")
        title = self.title(where, node, "title", "title")
        texts = self.step_texts(where, node)
        guidance = self.ident(where, node, "guidance", "guidance")
        if block_id is None or title is None:
            return
        if block_id in self.blocks:
            self.error(where, f"block id {block_id!r} is used twice", "id", node, "id")
            return
        self.blocks[block_id] = _Block(block_id, title, texts, guidance)
        self.guidance_refs.append((where, node, "guidance", guidance))

    def template(self, path: Path, node: Any) -> None:
        template_id = node.get("id") if isinstance(node, dict) else None
        where = _Where(path, item=f"template {template_id!r}" if isinstance(template_id, str) else None)
        if not self.keys(where, node, _TEMPLATE_KEYS):
            return
        template_id = self.ident(where, node, "id", "id")
        phases = node.get("phases", list(PHASES))
        if not isinstance(phases, list) or not phases or any(p not in PHASES for p in phases):
            self.error(where, f"must be a list of phases from {', '.join(PHASES)}", "phases", node, "phases")
            phases = list(PHASES)
        agenda: list[Any] = []
        for i, entry in enumerate(self.items(where, node, "agenda", "agenda")):
            if isinstance(entry, dict) and "slot" in entry:
                if entry != {"slot": SLOT}:
                    self.error(
                        where,
                        f"a slot is written {{slot: {SLOT}}} and has no other keys",
                        f"agenda[{i}]",
                        node,
                        "agenda",
                    )
                elif SLOT in agenda:
                    self.error(where, "has more than one slot", f"agenda[{i}]", node, "agenda")
                else:
                    agenda.append(SLOT)
                continue
            item = self.item(where, entry, f"agenda[{i}].")
            if item is not None:
                agenda.append(item)
        template = _Template(
            template_id or "",
            tuple(phases),
            agenda,
            self.texts(where, node, "watch", "watch"),
            self.texts(where, node, "reminder", "reminder"),
        )
        if template_id is None:
            return
        if template_id in self.templates:
            self.error(where, f"template id {template_id!r} is used twice", "id", node, "id")
            return
        self.templates[template_id] = template

    def item(self, where: _Where, node: Any, prefix: str) -> _Item | None:
        """Read one agenda entry: ``{block, minutes}`` plus optional own text, or a step of its own."""
        if not self.keys(where, node, _ITEM_KEYS, prefix):
            return None
        minutes = node.get("minutes")
        if "minutes" in node and (
            not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_STEP_MINUTES
        ):
            self.error(
                where, f"must be a whole number from 1 to {MAX_STEP_MINUTES}", prefix + "minutes", node, "minutes"
            )
            minutes = None
        block = None
        if "block" in node:
            block = node["block"]
            if not isinstance(block, str) or block not in self.blocks:
                known = ", ".join(sorted(self.blocks)) or "none"
                self.error(where, f"unknown block {block!r} (known: {known})", prefix + "block", node, "block")
                block = None
        title = self.title(where, node, "title", prefix + "title")
        if "block" not in node and "title" not in node:
            self.error(where, "needs a 'block' to use or a 'title' of its own", prefix.rstrip("."), node)
        texts = self.step_texts(where, node, prefix)
        guidance = self.ident(where, node, "guidance", prefix + "guidance")
        self.guidance_refs.append((where, node, prefix + "guidance", guidance))
        if minutes is None or ("block" in node and block is None):
            return None
        return _Item(minutes, block, title, texts, guidance)

    def problem_area(self, path: Path, node: Any) -> None:
        code = node.get("code") if isinstance(node, dict) else None
        where = _Where(path, item=f"problem area {code!r}" if isinstance(code, str) else None)
        if not self.keys(where, node, _AREA_KEYS):
            return
        if code not in PROBLEM_AREAS:
            self.error(where, f"must be one of {', '.join(PROBLEM_AREAS)}", "code", node, "code")
            return
        if code in self.areas:
            self.error(where, f"problem area {code!r} is given twice", "code", node, "code")
            return
        name = self.title(where, node, "name", "name") or ""
        description = self.texts(where, node, "description", "description")
        stages: dict[str, Guidance] = {}
        for i, stage in enumerate(self.items(where, node, "stages", "stages")):
            prefix = f"stages[{i}]."
            if not self.keys(where, stage, _STAGE_KEYS, prefix):
                continue
            stage_id = self.ident(where, stage, "id", prefix + "id")
            texts = self.step_texts(where, stage, prefix)
            if stage_id is None:
                continue
            if stage_id in stages:
                self.error(where, f"stage {stage_id!r} is given twice", prefix + "id", stage, "id")
                continue
            stages[stage_id] = Guidance(code, name, stage_id, **texts)
        self.areas[code] = ProblemArea(code, name, description, stages)

    def check_guidance_refs(self) -> None:
        """Report references to guidance stages that no problem area has."""
        stages = self.stages
        for where, node, field_name, stage in self.guidance_refs:
            if stage is not None and stage not in stages:
                known = ", ".join(sorted(stages)) or "none"
                self.error(where, f"unknown guidance stage {stage!r} (known: {known})", field_name, node, "guidance")
        self.guidance_refs = []

    @property
    def stages(self) -> set[str]:
        return {stage for area in self.areas.values() for stage in area.stages}

    # -- protocol script files --

    def script_file(self, path: Path) -> None:
        data = self.read(path)
        where = _Where(path)
        if data is None or not self.keys(where, data, _FILE_KEYS):
            return
        found = self.script_protocol(where, data)
        if found is None:
            return
        protocol_id, protocol = found
        scripts: dict[int, Script] = {}
        self.scripts[protocol_id] = scripts
        for node in self.items(where, data, "sessions", "sessions"):
            number = self.session_number(where, node, data, protocol_id, protocol, scripts)
            if number is None:
                continue
            plan = protocol.session(number) if protocol is not None else None
            script = self.session(_Where(path, session=number), node, protocol_id, plan)
            if script is not None:
                scripts[number] = script
        if protocol is not None:
            self.check_every_session(where, data, protocol, scripts)

    def script_protocol(self, where: _Where, data: dict) -> tuple[str, Protocol | None] | None:
        """Return the id of the protocol a script file is for, and the protocol if they are known; None if wrong."""
        protocol_id = data.get("id")
        if not isinstance(protocol_id, str):
            if "id" in data:
                self.error(where, "must be the id of a protocol in forms/protocols (such as who-8)", "id", data, "id")
            return None
        if protocol_id in self.scripts:
            self.error(where, f"protocol {protocol_id!r} already has a script file", "id", data, "id")
            return None
        if self.protocols is None:
            return protocol_id, None
        protocol = self.protocols.get(protocol_id)
        if protocol is None:
            known = ", ".join(sorted(self.protocols)) or "none"
            self.error(where, f"no protocol {protocol_id!r} in forms/protocols (known: {known})", "id", data, "id")
            return None
        return protocol_id, protocol

    def session_number(
        self,
        where: _Where,
        node: Any,
        data: dict,
        protocol_id: str,
        protocol: Protocol | None,
        scripts: dict[int, Script],
    ) -> int | None:
        """Return the number of a session's script, or None (reported) if it is wrong, repeated or unplanned."""
        number = node.get("number") if isinstance(node, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            self.error(
                where,
                "must be a session number (0 for the pre-group session)",
                "number",
                node if isinstance(node, dict) else data,
                "number",
            )
            return None
        session_where = _Where(where.path, session=number)
        if number in scripts:
            self.error(session_where, "is given twice", "number", node, "number")
            return None
        if protocol is not None and number not in {s.number for s in protocol.sessions}:
            numbers = ", ".join(str(s.number) for s in protocol.sessions)
            self.error(
                session_where,
                f"protocol {protocol_id!r} has no such session (it has {numbers})",
                "number",
                node,
                "number",
            )
            return None
        return number

    def check_every_session(self, where: _Where, data: dict, protocol: Protocol, scripts: dict[int, Script]) -> None:
        """Report each session of the protocol without a script (unless its script was reported already)."""
        for plan in protocol.sessions:
            if plan.number not in scripts and not any(
                e.session == plan.number for e in self.errors if e.file == str(where.path)
            ):
                self.error(
                    _Where(where.path, session=plan.number),
                    f"has no script; protocol {protocol.id!r} has this {plan.phase} session",
                    None,
                    data,
                    "sessions",
                )

    def session(self, where: _Where, node: dict, protocol_id: str, plan: SessionPlan | None) -> Script | None:
        """Assemble one session's script from its template and its own agenda; None if anything is wrong."""
        errors_before = len(self.errors)
        self.keys(where, node, _SESSION_KEYS)
        title = self.title(where, node, "title", "title")
        template = self.session_template(where, node, plan)
        items = self.session_agenda(where, node, template)
        watch = self.texts(where, node, "watch", "watch")
        reminder = self.texts(where, node, "reminder", "reminder")
        if plan is not None and len(self.errors) == errors_before:
            self.check_minutes(where, node, template, items, plan)
        if len(self.errors) != errors_before or title is None:
            return None
        return Script(
            protocol_id=protocol_id,
            session_number=where.session or 0,
            phase=plan.phase if plan is not None else "",
            minutes=sum(item.minutes for item in items),
            title=title,
            goals=plan.goals if plan is not None else (),
            agenda=tuple(self.step(item) for item in items),
            watch=(template.watch if template is not None else ()) + watch,
            reminder=reminder or (template.reminder if template is not None else ()) or self.reminder,
            template=template.id if template is not None else None,
        )

    def session_template(self, where: _Where, node: dict, plan: SessionPlan | None) -> _Template | None:
        """Return the template a session names, if it exists and suits the session's phase (else reported)."""
        if "template" not in node:
            return None
        name = node["template"]
        template = self.templates.get(name) if isinstance(name, str) else None
        if template is None:
            known = ", ".join(sorted(self.templates)) or "none"
            self.error(where, f"unknown template {name!r} (known: {known})", "template", node, "template")
        elif plan is not None and plan.phase not in template.phases:
            self.error(
                where,
                f"template {name!r} is for {', '.join(template.phases)} sessions, not for a {plan.phase} session",
                "template",
                node,
                "template",
            )
        return template

    def session_agenda(self, where: _Where, node: dict, template: _Template | None) -> list[_Item]:
        """Return a session's agenda: the template's steps with the session's own in its slot."""
        own: list[_Item] = []
        if "agenda" in node:
            for i, entry in enumerate(self.items(where, node, "agenda", "agenda")):
                item = self.item(where, entry, f"agenda[{i}].")
                if item is not None:
                    own.append(item)
        if template is not None and SLOT not in template.agenda and "agenda" in node:
            message = f"template {template.id!r} has no slot for the session's own agenda"
            self.error(where, message, "agenda", node, "agenda")
        elif template is not None and SLOT in template.agenda and "agenda" not in node:
            message = f"is missing: template {template.id!r} has a slot for the session's own steps"
            self.error(where, message, "agenda", node, "template")
        elif "template" not in node and "agenda" not in node:
            self.error(where, "needs an 'agenda', a 'template', or both", None, node)
        frame: list[_Item | str] = template.agenda if template is not None else [SLOT]
        items: list[_Item] = []
        for entry in frame:
            items += [entry] if isinstance(entry, _Item) else own
        return items

    def check_minutes(
        self, where: _Where, node: dict, template: _Template | None, items: list[_Item], plan: SessionPlan
    ) -> None:
        """Report an agenda whose minutes do not add up to the session's length in the protocol."""
        total = sum(item.minutes for item in items)
        if total == plan.minutes:
            return
        detail = ""
        if template is not None and SLOT in template.agenda:
            frame_minutes = sum(e.minutes for e in template.agenda if isinstance(e, _Item))
            detail = f" (template {template.id!r} {frame_minutes} + session {total - frame_minutes})"
        self.error(
            where,
            f"minutes add up to {total}{detail}, the protocol says {plan.minutes}",
            "agenda",
            node,
            "agenda" if "agenda" in node else "template",
        )

    def step(self, item: _Item) -> Step:
        """Assemble one step: the block's text, then the entry's own; the entry's title wins."""
        block = self.blocks.get(item.block) if item.block is not None else None
        texts = {name: (block.texts[name] if block else ()) + item.texts[name] for name in STEP_TEXTS}
        stage = item.guidance or (block.guidance if block else None)
        guidance = tuple(
            self.areas[code].stages[stage]
            for code in PROBLEM_AREAS
            if stage is not None and code in self.areas and stage in self.areas[code].stages
        )
        title = item.title or (block.title if block else "")
        return Step(title=title, minutes=item.minutes, block=item.block, guidance=guidance, **texts)

    def check(self) -> None:
        if not self.directory.is_dir():
            self.errors.append(ScriptFileError(self.directory, "script directory not found"))
            return
        self.shared()
        self.check_guidance_refs()
        if self.errors:
            # Sessions built on broken blocks would only repeat the same errors.
            return
        files = yaml_files(self.directory)
        for path in files:
            self.script_file(path)
        self.check_guidance_refs()
        if self.protocols is not None:
            for protocol_id in sorted(set(self.protocols) - set(self.scripts)):
                self.errors.append(
                    ScriptFileError(
                        self.directory / f"{protocol_id}.yaml",
                        f"protocol {protocol_id!r} has no script file: every session needs a script "
                        "(see docs/scripts.md)",
                    )
                )


def placeholder_problem(text: str) -> str | None:
    """Return what is wrong with the placeholders of ``text``, or None."""
    for name in _PLACEHOLDER.findall(text):
        if name not in PLACEHOLDERS:
            return f"unknown placeholder %({name})s (allowed: {', '.join(f'%({p})s' for p in PLACEHOLDERS)})"
    if "%" in _PLACEHOLDER.sub("", text):
        return "a % sign may only start a placeholder such as %(session_number)s; write 'per cent' instead"
    braces = _BRACES.search(text)
    if braces:
        return f"placeholders are written %(name)s, not {braces.group(0)}"
    return None


def _check_all(
    directory: str | Path, protocols: Mapping[str, Protocol] | None
) -> tuple[ScriptLibrary, list[ScriptFileError]]:
    checker = _Checker(Path(directory), protocols)
    checker.check()
    errors = sorted(checker.errors, key=lambda e: (e.file, e.line is None, e.line or 0))
    library = ScriptLibrary(scripts=checker.scripts, problem_areas=checker.areas)
    return library, errors


def check_scripts(directory: str | Path, protocols: Mapping[str, Protocol] | None) -> list[ScriptFileError]:
    """Return every problem in the script files of ``directory`` (empty if none).

    With ``protocols`` (the loaded protocols, by id) every session of every
    protocol must have a script whose minutes add up to the session's length.
    With None only the files themselves are checked, e.g. when the protocols are
    broken.
    """
    return _check_all(directory, protocols)[1]


def load_scripts(directory: str | Path, protocols: Mapping[str, Protocol]) -> ScriptLibrary:
    """Load and assemble every script; raise ScriptFileError for the first problem."""
    return valid(_check_all(directory, protocols))
