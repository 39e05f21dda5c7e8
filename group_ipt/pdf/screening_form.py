"""A paper screening form for any instrument, in any language, with its scoring guide on the back.

Front: the participant code, the date, who screened and the language; the
instruction; every question with one box per answer (vector squares, with the
number to type in printed beside each box); a place for the total. The
question that needs a safety follow-up (PHQ-9 question 9) is shaded and marked.

Back: the scoring guide for the facilitator (how to add up, what to do with
unanswered questions, the bands, the cut-off, and what to do at once after a
risk answer). It starts on an even page, so a form printed on both sides of a
sheet has the guide on the back of the questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.platypus import DocIf, Flowable, KeepTogether, PageBreak, Paragraph, Spacer, Table, TableStyle

from ..formfiles.instruments import Instrument, Item
from . import (
    FONT,
    INK,
    LINE,
    SHADE,
    WARN,
    CheckBox,
    PdfLanguage,
    Styles,
    build_pdf,
    document_setup,
    esc,
    fit_widths,
    has_rtl,
    longest_word,
    para,
)

__all__ = ["ScreeningForm", "build_story", "render"]

PAGESIZE = A4
RISK_MARK = "⚠"


@dataclass(frozen=True)
class ScreeningForm:
    """What the paper form prints.

    ``instrument`` is a loaded instrument (``group_ipt.formfiles.instruments``); its texts
    are English msgids, translated with the document's language. ``cutoff`` is
    the programme's eligibility cut-off when it overrides the file's.
    """

    instrument: Instrument
    programme: str
    site: str = ""
    cutoff: int | None = None


class OptionBox(Flowable):
    """A box to tick with the answer's number printed small beside it, for typing the form in later."""

    def __init__(self, value: int, size: float = 11) -> None:
        super().__init__()
        self.value = str(value)
        self.size = size

    def wrap(self, availWidth, availHeight):  # noqa: N803
        self.width = self.size + 3 + 5.5 * len(self.value)
        return self.width, self.size

    def draw(self):
        canvas = self.canv
        canvas.setLineWidth(0.8)
        canvas.setStrokeColor(INK)
        canvas.rect(0, 0, self.size, self.size, stroke=1, fill=0)
        canvas.setFont(FONT, 7)
        canvas.setFillColor(INK)
        canvas.drawString(self.size + 2, 1, self.value)


def _option_groups(items: Sequence[Item]) -> list[list[Item]]:
    """Group consecutive questions that share the same answers, so each group shares column headings."""
    groups: list[list[Item]] = []
    for item in items:
        if groups and groups[-1][0].options == item.options:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def _fields(lang: PdfLanguage, st: Styles, width: float) -> Table:
    _ = lang.translate

    def label(text: str) -> Flowable:
        return para(text, st.cell_bold)

    parts = (_("day"), _("month"), _("year"))
    date_boxes = Table(
        [
            [CheckBox(14, 26), CheckBox(14, 26), CheckBox(14, 44)],
            [para(part, st.cell_small) for part in parts],
        ],
        # Each box's column at least as wide as the word under it (no word split at a line end).
        colWidths=[max(w, longest_word([p], st.cell_small) + 8) for w, p in zip((32, 32, 50), parts, strict=True)],
        style=[
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 0),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
            ("ALIGN", (0, 1), (-1, 1), "CENTER"),
        ],
    )
    rows = [
        [label(_("Participant code")), CheckBox(18, 150), label(_("Date")), date_boxes],
        [label(_("Screened by")), CheckBox(18, 150), label(_("Language")), para(lang.name or lang.code, st.cell)],
    ]
    table = Table(rows, colWidths=[width * 0.2, width * 0.32, width * 0.13, width * 0.35])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return table


