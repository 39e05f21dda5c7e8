"""The API's write bodies are checked against the very schemas its OpenAPI document publishes."""

from __future__ import annotations

import pytest

from group_ipt.store import db as dbmod
from group_ipt.sync import schemas

from .syncing import add_device, make_central
from .test_sync_api import NEW_PERSON, auth, post


@pytest.fixture
def centre(tmp_path):
    return make_central(tmp_path / "central", SYNC_SEND_NAMES=True)


@pytest.fixture
def token(centre):
    return add_device(centre, "lap-a", "KMP")[1]


def count(centre, table):
    conn = dbmod.connect(centre.config["DATABASE"])
    try:
        return conn.execute(f"select count(*) from {table}").fetchone()[0]
    finally:
        conn.close()


def test_the_document_publishes_the_schemas_the_server_validates_with(centre, token):
    document = centre.test_client().get("/api/v1/openapi.json", headers=auth(token)).json
    instruments = tuple(sorted(centre.extensions["group_ipt_forms"].instruments))
    with centre.app_context():
        for name in schemas.BODIES:
            assert document["components"]["schemas"][name] == schemas.schema_of(name, instruments), name


@pytest.mark.parametrize(
    "change, message, field",
    [
        ({"consent_given_by": 5}, "'consent_given_by' must be text.", "consent_given_by"),
        ({"consents": ["screening", 3]}, "'consents' must be a list of text.", "consents"),
        ({"age": 34.5}, "'age' must be a whole number.", "age"),
        ({"phone": ["0772"]}, "'phone' must be text.", "phone"),
    ],
)
def test_a_wrong_type_names_the_field_and_nothing_is_written(centre, token, change, message, field):
    answer = post(centre.test_client(), token, "/participants", {**NEW_PERSON, **change})
    assert (answer.status_code, answer.json["error"], answer.json.get("field")) == (400, message, field)
    assert count(centre, "participants") == 0


def test_a_value_rule_of_the_schema_holds_even_where_the_domain_would_let_it_through(centre, token, monkeypatch):
    """The schema is the promise: if it is stricter than the domain (here a shorter limit on the
    consent-giver's name), the write is refused with the schema's reason and rolled back whole."""
    published = schemas.write_schemas

    def stricter(instruments):
        found = published(instruments)
        found["ParticipantNew"]["properties"]["consent_given_by"]["maxLength"] = 5
        return found

    monkeypatch.setattr(schemas, "write_schemas", stricter)
    schemas._validators.cache_clear()
    try:
        audited = count(centre, "audit_log")
        answer = post(centre.test_client(), token, "/participants", {**NEW_PERSON, "consent_given_by": "Her mother"})
        assert answer.status_code == 400
        assert answer.json == {
            "error": "'consent_given_by' must be at most 5 characters long.",
            "field": "consent_given_by",
        }
        assert count(centre, "participants") == 0 and count(centre, "consents") == 0
        assert count(centre, "audit_log") == audited  # nothing half-written either
        fine = post(centre.test_client(), token, "/participants", {**NEW_PERSON, "consent_given_by": "Aunt"})
        assert fine.status_code == 201
    finally:
        schemas._validators.cache_clear()
