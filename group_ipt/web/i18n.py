"""Languages: which exist, which one a request uses, and compiling the catalogs."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml
from babel import numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import current_app, request, session
from flask_babel import get_locale
from flask_login import current_user

from ..base import oscompat
from ..pdf import PdfLanguage


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    dir: str
    status: str  # source, draft or reviewed


class LanguageFileError(RuntimeError):
    pass


def load_languages(translations_dir: str | Path) -> dict[str, Language]:
    path = Path(translations_dir) / "languages.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise LanguageFileError(f"{path}: cannot read the language list: {exc}") from exc
    languages = {}
    for code, info in data.items():
        if not isinstance(info, dict) or not info.get("name"):
            raise LanguageFileError(f"{path}: language {code!r}: field 'name' is missing")
        direction = info.get("dir", "ltr")
        if direction not in ("ltr", "rtl"):
            raise LanguageFileError(f"{path}: language {code!r}: field 'dir' must be ltr or rtl")
        status = info.get("status", "draft")
        if status not in ("source", "draft", "reviewed"):
            raise LanguageFileError(f"{path}: language {code!r}: field 'status' must be source, draft or reviewed")
        languages[str(code)] = Language(str(code), info["name"], direction, status)
    return languages


def compile_catalogs(translations_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Compile every ``.po`` whose ``.mo`` is missing or older; return the files written.

    The ``.mo`` files are build products (ignored by git): the app compiles them at
    start and the test suite does too, so a fresh checkout never serves stale text.
    """
    written = []
    for po_path in sorted(Path(translations_dir).glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=po_path.parent.parent.name)
        # Test workers and app processes started together compile the same catalogs at once:
        # each writes its own temporary file (every one the same bytes).
        with oscompat.atomic_file(mo_path, mode=0o644) as f:
            write_mo(f, catalog, use_fuzzy=False)
        written.append(mo_path)
    return written


def languages() -> dict[str, Language]:
    return current_app.extensions["group_ipt_languages"]


def select_locale() -> str:
    """Pick the language: the user's saved choice, then the session's, the browser's, the site default."""
    available = languages()
    if current_user and current_user.is_authenticated and current_user.language in available:
        return current_user.language
    chosen = session.get("lang")
    if chosen in available:
        return chosen
    best = request.accept_languages.best_match(list(available)) if request else None
    if best:
        return best
    if current_user and current_user.is_authenticated and current_user.site_language in available:
        return current_user.site_language
    return current_app.config["DEFAULT_LANGUAGE"]


def current_language() -> Language:
    from flask_babel import get_locale

    code = str(get_locale() or current_app.config["DEFAULT_LANGUAGE"])
    available = languages()
    return available.get(code) or available.get(code.split("_")[0]) or Language(code, code, "ltr", "draft")


def pdf_language(code: str) -> PdfLanguage:
    """Return the language ``code`` for a PDF, with the app's catalog (needs an app context).

    The PDF reads the same compiled catalog as the pages (the app's TRANSLATIONS_DIR) but
    not through flask-babel, so it can be drawn outside any request or app context.
    """
    return PdfLanguage.load(code, current_app.config["TRANSLATIONS_DIR"], languages().get(code))


# --- coverage report -------------------------------------------------------

# Where each area's source strings come from (the intake questions and the supervisors'
# rating forms are questionnaires too, so they count with the instruments).
AREAS = (
    ("ui", ("group_ipt/",)),
    ("instruments", ("forms/instruments/", "forms/ratings/", "forms/intake.yaml")),
    ("protocols", ("forms/protocols/",)),
    ("scripts", ("forms/scripts/",)),
)


@dataclass(frozen=True)
class Coverage:
    language: str
    area: str
    total: int
    translated: int
    missing: tuple[str, ...]

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.translated / self.total


def area_of(locations) -> str | None:
    for path, _line in locations:
        for area, prefixes in AREAS:
            if path.startswith(prefixes):
                return area
    return None


def coverage(translations_dir: str | Path) -> list[Coverage]:
    """Return, per language and area, how many source strings have a (non-fuzzy) translation.

    The template ``messages.pot`` is the list of source strings; a string missing
    from a catalog, empty or fuzzy counts as missing (the app then shows English).
    """
    translations_dir = Path(translations_dir)
    with (translations_dir / "messages.pot").open("rb") as f:
        template = read_po(f)
    by_area: dict[str, list[str]] = {area: [] for area, _ in AREAS}
    for message in template:
        if not message.id:
            continue
        area = area_of(message.locations)
        if area:
            by_area[area].append(message.id if isinstance(message.id, str) else message.id[0])
    result = []
    for code in load_languages(translations_dir):
        po_path = translations_dir / code / "LC_MESSAGES" / "messages.po"
        translated: set[str] = set()
        if code != "en" and po_path.exists():
            with po_path.open("rb") as f:
                catalog = read_po(f, locale=code)
            for message in catalog:
                text = message.string if isinstance(message.string, str) else (message.string or ("",))[0]
                if message.id and text and not message.fuzzy:
                    translated.add(message.id if isinstance(message.id, str) else message.id[0])
        for area, _prefix in AREAS:
            ids = by_area[area]
            done = ids if code == "en" else [i for i in ids if i in translated]
            missing = tuple(i for i in ids if i not in set(done))
            result.append(Coverage(code, area, len(ids), len(done), missing))
    return result


# --- numbers -----------------------------------------------------------------------------
# Babel's formatting parses the locale's pattern on every call (~50 µs): the reports page
# shows a few hundred numbers, the same ones view after view. Remembered per locale.


@functools.lru_cache(maxsize=16384)
def _formatted(locale: str, value: int | float, kind: str, pattern: str | None, _type: str) -> str:
    if kind == "percent":
        return numbers.format_percent(value, format=pattern, locale=locale)
    return numbers.format_decimal(value, format=pattern, locale=locale)


def format_decimal(value: int | float, pattern: str | None = None) -> str:
    """flask_babel.format_decimal, remembered."""
    return _formatted(str(get_locale()), value, "decimal", pattern, type(value).__name__)


def format_percent(value: int | float, pattern: str | None = None) -> str:
    """flask_babel.format_percent, remembered."""
    return _formatted(str(get_locale()), value, "percent", pattern, type(value).__name__)
