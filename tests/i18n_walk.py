"""Find UI strings a page shows in English although the page is in another language.

A page is rendered in language L; every visible text node and every user-facing
attribute (title, placeholder, aria-label, alt, button values) is compared with the
English source strings of the UI (from ``messages.pot``): a text that is a source
string, and whose translation in L differs from it, is an untranslated string.
"""

from __future__ import annotations

from functools import cache
from html.parser import HTMLParser

from babel.messages.pofile import read_po

from group_ipt.base.settings import REPO_DIR

TRANSLATIONS = REPO_DIR / "translations"
ATTRIBUTES = {"title", "placeholder", "aria-label", "alt"}


class _TextCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and (
                name in ATTRIBUTES
                or (tag in ("input", "button") and name == "value" and dict(attrs).get("type") in ("submit", "button"))
            ):
                self.texts.append(value.strip())

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(" ".join(data.split()))


def visible_texts(html: str) -> list[str]:
    collector = _TextCollector()
    collector.feed(html)
    return collector.texts


@cache
def ui_source_strings() -> frozenset[str]:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = read_po(f)
    return frozenset(
        m.id
        for m in template
        if isinstance(m.id, str)
        and m.id
        and "%(" not in m.id
        and any(path.startswith("group_ipt/") for path, _ in m.locations)
    )


@cache
def translations(lang: str) -> dict[str, str]:
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    return {m.id: m.string for m in catalog if isinstance(m.id, str) and m.string and not m.fuzzy}


def untranslated(html: str, lang: str) -> list[str]:
    """Return the English UI strings shown on this page that have a different translation in ``lang``."""
    sources = ui_source_strings()
    translated = translations(lang)
    found = []
    for text in visible_texts(html):
        if text in sources and translated.get(text) != text:
            found.append(text)
    return sorted(set(found))


class _LabelChecker(HTMLParser):
    """Find form fields without a visible label (a <label for=id> or an enclosing <label>)."""

    def __init__(self):
        super().__init__()
        self.fields: list[tuple[str | None, str]] = []
        self.label_for: set[str] = set()
        self.labelled: set[int] = set()
        self._open_labels = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label":
            self._open_labels += 1
            if attrs.get("for"):
                self.label_for.add(attrs["for"])
        elif tag in ("input", "select", "textarea"):
            if tag == "input" and attrs.get("type") in ("hidden", "submit", "button", "reset", "image"):
                return
            self.fields.append((attrs.get("id"), attrs.get("name") or tag))
            if self._open_labels:
                self.labelled.add(len(self.fields) - 1)

    def handle_endtag(self, tag):
        if tag == "label" and self._open_labels:
            self._open_labels -= 1


def unlabelled_fields(html: str) -> list[str]:
    checker = _LabelChecker()
    checker.feed(html)
    return [
        name
        for i, (field_id, name) in enumerate(checker.fields)
        if i not in checker.labelled and (field_id is None or field_id not in checker.label_for)
    ]
