"""The ``group-ipt`` command: set up, serve, and look after a programme's data.

Every command only parses its options and calls one function of the package.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlite_utils import Database

from . import __version__
from .base.settings import DEV_SECRET_KEY, ConfigError, default_data_dir
from .formfiles import forms as formsmod
from .store import db as dbmod
from .store.schema import current_version, migrate, pending
from .store.tracking import ensure_triggers
from .web.app import create_app
from .web.i18n import pdf_language


@contextmanager
def as_cli_error(*errors: type[Exception]) -> Iterator[None]:
    """Show a refusal of the call inside (one of ``errors``) as the command's error line (exit status 1)."""
    try:
        yield
    except errors as exc:
        raise click.ClickException(str(exc)) from exc


class Context:
    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._app = None

    @property
    def db_path(self) -> Path:
        return dbmod.database_path(self.data_dir)

    def app(self, **overrides):
        """Build the app for this data folder, turning start-up errors into a clean CLI error."""
        if self._app is None:
            from .formfiles.forms import FormsError

            with as_cli_error(ConfigError, FormsError):
                self._app = create_app({"DATA_DIR": str(self.data_dir), **overrides})
        return self._app

    def require_db(self) -> Database:
        """Open the existing database for the running command, which closes it when it ends."""
        if not self.db_path.exists():
            raise click.ClickException(
                f"No database in {self.data_dir}. Run 'group-ipt init --admin NAME' first "
                "(or 'group-ipt serve --demo' to try the app with demo data)."
            )
        from .store.upgrade import NewerDatabase, check_not_newer

        db = self.closed_at_end(dbmod.connect(self.db_path))
        with as_cli_error(NewerDatabase):
            check_not_newer(db)
        return db

    def initialise(self) -> Database:
        """Create or migrate the database (see ``initialise``) for the running command, which closes it when it ends."""
        return self.closed_at_end(initialise(self.data_dir))

    @staticmethod
    def closed_at_end(db: Database) -> Database:
        """Close ``db`` when the running command ends, however it ends (the one way every command closes its database).

        Click pops the command's context in a ``with`` block, so the connection is closed on success, on a
        ClickException and on a crash alike, and a test that invokes many commands leaves none open.
        """
        click.get_current_context().with_resource(closing(db))
        return db


pass_ctx = click.make_pass_decorator(Context)


class Commands(click.Group):
    """The command group: a damaged database ends any command with one clear message, not a traceback."""

    def invoke(self, ctx):
        import sqlite3

        try:
            return super().invoke(ctx)
        except sqlite3.DatabaseError as exc:
            if not dbmod.is_damaged(exc):
                raise
            path = ctx.obj.db_path if isinstance(ctx.obj, Context) else "group-ipt.db"
            raise click.ClickException(dbmod.damaged_message(path, exc)) from exc


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the database, secret key and config.toml (default: $GROUP_IPT_DATA or the per-user data folder).",
)
@click.version_option(version=__version__, prog_name="group-ipt")
@click.pass_context
def cli(ctx, data_dir):
    """Run a group IPT programme: screening, group cycles, sessions, reports and sync.

    Example: group-ipt --data-dir ./data serve
    """
    ctx.obj = Context(data_dir or default_data_dir())


def read_new_password(prompt: str = "Password") -> str:
    """Ask twice on a terminal; read two lines from standard input otherwise (for scripts)."""
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    first = sys.stdin.readline().rstrip("\r\n")
    second = sys.stdin.readline().rstrip("\r\n")
    if not first:
        raise click.ClickException("No password given: send it twice on standard input, one line each.")
    if first != second:
        raise click.ClickException("The two passwords are not the same. Nothing was changed.")
    return first


def ensure_secret_key(data_dir: Path) -> None:
    from .web.app import SECRET_KEY_FILE

    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return
    from .base.oscompat import write_private

    write_private(path, secrets.token_urlsafe(48))


