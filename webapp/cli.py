"""The ``mailroom`` command: a Flask CLI group with Mailroom's own commands.

``mailroom up`` is what the README's run command starts: migrations, the first
administrator, the embedded Redis (unless ``REDIS_URL`` is set), one RQ worker,
the RQ cron scheduler, ``mailroom idle`` (push) and the web server; Ctrl-C stops all of it.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade
from rq.cron import CronScheduler
from waitress import create_server

from connectors.plugins import describe_plugins

from . import create_app
from .api_tokens import as_dict, issue_token, revoke, tokens_of
from .errors import DomainError, NotFound
from .extensions import db
from .jobs import idle, schedule
from .jobs.abandoned import Pulse, die_with_parent
from .jobs.worker import ForkingWorker, WarmWorker, warm_up
from .models import Account
from .queue import get_queues, get_redis, start_embedded, stop_embedded
from .secretbox import box
from .service_catalog import sync_builtin_services
from .throttle import unlock
from .users import (
    create_user,
    disable_user,
    enable_user,
    ensure_admin,
    list_users,
    reset_password,
    set_admin,
    user_named,
)


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
@click.version_option(package_name="mailroom")
def cli():
    """Mailroom: mail services, mailboxes, connection tests and sync."""


def prepare_database() -> str | None:
    """Apply migrations, create the first administrator; return a generated admin password."""

    upgrade()
    generated = ensure_admin(current_app.config.get("ADMIN_PASSWORD"))
    sync_builtin_services(force=True)
    return generated


@cli.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int, help="Web server threads.")
@with_appcontext
def up(host: str, port: int, threads: int):
    """Run Mailroom on one machine: web server, one worker, the cron scheduler and mailroom idle."""

    # `kill -USR1 <pid>` prints every thread's stack: how to see where a stuck start or stop hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    app = current_app._get_current_object()
    _announce_admin(prepare_database())
    # The web server runs in a thread; the main thread only waits for a signal and watches the
    # children.  A signal is then always handled here, at a known point, instead of surfacing as
    # a KeyboardInterrupt somewhere inside the web server's loop.
    stop = threading.Event()
    # Bound before the embedded Redis starts: a port in use is then a plain sentence, with nothing
    # left running (it was a traceback that left the embedded Redis behind).
    server, web = _web_server(app, host, port, threads, stop)

    def on_signal(*_):
        stop.set()

    # Set before the embedded Redis starts: a Ctrl-C while it and the children start is an orderly
    # stop too (it was a KeyboardInterrupt that left the embedded Redis running).
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env, embedded = _child_environment(app)
    children: dict[str, subprocess.Popen] = {}
    try:
        if not stop.is_set():
            children.update({name: _spawn(name, env) for name in ("worker", "cron", "idle")})
            web.start()
            click.echo(f"Mailroom on http://{host}:{port}/  (Ctrl-C stops web, worker, cron and idle)")
            _supervise(stop, web, children, env)
    finally:
        click.echo("Stopping the web server, the worker, the cron scheduler and mailroom idle…")
        stop.set()
        _stop_web(server, web)
        _stop_children(children)
        if embedded:
            stop_embedded(app.instance_path)
        click.echo("Mailroom stopped.")


def _announce_admin(generated: str | None) -> None:
    if generated:
        click.secho(
            f"Created the administrator 'admin' with the password: {generated}", fg="yellow", bold=True
        )
        click.echo(
            "It is shown only this once. Sign in and change it under My profile › Password "
            "(/profile/password), or run `mailroom users passwd admin`; MAILROOM_ADMIN_PASSWORD "
            "set before the first start chooses it instead."
        )


def _child_environment(app) -> tuple[dict[str, str], bool]:
    """The worker's and cron's environment; starts the embedded Redis unless REDIS_URL is set."""
    env = dict(os.environ, MAILROOM_INSTANCE=app.instance_path)
    embedded = not app.config.get("REDIS_URL")
    if embedded:
        env["REDIS_URL"] = start_embedded(app.instance_path)
        app.config["REDIS_URL"] = env["REDIS_URL"]
        click.echo(f"Embedded Redis on {env['REDIS_URL']}")
    return env, embedded


def _spawn(name: str, env: dict[str, str]) -> subprocess.Popen:
    # A session of their own: Ctrl-C reaches only this process, which then stops them in order.
    return subprocess.Popen([sys.executable, "-m", "webapp.cli", name], env=env, start_new_session=True)


def _web_server(app, host: str, port: int, threads: int, stop: threading.Event):
    """The waitress server and the (not yet started) thread that runs it."""
    try:
        server = create_server(app, host=host, port=port, threads=threads, ident="mailroom")
    except OSError as exc:
        raise click.ClickException(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}. "
            "Another program may use that port: choose another with --port (e.g. mailroom up --port 8080)."
        ) from None

    def run_web() -> None:
        try:
            server.run()
        except Exception:
            if not stop.is_set():
                raise  # a real failure; during shutdown a closing socket may still be polled

    return server, threading.Thread(target=run_web, name="web", daemon=True)


def _supervise(stop: threading.Event, web: threading.Thread, children: dict, env: dict[str, str]) -> None:
    """Until a signal: stop if the web server died, restart a worker or cron that exited."""
    while not stop.wait(1):
        if not web.is_alive():
            click.secho("The web server stopped; stopping Mailroom.", fg="red", err=True)
            break
        for name, proc in list(children.items()):
            if proc.poll() is not None:
                click.secho(f"The {name} exited ({proc.returncode}); restarting it.", fg="red", err=True)
                children[name] = _spawn(name, env)


def _stop_web(server, web: threading.Thread) -> None:
    if web.is_alive():
        # Closed from inside the web server's own loop (waitress runs trigger thunks there),
        # so no socket is closed under a poll() running in another thread.
        server.trigger.pull_trigger(server.close)
        web.join(timeout=10)


def _stop_children(children: dict) -> None:
    """SIGTERM (a warm shutdown) to each, then 15 s in all before SIGKILL."""
    for proc in children.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for proc in children.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--fork", is_flag=True, help="Fork a work horse per job (RQ's Worker) instead of running warm.")
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    default=None,
    envvar="MAILROOM_WORKER_MAX_JOBS",
    help="Exit after this many jobs (to be restarted fresh: bounds memory growth).",
)
@with_appcontext
def worker(burst: bool, fork: bool, max_jobs: int | None):
    """Run an RQ worker on Mailroom's lanes (interactive first), warm unless --fork (webapp.jobs.worker)."""

    engine = db.engine
    parent = os.getpid()
    # A forked child (a work horse with --fork, RQ's scheduler process) must not reuse the parent's
    # database connections, and dies with the worker, so a killed worker's job is over (docs/queue.md).
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    os.register_at_fork(after_in_child=lambda: die_with_parent(parent))
    # Both lanes, interactive first: RQ takes the first non-empty queue in this order.
    if fork:
        w = ForkingWorker(get_queues(), connection=get_redis())
    else:
        warm_up()
        w = WarmWorker(get_queues(), connection=get_redis(), app=current_app._get_current_object())
    w.listen_for_early_stop()  # a stop asked before RQ's own handlers are in is kept (jobs/worker.py)
    pulse = Pulse(get_redis(), w.name).start()
    try:
        ok = w.work(burst=burst, with_scheduler=True, max_jobs=max_jobs)
    finally:
        pulse.stop()
    sys.exit(0 if ok or burst else 1)


