"""Sync core: triggers, batches, conflicts, privacy, quarantine, files."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from group_ipt.base import inflate
from group_ipt.store import db as dbmod
from group_ipt.store import tracking
from group_ipt.store.db import new_id, row, utcnow, write
from group_ipt.sync import client, engine, files, review
from group_ipt.sync.engine import SyncRejected

from .syncing import AppTransport, add_device, make_central, new_laptop
from .syncing import sync_laptop as laptop


def export_body(db, path) -> tuple[dict, dict]:
    """Export a laptop's waiting changes to ``path``; return the signed document and its decoded body
    (the summary line with the batches of the other lines as ``batches``)."""
    client.export_file(db, path)
    doc = json.loads(path.read_text())
    meta, *parts = [json.loads(line) for line in gzip.decompress(base64.b64decode(doc["payload"])).splitlines()]
    return doc, {**meta, "batches": [p["batch"] for p in parts]}


def encode_body(body: dict) -> str:
    """The payload of a version 2 file holding ``body`` (as export_body returns it)."""
    meta = {k: v for k, v in body.items() if k != "batches"}
    return base64.b64encode(inflate.deflate_lines([meta, *({"batch": b} for b in body["batches"])])).decode()


def add_participant(db, code: str, *, gate: bool = True, **fields) -> str:
    """A participant written on a laptop; ``gate=False``: by older software, without today's commit checks."""
    site_id = row(db, "select id from sites where code = ?", (code.split("-")[0],))["id"]
    pid, now = new_id(), utcnow()
    with write(db, checks=gate):
        db["participants"].insert(
            {
                "id": pid,
                "site_id": site_id,
                "code": code,
                "name": f"Name {code}",
                "sex": "female",
                "phone": "0700000000",
                "created_at": now,
                "updated_at": now,
                **fields,
            }
        )
    return pid


def village(db, pid):
    found = row(db, "select village from participants where id = ?", (pid,))
    return found and found["village"]


def test_ensure_triggers_covers_a_table_added_later(tmp_path):
    db = new_laptop(tmp_path / "l")
    db.execute(
        "create table home_visits (id text primary key, site_id text, note text, created_at text, updated_at text)"
    )
    db.execute("create table scratch (id text primary key, note text)")  # no site_id: never syncs
    assert tracking.ensure_triggers(db) == ["home_visits"]
    assert tracking.ensure_triggers(db) == []
    with write(db):
        db.execute("insert into home_visits values ('h1', 's', 'x', 'now', 'now')")
        db.execute("insert into scratch values ('x1', 'y')")
    logged = [(r["table_name"], r["record_id"]) for r in db.query("select * from sync_log")]
    assert logged == [("home_visits", "h1")]


def test_rows_made_before_sync_are_sent_too(tmp_path):
    db = new_laptop(tmp_path / "l")
    for name in [r["name"] for r in db.query("select name from sqlite_master where type = 'trigger'")]:
        db.execute(f'drop trigger "{name}"')
    db.execute("insert into sites values ('s', 'KMP', 'K', 'en', 'now', 'now')")
    db.execute(
        "insert into participants (id, site_id, code, name, sex, created_at, updated_at)"
        " values ('p-old', 's', 'KMP-1', 'N', 'female', 'now', 'now')"
    )
    db.conn.commit()
    tracking.ensure_triggers(db)
    assert row(db, "select record_id from sync_log where table_name = 'participants'")["record_id"] == "p-old"


