"""Take a session: one page for attendance, symptom checks, instruments due, note and fidelity.

Every member starts as "present" on a new sheet (most members come to most
sessions, so the facilitator changes only the few who did not); on a make-up
sheet nobody is preselected, since only those who missed the session come.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from ...base import bounds, clock
from ...base.errors import N_, DomainError
from ...core import cycles, referrals, sessions
from ...core.sessions import SessionEntry, StaleSession
from ...formfiles import forms as formsmod
from ...store.db import rows
from ..auth import role_required
from ..database import get_db
from ..redirects import flash_and_redirect
from . import found_or_404
from .cycles import cycle_of, protocols, tr

bp = Blueprint("sessions", __name__, url_prefix="/sessions")


def session_or_404(session_id: str) -> tuple[dict, dict]:
    session = found_or_404(cycles.get_session(get_db(), session_id, current_user.site_ids))
    return session, cycle_of(session)


def parse_entry(
    form, people: list[dict], session: dict, checklist_ids: list[str], had_fidelity: bool
) -> tuple[SessionEntry, cycles.CycleError | None, list[str]]:
    """Read the sheet; return it, the error of a rating that is not a whole number (kept out of the entry),
    and the names of members not marked present whose symptom answers were left out.

    A member marked absent or excused has no symptom check: the sheet hides those answers,
    and answers chosen before the member was marked absent are not stored.
    """
    attendance, checks, plans, risks = {}, {}, {}, set()
    error = None
    dropped = []
    for m in people:
        status = form.get(f"att-{m['id']}", "")
        if status:
            attendance[m["id"]] = status
        trend = form.get(f"trend-{m['id']}") or None
        rating_text = (form.get(f"rating-{m['id']}") or "").strip()
        rating = None
        if rating_text:
            if rating_text.isascii() and rating_text.isdigit() and len(rating_text) <= 3:
                rating = int(rating_text)
            elif error is None:
                error = cycles.CycleError(
                    N_("The rating of %(name)s must be a whole number from 0 to 10."), name=m["name"]
                )
        if (trend or rating is not None) and attendance.get(m["id"]) not in ("present", "late"):
            dropped.append(m["name"])
        elif trend or rating is not None:
            checks[m["id"]] = (trend, rating)
        if form.get(f"risk-{m['id']}") == "1":
            risks.add(m["id"])
        if session["kind"] == "pre-group" or (session["number"] == 0 and session["kind"] == "makeup"):
            plans[m["id"]] = (
                form.get(f"area-{m['id']}") or None,
                form.get(f"area2-{m['id']}") or None,
                form.get(f"goals-{m['id']}", ""),
            )
    ticked = {i: form.get(f"fid-{i}") == "1" for i in checklist_ids}
    fidelity = ticked if any(ticked.values()) or had_fidelity else None
    return SessionEntry(attendance, checks, form.get("note", ""), fidelity, plans, risks), error, dropped


def render_sheet(
    session, cycle, entry: SessionEntry, *, version: int, status: int = 200, differences=(), draft: dict | None = None
):
    db = get_db()
    protocol = cycles.protocol_of(cycle, protocols())
    people = sessions.expected_members(db, session)
    plan = next((p for p in protocol.sessions if p.number == session["number"]), None)
    return render_template(
        "sessions/take.html",
        session=session,
        cycle=cycle,
        protocol=protocol,
        plan=plan,
        people=people,
        entry=entry,
        version=version,
        differences=differences,
        risk_marked=sessions.risk_marked(db, session["id"]),
        due=sessions.instruments_today(db, session, protocol, grace_days=current_app.config["MEASURE_GRACE_DAYS"]),
        instruments=formsmod.loaded(current_app.extensions).instruments,
        future=session["scheduled_date"] > clock.today().isoformat(),
        draft=draft,
    ), status


@bp.route("/today")
def today():
    """Go straight to my session of today, if I have one."""
    found = rows(
        get_db(),
        "select x.id from sessions x join cycle_facilitators f on f.cycle_id = x.cycle_id"
        " where f.user_id = ? and x.scheduled_date = ? and x.status != 'cancelled' order by x.start_time",
        (current_user.id, clock.today().isoformat()),
    )
    if not found:
        return flash_and_redirect(_("You have no session today."), url_for("home.index"), "info")
    return redirect(url_for("sessions.take", session_id=found[0]["id"]), 303)


@bp.route("/<session_id>", methods=["GET", "POST"])
@role_required("facilitator", "coordinator", "supervisor")
def take(session_id):
    """Show a session's attendance sheet (GET) or save it (POST)."""
    db = get_db()
    session, cycle = session_or_404(session_id)
    protocol = cycles.protocol_of(cycle, protocols())
    people = sessions.expected_members(db, session)
    if request.method == "GET":
        return _show_sheet(db, session, cycle, protocol, people)
    return _save_sheet(db, session, cycle, protocol, people)


