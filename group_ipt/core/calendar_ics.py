"""Write iCalendar (RFC 5545) text for a cycle's sessions, for the facilitator's phone.

Times are *floating* local times (no ``Z``, no ``TZID``): a session "at 14:00"
stays at 14:00 on the phone wherever it is, as session dates are local dates in
the app. Text values are escaped and long lines folded at 75 octets, as the RFC
requires; lines end with CRLF.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

PRODID = "-//group-ipt//group-ipt//EN"
MAX_OCTETS = 75


@dataclass(frozen=True)
class Event:
    uid: str
    start: datetime  # naive local time
    end: datetime
    summary: str
    location: str = ""
    description: str = ""
    cancelled: bool = False
    sequence: int = 0


def escape(text: str) -> str:
    """Escape a TEXT value: backslash, semicolon, comma and newlines (RFC 5545 3.3.11).

    >>> escape("Hall; room 2, back\\nside")
    'Hall\\\\; room 2\\\\, back\\\\nside'
    """
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line into pieces of at most 75 octets, never splitting a UTF-8 character."""
    pieces: list[str] = []
    current, size = "", 0
    limit = MAX_OCTETS
    for char in line:
        n = len(char.encode("utf-8"))
        if size + n > limit:
            pieces.append(current)
            current, size = "", 0
            limit = MAX_OCTETS - 1  # continuation lines start with a space
        current += char
        size += n
    pieces.append(current)
    return "\r\n ".join(pieces)


def _local(value: datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def render(events: Iterable[Event], *, name: str, now: datetime | None = None) -> str:
    """Return a VCALENDAR with one VEVENT per event."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for e in events:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{e.uid}",
            f"DTSTAMP:{stamp}",
            f"DTSTART:{_local(e.start)}",
            f"DTEND:{_local(e.end)}",
            f"SEQUENCE:{e.sequence}",
            f"SUMMARY:{escape(e.summary)}",
        ]
        if e.location:
            lines.append(f"LOCATION:{escape(e.location)}")
        if e.description:
            lines.append(f"DESCRIPTION:{escape(e.description)}")
        lines.append("STATUS:CANCELLED" if e.cancelled else "STATUS:CONFIRMED")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
