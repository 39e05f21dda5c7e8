"""The base of the errors core modules raise, with a message a facilitator can act on.

Core modules have no Flask, so they cannot translate. They raise a ``DomainError``
whose message is an English msgid marked with ``N_`` (extracted by Babel) and
whose values are kept apart; the view translates it with ``error.translated(_)``.
"""

from __future__ import annotations

from collections.abc import Callable


def N_(message: str) -> str:  # noqa: N802 (Babel's marker name)
    """Mark a message for extraction; it is translated later, where a locale is known."""
    return message


class DomainError(ValueError):
    """A request the core refuses; ``field`` names the form field at fault, if any."""

    def __init__(self, message: str, *, field: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.params = params

    def __str__(self) -> str:
        return self.message % self.params if self.params else self.message

    def translated(self, gettext: Callable[..., str]) -> str:
        """Return the message in the user's language (``gettext`` is flask_babel's)."""
        return gettext(self.message, **self.params)
