"""The web application: the app factory, its settings, template helpers and error pages."""

from __future__ import annotations

import errno
import sqlite3
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, render_template, request
from flask_babel import Babel, lazy_gettext
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from .. import __version__
from ..base import bundle
from ..base.errors import DomainError
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

    translations = Path(app.config["TRANSLATIONS_DIR"])
    if not translations.is_dir():
        raise ConfigError(f"The translations folder {translations} does not exist (setting TRANSLATIONS_DIR).")
    if not bundle.is_packaged(translations):  # an installed package's catalogs were compiled by its build
        i18n.compile_catalogs(translations)
    app.extensions["group_ipt_languages"] = i18n.load_languages(translations)

    from ..formfiles import forms as formsmod

    app.extensions[formsmod.EXTENSION] = formsmod.load_all(Path(app.config["FORMS_DIR"]))

    Babel(app, locale_selector=i18n.select_locale)
    csrf.init_app(app)

    from . import account, auth, home

    auth.login_manager.init_app(app)
    auth.login_manager.login_view = "auth.login"
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
    app.register_blueprint(account.bp)
    from .views import participants as participants_views
    from .views import referrals as referrals_views
    from .views import screening as screening_views

    app.register_blueprint(participants_views.bp)
    app.register_blueprint(screening_views.bp)
    app.register_blueprint(referrals_views.bp)
    from .views import cycles as cycles_views
    from .views import sessions as sessions_views

    app.register_blueprint(cycles_views.bp)
    app.register_blueprint(sessions_views.bp)
    from .views import scripts as scripts_views

    app.register_blueprint(scripts_views.bp)
    from .views import pdf as pdf_views

    app.register_blueprint(pdf_views.bp)
    from .views import reports as reports_views

    app.register_blueprint(reports_views.bp)
    from .views import clinical as clinical_views
    from .views import supervision as supervision_views

    app.register_blueprint(clinical_views.bp)
    app.register_blueprint(supervision_views.bp)
    from .views import api as api_views
    from .views import sync as sync_views

    csrf.exempt(api_views.bp)  # token-authenticated, no cookies
    app.register_blueprint(api_views.bp)
    app.register_blueprint(sync_views.bp)
    from .views import users as users_views

    app.register_blueprint(users_views.bp)
    app.before_request(auth.require_login)
    app.teardown_appcontext(database.close_db)

    if Path(app.config["DATABASE"]).exists():
        from ..store import upgrade

        conn = dbmod.connect(app.config["DATABASE"])
        try:
            try:
                upgrade.check_not_newer(conn)
            except upgrade.NewerDatabase as exc:
                raise ConfigError(str(exc)) from exc
            migrate(conn)
            from ..store.tracking import ensure_triggers

            ensure_triggers(conn)
            upgrade.record_version(conn)
        finally:
            conn.close()

    register_template_helpers(app)
    register_error_pages(app)
    from . import headers

    headers.init_app(app)
    return app


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


def register_error_pages(app: Flask) -> None:
    messages = {
        400: lambda: _("The request could not be understood. Check what you typed and try again."),
        403: lambda: _("You do not have permission to see this page."),
        404: lambda: _("This page does not exist."),
        405: lambda: _("This action is not allowed here."),
        413: lambda: _("What you sent is too large."),
        429: lambda: _("Too many requests. Wait a moment and try again."),
        500: lambda: _("Something went wrong on our side. Nothing was saved. Please try again."),
    }

    def render_error(code: int, message: str | None = None, headers: dict | None = None):
        if request.path.startswith("/api/"):
            return {"error": message or messages[code]()}, code, headers or {}
        return render_template("error.html", code=code, message=message or messages[code]()), code, headers or {}

    def error_headers(e) -> dict:
        """Keep the headers HTTP requires on an error: a 405 names the methods the URL answers (Allow)."""
        methods = getattr(e, "valid_methods", None)
        return {"Allow": ", ".join(methods)} if methods else {}

    for code in messages:
        app.register_error_handler(
            code, lambda e, code=code: render_error(code, getattr(e, "user_message", None), error_headers(e))
        )

    @app.errorhandler(DomainError)
    def refused(e: DomainError):
        """A refusal no page caught (e.g. the record rules' last gate at commit): 400 with its reason."""
        from flask_babel import ngettext

        return render_error(400, e.translated(_, ngettext))

    def disk_full_message() -> str:
        return _("The computer's disk is full: nothing was saved. Free some space, then try again.")

    @app.errorhandler(sqlite3.OperationalError)
    @app.errorhandler(OSError)
    def storage_error(e):
        """A full disk: 507 and "nothing was saved" (the write's transaction rolled back); else as before."""
        if not is_disk_full(e, app.config["DATABASE"]):
            return app.handle_exception(e)
        app.logger.error(
            "The disk holding %s is full: free some space. Nothing of this request was saved. (%s)",
            app.config["DATABASE"],
            e,
        )
        try:
            return render_error(507, disk_full_message())
        except sqlite3.Error:
            # So full that no connection opens (the page needs the user and their language): a bare page.
            from flask_babel import force_locale
            from markupsafe import escape

            with force_locale(app.config["DEFAULT_LANGUAGE"]):
                text = disk_full_message()
            if request.path.startswith("/api/"):
                return {"error": text}, 507
            return f"<!doctype html><title>507</title><h1>507</h1><p>{escape(text)}</p>", 507

    @app.errorhandler(sqlite3.DatabaseError)
    def damaged_database(e):
        """A damaged database file: say so (the log names the file and how to restore it), not a bare 500."""
        if not dbmod.is_damaged(e):
            return app.handle_exception(e)
        app.logger.error("%s", dbmod.damaged_message(app.config["DATABASE"], e))

        def text() -> str:
            return _(
                "The database file is damaged. Nothing was saved. Tell your administrator: it must be "
                "restored from a backup (group-ipt restore)."
            )

        try:
            return render_error(500, text())
        except sqlite3.Error:
            # The page itself needs the database (the user, their language): a bare page then.
            from flask_babel import force_locale
            from markupsafe import escape

            with force_locale(app.config["DEFAULT_LANGUAGE"]):
                message = text()
            if request.path.startswith("/api/"):
                return {"error": message}, 500
            return f"<!doctype html><title>500</title><h1>500</h1><p>{escape(message)}</p>", 500

    @app.errorhandler(CSRFError)
    def csrf_error(e):
        return render_error(
            400,
            _("This form has expired or did not come from this app. Go back, reload the page and send it again."),
        )
