"""Printable PDFs: what every document shares (fonts, escaping, styles, page furniture).

One module per document kind, each with the same shape (after pretix's invoice
renderer): ``build_story(data, lang)`` returns the flowables and
``render(data, lang, *, created=None) -> bytes`` returns the PDF.

- ``roster``: the sign-in sheet of a cycle (landscape).
- ``screening_form``: a paper form for one instrument, scoring guide on the back.
- ``script_booklet``: facilitator scripts for one session or a whole protocol.
- ``cycle_report``: attendance, completion and symptom change of a cycle.

Every render function takes PLAIN DATA (the dataclasses of its module) and a
:class:`PdfLanguage`, and imports nothing from Flask: the caller gathers the
data and picks the language. Translation works like this: the headings of a
document are English msgids written as ``_("...")`` in its module (so
``pybabel extract`` finds them) where ``_`` is ``lang.translate``. The web and
CLI edges build the language with :meth:`PdfLanguage.load`, which reads the
compiled catalog of that language from the app's translations folder once (with
babel, the same files flask-babel serves to the pages); the PDF can then be
drawn anywhere. Texts from ``forms/`` (instrument items, band
labels...) are msgids too and go through the same ``lang.translate``. Texts a
user typed (names, venues) are printed as typed.

Fonts: DejaVu Sans (regular and bold), shipped in ``web/static/fonts`` with its
licence and registered once per process. It covers Latin with all its
extensions (Ŋŋ, Ɛɛ, Ɔɔ, Ñ, Vietnamese), Greek, Cyrillic, Arabic and Hebrew. It
has no Ethiopic, Devanagari or CJK glyphs: such text prints as empty boxes.

Right-to-left text (Arabic, Hebrew, ...): each string that holds right-to-left
letters is shaped (arabic-reshaper joins the letters) and put in visual order
(python-bidi) before it is drawn, and a multi-line paragraph of such text is
wrapped in reading order first, then reordered line by line, and aligned right.
What is NOT supported: mirroring the page layout for a right-to-left language
(table columns still run left to right) and bold/italic markup inside a
right-to-left paragraph.

Output is deterministic: the same data, language and ``created`` give the same
bytes (ReportLab's invariant mode, fixed metadata); ``created`` (default: now)
is the only date in the file, in its metadata and in the "printed on" footer.
"""

from __future__ import annotations

import io
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from xml.sax.saxutils import escape as _xml_escape

import arabic_reshaper
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from babel.support import Translations
from bidi import get_display
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Table, TableStyle

__all__ = [
    "FONT",
    "FONT_BOLD",
    "CheckBox",
    "PdfLanguage",
    "Styles",
    "build_pdf",
    "cell",
    "content_width",
    "document_setup",
    "esc",
    "fit_heads",
    "fit_widths",
    "longest_word",
    "has_rtl",
    "labelled",
    "para",
    "register_fonts",
    "safety_numbers",
    "styles",
    "visual",
    "warning_box",
]

FONTS_DIR = Path(__file__).resolve().parent.parent / "web" / "static" / "fonts"
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
_FONT_FILES = {FONT: "DejaVuSans-2.37.ttf", FONT_BOLD: "DejaVuSans-Bold-2.37.ttf"}
_fonts_lock = threading.Lock()

MARGIN = 12 * mm
FRAME_PADDING = 6  # SimpleDocTemplate's frame keeps 6 pt inside the margins
INK = colors.black
GREY = colors.Color(0.45, 0.45, 0.45)
LINE = colors.Color(0.55, 0.55, 0.55)
SHADE = colors.Color(0.93, 0.93, 0.93)
WARN = colors.Color(1.0, 0.92, 0.85)


def register_fonts() -> None:
    """Register the bundled DejaVu fonts with ReportLab (once per process, thread-safe)."""
    with _fonts_lock:
        if FONT in pdfmetrics.getRegisteredFontNames():
            return
        for name, filename in _FONT_FILES.items():
            pdfmetrics.registerFont(TTFont(name, str(FONTS_DIR / filename)))
        # <b> inside a Paragraph picks the bold face; there is no italic face, so
        # <i> falls back to the upright one instead of failing.
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)


