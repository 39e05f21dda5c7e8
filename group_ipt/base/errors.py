"""The base of the errors core modules raise, with a message a facilitator can act on.

Core modules have no Flask, so they cannot translate. They raise a ``DomainError``
whose message is an English msgid marked with ``N_`` (extracted by Babel) and
whose values are kept apart; the view translates it with ``error.translated(_)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def N_(message: str) -> str:  # noqa: N802 (Babel's marker name)
    """Mark a message for extraction; it is translated later, where a locale is known."""
    return message


def NP_(singular: str, plural: str) -> tuple[str, str]:  # noqa: N802 (Babel's marker name, keyword NP_:1,2)
    """Mark a message with a count for extraction: its params hold ``count``, which picks the form."""
    return singular, plural


def english(message: str | tuple[str, str], params: dict) -> str:
    """Return the English text of a message (a plural one picks its form by ``params["count"]``)."""
    if isinstance(message, tuple):
        message = message[0] if params.get("count") == 1 else message[1]
    return message % params if params else message


class DomainError(ValueError):
    """A request the core refuses; ``field`` names the form field at fault, if any."""

    def __init__(self, message: str | tuple[str, str], *, field: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params

    def __str__(self) -> str:
        return english(self.message, self.params)

    def translated(self, gettext: Callable[..., str], ngettext: Callable[..., str] | None = None) -> str:
        """Return the message in the user's language (``gettext`` and ``ngettext`` are flask_babel's)."""
        if isinstance(self.message, tuple):
            if ngettext is None:
                return english(self.message, self.params)
            return ngettext(*self.message, self.params["count"], **self.params)
        return gettext(self.message, **self.params)


class RecordMissing(LookupError):
    """A record the caller named is not in the database: a stale id, or a caller that skipped its check.

    Not a DomainError: no user can fix it, so it is not translated; the web layer answers 404 or 500.
    """


def required(value: T | None, what: str) -> T:
    """Return ``value``, or raise RecordMissing naming ``what`` when the row it should be is not there."""
    if value is None:
        raise RecordMissing(f"{what} is not in the database")
    return value
