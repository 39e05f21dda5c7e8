"""Each request's database connection: opened on first use, closed when the request ends."""

from __future__ import annotations

import sqlite_utils
from flask import current_app, g

from ..store.db import connect


def get_db() -> sqlite_utils.Database:
    """Return this request's database connection, opening it on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(_exc: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()
