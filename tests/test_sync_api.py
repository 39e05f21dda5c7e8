"""The JSON API: token checks, clear errors, site limits, size limits, writes through the domain, OpenAPI."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from group_ipt.formfiles import forms as formsmod
from group_ipt.store import db as dbmod
from group_ipt.store import tracking
from group_ipt.store.db import row
from group_ipt.sync import devices, records

from .syncing import add_device, make_central


@pytest.fixture
def centre(tmp_path):
    """A central server of a programme that lets names travel (the API registers people there)."""
    return make_central(tmp_path / "central", SYNC_SEND_NAMES=True)


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
        records.append(
            {
                "t": "participants",
                "id": rid,
                "site": site_id(cdb, site_code),
                "hlc": tracking.format_hlc(tracking.now_ms(), i, "laptop"),
                "base": None,
                "del": False,
                "data": {
                    "id": rid,
                    "site_id": site_id(cdb, site_code),
                    "code": f"{site_code}-{batch_no}-{i}",
                    "name": "",
                    "sex": "female",
                    "created_at": "2026-01-01T00:00:00+00:00",
                    "updated_at": "2026-01-01T00:00:00+00:00",
                    **data,
                },
            }
        )
    return {"batch_no": batch_no, "node": "laptop", "records": records}


def push(client, token, body, **headers):
    data = gzip.compress(json.dumps(body).encode()) if not isinstance(body, bytes) else body
    return client.post(
        "/api/v1/sync/push",
        data=data,
        headers={**auth(token), "Content-Encoding": "gzip", "Content-Type": "application/json", **headers},
    )


def count(cdb, table="participants"):
    return row(cdb, f"select count(*) as n from {table}")["n"]


def test_push_applies_a_batch(centre, cdb, token):
    response = push(centre.test_client(), token, batch(cdb, n=3))
    assert response.status_code == 200
    assert response.json == {
        "batch_no": 1,
        "duplicate": False,
        "applied": 3,
        "duplicates": 0,
        "conflicts": 0,
        "quarantined": 0,
        "merged": 0,
        "renamed": 0,
        "released": 0,
    }
    assert count(cdb) == 3


@pytest.mark.parametrize(
    "headers, message",
    [
        ({}, "needs a device token"),
        ({"Authorization": "Bearer gipt_wrong"}, "Unknown token"),
        ({"Authorization": "Basic abc"}, "needs a device token"),
    ],
)
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


@pytest.mark.parametrize(
    "body, message",
    [
        (b"not gzip", "not valid gzip"),
        (gzip.compress(b"{not json"), "not valid JSON"),
        (gzip.compress(b"[]"), "'records' list"),
        (gzip.compress(b'{"batch_no": 0, "records": []}'), "positive integer"),
        (gzip.compress(b'{"batch_no": 1, "records": [{"t": "users"}]}'), "no valid 'id'"),
    ],
    # Named, not shown: gzip puts the clock in its header, so bytes as ids differ between runs and xdist workers.
    ids=["not-gzip", "not-json", "no-records-list", "batch-zero", "record-without-id"],
)
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


NEW_PERSON = {
    "name": "Sarah Namuli",
    "sex": "female",
    "age": 34,
    "village": "Kawempe",
    "consents": ["screening", "group"],
}


def post(client, token, path, body):
    return client.post(f"/api/v1{path}", json=body, headers=auth(token))


def patch(client, token, path, body):
    return client.patch(f"/api/v1{path}", json=body, headers=auth(token))


def test_participant_post_registers_with_a_code_and_flags_duplicates(centre, cdb, token):
    from group_ipt.core import participants

    client = centre.test_client()
    created = post(client, token, "/participants", NEW_PERSON)
    assert created.status_code == 201
    person = created.json
    assert person["site_id"] == site_id(cdb, "KMP") and person["status"] == "registered"
    assert person["code"].startswith("KMP-") and participants.code_is_valid(person["code"])
    assert person["birth_year"] is not None and person["age_is_estimate"] == 1
    assert person["possible_duplicates"] == []
    consents = {
        r["purpose"]: r["given"] for r in cdb.query("select * from consents where participant_id = ?", (person["id"],))
    }
    assert consents == {"screening": 1, "group": 1, "data_sharing": 0}
    assert (
        row(cdb, "select username from audit_log where record_id = ? and action = 'create'", (person["id"],))[
            "username"
        ]
        == "device:lap-a"
    )
    assert row(cdb, "select table_name from sync_log where record_id = ?", (person["id"],))  # captured for laptops
    again = post(client, token, "/participants", {**NEW_PERSON, "age": 36})
    assert again.status_code == 201 and again.json["code"] != person["code"]
    assert again.json["possible_duplicates"] == [{"id": person["id"], "code": person["code"]}]
    assert count(cdb, "duplicate_flags") == 1
    listed = client.get("/api/v1/participants?limit=10", headers=auth(token)).json
    assert {p["id"] for p in listed["items"]} == {person["id"], again.json["id"]}
    other = add_device(centre, "lap-m", "MSK")[1]
    assert client.get(f"/api/v1/participants/{person['id']}", headers=auth(other)).status_code == 404


@pytest.mark.parametrize(
    "body, status, message, field",
    [
        ({"name": "A"}, 400, "Missing required field(s) for participants: sex, village, consents.", "sex"),
        (
            {**NEW_PERSON, "colour": "x"},
            400,
            "Unknown field(s) for participants: colour. Send only: name, sex, age, "
            "birth_year, village, phone, language, consents, consent_given_by.",
            "colour",
        ),
        ({**NEW_PERSON, "site_id": "x"}, 400, "These fields are set by the server: site_id.", "site_id"),
        ({**NEW_PERSON, "code": "KMP-0100-A"}, 400, "These fields are set by the server: code.", "code"),
        ({**NEW_PERSON, "status": "enrolled"}, 400, "These fields are set by the server: status.", "status"),
        ({**NEW_PERSON, "sex": "robot"}, 400, "Choose the person's sex.", "sex"),
        ({**NEW_PERSON, "name": " "}, 400, "Enter the person's name.", "name"),
        ({**NEW_PERSON, "birth_year": 1990}, 400, "Give the age or the birth year, not both.", "age"),
        ({**NEW_PERSON, "age": 3}, 400, "The age must be a whole number from 10 to 110.", "age"),
        ({**NEW_PERSON, "age": True}, 400, "'age' must be a whole number.", "age"),
        ({**NEW_PERSON, "phone": "call me"}, 400, "A phone number has digits, spaces, + ( ) or - only.", "phone"),
        (
            {**NEW_PERSON, "consents": ["group"]},
            400,
            "The person must agree to screening before you register them.",
            "consent",
        ),
        ({**NEW_PERSON, "consents": "screening"}, 400, "'consents' must be a list of text.", "consents"),
        ({**NEW_PERSON, "name": 7}, 400, "'name' must be text.", "name"),
        (["not", "an", "object"], 400, "The body must be a JSON object of fields.", None),
    ],
)
def test_participant_errors_are_clear_json_and_nothing_is_written(centre, cdb, token, body, status, message, field):
    response = post(centre.test_client(), token, "/participants", body)
    assert response.status_code == status
    assert response.json["error"] == message
    assert response.json.get("field") == field
    assert count(cdb) == 0 and count(cdb, "consents") == 0


def test_participant_patch_changes_only_the_details_with_registration_checks(centre, cdb, token):
    client = centre.test_client()
    pid = post(client, token, "/participants", NEW_PERSON).json["id"]
    before = row(cdb, "select * from participants where id = ?", (pid,))
    patched = patch(client, token, f"/participants/{pid}", {"village": " Nsambya ", "phone": "+256 772 000000"})
    assert patched.status_code == 200
    assert (patched.json["village"], patched.json["phone"]) == ("Nsambya", "+256 772 000000")
    assert (
        row(cdb, "select username from audit_log where record_id = ? and action = 'update'", (pid,))["username"]
        == "device:lap-a"
    )
    renamed = patch(client, token, f"/participants/{pid}", {"name": "Sarah  NAMULI"})
    assert renamed.json["name_key"] == "sarah namuli"
    for body, status, message in [
        ({"phone": "call me"}, 400, "A phone number has digits, spaces, + ( ) or - only."),
        ({"name": ""}, 400, "Enter the person's name."),
        ({"sex": "male"}, 400, "These fields cannot be changed through the API: sex."),
        (
            {"code": "KMP-0001-A", "birth_year": 1950},
            400,
            "These fields cannot be changed through the API: birth_year, code.",
        ),
        ({"updated_at": "x"}, 400, "These fields are set by the server: updated_at."),
        (
            {"hair": "long"},
            400,
            "Unknown field(s) for participants: hair. Send only: name, village, phone, language, status, reason.",
        ),
        ({"status": "dropped_out", "reason": "moved away"}, 403, records.STATUS_BY_DEVICE),
    ]:
        response = patch(client, token, f"/participants/{pid}", body)
        assert (response.status_code, response.json["error"]) == (status, message), body
    after = row(cdb, "select * from participants where id = ?", (pid,))
    assert (after["sex"], after["birth_year"], after["code"], after["status"], after["phone"]) == (
        before["sex"],
        before["birth_year"],
        before["code"],
        "registered",
        "+256 772 000000",
    )
    other = add_device(centre, "lap-m", "MSK")[1]
    assert patch(client, other, f"/participants/{pid}", {"village": "Masaka"}).status_code == 404


def test_a_renamed_participant_is_flagged_as_a_possible_duplicate_once(centre, cdb, token):
    client = centre.test_client()
    first = post(client, token, "/participants", NEW_PERSON).json
    second = post(client, token, "/participants", {**NEW_PERSON, "name": "Grace Auma"}).json
    assert second["possible_duplicates"] == [] and count(cdb, "duplicate_flags") == 0
    renamed = patch(client, token, f"/participants/{second['id']}", {"name": "sarah namuli"})
    assert renamed.json["possible_duplicates"] == [{"id": first["id"], "code": first["code"]}]
    again = patch(client, token, f"/participants/{second['id']}", {"village": "KAWEMPE"})
    assert again.json["possible_duplicates"] == [] and count(cdb, "duplicate_flags") == 1


def test_participants_are_never_deleted(centre, cdb, token):
    client = centre.test_client()
    pid = post(client, token, "/participants", NEW_PERSON).json["id"]
    response = client.delete(f"/api/v1/participants/{pid}", headers=auth(token))
    assert response.status_code == 405
    assert response.json["error"] == records.REFUSED[("participants", "DELETE")]
    assert response.headers["Allow"] == "GET, PATCH"
    assert client.get(f"/api/v1/participants/{pid}", headers=auth(token)).status_code == 200


# ---- screenings ----------------------------------------------------------------------------


def answers(*values):
    return {f"q{i}": v for i, v in enumerate(values, start=1)}


def screen(client, token, pid, values, **extra):
    return post(
        client,
        token,
        "/screenings",
        {
            "participant_id": pid,
            "instrument_id": "phq9",
            "answers": values,
            "submission_key": uuid.uuid4().hex,
            **extra,
        },
    )


@pytest.fixture
def person(centre, token):
    return post(centre.test_client(), token, "/participants", NEW_PERSON).json


def test_screening_with_item_9_creates_an_unacknowledged_referral(centre, cdb, token, person):
    client = centre.test_client()
    response = screen(client, token, person["id"], answers(2, 2, 1, 1, 0, 1, 0, 0, 1))
    assert response.status_code == 201
    saved = response.json
    assert (saved["total"], saved["band"], saved["risk"], saved["eligible"]) == (8, "Mild", 1, 0)
    assert json.loads(saved["risk_items_json"]) == ["q9"]
    assert saved["administered_by"] is None and saved["participant_id"] == person["id"]
    referral = row(cdb, "select * from referrals where screening_id = ?", (saved["id"],))
    assert saved["referral_id"] == referral["id"] and saved["referral_urgency"] == "routine"
    assert (referral["status"], referral["acknowledged_at"]) == ("open", None)
    assert saved["safety_steps"]["title"] == "Safety follow-up needed"
    assert count(cdb, "referral_followups") > 0
    worst = screen(client, token, person["id"], answers(0, 0, 0, 0, 0, 0, 0, 0, 3))
    assert worst.json["referral_urgency"] == "urgent" and worst.json["safety_steps"]["title"].startswith("Urgent")


def test_screening_and_its_referral_are_one_transaction(centre, cdb, token, person, monkeypatch):
    from group_ipt.core import referrals

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(referrals, "create", broken)
    with pytest.raises(RuntimeError):
        screen(centre.test_client(), token, person["id"], answers(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert count(cdb, "screenings") == 0 and count(cdb, "referrals") == 0


def test_screening_without_risk_has_no_referral(centre, cdb, token, person):
    response = screen(centre.test_client(), token, person["id"], answers(3, 3, 3, 3, 2, 2, 1, 0, 0))
    assert response.status_code == 201
    assert (response.json["total"], response.json["eligible"], response.json["risk"]) == (17, 1, 0)
    assert response.json["referral_id"] is None and response.json["safety_steps"] is None
    assert count(cdb, "referrals") == 0
    assert row(cdb, "select status from participants where id = ?", (person["id"],))["status"] == "eligible"


@given(
    before=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=8, max_size=8),
    q9=st.integers(1, 3),
    as_text=st.booleans(),
    risk_observed=st.booleans(),
)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_phq9_item_9_above_0_through_the_api_makes_a_referral(
    centre, cdb, token, person, before, q9, as_text, risk_observed
):
    values = answers(*before, q9)
    if as_text:
        values = {k: None if v is None else str(v) for k, v in values.items()}
    response = screen(centre.test_client(), token, person["id"], values, risk_observed=risk_observed)
    assert response.status_code == 201, response.json
    assert response.json["risk"] == 1 and response.json["referral_id"]
    referral = row(cdb, "select * from referrals where id = ?", (response.json["referral_id"],))
    assert referral["screening_id"] == response.json["id"] and referral["acknowledged_at"] is None
    assert referral["status"] == "open"
    assert referral["urgency"] == ("urgent" if q9 >= 2 or risk_observed else "routine")  # q9 of 2-3 is urgent


def test_the_same_submission_key_saves_once(centre, cdb, token, person):
    client = centre.test_client()
    body = {
        "participant_id": person["id"],
        "instrument_id": "phq9",
        "submission_key": "k" * 20,
        "answers": answers(1, 1, 1, 1, 1, 1, 1, 1, 2),
    }
    first = post(client, token, "/screenings", body)
    second = post(client, token, "/screenings", body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json["id"] == first.json["id"] and second.json["referral_id"] == first.json["referral_id"]
    assert count(cdb, "screenings") == 1 and count(cdb, "referrals") == 1


@pytest.mark.parametrize(
    "change, status, message, field",
    [
        ({"instrument_id": "nope"}, 400, "No instrument 'nope'; choose one of: ", "instrument_id"),
        ({"answers": answers(7)}, 400, "Question q1: ", "q1"),
        ({"answers": {"q99": 1}}, 400, "Question q99: no such question in phq9.", "q99"),
        ({"answers": answers(1.5)}, 400, "The answer to q1 must be a whole number, text or null.", "q1"),
        ({"answers": [1, 2]}, 400, "'answers' must be a JSON object.", "answers"),
        ({"submission_key": "short"}, 400, "This form has no valid submission key.", None),
        ({"submission_key": None}, 400, "Missing required field(s) for screenings: submission_key.", "submission_key"),
        (
            {"administered_on": "2999-01-01"},
            400,
            "The date of the screening cannot be in the future.",
            "administered_on",
        ),
        (
            {"administered_on": "2 March"},
            400,
            "'administered_on' must be a date written YYYY-MM-DD.",
            "administered_on",
        ),
        ({"occasion": "party"}, 400, "Unknown occasion party.", "occasion"),
        ({"exclusions": ["flying"]}, 400, "Unknown exclusion flying.", "exclusions"),
        ({"risk_observed": "yes"}, 400, "'risk_observed' must be true or false.", "risk_observed"),
        ({"total": 0}, 400, "These fields are set by the server: total.", "total"),
        ({"risk": 0, "referral_id": "r1"}, 400, "Unknown field(s) for screenings: referral_id.", "referral_id"),
        ({"cycle_id": "c1"}, 400, "This person is not a member of that cycle.", None),
        ({"participant_id": "nobody"}, 404, "No participants record 'nobody'.", "participant_id"),
    ],
)
def test_screening_errors_are_clear_and_nothing_is_saved(centre, cdb, token, person, change, status, message, field):
    body = {
        "participant_id": person["id"],
        "instrument_id": "phq9",
        "submission_key": uuid.uuid4().hex,
        "answers": answers(0, 0, 0, 0, 0, 0, 0, 0, 2),
        **change,
    }
    response = post(centre.test_client(), token, "/screenings", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == status
    assert response.json["error"].startswith(message)
    assert response.json.get("field") == field
    assert count(cdb, "screenings") == 0 and count(cdb, "referrals") == 0


def test_another_sites_participant_cannot_be_screened(centre, cdb, token, person):
    other = add_device(centre, "lap-m", "MSK")[1]
    response = screen(centre.test_client(), other, person["id"], answers(0, 0, 0, 0, 0, 0, 0, 0, 1))
    assert response.status_code == 404 and count(cdb, "screenings") == 0


def test_screenings_cannot_be_changed_or_deleted(centre, cdb, token, person):
    client = centre.test_client()
    saved = screen(client, token, person["id"], answers(0, 0, 0, 0, 0, 0, 0, 0, 2)).json
    before = row(cdb, "select * from screenings where id = ?", (saved["id"],))
    for method, body in [("PATCH", {"answers_json": '{"q9": 0}', "risk": 0}), ("PATCH", {}), ("DELETE", None)]:
        response = client.open(f"/api/v1/screenings/{saved['id']}", method=method, json=body, headers=auth(token))
        assert response.status_code == 405
        assert response.json["error"] == "Screenings are facts: record a new screening to correct one."
        assert response.headers["Allow"] == "GET"
    assert row(cdb, "select * from screenings where id = ?", (saved["id"],)) == before
    assert count(cdb, "screenings") == 1 and count(cdb, "referrals") == 1


# ---- referrals -----------------------------------------------------------------------------


def test_manual_referral_and_its_steps(centre, cdb, token, person):
    client = centre.test_client()
    created = post(
        client,
        token,
        "/referrals",
        {
            "participant_id": person["id"],
            "reason": "Spoke of hopelessness",
            "urgency": "routine",
            "note": "Seen at the market",
        },
    )
    assert created.status_code == 201
    ref = created.json
    assert (ref["status"], ref["acknowledged_at"], ref["note"], ref["screening_id"]) == (
        "open",
        None,
        "Seen at the market",
        None,
    )
    assert json.loads(ref["triggers_json"]) == [{"kind": "manual", "reason": "Spoke of hopelessness"}]
    url = f"/referrals/{ref['id']}"
    steps = [
        (
            {"status": "referred", "referred_to": "Health centre"},
            400,
            "Acknowledge the safety alert before changing the referral.",
        ),
        ({"acknowledge": False}, 400, 'An acknowledgement cannot be undone; send "acknowledge": true.'),
        ({"acknowledge": True}, 200, None),
        ({"acknowledge": True, "status": "referred"}, 400, records.REFERRAL_CHANGES),
        ({}, 400, records.REFERRAL_CHANGES),
        ({"acknowledge": True, "note": "x"}, 400, "note cannot go with 'acknowledge'. " + records.REFERRAL_CHANGES),
        ({"urgency": "urgent"}, 400, "These fields cannot be changed through the API: urgency."),
        ({"status": "referred"}, 400, "Say where or to whom the person was referred."),
        ({"status": "referred", "referred_to": "Health centre"}, 200, None),
        ({"status": "open"}, 400, "A referral moves forward only: it is already referred."),
        ({"status": "closed", "note": "Better now"}, 400, "Only a coordinator or supervisor can close a referral."),
    ]
    for body, status, message in steps:
        response = patch(client, token, url, body)
        assert response.status_code == status, (body, response.json)
        if message:
            assert response.json["error"] == message, body
    saved = row(cdb, "select * from referrals where id = ?", (ref["id"],))
    assert saved["acknowledged_at"] and saved["acknowledged_by"] is None
    assert (saved["status"], saved["referred_to"]) == ("referred", "Health centre")
    followup = row(cdb, "select * from referral_followups where referral_id = ? order by due_on", (ref["id"],))
    done = patch(client, token, url, {"followup_id": followup["id"], "done_on": "2026-01-05", "note": "Called"})
    assert done.status_code == 200
    assert row(cdb, "select done_on from referral_followups where id = ?", (followup["id"],))["done_on"] == "2026-01-05"
    again = patch(client, token, url, {"followup_id": followup["id"], "done_on": "2026-01-05"})
    assert again.status_code == 400 and again.json["error"] == "This follow-up was already recorded."
    missing = patch(client, token, url, {"followup_id": followup["id"]})
    assert missing.json["error"] == "Missing required field(s) for referrals: done_on."
    actions = [
        r["action"] for r in cdb.query("select action from audit_log where record_id = ? order by id", (ref["id"],))
    ]
    assert actions == ["create", "acknowledge", "set_status"]
    deleted = client.delete(f"/api/v1{url}", headers=auth(token))
    assert deleted.status_code == 405 and deleted.json["error"] == records.REFUSED[("referrals", "DELETE")]
    other = add_device(centre, "lap-m", "MSK")[1]
    assert patch(client, other, url, {"acknowledge": True}).status_code == 404


@pytest.mark.parametrize(
    "change, message, field",
    [
        ({"urgency": "soon"}, "Choose how urgent the referral is.", "urgency"),
        ({"reason": "  "}, "Say why the person is referred.", "reason"),
        ({"reason": None}, "Missing required field(s) for referrals: reason.", "reason"),
        ({"status": "referred"}, "These fields are set by the server: status.", "status"),
        ({"screening_id": "s1"}, "These fields are set by the server: screening_id.", "screening_id"),
    ],
)
def test_manual_referral_errors(centre, cdb, token, person, change, message, field):
    body = {"participant_id": person["id"], "reason": "Worried", "urgency": "urgent", **change}
    response = post(centre.test_client(), token, "/referrals", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400
    assert (response.json["error"], response.json["field"]) == (message, field)
    assert count(cdb, "referrals") == 0


# ---- cycles, sessions, attendance ----------------------------------------------------------


@pytest.fixture
def group(centre, cdb):
    """A who-8 cycle at KMP (first session 2 March 2026) with three members, in the central database."""
    from group_ipt.core import cycles

    from .conftest import add_participant
    from .test_cycles import make_cycle

    cycle = make_cycle(cdb, centre.extensions[formsmod.EXTENSION].protocols)
    people = [add_participant(cdb, name=n) for n in ("Agnes Auma", "Betty Birungi", "Carol Cherop")]
    members = [cycles.enrol(cdb, cycle["id"], p["id"], actor=None, today=date(2026, 2, 20))[0]["id"] for p in people]
    return {"cycle": cycle, "members": members, "sessions": cycles.sessions(cdb, cycle["id"])}  # by date


@pytest.mark.parametrize(
    "method, path, message, allow",
    [
        ("POST", "/cycles", records.CYCLES_IN_APP, "GET"),
        ("PATCH", "/cycles/{cycle}", records.CYCLES_IN_APP, "GET"),
        ("DELETE", "/cycles/{cycle}", records.CYCLES_IN_APP, "GET"),
        ("POST", "/sessions", records.CYCLES_IN_APP, "GET"),
        ("PATCH", "/sessions/{session}", records.CYCLES_IN_APP, "GET"),
        ("DELETE", "/sessions/{session}", records.CYCLES_IN_APP, "GET"),
        ("POST", "/attendance", records.WHOLE_SHEET, "GET"),
        ("PATCH", "/attendance/{attendance}", records.WHOLE_SHEET, "GET"),
        ("DELETE", "/attendance/{attendance}", records.WHOLE_SHEET, "GET"),
    ],
)
def test_cycles_sessions_and_single_attendance_rows_are_read_only(
    centre, cdb, token, group, set_today, method, path, message, allow
):
    set_today("2026-03-02", "16:00")
    s1, m = group["sessions"][0], group["members"]
    client = centre.test_client()
    first = post(
        client, token, f"/sessions/{s1['id']}/attendance", {"version": 0, "attendance": dict.fromkeys(m, "present")}
    )
    assert first.status_code == 200, first.json
    ids = {
        "cycle": group["cycle"]["id"],
        "session": s1["id"],
        "attendance": row(cdb, "select id from attendance limit 1")["id"],
    }
    before = [count(cdb, t) for t in ("cycles", "sessions", "attendance")]
    response = client.open(
        f"/api/v1{path.format(**ids)}", method=method, json={"status": "cancelled"}, headers=auth(token)
    )
    assert response.status_code == 405
    assert response.json["error"] == message and response.headers["Allow"] == allow
    assert [count(cdb, t) for t in ("cycles", "sessions", "attendance")] == before
    assert row(cdb, "select status from sessions where id = ?", (s1["id"],))["status"] == "held"


def test_attendance_sheet_is_saved_whole_with_its_version(centre, cdb, token, group, set_today):
    set_today("2026-03-09", "16:00")
    m1, m2, m3 = group["members"]
    s1 = group["sessions"][0]
    client = centre.test_client()
    url = f"/api/v1/sessions/{s1['id']}/attendance"
    sheet = client.get(url, headers=auth(token)).json
    assert sheet["version"] == 0 and {p["member_id"] for p in sheet["members"]} == {m1, m2, m3}
    assert sheet["attendance"] == {}
    saved = post(
        client,
        token,
        f"/sessions/{s1['id']}/attendance",
        {
            "version": 0,
            "attendance": {m1: "present", m2: "absent", m3: "late"},
            "checks": {m1: {"trend": "better", "rating": 6}},
            "note": "Good energy",
        },
    )
    assert saved.status_code == 200, saved.json
    assert saved.json["version"] == 1 and saved.json["session"]["status"] == "held"
    assert saved.json["attendance"] == {m1: "present", m2: "absent", m3: "late"}
    assert saved.json["checks"] == {m1: {"trend": "better", "rating": 6}} and saved.json["note"] == "Good energy"
    assert (
        row(cdb, "select username from audit_log where table_name = 'sessions' and record_id = ?", (s1["id"],))[
            "username"
        ]
        == "device:lap-a"
    )
    # A second sheet made from version 0 (another laptop, another tab) is refused with what differs.
    stale = post(
        client,
        token,
        f"/sessions/{s1['id']}/attendance",
        {"version": 0, "attendance": {m1: "present", m2: "present", m3: "late"}},
    )
    assert stale.status_code == 409
    assert stale.json["error"].startswith("? saved this session")
    assert stale.json["current_version"] == 1 and stale.json["field"] == "version"
    assert stale.json["differences"] == ["Betty Birungi: saved as absent, you chose present."]
    assert client.get(url, headers=auth(token)).json["attendance"][m2] == "absent"
    # Made from the current version, it goes in; the note and checks not sent are kept.
    fixed = post(
        client,
        token,
        f"/sessions/{s1['id']}/attendance",
        {"version": 1, "attendance": {m1: "present", m2: "present", m3: "late"}},
    )
    assert fixed.status_code == 200 and fixed.json["version"] == 2
    assert fixed.json["note"] == "Good energy" and fixed.json["checks"] == {m1: {"trend": "better", "rating": 6}}


def test_attendance_on_a_cancelled_session_is_refused(centre, cdb, token, group, set_today):
    from group_ipt.core import cycles

    set_today("2026-03-09", "16:00")
    s2 = group["sessions"][1]
    cycles.cancel_session(cdb, s2["id"], reason="rain", actor=None)
    response = post(
        centre.test_client(),
        token,
        f"/sessions/{s2['id']}/attendance",
        {"version": 1, "attendance": dict.fromkeys(group["members"], "present")},
    )
    assert response.status_code == 400
    assert response.json == {
        "error": f"Session {s2['number']} was cancelled; attendance cannot be recorded for it.",
        "field": None,
    }
    assert count(cdb, "attendance") == 0


@pytest.mark.parametrize(
    "change, status, message",
    [
        ({"version": None}, 400, "Missing required field(s) for sessions: version."),
        ({"version": "0"}, 400, "'version' must be a whole number."),
        ({"attendance": {"x": 1}}, 400, "The attendance of x must be text: present, absent, excused, late."),
        (
            {"attendance": {"not-a-member": "present"}},
            400,
            "Someone on this form is not a member of this cycle; reload the page.",
        ),
        ({"drop": "Carol"}, 400, "Mark the attendance of: Carol Cherop."),
        (
            {"checks": {"M2": {"rating": 4}}},
            400,
            "Betty Birungi is not marked present but has a symptom check; mark them present or clear the check.",
        ),
        ({"checks": {"M1": {"rating": 11}}}, 400, "The rating of Agnes Auma must be a whole number from 0 to 10."),
        (
            {"checks": {"M1": {"mood": "ok"}}},
            400,
            'A symptom check is {"trend": better|same|worse|null, "rating": 0-10|null}.',
        ),
        ({"status": "held"}, 400, "These fields cannot be changed through the API: status."),
        (
            {"fidelity": {}},
            400,
            "Unknown field(s) for sessions: fidelity. Send only: version, attendance, checks, note, plans.",
        ),
    ],
)
def test_attendance_errors_are_clear_and_nothing_is_saved(
    centre, cdb, token, group, set_today, change, status, message
):
    set_today("2026-03-02", "16:00")
    m1, m2, m3 = group["members"]
    body = {"version": 0, "attendance": {m1: "present", m2: "absent", m3: "present"}}
    if change.pop("drop", None):
        del body["attendance"][m3]
    if "checks" in change:
        change["checks"] = {{"M1": m1, "M2": m2}[k]: v for k, v in change["checks"].items()}
    body = {k: v for k, v in {**body, **change}.items() if v is not None}
    response = post(centre.test_client(), token, f"/sessions/{group['sessions'][0]['id']}/attendance", body)
    assert (response.status_code, response.json["error"]) == (status, message)
    assert count(cdb, "attendance") == 0


def test_another_sites_session_is_404(centre, token, group, set_today):
    set_today("2026-03-02", "16:00")
    other = add_device(centre, "lap-m", "MSK")[1]
    client = centre.test_client()
    url = f"/sessions/{group['sessions'][0]['id']}/attendance"
    assert client.get(f"/api/v1{url}", headers=auth(other)).status_code == 404
    response = post(client, other, url, {"version": 0, "attendance": dict.fromkeys(group["members"], "present")})
    assert response.status_code == 404 and response.json["error"].startswith("No sessions record")


def test_unknown_resource_is_404_json(centre, token):
    client = centre.test_client()
    for method in ("GET", "POST"):
        response = client.open("/api/v1/nothing", method=method, json={}, headers=auth(token))
        assert response.status_code == 404 and "Unknown resource" in response.json["error"]
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open("/api/v1/nothing/x", method=method, json={}, headers=auth(token))
        assert response.status_code == 404 and "Unknown resource" in response.json["error"]


def test_openapi_document_describes_every_route(centre, token):
    doc = centre.test_client().get("/api/v1/openapi.json", headers=auth(token)).json
    assert doc["openapi"].startswith("3.1")
    from group_ipt.web.views.api import ROUTES

    for method, path, *_rest in ROUTES:
        assert method.lower() in doc["paths"][path]
    rules = {r.rule for r in centre.url_map.iter_rules() if r.rule.startswith("/api/v1")}
    documented = {
        "/api/v1" + p.replace("{resource}", "<resource>").replace("{id}", "<record_id>") for p in doc["paths"]
    }
    assert rules == documented
    assert {"participants", "screenings", "referrals", "cycles", "sessions", "attendance"} <= set(
        doc["components"]["schemas"]
    )
    assert "code" in doc["components"]["schemas"]["participants"]["required"]
    schemas = doc["components"]["schemas"]

    def body(path, method):
        return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]

    assert body("/participants", "post") == "#/components/schemas/ParticipantNew"
    assert set(schemas["ParticipantNew"]["required"]) == {"name", "sex", "village", "consents"}
    assert "code" not in schemas["ParticipantNew"]["properties"]
    assert set(schemas["ParticipantChange"]["properties"]) == {"name", "village", "phone", "language"}
    assert body("/screenings", "post") == "#/components/schemas/ScreeningNew"
    assert "submission_key" in schemas["ScreeningNew"]["required"]
    assert not {"total", "risk", "band", "eligible"} & set(schemas["ScreeningNew"]["properties"])
    assert set(doc["paths"]["/screenings"]["post"]["responses"]) >= {"200", "201", "400", "404"}
    assert body("/referrals/{id}", "patch") == "#/components/schemas/ReferralChange"
    assert body("/sessions/{id}/attendance", "post") == "#/components/schemas/AttendanceSave"
    assert "409" in doc["paths"]["/sessions/{id}/attendance"]["post"]["responses"]
    refused = doc["paths"]["/{resource}/{id}"]
    assert set(refused["delete"]["responses"]) == {"401", "404", "405"}
    assert "Screenings are facts" in refused["patch"]["responses"]["405"]["description"]
    assert refused["patch"]["parameters"][0]["schema"]["enum"] == ["screenings", "cycles", "sessions", "attendance"]
    assert doc["paths"]["/{resource}"]["post"]["parameters"][0]["schema"]["enum"] == [
        "cycles",
        "sessions",
        "attendance",
    ]


def test_openapi_needs_a_token(centre):
    response = centre.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 401


def test_coordinator_sync_page_lists_conflicts(centre, cdb):
    from .conftest import PASSWORD, login

    with cdb.conn:
        cdb.execute(
            "insert into sync_conflicts (table_name, record_id, site_id, winner_hlc, winner_json, loser_hlc,"
            " loser_json, created_at) values ('participants', 'p1', ?, 'b', '{\"village\": \"<b>new</b>\"}',"
            " 'a', '{\"village\": \"old\"}', 'now')",
            (site_id(cdb, "KMP"),),
        )
    client = centre.test_client()
    login(client, "coord", PASSWORD)
    html = client.get("/sync/").get_data(as_text=True)
    assert "&lt;b&gt;new&lt;/b&gt;" in html and "old" in html
    client2 = centre.test_client()
    login(client2, "amina", PASSWORD)
    assert client2.get("/sync/").status_code == 403


def test_codes_only_central_refuses_names_through_the_api(tmp_path):
    """With SYNC_SEND_NAMES off the central office never stores a name or phone, from sync or from the API."""
    codes_only = make_central(tmp_path / "codes-only")
    device_token = add_device(codes_only, "lap-z", "KMP")[1]
    client = codes_only.test_client()
    body = {"name": "Sarah Namuli", "sex": "female", "age": 30, "village": "Kawempe", "consents": ["screening"]}
    response = client.post("/api/v1/participants", json=body, headers=auth(device_token))
    assert response.status_code == 403
    assert "keeps programme codes only" in response.json["error"]
    renamed = client.patch("/api/v1/participants/any-id", json={"phone": "0772 000000"}, headers=auth(device_token))
    assert renamed.status_code == 403
    db = dbmod.connect(codes_only.config["DATABASE"])
    assert db["participants"].count == 0


@pytest.mark.parametrize("limit", ["1_0", " 10", "+10", "١٠", "ten", "", "10.0", "1" * 12])
def test_a_list_limit_is_plain_digits(centre, token, limit):
    answer = centre.test_client().get("/api/v1/participants", query_string={"limit": limit}, headers=auth(token))
    assert answer.status_code == 400 and answer.json["error"] == "'limit' must be a whole number."


def test_a_list_limit_out_of_range_says_the_range(centre, token):
    client = centre.test_client()
    for limit in ("0", "10001"):
        answer = client.get("/api/v1/participants", query_string={"limit": limit}, headers=auth(token))
        assert answer.status_code == 400 and "between 1 and" in answer.json["error"], limit
    assert client.get("/api/v1/participants", query_string={"limit": "007"}, headers=auth(token)).status_code == 200
