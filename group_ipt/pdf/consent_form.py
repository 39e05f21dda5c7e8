"""The consent text on paper, in one language: read aloud, then ticked and signed.

A blank form (from the intake page, in the language chosen) has a box per purpose for
"agrees" and "does not agree"; a participant's form prints their code, name and the
answers recorded, with the version of the text they heard. The wording comes from
``forms/consent.yaml`` already in the document's language; the headings around it are
UI msgids translated with the same language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.platypus import Flowable, KeepTogether, Spacer, Table, TableStyle

from ..formfiles.consent import PURPOSES, ConsentWording
from . import LINE, CheckBox, PdfLanguage, Styles, build_pdf, document_setup, fit_widths, para

__all__ = ["ConsentForm", "build_story", "render"]

PAGESIZE = A4


@dataclass(frozen=True)
class ConsentForm:
    """What the consent form prints; ``answers`` (purpose -> agreed) only for a participant's form."""

    wording: ConsentWording
    version: int
    programme: str
    site: str = ""
    participant_code: str = ""
    participant_name: str = ""
    answers: dict[str, bool] = field(default_factory=dict)
    given_by: str = ""


def build_story(data: ConsentForm, lang: PdfLanguage) -> list[Flowable]:
    """Return the form's flowables: who, the text to read, a line per purpose, the signatures."""
    _, st, width = document_setup(lang, PAGESIZE, base_size=10.5)
    story: list[Flowable] = [para(data.wording.heading, st.title)]
    story.append(
        para(
            " · ".join(
                t
                for t in (data.programme, data.site, _("Consent text, version %(version)s", version=data.version))
                if t
            ),
            st.small,
        )
    )
    story += [Spacer(1, 6), _who(data, lang, st, width), Spacer(1, 8)]
    story.append(para(_("Read this text aloud to the person, in their language:"), st.subheading))
    story += [para(paragraph, st.body) for paragraph in data.wording.read_aloud]
    story.append(para(_("The person agrees to:"), st.subheading))
    story += [_purposes(data, lang, st, width), Spacer(1, 14)]
    story.append(KeepTogether(_signatures(data, lang, st, width)))
    return story


def _who(data: ConsentForm, lang: PdfLanguage, st: Styles, width: float) -> Table:
    """Return the lines for the person's programme code, name and the date."""
    _ = lang.translate
    labels = (_("Programme code"), _("Name"), _("Date"))
    who = [
        [
            para(labels[0], st.cell_bold),
            para(data.participant_code, st.cell),
            para(labels[2], st.cell_bold),
            para("", st.cell),
        ],
        [para(labels[1], st.cell_bold), para(data.participant_name, st.cell), "", ""],
    ]
    # Each label column as wide as its longest word (no word split at a line end).
    widths = fit_widths(
        (f"{labels[0]} {labels[1]}", "", labels[2], ""),
        [width * 0.22, width * 0.43, width * 0.1, width * 0.25],
        st.cell_bold,
        flexible=1,
        padding=12,
    )
    table = Table(who, colWidths=widths, rowHeights=[22, 22])
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (1, 0), (1, -1), 0.5, LINE),
                ("LINEBELOW", (3, 0), (3, 0), 0.5, LINE),
                ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
            ]
        )
    )
    return table


def _purposes(data: ConsentForm, lang: PdfLanguage, st: Styles, width: float) -> Table:
    """Return a line per purpose: boxes to tick on a blank form, the recorded answer on a participant's."""
    _ = lang.translate
    rows = []
    for purpose in PURPOSES:
        answer = data.answers.get(purpose)
        if answer is None:
            yes, no = [CheckBox(11), para(_("agrees"), st.cell)], [CheckBox(11), para(_("does not agree"), st.cell)]
        else:
            yes = [para("✓" if answer else "", st.cell_bold), para(_("agrees"), st.cell)]
            no = [para("" if answer else "✓", st.cell_bold), para(_("does not agree"), st.cell)]
        rows.append([para(data.wording.purposes[purpose], st.cell), *yes, *no])
    table = Table(rows, colWidths=[width - 2 * (16 + 86), 16, 86, 16, 86])
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, LINE),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
            ]
        )
    )
    return table


def _signatures(data: ConsentForm, lang: PdfLanguage, st: Styles, width: float) -> Table:
    """Return the lines for who gave consent, their signature or thumbprint, and who read the text."""
    _ = lang.translate
    given_by = data.given_by if data.given_by not in ("", "participant") else ""
    signatures = [
        [para(_("Consent given by (the person, or the guardian's name)"), st.cell), para(given_by, st.cell)],
        [para(_("Signature or thumbprint"), st.cell), ""],
        [para(_("Read by (name and signature)"), st.cell), ""],
    ]
    table = Table(signatures, colWidths=[width * 0.45, width * 0.55], rowHeights=[30, 38, 38])
    table.setStyle(TableStyle([("LINEBELOW", (1, 0), (1, -1), 0.5, LINE), ("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
    return table


def render(data: ConsentForm, lang: PdfLanguage, *, created: datetime | None = None) -> bytes:
    """Return the consent form as PDF bytes (deterministic for the same ``created``)."""
    footer = " · ".join(t for t in (data.programme, data.wording.heading, f"v{data.version}") if t)
    return build_pdf(
        build_story(data, lang),
        lang,
        title=data.wording.heading,
        footer_left=footer,
        created=created,
        pagesize=PAGESIZE,
    )
