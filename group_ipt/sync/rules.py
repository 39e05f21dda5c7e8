"""The record rules every synced record obeys at the centre, whichever laptop or file brings it.

The web, the API and the CLI write through the domain functions (participants.register,
screening.save_screening, referrals.set_status...), which check what a person typed. A
laptop then sends the rows those functions wrote. This module holds the checks the centre
makes on every received row before it is stored, so that a laptop with old, buggy or
hostile software cannot write past the rules the pages enforce:

- **shape**: known columns only, required columns present, each value of its column's type,
  text no longer than the form allows (``LIMITS``; one source for forms and sync);
- **site scope**: a row refers only to rows of its own site (a member to a cycle of the
  same site, an attendance mark to a session of the same site...);
- **references**: every row it refers to exists at the centre or arrives in the same batch;
  if not, the row waits in quarantine and goes in when that row arrives (``waiting_for``);
- **invariants**: a screening with a risk answer arrives with its safety referral; a
  referral is never deleted, and is closed only as the app closes it; a row still referred to is
  not deleted.

Each refusal is a ``Problem``: a plain-words message (an English msgid marked ``N_``, so
the quarantine page shows it in the coordinator's language) with its values.

The natural keys (``natural_keys``) are the table's unique indexes besides ``id``: two
rows of one key are one thing (attendance of a member at a session) and are merged by the
engine, or a code made twice offline (a cycle's or participant's code), renamed.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..base import fields
from ..base.errors import N_, DomainError
from ..core import referrals
from ..store import db as db_module
from ..store import tracking
from ..store.db import row

# Longest text a column holds: one source (group_ipt/base/fields.py) for the domain's checks, the
# API's schema and sync ingest.
LIMITS = fields.LIMITS
TEXT_LIMIT, JSON_LIMIT, ID_LIMIT = fields.TEXT_LIMIT, fields.JSON_LIMIT, fields.ID_LIMIT

# Statuses of a referral, in the order it moves through them.
REFERRAL_CLOSED = "closed"


# What a coordinator calls the records of each table, for the reasons shown on /sync/.
TABLE_LABELS = {
    "participants": N_("participant"),
    "participant_status_history": N_("status change"),
    "consents": N_("consent"),
    "duplicate_flags": N_("possible duplicate"),
    "screenings": N_("screening"),
    "referrals": N_("referral"),
    "referral_events": N_("referral step"),
    "referral_followups": N_("referral follow-up"),
    "site_holidays": N_("holiday"),
    "cycles": N_("cycle"),
    "cycle_facilitators": N_("cycle facilitator"),
    "sessions": N_("session"),
    "session_changes": N_("session change"),
    "members": N_("member"),
    "attendance": N_("attendance mark"),
    "symptom_checks": N_("symptom check"),
    "fidelity_checklists": N_("fidelity checklist"),
    "absence_followups": N_("absence follow-up"),
    "users": N_("user"),
}
_LABELLED = ("table", "parent", "child")


@dataclass(frozen=True)
class Problem:
    """Why a received record was not stored; ``waiting_for`` is (table, id) of the row it needs."""

    message: str
    params: dict = field(default_factory=dict)
    waiting_for: tuple[str, str] | None = None

    def __str__(self) -> str:
        return self.translated(lambda message, **params: message % params if params else message)

    def translated(self, gettext) -> str:
        """The reason in words: tables named as a coordinator calls their records."""
        params = {
            k: gettext(TABLE_LABELS[v]) if k in _LABELLED and v in TABLE_LABELS else v for k, v in self.params.items()
        }
        if "kind" in params:
            params["kind"] = gettext(params["kind"])
        return gettext(self.message, **params)

    def as_json(self) -> str:
        return json.dumps({"message": self.message, "params": self.params}, ensure_ascii=False)


UNKNOWN_TABLE = N_(
    "This is a kind of record (%(table)s) the central server does not know: update the central "
    "server's software, then press Try again."
)
UNKNOWN_COLUMNS = N_(
    "This %(table)s record has fields the central server does not know (%(fields)s): update the "
    "central server's software, then press Try again."
)
MISSING_FIELD = N_(
    "The %(field)s of this %(table)s record is empty, but it is required. Correct the record on "
    "the laptop that made it and sync again."
)
WRONG_TYPE = N_(
    "The %(field)s of this %(table)s record should be %(kind)s. The laptop's software may be "
    "damaged: tell technical support."
)
TOO_LONG = N_(
    "The %(field)s of this %(table)s record is longer than %(limit)d characters, more than the form "
    "allows. Shorten it on the laptop that made it and sync again."
)
WRONG_SITE = N_(
    "This %(table)s record belongs to another site than the laptop that sent it: a laptop writes "
    "only its own site's records."
)
OTHER_SITE_PARENT = N_(
    "This %(table)s record refers to a %(parent)s record of another site: a laptop writes only its own site's records."
)
MISSING_PARENT = N_(
    "This %(table)s record refers to a %(parent)s record the central server does not have. It "
    "goes in by itself when that record arrives: sync the laptop that made it."
)
RISK_WITHOUT_REFERRAL = N_(
    "This screening shows a risk but arrived without its safety referral. It goes in by "
    "itself when the referral arrives: sync the laptop that made it now, and make sure "
    "the person is followed up in person meanwhile."
)
REFERRAL_DELETED = N_("A laptop tried to delete a referral. Referrals are never deleted: the referral is kept.")
REFERRAL_CLOSED_INCOMPLETE = N_(
    "This referral was closed without what closing needs: an outcome (with a note for "
    "'other') and at least one follow-up contact recorded. Close it again in the app."
)
STILL_REFERRED_TO = N_(
    "This %(table)s record cannot be deleted: %(child)s records still refer to it. Delete "
    "those first on the laptop, then sync again."
)
ACTIVE_ELSEWHERE = N_(
    "This participant is already an active member of another cycle. Withdraw or transfer them "
    "from one of the two cycles in the app, then press Try again."
)
KEY_TAKEN = N_(
    "Another %(table)s record already has the same %(fields)s. Correct one of the two in the app, then press Try again."
)
NOT_ALLOWED = N_(
    "A value of this %(table)s record is not one the app allows (%(rule)s). The laptop's software may "
    "be damaged: tell technical support."
)
NOT_STORED = N_("The central server could not store this record (%(error)s). Tell technical support.")
WAITING_WITH_PARENT = N_(
    "This record waits for the %(parent)s record it belongs to, which is in quarantine. It goes in with it."
)

_KINDS = {"integer": N_("a whole number"), "real": N_("a number"), "text": N_("text")}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # integer, real, text, or '' (any)
    required: bool
    limit: int | None


@dataclass(frozen=True)
class Reference:
    column: str
    parent: str  # the table referred to


@dataclass
class Table:
    name: str
    columns: dict[str, Column]
    references: list[Reference]
    keys: list[tuple[str, ...]]  # unique keys besides id (whole-table unique indexes)
    children: list[tuple[str, str]] = field(default_factory=list)  # (child table, column) referring here
    required: frozenset[str] = frozenset()  # columns that must hold a value

    def __post_init__(self) -> None:
        self.required = frozenset(c.name for c in self.columns.values() if c.required)


def _kind(declared: str) -> str:
    declared = declared.lower()
    if "int" in declared:
        return "integer"
    if any(k in declared for k in ("real", "floa", "doub")):
        return "real"
    if any(k in declared for k in ("char", "clob", "text")):
        return "text"
    return ""


def _limit(table: str, column: str, kind: str) -> int | None:
    return fields.limit(table, column) if kind == "text" else None


_DESCRIBED: dict[tuple, dict[str, Table]] = {}  # (file, schema version) -> tables: pragmas cost ~2 ms a batch


def schema(db, tables: dict[str, list[str]]) -> dict[str, Table]:
    """Describe each synced table from the database's own schema (a table added later is covered)."""
    path = db.execute("pragma database_list").fetchone()[2]
    version = db.execute("pragma schema_version").fetchone()[0]
    key = (path, version, tuple(tables)) if path else None
    if key is not None and key in _DESCRIBED:
        return _DESCRIBED[key]
    out = _describe(db, tables)
    if key is not None:
        if len(_DESCRIBED) > 32:
            _DESCRIBED.clear()
        _DESCRIBED[key] = out
    return out


