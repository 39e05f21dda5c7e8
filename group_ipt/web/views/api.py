"""The JSON API under /api/v1: sync endpoints and the main resources, with device tokens.

Every route is described once in ``ROUTES``; the OpenAPI document at
/api/v1/openapi.json is generated from that list, the write bodies in
``sync.records`` and the tables' columns. Reads return rows of the device's site;
writes go through the domain functions (``sync/records.py`` says which and why),
and the writes the API does not allow answer 405 with the reason.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ...base import fields, inflate
from ...base.errors import DomainError
from ...core import referrals
from ...core.sessions import StaleSession
from ...formfiles import forms as formsmod
from ...sync import devices, records, schemas, server
from ...sync.engine import MAX_INTEGER, SyncRejected
from ...sync.records import RecordError
from ..database import get_db

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# One description of the routes: (method, path, endpoint, summary, request body, response).
ROUTES = [
    ("GET", "/openapi.json", "openapi", "This document.", None, "object"),
    ("GET", "/sync/hello", "sync_hello", "Who this token belongs to: device, site and sync settings.", None, "Hello"),
    (
        "POST",
        "/sync/push",
        "sync_push",
        "Apply one batch of changes atomically (gzip JSON); a batch sent twice "
        "is acknowledged again and changes nothing.",
        "Batch",
        "Ack",
    ),
    (
        "POST",
        "/sync/pull",
        "sync_pull",
        "The site's changes after a cursor, not counting the device's own.",
        "PullRequest",
        "PullPage",
    ),
    (
        "POST",
        "/sync/key",
        "sync_key",
        "Register the laptop's Ed25519 public key for its signed USB files; the "
        "answer holds the centre's public key for its reply files.",
        "KeyRegistration",
        "KeyReply",
    ),
    (
        "GET",
        "/{resource}",
        "list_records",
        "List records of the device's site, by id; page with 'after'.",
        None,
        "Page",
    ),
    ("GET", "/{resource}/{id}", "get_record", "One record.", None, "Record"),
    (
        "POST",
        "/participants",
        "create_participant",
        "Register a person (as the registration page does): the "
        "server gives the programme code, records the consents and flags possible duplicates.",
        "ParticipantNew",
        "ParticipantSaved",
    ),
    (
        "PATCH",
        "/participants/{id}",
        "update_participant",
        "Change the name, village, phone or language, with the "
        "registration's checks. A status change is refused (403): screenings, cycles and coordinators change it.",
        "ParticipantChange",
        "ParticipantSaved",
    ),
    (
        "POST",
        "/screenings",
        "create_screening",
        "Score and save a screening on the server. A risk answer (e.g. "
        "PHQ-9 question 9 above 0), risk observed or an exclusion creates its unacknowledged safety referral in the "
        "same transaction. The same submission_key again returns the saved screening with 200.",
        "ScreeningNew",
        "ScreeningSaved",
    ),
    (
        "POST",
        "/referrals",
        "create_referral",
        "Refer a person by hand (a risk seen outside a screening).",
        "ReferralNew",
        "referrals",
    ),
    (
        "PATCH",
        "/referrals/{id}",
        "update_referral",
        "One change as on the referral page: acknowledge the alert, "
        "move the status forward (closing is for a coordinator or supervisor, in the app), or record a follow-up "
        "contact.",
        "ReferralChange",
        "referrals",
    ),
    (
        "GET",
        "/sessions/{id}/attendance",
        "get_attendance",
        "A session's attendance sheet: its version, who belongs on it, what is saved.",
        None,
        "AttendanceSheet",
    ),
    (
        "POST",
        "/sessions/{id}/attendance",
        "record_attendance",
        "Save a session's whole sheet in one transaction, "
        "made from the version given; a newer version answers 409 with the differences.",
        "AttendanceSave",
        "AttendanceSheet",
    ),
    (
        "POST",
        "/{resource}",
        "create_record",
        "Refused: cycles and sessions are made in the app, attendance is saved a sheet at a time.",
        None,
        None,
    ),
    (
        "PATCH",
        "/{resource}/{id}",
        "update_record",
        "Refused: screenings are facts, cycles and sessions change in the app, attendance is saved a sheet at a time.",
        None,
        None,
    ),
    (
        "DELETE",
        "/{resource}/{id}",
        "delete_record",
        "Refused for every resource: nothing is deleted through the API.",
        None,
        None,
    ),
]
# The generic write routes only answer 405 (the resources with real writes have their own routes).
REFUSING = {"create_record": "POST", "update_record": "PATCH", "delete_record": "DELETE"}
GENERIC = {"list_records", "get_record", *REFUSING}


class ApiError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def error(message: str, status: int, **extra) -> Response:
    # Flask's JSON provider is typed with werkzeug's base Response; what it makes is the app's (flask's).
    response: Response = current_app.json.response({"error": message, **extra})  # type: ignore[assignment]
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="group-ipt"'
    return response


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return error(str(exc), exc.status)


@bp.errorhandler(SyncRejected)
def sync_rejected(exc: SyncRejected):
    return error(str(exc), exc.status)


@bp.errorhandler(RecordError)
def record_error(exc: RecordError):
    response = error(str(exc), exc.status, **({"field": exc.field} if exc.field else {}))
    if exc.allow:
        response.headers["Allow"] = ", ".join(exc.allow)
    return response


@bp.errorhandler(StaleSession)
def stale_session(exc: StaleSession):
    """Someone saved the sheet since the version sent: nothing saved, here is what differs."""
    return error(
        str(exc),
        409,
        field="version",
        current_version=exc.current_version,
        differences=[str(d) for d in exc.differences],
    )


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    """A rule of the domain refused the write (the same message the app's pages show, in English)."""
    return error(str(exc), 400, field=exc.field)


@bp.errorhandler(sqlite3.IntegrityError)
def integrity_error(exc: sqlite3.IntegrityError):
    return error(f"The change breaks a rule of the database: {exc}.", 409)


@bp.after_app_request
def allow_header(response: Response) -> Response:
    """A 405 of routing names the methods the URL really answers (RFC 9110): Werkzeug's list, which the
    app's error page sends, also names the generic routes that only refuse."""
    if (
        response.status_code == 405
        and isinstance(request.routing_exception, MethodNotAllowed)
        and request.path.startswith(f"{bp.url_prefix}/")
    ):
        response.headers["Allow"] = ", ".join(allowed_methods())
    return response


@bp.before_request
def require_token():
    """Every API call carries a device token: ``Authorization: Bearer <token>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("This API needs a device token: send 'Authorization: Bearer <token>'.", 401)
    db = get_db()
    device = devices.authenticate(db, token.strip())
    if device is None:
        known = db.execute(
            "select revoked_at from sync_devices where token_hash = ?", (devices.hash_token(token.strip()),)
        ).fetchone()
        if known:
            raise ApiError(f"This device was revoked on {known[0]}; ask the central office for a new token.", 401)
        raise ApiError("Unknown token. Check the token given when the device was added.", 401)
    g.device = device
    if request.method == "OPTIONS":
        return Response(status=204, headers={"Allow": ", ".join(allowed_methods())})
    limit = int(current_app.config["SYNC_MAX_BODY_MB"] * 1024 * 1024)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(f"The body is larger than {current_app.config['SYNC_MAX_BODY_MB']} MB.", 413)


def body_json(*, whole_numbers: bool = True):
    """The request body as JSON, gunzipped when sent with Content-Encoding: gzip.

    JSON has one kind of number, so 30.0 is the whole number 30 (JSON Schema's "integer" says so too) unless
    ``whole_numbers`` is off (a sync batch carries the laptop's rows as they are). NaN and Infinity are not JSON.
    """
    limit = int(current_app.config["SYNC_MAX_BODY_MB"] * 1024 * 1024)
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise ApiError(f"The body is larger than {current_app.config['SYNC_MAX_BODY_MB']} MB.", 413)
    try:
        if request.headers.get("Content-Encoding", "").lower() == "gzip":
            # Unpacked within SYNC_MAX_UNPACKED_MB, checked while inflating (a gzip bomb stops there).
            unpacked = min(int(current_app.config["SYNC_MAX_UNPACKED_MB"] * 1024 * 1024), limit * 8)
            try:
                body = inflate.inflate_json(raw, unpacked, parse_constant=_not_json)
            except inflate.TooLarge as exc:
                raise ApiError(str(exc), 413) from exc
            except inflate.Unreadable as exc:
                raise ApiError(str(exc), 400) from exc
        else:
            try:
                with inflate.SLOTS:
                    body = json.loads(raw or b"null", parse_constant=_not_json)
            except ValueError as exc:
                raise ApiError(f"The body is not valid JSON: {exc}", 400) from exc
        return _whole_numbers(body) if whole_numbers else body
    except RecursionError:
        raise ApiError("The body is nested too deeply.", 400) from None


def _not_json(constant: str):
    raise ValueError(f"{constant} is not a JSON value")


def _whole_numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    return value


def reply(obj, status: int = 200) -> Response:
    """JSON, gzip-compressed when the client accepts it (sync pages can be large)."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = Response(data, status=status, mimetype="application/json")
    response.vary.add("Accept-Encoding")
    if "gzip" in request.headers.get("Accept-Encoding", "") and len(data) > 1024:
        response.set_data(gzip.compress(data, 6))
        response.headers["Content-Encoding"] = "gzip"
    return response


def central_config() -> server.CentralConfig:
    if not current_app.config.get("SYNC_CENTRAL"):
        raise ApiError("This server is not a central server (start it with 'group-ipt serve --central').", 404)
    return server.CentralConfig.from_app_config(current_app.config, formsmod.loaded(current_app.extensions).instruments)


def note_version() -> None:
    """Remember the laptop's version from the header every sync call carries."""
    try:
        devices.note_version(get_db(), g.device, request.headers.get(devices.VERSION_HEADER))
    except devices.DeviceError as exc:
        raise ApiError(str(exc), 400) from exc


@bp.route("/sync/hello")
def sync_hello():
    config = central_config()
    note_version()
    return reply(server.hello(get_db(), g.device, config))


@bp.route("/sync/key", methods=["POST"])
def sync_key():
    config = central_config()
    return reply(server.register_key(get_db(), g.device, body_json(), config))


@bp.route("/sync/push", methods=["POST"])
def sync_push():
    config = central_config()
    note_version()
    body = body_json(whole_numbers=False)
    # The document's one rule engine.validate_batch leaves alone (the centre does not read it).
    if isinstance(body, dict) and not isinstance(body.get("node", ""), str):
        raise ApiError("'node' must be text: the laptop's node id.", 400)
    return reply(server.push(get_db(), g.device, body, config))


@bp.route("/sync/pull", methods=["POST"])
def sync_pull():
    config = central_config()
    note_version()
    body = body_json()
    if isinstance(body, dict):  # server.pull checks cursor and limit
        if not isinstance(body.get("first", True), bool):
            raise ApiError("'first' must be true or false.", 400)
        shared = body.get("files", {})
        if not isinstance(shared, dict) or not all(isinstance(v, str) for v in shared.values()):
            raise ApiError("'files' must be an object of path -> sha256 of the laptop's copy.", 400)
    return reply(server.pull(get_db(), g.device, body, config))


def allowed_methods() -> list[str]:
    """The methods this URL answers with something else than a refusal.

    The generic routes match any name (/sync/hello is also /<resource>/<record_id>), so Werkzeug's own list
    (automatic OPTIONS, the 405 of routing) names methods that only refuse; this one asks the URL map which
    view each method reaches.
    """
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in ("GET", "POST", "PATCH", "DELETE"):
        try:
            endpoint, args = adapter.match(method=method)
        except HTTPException:
            continue
        endpoint = endpoint.removeprefix(f"{bp.name}.")
        if endpoint not in REFUSING and (endpoint not in GENERIC or args.get("resource") in records.RESOURCES):
            allowed.append(method)
    return allowed


def known_resource(resource: str) -> None:
    """A generic route reached with a name that is no resource: if another route of the API serves this path
    (PATCH /sync/hello, POST /openapi.json), 405 with the methods it answers; else the 404 of records."""
    if resource not in records.RESOURCES and (allowed := allowed_methods()):
        raise RecordError(f"This URL answers {', '.join(allowed)} only.", 405, allow=allowed)


@bp.route("/<resource>", methods=["GET"])
def list_records(resource):
    known_resource(resource)
    raw = request.args.get("limit", "100")
    # Plain digits only: int() would also take "1_0", " 10", "+10" or other scripts' digits.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
        raise ApiError("'limit' must be a whole number.", 400)
    limit = int(raw)
    return reply(
        records.list_records(
            get_db(),
            resource,
            g.device["site_id"],
            after=request.args.get("after"),
            limit=limit,
            updated_since=moment(request.args.get("updated_since")),
        )
    )


DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})")


def moment(value: str | None) -> str | None:
    """An RFC 3339 date and time (as the document says) as UTC text in the format of updated_at, to compare."""
    if value is None:
        return None
    try:
        if not DATE_TIME.fullmatch(value.upper()):
            raise ValueError(value)
        return datetime.fromisoformat(value.upper()).astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        raise ApiError(
            "'updated_since' must be a date and time with its offset, as 2026-03-02T09:00:00+00:00 "
            "or 2026-03-02T06:00:00Z.",
            400,
        ) from None


@bp.route("/<resource>/<record_id>", methods=["GET"])
def get_record(resource, record_id):
    known_resource(resource)
    return reply(records.get_record(get_db(), resource, g.device["site_id"], record_id))


def rules() -> records.Rules:
    forms = formsmod.loaded(current_app.extensions)
    assert forms.intake is not None  # forms.load_all always reads forms/intake.yaml
    return records.Rules(
        instruments=forms.instruments,
        intake=forms.intake,
        protocols=forms.protocols,
        plan=referrals.FollowupPlan.from_config(current_app.config),
        cutoffs=current_app.config["ELIGIBILITY_CUTOFFS"] or {},
    )


CODES_ONLY = (
    "This central server keeps programme codes only (SYNC_SEND_NAMES is off): register people and "
    "change their names or phones on a laptop, which sends the rest by sync."
)


def refuse_names_on_codes_only_central(body: object) -> None:
    """Keep the privacy promise: with names off, the central office never stores a name or phone."""
    config = current_app.config
    if not config.get("SYNC_CENTRAL") or config.get("SYNC_SEND_NAMES"):
        return
    if request.method == "POST" or isinstance(body, dict) and {"name", "phone"} & set(body):
        raise ApiError(CODES_ONLY, 403)


@bp.route("/participants", methods=["POST"])
def create_participant():
    body = body_json()
    refuse_names_on_codes_only_central(body)
    return reply(records.create_participant(get_db(), g.device, body, rules()), 201)


@bp.route("/participants/<record_id>", methods=["PATCH"])
def update_participant(record_id):
    body = body_json()
    refuse_names_on_codes_only_central(body)
    return reply(records.update_participant(get_db(), g.device, record_id, body, rules()))


@bp.route("/screenings", methods=["POST"])
def create_screening():
    saved, created = records.create_screening(get_db(), g.device, body_json(), rules())
    return reply(saved, 201 if created else 200)


@bp.route("/referrals", methods=["POST"])
def create_referral():
    return reply(records.create_referral(get_db(), g.device, body_json(), rules()), 201)


@bp.route("/referrals/<record_id>", methods=["PATCH"])
def update_referral(record_id):
    return reply(records.update_referral(get_db(), g.device, record_id, body_json(), rules()))


@bp.route("/sessions/<record_id>/attendance", methods=["GET"])
def get_attendance(record_id):
    return reply(records.attendance_sheet(get_db(), g.device, record_id))


@bp.route("/sessions/<record_id>/attendance", methods=["POST"])
def record_attendance(record_id):
    return reply(records.record_attendance(get_db(), g.device, record_id, body_json(), rules()))


@bp.route("/<resource>", methods=["POST"])
def create_record(resource):
    known_resource(resource)
    records.refuse(resource, "POST")


@bp.route("/<resource>/<record_id>", methods=["PATCH"])
def update_record(resource, record_id):
    known_resource(resource)
    records.refuse(resource, "PATCH")


@bp.route("/<resource>/<record_id>", methods=["DELETE"])
def delete_record(resource, record_id):
    known_resource(resource)
    records.refuse(resource, "DELETE")


@bp.route("/openapi.json")
def openapi():
    return reply(openapi_document(get_db(), sorted(formsmod.loaded(current_app.extensions).instruments)))


# ---- the OpenAPI document ------------------------------------------------------------------

SQL_TYPES = {"integer": "integer", "real": "number", "text": "string", "": "string", "blob": "string"}

HLC = r"^[0-9]{15}\.[0-9]{10}\.[A-Za-z0-9_-]{1,40}$"  # tracking.HLC_RE
SYNC_SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {"type": "string"},
            "field": {"type": ["string", "null"], "description": "the field at fault, when one is"},
            "current_version": {"type": "integer", "description": "a stale sheet (409): the session's version now"},
            "differences": {
                "type": "array",
                "items": {"type": "string"},
                "description": "a stale sheet (409): what the other save recorded",
            },
        },
    },
    "Hello": {
        "type": "object",
        "properties": {
            "device_id": {"type": "string"},
            "device_name": {"type": "string"},
            "site": {"type": "object"},
            "settings": {"type": "object", "properties": {"send_names": {"type": "boolean"}}},
            "server_time": {"type": "string"},
            "centre_key": {"type": "string", "description": "the centre's Ed25519 public key (base64) for reply files"},
            "key_state": {"type": "string", "enum": ["ed25519", "legacy", "none"]},
        },
    },
    "KeyRegistration": {
        "type": "object",
        "required": ["public_key"],
        "properties": {
            "public_key": {
                "type": "string",
                "pattern": "^[A-Za-z0-9+/]{43}=$",
                "description": "the laptop's Ed25519 public key, base64 of 32 bytes",
            }
        },
    },
    "KeyReply": {
        "type": "object",
        "properties": {"centre_key": {"type": "string"}, "key_state": {"type": "string", "enum": ["ed25519"]}},
    },
    "Change": {
        "type": "object",
        "required": ["t", "id", "site", "hlc", "del"],
        "properties": {
            "t": {"type": "string", "minLength": 1, "maxLength": 200, "description": "table"},
            "id": {"type": "string", "minLength": 1, "maxLength": 200},
            "site": {"type": "string", "minLength": 1, "maxLength": 200, "description": "the device's site id"},
            "hlc": {
                "type": "string",
                "pattern": HLC,
                "description": "hybrid logical clock: 15-digit ms . 10-digit counter . node",
            },
            "base": {
                "type": ["string", "null"],
                "pattern": HLC,
                "description": "the version this one was made on top of",
            },
            "del": {"type": "boolean"},
            "data": {"type": ["object", "null"]},
        },
    },
    "Batch": {
        "type": "object",
        "required": ["batch_no", "records"],
        "properties": {
            "batch_no": {"type": "integer", "minimum": 1, "maximum": MAX_INTEGER},
            "node": {"type": "string"},
            "records": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
        },
    },
    "Ack": {
        "type": "object",
        "properties": {
            "batch_no": {"type": "integer"},
            "duplicate": {"type": "boolean"},
            "applied": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "conflicts": {"type": "integer"},
            "quarantined": {"type": "integer"},
            "merged": {"type": "integer"},
            "renamed": {"type": "integer"},
            "released": {"type": "integer"},
        },
    },
    "PullRequest": {
        "type": "object",
        "properties": {
            "cursor": {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
            "first": {"type": "boolean"},
            "files": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "the laptop's shared files: path -> sha256",
            },
        },
    },
    "PullPage": {
        "type": "object",
        "properties": {
            "changes": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
            "cursor": {"type": "integer"},
            "more": {"type": "boolean"},
            "settings": {"type": "object"},
            "open_conflicts": {"type": "integer"},
            "reference": {"type": "object"},
            "files": {"type": "object", "additionalProperties": {"type": "string", "contentEncoding": "base64"}},
        },
    },
}


