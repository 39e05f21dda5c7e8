"""The Babel extractor for YAML form files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml
from babel.messages.extract import extract

from group_ipt.formfiles.i18n_extract import extract_yaml

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"

INSTRUMENT = """\
id: phq9
name: PHQ-9
version: 1
recall: Last two weeks
items:
  - id: q9
    text: Thoughts of harming yourself
    risk: {when: ">= 1"}
    options:
      - {value: 0, label: Not at all}
      - value: 2
        label: On most days
scoring:
  method: sum
bands:
  - {min: 0, max: 4, label: Minimal, explanation: Few signs.}
"""

PROTOCOL = """\
id: who-8
title: Eight group sessions
sessions:
  - number: 1
    goals:
      - Welcome everyone
      - Agree on group rules
    steps:
      - say: Thank you for coming.
        watch: Who stays silent?
      - ask: What brought you here?
    homework: Notice one good moment.
phases: [initial, middle]
notes: Not for translators
count: 3
"""


def messages(text: str, options: dict | None = None) -> list[tuple]:
    fileobj = io.BytesIO(text.encode("utf-8"))
    return list(extract_yaml(fileobj, ["_"], ["I18N:"], options or {}))


def test_extract_yaml_instrument_messages_with_context():
    assert messages(INSTRUMENT) == [
        (2, None, "PHQ-9", ["I18N: phq9 name"]),
        (4, None, "Last two weeks", ["I18N: phq9 recall"]),
        (7, None, "Thoughts of harming yourself", ["I18N: phq9 item q9 text"]),
        (10, None, "Not at all", ["I18N: phq9 item q9 option 0 label"]),
        (12, None, "On most days", ["I18N: phq9 item q9 option 2 label"]),
        (16, None, "Minimal", ["I18N: phq9 band 1 label"]),
        (16, None, "Few signs.", ["I18N: phq9 band 1 explanation"]),
    ]


def test_extract_yaml_lists_of_strings_and_nested_steps():
    assert messages(PROTOCOL) == [
        (2, None, "Eight group sessions", ["I18N: who-8 title"]),
        (6, None, "Welcome everyone", ["I18N: who-8 session 1 goals 1"]),
        (7, None, "Agree on group rules", ["I18N: who-8 session 1 goals 2"]),
        (9, None, "Thank you for coming.", ["I18N: who-8 session 1 step 1 say"]),
        (10, None, "Who stays silent?", ["I18N: who-8 session 1 step 1 watch"]),
        (11, None, "What brought you here?", ["I18N: who-8 session 1 step 2 ask"]),
        (12, None, "Notice one good moment.", ["I18N: who-8 session 1 homework"]),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Bare yes/no are booleans in YAML, numbers are numbers: not text to translate.
        ("label: yes\n", []),
        ("label: 10\n", []),
        ('label: "Yes"\n', [(1, None, "Yes", ["I18N: label"])]),
        ("label: ''\n", []),
        ("text:\n  nested: mapping\n", []),
        ("id: x\n---\nid: y\nname: Second\n", [(4, None, "Second", ["I18N: y name"])]),
        ("", []),
    ],
)
def test_extract_yaml_only_non_empty_text(text, expected):
    assert messages(text) == expected


def test_extract_yaml_folded_text_keeps_the_loaded_value():
    text = "id: a\ndescription: >-\n  One long\n  sentence.\n"
    assert messages(text) == [(2, None, "One long sentence.", ["I18N: a description"])]
    assert yaml.safe_load(text)["description"] == "One long sentence."


def test_extract_yaml_honours_encoding_option():
    fileobj = io.BytesIO("name: Dépression\n".encode("latin-1"))
    assert list(extract_yaml(fileobj, [], [], {"encoding": "latin-1"})) == [(1, None, "Dépression", ["I18N: name"])]


def test_extract_yaml_broken_file_raises_with_line():
    with pytest.raises(yaml.YAMLError, match="line 2"):
        messages("name: ok\ntext: [unclosed\n")


def test_extract_yaml_works_through_babel_extract():
    fileobj = io.BytesIO(INSTRUMENT.encode("utf-8"))
    found = list(extract(extract_yaml, fileobj, comment_tags=["I18N:"], strip_comment_tags=True))
    assert found[2] == (7, "Thoughts of harming yourself", ["phq9 item q9 text"], None)
    assert len(found) == 7


def test_extract_yaml_finds_every_shipped_instrument_text():
    path = FORMS_DIR / "instruments" / "phq9.yaml"
    with path.open("rb") as fileobj:
        found = {message: comments[0] for _, _, message, comments in extract_yaml(fileobj, [], [], {})}
    assert found["Almost every day"] == "I18N: phq9 option 3 label"
    assert found["Extremely hard"] == "I18N: phq9 item q10 option 3 label"
    assert found["Severe"] == "I18N: phq9 band 5 label"
    assert found["PHQ-9 (depression symptoms)"] == "I18N: phq9 name"
