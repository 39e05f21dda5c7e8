"""How much the PDF layer costs over bare ReportLab drawing the same content.

Run: .venv/bin/python benchmarks/pdf_bench.py [--repeat 9]

Two documents, each timed against bare ReportLab in the same run, in turns (ratios
are what matter; machines differ):

- the roster of a 16-session cycle with 15 members: ``group_ipt.pdf.roster``
  against a bare SimpleDocTemplate with one Table of the same strings;
- the whole-protocol script booklet (the who-8 scripts in ``forms/scripts``):
  ``group_ipt.pdf.script_booklet`` (cover, table of contents, two layout
  passes) against a bare SimpleDocTemplate with one Paragraph per text.

Both sides use the bundled DejaVu font and the same page size, so the ratio
measures our layout (Paragraph cells, vector boxes, page X of Y, contents).
Not a test: nothing here fails on a slow machine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.lib.pagesizes import A4, landscape  # noqa: E402
from reportlab.lib.styles import ParagraphStyle  # noqa: E402
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Table  # noqa: E402

from group_ipt.base.settings import REPO_DIR  # noqa: E402
from group_ipt.pdf import FONT, PdfLanguage, register_fonts, roster, script_booklet  # noqa: E402

CREATED = datetime(2025, 1, 1)
EN = PdfLanguage("en", name="English")


def roster_data(members: int = 15, sessions: int = 16) -> roster.Roster:
    start = date(2025, 3, 4)
    return roster.Roster(
        programme="Benchmark programme",
        site="Kampala North",
        cycle="KMP-C001",
        sessions=[roster.RosterSession(n, start + timedelta(weeks=n - 1)) for n in range(1, sessions + 1)],
        members=[
            roster.RosterMember(
                f"KMP-{1000 + i}-C",
                f"Member Nakato Ŋŋ {i}",
                "female",
                ("grief",),
                {s: ("present", "absent", "excused")[(i + s) % 3] for s in range(1, 7)},
            )
            for i in range(members)
        ],
        facilitators=("Amina Nakato",),
        venue="Church hall",
        weekday=1,
    )


def bare_roster(data: roster.Roster) -> bytes:
    marks = {"present": "✓", "absent": "✗", "excused": "E"}
    head = ["#", "Code", "Name", "Sex", "Problem area", *[str(s.number) for s in data.sessions], "Signature"]
    rows = [head] + [
        [str(i), m.code, m.name, m.sex, ", ".join(m.problem_areas)]
        + [marks.get(m.attendance.get(s.number, ""), "") for s in data.sessions]
        + [""]
        for i, m in enumerate(data.members, start=1)
    ]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), invariant=1)
    table = Table(rows, repeatRows=1, style=[("FONT", (0, 0), (-1, -1), FONT, 9)])
    doc.build([table])
    return buffer.getvalue()


def booklet_data() -> script_booklet.Booklet:
    from group_ipt.formfiles.protocols import load_protocols
    from group_ipt.formfiles.scripts import load_scripts, placeholders_filled, session_context

    protocols = load_protocols(REPO_DIR / "forms" / "protocols")
    library = load_scripts(REPO_DIR / "forms" / "scripts", protocols)
    protocol = protocols["who-8"]
    sessions = [
        placeholders_filled(library.script_for(protocol.id, plan.number), session_context(protocol, plan.number))
        for plan in protocol.sessions
    ]
    return script_booklet.Booklet("Benchmark programme", protocol.name, sessions)


def bare_booklet(data: script_booklet.Booklet) -> bytes:
    style = ParagraphStyle("body", fontName=FONT, fontSize=10.5, leading=13)
    story = []
    for script in data.sessions:
        if story:
            story.append(PageBreak())
        texts = [script.title, *script.goals, *script.watch, *script.reminder]
        for step in script.agenda:
            texts.append(step.title)
            for kind in script_booklet.TEXT_KINDS:
                texts += getattr(step, kind)
            for guidance in step.guidance:
                texts.append(guidance.name)
                for kind in script_booklet.TEXT_KINDS:
                    texts += getattr(guidance, kind)
        story += [Paragraph(escape(text), style) for text in texts]
    buffer = io.BytesIO()
    SimpleDocTemplate(buffer, pagesize=A4, invariant=1).build(story)
    return buffer.getvalue()


def paired(ours: Callable[[], bytes], bare: Callable[[], bytes], repeat: int) -> tuple[float, float]:
    """Return the median times of ``ours`` and ``bare``, run in turns.

    Turn by turn, so both meet the same moments of a shared machine: timing all of one
    then all of the other let a slow spell land on one side only (ratios of the same code
    moved by +-30% between runs on a 2-core VM).
    """
    ours()  # warm up: imports, font subsets, caches
    bare()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, found in zip((ours, bare), times, strict=True):
            start = time.perf_counter()
            fn()
            found.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=9, help="timed runs of each side per document (medians are compared)"
    )
    args = parser.parse_args()
    register_fonts()

    data = roster_data()
    ours, bare = paired(lambda: roster.render(data, EN, created=CREATED), lambda: bare_roster(data), args.repeat)
    print(
        f"roster 16 sessions x 15 members: ours {ours * 1000:.0f} ms, bare {bare * 1000:.0f} ms, "
        f"ratio {ours / bare:.2f}"
    )

    try:
        booklet = booklet_data()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports and goes on
        print(f"script booklet: skipped, the scripts did not load: {exc}")
        return
    ours, bare = paired(
        lambda: script_booklet.render(booklet, EN, created=CREATED), lambda: bare_booklet(booklet), args.repeat
    )
    pages = script_booklet.render(booklet, EN, created=CREATED).count(b"/Type /Page\n")
    print(
        f"script booklet who-8 ({len(booklet.sessions)} sessions): ours {ours * 1000:.0f} ms, "
        f"bare {bare * 1000:.0f} ms, ratio {ours / bare:.2f}" + (f", {pages} pages" if pages else "")
    )


if __name__ == "__main__":
    main()