def _resource_schemas(db) -> dict:
    schemas = {}
    for resource, table in records.RESOURCES.items():
        if table not in db.table_names():
            continue
        cols = records.columns(db, resource)
        schemas[resource] = {
            "type": "object",
            "properties": {
                c["name"]: {
                    "type": [SQL_TYPES.get(c["type"], "string"), "null"],
                    **(
                        {"maxLength": fields.limit(table, c["name"])}
                        if SQL_TYPES.get(c["type"], "string") == "string"
                        else {}
                    ),
                    **({"readOnly": True} if c["name"] in records.MANAGED else {}),
                }
                for c in cols
            },
            "required": [c["name"] for c in cols if c["required"] and c["name"] not in records.MANAGED],
        }
    return schemas


def openapi_document(db, instruments: list[str] | None = None) -> dict:
    """The OpenAPI document of the API; ``instruments``: the ids a screening may name (the loaded forms)."""
    from ... import __version__

    resource_schemas = _resource_schemas(db)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "group-ipt API",
            "version": __version__,
            "description": "Sync and the main records of a group IPT programme. Every call needs a device "
            "token (group-ipt devices add) as 'Authorization: Bearer <token>'. Writes go "
            "through the programme's rules (codes, scores and safety referrals are made by "
            "the server); what the API does not allow answers 405 with the reason. Errors "
            'are JSON: {"error": "...", "field": "..."}.',
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"deviceToken": []}],
        "paths": _paths(resource_schemas),
        "components": {
            "securitySchemes": {"deviceToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {**SYNC_SCHEMAS, **schemas.write_schemas(instruments), **resource_schemas},
        },
    }


