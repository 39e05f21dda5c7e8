"""The JSON API: token checks, clear errors, site limits, size limits, resources, OpenAPI."""

from __future__ import annotations

import gzip
import json

import pytest

from group_ipt import db as dbmod
from group_ipt.db import row
from group_ipt.sync import devices, tracking

from .syncing import add_device, make_central


@pytest.fixture
def centre(tmp_path):
    return make_central(tmp_path / "central")


@pytest.fixture
def cdb(centre):
    conn = dbmod.connect(centre.config["DATABASE"])
    yield conn
    conn.close()


@pytest.fixture
def token(centre):
    return add_device(centre, "lap-a", "KMP")[1]


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def site_id(cdb, code):
    return row(cdb, "select id from sites where code = ?", (code,))["id"]


def batch(cdb, site_code="KMP", n=1, batch_no=1, **data):
    records = []
    for i in range(n):
        rid = f"p-{batch_no}-{i}"
        records.append({"t": "participants", "id": rid, "site": site_id(cdb, site_code),
                        "hlc": tracking.format_hlc(tracking.now_ms(), i, "laptop"), "base": None, "del": False,
                        "data": {"id": rid, "site_id": site_id(cdb, site_code), "code": f"{site_code}-{batch_no}-{i}",
                                 "name": "", "sex": "female", "created_at": "2026-01-01T00:00:00+00:00",
                                 "updated_at": "2026-01-01T00:00:00+00:00", **data}})
    return {"batch_no": batch_no, "node": "laptop", "records": records}


def push(client, token, body, **headers):
    data = gzip.compress(json.dumps(body).encode()) if not isinstance(body, bytes) else body
    return client.post("/api/v1/sync/push", data=data,
                       headers={**auth(token), "Content-Encoding": "gzip", "Content-Type": "application/json",
                                **headers})


def count(cdb, table="participants"):
    return row(cdb, f"select count(*) as n from {table}")["n"]


def test_push_applies_a_batch(centre, cdb, token):
    response = push(centre.test_client(), token, batch(cdb, n=3))
    assert response.status_code == 200
    assert response.json == {"batch_no": 1, "duplicate": False, "applied": 3, "duplicates": 0, "conflicts": 0,
                             "quarantined": 0}
    assert count(cdb) == 3


