"""Export the aggregate indicators as a DHIS2 ``dataValueSets`` JSON document.

A ministry imports the file into its DHIS2 (Data Exchange > Import, or
``POST /api/dataValueSets``). A mapping file, written once by the programme,
says which of our indicators goes to which DHIS2 data element (and category
option combo), and which of our sites is which organisation unit. Plain Python,
no Flask; the structure and the mapping are documented in docs/reports.md, with
a sample in docs/dhis2-mapping.example.yaml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from .indicator_definitions import SPEC_BY_ID, Filters, Indicator, UnknownIndicator, split_id, value_of
from .indicators import Report
from .periods import Period

TOP_KEYS = ("dataSet", "attributeOptionCombo", "org_units", "data_elements")
ELEMENT_KEYS = ("dataElement", "categoryOptionCombo", "attributeOptionCombo", "value")
VALUE_FIELDS = ("value", "numerator", "denominator")
# A DHIS2 identifier: a UID (11 characters) or a code; either way one word without spaces.
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,50}$")
# Parts that an indicator's breakdown can have, so a mapping can name them before they occur.
PART_KEYS = {
    "referrals": re.compile(r"^(risk_answer|risk_observed|other|exclusion_[a-z0-9_]+)$"),
    "attendance_rate": re.compile(r"^[1-9]\d{0,2}$"),
    "dropout_rate": re.compile(r"^\d{1,3}$"),
}
DHIS2_PERIOD = re.compile(r"^(\d{4}|\d{4}Q[1-4]|\d{4}(0[1-9]|1[0-2])|\d{4}W([1-9]|[1-4]\d|5[0-3]))$")


class MappingError(ValueError):
    """The mapping file cannot be used; the message names the file and the key at fault."""


class DHIS2Error(ValueError):
    """The data value set cannot be made (a period DHIS2 does not know, a site without an org unit)."""


@dataclass(frozen=True)
class ElementMap:
    indicator: str  # an indicator id, or indicator.part
    data_element: str
    category_option_combo: str | None = None
    attribute_option_combo: str | None = None
    value: str = "value"  # which figure: value, numerator or denominator


@dataclass(frozen=True)
class Mapping:
    org_units: dict[str, str]  # site code -> org unit
    elements: tuple[ElementMap, ...]
    data_set: str | None = None
    attribute_option_combo: str | None = None


def _check_id(file: str, key: str, value: Any) -> str:
    if not isinstance(value, str | int) or not _ID.match(str(value)):
        raise MappingError(f"{file}: {key}: must be a DHIS2 id or code (letters, digits, no spaces), not {value!r}")
    return str(value)


def _check_indicator(file: str, key: str) -> None:
    indicator_id, part = split_id(key)
    if indicator_id not in SPEC_BY_ID:
        raise MappingError(
            f"{file}: data_elements.{key}: unknown indicator {indicator_id!r} (known: {', '.join(SPEC_BY_ID)})"
        )
    if part is not None:
        pattern = PART_KEYS.get(indicator_id)
        if pattern is None:
            raise MappingError(f"{file}: data_elements.{key}: {indicator_id} has no breakdown")
        if not pattern.match(part):
            raise MappingError(f"{file}: data_elements.{key}: {indicator_id} has no part {part!r}")


def _element(file: str, key: str, where: str, entry: Any) -> ElementMap:
    if isinstance(entry, str):
        entry = {"dataElement": entry}
    if not isinstance(entry, dict):
        raise MappingError(f"{file}: {where}: must be a data element id or a mapping with dataElement")
    extra = [str(k) for k in entry if k not in ELEMENT_KEYS]
    if extra:
        raise MappingError(f"{file}: {where}.{extra[0]}: unknown key (keys: {', '.join(ELEMENT_KEYS)})")
    if "dataElement" not in entry:
        raise MappingError(f"{file}: {where}.dataElement: missing")
    value = entry.get("value", "value")
    if value not in VALUE_FIELDS:
        raise MappingError(f"{file}: {where}.value: must be one of {', '.join(VALUE_FIELDS)}, not {value!r}")
    combos = {
        name: _check_id(file, f"{where}.{name}", entry[name]) if name in entry else None
        for name in ("categoryOptionCombo", "attributeOptionCombo")
    }
    return ElementMap(
        key,
        _check_id(file, f"{where}.dataElement", entry["dataElement"]),
        combos["categoryOptionCombo"],
        combos["attributeOptionCombo"],
        value,
    )


def parse_mapping(data: Any, file: str = "mapping") -> Mapping:
    """Check a mapping read from YAML or JSON; MappingError names the key at fault."""
    if not isinstance(data, dict):
        raise MappingError(f"{file}: must be a mapping with the keys org_units and data_elements")
    unknown = [str(k) for k in data if k not in TOP_KEYS]
    if unknown:
        raise MappingError(f"{file}: {unknown[0]}: unknown key (keys: {', '.join(TOP_KEYS)})")
    for key in ("org_units", "data_elements"):
        if key not in data:
            raise MappingError(f"{file}: {key}: missing")
        if not isinstance(data[key], dict) or not data[key]:
            raise MappingError(f"{file}: {key}: must be a non-empty mapping")
    org_units = {}
    for site, unit in data["org_units"].items():
        org_units[str(site).upper()] = _check_id(file, f"org_units.{site}", unit)
    elements = []
    for key, entries in data["data_elements"].items():
        key = str(key)
        _check_indicator(file, key)
        if not isinstance(entries, list):
            entries = [entries]
        elif not entries:
            raise MappingError(f"{file}: data_elements.{key}: the list is empty")
        for n, entry in enumerate(entries):
            elements.append(_element(file, key, f"data_elements.{key}" + (f"[{n}]" if len(entries) > 1 else ""), entry))
    return Mapping(
        org_units,
        tuple(elements),
        _check_id(file, "dataSet", data["dataSet"]) if data.get("dataSet") is not None else None,
        _check_id(file, "attributeOptionCombo", data["attributeOptionCombo"])
        if data.get("attributeOptionCombo") is not None
        else None,
    )


def load_mapping(path: Path | str) -> Mapping:
    """Read a mapping file (YAML, or JSON which YAML also reads); MappingError on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise MappingError(f"{where}: not valid YAML or JSON: {getattr(exc, 'problem', exc)}") from exc
    return parse_mapping(data, str(path))


