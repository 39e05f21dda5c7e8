"""Form files (instruments, intake.yaml, consent.yaml, rating forms): their error, checker and loaders.

Each kind of form file has its own sections, but all of them are read the same way
(``FormChecker.load``), check their fields with the same words (a text, a whole
number, an id...), and name every error by file, line, item and field. Protocols
and scripts word their errors otherwise (by session): see ``yamlfile.FileChecker``.
Plain Python, no Flask.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from .yamlfile import DataFileError, FileChecker, LineLoader, LineMap, yaml_files

T = TypeVar("T")


class FormFileError(DataFileError):
    """A form file that cannot be used, naming the file, line, item and field."""

    item_format = "item {}"
    field_format = "field '{}'"

    def __init__(self, file: str, item: str | None, field: str | None, message: str, line: int | None = None) -> None:
        super().__init__(file, message, line=line, item=item, field=field)


class _FormLoader(LineLoader):
    """LineLoader reading and wording its errors as form files always have."""

    streaming = False
    duplicate_key = "duplicate key '{key}'"
    unhashable_key = "a key must be a plain word"
    unreadable = "cannot read the file: {error}"
    invalid = "not valid YAML: {error}"


class FormChecker(FileChecker[FormFileError], Generic[T]):
    """Collect every error of one form file with its line; a subclass turns the file into a form (``check``)."""

    error_class = FormFileError
    loader = _FormLoader
    not_a_mapping = "must be a YAML mapping"  # said of a file that holds no mapping: a subclass names its fields

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    @classmethod
    def load(cls, path: Path) -> tuple[T | None, list[FormFileError]]:
        """Read and check one file; return its form, or None and every error in it."""
        checker = cls(str(path))
        data = checker.read(path)
        if checker.errors:
            return None, checker.errors
        form = checker.check(data)
        return (None, checker.errors) if checker.errors else (form, [])

    def check(self, data: Any) -> T | None:
        """Turn the parsed file into its form, reporting every error on the way."""
        if not isinstance(data, LineMap):
            self.error(None, None, self.not_a_mapping)
            return None
        return self.form(data)

    def form(self, data: LineMap) -> T | None:
        """Turn the file's top mapping into its form (a subclass does, section by section)."""
        raise NotImplementedError

    def new_error(self, file: str | Path, message: str, line: int | None, **where: Any) -> FormFileError:
        return FormFileError(str(file), where.get("item"), where.get("field"), message, line)

    def error(self, where: Any, field: str | None, message: str, item: str | None = None) -> None:
        """Record a problem with ``field`` of the mapping ``where`` (its line), in ``item`` if given."""
        self.report(self.file, message, at=where, key=field, item=item, field=field)

    def keys(self, data: LineMap, allowed: tuple[str, ...], item: str | None = None) -> None:
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                message = "unknown field" + (f" (did you mean '{hint[0]}'?)" if hint else "")
                message += "; allowed: " + ", ".join(allowed)
                self.error(data, str(key), message, item)

    # Fields, each checked with the same words in every kind of form file.

    def mapping(self, value: Any, field: str, parent: Any, item: str | None = None) -> LineMap | None:
        if isinstance(value, LineMap):
            return value
        self.error(parent, field, "must be a mapping of 'key: value' lines", item)
        return None

    def text(self, data: LineMap, field: str, item: str | None = None, required: bool = True) -> str | None:
        """Return a text as written (it is the msgid the extractor puts in the catalog), or None."""
        if field not in data:
            if required:
                self.error(data, field, "is missing", item)
            return None
        value = data[field]
        if not isinstance(value, str) or not value.strip():
            # YAML reads bare yes/no/on/off as true/false: say how to keep the words.
            hint = " (put quotes around it)" if isinstance(value, (bool, int, float)) else ""
            self.error(data, field, f"must be non-empty text{hint}", item)
            return None
        return value

    def stripped_text(self, mapping: LineMap, key: str, item: str | None) -> str:
        """Return a required text without its surrounding blanks ("" when it is missing or empty)."""
        value = mapping.get(key)
        if not isinstance(value, str) or not value.strip():
            self.error(mapping, key, "must be a non-empty text", item)
            return ""
        return value.strip()

    def integer(self, data: LineMap, field: str, item: str | None = None) -> int | None:
        if field not in data:
            self.error(data, field, "is missing", item)
            return None
        value = data[field]
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(data, field, f"must be a whole number, not {value!r}", item)
            return None
        return value

    def boolean(self, data: LineMap, field: str, default: bool, item: str | None = None) -> bool:
        value = data.get(field, default)
        if not isinstance(value, bool):
            self.error(data, field, f"must be true or false, not {value!r}", item)
            return default
        return value

    def identifier(
        self, data: LineMap, pattern: re.Pattern[str], item: str | None = None, *, first: str, required: bool = True
    ) -> str | None:
        """Return ``data["id"]`` if it matches ``pattern``, which starts with ``first`` (said in the error)."""
        value = data.get("id")
        if required and "id" not in data:
            self.error(data, "id", "is missing", item)
            return None
        if not isinstance(value, str) or not pattern.match(value):
            message = f"{value!r} must start with {first}, then lower-case letters, digits, '-' or '_'"
            self.error(data, "id", message, item)
            return None
        return value


class _Form(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def source(self) -> str | None: ...


F = TypeVar("F", bound=_Form)


def read_form_directory(
    directory: Path, read_one: Callable[[Path], tuple[F | None, list[FormFileError]]], *, required: bool
) -> tuple[dict[str, F], list[FormFileError]]:
    """Read every YAML file of a folder with ``read_one(path) -> (form or None, errors)``; refuse repeated ids.

    A missing folder is an error when ``required``, else simply no forms.
    """
    if not directory.is_dir():
        return {}, [FormFileError(str(directory), None, None, "no such directory")] if required else []
    found: dict[str, F] = {}
    errors: list[FormFileError] = []
    for path in yaml_files(directory):
        form, file_errors = read_one(path)
        errors.extend(file_errors)
        if form is None:
            continue
        if form.id in found:
            first = found[form.id].source
            errors.append(FormFileError(str(path), None, "id", f"id '{form.id}' is already used by {first}"))
            continue
        found[form.id] = form
    return found, errors