# --- language ---------------------------------------------------------------


class LanguageInfo(Protocol):
    """What a document needs to know of a language besides its catalog (``i18n.Language`` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def dir(self) -> str: ...  # ltr or rtl


def _identity(message: str) -> str:
    return message


def _english_plural(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


@dataclass(frozen=True)
class PdfLanguage:
    """The language a document is printed in.

    ``gettext`` maps an English msgid to its translation (identity for English,
    or a fake in tests); ``rtl`` tells whether the language is written right to
    left (its headings are then aligned right); ``name`` is the language's own
    name (e.g. Kiswahili), printed on forms and booklets.
    """

    code: str = "en"
    gettext: Callable[[str], str] = _identity
    rtl: bool = False
    name: str = ""
    ngettext: Callable[[str, str, int], str] = _english_plural

    def translate(self, message: str, **variables: Any) -> str:
        """Translate a msgid and fill its ``%(name)s`` placeholders, like flask-babel's gettext."""
        text = self.gettext(message)
        return text % variables if variables else text

    def translate_plural(self, singular: str, plural: str, n: int, **variables: Any) -> str:
        """Translate a message whose form depends on the number ``n`` (available as ``%(num)s``)."""
        return self.ngettext(singular, plural, n) % {"num": n, **variables}

    @property
    def locale(self) -> Locale:
        """Return the babel locale for dates and numbers (English when babel does not know the code)."""
        try:
            return Locale.parse(self.code.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            return Locale.parse("en")

    def date(self, value: date | datetime | None, format: str = "medium") -> str:
        """Format a date in this language ('' for None); ``format`` is a babel format or pattern."""
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.date()
        return format_date(value, format, locale=self.locale)

    def number(self, value: float | int | None, digits: int = 1) -> str:
        """Format a number with at most ``digits`` decimals ('' for None)."""
        if value is None:
            return ""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def percent(self, share: float | None) -> str:
        """Format a share between 0 and 1 as a whole percentage ('' for None)."""
        if share is None:
            return ""
        return format_percent(share, locale=self.locale)

    @classmethod
    def load(cls, code: str, translations_dir: str | Path, info: LanguageInfo | None = None) -> PdfLanguage:
        """Return the language ``code`` with its compiled catalog from ``translations_dir``.

        ``translations_dir`` is the folder the app serves its pages from (setting
        TRANSLATIONS_DIR, see ``bundle``), so the web and the CLI print the same text as
        the pages show; ``info`` is the language's entry in its ``languages.yaml`` (name,
        direction). The catalog is read once; the document can then be drawn anywhere.
        A language without a catalog (English) and a string missing from one come out in English.
        """
        translations = Translations.load(str(translations_dir), [code])
        return cls(
            code=code,
            gettext=translations.gettext,
            ngettext=translations.ngettext,
            rtl=bool(info and info.dir == "rtl"),
            name=info.name if info else code,
        )


# --- text -------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_rtl(text: str) -> bool:
    """Tell whether a string holds right-to-left letters (Arabic, Hebrew, Syriac, Thaana...)."""
    # Every such letter is at U+0590 or above (tests/test_pdf.py checks the whole range below),
    # so most texts are answered without looking each letter up (a twentieth of a booklet).
    if text.isascii():
        return False
    return any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text if ch >= "\u0590")


def visual(text: str) -> str:
    """Return a one-line string in the order it must be drawn: RTL letters shaped and reordered."""
    if not has_rtl(text):
        return text
    return get_display(arabic_reshaper.reshape(text))


def esc(value: Any) -> str:
    """Make any value safe to put inside Paragraph markup, printed exactly as typed.

    ``<b>x</b> & =cmd`` prints literally: ``&``, ``<`` and ``>`` are escaped,
    control characters (which the markup parser refuses) are dropped, and a
    right-to-left string is shaped and put in visual order (see ``visual``).
    """
    text = "" if value is None else str(value)
    text = _CONTROL.sub("", text)
    return _xml_escape(visual(text))