def _paths(resource_schemas: dict) -> dict:
    """Every route's operations by path (OpenAPI "paths")."""
    paths: dict = {}
    for method, path, endpoint, summary, body, response in ROUTES:
        paths.setdefault(path, {})[method.lower()] = _operation(
            resource_schemas, endpoint, path, summary, body, response
        )
    # A path without templates is matched before a templated one ("Paths" in OpenAPI 3.1), so /participants
    # is not /{resource} with resource=participants: the reads of a resource that has paths of its own are
    # listed under those paths too (its refusals stay under the generic path: the methods a path lists are
    # the ones its Allow header names).
    for method, path, endpoint, summary, body, response in ROUTES:
        if "{resource}" not in path or endpoint in REFUSING:
            continue
        for resource in records.RESOURCES:
            own = path.replace("{resource}", resource)
            if own in paths and method.lower() not in paths[own]:
                paths[own][method.lower()] = _operation(
                    resource_schemas, endpoint, path, summary, body, response, resource
                )
    return paths


def _operation(
    resource_schemas: dict, endpoint: str, path: str, summary: str, body, response, resource: str | None = None
) -> dict:
    """One operation; ``resource`` fills in a generic route's {resource} (for the path named after it)."""
    refused = REFUSING.get(endpoint)
    resources = _resources_of(endpoint, resource)
    op: dict = {
        "operationId": f"{endpoint}_{resource}" if resource else endpoint,
        "summary": summary,
        "responses": _refusal_responses(refused, resources) if refused else _error_responses(),
    }
    params = _parameters(endpoint, path, resources, resource)
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_of(body, resources, resource_schemas)}},
        }
    if not refused:
        op["responses"].update(_success_responses(endpoint, response, resources, resource_schemas))
    return op


