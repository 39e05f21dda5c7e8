"""Where the form and translation files come from: the checkout, or the installed package.

Run from a checkout (an editable install, ``python cli.py``, the tests), the app reads the
checkout's ``forms/`` and ``translations/`` and keeps compiling stale catalogs there, as
developers and translators expect.

An installed copy (a wheel, the offline kit) carries both folders inside the package, in
``group_ipt/bundled/``, with the catalogs already compiled by the build (setup.py). It never
writes there: at start it copies them into the data folder, the only place written at run
time, because the central office may send newer form and translation files with a sync. The
copy is marked with the version that made it; a newer version replaces it at its first start
and keeps the replaced copy under ``replaced/`` in the data folder (the next sync sends the
centre's files again).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from . import oscompat

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
PACKAGE_DATA = PACKAGE_DIR / "bundled"
FOLDERS = ("forms", "translations")
STAMP = ".bundle-version"
REPLACED_DIR = "replaced"


def from_checkout() -> bool:
    """Tell whether this code runs from a source checkout (its forms/ sit beside the package)."""
    return (REPO_DIR / "setup.cfg").is_file() and (REPO_DIR / "forms").is_dir()


def bundled_folder(name: str) -> Path:
    """Return the folder ``name`` (forms or translations) this code was shipped with."""
    if name not in FOLDERS:
        raise ValueError(name)
    return REPO_DIR / name if from_checkout() else PACKAGE_DATA / name


def is_packaged(folder: str | Path) -> bool:
    """Tell whether ``folder`` lies inside the installed package (never written at run time)."""
    try:
        Path(folder).resolve().relative_to(PACKAGE_DATA)
    except ValueError:
        return False
    return True


def stamp_of(folder: Path) -> str | None:
    try:
        return (folder / STAMP).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def data_folder(data_dir: str | Path, name: str, version: str) -> Path:
    """Return the folder ``name`` the app uses for the data folder ``data_dir``; copy it there first if needed.

    From a checkout: the checkout's folder, untouched. Installed: ``DATA_DIR/name``, (re)made
    from the package when missing or made by another version.
    """
    source = bundled_folder(name)
    if from_checkout():
        return source
    target = Path(data_dir) / name
    if target.is_dir() and stamp_of(target) == version:
        return target
    if not source.is_dir():
        raise FileNotFoundError(f"The package has no {name}/ folder ({source}): reinstall group-ipt.")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    # Copy beside the target and rename, so a half-made copy never carries the real name.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=data_dir))
    try:
        made = staging / name
        shutil.copytree(source, made)
        (made / STAMP).write_text(version + "\n", encoding="utf-8")
        if target.exists():
            old = stamp_of(target) or "unknown"
            keep = Path(data_dir) / REPLACED_DIR / f"{name}-{old}"
            n = 1
            while keep.exists():
                n += 1
                keep = Path(data_dir) / REPLACED_DIR / f"{name}-{old}-{n}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            oscompat.replace(target, keep)
        oscompat.replace(made, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def folder_to_read(data_dir: str | Path, name: str, version: str) -> Path:
    """Return the folder a read-only command (forms check, i18n status) should look at, writing nothing."""
    if from_checkout():
        return bundled_folder(name)
    copy = Path(data_dir) / name
    return copy if copy.is_dir() and stamp_of(copy) == version else bundled_folder(name)
