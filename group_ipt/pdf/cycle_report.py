"""The report of one cycle: attendance, completion and dropout, symptom change, open referrals.

A4 portrait: key figures, two small charts (members present at each session;
each member's baseline and end score), attendance per session, one row per
member, and the group's symptom change: mean change from baseline to the last
score, share with at least 50% improvement (response) and share below the
remission threshold at the end (5 on the PHQ-9).

The figures are computed here from plain data by :func:`group_outcome`, which
has no ReportLab in it and is tested on its own. Baseline, last (end) score,
response and remission are the one rule of :mod:`group_ipt.core.outcomes`, the same
the indicators page uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from ..core import outcomes
from . import (
    FONT,
    FONT_BOLD,
    LINE,
    SHADE,
    PdfLanguage,
    Styles,
    build_pdf,
    document_setup,
    esc,
    fit_heads,
    fit_widths,
    labelled,
    longest_word,
    para,
    visual,
)

__all__ = ["CycleReport", "GroupOutcome", "MemberSummary", "SessionSummary", "build_story", "group_outcome", "render"]

PAGESIZE = A4
BAR = colors.Color(0.25, 0.45, 0.65)
BAR_LIGHT = colors.Color(0.7, 0.8, 0.9)


@dataclass(frozen=True)
class SessionSummary:
    """Attendance at one session. ``status`` is ``scheduled``, ``held`` or ``cancelled``; late counts as present."""

    number: int
    date: date | None
    status: str
    present: int = 0
    absent: int = 0
    excused: int = 0
    makeup: bool = False


@dataclass(frozen=True)
class MemberSummary:
    """One member's attendance and scores.

    ``attended`` counts the group sessions the member was present at (late
    included); ``completed`` applies the protocol's completion rule;
    ``dropped_out`` is true for a member who left (dropped out or withdrew).
    ``baseline`` is the first total of the outcome instrument, ``last`` the
    latest one after it (None when missing).
    """

    code: str
    name: str
    attended: int
    completed: bool
    dropped_out: bool = False
    baseline: float | None = None
    last: float | None = None


@dataclass(frozen=True)
class CycleReport:
    """Everything the report prints. Texts are printed as given.

    ``group_sessions`` is the number of group sessions the protocol plans;
    ``instrument`` the translated name of the outcome instrument (e.g. PHQ-9);
    ``remission_below`` the score under which a member counts as well at the
    end; ``privacy`` prints codes without names.
    """

    programme: str
    site: str
    cycle: str
    protocol: str
    sessions: Sequence[SessionSummary]
    members: Sequence[MemberSummary]
    group_sessions: int
    instrument: str = "PHQ-9"
    facilitators: Sequence[str] = ()
    status: str = ""
    open_referrals: int = 0
    remission_below: float = 5
    privacy: bool = False


@dataclass(frozen=True)
class GroupOutcome:
    """The group's symptom change, over members with both a baseline and a last score (``paired``)."""

    members: int
    completed: int
    dropped_out: int
    paired: int
    mean_baseline: float | None
    mean_last: float | None
    mean_change: float | None  # last minus baseline: negative is better for the PHQ-9
    responders: int  # at least 50% lower than baseline
    remitted: int  # below the remission threshold at the end

    @property
    def response_share(self) -> float | None:
        return self.responders / self.paired if self.paired else None

    @property
    def remission_share(self) -> float | None:
        return self.remitted / self.paired if self.paired else None


improvement = outcomes.improvement  # the share by which a score fell (the one rule: group_ipt.core.outcomes)


