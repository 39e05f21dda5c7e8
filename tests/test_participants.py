"""Participants: programme codes, registration, consent, search, site scope, status history, duplicates."""

from __future__ import annotations

import html
import itertools
import json
import re
from datetime import date

import pytest
from markupsafe import escape

from group_ipt.core import audit, participants, users
from group_ipt.core.participants import EnrolmentBlocked, ParticipantError

from .conftest import login, post_form
from .screening_helpers import count, register

CODE_RE = re.compile(r"^KMP-\d{4}-[A-HJ-NP-Y]$")
FORM = {
    "name": "Sarah Namuli",
    "sex": "female",
    "age": "34",
    "village": "Kawempe",
    "phone": "",
    "language": "Luganda",
    "consent_screening": "1",
    "consent_version": "1",
    "consent_language": "lg",
}

READ = {"consent_version": "1", "consent_language": "en"}  # which consent text was read (forms/consent.yaml)


def register_via_web(client, **fields):
    return post_form(client, "/participants/new", {**FORM, **fields}, form_page="/participants/new")


# Programme codes -------------------------------------------------------------


def test_check_letter_catches_every_single_digit_error_and_swap():
    for digits in map("".join, itertools.product("0123456789", repeat=4)):
        letter = participants.check_letter(digits)
        for pos, wrong in itertools.product(range(4), "0123456789"):
            if wrong != digits[pos]:
                typo = digits[:pos] + wrong + digits[pos + 1 :]
                assert participants.check_letter(typo) != letter, (digits, typo)
        for pos in range(3):
            if digits[pos] != digits[pos + 1]:
                swapped = digits[:pos] + digits[pos + 1] + digits[pos] + digits[pos + 2 :]
                assert participants.check_letter(swapped) != letter, (digits, swapped)


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("KMP-4827-H", ("KMP", "4827", "H")),
        ("kmp 4827 h", ("KMP", "4827", "H")),
        ("kmp4827h", ("KMP", "4827", "H")),
        ("AB12-0001-A", ("AB12", "0001", "A")),
        ("Sarah", None),
        ("4827", None),
    ],
)
def test_parse_code_forgives_case_spaces_and_dashes(typed, parsed):
    assert participants.parse_code(typed) == parsed


def test_generate_code_retries_on_a_clash(db):
    first = register(db)
    digits = first["code"].split("-")[1]
    tries = iter([int(digits), int(digits), 1234])
    code = participants.generate_code(db, first["site_id"], "KMP", lambda n: next(tries))
    assert code == participants.make_code("KMP", "1234")


def test_generate_code_gives_up_with_a_message(db):
    first = register(db)
    digits = int(first["code"].split("-")[1])
    with pytest.raises(ParticipantError, match="No free programme code"):
        participants.generate_code(db, first["site_id"], "KMP", lambda n: digits)


def test_same_digits_allowed_at_another_site(db):
    kmp = register(db, randbelow=lambda n: 4827)
    msk = register(db, "Other", site_code="MSK", actor="grace", randbelow=lambda n: 4827)
    assert (kmp["code"], msk["code"]) == ("KMP-4827-" + kmp["code"][-1], "MSK-4827-" + kmp["code"][-1])


# Registration ----------------------------------------------------------------


def test_register_creates_participant_history_consents_and_audit(logged_in, db):
    response = register_via_web(logged_in, consent_group="1")
    assert response.status_code == 303
    participant = db.execute("select * from participants").fetchone()
    record = dict(zip([c[0] for c in db.execute("select * from participants").description], participant, strict=True))
    assert response.headers["Location"] == f"/participants/{record['id']}"
    assert CODE_RE.match(record["code"]) and participants.code_is_valid(record["code"])
    assert (record["name"], record["sex"], record["village"], record["language"]) == (
        "Sarah Namuli",
        "female",
        "Kawempe",
        "Luganda",
    )
    assert record["birth_year"] == date.today().year - 34 and record["age_is_estimate"] == 1
    assert record["status"] == "registered"
    history = list(db.query("select status, changed_by from participant_status_history"))
    assert [h["status"] for h in history] == ["registered"]
    amina = users.get_user_by_username(db, "amina")
    consents = {c["purpose"]: c for c in db.query("select * from consents")}
    assert {p: c["given"] for p, c in consents.items()} == {"screening": 1, "group": 1, "data_sharing": 0}
    assert all(c["recorded_by"] == amina["id"] and c["given_by"] == "participant" for c in consents.values())
    assert [e["action"] for e in audit.entries(db, "participants")] == ["create"]
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert record["code"] in page and "Sarah Namuli" in page


