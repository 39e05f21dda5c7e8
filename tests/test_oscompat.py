"""Windows and Linux differences (group_ipt/base/oscompat.py); the Windows branches run here with is_windows() faked."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from group_ipt.base import oscompat
from group_ipt.cli import initialise
from group_ipt.store import backup as backupmod
from group_ipt.sync import files


@pytest.fixture
def windows(monkeypatch):
    monkeypatch.setattr(oscompat, "is_windows", lambda: True)
    monkeypatch.setattr(oscompat, "REPLACE_DELAY", 0)


def _flaky_replace(monkeypatch, failures: int) -> list:
    calls = []
    real = os.replace

    def replace(src, dst):
        calls.append(dst)
        if len(calls) <= failures:
            raise PermissionError(13, "The process cannot access the file because it is being used")
        real(src, dst)

    monkeypatch.setattr(oscompat.os, "replace", replace)
    return calls


def test_replace_waits_out_a_short_windows_lock(tmp_path, monkeypatch, windows):
    (tmp_path / "new").write_text("new")
    (tmp_path / "old").write_text("old")
    calls = _flaky_replace(monkeypatch, failures=3)
    oscompat.replace(tmp_path / "new", tmp_path / "old")
    assert len(calls) == 4 and (tmp_path / "old").read_text() == "new"


def test_replace_gives_up_on_a_lasting_windows_lock(tmp_path, monkeypatch, windows):
    (tmp_path / "new").write_text("new")
    calls = _flaky_replace(monkeypatch, failures=1000)
    with pytest.raises(PermissionError):
        oscompat.replace(tmp_path / "new", tmp_path / "old")
    assert len(calls) == oscompat.REPLACE_ATTEMPTS


def test_replace_on_linux_raises_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(oscompat, "is_windows", lambda: False)
    (tmp_path / "new").write_text("new")
    calls = _flaky_replace(monkeypatch, failures=1)
    with pytest.raises(PermissionError):
        oscompat.replace(tmp_path / "new", tmp_path / "old")
    assert len(calls) == 1


def test_sqlite_uri_of_a_windows_path(windows):
    uri = oscompat.sqlite_uri(r"C:\Users\Amina Nakato\AppData\Local\group-ipt\group-ipt.db", mode="ro")
    assert uri == "file:///C:/Users/Amina%20Nakato/AppData/Local/group-ipt/group-ipt.db?mode=ro"


def test_a_database_in_a_folder_named_with_hash_and_percent_opens_read_only(tmp_path):
    """'file:{path}?mode=ro' cut the path at '#' (a URI fragment) and decoded '%20': the check failed."""
    folder = tmp_path / "Site #1 100%20 done"
    folder.mkdir()
    initialise(folder).close()
    assert backupmod.integrity_problems(folder / "group-ipt.db") == []
    with pytest.raises(sqlite3.OperationalError):  # read-only really
        conn = sqlite3.connect(oscompat.sqlite_uri(folder / "group-ipt.db", mode="ro"), uri=True)
        conn.execute("create table x (y)")


@pytest.mark.parametrize(
    "name, ok",
    [
        ("instruments/phq9.yaml", True),
        ("fr/LC_MESSAGES/messages.po", True),
        ("C:evil.yaml", False),  # drive-relative on Windows
        ("C:/Windows/evil.yaml", False),
        ("..\\..\\evil.yaml", False),  # backslash is a separator on Windows
        ("scripts\\who-8.yaml", False),
        ("/etc/evil.yaml", False),
        ("a/../../evil.yaml", False),
        ("CON.yaml", False),  # reserved device names
        ("instruments/nul.yaml", False),
        ("instruments/phq9.yaml.", False),  # Windows drops trailing dots: would land on another file
        ("instruments/phq9.yaml ", False),
        ("", False),
    ],
)
def test_safe_relative_names_stay_inside_on_windows_and_linux(name, ok):
    assert (oscompat.safe_relative(name) is not None) is ok


def test_install_files_refuses_a_windows_drive_relative_name(tmp_path):
    import base64

    folders = {"forms": tmp_path / "forms"}
    folders["forms"].mkdir()
    written, problems = files.install_files(
        folders, {"forms/C:evil.yaml": base64.b64encode(b"x: 1").decode()}, tmp_path / "keep"
    )
    assert written == [] and "refused file 'forms/C:evil.yaml'" in problems[0]
    assert list((tmp_path / "forms").iterdir()) == []


def test_write_private_makes_an_owner_only_file_and_refuses_an_existing_one(tmp_path):
    path = tmp_path / "secret_key"
    oscompat.write_private(path, "s3cret")
    assert path.read_text(encoding="utf-8") == "s3cret"
    if os.name != "nt":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        oscompat.write_private(path, "other")


def test_atomic_file_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), oscompat.atomic_file(target) as f:
        f.write(b"half")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temporary file left
    with oscompat.atomic_file(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"
    if not oscompat.is_windows():
        assert target.stat().st_mode & 0o777 == 0o600  # private unless asked otherwise
        with oscompat.atomic_file(target, mode=0o644) as f:
            f.write(b"shared")
        assert target.stat().st_mode & 0o777 == 0o644