@pytest.mark.parametrize("headers, message", [
    ({}, "needs a device token"),
    ({"Authorization": "Bearer gipt_wrong"}, "Unknown token"),
    ({"Authorization": "Basic abc"}, "needs a device token"),
])
def test_missing_or_wrong_token_is_refused(centre, cdb, headers, message):
    response = centre.test_client().post("/api/v1/sync/push", data=b"{}", headers=headers)
    assert response.status_code == 401
    assert message in response.json["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_device_is_refused_and_nothing_written(centre, cdb, token):
    devices.revoke_device(cdb, "lap-a")
    response = push(centre.test_client(), token, batch(cdb))
    assert response.status_code == 401 and "revoked" in response.json["error"]
    assert count(cdb) == 0 and count(cdb, "sync_batches") == 0


def test_another_sites_data_is_refused_and_nothing_written(centre, cdb, token):
    body = batch(cdb, n=2)
    body["records"] += batch(cdb, site_code="MSK", batch_no=1)["records"]
    response = push(centre.test_client(), token, body)
    assert response.status_code == 403 and "another site" in response.json["error"]
    assert count(cdb) == 0 and count(cdb, "sync_log") == 0


def test_taking_over_another_sites_record_is_refused(centre, cdb, token):
    msk_token = add_device(centre, "lap-m", "MSK")[1]
    assert push(centre.test_client(), msk_token, batch(cdb, site_code="MSK")).status_code == 200
    body = batch(cdb, site_code="MSK")
    body["records"][0]["site"] = body["records"][0]["data"]["site_id"] = site_id(cdb, "KMP")
    response = push(centre.test_client(), token, body)
    assert response.status_code == 403
    assert row(cdb, "select site_id from participants")["site_id"] == site_id(cdb, "MSK")


@pytest.mark.parametrize("body, message", [
    (b"not gzip", "not valid gzip"),
    (gzip.compress(b"{not json"), "not valid JSON"),
    (gzip.compress(b"[]"), "'records' list"),
    (gzip.compress(b'{"batch_no": 0, "records": []}'), "positive integer"),
    (gzip.compress(b'{"batch_no": 1, "records": [{"t": "users"}]}'), "no valid 'id'"),
])
def test_malformed_batches_are_refused(centre, cdb, token, body, message):
    response = push(centre.test_client(), token, body)
    assert response.status_code == 400 and message in response.json["error"]
    assert count(cdb, "sync_batches") == 0


def test_a_batch_touching_users_is_refused(centre, cdb, token):
    body = batch(cdb)
    body["records"][0]["t"] = "users"
    response = push(centre.test_client(), token, body)
    assert response.status_code == 400 and "does not sync from a laptop" in response.json["error"]


def test_malformed_clock_is_refused(centre, cdb, token):
    body = batch(cdb)
    body["records"][0]["hlc"] = "tomorrow"
    response = push(centre.test_client(), token, body)
    assert response.status_code == 400 and "clock" in response.json["error"]


def test_huge_payloads_are_refused(tmp_path):
    centre = make_central(tmp_path / "c", SYNC_MAX_BODY_MB=0.01, SYNC_MAX_BATCH_RECORDS=10)
    cdb = dbmod.connect(centre.config["DATABASE"])
    token = add_device(centre, "lap-a", "KMP")[1]
    client = centre.test_client()
    big = push(client, token, b"x" * 20_000)
    assert big.status_code == 413 and "larger than" in big.json["error"]
    bomb = push(client, token, gzip.compress(b" " * 200_000))  # small on the wire, huge unpacked
    assert bomb.status_code == 413
    many = push(client, token, batch(cdb, n=11))
    assert many.status_code == 413 and "at most 10 records" in many.json["error"]
    assert count(cdb) == 0
    cdb.close()


def test_sync_endpoints_need_central_mode(tmp_path):
    app = make_central(tmp_path / "c", SYNC_CENTRAL=False)
    token = add_device(app, "lap-a", "KMP")[1]
    response = app.test_client().get("/api/v1/sync/hello", headers=auth(token))
    assert response.status_code == 404 and "not a central server" in response.json["error"]


def test_resources_crud_within_the_devices_site(centre, cdb, token):
    client = centre.test_client()
    created = client.post("/api/v1/participants", json={"code": "KMP-0100-A", "name": "", "sex": "male"},
                          headers=auth(token))
    assert created.status_code == 201
    pid = created.json["id"]
    assert created.json["site_id"] == site_id(cdb, "KMP")
    assert row(cdb, "select table_name from sync_log where record_id = ?", (pid,))  # captured for laptops
    listed = client.get("/api/v1/participants?limit=10", headers=auth(token)).json
    assert [p["id"] for p in listed["items"]] == [pid]
    patched = client.patch(f"/api/v1/participants/{pid}", json={"village": "Nsambya"}, headers=auth(token))
    assert patched.status_code == 200 and patched.json["village"] == "Nsambya"
    other = add_device(centre, "lap-m", "MSK")[1]
    assert client.get(f"/api/v1/participants/{pid}", headers=auth(other)).status_code == 404
    assert client.delete(f"/api/v1/participants/{pid}", headers=auth(token)).status_code == 204
    assert client.get(f"/api/v1/participants/{pid}", headers=auth(token)).status_code == 404


@pytest.mark.parametrize("body, status, message", [
    ({"code": "KMP-1"}, 400, "Missing required field(s)"),
    ({"code": "KMP-1", "name": "", "sex": "male", "colour": "x"}, 400, "Unknown field(s)"),
    ({"code": "KMP-1", "name": "", "sex": "male", "site_id": "x"}, 400, "set by the server"),
    ({"code": "KMP-1", "name": "", "sex": "robot"}, 409, "breaks a rule"),
])
def test_resource_errors_are_clear_json(centre, token, body, status, message):
    response = centre.test_client().post("/api/v1/participants", json=body, headers=auth(token))
    assert response.status_code == status and message in response.json["error"]


def test_unknown_resource_is_404_json(centre, token):
    response = centre.test_client().get("/api/v1/nothing", headers=auth(token))
    assert response.status_code == 404 and "Unknown resource" in response.json["error"]


def test_openapi_document_describes_every_route(centre, token):
    doc = centre.test_client().get("/api/v1/openapi.json", headers=auth(token)).json
    assert doc["openapi"].startswith("3.1")
    from group_ipt.views.api import ROUTES

    for method, path, *_rest in ROUTES:
        assert method.lower() in doc["paths"][path]
    rules = {r.rule for r in centre.url_map.iter_rules() if r.rule.startswith("/api/v1")}
    documented = {"/api/v1" + p.replace("{resource}", "<resource>").replace("{id}", "<record_id>")
                  for p in doc["paths"]}
    assert rules == documented
    assert {"participants", "screenings", "referrals", "cycles", "sessions", "attendance"} <= set(
        doc["components"]["schemas"])
    assert "code" in doc["components"]["schemas"]["participants"]["required"]


def test_openapi_needs_a_token(centre):
    response = centre.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 401


def test_coordinator_sync_page_lists_conflicts(centre, cdb):
    from .conftest import PASSWORD, login

    with cdb.conn:
        cdb.execute("insert into sync_conflicts (table_name, record_id, site_id, winner_hlc, winner_json, loser_hlc,"
                    " loser_json, created_at) values ('participants', 'p1', ?, 'b', '{\"village\": \"<b>new</b>\"}',"
                    " 'a', '{\"village\": \"old\"}', 'now')", (site_id(cdb, "KMP"),))
    client = centre.test_client()
    login(client, "coord", PASSWORD)
    html = client.get("/sync/").get_data(as_text=True)
    assert "&lt;b&gt;new&lt;/b&gt;" in html and "old" in html
    client2 = centre.test_client()
    login(client2, "amina", PASSWORD)
    assert client2.get("/sync/").status_code == 403
