"""Languages: the user's choice, the browser's, the site default; lang/dir; RTL by data only."""

from __future__ import annotations

import shutil

import pytest

from group_ipt import users
from group_ipt.i18n import compile_catalogs, load_languages
from group_ipt.settings import REPO_DIR

from .conftest import login, post_form


def test_login_page_follows_browser_language(client):
    page = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in page
    assert "Se connecter" in page


@pytest.mark.parametrize(("lang", "text"), [("fr", "Mon compte"), ("sw", "Akaunti yangu"), ("en", "My account")])
def test_saved_language_wins_over_browser(logged_in, db, lang, text):
    post_form(logged_in, "/account/language", {"lang": lang}, form_page="/account/")
    assert users.get_user_by_username(db, "amina")["language"] == lang
    page = logged_in.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert f'<html lang="{lang}"' in page
    assert text in page


def test_site_default_when_browser_has_no_known_language(client):
    login(client, "grace")  # Grace's site MSK defaults to Swahili
    page = client.get("/", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="sw"' in page


def test_draft_note_shown_for_draft_language(logged_in):
    post_form(logged_in, "/account/language", {"lang": "fr"}, form_page="/account/")
    page = logged_in.get("/").get_data(as_text=True)
    assert "Traduction provisoire" in page


def test_unknown_language_refused(logged_in, db):
    r = post_form(logged_in, "/account/language", {"lang": "xx"}, form_page="/account/")
    assert r.status_code == 400
    assert users.get_user_by_username(db, "amina")["language"] is None


def test_rtl_language_needs_no_code_change(tmp_path):
    translations = tmp_path / "translations"
    shutil.copytree(REPO_DIR / "translations", translations, ignore=shutil.ignore_patterns("*.mo"))
    with (translations / "languages.yaml").open("a", encoding="utf-8") as f:
        f.write("ar: {name: العربية, dir: rtl, status: draft}\n")
    po_dir = translations / "ar" / "LC_MESSAGES"
    po_dir.mkdir(parents=True)
    (po_dir / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Log in"\nmsgstr "تسجيل الدخول"\n', encoding="utf-8")
    from .conftest import make_app

    app = make_app(tmp_path / "data", TRANSLATIONS_DIR=str(translations))
    page = app.test_client().get("/login", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in page
    assert "تسجيل الدخول" in page
    assert "Username" in page  # a string missing in a language falls back to English


def test_languages_file_lists_catalogs():
    langs = load_languages(REPO_DIR / "translations")
    assert set(langs) >= {"en", "fr", "sw"}
    for code in langs:
        if code != "en":
            assert (REPO_DIR / "translations" / code / "LC_MESSAGES" / "messages.po").exists()


def test_compile_catalogs_writes_mo(tmp_path):
    translations = tmp_path / "t"
    shutil.copytree(REPO_DIR / "translations", translations, ignore=shutil.ignore_patterns("*.mo"))
    written = compile_catalogs(translations)
    assert {p.parent.parent.name for p in written} >= {"fr", "sw"}
    assert compile_catalogs(translations) == []


def test_catalogs_have_no_fuzzy_or_empty_ui_entries():
    from babel.messages.pofile import read_po

    for code in ("fr", "sw"):
        with (REPO_DIR / "translations" / code / "LC_MESSAGES" / "messages.po").open("rb") as f:
            catalog = read_po(f)
        ui = [m for m in catalog if m.id and any(loc[0].startswith("group_ipt/") for loc in m.locations)]
        missing = [m.id for m in ui if not m.string or m.fuzzy]
        assert not missing, f"{code}: untranslated UI strings: {missing[:10]}"