def _show_sheet(db, session: dict, cycle: dict, protocol, people: list[dict]):
    """Render the sheet: the user's unsaved draft if any, else what is saved (all present on a new sheet)."""
    draft = sessions.load_draft(db, session["id"], current_user.id)
    if session["status"] == "cancelled":
        flash(_("This session was cancelled; attendance cannot be recorded for it."), "warning")
    elif draft is not None:
        had_fidelity = sessions.saved_entry(db, session["id"], current_user.id).fidelity is not None
        entry = parse_entry(
            MultiDict(draft["fields"]), people, session, [i.id for i in protocol.fidelity_checklist], had_fidelity
        )[0]
        return render_sheet(session, cycle, entry, version=draft["version"], draft=draft)
    entry = sessions.saved_entry(db, session["id"], current_user.id)
    if session["status"] != "held" and session["kind"] != "makeup":
        entry.attendance = {m["id"]: "present" for m in people}
    return render_sheet(session, cycle, entry, version=session["version"])


def _save_sheet(db, session: dict, cycle: dict, protocol, people: list[dict]):
    """Save the posted sheet in one write; on a conflict or an error show it again with what was typed."""
    try:
        version = bounds.parse_int(request.form.get("version"), field="version")
    except bounds.BoundsError:
        abort(400)
    if request.form.get("give"):
        return give_questionnaire(session, people, protocol, version)
    had_fidelity = sessions.saved_entry(db, session["id"], current_user.id).fidelity is not None
    entry, error, dropped = parse_entry(
        request.form, people, session, [i.id for i in protocol.fidelity_checklist], had_fidelity
    )
    try:
        if error is not None:
            raise error
        unknown = [k for k in request.form if k.startswith("att-") and k[4:] not in {m["id"] for m in people}]
        if unknown:
            raise cycles.CycleError(N_("Someone on this form is not a member of this cycle; reload the page."))
        saved = sessions.record_session(
            db,
            session["id"],
            entry,
            expected_version=version,
            protocols=protocols(),
            actor=current_user.record,
            today=clock.today(),
            plan=referrals.FollowupPlan.from_config(current_app.config),
        )
    except StaleSession as exc:
        flash(tr(exc), "error")
        return render_sheet(
            session, cycle, entry, version=exc.current_version, status=409, differences=[tr(d) for d in exc.differences]
        )
    except DomainError as exc:
        flash(tr(exc), "error")
        return render_sheet(session, cycle, entry, version=version, status=400)
    return _saved(session, cycle, saved, dropped)


def _saved(session: dict, cycle: dict, saved: dict, dropped: list[str]):
    """Say the session is saved and go to the first new alert, else back to the cycle's sessions."""
    flash(_("Session saved: %(title)s.", title=cycles.session_title(cycle, session, _)), "success")
    if dropped:
        flash(
            _("No symptom check was stored for members not marked present: %(names)s.", names=", ".join(dropped)),
            "info",
        )
    if saved["risk_referrals"]:
        # Straight to the alert and its steps, as after a risk answer.
        return redirect(url_for("referrals.detail", referral_id=saved["risk_referrals"][0]["id"]), 303)
    return redirect(url_for("cycles.show", cycle_id=cycle["id"]) + "#sessions", 303)


# Fields of the sheet a draft keeps (never the CSRF token or the button that was pressed).
DRAFT_PREFIXES = ("att-", "trend-", "rating-", "area-", "area2-", "goals-", "fid-")


def give_questionnaire(session: dict, people: list[dict], protocol, version: int):
    """Keep the sheet as a draft and go to a questionnaire due today; its result page leads back."""
    db = get_db()
    if session["status"] == "cancelled" or session["scheduled_date"] > clock.today().isoformat():
        abort(400)
    try:
        participant_id, instrument_id = request.form["give"].split("|", 1)
    except ValueError:
        abort(400)
    due = sessions.instruments_today(db, session, protocol, grace_days=current_app.config["MEASURE_GRACE_DAYS"])
    found = next(
        (
            d
            for d in due
            if d["instrument_id"] == instrument_id and any(m["participant_id"] == participant_id for m in d["members"])
        ),
        None,
    )
    if found is None:
        abort(400)
    fields = {k: v for k, v in request.form.items() if k == "note" or k.startswith(DRAFT_PREFIXES)}
    try:
        sessions.save_draft(db, session["id"], current_user.id, fields, version=version)
    except DomainError as exc:
        return flash_and_redirect(tr(exc), url_for("sessions.take", session_id=session["id"]), "error")
    return redirect(
        url_for(
            "screening.form",
            participant_id=participant_id,
            instrument_id=instrument_id,
            occasion=found["occasion"],
            cycle_id=session["cycle_id"],
            session_id=session["id"],
        ),
        303,
    )


@bp.route("/<session_id>/draft/discard", methods=["POST"])
@role_required("facilitator", "coordinator", "supervisor")
def discard_draft(session_id):
    """Drop my unsaved marks and show the sheet as it was saved."""
    session, _cycle = session_or_404(session_id)
    sessions.discard_draft(get_db(), session["id"], current_user.id)
    return flash_and_redirect(
        _("Your unsaved marks were discarded; the sheet shows what is saved."),
        url_for("sessions.take", session_id=session["id"]),
        "info",
    )
