"""The user's own account: language choice and password change."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import refresh
from flask_login import current_user

from ..core import users
from .database import get_db
from .i18n import languages
from .redirects import flash_and_redirect, safe_target

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/", methods=["GET"])
def settings():
    return render_template("account/settings.html")


@bp.route("/language", methods=["POST"])
def language():
    lang = request.form.get("lang", "")
    if lang == "":
        new = None
    elif lang in languages():
        new = lang
    else:
        flash(_("Unknown language."), "error")
        return render_template("account/settings.html"), 400
    users.set_language(get_db(), current_user.record, new)
    # Say it in the language just chosen, not the one the request started with.
    current_user.language = new
    refresh()
    return flash_and_redirect(
        _("Your language has been saved."), safe_target(request.form.get("back"), url_for("account.settings"))
    )


@bp.route("/password", methods=["POST"])
def password():
    db = get_db()
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    repeat = request.form.get("repeat_password", "")
    error = None
    from werkzeug.security import check_password_hash

    if not check_password_hash(current_user.record["password_hash"], current):
        error = _("Your current password is not right.")
    elif new != repeat:
        error = _("The two new passwords are not the same.")
    elif len(new) < users.MIN_PASSWORD_LENGTH:
        error = _("The password must have at least %(n)d characters.", n=users.MIN_PASSWORD_LENGTH)
    if error:
        flash(error, "error")
        return render_template("account/settings.html"), 400
    # Every other session of this user ends (a cookie copied elsewhere, another laptop); this one goes on.
    users.set_password(
        db,
        current_user.username,
        new,
        actor=current_user.record,
        hash_method=current_app.config["PASSWORD_HASH_METHOD"],
        keep_session=session.get("sid"),
    )
    return flash_and_redirect(_("Your password has been changed."), url_for("account.settings"))
