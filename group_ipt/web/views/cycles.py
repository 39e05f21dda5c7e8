"""Group cycles: list, create, the cycle page, moving sessions, members, follow-ups, holidays, calendar."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ...base import clock
from ...base.errors import N_, DomainError
from ...core import cycles, followup, users
from ...core.cycles import CycleError, Message
from ...formfiles import forms as formsmod
from ..auth import role_required, user_sites
from ..database import get_db
from . import found_or_404, record_links

bp = Blueprint("cycles", __name__)

# I18N: kind of group, as chosen when a cycle is created
GROUP_TYPE_LABELS = {"women": _l("women"), "men": _l("men"), "mixed": _l("mixed"), "adolescents": _l("adolescents")}
PROBLEM_AREA_LABELS = {code: _l(text) for code, text in cycles.PROBLEM_AREA_LABELS.items()}
ATTENDANCE_LABELS = {"present": _l("present"), "absent": _l("absent"), "excused": _l("excused"), "late": _l("late")}
TREND_LABELS = {"better": _l("better"), "same": _l("same"), "worse": _l("worse")}
SESSION_STATUS_LABELS = {"scheduled": _l("planned"), "held": _l("held"), "cancelled": _l("cancelled")}
MEMBER_STATUS_LABELS = {
    "active": _l("active"),
    "completed": _l("completed"),
    "withdrawn": _l("withdrawn"),
    "transferred": _l("transferred"),
    "dropped_out": _l("dropped out"),
    "on_track": _l("on track"),
    "dropping_out": _l("cannot complete any more"),
}
MEASURE_STATUS_LABELS = {"done": _l("done"), "due": _l("due"), "overdue": _l("overdue"), "upcoming": _l("upcoming")}
OCCASION_LABELS = {
    "baseline": _l("pre-group session"),
    "mid": _l("middle of the cycle"),
    "end": _l("last session"),
    "followup": _l("follow-up after the cycle"),
}
CHANGE_LABELS = {
    "moved": _l("moved"),
    "cancelled": _l("cancelled"),
    "makeup_added": _l("make-up added"),
    "closed_early": _l("cancelled: cycle closed early"),
}


def tr(message: Message | DomainError) -> str:
    """Translate a core message or error, showing its dates in the user's language."""
    msgid = message.msgid if isinstance(message, Message) else message.message
    params = {k: format_date(v) if isinstance(v, date) else ("" if v is None else v) for k, v in message.params.items()}
    if isinstance(msgid, tuple):
        return ngettext(*msgid, message.params["count"], **params)
    return _(msgid, **params)


def translate(msgid: str, **params) -> str:
    return _(msgid, **params)


@bp.app_context_processor
def labels():
    return {
        "group_type_labels": GROUP_TYPE_LABELS,
        "problem_area_labels": PROBLEM_AREA_LABELS,
        "attendance_labels": ATTENDANCE_LABELS,
        "trend_labels": TREND_LABELS,
        "session_status_labels": SESSION_STATUS_LABELS,
        "member_status_labels": MEMBER_STATUS_LABELS,
        "measure_status_labels": MEASURE_STATUS_LABELS,
        "occasion_labels": OCCASION_LABELS,
        "change_labels": CHANGE_LABELS,
    }


@bp.app_template_global()
def session_title(cycle: dict, session: dict) -> str:
    return cycles.session_title(cycle, session, translate)


@bp.app_template_global()
def weekday_name(weekday: int) -> str:
    from babel.dates import get_day_names

    return get_day_names("wide", locale=get_locale())[weekday]


def protocols() -> dict:
    return formsmod.loaded(current_app.extensions).protocols


def instruments() -> dict:
    return formsmod.loaded(current_app.extensions).instruments


def cycle_or_404(cycle_id: str) -> dict:
    return found_or_404(cycles.get_cycle(get_db(), cycle_id, current_user.site_ids))


def session_or_404(cycle: dict, session_id: str) -> dict:
    session = cycles.get_session(get_db(), session_id, current_user.site_ids)
    if session is None or session["cycle_id"] != cycle["id"]:
        abort(404)
    return session


def cycle_of(record: dict) -> dict:
    """Return the cycle a session or member belongs to (a foreign key says it exists)."""
    return found_or_404(cycles.get_cycle(get_db(), record["cycle_id"]))


def member_or_404(cycle: dict, member_id: str) -> dict:
    member = cycles.get_member(get_db(), member_id, current_user.site_ids)
    if member is None or member["cycle_id"] != cycle["id"]:
        abort(404)
    return member


def back_to(cycle: dict, anchor: str = ""):
    return redirect(url_for("cycles.show", cycle_id=cycle["id"]) + anchor, 303)


