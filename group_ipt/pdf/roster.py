"""The roster (sign-in sheet) of a cycle: one row per member, one column per session.

Landscape A4. Sessions already recorded show the attendance mark (✓ present,
✗ absent, a translatable letter for excused); sessions still to come, or not yet
recorded, show an empty box to tick on paper. Up to 16 sessions share one table
(16 sessions x 15 members fit one page); more sessions continue in a second
table, more members continue on the next page with the column headings repeated.
With ``privacy`` the name column is left out and members are known by code only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time

from babel.dates import format_time
from reportlab.lib.pagesizes import A4, landscape
from reportlab.platypus import Flowable, PageBreak, Paragraph, Spacer, Table, TableStyle

from . import (
    FONT,
    FONT_BOLD,
    FRAME_PADDING,
    GREY,
    INK,
    LINE,
    MARGIN,
    SHADE,
    CheckBox,
    PdfLanguage,
    Styles,
    build_pdf,
    cell,
    document_setup,
    esc,
    labelled,
    longest_word,
    para,
    visual,
)

__all__ = ["MAX_SESSIONS_PER_TABLE", "Roster", "RosterMember", "RosterSession", "build_story", "render"]

PAGESIZE = landscape(A4)
MAX_SESSIONS_PER_TABLE = 16
PRESENT_MARK = "✓"
ABSENT_MARK = "✗"


@dataclass(frozen=True)
class RosterSession:
    """One session column: its number in the protocol and its (planned or held) date.

    ``key`` is what members' ``attendance`` is keyed by (default: the number;
    use the session id when a make-up session repeats a number). A make-up
    session's number is printed with a star.
    """

    number: int
    date: date | None = None
    key: str | int | None = None
    makeup: bool = False

    @property
    def attendance_key(self) -> str | int:
        return self.number if self.key is None else self.key


@dataclass(frozen=True)
class RosterMember:
    """One member row.

    ``sex`` is ``female``, ``male``, ``other`` or empty. ``problem_areas`` holds
    problem-area codes (``grief``, ``disputes``, ``transitions``, ``isolation``;
    any other text prints as given). ``attendance`` maps a session's
    ``attendance_key`` to ``present``, ``late``, ``absent`` or ``excused``; a
    session missing from it prints an empty box.
    """

    code: str
    name: str
    sex: str = ""
    problem_areas: Sequence[str] = ()
    attendance: Mapping[str | int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Roster:
    """Everything the roster prints. Texts are printed as given (names as typed).

    ``weekday`` is 0 for Monday ... 6 for Sunday; ``time`` the usual start time.
    """

    programme: str
    site: str
    cycle: str
    sessions: Sequence[RosterSession]
    members: Sequence[RosterMember]
    facilitators: Sequence[str] = ()
    venue: str = ""
    weekday: int | None = None
    time: time | None = None
    privacy: bool = False


def sex_label(lang: PdfLanguage, sex: str) -> str:
    """Return the translated word for a member's sex (the code itself when unknown)."""
    _ = lang.translate
    labels = {"female": _("Female"), "male": _("Male"), "other": _("Other")}
    return labels.get(sex, sex)


def problem_area_label(lang: PdfLanguage, code: str) -> str:
    """Return the plain, translated name of a problem area (the code itself when unknown)."""
    _ = lang.translate
    # I18N: problem areas, shorter than on screen so 16 sessions and 15 members fit on one page
    labels = {
        "grief": _("grief"),
        "disputes": _("disagreements"),
        "transitions": _("life changes"),
        "isolation": _("loneliness"),
    }
    return labels.get(code, code)


def attendance_mark(lang: PdfLanguage, status: str) -> str:
    """Return the mark printed for a recorded attendance status."""
    _ = lang.translate
    if status == "present":
        return PRESENT_MARK
    if status == "absent":
        return ABSENT_MARK
    if status == "excused":
        # I18N: one letter marking an excused absence on the printed roster
        return _("E")
    if status == "late":
        # I18N: one letter marking a member who came late (counted as present) on the printed roster
        return _("L")
    return status


def meeting_line(lang: PdfLanguage, weekday: int | None, at: time | None) -> str:
    """Return e.g. "Tuesdays at 14:00" in the document's language ('' when neither is known)."""
    _ = lang.translate
    day = lang.locale.days["format"]["wide"][weekday] if weekday is not None else ""
    clock = format_time(at, "short", locale=lang.locale) if at is not None else ""
    if day and clock:
        return _("every %(day)s at %(time)s", day=day, time=clock)
    if day:
        return _("every %(day)s", day=day)
    return clock


