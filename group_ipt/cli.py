"""The ``group-ipt`` command: set up, serve, and look after a programme's data.

Every command only parses its options and calls one function of the package.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import click

from . import ConfigError, create_app
from . import db as dbmod
from .schema import current_version, migrate, pending
from .settings import DEV_SECRET_KEY, default_data_dir


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
            from .forms import FormsError

            try:
                self._app = create_app({"DATA_DIR": str(self.data_dir), **overrides})
            except (ConfigError, FormsError) as exc:
                raise click.ClickException(str(exc)) from exc
        return self._app

    def require_db(self):
        if not self.db_path.exists():
            raise click.ClickException(
                f"No database in {self.data_dir}. Run 'group-ipt init --admin NAME' first "
                "(or 'group-ipt serve --demo' to try the app with demo data)."
            )
        return dbmod.connect(self.db_path)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the database, secret key and config.toml (default: $GROUP_IPT_DATA or the per-user data folder).",
)
@click.version_option(package_name="group-ipt")
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
    from . import SECRET_KEY_FILE

    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))


def initialise(data_dir: Path) -> dbmod.sqlite_utils.Database:
    """Create the data folder, the secret key and an up-to-date empty database."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_secret_key(data_dir)
    db = dbmod.connect(dbmod.database_path(data_dir))
    migrate(db)
    return db


@cli.command()
@click.option("--admin", "admin_username", required=True, help="Username of the first administrator.")
@click.option("--name", "display_name", default=None, help="Full name shown in the app (default: the username).")
@pass_ctx
def init(ctx: Context, admin_username, display_name):
    """Create the database, a secret key and the first admin; asks the password twice.

    Example: group-ipt init --admin amina   (in a script: printf 'pw\\npw\\n' | group-ipt init --admin amina)
    """
    from . import users

    if ctx.db_path.exists():
        db = dbmod.connect(ctx.db_path)
        if "users" in db.table_names() and db["users"].count:
            raise click.ClickException(
                f"{ctx.db_path} already exists and has users; nothing was changed. "
                "Use 'group-ipt users add' to add people."
            )
    password = read_new_password(f"Password for {admin_username}")
    try:
        users.validate_password(password)
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from exc
    db = initialise(ctx.data_dir)
    try:
        users.create_user(db, admin_username, password, "admin", display_name=display_name)
    except users.UserError as exc:
        raise click.ClickException(str(exc)) from exc
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
    for m in applied:
        click.echo(f"applied {m.version:04d} {m.name}")
    if not todo:
        click.echo(f"The database is up to date (version {current_version(db)}).")


@cli.group()
def users():
    """Add, list, disable and enable users.

    Example: group-ipt users list
    """


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["facilitator", "coordinator", "supervisor", "admin"]), required=True,
              help="What the user may do.")
@click.option("--site", "sites", multiple=True, help="Code of a site the user works at (repeat for several).")
@click.option("--name", "display_name", default=None, help="Full name shown in the app.")
@click.option("--language", default=None, help="Language code of the user's interface, e.g. sw.")
@pass_ctx
def users_add(ctx: Context, username, role, sites, display_name, language):
    """Add a user; asks the password twice (two lines on standard input in a script).

    Example: group-ipt users add joseph --role facilitator --site KMP --name "Joseph Okello"
    """
    from . import users as usersmod

    db = ctx.require_db()
    site_ids = []
    for code in sites:
        site = usersmod.get_site(db, code)
        if site is None:
            raise click.ClickException(f"Unknown site {code!r}. 'group-ipt sites list' shows the sites.")
        site_ids.append(site["id"])
    password = read_new_password(f"Password for {username}")
    try:
        usersmod.create_user(db, username, password, role, display_name=display_name, site_ids=site_ids,
                             language=language)
    except usersmod.UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added {role} {username!r}.")


@users.command("list")
@pass_ctx
def users_list(ctx: Context):
    """List every user with role, sites and whether active.

    Example: group-ipt users list
    """
    from . import users as usersmod

    db = ctx.require_db()
    for u in usersmod.list_users(db):
        state = "active" if u["active"] else "disabled"
        click.echo(f"{u['username']:<20} {u['role']:<12} {state:<9} {u['site_codes'] or '-':<12} {u['display_name']}")


def _set_active(ctx: Context, username: str, active: bool) -> None:
    from . import users as usersmod

    db = ctx.require_db()
    try:
        usersmod.set_active(db, username, active)
    except usersmod.UserError as exc:
        raise click.ClickException(str(exc)) from exc
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
    from . import users as usersmod

    db = ctx.require_db()
    if usersmod.get_user_by_username(db, username) is None:
        raise click.ClickException(f"No user called {username!r}.")
    password = read_new_password(f"New password for {username}")
    try:
        usersmod.set_password(db, username, password)
    except usersmod.UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Changed the password of {username!r}.")


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
    from . import users as usersmod

    db = ctx.require_db()
    app = ctx.app()
    if language not in app.extensions["group_ipt_languages"]:
        raise click.ClickException(f"Unknown language {language!r}.")
    try:
        site = usersmod.create_site(db, code, name, language)
    except usersmod.UserError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added site {site['code']} {site['name']}.")


