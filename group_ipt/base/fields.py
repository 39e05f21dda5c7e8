"""The longest text each column of a record holds: one source for every path that writes.

The domain's checks (participants.py, referrals.py), the JSON API's schema and sync ingest
(sync/rules.py) all read these numbers, so a form, an API client and a laptop's sync meet the
same limit. A text column not named here holds at most TEXT_LIMIT characters, an id at most
ID_LIMIT and a ``*_json`` column at most JSON_LIMIT.
"""

from __future__ import annotations

LIMITS: dict[tuple[str, str], int] = {
    ("participants", "name"): 120,
    ("participants", "name_key"): 120,
    ("participants", "village"): 120,
    ("participants", "phone"): 40,
    ("participants", "language"): 40,
    ("participants", "code"): 40,
    ("consents", "given_by"): 120,
    ("cycles", "code"): 40,
    ("cycles", "name"): 80,
    ("cycles", "venue"): 120,
    ("site_holidays", "label"): 80,
    ("referrals", "reason"): 2000,
    ("referrals", "note"): 2000,
    ("referrals", "referred_to"): 200,
    ("referral_events", "note"): 2000,
    ("referral_followups", "note"): 2000,
    ("session_changes", "reason"): 200,
    ("participant_status_history", "reason"): 500,
    ("inventory_people", "name"): 200,
    ("inventory_people", "relationship"): 200,
    ("inventory_people", "recent_change"): 200,
    ("timeline_events", "happened"): 80,
    ("timeline_events", "event"): 200,
}
TEXT_LIMIT = 4000
JSON_LIMIT = 200_000
ID_LIMIT = 200


def limit(table: str, column: str) -> int:
    """The longest text ``table.column`` may hold, in characters."""
    if (table, column) in LIMITS:
        return LIMITS[(table, column)]
    if column == "id" or column.endswith("_id"):
        return ID_LIMIT
    return JSON_LIMIT if column.endswith("_json") else TEXT_LIMIT
