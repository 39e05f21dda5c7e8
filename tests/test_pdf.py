"""Printable PDFs: the text that reaches each document, its pages, its language, and that it is a real PDF."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import unicodedata
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from group_ipt.base.settings import REPO_DIR
from group_ipt.formfiles.instruments import Instrument, Item, Option, RiskRule, Scoring, load_instruments
from group_ipt.pdf import (
    FONTS_DIR,
    PdfLanguage,
    cycle_report,
    esc,
    register_fonts,
    roster,
    screening_form,
    script_booklet,
)
from group_ipt.pdf.cycle_report import CycleReport, MemberSummary, SessionSummary, group_outcome
from group_ipt.pdf.roster import Roster, RosterMember, RosterSession
from group_ipt.pdf.screening_form import ScreeningForm
from group_ipt.pdf.script_booklet import Booklet, Guidance, SessionScript, Step
from group_ipt.web.i18n import pdf_language

CREATED = datetime(2025, 3, 20, 9, 30)
TRICKY = "<b>x</b> & =cmd"
NAMES = ["Nakato Ŋŋ", "Ñandú Okello", "Wanjiru Kamau", TRICKY]
EN = PdfLanguage("en", name="English")
INSTRUMENTS = load_instruments(REPO_DIR / "forms" / "instruments")

# A stand-in catalog: the tests of layout and language need translated headings
# whatever the translators have done so far. One test below uses the real catalogs.
FAKE_FR = {
    "Attendance roster and sign-in sheet": "Liste de présence et feuille d'émargement",
    "Signature or thumbprint": "Signature ou empreinte",
    "Name": "Nom",
    "Sessions and their dates": "Séances et dates",
    "Page %(page)s of %(pages)s": "Page %(page)s sur %(pages)s",
    "Cycle report: %(cycle)s": "Rapport du cycle : %(cycle)s",
    "Facilitator scripts": "Scripts de l'animateur",
    "Contents": "Sommaire",
}
FAKE_SW = {
    "Attendance roster and sign-in sheet": "Orodha ya mahudhurio na sahihi",
    "Signature or thumbprint": "Sahihi au alama ya kidole",
    "Name": "Jina",
    "Sessions and their dates": "Vikao na tarehe zake",
    "Page %(page)s of %(pages)s": "Ukurasa %(page)s wa %(pages)s",
    "Cycle report: %(cycle)s": "Ripoti ya mzunguko: %(cycle)s",
    "Facilitator scripts": "Maandishi ya mwezeshaji",
    "Contents": "Yaliyomo",
}


def fake_language(code: str, catalog: dict[str, str]) -> PdfLanguage:
    return PdfLanguage(code, gettext=lambda message: catalog.get(message, message), name=code)


def pages_text(pdf: bytes) -> list[str]:
    """Return the text of each page as pypdf extracts it, NFKC-normalised (Arabic presentation forms)."""
    reader = PdfReader(io.BytesIO(pdf))
    return [unicodedata.normalize("NFKC", page.extract_text()) for page in reader.pages]


def first_page_png(pdf: bytes, tmp_path: Path) -> bytes:
    """Render page 1 with poppler's pdftoppm, as a viewer would, and return the PNG."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm is missing: .ci/run installs poppler-utils")
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    subprocess.run([exe, "-png", "-r", "40", "-f", "1", "-l", "1", str(path), str(tmp_path / "page")], check=True)
    [png] = sorted(tmp_path.glob("page*.png"))
    return png.read_bytes()


def outline_pages(pdf: bytes) -> list[tuple]:
    reader = PdfReader(io.BytesIO(pdf))
    return [(item, reader.get_destination_page_number(item) + 1) for item in reader.outline]


# --- data -------------------------------------------------------------------


def make_roster(members: int = 15, sessions: int = 16, recorded: int = 6, **changes) -> Roster:
    start = date(2025, 3, 4)
    statuses = ["present", "absent", "excused", "present"]
    people = [
        RosterMember(
            code=f"KMP-{1000 + i}-C",
            name=NAMES[i] if i < len(NAMES) else f"Member {i:02d} Nakimuli",
            sex=("female", "male", "other")[i % 3],
            problem_areas=(("grief", "disputes", "transitions", "isolation")[i % 4],),
            attendance={s: statuses[(i + s) % 4] for s in range(1, recorded + 1)},
        )
        for i in range(members)
    ]
    data = Roster(
        programme="StrongMinds pilot",
        site="Kampala North",
        cycle="KMP-C003",
        sessions=[RosterSession(n, start + timedelta(weeks=n - 1)) for n in range(1, sessions + 1)],
        members=people,
        facilitators=("Amina Nakato", "Grace Wanjiru"),
        venue="St Peter's hall",
        weekday=1,
        time=time(14, 0),
    )
    return replace(data, **changes)


