"""Load ``forms/intake.yaml``: the exclusions asked at intake and the safety steps.

Like the instruments, this is data a programme edits (its own wording, its own
health-centre contacts), checked when the app starts and by ``group-ipt forms
check``. Every error names the file, line and field. Plain Python, no Flask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .formfile import FormChecker, FormFileError
from .yamlfile import LineMap, valid

INTAKE_FILE = "intake.yaml"
URGENCIES = ("urgent", "routine")
_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Exclusion:
    code: str
    label: str
    urgency: str  # one of URGENCIES


@dataclass(frozen=True)
class SafetySteps:
    title: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Intake:
    exclusions: tuple[Exclusion, ...]
    safety_steps: dict[str, SafetySteps]  # keyed by urgency

    def exclusion(self, code: str) -> Exclusion | None:
        for exclusion in self.exclusions:
            if exclusion.code == code:
                return exclusion
        return None

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(e.code for e in self.exclusions)


def check_intake(forms_dir: str | Path) -> list[FormFileError]:
    """Return every error in ``forms_dir/intake.yaml`` (empty when it is valid)."""
    return _Checker.load(Path(forms_dir) / INTAKE_FILE)[1]


def load_intake(forms_dir: str | Path) -> Intake:
    """Load ``forms_dir/intake.yaml``; raise the first FormFileError in it."""
    return valid(_Checker.load(Path(forms_dir) / INTAKE_FILE))


class _Checker(FormChecker[Intake]):
    not_a_mapping = "the file must be a mapping with exclusions and safety_steps"

    def form(self, data: LineMap) -> Intake:
        self.keys(data, ("exclusions", "safety_steps"))
        return Intake(self.exclusions(data), self.safety_steps(data))

    def exclusions(self, data: LineMap) -> tuple[Exclusion, ...]:
        found: list[Exclusion] = []
        entries = data.get("exclusions")
        if not isinstance(entries, list) or not entries:
            self.error(data, "exclusions", "must be a non-empty list")
            return ()
        for index, entry in enumerate(entries, start=1):
            if not isinstance(entry, LineMap):
                self.error(data, "exclusions", f"entry {index} must be a mapping with code, label and urgency")
                continue
            code = entry.get("code")
            if not isinstance(code, str) or not _CODE.match(code):
                self.error(
                    entry, "code", "must be lower-case letters, digits and _, starting with a letter", str(index)
                )
                continue
            self.keys(entry, ("code", "label", "urgency"), code)
            if any(e.code == code for e in found):
                self.error(entry, "code", f"'{code}' is used twice", code)
            label = self.stripped_text(entry, "label", code)
            urgency = entry.get("urgency", "routine")
            if urgency not in URGENCIES:
                self.error(entry, "urgency", f"must be one of: {', '.join(URGENCIES)}", code)
            found.append(Exclusion(code, label, urgency))
        return tuple(found)

    def safety_steps(self, data: LineMap) -> dict[str, SafetySteps]:
        block = data.get("safety_steps")
        if not isinstance(block, LineMap):
            self.error(data, "safety_steps", "must be a mapping with 'urgent' and 'routine'")
            return {}
        self.keys(block, URGENCIES)
        result = {}
        for urgency in URGENCIES:
            entry = block.get(urgency)
            if not isinstance(entry, LineMap):
                self.error(block, urgency, f"needs '{urgency}' with a title and a list of steps")
                continue
            self.keys(entry, ("title", "steps"), urgency)
            title = self.stripped_text(entry, "title", urgency)
            steps = entry.get("steps")
            if not isinstance(steps, list) or not steps or not all(isinstance(s, str) and s.strip() for s in steps):
                self.error(entry, "steps", "must be a non-empty list of texts", urgency)
                steps = []
            result[urgency] = SafetySteps(title, tuple(s.strip() for s in steps))
        return result
