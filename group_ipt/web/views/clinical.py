"""A member's clinical record: pre-group session, during the cycle, termination.

Who sees it is decided in :mod:`group_ipt.core.clinical` (``can_see_record``): anyone
else gets 404, exactly as for a record that does not exist. Every view of the
record is written to the audit log.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from ...base import clock
from ...base.errors import DomainError
from ...core import clinical, cycles, referrals
from ...core.clinical import ClinicalError
from ...formfiles import forms as formsmod
from ..database import get_db
from . import found_or_404
from .cycles import cycle_of, protocols, tr

bp = Blueprint("clinical", __name__, url_prefix="/members")

# I18N: whether a person in the interpersonal inventory is close to the member
CLOSENESS_LABELS = {"close": _l("close"), "distant": _l("distant")}
# I18N: what a relationship in the interpersonal inventory is like
QUALITY_LABELS = {"supportive": _l("supportive"), "conflicted": _l("conflicted"), "mixed": _l("mixed")}
# I18N: how the member's mood changed with an event on the timeline
MOOD_LABELS = {"lower": _l("mood went down"), "same": _l("no change in mood"), "better": _l("mood got better")}
PROGRESS_LABELS = {
    # I18N: progress on a member's personal goals
    "none": _l("no progress yet"),
    "some": _l("some progress"),
    "good": _l("good progress"),
    "achieved": _l("goal reached"),
}
DECISION_LABELS = {
    # I18N: what happens after the cycle for a member
    "well": _l("completed and well"),
    "extend": _l("extend with extra sessions"),
    "refer": _l("refer elsewhere"),
    "maintenance": _l("monthly maintenance sessions"),
}


@bp.app_context_processor
def labels():
    return {
        "closeness_labels": CLOSENESS_LABELS,
        "quality_labels": QUALITY_LABELS,
        "mood_labels": MOOD_LABELS,
        "progress_labels": PROGRESS_LABELS,
        "decision_labels": DECISION_LABELS,
    }


def member_or_404(member_id: str) -> dict:
    return found_or_404(clinical.visible_member(get_db(), member_id, current_user.record))


def editable_member_or_404(member_id: str) -> dict:
    member = member_or_404(member_id)
    if not clinical.can_edit_record(get_db(), current_user.record, member):
        abort(403)
    return member


def plan() -> referrals.FollowupPlan:
    return referrals.FollowupPlan.from_config(current_app.config)


def back(member: dict, anchor: str):
    return redirect(url_for("clinical.record", member_id=member["id"]) + anchor, 303)


def render_record(member_id: str, status: int = 200):
    db = get_db()
    data = clinical.open_record(db, member_id, current_user.record)
    if data is None:
        abort(404)
    member = data["member"]
    cycle = cycle_of(member)
    cycle_sessions = [s for s in cycles.sessions(db, cycle["id"]) if s["status"] != "cancelled"]
    protocol = protocols().get(cycle["protocol_id"])
    last_session = next((s for s in reversed(cycle_sessions) if s["kind"] == "group"), None)
    end_instruments: tuple[str, ...] = ()
    if protocol is not None and last_session is not None:
        try:
            end_instruments = protocol.instruments_due(last_session["number"]) or protocol.instruments_due(0)
        except KeyError:
            end_instruments = ()
    return render_template(
        "clinical/record.html",
        **data,
        cycle=cycle,
        protocol=protocol,
        past_sessions=[s for s in cycle_sessions if s["scheduled_date"] <= clock.today().isoformat()],
        can_edit=clinical.can_edit_record(db, current_user.record, member),
        instruments=formsmod.loaded(current_app.extensions).instruments,
        last_session=last_session,
        end_instruments=end_instruments,
        max_extra=clinical.MAX_EXTRA_SESSIONS,
        form=request.form if status != 200 else {},
    ), status


def failed(member: dict, exc: DomainError):
    flash(tr(exc), "error")
    return render_record(member["id"], 400)


def change_record(member_id: str, anchor: str, change, /, *, saved: str | None = None, **fields):
    """Make one change to the member's record as the current user and go back to its section.

    ``change`` is the core function, called with the member, the actor and ``fields``; a
    refusal shows the record again with the message and the form as typed.
    """
    member = editable_member_or_404(member_id)
    try:
        change(get_db(), member, actor=current_user.record, **fields)
    except DomainError as exc:
        return failed(member, exc)
    if saved:
        flash(saved, "success")
    return back(member, anchor)


@bp.route("/<member_id>/record")
def record(member_id):
    return render_record(member_id)


@bp.route("/<member_id>/record/pregroup", methods=["POST"])
def pregroup(member_id):
    member = editable_member_or_404(member_id)
    form = request.form
    consent = {"1": True, "0": False}.get(form.get("group_consent", ""))
    try:
        clinical.save_pregroup(
            get_db(),
            member,
            actor=current_user.record,
            plan=plan(),
            screening_id=form.get("screening_id") or None,
            problem_area=form.get("problem_area"),
            problem_area_2=form.get("problem_area_2"),
            formulation=form.get("formulation", ""),
            goals=form.get("goals", ""),
            medication_assessment=form.get("medication_assessment"),
            group_consent=consent,
            today=clock.today(),
        )
    except DomainError as exc:
        return failed(member, exc)
    flash(_("The pre-group record is saved."), "success")
    if form.get("medication_assessment") == "yes":
        flash(_("A referral for a medication assessment is open on the referrals page."), "info")
    return back(member, "#pregroup")


@bp.route("/<member_id>/record/inventory", methods=["POST"])
def add_person(member_id):
    form = request.form
    return change_record(
        member_id,
        "#inventory",
        clinical.add_person,
        name=form.get("person_name", ""),
        relationship=form.get("relationship", ""),
        closeness=form.get("closeness"),
        quality=form.get("quality"),
        recent_change=form.get("recent_change", ""),
    )


@bp.route("/<member_id>/record/timeline", methods=["POST"])
def add_event(member_id):
    form = request.form
    return change_record(
        member_id,
        "#timeline",
        clinical.add_event,
        happened=form.get("happened", ""),
        event=form.get("event", ""),
        mood=form.get("mood"),
    )


@bp.route("/<member_id>/record/<kind>/<entry_id>/delete", methods=["POST"])
def remove(member_id, kind, entry_id):
    member = editable_member_or_404(member_id)
    table = {"inventory": "inventory_people", "timeline": "timeline_events"}.get(kind)
    if table is None:
        abort(404)
    try:
        clinical.remove_entry(get_db(), member, table, entry_id, actor=current_user.record)
    except ClinicalError as exc:
        return failed(member, exc)
    return back(member, f"#{kind}")


@bp.route("/<member_id>/record/problem-area", methods=["POST"])
def problem_area(member_id):
    form = request.form
    return change_record(
        member_id,
        "#during",
        clinical.revise_problem_area,
        saved=_("The problem area is changed; the earlier one stays in the history."),
        problem_area=form.get("problem_area"),
        problem_area_2=form.get("problem_area_2"),
        reason=form.get("reason", ""),
        formulation=form.get("formulation", ""),
        session_id=form.get("session_id") or None,
    )


@bp.route("/<member_id>/record/goal-progress", methods=["POST"])
def goal_progress(member_id):
    form = request.form
    return change_record(
        member_id,
        "#during",
        clinical.record_goal_progress,
        session_id=form.get("session_id", ""),
        progress=form.get("progress", ""),
        note=form.get("note", ""),
        today=clock.today(),
    )


@bp.route("/<member_id>/record/relapse-plan", methods=["POST"])
def relapse_plan(member_id):
    form = request.form
    return change_record(
        member_id,
        "#termination",
        clinical.save_relapse_plan,
        saved=_("The relapse-prevention plan is saved."),
        warning_signs=form.get("warning_signs", ""),
        people=form.get("people", ""),
        actions=form.get("actions", ""),
    )


@bp.route("/<member_id>/record/outcome", methods=["POST"])
def outcome(member_id):
    member = editable_member_or_404(member_id)
    form = request.form
    extra = form.get("extra_sessions", "").strip()
    try:
        result = clinical.decide_outcome(
            get_db(),
            member,
            actor=current_user.record,
            decision=form.get("decision", ""),
            note=form.get("note", ""),
            protocols=protocols(),
            plan=plan(),
            extra_sessions=int(extra) if extra.isascii() and extra.isdigit() and len(extra) <= 3 else 0,
            today=clock.today(),
        )
    except DomainError as exc:
        return failed(member, exc)
    flash(_("The outcome decision is saved."), "success")
    if result["sessions_added"]:
        flash(
            ngettext(
                "%(n)d session was added to the cycle.",
                "%(n)d sessions were added to the cycle.",
                result["sessions_added"],
                n=result["sessions_added"],
            ),
            "info",
        )
    return back(member, "#termination")
