"""The facilitator's script booklet: one session, or every session of a protocol, in one language.

Each session starts on a new page: its title, phase and length, its goals, the
timed agenda at a glance, then every step with what to say (read aloud), what
to ask, the activity, what to watch for, the task for the week and the
guidance for each problem area, and the safety reminder in a box. A booklet of
more than one session opens with a cover and a table of contents (with page
numbers, and PDF bookmarks for reading on screen).

The texts arrive translated and with their placeholders filled: this module
prints them as given. A ``group_ipt.formfiles.scripts.Script`` passed through
``scripts.placeholders_filled(script, context, translate)`` has the shape of
:class:`SessionScript` and can be used as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    PageBreak,
    Spacer,
    Table,
    TableStyle,
)

from ..core.cycles import PHASE_LABELS
from . import (
    FONT,
    FONT_BOLD,
    GREY,
    INK,
    LINE,
    SHADE,
    PdfLanguage,
    Styles,
    build_pdf,
    document_setup,
    labelled,
    para,
    safety_numbers,
    visual,
    warning_box,
)

__all__ = ["Booklet", "Guidance", "SessionScript", "Step", "build_story", "render"]

PAGESIZE = A4
TEXT_KINDS = ("say", "ask", "activity", "watch", "homework")


@dataclass(frozen=True)
class Guidance:
    """What to do for members working on one problem area (``name`` is the area's translated name)."""

    name: str
    say: Sequence[str] = ()
    ask: Sequence[str] = ()
    activity: Sequence[str] = ()
    watch: Sequence[str] = ()
    homework: Sequence[str] = ()


@dataclass(frozen=True)
class Step:
    """One timed step of a session's agenda."""

    title: str
    minutes: int
    say: Sequence[str] = ()
    ask: Sequence[str] = ()
    activity: Sequence[str] = ()
    watch: Sequence[str] = ()
    homework: Sequence[str] = ()
    guidance: Sequence[Guidance] = ()


@dataclass(frozen=True)
class SessionScript:
    """The script of one session. ``phase`` is a protocol phase code (``pre-group``, ``initial``...)."""

    session_number: int
    phase: str
    minutes: int
    title: str
    goals: Sequence[str]
    agenda: Sequence[Step]
    watch: Sequence[str] = ()
    reminder: Sequence[str] = ()


class _SessionLike(Protocol):
    """A session's script as the booklet reads it (``scripts.Script``; read-only, so frozen classes fit)."""

    @property
    def session_number(self) -> int: ...
    @property
    def phase(self) -> str: ...
    @property
    def minutes(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def goals(self) -> Sequence[str]: ...
    @property
    def agenda(self) -> Sequence[Any]: ...
    @property
    def watch(self) -> Sequence[str]: ...
    @property
    def reminder(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Booklet:
    """A booklet: ``sessions`` in order (one for a session's script, all for a protocol's).

    ``protocol`` is the protocol's translated name. A table of contents is
    printed when there is more than one session (or when ``contents`` says so).
    """

    programme: str
    protocol: str
    sessions: Sequence[_SessionLike]
    site: str = ""
    contents: bool | None = None
    # The programme's emergency and referral numbers (SAFETY_CONTACTS): (name, phone) pairs.
    safety_contacts: Sequence[tuple[str, str]] = ()

    @property
    def has_contents(self) -> bool:
        return len(self.sessions) > 1 if self.contents is None else self.contents


def phase_label(lang: PdfLanguage, phase: str) -> str:
    """Return the translated name of a protocol phase (the code itself when unknown)."""
    text = PHASE_LABELS.get(phase)
    return lang.translate(text) if text else phase


def session_heading(lang: PdfLanguage, script: _SessionLike) -> str:
    """Return e.g. "Session 3: Working on problem areas" (the pre-group session has its own word)."""
    _ = lang.translate
    if script.session_number == 0:
        return _("Individual meeting: %(title)s", title=script.title)
    return _("Session %(number)s: %(title)s", number=script.session_number, title=script.title)


def _entry(text: str, style: ParagraphStyle, key: str, contents: list[tuple[str, int, str]]) -> Flowable:
    """Return a session heading that the document lists in its contents and bookmarks."""
    heading = para(text, style)
    heading.toc_entry = (text, key, contents)  # type: ignore[attr-defined]
    return heading


def _after_flowable(doc: Any, flowable: Flowable) -> None:
    entry = getattr(flowable, "toc_entry", None)
    if entry is not None:
        text, key, contents = entry
        doc.canv.bookmarkPage(key)
        doc.canv.addOutlineEntry(text, key, level=0)
        contents.append((text, doc.page, key))


class _Contents(Flowable):
    """The table of contents, laid out in ONE pass.

    Its size is known beforehand (one line per session), so it reserves the
    space, and its lines (title, leader dots, page number, a link) are drawn
    when the document is saved and every session's page is known. ReportLab's
    TableOfContents would lay the whole booklet out twice instead.
    """

    def __init__(self, entries: list[tuple[str, int, str]], style: ParagraphStyle, start: int, stop: int) -> None:
        super().__init__()
        self.entries = entries
        self.style = style
        self.start = start
        self.stop = stop

    def wrap(self, availWidth, availHeight):  # noqa: N803
        self.width = availWidth
        return availWidth, (self.stop - self.start) * self.style.leading

    def split(self, availWidth, availHeight):  # noqa: N803
        fits = int(availHeight // self.style.leading)
        if fits < 1 or fits >= self.stop - self.start:
            return []
        middle = self.start + fits
        return [
            _Contents(self.entries, self.style, self.start, middle),
            _Contents(self.entries, self.style, middle, self.stop),
        ]

    def draw(self):
        x, y = self.canv.absolutePosition(0, 0)
        self.canv.draw_later(lambda canvas: self._draw_lines(canvas, x, y))

    def _draw_lines(self, canvas: Any, x: float, y: float) -> None:
        style = self.style
        font, size, leading = style.fontName, style.fontSize, style.leading
        top = y + (self.stop - self.start) * leading
        canvas.setFont(font, size)
        canvas.setFillColor(INK)
        for i, (text, page, key) in enumerate(self.entries[self.start : self.stop]):
            baseline = top - (i + 1) * leading + (leading - size) / 2
            number = str(page)
            room = self.width - pdfmetrics.stringWidth(number, font, size) - 24
            title = _fit(visual(text), font, size, room)
            canvas.drawString(x, baseline, title)
            dots_from = x + pdfmetrics.stringWidth(title, font, size) + 8
            dots_to = x + self.width - pdfmetrics.stringWidth(number, font, size) - 8
            dot = pdfmetrics.stringWidth(" .", font, size)
            if dots_to > dots_from + dot:
                canvas.drawRightString(dots_to, baseline, " ." * int((dots_to - dots_from) // dot))
            canvas.drawRightString(x + self.width, baseline, number)
            canvas.linkRect("", key, (x, baseline - 3, x + self.width, baseline + size), relative=0)


def _fit(text: str, font: str, size: float, width: float) -> str:
    """Cut a one-line text to ``width``, ending with an ellipsis if it was cut."""
    if pdfmetrics.stringWidth(text, font, size) <= width:
        return text
    while text and pdfmetrics.stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _extra_styles(st: Styles) -> dict[str, ParagraphStyle]:
    body = st.body
    return {
        "say": ParagraphStyle(
            "say", parent=body, leftIndent=14, fontSize=body.fontSize + 0.5, leading=body.leading + 1
        ),
        "bullet": ParagraphStyle(
            "bullet", parent=body, leftIndent=14, bulletIndent=0, bulletFontName=FONT, bulletText="•"
        ),
        "label": ParagraphStyle("label", parent=body, fontName=FONT_BOLD, spaceBefore=4, spaceAfter=1, keepWithNext=1),
        "step": ParagraphStyle("step", parent=st.subheading, spaceBefore=10, keepWithNext=1),
        "toc": ParagraphStyle("toc", parent=body, fontSize=body.fontSize + 1, leading=body.leading + 5),
        "cover": ParagraphStyle("cover", parent=st.title, fontSize=26, leading=32, spaceAfter=14),
    }


def _texts(lang: PdfLanguage, obj: Any, st: Styles, extra: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Return the labelled texts of a step or of problem-area guidance, in a fixed order."""
    _ = lang.translate
    labels = {
        "say": _("Say"),
        "ask": _("Ask"),
        "activity": _("Activity"),
        "watch": _("Watch for"),
        "homework": _("Task for the week"),
    }
    out: list[Flowable] = []
    for kind in TEXT_KINDS:
        texts = [t for t in getattr(obj, kind, ()) if t]
        if not texts:
            continue
        out.append(para(f"{labels[kind]}:", extra["label"]))
        if kind == "say":
            # Read aloud: quoted and indented, one paragraph each, so the eye finds them fast.
            out += [para(f"“{text}”", extra["say"]) for text in texts]
        else:
            # A paragraph's own bullet, not a ListFlowable: that one deep-copies its style on
            # every wrap (a tenth of the booklet's time), for the same look.
            out += [para(text, extra["bullet"]) for text in texts]
    return out


def _agenda_table(lang: PdfLanguage, script: _SessionLike, st: Styles, width: float) -> Table:
    _ = lang.translate
    rows: list[list[Flowable]] = [
        [para(_("From"), st.cell_bold), para(_("Step"), st.cell_bold), para(_("Minutes"), st.cell_bold)]
    ]
    elapsed = 0
    for step in script.agenda:
        rows.append(
            [
                para(f"{elapsed // 60}:{elapsed % 60:02d}", st.cell),
                para(step.title, st.cell),
                para(str(step.minutes), st.cell),
            ]
        )
        elapsed += step.minutes
    rows.append([para("", st.cell), para(_("Total"), st.cell_bold), para(str(elapsed), st.cell_bold)])
    table = Table(rows, colWidths=[44, width - 44 - 60, 60], repeatRows=1, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, LINE),
                ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _session(
    lang: PdfLanguage,
    script: _SessionLike,
    st: Styles,
    extra: dict[str, ParagraphStyle],
    width: float,
    contents: list[tuple[str, int, str]],
    safety_contacts: Sequence[tuple[str, str]] = (),
) -> list[Flowable]:
    """Return one session's pages: heading, goals, agenda, what to watch for, the safety box, the steps."""
    _ = lang.translate
    key = f"session-{script.session_number}-{len(contents)}"
    story: list[Flowable] = [
        _entry(session_heading(lang, script), st.title, key, contents),
        para(
            _("%(phase)s · %(minutes)s minutes", phase=phase_label(lang, script.phase), minutes=script.minutes),
            st.small,
        ),
    ]
    if script.goals:
        story += [para(_("Goals of this session"), st.heading), *[para(g, extra["bullet"]) for g in script.goals]]
    story += [para(_("Agenda"), st.heading), _agenda_table(lang, script, st, width)]
    if script.watch:
        story += [
            para(_("Watch for during the whole session"), st.heading),
            *[para(w, extra["bullet"]) for w in script.watch],
        ]
    if script.reminder:
        rows = [
            [para(_("If someone talks about harming themselves"), st.cell_bold)],
            *[[para(r, st.body)] for r in script.reminder],
            *safety_numbers(lang, safety_contacts, st),
        ]
        story += [Spacer(1, 8), KeepTogether(warning_box(rows, width))]
    story.append(para(_("Step by step"), st.heading))
    return story + _steps(lang, script, st, extra)


def _steps(lang: PdfLanguage, script: _SessionLike, st: Styles, extra: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Return each agenda step with its clock time, its texts and the guidance per problem area."""
    _ = lang.translate
    story: list[Flowable] = []
    elapsed = 0
    for step in script.agenda:
        clock = f"{elapsed // 60}:{elapsed % 60:02d}"
        heading = _("%(clock)s %(title)s (%(minutes)s min)", clock=clock, title=step.title, minutes=step.minutes)
        story += [CondPageBreak(90), para(heading, extra["step"]), *_texts(lang, step, st, extra)]
        for guidance in getattr(step, "guidance", ()):
            story.append(para(_("For members working on %(area)s", area=guidance.name), extra["label"]))
            story.append(_Indent(_texts(lang, guidance, st, extra)))
        elapsed += step.minutes
    return story


class _Indent(Flowable):
    """Flowables shifted right, for guidance that belongs to the step above."""

    def __init__(self, flowables: list[Flowable], indent: float = 16) -> None:
        super().__init__()
        self.flowables = flowables
        self.indent = indent

    def wrap(self, availWidth, availHeight):  # noqa: N803
        self._table = Table([[f] for f in self.flowables] or [[""]], colWidths=[availWidth - self.indent])
        self._table.setStyle(
            TableStyle(
                [
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("LINEBEFORE", (0, 0), (0, -1), 1.5, GREY),
                    ("LEFTPADDING", (0, 0), (-1, -1), 6),
                    ("TOPPADDING", (0, 0), (-1, -1), 0),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
                ]
            )
        )
        w, h = self._table.wrap(availWidth - self.indent, availHeight)
        return w + self.indent, h

    def split(self, availWidth, availHeight):  # noqa: N803
        self.wrap(availWidth, availHeight)
        parts = self._table.split(availWidth - self.indent, availHeight)
        return [_Shift(p, self.indent) for p in parts]

    def draw(self):
        self._table.drawOn(self.canv, self.indent, 0)


class _Shift(Flowable):
    def __init__(self, flowable: Flowable, indent: float) -> None:
        super().__init__()
        self.flowable = flowable
        self.indent = indent

    def wrap(self, availWidth, availHeight):  # noqa: N803
        w, h = self.flowable.wrap(availWidth - self.indent, availHeight)
        return w + self.indent, h

    def draw(self):
        self.flowable.drawOn(self.canv, self.indent, 0)


def _cover(
    data: Booklet, lang: PdfLanguage, st: Styles, extra: dict[str, ParagraphStyle], contents: list
) -> list[Flowable]:
    _ = lang.translate
    numbers = [s.session_number for s in data.sessions]
    return [
        Spacer(1, 40),
        para(_("Facilitator scripts"), extra["cover"]),
        para(data.protocol, st.title),
        Spacer(1, 8),
        labelled([(_("Language"), lang.name or lang.code)], st.body),
        labelled([(_("Programme"), data.programme)], st.body),
        *([labelled([(_("Site"), data.site)], st.body)] if data.site else []),
        para(lang.translate_plural("%(num)s session", "%(num)s sessions", len(numbers)), st.body),
        Spacer(1, 20),
        para(_("Contents"), st.heading),
        _Contents(contents, extra["toc"], 0, len(data.sessions)),
    ]


def build_story(data: Booklet, lang: PdfLanguage) -> list[Flowable]:
    """Return the booklet's flowables: cover and contents (for several sessions), then each session."""
    _, st, width = document_setup(lang, PAGESIZE, base_size=10.5)
    extra = _extra_styles(st)
    contents: list[tuple[str, int, str]] = []  # (heading, page, bookmark), filled while the pages are laid out
    story: list[Flowable] = []
    if data.has_contents:
        story += _cover(data, lang, st, extra, contents)
    for script in data.sessions:
        if story:
            story.append(PageBreak())
        story += _session(lang, script, st, extra, width, contents, data.safety_contacts)
    return story


def render(data: Booklet, lang: PdfLanguage, *, created: datetime | None = None) -> bytes:
    """Return the booklet as PDF bytes (deterministic for the same ``created``)."""
    _ = lang.translate
    if len(data.sessions) == 1:
        title = f"{data.protocol} · {session_heading(lang, data.sessions[0])}"
    else:
        title = " · ".join((_("Facilitator scripts"), data.protocol))
    return build_pdf(
        build_story(data, lang),
        lang,
        title=title,
        footer_left=f"{data.programme} · {data.protocol}",
        created=created,
        pagesize=PAGESIZE,
        after_flowable=_after_flowable,
    )
