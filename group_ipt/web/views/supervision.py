"""Supervision: the supervisor's overview, one facilitator's page, rating an observed session,
weekly supervision logs, and who supervises whom (coordinators)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ...base import clock
from ...base.errors import N_, DomainError
from ...base.settings import ConfigError
from ...core import cycles, referrals, screening, supervision
from ...core.supervision import SupervisionError
from ...formfiles import forms as formsmod
from ...reporting import charts
from ...store.db import row
from ..auth import role_required
from ..database import get_db
from ..redirects import flash_and_redirect
from . import found_or_404, record_links
from .cycles import cycle_of, protocols, tr

bp = Blueprint("supervision", __name__, url_prefix="/supervision")

# I18N: the two parts of a supervisor's rating of a session
SECTION_LABELS = {"adherence": _l("adherence"), "competence": _l("competence")}
OVERSEERS = ("supervisor", "coordinator")


@bp.record_once
def check_settings(state):

    threshold = state.app.config["SUPERVISION_ADHERENCE_THRESHOLD"]
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 100
    ):
        raise ConfigError("SUPERVISION_ADHERENCE_THRESHOLD must be a percentage from 0 to 100.")
    points = state.app.config["SUPERVISION_WORSENING_POINTS"]
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ConfigError("SUPERVISION_WORSENING_POINTS must be a whole number from 1.")


@bp.app_context_processor
def supervision_labels():
    return {"section_labels": SECTION_LABELS}


def rating_form():
    form = formsmod.loaded(current_app.extensions).ratings.get(current_app.config["SUPERVISION_RATING_FORM"])
    if form is None:
        flash(
            _(
                "No rating form %(id)s in the forms folder (forms/ratings/).",
                id=current_app.config["SUPERVISION_RATING_FORM"],
            ),
            "error",
        )
    return form


def threshold() -> float:
    configured = current_app.config["SUPERVISION_ADHERENCE_THRESHOLD"]
    if configured is not None:
        return float(configured)
    form = formsmod.loaded(current_app.extensions).ratings.get(current_app.config["SUPERVISION_RATING_FORM"])
    return form.threshold if form else 0.0


def options() -> dict:
    return {
        "threshold": threshold(),
        "today": clock.today(),
        "due_days": current_app.config["FOLLOWUP_DUE_DAYS"],
        "worsening_points": current_app.config["SUPERVISION_WORSENING_POINTS"],
    }


def adherence_chart(summary: supervision.FacilitatorSummary, chart_id: str):
    points = [charts.Point(date.fromisoformat(r["observed_on"]), r["percent"], bool(r["low"])) for r in summary.ratings]
    if not any(p.total is not None for p in points):
        return None
    return charts.totals_chart(
        points,
        low=0,
        high=100,
        title=_("Adherence of %(name)s over time (%%)", name=summary.facilitator["display_name"]),
        format_date=lambda d: format_date(d, "short"),
        cutoff=summary.threshold,
        cutoff_label=_("threshold %(n)s%%", n=int(summary.threshold)),
        missing_label=_("incomplete"),
        risk_label=_("low adherence"),
        chart_id=chart_id,
    )


@bp.route("/")
@role_required(*OVERSEERS)
def index():
    db = get_db()
    summaries = supervision.overview(db, current_user.record, current_user.site_ids, protocols(), **options())
    chart_list = {s.facilitator["id"]: adherence_chart(s, f"chart-{i}") for i, s in enumerate(summaries)}
    return render_template(
        "supervision/index.html",
        summaries=summaries,
        chart_list=chart_list,
        record_links=record_links(c["member"] for s in summaries for c in s.concerns),
        threshold=threshold(),
        can_rate=current_user.has_role("supervisor"),
        urgent=referrals.concerns(db, current_user.site_ids, clock.today()),
        risk_checks=screening.open_risk_checks(db, current_user.site_ids),
    )


def facilitator_or_404(user_id: str) -> dict:
    db = get_db()
    if not supervision.oversees(db, current_user.record, user_id, current_user.site_ids):
        abort(404)
    return found_or_404(row(db, "select id, display_name, username from users where id = ?", (user_id,)))


@bp.route("/facilitators/<user_id>")
@role_required(*OVERSEERS)
def facilitator(user_id):
    db = get_db()
    person = facilitator_or_404(user_id)
    sites = supervision.supervision_sites(db, current_user.record, user_id, current_user.site_ids)
    summary = supervision.facilitator_summary(db, person, sites, protocols(), **options())
    return render_template(
        "supervision/facilitator.html",
        summary=summary,
        chart=adherence_chart(summary, "chart"),
        record_links=record_links(c["member"] for c in summary.concerns),
        can_rate=current_user.has_role("supervisor"),
        cycles_led=cycles.list_cycles(db, sites, user_id=user_id),
    )


def session_or_404(session_id: str) -> tuple[dict, dict]:
    db = get_db()
    session = found_or_404(cycles.get_session(db, session_id, current_user.site_ids))
    if not supervision.can_rate(db, current_user.record, session):
        abort(403)
    return session, cycle_of(session)


def session_phase(session: dict, cycle: dict) -> str | None:
    """Return the protocol phase of a session (a make-up has its session's), or None when unknown."""
    try:
        return cycles.protocol_of(cycle, protocols()).phase_of(session["number"])
    except (KeyError, LookupError, ValueError):
        return None


def render_rating(session, cycle, form, values: dict, status: int = 200):
    phase = session_phase(session, cycle)
    return render_template(
        "supervision/rate.html",
        session=session,
        cycle=cycle,
        form=form,
        values=values,
        items=form.items_for(phase),
        phase=phase,
        facilitators=cycles.facilitators(get_db(), cycle["id"]),
        saved=supervision.get_rating(get_db(), session["id"], current_user.id),
        today=clock.today().isoformat(),
    ), status


@bp.route("/sessions/<session_id>/rate", methods=["GET", "POST"])
@role_required("supervisor")
def rate(session_id):
    session, cycle = session_or_404(session_id)
    form = rating_form()
    if form is None:
        return redirect(url_for("supervision.index"), 303)
    if request.method == "GET":
        saved = supervision.get_rating(get_db(), session_id, current_user.id)
        values = {
            **(saved["answers"] if saved else {}),
            "observed_on": saved["observed_on"] if saved else min(session["scheduled_date"], clock.today().isoformat()),
            "note": saved["note"] if saved else "",
        }
        return render_rating(session, cycle, form, values)
    phase = session_phase(session, cycle)
    answers = {item.id: request.form.get(f"item-{item.id}", "") for item in form.items_for(phase)}
    try:
        observed_on = cycles.parse_date(request.form.get("observed_on", ""))
        rating = supervision.save_rating(
            get_db(),
            session,
            form,
            answers,
            actor=current_user.record,
            observed_on=observed_on,
            note=request.form.get("note", ""),
            today=clock.today(),
            phase=phase,
        )
    except DomainError as exc:
        flash(tr(exc), "error")
        return render_rating(session, cycle, form, request.form, 400)
    if rating["complete"]:
        flash(_("Rating saved: adherence %(percent)s%%.", percent=rating["percent"]), "success")
    else:
        flash(
            ngettext(
                "Rating saved as incomplete: %(num)d item is blank, so it has no score. Fill it in when you can.",
                "Rating saved as incomplete: %(num)d items are blank, so it has no score. Fill them in when you can.",
                len(rating["missing"]),
            ),
            "warning",
        )
    leader = cycles.facilitators(get_db(), cycle["id"])
    if leader:
        return redirect(url_for("supervision.facilitator", user_id=leader[0]["id"]), 303)
    return redirect(url_for("supervision.index"), 303)


@bp.route("/logs/new", methods=["GET", "POST"])
@role_required("supervisor")
def new_log():
    db = get_db()
    facilitator_id = request.values.get("facilitator_id", "")
    people = supervision.supervised(db, current_user.record, current_user.site_ids)
    chosen = next((p for p in people if p["id"] == facilitator_id), None)
    led = cycles.list_cycles(db, current_user.site_ids, user_id=facilitator_id) if chosen else []
    context = {"people": people, "chosen": chosen, "led": led, "today": clock.today().isoformat()}
    if request.method == "GET":
        return render_template("supervision/log.html", values={"held_on": clock.today().isoformat()}, **context)
    try:
        if chosen is None:
            raise SupervisionError(N_("Choose a facilitator you supervise."), field="facilitator_id")
        sites = supervision.supervision_sites(db, current_user.record, chosen["id"], current_user.site_ids)
        supervision.add_log(
            db,
            supervisor=current_user.record,
            facilitator_id=chosen["id"],
            site_id=sites[0],
            held_on=cycles.parse_date(request.form.get("held_on", "")),
            cycle_ids=request.form.getlist("cycle_ids"),
            cases=request.form.get("cases", ""),
            actions=request.form.get("actions", ""),
            today=clock.today(),
        )
    except DomainError as exc:
        flash(tr(exc), "error")
        return render_template("supervision/log.html", values=request.form, **context), 400
    return flash_and_redirect(
        _("The supervision meeting is saved."), url_for("supervision.facilitator", user_id=chosen["id"]) + "#logs"
    )


@bp.route("/assignments", methods=["GET", "POST"])
@role_required("coordinator")
def assignments():
    db = get_db()
    status = 200
    if request.method == "POST":
        try:
            site_id = request.form.get("site_id", "")
            if site_id not in current_user.site_ids:
                raise SupervisionError(N_("Choose the site."), field="site_id")
            supervision.assign(
                db,
                supervisor_id=request.form.get("supervisor_id", ""),
                facilitator_id=request.form.get("facilitator_id", ""),
                site_id=site_id,
                actor=current_user.record,
            )
        except DomainError as exc:
            flash(tr(exc), "error")
            status = 400
        else:
            return flash_and_redirect(
                _("The facilitator is assigned to the supervisor."), url_for("supervision.assignments")
            )
    sites = current_user.site_ids
    return render_template(
        "supervision/assignments.html",
        found=supervision.assignments(db, sites),
        supervisors=supervision.people_of_sites(db, sites, ("supervisor",)),
        facilitators=supervision.people_of_sites(db, sites, ("facilitator", "coordinator", "supervisor")),
        sites=[row(db, "select * from sites where id = ?", (s,)) for s in sites],
    ), status


@bp.route("/assignments/<assignment_id>/delete", methods=["POST"])
@role_required("coordinator")
def unassign(assignment_id):
    try:
        supervision.unassign(get_db(), assignment_id, current_user.site_ids, actor=current_user.record)
    except DomainError as exc:
        flash(tr(exc), "error")
    return redirect(url_for("supervision.assignments"), 303)