@cli.command("idle")
@click.option("--lease", default=idle.LEASE, show_default=True, type=click.FloatRange(min=1),
              envvar="MAILROOM_IDLE_LEASE", help="Seconds a mailbox's lease lives without renewal.")
@click.option("--max-mailboxes", default=idle.MAX_MAILBOXES, show_default=True, type=click.IntRange(min=1),
              envvar="MAILROOM_IDLE_MAX_MAILBOXES", help="Mailboxes this process holds at most.")
@click.option("--reissue", default=idle.REISSUE_AFTER, show_default=True, type=click.FloatRange(min=0.1),
              envvar="MAILROOM_IDLE_REISSUE", help="Seconds before IDLE is re-issued (RFC 2177: under 29 min).")
@with_appcontext
def idle_command(lease: float, max_mailboxes: int, reissue: float):
    """Hold IMAP IDLE on push-enabled INBOXes and enqueue a sync on each change (webapp.jobs.idle)."""

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = idle.IdleOptions(lease=lease, max_mailboxes=max_mailboxes, reissue_after=reissue)
    idle.serve(current_app._get_current_object(), options)


@cli.command("cron")
@with_appcontext
def cron():
    """Run RQ's cron scheduler with Mailroom's periodic jobs (webapp.jobs.schedule)."""

    scheduler = CronScheduler(connection=get_redis())
    schedule.register(scheduler, current_app.config["QUEUE_NAME"]).start()


@cli.group("users")
def users():
    """Console users."""


@users.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@with_appcontext
def users_create(name: str, admin: bool):
    """Create a console user; the password is asked for twice, or read from stdin when piped
    (two lines: the password, then the same again)."""

    password, confirm = _read_password()
    try:
        create_user(name, password, admin=admin, confirm=confirm)
    except DomainError as exc:
        raise _failure(exc) from None
    click.echo(f"Created {'administrator' if admin else 'user'} {name}.")


def _failure(exc: DomainError) -> click.ClickException:
    """The domain's sentences, one per field, as the command's error."""
    return click.ClickException(" ".join(exc.fields.values()) or exc.message)


def _user_named(name: str):
    user = user_named(name)
    if user is None:
        raise click.ClickException(f"no user named {name!r}")
    return user


