"""Where a Windows laptop and a Linux one behave differently, in one place.

Most facilitators' laptops run Windows. The code on their paths uses only what works on
both; the few differences live here, each with the reason:

- **Replacing a file** (``replace``): Windows refuses to rename over a file that another
  process holds open for a moment (an antivirus scan, the search indexer, a reader of a
  catalog), with ``PermissionError``. We try again for about two seconds there; on Linux a
  rename over an open file always works, so an error is real and raised at once.
  ``atomic_file`` writes a whole file that way: readers see the old file or the new one.
- **SQLite URIs** (``sqlite_uri``): a read-only open needs a ``file:`` URI. A Windows path
  (``C:\\Users\\...``), or any path with ``#``, ``?`` or ``%`` in a folder name, must be
  written as a proper URI, not pasted after ``file:``.
- **Names from elsewhere** (``safe_relative``): a file name the central office sends must
  stay inside its folder on both systems. Windows also treats ``\\`` and ``C:`` as path parts,
  ignores trailing dots and spaces, and reserves names such as ``CON`` or ``NUL``.
- **Private files** (``write_private``): the secret key is created with mode 0600 on Linux.
  Windows has no such mode bits (Python maps them to the read-only flag only); there the file
  is private because the per-user data folder (``%LOCALAPPDATA%``) is readable by its owner
  only, which is where ``platformdirs`` puts it.
- **Signals and locks**: none are used. ``serve`` stops on Ctrl+C (``KeyboardInterrupt``) on
  both; SQLite does all file locking itself.

Tests cover the Windows branches by faking ``is_windows()``: the branches are plain Python
whose only platform input is that answer (and ``PureWindowsPath``, which works anywhere).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO
from urllib.parse import quote

WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
REPLACE_ATTEMPTS = 20
REPLACE_DELAY = 0.1


def is_windows() -> bool:
    return os.name == "nt"


def replace(source: str | Path, target: str | Path) -> None:
    """Rename ``source`` over ``target`` atomically; on Windows, wait out a short-lived lock on ``target``."""
    attempts = REPLACE_ATTEMPTS if is_windows() else 1
    for attempt in range(attempts):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if attempt == attempts - 1:
                raise
            time.sleep(REPLACE_DELAY)


@contextlib.contextmanager
def atomic_file(path: str | Path, *, mode: int | None = None) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file beside it, moved into place only if the block succeeds.

    Each call has a temporary file of its own, so processes writing the same file at once
    (test workers compiling catalogs, two app processes starting) do not take it from under
    each other: the last rename wins. ``mkstemp`` makes the file private to its owner;
    ``mode`` widens that for a file that is not (a compiled catalog).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        if mode is not None:
            os.chmod(tmp, mode)
        replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sqlite_uri(path: str | Path, **params: str) -> str:
    """Return a ``file:`` URI for ``path`` that SQLite reads the same way on Windows and Linux."""
    if is_windows():
        win = PureWindowsPath(path)
        text = "/" + (win if win.is_absolute() else PureWindowsPath(os.path.abspath(path))).as_posix()
    else:
        text = Path(os.path.abspath(path)).as_posix()
    uri = "file://" + quote(text, safe="/:")
    if params:
        uri += "?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())
    return uri


def safe_relative(name: str) -> PurePosixPath | None:
    """Return ``name`` (a "/"-separated path from another machine) if it stays inside its folder on
    Windows and Linux alike; else None."""
    if not name or "\\" in name or ":" in name or "\x00" in name:
        return None
    posix = PurePosixPath(name)
    if posix.is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive:
        return None
    for part in posix.parts:
        if part in ("", ".", "..") or part != part.rstrip(". "):
            return None
        if part.split(".")[0].upper() in WINDOWS_RESERVED:
            return None
    return posix


def write_private(path: str | Path, text: str) -> None:
    """Create ``path`` (refusing an existing one) readable by its owner only where the system allows it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
