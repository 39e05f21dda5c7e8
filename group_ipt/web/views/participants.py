"""Participants: register, search, see one person's record, consent, status and duplicates."""

from __future__ import annotations

from typing import NoReturn

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import default_exceptions

from ...core import participants, referrals, screening
from ...core.participants import ParticipantError
from ...formfiles import consent as consentmod
from ...formfiles import forms as formsmod
from ...reporting import charts
from ...store.db import marks, row
from ..auth import user_sites
from ..database import get_db
from ..redirects import flash_and_redirect
from . import found_or_404
from .cycles import measures_due

bp = Blueprint("participants", __name__, url_prefix="/participants")

# I18N: a participant's status, as shown in lists and the status history
STATUS_LABELS = {
    "registered": _l("registered"),
    "screened": _l("screened"),
    "eligible": _l("eligible"),
    "not_eligible": _l("not eligible"),
    "referred": _l("referred"),
    "enrolled": _l("enrolled in a cycle"),
    "completed": _l("completed"),
    "dropped_out": _l("dropped out"),
}
SEX_LABELS = {"female": _l("female"), "male": _l("male"), "other": _l("other")}
CONSENT_LABELS = {
    "screening": _l("screening (answering the questionnaires)"),
    "group": _l("joining a group"),
    "data_sharing": _l("sharing anonymous data with the programme office"),
}
# Status changes a coordinator may make by hand; the rest follow screenings and cycles.
MANUAL_STATUSES = ("completed", "dropped_out", "not_eligible", "referred", "eligible")


def fail(code: int, message: str) -> NoReturn:
    """Stop with an error page that says why (the app's error handler shows ``user_message``)."""
    error = default_exceptions[code]()
    error.user_message = message  # type: ignore[attr-defined]  # read by the handlers create_app registers
    raise error


def get_participant_or_404(participant_id: str) -> dict:
    return found_or_404(participants.get(get_db(), participant_id, current_user.site_ids))


@bp.app_template_global()
def participant_status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.route("/")
def index():
    query = request.args.get("q", "")
    result = participants.search(get_db(), current_user.site_ids, query)
    if result.code_typo:
        flash(
            _(
                "No participant has the code %(code)s, and its last letter does not match its digits: "
                "a digit may be mistyped. Check the code on the paper form.",
                code=query.strip().upper(),
            ),
            "warning",
        )
    flags = participants.duplicate_flags(get_db(), current_user.site_ids)
    return render_template(
        "participants/index.html",
        query=query,
        found=result.participants,
        many_sites=len(current_user.site_ids) > 1,
        open_flags=len(flags),
    )


def consent_text():
    return formsmod.loaded(current_app.extensions).consent


def language_names() -> dict[str, str]:
    return {code: lang.name for code, lang in current_app.extensions["group_ipt_languages"].items()}


def consent_context(chosen: str | None) -> dict:
    """What a page that shows the consent text needs: the text, the wording shown, every language's name."""
    text = consent_text()
    wording = text.wording(chosen if chosen in text.languages else str(get_locale()))
    return {"consent": text, "consent_wording": wording, "consent_language_names": language_names()}


@bp.route("/new", methods=["GET", "POST"])
def new():
    """Show the registration form (GET) or register the person and their consent (POST)."""
    sites = user_sites()
    if request.method == "GET":
        return _render_new(sites, {}, {}, 200, request.args.get("consent_lang"))
    form = request.form
    site = _registration_site(sites, form)
    if site is None:
        return _render_new(sites, form, {"site_id": True} if sites else {}, 400)
    try:
        registration = _register(site, form)
    except ParticipantError as exc:
        flash(exc.translated(_), "error")
        return _render_new(sites, form, {exc.field: True}, 400)
    participant = registration.participant
    flash(
        _(
            "%(name)s is registered with the programme code %(code)s. Write the code on the paper form.",
            name=participant["name"],
            code=participant["code"],
        ),
        "success",
    )
    for other in registration.duplicates:
        flash(
            _(
                "Possible duplicate: %(other)s has the same name, village and age band. A coordinator will "
                "review it; nothing is merged.",
                other=other["code"],
            ),
            "warning",
        )
    return redirect(url_for("participants.detail", participant_id=participant["id"]), 303)


def _registration_site(sites: list[dict], form) -> dict | None:
    """Return the site the person is registered at (the user's only one, or the one chosen); flash why not."""
    if not sites:
        flash(
            _("You are not assigned to any site, so you cannot register participants. Ask an administrator."), "error"
        )
        return None
    if len(sites) == 1:
        return sites[0]
    site = next((s for s in sites if s["id"] == form.get("site_id")), None)
    if site is None:
        flash(_("Choose the site where the person is registered."), "error")
    return site


def _register(site: dict, form) -> participants.Registration:
    """Register the person of the posted form at ``site``, with the consents ticked."""
    return participants.register(
        get_db(),
        site=site,
        actor=current_user.record,
        consents=[p for p in participants.CONSENT_PURPOSES if form.get(f"consent_{p}")],
        consent_given_by=form.get("consent_given_by", ""),
        consent_text=consent_text(),
        consent_version=form.get("consent_version"),
        consent_language=form.get("consent_language"),
        name=form.get("name", ""),
        sex=form.get("sex", ""),
        age=form.get("age", ""),
        birth_year=form.get("birth_year", ""),
        village=form.get("village", ""),
        phone=form.get("phone", ""),
        language=form.get("language", ""),
    )


