"""Safety referrals: the alert and its steps, acknowledgement, status, follow-ups, the home panel."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ...base import bounds, clock
from ...base.settings import ConfigError
from ...core import referrals, screening
from ...core.referrals import ReferralError
from ...formfiles import forms as formsmod
from ..database import get_db
from ..redirects import flash_and_redirect, safe_target
from . import found_or_404

bp = Blueprint("referrals", __name__, url_prefix="/referrals")

# I18N: the status of a safety referral
STATUS_LABELS = {
    "open": _l("open"),
    "referred": _l("referred"),
    "followed_up": _l("followed up"),
    "closed": _l("closed"),
}
URGENCY_LABELS = {"urgent": _l("urgent"), "routine": _l("routine")}
# I18N: how a safety referral ended (chosen when it is closed)
OUTCOME_LABELS = {
    "seen": _l("seen by a health worker"),
    "admitted": _l("admitted to hospital"),
    "declined": _l("declined help"),
    "unreachable": _l("could not be reached after repeated tries"),
    "moved": _l("moved away"),
    "died": _l("died"),
    "other": _l("other (say what in the note)"),
}


@bp.record_once
def check_settings(state):
    """Refuse to start on safety contact numbers that could not be dialled."""

    try:
        referrals.safety_contacts(state.app.config["SAFETY_CONTACTS"])
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    tries = state.app.config["REFERRAL_UNREACHABLE_TRIES"]
    if isinstance(tries, bool) or not isinstance(tries, int) or not 1 <= tries <= 20:
        raise ConfigError("REFERRAL_UNREACHABLE_TRIES must be a whole number from 1 to 20")


@bp.app_template_global()
def safety_contacts() -> list[dict]:
    """Return the programme's local emergency and referral numbers (SAFETY_CONTACTS)."""
    return referrals.safety_contacts(current_app.config["SAFETY_CONTACTS"])


@bp.app_template_global()
def outcome_label(outcome: str | None) -> str:
    return str(OUTCOME_LABELS.get(outcome or "", outcome or ""))


HOME_OPEN_SHOWN = 20  # open referrals listed on the home page beyond the overdue ones (all on /referrals/)


def home_panel() -> dict:
    """Return the safety items of the current user's sites for the home page.

    Every unacknowledged alert and every referral with an overdue follow-up is listed; of the
    other open referrals (a busy site has dozens) the first few, with a link to all of them.
    """
    found = referrals.home_summary(get_db(), current_user.site_ids, clock.today())
    found["risk_checks"] = screening.open_risk_checks(get_db(), current_user.site_ids)
    overdue = [r for r in found["open"] if r["overdue"]]
    others = [r for r in found["open"] if not r["overdue"]]
    found["shown"] = overdue + others[: max(0, HOME_OPEN_SHOWN - len(overdue))]
    found["not_shown"] = len(found["open"]) - len(found["shown"])
    return found


@bp.app_template_global()
def referral_status_label(status: str) -> str:
    if status == "urgency_raised":
        return _("made urgent")
    return str(STATUS_LABELS.get(status, status))


@bp.app_template_global()
def urgency_label(urgency: str) -> str:
    return str(URGENCY_LABELS.get(urgency, urgency))


@bp.app_template_global()
def describe_trigger(trigger: dict) -> str:
    """Say in the user's language what raised a referral."""
    forms = formsmod.loaded(current_app.extensions)
    if trigger["kind"] == "risk_item":
        instrument = forms.instruments.get(trigger["instrument"])
        if instrument is None:
            return _(
                "%(instrument)s question %(item)s answered %(value)s",
                instrument=trigger["instrument"],
                item=trigger["item"],
                value=trigger["value"],
            )
        try:
            item = instrument.item(trigger["item"])
        except KeyError:  # the instrument file changed since the screening
            return _(
                "%(instrument)s question %(item)s answered %(value)s",
                instrument=_(instrument.name),
                item=trigger["item"],
                value=trigger["value"],
            )
        number = [i.id for i in instrument.items].index(item.id) + 1
        option = item.option(trigger["value"])
        return _(
            "%(instrument)s, question %(number)d (“%(text)s”): answered “%(answer)s”",
            instrument=_(instrument.name),
            number=number,
            text=_(item.text),
            answer=_(option.label) if option else trigger["value"],
        )
    if trigger["kind"] == "risk_observed":
        return _("The facilitator observed a risk")
    if trigger["kind"] == "session_risk":
        return _("Risk noticed by the facilitator in group session %(number)s", number=trigger.get("number", "?"))
    if trigger["kind"] == "exclusion":
        exclusion = forms.intake.exclusion(trigger["code"]) if forms.intake else None
        label = _(exclusion.label) if exclusion else trigger["code"]
        return _("At intake: %(exclusion)s", exclusion=label)
    return _("Referred by hand: %(reason)s", reason=trigger.get("reason", ""))