def make_report(**changes) -> CycleReport:
    start = date(2025, 3, 4)
    sessions = [
        SessionSummary(n, start + timedelta(weeks=n - 1), "held", present=4, absent=1, excused=0) for n in range(1, 9)
    ] + [SessionSummary(n, start + timedelta(weeks=n - 1), "scheduled") for n in range(9, 13)]
    members = [
        MemberSummary("KMP-1000-C", NAMES[0], attended=8, completed=True, baseline=16, last=4),  # response, remission
        MemberSummary("KMP-1001-C", NAMES[1], attended=7, completed=True, baseline=12, last=7),  # neither
        MemberSummary(
            "KMP-1002-C", NAMES[2], attended=8, completed=True, baseline=20, last=10
        ),  # response: 50% exactly
        MemberSummary("KMP-1003-C", TRICKY, attended=2, completed=False, dropped_out=True, baseline=14, last=None),
        MemberSummary("KMP-1004-C", "Ali", attended=6, completed=True, baseline=10, last=3),  # response, remission
    ]
    data = CycleReport(
        programme="StrongMinds pilot",
        site="Kampala North",
        cycle="KMP-C003",
        protocol="StrongMinds, 12 sessions",
        sessions=sessions,
        members=members,
        group_sessions=12,
        instrument="PHQ-9",
        facilitators=("Amina Nakato",),
        open_referrals=2,
    )
    return replace(data, **changes)


def make_script(number: int, title: str) -> SessionScript:
    return SessionScript(
        session_number=number,
        phase="middle" if number else "pre-group",
        minutes=90,
        title=title,
        goals=("Check each member's mood.", "Agree a small task."),
        agenda=(
            Step("Welcome", 10, say=("Welcome back, everyone.",), ask=("How was your week?",)),
            Step(
                "Working on problems",
                80,
                activity=("Invite one member to tell their story.",),
                watch=("Keep the talk on the present.",),
                guidance=(Guidance("Grief", say=("Tell us about the person you lost.",)),),
            ),
        ),
        reminder=("Stay with the person and tell your supervisor the same day.",),
    )


# --- shared pieces ----------------------------------------------------------


def test_fonts_are_bundled_with_their_licence():
    assert (FONTS_DIR / "DejaVuSans-2.37.ttf").stat().st_size > 500_000
    assert (FONTS_DIR / "DejaVuSans-Bold-2.37.ttf").stat().st_size > 500_000
    assert "Bitstream Vera" in (FONTS_DIR / "LICENSE-DejaVu.txt").read_text(encoding="utf-8")


def test_bundled_font_has_every_letter_of_every_catalog():
    """Every string of every UI language (and the names in these tests) has a glyph: none prints as a box."""
    from babel.messages.pofile import read_po
    from reportlab.pdfbase.ttfonts import TTFontFile

    glyphs = TTFontFile(str(FONTS_DIR / "DejaVuSans-2.37.ttf")).charToGlyph
    text = "".join(NAMES) + "محمد علي" + "✓✗⚠•–—…“”"
    catalogs = sorted((REPO_DIR / "translations").glob("*/LC_MESSAGES/messages.po"))
    assert catalogs
    for path in catalogs:
        with path.open("rb") as f:
            for message in read_po(f):
                for part in (message.id, message.string):
                    text += "".join(part) if isinstance(part, (tuple, list)) else part or ""
    missing = sorted({ch for ch in text if ch.isprintable() and not ch.isspace() and ord(ch) not in glyphs})
    assert not missing, missing


def test_fonts_register_once():
    from reportlab.pdfbase import pdfmetrics

    register_fonts()
    register_fonts()
    assert {"DejaVuSans", "DejaVuSans-Bold"} <= set(pdfmetrics.getRegisteredFontNames())


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (TRICKY, "&lt;b&gt;x&lt;/b&gt; &amp; =cmd"),
        ("Ñandú & co", "Ñandú &amp; co"),
        ("bell\x07 tab\tok", "bell tab\tok"),
        (None, ""),
        (12, "12"),
    ],
)
def test_esc_makes_user_text_literal(raw, escaped):
    assert esc(raw) == escaped


