"""Rating forms a supervisor fills in after observing a session, defined as data in ``forms/ratings/``.

Like the instruments, a rating form is a YAML file: items, a shared answer scale,
a scoring rule and a threshold (see docs/forms.md, "Rating forms"). The loader
fails loudly: every error names the file, line, item and field.

Scoring never counts a blank as 0: a rating with any item left blank is
*incomplete*, flagged, and has no score. "Not applicable" (``NOT_APPLICABLE``,
offered when the form says ``not_applicable: true``) is an answer, not a blank: the
item is left out of the score. An item with ``phases`` is asked only for a session
of those phases; for any other session it is not applicable by itself. A complete rating scores the mean (or
sum) of its items, also shown as a percentage of the scale so that forms with
different scales compare, and the threshold is a percentage too.

Plain Python, no Flask.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .formfile import FormChecker, FormFileError, read_form_directory
from .instruments import Option
from .protocols import PHASES
from .yamlfile import LineMap, valid

SCORING_METHODS = ("mean", "sum")
MISSING_RULES = ("incomplete",)
SECTIONS = ("adherence", "competence")
_TOP_KEYS = ("id", "name", "version", "description", "scale", "scoring", "items", "not_applicable")
NOT_APPLICABLE = "na"  # the stored answer "not applicable"
_SCALE_KEYS = ("value", "label")
_SCORING_KEYS = ("method", "missing", "threshold")
_ITEM_KEYS = ("id", "text", "section", "description", "phases")
_ID = re.compile(r"[a-z][a-z0-9_-]*\Z")


@dataclass(frozen=True)
class RatingItem:
    id: str
    text: str
    section: str  # one of SECTIONS
    description: str | None = None
    phases: tuple[str, ...] | None = None  # None: every phase

    def applies_to(self, phase: str | None) -> bool:
        return self.phases is None or phase is None or phase in self.phases


@dataclass(frozen=True)
class RatingScore:
    """The outcome of scoring one rating: no score at all when anything is missing."""

    complete: bool
    missing: list[str]
    score: float | None  # mean or sum of the item values
    percent: float | None  # 0-100 of the scale
    sections: dict[str, float | None]  # percent per section (adherence, competence)


@dataclass(frozen=True)
class RatingForm:
    id: str
    name: str
    version: int
    scale: tuple[Option, ...]
    method: str
    threshold: float  # percent, 0-100
    items: tuple[RatingItem, ...]
    description: str | None = None
    source: str | None = None
    not_applicable: bool = False

    def items_for(self, phase: str | None) -> tuple[RatingItem, ...]:
        """Return the items asked for a session of ``phase`` (every item when None)."""
        return tuple(i for i in self.items if i.applies_to(phase))

    @property
    def low(self) -> int:
        return min(o.value for o in self.scale)

    @property
    def high(self) -> int:
        return max(o.value for o in self.scale)

    def parse(self, raw: Mapping[str, Any], phase: str | None = None) -> dict[str, int | str | None]:
        """Read submitted answers (item id -> text or int; blank or absent = missing).

        ``phase`` is the observed session's: an item of other phases is recorded as not
        applicable. Raise ValueError naming the item for an unknown item, a value off the
        scale, or "not applicable" on a form that does not offer it.
        """
        values = {o.value for o in self.scale}
        known = {i.id for i in self.items}
        for key in raw:
            if key not in known:
                raise ValueError(f"item {key}: no such item in {self.id}")
        answers: dict[str, int | str | None] = {}
        for item in self.items:
            if not item.applies_to(phase):
                answers[item.id] = NOT_APPLICABLE
                continue
            value = raw.get(item.id)
            text = "" if value is None else str(value).strip()
            if not text:
                answers[item.id] = None
                continue
            if text == NOT_APPLICABLE:
                if not self.not_applicable:
                    raise ValueError(f"item {item.id}: this form has no 'not applicable' answer")
                answers[item.id] = NOT_APPLICABLE
                continue
            if not text.lstrip("-").isdigit() or int(text) not in values:
                raise ValueError(f"item {item.id}: {text!r} is not on the scale")
            answers[item.id] = int(text)
        return answers

    def _percent(self, values: list[int]) -> float | None:
        if not values or self.high == self.low:
            return None
        mean = sum(values) / len(values)
        return round(100 * (mean - self.low) / (self.high - self.low), 1)

    def score(self, answers: Mapping[str, int | str | None], phase: str | None = None) -> RatingScore:
        """Score answers; any missing item gives an incomplete rating without a score.

        Items answered "not applicable", and items not asked in ``phase``, are left out;
        a rating with nothing left to score is complete but has no score.
        """
        asked = self.items_for(phase)
        missing = [i.id for i in asked if answers.get(i.id) is None]
        if missing:
            return RatingScore(False, missing, None, None, dict.fromkeys(self.sections))
        scored = [i for i in asked if answers.get(i.id) != NOT_APPLICABLE]
        values = [int(answers[i.id]) for i in scored]  # type: ignore[arg-type]
        if not values:
            return RatingScore(True, [], None, None, dict.fromkeys(self.sections))
        score = sum(values) / len(values) if self.method == "mean" else float(sum(values))
        sections = {
            s: self._percent([int(answers[i.id]) for i in scored if i.section == s])  # type: ignore[arg-type]
            for s in self.sections
        }
        return RatingScore(True, [], round(score, 2), self._percent(values), sections)

    @property
    def sections(self) -> list[str]:
        return [s for s in SECTIONS if any(i.section == s for i in self.items)]


def check_ratings(directory: Path) -> list[FormFileError]:
    """Return every error of every rating form in ``directory`` (none when it does not exist)."""
    return _read_all(directory)[1]


def load_ratings(directory: Path) -> dict[str, RatingForm]:
    """Load every rating form; raise the first FormFileError found."""
    return valid(_read_all(directory))


def _read_all(directory: Path) -> tuple[dict[str, RatingForm], list[FormFileError]]:
    # A programme without supervision ratings has no folder: that is fine.
    return read_form_directory(directory, read_rating_form, required=False)


def read_rating_form(path: Path) -> tuple[RatingForm | None, list[FormFileError]]:
    """Read one rating form file; return it, or None and every error in it."""
    return _Checker.load(path)


class _Checker(FormChecker[RatingForm]):
    not_a_mapping = "must be a YAML mapping with id, name, scale, scoring and items"

    def form(self, data: LineMap) -> RatingForm | None:
        self.keys(data, _TOP_KEYS)
        form_id = self.identifier(data, _ID, first="a letter", required=False)
        name = self.text(data, "name")
        description = self.text(data, "description", required=False)
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.error(data, "version", f"must be a whole number from 1, not {version!r}")
        scale = self.scale(data)
        method, threshold = self.scoring(data)
        items = self.items(data)
        if self.errors:
            return None
        # Without errors every field above was found valid.
        assert form_id is not None and name is not None and isinstance(version, int) and method is not None
        not_applicable = data.get("not_applicable", False)
        if not isinstance(not_applicable, bool):
            self.error(data, "not_applicable", f"must be true or false, not {not_applicable!r}")
            not_applicable = False
        return RatingForm(
            form_id, name, version, scale, method, threshold, items, description, self.file, not_applicable
        )

    def scale(self, data: LineMap) -> tuple[Option, ...]:
        value = data.get("scale")
        if not isinstance(value, list) or len(value) < 2:
            self.error(data, "scale", "must be a list of at least two {value, label} answers")
            return ()
        options: list[Option] = []
        for entry in value:
            if not isinstance(entry, LineMap):
                self.error(data, "scale", "each answer must be a mapping with value and label")
                continue
            self.keys(entry, _SCALE_KEYS)
            number = entry.get("value")
            label = self.text(entry, "label")
            if isinstance(number, bool) or not isinstance(number, int):
                self.error(entry, "value", f"must be a whole number, not {number!r}")
                continue
            if any(o.value == number for o in options):
                self.error(entry, "value", f"value {number} is listed twice")
                continue
            if label:
                options.append(Option(number, label))
        return tuple(sorted(options, key=lambda o: o.value))

    def scoring(self, data: LineMap) -> tuple[str | None, float]:
        scoring = data.get("scoring")
        if not isinstance(scoring, LineMap):
            self.error(data, "scoring", "must be a mapping with method, missing and threshold")
            return "mean", 0.0
        self.keys(scoring, _SCORING_KEYS)
        method = scoring.get("method")
        if method not in SCORING_METHODS:
            self.error(scoring, "method", f"must be one of {', '.join(SCORING_METHODS)}, not {method!r}")
        missing = scoring.get("missing")
        if missing not in MISSING_RULES:
            # A blank is never scored as 0; say so in the file, so nobody assumes otherwise.
            self.error(
                scoring, "missing", f"must be 'incomplete' (a rating with a blank item gets no score), not {missing!r}"
            )
        threshold = scoring.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 100:
            self.error(scoring, "threshold", f"must be a percentage from 0 to 100, not {threshold!r}")
            threshold = 0
        return method, float(threshold)

    def items(self, data: LineMap) -> tuple[RatingItem, ...]:
        value = data.get("items")
        if not isinstance(value, list) or not value:
            self.error(data, "items", "must be a non-empty list of items")
            return ()
        items: list[RatingItem] = []
        seen: set[str | None] = set()  # None too: a second bad id is reported as a duplicate
        for position, entry in enumerate(value, start=1):
            if not isinstance(entry, LineMap):
                self.error(data, "items", f"item #{position} must be a mapping with id, text and section")
                continue
            item_id = self.identifier(entry, _ID, f"#{position}", first="a letter", required=False)
            label = item_id or f"#{position}"
            self.keys(entry, _ITEM_KEYS, label)
            if item_id in seen:
                self.error(entry, "id", f"duplicate item id '{item_id}'", label)
            seen.add(item_id)
            text = self.text(entry, "text", label)
            description = self.text(entry, "description", label, required=False)
            section = entry.get("section")
            if section not in SECTIONS:
                self.error(entry, "section", f"must be one of {', '.join(SECTIONS)}, not {section!r}", label)
            phases = entry.get("phases")
            if phases is not None and (
                not isinstance(phases, list) or not phases or any(p not in PHASES for p in phases)
            ):
                self.error(entry, "phases", f"must be a list of phases ({', '.join(PHASES)}), not {phases!r}", label)
                phases = None
            if item_id and text and section in SECTIONS:
                items.append(
                    RatingItem(item_id, text, section, description, tuple(phases) if phases is not None else None)
                )
        return tuple(items)
