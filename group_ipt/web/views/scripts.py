"""Facilitator scripts: a session's script in the user's language, with the group's context filled in."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ...core import cycles
from ...formfiles import forms as formsmod
from ...formfiles import scripts
from ...formfiles.protocols import Protocol
from ...store.db import rows
from ..database import get_db

bp = Blueprint("scripts", __name__)

PHASE_LABELS = {code: _l(text) for code, text in cycles.PHASE_LABELS.items()}


@bp.app_context_processor
def labels():
    return {"phase_labels": PHASE_LABELS}


def _translated(script: scripts.Script, protocol) -> scripts.Script:
    return scripts.placeholders_filled(script, scripts.session_context(protocol, script.session_number), gettext)


def _script_page(
    protocol: Protocol,
    number: int,
    areas: set[str] | None = None,
    *,
    cycle: dict | None = None,
    session: dict | None = None,
    context: dict | None = None,
) -> str:
    """Render session ``number``'s script of ``protocol`` with guidance for ``areas`` (None: all); 404 if none."""
    try:
        script = formsmod.loaded(current_app.extensions).scripts.script_for(protocol.id, number, areas)
    except scripts.ScriptNotFound:
        abort(404)
    return render_template(
        "scripts/script.html",
        script=_translated(script, protocol),
        protocol=protocol,
        cycle=cycle,
        session=session,
        context=context,
    )


@bp.route("/scripts/")
def index():
    forms = formsmod.loaded(current_app.extensions)
    library = forms.scripts
    protocols = [forms.protocols[pid] for pid in library.protocol_ids if pid in forms.protocols]
    return render_template("scripts/index.html", protocols=protocols, library=library)


@bp.route("/scripts/<protocol_id>/<int:number>")
def protocol_script(protocol_id: str, number: int):
    """Show one session's script of a protocol, with the guidance for all four problem areas."""
    forms = formsmod.loaded(current_app.extensions)
    protocol = forms.protocols.get(protocol_id)
    if protocol is None:
        abort(404)
    return _script_page(protocol, number)


def group_context(db, cycle: dict, session: dict, protocol) -> dict:
    """Collect what the facilitator should know before this session: who came last time, areas, due instruments."""
    previous = rows(
        db,
        "select * from sessions where cycle_id = ? and status = 'held' and scheduled_date < ?"
        " order by scheduled_date desc, number desc limit 1",
        (cycle["id"], session["scheduled_date"]),
    )
    present_last = []
    if previous:
        present_last = rows(
            db,
            "select p.name, p.code, m.problem_area, m.problem_area_2, a.status from attendance a"
            " join members m on m.id = a.member_id join participants p on p.id = m.participant_id"
            " where a.session_id = ? and a.status in ('present', 'late') order by p.name collate nocase",
            (previous[0]["id"],),
        )
    active = cycles.members(db, cycle["id"], active_only=True)
    areas = {a for m in active for a in (m["problem_area"], m["problem_area_2"]) if a}
    from ...core.sessions import instruments_today

    due = instruments_today(db, session, protocol, grace_days=7)
    return {
        "previous": previous[0] if previous else None,
        "present_last": present_last,
        "members": active,
        "areas": areas,
        "due": [d for d in due if any(not m["done"] for m in d["members"])],
    }


@bp.route("/cycles/<cycle_id>/sessions/<int:number>/script")
def session_script(cycle_id: str, number: int):
    """Show the script of session ``number`` of a cycle, filled with the group's context."""
    db = get_db()
    cycle = cycles.get_cycle(db, cycle_id, current_user.site_ids)
    if cycle is None:
        abort(404)
    forms = formsmod.loaded(current_app.extensions)
    protocol = cycles.protocol_of(cycle, forms.protocols)
    session_rows = rows(
        db,
        "select * from sessions where cycle_id = ? and number = ? and kind != 'makeup' order by scheduled_date limit 1",
        (cycle["id"], number),
    )
    if not session_rows:
        abort(404)
    session = session_rows[0]
    context = group_context(db, cycle, session, protocol)
    # Middle-phase guidance only for the problem areas this group's members have.
    areas = context["areas"] if number > 0 and context["areas"] else None
    return _script_page(protocol, number, areas, cycle=cycle, session=session, context=context)