def test_pdf_text_is_real_text_in_the_bundled_font():
    reader = PdfReader(io.BytesIO(roster.render(make_roster(), EN, created=CREATED)))
    fonts = {str(f["/BaseFont"]) for f in reader.pages[0]["/Resources"]["/Font"].get_object().values()}
    assert any(name.endswith("DejaVuSans") for name in fonts), fonts
    assert "Nakato Ŋŋ" in reader.pages[0].extract_text()


def test_same_data_and_date_give_the_same_bytes():
    data = make_roster()
    assert roster.render(data, EN, created=CREATED) == roster.render(data, EN, created=CREATED)


def test_creation_date_is_the_one_given():
    reader = PdfReader(io.BytesIO(roster.render(make_roster(), EN, created=CREATED)))
    assert reader.metadata.creation_date.replace(tzinfo=None) == CREATED
    assert "Printed Mar 20, 2025" in reader.pages[0].extract_text()


# --- roster -----------------------------------------------------------------


def test_roster_prints_members_dates_and_marks():
    [page] = pages_text(roster.render(make_roster(), EN, created=CREATED))
    for name in NAMES:
        assert name in page
    assert "KMP-1000-C" in page
    words = " ".join(page.split())  # a narrow column puts day and month on two lines
    assert "1 4 Mar" in words and "16 17 Jun" in words  # first and sixteenth session, with dates
    assert "Female" in page and "life changes" in page
    assert "every Tuesday at 2:00 PM" in page
    # Six recorded sessions for 15 members: 90 marks (present + absent + excused), the rest are boxes.
    marks = re.findall(r"(?<![A-Za-z])[✓✗E](?![A-Za-z])", page)
    legend = 3 + 1  # ✓ ✗ E in the legend, and ✗ in the instruction next to it
    assert len(marks) - legend == 15 * 6
    assert "Page 1 of 1" in page


def test_roster_of_16_sessions_and_15_members_fits_one_page():
    assert len(pages_text(roster.render(make_roster(15, 16), EN, created=CREATED))) == 1


def test_roster_of_40_members_breaks_across_pages_with_headers_repeated():
    pages = pages_text(roster.render(make_roster(40, 16), EN, created=CREATED))
    assert len(pages) >= 3
    for number, page in enumerate(pages, start=1):
        assert "Signature or" in page and "Sessions and their dates" in page
        assert f"Page {number} of {len(pages)}" in page
    for page in pages[1:]:
        assert "KMP-C003 · Kampala North" in page  # the running header
    text = "\n".join(pages)
    for i in range(40):
        assert text.count(f"KMP-{1000 + i}-C") == 1


def test_roster_privacy_prints_codes_instead_of_names():
    page = pages_text(roster.render(make_roster(privacy=True), EN, created=CREATED))[0]
    assert "KMP-1001-C" in page
    assert "Ñandú" not in page and "Name" not in page


def test_roster_with_more_than_16_sessions_continues_in_a_second_table():
    pages = pages_text(roster.render(make_roster(10, 20), EN, created=CREATED))
    assert len(pages) == 2
    assert "Sessions 17 to 20" in pages[1]
    assert "Ñandú Okello" in pages[1]


@pytest.mark.parametrize(
    ("code", "catalog", "heading", "date_text", "page_text"),
    [
        ("fr", FAKE_FR, "Liste de présence et feuille d'émargement", "4 mars", "Page 1 sur 1"),
        ("sw", FAKE_SW, "Orodha ya mahudhurio na sahihi", "4 Mac", "Ukurasa 1 wa 1"),
    ],
)
def test_roster_in_another_language(code, catalog, heading, date_text, page_text):
    [page] = pages_text(roster.render(make_roster(), fake_language(code, catalog), created=CREATED))
    assert heading in page
    assert catalog["Signature or thumbprint"].split()[0] in page
    assert date_text in " ".join(page.split())  # babel's month names
    assert page_text in page
    assert "Ŋŋ" in page and TRICKY in page


def test_roster_shapes_right_to_left_names():
    data = make_roster(members=2)
    data = replace(data, members=[replace(data.members[0], name="محمد علي")])
    [page] = pages_text(roster.render(data, EN, created=CREATED))
    assert "محمد علي" in page  # joined letters, in reading order once normalised


