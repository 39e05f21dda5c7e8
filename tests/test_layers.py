"""The house keeps its shape: no import circles, layers import downwards, Flask only in web and cli.

Every module of group_ipt is read with ``ast`` (imports inside functions count: a lazy import is
still a dependency), and its imports of group_ipt become the edges of a graph. The layers, bottom
to top (docs/DEVELOPING.md, "The house"):

    base < store < formfiles < core < reporting < sync, pdf, demo < web < cli

A module may import its own package and the layers below it. The three side by side (sync, pdf,
demo) import none of the others: the change capture the demo generator needs is store.tracking.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "group_ipt"

LAYERS = {
    "base": 0,
    "store": 1,
    "formfiles": 2,
    "core": 3,
    "reporting": 4,
    "sync": 5,
    "pdf": 5,
    "demo": 5,
    "web": 6,
    "cli": 7,
}
SIDEWAYS: set[tuple[str, str]] = set()  # (importer, imported) allowed within the same rank: none
FLASK = {"flask", "flask_babel", "flask_login", "flask_wtf"}
FLASK_LAYERS = {"web", "cli"}


@dataclass
class Module:
    name: str  # "group_ipt.core.cycles"
    path: Path
    top: Path  # the folder holding group_ipt/
    is_package: bool
    imports: dict[str, int] = field(default_factory=dict)  # group_ipt module -> first line
    external: dict[str, int] = field(default_factory=dict)  # top-level name -> first line

    @property
    def layer(self) -> str:
        """The layer a module belongs to: group_ipt/__init__.py (only __version__) counts as base."""
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else "base"

    def where(self, line: int) -> str:
        return f"{self.path.relative_to(self.top).as_posix()}:{line}"


def read_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir)
        if rel.parts[0] == "bundled" or "__pycache__" in rel.parts:
            continue
        parts = [package_dir.name, *rel.with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, package_dir.parent, is_package)
    for module in modules.values():
        _read_imports(module, modules, package_dir.name)
    return modules


def _read_imports(module: Module, modules: dict[str, Module], root: str) -> None:
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    package = module.name if module.is_package else module.name.rpartition(".")[0]

    def add(target: str, line: int) -> None:
        if target.split(".")[0] != root:
            module.external.setdefault(target.split(".")[0], line)
            return
        while target not in modules:  # "group_ipt.core.cycles.today" names the module group_ipt.core.cycles
            target = target.rpartition(".")[0]
        if target != module.name:
            module.imports.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base_name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                base_name = node.module or ""
            for alias in node.names:
                sub = f"{base_name}.{alias.name}"
                add(sub if sub in modules else base_name, node.lineno)


MODULES = read_modules()


def find_cycle(modules: dict[str, Module]) -> list[str] | None:
    """Return one import circle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for target in sorted(modules[name].imports):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[name] = 2
        return None

    for name in sorted(modules):
        if name not in state and (found := visit(name)):
            return found
    return None


def upward_imports(modules: dict[str, Module], layer: str) -> list[str]:
    """Each import by a module of ``layer`` of a module in a layer that is not below it."""
    wrong = []
    for module in modules.values():
        if module.layer != layer:
            continue
        for target, line in sorted(module.imports.items()):
            other = modules[target].layer
            if other == layer or LAYERS[other] < LAYERS[layer] or (layer, other) in SIDEWAYS:
                continue
            wrong.append(f"{module.where(line)}: {module.name} ({layer}) imports {target} ({other})")
    return wrong


def flask_imports(modules: dict[str, Module], layer: str) -> list[str]:
    return [
        f"{module.where(line)}: {module.name} imports {name}"
        for module in modules.values()
        if module.layer == layer and layer not in FLASK_LAYERS
        for name, line in sorted(module.external.items())
        if name in FLASK
    ]


def test_every_module_sits_in_a_layer():
    """A module straight in group_ipt/ (other than cli.py) has no layer: put it in the package of one."""
    loose = [name for name, module in MODULES.items() if module.layer not in LAYERS]
    assert not loose, f"modules outside every layer package: {loose}"


def test_group_ipt_init_holds_only_the_version():
    tree = ast.parse((PACKAGE_DIR / "__init__.py").read_text(encoding="utf-8"))
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    assert [ast.unparse(node).split(" =")[0] for node in body] == ["__version__"]


def test_no_import_circles():
    cycle = find_cycle(MODULES)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer", list(LAYERS))
def test_layer_imports_only_its_own_package_and_lower_layers(layer):
    wrong = upward_imports(MODULES, layer)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("layer", list(LAYERS))
def test_flask_is_imported_only_by_web_and_cli(layer):
    wrong = flask_imports(MODULES, layer)
    assert not wrong, "\n".join(wrong)


# --- the checks themselves -------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> dict[str, Module]:
    for rel, text in files.items():
        path = root / "group_ipt" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return read_modules(root / "group_ipt")


def test_graph_counts_lazy_relative_and_absolute_imports(tmp_path):
    modules = _write(
        tmp_path,
        {
            "__init__.py": "",
            "base/__init__.py": "",
            "base/clock.py": "",
            "core/__init__.py": "",
            "core/cycles.py": "from ..base import clock\n\ndef f():\n    from . import followup\n",
            "core/followup.py": "import group_ipt.core.cycles\nfrom group_ipt.base.clock import today\n",
            "web/__init__.py": "",
            "web/app.py": "def create():\n    import flask\n",
        },
    )
    assert set(modules["group_ipt.core.cycles"].imports) == {"group_ipt.base.clock", "group_ipt.core.followup"}
    assert set(modules["group_ipt.core.followup"].imports) == {"group_ipt.core.cycles", "group_ipt.base.clock"}
    assert find_cycle(modules) == ["group_ipt.core.cycles", "group_ipt.core.followup", "group_ipt.core.cycles"]
    assert modules["group_ipt.web.app"].external == {"flask": 2}


def test_checks_name_the_upward_import_and_the_flask_import(tmp_path):
    modules = _write(
        tmp_path,
        {
            "__init__.py": "",
            "store/__init__.py": "",
            "store/db.py": "from flask import g\n\ndef f():\n    from ..web import app\n",
            "web/__init__.py": "",
            "web/app.py": "from ..store import db\n",
            "demo/__init__.py": "",
            "demo/scale.py": "from ..sync import tracking\n",
            "sync/__init__.py": "",
            "sync/tracking.py": "from ..demo import scale\n",
        },
    )
    assert upward_imports(modules, "store") == [
        "group_ipt/store/db.py:4: group_ipt.store.db (store) imports group_ipt.web.app (web)"
    ]
    assert upward_imports(modules, "web") == []
    assert upward_imports(modules, "demo") == [
        "group_ipt/demo/scale.py:1: group_ipt.demo.scale (demo) imports group_ipt.sync.tracking (sync)"
    ]
    assert upward_imports(modules, "sync") == [
        "group_ipt/sync/tracking.py:1: group_ipt.sync.tracking (sync) imports group_ipt.demo.scale (demo)"
    ]
    assert flask_imports(modules, "store") == ["group_ipt/store/db.py:1: group_ipt.store.db imports flask"]