def _render_new(sites, form, errors, status, consent_language: str | None = None):
    return render_template(
        "participants/new.html",
        sites=sites,
        form=form,
        errors=errors,
        consent_labels=CONSENT_LABELS,
        **consent_context(consent_language or form.get("consent_language")),
    ), status


@bp.route("/<participant_id>")
def detail(participant_id):
    db = get_db()
    participant = get_participant_or_404(participant_id)
    history = screening.history(db, participant_id)
    instruments = formsmod.loaded(current_app.extensions).instruments
    return render_template(
        "participants/detail.html",
        participant=participant,
        statuses=participants.status_history(db, participant_id),
        consents=participants.consents(db, participant_id),
        current_consents=participants.current_consents(db, participant_id),
        screenings=list(reversed(history)),
        charts=_charts(history, instruments),
        referrals=referrals.for_participant(db, participant_id),
        flags=participants.duplicate_flags(db, current_user.site_ids, participant_id=participant_id),
        instruments=sorted(instruments.values(), key=lambda i: i.name),
        consent_labels=CONSENT_LABELS,
        sex_labels=SEX_LABELS,
        manual_statuses=MANUAL_STATUSES if current_user.has_role("coordinator", "supervisor") else (),
        blockers=participants.enrolment_blockers(db, participant_id),
        due_items=measures_due(participant),
        **consent_context(
            request.args.get("consent_lang")
            or consentmod.language_for(consent_text(), participant["language"], language_names())
        ),
    )


def _charts(history: list[dict], instruments: dict) -> list[dict]:
    """Return one chart of totals over time per instrument that has a total."""
    from datetime import date

    by_instrument: dict[str, list[dict]] = {}
    for entry in history:
        by_instrument.setdefault(entry["instrument_id"], []).append(entry)
    result = []
    for index, (instrument_id, entries) in enumerate(sorted(by_instrument.items())):
        instrument = instruments.get(instrument_id)
        if instrument is None or instrument.min_total is None:
            continue
        points = [charts.Point(date.fromisoformat(e["administered_on"]), e["total"], bool(e["risk"])) for e in entries]
        name = _(instrument.name)
        result.append(
            {
                "instrument": instrument,
                "svg": charts.totals_chart(
                    points,
                    low=instrument.min_total,
                    high=instrument.max_total,
                    title=_("%(instrument)s: total at each screening", instrument=name),
                    format_date=lambda d: format_date(d, "medium"),
                    cutoff=entries[-1]["cutoff"],
                    cutoff_label=_("cut-off"),
                    missing_label=_("no total (answers missing)"),
                    risk_label=_("safety risk"),
                    chart_id=f"chart-{index}",
                ),
            }
        )
    return result


@bp.route("/<participant_id>/consent", methods=["POST"])
def consent(participant_id):
    participant = get_participant_or_404(participant_id)
    purpose = request.form.get("purpose", "")
    given = request.form.get("given", "")
    if given not in ("yes", "no"):
        flash(_("Say whether the person agrees."), "error")
        return detail(participant_id), 400
    try:
        participants.record_consent(
            get_db(),
            participant,
            purpose,
            given == "yes",
            request.form.get("given_by", ""),
            current_user.record,
            consent_text=consent_text(),
            consent_version=request.form.get("consent_version"),
            consent_language=request.form.get("consent_language"),
        )
    except ParticipantError as exc:
        flash(exc.translated(_), "error")
        return detail(participant_id), 400
    return flash_and_redirect(
        _("The consent is recorded."), url_for("participants.detail", participant_id=participant_id)
    )


@bp.route("/<participant_id>/status", methods=["POST"])
def status(participant_id):
    if not current_user.has_role("coordinator", "supervisor"):
        abort(403)
    participant = get_participant_or_404(participant_id)
    new_status = request.form.get("status", "")
    reason = request.form.get("reason", "").strip()
    if new_status not in MANUAL_STATUSES:
        flash(_("Choose a status from the list."), "error")
        return detail(participant_id), 400
    if not reason or len(reason) > 500:
        flash(_("Write why the status changes (at most 500 characters)."), "error")
        return detail(participant_id), 400
    try:
        participants.set_status(get_db(), participant["id"], new_status, reason, current_user.record)
    except ParticipantError as exc:
        flash(exc.translated(_), "error")
        return detail(participant_id), 400
    return flash_and_redirect(
        _("The status is now: %(status)s.", status=STATUS_LABELS[new_status]),
        url_for("participants.detail", participant_id=participant_id),
    )


@bp.route("/duplicates")
def duplicates():
    flags = participants.duplicate_flags(get_db(), current_user.site_ids)
    return render_template("participants/duplicates.html", flags=flags)


@bp.route("/duplicates/<flag_id>", methods=["POST"])
def review_duplicate(flag_id):
    if not current_user.has_role("coordinator", "supervisor"):
        abort(403)
    db = get_db()
    if not row(
        db,
        f"select id from duplicate_flags where id = ? and site_id in ({marks(current_user.site_ids)})",
        (flag_id, *current_user.site_ids),
    ):
        abort(404)
    try:
        participants.review_duplicate(
            db, flag_id, current_user.site_ids, request.form.get("decision", ""), current_user.record
        )
    except ParticipantError as exc:
        flash(exc.translated(_), "error")
        return render_template(
            "participants/duplicates.html", flags=participants.duplicate_flags(db, current_user.site_ids)
        ), 400
    return flash_and_redirect(_("Your review is recorded. Nothing was merged."), url_for("participants.duplicates"))
