"""Log in, log out, and keep every other page behind a login."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from ..core import login_sessions, users
from ..store.db import marks, row, rows
from .database import get_db
from .redirects import flash_and_redirect, safe_target

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.session_protection = "basic"

# Endpoints anyone may reach without logging in.
PUBLIC_ENDPOINTS = {"auth.login", "auth.choose_login_language", "static"}


class User(UserMixin):
    """The logged-in user, as Flask-Login wants it; ``record`` is the users row."""

    def __init__(self, record: dict, site_ids: list[str], site_language: str | None):
        self.record = record
        self.id = record["id"]
        self.username = record["username"]
        self.display_name = record["display_name"]
        self.role = record["role"]
        self.language = record["language"]
        self.site_ids = site_ids
        self.site_language = site_language

    @property
    def is_active(self) -> bool:
        return bool(self.record["active"])

    def has_role(self, *roles: str) -> bool:
        return self.role in roles or self.role == "admin"


@login_manager.user_loader
def session_user(user_id: str) -> User | None:
    """Return the user of this request's server-side session, or None when it has ended."""
    db = get_db()
    config = current_app.config
    result = login_sessions.check(
        db,
        session.get("sid"),
        idle_minutes=config["SESSION_IDLE_MINUTES"],
        lifetime_hours=config["SESSION_LIFETIME_HOURS"],
    )
    if result.user is None or result.user["id"] != user_id:
        g.session_ended = result.reason
        return None
    return user_object(db, result.user)


def load_user(user_id: str) -> User | None:
    """Return the User for an active user's id, with no session check (tests, the login itself)."""
    db = get_db()
    return user_object(db, users.get_user(db, user_id))


def user_object(db, record: dict | None) -> User | None:
    if record is None or not record["active"]:
        return None
    site_ids = users.user_site_ids(db, record)
    site_language = None
    if site_ids:
        site = row(db, "select default_language from sites where id = ?", (site_ids[0],))
        site_language = site["default_language"] if site else None
    return User(record, site_ids, site_language)


def user_sites() -> list[dict]:
    """Return the sites of the logged-in user, by name."""
    site_ids = current_user.site_ids
    return rows(get_db(), f"select * from sites where id in ({marks(site_ids)}) order by name", site_ids)


def role_required(*roles: str):
    """Allow a view only to users with one of ``roles`` (admins always pass)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def require_login():
    """Send anyone not logged in to the login page; end idle sessions on shared laptops."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None and request.path.startswith("/static/"):
        return None
    if request.path.startswith("/api/"):
        return None  # the API checks its own device token and answers 401 in JSON (views/api.py)
    if not current_user.is_authenticated:
        ended = g.pop("session_ended", None)
        if "sid" in session:  # the server ended this session: forget the cookie's copy of it
            _clear_session()
        if ended in EXPIRED_REASONS:
            flash(_("Your session has expired. Please log in again."), "warning")
            return redirect(url_for("auth.login"))
        if request.endpoint is not None:
            flash(_("Please log in to see this page."), "info")
        return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
    g.user = current_user
    return None


# Why a session may end without the user logging out (the login page then says it expired).
EXPIRED_REASONS = {"idle", "expired", "password_changed", "disabled"}


def _clear_session() -> None:
    """Empty the cookie's session, keeping only the language chosen on the login page."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    status = 200
    username = ""
    headers = {}
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        if not username or not password:
            flash(_("Enter your username and your password."), "error")
            status = 400
        else:
            db = get_db()
            result = users.authenticate(
                db,
                username,
                password,
                request.remote_addr,
                max_failures=current_app.config["LOGIN_MAX_FAILURES"],
                lock_minutes=current_app.config["LOGIN_LOCK_MINUTES"],
                hash_method=current_app.config["PASSWORD_HASH_METHOD"],
            )
            if result.user:
                _clear_session()
                session.permanent = True
                session["sid"] = login_sessions.start(db, result.user, request.remote_addr)
                login_user(user_object(db, result.user))
                return redirect(safe_target(request.args.get("next"), url_for("home.index")))
            if result.error == "throttled":
                flash(
                    _(
                        "Too many failed attempts. Wait %(minutes)d minutes and try again, or ask your "
                        "coordinator to reset your password.",
                        minutes=result.retry_after_minutes,
                    ),
                    "error",
                )
                status = 429
                headers["Retry-After"] = str(result.retry_after_seconds)
            elif result.error == "disabled":
                flash(_("This account has been disabled. Ask your coordinator."), "error")
                status = 403
            else:
                flash(_("Wrong username or password."), "error")
                status = 401
    return render_template("auth/login.html", username=username), status, headers


@bp.route("/login/language", methods=["POST"])
def choose_login_language():
    lang = request.form.get("lang", "")
    from .i18n import languages

    if lang not in languages():
        return flash_and_redirect(_("Unknown language."), url_for("auth.login"), "error")
    session["lang"] = lang
    return redirect(url_for("auth.login"), 303)


@bp.route("/logout", methods=["POST"])
def logout():
    login_sessions.end(get_db(), session.get("sid"), "logout")
    logout_user()
    _clear_session()
    return flash_and_redirect(_("You have logged out."), url_for("auth.login"), "info")