class _RTLParagraph(Flowable):
    """A paragraph of right-to-left text: wrapped in reading order, drawn line by line in visual order."""

    def __init__(self, text: str, style: ParagraphStyle) -> None:
        super().__init__()
        self.text = _CONTROL.sub("", text)
        self.style = style
        self._para: Paragraph | None = None

    def _build(self, width: float) -> Paragraph:
        style = self.style
        usable = max(width - style.leftIndent - style.rightIndent, 1)
        shaped = arabic_reshaper.reshape(" ".join(self.text.split()))
        lines: list[str] = []
        current = ""
        for word in shaped.split(" "):
            candidate = f"{current} {word}" if current else word
            if current and pdfmetrics.stringWidth(candidate, style.fontName, style.fontSize) > usable:
                lines.append(current)
                current = word
            else:
                current = candidate
        lines.append(current)
        markup = "<br/>".join(_xml_escape(get_display(line)) for line in lines)
        alignment = TA_CENTER if style.alignment == TA_CENTER else TA_RIGHT
        return Paragraph(markup, ParagraphStyle(f"{style.name}-rtl", parent=style, alignment=alignment))

    def wrap(self, availWidth, availHeight):  # noqa: N803 (ReportLab's names)
        self._para = self._build(availWidth)
        return self._para.wrap(availWidth, availHeight)

    def split(self, availWidth, availHeight):  # noqa: N803
        self._para = self._build(availWidth)
        return self._para.split(availWidth, availHeight)

    def draw(self):
        assert self._para is not None
        self._para.drawOn(self.canv, 0, 0)


def cell(text: Any, style: ParagraphStyle, width: float) -> str | Flowable:
    """Return a table cell for ``text``: a plain string when it fits on one line, else a paragraph.

    A plain string is drawn as is (no markup to escape) and is several times
    faster to lay out than a Paragraph, which matters for a roster's hundreds
    of cells. The table must set the FONT of plain cells to ``style``'s font.
    """
    raw = " ".join(_CONTROL.sub("", "" if text is None else str(text)).split())
    shown = visual(raw)
    if pdfmetrics.stringWidth(shown, style.fontName, style.fontSize) <= width:
        return shown
    return para(raw, style)


def para(text: Any, style: ParagraphStyle) -> Flowable:
    """Return a paragraph printing ``text`` exactly as typed (escaped; right-to-left aware)."""
    raw = "" if text is None else str(text)
    if has_rtl(raw) and "\n" not in raw:
        return _RTLParagraph(raw, style)
    return Paragraph(esc(raw).replace("\n", "<br/>"), style)


def labelled(pairs: Sequence[tuple[str, str]], style: ParagraphStyle, separator: str = "   ") -> Flowable:
    """Return "Label: value" pairs on one paragraph, labels in bold.

    With right-to-left text in it, the line is laid out as plain text (no bold),
    since markup cannot be reordered line by line (see the module docstring).
    """
    if any(has_rtl(f"{label}{value}") for label, value in pairs):
        return para(separator.join(f"{label}: {value}" for label, value in pairs), style)
    spacer = "&nbsp;" * len(separator)
    return Paragraph(spacer.join(f"<b>{esc(label)}:</b> {esc(value)}" for label, value in pairs), style)


# --- styles -----------------------------------------------------------------


@dataclass(frozen=True)
class Styles:
    """The paragraph styles every document uses."""

    title: ParagraphStyle
    heading: ParagraphStyle
    subheading: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_bold: ParagraphStyle
    cell_center: ParagraphStyle
    cell_small: ParagraphStyle
    cell_head: ParagraphStyle
    mark: ParagraphStyle