# --- list and create ---------------------------------------------------------------


@bp.route("/cycles/")
def index():
    db = get_db()
    mine_only = request.args.get("mine") == "1"
    found = cycles.list_cycles(db, current_user.site_ids, user_id=current_user.id if mine_only else None)
    mine = {
        r["cycle_id"] for r in db.query("select cycle_id from cycle_facilitators where user_id = ?", (current_user.id,))
    }
    stages = {c["id"]: tr(cycles.stage(c, cycles.sessions(db, c["id"]))) for c in found}
    return render_template("cycles/index.html", found=found, mine=mine, mine_only=mine_only, stages=stages)


def _new_form_context(form, *, site_first: bool = False):
    """The new-cycle form: with its site chosen, the facilitator pickers list that site's staff, each once.

    ``site_first``: ask only for the site when none is chosen yet (a form sent back with an error
    keeps every field, and lists the staff of all the user's sites, each once).
    """
    db = get_db()
    sites = user_sites()
    site = next((s for s in sites if s["id"] == form.get("site_id")), None)
    staff = (
        cycles.site_facilitators(db, site["id"]) if site else cycles.facilitators_of_sites(db, [s["id"] for s in sites])
    )
    return {
        "form": form,
        "sites": sites,
        "site": site,
        "site_first": site_first and site is None,
        "protocols": sorted(protocols().values(), key=lambda p: p.name),
        "facilitators": staff,
        "group_types": cycles.GROUP_TYPES,
    }


@bp.route("/cycles/new", methods=["GET", "POST"])
@role_required("coordinator")
def new():
    if request.method == "GET":
        # With several sites, the site is chosen first (no script needed to narrow the pickers to it).
        site_id = current_user.site_ids[0] if len(current_user.site_ids) == 1 else request.args.get("site_id", "")
        return render_template(
            "cycles/new.html", **_new_form_context({"site_id": site_id, "start_time": "14:00"}, site_first=True)
        )
    form = request.form
    db = get_db()
    try:
        site_id = form.get("site_id", "")
        if site_id not in current_user.site_ids:
            raise CycleError(N_("Choose the site."))
        protocol = protocols().get(form.get("protocol_id", ""))
        if protocol is None:
            raise CycleError(N_("Choose a protocol."))
        first_date = cycles.parse_date(form.get("first_date", ""))
        weekday_text = form.get("weekday", "")
        weekday = int(weekday_text) if weekday_text in ("0", "1", "2", "3", "4", "5", "6") else first_date.weekday()
        cycle = cycles.create_cycle(
            db,
            site_id=site_id,
            protocol=protocol,
            facilitator_ids=[form.get("facilitator_1", ""), form.get("facilitator_2", "")],
            group_type=form.get("group_type", ""),
            venue=form.get("venue", ""),
            first_date=first_date,
            weekday=weekday,
            start_time=form.get("start_time", ""),
            name=form.get("name", ""),
            actor=current_user.record,
            now=clock.now(),
        )
    except DomainError as exc:
        flash(tr(exc), "error")
        return render_template("cycles/new.html", **_new_form_context(form)), 400
    flash(_("Cycle %(code)s created with its sessions.", code=cycle["code"]), "success")
    for warning in cycles.cycle_warnings(db, cycles.get_cycle(db, cycle["id"]), protocol, today=clock.today()):
        flash(tr(warning), "warning")
    return redirect(url_for("cycles.show", cycle_id=cycle["id"]), 303)


# --- the cycle page ----------------------------------------------------------------


@bp.route("/cycles/<cycle_id>")
def show(cycle_id):
    db = get_db()
    cycle = cycle_or_404(cycle_id)
    protocol = protocols().get(cycle["protocol_id"])
    cycle_sessions = cycles.sessions(db, cycle["id"])
    warnings, summaries = [], {}
    if protocol is None:
        flash(
            tr(
                CycleError(
                    N_(
                        "The protocol %(protocol)s of this cycle is missing from the forms folder.",
                        protocol=cycle["protocol_id"],
                    )
                )
            ),
            "error",
        )
    else:
        warnings = [tr(w) for w in cycles.cycle_warnings(db, cycle, protocol, today=clock.today())]
        summaries = followup.member_summaries(db, cycle, protocol)
    can_manage = current_user.has_role("coordinator")
    other_cycles = [
        c for c in cycles.list_cycles(db, [cycle["site_id"]], statuses=("planned", "active")) if c["id"] != cycle["id"]
    ]
    members = cycles.members(db, cycle["id"])
    return render_template(
        "cycles/show.html",
        cycle=cycle,
        protocol=protocol,
        sessions=cycle_sessions,
        facilitators=cycles.facilitators(db, cycle["id"]),
        members=members,
        record_links=record_links(members),
        summaries=summaries,
        rates=followup.session_rates(db, cycle["id"]),
        warnings=warnings,
        history=cycles.session_history(db, cycle["id"]),
        stage=tr(cycles.stage(cycle, cycle_sessions)),
        followups=followup.followups_needed(
            db,
            current_user.site_ids,
            protocols(),
            today=clock.today(),
            due_days=current_app.config["FOLLOWUP_DUE_DAYS"],
            cycle_id=cycle["id"],
        ),
        can_manage=can_manage,
        other_cycles=other_cycles,
        today=clock.today().isoformat(),
        closed=cycle["status"] in ("closed", "closed_early"),
    )


