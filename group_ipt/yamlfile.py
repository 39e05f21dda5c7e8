"""Read the YAML data files of ``forms/`` keeping line numbers, and report where they are wrong.

Instruments, intake, rating forms, protocols and scripts all load their files
here, so that every error can name the file and line a programme must edit.
Plain Python, no Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import yaml


class DataFileError(Exception):
    """A data file that cannot be used; ``str()`` reads ``file:line: <where in it>: message``."""

    file: str
    message: str
    line: int | None

    def _context(self) -> list[str]:
        """Return what locates the problem inside the file (session, item, field), outermost first."""
        return []

    def __str__(self) -> str:
        # "file:line:" like compilers, so editors can jump to it.
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return ": ".join([where, *self._context(), self.message])


class LineMap(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int | None = None
    key_lines: dict[Any, int]


class LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: 10x faster
    """SafeLoader whose mappings keep their line numbers and refuse repeated keys.

    The class attributes word its errors and choose how the file is read; a
    subclass may set them its own way.
    """

    # Parse while reading the file, so that an error of the YAML reader (a control
    # character) names the file; False reads the whole text first.
    stream = True

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
            return yaml.load(f if loader.stream else f.read(), Loader=loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise error(f"not valid YAML: {exc.problem or exc.context}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise error(loader.invalid.format(error=exc), None) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(loader.unreadable.format(error=exc), None) from None
