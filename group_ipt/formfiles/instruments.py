"""Load screening instruments from YAML files, check them, and score answers.

Instruments (PHQ-9, WHO-5, a programme's own checklist...) are data files in
``forms/instruments/``; docs/forms.md describes their format. This module is plain
Python: views and CLI commands parse input, call it, and render the result.

Two rules shape the scoring code:

- A missing answer is never counted as 0. Either the instrument's missing rule
  allows prorating, and the result says it was prorated, or there is no total.
- Risk answers (PHQ-9 question 9 above 0) are reported whatever else is missing.
- A risk question is never prorated: when it was not asked the person's risk is
  unknown, so there is no total and no eligibility, only ``risk_unanswered``.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

from .formfile import FormChecker, FormFileError, read_form_directory
from .yamlfile import LineMap, valid

__all__ = [
    "Band",
    "Eligibility",
    "FormFileError",
    "Instrument",
    "InvalidAnswer",
    "InvalidCutoff",
    "Item",
    "Option",
    "RiskRule",
    "ScoreResult",
    "Scoring",
    "check_instruments",
    "load_instrument",
    "load_instruments",
]

SCORING_METHODS = ("sum", "scaled", "none")
DIRECTIONS = (">=", "<=")
_RISK_OPERATORS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_RISK_RULE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+)\s*$")
# Protocol files refer to instruments by id, so instrument ids start with a letter.
_INSTRUMENT_ID = re.compile(r"^[a-z][a-z0-9_-]*$")
_ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

# Allowed keys per mapping; anything else in a file is an error, never ignored.
_TOP_KEYS = (
    "id",
    "name",
    "version",
    "description",
    "recall",
    "options",
    "items",
    "scoring",
    "bands",
    "eligibility",
    "leads_to",
)
_ITEM_KEYS = ("id", "text", "options", "scored", "risk")
_OPTION_KEYS = ("value", "label")
_RISK_KEYS = ("when", "urgent")
_SCORING_KEYS = ("method", "multiplier", "missing")
_MISSING_KEYS = ("prorate_max_missing",)
_BAND_KEYS = ("min", "max", "label", "explanation")
_ELIGIBILITY_KEYS = ("cutoff", "direction", "configurable")


class InvalidAnswer(ValueError):
    """An answer that is not one of the item's options, or for an unknown item."""

    def __init__(self, item: str, message: str) -> None:
        super().__init__(item, message)
        self.item = item
        self.message = message

    def __str__(self) -> str:
        return f"item {self.item}: {self.message}"


class InvalidCutoff(ValueError):
    """A cut-off override the instrument does not allow."""


@dataclass(frozen=True)
class Option:
    value: int
    label: str


@dataclass(frozen=True)
class RiskRule:
    """When an answer to an item must raise a safety alert, e.g. ``>= 1``.

    ``urgent`` (optional, e.g. ``>= 2``) says which of those answers make the
    referral urgent; without it only the item's highest answer does.
    """

    op: str
    value: int
    urgent: RiskRule | None = None

    def matches(self, answer: int) -> bool:
        return _RISK_OPERATORS[self.op](answer, self.value)

    def __str__(self) -> str:
        return f"{self.op} {self.value}"


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    options: tuple[Option, ...]
    scored: bool = True
    risk: RiskRule | None = None

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(option.value for option in self.options)

    def is_urgent(self, answer: int | None) -> bool:
        """Tell whether this risk answer makes the referral urgent."""
        if self.risk is None or answer is None or not self.risk.matches(answer):
            return False
        if self.risk.urgent is not None:
            return self.risk.urgent.matches(answer)
        return answer == max(self.values)

    def option(self, value: int) -> Option | None:
        """Return the option with this value, or None."""
        for option in self.options:
            if option.value == value:
                return option
        return None


@dataclass(frozen=True)
class Band:
    min: int
    max: int
    label: str
    explanation: str

    def contains(self, total: int) -> bool:
        return self.min <= total <= self.max


@dataclass(frozen=True)
class Scoring:
    method: str  # one of SCORING_METHODS
    multiplier: int | float | None = None  # only for "scaled"
    prorate_max_missing: int = 0  # 0: any missing scored item means no total


