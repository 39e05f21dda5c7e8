"""Load and check every data file in ``forms/``: instruments, protocols, scripts, intake.yaml, consent.yaml.

The app refuses to start on a broken file (never half-loads), with the file,
item and field of every error; ``group-ipt forms check`` prints the same list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from . import consent as consentmod
from . import instruments as instrumentsmod
from . import intake as intakemod
from . import protocols as protocolsmod
from . import ratings as ratingsmod
from . import scripts as scriptsmod


class FormsError(RuntimeError):
    """One or more form files are broken; ``errors`` lists them all."""

    def __init__(self, errors: list[Exception]):
        self.errors = errors
        super().__init__("Broken form files:\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class Forms:
    instruments: dict
    protocols: dict
    intake: intakemod.Intake | None = None  # exclusions asked at intake and the safety steps
    scripts: scriptsmod.ScriptLibrary = field(default_factory=scriptsmod.ScriptLibrary)  # facilitator scripts
    ratings: dict = field(default_factory=dict)  # supervisors' rating forms (forms/ratings/), by id
    consent: consentmod.ConsentText | None = None  # the consent text read at intake (forms/consent.yaml)


# The key under which the app keeps its loaded forms in ``app.extensions``.
EXTENSION = "group_ipt_forms"


def loaded(extensions: Mapping[str, Any]) -> Forms:
    """Return the forms the app loaded when it started, from its ``extensions``.

    The one way views, commands and the demo reach the forms: they were checked once,
    at start, so nobody reads a form file again while serving.
    """
    return cast(Forms, extensions[EXTENSION])


def check_all(forms_dir: Path) -> list[Exception]:
    """Return every error in every form file (an empty list when all are valid)."""
    errors: list[Exception] = list(instrumentsmod.check_instruments(forms_dir / "instruments"))
    known = set()
    if not errors:
        known = set(instrumentsmod.load_instruments(forms_dir / "instruments"))
    protocol_errors = protocolsmod.check_protocols(forms_dir / "protocols", known_instruments=known or None)
    errors += protocol_errors
    # Scripts are checked against the protocols; with broken protocols, only the files themselves.
    protocols = None if protocol_errors else protocolsmod.load_protocols(forms_dir / "protocols")
    errors += scriptsmod.check_scripts(forms_dir / "scripts", protocols)
    errors += intakemod.check_intake(forms_dir)
    errors += ratingsmod.check_ratings(forms_dir / "ratings")
    errors += consentmod.check_consent(forms_dir)
    return errors


# Loaded forms by folder, valid while no file in it changed: the app factory runs once per
# test and once per CLI command, and parsing every file each time cost over a second.
_CACHE: dict[Path, tuple[tuple, Forms]] = {}


def _signature(forms_dir: Path) -> tuple:
    files = sorted(p for p in forms_dir.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def load_all(forms_dir: Path) -> Forms:
    """Check and load every form file; raise FormsError listing every error, or return them all."""
    key = forms_dir.resolve()
    signature = _signature(key)
    cached = _CACHE.get(key)
    if cached and cached[0] == signature:
        return cached[1]
    forms = _load_all(forms_dir)
    _CACHE[key] = (signature, forms)
    return forms


def _load_all(forms_dir: Path) -> Forms:
    errors = check_all(forms_dir)
    if errors:
        raise FormsError(errors)
    protocols = protocolsmod.load_protocols(forms_dir / "protocols")
    return Forms(
        instruments=instrumentsmod.load_instruments(forms_dir / "instruments"),
        protocols=protocols,
        scripts=scriptsmod.load_scripts(forms_dir / "scripts", protocols),
        intake=intakemod.load_intake(forms_dir),
        ratings=ratingsmod.load_ratings(forms_dir / "ratings"),
        consent=consentmod.load_consent(forms_dir),
    )