def initialise(data_dir: Path) -> Database:
    """Create the data folder, the secret key and an up-to-date empty database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_secret_key(data_dir)
    from .store.upgrade import NewerDatabase, check_not_newer, record_version

    db = dbmod.connect(dbmod.database_path(data_dir))
    try:
        check_not_newer(db)
    except NewerDatabase as exc:
        db.close()
        raise click.ClickException(str(exc)) from exc
    migrate(db)
    ensure_triggers(db)
    record_version(db)
    return db


@cli.command()
@click.option("--admin", "admin_username", required=True, help="Username of the first administrator.")
@click.option("--name", "display_name", default=None, help="Full name shown in the app (default: the username).")
@pass_ctx
def init(ctx: Context, admin_username, display_name):
    """Create the database, a secret key and the first admin; asks the password twice.

    Example: group-ipt init --admin amina   (in a script: printf 'pw\\npw\\n' | group-ipt init --admin amina)
    """
    from .core import users

    if ctx.db_path.exists():
        db = ctx.closed_at_end(dbmod.connect(ctx.db_path))
        if "users" in db.table_names() and db["users"].count:
            raise click.ClickException(
                f"{ctx.db_path} already exists and has users; nothing was changed. "
                "Use 'group-ipt users add' to add people."
            )
    password = read_new_password(f"Password for {admin_username}")
    with as_cli_error(users.UserError):
        users.validate_password(password)
    db = ctx.initialise()
    with as_cli_error(users.UserError):
        users.create_user(db, admin_username, password, "admin", display_name=display_name)
    click.echo(f"Created {ctx.db_path} and the admin {admin_username!r}.")
    click.echo("Next: add a site ('group-ipt sites add CODE NAME') and users ('group-ipt users add').")


@cli.command("migrate")
@pass_ctx
def migrate_cmd(ctx: Context):
    """Apply any pending database migrations (the app also does this when it starts).

    Example: group-ipt migrate
    """
    db = ctx.require_db()
    todo = pending(db)
    applied = migrate(db)
    ensure_triggers(db)
    for m in applied:
        click.echo(f"applied {m.version:04d} {m.name}")
    if not todo:
        click.echo(f"The database is up to date (version {current_version(db)}).")


@cli.command("upgrade")
@pass_ctx
def upgrade_cmd(ctx: Context):
    """After installing a newer version: back up the database, migrate it, and say what changed.

    The installers of the offline kit run it. Nothing is written when the data is already at this version.

    Example: group-ipt upgrade
    """
    from . import __version__
    from .store import upgrade as upgrademod

    if not ctx.db_path.exists():
        click.echo(f"No database in {ctx.data_dir} yet: nothing to upgrade (group-ipt {__version__}).")
        return
    try:
        done = upgrademod.upgrade(ctx.db_path, ctx.data_dir)
    except upgrademod.NewerDatabase as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # a failed migration rolled back; the backup is there either way
        raise click.ClickException(
            f"The upgrade failed: {exc}. The data is as it was before; a backup is in {ctx.data_dir / 'backups'}."
        ) from exc
    if not done["migrations"] and done["from"] == done["to"]:
        click.echo(f"The data in {ctx.data_dir} is already at group-ipt {__version__}; nothing to do.")
        return
    click.echo(f"Upgraded the data in {ctx.data_dir} from group-ipt {done['from'] or 'before 0.2.0'} to {done['to']}.")
    if done["backup"]:
        click.echo(f"Backup taken first: {done['backup']}")
    for number, name in done["migrations"]:
        click.echo(f"database change {number:04d} {name}")
    for version, notes in done["changes"]:
        click.echo(f"What is new in {version}:")
        for note in notes:
            click.echo(f"  - {note}")


@cli.group()
def users():
    """Add, list, disable and enable users.

    Example: group-ipt users list
    """


@users.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["facilitator", "coordinator", "supervisor", "admin"]),
    required=True,
    help="What the user may do.",
)
@click.option("--site", "sites", multiple=True, help="Code of a site the user works at (repeat for several).")
@click.option("--name", "display_name", default=None, help="Full name shown in the app.")
@click.option("--language", default=None, help="Language code of the user's interface, e.g. sw.")
@pass_ctx
def users_add(ctx: Context, username, role, sites, display_name, language):
    """Add a user; asks the password twice (two lines on standard input in a script).

    Example: group-ipt users add joseph --role facilitator --site KMP --name "Joseph Okello"
    """
    from .core import users as usersmod

    db = ctx.require_db()
    site_ids = []
    for code in sites:
        site = usersmod.get_site(db, code)
        if site is None:
            raise click.ClickException(f"Unknown site {code!r}. 'group-ipt sites list' shows the sites.")
        site_ids.append(site["id"])
    password = read_new_password(f"Password for {username}")
    with as_cli_error(usersmod.UserError):
        usersmod.create_user(
            db, username, password, role, display_name=display_name, site_ids=site_ids, language=language
        )
    click.echo(f"Added {role} {username!r}.")


@users.command("list")
@pass_ctx
def users_list(ctx: Context):
    """List every user with role, sites and whether active.

    Example: group-ipt users list
    """
    from .core import users as usersmod

    db = ctx.require_db()
    config = ctx.app().config
    for u in usersmod.list_users(db):
        state = "active" if u["active"] else "disabled"
        click.echo(f"{u['username']:<20} {u['role']:<12} {state:<9} {u['site_codes'] or '-':<12} {u['display_name']}")
        for lock in usersmod.login_locks(
            db, u["username"], max_failures=config["LOGIN_MAX_FAILURES"], lock_minutes=config["LOGIN_LOCK_MINUTES"]
        ):
            assert lock.retry_at is not None  # login_locks returns only the throttles that make one wait
            where = "several addresses" if lock.scope == "user" else lock.remote_addr
            click.echo(
                f"{'':<20} slowed down: {lock.failures} failed logins from {where}, next try after "
                f"{lock.retry_at.isoformat()} ('group-ipt users unlock {u['username']}' lifts it)"
            )


def _set_active(ctx: Context, username: str, active: bool) -> None:
    from .core import users as usersmod

    db = ctx.require_db()
    with as_cli_error(usersmod.UserError):
        usersmod.set_active(db, username, active)
    click.echo(f"{'Enabled' if active else 'Disabled'} {username!r}.")


@users.command("disable")
@click.argument("username")
@pass_ctx
def users_disable(ctx: Context, username):
    """Stop a user from logging in (their records and history are kept).

    Example: group-ipt users disable joseph
    """
    _set_active(ctx, username, False)


@users.command("enable")
@click.argument("username")
@pass_ctx
def users_enable(ctx: Context, username):
    """Let a disabled user log in again.

    Example: group-ipt users enable joseph
    """
    _set_active(ctx, username, True)


@users.command("set-password")
@click.argument("username")
@pass_ctx
def users_set_password(ctx: Context, username):
    """Set a new password for a user (asked twice).

    Example: group-ipt users set-password joseph
    """
    from .core import users as usersmod

    db = ctx.require_db()
    if usersmod.get_user_by_username(db, username) is None:
        raise click.ClickException(f"No user called {username!r}.")
    password = read_new_password(f"New password for {username}")
    with as_cli_error(usersmod.UserError):
        usersmod.set_password(db, username, password)
    click.echo(f"Changed the password of {username!r}.")


@users.command("unlock")
@click.argument("username")
@pass_ctx
def users_unlock(ctx: Context, username):
    """Let a user slowed down by failed logins try again at once (recorded in the audit log).

    Example: group-ipt users unlock coord
    """
    from .core import users as usersmod

    db = ctx.require_db()
    with as_cli_error(usersmod.UserError):
        usersmod.unlock_login(db, username)
    click.echo(f"{username!r} can try to log in again now.")


@cli.group()
def sites():
    """Add and list the programme's sites.

    Example: group-ipt sites list
    """


@sites.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--language", default="en", help="The site's default language code (e.g. sw).")
@pass_ctx
def sites_add(ctx: Context, code, name, language):
    """Add a site (a place where groups run), with a short code used in programme codes.

    Example: group-ipt sites add KMP "Kampala North" --language en
    """
    from .core import users as usersmod

    db = ctx.require_db()
    app = ctx.app()
    if language not in app.extensions["group_ipt_languages"]:
        raise click.ClickException(f"Unknown language {language!r}.")
    with as_cli_error(usersmod.UserError):
        site = usersmod.create_site(db, code, name, language)
    click.echo(f"Added site {site['code']} {site['name']}.")


@sites.command("list")
@pass_ctx
def sites_list(ctx: Context):
    """List the sites.

    Example: group-ipt sites list
    """
    from .core import users as usersmod

    db = ctx.require_db()
    for s in usersmod.list_sites(db):
        click.echo(f"{s['code']:<8} {s['default_language']:<4} {s['name']}")


@cli.command()
@click.option(
    "--scale",
    type=click.IntRange(1, 10_000_000),
    default=None,
    help="Instead: generate a programme of this many participants (for benchmarks), e.g. 100000.",
)
@click.option("--seed", type=int, default=2026, show_default=True, help="Random seed of --scale.")
@pass_ctx
def demo(ctx: Context, scale, seed):
    """Fill the database with a demo programme (safe to run twice) and print the demo logins.

    With --scale N, write a national-sized programme of N participants with plain bulk
    INSERTs instead, into a new data folder (for 100,000 people: about 8,300 cycles, 1.4
    million attendance rows, safety referrals, duplicate flags and clinical records, in 5-7
    minutes; see group_ipt/demo/scale.py).

    Example: group-ipt demo   (benchmarks: group-ipt --data-dir /tmp/big demo --scale 100000)
    """
    from .demo import programme as demomod

    db = ctx.initialise() if not ctx.db_path.exists() else ctx.require_db()
    migrate(db)
    app = ctx.app()
    if scale:
        _generate_at_scale(db, app, scale, seed)
        return
    with app.app_context():
        summary = demomod.load_demo(db, app)
    click.echo(demomod.describe(summary))


def _generate_at_scale(db: Database, app: Flask, scale: int, seed: int) -> None:
    """Write a programme of ``scale`` participants (``demo --scale``), then its report figures."""
    from .base import clock
    from .demo import scale as scalemod

    def progress(done: int, total: int) -> None:
        click.echo(f"\rsite {done}/{total}", nl=False, err=True)

    with as_cli_error(ValueError):
        summary = scalemod.generate(db, app, scale, today=clock.today(), seed=seed, progress=progress)
    click.echo("", err=True)
    click.echo(scalemod.describe(summary))
    # The indicators' stored figures, so the first reports page does not wait for them.
    done, seconds = _refresh_figures(db, app)
    click.echo(f"Report figures of {done} cycles computed in {seconds:.0f} s.")


def _refresh_figures(db: Database, app: Flask) -> tuple[int, float]:
    """Recompute the stored figures of the cycles marked stale; return how many, and the seconds it took."""
    import time

    from .base import clock
    from .reporting.report_store import refresh

    started = time.perf_counter()
    done = refresh(
        db,
        formsmod.loaded(app.extensions).protocols,
        today=clock.today(),
        grace_days=app.config["MEASURE_GRACE_DAYS"],
    )
    return done, time.perf_counter() - started


@cli.command()
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for the whole network)."
)
@click.option(
    "--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="Port (0 picks a free one)."
)
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
@click.option("--dev", is_flag=True, help="Allow the development secret key (never for real data).")
@click.option("--demo", "with_demo", is_flag=True, help="Create the database and the demo programme first if needed.")
@click.option("--central", is_flag=True, help="Serve as the central server that laptops sync with (SYNC_CENTRAL).")
@click.option(
    "--open",
    "open_browser",
    is_flag=True,
    help="Open the app in the web browser once it runs; if it already runs on that port, only open it "
    "(what the desktop launcher does).",
)
@pass_ctx
def serve(ctx: Context, host, port, threads, dev, with_demo, central, open_browser):
    """Serve the app with the waitress WSGI server and print its address.

    Example: group-ipt serve --demo   (the desktop launcher: group-ipt serve --open)
    """
    import waitress

    if open_browser and port and _answers(host, port):
        url = f"http://{_browser_host(host)}:{port}/"
        click.echo(f"group-ipt is already running at {url}; opening it in the browser.")
        _open_in_browser(url)
        return
    if with_demo:
        _load_demo_to_serve(ctx, central)
    else:
        ctx.require_db().close()  # only checked: the app opens its own connections while it serves
    app = ctx.app(SYNC_CENTRAL=True) if central else ctx.app()
    if app.config["SECRET_KEY"] == DEV_SECRET_KEY and not dev:
        raise click.ClickException(
            f"There is no secret key in {ctx.data_dir}: run 'group-ipt init' there first, "
            "or pass --dev to use an insecure development key."
        )
    server = waitress.create_server(
        app, host=host, port=port, threads=threads, clear_untrusted_proxy_headers=True, **_proxy_options(app)
    )
    from .reporting.report_store import start_background_refresh

    start_background_refresh(app, app.config["REPORT_REFRESH_SECONDS"])
    from .store.backup import start_daily_backups

    start_daily_backups(app)
    click.echo(f"group-ipt is running at http://{host}:{server.effective_port}/  (press Ctrl+C to stop)", err=False)
    sys.stdout.flush()
    if open_browser:
        import threading

        url = f"http://{_browser_host(host)}:{server.effective_port}/"
        threading.Timer(1.0, _open_in_browser, (url,)).start()
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("Stopped.")


def _load_demo_to_serve(ctx: Context, central: bool) -> None:
    """Create the data folder and database if needed and load the demo programme (``serve --demo``)."""
    from .demo import programme as demomod

    # The data folder, its secret key and database come first: the app reads the key when it is built.
    db = ctx.initialise()
    app = ctx.app(SYNC_CENTRAL=True) if central else ctx.app()
    with app.app_context():
        summary = demomod.load_demo(db, app)
    db.close()  # now, not when serving ends: the app opens its own connections
    click.echo(demomod.describe(summary))


def _proxy_options(app: Flask) -> dict[str, Any]:
    """Return waitress's options for the TRUSTED_PROXY setting (none when the app is not behind a proxy)."""
    if not app.config.get("TRUSTED_PROXY"):
        return {}
    # Behind HTTPS on a reverse proxy: the client's address (login throttling, the audit) and the
    # scheme come from the proxy's headers, and only from that proxy.
    return {
        "trusted_proxy": app.config["TRUSTED_PROXY"],
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"},
    }