def _resources_of(endpoint: str, resource: str | None) -> list[str]:
    """The resources an operation serves: the one named, those a refusing route refuses, or all."""
    refused = REFUSING.get(endpoint)
    if resource:
        return [resource]
    if refused:
        return [r for r in records.RESOURCES if (r, refused) in records.REFUSED]
    return list(records.RESOURCES)


# The errors every allowed operation may answer.
ERRORS = {
    "400": "malformed request, or a rule of the domain refused it (error names the field)",
    "401": "missing, unknown or revoked token",
    "403": "another site's data, or not allowed to a device",
    "404": "not found, or another site's",
    "409": "conflicts with a rule, or a stale version",
    "413": "too large",
}
# The success codes of the writes that create (a screening sent again: 200); every other answers 200.
SUCCESS_CODES = {"create_participant": ["201"], "create_referral": ["201"], "create_screening": ["201", "200"]}


def _error_response(text: str) -> dict:
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _error_responses() -> dict:
    return {code: _error_response(text) for code, text in ERRORS.items()}


def _refusal_responses(method: str, resources: list[str]) -> dict:
    """What a write the API never allows answers: 405 with each resource's reason."""
    reasons = "; ".join(f"{r}: {records.REFUSED[(r, method)]}" for r in resources)
    return {
        "401": _error_response(ERRORS["401"]),
        "404": _error_response("unknown resource"),
        "405": {
            **_error_response(f"always refused, with the reason ({reasons})"),
            "headers": {"Allow": {"schema": {"type": "string"}}},
        },
    }


