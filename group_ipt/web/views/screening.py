"""Screening: present an instrument, save the answers, show the score and any safety alert."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ...base import bounds, clock
from ...base.settings import ConfigError
from ...core import referrals, screening
from ...core.screening import RiskCheckError, ScreeningError, TamperedForm
from ...formfiles import forms as formsmod
from ...formfiles.instruments import InvalidCutoff
from ..database import get_db
from ..i18n import current_language
from ..redirects import flash_and_redirect
from .participants import fail, get_participant_or_404

bp = Blueprint("screening", __name__, url_prefix="/screening")

# I18N: when a questionnaire was given
OCCASION_LABELS = {
    "screening": _l("screening (first contact)"),
    "baseline": _l("pre-group session"),
    "mid": _l("middle of the cycle"),
    "end": _l("last session"),
    "followup": _l("follow-up after the cycle"),
    "session": _l("group session"),
}
ANSWER_PREFIX = "answer_"


@bp.app_template_global()
def screening_occasion_label(occasion: str) -> str:
    """Return the words for when a questionnaire was given (the stored code if it is unknown)."""
    label = OCCASION_LABELS.get(occasion)
    return str(label) if label is not None else occasion


@bp.record_once
def check_settings(state):
    """Refuse to start on a cut-off or follow-up plan the programme cannot use."""

    app = state.app
    instruments = formsmod.loaded(app.extensions).instruments
    for instrument_id, cutoff in (app.config["ELIGIBILITY_CUTOFFS"] or {}).items():
        if instrument_id not in instruments:
            raise ConfigError(f"ELIGIBILITY_CUTOFFS: no instrument {instrument_id!r} in the forms folder.")
        try:
            instruments[instrument_id].score({}, cutoff)
        except InvalidCutoff as exc:
            raise ConfigError(f"ELIGIBILITY_CUTOFFS: {exc}.") from exc
    try:
        referrals.FollowupPlan.from_config(app.config)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def forms():
    return formsmod.loaded(current_app.extensions)


def get_instrument_or_404(instrument_id: str):
    instrument = forms().instruments.get(instrument_id)
    if instrument is None:
        fail(404, _("There is no instrument called %(id)s. Choose one from the participant's page.", id=instrument_id))
    return instrument


def risk_values(instrument) -> dict[str, set[int]]:
    """Return, per risk item, the answer values that raise an alert (marked for the early warning)."""
    return {item.id: {v for v in item.values if item.risk.matches(v)} for item in instrument.risk_items}


def _answer_settings(instrument) -> dict[str, Any]:
    """Return what saving answers to ``instrument`` takes from the programme's settings and the request."""
    return {
        "intake": forms().intake,
        "plan": referrals.FollowupPlan.from_config(current_app.config),
        "cutoff": (current_app.config["ELIGIBILITY_CUTOFFS"] or {}).get(instrument.id),
        "language": current_language().code,
    }


def render_form(participant, instrument, form, *, key: str, status: int = 200, error_field: str | None = None):
    return render_template(
        "screening/form.html",
        participant=participant,
        instrument=instrument,
        form=form,
        submission_key=key,
        occasions=OCCASION_LABELS,
        intake=forms().intake,
        risk_values=risk_values(instrument),
        today=clock.today().isoformat(),
        error_field=error_field,
    ), status


@bp.route("/<participant_id>/<instrument_id>", methods=["GET"])
def form(participant_id, instrument_id):
    participant = get_participant_or_404(participant_id)
    instrument = get_instrument_or_404(instrument_id)
    occasion = request.args.get("occasion", "screening")
    if occasion not in OCCASION_LABELS:
        occasion = "screening"
    # A link from a cycle's "measures due" names the cycle and session the answers belong to.
    link = {name: request.args[name] for name in ("cycle_id", "session_id") if request.args.get(name)}
    return render_form(participant, instrument, {"occasion": occasion, **link}, key=screening.new_submission_key())


@bp.route("/<participant_id>/<instrument_id>", methods=["POST"])
def save(participant_id, instrument_id):
    participant = get_participant_or_404(participant_id)
    instrument = get_instrument_or_404(instrument_id)
    form = request.form
    key = form.get("submission_key", "")

    def refuse(message: str, field: str | None = None):
        flash(message, "error")
        return render_form(
            participant, instrument, form, key=key or screening.new_submission_key(), status=400, error_field=field
        )

    # Hidden fields must say what the URL says: anything else is an edited or mixed-up form.
    if (
        form.get("participant_id") != participant["id"]
        or form.get("instrument_id") != instrument.id
        or form.get("instrument_version") != str(instrument.version)
    ):
        return refuse(
            _(
                "This form does not match the participant or the questionnaire it was made for "
                "(it may have been changed). Nothing was saved. Answer the questions again."
            )
        )
    if not form.get("administered_on", "").strip():
        return refuse(_("Enter the date of the screening."), "administered_on")
    try:
        administered_on = bounds.parse_date(form.get("administered_on"), field="administered_on")
    except bounds.BoundsError as exc:
        return refuse(exc.translated(_), "administered_on")
    raw = {k[len(ANSWER_PREFIX) :]: v for k, v in form.items() if k.startswith(ANSWER_PREFIX)}
    try:
        outcome = screening.save_screening(
            get_db(),
            participant=participant,
            instrument=instrument,
            raw_answers=raw,
            submission_key=key,
            actor=current_user.record,
            occasion=form.get("occasion", ""),
            administered_on=administered_on,
            risk_observed=form.get("risk_observed") == "1",
            exclusions=form.getlist("exclusion"),
            note=form.get("note"),
            cycle_id=form.get("cycle_id"),
            session_id=form.get("session_id"),
            **_answer_settings(instrument),
        )
    except TamperedForm as exc:
        return refuse(
            _("This form was changed or already used: %(reason)s Nothing was saved.", reason=exc.translated(_))
        )
    except ScreeningError as exc:
        return refuse(_("Nothing was saved. %(reason)s", reason=exc.translated(_)), exc.field)
    if not outcome.created:
        flash(_("This form had already been saved; it was not saved twice."), "info")
    return redirect(url_for("screening.result", screening_id=outcome.screening["id"]), 303)


