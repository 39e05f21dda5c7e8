"""Read the YAML data files of ``forms/`` keeping line numbers, and report where they are wrong.

Instruments, intake, rating forms, protocols and scripts all load their files
here, so that every error can name the file and line a programme must edit:
``yaml_files`` lists a folder's files, ``read_yaml`` parses one, and a
``FileChecker`` collects every error of the files it checks, each with its file,
line and place in the file. Plain Python, no Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import yaml

YAML_SUFFIXES = (".yaml", ".yml")

if TYPE_CHECKING:
    SafeLoader = yaml.SafeLoader
else:
    SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 10x faster


class DataFileError(Exception):
    """A data file that cannot be used; ``str()`` reads ``file:line: <where in it>: message``.

    Where in the file: the session, the item and the field, each when known. The class
    attributes word them; a subclass may word them its own way.
    """

    item_format = "{}"
    field_format = "field {!r}"

    def __init__(
        self,
        file: str | Path,
        message: str,
        *,
        line: int | None = None,
        session: int | None = None,
        item: str | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file)
        self.message = message
        self.line = line
        self.session = session
        self.item = item
        self.field = field
        super().__init__(str(self))

    def _context(self) -> list[str]:
        """Return what locates the problem inside the file (session, item, field), outermost first."""
        parts = [] if self.session is None else [f"session {self.session}"]
        if self.item is not None:
            parts.append(self.item_format.format(self.item))
        if self.field is not None:
            parts.append(self.field_format.format(self.field))
        return parts

    def __str__(self) -> str:
        # "file:line:" like compilers, so editors can jump to it.
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join([where, *self._context(), self.message])


class LineMap(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int | None = None
    key_lines: dict[Any, int]


class LineLoader(SafeLoader):
    """SafeLoader whose mappings keep their line numbers and refuse repeated keys.

    The class attributes word its errors and choose how the file is read; a
    subclass may set them its own way.
    """

    # Parse while reading the file, so that an error of the YAML reader (a control
    # character) names the file; False reads the whole text first.
    streaming = True

    duplicate_key = "found duplicate key {key!r}"
    unhashable_key = "found an unhashable key"
    unreadable = "cannot be read: {error}"  # the file cannot be opened or decoded
    invalid = "cannot be read: {error}"  # a YAML error that has no position in the file


def _construct_mapping(loader: LineLoader, node: yaml.MappingNode) -> LineMap:
    loader.flatten_mapping(node)
    mapping = LineMap()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            problem = loader.unhashable_key
        elif key in mapping:
            # PyYAML would silently keep the last one; a repeated key is a mistake.
            problem = loader.duplicate_key.format(key=key)
        else:
            mapping[key] = loader.construct_object(value_node, deep=True)
            mapping.key_lines[key] = key_node.start_mark.line + 1
            continue
        raise yaml.constructor.ConstructorError(
            "while constructing a mapping", node.start_mark, problem, key_node.start_mark
        )
    return mapping


LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def line_of(mapping: Any, key: Any = None) -> int | None:
    """Return the line of ``key`` in ``mapping``, else of the mapping; None if it has no line."""
    if not isinstance(mapping, LineMap):
        return None
    if key is not None and key in mapping.key_lines:
        return mapping.key_lines[key]
    return mapping.line


def read_yaml(
    path: str | Path,
    error: Callable[[str, int | None], Exception],
    loader: type[LineLoader] = LineLoader,
) -> Any:
    """Parse one YAML file; raise ``error(message, line)`` if it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f if loader.streaming else f.read(), Loader=loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise error(f"not valid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise error(loader.invalid.format(error=exc), None) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(loader.unreadable.format(error=exc), None) from None


def yaml_files(directory: Path) -> list[Path]:
    """Return the YAML files of ``directory`` (not of its subfolders), sorted by name."""
    return sorted(p for p in directory.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


E = TypeVar("E", bound=DataFileError)
T = TypeVar("T")


def valid(loaded: tuple[T | None, Sequence[DataFileError]]) -> T:
    """Return what was loaded from data files, or raise the first of their errors."""
    value, errors = loaded
    if errors:
        raise errors[0]
    assert value is not None  # a loader returns None only with errors
    return value


class FileChecker(Generic[E]):
    """Collect every error of the data files being checked, each with its file, line and place.

    A subclass checks one kind of file; ``error_class`` is the error it reports and
    ``loader`` how its files are read and their YAML errors worded.
    """

    error_class: type[E]
    loader: type[LineLoader] = LineLoader

    def __init__(self) -> None:
        self.errors: list[E] = []

    def new_error(self, file: str | Path, message: str, line: int | None, **where: Any) -> E:
        """Make one error (``where``: session, item, field); a subclass built otherwise overrides this."""
        return self.error_class(file, message, line=line, **where)

    def report(self, file: str | Path, message: str, *, at: Any = None, key: Any = None, **where: Any) -> None:
        """Record a problem in ``file``; the mapping ``at`` (and its ``key``) gives the line."""
        self.errors.append(self.new_error(file, message, line_of(at, key), **where))

    def read(self, path: str | Path) -> Any:
        """Parse one file; if it cannot be read or parsed, record why and return None."""
        try:
            return read_yaml(path, lambda message, line: self.new_error(path, message, line), self.loader)
        except DataFileError as exc:
            self.errors.append(cast(E, exc))  # raised by new_error just above
        return None

    def spec_keys(self, file: str | Path, node: Any, spec: Mapping[str, bool], prefix: str = "", **where: Any) -> bool:
        """Report unknown keys and missing required ones (``spec``: key -> required); False if no mapping."""
        if not isinstance(node, dict):
            self.report(file, "must be a mapping", field=prefix.rstrip(".") or None, **where)
            return False
        for key in node:
            if key not in spec:
                message = f"unknown key (allowed: {', '.join(spec)})"
                self.report(file, message, at=node, key=key, field=f"{prefix}{key}", **where)
        for key, required in spec.items():
            if required and key not in node:
                self.report(file, "is missing", at=node, field=f"{prefix}{key}", **where)
        return True