def _browser_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 (compared, not bound)


def _answers(host: str, port: int) -> bool:
    """Tell whether something already listens on ``host:port`` (a group-ipt started earlier by the launcher)."""
    import socket

    try:
        with socket.create_connection((_browser_host(host), port), timeout=1):
            return True
    except OSError:
        return False


def _open_in_browser(url: str) -> None:
    import webbrowser

    if not webbrowser.open(url):
        click.echo(f"Open {url} in your web browser.")


@cli.group()
def forms():
    """Check the instrument and protocol files in forms/.

    Example: group-ipt forms check
    """


def _data_files(ctx: Context, name: str, *, prepare: bool = False) -> Path:
    """Return the forms or translations folder the app uses: config.toml's setting, else the checkout's or the
    data folder's copy (``prepare``: make that copy if missing; otherwise fall back to the package's, writing
    nothing)."""
    from . import __version__
    from .base import bundle
    from .base.settings import defaults
    from .web.app import load_config

    key = f"{name.upper()}_DIR"
    with as_cli_error(ConfigError):
        configured = load_config(ctx.data_dir).get(key) or defaults()[key]
    if configured:
        return Path(configured)
    if prepare:
        return bundle.data_folder(ctx.data_dir, name, __version__)
    return bundle.folder_to_read(ctx.data_dir, name, __version__)


