"""The JSON API under /api/v1: sync endpoints and the main resources, with device tokens.

Every route is described once in ``ROUTES``; the OpenAPI document at
/api/v1/openapi.json is generated from that list and the tables' columns.
"""

from __future__ import annotations

import gzip
import json

from flask import Blueprint, Response, current_app, g, request

from ..db import get_db
from ..sync import devices, engine, records, server
from ..sync.engine import SyncRejected
from ..sync.records import RecordError

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# One description of the routes: (method, path, endpoint, summary, request body, response).
ROUTES = [
    ("GET", "/openapi.json", "openapi", "This document.", None, "object"),
    ("GET", "/sync/hello", "sync_hello", "Who this token belongs to: device, site and sync settings.", None,
     "Hello"),
    ("POST", "/sync/push", "sync_push", "Apply one batch of changes atomically (gzip JSON); a batch sent twice "
     "is acknowledged again and changes nothing.", "Batch", "Ack"),
    ("POST", "/sync/pull", "sync_pull", "The site's changes after a cursor, not counting the device's own.",
     "PullRequest", "PullPage"),
    ("GET", "/{resource}", "list_records", "List records of the device's site, by id; page with 'after'.", None,
     "Page"),
    ("POST", "/{resource}", "create_record", "Create a record in the device's site.", "Record", "Record"),
    ("GET", "/{resource}/{id}", "get_record", "One record.", None, "Record"),
    ("PATCH", "/{resource}/{id}", "update_record", "Change some fields of a record.", "Record", "Record"),
    ("DELETE", "/{resource}/{id}", "delete_record", "Delete a record (it travels to laptops as a deletion).",
     None, None),
]


