"""The ``mailroom`` command: users, tokens, secret rotation, plugins, and ``up`` end to end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from webapp.cli import cli
from webapp.extensions import db
from webapp.models import Account, User


def test_users_create_reads_the_password_twice_from_stdin(app, runner):
    result = runner.invoke(cli, ["users", "create", "carol", "--admin"], input="carol-password-1\n" * 2)
    assert result.exit_code == 0, result.output
    user = User.query.filter_by(username="carol").one()
    assert user.is_admin and user.check_password("carol-password-1")
    assert "carol-password-1" not in result.output
    again = runner.invoke(cli, ["users", "create", "carol"], input="another-password\n" * 2)
    assert again.exit_code != 0 and "exists already" in again.output
    short = runner.invoke(cli, ["users", "create", "dave"], input="short-pw-1\nshort-pw-1\n")
    assert short.exit_code != 0 and "at least 12 characters" in short.output
    mismatch = runner.invoke(cli, ["users", "create", "dave"], input="dave-password-1\ndave-password-2\n")
    assert mismatch.exit_code != 0 and "differ" in mismatch.output
    one_line = runner.invoke(cli, ["users", "create", "dave"], input="dave-password-1\n")
    assert one_line.exit_code != 0 and "twice" in one_line.output
    bad_name = runner.invoke(cli, ["users", "create", "da ve"], input="dave-password-1\n" * 2)
    assert bad_name.exit_code != 0 and "no spaces" in bad_name.output
    assert User.query.filter_by(username="dave").first() is None


def test_piped_users_create_through_a_real_pipe_refuses_a_mismatched_confirmation(app, tmp_path):
    """The installed command with stdin a real pipe (not a terminal), as a provisioning script runs it."""
    from flask import current_app

    env = dict(os.environ, MAILROOM_INSTANCE=current_app.instance_path)
    env["DATABASE_URL"] = current_app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg", "")
    env["REDIS_URL"] = current_app.config["REDIS_URL"]
    env["MAILROOM_SECRET_KEYS"] = current_app.config["SECRET_KEYS"]
    command = [sys.executable, "-m", "webapp.cli", "users", "create", "erin"]
    refused = subprocess.run(
        command, input="erin-password-1\nerin-password-9\n", env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "The two passwords differ" in refused.stderr
    db.session.remove()
    assert User.query.filter_by(username="erin").first() is None
    made = subprocess.run(
        command, input="erin-password-1\nerin-password-1\n", env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    db.session.remove()
    assert User.query.filter_by(username="erin").one().check_password("erin-password-1")


def test_users_list_disable_enable_and_role(app, runner, users, client):
    from tests.conftest import Api

    listing = runner.invoke(cli, ["users", "list"])
    assert listing.exit_code == 0
    lines = {line.split("\t")[1]: line for line in listing.output.splitlines()}
    assert set(lines) == {"admin", "alice", "bob"}
    assert "\tadmin\tactive\t0 mailbox(es)\tlast sign-in never" in lines["admin"]
    assert "password" not in listing.output and "scrypt" not in listing.output

    alice = Api(client, users["alice"]["token"])
    assert alice.get("/api/v1/accounts").status_code == 200
    result = runner.invoke(cli, ["users", "disable", "alice"])
    assert result.exit_code == 0, result.output
    refused = alice.get("/api/v1/accounts")
    assert refused.status_code == 401 and "disabled" in refused.get_json()["error"]
    assert "\tdisabled\t" in runner.invoke(cli, ["users", "list"]).output
    assert runner.invoke(cli, ["users", "enable", "alice"]).exit_code == 0
    assert alice.get("/api/v1/accounts").status_code == 200  # the token was kept, not revoked

    # The last active administrator: neither disabled nor demoted, from the command line either.
    last = runner.invoke(cli, ["users", "disable", "admin"])
    assert last.exit_code != 0 and "last active administrator" in last.output
    assert runner.invoke(cli, ["users", "role", "admin", "user"]).exit_code != 0
    assert runner.invoke(cli, ["users", "role", "bob", "admin"]).exit_code == 0
    assert runner.invoke(cli, ["users", "role", "admin", "user"]).exit_code == 0
    assert not db.session.get(User, users["admin"]["id"]).is_admin
    assert runner.invoke(cli, ["users", "disable", "nobody"]).exit_code != 0


def test_users_token_prints_a_working_api_token(app, runner, users, client):
    result = runner.invoke(cli, ["users", "token", "alice"])
    assert result.exit_code == 0
    token = result.output.strip()
    response = client.get("/api/v1/accounts", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert runner.invoke(cli, ["users", "token", "nobody"]).exit_code != 0


def test_secrets_rotate_reencrypts_with_the_first_key(app, users, api):
    from webapp.accounts import password

    gmail = next(s["id"] for s in api["admin"].get("/api/v1/services").get_json() if s["key"] == "gmail")
    acc_id = (
        api["alice"]
        .post(
            "/api/v1/accounts",
            json={"service_id": gmail, "username": "alice@gmail.com", "password": "rotate-me"},
        )
        .get_json()["id"]
    )
    from tests.conftest import SECRET_KEY

    new_key = Fernet.generate_key().decode()
    rotated_app = app_with_keys(f"{new_key},{SECRET_KEY}")
    with rotated_app.app_context():
        result = rotated_app.test_cli_runner().invoke(cli, ["secrets", "rotate"])
        assert result.exit_code == 0 and "1 secret" in result.output
        token = db.session.get(Account, acc_id).password_encrypted
        assert Fernet(new_key.encode()).decrypt(token.encode()) == b"rotate-me"
        assert password(db.session.get(Account, acc_id)) == "rotate-me"


def app_with_keys(keys):
    """An app on the current test database with other secret keys (make_app would empty the tables)."""
    from flask import current_app

    from webapp import create_app

    config = {k: current_app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "REDIS_URL", "QUEUE_NAME")}
    return create_app(
        {**config, "INSTANCE_PATH": current_app.instance_path, "SECRET_KEYS": keys, "TESTING": True}
    )


def test_plugins_lists_builtins_with_their_hooks(app, runner):
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0
    assert "plugins.gmail" in result.output and "mailroom_service_presets" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _started_for(tmp_path) -> list[int]:
    """Processes started for an instance under ``tmp_path``: named on their command line (the
    embedded Redis) or in their environment (worker, cron, idle: ``MAILROOM_INSTANCE``)."""
    marker = str(tmp_path).encode() + b"/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            named = marker in (entry / "cmdline").read_bytes()
            named = named or b"MAILROOM_INSTANCE=" + marker in (entry / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if named:
            found.append(int(entry.name))
    return found


def _gone(tmp_path, timeout: float) -> list[int]:
    """Wait up to ``timeout`` for the instance's processes to end; those still running."""
    deadline = time.monotonic() + timeout
    while (left := _started_for(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_up_starts_web_worker_and_cron_on_the_embedded_default_and_stops_on_ctrl_c(tmp_path):
    """The README's run command: SQLite + embedded Redis, web, one worker, cron, mailroom idle;
    SIGINT stops it all."""
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAILROOM_SECRET_KEYS")
    }
    env.update(MAILROOM_INSTANCE=str(tmp_path / "instance"), MAILROOM_ADMIN_PASSWORD="first-admin-pw")
    # Output to a file, not a pipe: a child left running would hold a pipe open, and reading it to
    # its end hung the test (seen when the start missed its deadline at load 25).
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", "up", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        # Deadlines, not measures: at load 25 on 2 cores the migrations, the embedded Redis and
        # the children took 62 s before the web server was even started.
        deadline = time.monotonic() + 180
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2).read().decode()
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "mailroom up did not answer within 180 s"
                time.sleep(0.3)
        assert "Log in" in body
        # The cron scheduler enqueues the heartbeat at once and the worker runs it.
        from sqlalchemy import create_engine, text

        engine = create_engine("sqlite:///" + str(tmp_path / "instance" / "mailroom.sqlite3"))
        deadline = time.monotonic() + 60
        beat = None
        while beat is None and time.monotonic() < deadline:
            with engine.connect() as conn:
                beat = conn.execute(text("select value from settings where key='cron_heartbeat'")).scalar()
            time.sleep(0.3)
        assert beat, "the cron heartbeat job never ran"
        assert (tmp_path / "instance" / "redis.sock").exists()
        # mailroom idle (push) runs beside them: its heartbeat key is in the embedded Redis.
        import redis

        local = redis.Redis(unix_socket_path=str(tmp_path / "instance" / "redis.sock"))
        deadline = time.monotonic() + 60
        while not list(local.scan_iter("mailroom:idle:process:*")):
            assert time.monotonic() < deadline, "mailroom idle did not start"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # Where it hangs: `mailroom up` dumps every thread's stack on SIGUSR1.
            proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            proc.kill()
            proc.wait()
            for pid in _started_for(tmp_path):  # nothing of it outlives the test
                os.kill(pid, signal.SIGKILL)
            pytest.fail("mailroom up did not stop within 30 s of Ctrl-C:\n" + log.read_text()[-6000:])
    out = log.read_text()
    assert proc.returncode == 0, out
    assert "Mailroom stopped." in out and "Traceback" not in out
    leftovers = _gone(tmp_path, 10)
    assert not (tmp_path / "instance" / "redis.sock").exists(), "the embedded Redis was left running"
    assert leftovers == [], f"processes left behind: {leftovers}"