@forms.command("check")
@click.option(
    "--forms-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to check (default: the app's FORMS_DIR).",
)
@pass_ctx
def forms_check(ctx: Context, forms_dir):
    """Validate every form file and name the file, item and field of each error.

    Example: group-ipt forms check
    """

    folder = forms_dir or _data_files(ctx, "forms")
    errors = formsmod.check_all(folder)
    for e in errors:
        click.echo(str(e), err=True)
    if errors:
        raise click.ClickException(f"{len(errors)} error(s) in the form files under {folder}.")
    loaded = formsmod.load_all(folder)
    consent = loaded.consent
    assert consent is not None  # load_all reads consent.yaml, which check_all found valid
    click.echo(
        f"All form files are valid: {len(loaded.instruments)} instruments, {len(loaded.protocols)} protocols,"
        f" consent text version {consent.version} in {', '.join(consent.languages)}."
    )


@cli.group()
def i18n():
    """Translation catalogs.

    Example: group-ipt i18n compile
    """


@i18n.command("compile")
@click.option("--force", is_flag=True, help="Recompile even when the .mo files look up to date.")
@pass_ctx
def i18n_compile(ctx: Context, force):
    """Compile the .po catalogs in translations/ to .mo files.

    Example: group-ipt i18n compile
    """
    from .web.i18n import compile_catalogs

    written = compile_catalogs(_data_files(ctx, "translations", prepare=True), force=force)
    click.echo(f"Compiled {len(written)} catalog(s).")


@i18n.command("status")
@click.option(
    "--min",
    "minimum",
    type=click.FloatRange(0, 100),
    default=None,
    help="Exit non-zero when a language's coverage (of all areas together) is below this percent.",
)
@click.option("--per-area", is_flag=True, help="Apply --min to each area (ui, instruments, protocols, scripts).")
@click.option("--show-missing", is_flag=True, help="List the strings that fall back to English.")
@pass_ctx
def i18n_status(ctx: Context, minimum, per_area, show_missing):
    """Print translation coverage per language and area; missing strings fall back to English.

    Example: group-ipt i18n status --min 95
    """
    from .web.i18n import coverage, load_languages

    folder = _data_files(ctx, "translations")
    languages = load_languages(folder)
    report = coverage(folder)
    failing = []
    for code, lang in languages.items():
        rows = [c for c in report if c.language == code]
        total = sum(c.total for c in rows)
        done = sum(c.translated for c in rows)
        overall = 100.0 if total == 0 else 100.0 * done / total
        areas = "  ".join(f"{c.area} {c.percent:5.1f}% ({c.translated}/{c.total})" for c in rows)
        click.echo(f"{code:<4} {lang.status:<9} all {overall:5.1f}%  {areas}")
        if show_missing:
            for c in rows:
                for text in c.missing:
                    click.echo(f"     missing [{c.area}] {text[:100]}")
        if minimum is not None:
            if per_area:
                failing += [f"{code}/{c.area} {c.percent:.1f}%" for c in rows if c.total and c.percent < minimum]
            elif overall < minimum:
                failing.append(f"{code} {overall:.1f}%")
    if failing:
        raise click.ClickException(f"Below {minimum:g}%: {', '.join(failing)}")


@cli.group()
def cycles():
    """List group cycles and export their sessions as a calendar.

    Example: group-ipt cycles list
    """


@cycles.command("list")
@click.option("--site", "site_code", default=None, help="Only the cycles of this site (its code, e.g. KMP).")
@pass_ctx
def cycles_list(ctx: Context, site_code):
    """List the group cycles: code, site, protocol, stage, first date, venue, facilitators.

    Example: group-ipt cycles list --site KMP
    """
    from .core import cycles as cyclesmod
    from .core import users as usersmod

    db = ctx.require_db()
    sites = usersmod.list_sites(db)
    if site_code:
        sites = [s for s in sites if s["code"] == site_code.upper()]
        if not sites:
            raise click.ClickException(f"Unknown site {site_code!r}. 'group-ipt sites list' shows the sites.")
    found = cyclesmod.list_cycles(db, [s["id"] for s in sites])
    if not found:
        click.echo("No cycles.")
    for c in found:
        stage = cyclesmod.stage(c, cyclesmod.sessions(db, c["id"]))
        click.echo(
            f"{c['code']:<10} {c['site_code']:<6} {c['protocol_id']:<16} {str(stage):<24} {c['first_date']}"
            f"  {c['venue']}  ({c['facilitator_names'] or '-'})"
        )


@cli.group()
def referrals():
    """Safety referrals: the supervisor's urgent list, and closing one with its outcome.

    Example: group-ipt referrals concerns --site KMP
    """


def _sites_named(db, site_code):
    from .core import users as usersmod

    sites = usersmod.list_sites(db)
    if site_code:
        sites = [s for s in sites if s["code"] == site_code.upper()]
        if not sites:
            raise click.ClickException(f"Unknown site {site_code!r}. 'group-ipt sites list' shows the sites.")
    return [s["id"] for s in sites]


@referrals.command("concerns")
@click.option("--site", "site_code", default=None, help="Only this site (its code, e.g. KMP).")
@pass_ctx
def referrals_concerns(ctx: Context, site_code):
    """List urgent referrals not acknowledged since their day or with a follow-up overdue, and risk questions
    not asked. Exits with status 1 when there is any, so a daily job can send it on.

    Example: group-ipt referrals concerns --site KMP
    """
    from .base import clock
    from .core import referrals as referralsmod
    from .core import screening

    db = ctx.require_db()
    site_ids = _sites_named(db, site_code)
    urgent = referralsmod.concerns(db, site_ids, clock.today())
    unasked = screening.open_risk_checks(db, site_ids)
    for r in urgent:
        why = [
            *(["not acknowledged"] if r["unacknowledged"] else []),
            *([f"follow-up overdue since {r['next_due_on']}"] if r["overdue"] else []),
        ]
        click.echo(
            f"urgent referral  {r['participant_code']:<12} raised {r['created_at'][:10]}  {'; '.join(why)}  ({r['id']})"
        )
    for k in unasked:
        click.echo(f"risk not asked   {k['participant_code']:<12} screening of {k['administered_on']}  ({k['id']})")
    if not urgent and not unasked:
        click.echo("No urgent safety concerns.")
        return
    click.get_current_context().exit(1)


