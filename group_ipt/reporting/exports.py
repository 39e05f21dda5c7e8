"""CSV exports: the main record tables and the indicators, safe to open in Excel.

Plain Python (no Flask). Every file is UTF-8 with a byte order mark (so Excel
reads names in any script), written with the csv module, and formula-safe: a
text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
gets a leading single quote, so a spreadsheet shows it instead of running it.
Numbers are written as numbers (a change of -4 stays a number).

Privacy (setting ``EXPORT_NAMES``, off by default): participants' names become
their programme codes, phone numbers and a guardian's name are left out (the
same fields sync keeps on the laptop, see ``tracking.PRIVATE_FIELDS``), and
free-text notes are emptied, since people's names end up in notes.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import sqlite_utils

from ..base import oscompat
from ..store.db import marks
from .indicator_definitions import COLUMNS, PERSONAL_COLUMNS, SPEC_BY_ID, Indicator
from .indicators import Report

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# The record tables an analyst gets, in an order that reads well (see docs/data.md).
TABLES = (
    "sites",
    "users",
    "participants",
    "participant_status_history",
    "consents",
    "duplicate_flags",
    "screenings",
    "referrals",
    "referral_events",
    "referral_followups",
    "site_holidays",
    "cycles",
    "cycle_facilitators",
    "sessions",
    "session_changes",
    "members",
    "attendance",
    "symptom_checks",
    "fidelity_checklists",
    "absence_followups",
)
# Never exported, whatever the setting.
SECRET_COLUMNS = {"users": ("password_hash",), "participants": ("name_key",)}
# Without EXPORT_NAMES: what replaces each personal field (a callable gets the whole row).
PRIVATE_FIELDS: dict[str, dict[str, Any]] = {
    "participants": {"name": lambda r: r["code"], "phone": None},
    "consents": {"given_by": lambda r: r["given_by"] if r["given_by"] in (None, "participant") else "guardian"},
    # Not in TABLES (the clinical record stays in the app), listed so the rule matches sync's.
    "inventory_people": {"name": ""},
}
# Without EXPORT_NAMES: free text, where people's names end up, is emptied.
FREE_TEXT = {
    "participant_status_history": ("reason",),
    "screenings": ("note",),
    "referrals": ("note",),
    "referral_events": ("note",),
    "referral_followups": ("note",),
    "cycles": ("closed_reason",),
    "sessions": ("note",),
    "session_changes": ("reason",),
    "members": ("goals", "end_reason", "override_reason"),
    "absence_followups": ("note",),
}


class ExportError(Exception):
    """An export that cannot be written; the message says what to fix."""


# --- cells and files -----------------------------------------------------------------------


def safe_cell(value: Any) -> Any:
    """Return a value ready for a CSV cell: text that a spreadsheet would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(out: BinaryIO, columns: Iterable[str], rows: Iterable[dict], header: Iterable[str] | None = None) -> int:
    """Write ``rows`` (dicts) as CSV with a BOM to the binary file ``out``; return the number of rows."""
    columns = list(columns)
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([safe_cell(h) for h in (header or columns)])
        count = 0
        for r in rows:
            writer.writerow([safe_cell(r.get(c)) for c in columns])
            count += 1
        text.flush()
    finally:
        text.detach()  # leave ``out`` open for the caller
    return count


def csv_bytes(columns: Iterable[str], rows: Iterable[dict], header: Iterable[str] | None = None) -> bytes:
    out = io.BytesIO()
    write_csv(out, columns, rows, header)
    return out.getvalue()


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """``oscompat.atomic_file``, telling a folder that cannot be written to as an ExportError."""
    path = Path(path)
    with ExitStack() as stack:
        try:
            f = stack.enter_context(oscompat.atomic_file(path))
        except OSError as exc:
            raise ExportError(f"Cannot write to {path.parent}: {exc.strerror or exc}") from exc
        yield f


