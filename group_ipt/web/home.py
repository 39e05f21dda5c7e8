"""The home page: what a facilitator or coordinator needs to see first.

The view gathers every panel's data (each area's view module makes its own: safety,
cycles; then backups) and the templates only show it: nothing on the page queries the
database while it is drawn.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from ..base import clock
from ..store.backup import backup_state
from .auth import user_sites
from .views import cycles as cycles_views
from .views import referrals as referrals_views

bp = Blueprint("home", __name__)


@bp.route("/")
def index():
    backups = None
    if current_user.role in ("coordinator", "admin"):
        backups = backup_state(
            Path(current_app.config["DATA_DIR"]), today=clock.today(), warn_days=current_app.config["BACKUP_WARN_DAYS"]
        )
    return render_template(
        "home/index.html",
        sites=user_sites(),
        backups=backups,
        safety_panel=referrals_views.home_panel(),
        cycles_panel=cycles_views.home_panel(),
    )