def test_push_and_pull_between_two_laptops(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = add_participant(a, "KMP-0001-A", village="Kisenyi")
    assert client.status(a)["pending_records"] == 1
    assert client.push(a, ta)["records"] == 1
    assert client.status(a)["pending_records"] == 0
    assert client.pull(b, tb)["applied"] == 1
    assert village(b, pid) == "Kisenyi" and village(cdb, pid) == "Kisenyi"
    # Nothing comes back to the laptop that made it, and nothing is sent twice.
    assert client.sync(a, ta) == {
        "push": {"records": 0, "batches": 0, "quarantined": 0, "conflicts": 0},
        "pull": {"applied": 0, "skipped": 0, "quarantined": 0, "files": [], "problems": []},
    }


def test_privacy_names_stay_on_the_laptop(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = add_participant(a, "KMP-0002-B")
    client.push(a, ta)
    at_centre = row(cdb, "select name, name_key, phone, code from participants where id = ?", (pid,))
    assert at_centre == {"name": "", "name_key": "", "phone": None, "code": "KMP-0002-B"}
    sent = engine.read_changes(a, [("participants", pid)], send_names=False)
    assert sent[0]["data"]["name"] == "" and sent[0]["data"]["phone"] is None
    # The centre changes the village; the laptop keeps its own name and phone.
    with write(cdb):
        cdb.execute("update participants set village = 'Centre' where id = ?", (pid,))
    client.pull(a, ta)
    assert row(a, "select name, phone, village from participants where id = ?", (pid,)) == {
        "name": "Name KMP-0002-B",
        "phone": "0700000000",
        "village": "Centre",
    }
    client.pull(b, tb)
    assert row(b, "select name, village from participants where id = ?", (pid,)) == {"name": "", "village": "Centre"}


def test_names_travel_when_the_programme_allows(tmp_path):
    centre = make_central(tmp_path / "central", SYNC_SEND_NAMES=True)
    a, ta = laptop(tmp_path, centre, "lap-a")
    pid = add_participant(a, "KMP-0003-C")
    client.push(a, ta)
    cdb = dbmod.connect(centre.config["DATABASE"])
    assert row(cdb, "select name from participants where id = ?", (pid,))["name"] == "Name KMP-0003-C"
    cdb.close()


def test_concurrent_edits_keep_the_loser_as_a_conflict_and_resolve(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = add_participant(a, "KMP-0004-D")
    client.sync(a, ta)
    client.sync(b, tb)
    with write(a):
        a.execute("update participants set village = 'from-a' where id = ?", (pid,))
    with write(b):  # b's clock is 20 hours ahead: its edit wins, whatever the real order
        b.execute("update sync_clock set wall = wall + 20 * 3600000")
        b.execute("update participants set village = 'from-b' where id = ?", (pid,))
    client.sync(b, tb)
    assert client.sync(a, ta)["push"]["conflicts"] == 1
    client.sync(b, tb)
    assert village(a, pid) == village(b, pid) == village(cdb, pid) == "from-b"
    [conflict] = review.list_conflicts(cdb, None)
    assert (conflict["winner"]["village"], conflict["loser"]["village"]) == ("from-b", "from-a")
    review.resolve_conflict(cdb, conflict["id"], "use_other", user={"id": None, "username": "coord"}, site_ids=None)
    assert village(cdb, pid) == "from-a"
    client.sync(a, ta)
    client.sync(b, tb)
    assert village(a, pid) == village(b, pid) == "from-a"
    assert review.list_conflicts(cdb, None) == []


def test_a_local_change_waiting_is_not_overwritten_by_a_pull(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = add_participant(a, "KMP-0005-E")
    client.sync(a, ta)
    client.sync(b, tb)
    with write(b):
        b.execute("update sync_clock set wall = wall + 22 * 3600000")
        b.execute("update participants set village = 'later' where id = ?", (pid,))
    client.push(b, tb)
    with write(a):
        a.execute("update participants set village = 'waiting' where id = ?", (pid,))
    assert client.pull(a, ta)["skipped"] == 1
    assert village(a, pid) == "waiting"
    client.sync(a, ta)
    assert village(a, pid) == "later"
    kept = [c["loser"]["village"] for c in review.list_conflicts(cdb, None)]
    assert kept == ["waiting"]


def test_deletion_travels_as_a_tombstone_and_a_concurrent_edit_is_kept(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    pid = add_participant(a, "KMP-0006-F")
    client.sync(a, ta)
    client.sync(b, tb)
    with write(b):
        b.execute("update participants set village = 'edited' where id = ?", (pid,))
    with write(a):
        a.execute("update sync_clock set wall = wall + 86400000")
        a.execute("delete from participants where id = ?", (pid,))
    client.sync(a, ta)
    client.sync(b, tb)
    client.sync(a, ta)
    assert village(a, pid) is None and village(b, pid) is None and village(cdb, pid) is None
    assert row(cdb, "select deleted from sync_rows where record_id = ?", (pid,))["deleted"] == 1
    [conflict] = review.list_conflicts(cdb, None)
    assert conflict["winner"] is None and conflict["loser"]["village"] == "edited"


def test_a_code_made_twice_offline_is_renamed_and_the_new_code_goes_back(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    first = add_participant(a, "KMP-0007-G")
    client.push(a, ta)
    dup = add_participant(b, "KMP-0007-G")  # the same code made on another laptop
    summary = client.push(b, tb)
    assert summary["quarantined"] == 0 and summary["records"] == 1
    code = row(cdb, "select code from participants where id = ?", (dup,))["code"]
    assert code != "KMP-0007-G" and code.startswith("KMP-")
    assert row(cdb, "select code from participants where id = ?", (first,))["code"] == "KMP-0007-G"
    audit = row(cdb, "select * from audit_log where action = 'rename_code'")
    assert audit["record_id"] == dup and "KMP-0007-G" in audit["before_json"] and code in audit["after_json"]
    client.sync(b, tb)  # the laptop that made it learns the new code
    assert row(b, "select code from participants where id = ?", (dup,))["code"] == code
    client.sync(a, ta)
    assert {r["code"] for r in a.query("select code from participants")} == {"KMP-0007-G", code}


def test_one_bad_record_is_quarantined_with_a_plain_reason_and_the_rest_go_through(tmp_path, centre, cdb):
    b, tb = laptop(tmp_path, centre, "lap-b")
    bad = add_participant(b, "KMP-0007-G", gate=False, village="x" * 10_000)  # the form allows 120 characters
    good = add_participant(b, "KMP-0008-H")
    summary = client.push(b, tb)
    assert summary["quarantined"] == 1 and summary["records"] == 2
    assert village(cdb, good) == "" and village(cdb, bad) is None
    [item] = review.list_quarantine(cdb, None)
    assert item["record_id"] == bad
    assert item["error"] == (
        "The village of this participant record is longer than 120 characters, more than "
        "the form allows. Shorten it on the laptop that made it and sync again."
    )
    # Fixed (here by hand in the kept record), the retry goes in.
    record = json.loads(item["record_json"])
    record["data"]["village"] = "Kisenyi"
    with write(cdb):
        cdb.execute("update sync_quarantine set record_json = ? where id = ?", (json.dumps(record), item["id"]))
    assert review.retry_quarantined(cdb, item["id"], user={"id": None, "username": "coord"}, site_ids=None)
    assert village(cdb, bad) == "Kisenyi"


def test_pull_brings_the_site_users_and_not_other_sites(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    m, tm = laptop(tmp_path, centre, "lap-m", site="MSK")
    add_participant(m, "MSK-0001-A")
    client.push(m, tm)
    client.pull(a, ta)
    assert {r["username"] for r in a.query("select username from users")} >= {"amina", "coord"}
    assert "grace" not in {r["username"] for r in a.query("select username from users")}
    assert row(a, "select count(*) as n from participants")["n"] == 0


def test_batch_replayed_changes_nothing(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    add_participant(a, "KMP-0010-K")
    body = engine.cut_batch(a, send_names=False)
    payload = engine.unacked_batches(a)[0]["payload"]
    first, second = ta.push(payload), ta.push(payload)
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert body["batch_no"] == second["batch_no"]
    assert row(cdb, "select count(*) as n from sync_log")["n"] == 1
    assert row(cdb, "select count(*) as n from sync_batches")["n"] == 1


def test_interrupted_push_resumes_with_the_same_batch(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    add_participant(a, "KMP-0011-L")
    calls = []

    def drop_after_push(stage):
        calls.append(stage)
        if stage == "push-after" and calls.count("push-after") == 1:
            raise client.SyncError("connection dropped")

    with pytest.raises(client.SyncError):
        client.push(a, AppTransport(centre, ta.token, drop_after_push))
    assert client.status(a)["unacked_batches"] == 1
    assert "connection dropped" in client.status(a)["last_error"]["message"]
    add_participant(a, "KMP-0012-M")
    summary = client.push(a, ta)
    assert summary == {"records": 2, "batches": 2, "quarantined": 0, "conflicts": 0}
    assert row(cdb, "select count(*) as n from participants")["n"] == 2


def test_file_export_import_and_reply(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    b, tb = laptop(tmp_path, centre, "lap-b")
    from_b = add_participant(b, "KMP-0013-N", village="from-b")
    client.push(b, tb)
    pid = add_participant(a, "KMP-0014-P", village="by-usb")
    export = tmp_path / "usb" / "lap-a.gipt"
    export.parent.mkdir()
    assert client.export_file(a, export)["records"] == 1
    from group_ipt.sync import server

    config = server.CentralConfig.from_app_config(centre.config)
    summary = server.import_file(cdb, export, tmp_path / "usb" / "reply.gipt", config)
    assert summary["applied"] == 1 and summary["changes_back"] == 1
    assert village(cdb, pid) == "by-usb"
    with pytest.raises(SyncRejected, match="already imported"):
        server.import_file(cdb, export, tmp_path / "usb" / "reply2.gipt", config)
    result = client.import_reply(a, tmp_path / "usb" / "reply.gipt")
    assert result["acknowledged"] == 1 and result["applied"] == 1
    assert village(a, from_b) == "from-b"
    assert client.status(a)["pending_records"] == 0
    with pytest.raises(SyncRejected, match="already imported"):
        client.import_reply(a, tmp_path / "usb" / "reply.gipt")


def test_tampered_or_foreign_file_is_refused_and_nothing_written(tmp_path, centre, cdb):
    a, ta = laptop(tmp_path, centre, "lap-a")
    add_participant(a, "KMP-0015-Q")
    doc, body = export_body(a, tmp_path / "lap-a.gipt")
    body["batches"][0]["records"][0]["data"]["village"] = "forged"
    doc["payload"] = encode_body(body)
    tampered = tmp_path / "tampered.gipt"
    tampered.write_text(json.dumps(doc))
    from group_ipt.sync import server

    config = server.CentralConfig.from_app_config(centre.config)
    with pytest.raises(SyncRejected, match="signature does not match"):
        server.import_file(cdb, tampered, tmp_path / "r.gipt", config)
    assert row(cdb, "select count(*) as n from participants")["n"] == 0  # refused before any batch is applied
    assert not (tmp_path / "r.gipt").exists()
    garbage = tmp_path / "garbage.gipt"
    garbage.write_text("not json")
    with pytest.raises(SyncRejected, match="not a group-ipt sync file"):
        server.import_file(cdb, garbage, tmp_path / "r.gipt", config)


def test_forms_and_translations_travel_to_laptops(tmp_path):
    import shutil

    from group_ipt.base.settings import REPO_DIR

    central_forms = tmp_path / "central-forms"
    shutil.copytree(REPO_DIR / "forms", central_forms)
    laptop_forms = tmp_path / "laptop-forms"
    shutil.copytree(REPO_DIR / "forms", laptop_forms)
    phq9 = central_forms / "instruments" / "phq9.yaml"
    phq9.write_text(phq9.read_text(encoding="utf-8") + "\n# reviewed wording, 2026\n", encoding="utf-8")
    centre = make_central(tmp_path / "central", FORMS_DIR=str(central_forms))
    _device, token = add_device(centre, "lap-a")
    db = new_laptop(tmp_path / "lap-a")
    transport = AppTransport(centre, token)
    client.setup(db, "http://centre", token, transport)
    folders = {"forms": laptop_forms, "translations": REPO_DIR / "translations"}
    summary = client.pull(db, transport, folders=folders, backup_dir=tmp_path / "backups")
    assert summary["files"] == ["forms/instruments/phq9.yaml"]
    assert (laptop_forms / "instruments" / "phq9.yaml").read_bytes() == phq9.read_bytes()
    assert list((tmp_path / "backups").rglob("phq9.yaml"))
    assert client.pull(db, transport, folders=folders, backup_dir=tmp_path / "backups")["files"] == []


def test_install_files_refuses_paths_outside_the_folders(tmp_path):
    written, problems = files.install_files(
        {"forms": tmp_path / "forms"}, {"forms/../evil.yaml": "eA==", "other/x.yaml": "eA=="}, tmp_path / "b"
    )
    assert written == [] and len(problems) == 2
    assert not (tmp_path / "evil.yaml").exists()


def test_hlc_observe_moves_the_clock_past_a_remote_value(tmp_path):
    db = new_laptop(tmp_path / "l")
    ahead = tracking.format_hlc(tracking.now_ms() + 10 * 86_400_000, 7, "remote")
    with write(db):
        tracking.observe(db, ahead)
        assert tracking.tick(db) > ahead


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("176722560000000.0000000000.laptop-1", True),
        ("١٧٦٧٢٢٥٦٠٠٠٠٠٠٠.0000000000.laptop-1", False),  # Arabic-Indic digits are not a clock
        ("176722560000000.0000000000.laptop-1\n", False),
        ("176722560000000.000000000.laptop-1", False),
    ],
)
def test_clock_values_are_ascii_digits_only(value, ok):
    assert tracking.valid_hlc(value) is ok


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("batch_no", 2**64, "'batch_no' must be at most 9223372036854775807"),
        ("cursor", 2**64, "'cursor' must be at most 9223372036854775807"),
        ("cursor", -1, "'cursor' must be a whole number of at least 0"),
    ],
)
def test_a_signed_file_with_a_number_sqlite_cannot_hold_is_refused(tmp_path, centre, cdb, field, value, message):
    from group_ipt.sync import client, server
    from group_ipt.sync.client import get_state

    a, _token = laptop(tmp_path, centre, "lap-a")
    add_participant(a, "KMP-0016-R")
    _doc, body = export_body(a, tmp_path / "lap-a.gipt")
    (body["batches"][0] if field == "batch_no" else body)[field] = value
    huge = tmp_path / "huge.gipt"  # correctly signed by the laptop's own key
    meta = {k: v for k, v in body.items() if k != "batches"}
    files.write_signed(
        huge,
        kind="push",
        device_id=get_state(a, "device_id"),
        file_id=new_id(),
        body=meta,
        private_key=client.device_key(a),
        parts=({"batch": b} for b in body["batches"]),
    )
    config = server.CentralConfig.from_app_config(centre.config)
    with pytest.raises(SyncRejected, match=message):
        server.import_file(cdb, huge, tmp_path / "r.gipt", config)
    assert row(cdb, "select count(*) as n from participants")["n"] == 0  # refused before any batch is applied


def test_applying_tunes_the_connection_for_a_batch_and_gives_back_its_checkpoints(tmp_path, cdb):
    """While a batch is applied, savepoint copies stay in memory and checkpoints come less often;
    afterwards the connection checkpoints as before (a web request on it is not affected)."""
    cdb.execute("pragma wal_autocheckpoint = 1000")
    with engine.applying(cdb):
        assert cdb.execute("pragma temp_store").fetchone()[0] == 2  # memory
        assert cdb.execute("pragma wal_autocheckpoint").fetchone()[0] == engine.INGEST_CHECKPOINT_PAGES
        assert cdb.execute("pragma foreign_keys").fetchone()[0] == 0
    assert cdb.execute("pragma wal_autocheckpoint").fetchone()[0] == 1000
    assert cdb.execute("pragma foreign_keys").fetchone()[0] == 1
    with pytest.raises(RuntimeError), engine.applying(cdb):
        raise RuntimeError("a batch that fails")
    assert cdb.execute("pragma wal_autocheckpoint").fetchone()[0] == 1000
    assert not cdb.conn.in_transaction


def test_the_collector_pause_nests_and_keeps_a_collector_turned_off():
    """Batches on several threads: the cyclic collector comes back on when the last ends, and
    only if it was on (an embedding program that turned it off keeps it off)."""
    import gc

    pause = engine._CollectorPause()
    assert gc.isenabled()
    with pause():
        assert not gc.isenabled()
        with pause():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(ValueError), pause():
        raise ValueError("a batch that fails")
    assert gc.isenabled()
    gc.disable()
    try:
        with pause():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
