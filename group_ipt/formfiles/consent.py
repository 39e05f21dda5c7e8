"""Load ``forms/consent.yaml``: the consent text read aloud at intake, versioned, in each language.

The text is data a programme edits, like the instruments; it is not a UI string (it is
read in the *person's* language, which may not be the facilitator's), so each language
is written out in the file rather than in the translation catalogs. Checked when the app
starts and by ``group-ipt forms check``; every error names the file, line and field.
Plain Python, no Flask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .formfile import FormChecker, FormFileError
from .yamlfile import LineMap, valid

CONSENT_FILE = "consent.yaml"
PURPOSES = ("screening", "group", "data_sharing")  # participants.CONSENT_PURPOSES, in the same order
SOURCE_LANGUAGE = "en"
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class ConsentWording:
    language: str
    heading: str
    read_aloud: tuple[str, ...]
    purposes: dict[str, str]  # purpose -> the sentence the person agrees to


@dataclass(frozen=True)
class ConsentText:
    version: int
    texts: dict[str, ConsentWording]  # by language code

    def wording(self, language: str | None) -> ConsentWording:
        """Return the wording in ``language``, or in English when the file has none in it."""
        return self.texts.get(language or "", self.texts[SOURCE_LANGUAGE])

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.texts)


def check_consent(forms_dir: str | Path) -> list[FormFileError]:
    """Return every error in ``forms_dir/consent.yaml`` (empty when it is valid)."""
    return _Checker.load(Path(forms_dir) / CONSENT_FILE)[1]


def load_consent(forms_dir: str | Path) -> ConsentText:
    """Load ``forms_dir/consent.yaml``; raise the first FormFileError in it."""
    return valid(_Checker.load(Path(forms_dir) / CONSENT_FILE))


class _Checker(FormChecker[ConsentText]):
    not_a_mapping = "the file must be a mapping with version and texts"

    def form(self, data: LineMap) -> ConsentText:
        self.keys(data, ("version", "texts"))
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            self.error(data, "version", "must be a whole number from 1 (raise it when the wording changes)")
            version = 0
        texts = data.get("texts")
        if not isinstance(texts, LineMap) or not texts:
            self.error(data, "texts", "must be a mapping of language codes (en, fr...) to the wording")
            return ConsentText(version, {})
        if SOURCE_LANGUAGE not in texts:
            self.error(data, "texts", f"needs the '{SOURCE_LANGUAGE}' wording (the source language)")
        found = {}
        for language, entry in texts.items():
            if not isinstance(language, str) or not _LANGUAGE.match(language):
                self.error(texts, language, "a language must be a code of 2-3 lower-case letters (e.g. sw)")
                continue
            if not isinstance(entry, LineMap):
                self.error(texts, language, "must be a mapping with heading, read_aloud and purposes")
                continue
            found[language] = self.wording(language, entry)
        return ConsentText(version, found)

    def wording(self, language: str, entry: LineMap) -> ConsentWording:
        self.keys(entry, ("heading", "read_aloud", "purposes"), language)
        heading = self.stripped_text(entry, "heading", language)
        paragraphs = entry.get("read_aloud")
        if (
            not isinstance(paragraphs, list)
            or not paragraphs
            or not all(isinstance(p, str) and p.strip() for p in paragraphs)
        ):
            self.error(entry, "read_aloud", "must be a non-empty list of paragraphs (texts)", language)
            paragraphs = []
        purposes = entry.get("purposes")
        sentences = {}
        if not isinstance(purposes, LineMap):
            self.error(
                entry, "purposes", f"must be a mapping with one sentence for each of: {', '.join(PURPOSES)}", language
            )
        else:
            self.keys(purposes, PURPOSES, language)
            for purpose in PURPOSES:
                sentences[purpose] = self.stripped_text(purposes, purpose, f"{language}.purposes")
        return ConsentWording(language, heading, tuple(p.strip() for p in paragraphs), sentences)


def language_for(text: ConsentText, preferred: str | None, names: dict[str, str]) -> str | None:
    """Return the code of the wording in a person's preferred language, typed as a code or a name, if any.

    ``names`` maps language codes to their names (``Kiswahili``), as the intake form offers them.
    """
    wanted = (preferred or "").strip().casefold()
    for code in text.languages:
        if wanted in (code, names.get(code, "").casefold()):
            return code
    return None