def group_outcome(members: Sequence[MemberSummary], remission_below: float = 5) -> GroupOutcome:
    """Compute completion, dropout and symptom change for a cycle's members."""
    paired = [m for m in members if m.baseline is not None and m.last is not None]

    def mean(values: list[float]) -> float | None:
        return float(sum(Fraction(str(v)) for v in values) / len(values)) if values else None

    baselines = [m.baseline for m in paired if m.baseline is not None]
    lasts = [m.last for m in paired if m.last is not None]
    changes = [last - base for base, last in zip(baselines, lasts, strict=True)]
    responders = sum(1 for m in paired if outcomes.responded(m.baseline, m.last))
    return GroupOutcome(
        members=len(members),
        completed=sum(1 for m in members if m.completed),
        dropped_out=sum(1 for m in members if m.dropped_out),
        paired=len(paired),
        mean_baseline=mean(baselines),
        mean_last=mean(lasts),
        mean_change=mean(changes),
        responders=responders,
        remitted=sum(1 for last in lasts if outcomes.remitted(last, remission_below)),
    )


def _share(lang: PdfLanguage, part: int, whole: int) -> str:
    return f"{part} ({lang.percent(part / whole)})" if whole else str(part)


def _key_figures(data: CycleReport, outcome: GroupOutcome, lang: PdfLanguage, st: Styles, width: float) -> Table:
    _ = lang.translate
    held = [s for s in data.sessions if s.status == "held"]
    figures = [
        (_("Members"), str(outcome.members)),
        (_("Completed"), _share(lang, outcome.completed, outcome.members)),
        (_("Dropped out"), _share(lang, outcome.dropped_out, outcome.members)),
        (_("Sessions held"), _("%(held)s of %(planned)s", held=len(held), planned=data.group_sessions)),
        (_("Open referrals"), str(data.open_referrals)),
    ]
    big = ParagraphStyle("figure", parent=st.cell_center, fontName=FONT_BOLD, fontSize=15, leading=18)
    cells = [[[para(value, big), para(label, st.cell_center)] for label, value in figures]]
    table = Table(cells, colWidths=[width / len(figures)] * len(figures))
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, LINE),
                ("INNERGRID", (0, 0), (-1, -1), 0.5, LINE),
                ("BACKGROUND", (0, 0), (-1, -1), SHADE),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return table


def _bar_chart(
    labels: list[str], series: list[list[float]], fills: list, top: float, width: float, height: float = 150
) -> Drawing:
    drawing = Drawing(width, height)
    chart = VerticalBarChart()
    chart.x, chart.y = 30, 28
    chart.width, chart.height = width - 40, height - 36
    chart.data = series or [[0]]
    chart.valueAxis.valueMin = 0
    chart.valueAxis.valueMax = max(top, 1)
    chart.valueAxis.valueStep = max(1, round(max(top, 1) / 5))
    chart.valueAxis.labels.fontName = FONT
    chart.valueAxis.labels.fontSize = 7
    chart.categoryAxis.categoryNames = [visual(label) for label in labels] or [""]
    chart.categoryAxis.labels.fontName = FONT
    chart.categoryAxis.labels.fontSize = 7 if len(labels) <= 16 else 5
    if len(labels) > 10 and max((len(label) for label in labels), default=0) > 3:
        chart.categoryAxis.labels.angle = 45
        chart.categoryAxis.labels.boxAnchor = "ne"
    chart.barSpacing = 1
    chart.groupSpacing = 4
    chart.valueAxis.strokeColor = chart.categoryAxis.strokeColor = LINE
    for i, fill in enumerate(fills):
        chart.bars[i].fillColor = fill
        chart.bars[i].strokeColor = None
    drawing.add(chart)
    return drawing