@bp.route("/cycles/<cycle_id>/calendar.ics")
def calendar(cycle_id):
    cycle = cycle_or_404(cycle_id)
    try:
        text = cycles.calendar(get_db(), cycle, cycles.protocol_of(cycle, protocols()), translate=translate)
    except CycleError as exc:
        flash(tr(exc), "error")
        return back_to(cycle)
    return Response(
        text, mimetype="text/calendar", headers={"Content-Disposition": f'attachment; filename="{cycle["code"]}.ics"'}
    )


# --- changing sessions -------------------------------------------------------------


@bp.route("/cycles/<cycle_id>/sessions/<session_id>/change")
@role_required("coordinator")
def change_session(cycle_id, session_id):
    cycle = cycle_or_404(cycle_id)
    session = session_or_404(cycle, session_id)
    return render_template("cycles/change_session.html", cycle=cycle, session=session, form={})


def _session_action(cycle_id, session_id, action):
    cycle = cycle_or_404(cycle_id)
    session = session_or_404(cycle, session_id)
    try:
        message = action(cycle, session, request.form)
    except DomainError as exc:
        flash(tr(exc), "error")
        return render_template("cycles/change_session.html", cycle=cycle, session=session, form=request.form), 400
    flash(message, "success")
    protocol = protocols().get(cycle["protocol_id"])
    if protocol is not None:
        for warning in cycles.cycle_warnings(get_db(), cycle, protocol, today=clock.today()):
            flash(tr(warning), "warning")
    return back_to(cycle, "#sessions")


@bp.route("/cycles/<cycle_id>/sessions/<session_id>/reschedule", methods=["POST"])
@role_required("coordinator")
def reschedule(cycle_id, session_id):
    def act(cycle, session, form):
        mode = form.get("mode", "")
        if mode not in ("only", "shift"):
            raise CycleError(N_("Choose whether to move only this session or all later sessions too."))
        moved = cycles.reschedule_session(
            get_db(),
            session["id"],
            cycles.parse_date(form.get("new_date", "")),
            mode,
            reason=form.get("reason", ""),
            actor=current_user.record,
        )
        return ngettext("%(count)s session moved.", "%(count)s sessions moved.", len(moved), count=len(moved))

    return _session_action(cycle_id, session_id, act)


@bp.route("/cycles/<cycle_id>/sessions/<session_id>/cancel", methods=["POST"])
@role_required("coordinator")
def cancel(cycle_id, session_id):
    def act(cycle, session, form):
        cycles.cancel_session(get_db(), session["id"], reason=form.get("reason", ""), actor=current_user.record)
        return _("The session is cancelled. Add a make-up session if the group will meet another day.")

    return _session_action(cycle_id, session_id, act)


@bp.route("/cycles/<cycle_id>/sessions/<session_id>/makeup", methods=["POST"])
@role_required("coordinator")
def makeup(cycle_id, session_id):
    def act(cycle, session, form):
        cycles.add_makeup(
            get_db(),
            session["id"],
            cycles.parse_date(form.get("makeup_date", "")),
            form.get("makeup_time", ""),
            reason=form.get("reason", ""),
            actor=current_user.record,
        )
        return _("Make-up session added.")

    return _session_action(cycle_id, session_id, act)


@bp.route("/cycles/<cycle_id>/close", methods=["POST"])
@role_required("coordinator")
def close(cycle_id):
    cycle = cycle_or_404(cycle_id)
    try:
        counts = cycles.close_cycle(
            get_db(),
            cycle["id"],
            cycles.protocol_of(cycle, protocols()),
            early=request.form.get("early") == "1",
            reason=request.form.get("reason", ""),
            actor=current_user.record,
            today=clock.today(),
        )
    except DomainError as exc:
        flash(tr(exc), "error")
        return back_to(cycle, "#close")
    flash(
        _(
            "Cycle closed: %(completed)s completed, %(dropped)s dropped out.",
            completed=counts["completed"],
            dropped=counts["dropped_out"],
        ),
        "success",
    )
    return back_to(cycle)


