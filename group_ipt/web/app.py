"""The web application: the app factory, its settings, template helpers and error pages."""

from __future__ import annotations

import errno
import sqlite3
import tomllib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, current_app, render_template, request
from flask_babel import Babel, lazy_gettext
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import __version__
from ..base import bundle
from ..base.errors import DomainError, RecordMissing
from ..base.settings import DEV_SECRET_KEY, ConfigError, default_data_dir, defaults
from ..store import db as dbmod
from ..store.schema import migrate
from . import database, i18n

csrf = CSRFProtect()
SECRET_KEY_FILE = "secret_key"  # noqa: S105 (a file name)


def load_config(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "config.toml"
    if not path.exists():
        return {}
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    known = defaults()
    unknown = [k for k in raw if k.upper() not in known]
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return {k.upper(): v for k, v in raw.items()}


def read_secret_key(data_dir: Path) -> str | None:
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        key = path.read_text(encoding="utf-8").strip()
        return key or None
    return None


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the data folder's config.toml, then ``test_config``."""
    app = Flask(__name__)
    configure(app, test_config)
    load_languages_and_forms(app)
    Babel(app, locale_selector=i18n.select_locale)
    csrf.init_app(app)
    register_blueprints(app)
    upgrade_database(app.config["DATABASE"])
    register_template_helpers(app)
    register_error_pages(app)
    from . import headers

    headers.init_app(app)
    return app


def configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Settle the settings: defaults, config.toml, ``test_config``, then what follows from them."""
    app.config.from_mapping(defaults())
    data_dir = Path((test_config or {}).get("DATA_DIR") or default_data_dir())
    app.config.update(load_config(data_dir))
    if test_config:
        app.config.update(test_config)
    app.config["DATA_DIR"] = str(data_dir)
    for name, key in (("forms", "FORMS_DIR"), ("translations", "TRANSLATIONS_DIR")):
        if not app.config.get(key):
            try:
                app.config[key] = str(bundle.data_folder(data_dir, name, __version__))
            except OSError as exc:
                raise ConfigError(f"Cannot prepare the {name} folder in {data_dir}: {exc}") from exc
    app.config.setdefault("DATABASE", str(dbmod.database_path(data_dir)))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = read_secret_key(data_dir) or DEV_SECRET_KEY
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="group_ipt_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=app.config["SESSION_LIFETIME_HOURS"]),
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the login session
        BABEL_TRANSLATION_DIRECTORIES=str(Path(app.config["TRANSLATIONS_DIR"]).resolve()),
        BABEL_DEFAULT_LOCALE=app.config["DEFAULT_LANGUAGE"],
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 16 * 1024 * 1024,
    )


def load_languages_and_forms(app: Flask) -> None:
    """Load the translations' languages and the form files, failing loudly on a missing folder."""
    translations = Path(app.config["TRANSLATIONS_DIR"])
    if not translations.is_dir():
        raise ConfigError(f"The translations folder {translations} does not exist (setting TRANSLATIONS_DIR).")
    if not bundle.is_packaged(translations):  # an installed package's catalogs were compiled by its build
        i18n.compile_catalogs(translations)
    app.extensions["group_ipt_languages"] = i18n.load_languages(translations)

    from ..formfiles import forms as formsmod

    app.extensions[formsmod.EXTENSION] = formsmod.load_all(Path(app.config["FORMS_DIR"]))


def register_blueprints(app: Flask) -> None:
    """Register login and every area's blueprint; each request needs a login (the API: its token)."""
    from . import account, auth, home
    from .views import (
        api,
        clinical,
        cycles,
        participants,
        pdf,
        referrals,
        reports,
        screening,
        scripts,
        sessions,
        supervision,
        sync,
        users,
    )

    auth.login_manager.init_app(app)
    auth.login_manager.login_view = "auth.login"
    csrf.exempt(api.bp)  # token-authenticated, no cookies
    for area in (
        auth,
        home,
        account,
        participants,
        screening,
        referrals,
        cycles,
        sessions,
        scripts,
        pdf,
        reports,
        clinical,
        supervision,
        api,
        sync,
        users,
    ):
        app.register_blueprint(area.bp)
    app.before_request(auth.require_login)
    app.teardown_appcontext(database.close_db)


def upgrade_database(path: str) -> None:
    """Bring an existing database up to this version (refusing one made by a newer version)."""
    if not Path(path).exists():
        return
    from ..store import upgrade
    from ..store.tracking import ensure_triggers

    conn = dbmod.connect(path)
    try:
        try:
            upgrade.check_not_newer(conn)
        except upgrade.NewerDatabase as exc:
            raise ConfigError(str(exc)) from exc
        migrate(conn)
        ensure_triggers(conn)
        upgrade.record_version(conn)
    finally:
        conn.close()


# I18N: role names as shown next to the user's name
ROLE_LABELS = {
    "facilitator": lazy_gettext("facilitator"),
    "coordinator": lazy_gettext("coordinator"),
    "supervisor": lazy_gettext("supervisor"),
    "admin": lazy_gettext("admin"),
}


def register_template_helpers(app: Flask) -> None:
    from flask_babel import format_date, format_datetime, format_time

    @app.context_processor
    def inject():
        lang = i18n.current_language()
        return {
            "current_lang": lang,
            "all_languages": i18n.languages(),
            "programme_name": app.config["PROGRAMME_NAME"],
            "app_version": __version__,
            "role_labels": ROLE_LABELS,
        }

    app.jinja_env.filters["date"] = lambda value, fmt="medium": format_date(_as_date(value), fmt) if value else ""
    # A moment as a person reads it: the locale's date and its short time, never seconds.
    app.jinja_env.filters["datetime"] = lambda value, fmt="medium": (
        format_datetime(_as_datetime(value), f"{_date_pattern(fmt)} {_time_pattern()}") if value else ""
    )
    app.jinja_env.filters["time_of_day"] = lambda value: format_time(_as_time(value), "short") if value else ""
    app.jinja_env.filters["number"] = lambda value: i18n.format_decimal(value) if value is not None else ""


def _as_date(value):
    from datetime import date

    return date.fromisoformat(value[:10]) if isinstance(value, str) else value


def _as_time(value):
    """Read a session's "HH:MM" or a stored ISO timestamp."""
    from datetime import datetime, time

    if isinstance(value, str):
        return time.fromisoformat(value) if len(value) <= 8 else datetime.fromisoformat(value)
    return value


def _date_pattern(fmt: str) -> str:
    from flask_babel import get_locale

    return get_locale().date_formats[fmt].pattern


def _time_pattern() -> str:
    from flask_babel import get_locale

    return get_locale().time_formats["short"].pattern


def _as_datetime(value):
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else value


def is_disk_full(exc: BaseException, path: str | None = None) -> bool:
    """Tell whether an error means the disk (or the database's size limit) is full.

    SQLite says "disk I/O error", not "full", when it cannot even create its ``-shm`` file
    on a full disk: an I/O error counts as full when the database's disk has under 1 MB free.
    """
    if isinstance(exc, sqlite3.OperationalError):
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_FULL or "disk is full" in str(exc):
            return True
        if path and code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
            import shutil

            try:
                return shutil.disk_usage(Path(path).parent).free < 1024 * 1024
            except OSError:
                return False
        return False
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


# The message of each error page: a function, so that it is translated at request time.
ERROR_MESSAGES: dict[int, Callable[[], str]] = {
    400: lambda: _("The request could not be understood. Check what you typed and try again."),
    403: lambda: _("You do not have permission to see this page."),
    404: lambda: _("This page does not exist."),
    405: lambda: _("This action is not allowed here."),
    413: lambda: _("What you sent is too large."),
    429: lambda: _("Too many requests. Wait a moment and try again."),
    500: lambda: _("Something went wrong on our side. Nothing was saved. Please try again."),
}


def register_error_pages(app: Flask) -> None:
    for code in ERROR_MESSAGES:
        app.register_error_handler(
            code, lambda e, code=code: render_error(code, getattr(e, "user_message", None), error_headers(e))
        )
    app.register_error_handler(DomainError, refused)
    app.register_error_handler(RecordMissing, missing)
    app.register_error_handler(OSError, storage_error)
    app.register_error_handler(sqlite3.OperationalError, storage_error)
    app.register_error_handler(sqlite3.DatabaseError, damaged_database)
    app.register_error_handler(CSRFError, csrf_error)


def render_error(code: int, message: str | None = None, headers: dict | None = None):
    """Answer an error: JSON under /api/, else the error page; without ``message``, the code's own."""
    if request.path.startswith("/api/"):
        return {"error": message or ERROR_MESSAGES[code]()}, code, headers or {}
    return render_template("error.html", code=code, message=message or ERROR_MESSAGES[code]()), code, headers or {}


def error_headers(e) -> dict:
    """Keep the headers HTTP requires on an error: a 405 names the methods the URL answers (Allow)."""
    methods = getattr(e, "valid_methods", None)
    return {"Allow": ", ".join(methods)} if methods else {}


def refused(e: DomainError):
    """A refusal no page caught (e.g. the record rules' last gate at commit): 400 with its reason."""
    from flask_babel import ngettext

    return render_error(400, e.translated(_, ngettext))


def missing(e: RecordMissing):
    """A record named by the request is gone (a stale form, another user's change): 404, not a 500."""
    current_app.logger.warning("%s", e)
    return render_error(404)


def disk_full_message() -> str:
    return _("The computer's disk is full: nothing was saved. Free some space, then try again.")


def damaged_database_message() -> str:
    return _(
        "The database file is damaged. Nothing was saved. Tell your administrator: it must be "
        "restored from a backup (group-ipt restore)."
    )


def storage_error(e):
    """A full disk: 507 and "nothing was saved" (the write's transaction rolled back); else as before."""
    if not is_disk_full(e, current_app.config["DATABASE"]):
        return current_app.handle_exception(e)
    current_app.logger.error(
        "The disk holding %s is full: free some space. Nothing of this request was saved. (%s)",
        current_app.config["DATABASE"],
        e,
    )
    return render_error_without_database(507, disk_full_message)


def damaged_database(e):
    """A damaged database file: say so (the log names the file and how to restore it), not a bare 500."""
    if not dbmod.is_damaged(e):
        return current_app.handle_exception(e)
    current_app.logger.error("%s", dbmod.damaged_message(current_app.config["DATABASE"], e))
    return render_error_without_database(500, damaged_database_message)


def render_error_without_database(code: int, message: Callable[[], str]):
    """Answer an error about the database or its disk; when the page itself cannot be made (it needs
    the database: the user, their language), a bare page in the site's language."""
    try:
        return render_error(code, message())
    except sqlite3.Error:
        from flask_babel import force_locale
        from markupsafe import escape

        with force_locale(current_app.config["DEFAULT_LANGUAGE"]):
            text = message()
        if request.path.startswith("/api/"):
            return {"error": text}, code
        return f"<!doctype html><title>{code}</title><h1>{code}</h1><p>{escape(text)}</p>", code


def csrf_error(e):
    return render_error(
        400,
        _("This form has expired or did not come from this app. Go back, reload the page and send it again."),
    )
