"""A worker SIGKILLed mid-sync: its job ends ``failed`` with a sentence, the mailbox's lock is freed,
the failure is recorded on the mailbox, and "Sync now" starts again at once (not after the
lock's 60 s).  Real pieces: ``mailroom worker`` in a child process, Dovecot behind a slow link.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from tests.servers.proxy import CuttingProxy
from tests.support.job_worker import WorkerProcess, run_burst
from tests.support.sync_support import folder_id, make_mailbox, server_flags, stored_flags
from webapp import settings_store
from webapp.extensions import db
from webapp.jobs.abandoned import PULSE_KEY, SENTENCE
from webapp.jobs.mailbox_lock import LOCK_KEY
from webapp.jobs.worker import EarlyStop
from webapp.models import Account, LogEntry
from webapp.queue import get_redis

PULSE_TTL = 4


@pytest.fixture
def app(make_app):
    app = make_app(WORKER_PULSE_TTL=PULSE_TTL, SYNC_RETRY_INTERVALS=[30, 120])
    with app.app_context():
        settings_store.put("allowed_internal_hosts", ["127.0.0.1"])
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture
def slow_link(clean_dovecot):
    with CuttingProxy("127.0.0.1", clean_dovecot.imap_port, bytes_per_second=40_000) as link:
        yield link


@pytest.fixture(params=["warm", "fork"])
def worker(request, app, tmp_path):
    """``mailroom worker`` as it runs by default (jobs in its own process) and with ``--fork``."""
    process = WorkerProcess(app, tmp_path, burst=False, args=("--fork",) if request.param == "fork" else ())
    process.mode = request.param
    yield process.start().wait_ready()
    process.stop()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_a_sync_whose_worker_is_killed_fails_with_a_sentence_and_sync_now_runs_at_once(
    app, api, users, clean_dovecot, slow_link, worker
):
    clean_dovecot.add_messages("alice", 2000)
    account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
    account.imap_port = slow_link.port
    db.session.commit()
    started = api["alice"].post(f"/api/v1/accounts/{account.id}/sync")
    assert started.status_code == 202
    status_url = started.json["status_url"]

    def mid_sync():
        body = api["alice"].get(status_url).json
        return body["status"] == "started" and (body.get("progress") or {}).get("done", 0) > 0

    _wait(mid_sync, 60, "the sync to be under way")
    schedulers = {int(pid) for pid in re.findall(r"Scheduler for .* started with PID (\d+)", worker.output())}
    horses = [pid for pid in _children(worker.proc.pid) if pid not in schedulers]
    assert bool(horses) == (worker.mode == "fork"), "a forked work horse only with --fork"
    assert get_redis().get(LOCK_KEY.format(account.id)).decode() == started.json["job_id"]

    killed_at = time.monotonic()
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)
    _wait(lambda: not any(_alive(pid) for pid in horses), 10, "the work horse to die with its worker")

    final = _wait(
        lambda: (lambda b: b if b["status"] != "started" else None)(api["alice"].get(status_url).json),
        3 * PULSE_TTL + 10,
        "the job to stop being 'started'",
    )
    noticed = time.monotonic() - killed_at
    print(f"killed worker noticed after {noticed:.1f} s (pulse TTL {PULSE_TTL} s)")
    assert final["status"] == "failed", final
    assert final["error"].startswith(SENTENCE) and "picks up where it stopped" in final["error"]
    assert noticed < 60
    assert get_redis().get(LOCK_KEY.format(account.id)) is None
    db.session.expire_all()
    mailbox = db.session.get(Account, account.id)
    assert mailbox.last_sync_error == SENTENCE
    assert LogEntry.query.filter(LogEntry.message.contains("The worker stopped")).count() == 1

    # Not retried by RQ (it would hold "Sync now" at 409): a new sync starts at once.
    mailbox.imap_port = clean_dovecot.imap_port
    db.session.commit()
    again = api["alice"].post(f"/api/v1/accounts/{account.id}/sync")
    assert again.status_code == 202, again.json
    assert time.monotonic() - killed_at < 60
    run_burst(app, fork=True)
    done = api["alice"].get(again.json["status_url"]).json
    assert done["status"] == "finished" and done["result"]["ok"], done
    assert stored_flags(folder_id(mailbox)) == server_flags(clean_dovecot)


def test_a_lock_left_by_a_finished_job_is_taken_over(app, api, users, clean_dovecot):
    """A lock whose holder is a job no longer running does not hold the next sync for its TTL."""
    clean_dovecot.add_messages("alice", 3)
    account = make_mailbox(clean_dovecot, owner=users["alice"]["user"])
    first = api["alice"].post(f"/api/v1/accounts/{account.id}/sync").json
    run_burst(app, fork=True)
    get_redis().set(LOCK_KEY.format(account.id), first["job_id"], ex=60)  # as a killed run leaves it
    clean_dovecot.add_messages("alice", 2, subject="Later")
    second = api["alice"].post(f"/api/v1/accounts/{account.id}/sync")
    assert second.status_code == 202
    run_burst(app, fork=True)
    result = api["alice"].get(second.json["status_url"]).json["result"]
    assert result["ok"] and result["inserted"] == 2


def test_a_clean_worker_stop_forgets_its_pulse(app, tmp_path):
    process = WorkerProcess(app, tmp_path, burst=False).start().wait_ready()
    assert get_redis().zcard(PULSE_KEY) == 1
    process.stop()  # SIGTERM: RQ's warm shutdown
    assert get_redis().zcard(PULSE_KEY) == 0, (process.proc.returncode, process.output())


def test_a_child_forked_while_the_worker_starts_still_stops_on_sigterm():
    """RQ forks its scheduler process before it installs its own handlers, so the child inherits
    the early-stop handler. The worker's stop SIGTERMs the scheduler and joins it with no timeout:
    the child must die of the signal, while the worker itself only notes it (CI saw a worker
    stopped right after "Listening on" hang there until it was killed, its pulse left behind)."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stopper = EarlyStop()
    pid = 0
    try:
        stopper.listen_for_early_stop()
        with stopper.stops_held():  # as around RQ's fork of its scheduler
            pid = os.fork()
            if pid == 0:  # the child: what RQ's scheduler does before its own handlers are in
                time.sleep(30)
                os._exit(0)
            os.kill(pid, signal.SIGTERM)  # at once: the child may not have reset its signals yet
        _, status = _wait(lambda: (lambda r: r if r[0] else None)(os.waitpid(pid, os.WNOHANG)), 10,
                          "the forked child to end on SIGTERM")
        pid = 0
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGTERM)
        _wait(lambda: stopper._early_signal == signal.SIGTERM, 5, "the worker to note its stop")
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