@bp.route("/result/<screening_id>")
def result(screening_id):
    db = get_db()
    found = screening.get(db, screening_id, current_user.site_ids)
    if found is None:
        fail(404, _("This screening does not exist."))
    participant = get_participant_or_404(found["participant_id"])
    instrument = forms().instruments.get(found["instrument_id"])
    band = instrument.band_for(found["total"]) if instrument and found["total"] is not None else None
    risk_unanswered = (
        [] if instrument is None else [item for item in instrument.risk_items if found["answers"].get(item.id) is None]
    )
    next_instrument = None
    if (
        instrument is not None
        and instrument.leads_to
        and instrument.eligibility
        and found["total"] is not None
        and instrument.eligibility.is_met(found["total"], found["cutoff"])
    ):
        next_instrument = forms().instruments.get(instrument.leads_to)
    return render_template(
        "screening/result.html",
        screening=found,
        participant=participant,
        instrument=instrument,
        band=band,
        referral=referrals.for_screening(db, screening_id),
        risk_unanswered=risk_unanswered,
        risk_check=screening.risk_check_for(db, screening_id),
        next_instrument=next_instrument,
        occasions=OCCASION_LABELS,
        intake=forms().intake,
    )


def get_risk_check_or_404(check_id: str) -> dict:
    found = screening.get_risk_check(get_db(), check_id, current_user.site_ids)
    if found is None:
        fail(404, _("This safety question does not exist."))
    return found


def render_risk_check(
    check: dict, *, status: int = 200, key: str | None = None, form=None, error_field: str | None = None
):
    instrument = forms().instruments.get(check["instrument_id"])
    if instrument is None:
        fail(
            404,
            _(
                "There is no instrument called %(id)s. Choose one from the participant's page.",
                id=check["instrument_id"],
            ),
        )
    items = [instrument.item(item_id) for item_id in check["items"] if item_id in {i.id for i in instrument.items}]
    return render_template(
        "screening/risk_check.html",
        check=check,
        instrument=instrument,
        items=items,
        form=form or {},
        submission_key=key or screening.new_submission_key(),
        today=clock.today().isoformat(),
        error_field=error_field,
        risk_values=risk_values(instrument),
    ), status


@bp.route("/risk-check/<check_id>")
def risk_check(check_id):
    """Ask the risk question that was left blank, or record why it cannot be asked."""
    return render_risk_check(get_risk_check_or_404(check_id))


@bp.route("/risk-check/<check_id>/answer", methods=["POST"])
def answer_risk_check(check_id):
    check = get_risk_check_or_404(check_id)
    participant = get_participant_or_404(check["participant_id"])
    instrument = forms().instruments.get(check["instrument_id"])
    form = request.form
    key = form.get("submission_key", "")
    if instrument is None:
        fail(
            404,
            _(
                "There is no instrument called %(id)s. Choose one from the participant's page.",
                id=check["instrument_id"],
            ),
        )
    raw = {k[len(ANSWER_PREFIX) :]: v for k, v in form.items() if k.startswith(ANSWER_PREFIX)}
    try:
        outcome = screening.answer_risk_check(
            get_db(),
            check,
            raw,
            instrument=instrument,
            participant=participant,
            submission_key=key,
            actor=current_user.record,
            **_answer_settings(instrument),
        )
    except TamperedForm as exc:
        flash(
            _("This form was changed or already used: %(reason)s Nothing was saved.", reason=exc.translated(_)), "error"
        )
        return render_risk_check(check, status=400, form=form)
    except ScreeningError as exc:
        flash(_("Nothing was saved. %(reason)s", reason=exc.translated(_)), "error")
        return render_risk_check(check, status=400, key=key, form=form, error_field=exc.field)
    return redirect(url_for("screening.result", screening_id=outcome.screening["id"]), 303)


@bp.route("/risk-check/<check_id>/acknowledge", methods=["POST"])
def acknowledge_risk_check(check_id):
    check = get_risk_check_or_404(check_id)
    try:
        screening.acknowledge_risk_check(get_db(), check, current_user.record, reason=request.form.get("reason"))
    except RiskCheckError as exc:
        flash(_("Nothing was saved. %(reason)s", reason=exc.translated(_)), "error")
        return render_risk_check(check, status=400, form=request.form, error_field=exc.field)
    return flash_and_redirect(
        _("Recorded why the safety question could not be asked. Ask it at the next contact."),
        url_for("screening.result", screening_id=check["screening_id"]),
    )
