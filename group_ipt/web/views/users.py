"""The admin's users page: who can log in, and who is being slowed down by failed logins."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ...core import users
from ..auth import role_required
from ..database import get_db
from ..redirects import flash_and_redirect

bp = Blueprint("users", __name__, url_prefix="/users")


def _limits() -> dict:
    config = current_app.config
    return {"max_failures": config["LOGIN_MAX_FAILURES"], "lock_minutes": config["LOGIN_LOCK_MINUTES"]}


@bp.route("/")
@role_required("admin")
def index():
    db = get_db()
    now = datetime.now(UTC)
    listing = []
    for user in users.list_users(db):
        locks = users.login_locks(db, user["username"], now=now, **_limits())
        listing.append({**user, "locks": locks})
    return render_template("users/index.html", users=listing)


@bp.route("/<user_id>/unlock", methods=["POST"])
@role_required("admin")
def unlock(user_id: str):
    db = get_db()
    user = users.get_user(db, user_id)
    if user is None:
        abort(404)
    users.unlock_login(db, user["username"], actor=current_user.record)
    return flash_and_redirect(
        _("%(name)s can try to log in again now.", name=user["display_name"]), url_for("users.index")
    )