def styles(lang: PdfLanguage | None = None, base_size: float = 10) -> Styles:
    """Build the shared styles in the bundled font; headings align right for a right-to-left language."""
    register_fonts()
    align = TA_RIGHT if lang is not None and lang.rtl else TA_LEFT
    s = base_size

    def style(name: str, **kw: Any) -> ParagraphStyle:
        kw.setdefault("fontName", FONT)
        kw.setdefault("fontSize", s)
        kw.setdefault("leading", kw["fontSize"] * 1.25)
        kw.setdefault("alignment", align)
        return ParagraphStyle(name, **kw)

    return Styles(
        title=style("title", fontName=FONT_BOLD, fontSize=s * 1.5, spaceAfter=s * 0.4),
        heading=style("heading", fontName=FONT_BOLD, fontSize=s * 1.3, spaceBefore=s * 0.8, spaceAfter=s * 0.4),
        subheading=style("subheading", fontName=FONT_BOLD, fontSize=s * 1.1, spaceBefore=s * 0.6, spaceAfter=s * 0.3),
        body=style("body", spaceAfter=s * 0.4),
        small=style("small", fontSize=s * 0.8, textColor=GREY),
        cell=style("cell", fontSize=s * 0.9),
        cell_bold=style("cell_bold", fontName=FONT_BOLD, fontSize=s * 0.9),
        cell_center=style("cell_center", fontSize=s * 0.9, alignment=TA_CENTER),
        cell_small=style("cell_small", fontSize=s * 0.75, leading=s * 0.9, alignment=TA_CENTER),
        cell_head=style("cell_head", fontName=FONT_BOLD, fontSize=s * 0.75, leading=s * 0.9),
        mark=style("mark", fontName=FONT_BOLD, fontSize=s * 1.2, alignment=TA_CENTER),
    )


class DocumentSetup(NamedTuple):
    """What every ``build_story`` starts from."""

    translate: Callable[..., str]
    styles: Styles
    width: float


def document_setup(lang: PdfLanguage, pagesize: tuple[float, float], base_size: float = 10) -> DocumentSetup:
    """Return the translate function, the styles in ``base_size`` and the usable width of a document's pages."""
    return DocumentSetup(lang.translate, styles(lang, base_size=base_size), content_width(pagesize))


def fit_widths(
    heads: Sequence[str], widths: Sequence[float], style: ParagraphStyle, flexible: int, padding: float = 7
) -> list[float]:
    """Widen each column to hold the longest word of its heading, taking the room from the ``flexible`` one.

    ReportLab splits a word that does not fit its cell in the middle ("Alihudhur|ia"); a
    heading is short, so its column grows to fit its longest word instead. ``padding`` is
    the cell's left and right padding together.
    """
    fitted = list(widths)
    for index, head in enumerate(heads):
        if index == flexible:
            continue
        longest = max(
            (pdfmetrics.stringWidth(word, style.fontName, style.fontSize) for word in head.split()), default=0
        )
        fitted[index] = max(fitted[index], longest + padding)
    fitted[flexible] = max(sum(widths) - (sum(fitted) - fitted[flexible]), 0)
    return fitted


def longest_word(texts: Sequence[str], style: ParagraphStyle) -> float:
    """Return the width of the longest word in ``texts`` (a column must be at least that wide)."""
    return max(
        (pdfmetrics.stringWidth(word, style.fontName, style.fontSize) for text in texts for word in str(text).split()),
        default=0,
    )


def fit_heads(
    heads: Sequence[str],
    widths: Sequence[float],
    style: ParagraphStyle,
    flexible: int,
    min_flexible: float = 0,
    smallest: float = 5.5,
) -> tuple[list[float], ParagraphStyle]:
    """Fit the headings as :func:`fit_widths` does, in a smaller font when the flexible column would get
    narrower than ``min_flexible`` (e.g. its longest name); return the widths and the headings' style."""
    size = style.fontSize
    while True:
        head_style = (
            style
            if size == style.fontSize
            else ParagraphStyle(f"{style.name}-{size}", parent=style, fontSize=size, leading=size * 1.2)
        )
        fitted = fit_widths(heads, widths, head_style, flexible)
        if fitted[flexible] >= min_flexible or size - 0.5 < smallest:
            return fitted, head_style
        size -= 0.5