def _describe(db, tables: dict[str, list[str]]) -> dict[str, Table]:
    out: dict[str, Table] = {}
    for name in tables:
        columns = {}
        for _cid, col, declared, notnull, default, pk in db.execute(f'pragma table_info("{name}")').fetchall():
            kind = _kind(declared or "")
            columns[col] = Column(col, kind, bool(notnull) and default is None and not pk, _limit(name, col, kind))
        references = [Reference(fk[3], fk[2]) for fk in db.execute(f'pragma foreign_key_list("{name}")').fetchall()]
        keys = []
        for _seq, index, unique, origin, partial in db.execute(f'pragma index_list("{name}")').fetchall():
            if not unique or partial or origin == "pk":
                continue
            cols = tuple(r[2] for r in db.execute(f'pragma index_info("{index}")').fetchall())
            if cols and cols != ("id",) and None not in cols:
                keys.append(cols)
        out[name] = Table(name, columns, references, keys)
    for t in out.values():
        for ref in t.references:
            if ref.parent in out:
                out[ref.parent].children.append((t.name, ref.column))
    return out


_TYPES_OK = {"integer": (int,), "real": (int, float), "text": (str,), "": (str, int, float)}


def check_shape(table: Table, data: dict) -> Problem | None:
    """Check a row's columns, types and lengths; None if it is well formed (a hot path of ingest)."""
    columns = table.columns
    unknown = data.keys() - columns.keys()
    if unknown:
        return Problem(UNKNOWN_COLUMNS, {"table": table.name, "fields": ", ".join(sorted(unknown))})
    missing = table.required - data.keys()
    if missing:
        return Problem(MISSING_FIELD, {"table": table.name, "field": sorted(missing)[0]})
    for name, value in data.items():
        kind = type(value)
        if kind is str:
            col = columns[name]
            if col.kind not in ("text", ""):
                return _wrong_type(table, col)
            if col.limit is not None and len(value) > col.limit:
                return Problem(TOO_LONG, {"table": table.name, "field": name, "limit": col.limit})
        elif value is None:
            if name in table.required:
                return Problem(MISSING_FIELD, {"table": table.name, "field": name})
        elif not _value_ok(columns[name], value, kind):
            return _wrong_type(table, columns[name])
    return None