def _header(data: Roster, lang: PdfLanguage, st: Styles, width: float) -> list[Flowable]:
    _ = lang.translate

    def pair(label: str, value: str) -> Flowable:
        return labelled([(label, value)], st.body)

    meets = meeting_line(lang, data.weekday, data.time)
    rows = [
        [pair(_("Programme"), data.programme), pair(_("Site"), data.site), pair(_("Cycle"), data.cycle)],
        [
            pair(_("Facilitators"), ", ".join(data.facilitators) or "—"),
            pair(_("Venue"), data.venue or "—"),
            pair(_("Meets"), meets or "—"),
        ],
    ]
    table = Table(rows, colWidths=[width * 0.36, width * 0.32, width * 0.32])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return [
        para(_("Attendance roster and sign-in sheet"), st.title),
        table,
        Spacer(1, 3),
        _legend(lang, st),
        Spacer(1, 4),
    ]


def _column_widths(
    width: float, sessions: int, privacy: bool, needs: dict[str, float] | None = None
) -> dict[str, float]:
    """Return each column's width; ``needs`` gives a column's least width (its longest word and padding)."""
    fixed = {"no": 16.0, "code": 68.0, "sex": 46.0, "area": 74.0, "sign": 76.0}
    for column, need in (needs or {}).items():
        fixed[column] = max(fixed[column], need)
    name_min = 0.0 if privacy else 116.0
    session = min(max((width - sum(fixed.values()) - name_min) / max(sessions, 1), 20.0), 46.0)
    rest = width - sum(fixed.values()) - session * sessions
    if privacy:
        fixed["sign"] += rest
        name = 0.0
    else:
        name = rest
    return {**fixed, "name": name, "session": session}


def _table(data: Roster, sessions: Sequence[RosterSession], lang: PdfLanguage, st: Styles, width: float) -> Table:
    """Return the sign-in table: two heading rows, then a row per member."""
    w = _column_widths(width, len(sessions), data.privacy, _least_widths(data, lang, st))
    top, head, widths, first, last = _heading_rows(data, sessions, lang, st, w)
    rows: list[list[Flowable | str]] = [top, head, *_member_rows(data, sessions, lang, st, w)]
    table = Table(rows, colWidths=widths, repeatRows=2)
    table.setStyle(_table_style(st, len(head), len(rows), first, last, bool(sessions)))
    return table


def _least_widths(data: Roster, lang: PdfLanguage, st: Styles) -> dict[str, float]:
    """Return the least width of the text columns: their longest word and the cell's padding."""
    # A column is never narrower than its longest word: ReportLab would split the word in the middle.
    _ = lang.translate
    sexes = [sex_label(lang, m.sex) for m in data.members]
    areas_text = [problem_area_label(lang, a) for m in data.members for a in m.problem_areas]
    return {
        "code": longest_word([m.code for m in data.members], st.cell) + 7,
        "sex": max(longest_word([_("Sex")], st.cell_bold), longest_word(sexes, st.cell)) + 7,
        "area": max(longest_word([_("Problem area")], st.cell_bold), longest_word(areas_text, st.cell)) + 7,
        "sign": longest_word([_("Signature or thumbprint")], st.cell_bold) + 7,
    }


def _heading_rows(
    data: Roster, sessions: Sequence[RosterSession], lang: PdfLanguage, st: Styles, w: dict[str, float]
) -> tuple[list[Flowable | str], list[Flowable | str], list[float], int, int]:
    """Return the two heading rows, the column widths, and the first and last session column."""
    _ = lang.translate
    head: list[Flowable | str] = [para("#", st.cell_small), para(_("Code"), st.cell_bold)]
    widths = [w["no"], w["code"]]
    if not data.privacy:
        head.append(para(_("Name"), st.cell_bold))
        widths.append(w["name"])
    head += [para(_("Sex"), st.cell_bold), para(_("Problem area"), st.cell_bold)]
    widths += [w["sex"], w["area"]]
    first = len(head)
    for session in sessions:
        # Day and month on lines of their own: a narrow column never breaks a month's name.
        when = f"{esc(lang.date(session.date, 'd'))}<br/>{esc(lang.date(session.date, 'LLL'))}" if session.date else ""
        number = f"{session.number}*" if session.makeup else str(session.number)
        head.append(Paragraph(f"<b>{number}</b><br/>{when}", st.cell_small))
        widths.append(w["session"])
    last = len(head) - 1
    head.append(para(_("Signature or thumbprint"), st.cell_bold))
    widths.append(w["sign"])
    # A first heading row names the session columns; the others span both rows.
    top: list[Flowable | str] = [cell if not first <= col <= last else "" for col, cell in enumerate(head)]
    if sessions:
        top[first] = para(_("Sessions and their dates"), st.cell_center)
    head = [cell if first <= col <= last else "" for col, cell in enumerate(head)]
    return top, head, widths, first, last


def _member_rows(
    data: Roster, sessions: Sequence[RosterSession], lang: PdfLanguage, st: Styles, w: dict[str, float]
) -> list[list[Flowable | str]]:
    """Return a row per member: number, code, name, sex, problem areas, a mark or a box per session."""
    rows: list[list[Flowable | str]] = []
    room = {name: width - 6 for name, width in w.items()}  # less the cell's padding
    for index, member in enumerate(data.members, start=1):
        row: list[Flowable | str] = [str(index), cell(member.code, st.cell, room["code"])]
        if not data.privacy:
            row.append(cell(member.name, st.cell, room["name"]))
        row.append(cell(sex_label(lang, member.sex), st.cell, room["sex"]))
        areas = ", ".join(problem_area_label(lang, a) for a in member.problem_areas)
        row.append(cell(areas, st.cell, room["area"]))
        for session in sessions:
            status = member.attendance.get(session.attendance_key)
            row.append(visual(attendance_mark(lang, status)) if status else CheckBox(11))
        row.append("")
        rows.append(row)
    return rows