def test_register_with_birth_year_is_not_an_estimate(logged_in, db):
    register_via_web(logged_in, age="", birth_year="1985")
    record = next(db.query("select birth_year, age_is_estimate from participants"))
    assert record == {"birth_year": 1985, "age_is_estimate": 0}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"name": "  "}, "Enter the person"),
        ({"sex": "unknown"}, "Choose the person"),
        ({"age": ""}, "age (an estimate is fine) or birth year"),
        ({"age": "abc"}, "The age must be a whole number"),
        ({"age": "7"}, "The age must be a whole number"),
        ({"age": "34", "birth_year": "1990"}, "not both"),
        ({"age": "", "birth_year": "1700"}, "The birth year must be"),
        ({"village": ""}, "village or area"),
        ({"phone": "call me maybe"}, "A phone number"),
        ({"consent_screening": ""}, "must agree to screening"),
        ({"name": "a" * 121}, "at most 120"),
        ({"name": "bad\x07name"}, "cannot be shown"),
    ],
)
def test_register_bad_input_is_refused_and_keeps_typed_values(logged_in, db, fields, reason):
    response = register_via_web(logged_in, **{**fields, "village": fields.get("village", "Kawempe ✓")})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert reason in html.unescape(page)
    assert "Kawempe ✓" in page or fields.get("village") == ""
    assert count(db, "participants") == 0 and count(db, "consents") == 0


@pytest.mark.parametrize(
    "name",
    [
        "مريم عبد الله",  # Arabic, right to left
        "שרה כהן",  # Hebrew
        "Ñandú Ólafsdóttir-Nguyễn",
        "王秀英",
        "<script>alert('x')</script>",
        '=HYPERLINK("http://evil.example","click")',
        "+256 SUM(A1)",
        "-2+3",
        "@cmd",
        'O\'Brien & "Sons" <b>',
    ],
)
def test_any_name_is_stored_as_typed_and_shown_escaped(logged_in, db, name):
    response = register_via_web(logged_in, name=name, village=name)
    assert response.status_code == 303
    stored = next(db.query("select name, village from participants"))
    assert stored == {"name": name, "village": name}
    for path in (response.headers["Location"], "/participants/", "/participants/?q=" + name[:3]):
        page = logged_in.get(path).get_data(as_text=True)
        assert str(escape(name)) in page, path
        if "<" in name:
            assert name not in page


def test_registration_asks_for_the_site_only_with_several_sites(client, db):
    login(client, "amina")
    assert 'name="site_id"' not in client.get("/participants/new").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": ""})
    client2 = client.application.test_client()
    client2.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"  # coord's sites default to English and Swahili
    login(client2, "coord")
    assert 'name="site_id"' in client2.get("/participants/new").get_data(as_text=True)
    missing = register_via_web(client2)
    assert missing.status_code == 400 and "Choose the site" in missing.get_data(as_text=True)
    msk = users.get_site(db, "MSK")
    ok = register_via_web(client2, site_id=msk["id"])
    assert ok.status_code == 303
    assert next(db.query("select code from participants"))["code"].startswith("MSK-")


def test_registration_refuses_a_site_the_user_does_not_work_at(client, db):
    other = users.create_site(db, "OTH", "Other site")
    login(client, "coord")
    response = register_via_web(client, site_id=other["id"])
    assert response.status_code == 400 and count(db, "participants") == 0


# Search and site scope -------------------------------------------------------


def test_search_by_code_forgiving_and_by_name_any_case(logged_in, db):
    sarah = register(db, "Élodie Namuli")
    register(db, "Joseph Okello", sex="male")
    digits = sarah["code"].split("-")[1]
    for query in (sarah["code"], sarah["code"].lower().replace("-", " "), digits, "élodie", "ÉLODIE", "namu"):
        page = logged_in.get("/participants/", query_string={"q": query}).get_data(as_text=True)
        assert "Élodie Namuli" in page and "Joseph Okello" not in page, query