def content_width(pagesize: tuple[float, float], margins: Sequence[float] = (MARGIN, MARGIN)) -> float:
    """Return the width a flowable may take on a page of this size."""
    return pagesize[0] - margins[0] - margins[1] - 2 * FRAME_PADDING


def safety_numbers(lang: PdfLanguage, contacts: Sequence[tuple[str, str]], st: Styles) -> list[list[Flowable]]:
    """Return the rows "Emergency and referral numbers", then one per (name, phone), or a line to write one in."""
    _ = lang.translate
    rows = [[para(f"{name}: {phone}", st.body)] for name, phone in contacts] or [
        [
            para(
                _(
                    "No local emergency number is set for this programme. Ask your coordinator to add them (setting "
                    "SAFETY_CONTACTS), and write your supervisor's number here:"
                )
                + " ____________",
                st.body,
            )
        ]
    ]
    return [[para(_("Emergency and referral numbers"), st.cell_bold)], *rows]


def warning_box(rows: list[list[Flowable]], width: float) -> Table:
    """Return ``rows`` in a one-column box, shaded and framed, that the eye finds first on the page."""
    box = Table(rows, colWidths=[width])
    box.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, -1), WARN), ("BOX", (0, 0), (-1, -1), 1, INK)]))
    return box


class CheckBox(Flowable):
    """An empty square to tick or write in, drawn as vector lines (not a font glyph)."""

    def __init__(self, size: float = 10, width: float | None = None, stroke: float = 0.8) -> None:
        super().__init__()
        self.size = size
        self.box_width = width if width is not None else size
        self.stroke = stroke

    def wrap(self, availWidth, availHeight):  # noqa: N803
        return self.box_width, self.size

    def draw(self):
        self.canv.setLineWidth(self.stroke)
        self.canv.setStrokeColor(INK)
        self.canv.rect(0, 0, self.box_width, self.size, stroke=1, fill=0)


# --- the document -----------------------------------------------------------


class _NumberedCanvas(Canvas):
    """A canvas that writes "page X of Y" on every page once it knows Y (pretix's pattern).

    Pages are kept until ``save`` and only then written. So a bookmark asked
    for while a page is drawn is kept and set when its page is written (set at
    once, it would point at the first page), and :meth:`draw_later` lets a
    flowable draw on its page what is only known at the end (a booklet's
    contents, without laying the whole document out twice).
    """

    def __init__(self, *args: Any, footer: Callable[[Canvas, int, int], None], created: datetime, **kwargs: Any):
        kwargs["invariant"] = 1  # fixed document ID and internals: same input, same bytes
        super().__init__(*args, **kwargs)
        self._page_states: list[dict[str, Any]] = []
        self._page_bookmarks: list[tuple[str, dict[str, Any]]] = []
        self._page_later: list[Callable[[Canvas], None]] = []
        self._footer = footer
        stamp = created.strftime("D:%Y%m%d%H%M%S")
        self.setDateFormatter(lambda *_: stamp)

    def bookmarkPage(self, key, **kwargs):  # noqa: N802 (ReportLab's name)
        self._page_bookmarks.append((key, kwargs))

    def draw_later(self, draw: Callable[[Canvas], None]) -> None:
        """Call ``draw(canvas)`` on the current page when the document is saved (absolute coordinates)."""
        self._page_later.append(draw)

    def showPage(self):  # noqa: N802
        self._page_states.append(dict(self.__dict__))
        self._page_bookmarks = []
        self._page_later = []
        self._startPage()

    def save(self):
        total = len(self._page_states)
        for state in self._page_states:
            self.__dict__.update(state)
            for key, kwargs in state["_page_bookmarks"]:
                super().bookmarkPage(key, **kwargs)
            for draw in state["_page_later"]:
                self.saveState()
                draw(self)
                self.restoreState()
            self._footer(self, self._pageNumber, total)
            super().showPage()
        super().save()