def _success_responses(endpoint: str, response: str | None, resources: list[str], resource_schemas: dict) -> dict:
    oks = SUCCESS_CODES.get(endpoint, ["200"])
    found: dict = {}
    for ok in oks:
        found[ok] = {
            "description": "saved again: the same submission_key" if ok == "200" and len(oks) > 1 else "success"
        }
        if response:
            found[ok]["content"] = {"application/json": {"schema": _schema_of(response, resources, resource_schemas)}}
    return found


def _parameters(endpoint: str, path: str, resources: list[str], resource: str | None) -> list[dict]:
    """The path's templates (unless ``resource`` fills in {resource}) and a list's paging."""
    params = []
    if "{resource}" in path and not resource:
        params.append(
            {"name": "resource", "in": "path", "required": True, "schema": {"type": "string", "enum": resources}}
        )
    if "{id}" in path:
        params.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"}})
    if endpoint == "list_records":
        params += [
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": records.MAX_PAGE},
            },
            {"name": "after", "in": "query", "schema": {"type": "string"}},
            {"name": "updated_since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
        ]
    return params


def _schema_of(name: str, resources: list[str], resource_schemas: dict) -> dict:
    """The schema ``name`` of a ROUTES entry stands for: a record or page of ``resources``, or a named one."""
    record: dict[str, Any] = {
        "anyOf": [{"$ref": f"#/components/schemas/{r}"} for r in resources if r in resource_schemas]
    }
    if len(record["anyOf"]) == 1:
        record = record["anyOf"][0]
    if name == "Record":
        return record
    if name == "Page":
        return {
            "type": "object",
            "required": ["items", "next_after"],
            "properties": {"items": {"type": "array", "items": record}, "next_after": {"type": ["string", "null"]}},
        }
    if name == "object":
        return {"type": "object"}
    return {"$ref": f"#/components/schemas/{name}"}