def _read_password() -> tuple[str, str]:
    """The password and its confirmation: asked for on a terminal, else two lines of stdin.

    Piped, the second line must repeat the first (the service refuses a mismatch), as a
    person typing it would be asked to: a script with a typo must not set a password nobody knows.
    """
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True)
        return password, click.prompt("Repeat the password", hide_input=True)
    password = sys.stdin.readline().rstrip("\r\n")
    confirm = sys.stdin.readline()
    if not confirm:
        raise click.ClickException(
            "Give the password twice on stdin, one line each (the password, then the same again)."
        )
    return password, confirm.rstrip("\r\n")


@users.command("list")
@with_appcontext
def users_list():
    """Every user: id, name, role, state, mailboxes, last sign-in."""

    for row in list_users():
        user = row.user
        last = f"{user.last_sign_in_at:%Y-%m-%d %H:%M} UTC" if user.last_sign_in_at else "never"
        click.echo(
            f"{user.id}\t{user.username}\t{user.role}\t{'disabled' if user.is_disabled else 'active'}\t"
            f"{row.mailboxes} mailbox(es)\tlast sign-in {last}"
        )


@users.command("disable")
@click.argument("name")
@with_appcontext
def users_disable(name: str):
    """Disable a user: sessions and API tokens stop at once, mailboxes stop syncing; nothing is deleted."""

    try:
        disable_user(_user_named(name))
    except DomainError as exc:
        raise _failure(exc) from None
    click.echo(f"Disabled {name}: signed out everywhere, API tokens refused, mailboxes not synced.")


@users.command("enable")
@click.argument("name")
@with_appcontext
def users_enable(name: str):
    """Enable a disabled user again (their tokens and mailboxes work again)."""

    enable_user(_user_named(name))
    click.echo(f"Enabled {name}.")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["admin", "user"]))
@with_appcontext
def users_role(name: str, role: str):
    """Make a user an administrator (admin) or not (user); the last active administrator stays one."""

    try:
        set_admin(_user_named(name), role == "admin")
    except DomainError as exc:
        raise _failure(exc) from None
    click.echo(f"{name} is now {'an administrator' if role == 'admin' else 'a user'}.")


@users.command("token")
@click.argument("name")
@click.option(
    "--name", "token_name", default="cli", show_default=True, help="A label to recognise the token."
)
@click.option(
    "--days", type=click.IntRange(1, 3650), default=None, help="Days until it expires [MAILROOM_TOKEN_DAYS]."
)
@with_appcontext
def users_token(name: str, token_name: str, days: int | None):
    """Print a new API token for a user (shown once; it expires after --days)."""

    click.echo(issue_token(_user_named(name), token_name[:100], days))


@users.command("passwd")
@click.argument("name")
@with_appcontext
def users_passwd(name: str):
    """Set a user's password (asked for twice, or two lines of stdin when piped); signs them out everywhere."""

    user = _user_named(name)
    password, confirm = _read_password()
    try:
        ended = reset_password(user, password, confirm)
    except DomainError as exc:
        raise _failure(exc) from None
    click.echo(f"Changed the password of {name}; {ended} signed-in session(s) ended.")


@users.command("unlock")
@click.argument("name")
@with_appcontext
def users_unlock(name: str):
    """Lift a sign-in lockout (after too many failed sign-ins) before it ends by itself."""

    try:
        was_locked = unlock(name)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Unlocked {name}." if was_locked else f"{name} was not locked.")


@cli.group("tokens")
def tokens_group():
    """API tokens: list and revoke."""


@tokens_group.command("list")
@click.argument("name")
@with_appcontext
def tokens_list(name: str):
    """A user's API tokens: id, name, created, last used, expires, state (never the secret)."""

    for row in map(as_dict, tokens_of(_user_named(name))):
        state = "active" if row["active"] else ("revoked" if row["revoked_at"] else "expired")
        click.echo(
            f"{row['id']}\t{row['name'] or '-'}\tcreated {row['created_at']}\t"
            f"last used {row['last_used_at'] or 'never'}\texpires {row['expires_at']}\t{state}"
        )


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int):
    """Revoke an API token by id (any user's); it stops working at once."""

    try:
        row = revoke(token_id)
    except NotFound as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Revoked token {row.id} ({row.name or 'unnamed'}) of {row.user.username}.")


@cli.group("secrets")
def secrets_group():
    """Encrypted secrets."""


@secrets_group.command("rotate")
@with_appcontext
def secrets_rotate():
    """Re-encrypt every stored secret with the first key of MAILROOM_SECRET_KEYS."""

    count = 0
    for account in Account.query.filter(Account.password_encrypted.isnot(None)):
        account.password_encrypted = box().rotate(account.password_encrypted)
        count += 1
    db.session.commit()
    click.echo(f"Re-encrypted {count} secret(s) with the first key.")


@cli.command("plugins")
@with_appcontext
def plugins_command():
    """List the loaded plugins, their versions and the hooks each implements."""

    for plugin in describe_plugins():
        click.echo(f"{plugin['name']}  {plugin['version']}")
        for hook in plugin["hooks"]:
            click.echo(f"    {hook}")


def main() -> None:
    cli(prog_name="mailroom")


if __name__ == "__main__":
    main()