def _value_ok(col: Column, value, kind: type) -> bool:
    if kind not in _TYPES_OK[col.kind]:
        return False
    if kind is int:
        return -(2**63) <= value < 2**63  # what SQLite can hold
    return kind is not float or (value == value and abs(value) != float("inf"))


def _column_ok(col: Column, values: Sequence, required: bool) -> bool:
    """Whether every value fits the column, checked a column at a time (the fast path of ingest)."""
    kinds = set(map(type, values))
    allowed = {*_TYPES_OK[col.kind]} if required else {*_TYPES_OK[col.kind], type(None)}
    if not kinds <= allowed:
        return False
    if str in kinds and col.limit is not None:
        texts = values if len(kinds) == 1 else [v for v in values if type(v) is str]
        if max(map(len, texts)) > col.limit:
            return False
    if int in kinds:
        ints = values if len(kinds) == 1 else [v for v in values if type(v) is int]
        if min(ints) < -(2**63) or max(ints) >= 2**63:
            return False
    return float not in kinds or all(v == v and abs(v) != float("inf") for v in values if type(v) is float)


def _misshapen(records: dict[tuple[str, str], dict], tables: dict[str, Table]) -> set[tuple[str, str]]:
    """The keys of the records that may break a shape rule (each then checked by ``check_shape``).

    Records of one table with the same columns are checked column by column; a group with any
    doubtful value is handed back whole.
    """
    groups: dict[tuple, list[tuple[str, str]]] = {}
    for key, rec in records.items():
        if not rec["del"]:
            groups.setdefault((key[0], tuple(rec["data"])), []).append(key)
    doubtful: set[tuple[str, str]] = set()
    for (name, cols), keys in groups.items():
        table = tables[name]
        if not (set(cols) <= table.columns.keys() and table.required <= set(cols)):
            doubtful.update(keys)
            continue
        # The group's values column by column, transposed in one pass at C speed.
        values = [records[k]["data"].values() for k in keys]
        if not all(
            _column_ok(table.columns[c], column, c in table.required)
            for c, column in zip(cols, zip(*values, strict=True), strict=True)
        ):
            doubtful.update(keys)
    return doubtful