def format_value(value: float | None, kind: str, field: str) -> str | None:
    """Return a figure as DHIS2 wants it: text; counts whole, shares in percent (0-100), means to 1 decimal."""
    if value is None:
        return None
    if field != "value" or kind == "count":
        return str(int(value))
    number = round(value * 100 if kind == "share" else value, 1)
    return f"{number:.1f}".rstrip("0").rstrip(".") if number != int(number) else str(int(number))


def check_period(period: Period) -> None:
    if period.dhis2 is None or not DHIS2_PERIOD.match(period.dhis2):
        raise DHIS2Error(f"DHIS2 needs a period id such as 2026, 2026Q4, 202611 or 2026W47, not {period}.")


def data_value_set(
    mapping: Mapping,
    period: Period,
    indicators_by_site: dict[str, list[Indicator]],
    *,
    complete_date: date | None = None,
) -> dict:
    """Return the dataValueSets document for ``period``: one data value per mapped figure and site.

    ``indicators_by_site`` maps a site code to its computed indicators. A figure
    with no value (a mean over nobody) is left out: DHIS2 refuses an empty value.
    """
    check_period(period)
    missing = [code for code in indicators_by_site if code not in mapping.org_units]
    if missing:
        raise DHIS2Error(f"The mapping has no org unit for site(s) {', '.join(missing)} (add them under org_units).")
    values = []
    for code, indicators in indicators_by_site.items():
        for element in mapping.elements:
            indicator_id, _ = split_id(element.indicator)
            try:
                figure = value_of(indicators, element.indicator, element.value)
            except UnknownIndicator:  # a part with nothing this period and no zero meaning
                figure = None
            text = format_value(figure, SPEC_BY_ID[indicator_id].kind, element.value)
            if text is None:
                continue
            value = {"dataElement": element.data_element, "period": period.dhis2, "orgUnit": mapping.org_units[code]}
            if element.category_option_combo:
                value["categoryOptionCombo"] = element.category_option_combo
            attribute = element.attribute_option_combo or mapping.attribute_option_combo
            if attribute:
                value["attributeOptionCombo"] = attribute
            value["value"] = text
            values.append(value)
    document: dict[str, Any] = {}
    if mapping.data_set:
        document["dataSet"] = mapping.data_set
    if complete_date:
        document["completeDate"] = complete_date.isoformat()
    document["period"] = period.dhis2
    if len(indicators_by_site) == 1:
        document["orgUnit"] = mapping.org_units[next(iter(indicators_by_site))]
    document["dataValues"] = values
    return document


