"""Blueprints: one per area, each named ``bp``; they parse input, call one core function, render."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from flask import abort, url_for
from flask_login import current_user

# Not ``from .. import clinical``: that name would shadow the ``views.clinical`` submodule.
from ...core.clinical import can_see_record
from ..database import get_db

T = TypeVar("T")


def found_or_404(value: T | None) -> T:
    """Return ``value``, or answer 404 when the lookup found nothing (or nothing this user may see)."""
    if value is None:
        abort(404)
    return value


def record_links(members: Iterable[dict]) -> dict[str, str]:
    """Return the link to each member's clinical record the current user may see, by member id.

    Members whose record the user may not see are absent. Here rather than in
    ``views.clinical``, which imports ``views.cycles``: the cycle page needs these links too.
    """
    if not current_user.is_authenticated:
        return {}
    db = get_db()
    # The answer depends only on the site and the cycle, so it is worked out once for each
    # (two queries each time, 30 on a full group).
    allowed: dict[tuple[str, str], bool] = {}
    links = {}
    for member in members:
        key = (member["site_id"], member["cycle_id"])
        if key not in allowed:
            allowed[key] = can_see_record(db, current_user.record, member)
        if allowed[key]:
            links[member["id"]] = url_for("clinical.record", member_id=member["id"])
    return links