@referrals.command("close")
@click.argument("referral_id")
@click.option(
    "--outcome",
    required=True,
    type=click.Choice(["seen", "admitted", "declined", "unreachable", "moved", "died", "other"]),
    help="How the referral ended.",
)
@click.option("--by", "username", required=True, help="Username of the coordinator or supervisor closing it.")
@click.option("--note", default=None, help="What happened (needed with --outcome other).")
@pass_ctx
def referrals_close(ctx: Context, referral_id, outcome, username, note):
    """Close a referral with its outcome, under the same rules as the referral page.

    Example: group-ipt referrals close 3f2c... --outcome seen --by mary --note "Seen at Kawempe HC"
    """
    from .core import referrals as referralsmod
    from .core import users as usersmod

    app = ctx.app()
    db = ctx.require_db()
    user = usersmod.get_user_by_username(db, username)
    if user is None or not user["active"]:
        raise click.ClickException(f"No active user {username!r}.")
    referral = referralsmod.get(db, referral_id, usersmod.user_site_ids(db, user))
    if referral is None:
        raise click.ClickException(f"No referral {referral_id!r} at {username}'s sites.")
    with as_cli_error(referralsmod.ReferralError):
        referralsmod.set_status(
            db,
            referral,
            "closed",
            user,
            note=note,
            outcome=outcome,
            unreachable_tries=app.config["REFERRAL_UNREACHABLE_TRIES"],
        )
    click.echo(f"Referral of {referral['participant_code']} closed: {outcome}.")


@cycles.command("calendar")
@click.argument("cycle")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    required=True,
    help="File to write the .ics calendar to ('-' prints it).",
)
@pass_ctx
def cycles_calendar(ctx: Context, cycle, output):
    """Write a cycle's sessions as an iCalendar (.ics) file for a facilitator's phone.

    Example: group-ipt cycles calendar KMP-C001 -o KMP-C001.ics
    """
    from flask_babel import force_locale
    from flask_babel import gettext as translate

    from .core import cycles as cyclesmod

    db = ctx.require_db()
    found = cyclesmod.get_cycle(db, cycle)
    if found is None:
        raise click.ClickException(f"No cycle {cycle!r}. 'group-ipt cycles list' shows the cycles.")
    app = ctx.app()
    with app.app_context(), force_locale(app.config["DEFAULT_LANGUAGE"]), as_cli_error(cyclesmod.CycleError):
        protocol = cyclesmod.protocol_of(found, formsmod.loaded(app.extensions).protocols)
        text = cyclesmod.calendar(db, found, protocol, translate=translate)
    with click.open_file(output, "wb") as f:  # bytes: the CRLF line ends stay as RFC 5545 wants
        f.write(text.encode("utf-8"))
    if output != "-":
        click.echo(f"Wrote {output} ({text.count('BEGIN:VEVENT')} sessions).")


@cli.group()
def devices():
    """Register the laptops that sync with this central server, list them, revoke them.

    Example: group-ipt devices add kmp-laptop-1 --site KMP
    """


@devices.command("add")
@click.argument("name")
@click.option("--site", "site_code", required=True, help="Code of the site whose data the laptop syncs, e.g. KMP.")
@pass_ctx
def devices_add(ctx: Context, name, site_code):
    """Register a laptop and print its token once (only its hash is kept).

    Example: group-ipt devices add kmp-laptop-1 --site KMP
    """
    from .sync import devices as devicesmod

    db = ctx.require_db()
    with as_cli_error(devicesmod.DeviceError):
        device, token = devicesmod.add_device(db, name, site_code)
    click.echo(f"Added device {device['name']!r}. Its token (shown only now, keep it secret):")
    click.echo(token)
    click.echo(f"On the laptop: group-ipt sync setup --server http://THIS-SERVER:PORT --token {token}")


@devices.command("list")
@pass_ctx
def devices_list(ctx: Context):
    """List the registered laptops, their site, last contact and whether revoked.

    Example: group-ipt devices list
    """
    from .sync import devices as devicesmod

    db = ctx.require_db()
    for d in devicesmod.list_devices(db):
        state = f"revoked {d['revoked_at']}" if d["revoked_at"] else "active"
        key = {"ed25519": "own key", "legacy": "old key: sync once to move", "none": "no key yet"}[
            devicesmod.key_state(d)
        ]
        click.echo(
            f"{d['name']:<24} {d['site_code']:<8} last seen {d['last_seen_at'] or 'never':<26} "
            f"version {d['app_version'] or 'unknown':<10} {state} ({key})"
        )


@devices.command("revoke")
@click.argument("name")
@pass_ctx
def devices_revoke(ctx: Context, name):
    """Revoke a laptop's token: its next sync is refused (what it sent before is kept).

    Example: group-ipt devices revoke kmp-laptop-1
    """
    from .sync import devices as devicesmod

    db = ctx.require_db()
    with as_cli_error(devicesmod.DeviceError):
        devicesmod.revoke_device(db, name)
    click.echo(f"Revoked {name!r}.")


def _sync_folders(ctx: Context) -> dict[str, Path]:
    app = ctx.app()
    return {"forms": Path(app.config["FORMS_DIR"]), "translations": Path(app.config["TRANSLATIONS_DIR"])}


def _progress(stage: str, done: int, total: int) -> None:
    if total:
        click.echo(f"\r{stage}: {done}/{total} records", nl=False, err=True)
    else:
        click.echo(f"\r{stage}: {done} records", nl=False, err=True)


def _run_sync(ctx: Context, step):
    from .sync.client import SyncError
    from .sync.engine import SyncRejected

    db = ctx.require_db()
    try:
        return step(db)
    except SyncError as exc:  # the network or the server: the same sync later resumes where this one stopped
        raise click.ClickException(
            f"{exc} What was sent and acknowledged so far is kept; run the sync again "
            "when the network (or the central server) is back."
        ) from exc
    except SyncRejected as exc:
        raise click.ClickException(f"{exc}{_next_step(exc.status)}") from exc
    finally:
        click.echo("", err=True)


def _next_step(status: int) -> str:
    """What to do after the centre refused: running the same sync again helps only for a server fault."""
    if status >= 500 or status in (429, 503):
        return " Nothing was lost; run the sync again later."
    if status == 401:
        return (
            " Nothing was sent. Ask the central office for this laptop's token, then run "
            "'group-ipt sync setup --server URL --token TOKEN'."
        )
    if status == 413:
        return " Nothing was sent. Ask the central office to raise SYNC_MAX_BODY_MB, or export to a file."
    return " Nothing of it was stored; running the same sync again will not help until that is fixed."


def _echo_push(summary: dict) -> None:
    click.echo(
        f"Sent {summary['records']} record(s) in {summary['batches']} batch(es); "
        f"{summary['conflicts']} conflict(s), {summary['quarantined']} quarantined at the centre."
    )
    if summary["quarantined"]:
        click.echo(
            "The central office sees why each quarantined record was not stored on its Sync page, with "
            "what to do; most go in by themselves once the record they wait for arrives."
        )


def _echo_pull(summary: dict) -> None:
    click.echo(
        f"Received {summary['applied']} change(s); {summary['skipped']} left for the centre to decide; "
        f"{summary['quarantined']} quarantined here."
    )
    for name in summary["files"]:
        click.echo(f"updated file {name}")
    for problem in summary["problems"]:
        click.echo(f"problem: {problem}", err=True)


