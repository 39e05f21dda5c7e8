"""Small charts drawn on the server as inline SVG: no JavaScript, nothing from the internet.

Every text that reaches the markup is escaped here; the caller passes labels
already translated. The chart has a <title> and a <desc> that lists every value,
so a screen reader gets the same facts as the eye.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 16, 36


@dataclass(frozen=True)
class Point:
    on: date
    total: float | None  # None: too many answers missing, shown as a gap in the text only
    risk: bool = False


def totals_chart(
    points: list[Point],
    *,
    low: float,
    high: float,
    title: str,
    format_date: Callable[[date], str],
    cutoff: float | None = None,
    cutoff_label: str = "",
    missing_label: str = "",
    risk_label: str = "",
    chart_id: str = "chart",
) -> Markup:
    """Return an accessible SVG line chart of totals over time."""
    frame = _Frame([p for p in points if p.total is not None], low, high)
    described = "; ".join(_described(p, format_date, missing_label, risk_label) for p in points)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(described)}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" height="{HEIGHT - TOP - BOTTOM}" '
        'fill="#fff" stroke="#d5dbe1"/>',
        *_axis(frame),
        *_cutoff_line(frame, cutoff, cutoff_label),
        *_line_and_dots(frame, format_date),
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 (every text in the parts is escaped)


@dataclass(frozen=True)
class _Frame:
    """Where a point goes in the chart: across by its date, up by its total."""

    known: list[Point]  # the points with a total, in date order
    low: float
    high: float

    def x(self, p: Point) -> float:
        if len(self.known) < 2:
            return LEFT + (WIDTH - LEFT - RIGHT) / 2
        first = self.known[0].on
        span_days = max((self.known[-1].on - first).days, 1)
        return LEFT + (WIDTH - LEFT - RIGHT) * (p.on - first).days / span_days

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low) if self.high != self.low else 0
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - share)

    def y_of(self, p: Point) -> float:
        assert p.total is not None, p  # only known points are drawn
        return self.y(p.total)


def _described(p: Point, format_date: Callable[[date], str], missing_label: str, risk_label: str) -> str:
    """Return one point as the screen reader hears it."""
    value = missing_label if p.total is None else _num(p.total)
    return f"{format_date(p.on)}: {value}{' (' + risk_label + ')' if p.risk and risk_label else ''}"


def _axis(frame: _Frame) -> list[str]:
    return [
        f'<text x="{LEFT - 6}" y="{frame.y(value) + 4:.1f}" text-anchor="end" font-size="12" '
        f'fill="#5b6673">{escape(_num(value))}</text>'
        for value in (frame.low, (frame.low + frame.high) / 2, frame.high)
    ]


def _cutoff_line(frame: _Frame, cutoff: float | None, label: str) -> list[str]:
    if cutoff is None or not frame.low <= cutoff <= frame.high:
        return []
    at = frame.y(cutoff)
    return [
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{at:.1f}" y2="{at:.1f}" stroke="#9a5b00" stroke-dasharray="6 4"/>',
        f'<text x="{WIDTH - RIGHT - 4}" y="{at - 4:.1f}" text-anchor="end" font-size="12" '
        f'fill="#9a5b00">{escape(label)}</text>',
    ]


def _line_and_dots(frame: _Frame, format_date: Callable[[date], str]) -> list[str]:
    known = frame.known
    parts = []
    if len(known) > 1:
        path = " ".join(f"{frame.x(p):.1f},{frame.y_of(p):.1f}" for p in known)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f6f5c" stroke-width="2.5"/>')
    # Every date fits below up to 8 points; beyond that only the first and the last.
    labelled = known if len(known) <= 8 else [known[0], known[-1]]
    for p in known:
        colour = "#b3261e" if p.risk else "#1f6f5c"
        parts.append(
            f'<circle cx="{frame.x(p):.1f}" cy="{frame.y_of(p):.1f}" r="{6 if p.risk else 4.5}" fill="{colour}"/>'
        )
        if p in labelled:
            # Keep the first and last dates inside the frame.
            anchor = "middle" if len(known) == 1 else {0: "start", len(known) - 1: "end"}.get(known.index(p), "middle")
            parts.append(
                f'<text x="{frame.x(p):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="{anchor}" font-size="11" '
                f'fill="#5b6673">{escape(format_date(p.on))}</text>'
            )
    return parts


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
