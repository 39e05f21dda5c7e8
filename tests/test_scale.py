"""group-ipt demo --scale N: a large generated programme obeys the schema and the app serves it."""

from __future__ import annotations

from datetime import date

import pytest

from group_ipt import clock
from group_ipt import scale as scalemod
from group_ipt.demo import DEMO_PASSWORD
from group_ipt.participants import code_is_valid

from .conftest import login


@pytest.fixture
def generated(app, db):
    summary = scalemod.generate(db, app, 300, today=clock.today())
    return summary


def test_generated_rows_follow_the_schema_and_the_app_rules(generated, app, db):
    assert generated.created["participants"] == 300
    assert db.execute("select count(*) from participants where code like 'S0%'").fetchone()[0] == 300
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db.execute("pragma foreign_key_check").fetchall() == []
    counts = {t: db.execute(f"select count(*) from {t}").fetchone()[0]
              for t in ("cycles", "sessions", "members", "attendance", "symptom_checks", "screenings")}
    assert 15 <= counts["cycles"] <= 30 and counts["attendance"] > 10 * counts["cycles"]
    assert counts["screenings"] > 300 and counts["symptom_checks"] > 0
    codes = [r[0] for r in db.execute("select code from participants where code like 'S0%'")]
    assert all(code_is_valid(c) for c in codes)
    # Occasions and statuses are those the app writes.
    occasions = {r[0] for r in db.execute("select distinct occasion from screenings")}
    assert occasions <= {"screening", "baseline", "mid", "end"} and "baseline" in occasions
    assert {r[0] for r in db.execute("select distinct status from participants")} <= {
        "eligible", "not_eligible", "enrolled", "completed", "dropped_out", "registered"}
    # Every generated record is in the sync log, as if made before sync was set up.
    for table in ("participants", "attendance", "screenings"):
        n = db.execute(f"select count(*) from {table}").fetchone()[0]
        logged = db.execute("select count(*) from sync_rows where table_name = ?", (table,)).fetchone()[0]
        assert logged == n, table
    # A participant is in at most one active cycle; held sessions carry a version.
    assert db.execute("select count(*) from sessions where status = 'held' and version = 0").fetchone()[0] == 0
    with pytest.raises(ValueError):
        scalemod.generate(db, app, 10, today=date.today())  # a second programme in the same database


def test_main_pages_answer_on_a_generated_programme(generated, app, db):
    client = app.test_client()
    assert login(client, "fac-s001-1", DEMO_PASSWORD).status_code == 302
    member = db.execute(
        "select m.participant_id, m.cycle_id from members m join cycle_facilitators f on f.cycle_id = m.cycle_id"
        " join users u on u.id = f.user_id where u.username = 'fac-s001-1' limit 1").fetchone()
    assert member, "the facilitator leads at least one cycle"
    session = db.execute("select id from sessions where cycle_id = ? order by number limit 1",
                         (member[1],)).fetchone()
    for path in ("/", "/sessions/today", f"/participants/{member[0]}", f"/cycles/{member[1]}",
                 f"/sessions/{session[0]}", "/participants/?q=S001", "/cycles/"):
        response = client.get(path, follow_redirects=True)  # /sessions/today redirects
        assert response.status_code == 200, path
    coord = app.test_client()
    assert login(coord, "scale-coord", DEMO_PASSWORD).status_code == 302
    for path in ("/", "/reports/", "/cycles/"):
        assert coord.get(path).status_code == 200, path