# --- members -----------------------------------------------------------------------


@bp.route("/cycles/<cycle_id>/enrol", methods=["GET", "POST"])
@role_required("coordinator")
def enrol(cycle_id):
    db = get_db()
    cycle = cycle_or_404(cycle_id)
    if request.method == "POST":
        chosen = request.form.getlist("participant_id")
        override = request.form.get("override_participant_id", "")
        reason = request.form.get("override_reason", "")
        if not chosen and not override:
            flash(_("Tick at least one person to enrol."), "error")
        enrolled = 0
        for participant_id, why in [*((p, "") for p in chosen), *([(override, reason)] if override else [])]:
            try:
                _member, warnings = cycles.enrol(
                    db, cycle["id"], participant_id, actor=current_user.record, today=clock.today(), override_reason=why
                )
            except DomainError as exc:
                flash(tr(exc), "error")
                continue
            enrolled += 1
            for warning in warnings:
                flash(tr(warning), "warning")
        if enrolled:
            flash(
                ngettext(
                    "%(count)s person enrolled in %(cycle)s.",
                    "%(count)s people enrolled in %(cycle)s.",
                    enrolled,
                    count=enrolled,
                    cycle=cycle["code"],
                ),
                "success",
            )
            protocol = protocols().get(cycle["protocol_id"])
            count = len(cycles.members(db, cycle["id"], active_only=True))
            if protocol and count > protocol.group_size_max:
                flash(
                    _(
                        "The group has %(count)s members; the protocol recommends %(min)s to %(max)s.",
                        count=count,
                        min=protocol.group_size_min,
                        max=protocol.group_size_max,
                    ),
                    "warning",
                )
            return back_to(cycle, "#members")
    return render_template(
        "cycles/enrol.html",
        cycle=cycle,
        eligible=cycles.eligible_participants(db, cycle["site_id"]),
        others=[
            p
            for p in cycles.eligible_participants(db, cycle["site_id"], include_not_eligible=True)
            if p["status"] != "eligible"
        ],
    ), 400 if request.method == "POST" else 200


def _member_action(cycle_id, member_id, action, anchor="#members"):
    cycle = cycle_or_404(cycle_id)
    member = member_or_404(cycle, member_id)
    try:
        message = action(cycle, member, request.form)
    except DomainError as exc:
        flash(tr(exc), "error")
        return back_to(cycle, anchor)
    flash(message, "success")
    return back_to(cycle, anchor)


@bp.route("/cycles/<cycle_id>/members/<member_id>/withdraw", methods=["POST"])
@role_required("coordinator")
def withdraw(cycle_id, member_id):
    def act(cycle, member, form):
        cycles.withdraw(
            get_db(), member["id"], reason=form.get("reason", ""), actor=current_user.record, today=clock.today()
        )
        return _("%(name)s has left the group.", name=member["name"])

    return _member_action(cycle_id, member_id, act)


@bp.route("/cycles/<cycle_id>/members/<member_id>/transfer", methods=["POST"])
@role_required("coordinator")
def transfer(cycle_id, member_id):
    def act(cycle, member, form):
        new = cycles.transfer(
            get_db(),
            member["id"],
            form.get("to_cycle_id", ""),
            reason=form.get("reason", ""),
            actor=current_user.record,
            today=clock.today(),
        )
        target = cycles.get_cycle(get_db(), new["cycle_id"])
        return _("%(name)s moved to %(cycle)s.", name=member["name"], cycle=target["code"])

    return _member_action(cycle_id, member_id, act)


@bp.route("/cycles/<cycle_id>/members/<member_id>/plan", methods=["POST"])
@role_required("facilitator", "coordinator", "supervisor")
def plan(cycle_id, member_id):
    def act(cycle, member, form):
        cycles.set_member_plan(
            get_db(),
            member["id"],
            form.get("problem_area"),
            form.get("problem_area_2"),
            form.get("goals", ""),
            actor=current_user.record,
        )
        return _("Problem area and goals of %(name)s saved.", name=member["name"])

    return _member_action(cycle_id, member_id, act)