def _charts(data: CycleReport, lang: PdfLanguage, st: Styles, width: float) -> list[Flowable]:
    _ = lang.translate
    half = width / 2 - 6
    shown = [s for s in data.sessions if s.status != "cancelled"]
    attendance = _bar_chart(
        [str(s.number) for s in shown],
        [[s.present for s in shown]],
        [BAR],
        top=max([len(data.members), *[s.present for s in shown]]),
        width=half,
    )
    paired = [m for m in data.members if m.baseline is not None and m.last is not None]
    top_score = max([m.baseline or 0 for m in paired] + [m.last or 0 for m in paired] + [1])
    scores = _bar_chart(
        [str(data.members.index(m) + 1) for m in paired],
        [[m.baseline or 0 for m in paired], [m.last or 0 for m in paired]],
        [BAR_LIGHT, BAR],
        top=top_score,
        width=half,
    )
    # Translated outside the f-string: pybabel cannot see a call inside one (Python 3.11).
    first, last = _("first score"), _("last score")
    legend = Paragraph(
        f"<font color='#b3cce6'>■</font> {esc(first)} &nbsp; <font color='#4073a6'>■</font> {esc(last)}", st.small
    )
    # The titles are paragraphs above the charts: they wrap instead of running off the drawing.
    titles = [
        para(_("Members present at each session"), st.cell_bold),
        para(_("%(instrument)s: first and last score", instrument=data.instrument), st.cell_bold),
    ]
    table = Table([titles, [attendance, scores], ["", legend]], colWidths=[width / 2, width / 2])
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return [KeepTogether(table)]


def _grid(rows: list[list], widths: list[float], numeric_from: int) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, LINE),
                ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (numeric_from, 1), (-1, -1), "RIGHT"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    return table


def _sessions_table(data: CycleReport, lang: PdfLanguage, st: Styles, width: float) -> Table:
    _ = lang.translate
    status_labels = {"held": _("held"), "scheduled": _("to come"), "cancelled": _("cancelled")}
    heads = (_("Session"), _("Date"), _("Status"), _("Present"), _("Absent"), _("Excused"), _("Attendance"))
    rows: list[list] = [[para(h, st.cell_head) for h in heads]]
    for s in data.sessions:
        recorded = s.present + s.absent + s.excused
        number = f"{s.number}*" if s.makeup else str(s.number)
        rows.append(
            [
                para(number, st.cell),
                para(lang.date(s.date), st.cell),
                para(status_labels.get(s.status, s.status), st.cell),
                para(str(s.present) if recorded else "", st.cell),
                para(str(s.absent) if recorded else "", st.cell),
                para(str(s.excused) if recorded else "", st.cell),
                para(lang.percent(s.present / recorded) if recorded else "", st.cell),
            ]
        )
    return _grid(rows, fit_widths(heads, [56, 96, 80] + [(width - 232) / 4] * 4, st.cell_head, flexible=1), 3)


def _members_table(data: CycleReport, lang: PdfLanguage, st: Styles, width: float) -> Table:
    _ = lang.translate
    held = sum(1 for s in data.sessions if s.status == "held" and not s.makeup)
    yes, no = "✓", ""
    heads = (
        ["#", _("Code")]
        + ([] if data.privacy else [_("Name")])
        + [
            _("Attended"),
            _("Completed"),
            _("Dropped out"),
            _("Baseline"),
            _("End score"),
            _("Score change"),
            _("50% better"),
            _("Below %(score)s", score=lang.number(data.remission_below)),
        ]
    )
    rows: list[list] = [[]]
    for index, m in enumerate(data.members, start=1):
        change = m.last - m.baseline if m.baseline is not None and m.last is not None else None
        better = outcomes.responded(m.baseline, m.last)
        row = [para(str(index), st.cell_small), para(m.code, st.cell)]
        row += [] if data.privacy else [para(m.name, st.cell)]
        row += [
            para(_("%(attended)s of %(held)s", attended=m.attended, held=held), st.cell),
            para(yes if m.completed else no, st.cell_center),
            para(yes if m.dropped_out else no, st.cell_center),
            para(lang.number(m.baseline), st.cell),
            para(lang.number(m.last), st.cell),
            para(_signed(lang, change), st.cell),
            para(yes if better else no, st.cell_center),
            para(yes if outcomes.remitted(m.last, data.remission_below) else no, st.cell_center),
        ]
        rows.append(row)
    widths: list[float] = [20, 72, *([0] if not data.privacy else []), 48, 56, 52, 38, 38, 40, 40, 38]
    flexible = 2 if not data.privacy else 1
    widths[flexible] = 0
    widths[flexible] = width - sum(widths)
    # Never split a word in the middle: headings get the room of their longest word (in a smaller
    # font when needed), and the names column keeps the room of the longest name's longest word.
    names = [m.code for m in data.members] if data.privacy else [m.name for m in data.members]
    widths, head_style = fit_heads(heads, widths, st.cell_head, flexible, longest_word(names, st.cell) + 7)
    rows[0] = [para(h, head_style) for h in heads]
    return _grid(rows, widths, 3 if not data.privacy else 2)