def write_folder(directory: Path, files: dict[str, Callable[[BinaryIO], Any]]) -> list[Path]:
    """Write each named file with its writer into ``directory``, all or nothing.

    The files are written into a hidden folder inside ``directory`` and moved
    into place once every one of them was written; on any error none is.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".group-ipt-export-", dir=directory))
    except OSError as exc:
        raise ExportError(f"Cannot write to {directory}: {exc.strerror or exc}") from exc
    try:
        for name, writer in files.items():
            with (staging / name).open("wb") as f:
                writer(f)
        written = []
        for name in files:
            os.replace(staging / name, directory / name)
            written.append(directory / name)
        return written
    except OSError as exc:
        raise ExportError(f"Cannot write to {directory}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- tables ----------------------------------------------------------------------------------


def exportable_tables(db: sqlite_utils.Database) -> list[str]:
    existing = set(db.table_names())
    return [t for t in TABLES if t in existing]


def table_rows(
    db: sqlite_utils.Database, table: str, site_ids: list[str], *, names: bool
) -> tuple[list[str], Iterator[dict]]:
    """Return the columns and rows of a record table, limited to ``site_ids``; ``names`` off hides people."""
    if table not in TABLES or table not in db.table_names():
        raise ExportError(f"No table {table!r} to export (tables: {', '.join(exportable_tables(db))}).")
    columns = [c for c in db[table].columns_dict if c not in SECRET_COLUMNS.get(table, ())]
    if table == "sites":
        where = f"id in ({marks(site_ids)})"
    elif table == "users":
        where = f"id in (select user_id from user_sites where site_id in ({marks(site_ids)})) or role = 'admin'"
    else:
        where = f"site_id in ({marks(site_ids)})"
    order = "created_at, id" if "created_at" in columns else "rowid"
    query = db.query(f"select {', '.join(columns)} from [{table}] where {where} order by {order}", list(site_ids))
    if names:
        return columns, query
    private = PRIVATE_FIELDS.get(table, {})
    free_text = FREE_TEXT.get(table, ())

    def hidden() -> Iterator[dict]:
        for r in query:
            changed = {k: (v(r) if callable(v) else v) for k, v in private.items() if k in r}
            changed.update({k: "" for k in free_text if r.get(k)})
            yield {**r, **changed}

    return columns, hidden()


def write_table(out: BinaryIO, db: sqlite_utils.Database, table: str, site_ids: list[str], *, names: bool) -> int:
    columns, found = table_rows(db, table, site_ids, names=names)
    return write_csv(out, columns, found)


# --- indicators ------------------------------------------------------------------------------

INDICATOR_COLUMNS = (
    "indicator",
    "part",
    "section",
    "label",
    "definition",
    "kind",
    "value",
    "numerator",
    "denominator",
    "period",
    "sites",
    "filters",
)


def _round(value: float | None, kind: str) -> float | None:
    if value is None or kind == "count":
        return value
    return round(value, 4 if kind == "share" else 2)


def indicator_rows(
    indicators: list[Indicator],
    *,
    period: str,
    sites: str,
    filters: str = "",
    translate: Callable[..., str] = lambda msgid, **params: msgid % params if params else msgid,
) -> list[dict]:
    """Return one row per indicator and per part of its breakdown (shares as 0-1, means to 2 decimals)."""
    found = []
    common = {"period": period, "sites": sites, "filters": filters}
    for i in indicators:
        found.append(
            {
                "indicator": i.id,
                "part": "",
                "section": translate(i.section),
                "label": translate(i.label),
                "definition": translate(i.definition),
                "kind": i.kind,
                "value": _round(i.value, i.kind),
                "numerator": i.numerator,
                "denominator": i.denominator,
                **common,
            }
        )
        for p in i.parts:
            found.append(
                {
                    "indicator": f"{i.id}.{p.key}",
                    "part": translate(p.label, **p.params),
                    "section": translate(i.section),
                    "label": translate(i.label),
                    "definition": "",
                    "kind": i.kind,
                    "value": _round(p.value, i.kind),
                    "numerator": p.numerator,
                    "denominator": p.denominator,
                    **common,
                }
            )
    return found


def record_columns(indicator_id: str, *, names: bool) -> list[str]:
    columns = COLUMNS[SPEC_BY_ID[indicator_id].family]
    return [c for c in columns if names or c not in PERSONAL_COLUMNS]


def write_records(
    out: BinaryIO,
    report: Report,
    indicator_id: str,
    *,
    names: bool,
    part: str | None = None,
    header: list[str] | None = None,
) -> int:
    """Write the records behind one indicator; without ``names`` the name column is left out."""
    return write_csv(out, record_columns(indicator_id, names=names), report.rows_of(indicator_id, part), header)


def export_folder(
    db: sqlite_utils.Database,
    directory: Path,
    report: Report,
    site_ids: list[str],
    *,
    names: bool,
    period: str,
    sites: str,
) -> list[Path]:
    """Write every table, the indicators and the records behind each indicator as CSV files into ``directory``.

    Files: ``<table>.csv``, ``indicators.csv``, ``indicator-<id>.csv``. All or nothing.
    """
    files: dict[str, Callable[[BinaryIO], Any]] = {}
    for table in exportable_tables(db):
        files[f"{table}.csv"] = partial(write_table, db=db, table=table, site_ids=site_ids, names=names)
    rows = indicator_rows(report.indicators, period=period, sites=sites)
    files["indicators.csv"] = partial(write_csv, columns=INDICATOR_COLUMNS, rows=rows)
    for indicator_id in SPEC_BY_ID:
        files[f"indicator-{indicator_id}.csv"] = partial(
            write_records, report=report, indicator_id=indicator_id, names=names
        )
    return write_folder(directory, files)