class ApiError(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def error(message: str, status: int) -> Response:
    response = current_app.json.response({"error": message})
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
    return error(str(exc), exc.status)


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
        known = db.execute("select revoked_at from sync_devices where token_hash = ?",
                           (devices.hash_token(token.strip()),)).fetchone()
        if known:
            raise ApiError(f"This device was revoked on {known[0]}; ask the central office for a new token.", 401)
        raise ApiError("Unknown token. Check the token given when the device was added.", 401)
    g.device = device
    limit = int(current_app.config["SYNC_MAX_BODY_MB"] * 1024 * 1024)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(f"The body is larger than {current_app.config['SYNC_MAX_BODY_MB']} MB.", 413)


def body_json():
    """The request body as JSON, gunzipped when sent with Content-Encoding: gzip."""
    limit = int(current_app.config["SYNC_MAX_BODY_MB"] * 1024 * 1024)
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise ApiError(f"The body is larger than {current_app.config['SYNC_MAX_BODY_MB']} MB.", 413)
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        return engine.decompress(raw, limit * 8)
    try:
        return json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiError(f"The body is not valid JSON: {exc}", 400) from exc


def reply(obj, status: int = 200) -> Response:
    """JSON, gzip-compressed when the client accepts it (sync pages can be large)."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    response = Response(data, status=status, mimetype="application/json")
    if "gzip" in request.headers.get("Accept-Encoding", "") and len(data) > 1024:
        response.set_data(gzip.compress(data, 6))
        response.headers["Content-Encoding"] = "gzip"
    return response


def central_config() -> server.CentralConfig:
    if not current_app.config.get("SYNC_CENTRAL"):
        raise ApiError("This server is not a central server (start it with 'group-ipt serve --central').", 404)
    return server.CentralConfig.from_app_config(current_app.config)


@bp.route("/sync/hello")
def sync_hello():
    return reply(server.hello(get_db(), g.device, central_config()))


@bp.route("/sync/push", methods=["POST"])
def sync_push():
    config = central_config()
    return reply(server.push(get_db(), g.device, body_json(), config))


@bp.route("/sync/pull", methods=["POST"])
def sync_pull():
    config = central_config()
    return reply(server.pull(get_db(), g.device, body_json(), config))


@bp.route("/<resource>", methods=["GET"])
def list_records(resource):
    try:
        limit = int(request.args.get("limit", 100))
    except ValueError as exc:
        raise ApiError("'limit' must be a whole number.", 400) from exc
    return reply(records.list_records(get_db(), resource, g.device["site_id"], after=request.args.get("after"),
                                      limit=limit, updated_since=request.args.get("updated_since")))


@bp.route("/<resource>", methods=["POST"])
def create_record(resource):
    return reply(records.create_record(get_db(), resource, g.device, body_json()), 201)


@bp.route("/<resource>/<record_id>", methods=["GET"])
def get_record(resource, record_id):
    return reply(records.get_record(get_db(), resource, g.device["site_id"], record_id))


@bp.route("/<resource>/<record_id>", methods=["PATCH"])
def update_record(resource, record_id):
    return reply(records.update_record(get_db(), resource, g.device, record_id, body_json()))


@bp.route("/<resource>/<record_id>", methods=["DELETE"])
def delete_record(resource, record_id):
    records.delete_record(get_db(), resource, g.device, record_id)
    return Response(status=204)


@bp.route("/openapi.json")
def openapi():
    return reply(openapi_document(get_db()))


# ---- the OpenAPI document ------------------------------------------------------------------

SQL_TYPES = {"integer": "integer", "real": "number", "text": "string", "": "string", "blob": "string"}

SYNC_SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Hello": {"type": "object", "properties": {
        "device_id": {"type": "string"}, "device_name": {"type": "string"}, "site": {"type": "object"},
        "settings": {"type": "object", "properties": {"send_names": {"type": "boolean"}}},
        "server_time": {"type": "string"}}},
    "Change": {"type": "object", "required": ["t", "id", "site", "hlc", "del"], "properties": {
        "t": {"type": "string", "description": "table"}, "id": {"type": "string"}, "site": {"type": "string"},
        "hlc": {"type": "string", "description": "hybrid logical clock: 15-digit ms . 10-digit counter . node"},
        "base": {"type": ["string", "null"], "description": "the version this one was made on top of"},
        "del": {"type": "boolean"}, "data": {"type": ["object", "null"]}}},
    "Batch": {"type": "object", "required": ["batch_no", "records"], "properties": {
        "batch_no": {"type": "integer", "minimum": 1}, "node": {"type": "string"},
        "records": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}}}},
    "Ack": {"type": "object", "properties": {
        "batch_no": {"type": "integer"}, "duplicate": {"type": "boolean"}, "applied": {"type": "integer"},
        "duplicates": {"type": "integer"}, "conflicts": {"type": "integer"}, "quarantined": {"type": "integer"}}},
    "PullRequest": {"type": "object", "properties": {
        "cursor": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
        "first": {"type": "boolean"},
        "files": {"type": "object", "additionalProperties": {"type": "string"},
                  "description": "the laptop's shared files: path -> sha256"}}},
    "PullPage": {"type": "object", "properties": {
        "changes": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}},
        "cursor": {"type": "integer"}, "more": {"type": "boolean"}, "settings": {"type": "object"},
        "open_conflicts": {"type": "integer"}, "reference": {"type": "object"},
        "files": {"type": "object", "additionalProperties": {"type": "string", "contentEncoding": "base64"}}}},
}


def _resource_schemas(db) -> dict:
    schemas = {}
    for resource, table in records.RESOURCES.items():
        if table not in db.table_names():
            continue
        cols = records.columns(db, resource)
        schemas[resource] = {
            "type": "object",
            "properties": {c["name"]: {"type": [SQL_TYPES.get(c["type"], "string"), "null"],
                                       **({"readOnly": True} if c["name"] in records.MANAGED else {})}
                           for c in cols},
            "required": [c["name"] for c in cols if c["required"] and c["name"] not in records.MANAGED],
        }
    return schemas


def openapi_document(db) -> dict:
    from .. import __version__

    resource_schemas = _resource_schemas(db)
    paths: dict = {}
    errors = {str(code): {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, text in [("400", "malformed request"), ("401", "missing, unknown or revoked token"),
                           ("403", "another site's data"), ("404", "not found"), ("409", "conflicts with a rule"),
                           ("413", "too large")]}
    one_of = {"oneOf": [{"$ref": f"#/components/schemas/{r}"} for r in resource_schemas]}

    def schema_of(name: str) -> dict:
        if name == "Record":
            return one_of
        if name == "Page":
            return {"type": "object", "properties": {"items": {"type": "array", "items": one_of},
                                                     "next_after": {"type": ["string", "null"]}}}
        if name == "object":
            return {"type": "object"}
        return {"$ref": f"#/components/schemas/{name}"}

    for method, path, endpoint, summary, body, response in ROUTES:
        op: dict = {"operationId": endpoint, "summary": summary, "responses": {**errors}}
        params = []
        if "{resource}" in path:
            params.append({"name": "resource", "in": "path", "required": True,
                           "schema": {"type": "string", "enum": list(records.RESOURCES)}})
        if "{id}" in path:
            params.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"}})
        if endpoint == "list_records":
            params += [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                             "maximum": records.MAX_PAGE}},
                {"name": "after", "in": "query", "schema": {"type": "string"}},
                {"name": "updated_since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
            ]
        if params:
            op["parameters"] = params
        if body:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema_of(body)}}}
        ok = "201" if endpoint == "create_record" else "204" if response is None else "200"
        op["responses"][ok] = {"description": "success"}
        if response:
            op["responses"][ok]["content"] = {"application/json": {"schema": schema_of(response)}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "group-ipt API", "version": __version__,
                 "description": "Sync and the main records of a group IPT programme. Every call needs a device "
                                "token (group-ipt devices add) as 'Authorization: Bearer <token>'. Errors are "
                                "JSON: {\"error\": \"...\"}."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"deviceToken": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"deviceToken": {"type": "http", "scheme": "bearer"}},
            "schemas": {**SYNC_SCHEMAS, **resource_schemas},
        },
    }
