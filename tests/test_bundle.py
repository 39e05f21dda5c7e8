"""Where forms and translations come from: the checkout, or an installed package copied into the data folder."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from group_ipt.base import bundle
from group_ipt.base.settings import REPO_DIR
from group_ipt.cli import cli, initialise
from group_ipt.web import i18n
from group_ipt.web.app import create_app

KIT = REPO_DIR / "packaging" / "kit"


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Pretend to be an installed package: group_ipt/bundled/ holds forms and compiled translations."""
    package_data = tmp_path / "site-packages" / "group_ipt" / "bundled"
    shutil.copytree(REPO_DIR / "forms", package_data / "forms")
    shutil.copytree(REPO_DIR / "translations", package_data / "translations")
    i18n.compile_catalogs(package_data / "translations", force=True)
    monkeypatch.setattr(bundle, "from_checkout", lambda: False)
    monkeypatch.setattr(bundle, "PACKAGE_DATA", package_data.resolve())
    return package_data


def _snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*") if p.is_file()}


def test_from_a_checkout_the_checkout_folders_are_used_and_nothing_is_copied(tmp_path):
    assert bundle.from_checkout()
    assert bundle.data_folder(tmp_path, "forms", "0.2.0") == REPO_DIR / "forms"
    assert not (tmp_path / "forms").exists()


def test_an_installed_copy_reads_and_writes_only_the_data_folder(installed, tmp_path):
    before = _snapshot(installed)
    data = tmp_path / "data"
    initialise(data).close()
    app = create_app({"DATA_DIR": str(data), "TESTING": True})
    assert app.config["FORMS_DIR"] == str(data / "forms")
    assert app.config["TRANSLATIONS_DIR"] == str(data / "translations")
    assert (data / "translations" / "sw" / "LC_MESSAGES" / "messages.mo").is_file()
    assert bundle.stamp_of(data / "forms") == bundle.stamp_of(data / "translations")
    assert app.extensions["group_ipt_forms"].instruments
    with app.test_request_context(headers={"Accept-Language": "sw"}):
        from flask_babel import gettext

        assert gettext("My sites") == "Vituo vyangu"
    assert _snapshot(installed) == before  # never written at run time


def test_a_new_version_updates_the_copy_and_keeps_what_was_added_or_changed_here(installed, tmp_path):
    data = tmp_path / "data"
    first = bundle.data_folder(data, "forms", "0.2.0")
    assert bundle.data_folder(data, "forms", "0.2.0") == first  # same version: left alone
    phq9 = installed / "forms" / "instruments" / "phq9.yaml"
    # Here: the programme added its own instrument and adapted GAD-7; the rest was left alone.
    own = (installed / "forms" / "instruments" / "local-depression-example.yaml").read_text(encoding="utf-8")
    (first / "instruments" / "local-scale.yaml").write_text(
        own.replace("local-depression-example", "local-scale"), encoding="utf-8"
    )
    gad7 = first / "instruments" / "gad7.yaml"
    gad7.write_text(gad7.read_text(encoding="utf-8") + "# adapted here\n", encoding="utf-8")
    # The new release changes PHQ-9 and GAD-7 and drops the example of a local scale.
    phq9.write_text(phq9.read_text(encoding="utf-8") + "# new in 0.3.0\n", encoding="utf-8")
    packaged_gad7 = installed / "forms" / "instruments" / "gad7.yaml"
    packaged_gad7.write_text(packaged_gad7.read_text(encoding="utf-8") + "# also new in 0.3.0\n", encoding="utf-8")
    (installed / "forms" / "instruments" / "local-depression-example.yaml").unlink()

    assert bundle.data_folder(data, "forms", "0.3.0") == first
    assert bundle.stamp_of(first) == "0.3.0"
    assert (first / "instruments" / "phq9.yaml").read_bytes() == phq9.read_bytes()  # untouched: updated
    assert (first / "instruments" / "local-scale.yaml").is_file()  # added here: kept
    assert (first / "instruments" / "gad7.yaml").read_text(encoding="utf-8").endswith("# adapted here\n")
    beside = data / "replaced" / "forms-0.3.0-from-package" / "instruments" / "gad7.yaml"
    assert beside.read_bytes() == packaged_gad7.read_bytes()  # the package's new version, for a look
    assert not (first / "instruments" / "local-depression-example.yaml").exists()
    old_copy = data / "replaced" / "forms-0.2.0"  # the whole old copy
    assert (old_copy / "instruments" / "local-depression-example.yaml").is_file()
    assert not [p for p in data.iterdir() if p.name.startswith(".forms-")]  # no staging folder left
    from group_ipt.formfiles.forms import check_all

    assert check_all(first) == []
    # A third version: the adapted GAD-7 still counts as changed here, local-scale as added.
    bundle.data_folder(data, "forms", "0.4.0")
    assert (first / "instruments" / "gad7.yaml").read_text(encoding="utf-8").endswith("# adapted here\n")
    assert (first / "instruments" / "local-scale.yaml").is_file()


