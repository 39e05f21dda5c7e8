"""Printouts from real data: gathering a cycle's roster and report, the Print pages, the `pdf` commands."""

from __future__ import annotations

import io
import json
import unicodedata
import uuid
from datetime import date, datetime

import pytest
from pypdf import PdfReader

from group_ipt.core import cycles, outcomes, users
from group_ipt.core.sessions import SessionEntry, record_session
from group_ipt.pdf import PdfLanguage, cycle_report
from group_ipt.pdf import data as pdfdata
from group_ipt.store import db as dbmod

from .conftest import FAST_HASH, PASSWORD, add_participant, login, post_form

TRICKY = "<b>x</b> & =cmd"
NAMES = ["Nakato Ŋŋ", "Ñandú Okello", TRICKY]
NOW = datetime(2026, 2, 20, 9, 0)
AFTER = date(2026, 6, 1)


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(unicodedata.normalize("NFKC", page.extract_text()) for page in reader.pages)


def words(pdf: bytes) -> str:
    return " ".join(text_of(pdf).split())


def add_screening(
    db, participant: dict, total: float, on: str, instrument: str = "phq9", occasion: str = "screening"
) -> None:
    stamp = "2026-01-01T00:00:00+00:00"
    with dbmod.write(db):
        db["screenings"].insert(
            {
                "id": str(uuid.uuid4()),
                "site_id": participant["site_id"],
                "participant_id": participant["id"],
                "instrument_id": instrument,
                "instrument_version": "1",
                "occasion": occasion,
                "answers_json": json.dumps({}),
                "total": total,
                "raw_total": total,
                "administered_on": on,
                "submission_key": uuid.uuid4().hex,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )


def add_referral(db, participant: dict, status: str = "open") -> None:
    stamp = "2026-01-01T00:00:00+00:00"
    with dbmod.write(db):
        db["referrals"].insert(
            {
                "id": str(uuid.uuid4()),
                "site_id": participant["site_id"],
                "participant_id": participant["id"],
                "reason": "risk answer",
                "urgency": "urgent",
                "status": status,
                # A closed referral carries what closing needs (here a note, as older software closed one).
                "note": "closed" if status == "closed" else None,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )


def make_cycle(db, protocols, site: str = "KMP", facilitator: str = "amina", names=NAMES) -> dict:
    """A who-8 cycle with three members, sessions 1-3 recorded, two PHQ-9 scores and one open referral."""
    site_row = users.get_site(db, site)
    coord = users.get_user_by_username(db, "coord") or users.get_user_by_username(db, "admin")
    facilitator_row = users.get_user_by_username(db, facilitator)
    cycle = cycles.create_cycle(
        db,
        site_id=site_row["id"],
        protocol=protocols["who-8"],
        facilitator_ids=[facilitator_row["id"]],
        group_type="women",
        venue="St Peter's hall",
        first_date=date(2026, 3, 2),
        weekday=0,
        start_time="14:00",
        actor=coord,
        now=NOW,
    )
    people = [add_participant(db, site, name) for name in names]
    members = [cycles.enrol(db, cycle["id"], p["id"], actor=coord, today=date(2026, 2, 25))[0] for p in people]
    statuses = {
        1: ["present", "present", "absent"],
        2: ["present", "late", "excused"],
        3: ["present", "absent", "absent"],
    }
    for session in cycles.sessions(db, cycle["id"]):
        if session["kind"] == "group" and session["number"] in statuses:
            entry = SessionEntry({m["id"]: s for m, s in zip(members, statuses[session["number"]], strict=True)})
            record_session(
                db,
                session["id"],
                entry,
                expected_version=session["version"],
                protocols=protocols,
                actor=facilitator_row,
                today=AFTER,
            )
    add_screening(db, people[0], 16, "2026-02-10")  # baseline, before the first group session
    add_screening(db, people[0], 9, "2026-03-30", occasion="mid")  # mid-cycle: not the end score
    add_screening(db, people[0], 6, "2026-04-27", occasion="end")  # the end measure: the last score
    add_screening(db, people[1], 12, "2026-04-20", occasion="mid")  # no baseline, no end measure
    add_screening(db, people[0], 2, "2026-09-01")  # a follow-up months later: not the cycle's result
    add_referral(db, people[1])
    add_referral(db, people[2], status="closed")
    return cycle


@pytest.fixture
def cycle(db, protocols):
    return make_cycle(db, protocols)


# --- gathering the data -----------------------------------------------------


def test_roster_data_of_a_cycle(db, cycle, app):
    data = pdfdata.roster_data(db, cycle["code"], site_ids=None, programme="Pilot")
    assert [s.number for s in data.sessions] == list(range(1, 9))  # group sessions; not the individual one
    assert data.sessions[0].date == date(2026, 3, 9)
    assert data.facilitators == ("Amina Nakato",) and data.venue == "St Peter's hall" and data.weekday == 0
    by_name = {m.name: m for m in data.members}
    assert set(by_name) == set(NAMES)
    first = [by_name[name].attendance.get(data.sessions[0].key) for name in NAMES]
    assert first == ["present", "present", "absent"]
    assert by_name[NAMES[1]].attendance[data.sessions[1].key] == "late"
    assert data.sessions[3].key not in by_name[NAMES[0]].attendance  # session 4 is still to come


def test_roster_data_is_limited_to_the_users_sites(db, cycle):
    msk = users.get_site(db, "MSK")
    with pytest.raises(pdfdata.NotFound):
        pdfdata.roster_data(db, cycle["id"], site_ids=[msk["id"]], programme="Pilot")
    with pytest.raises(pdfdata.NotFound):
        pdfdata.roster_data(db, "KMP-C999", site_ids=None, programme="Pilot")


def test_cycle_report_data_of_a_cycle(db, cycle, app):
    forms = app.extensions["group_ipt_forms"]
    data = pdfdata.cycle_report_data(
        db,
        cycle["id"],
        site_ids=None,
        programme="Pilot",
        protocols=forms.protocols,
        instruments=forms.instruments,
        lang=PdfLanguage(),
    )
    assert data.group_sessions == 8 and data.instrument == "PHQ-9 (depression symptoms)"
    assert [(s.number, s.status, s.present, s.absent, s.excused) for s in data.sessions[:4]] == [
        (1, "held", 2, 1, 0),
        (2, "held", 2, 0, 1),
        (3, "held", 1, 2, 0),
        (4, "scheduled", 0, 0, 0),
    ]
    by_name = {m.name: m for m in data.members}
    assert [by_name[n].attended for n in NAMES] == [3, 2, 0]
    assert (by_name[NAMES[0]].baseline, by_name[NAMES[0]].last) == (16, 6)
    assert by_name[NAMES[1]].baseline is None
    assert data.open_referrals == 1
    assert data.remission_below == 5
    assert data.status == "session 3 of 8 held"


def test_cycle_report_and_indicators_use_one_outcome_rule(db, cycle, app):
    """The same closed cycle gives the same baseline, end score, response and remission in both."""
    from group_ipt.reporting import indicators
    from group_ipt.reporting.periods import parse_period

    forms = app.extensions["group_ipt_forms"]
    for session in cycles.sessions(db, cycle["id"]):
        if session["status"] == "scheduled":
            with dbmod.write(db):
                db["sessions"].update(session["id"], {"status": "held"})
    cycles.close_cycle(db, cycle["id"], forms.protocols["who-8"], early=False, actor=None, today=date(2026, 5, 1))
    data = pdfdata.cycle_report_data(
        db,
        cycle["id"],
        site_ids=None,
        programme="Pilot",
        protocols=forms.protocols,
        instruments=forms.instruments,
        lang=PdfLanguage(),
        grace_days=14,
    )
    report = indicators.Report(
        db,
        indicators.Filters(site_ids=(users.get_site(db, "KMP")["id"],), period=parse_period("2026")),
        forms.protocols,
        today=date(2026, 6, 1),
        grace_days=14,
    )
    by_code = {r["participant_code"]: r for r in report.outcome}
    for member in data.members:
        found = by_code[member.code]
        assert (member.baseline, member.last) == (found["baseline"], found["end"])
    assert [(m.baseline, m.last) for m in data.members if m.name == NAMES[0]] == [(16, 6)]
    assert [(m.baseline, m.last) for m in data.members if m.name == NAMES[1]] == [(None, None)]
    outcome = cycle_report.group_outcome(data.members, data.remission_below)
    first = by_code[next(m.code for m in data.members if m.name == NAMES[0])]
    assert (outcome.responders, outcome.remitted) == (first["improved_50"], first["below_5"]) == (1, 0)


@pytest.mark.parametrize(
    ("baseline", "last", "responded", "remitted"),
    [
        (16, 8, True, False),
        (16, 9, False, False),
        (10, 4, True, True),
        (0, 0, False, True),
        (3, 4, False, True),
        (None, 4, None, True),
        (12, None, None, None),
    ],
)
def test_outcome_rule(baseline, last, responded, remitted):
    assert outcomes.responded(baseline, last) is responded
    assert outcomes.remitted(last) is remitted


# --- Print pages ------------------------------------------------------------


def test_roster_page_returns_the_pdf(logged_in, cycle):
    response = logged_in.get(f"/cycles/{cycle['id']}/roster.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert 'filename="roster-KMP-C001.pdf"' in response.headers["Content-Disposition"]
    text = words(response.data)
    for name in NAMES:
        assert name in text
    assert "9 Mar" in text and "✓" in text and "✗" in text
    assert "Page 1 of 1" in text


def test_roster_page_with_privacy_and_another_language(logged_in, cycle):
    response = logged_in.get(f"/cycles/{cycle['code']}/roster.pdf?lang=sw&privacy=1")
    text = words(response.data)
    assert "Ŋŋ" not in text and "Ñandú" not in text and "KMP-0001-T" in text
    assert "9 Mac" in text  # Swahili month names from Babel


def test_roster_of_another_site_is_not_found(client, cycle):
    login(client, "grace")  # a facilitator at MSK only
    assert client.get(f"/cycles/{cycle['id']}/roster.pdf").status_code == 404
    assert client.get(f"/cycles/{cycle['id']}/report.pdf").status_code == 404


def test_cycle_report_page(logged_in, cycle):
    response = logged_in.get(f"/cycles/{cycle['id']}/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text = words(response.data)
    assert "Cycle report: KMP-C001" in text and "3 of 8" in text
    assert TRICKY in text and "−10" in text  # 16 -> 6


@pytest.mark.parametrize(("lang", "word"), [("fr", "Langue"), ("sw", "Lugha")])
def test_screening_form_page_in_a_language(logged_in, lang, word):
    response = logged_in.get(f"/forms/phq9/form.pdf?lang={lang}&site=KMP")
    assert response.status_code == 200
    text = words(response.data)
    assert word in text and "Kampala North" in text


@pytest.mark.parametrize(
    "url",
    [
        "/forms/nope/form.pdf",
        "/forms/phq9/form.pdf?lang=xx",
        "/forms/phq9/form.pdf?site=MSK",
        "/scripts/nope/booklet.pdf",
        "/scripts/who-8/99/script.pdf",
        "/cycles/nope/roster.pdf",
    ],
)
def test_unknown_things_are_not_found(logged_in, url):
    assert logged_in.get(url).status_code == 404


def test_script_pages(logged_in):
    whole = logged_in.get("/scripts/who-8/booklet.pdf")
    assert whole.status_code == 200 and whole.mimetype == "application/pdf"
    text = words(whole.data)
    assert "Contents" in text and "Session 8:" in text
    one = words(logged_in.get("/scripts/who-8/3/script.pdf").data)
    assert "Session 3:" in one and "Contents" not in one


def test_page_and_pdf_in_the_users_language(logged_in):
    """The user's saved language reaches both the web page and the printout."""
    post_form(logged_in, "/account/language", {"lang": "sw"}, form_page="/account/")
    assert "Akaunti yangu" in logged_in.get("/").get_data(as_text=True)
    assert "Lugha Kiswahili" in words(logged_in.get("/forms/phq9/form.pdf").data)


# --- the `pdf` commands -----------------------------------------------------


def test_pdf_screening_form_command(runner, tmp_path):
    out = tmp_path / "phq9-sw.pdf"
    result = runner.invoke(["pdf", "screening-form", "phq9", "--lang", "sw", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Lugha Kiswahili" in words(out.read_bytes())


def test_pdf_script_command(runner, tmp_path):
    out = tmp_path / "s2.pdf"
    result = runner.invoke(["pdf", "script", "who-8", "--session", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "Session 2:" in words(out.read_bytes())


def test_pdf_commands_refuse_unknown_things(runner, tmp_path):
    out = str(tmp_path / "x.pdf")
    result = runner.invoke(["pdf", "screening-form", "nope", "-o", out])
    assert result.exit_code != 0 and "no instrument 'nope'" in result.output
    result = runner.invoke(["pdf", "screening-form", "phq9", "--lang", "xx", "-o", out])
    assert result.exit_code != 0 and "Unknown language 'xx'" in result.output


def test_pdf_roster_and_report_commands(runner, tmp_path):
    from group_ipt.cli import initialise
    from group_ipt.web.app import create_app

    db = initialise(runner.data_dir)
    site = users.create_site(db, "KMP", "Kampala North", "sw")
    users.create_user(
        db, "coord", PASSWORD, "coordinator", display_name="Ruth", site_ids=[site["id"]], hash_method=FAST_HASH
    )
    users.create_user(
        db, "amina", PASSWORD, "facilitator", display_name="Amina Nakato", site_ids=[site["id"]], hash_method=FAST_HASH
    )
    protocols = create_app({"DATA_DIR": str(runner.data_dir)}).extensions["group_ipt_forms"].protocols
    make_cycle(db, protocols)
    db.close()

    roster_pdf = tmp_path / "roster.pdf"
    result = runner.invoke(["pdf", "roster", "KMP-C001", "-o", str(roster_pdf)])
    assert result.exit_code == 0, result.output
    text = words(roster_pdf.read_bytes())
    assert "Nakato Ŋŋ" in text and "9 Mac" in text  # the site's language (Swahili) by default

    report_pdf = tmp_path / "report.pdf"
    result = runner.invoke(["pdf", "cycle-report", "KMP-C001", "--lang", "en", "--privacy", "-o", str(report_pdf)])
    assert result.exit_code == 0, result.output
    text = words(report_pdf.read_bytes())
    assert "Cycle report: KMP-C001" in text and "Ŋŋ" not in text

    result = runner.invoke(["pdf", "roster", "KMP-C999", "-o", str(roster_pdf)])
    assert result.exit_code != 0 and "No cycle 'KMP-C999'" in result.output


def test_cycle_page_links_to_its_printouts(logged_in, cycle):
    page = logged_in.get(f"/cycles/{cycle['id']}").get_data(as_text=True)
    for url in (
        f"/cycles/{cycle['id']}/roster.pdf",
        f"/cycles/{cycle['id']}/roster.pdf?privacy=1",
        f"/cycles/{cycle['id']}/report.pdf",
    ):
        assert f'href="{url}"' in page
        assert logged_in.get(url).mimetype == "application/pdf"
