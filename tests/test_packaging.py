"""The real package and the offline kit, end to end: build, install with no network, upgrade, smoke-test.

Marked ``slow`` (about a minute and a half: wheels are built and installed in fresh virtual
environments); ``pytest -m "not slow"`` skips them. They need pip to reach the configured
package index once (the kit's downloads); the installs themselves use ``--no-index``.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from group_ipt import __version__
from group_ipt.base.settings import REPO_DIR

pytestmark = pytest.mark.slow

PREVIOUS_RELEASE = "8650e11"  # group-ipt 0.1.0, the last version before the package carried its data
KIT = REPO_DIR / "packaging" / "offline-kit"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def run(cmd, *, env=None, cwd=None, check=True, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if check and done.returncode:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def offline() -> list[str]:
    """A prefix that runs a command with no network at all, where this machine allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        names = [
            r[0]
            for r in conn.execute("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")
        ]
        return {n: conn.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kit") / "group-ipt-kit"
    run([sys.executable, KIT, out, "--system", "linux", "--python", PYTHON])
    return out


@pytest.fixture(scope="module")
def previous_wheel(tmp_path_factory) -> Path:
    """Build the previous release's wheel from git (no checkout of it needed)."""
    tmp = tmp_path_factory.mktemp("previous")
    raw = subprocess.run(
        ["git", "-C", str(REPO_DIR), "archive", "--format=tar", PREVIOUS_RELEASE], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(tmp / "src", filter="data")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", tmp / "src", "--wheel-dir", tmp / "wheel"])
    (wheel,) = (tmp / "wheel").glob("group_ipt-*.whl")
    return wheel


def test_kit_has_every_file_and_wheels_for_both_systems_when_asked(kit):
    for name in (
        "install.sh",
        "install.ps1",
        "install.bat",
        "README.txt",
        "README-fr.txt",
        "README-sw.txt",
        "SHA256SUMS.txt",
    ):
        assert (kit / name).is_file(), name
    wheels = {p.name for p in (kit / "wheels").glob("*.whl")}
    assert f"group_ipt-{__version__}-py3-none-any.whl" in wheels
    assert any(n.startswith("pyyaml-") and "manylinux" in n for n in wheels)
    assert f"group-ipt {__version__}" in (kit / "README.txt").read_text(encoding="utf-8")
    assert (kit / "README.txt").read_bytes().count(b"\r\n") > 10  # Notepad on old Windows


def test_install_with_no_network_then_upgrade_from_previous_release_keeps_everything(kit, previous_wheel, tmp_path):
    home, data, target = tmp_path / "home", tmp_path / "data", tmp_path / "app"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GROUP_IPT_DATA": str(data), "LANG": "C.UTF-8"}
    venv_bin = target / "venv" / "bin"

    # The previous release, installed from its wheel (dependencies from the kit), makes a programme's data.
    run([sys.executable, "-m", "venv", target / "venv"])
    run(
        [
            venv_bin / "python",
            "-m",
            "pip",
            "--isolated",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            kit / "wheels",
            previous_wheel,
        ]
    )
    assert "0.1.0" in run([venv_bin / "group-ipt", "--version"], env=env).stdout
    # 0.1.0's wheel lacked forms/ and translations/ (the bug this release fixes): it ran with
    # both folders named in config.toml, here those of its own source.
    src = previous_wheel.parent.parent / "src"
    data.mkdir()
    (data / "config.toml").write_text(
        f'FORMS_DIR = "{src / "forms"}"\nTRANSLATIONS_DIR = "{src / "translations"}"\n', encoding="utf-8"
    )
    run([venv_bin / "group-ipt", "demo"], env=env, cwd=tmp_path)
    before = counts(data / "group-ipt.db")
    assert before["participants"] > 10 and before["attendance"] > 10
    (data / "config.toml").unlink()

    # The new kit's installer, with no network: backup first, migrate, say what changed.
    done = run([*offline(), "sh", kit / "install.sh", target], env=env, cwd=tmp_path)
    out = done.stdout
    assert "Updating group-ipt 0.1.0" in out
    assert f"Upgraded the data in {data} from group-ipt before 0.2.0 to {__version__}" in out
    assert "database change 0014 device_versions" in out
    assert f"What is new in {__version__}" in out
    backups = list((data / "backups").glob("before-upgrade-*.db"))
    assert len(backups) == 1 and counts(backups[0]) == before  # the backup is the data as it was
    after = counts(data / "group-ipt.db")
    for table, n in before.items():  # nothing lost (settings gains the version row)
        assert after[table] >= n, table
        if table not in ("settings", "schema_migrations"):
            assert after[table] == n, table
    assert f"version {__version__}" in run([venv_bin / "group-ipt", "--version"], env=env).stdout
    assert (home / ".local" / "share" / "applications" / "group-ipt.desktop").is_file()
    desktop = (home / ".local" / "share" / "applications" / "group-ipt.desktop").read_text(encoding="utf-8")
    assert f'Exec="{venv_bin / "group-ipt"}" serve --open' in desktop

    # The upgraded data serves: the demo coordinator logs in and sees the programme, in Swahili too.
    check = run([venv_bin / "python", "-c", _SERVE_CHECK], env=env, cwd=tmp_path)
    assert "ok" in check.stdout, check.stdout + check.stderr
    # Running the installer again changes nothing.
    again = run([*offline(), "sh", kit / "install.sh", target], env=env, cwd=tmp_path)
    assert "already at group-ipt" in again.stdout
    assert len(list((data / "backups").glob("before-upgrade-*.db"))) == 1

    # The installed package passes the smoke test from a folder outside the checkout.
    smoke = run([venv_bin / "python", REPO_DIR / "packaging" / "smoke_test.py"], env=env, cwd=tmp_path)
    assert "smoke test passed" in smoke.stdout


_SERVE_CHECK = """
import re
from group_ipt.web.app import create_app
app = create_app()
c = app.test_client()
page = c.get("/login").get_data(as_text=True)
token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
r = c.post("/login", data={"username": "coord", "password": "demo-pass", "csrf_token": token})
assert r.status_code == 302, r.status_code
home = c.get("/").get_data(as_text=True)
assert "Kampala" in home or "KMP" in home, home[:500]
print("ok")
"""