def _table_style(st: Styles, columns: int, rows: int, first: int, last: int, has_sessions: bool) -> TableStyle:
    """Return the table's grid, shading, paddings, fonts and the heading cells' spans."""
    commands: list[tuple] = [
        ("GRID", (0, 0), (-1, -1), 0.5, LINE),
        ("BACKGROUND", (0, 0), (-1, 1), SHADE),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (first, 2), (last, -1), "CENTER"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 2), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 2), (-1, -1), 4),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("LEFTPADDING", (first, 1), (last, -1), 1),
        ("RIGHTPADDING", (first, 1), (last, -1), 1),
        # Fonts of the cells that are plain strings (see pdf.cell); marks big and bold.
        ("FONT", (0, 2), (-1, -1), FONT, st.cell.fontSize, st.cell.leading),
        ("FONT", (0, 2), (0, -1), FONT, st.cell_small.fontSize, st.cell_small.leading),
        ("ALIGN", (0, 2), (0, -1), "CENTER"),
        ("FONT", (first, 2), (last, -1), FONT_BOLD, st.mark.fontSize, st.mark.leading),
    ]
    for col in range(columns):
        if col < first or col > last:
            commands.append(("SPAN", (col, 0), (col, 1)))
    if has_sessions:
        commands.append(("SPAN", (first, 0), (last, 0)))
    # Every other row lightly shaded so a finger can follow a row across the page.
    commands += [("BACKGROUND", (0, r), (-2, r), SHADE) for r in range(3, rows, 2)]
    return TableStyle(commands)


def _legend(lang: PdfLanguage, st: Styles) -> Flowable:
    _ = lang.translate
    # Translated outside the f-strings: pybabel cannot see a call inside one (Python 3.11).
    marks = [
        (PRESENT_MARK, _("present")),
        (ABSENT_MARK, _("absent")),
        (attendance_mark(lang, "excused"), _("excused")),
        (attendance_mark(lang, "late"), _("late")),
        ("*", _("make-up session")),
    ]
    empty_box = _("Empty box: tick when the member comes, write ✗ when they do not.")
    if lang.rtl:
        return para("   ".join([*(f"{mark} {word}" for mark, word in marks), empty_box]), st.small)
    parts = [*(f"<b>{esc(mark)}</b> {esc(word)}" for mark, word in marks), esc(empty_box)]
    return Paragraph("&nbsp;&nbsp;&nbsp;".join(parts), st.small)


def build_story(data: Roster, lang: PdfLanguage) -> list[Flowable]:
    """Return the roster's flowables: the cycle header, the table(s) and the legend."""
    _, st, width = document_setup(lang, PAGESIZE)
    story: list[Flowable] = _header(data, lang, st, width)
    chunks = [
        data.sessions[i : i + MAX_SESSIONS_PER_TABLE] for i in range(0, len(data.sessions), MAX_SESSIONS_PER_TABLE)
    ] or [[]]
    for i, chunk in enumerate(chunks):
        if i:
            story.append(PageBreak())
            first, last = chunk[0].number, chunk[-1].number
            story.append(para(_("Sessions %(first)s to %(last)s", first=first, last=last), st.subheading))
        story.append(_table(data, chunk, lang, st, width))
    if not data.members:
        story.append(para(_("No members yet."), st.body))
    return story


def render(data: Roster, lang: PdfLanguage, *, created: datetime | None = None) -> bytes:
    """Return the roster as PDF bytes (deterministic for the same ``created``)."""
    _ = lang.translate
    heading = _("Attendance roster and sign-in sheet")
    running = visual(f"{data.cycle} · {data.site} — {heading}")

    def on_page(canvas, doc) -> None:
        if canvas.getPageNumber() == 1:
            return  # the first page has the full header as flowables
        canvas.saveState()
        canvas.setFont(FONT_BOLD, 9)
        canvas.setFillColor(INK)
        canvas.drawString(MARGIN + FRAME_PADDING, PAGESIZE[1] - MARGIN + 2, running)
        canvas.setFont(FONT, 8)
        canvas.setFillColor(GREY)
        canvas.drawRightString(PAGESIZE[0] - MARGIN - FRAME_PADDING, PAGESIZE[1] - MARGIN + 2, visual(data.programme))
        canvas.restoreState()

    return build_pdf(
        build_story(data, lang),
        lang,
        title=f"{heading}: {data.cycle}",
        footer_left=f"{data.programme} · {data.site} · {data.cycle}",
        created=created,
        pagesize=PAGESIZE,
        on_page=on_page,
    )