def _wrong_type(table: Table, col: Column) -> Problem:
    return Problem(WRONG_TYPE, {"table": table.name, "field": col.name, "kind": _KINDS.get(col.kind, "text")})


INVARIANT_TABLES = frozenset({"referrals", "screenings"})  # the tables check_invariants has rules for


def check_invariants(db, table: Table, rec: dict, batch: dict[tuple[str, str], dict], risk_of) -> Problem | None:
    """The domain's rules that a row alone cannot show.

    ``batch`` holds the other records received with this one, by (table, id); ``risk_of`` tells
    whether a screening's answers hold a risk (scored again with the instrument files).
    """
    data = rec["data"]
    if table.name == "referrals":
        if rec["del"]:
            return Problem(REFERRAL_DELETED)
        if data.get("status") == REFERRAL_CLOSED and not _closed_as_the_app_closes(db, rec, batch):
            before = row(db, "select status from referrals where id = ?", (rec["id"],))
            if before is None or before["status"] != REFERRAL_CLOSED:
                return Problem(REFERRAL_CLOSED_INCOMPLETE)
    if table.name == "screenings" and not rec["del"] and risk_of(data):
        in_batch = any(
            k[0] == "referrals" and not r["del"] and r["data"].get("screening_id") == rec["id"]
            for k, r in batch.items()
        )
        if not in_batch and row(db, "select 1 as x from referrals where screening_id = ?", (rec["id"],)) is None:
            return Problem(RISK_WITHOUT_REFERRAL, waiting_for=("referrals:screening", rec["id"]))
    return None


def _closed_as_the_app_closes(db, rec: dict, batch: dict[tuple[str, str], dict]) -> bool:
    """A closed referral has an outcome ("other" with a note) and a follow-up contact done
    (stored, or arriving with it): what referrals.set_status asks before closing."""
    data = rec["data"]
    if "outcome" in data:
        if data["outcome"] not in referrals.OUTCOMES:
            return False
        if data["outcome"] == "other" and not (data.get("note") or "").strip():
            return False
    elif not (data.get("note") or "").strip():
        return False  # a laptop with software from before outcomes: its note says why
    if any(
        k[0] == "referral_followups"
        and not r["del"]
        and r["data"].get("referral_id") == rec["id"]
        and r["data"].get("done_on")
        for k, r in batch.items()
    ):
        return True
    if "outcome" not in data:
        return True
    return (
        row(db, "select 1 as x from referral_followups where referral_id = ? and done_on is not null", (rec["id"],))
        is not None
    )


def screening_risk(instruments: dict | None):
    """Return a function telling whether a received screening holds a risk.

    The centre trusts neither the laptop's ``risk`` flag nor its score: the answers are scored
    again with the instrument's own rules (when this server has the instrument).
    """

    def risk_of(data: dict) -> bool:
        if data.get("risk") or data.get("risk_observed"):
            return True
        instrument = (instruments or {}).get(data.get("instrument_id"))
        if instrument is None:
            return False
        try:
            answers = json.loads(data.get("answers_json") or "{}")
        except ValueError:
            return False
        if not isinstance(answers, dict):
            return False
        try:
            return bool(instrument.score(answers).risk_items)
        except Exception:  # noqa: BLE001 (answers the instrument cannot read: the shape check reports them)
            return False

    return risk_of


# ---- screening a batch at the centre -------------------------------------------------------

# Natural keys the schema cannot declare whole-table unique: one active membership of a person
# in a cycle (the unique index is partial: one *active* membership per person anywhere).
EXTRA_KEYS: dict[str, list[tuple[str, ...]]] = {"members": [("cycle_id", "participant_id")]}
# Keys that name a thing by a code people read: a clash is two different things, so the one
# received is renamed (``rename``), never merged.
CODE_KEYS = {("participants", ("site_id", "code")), ("cycles", ("site_id", "code"))}


