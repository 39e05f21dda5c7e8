"""Blueprints: one per area, each named ``bp``; they parse input, call one core function, render."""

from __future__ import annotations

from typing import TypeVar

from flask import abort

T = TypeVar("T")


def found_or_404(value: T | None) -> T:
    """Return ``value``, or answer 404 when the lookup found nothing (or nothing this user may see)."""
    if value is None:
        abort(404)
    return value
