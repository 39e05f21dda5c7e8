"""iCalendar export of a cycle: RFC 5545 escaping and folding, floating local times, page and CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from group_ipt.cli import initialise
from group_ipt.core import calendar_ics, cycles, users
from group_ipt.store import db as dbmod

from .conftest import FAST_HASH, PASSWORD, login
from .test_cycles import make_cycle, session_no


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("Church hall", "Church hall"),
        ("Hall; room 2, back", "Hall\\; room 2\\, back"),
        ("C:\\path", "C:\\\\path"),
        ("line one\nline two\r\nthree", "line one\\nline two\\nthree"),
    ],
)
def test_escape(text, escaped):
    assert calendar_ics.escape(text) == escaped


@pytest.mark.parametrize("line", ["A" * 200, "DESCRIPTION:" + "é" * 100, "SUMMARY:" + "日本語" * 40, "X" * 75])
def test_fold_keeps_lines_within_75_octets_and_unfolds_back(line):
    folded = calendar_ics.fold(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert folded.replace("\r\n ", "") == line


def test_render_uses_floating_local_times_and_crlf():
    event = calendar_ics.Event(
        uid="abc@group-ipt",
        start=datetime(2026, 3, 29, 14, 0),
        end=datetime(2026, 3, 29, 15, 30),
        summary="KMP-C001: session 1",
        location="Hall, 2",
    )
    text = calendar_ics.render([event], name="KMP-C001", now=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    lines = text.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    # 29 March 2026 is a clock-change day in Europe: a floating time stays 14:00.
    assert "DTSTART:20260329T140000" in lines and "DTEND:20260329T153000" in lines
    assert "DTSTAMP:20260301T120000Z" in lines
    assert "LOCATION:Hall\\, 2" in lines
    assert "TZID" not in text


def test_cycle_calendar_has_every_session_and_marks_moves_and_cancellations(db, protocols):
    cycle = make_cycle(db, protocols, venue="St. Jude's hall; Kawempe")
    cycles.cancel_session(db, session_no(db, cycle["id"], 2)["id"], reason="rain", actor=None)
    cycles.reschedule_session(db, session_no(db, cycle["id"], 3)["id"], date(2026, 3, 24), "only", actor=None)
    text = cycles.calendar(db, cycles.get_cycle(db, cycle["id"]), protocols["who-8"])
    unfolded = text.replace("\r\n ", "")
    assert unfolded.count("BEGIN:VEVENT") == 9
    assert unfolded.count("STATUS:CANCELLED") == 1
    assert "SUMMARY:KMP-C001: pre-group meetings" in unfolded
    assert "SUMMARY:KMP-C001: session 8 (termination phase)" in unfolded
    assert "DTSTART:20260324T140000\r\nDTEND:20260324T153000\r\nSEQUENCE:1" in unfolded
    assert "LOCATION:St. Jude's hall\\; Kawempe" in unfolded
    assert "DTSTART:20260302T140000\r\nDTEND:20260302T150000" in unfolded  # pre-group: 60 minutes


def test_calendar_of_a_cycle_with_no_sessions_left_is_an_error(db, protocols):
    cycle = make_cycle(db, protocols)
    cycles.close_cycle(
        db, cycle["id"], protocols["who-8"], early=True, reason="stopped", actor=None, today=date(2026, 2, 21)
    )
    with pytest.raises(cycles.CycleError, match="no sessions"):
        cycles.calendar(db, cycles.get_cycle(db, cycle["id"]), protocols["who-8"])


def test_calendar_download(client, db, protocols):
    cycle = make_cycle(db, protocols)
    login(client, "amina")
    r = client.get(f"/cycles/{cycle['id']}/calendar.ics")
    assert r.status_code == 200
    assert r.mimetype == "text/calendar"
    assert 'filename="KMP-C001.ics"' in r.headers["Content-Disposition"]
    assert r.get_data(as_text=True).count("BEGIN:VEVENT") == 9


def test_calendar_download_other_site_is_404(client, db, protocols):
    cycle = make_cycle(db, protocols)
    login(client, "grace")
    assert client.get(f"/cycles/{cycle['id']}/calendar.ics").status_code == 404


def test_cli_cycles_list_and_calendar(runner, tmp_path):
    from group_ipt.web.app import create_app

    db = initialise(runner.data_dir)
    site = users.create_site(db, "KMP", "Kampala North")
    amina = users.create_user(db, "amina", PASSWORD, "facilitator", site_ids=[site["id"]], hash_method=FAST_HASH)
    app = create_app({"DATA_DIR": str(runner.data_dir), "TESTING": True})
    cycles.create_cycle(
        db,
        site_id=site["id"],
        protocol=app.extensions["group_ipt_forms"].protocols["who-8"],
        facilitator_ids=[amina["id"]],
        group_type="mixed",
        venue="School",
        first_date=date(2030, 1, 7),
        weekday=0,
        start_time="09:30",
        actor=None,
        now=datetime(2029, 12, 1, 8),
    )
    db.close()
    listed = runner.invoke(["cycles", "list"])
    assert listed.exit_code == 0, listed.output
    assert "KMP-C001" in listed.output and "planned" in listed.output and "amina" in listed.output
    out = tmp_path / "c.ics"
    result = runner.invoke(["cycles", "calendar", "kmp-c001", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "9 sessions" in result.output
    assert "DTSTART:20300107T093000" in out.read_text(encoding="utf-8")
    assert b"\r\n" in out.read_bytes()
    missing = runner.invoke(["cycles", "calendar", "KMP-C999", "-o", "-"])
    assert missing.exit_code != 0 and "No cycle 'KMP-C999'" in missing.output
    assert dbmod.database_path(runner.data_dir).exists()