@bp.route("/cycles/<cycle_id>/members/<member_id>/followup", methods=["POST"])
@role_required("facilitator", "coordinator", "supervisor")
def record_followup(cycle_id, member_id):
    def act(cycle, member, form):
        done_on = cycles.parse_date(form.get("done_on", "") or clock.today().isoformat())
        followup.record_followup(
            get_db(), member["id"], done_on, form.get("note", ""), actor=current_user.record, today=clock.today()
        )
        return _("Follow-up of %(name)s recorded.", name=member["name"])

    back = request.form.get("back", "")
    response = _member_action(cycle_id, member_id, act, "#followups")
    if back == "followups":
        return redirect(url_for("cycles.followups"), 303)
    return response


@bp.route("/cycles/followups")
def followups():
    found = followup.followups_needed(
        get_db(),
        current_user.site_ids,
        protocols(),
        today=clock.today(),
        due_days=current_app.config["FOLLOWUP_DUE_DAYS"],
    )
    return render_template("cycles/followups.html", found=found, today=clock.today().isoformat())


# --- site holidays -----------------------------------------------------------------


def site_or_404(code: str) -> dict:
    site = users.get_site(get_db(), code)
    if site is None or site["id"] not in current_user.site_ids:
        abort(404)
    return site


@bp.route("/sites/<code>/holidays", methods=["GET", "POST"])
@role_required("coordinator")
def holidays(code):
    db = get_db()
    site = site_or_404(code)
    status = 200
    if request.method == "POST":
        try:
            clash = cycles.add_holiday(
                db,
                site["id"],
                cycles.parse_date(request.form.get("date", "")),
                request.form.get("label", ""),
                actor=current_user.record,
            )
        except DomainError as exc:
            flash(tr(exc), "error")
            status = 400
        else:
            flash(_("Date added. New cycles will skip it."), "success")
            for s in clash:
                flash(
                    _(
                        "Session %(number)s of %(cycle)s is already planned on that day: move it.",
                        number=s["number"],
                        cycle=s["cycle_code"],
                    ),
                    "warning",
                )
            return redirect(url_for("cycles.holidays", code=site["code"]), 303)
    return render_template(
        "cycles/holidays.html", site=site, holidays=cycles.holidays(db, site["id"]), form=request.form
    ), status


@bp.route("/sites/<code>/holidays/<holiday_id>/delete", methods=["POST"])
@role_required("coordinator")
def delete_holiday(code, holiday_id):
    site = site_or_404(code)
    try:
        cycles.remove_holiday(get_db(), site["id"], holiday_id, actor=current_user.record)
    except DomainError as exc:
        flash(tr(exc), "error")
    else:
        flash(_("Date removed."), "success")
    return redirect(url_for("cycles.holidays", code=site["code"]), 303)


# --- panels for other pages ---------------------------------------------------------


def measures_due(participant: dict) -> list[dict]:
    """Return the cycle measures due for a participant, each with its instrument's name, for the participant page.

    The caller passes a participant it found within the user's sites (``get_participant_or_404``).
    """
    found = followup.measures_due(
        get_db(),
        participant["id"],
        protocols(),
        today=clock.today(),
        grace_days=current_app.config["MEASURE_GRACE_DAYS"],
    )
    for item in found:
        instrument = instruments().get(item["instrument_id"])
        item["instrument_name"] = (
            _(instrument.name) if instrument and getattr(instrument, "name", None) else item["instrument_id"]
        )
    return found


@bp.app_template_global()
def screening_link(
    participant_id: str, instrument_id: str, occasion: str, cycle_id: str | None = None, session_id: str | None = None
) -> str | None:
    """Return the link to give an instrument, if the screening pages exist."""
    if "screening.form" not in current_app.view_functions:
        return None
    return url_for(
        "screening.form",
        participant_id=participant_id,
        instrument_id=instrument_id,
        occasion=occasion,
        cycle_id=cycle_id,
        session_id=session_id,
    )


@bp.app_template_global()
def script_link(cycle: dict, session: dict) -> str | None:
    """Return the link to the session's facilitator script, if the scripts pages exist."""
    if "scripts.session_script" not in current_app.view_functions:
        return None
    return f"/cycles/{cycle['id']}/sessions/{session['number']}/script"


def home_panel() -> dict:
    """Return what the home page shows about cycles: my next session, what to catch up, my and my sites' cycles."""
    data = followup.home_summary(
        get_db(),
        user_id=current_user.id,
        site_ids=current_user.site_ids,
        coordinator=current_user.has_role("coordinator", "supervisor"),
        protocols=protocols(),
        today=clock.today(),
        due_days=current_app.config["FOLLOWUP_DUE_DAYS"],
    )
    data["stages"] = {k: tr(v) for k, v in data["stages"].items()}
    return data


@bp.app_template_global()
def today_iso() -> str:
    return clock.today().isoformat()
