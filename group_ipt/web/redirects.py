"""Redirects: the one check of a target taken from a request (``next``, ``back``), and the
one answer "say what happened, then go there" that a form's POST gives.

Browsers read a backslash as a slash, so ``/\\evil.example`` goes to another site just as
``//evil.example`` does; control characters and a scheme or host do too. Only a plain
path on this site is followed; anything else goes to the default.
"""

from __future__ import annotations

from typing import TypeGuard
from urllib.parse import urlsplit

from flask import flash, redirect
from werkzeug.wrappers import Response

MAX_TARGET = 2000


def is_safe_target(target: object) -> TypeGuard[str]:
    """Tell whether ``target`` is a path on this site that a browser cannot read as another site."""
    if not isinstance(target, str) or not target or len(target) > MAX_TARGET:
        return False
    if not target.startswith("/") or "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return False
    if target.startswith("//"):
        return False
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc)


def safe_target(target: object, default: str) -> str:
    """Return ``target`` when it is safe to redirect to, else ``default``."""
    return target if is_safe_target(target) else default


def flash_and_redirect(message: str, target: str, category: str = "success") -> Response:
    """Flash ``message`` and answer 303, so the browser GETs ``target`` (a reload does not post again)."""
    flash(message, category)
    return redirect(target, 303)
