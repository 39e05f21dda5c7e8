"""The consent text (forms/consent.yaml): checked as data, shown at intake in four languages,
printed in the participant's language, and its version and language kept with each consent."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from group_ipt.base.settings import REPO_DIR
from group_ipt.core import participants, users
from group_ipt.formfiles.consent import PURPOSES, check_consent, load_consent

from .conftest import login, post_form
from .test_participants import FORM, READ, register
from .test_pdf_views import text_of, words

FORMS = REPO_DIR / "forms"
LANGUAGES = ("en", "fr", "sw", "lg")


def test_the_consent_text_is_versioned_in_four_languages():
    text = load_consent(FORMS)
    assert text.version == 1 and text.languages == LANGUAGES
    for code in LANGUAGES:
        wording = text.wording(code)
        assert wording.heading and len(wording.read_aloud) >= 5 and set(wording.purposes) == set(PURPOSES)
    # No two languages share a paragraph: each is written out in its own language.
    firsts = {text.wording(code).read_aloud[0] for code in LANGUAGES}
    assert len(firsts) == 4
    assert text.wording("xx") is text.wording("en")


def broken(tmp_path: Path, old: str, new: str) -> Path:
    forms = tmp_path / "forms"
    shutil.copytree(FORMS, forms)
    path = forms / "consent.yaml"
    content = path.read_text(encoding="utf-8")
    assert old in content
    path.write_text(content.replace(old, new, 1), encoding="utf-8")
    return forms


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("version: 1\n", "version: one\n", "'version': must be a whole number"),
        ("  en:\n    heading: Agreeing", "  xx:\n    heading: Agreeing", "needs the 'en' wording"),
        ("      group: Ninakubali kujiunga", "      grup: Ninakubali kujiunga", "sw.purposes"),
        ("    read_aloud:\n      - Ce programme", "    read_it:\n      - Ce programme", "unknown field"),
    ],
)
def test_a_broken_consent_file_names_file_line_and_field(tmp_path, runner, old, new, expected):
    forms = broken(tmp_path, old, new)
    errors = [str(e) for e in check_consent(forms)]
    assert errors and all("consent.yaml" in e for e in errors)
    assert any(expected in e for e in errors), errors
    assert all(re.search(r"consent\.yaml:\d+: ", e) for e in errors), errors
    result = runner.invoke(["forms", "check", "--forms-dir", str(forms)])
    assert result.exit_code != 0 and "consent.yaml" in result.output


def test_forms_check_names_the_consent_version(runner):
    result = runner.invoke(["forms", "check", "--forms-dir", str(FORMS)])
    assert result.exit_code == 0
    assert "consent text version 1 in en, fr, sw, lg" in result.output


def set_language(client, lang: str) -> None:
    post_form(client, "/account/language", {"lang": lang}, form_page="/account/")


def test_intake_shows_the_text_in_the_users_language_and_any_other(logged_in):
    page = logged_in.get("/participants/new").get_data(as_text=True)
    assert "Agreeing to take part" in page and "Consent text, version 1" in page
    assert 'name="consent_version" value="1"' in page
    page = logged_in.get("/participants/new?consent_lang=lg").get_data(as_text=True)
    assert "Okukkiriza okwetaba" in page
    assert '<option value="lg" selected>Luganda</option>' in page
    set_language(logged_in, "sw")
    page = logged_in.get("/participants/new").get_data(as_text=True)
    assert "Kukubali kushiriki" in page and "Agreeing to take part" not in page


def test_registration_keeps_the_version_and_language_read(logged_in, db):
    response = post_form(logged_in, "/participants/new", {**FORM, "consent_group": "1"}, form_page="/participants/new")
    assert response.status_code == 303
    rows = list(db.query("select purpose, given, text_version, text_language from consents order by purpose"))
    assert rows == [
        {"purpose": "data_sharing", "given": 0, "text_version": 1, "text_language": "lg"},
        {"purpose": "group", "given": 1, "text_version": 1, "text_language": "lg"},
        {"purpose": "screening", "given": 1, "text_version": 1, "text_language": "lg"},
    ]
    page = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "consent text version 1, read in Luganda" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"consent_version": "0"}, "The consent text has changed since this page was opened (it is now version 1)"),
        ({"consent_version": ""}, "The consent text has changed"),
        ({"consent_language": "de"}, "Choose the language the consent text was read in."),
    ],
)
def test_registration_refuses_an_unknown_text_and_writes_nothing(logged_in, db, fields, message):
    response = post_form(logged_in, "/participants/new", {**FORM, **fields}, form_page="/participants/new")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db["participants"].count == 0 and db["consents"].count == 0


def test_a_later_consent_keeps_its_text_too(logged_in, db):
    sarah = register(db)
    post_form(
        logged_in,
        f"/participants/{sarah['id']}/consent",
        {"purpose": "group", "given": "yes", "consent_version": "1", "consent_language": "sw"},
    )
    latest = participants.current_consents(db, sarah["id"])["group"]
    assert (latest["given"], latest["text_version"], latest["text_language"]) == (1, 1, "sw")
    bad = post_form(logged_in, f"/participants/{sarah['id']}/consent", {"purpose": "group", "given": "no"})
    assert bad.status_code == 400 and participants.current_consents(db, sarah["id"])["group"]["given"] == 1


# English headings of ours that must not be left in a printed form of another language.
OUR_ENGLISH = (
    "Programme code",
    "Read this text aloud",
    "The person agrees to",
    "does not agree",
    "Signature or thumbprint",
    "Read by",
    "Consent text, version",
    "Page 1 of",
)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_blank_consent_form_prints_in_each_language(logged_in, lang):
    response = logged_in.get(f"/consent.pdf?lang={lang}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = words(response.data)
    wording = load_consent(FORMS).wording(lang)
    assert " ".join(wording.heading.split()) in text
    assert " ".join(wording.read_aloud[0].split()) in text
    for sentence in wording.purposes.values():
        assert " ".join(sentence.split()) in text
    if lang != "en":
        left = [s for s in OUR_ENGLISH if s in text]
        assert left == [], f"{lang}: English left in the PDF: {left}"


def test_participant_consent_form_is_in_their_language_with_their_answers(logged_in, db):
    response = post_form(logged_in, "/participants/new", {**FORM, "consent_group": "1"}, form_page="/participants/new")
    pid = response.headers["Location"].rsplit("/", 1)[1]
    code = db["participants"].get(pid)["code"]
    pdf = logged_in.get(f"/participants/{pid}/consent.pdf")
    assert pdf.status_code == 200
    text = words(pdf.data)
    assert "Okukkiriza okwetaba" in text and code in text and "Sarah Namuli" in text  # Luganda, as preferred
    assert text.count("✓") == 3  # screening and group agreed, data sharing not
    assert "Agreeing to take part" not in text
    french = words(logged_in.get(f"/participants/{pid}/consent.pdf?lang=fr").data)
    assert "Accepter de participer" in french


def test_consent_pdfs_refuse_other_sites_and_unknown_languages(client, db):
    sarah = register(db)
    login(client, "grace")  # MSK: Sarah is at KMP
    assert client.get(f"/participants/{sarah['id']}/consent.pdf").status_code == 404
    assert client.get("/consent.pdf?lang=de").status_code == 404
    assert users.get_user_by_username(db, "grace") is not None


def test_every_consent_purpose_has_a_sentence():
    assert PURPOSES == participants.CONSENT_PURPOSES
    assert READ == {"consent_version": "1", "consent_language": "en"}
    assert text_of  # the PDF helpers are shared with test_pdf_views