@dataclass(frozen=True)
class Eligibility:
    cutoff: int
    direction: str = ">="  # one of DIRECTIONS
    configurable: bool = True

    def is_met(self, total: int, cutoff: int | None = None) -> bool:
        """Return whether a total meets the cut-off (the file's, or an override)."""
        threshold = self.cutoff if cutoff is None else cutoff
        if self.direction == ">=":
            return total >= threshold
        return total <= threshold


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring one set of answers.

    ``total`` is on the scale the bands and cut-off use: the scaled total for a
    scaled instrument, otherwise the raw total. It is None whenever more answers
    are missing than the instrument's rule allows, and then so are ``band`` and
    ``eligible``.
    """

    instrument_id: str
    total: int | None
    raw_total: int | None
    scaled_total: int | None
    band: Band | None
    eligible: bool | None
    cutoff: int | None
    missing: list[str]
    complete: bool
    prorated: bool
    risk_items: list[str]
    risk_unanswered: list[str]
    # Risk answers that make the referral urgent (a subset of risk_items).
    urgent_items: list[str] = field(default_factory=list)
    # A positive pre-screen (PHQ-2 of 3 or more): the instrument to give next.
    next_instrument: str | None = None


@dataclass(frozen=True)
class Instrument:
    id: str
    name: str
    version: str
    recall: str
    items: tuple[Item, ...]
    scoring: Scoring
    bands: tuple[Band, ...] = ()
    eligibility: Eligibility | None = None
    description: str | None = None
    source: str | None = field(default=None, compare=False)
    # A pre-screen: reaching the cut-off means "give this instrument next", never "eligible".
    leads_to: str | None = None

    @cached_property
    def _items_by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self.items}

    def item(self, item_id: str) -> Item:
        """Return the item with this id (KeyError if there is none)."""
        return self._items_by_id[item_id]

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    @property
    def risk_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.risk is not None)

    @property
    def min_total(self) -> int | None:
        """Return the lowest possible total, or None when the form is not scored."""
        totals = _total_range(self.items, self.scoring)
        return None if totals is None else totals[0]

    @property
    def max_total(self) -> int | None:
        """Return the highest possible total, or None when the form is not scored."""
        totals = _total_range(self.items, self.scoring)
        return None if totals is None else totals[1]

    def band_for(self, total: int | None) -> Band | None:
        """Return the severity band holding a total, or None."""
        if total is None:
            return None
        for band in self.bands:
            if band.contains(total):
                return band
        return None

    def validate_answers(self, raw: Mapping[str, str | int | None]) -> dict[str, int | None]:
        """Parse submitted form strings into answers for every item.

        An empty string (or an absent item) is a missing answer. Raise
        InvalidAnswer for an unknown item id, a value that is not a whole
        number, or a number that is not one of the item's options.
        """
        for item_id in raw:
            if item_id not in self._items_by_id:
                raise InvalidAnswer(item_id, f"no such question in {self.id}")
        answers: dict[str, int | None] = {}
        for item in self.items:
            value = raw.get(item.id)
            text = "" if value is None else str(value).strip()
            if not text:
                answers[item.id] = None
                continue
            try:
                number = int(text)
            except ValueError:
                raise InvalidAnswer(item.id, f"{text!r} is not a number") from None
            if item.option(number) is None:
                raise InvalidAnswer(item.id, _not_an_option(item, number))
            answers[item.id] = number
        return answers

    def score(self, answers: Mapping[str, int | None], cutoff: int | None = None) -> ScoreResult:
        """Score answers (item id -> option value, None or absent when missing).

        ``cutoff`` overrides the file's eligibility cut-off (a programme setting).
        Raise InvalidAnswer for an unknown item or a value that is not an option,
        and InvalidCutoff for an override the instrument does not allow.
        """
        checked = self._check_answers(answers)
        threshold = self._threshold(cutoff)
        missing = [item.id for item in self.items if checked[item.id] is None]
        # Safety first, and independent of everything else that may be missing.
        risk_items = [
            item.id
            for item in self.items
            if item.risk is not None and (answer := checked[item.id]) is not None and item.risk.matches(answer)
        ]
        risk_unanswered = [item.id for item in self.risk_items if checked[item.id] is None]
        urgent_items = [item_id for item_id in risk_items if self.item(item_id).is_urgent(checked[item_id])]

        raw_total, prorated = self._raw_total(checked)
        scaled_total = None
        total = raw_total
        if raw_total is not None and self.scoring.method == "scaled":
            scaled_total = _scale(raw_total, self.scoring)
            total = scaled_total
        eligible = None
        next_instrument = None
        if total is not None and threshold is not None and self.eligibility is not None:
            eligible = self.eligibility.is_met(total, threshold)
        if self.leads_to is not None:
            next_instrument = self.leads_to if eligible else None
            eligible = None  # a pre-screen decides what to ask next, not who joins a group
        if risk_unanswered:
            eligible = None  # nobody is placed in a group while their risk is unknown
        return ScoreResult(
            instrument_id=self.id,
            total=total,
            raw_total=raw_total,
            scaled_total=scaled_total,
            band=self.band_for(total),
            eligible=eligible,
            cutoff=threshold,
            missing=missing,
            complete=not missing,
            prorated=prorated,
            risk_items=risk_items,
            risk_unanswered=risk_unanswered,
            urgent_items=urgent_items,
            next_instrument=next_instrument,
        )

    def _check_answers(self, answers: Mapping[str, int | None]) -> dict[str, int | None]:
        for item_id in answers:
            if item_id not in self._items_by_id:
                raise InvalidAnswer(item_id, f"no such question in {self.id}")
        checked: dict[str, int | None] = {}
        for item in self.items:
            value = answers.get(item.id)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise InvalidAnswer(item.id, f"{value!r} is not a whole number")
                if item.option(value) is None:
                    raise InvalidAnswer(item.id, _not_an_option(item, value))
            checked[item.id] = value
        return checked

    def _threshold(self, cutoff: int | None) -> int | None:
        if cutoff is None:
            return None if self.eligibility is None else self.eligibility.cutoff
        if self.eligibility is None:
            raise InvalidCutoff(f"{self.id} has no eligibility cut-off to override")
        if not self.eligibility.configurable:
            raise InvalidCutoff(f"the cut-off of {self.id} is fixed at {self.eligibility.cutoff}")
        if isinstance(cutoff, bool) or not isinstance(cutoff, int):
            raise InvalidCutoff(f"cut-off {cutoff!r} is not a whole number")
        low, high = self.min_total, self.max_total
        assert low is not None and high is not None  # eligibility implies scoring
        if not low <= cutoff <= high:
            raise InvalidCutoff(f"cut-off {cutoff} is outside {self.id}'s range {low}-{high}")
        return cutoff

    def _raw_total(self, checked: Mapping[str, int | None]) -> tuple[int | None, bool]:
        if self.scoring.method == "none":
            return None, False
        scored = self.scored_items
        given = [answer for item in scored if (answer := checked[item.id]) is not None]
        missing_count = len(scored) - len(given)
        if missing_count == 0:
            return sum(given), False
        if missing_count > self.scoring.prorate_max_missing:
            return None, False
        if any(item.risk is not None and checked[item.id] is None for item in scored):
            return None, False  # a risk question is never filled in from the others
        # Fill the gaps with the mean of the answers given (the usual proration).
        mean = Fraction(sum(given), len(given))
        return _round_half_up(mean * len(scored)), True


def _scale(raw: int, scoring: Scoring) -> int:
    if scoring.method != "scaled" or scoring.multiplier is None:
        return raw
    return _round_half_up(raw * Fraction(str(scoring.multiplier)))


def _total_range(items: tuple[Item, ...], scoring: Scoring) -> tuple[int, int] | None:
    """Return the lowest and highest total, or None when the form is not scored."""
    if scoring.method == "none":
        return None
    scored = [item for item in items if item.scored]
    low = sum(min(item.values) for item in scored)
    high = sum(max(item.values) for item in scored)
    return _scale(low, scoring), _scale(high, scoring)


def _round_half_up(value: Fraction) -> int:
    return math.floor(value + Fraction(1, 2))


def _not_an_option(item: Item, value: int) -> str:
    allowed = ", ".join(str(v) for v in item.values)
    return f"{value} is not one of the answers ({allowed})"


# Loading -------------------------------------------------------------------


def load_instrument(path: str | Path) -> Instrument:
    """Load one instrument file; raise the first FormFileError found in it."""
    return valid(_Checker.load(Path(path)))


def load_instruments(directory: str | Path) -> dict[str, Instrument]:
    """Load every instrument in a directory, keyed by id.

    Raise the first FormFileError of any file: a programme never runs with
    some of its instruments silently left out.
    """
    return valid(_read_directory(Path(directory)))


def check_instruments(directory: str | Path) -> list[FormFileError]:
    """Return every error in every instrument file of a directory (empty if none)."""
    return _read_directory(Path(directory))[1]


def _read_directory(directory: Path) -> tuple[dict[str, Instrument], list[FormFileError]]:
    found, errors = read_form_directory(directory, _Checker.load, required=True)
    for instrument in found.values():
        if instrument.leads_to is not None and instrument.leads_to not in found:
            errors.append(
                FormFileError(
                    str(instrument.source), None, "leads_to", f"no instrument '{instrument.leads_to}' in {directory}"
                )
            )
    return found, errors


class _Checker(FormChecker[Instrument]):
    """Turn parsed YAML into an Instrument, collecting every error on the way."""

    not_a_mapping = "must be a YAML mapping with id, name, items, scoring..."

    # The instrument, section by section.

    def form(self, data: LineMap) -> Instrument | None:
        self.keys(data, _TOP_KEYS)
        instrument_id = self.identifier(data, _INSTRUMENT_ID, first="a letter")
        name = self.text(data, "name")
        recall = self.text(data, "recall")
        description = self.text(data, "description", required=False)
        version = self.version(data)
        shared = None
        if "options" in data:
            shared = self.options(data["options"], data, None)
        errors_before_items = len(self.errors)
        items = self.items(data, shared, shared_given="options" in data)
        scoring = self.scoring(data, items)
        items_ok = len(self.errors) == errors_before_items
        bands = self.bands(data)
        eligibility = self.eligibility(data)
        # Bands and cut-off can only be checked against a known range of totals.
        if items_ok and scoring is not None:
            self.check_totals(data, _total_range(items, scoring), bands, eligibility)
        leads_to = self.leads_to(data, eligibility)
        if instrument_id == "phq9" and items_ok:
            self.check_phq9_safety(data, items)
        if self.errors:
            return None
        assert instrument_id and name and recall and version and scoring and items
        return Instrument(
            id=instrument_id,
            name=name,
            version=version,
            recall=recall,
            items=items,
            scoring=scoring,
            bands=bands,
            eligibility=eligibility,
            description=description,
            source=self.file,
            leads_to=leads_to,
        )

    def leads_to(self, data: LineMap, eligibility: Eligibility | None) -> str | None:
        if "leads_to" not in data:
            return None
        value = data["leads_to"]
        if not isinstance(value, str) or not _INSTRUMENT_ID.match(value):
            self.error(data, "leads_to", f"must be the id of another instrument, not {value!r}")
            return None
        if eligibility is None:
            self.error(
                data, "leads_to", f"a pre-screen needs an eligibility cut-off (reaching it means: give '{value}' next)"
            )
            return None
        return value

    def check_phq9_safety(self, data: LineMap, items: tuple[Item, ...]) -> None:
        """Refuse a PHQ-9 whose question 9 does not alert on every answer above 0."""
        if len(items) < 9:
            self.error(data, "items", "the PHQ-9 needs its nine questions (question 9 asks about self-harm)")
            return
        ninth = items[8]
        values = ninth.values
        if ninth.risk is None or any(ninth.risk.matches(v) != (v > min(values)) for v in values):
            self.error(
                data,
                "items",
                'question 9 of the PHQ-9 must alert on every answer above the lowest: add risk: {when: ">= 1"}',
                ninth.id,
            )

    def version(self, data: LineMap) -> str | None:
        if "version" not in data:
            self.error(data, "version", "is missing")
            return None
        value = data["version"]
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
            self.error(data, "version", f"must be a number or text, not {value!r}")
            return None
        return str(value)

    def options(self, value: Any, parent: LineMap, item: str | None) -> tuple[Option, ...] | None:
        if not isinstance(value, list) or not value:
            self.error(parent, "options", "must be a list of {value, label} answers", item)
            return None
        options: list[Option] = []
        ok = True
        for entry in value:
            data = self.mapping(entry, "options", parent, item)
            if data is None:
                ok = False
                continue
            self.keys(data, _OPTION_KEYS, item)
            raw = data.get("value")
            if "value" in data and (isinstance(raw, bool) or not isinstance(raw, int)):
                self.error(data, "options", f"values must be integers, not {raw!r}", item)
                ok = False
                continue
            number = self.integer(data, "value", item)
            label = self.text(data, "label", item)
            if number is None or label is None:
                ok = False
                continue
            if any(option.value == number for option in options):
                self.error(data, "options", f"value {number} is listed twice", item)
                ok = False
                continue
            options.append(Option(number, label))
        return tuple(options) if ok else None

    def items(self, data: LineMap, shared: tuple[Option, ...] | None, shared_given: bool) -> tuple[Item, ...]:
        if "items" not in data:
            self.error(data, "items", "is missing")
            return ()
        value = data["items"]
        if not isinstance(value, list) or not value:
            self.error(data, "items", "must be a non-empty list of questions")
            return ()
        items: list[Item] = []
        seen: set[str] = set()
        for position, entry in enumerate(value, start=1):
            item_data = self.mapping(entry, "items", data, f"#{position}")
            if item_data is None:
                continue
            item_id = self.identifier(item_data, _ITEM_ID, f"#{position}", first="a letter or digit")
            label = item_id or f"#{position}"
            self.keys(item_data, _ITEM_KEYS, label)
            if item_id is not None and item_id in seen:
                self.error(item_data, "id", f"duplicate item id '{item_id}'", label)
                item_id = None
            if item_id is not None:
                seen.add(item_id)
            text = self.text(item_data, "text", label)
            if "options" in item_data:
                options = self.options(item_data["options"], item_data, label)
            elif shared_given:
                options = shared  # None if the shared options were wrong: reported once
            else:
                self.error(item_data, "options", "is missing (and the file has no shared options)", label)
                options = None
            scored = self.boolean(item_data, "scored", True, label)
            risk = self.risk(item_data, options, label)
            if item_id and text and options:
                items.append(Item(item_id, text, options, scored, risk))
        return tuple(items)

    def risk(self, data: LineMap, options: tuple[Option, ...] | None, item: str) -> RiskRule | None:
        if "risk" not in data:
            return None
        if not isinstance(data["risk"], LineMap) or "when" not in data["risk"]:
            # A risk question nobody is alerted about is worse than none: refuse it.
            self.error(data, "risk", "declares a risk item but no alert rule: add 'when', e.g. {when: \">= 1\"}", item)
            return None
        risk = data["risk"]
        self.keys(risk, _RISK_KEYS, item)
        rule = self.risk_rule(risk, "when", options, item)
        if rule is None or "urgent" not in risk:
            return rule
        urgent = self.risk_rule(risk, "urgent", options, item)
        if urgent is None:
            return None
        if options is not None and any(urgent.matches(o.value) and not rule.matches(o.value) for o in options):
            self.error(risk, "urgent", f"rule '{urgent}' matches answers that raise no alert ('{rule}')", item)
            return None
        return RiskRule(rule.op, rule.value, urgent)

    def risk_rule(self, risk: LineMap, key: str, options: tuple[Option, ...] | None, item: str) -> RiskRule | None:
        when = risk.get(key)
        match = _RISK_RULE.match(when) if isinstance(when, str) else None
        if match is None:
            self.error(risk, "risk", f"'{key}' must look like \">= 1\", not {when!r}", item)
            return None
        rule = RiskRule(match.group(1), int(match.group(2)))
        if options is None:
            return rule
        values = [option.value for option in options]
        if rule.value not in values:
            self.error(
                risk,
                "risk",
                f"rule '{rule}' refers to {rule.value}, which is not an answer value ({', '.join(map(str, values))})",
                item,
            )
            return None
        if not any(rule.matches(value) for value in values):
            self.error(risk, "risk", f"rule '{rule}' can never match any answer", item)
            return None
        return rule

    def scoring(self, data: LineMap, items: tuple[Item, ...]) -> Scoring | None:
        if "scoring" not in data:
            self.error(data, "scoring", "is missing")
            return None
        scoring = self.mapping(data["scoring"], "scoring", data)
        if scoring is None:
            return None
        self.keys(scoring, _SCORING_KEYS)
        method = scoring.get("method")
        if method not in SCORING_METHODS:
            self.error(scoring, "method", f"must be one of {', '.join(SCORING_METHODS)}, not {method!r}")
            return None
        multiplier = scoring.get("multiplier")
        if method == "scaled":
            if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or multiplier <= 0:
                self.error(scoring, "multiplier", "a scaled score needs a positive multiplier")
                return None
        elif "multiplier" in scoring:
            self.error(scoring, "multiplier", "is only used with method: scaled")
            return None
        prorate = self.missing_rule(scoring)
        if prorate is None:
            return None
        scored = [item for item in items if item.scored]
        if method != "none" and items and not scored:
            self.error(scoring, "method", "no item is scored (all have scored: false)")
            return None
        if prorate and scored:
            if prorate >= len(scored):
                self.error(
                    scoring, "missing", f"prorate_max_missing must be below the number of scored items ({len(scored)})"
                )
                return None
            # Filling a gap with the mean only makes sense when every item counts alike.
            if len({item.values for item in scored}) > 1:
                self.error(scoring, "missing", "prorating needs every scored item to have the same answer values")
                return None
        return Scoring(method, multiplier if method == "scaled" else None, prorate)

    def missing_rule(self, scoring: LineMap) -> int | None:
        value = scoring.get("missing", "none")
        if value == "none":
            return 0
        rule = self.mapping(value, "missing", scoring)
        if rule is None:
            return None
        self.keys(rule, _MISSING_KEYS)
        count = self.integer(rule, "prorate_max_missing")
        if count is not None and count < 0:
            self.error(rule, "prorate_max_missing", "must be 0 or more")
            return None
        return count

    def bands(self, data: LineMap) -> tuple[Band, ...]:
        value = data.get("bands", [])
        if not isinstance(value, list):
            self.error(data, "bands", "must be a list of {min, max, label, explanation}")
            return ()
        bands: list[Band] = []
        for entry in value:
            band = self.mapping(entry, "bands", data)
            if band is None:
                continue
            self.keys(band, _BAND_KEYS)
            low = self.integer(band, "min")
            high = self.integer(band, "max")
            label = self.text(band, "label")
            explanation = self.text(band, "explanation")
            if low is None or high is None or label is None or explanation is None:
                continue
            if low > high:
                self.error(band, "min", f"band '{label}' starts at {low}, after its end {high}")
                continue
            bands.append(Band(low, high, label, explanation))
        return tuple(sorted(bands, key=lambda band: band.min))

    def eligibility(self, data: LineMap) -> Eligibility | None:
        if "eligibility" not in data:
            return None
        rule = self.mapping(data["eligibility"], "eligibility", data)
        if rule is None:
            return None
        self.keys(rule, _ELIGIBILITY_KEYS)
        cutoff = self.integer(rule, "cutoff")
        direction = rule.get("direction", ">=")
        if direction not in DIRECTIONS:
            self.error(rule, "direction", f"must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
            return None
        configurable = self.boolean(rule, "configurable", True)
        if cutoff is None:
            return None
        return Eligibility(cutoff, direction, configurable)

    def check_totals(
        self, data: LineMap, totals: tuple[int, int] | None, bands: tuple[Band, ...], eligibility: Eligibility | None
    ) -> None:
        """Check bands and cut-off against the totals the scoring can produce."""
        if totals is None:
            if bands:
                self.error(data, "bands", "a form with scoring method 'none' cannot have bands")
            if eligibility is not None:
                self.error(data, "eligibility", "a form with scoring method 'none' has no total to cut")
            return
        low, high = totals
        if eligibility is not None:
            cutoff = eligibility.cutoff
            if not low <= cutoff <= high:
                self.error(data["eligibility"], "cutoff", f"{cutoff} is outside the possible totals {low}-{high}")
        if not bands:
            return
        if bands[0].min != low:
            self.error(data, "bands", f"the first band starts at {bands[0].min}; totals start at {low}")
        if bands[-1].max != high:
            self.error(data, "bands", f"the last band ends at {bands[-1].max}; totals go up to {high}")
        for before, after in itertools.pairwise(bands):
            if after.min > before.max + 1:
                self.error(
                    data,
                    "bands",
                    f"gap between band '{before.label}' (ends {before.max}) and '{after.label}' (starts {after.min})",
                )
            elif after.min <= before.max:
                self.error(
                    data,
                    "bands",
                    f"band '{before.label}' ({before.min}-{before.max}) overlaps "
                    f"'{after.label}' ({after.min}-{after.max})",
                )
