"""Versions: an older group-ipt refuses a newer database, upgrade backs up and migrates, the centre knows versions."""

from __future__ import annotations

import sqlite3
import urllib.request

import pytest

from group_ipt import __version__
from group_ipt.base.settings import ConfigError
from group_ipt.cli import initialise
from group_ipt.store import db as dbmod
from group_ipt.store import upgrade
from group_ipt.store.schema import all_migrations, current_version, migrate
from group_ipt.sync import client, devices
from group_ipt.web.app import create_app

from .conftest import login
from .syncing import AppTransport, add_device, make_central, new_laptop

LAST = all_migrations()[-1].version
BEFORE_LAST = all_migrations()[-2].version


def test_version_numbers_compare_as_numbers():
    assert upgrade.is_older("0.9.1", "0.10.0")
    assert not upgrade.is_older("0.10.0", "0.9.1")
    assert upgrade.is_older(None, "0.2.0")  # a database from before versions were recorded
    assert not upgrade.is_older("0.2.0", "0.2.0")


def test_a_fresh_database_records_this_version(tmp_path):
    db = initialise(tmp_path / "data")
    assert upgrade.recorded_version(db) == __version__
    db.close()


@pytest.mark.parametrize("newer", ["schema", "version"])
def test_an_older_version_refuses_a_newer_database_and_changes_nothing(tmp_path, runner, newer):
    data = runner.data_dir
    db = initialise(data)
    if newer == "schema":
        db.execute(
            "insert into schema_migrations (version, name, applied_at) values (?, 'from_the_future', 'x')", (LAST + 1,)
        )
        db.conn.commit()
    else:
        upgrade.record_version(db, "99.0.0")
    db.close()
    before = (data / "group-ipt.db").read_bytes()

    with pytest.raises(ConfigError, match=f"this is group-ipt {__version__}.*nothing was changed"):
        create_app({"DATA_DIR": str(data), "TESTING": True})
    result = runner.invoke(["users", "list"])
    assert result.exit_code == 1
    assert "last used by" in result.output and "Traceback" not in result.output
    for command in (["migrate"], ["upgrade"], ["serve", "--dev", "--port", "0"]):
        refused = runner.invoke(command)
        assert refused.exit_code == 1 and "last used by" in refused.output, (command, refused.output)
    conn = sqlite3.connect(data / "group-ipt.db")
    conn.execute("pragma wal_checkpoint(truncate)")
    conn.close()
    assert (data / "group-ipt.db").read_bytes() == before


def test_upgrade_backs_up_first_migrates_and_says_what_changed(runner):
    data = runner.data_dir
    data.mkdir(parents=True)
    db = dbmod.connect(data / "group-ipt.db")
    migrate(db, upto=BEFORE_LAST)  # as the previous release left it: no version recorded
    db.execute(
        "insert into sites (id, code, name, default_language, created_at, updated_at)"
        " values ('s1', 'OLD', 'Old site', 'en', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00')"
    )
    db.conn.commit()
    db.close()

    result = runner.invoke(["upgrade"])
    assert result.exit_code == 0, result.output
    assert f"from group-ipt before 0.2.0 to {__version__}" in result.output
    assert f"database change {LAST:04d} {all_migrations()[-1].name}" in result.output
    assert f"What is new in {__version__}:" in result.output
    (backup,) = (data / "backups").glob("before-upgrade-old-to-*.db")
    copy = dbmod.connect(backup)
    assert current_version(copy) == BEFORE_LAST and copy["sites"].get("s1")["code"] == "OLD"
    copy.close()
    db = dbmod.connect(data / "group-ipt.db")
    assert current_version(db) == LAST and upgrade.recorded_version(db) == __version__
    assert db["sites"].get("s1")["code"] == "OLD"
    db.close()

    again = runner.invoke(["upgrade"])
    assert again.exit_code == 0 and "already at group-ipt" in again.output
    assert len(list((data / "backups").glob("before-upgrade-*.db"))) == 1


def test_upgrade_without_a_database_says_so(runner):
    result = runner.invoke(["upgrade"])
    assert result.exit_code == 0 and "nothing to upgrade" in result.output