@sites.command("list")
@pass_ctx
def sites_list(ctx: Context):
    """List the sites.

    Example: group-ipt sites list
    """
    from . import users as usersmod

    db = ctx.require_db()
    for s in usersmod.list_sites(db):
        click.echo(f"{s['code']:<8} {s['default_language']:<4} {s['name']}")


@cli.command()
@pass_ctx
def demo(ctx: Context):
    """Fill the database with a demo programme (safe to run twice) and print the demo logins.

    Example: group-ipt demo
    """
    from . import demo as demomod

    db = initialise(ctx.data_dir) if not ctx.db_path.exists() else ctx.require_db()
    migrate(db)
    app = ctx.app()
    with app.app_context():
        summary = demomod.load_demo(db, app)
    click.echo(demomod.describe(summary))


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 for the whole network).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0 picks a free one).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64), help="Worker threads.")
@click.option("--dev", is_flag=True, help="Allow the development secret key (never for real data).")
@click.option("--demo", "with_demo", is_flag=True, help="Create the database and the demo programme first if needed.")
@pass_ctx
def serve(ctx: Context, host, port, threads, dev, with_demo):
    """Serve the app with the waitress WSGI server and print its address.

    Example: group-ipt serve --demo
    """
    import waitress

    if with_demo:
        from . import demo as demomod

        db = initialise(ctx.data_dir)
        app = ctx.app()
        with app.app_context():
            summary = demomod.load_demo(db, app)
        db.close()
        click.echo(demomod.describe(summary))
    else:
        ctx.require_db().close()
    app = ctx.app()
    if app.config["SECRET_KEY"] == DEV_SECRET_KEY and not dev:
        raise click.ClickException(
            f"There is no secret key in {ctx.data_dir}: run 'group-ipt init' there first, "
            "or pass --dev to use an insecure development key."
        )
    server = waitress.create_server(app, host=host, port=port, threads=threads, clear_untrusted_proxy_headers=True)
    click.echo(f"group-ipt is running at http://{host}:{server.effective_port}/  (press Ctrl+C to stop)", err=False)
    sys.stdout.flush()
    try:
        server.run()
    except KeyboardInterrupt:
        click.echo("Stopped.")


@cli.group()
def forms():
    """Check the instrument and protocol files in forms/.

    Example: group-ipt forms check
    """


@forms.command("check")
@click.option("--forms-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to check (default: the app's FORMS_DIR).")
def forms_check(forms_dir):
    """Validate every form file and name the file, item and field of each error.

    Example: group-ipt forms check
    """
    from . import forms as formsmod
    from .settings import defaults

    folder = forms_dir or Path(defaults()["FORMS_DIR"])
    errors = formsmod.check_all(folder)
    for e in errors:
        click.echo(str(e), err=True)
    if errors:
        raise click.ClickException(f"{len(errors)} error(s) in the form files under {folder}.")
    loaded = formsmod.load_all(folder)
    click.echo(f"All form files are valid: {len(loaded.instruments)} instruments, {len(loaded.protocols)} protocols.")


@cli.group()
def i18n():
    """Translation catalogs.

    Example: group-ipt i18n compile
    """


@i18n.command("compile")
@click.option("--force", is_flag=True, help="Recompile even when the .mo files look up to date.")
def i18n_compile(force):
    """Compile the .po catalogs in translations/ to .mo files.

    Example: group-ipt i18n compile
    """
    from .i18n import compile_catalogs
    from .settings import defaults

    written = compile_catalogs(defaults()["TRANSLATIONS_DIR"], force=force)
    click.echo(f"Compiled {len(written)} catalog(s).")


@i18n.command("status")
@click.option("--min", "minimum", type=click.FloatRange(0, 100), default=None,
              help="Exit non-zero when a language's coverage (of all areas together) is below this percent.")
@click.option("--per-area", is_flag=True, help="Apply --min to each area (ui, instruments, protocols, scripts).")
@click.option("--show-missing", is_flag=True, help="List the strings that fall back to English.")
def i18n_status(minimum, per_area, show_missing):
    """Print translation coverage per language and area; missing strings fall back to English.

    Example: group-ipt i18n status --min 95
    """
    from .i18n import coverage, load_languages
    from .settings import defaults

    folder = defaults()["TRANSLATIONS_DIR"]
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


def main():
    cli(prog_name="group-ipt")