def test_right_to_left_paragraph_wraps_in_reading_order():
    """A question that takes two lines starts on the first line, read from the right."""
    arabic = "كان من الصعب عليك أن تركز على الأشياء مثل الاستماع إلى الراديو أو القراءة أو التحدث مع الآخرين في البيت"
    question = INSTRUMENTS["phq9"].items[6].text
    lang = PdfLanguage("ar", gettext=lambda m: arabic if m == question else m, rtl=True, name="العربية")
    front = pages_text(screening_form.render(ScreeningForm(INSTRUMENTS["phq9"], "P"), lang, created=CREATED))[0]
    first, second = front.index("كان من الصعب"), front.index("في البيت")
    assert first < second
    assert "\n" in front[first:second]  # it did wrap
    assert "العربية" in front


# --- screening form ---------------------------------------------------------


@pytest.mark.parametrize("instrument_id", sorted(INSTRUMENTS))
def test_screening_form_for_every_instrument(instrument_id):
    instrument = INSTRUMENTS[instrument_id]
    pages = pages_text(screening_form.render(ScreeningForm(instrument, "Pilot", "KMP"), EN, created=CREATED))
    assert len(pages) % 2 == 0  # the scoring guide is on the back
    front, guide = "\n".join(pages[:-1]), pages[-1]
    assert "Participant code" in front and "Date" in front
    for n, item in enumerate(instrument.items, start=1):
        assert f"{n}." in front
        assert item.text.split()[0] in front
    for option in instrument.items[0].options:
        assert option.label.split()[0] in front
    assert "Scoring guide" in "\n".join(pages[1:])
    for band in instrument.bands:
        assert band.label in "\n".join(pages[1:])
    assert ("Act now" in guide) == bool(instrument.risk_items)


def test_screening_form_phq9_says_question_9_needs_action():
    pages = pages_text(screening_form.render(ScreeningForm(INSTRUMENTS["phq9"], "Pilot"), EN, created=CREATED))
    assert len(pages) == 2
    assert "Question 9: an answer that needs action today" in pages[0]
    assert "Question 9: if the answer is one of “On a few days” (1)" in pages[1].replace("\n", " ")
    assert "A total of 10 or more" in pages[1]
    assert "Question 10 is recorded but not added" in pages[1]


def test_screening_form_uses_the_programme_cutoff():
    form = ScreeningForm(INSTRUMENTS["phq9"], "Pilot", cutoff=9)
    assert "A total of 9 or more" in pages_text(screening_form.render(form, EN, created=CREATED))[1]


def test_long_screening_form_keeps_the_guide_on_a_back_page():
    options = (Option(0, "No"), Option(1, "Yes"))
    items = tuple(Item(f"q{i}", f"Long question number {i} about daily life.", options) for i in range(1, 45))
    items += (Item("q45", "Thoughts of harming yourself.", options, risk=RiskRule(">=", 1)),)
    long_form = Instrument("long", "Long checklist", "1", "Think about last month.", items, Scoring("sum"))
    pages = pages_text(screening_form.render(ScreeningForm(long_form, "Pilot"), EN, created=CREATED))
    assert len(pages) == 4
    assert "left blank" in pages[2]
    assert "Scoring guide: Long checklist" in pages[3]
    assert "Question 45: if the answer is one of “Yes” (1)" in pages[3].replace("\n", " ")


# --- script booklet ---------------------------------------------------------


def test_booklet_of_one_session_has_no_contents():
    data = Booklet("Pilot", "WHO group IPT, 8 sessions", [make_script(3, "Mood and the week's events")])
    pages = pages_text(script_booklet.render(data, EN, created=CREATED))
    text = "\n".join(pages)
    assert "Contents" not in text
    assert "Session 3: Mood and the week's events" in text
    assert "“Welcome back, everyone.”" in text
    assert "For members working on Grief" in text
    assert "If someone talks about harming themselves" in text
    assert "0:10 Working on problems (80 min)" in text


def test_booklet_of_a_protocol_has_contents_with_the_right_pages():
    sessions = [make_script(0, "Meeting each person")] + [make_script(n, f"Topic {n}") for n in range(1, 9)]
    data = Booklet("Pilot", "WHO group IPT, 8 sessions", sessions)
    pdf = script_booklet.render(data, EN, created=CREATED)
    pages = pages_text(pdf)
    assert "Contents" in pages[0] and "Language: English" in pages[0]
    outline = {item.title: reader_page for item, reader_page in outline_pages(pdf)}
    for n in range(1, 9):
        heading = f"Session {n}: Topic {n}"
        start = next(i for i, page in enumerate(pages, start=1) if page.startswith(heading))
        assert re.search(rf"{re.escape(heading)}\s*[ .]*\s*(\d+)\n", pages[0]).group(1) == str(start)
        assert outline[heading] == start  # the PDF bookmarks agree