@dataclass
class Screened:
    """The outcome of screening a batch: what may be written, and what waits or is refused."""

    accepted: dict[tuple[str, str], dict]
    refused: list[tuple[dict, Problem]]
    merged: list[tuple[dict, str]] = field(default_factory=list)  # (record received, id of the row it joins)
    renamed: list[tuple[dict, str]] = field(default_factory=list)  # (record, its code as received)
    changed: set[tuple[str, str]] = field(default_factory=set)  # records the centre rewrote: sent back
    aliased: list[dict] = field(default_factory=list)  # records received under a merged-away id


def natural_keys(table: Table) -> list[tuple[str, ...]]:
    return [*table.keys, *EXTRA_KEYS.get(table.name, [])]


def table_order(tables: dict[str, Table]) -> list[str]:
    """Tables parents first, so a merged parent's new id reaches its children in the same pass."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen or name in path:
            return
        for ref in tables[name].references:
            if ref.parent in tables and ref.parent != name:
                visit(ref.parent, (*path, name))
        seen.add(name)
        done.append(name)

    for name in sorted(tables):
        visit(name, ())
    return done


def any_aliases(db) -> bool:
    """Whether any row was ever merged away (most centres: none, and the lookups are skipped)."""
    return db.execute("select exists (select 1 from sync_aliases)").fetchone()[0] == 1


def aliases(db, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The row each merged-away (table, id) now lives on."""
    found: dict[tuple[str, str], str] = {}
    by_table: dict[str, list[str]] = {}
    for t, i in pairs:
        by_table.setdefault(t, []).append(i)
    for t, ids in by_table.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in db.query(
                f"select record_id, canonical_id from sync_aliases where table_name = ? and record_id in ({marks})",
                [t, *chunk],
            ):
                found[(t, r["record_id"])] = r["canonical_id"]
    return found


def _existing(db, table: str, ids: set[str]) -> dict[str, str]:
    """{id: site_id} of the rows of ``table`` among ``ids``."""
    found: dict[str, str] = {}
    ids_list = sorted(ids)
    has_site = table not in ("users",)
    for start in range(0, len(ids_list), 500):
        chunk = ids_list[start : start + 500]
        marks = ",".join("?" * len(chunk))
        select = "id, site_id" if has_site else "id, null as site_id"
        for r in db.query(f'select {select} from "{table}" where id in ({marks})', chunk):
            found[r["id"]] = r["site_id"]
    return found


def screen_batch(
    db, records: dict[tuple[str, str], dict], tables: dict[str, Table], versions: dict, risk_of, *, renamer
) -> Screened:
    """Check every received record against the rules; find merges and code clashes.

    ``records`` are the batch's records by (table, id), of known tables, private fields already
    stripped. ``versions`` are the centre's sync_rows of those keys. A record refused here is
    not written; one whose parent is refused or missing waits for it.
    """
    out = Screened({}, [])
    misshapen = _misshapen(records, tables)
    # Records for an id merged away before are records of the row it joined.
    merged_before = any_aliases(db)
    alias = aliases(db, [k for k in records if k[0] in tables]) if merged_before else {}
    doubtful = misshapen | alias.keys()
    for key, rec in records.items():
        if key[0] not in INVARIANT_TABLES and key not in doubtful:
            out.accepted[key] = rec  # most records: nothing below applies to them
            continue
        table = tables[key[0]]
        if key in alias:
            out.aliased.append(rec)
        if key in alias and rec["del"]:
            # The laptop deleting its own copy of a row the centre merged: the joined row stays
            # (it may hold another laptop's data); the laptop already had, or will get, the deletion.
            continue
        if key in alias:
            rec = {
                **rec,
                "id": alias[key],
                "base": None,
                "data": None if rec["data"] is None else {**rec["data"], "id": alias[key]},
            }
            out.changed.add((key[0], alias[key]))
        problem = None if rec["del"] or key not in misshapen else check_shape(table, rec["data"])
        if problem is None and key[0] in INVARIANT_TABLES:
            problem = check_invariants(db, table, rec, records, risk_of)
        if problem:
            out.refused.append((rec, problem))
        else:
            out.accepted[(key[0], rec["id"])] = rec
    _merge_and_link(db, out, tables, versions, renamer, merged_before=merged_before)
    _deletions(db, out, tables)
    return out


