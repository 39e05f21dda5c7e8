"""Printable PDFs: rosters, paper screening forms, script booklets and cycle reports.

Each view gathers the plain data (``group_ipt.pdf.data``, limited to the
user's sites: another site's cycle answers 404), renders it in a language and
returns ``application/pdf``. The language is ``?lang=`` if given, else the
user's. ``?privacy=1`` prints codes instead of names on rosters and reports.
"""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, current_app, request
from flask_babel import force_locale, get_locale
from flask_login import current_user
from werkzeug.utils import secure_filename

from ...core import participants, referrals, users
from ...formfiles import consent as consentmod
from ...formfiles import forms as formsmod
from ...pdf import PdfLanguage, consent_form, cycle_report, referral_slip, roster, screening_form, script_booklet
from ...pdf import data as pdfdata
from ..database import get_db
from ..i18n import pdf_language

bp = Blueprint("pdf", __name__)


def _language() -> PdfLanguage:
    code = request.args.get("lang") or str(get_locale() or current_app.config["DEFAULT_LANGUAGE"])
    if code not in current_app.extensions["group_ipt_languages"]:
        abort(404)
    return pdf_language(code)


def _privacy() -> bool:
    return request.args.get("privacy", "") in ("1", "on", "true", "yes")


def _programme() -> str:
    return current_app.config["PROGRAMME_NAME"]


def _pdf(content: bytes, filename: str) -> Response:
    response = Response(content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{secure_filename(filename) or "document.pdf"}"'
    # Rosters and reports carry people's names: keep them out of every cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/cycles/<cycle_id>/roster.pdf")
def cycle_roster(cycle_id: str):
    """Print a cycle's roster and sign-in sheet."""
    try:
        data = pdfdata.roster_data(
            get_db(), cycle_id, site_ids=current_user.site_ids, programme=_programme(), privacy=_privacy()
        )
    except pdfdata.NotFound:
        abort(404)
    return _pdf(roster.render(data, _language()), f"roster-{data.cycle}.pdf")


@bp.route("/cycles/<cycle_id>/report.pdf")
def cycle_report_pdf(cycle_id: str):
    """Print a cycle's report: attendance, completion, symptom change, open referrals."""
    lang = _language()
    forms = formsmod.loaded(current_app.extensions)
    try:
        data = pdfdata.cycle_report_data(
            get_db(),
            cycle_id,
            site_ids=current_user.site_ids,
            programme=_programme(),
            protocols=forms.protocols,
            instruments=forms.instruments,
            lang=lang,
            privacy=_privacy(),
            grace_days=current_app.config["MEASURE_GRACE_DAYS"],
        )
    except pdfdata.NotFound:
        abort(404)
    return _pdf(cycle_report.render(data, lang), f"report-{data.cycle}.pdf")


@bp.route("/forms/<instrument_id>/form.pdf")
def screening_form_pdf(instrument_id: str):
    """Print a paper screening form, with its scoring guide on the back."""
    site = ""
    site_code = request.args.get("site")
    if site_code:
        found = users.get_site(get_db(), site_code)
        if found is None or found["id"] not in current_user.site_ids:
            abort(404)
        site = found["name"]
    try:
        data = pdfdata.screening_form_data(
            formsmod.loaded(current_app.extensions).instruments, instrument_id, programme=_programme(), site=site
        )
    except pdfdata.NotFound:
        abort(404)
    return _pdf(screening_form.render(data, _language()), f"form-{instrument_id}.pdf")


@bp.route("/scripts/<protocol_id>/booklet.pdf")
def script_booklet_pdf(protocol_id: str):
    """Print the scripts of a whole protocol, with a table of contents."""
    return _booklet(protocol_id, None)


@bp.route("/scripts/<protocol_id>/<int:number>/script.pdf")
def session_script_pdf(protocol_id: str, number: int):
    """Print the script of one session of a protocol."""
    return _booklet(protocol_id, number)


def _booklet(protocol_id: str, number: int | None) -> Response:
    lang = _language()
    try:
        data = pdfdata.booklet_data(
            formsmod.loaded(current_app.extensions),
            protocol_id,
            programme=_programme(),
            lang=lang,
            session=number,
            safety_contacts=referrals.safety_contacts(current_app.config["SAFETY_CONTACTS"]),
        )
    except pdfdata.NotFound:
        abort(404)
    name = f"scripts-{protocol_id}" + (f"-session-{number}" if number is not None else "") + f"-{lang.code}.pdf"
    return _pdf(script_booklet.render(data, lang), name)


@bp.route("/referrals/<referral_id>/slip.pdf")
def referral_slip_pdf(referral_id: str):
    """Print a referral's slip for the person to take to the health worker, with the safety numbers."""
    from .referrals import describe_trigger, urgency_label

    referral = referrals.get(get_db(), referral_id, current_user.site_ids)
    if referral is None:
        abort(404)
    lang = _language()
    with force_locale(lang.code):
        reasons = [describe_trigger(t) for t in referral["triggers"]]
        urgency = urgency_label(referral["urgency"])
    data = referral_slip.ReferralSlip(
        programme=_programme(),
        code=referral["participant_code"],
        name=referral["participant_name"] or "",
        urgency=urgency,
        reasons=reasons,
        referred_to=referral["referred_to"] or "",
        raised_on=lang.date(date.fromisoformat(referral["created_at"][:10])),
        raised_by=referral["created_by_name"] or "—",
        contacts=[(c["name"], c["phone"]) for c in referrals.safety_contacts(current_app.config["SAFETY_CONTACTS"])],
    )
    return _pdf(referral_slip.render(data, lang), f"referral-{referral['participant_code']}.pdf")


def _consent_text() -> consentmod.ConsentText:
    text = formsmod.loaded(current_app.extensions).consent
    assert text is not None  # forms.load_all always reads consent.yaml
    return text


def _consent_pdf(code: str | None, **person) -> Response:
    text = _consent_text()
    code = code or str(get_locale() or current_app.config["DEFAULT_LANGUAGE"])
    if code not in text.languages or code not in current_app.extensions["group_ipt_languages"]:
        abort(404)
    data = consent_form.ConsentForm(wording=text.wording(code), version=text.version, programme=_programme(), **person)
    return _pdf(consent_form.render(data, pdf_language(code)), f"consent-v{text.version}-{code}.pdf")


@bp.route("/consent.pdf")
def consent_form_pdf():
    """Print the blank consent form in ``?lang=`` (default: the user's language)."""
    return _consent_pdf(request.args.get("lang"))


@bp.route("/participants/<participant_id>/consent.pdf")
def participant_consent_pdf(participant_id: str):
    """Print a participant's consent form with their answers, in their language.

    Their language: ``?lang=``, else their preferred language if the consent text has it,
    else the language the consent was last read in, else the user's.
    """
    db = get_db()
    participant = participants.get(db, participant_id, current_user.site_ids)
    if participant is None:
        abort(404)
    names = {code: lang.name for code, lang in current_app.extensions["group_ipt_languages"].items()}
    current = participants.current_consents(db, participant_id)
    read_in = next((c["text_language"] for c in participants.consents(db, participant_id) if c["text_language"]), None)
    code = (
        request.args.get("lang") or consentmod.language_for(_consent_text(), participant["language"], names) or read_in
    )
    given_by = next((c["given_by"] for c in current.values()), "")
    return _consent_pdf(
        code,
        participant_code=participant["code"],
        participant_name=participant["name"] or "",
        answers={purpose: bool(c["given"]) for purpose, c in current.items()},
        given_by=given_by,
    )
