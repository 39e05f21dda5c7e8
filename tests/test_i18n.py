"""Languages: the user's choice, the browser's, the site default; lang/dir; RTL by data only."""

from __future__ import annotations

import shutil

import pytest

from group_ipt.base.settings import REPO_DIR
from group_ipt.core import users
from group_ipt.web.i18n import compile_catalogs, load_languages

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
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\nmsgid "Log in"\nmsgstr "تسجيل الدخول"\n',
        encoding="utf-8",
    )
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


def _write_catalogs(tmp_path, fr_entries: dict[str, str]):
    folder = tmp_path / "tr"
    (folder / "fr" / "LC_MESSAGES").mkdir(parents=True)
    (folder / "languages.yaml").write_text(
        "en: {name: English, dir: ltr, status: source}\nfr: {name: Français, dir: ltr, status: draft}\n",
        encoding="utf-8",
    )
    pot = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    sources = [
        ("Home", "group_ipt/web/templates/base.html:1"),
        ("Save", "group_ipt/x.py:2"),
        ("Little interest", "forms/instruments/phq9.yaml:3"),
        ("Greet everyone", "forms/scripts/a.yaml:4"),
    ]
    for msgid, where in sources:
        pot += [f"#: {where}", f'msgid "{msgid}"', 'msgstr ""', ""]
    (folder / "messages.pot").write_text("\n".join(pot), encoding="utf-8")
    po = pot[:4]
    for msgid, text in fr_entries.items():
        po += [f'msgid "{msgid}"', f'msgstr "{text}"', ""]
    (folder / "fr" / "LC_MESSAGES" / "messages.po").write_text("\n".join(po), encoding="utf-8")
    return folder


def test_coverage_counts_per_area(tmp_path):
    from group_ipt.web.i18n import coverage

    folder = _write_catalogs(tmp_path, {"Home": "Accueil", "Little interest": "Peu d'intérêt"})
    report = {(c.language, c.area): c for c in coverage(folder)}
    assert (report["fr", "ui"].translated, report["fr", "ui"].total) == (1, 2)
    assert report["fr", "ui"].missing == ("Save",)
    assert report["fr", "instruments"].percent == 100.0
    assert report["fr", "scripts"].percent == 0.0
    assert report["en", "scripts"].percent == 100.0


def test_i18n_status_command_threshold(tmp_path, monkeypatch, runner):
    from group_ipt.base import settings

    folder = _write_catalogs(tmp_path, {"Home": "Accueil", "Little interest": "Peu d'intérêt"})
    real = settings.defaults

    monkeypatch.setattr(settings, "defaults", lambda: {**real(), "TRANSLATIONS_DIR": str(folder)})
    ok = runner.invoke(["i18n", "status", "--min", "50", "--show-missing"])
    assert ok.exit_code == 0, ok.output
    assert "fr   draft     all  50.0%" in ok.output
    assert "missing [ui] Save" in ok.output
    low = runner.invoke(["i18n", "status", "--min", "60"])
    assert low.exit_code == 1
    assert "Below 60%: fr 50.0%" in low.output
    per_area = runner.invoke(["i18n", "status", "--min", "40", "--per-area"])
    assert per_area.exit_code == 1
    assert "fr/scripts 0.0%" in per_area.output


PLACEHOLDER = __import__("re").compile(r"%\(\w+\)[sdifr]|%[sdif]")


@pytest.mark.parametrize("lang", ["fr", "sw", "lg"])
def test_translations_keep_every_placeholder(lang):
    """A translation that drops or renames %(name)s would crash the page that shows it."""
    from babel.messages.pofile import read_po

    with (REPO_DIR / "translations" / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    wrong = []
    for m in catalog:
        if not m.id or not m.string:
            continue
        ids = [m.id] if isinstance(m.id, str) else list(m.id)
        strings = [m.string] if isinstance(m.string, str) else [s for s in m.string if s]
        wanted = [sorted(PLACEHOLDER.findall(i)) for i in ids]
        wrong += [(ids[0], s) for s in strings if sorted(PLACEHOLDER.findall(s)) not in wanted]
    assert not wrong, wrong[:5]


def test_message_template_is_up_to_date():
    """messages.pot holds every string the code and the form files mark, so no page can show one untranslated."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    keywords = {
        "_": None,
        "gettext": None,
        "ngettext": (1, 2),
        "lazy_gettext": None,
        "_l": None,
        "N_": None,
        "NP_": (1, 2),
    }
    method_map = [
        ("group_ipt/**.py", "python"),
        ("group_ipt/web/templates/**.html", "jinja2"),
        ("forms/**.yaml", "group_ipt.formfiles.i18n_extract:extract_yaml"),
    ]
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO_DIR), method_map=method_map, keywords=keywords, options_map={"group_ipt/web/templates/**.html": {}}
    ):
        found.add(message if isinstance(message, str) else message[0])
    with (REPO_DIR / "translations" / "messages.pot").open("rb") as f:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    missing = sorted(found - template)
    assert not missing, f"run the extract/update commands of the README: {missing[:10]}"


def _compile_forced(folder):
    return len(compile_catalogs(folder, force=True))


def test_compile_catalogs_tolerates_processes_racing(tmp_path):
    """Test workers and app processes started together compile the same catalogs at once.

    Each writer needs its own temporary file: with one shared name, the first rename
    takes the file from under the second (a fresh CI clone failed at collection so).
    """
    from concurrent.futures import ProcessPoolExecutor

    translations = tmp_path / "t"
    shutil.copytree(REPO_DIR / "translations", translations, ignore=shutil.ignore_patterns("*.mo"))
    with ProcessPoolExecutor(4) as pool:
        counts = list(pool.map(_compile_forced, [translations] * 16))
    assert all(counts)
    assert not list(translations.glob("*/LC_MESSAGES/*.tmp"))
    assert compile_catalogs(translations) == []