def _rewrite_refs(rec: dict, table: Table, merged_ids: dict[tuple[str, str], str]) -> dict:
    data = rec["data"]
    for ref in table.references:
        value = data.get(ref.column)
        if value is not None and (ref.parent, value) in merged_ids:
            data = {**data, ref.column: merged_ids[(ref.parent, value)]}
    return rec if data is rec["data"] else {**rec, "data": data}


def _merge_and_link(
    db, out: Screened, tables: dict[str, Table], versions: dict, renamer, *, merged_before: bool
) -> None:
    """Parents first: rewrite references to merged rows, check references, then merge natural keys."""
    accepted = out.accepted
    # Ids merged away in earlier batches, for the references of this one.
    merged_ids: dict[tuple[str, str], str] = {}
    if merged_before:
        ref_keys = {
            (ref.parent, rec["data"][ref.column])
            for (t, _i), rec in accepted.items()
            if not rec["del"]
            for ref in tables[t].references
            if rec["data"].get(ref.column) is not None
        }
        merged_ids = aliases(db, [k for k in ref_keys if k[0] in tables])
    refused_keys = {(r["t"], r["id"]) for r, _p in out.refused}
    by_table: dict[str, list[tuple[str, str]]] = {}
    for key in accepted:
        by_table.setdefault(key[0], []).append(key)
    for name in table_order(tables):
        table = tables[name]
        mine = [k for k in by_table.get(name, ()) if k in accepted]
        if not mine:
            continue
        # 1. References: rewritten to merged rows, then each must exist, at this site.
        wanted: dict[str, set[str]] = {}
        for key in mine:
            rec = accepted[key]
            if rec["del"]:
                continue
            new = _rewrite_refs(rec, table, merged_ids) if merged_ids else rec
            if new is not rec:
                accepted[key] = new
                out.changed.add(key)
            for ref in table.references:
                value = new["data"].get(ref.column)
                if value is not None and (ref.parent, value) not in accepted:
                    wanted.setdefault(ref.parent, set()).add(value)
        stored = {
            parent: _existing(db, parent, ids)
            for parent, ids in wanted.items()
            if parent in tables or parent == "users"
        }
        for key in mine:
            rec = accepted[key]
            if rec["del"]:
                continue
            problem = _reference_problem(rec, table, accepted, stored, refused_keys, tables)
            if problem:
                del accepted[key]
                refused_keys.add(key)
                out.refused.append((rec, problem))
        # 2. Natural keys: a new row of a key already stored joins that row; a code is renamed.
        for cols in natural_keys(table):
            _join_keys(db, out, table, cols, versions, merged_ids, renamer, mine)


def _reference_problem(
    rec: dict, table: Table, accepted: dict, stored: dict, refused_keys: set, tables: dict[str, Table]
) -> Problem | None:
    for ref in table.references:
        value = rec["data"].get(ref.column)
        if value is None or ref.parent == "sites":
            continue  # site_id is the device's site, checked before
        params = {"table": table.name, "parent": ref.parent}
        parent = accepted.get((ref.parent, value))
        if parent is not None:
            if parent["del"]:
                return Problem(MISSING_PARENT, params, waiting_for=(ref.parent, value))
            if parent["site"] != rec["site"]:
                return Problem(OTHER_SITE_PARENT, params)
            continue
        if (ref.parent, value) in refused_keys:
            return Problem(WAITING_WITH_PARENT, params, waiting_for=(ref.parent, value))
        found = stored.get(ref.parent, {})
        if value not in found:
            return Problem(MISSING_PARENT, params, waiting_for=(ref.parent, value))
        if ref.parent in tables and found[value] != rec["site"]:
            return Problem(OTHER_SITE_PARENT, params)
    return None