def _signed(lang: PdfLanguage, value: float | None) -> str:
    if value is None:
        return ""
    text = lang.number(abs(value))
    return f"−{text}" if value < 0 else (f"+{text}" if value > 0 else text)


def _outcome_lines(data: CycleReport, outcome: GroupOutcome, lang: PdfLanguage, st: Styles) -> list[Flowable]:
    _ = lang.translate
    if not outcome.paired:
        return [para(_("No member has both a first and a last score yet."), st.body)]
    rows = [
        (_("Members with a first and a last score"), _share(lang, outcome.paired, outcome.members)),
        (_("Mean first score"), lang.number(outcome.mean_baseline)),
        (_("Mean last score"), lang.number(outcome.mean_last)),
        (_("Mean change"), _signed(lang, outcome.mean_change)),
        (_("At least 50% better (response)"), _share(lang, outcome.responders, outcome.paired)),
        (
            _("Below %(score)s at the end (remission)", score=lang.number(data.remission_below)),
            _share(lang, outcome.remitted, outcome.paired),
        ),
    ]
    table = Table(
        [[para(label, st.body), Paragraph(f"<b>{esc(value)}</b>", st.body)] for label, value in rows],
        colWidths=[260, 120],
        hAlign="LEFT",
    )
    table.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.3, LINE), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return [table]


def build_story(data: CycleReport, lang: PdfLanguage) -> list[Flowable]:
    """Return the report's flowables."""
    _, st, width = document_setup(lang, PAGESIZE)
    outcome = group_outcome(data.members, data.remission_below)
    info = " · ".join(t for t in (data.programme, data.site, data.protocol) if t)
    dates = [s.date for s in data.sessions if s.date is not None]
    period = f"{lang.date(min(dates))} – {lang.date(max(dates))}" if dates else ""
    story: list[Flowable] = [
        para(_("Cycle report: %(cycle)s", cycle=data.cycle), st.title),
        para(info, st.body),
    ]
    facts = [(_("Facilitators"), ", ".join(data.facilitators) or "—"), (_("Dates"), period or "—")]
    if data.status:
        facts.append((_("Status"), data.status))
    story += [labelled(facts, st.body), Spacer(1, 6)]
    story += [_key_figures(data, outcome, lang, st, width), Spacer(1, 10)]
    story += _charts(data, lang, st, width)
    story += [para(_("Symptom change (%(instrument)s)", instrument=data.instrument), st.heading)]
    story += _outcome_lines(data, outcome, lang, st)
    story += [para(_("Attendance per session"), st.heading), _sessions_table(data, lang, st, width)]
    if any(s.makeup for s in data.sessions):
        story.append(para(_("* make-up session"), st.small))
    story += [para(_("Members"), st.heading), _members_table(data, lang, st, width)]
    story.append(
        para(
            _(
                "Change is the last score minus the first: on a symptom scale such as the PHQ-9, "
                "a fall means fewer symptoms. Chart bars are numbered as the rows above."
            ),
            st.small,
        )
    )
    return story


def render(data: CycleReport, lang: PdfLanguage, *, created: datetime | None = None) -> bytes:
    """Return the cycle report as PDF bytes (deterministic for the same ``created``)."""
    _ = lang.translate
    return build_pdf(
        build_story(data, lang),
        lang,
        title=_("Cycle report: %(cycle)s", cycle=data.cycle),
        footer_left=f"{data.programme} · {data.site} · {data.cycle}",
        created=created,
        pagesize=PAGESIZE,
    )