def _items_table(group: list[Item], numbers: dict[str, int], lang: PdfLanguage, st: Styles, width: float) -> Table:
    _ = lang.translate
    options = group[0].options
    option_width = min(62.0, (width * 0.62) / len(options))
    number_width = 26.0
    text_width = width - number_width - option_width * len(options)
    head: list[Flowable | str] = ["", ""]
    for option in options:
        head.append(para(_(option.label), st.cell_small))
    rows: list[list[Flowable | str]] = [head]
    commands: list[tuple] = [
        ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
        ("VALIGN", (0, 1), (-1, -1), "MIDDLE"),
        ("ALIGN", (2, 1), (-1, -1), "CENTER"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
        ("TOPPADDING", (0, 1), (-1, -1), 5),
        ("BOTTOMPADDING", (0, 1), (-1, -1), 5),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
    for row_index, item in enumerate(group, start=1):
        number = numbers[item.id]
        marker = f"{number}." + (f" {RISK_MARK}" if item.risk is not None else "")
        question = _(item.text)
        not_added = _("not added to the total")
        if has_rtl(question):
            # Right-to-left text is wrapped and reordered by para(), which takes no markup.
            text: Flowable = para(question + (f" ({not_added})" if not item.scored else ""), st.cell)
        else:
            suffix = f" <font size='7'>({esc(not_added)})</font>" if not item.scored else ""
            text = Paragraph(esc(question) + suffix, st.cell)
        rows.append(
            [
                Paragraph(f"<b>{esc(marker)}</b>", st.cell),
                text,
                *[OptionBox(option.value) for option in options],
            ]
        )
        if item.risk is not None:
            commands.append(("BACKGROUND", (0, row_index), (-1, row_index), WARN))
        elif row_index % 2 == 0:
            commands.append(("BACKGROUND", (0, row_index), (-1, row_index), SHADE))
    table = Table(rows, colWidths=[number_width, text_width, *[option_width] * len(options)], repeatRows=1)
    table.setStyle(TableStyle(commands))
    return table


def _front(data: ScreeningForm, lang: PdfLanguage, st: Styles, width: float) -> list[Flowable]:
    _ = lang.translate
    instrument = data.instrument
    numbers = {item.id: n for n, item in enumerate(instrument.items, start=1)}
    story: list[Flowable] = [
        para(_(instrument.name), st.title),
        para(" · ".join(t for t in (data.programme, data.site) if t), st.small),
        Spacer(1, 8),
        _fields(lang, st, width),
        Spacer(1, 4),
        para(_(instrument.recall), st.subheading),
        para(_("Read each question aloud and tick one box for the answer given."), st.body),
    ]
    for group in _option_groups(instrument.items):
        story += [_items_table(group, numbers, lang, st, width), Spacer(1, 8)]
    if instrument.risk_items:
        risky = ", ".join(str(numbers[item.id]) for item in instrument.risk_items)
        story.append(
            para(
                _(
                    "%(mark)s Question %(numbers)s: an answer that needs action today. See the back of this form.",
                    mark=RISK_MARK,
                    numbers=risky,
                ),
                st.body,
            )
        )
    office_labels = (_("Total"), "", _("Typed into group-ipt on"), "", _("by"), "")
    office = [
        [
            para(office_labels[0], st.cell_bold),
            CheckBox(18, 60),
            para(office_labels[2], st.cell_bold),
            CheckBox(18, 90),
            para(office_labels[4], st.cell_bold),
            CheckBox(18, 90),
        ]
    ]
    if instrument.scoring.method == "none":
        office[0][:2] = ["", ""]
    story += [
        Spacer(1, 6),
        Table(
            office,
            colWidths=fit_widths(office_labels, [50, 74, 150, 100, 24, 100], st.cell_bold, flexible=2, padding=10),
            hAlign="LEFT",
            style=[("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0)],
        ),
    ]
    return story


def _question_list(numbers: list[int]) -> str:
    """Return "1-9" for a run of numbers, "1, 3, 5" otherwise."""
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}–{numbers[-1]}"
    return ", ".join(str(n) for n in numbers)


def _scoring_guide(data: ScreeningForm, lang: PdfLanguage, st: Styles, width: float) -> list[Flowable]:
    """Return the back page: how to add up, what the total means, who can join, when to act now."""
    _ = lang.translate
    instrument = data.instrument
    numbers = {item.id: n for n, item in enumerate(instrument.items, start=1)}
    story: list[Flowable] = [
        para(_("Scoring guide: %(name)s", name=_(instrument.name)), st.title),
        para(_("For the facilitator. Do not show this page to the participant."), st.small),
        para(_("How to add up"), st.heading),
        *_how_to_add_up(instrument, numbers, lang, st),
        para(
            _(
                "To type the form in, enter the number beside each ticked box. Leave a question empty "
                "when no box was ticked."
            ),
            st.body,
        ),
    ]
    if instrument.bands:
        story += [para(_("What the total means"), st.heading), _bands_table(instrument, lang, st, width)]
    if instrument.eligibility is not None:
        story += [para(_("Who can join a group"), st.heading), _eligibility_rule(data, lang, st)]
    if instrument.risk_items:
        story += [para(_("Act now"), st.heading), KeepTogether(_risk_table(instrument, numbers, lang, st, width))]
    return story


def _how_to_add_up(instrument: Instrument, numbers: dict[str, int], lang: PdfLanguage, st: Styles) -> list[Flowable]:
    """Return which questions add up to the total, its range, and what a missing answer does."""
    _ = lang.translate
    method = instrument.scoring.method
    if method == "none":
        return [para(_("This form has no total: type in each answer as it was given."), st.body)]
    scored = [numbers[item.id] for item in instrument.scored_items]
    unscored = [numbers[item.id] for item in instrument.items if not item.scored]
    text = _("Add up the numbers beside the ticked boxes of questions %(questions)s.", questions=_question_list(scored))
    if method == "scaled":
        text += " " + _(
            "Then multiply the sum by %(multiplier)s.", multiplier=lang.number(instrument.scoring.multiplier)
        )
    story = [para(text, st.body)]
    if unscored:
        story.append(
            para(
                _("Question %(questions)s is recorded but not added to the total.", questions=_question_list(unscored)),
                st.body,
            )
        )
    story.append(
        para(_("Totals run from %(low)s to %(high)s.", low=instrument.min_total, high=instrument.max_total), st.body)
    )
    story.append(para(_missing_answers_rule(instrument, lang), st.body))
    return story


def _missing_answers_rule(instrument: Instrument, lang: PdfLanguage) -> str:
    """Say what an unanswered question does to the total (estimated from the others, or no total)."""
    _ = lang.translate
    allowed = instrument.scoring.prorate_max_missing
    if not allowed:
        return _(
            "A question without an answer is never counted as 0: if any question was left unanswered, "
            "there is no total."
        )
    ngettext = lang.translate_plural
    return ngettext(
        "A question without an answer is never counted as 0. If no more than %(num)s question was "
        "left unanswered, group-ipt estimates the total from the other answers; with more, there is "
        "no total.",
        "A question without an answer is never counted as 0. If no more than %(num)s questions were "
        "left unanswered, group-ipt estimates the total from the other answers; with more, there is "
        "no total.",
        allowed,
    )


def _bands_table(instrument: Instrument, lang: PdfLanguage, st: Styles, width: float) -> Table:
    """Return the table of score bands: the range, its meaning and what to do."""
    _ = lang.translate
    rows: list[list[Flowable]] = [
        [para(_("Total"), st.cell_bold), para(_("Meaning"), st.cell_bold), para(_("What to do"), st.cell_bold)]
    ]
    for band in instrument.bands:
        rows.append(
            [
                para(f"{band.min}–{band.max}", st.cell),
                para(_(band.label), st.cell_bold),
                para(_(band.explanation), st.cell),
            ]
        )
    table = Table(rows, colWidths=[60, width * 0.28, width - 60 - width * 0.28], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, LINE),
                ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def _eligibility_rule(data: ScreeningForm, lang: PdfLanguage, st: Styles) -> Flowable:
    """Say which totals meet the programme's cut-off (the programme's own, else the instrument's)."""
    _ = lang.translate
    eligibility = data.instrument.eligibility
    assert eligibility is not None
    cutoff = data.cutoff if data.cutoff is not None else eligibility.cutoff
    if eligibility.direction == ">=":
        text = _("A total of %(cutoff)s or more meets this programme's cut-off for joining a group.", cutoff=cutoff)
    else:
        text = _("A total of %(cutoff)s or less meets this programme's cut-off for joining a group.", cutoff=cutoff)
    return para(text, st.body)


def _risk_table(instrument: Instrument, numbers: dict[str, int], lang: PdfLanguage, st: Styles, width: float) -> Table:
    """Return a row per risk question: which answers mean act now, and what to do."""
    _ = lang.translate
    rows = []
    for item in instrument.risk_items:
        assert item.risk is not None
        answers = [option for option in item.options if item.risk.matches(option.value)]
        listed = "; ".join(f"“{_(option.label)}” ({option.value})" for option in answers)
        action = _(
            "Question %(number)s: if the answer is one of %(answers)s, act now, whatever the total. "
            "Ask about thoughts and plans of self-harm. If the danger is close, do not leave the person "
            "alone and get urgent help. Tell your supervisor today, and record the answer in group-ipt: "
            "it opens a referral that stays on the list until it is closed.",
            number=numbers[item.id],
            answers=listed,
        )
        rows.append([para(RISK_MARK, st.mark), para(action, st.body)])
    table = Table(rows, colWidths=[24, width - 24])
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), WARN),
                ("BOX", (0, 0), (-1, -1), 1, INK),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return table


def build_story(data: ScreeningForm, lang: PdfLanguage) -> list[Flowable]:
    """Return the form's flowables: the questions, then (on an even page) the scoring guide."""
    _, st, width = document_setup(lang, PAGESIZE)
    story = _front(data, lang, st, width)
    story.append(PageBreak())
    # Two-sided printing puts even pages on the back: keep the guide off the next sheet's front.
    blank = [
        para(_("This page is left blank, so that the scoring guide prints on the back of the questions."), st.small),
        PageBreak(),
    ]
    story.append(DocIf("doc.page % 2 == 1", blank))
    story += _scoring_guide(data, lang, st, width)
    return story


def render(data: ScreeningForm, lang: PdfLanguage, *, created: datetime | None = None) -> bytes:
    """Return the paper form as PDF bytes (deterministic for the same ``created``)."""
    _ = lang.translate
    name = _(data.instrument.name)
    footer = " · ".join(t for t in (data.programme, name, f"v{data.instrument.version}") if t)
    return build_pdf(
        build_story(data, lang),
        lang,
        title=name,
        footer_left=footer,
        created=created,
        pagesize=PAGESIZE,
    )
