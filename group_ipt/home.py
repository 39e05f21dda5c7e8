"""The home page: what a facilitator or coordinator needs to see first."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from .db import get_db, rows

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    db = get_db()
    placeholders = ",".join("?" for _ in current_user.site_ids) or "''"
    sites = rows(db, f"select * from sites where id in ({placeholders}) order by name", current_user.site_ids)
    return render_template("home/index.html", sites=sites)