@bp.app_template_global()
def safety_steps(urgency: str):
    intake = formsmod.loaded(current_app.extensions).intake
    return intake.safety_steps[urgency] if intake else None


def get_referral_or_404(referral_id: str) -> dict:
    return found_or_404(referrals.get(get_db(), referral_id, current_user.site_ids))


def _back(default: str) -> str:
    return safe_target(request.form.get("next"), default)


@bp.route("/")
def index():
    show_closed = request.args.get("closed") == "1"
    found = referrals.listing(get_db(), current_user.site_ids, include_closed=show_closed)
    return render_template(
        "referrals/index.html", referrals=found, show_closed=show_closed, today=clock.today().isoformat()
    )


def render_detail(referral: dict, status: int = 200, form=None):
    db = get_db()
    allowed = [
        s
        for s in referrals.STATUSES
        if referrals.STATUSES.index(s) > referrals.STATUSES.index(referral["status"])
        and (s != "closed" or current_user.has_role(*referrals.CLOSING_ROLES))
    ]
    followups = referrals.followups(db, referral["id"])
    return render_template(
        "referrals/detail.html",
        referral=referral,
        history=referrals.history(db, referral),
        followups=followups,
        contacts_done=sum(1 for f in followups if f["done_on"]),
        allowed_statuses=allowed,
        outcomes=OUTCOME_LABELS,
        today=clock.today().isoformat(),
        form=form or {},
    ), status


@bp.route("/<referral_id>")
def detail(referral_id):
    return render_detail(get_referral_or_404(referral_id))


@bp.route("/<referral_id>/acknowledge", methods=["POST"])
def acknowledge(referral_id):
    referral = get_referral_or_404(referral_id)
    referrals.acknowledge(get_db(), referral, current_user.record)
    return flash_and_redirect(
        _("Alert acknowledged. Follow the steps, then record what was done on the referral."),
        _back(url_for("referrals.detail", referral_id=referral_id)),
    )


@bp.route("/<referral_id>/status", methods=["POST"])
def status(referral_id):
    referral = get_referral_or_404(referral_id)
    try:
        referrals.set_status(
            get_db(),
            referral,
            request.form.get("status", ""),
            current_user.record,
            note=request.form.get("note"),
            referred_to=request.form.get("referred_to"),
            outcome=request.form.get("outcome") or None,
            unreachable_tries=current_app.config["REFERRAL_UNREACHABLE_TRIES"],
        )
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return render_detail(referral, 400, request.form)
    return flash_and_redirect(
        _("The referral is now: %(status)s.", status=STATUS_LABELS[request.form["status"]]),
        url_for("referrals.detail", referral_id=referral_id),
    )


@bp.route("/<referral_id>/urgency", methods=["POST"])
def urgency(referral_id):
    """Make a routine referral urgent (the facilitator's or supervisor's judgement)."""
    referral = get_referral_or_404(referral_id)
    try:
        referrals.raise_urgency(get_db(), referral, current_user.record, note=request.form.get("note"))
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return render_detail(referral, 400, request.form)
    return flash_and_redirect(
        _("The referral is now urgent: your supervisor sees it on the list of concerns."),
        url_for("referrals.detail", referral_id=referral_id),
    )


@bp.route("/<referral_id>/slip")
def slip(referral_id):
    """The referral slip to print and give to the person or the health worker."""
    referral = get_referral_or_404(referral_id)
    return render_template("referrals/slip.html", referral=referral, today=clock.today())


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
        referrals.record_followup(
            get_db(),
            referral,
            followup_id,
            current_user.record,
            note=request.form.get("note"),
            done_on=done_on,
            plan=referrals.FollowupPlan.from_config(current_app.config),
        )
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return render_detail(referral, 400, request.form)
    return flash_and_redirect(_("The follow-up is recorded."), url_for("referrals.detail", referral_id=referral_id))


@bp.route("/new/<participant_id>", methods=["POST"])
def new(participant_id):
    """Refer a person by hand (a risk seen outside a screening)."""
    from .participants import detail as participant_detail
    from .participants import get_participant_or_404

    participant = get_participant_or_404(participant_id)
    reason = request.form.get("reason", "").strip()
    try:
        referral = referrals.create(
            get_db(),
            participant=participant,
            reason=reason,
            triggers=[{"kind": "manual", "reason": reason}],
            urgency=request.form.get("urgency", ""),
            actor=current_user.record,
            plan=referrals.FollowupPlan.from_config(current_app.config),
        )
    except ReferralError as exc:
        flash(exc.translated(_), "error")
        return participant_detail(participant_id), 400
    return redirect(url_for("referrals.detail", referral_id=referral["id"]), 303)