def validate(document: Any) -> list[str]:
    """Check a document against the dataValueSets structure; return the problems (none: valid)."""
    problems = []
    if not isinstance(document, dict):
        return ["the document must be a JSON object"]
    allowed = {"dataSet", "completeDate", "period", "orgUnit", "attributeOptionCombo", "dataValues"}
    problems += [f"unknown top-level key {k!r}" for k in document if k not in allowed]
    for key in ("dataSet", "period", "orgUnit", "attributeOptionCombo"):
        if key in document and not (isinstance(document[key], str) and document[key]):
            problems.append(f"{key} must be a non-empty string")
    if "completeDate" in document and not (
        isinstance(document["completeDate"], str) and re.match(r"^\d{4}-\d{2}-\d{2}$", document["completeDate"])
    ):
        problems.append("completeDate must be a date YYYY-MM-DD")
    values = document.get("dataValues")
    if not isinstance(values, list):
        return [*problems, "dataValues must be a list"]
    seen = set()
    for n, value in enumerate(values):
        if not isinstance(value, dict):
            problems.append(f"dataValues[{n}] must be an object")
            continue
        for key in ("dataElement", "period", "orgUnit", "value"):
            if not isinstance(value.get(key), str) or not value[key]:
                problems.append(f"dataValues[{n}].{key} must be a non-empty string")
        for key in ("categoryOptionCombo", "attributeOptionCombo"):
            if key in value and not (isinstance(value[key], str) and value[key]):
                problems.append(f"dataValues[{n}].{key} must be a non-empty string")
        extra = set(value) - {
            "dataElement",
            "period",
            "orgUnit",
            "categoryOptionCombo",
            "attributeOptionCombo",
            "value",
            "comment",
            "followup",
        }
        problems += [f"dataValues[{n}]: unknown key {k!r}" for k in sorted(extra)]
        if isinstance(value.get("period"), str) and not DHIS2_PERIOD.match(value["period"]):
            problems.append(f"dataValues[{n}].period {value['period']!r} is not a DHIS2 period")
        combo = tuple(
            value.get(k) for k in ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")
        )
        if combo in seen:
            problems.append(f"dataValues[{n}] repeats a data element, period, org unit and combos already given")
        seen.add(combo)
    return problems


def export(
    db,
    mapping: Mapping,
    period: Period,
    protocols: dict,
    *,
    today: date,
    grace_days: int = 14,
    site_codes: list[str] | None = None,
    complete_date: date | None = None,
) -> dict:
    """Compute the indicators of each site (all, or ``site_codes``) for ``period`` and map them to DHIS2.

    Every site counted needs an org unit in the mapping, and every org unit a
    site: a site left out of a ministry's report must be a choice (``site_codes``).
    """
    check_period(period)
    sites = {r["code"]: r["id"] for r in db.query("select id, code from sites order by code")}
    unknown = [code for code in mapping.org_units if code not in sites]
    if unknown:
        raise DHIS2Error(f"org_units.{unknown[0]}: no site has this code (sites: {', '.join(sites) or 'none'}).")
    chosen = [c.upper() for c in site_codes] if site_codes else list(sites)
    for code in chosen:
        if code not in sites:
            raise DHIS2Error(f"Unknown site {code!r} (sites: {', '.join(sites)}).")
    by_site = {}
    for code in chosen:
        filters = Filters(site_ids=(sites[code],), period=period)
        by_site[code] = Report(db, filters, protocols, today=today, grace_days=grace_days).indicators
    return data_value_set(mapping, period, by_site, complete_date=complete_date)