def test_a_ctrl_c_while_up_starts_its_embedded_redis_stops_everything(tmp_path):
    """Ctrl-C during the start (here: once the embedded Redis's configuration is written) is an
    orderly stop: it was a KeyboardInterrupt that printed 'Aborted!' and left the Redis running."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAILROOM_SECRET_KEYS")
    }
    env.update(MAILROOM_INSTANCE=str(tmp_path / "instance"), MAILROOM_ADMIN_PASSWORD="first-admin-pw")
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", "up", "--port", str(_free_port())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # As from a terminal, whatever this test runs under (a background job ignores SIGINT).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 180
        while not (tmp_path / "instance" / "redis.conf").exists():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        leftovers = _gone(tmp_path, 10)
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    out = log.read_text()
    assert proc.returncode == 0 and "Mailroom stopped." in out, out
    assert leftovers == [], f"processes left behind: {leftovers}"


def test_up_on_a_port_in_use_says_so_and_leaves_nothing_running(tmp_path):
    """Tried as a newcomer would: a second `mailroom up` on a busy port printed a traceback and left
    its embedded Redis running."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAILROOM_SECRET_KEYS")
    }
    env.update(MAILROOM_INSTANCE=str(tmp_path / "instance"), MAILROOM_ADMIN_PASSWORD="first-admin-pw")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "webapp.cli", "up", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    time.sleep(0.2)
    assert not (tmp_path / "instance" / "redis.sock").exists(), "the embedded Redis was left running"
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], "processes left behind: " + ", ".join(leftovers)


def test_the_generated_admin_password_message_says_where_to_change_it(app, capsys):
    from webapp.cli import _announce_admin
    from webapp.users import ensure_admin

    generated = ensure_admin(None)
    assert generated and len(generated) >= 12
    assert db.session.get(User, User.query.filter_by(username="admin").one().id).check_password(generated)
    assert ensure_admin(None) is None  # only on a first start with no users
    _announce_admin(generated)
    out = capsys.readouterr().out
    assert generated in out and "My profile › Password" in out and "mailroom users passwd admin" in out