def test_search_names_a_code_typo(logged_in, db):
    sarah = register(db)
    digits = sarah["code"].split("-")[1]
    wrong_letter = next(c for c in participants.CHECK_LETTERS if c != sarah["code"][-1])
    page = logged_in.get("/participants/", query_string={"q": f"KMP-{digits}-{wrong_letter}"}).get_data(as_text=True)
    assert "a digit may be mistyped" in page
    assert "Sarah Namuli" not in page


def test_search_like_wildcards_are_literal(db):
    register(db, "Ann Apio")
    site_ids = [users.get_site(db, "KMP")["id"]]
    assert participants.search(db, site_ids, "%").participants == []
    assert participants.search(db, site_ids, "_").participants == []


def test_other_site_participant_is_404_and_not_listed(client, db):
    sarah = register(db)
    login(client, "grace")
    assert client.get(f"/participants/{sarah['id']}").status_code == 404
    assert "Sarah Namuli" not in client.get("/participants/?q=Sarah").get_data(as_text=True)
    assert client.get("/participants/no-such-id").status_code == 404
    response = post_form(client, f"/participants/{sarah['id']}/consent", {"purpose": "group", "given": "yes", **READ})
    assert response.status_code == 404
    assert count(db, "consents") == 3


def test_coordinator_sees_participants_of_all_their_sites(client, db):
    register(db, "Sarah Namuli")
    register(db, "Mary Achieng", site_code="MSK", actor="grace")
    login(client, "coord")
    page = client.get("/participants/").get_data(as_text=True)
    assert "Sarah Namuli" in page and "Mary Achieng" in page


# Consent and status ----------------------------------------------------------


def test_record_consent_keeps_history_newest_counts(logged_in, db):
    sarah = register(db)
    response = post_form(
        logged_in,
        f"/participants/{sarah['id']}/consent",
        {"purpose": "data_sharing", "given": "yes", "given_by": "Her mother, Ruth", **READ},
    )
    assert response.status_code == 303
    post_form(logged_in, f"/participants/{sarah['id']}/consent", {"purpose": "data_sharing", "given": "no", **READ})
    latest = participants.current_consents(db, sarah["id"])["data_sharing"]
    assert latest["given"] == 0
    assert count(db, "consents") == 5
    page = logged_in.get(f"/participants/{sarah['id']}").get_data(as_text=True)
    assert "Her mother, Ruth" not in page  # the newest record (given by the participant) is shown


def test_record_consent_bad_input(logged_in, db):
    sarah = register(db)
    bad = post_form(logged_in, f"/participants/{sarah['id']}/consent", {"purpose": "marketing", "given": "yes", **READ})
    assert bad.status_code == 400
    bad = post_form(logged_in, f"/participants/{sarah['id']}/consent", {"purpose": "group", "given": "maybe", **READ})
    assert bad.status_code == 400
    assert count(db, "consents") == 3


def test_set_status_keeps_history_and_audit(db):
    sarah = register(db)
    coord = users.get_user_by_username(db, "coord")
    participants.set_status(db, sarah["id"], "eligible", "phq9 screening", coord)
    participants.set_status(db, sarah["id"], "enrolled", "cycle KMP-1", coord)
    participants.set_status(db, sarah["id"], "dropped_out", "moved away", coord)
    history = participants.status_history(db, sarah["id"])
    assert [(h["status"], h["reason"]) for h in history] == [
        ("registered", None),
        ("eligible", "phq9 screening"),
        ("enrolled", "cycle KMP-1"),
        ("dropped_out", "moved away"),
    ]
    assert db["participants"].get(sarah["id"])["status"] == "dropped_out"
    changes = [
        json.loads(e["after_json"])["status"]
        for e in audit.entries(db, "participants", sarah["id"])
        if e["action"] == "set_status"
    ]
    assert changes == ["eligible", "enrolled", "dropped_out"]


def test_set_status_refuses_unknown_status(db):
    sarah = register(db)
    with pytest.raises(ParticipantError, match="Unknown status"):
        participants.set_status(db, sarah["id"], "cured", None, None)


