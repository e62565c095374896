"""``mailroom worker`` that SIGKILLs itself the moment a send's ``smtp_accepted_at`` is committed.

The worst moment for a send job to die: the SMTP server has answered DATA with 250 and the row
says so, and nothing after that commit has run (no enqueue, no Sent copy).  Two SQLAlchemy session
events find that commit in the real job, in the real worker process; the kill is a real SIGKILL,
so nothing (no ``finally``, no RQ handler) runs after it.

Run as ``python -m tests.support.killed_send_worker CONFIG.json [--burst]``; tests use
:class:`KilledSendWorker`.
"""

from __future__ import annotations

import os
import signal
import sys

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from tests.support.job_worker import WorkerProcess
from tests.support.job_worker import main as worker_main

_ARMED = "kill_after_commit"


def _note_acceptance(session: Session, _context) -> None:
    from webapp.models import OutgoingMessage

    for obj in session.dirty:
        if isinstance(obj, OutgoingMessage) and obj.smtp_accepted_at is not None:
            if inspect(obj).attrs.smtp_accepted_at.history.has_changes():
                session.info[_ARMED] = True


def _kill_after_commit(session: Session) -> None:
    if session.info.pop(_ARMED, False):
        os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    event.listen(Session, "after_flush", _note_acceptance)
    event.listen(Session, "after_commit", _kill_after_commit)


class KilledSendWorker(WorkerProcess):
    """A :class:`WorkerProcess` running this module instead of ``tests.support.job_worker``."""

    def start(self) -> KilledSendWorker:
        import subprocess

        from tests.support.job_worker import ROOT

        args = [sys.executable, "-m", "tests.support.killed_send_worker", str(self.config_path), *self.args]
        if self.burst:
            args.append("--burst")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        return self


if __name__ == "__main__":
    install()
    worker_main(sys.argv[1:])
