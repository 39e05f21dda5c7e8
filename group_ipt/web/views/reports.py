"""Programme reports: the indicators page with its charts, the records behind each number, CSV downloads.

For coordinators, supervisors and admins (a facilitator gets 403: the figures
and tables cover every facilitator's groups and participants of a site). Every
query is limited to ``current_user.site_ids``; another site's code answers 404.
The filters travel in the query string, so every link and download repeats them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

from flask import Blueprint, Response, abort, current_app, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from ...base import bounds, clock
from ...base.errors import N_, DomainError
from ...core.cycles import GROUP_TYPES, facilitators_of_sites
from ...formfiles import forms as formsmod
from ...reporting import exports, indicators, report_charts
from ...reporting.indicators import Filters, Report, UnknownIndicator
from ...reporting.periods import PeriodError, parse_period, period_between, quarter_of
from ...store.db import marks
from ..database import get_db
from ..i18n import format_decimal, format_percent
from .cycles import GROUP_TYPE_LABELS

bp = Blueprint("reports", __name__, url_prefix="/reports")

REPORT_ROLES = ("coordinator", "supervisor", "admin")
FILTER_ARGS = ("period", "from", "to", "site", "facilitator", "protocol", "group_type")

# I18N: column headings of the lists of records behind the report figures
COLUMN_LABELS = {
    "participant_code": _l("Code"),
    "name": _l("Name"),
    "site_code": _l("Site"),
    "first_screened_on": _l("First screened"),
    "screenings": _l("Screenings"),
    "eligible": _l("Eligible"),
    "raised_on": _l("Raised on"),
    "urgency": _l("Urgency"),
    "status": _l("Status"),
    "reasons": _l("Reasons"),
    "next_due_on": _l("Next follow-up"),
    "overdue": _l("Overdue"),
    "cycle_code": _l("Cycle"),
    "enrolled_on": _l("Enrolled on"),
    "protocol_id": _l("Protocol"),
    "group_type": _l("Group"),
    "facilitators": _l("Facilitators"),
    "first_held_on": _l("First group session"),
    "closed_on": _l("Closed on"),
    "members": _l("Members"),
    "session_number": _l("Session"),
    "session_date": _l("Date"),
    "attended": _l("Attended"),
    "outcome": _l("Outcome"),
    "group_sessions_attended": _l("Sessions attended"),
    "last_session_attended": _l("Last session attended"),
    "baseline": _l("Baseline"),
    "baseline_on": _l("Baseline date"),
    "end": _l("End score"),
    "end_on": _l("End date"),
    "change": _l("Score change"),
    "improved_50": _l("Score at least halved"),
    "below_5": _l("Below 5"),
    "checklists": _l("Checklists"),
    "items_done": _l("Items done"),
    "items_answered": _l("Items answered"),
}
FILTER_LABELS = {
    "site": _l("site"),
    "facilitator": _l("facilitator"),
    "protocol": _l("protocol"),
    "group_type": _l("group type"),
}
YES_NO_COLUMNS = ("eligible", "overdue", "attended", "improved_50", "below_5")


class FilterError(DomainError):
    """A filter value that is not one of the choices offered."""


@bp.before_request
def only_report_roles():
    if not current_user.has_role(*REPORT_ROLES):
        abort(403)


def _sites() -> list[dict]:
    ids = current_user.site_ids
    return list(get_db().query(f"select id, code, name from sites where id in ({marks(ids)}) order by code", ids))


def _facilitators(sites: list[dict]) -> list[dict]:
    found = facilitators_of_sites(get_db(), [s["id"] for s in sites])
    return sorted(found, key=lambda u: u["display_name"].casefold())


def read_filters() -> tuple[Filters, dict]:
    """Return the filters of the query string and the choices the form offers; FilterError or PeriodError."""
    args = request.args
    sites = _sites()
    choices = {
        "sites": sites,
        "facilitators": _facilitators(sites),
        "protocols": formsmod.loaded(current_app.extensions).protocols,
        "group_types": GROUP_TYPES,
    }
    if args.get("from") or args.get("to"):
        if not (args.get("from") and args.get("to")):
            raise FilterError(N_("Give both dates of the period (from and to)."))
        try:
            start, end = (bounds.parse_date(args.get(k), field="period") for k in ("from", "to"))
        except bounds.BoundsError as exc:
            raise PeriodError(exc.message, field="period", **exc.params) from exc
        period = period_between(start, end)
    else:
        period = parse_period(args["period"]) if args.get("period") else quarter_of(clock.today())
    site_ids = tuple(s["id"] for s in sites)
    if args.get("site"):
        chosen = [s for s in sites if s["code"] == args["site"].upper()]
        if not chosen:
            abort(404)  # another site's code answers as one that does not exist
        site_ids = (chosen[0]["id"],)
    facilitator = args.get("facilitator") or None
    if facilitator and facilitator not in {u["id"] for u in choices["facilitators"]}:
        raise FilterError(N_("Choose a facilitator from the list."))
    protocol = args.get("protocol") or None
    if protocol and protocol not in choices["protocols"]:
        raise FilterError(N_("Choose a protocol from the list."))
    group_type = args.get("group_type") or None
    if group_type and group_type not in GROUP_TYPES:
        raise FilterError(N_("Choose a group type from the list."))
    return Filters(site_ids, period, facilitator, protocol, group_type), choices


def filter_args() -> dict:
    """Return the filters as given, to repeat them in every link."""
    return {k: request.args[k] for k in FILTER_ARGS if request.args.get(k)}


def _report(filters: Filters) -> Report:
    return Report(
        get_db(),
        filters,
        formsmod.loaded(current_app.extensions).protocols,
        today=clock.today(),
        grace_days=current_app.config["MEASURE_GRACE_DAYS"],
    )


def tr(msgid: str, **params) -> str:
    return _(msgid, **params)


def part_label(part: indicators.Part) -> str:
    params = dict(part.params)
    if "exclusion" in params:
        intake = formsmod.loaded(current_app.extensions).intake
        exclusion = intake.exclusion(params["exclusion"]) if intake else None
        params["exclusion"] = _(exclusion.label) if exclusion else params["exclusion"]
    return _(part.label, **params)


def show(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "share":
        return format_percent(value, "#,##0.#%")
    if kind == "mean":
        return format_decimal(round(value, 1))
    return format_decimal(value)


def _period_text(filters: Filters) -> str:
    return str(filters.period) if filters.period else _("all time")


CHART_CYCLES = 30  # most cycles one chart shows
_ID = "__indicator__"


def record_links(args: dict) -> Callable[..., str]:
    """Return ``link(kind, indicator_id, part=None)``: the URL of the records (or their CSV) behind a figure.

    The page has ~150 such links: built from two url_for() results, not 150 url_for() calls.
    """
    paths = {
        "records": url_for("reports.records", indicator_id=_ID),
        "csv": url_for("reports.records_csv", indicator_id=_ID),
    }
    query = urlencode(args)

    def link(kind: str, indicator_id: str, part: str | None = None) -> str:
        found = [urlencode({"part": part})] if part is not None else []
        found += [query] if query else []
        return paths[kind].replace(_ID, quote(indicator_id)) + ("?" + "&".join(found) if found else "")

    return link


def _charts(report: Report, by_id: dict) -> list[dict]:
    """Return the charts of the indicators page (title and SVG), each only when it has something to show."""
    link = record_links(filter_args())
    found = [
        _enrolment_chart(report, link),
        _attendance_chart(by_id["attendance_rate"], link),
        _change_chart(report),
    ]
    return [chart for chart in found if chart is not None]


def _enrolment_chart(report: Report, link: Callable[..., str]) -> dict | None:
    enrolment = report.enrolment_series()
    if not enrolment:
        return None
    title = _("People enrolled over time")
    bars = [report_charts.Bar(label, n, format_decimal(n), link("records", "enrolled")) for label, n in enrolment]
    return {"title": title, "svg": report_charts.bar_chart(bars, title=title, chart_id="chart-enrolment")}


def _attendance_chart(attendance: indicators.Indicator, link: Callable[..., str]) -> dict | None:
    if not attendance.parts:
        return None
    title = _("Attendance by session number")
    bars = [
        report_charts.Bar(
            part_label(p),
            None if p.value is None else p.value * 100,
            show(p.value, "share"),
            link("records", "attendance_rate", p.key),
        )
        for p in attendance.parts
    ]
    svg = report_charts.bar_chart(
        bars, title=title, high=100, axis_format=lambda v: f"{v:g}%", chart_id="chart-attendance"
    )
    return {"title": title, "svg": svg}


def _change_series(report: Report) -> tuple[str, list[tuple[str, dict]]]:
    """Return the title and (label, mean scores) of the score chart: per cycle, per site, or the latest cycles."""
    change = [(c["cycle_code"], c) for c in report.score_change_by_cycle()]
    if len(change) <= CHART_CYCLES:
        return _("Mean PHQ-9 score per cycle: baseline and end"), change
    # Hundreds of bars say nothing: per site, or a site's latest cycles.
    by_site = report.score_change_by_site()
    if len(by_site) > 1:
        return _("Mean PHQ-9 score per site: baseline and end"), [(c["site_code"], c) for c in by_site]
    title = _("Mean PHQ-9 score of the %(count)s latest cycles: baseline and end", count=CHART_CYCLES)
    return title, change[-CHART_CYCLES:]


def _change_chart(report: Report) -> dict | None:
    title, change = _change_series(report)
    if not change:
        return None
    changes = [
        report_charts.Change(
            label,
            c["baseline"],
            c["end"],
            ngettext(
                "%(before)s → %(after)s (%(count)s member)",
                "%(before)s → %(after)s (%(count)s members)",
                c["members"],
                before=show(c["baseline"], "mean"),
                after=show(c["end"], "mean"),
                count=c["members"],
            ),
        )
        for label, c in change
    ]
    svg = report_charts.change_chart(
        changes,
        title=title,
        before_label=_("baseline"),
        after_label=_("end of the cycle"),
        chart_id="chart-change",
    )
    return {"title": title, "svg": svg}


@bp.route("/")
def index():
    try:
        filters, choices = read_filters()
    except (FilterError, PeriodError) as exc:
        flash(exc.translated(_), "error")
        return render_template(
            "reports/index.html", filters=None, choices=None, sections=[], charts=[], args=filter_args(), tables=[]
        ), 400
    report = _report(filters)
    by_id = {i.id: i for i in report.indicators}
    sections: dict[str, list] = {}
    for indicator in report.indicators:
        sections.setdefault(indicator.section, []).append(indicator)
    return render_template(
        "reports/index.html",
        filters=filters,
        choices=choices,
        sections=list(sections.items()),
        charts=_charts(report, by_id),
        args=filter_args(),
        period_text=_period_text(filters),
        link=record_links(filter_args()),
        tables=exports.exportable_tables(get_db()),
        ignored=_ignored(filters),
    )


def _ignored(filters: Filters) -> dict[str, str]:
    """Return, per indicator id, the filters set that it does not follow (screening is before any cycle)."""
    active = filters.active()
    result = {}
    for spec in indicators.SPECS:
        skipped = [str(FILTER_LABELS[name]) for name in active if name not in spec.filtered_by]
        if skipped:
            result[spec.id] = ", ".join(skipped)
    return result


def _records_or_404(indicator_id: str):
    if indicator_id not in indicators.SPEC_BY_ID:
        abort(404)
    try:
        filters, _choices = read_filters()
    except (FilterError, PeriodError):
        abort(400)
    report = _report(filters)
    part = request.args.get("part") or None
    try:
        found = report.rows_of(indicator_id, part)
    except UnknownIndicator:
        abort(404)
    return filters, report, part, found


@bp.route("/records/<indicator_id>")
def records(indicator_id: str):
    filters, report, part, found = _records_or_404(indicator_id)
    indicator = next(i for i in report.indicators if i.id == indicator_id)
    part_obj = next((p for p in indicator.parts if p.key == part), None)
    spec = indicators.SPEC_BY_ID[indicator_id]
    return render_template(
        "reports/records.html",
        indicator=indicator,
        part=part_obj,
        part_key=part,
        rows=found,
        columns=indicators.COLUMNS[spec.family],
        column_labels=COLUMN_LABELS,
        yes_no=YES_NO_COLUMNS,
        args=filter_args(),
        period_text=_period_text(filters),
    )


def _csv(content: bytes, filename: str) -> Response:
    response = Response(content, mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{quote(filename)}"'
    response.headers["Cache-Control"] = "no-store"  # lists of people: keep them out of caches
    return response


def _names() -> bool:
    return bool(current_app.config["EXPORT_NAMES"])


@bp.route("/export/indicators.csv")
def indicators_csv():
    try:
        filters, choices = read_filters()
    except (FilterError, PeriodError):
        abort(400)
    report = _report(filters)
    codes = ",".join(s["code"] for s in choices["sites"] if s["id"] in filters.site_ids)
    rows = exports.indicator_rows(
        report.indicators,
        period=_period_text(filters),
        sites=codes,
        filters=" ".join(f"{k}={v}" for k, v in filter_args().items() if k not in ("period", "from", "to", "site")),
        translate=tr,
    )
    return _csv(exports.csv_bytes(exports.INDICATOR_COLUMNS, rows), f"indicators-{_period_text(filters)}.csv")


@bp.route("/export/records/<indicator_id>.csv")
def records_csv(indicator_id: str):
    filters, report, part, found = _records_or_404(indicator_id)
    columns = exports.record_columns(indicator_id, names=_names())
    content = exports.csv_bytes(columns, found, [str(COLUMN_LABELS.get(c, c)) for c in columns])
    suffix = f"-{part}" if part else ""
    return _csv(content, f"{indicator_id}{suffix}-{_period_text(filters)}.csv")


@bp.route("/export/tables/<table>.csv")
def table_csv(table: str):
    db = get_db()
    if table not in exports.exportable_tables(db):
        abort(404)
    site_ids = list(current_user.site_ids)
    if request.args.get("site"):
        chosen = [s["id"] for s in _sites() if s["code"] == request.args["site"].upper()]
        if not chosen:
            abort(404)
        site_ids = chosen
    columns, found = exports.table_rows(db, table, site_ids, names=_names())
    return _csv(exports.csv_bytes(columns, found), f"{table}.csv")


@bp.app_template_global()
def report_value(indicator, kind: str | None = None) -> str:
    return show(indicator.value, kind or str(getattr(indicator, "kind", "count")))


@bp.app_template_global()
def report_part_label(part) -> str:
    return part_label(part)


@bp.app_template_global()
def report_group_type_label(value: str) -> str:
    return str(GROUP_TYPE_LABELS.get(value, value))


@bp.app_template_global()
def report_column_value(column: str, value) -> str:
    if value is None or value == "":
        return "—"
    if column in YES_NO_COLUMNS:
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return format_decimal(round(value, 1))
    return str(value)