class _Document(SimpleDocTemplate):
    def __init__(self, *args: Any, after_flowable: Callable[[Any, Flowable], None] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._after_flowable = after_flowable

    def afterFlowable(self, flowable):  # noqa: N802 (ReportLab's name)
        if self._after_flowable is not None:
            self._after_flowable(self, flowable)


def _draw_footer(
    canvas: Canvas,
    page: int,
    pages: int,
    *,
    lang: PdfLanguage,
    left_text: str,
    pagesize: tuple[float, float],
    margins: Sequence[float],
) -> None:
    """Draw a page's footer: ``left_text`` on the left, "page X of Y" on the right."""
    _ = lang.translate
    width = pagesize[0]
    canvas.saveState()
    canvas.setFillColor(GREY)
    y = MARGIN / 2 + 2
    right = visual(_("Page %(page)s of %(pages)s", page=page, pages=pages))
    left = visual(left_text)
    # The left part never runs into "page X of Y": a smaller font, then cut short with "…".
    room = width - margins[0] - margins[1] - 2 * FRAME_PADDING - pdfmetrics.stringWidth(right, FONT, 7.5) - 12
    size = 7.5
    while size > 6 and pdfmetrics.stringWidth(left, FONT, size) > room:
        size -= 0.5
    while len(left) > 1 and pdfmetrics.stringWidth(left, FONT, size) > room:
        left = left[:-2] + "…"
    canvas.setFont(FONT, size)
    canvas.drawString(margins[0] + FRAME_PADDING, y, left)
    canvas.setFont(FONT, 7.5)
    canvas.drawRightString(width - margins[1] - FRAME_PADDING, y, right)
    canvas.restoreState()


def build_pdf(
    story: list[Flowable],
    lang: PdfLanguage,
    *,
    title: str,
    footer_left: str,
    created: datetime | None = None,
    pagesize: tuple[float, float] = A4,
    on_page: Callable[[Canvas, Any], None] | None = None,
    multi_pass: bool = False,
    after_flowable: Callable[[Any, Flowable], None] | None = None,
    margins: Sequence[float] = (MARGIN, MARGIN, MARGIN + 4 * mm, MARGIN),
) -> bytes:
    """Lay out ``story`` and return the PDF bytes.

    Every page gets a footer: ``footer_left`` and the printing date on the left,
    "page X of Y" on the right. ``on_page(canvas, doc)`` draws anything else a
    document repeats on each page (e.g. a running header); ``multi_pass`` lays
    out as often as a table of contents needs, and ``after_flowable(doc,
    flowable)`` is called after each flowable is drawn (to notify contents
    entries). ``margins`` are left, right, bottom, top.
    """
    register_fonts()
    created = created or datetime.now()
    _ = lang.translate
    printed = _("Printed %(date)s", date=lang.date(created))
    footer = partial(
        _draw_footer, lang=lang, left_text=f"{footer_left} · {printed}", pagesize=pagesize, margins=margins
    )
    buffer = io.BytesIO()
    doc = _Document(
        buffer,
        after_flowable=after_flowable,
        pagesize=pagesize,
        leftMargin=margins[0],
        rightMargin=margins[1],
        bottomMargin=margins[2],
        topMargin=margins[3],
        title=title,
        author=footer_left,
        subject=title,
        creator="group-ipt",
        producer="group-ipt (ReportLab)",
        lang=lang.code,
        invariant=1,
    )
    page_hook = on_page or (lambda canvas, doc: None)
    canvasmaker = partial(_NumberedCanvas, footer=footer, created=created)
    if multi_pass:
        doc.multiBuild(story, onFirstPage=page_hook, onLaterPages=page_hook, canvasmaker=canvasmaker)
    else:
        doc.build(story, onFirstPage=page_hook, onLaterPages=page_hook, canvasmaker=canvasmaker)
    return buffer.getvalue()
