"""Where the form and translation files come from: the checkout, or the installed package.

Run from a checkout (an editable install, ``python cli.py``, the tests), the app reads the
checkout's ``forms/`` and ``translations/`` and keeps compiling stale catalogs there, as
developers and translators expect.

An installed copy (a wheel, the offline kit) carries both folders inside the package, in
``group_ipt/bundled/``, with the catalogs already compiled by the build (setup.py). It never
writes there: at start it copies them into the data folder, the only place written at run
time, because the central office may send newer form and translation files with a sync. The
copy is marked with the version that made it and what each file was; another version brings it
up to date at its first start, keeping what was added or changed in the data folder (see
``data_folder``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from . import oscompat

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # group_ipt/
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


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, Path]:
    """The files of a copy that matter (the stamp and compiled catalogs aside), by "/"-separated name."""
    return {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STAMP and p.suffix != ".mo"
    }


def _read_stamp(folder: Path) -> dict:
    try:
        info = json.loads((folder / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def stamp_of(folder: Path) -> str | None:
    """Return the version that made the copy ``folder`` (None: not a copy made by this module)."""
    version = _read_stamp(folder).get("version")
    return version if isinstance(version, str) else None


def data_folder(data_dir: str | Path, name: str, version: str) -> Path:
    """Return the folder ``name`` the app uses for the data folder ``data_dir``; copy it there first if needed.

    From a checkout: the checkout's folder, untouched. Installed: ``DATA_DIR/name``, made from
    the package when missing, and brought up to date when another version made it: a file
    unchanged since its package copied it takes the new package's version; a file added or
    changed here (a programme's own instrument, a file the centre sent) is kept, and the new
    package's version of it is put beside, under ``replaced/``. The whole old copy is kept there too.
    """
    source = bundled_folder(name)
    if from_checkout():
        return source
    data_dir = Path(data_dir)
    target = data_dir / name
    if target.is_dir() and stamp_of(target) == version:
        return target
    if not source.is_dir():
        raise FileNotFoundError(f"The package has no {name}/ folder ({source}): reinstall group-ipt.")
    data_dir.mkdir(parents=True, exist_ok=True)
    # Build the new copy beside the target and rename it, so a half-made copy never carries the real name.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=data_dir))
    try:
        made = staging / name
        shutil.copytree(source, made)
        packaged = {rel: _digest(path) for rel, path in _files(made).items()}
        if target.is_dir():
            old = stamp_of(target) or "unknown"
            as_copied = _read_stamp(target).get("files") or {}
            beside_root = None
            for rel, path in _files(target).items():
                if as_copied.get(rel) == _digest(path):
                    continue  # untouched since the package copied it: the new package's file wins
                dest = made / rel
                if dest.exists() and _digest(dest) != _digest(path):
                    beside_root = beside_root or _unused(data_dir / REPLACED_DIR / f"{name}-{version}-from-package")
                    beside = beside_root / rel
                    beside.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(dest, beside)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
                if dest.suffix == ".po":
                    dest.with_suffix(".mo").unlink(missing_ok=True)  # compiled again from the kept .po
            keep = _unused(data_dir / REPLACED_DIR / f"{name}-{old}")
            keep.parent.mkdir(parents=True, exist_ok=True)
            oscompat.replace(target, keep)
        (made / STAMP).write_text(json.dumps({"version": version, "files": packaged}, indent=0), encoding="utf-8")
        oscompat.replace(made, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _unused(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... whichever does not exist yet."""
    found, n = path, 1
    while found.exists():
        n += 1
        found = path.with_name(f"{path.name}-{n}")
    return found


def folder_to_read(data_dir: str | Path, name: str, version: str) -> Path:
    """Return the folder a read-only command (forms check, i18n status) should look at, writing nothing."""
    if from_checkout():
        return bundled_folder(name)
    copy = Path(data_dir) / name
    return copy if copy.is_dir() and stamp_of(copy) == version else bundled_folder(name)