def _holders(db, table: str, cols: tuple[str, ...], wanted: list[tuple]) -> dict[tuple, str]:
    """{key values: id} of the stored rows holding these key values (a few queries per batch,
    each answered by the key's unique index)."""
    found: dict[tuple, str] = {}
    keys = list(dict.fromkeys(wanted))  # each once, in the order of the batch
    step = max(1, 900 // len(cols))
    one = "(" + ",".join("?" * len(cols)) + ")"
    for start in range(0, len(keys), step):
        chunk = keys[start : start + step]
        # A join from the values (not "in (values ...)", which SQLite answers by scanning the table).
        on = " and ".join(f't."{c}" = k.c{i}' for i, c in enumerate(cols))
        sql = (
            f"with k({', '.join(f'c{i}' for i in range(len(cols)))}) as (values {','.join([one] * len(chunk))})"
            f' select t.id, {", ".join(f"t.{chr(34)}{c}{chr(34)}" for c in cols)} from k join "{table}" t on {on}'
        )
        for r in db.execute(sql, [v for k in chunk for v in k]):
            found[tuple(r[1:])] = r[0]
    return found


def _join_keys(
    db,
    out: Screened,
    table: Table,
    cols: tuple[str, ...],
    versions: dict,
    merged_ids: dict[tuple[str, str], str],
    renamer,
    keys: list[tuple[str, str]],
) -> None:
    accepted = out.accepted
    get = operator.itemgetter(*cols) if len(cols) > 1 else (lambda d, c=cols[0]: (d[c],))
    mine = []
    for k in keys:
        r = accepted.get(k)
        if r is not None and not r["del"]:
            try:
                values = get(r["data"])
            except KeyError:
                continue
            if None not in values:
                mine.append((k, values))
    if not mine:
        return
    stored = _holders(db, table.name, cols, [v for _k, v in mine])
    seen: dict[tuple, str] = {}  # key values -> id of the batch's first record with them
    for key, values in mine:
        rec = accepted.get(key)
        if rec is None:
            continue
        other = stored.get(values)
        if other is None or other == rec["id"]:
            other = seen.get(values)
        if other is None or other == rec["id"]:
            seen.setdefault(values, rec["id"])
            continue
        if (table.name, cols) in CODE_KEYS:
            old = rec["data"]["code"]
            taken = {r["data"].get("code") for k, r in accepted.items() if k[0] == table.name and r["data"]}
            rec = {**rec, "data": {**rec["data"], "code": renamer(db, table.name, rec["data"], taken)}}
            accepted[key] = rec
            out.renamed.append((rec, old))
            out.changed.add(key)
            seen.setdefault(tuple(rec["data"].get(c) for c in cols), rec["id"])
            continue
        if versions.get(key) is not None:
            # A row the centre already has cannot move onto another's key: the older stays.
            del accepted[key]
            out.refused.append((rec, Problem(KEY_TAKEN, {"table": table.name, "fields": ", ".join(cols)})))
            continue
        # The same thing made twice (two laptops marked one member at one session): one row.
        del accepted[key]
        merged_ids[(table.name, rec["id"])] = other
        out.merged.append((rec, other))


def _deletions(db, out: Screened, tables: dict[str, Table]) -> None:
    """A row still referred to is not deleted (its children would dangle at the centre)."""
    deleting = {k for k, r in out.accepted.items() if r["del"]}
    for key in sorted(deleting):
        for child, column in tables[key[0]].children:
            kept_in_batch = any(
                k[0] == child and not r["del"] and r["data"].get(column) == key[1] for k, r in out.accepted.items()
            )
            stored = db.query(f'select id from "{child}" where "{column}" = ?', (key[1],))
            if kept_in_batch or any((child, r["id"]) not in deleting for r in stored):
                rec = out.accepted.pop(key)
                out.refused.append((rec, Problem(STILL_REFERRED_TO, {"table": key[0], "child": child})))
                break


def waiting_key(waiting_for: tuple[str, str] | None) -> str | None:
    return None if waiting_for is None else f"{waiting_for[0]}:{waiting_for[1]}"


def keys_applied(records: list[dict]) -> list[str]:
    """The waiting keys that the applied ``records`` satisfy (see ``Problem.waiting_for``)."""
    out = []
    for r in records:
        if r["del"]:
            continue
        out.append(f"{r['t']}:{r['id']}")
        if r["t"] == "referrals" and r["data"].get("screening_id"):
            out.append(f"referrals:screening:{r['data']['screening_id']}")
    return out


# ---- the same rules on every local write ------------------------------------------------------


class RecordRuleError(DomainError):
    """A write on this computer (web page, API, command line) broke a record rule; it is undone.

    The domain functions check what a person types first, in their own words; this is the last
    gate, at commit, so that no path writes a row the centre would refuse (and laptops diverge).
    """

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message, **problem.params)
        self.problem = problem

    def __str__(self) -> str:
        return LOCAL_REFUSAL % {"reason": str(self.problem)}

    def translated(self, gettext, ngettext=None) -> str:
        return gettext(LOCAL_REFUSAL, reason=self.problem.translated(gettext))