def test_booklet_in_another_language():
    data = Booklet("Pilot", "WHO-8", [make_script(1, "Karibu"), make_script(2, "Kazi")])
    pages = pages_text(script_booklet.render(data, fake_language("sw", FAKE_SW), created=CREATED))
    assert "Maandishi ya mwezeshaji" in pages[0] and "Yaliyomo" in pages[0]


# --- cycle report -----------------------------------------------------------


def test_group_outcome_counts_response_and_remission():
    outcome = group_outcome(make_report().members, remission_below=5)
    assert (outcome.members, outcome.completed, outcome.dropped_out, outcome.paired) == (5, 4, 1, 4)
    assert outcome.mean_baseline == pytest.approx(14.5)
    assert outcome.mean_last == pytest.approx(6.0)
    assert outcome.mean_change == pytest.approx(-8.5)  # (-12 - 5 - 10 - 7) / 4
    assert outcome.responders == 3  # 16->4, 20->10 (exactly half), 10->3
    assert outcome.remitted == 2  # 4 and 3 are below 5
    assert outcome.response_share == pytest.approx(0.75)


def test_group_outcome_without_scores():
    outcome = group_outcome([MemberSummary("A", "A", attended=1, completed=False)])
    assert outcome.paired == 0 and outcome.mean_change is None and outcome.response_share is None


def test_cycle_report_prints_attendance_completion_and_change():
    text = " ".join(" ".join(pages_text(cycle_report.render(make_report(), EN, created=CREATED))).split())
    for name in NAMES:
        assert name in text
    assert "Cycle report: KMP-C003" in text
    assert "8 of 12" in text  # sessions held of planned
    assert "4 (80%)" in text  # completed
    assert "1 (20%)" in text  # dropped out
    assert "−8.5" in text  # mean change
    assert "3 (75%)" in text  # at least 50% better
    assert "2 (50%)" in text  # below 5 at the end
    assert "Mar 4, 2025" in text and "80%" in text  # a session's date and attendance rate
    assert "Members present at each session" in text  # the chart's title is text too


def test_cycle_report_privacy_and_language():
    text = "\n".join(pages_text(cycle_report.render(make_report(privacy=True), fake_language("fr", FAKE_FR))))
    assert "Rapport du cycle : KMP-C003" in text
    assert "KMP-1001-C" in text and "Ñandú" not in text


# --- the real catalogs ------------------------------------------------------


@pytest.mark.parametrize(("code", "word", "name"), [("fr", "Langue", "Français"), ("sw", "Lugha", "Kiswahili")])
def test_pdf_language_of_the_app_uses_the_real_catalog(app, code, word, name):
    with app.app_context():
        lang = pdf_language(code)
    # Drawn outside any Flask context, as the CLI and a worker thread may do.
    form = ScreeningForm(INSTRUMENTS["phq9"], "Pilot")
    front = pages_text(screening_form.render(form, lang, created=CREATED))[0]
    assert f"{word}\n{name}" in front or f"{word} {name}" in front
    assert "Language" not in front


# --- valid PDFs -------------------------------------------------------------


@pytest.mark.parametrize(
    "make_pdf",
    [
        pytest.param(lambda: roster.render(make_roster(), EN, created=CREATED), id="roster"),
        pytest.param(
            lambda: screening_form.render(ScreeningForm(INSTRUMENTS["phq9"], "P"), EN, created=CREATED),
            id="screening-form",
        ),
        pytest.param(
            lambda: script_booklet.render(Booklet("P", "WHO-8", [make_script(1, "A"), make_script(2, "B")]), EN),
            id="script-booklet",
        ),
        pytest.param(lambda: cycle_report.render(make_report(), EN, created=CREATED), id="cycle-report"),
    ],
)
def test_each_document_renders_to_png(make_pdf, tmp_path):
    png = first_page_png(make_pdf(), tmp_path)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 2000  # not an empty page


def test_right_to_left_letters_are_found_by_the_shortcut():
    from group_ipt.pdf import has_rtl

    # has_rtl skips ASCII text and letters below U+0590: none of them is right-to-left.
    assert not [ch for ch in map(chr, range(0x590)) if unicodedata.bidirectional(ch) in ("R", "AL")]
    assert has_rtl("Amina אמינה") and has_rtl("ܫܠܡܐ") and has_rtl("café سلام")
    assert not has_rtl("Nakato Ŋŋ é ü ñ") and not has_rtl("") and not has_rtl("KMP-1001")
