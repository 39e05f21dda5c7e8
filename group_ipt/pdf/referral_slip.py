"""The referral slip: one A5-sized page the person (or the facilitator) takes to the health worker.

Who is referred, how urgent, why (in the document's language), where to, who raised it
and when, the programme's emergency and referral numbers (SAFETY_CONTACTS) and a few
lines for the health worker to write what was decided. Texts are printed as given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.platypus import Flowable, Spacer, Table, TableStyle

from . import LINE, PdfLanguage, build_pdf, document_setup, labelled, para, safety_numbers, warning_box

__all__ = ["ReferralSlip", "build_story", "render"]

PAGESIZE = A4


@dataclass(frozen=True)
class ReferralSlip:
    """What the slip prints; ``urgency`` and ``reasons`` are already in the document's language."""

    programme: str
    code: str
    name: str
    urgency: str
    reasons: Sequence[str]
    referred_to: str
    raised_on: str
    raised_by: str
    contacts: Sequence[tuple[str, str]] = ()


def build_story(data: ReferralSlip, lang: PdfLanguage) -> list[Flowable]:
    """Return the slip's flowables."""
    _, st, width = document_setup(lang, PAGESIZE, base_size=11)
    story: list[Flowable] = [
        para(_("Referral slip"), st.title),
        para(data.programme, st.small),
        Spacer(1, 8),
        labelled([(_("Person referred"), f"{data.code} {data.name}".strip())], st.body),
        labelled([(_("Urgency"), data.urgency)], st.body),
        para(_("Why"), st.heading),
        *[para(f"• {reason}", st.body) for reason in data.reasons],
        Spacer(1, 6),
        labelled([(_("Referred to"), data.referred_to or "____________________")], st.body),
        labelled([(_("Raised on"), f"{data.raised_on} · {data.raised_by}")], st.body),
        Spacer(1, 8),
    ]
    story += [warning_box(safety_numbers(lang, data.contacts, st), width), Spacer(1, 10)]
    story.append(
        para(
            _(
                "To the health worker: this person was seen in a community group programme for depression. "
                "Please see them, and tell the facilitator or the numbers above what was decided."
            ),
            st.body,
        )
    )
    lines = Table([[""]] * 4, colWidths=[width], rowHeights=[22] * 4)
    lines.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.5, LINE)]))
    story += [Spacer(1, 4), lines]
    return story


def render(data: ReferralSlip, lang: PdfLanguage, *, created: datetime | None = None) -> bytes:
    """Return the slip as PDF bytes."""
    _ = lang.translate
    return build_pdf(
        build_story(data, lang),
        lang,
        title=_("Referral slip"),
        footer_left=f"{data.programme} · {data.code}",
        created=created,
        pagesize=PAGESIZE,
    )
