"""Build hook: the wheel carries forms/ and translations/, with the catalogs compiled.

Everything else about the package is in setup.cfg. forms/ and translations/ stay at the top
of the checkout (translators and programme staff edit them there); the build copies them
into ``group_ipt/bundled/`` and compiles each ``.po`` to ``.mo``, so an installed copy never
writes into its own folder. An editable install (``pip install -e``) reads the checkout's
folders directly and gets no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
BUNDLED = ("forms", "translations")
SKIP = shutil.ignore_patterns("*.mo", "*.tmp", "*.part", "__pycache__", ".*")


def compile_catalogs(folder: Path) -> list[Path]:
    """Compile every .po under ``folder`` to a .mo beside it (fuzzy entries left out, as at run time)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(folder.glob("*/LC_MESSAGES/*.po")):
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=po_path.parent.parent.name)
        mo_path = po_path.with_suffix(".mo")
        with mo_path.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        written.append(mo_path)
    return written


class BuildWithData(build_py):
    """build_py, then copy forms/ and translations/ into the package and compile the catalogs."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "group_ipt" / "bundled"
        for name in BUNDLED:
            source = HERE / name
            if not source.is_dir():
                raise SystemExit(f"{source} is missing: build from a complete checkout or sdist.")
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(source, target / name, ignore=SKIP)
        if not compile_catalogs(target / "translations"):
            raise SystemExit("No translation catalog was compiled: translations/*/LC_MESSAGES/*.po are missing.")


setup(cmdclass={"build_py": BuildWithData})