def test_set_status_enrolled_blocked_after_an_exclusion(db):
    sarah = register(db)
    db.execute(
        "insert into screenings (id, site_id, participant_id, instrument_id, instrument_version, occasion,"
        " answers_json, exclusions_json, administered_on, submission_key, created_at, updated_at) values"
        " ('s1', ?, ?, 'phq9', '1', 'screening', '{}', '[\"psychosis\"]', '2026-03-01', 'k1', 'x', 'x')",
        (sarah["site_id"], sarah["id"]),
    )
    db.conn.commit()
    with pytest.raises(EnrolmentBlocked, match="psychosis"):
        participants.set_status(db, sarah["id"], "enrolled", "cycle", None)
    assert db["participants"].get(sarah["id"])["status"] == "registered"


def test_manual_status_change_needs_coordinator_and_reason(client, db):
    sarah = register(db)
    login(client, "amina")
    assert (
        post_form(
            client, f"/participants/{sarah['id']}/status", {"status": "dropped_out", "reason": "moved"}
        ).status_code
        == 403
    )
    coord = client.application.test_client()
    login(coord, "coord")
    assert (
        post_form(coord, f"/participants/{sarah['id']}/status", {"status": "dropped_out", "reason": ""}).status_code
        == 400
    )
    assert (
        post_form(coord, f"/participants/{sarah['id']}/status", {"status": "enrolled", "reason": "x"}).status_code
        == 400
    )
    assert (
        post_form(
            coord, f"/participants/{sarah['id']}/status", {"status": "dropped_out", "reason": "moved"}
        ).status_code
        == 303
    )
    assert db["participants"].get(sarah["id"])["status"] == "dropped_out"


# Duplicates ------------------------------------------------------------------


def test_possible_duplicate_is_flagged_never_merged(logged_in, db):
    first = register(db, "Sarah Namuli", age="34")
    response = register_via_web(logged_in, name="  sarah   NAMULI ", village="kawempe", age="37")
    assert response.status_code == 303
    assert "Possible duplicate" in logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert count(db, "participants") == 2
    flag = next(db.query("select * from duplicate_flags"))
    assert flag["other_participant_id"] == first["id"] and flag["status"] == "open"


@pytest.mark.parametrize("fields", [{"village": "Nansana"}, {"age": "50"}, {"name": "Sarah Nakato"}])
def test_different_village_age_band_or_name_is_not_a_duplicate(logged_in, db, fields):
    register(db, "Sarah Namuli", age="34")
    register_via_web(logged_in, **fields)
    assert count(db, "participants") == 2 and count(db, "duplicate_flags") == 0


def test_coordinator_reviews_a_duplicate_flag(client, db):
    register(db, "Sarah Namuli")
    register(db, "Sarah Namuli")
    flag = next(db.query("select * from duplicate_flags"))
    login(client, "amina")
    assert "Possible duplicates to review: 1" in client.get("/participants/").get_data(as_text=True)
    assert post_form(client, f"/participants/duplicates/{flag['id']}", {"decision": "duplicate"}).status_code == 403
    coord = client.application.test_client()
    login(coord, "coord")
    assert post_form(coord, f"/participants/duplicates/{flag['id']}", {"decision": "merge"}).status_code == 400
    response = post_form(coord, f"/participants/duplicates/{flag['id']}", {"decision": "not_duplicate"})
    assert response.status_code == 303
    reviewed = db["duplicate_flags"].get(flag["id"])
    assert reviewed["status"] == "not_duplicate" and reviewed["reviewed_by"] is not None
    assert count(db, "participants") == 2
    grace = client.application.test_client()
    login(grace, "grace")
    assert post_form(grace, f"/participants/duplicates/{flag['id']}", {"decision": "duplicate"}).status_code in (
        403,
        404,
    )


@pytest.mark.parametrize(("age", "birth_year"), [("³", ""), ("", "¹⁹⁹⁰"), ("2 5", ""), ("", "1990.0")])
def test_digits_that_are_not_numbers_are_refused_with_a_message(age, birth_year):
    with pytest.raises(ParticipantError) as caught:
        participants.validate(
            name="Amina Nakato",
            sex="female",
            age=age,
            birth_year=birth_year,
            village="Kawempe",
            phone=None,
            language=None,
            today=date(2026, 3, 2),
        )
    assert caught.value.field in ("age", "birth_year")


def test_a_wrong_method_names_the_allowed_ones(logged_in):
    response = logged_in.delete("/participants/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
