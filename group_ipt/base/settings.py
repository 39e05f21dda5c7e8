"""Every setting, its default and what it means, in one place.

Settings come from these defaults, then ``config.toml`` in the data folder (keys
in upper case, e.g. ``SESSION_IDLE_MINUTES = 60``), then the overrides a test or
command passes to ``create_app``. The README lists them all (a test checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

# Used only with ``serve --dev`` or in tests; ``serve`` refuses to run on it otherwise.
DEV_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 (refused by serve)

REPO_DIR = Path(__file__).resolve().parents[2]


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS = [
    Setting(
        "DATA_DIR",
        None,
        "Folder holding the database, the secret key and config.toml. "
        "Default: the per-user data folder, or $GROUP_IPT_DATA, or --data-dir.",
    ),
    Setting("PROGRAMME_NAME", "group-ipt programme", "Name of the programme, shown in headers and on printouts."),
    Setting("DEFAULT_LANGUAGE", "en", "Language used when neither the user nor the browser chose one."),
    Setting(
        "TRANSLATIONS_DIR",
        None,
        "Folder with the gettext catalogs and languages.yaml. Default: the "
        "checkout's translations/; an installed copy uses translations/ in the data folder, copied from the "
        "package (see bundle.py).",
    ),
    Setting(
        "FORMS_DIR",
        None,
        "Folder with the instrument, protocol and script files. Default: the checkout's "
        "forms/; an installed copy uses forms/ in the data folder, copied from the package.",
    ),
    Setting(
        "SESSION_IDLE_MINUTES",
        480,
        "Log a user out after this many minutes without a request (shared laptops); "
        "kept on the server, so a copied cookie ends too.",
    ),
    Setting("SESSION_LIFETIME_HOURS", 12, "A login lasts at most this many hours."),
    Setting("SESSION_COOKIE_SECURE", False, "Send the session cookie over HTTPS only; turn on when served over HTTPS."),
    Setting(
        "TRUSTED_PROXY",
        None,
        "Address of the reverse proxy that serves HTTPS in front of 'group-ipt serve' "
        "(e.g. '127.0.0.1'): the client's address and scheme are then read from its X-Forwarded-* headers.",
    ),
    Setting(
        "LOGIN_MAX_FAILURES",
        5,
        "Failed logins for one username from one address before each further try "
        "waits (30 s, then twice as long after each failure).",
    ),
    Setting("LOGIN_LOCK_MINUTES", 15, "Longest wait after failed logins, and how long a failure counts."),
    Setting("PASSWORD_HASH_METHOD", "scrypt", "werkzeug password hash method; tests use a faster one."),
    Setting(
        "FOLLOWUP_DUE_DAYS",
        7,
        "Days after a member's repeated absences before the call or home visit counts as overdue.",
    ),
    Setting(
        "MEASURE_GRACE_DAYS",
        14,
        "Days after a cycle measure's due date (baseline, mid, end, follow-up) before it shows as overdue.",
    ),
    Setting(
        "REPORT_REFRESH_SECONDS",
        120,
        "While `serve` runs: seconds between background refreshes of the "
        "indicators' stored figures for the cycles that changed (0: only when a report is opened).",
    ),
    Setting(
        "BACKUP_DAILY",
        True,
        "While `serve` runs, keep a daily backup of the database in the data folder's backups/ (checked every hour).",
    ),
    Setting("BACKUP_KEEP_DAYS", 7, "Daily backups kept: every one of the last this many days."),
    Setting("BACKUP_KEEP_WEEKS", 4, "Also kept: the newest backup of each of this many most recent weeks."),
    Setting("BACKUP_WARN_DAYS", 7, "The home page warns coordinators when no backup is newer than this many days."),
    Setting(
        "ELIGIBILITY_CUTOFFS",
        {"phq9": 10},
        "Eligibility cut-off per instrument id, overriding the file's "
        "(e.g. {phq9 = 9}); an instrument not listed uses its file's cut-off.",
    ),
    Setting("REFERRAL_WEEKLY_FOLLOWUPS", 8, "Weekly safety follow-ups planned when a referral is made."),
    Setting("REFERRAL_LATER_INTERVAL_WEEKS", 3, "Weeks between safety follow-ups after the weekly ones (2 to 4)."),
    Setting(
        "REFERRAL_LATER_FOLLOWUPS",
        4,
        "Follow-ups planned at that interval; more are added while the referral stays open.",
    ),
    Setting(
        "REFERRAL_UNREACHABLE_TRIES",
        3,
        "Recorded follow-up contacts needed before a referral may close as 'could not be reached'.",
    ),
    Setting(
        "SAFETY_CONTACTS",
        [],
        "Local emergency and referral numbers printed on scripts, safety alerts and the "
        'referral slip: a list of {name, phone} (e.g. [{name = "Ambulance", phone = "112"}]).',
    ),
    Setting(
        "SYNC_CENTRAL",
        False,
        "This instance is the central server that laptops sync with (also turned on by 'group-ipt serve --central').",
    ),
    Setting(
        "SYNC_SEND_NAMES",
        False,
        "Central server: let participants' names and phone numbers travel to the "
        "centre. Off: they stay on the laptops and the centre sees programme codes only.",
    ),
    Setting("SYNC_MAX_BODY_MB", 16, "Largest sync or API request body accepted, in MB (compressed)."),
    Setting("SYNC_MAX_BATCH_RECORDS", 5000, "Most records one sync batch may carry."),
    Setting(
        "SYNC_MAX_UNPACKED_MB",
        32,
        "Largest sync or API request body once unpacked, in MB; checked while "
        "unpacking, so a small gzip 'bomb' is refused without filling the memory.",
    ),
    Setting(
        "EXPORT_NAMES",
        False,
        "CSV exports (tables and the records behind indicators) carry participants' "
        "names, phone numbers, guardians' names and free-text notes. Off: programme codes instead of names, "
        "no phone numbers, notes emptied.",
    ),
    Setting(
        "SUPERVISION_RATING_FORM",
        "adherence",
        "Id of the rating form (forms/ratings/) supervisors fill in after observing a session.",
    ),
    Setting(
        "SUPERVISION_ADHERENCE_THRESHOLD",
        None,
        "Adherence (percent of the rating scale) below which a "
        "facilitator is flagged; unset: the rating form's own threshold.",
    ),
    Setting(
        "SUPERVISION_WORSENING_POINTS",
        5,
        "A member whose PHQ-9 total rose this much or more from baseline goes on the supervisor's list.",
    ),
]


def default_data_dir() -> Path:
    env = os.environ.get("GROUP_IPT_DATA")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("group-ipt", appauthor=False))


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}