def test_changes_between_lists_only_the_newer_releases(monkeypatch):
    monkeypatch.setattr(upgrade, "CHANGES", [("0.2.0", ["a"]), ("0.3.0", ["b"]), ("0.4.0", ["c"])])
    assert upgrade.changes_between("0.2.0", "0.3.0") == [("0.3.0", ["b"])]
    assert [v for v, _ in upgrade.changes_between(None, "0.4.0")] == ["0.2.0", "0.3.0", "0.4.0"]


# ---- the centre knows which version each laptop runs ------------------------------------------


def _hello(centre, token, version=None):
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers[devices.VERSION_HEADER] = version
    return centre.test_client().get("/api/v1/sync/hello", headers=headers)


def test_sync_calls_record_the_laptops_version_and_the_devices_page_shows_old_ones(tmp_path):
    centre = make_central(tmp_path / "central")
    _old_dev, old_token = add_device(centre, "kmp-old")
    _new_dev, new_token = add_device(centre, "kmp-new")
    _silent, _ = add_device(centre, "msk-silent", "MSK")
    assert _hello(centre, old_token, "0.1.9").status_code == 200
    assert _hello(centre, new_token, __version__).status_code == 200
    bad = _hello(centre, new_token, "<script>")
    assert bad.status_code == 400 and "version number" in bad.get_json()["error"]

    db = dbmod.connect(centre.config["DATABASE"])
    by_name = {d["name"]: d for d in devices.list_devices(db)}
    assert by_name["kmp-old"]["app_version"] == "0.1.9" and by_name["kmp-new"]["app_version"] == __version__
    assert {d["name"] for d in devices.behind(db, __version__)} == {"kmp-old", "msk-silent"}
    audit = db.execute("select after_json from audit_log where action = 'version'").fetchall()
    assert len(audit) == 2  # a change of version is in the audit trail; the rejected one is not
    db.close()

    web = centre.test_client()
    login(web, "coord")
    page = web.get("/sync/").get_data(as_text=True)
    assert 'id="old-versions"' in page and "2 laptop(s) run an older version than" in page
    assert "0.1.9 · old version" in page and "unknown (before 0.2.0)" in page


def test_sync_status_on_the_centre_lists_laptops_behind(tmp_path):
    from click.testing import CliRunner

    from group_ipt.cli import cli

    centre = make_central(tmp_path / "central")
    _dev, token = add_device(centre, "kmp-old")
    _hello(centre, token, "0.1.9")
    result = CliRunner().invoke(cli, ["--data-dir", centre.config["DATA_DIR"], "sync", "status"])
    assert result.exit_code == 0, result.output
    assert f"this version:      group-ipt {__version__}" in result.output
    assert "laptops behind:    1 not on group-ipt" in result.output
    assert "kmp-old" in result.output and "0.1.9" in result.output


def test_a_laptops_push_and_usb_file_carry_its_version(tmp_path, monkeypatch):
    centre = make_central(tmp_path / "central")
    _dev, token = add_device(centre, "kmp-laptop")
    laptop = new_laptop(tmp_path / "laptop")
    client.setup(laptop, "http://centre", token, AppTransport(centre, token))

    sent = []

    class Answer:
        headers = {}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b'{"batch_no": 1}'

    def fake_urlopen(request, timeout):
        sent.append(dict(request.header_items()))
        return Answer()

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    client.HttpTransport("http://centre", token).push(b"{}")
    assert sent[0][devices.VERSION_HEADER.capitalize()] == __version__

    from group_ipt.sync import files, server

    export = tmp_path / "lap.gipt"
    client.export_file(laptop, export)
    cdb = dbmod.connect(centre.config["DATABASE"])
    key = devices.list_devices(cdb)[0]["public_key"]  # signed with the laptop's own key (issue 17)
    body = files.verify(files.read_header(export), public_key=key)
    assert body.meta["app_version"] == __version__
    cdb.execute("update sync_devices set app_version = null")
    cdb.conn.commit()
    server.import_file(cdb, export, tmp_path / "reply.gipt", server.CentralConfig.from_app_config(centre.config))
    assert devices.list_devices(cdb)[0]["app_version"] == __version__
    cdb.close()
    laptop.close()
