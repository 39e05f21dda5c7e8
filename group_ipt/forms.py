"""Load and check every data file in ``forms/``: instruments and protocols.

The app refuses to start on a broken file (never half-loads), with the file,
item and field of every error; ``group-ipt forms check`` prints the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import instruments as instrumentsmod
from . import protocols as protocolsmod


class FormsError(RuntimeError):
    """One or more form files are broken; ``errors`` lists them all."""

    def __init__(self, errors: list[Exception]):
        self.errors = errors
        super().__init__("Broken form files:\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class Forms:
    instruments: dict
    protocols: dict


def check_all(forms_dir: Path) -> list[Exception]:
    """Return every error in every form file (an empty list when all are valid)."""
    errors: list[Exception] = list(instrumentsmod.check_instruments(forms_dir / "instruments"))
    known = set()
    if not errors:
        known = set(instrumentsmod.load_instruments(forms_dir / "instruments"))
    errors += protocolsmod.check_protocols(forms_dir / "protocols", known_instruments=known or None)
    return errors


def load_all(forms_dir: Path) -> Forms:
    errors = check_all(forms_dir)
    if errors:
        raise FormsError(errors)
    return Forms(
        instruments=instrumentsmod.load_instruments(forms_dir / "instruments"),
        protocols=protocolsmod.load_protocols(forms_dir / "protocols"),
    )