LOCAL_REFUSAL = N_(
    "Nothing was saved: this change breaks a rule every record follows, here and at the central "
    "server. Tell technical support. (%(reason)s)"
)


def check_local(db, since: int) -> None:
    """Check the rows changed by this write (the triggers logged them after ``since``) before it commits.

    The rules of ``screen_batch`` that a local write can break: the shape of each row (types,
    lengths: fields.py), that every row it refers to is of its own site, a risk screening with its
    referral, no referral deleted or closed otherwise than the app closes it. Rows written while
    sync applies received records are not logged (``applying``): ingest screens them itself.
    """
    changed = db.execute(
        "select distinct table_name, record_id from sync_log where seq > ? order by seq", (since,)
    ).fetchall()
    if not changed:
        return
    tables = schema(db, tracking.synced_tables(db))  # both cached per schema version
    records = _current_rows(db, [(t, i) for t, i in changed if t in tables])
    for key, rec in records.items():
        table = tables[key[0]]
        problem = None if rec["del"] else check_shape(table, rec["data"])
        if problem is None and key[0] == "referrals":
            problem = _local_referral_problem(db, rec, records)
        elif problem is None and key[0] in INVARIANT_TABLES:
            problem = check_invariants(db, table, rec, records, _flagged_risk)
        if problem is None and not rec["del"]:
            problem = _local_reference_problem(db, table, rec)
        if problem is not None:
            raise RecordRuleError(problem)


def _local_referral_problem(db, rec: dict, records: dict[tuple[str, str], dict]) -> Problem | None:
    """A referral is never deleted, and a closed one has what closing needs.

    Unlike ingest, the row's status before this write is not at hand (the write changed it), so
    every closed referral the write touches must satisfy the closing rule; one closed by the app
    always does. Empty columns count as absent, as in a record from older software.
    """
    if rec["del"]:
        return Problem(REFERRAL_DELETED)
    if rec["data"].get("status") != REFERRAL_CLOSED:
        return None
    filled = {**rec, "data": {k: v for k, v in rec["data"].items() if v is not None}}
    return None if _closed_as_the_app_closes(db, filled, records) else Problem(REFERRAL_CLOSED_INCOMPLETE)


def _flagged_risk(data: dict) -> bool:
    # Locally the screening was scored by this software (screening.save_screening): its flag is true.
    return bool(data.get("risk") or data.get("risk_observed"))


def _current_rows(db, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """Each changed row as ingest sees a record: {t, id, del, data, site}, a few queries per table."""
    by_table: dict[str, list[str]] = {}
    for t, i in keys:
        by_table.setdefault(t, []).append(i)
    out: dict[tuple[str, str], dict] = {}
    for t, ids in by_table.items():
        found: dict[str, dict] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update((r["id"], r) for r in db.query(f'select * from "{t}" where id in ({marks})', chunk))
        for i in ids:
            data = found.get(i)
            out[(t, i)] = {"t": t, "id": i, "del": data is None, "data": data, "site": (data or {}).get("site_id")}
    return out


def _local_reference_problem(db, table: Table, rec: dict) -> Problem | None:
    """A row refers only to rows of its own site (the database's foreign keys say they exist)."""
    for ref in table.references:
        value = rec["data"].get(ref.column)
        if value is None or ref.parent in ("sites", "users"):
            continue
        parent = row(db, f'select site_id from "{ref.parent}" where id = ?', (value,))
        if parent is not None and parent["site_id"] != rec["site"]:
            return Problem(OTHER_SITE_PARENT, {"table": table.name, "parent": ref.parent})
    return None


# Every write of this software runs check_local before it commits (db.write): the web, the API and
# the command line obey the rules ingest applies, whichever path they take.
db_module.on_commit(check_local)
