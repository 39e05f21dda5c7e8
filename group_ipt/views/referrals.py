"""Safety referrals: the alert and its steps, acknowledgement, status, follow-ups, the home panel."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from .. import bounds, clock, referrals
from ..db import get_db
from ..redirects import safe_target
from ..referrals import ReferralError

bp = Blueprint("referrals", __name__, url_prefix="/referrals")

# I18N: the status of a safety referral
STATUS_LABELS = {
    "open": _l("open"),
    "referred": _l("referred"),
    "followed_up": _l("followed up"),
    "closed": _l("closed"),
}
URGENCY_LABELS = {"urgent": _l("urgent"), "routine": _l("routine")}


HOME_OPEN_SHOWN = 20  # open referrals listed on the home page beyond the overdue ones (all on /referrals/)


@bp.app_template_global()
def home_referrals() -> dict:
    """Return the safety items for the home page of the current user's sites.

    Every unacknowledged alert and every referral with an overdue follow-up is listed; of the
    other open referrals (a busy site has dozens) the first few, with a link to all of them.
    """
    found = referrals.home_summary(get_db(), current_user.site_ids, clock.today())
    overdue = [r for r in found["open"] if r["overdue"]]
    others = [r for r in found["open"] if not r["overdue"]]
    found["shown"] = overdue + others[:max(0, HOME_OPEN_SHOWN - len(overdue))]
    found["not_shown"] = len(found["open"]) - len(found["shown"])
    return found


@bp.app_template_global()
def referral_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.app_template_global()
def urgency_label(urgency: str) -> str:
    return str(URGENCY_LABELS.get(urgency, urgency))


@bp.app_template_global()
def describe_trigger(trigger: dict) -> str:
    """Say in the user's language what raised a referral."""
    forms = current_app.extensions["group_ipt_forms"]
    if trigger["kind"] == "risk_item":
        instrument = forms.instruments.get(trigger["instrument"])
        if instrument is None:
            return _("%(instrument)s question %(item)s answered %(value)s", instrument=trigger["instrument"],
                     item=trigger["item"], value=trigger["value"])
        try:
            item = instrument.item(trigger["item"])
        except KeyError:  # the instrument file changed since the screening
            return _("%(instrument)s question %(item)s answered %(value)s", instrument=_(instrument.name),
                     item=trigger["item"], value=trigger["value"])
        number = [i.id for i in instrument.items].index(item.id) + 1
        option = item.option(trigger["value"])
        return _("%(instrument)s, question %(number)d (“%(text)s”): answered “%(answer)s”",
                 instrument=_(instrument.name), number=number, text=_(item.text),
                 answer=_(option.label) if option else trigger["value"])
    if trigger["kind"] == "risk_observed":
        return _("The facilitator observed a risk")
    if trigger["kind"] == "exclusion":
        exclusion = forms.intake.exclusion(trigger["code"]) if forms.intake else None
        label = _(exclusion.label) if exclusion else trigger["code"]
        return _("At intake: %(exclusion)s", exclusion=label)
    return _("Referred by hand: %(reason)s", reason=trigger.get("reason", ""))


@bp.app_template_global()
def safety_steps(urgency: str):
    intake = current_app.extensions["group_ipt_forms"].intake
    return intake.safety_steps[urgency] if intake else None


def get_referral_or_404(referral_id: str) -> dict:
    found = referrals.get(get_db(), referral_id, current_user.site_ids)
    if found is None:
        abort(404)
    return found


def _back(default: str) -> str:
    return safe_target(request.form.get("next"), default)


@bp.route("/")
def index():
    show_closed = request.args.get("closed") == "1"
    found = referrals.listing(get_db(), current_user.site_ids, include_closed=show_closed)
    return render_template("referrals/index.html", referrals=found, show_closed=show_closed,
                           today=clock.today().isoformat())


def render_detail(referral: dict, status: int = 200, form=None):
    db = get_db()
    allowed = [s for s in referrals.STATUSES if referrals.STATUSES.index(s) > referrals.STATUSES.index(
        referral["status"]) and (s != "closed" or current_user.has_role(*referrals.CLOSING_ROLES))]
    return render_template(
        "referrals/detail.html", referral=referral, events=referrals.events(db, referral["id"]),
        followups=referrals.followups(db, referral["id"]), allowed_statuses=allowed,
        today=clock.today().isoformat(), form=form or {},
    ), status


@bp.route("/<referral_id>")
def detail(referral_id):
    return render_detail(get_referral_or_404(referral_id))


@bp.route("/<referral_id>/acknowledge", methods=["POST"])
def acknowledge(referral_id):
    referral = get_referral_or_404(referral_id)
    referrals.acknowledge(get_db(), referral, current_user.record)
    flash(_("Alert acknowledged. Follow the steps, then record what was done on the referral."), "success")
    return redirect(_back(url_for("referrals.detail", referral_id=referral_id)), 303)


@bp.route("/<referral_id>/status", methods=["POST"])
def status(referral_id):
    referral = get_referral_or_404(referral_id)
    try:
        referrals.set_status(get_db(), referral, request.form.get("status", ""), current_user.record,
                             note=request.form.get("note"), referred_to=request.form.get("referred_to"))
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return render_detail(referral, 400, request.form)
    flash(_("The referral is now: %(status)s.", status=STATUS_LABELS[request.form["status"]]), "success")
    return redirect(url_for("referrals.detail", referral_id=referral_id), 303)


@bp.route("/<referral_id>/followups/<followup_id>", methods=["POST"])
def followup(referral_id, followup_id):
    referral = get_referral_or_404(referral_id)
    if not request.form.get("done_on", "").strip():
        flash(_("Enter the date of the contact."), "error")
        return render_detail(referral, 400, request.form)
    try:
        done_on = bounds.parse_date(request.form.get("done_on"), field="done_on")
    except bounds.BoundsError as exc:
        flash(exc.translated(_), "error")
        return render_detail(referral, 400, request.form)
    try:
        referrals.record_followup(get_db(), referral, followup_id, current_user.record,
                                  note=request.form.get("note"), done_on=done_on,
                                  plan=referrals.FollowupPlan.from_config(current_app.config))
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return render_detail(referral, 400, request.form)
    flash(_("The follow-up is recorded."), "success")
    return redirect(url_for("referrals.detail", referral_id=referral_id), 303)


@bp.route("/new/<participant_id>", methods=["POST"])
def new(participant_id):
    """Refer a person by hand (a risk seen outside a screening)."""
    from .participants import detail as participant_detail
    from .participants import get_participant_or_404

    participant = get_participant_or_404(participant_id)
    reason = request.form.get("reason", "").strip()
    try:
        referral = referrals.create(
            get_db(), participant=participant, reason=reason, triggers=[{"kind": "manual", "reason": reason}],
            urgency=request.form.get("urgency", ""), actor=current_user.record,
            plan=referrals.FollowupPlan.from_config(current_app.config),
        )
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return participant_detail(participant_id), 400
    return redirect(url_for("referrals.detail", referral_id=referral["id"]), 303)
