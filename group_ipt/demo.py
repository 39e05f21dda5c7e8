"""A small, realistic demo programme so a newcomer sees a live app.

Everything is keyed by natural keys (site code, username, ...), so loading the
demo twice adds nothing the second time. Demo passwords are printed: never use
a demo database for real people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlite_utils
from flask import Flask

from . import users

DEMO_PASSWORD = "demo-pass"  # noqa: S105 (printed on purpose; demo data only)

DEMO_SITES = [
    ("KMP", "Kampala North", "en"),
    ("MSK", "Masaka Rural", "sw"),
]

# username, role, display name, site codes, language
DEMO_USERS = [
    ("admin", "admin", "Programme Admin", [], None),
    ("coord", "coordinator", "Ruth Nansubuga", ["KMP", "MSK"], None),
    ("super", "supervisor", "Dr. Samuel Mugisha", ["KMP", "MSK"], None),
    ("amina", "facilitator", "Amina Nakato", ["KMP"], None),
    ("joseph", "facilitator", "Joseph Okello", ["KMP"], None),
    ("grace", "facilitator", "Grace Wanjiru", ["MSK"], "sw"),
    ("peter", "facilitator", "Peter Ssemwogerere", ["MSK"], "fr"),
]


@dataclass
class DemoSummary:
    created: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, n: int = 1) -> None:
        self.created[what] = self.created.get(what, 0) + n


def load_demo(db: sqlite_utils.Database, app: Flask) -> DemoSummary:
    """Create the demo sites and users (and, as they exist, its participants and cycles)."""
    summary = DemoSummary()
    hash_method = app.config["PASSWORD_HASH_METHOD"]
    for code, name, lang in DEMO_SITES:
        if users.get_site(db, code) is None:
            users.create_site(db, code, name, lang)
            summary.add("sites")
    for username, role, display, site_codes, lang in DEMO_USERS:
        summary.logins.append((username, role))
        if users.get_user_by_username(db, username) is None:
            site_ids = [users.get_site(db, c)["id"] for c in site_codes]
            users.create_user(db, username, DEMO_PASSWORD, role, display_name=display, site_ids=site_ids,
                              language=lang, hash_method=hash_method)
            summary.add("users")
    return summary


def describe(summary: DemoSummary) -> str:
    made = ", ".join(f"{n} {what}" for what, n in summary.created.items()) or "nothing new (already loaded)"
    lines = [f"Demo programme: created {made}.", f"Demo logins (password for all: {DEMO_PASSWORD}):"]
    lines += [f"  {username:<8} {role}" for username, role in summary.logins]
    return "\n".join(lines)