def test_a_catalog_the_centre_sent_is_kept_and_compiled_again(installed, tmp_path):
    data = tmp_path / "data"
    translations = bundle.data_folder(data, "translations", "0.2.0")
    po = translations / "sw" / "LC_MESSAGES" / "messages.po"
    po.write_text(
        po.read_text(encoding="utf-8").replace('msgstr "Vituo vyangu"', 'msgstr "Vituo vyetu"'), encoding="utf-8"
    )
    bundle.data_folder(data, "translations", "0.3.0")
    assert 'msgstr "Vituo vyetu"' in po.read_text(encoding="utf-8")
    assert not po.with_suffix(".mo").exists()  # the package's .mo would be stale: compiled again at start
    initialise(data).close()
    app = create_app({"DATA_DIR": str(data), "TESTING": True})
    with app.test_request_context(headers={"Accept-Language": "sw"}):
        from flask_babel import gettext

        assert gettext("My sites") == "Vituo vyetu"


def test_cli_forms_check_and_i18n_status_of_an_installed_copy(installed, tmp_path):
    data = tmp_path / "data"
    runner = CliRunner()
    result = runner.invoke(cli, ["--data-dir", str(data), "forms", "check"])
    assert result.exit_code == 0 and "All form files are valid" in result.output
    assert not (data / "forms").exists()  # a check writes nothing
    status = runner.invoke(cli, ["--data-dir", str(data), "i18n", "status"])
    assert status.exit_code == 0 and "sw " in status.output
    compiled = runner.invoke(cli, ["--data-dir", str(data), "i18n", "compile", "--force"])
    assert compiled.exit_code == 0 and (data / "translations" / "fr" / "LC_MESSAGES" / "messages.mo").is_file()


def test_the_build_step_ships_forms_and_translations():
    setup = (REPO_DIR / "setup.py").read_text(encoding="utf-8")
    assert 'BUNDLED = ("forms", "translations")' in setup and "write_mo" in setup
    manifest = (REPO_DIR / "MANIFEST.in").read_text(encoding="utf-8")
    assert "graft forms" in manifest and "graft translations" in manifest
    assert "babel" in (REPO_DIR / "pyproject.toml").read_text(encoding="utf-8")


# ---- the offline kit's installers (the Windows ones cannot run here: their text is checked) ----------


@pytest.mark.parametrize("name", ["install.sh", "install.ps1"])
def test_installers_never_reach_the_network_and_upgrade_the_data(name):
    text = (KIT / name).read_text(encoding="utf-8")
    assert "--no-index" in text and "--find-links" in text and "--isolated" in text
    assert "upgrade" in text and "serve --open" in text
    assert "http://" not in text and "https://" not in text


def test_windows_installer_makes_a_desktop_shortcut_and_finds_python():
    ps1 = (KIT / "install.ps1").read_text(encoding="utf-8")
    assert "CreateShortcut" in ps1 and 'GetFolderPath("Desktop")' in ps1
    assert "LOCALAPPDATA" in ps1 and '"py", "-3"' in ps1 and "(3, 11)" in ps1
    assert "if errorlevel 1 pause" in ps1  # the launcher's window stays open on an error
    assert "Scripts\\group-ipt.exe" in ps1
    bat = (KIT / "install.bat").read_bytes()
    assert b"\r\n" in bat and b'-ExecutionPolicy Bypass -File "%~dp0install.ps1"' in bat


def test_kit_readmes_are_one_page_in_three_languages():
    for name in ("README.txt", "README-fr.txt", "README-sw.txt"):
        text = (KIT / name).read_text(encoding="utf-8")
        assert "@VERSION@" in text and "install.bat" in text and "install.sh" in text
        assert len(text.splitlines()) <= 60, name


def test_serve_open_only_opens_the_browser_when_the_app_already_runs(tmp_path, monkeypatch):
    import webbrowser

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "none"), "serve", "--open", "--port", str(port)])
    assert result.exit_code == 0, result.output
    assert "already running" in result.output and opened == [f"http://127.0.0.1:{port}/"]
