"""Every printed document in each language: no English string of ours left in it, no word split
at a line end, chart labels that do not overlap (issue 19, item 6)."""

from __future__ import annotations

import io
import re
import tokenize
import unicodedata
from functools import cache

import pytest
from babel.messages.pofile import read_po
from pypdf import PdfReader

from group_ipt.base.settings import REPO_DIR
from group_ipt.demo import programme as demo
from group_ipt.reporting import report_charts
from group_ipt.store import db as dbmod

from .conftest import make_app
from .i18n_walk import translations

LANGUAGES = ("fr", "sw", "lg")


@pytest.fixture(scope="module")
def demo_client(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("demo") / "data")
    db = dbmod.connect(app.config["DATABASE"])
    with app.app_context():
        demo.load_demo(db, app)
    ids = {
        "closed": db.execute("select id from cycles where status like 'closed%' limit 1").fetchone()[0],
        "active": db.execute("select id from cycles where status = 'active' limit 1").fetchone()[0],
        "person": db.execute("select id from participants where status = 'enrolled' limit 1").fetchone()[0],
    }
    db.close()
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"username": "admin", "password": demo.DEMO_PASSWORD, "csrf_token": token})
    instruments = sorted(app.extensions["group_ipt_forms"].instruments)
    return client, ids, instruments


def documents(ids: dict, instruments: list[str]) -> dict[str, str]:
    found = {
        "roster": f"/cycles/{ids['active']}/roster.pdf",
        "roster of a closed cycle": f"/cycles/{ids['closed']}/roster.pdf",
        "report": f"/cycles/{ids['active']}/report.pdf",
        "report of a closed cycle": f"/cycles/{ids['closed']}/report.pdf",
        "script booklet": "/scripts/who-8/booklet.pdf",
        "consent form": "/consent.pdf",
        "a participant's consent form": f"/participants/{ids['person']}/consent.pdf",
    }
    found.update({f"{i} form": f"/forms/{i}/form.pdf" for i in instruments})
    return found


def pdf_words(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return " ".join(" ".join(unicodedata.normalize("NFKC", p.extract_text()) for p in reader.pages).split())


@cache
def english_chunks(lang: str) -> tuple[str, ...]:
    """Pieces of our UI msgids (10+ characters, more than one word) whose translation in ``lang`` differs."""
    with (REPO_DIR / "translations" / "messages.pot").open("rb") as f:
        template = read_po(f)
    translated = translations(lang)
    chunks = set()
    for message in template:
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        if not ids[0] or not any(path.startswith("group_ipt/") for path, _ in message.locations):
            continue
        for msgid in ids:
            if translated.get(msgid, msgid) == msgid and msgid in translated:
                continue
            for part in re.split(r"%\([a-z_]+\)[sd]|%%|\n", msgid):
                part = part.strip(" .,:;()*")
                if len(part) >= 10 and " " in part:
                    chunks.add(part)
    return tuple(sorted(chunks))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_pdf_speaks_one_language(demo_client, lang):
    client, ids, instruments = demo_client
    problems = {}
    for name, url in documents(ids, instruments).items():
        response = client.get(f"{url}?lang={lang}")
        assert response.status_code == 200, (name, response.status_code)
        text = pdf_words(response.data)
        left = [chunk for chunk in english_chunks(lang) if chunk in text]
        if left:
            problems[name] = left
    assert not problems, f"{lang}: English left in: {problems}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_report_headings_keep_their_words_whole(demo_client, lang):
    """A heading too wide for its column used to be split mid-word ("Alihudhur ia")."""
    client, ids, _instruments = demo_client
    text = pdf_words(client.get(f"/cycles/{ids['closed']}/report.pdf?lang={lang}").data)
    translated = translations(lang)
    for heading in (
        "Attended",
        "Completed",
        "Dropped out",
        "Baseline",
        "End score",
        "Score change",
        "50% better",
        "Present",
        "Absent",
        "Excused",
        "Attendance",
    ):
        for word in translated[heading].split():
            assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", text), (lang, heading, word)
    roster = pdf_words(client.get(f"/cycles/{ids['active']}/roster.pdf?lang={lang}").data)
    for heading in ("Code", "Name", "Sex", "Problem area", "Signature or thumbprint"):
        for word in translated[heading].split():
            assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", roster), (lang, "roster", heading, word)
    # The charts' titles are whole (a title wider than its chart used to be cut at the edge).
    title = translated["%(instrument)s: first and last score"].replace("%(instrument)s", "")
    assert " ".join(title.split()) in text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_screening_form_labels_keep_their_words_whole(demo_client, lang):
    """The date boxes' and the office line's labels used to be split mid-word in Luganda ("Omugat te")."""
    client, _ids, instruments = demo_client
    translated = translations(lang)
    for instrument in instruments:
        text = pdf_words(client.get(f"/forms/{instrument}/form.pdf?lang={lang}").data)
        for label in ("day", "month", "year", "Total", "by", "Date", "Participant code"):
            for word in translated[label].split():
                assert re.search(rf"(^|\s){re.escape(word)}(\s|$)", text), (lang, instrument, label, word)


def test_no_translated_call_hides_inside_an_f_string():
    """pybabel cannot see _("...") inside an f-string (Python 3.11): such a text is never translated."""
    found = []
    for path in sorted((REPO_DIR / "group_ipt").rglob("*.py")):
        with path.open("rb") as f:
            for token in tokenize.tokenize(f.readline):
                if (
                    token.type == tokenize.STRING
                    and re.match(r"(?i)[rb]*f", token.string)
                    and re.search(r"\b_\(\s*['\"]", token.string)
                ):
                    found.append(f"{path.relative_to(REPO_DIR)}:{token.start[0]}")
    assert not found, found


def test_chart_labels_never_overlap():
    labels = [f"KMP-C{n:03d}" for n in range(1, 21)]
    inner = report_charts.WIDTH - report_charts.LEFT - report_charts.RIGHT
    every = report_charts.label_every(labels, inner)
    step = inner / len(labels)
    assert step * every >= len(labels[0]) * report_charts.LABEL_CHAR_WIDTH + 8
    svg = str(report_charts.bar_chart([report_charts.Bar(label, 50, "50%") for label in labels], title="t"))
    shown = re.findall(r">(KMP-C\d{3})</text>", svg)
    assert 2 <= len(shown) < len(labels) and shown[0] == "KMP-C001"
    short = [str(n) for n in range(1, 13)]
    assert report_charts.label_every(short, inner) == 1
