"""The report page's charts, drawn on the server as inline SVG (no JavaScript, nothing from the internet).

Same rules as :mod:`group_ipt.reporting.charts`: every text is escaped here, the caller
passes labels already translated, and each chart has a <title> and a <desc>
listing every value, so a screen reader gets the same facts as the eye.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 44
INK, MUTED, LINE, BRAND, WARN = "#1d2733", "#5b6673", "#d5dbe1", "#1f6f5c", "#9a5b00"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: nothing to show (no attendance marked)
    text: str  # the value as the reader should see it ("83%", "12")
    href: str | None = None  # the records behind the bar


def _frame(chart_id: str, title: str, desc: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        f'fill="#fff" stroke="{LINE}"/>',
    ]


def _y(value: float, high: float) -> float:
    share = value / high if high else 0
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - share)


def _axis(parts: list[str], high: float, fmt) -> None:
    for value in (0, high / 2, high):
        parts.append(
            f'<text x="{LEFT - 6}" y="{_y(value, high) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{MUTED}">{escape(fmt(value))}</text>'
        )


LABEL_CHAR_WIDTH = 6.6  # px per character of an 11 px label (a generous mean for Latin letters and digits)


def label_every(labels: list[str], inner: float) -> int:
    """Return n: label every n-th bar so that no two labels under the axis overlap."""
    if not labels:
        return 1
    widest = max(len(label) for label in labels) * LABEL_CHAR_WIDTH + 8
    fit = max(1, int(inner // widest))
    return max(1, -(-len(labels) // fit))


def bar_chart(
    bars: list[Bar], *, title: str, high: float | None = None, axis_format=None, chart_id: str = "bars"
) -> Markup:
    """Return a bar chart; each bar with an ``href`` links to its records."""
    fmt = axis_format or (lambda v: f"{v:g}")
    top = high if high is not None else max([b.value for b in bars if b.value is not None] + [1])
    parts = _frame(chart_id, title, "; ".join(f"{b.label}: {b.text}" for b in bars))
    _axis(parts, top, fmt)
    inner = WIDTH - LEFT - RIGHT
    step = inner / max(len(bars), 1)
    width = max(min(step * 0.7, 48), 2)
    every = label_every([b.label for b in bars], inner)  # labels never overlap
    for n, bar in enumerate(bars):
        x = LEFT + step * n + (step - width) / 2
        centre = x + width / 2
        if bar.value is not None:
            y = _y(bar.value, top)
            rect = (
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{HEIGHT - BOTTOM - y:.1f}" '
                f'fill="{BRAND}"><title>{escape(bar.label)}: {escape(bar.text)}</title></rect>'
            )
            if bar.href:
                rect = f'<a href="{escape(bar.href)}">{rect}</a>'
            parts.append(rect)
            if len(bars) <= 14:
                parts.append(
                    f'<text x="{centre:.1f}" y="{max(y - 4, TOP + 12):.1f}" text-anchor="middle" '
                    f'font-size="11" fill="{INK}">{escape(bar.text)}</text>'
                )
        if n % every == 0:
            parts.append(
                f'<text x="{centre:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                f'fill="{MUTED}">{escape(bar.label)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above is escaped)


@dataclass(frozen=True)
class Change:
    label: str  # the cycle
    before: float
    after: float
    text: str  # e.g. "16.2 → 8.2 (5 members)"


def change_chart(
    changes: list[Change],
    *,
    title: str,
    high: float = 27,
    before_label: str = "",
    after_label: str = "",
    chart_id: str = "change",
) -> Markup:
    """Return one line per cycle from the mean baseline (hollow dot) to the mean end score (filled dot)."""
    parts = _frame(chart_id, title, "; ".join(f"{c.label}: {c.text}" for c in changes))
    _axis(parts, high, lambda v: f"{v:g}")
    step = (WIDTH - LEFT - RIGHT) / max(len(changes), 1)
    every = label_every([c.label for c in changes], WIDTH - LEFT - RIGHT)
    for n, c in enumerate(changes):
        x = LEFT + step * n + step / 2
        y0, y1 = _y(c.before, high), _y(c.after, high)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0:.1f}" y2="{y1:.1f}" stroke="{MUTED}" stroke-width="2"/>')
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y0:.1f}" r="5" fill="#fff" stroke="{WARN}" stroke-width="2">'
            f"<title>{escape(c.label)}: {escape(c.text)}</title></circle>"
        )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y1:.1f}" r="5" fill="{BRAND}">'
            f"<title>{escape(c.label)}: {escape(c.text)}</title></circle>"
        )
        if n % every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
                f'fill="{MUTED}">{escape(c.label)}</text>'
            )
    if before_label or after_label:
        legend_y = HEIGHT - 8
        parts.append(
            f'<circle cx="{LEFT + 6}" cy="{legend_y - 4}" r="5" fill="#fff" stroke="{WARN}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{LEFT + 16}" y="{legend_y}" font-size="11" fill="{INK}">{escape(before_label)}</text>')
        parts.append(f'<circle cx="{LEFT + 206}" cy="{legend_y - 4}" r="5" fill="{BRAND}"/>')
        parts.append(f'<text x="{LEFT + 216}" y="{legend_y}" font-size="11" fill="{INK}">{escape(after_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above is escaped)