@cli.group(invoke_without_command=True)
@click.pass_context
def sync(click_ctx):
    """Sync this laptop with the central server: push, then pull (alone: both).

    Example: group-ipt sync
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from .sync import client

    ctx = click_ctx.find_object(Context)
    folders = _sync_folders(ctx)
    backups = ctx.data_dir / "sync-backups"
    result = _run_sync(
        ctx,
        lambda db: client.sync(db, client.transport_for(db), folders=folders, backup_dir=backups, progress=_progress),
    )
    _echo_push(result["push"])
    _echo_pull(result["pull"])


@sync.command("setup")
@click.option("--server", required=True, help="Address of the central server, e.g. http://10.0.0.5:5000")
@click.option("--token", required=True, help="The token printed by 'group-ipt devices add' on the central server.")
@pass_ctx
def sync_setup(ctx: Context, server, token):
    """Save the central server's address and this laptop's token, after checking them with the server.

    Example: group-ipt sync setup --server http://10.0.0.5:5000 --token gipt_...
    """
    from .sync import client

    info = _run_sync(ctx, lambda db: client.setup(db, server, token))
    click.echo(
        f"This laptop syncs as {info['device_name']!r} for site {info['site']['code']}. "
        "Run 'group-ipt sync' to sync now."
    )


@sync.command("push")
@pass_ctx
def sync_push(ctx: Context):
    """Send the waiting changes to the central server, in acknowledged batches.

    Example: group-ipt sync push
    """
    from .sync import client

    _echo_push(_run_sync(ctx, lambda db: client.push(db, client.transport_for(db), _progress)))


@sync.command("pull")
@pass_ctx
def sync_pull(ctx: Context):
    """Fetch this site's changes, users and updated form and translation files from the central server.

    Example: group-ipt sync pull
    """
    from .sync import client

    folders = _sync_folders(ctx)
    _echo_pull(
        _run_sync(
            ctx,
            lambda db: client.pull(
                db,
                client.transport_for(db),
                folders=folders,
                backup_dir=ctx.data_dir / "sync-backups",
                progress=_progress,
            ),
        )
    )


@sync.command("status")
@pass_ctx
def sync_status(ctx: Context):
    """Show what waits to be sent, the last successful sync, conflicts and quarantined records.

    Example: group-ipt sync status
    """
    from . import __version__
    from .sync import client
    from .sync import devices as devicesmod

    db = ctx.require_db()
    st = client.status(db)
    click.echo(f"this version:      group-ipt {__version__}")
    if devicesmod.list_devices(db):  # a central server: which laptops to update
        old = devicesmod.behind(db, __version__)
        click.echo(f"laptops behind:    {len(old)} not on group-ipt {devicesmod.newest_version(db, __version__)}")
        for d in old:
            click.echo(
                f"  {d['name']:<24} {d['site_code']:<8} {d['app_version'] or 'before 0.2.0':<12} "
                f"last seen {d['last_seen_at'] or 'never'}"
            )
    click.echo(f"server:            {st['server'] or 'not set up (group-ipt sync setup)'}")
    if st["device"]:
        click.echo(f"device:            {st['device']} (site {st['site']})")
    click.echo(
        f"waiting to send:   {st['pending_records']} record(s), {st['unacked_batches']} batch(es) not yet acknowledged"
    )
    click.echo(f"last push:         {st['last_push_ok'] or 'never'}")
    click.echo(f"last pull:         {st['last_pull_ok'] or 'never'}")
    if st["last_error"]:
        click.echo(f"last error:        {st['last_error']['at']} {st['last_error']['message']}")
    click.echo(f"names to centre:   {'yes' if st['send_names'] else 'no (programme codes only)'}")
    if st["open_conflicts_at_centre"] is not None:
        click.echo(f"conflicts:         {st['open_conflicts_at_centre']} open at the centre for this site")
    if st["open_conflicts_here"]:
        click.echo(f"conflicts here:    {st['open_conflicts_here']} open (see /sync/ in the app)")
    click.echo(f"quarantined:       {len(st['quarantined'])} record(s)")
    for q in st["quarantined"]:
        click.echo(f"  {q['direction']:<4} {q['table_name'] or '?'} {q['record_id'] or '?'}: {q['error']}")
    if st["dangling_references"]:
        click.echo(f"dangling refs:     {st['dangling_references']} record(s) refer to one not (yet) here")


@sync.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_ctx
def sync_export(ctx: Context, file):
    """Write every waiting change to one signed file, for a USB stick to carry to the centre.

    Example: group-ipt sync export /media/usb/kmp-laptop-1.gipt
    """
    from .sync import client

    folders = _sync_folders(ctx)
    summary = _run_sync(ctx, lambda db: client.export_file(db, file, folders=folders))
    click.echo(
        f"Wrote {summary['records']} record(s) in {summary['batches']} batch(es) to {file}. "
        "Import it on the central server, then import the reply file here."
    )


@sync.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--reply",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Central server: where to write the reply file (default: FILE with .reply added).",
)
@pass_ctx
def sync_import(ctx: Context, file, reply):
    """Central server: apply a laptop's file and write the reply. Laptop: apply the centre's reply file.

    Example: group-ipt sync import /media/usb/kmp-laptop-1.gipt
    """
    from .sync import client, files, server

    header = _run_sync(ctx, lambda db: files.read_header(file))
    if header["kind"] == "push":
        app = ctx.app()
        config = server.CentralConfig.from_app_config(app.config, formsmod.loaded(app.extensions).instruments)
        out = reply or file.with_name(file.name + ".reply")
        s = _run_sync(ctx, lambda db: server.import_file(db, file, out, config))
        click.echo(
            f"Imported {s['batches']} batch(es) from {s['device']!r}: {s['applied']} applied, "
            f"{s['conflicts']} conflict(s), {s['quarantined']} quarantined."
        )
        click.echo(f"Wrote the reply ({s['changes_back']} change(s) for the laptop) to {s['reply']}.")
    else:
        folders = _sync_folders(ctx)
        s = _run_sync(
            ctx, lambda db: client.import_reply(db, file, folders=folders, backup_dir=ctx.data_dir / "sync-backups")
        )
        click.echo(f"{s['acknowledged']} batch(es) acknowledged by the centre.")
        _echo_pull(s)


@cli.group()
def pdf():
    """Print rosters, paper screening forms, script booklets and cycle reports as PDF files.

    Example: group-ipt pdf roster KMP-C001 --lang sw -o roster.pdf
    """


def _pdf_language(app, code: str | None, fallback: str | None = None):
    """Return the PdfLanguage for ``code`` (else ``fallback``, else the default language); needs no context after."""

    code = code or fallback or app.config["DEFAULT_LANGUAGE"]
    if code not in app.extensions["group_ipt_languages"]:
        known = ", ".join(sorted(app.extensions["group_ipt_languages"]))
        raise click.ClickException(f"Unknown language {code!r} (known: {known}).")
    with app.app_context():
        return pdf_language(code)


def _write_pdf(content: bytes, output: str) -> None:
    with click.open_file(output, "wb") as f:
        f.write(content)
    if output != "-":
        click.echo(f"Wrote {output} ({len(content) // 1024 + 1} KB).")


def _cycle_language(db, cycle: str) -> str | None:
    """Return the default language of the cycle's site (a roster is printed in the site's language by default)."""
    from .core import cycles as cyclesmod

    found = cyclesmod.get_cycle(db, cycle)
    if found is None:
        raise click.ClickException(f"No cycle {cycle!r}. 'group-ipt cycles list' shows the cycles.")
    site = db.execute("select default_language from sites where id = ?", (found["site_id"],)).fetchone()
    return site[0] if site else None


_LANG_HELP = "Language code of the document, e.g. sw (default: the site's language, else DEFAULT_LANGUAGE)."
_OUTPUT_HELP = "PDF file to write ('-' writes to standard output)."


@pdf.command("roster")
@click.argument("cycle")
@click.option("--lang", default=None, help=_LANG_HELP)
@click.option("--privacy", is_flag=True, help="Print programme codes instead of names.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), required=True, help=_OUTPUT_HELP)
@pass_ctx
def pdf_roster(ctx: Context, cycle, lang, privacy, output):
    """Print a cycle's roster and sign-in sheet (landscape; one column per session).

    Example: group-ipt pdf roster KMP-C001 --lang sw -o roster.pdf
    """
    from .pdf import data as pdfdata
    from .pdf import roster

    db = ctx.require_db()
    app = ctx.app()
    language = _pdf_language(app, lang, _cycle_language(db, cycle))
    try:
        data = pdfdata.roster_data(db, cycle, site_ids=None, programme=app.config["PROGRAMME_NAME"], privacy=privacy)
    except pdfdata.NotFound as exc:
        raise click.ClickException(f"{exc}. 'group-ipt cycles list' shows the cycles.") from exc
    _write_pdf(roster.render(data, language), output)


@pdf.command("cycle-report")
@click.argument("cycle")
@click.option("--lang", default=None, help=_LANG_HELP)
@click.option("--privacy", is_flag=True, help="Print programme codes instead of names.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), required=True, help=_OUTPUT_HELP)
@pass_ctx
def pdf_cycle_report(ctx: Context, cycle, lang, privacy, output):
    """Print a cycle's report: attendance, completion and dropout, symptom change, open referrals.

    Example: group-ipt pdf cycle-report KMP-C001 -o report.pdf
    """
    from .pdf import cycle_report
    from .pdf import data as pdfdata

    db = ctx.require_db()
    app = ctx.app()
    language = _pdf_language(app, lang, _cycle_language(db, cycle))
    forms = formsmod.loaded(app.extensions)
    try:
        data = pdfdata.cycle_report_data(
            db,
            cycle,
            site_ids=None,
            programme=app.config["PROGRAMME_NAME"],
            protocols=forms.protocols,
            instruments=forms.instruments,
            lang=language,
            privacy=privacy,
            grace_days=app.config["MEASURE_GRACE_DAYS"],
        )
    except pdfdata.NotFound as exc:
        raise click.ClickException(f"{exc}. 'group-ipt cycles list' shows the cycles.") from exc
    _write_pdf(cycle_report.render(data, language), output)


@pdf.command("screening-form")
@click.argument("instrument")
@click.option("--lang", default=None, help="Language code of the form, e.g. sw (default: DEFAULT_LANGUAGE).")
@click.option("--site", "site_code", default=None, help="Code of the site to print on the form, e.g. KMP.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), required=True, help=_OUTPUT_HELP)
@pass_ctx
def pdf_screening_form(ctx: Context, instrument, lang, site_code, output):
    """Print a paper screening form for an instrument, with the scoring guide on the back page.

    Example: group-ipt pdf screening-form phq9 --lang sw -o phq9-sw.pdf
    """
    from .core import users as usersmod
    from .pdf import data as pdfdata
    from .pdf import screening_form

    app = ctx.app()
    site_name, site_language = "", None
    if site_code:
        site = usersmod.get_site(ctx.require_db(), site_code)
        if site is None:
            raise click.ClickException(f"Unknown site {site_code!r}. 'group-ipt sites list' shows the sites.")
        site_name, site_language = site["name"], site["default_language"]
    language = _pdf_language(app, lang, site_language)
    instruments = formsmod.loaded(app.extensions).instruments
    try:
        data = pdfdata.screening_form_data(
            instruments, instrument, programme=app.config["PROGRAMME_NAME"], site=site_name
        )
    except pdfdata.NotFound as exc:
        raise click.ClickException(f"{exc} (known: {', '.join(sorted(instruments))}).") from exc
    _write_pdf(screening_form.render(data, language), output)


@pdf.command("script")
@click.argument("protocol")
@click.option(
    "--session",
    "number",
    type=int,
    default=None,
    help="Print only this session's script (0: the pre-group meeting); default: the whole protocol.",
)
@click.option("--lang", default=None, help="Language code of the scripts, e.g. sw (default: DEFAULT_LANGUAGE).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True), required=True, help=_OUTPUT_HELP)
@pass_ctx
def pdf_script(ctx: Context, protocol, number, lang, output):
    """Print the facilitator scripts of a protocol (with a table of contents), or of one session.

    Example: group-ipt pdf script who-8 --lang sw -o who-8-scripts.pdf
    """
    from .core import referrals
    from .pdf import data as pdfdata
    from .pdf import script_booklet

    app = ctx.app()
    language = _pdf_language(app, lang)
    forms = formsmod.loaded(app.extensions)
    try:
        data = pdfdata.booklet_data(
            forms,
            protocol,
            programme=app.config["PROGRAMME_NAME"],
            lang=language,
            session=number,
            safety_contacts=referrals.safety_contacts(app.config["SAFETY_CONTACTS"]),
        )
    except pdfdata.NotFound as exc:
        raise click.ClickException(f"{exc} (protocols: {', '.join(sorted(forms.protocols))}).") from exc
    _write_pdf(script_booklet.render(data, language), output)


@cli.group()
def reports():
    """Keep the indicators' stored figures up to date.

    Example: group-ipt reports refresh
    """


@reports.command("refresh")
@click.option("--all", "everything", is_flag=True, help="Recompute every cycle, not only the changed ones.")
@pass_ctx
def reports_refresh(ctx: Context, everything: bool):
    """Recompute the stored figures of the cycles changed since the last report, and say how long it took.

    Example: group-ipt reports refresh --all
    """
    from .reporting.report_store import mark_all_stale

    db = ctx.require_db()
    app = ctx.app()
    if everything:
        mark_all_stale(db)
    done, seconds = _refresh_figures(db, app)
    click.echo(f"Recomputed the figures of {done} cycle(s) in {seconds:.1f} s.")


@cli.group()
def export():
    """Export the programme's tables and indicators as CSV files, or the indicators for DHIS2.

    Example: group-ipt export csv ./exports --period 2026Q4
    """


def _export_report(ctx: Context, db, period_text: str | None, site_code: str | None):
    """Return the report, the period text and the site codes for the export commands (ClickException on bad input)."""
    from .base import clock
    from .core import users as usersmod
    from .reporting import indicators
    from .reporting.periods import PeriodError, parse_period

    with as_cli_error(PeriodError):
        period = parse_period(period_text) if period_text else None
    sites = usersmod.list_sites(db)
    if site_code:
        sites = [s for s in sites if s["code"] == site_code.upper()]
        if not sites:
            raise click.ClickException(f"Unknown site {site_code!r}. 'group-ipt sites list' shows the sites.")
    app = ctx.app()
    filters = indicators.Filters(site_ids=tuple(s["id"] for s in sites), period=period)
    report = indicators.Report(
        db,
        filters,
        formsmod.loaded(app.extensions).protocols,
        today=clock.today(),
        grace_days=app.config["MEASURE_GRACE_DAYS"],
    )
    return report, str(period) if period else "all", ",".join(s["code"] for s in sites)


@export.command("csv")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--site", "site_code", default=None, help="Only this site's records and figures (its code, e.g. KMP).")
@click.option(
    "--period",
    default=None,
    help="Period of the indicator files: 2026, 2026Q4, 202611, 2026W47 or 2026-01-01..2026-03-31 "
    "(default: all time; the table files are always whole).",
)
@pass_ctx
def export_csv(ctx: Context, directory, site_code, period):
    """Write each table, the indicators and the records behind each indicator as CSV files (UTF-8, for Excel).

    Names follow the EXPORT_NAMES setting (off: codes instead of names). All files or none are written.

    Example: group-ipt export csv ./exports --site KMP --period 2026Q4
    """
    from .reporting import exports

    db = ctx.require_db()
    report, period_text, codes = _export_report(ctx, db, period, site_code)
    with as_cli_error(exports.ExportError):
        written = exports.export_folder(
            db,
            directory,
            report,
            list(report.filters.site_ids),
            names=bool(ctx.app().config["EXPORT_NAMES"]),
            period=period_text,
            sites=codes,
        )
    click.echo(f"Wrote {len(written)} CSV files to {directory} (period {period_text}, sites {codes or 'none'}).")


@export.command("dhis2")
@click.option(
    "--period", required=True, help="DHIS2 period: 2026 (year), 2026Q4 (quarter), 202611 (month) or 2026W47 (ISO week)."
)
@click.option(
    "--mapping",
    "mapping_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML or JSON file mapping indicators to data elements and sites to org units "
    "(see docs/dhis2-mapping.example.yaml).",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="JSON file to write ('-' prints it).",
)
@click.option(
    "--site",
    "site_codes",
    multiple=True,
    help="Only this site (its code; repeat for several). Default: every site, each needing an org unit.",
)
@click.option("--complete", is_flag=True, help="Add today's date as completeDate (marks the data set complete).")
@pass_ctx
def export_dhis2(ctx: Context, period, mapping_file, output, site_codes, complete):
    """Write the indicators of a period as a DHIS2 dataValueSets JSON file for the ministry's DHIS2.

    Example: group-ipt export dhis2 --period 2026Q4 --mapping dhis2-mapping.yaml -o kmp-2026Q4.json
    """
    import json

    from .base import clock
    from .reporting import dhis2, exports
    from .reporting.periods import PeriodError, parse_period

    db = ctx.require_db()
    with as_cli_error(PeriodError, dhis2.MappingError, dhis2.DHIS2Error):
        parsed = parse_period(period)
        dhis2.check_period(parsed)
        mapping = dhis2.load_mapping(mapping_file)
    app = ctx.app()
    with as_cli_error(dhis2.DHIS2Error):
        document = dhis2.export(
            db,
            mapping,
            parsed,
            formsmod.loaded(app.extensions).protocols,
            today=clock.today(),
            grace_days=app.config["MEASURE_GRACE_DAYS"],
            site_codes=list(site_codes) or None,
            complete_date=clock.today() if complete else None,
        )
    problems = dhis2.validate(document)
    if problems:  # a bug, not the user's mistake: say so rather than write a file DHIS2 refuses
        raise click.ClickException("The data value set is not valid: " + "; ".join(problems))
    content = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if output == "-":
        click.echo(content.decode("utf-8"), nl=False)
        return
    try:
        with exports.atomic_file(Path(output)) as f:
            f.write(content)
    except (exports.ExportError, OSError) as exc:
        raise click.ClickException(f"Cannot write {output}: {exc}") from exc
    click.echo(f"Wrote {output} ({len(document['dataValues'])} data values for {period}).")


@cli.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write a dated backup into, e.g. a USB stick (instead of FILE).",
)
@pass_ctx
def backup_cmd(ctx: Context, file, folder):
    """Write a consistent copy of the database to FILE, or a dated one into a folder; safe while the app runs.

    Example: group-ipt backup --to /media/usb   (or: group-ipt backup /media/usb/group-ipt-2026-11-25.db)
    """
    from .store import backup as backupmod

    if (file is None) == (folder is None):
        raise click.UsageError("Give either FILE or --to FOLDER.")
    ctx.require_db().close()
    with as_cli_error(backupmod.BackupError):
        if folder is not None:
            info = backupmod.backup_to_folder(ctx.db_path, ctx.data_dir, folder)
        else:
            info = backupmod.backup(ctx.db_path, file)
            backupmod.note_copy(ctx.data_dir, file)
    click.echo(f"Wrote {info['path']} ({info['bytes']} bytes); its integrity check passed.")


@cli.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore even if the current database has changes not yet synced.")
@pass_ctx
def restore_cmd(ctx: Context, file, force):
    """Replace the database with the backup FILE (checked first); the replaced database is kept.

    Example: group-ipt restore /media/usb/group-ipt-2026-11-25.db
    """
    from .store import backup as backupmod

    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    with as_cli_error(backupmod.BackupError):
        info = backupmod.restore(file, ctx.db_path, force=force)
    click.echo(f"Restored {info['restored']} from {file}.")
    if info["kept"]:
        click.echo(f"The replaced database is kept at {info['kept']}.")


def main():
    cli(prog_name="group-ipt")
