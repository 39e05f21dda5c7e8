"""The coordinator's sync page: conflicts to resolve, quarantined records, devices."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ... import __version__
from ...formfiles import forms as formsmod
from ...sync import devices, review
from ...sync.review import ReviewError
from ..auth import role_required
from ..database import get_db
from ..redirects import flash_and_redirect

bp = Blueprint("sync", __name__, url_prefix="/sync")


def _scope() -> list[str] | None:
    return None if current_user.role == "admin" else current_user.site_ids


def _actor() -> dict:
    return {"id": current_user.id, "username": current_user.username}


@bp.route("/")
@role_required("coordinator", "supervisor")
def index():
    db = get_db()
    scope = _scope()
    all_devices = devices.list_devices(db)
    if scope is not None:
        all_devices = [d for d in all_devices if d["site_id"] in scope]
    return render_template(
        "sync/index.html",
        conflicts=review.list_conflicts(db, scope),
        quarantine=review.list_quarantine(db, scope),
        devices=all_devices,
        newest_version=devices.newest_version(db, __version__),
        behind={d["id"] for d in devices.behind(db, __version__)},
    )


@bp.route("/conflicts/<int:conflict_id>", methods=["POST"])
@role_required("coordinator", "supervisor")
def resolve(conflict_id):
    try:
        review.resolve_conflict(get_db(), conflict_id, request.form.get("action", ""), user=_actor(), site_ids=_scope())
    except ReviewError as exc:
        return flash_and_redirect(str(exc), url_for("sync.index"), "error")
    return flash_and_redirect(_("The conflict is resolved."), url_for("sync.index"), "info")


@bp.route("/quarantine/<int:item_id>", methods=["POST"])
@role_required("coordinator", "supervisor")
def quarantined(item_id):
    action = request.form.get("action", "")
    try:
        if action == "retry":
            ok = review.retry_quarantined(
                get_db(),
                item_id,
                user=_actor(),
                site_ids=_scope(),
                instruments=formsmod.loaded(current_app.extensions).instruments,
            )
            flash(
                _("The record was applied.") if ok else _("The record still cannot be applied; see its error."),
                "info" if ok else "error",
            )
        elif action == "dismiss":
            review.dismiss_quarantined(get_db(), item_id, user=_actor(), site_ids=_scope())
            flash(_("The record was set aside; it stays in the quarantine list as dismissed."), "info")
        else:
            flash(_("Unknown action."), "error")
    except ReviewError as exc:
        flash(str(exc), "error")
    return redirect(url_for("sync.index"), 303)


@bp.app_template_filter("quarantine_reason")
def quarantine_reason(item: dict) -> str:
    """A quarantined record's reason in the reader's language (older entries kept only English text)."""
    return review.reason_text(item, _)
