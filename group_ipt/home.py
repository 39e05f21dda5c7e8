"""The home page: what a facilitator or coordinator needs to see first."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from .auth import user_sites

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    sites = user_sites()
    backups = None
    if current_user.role in ("coordinator", "admin"):
        from .backup import backup_state
        from .clock import today

        backups = backup_state(
            Path(current_app.config["DATA_DIR"]), today=today(), warn_days=current_app.config["BACKUP_WARN_DAYS"]
        )
    return render_template("home/index.html", sites=sites, backups=backups)
