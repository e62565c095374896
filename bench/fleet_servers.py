"""The servers of the fleet benchmark: one private Dovecot with N users, and an SMTP sink.

Every user's INBOX holds the same M generated messages (bench/maildir_gen.py), hard-linked
from one template Maildir into each home's ``Maildir/cur`` (a copy where links cannot be made),
owned by Dovecot's mail uid as tests/servers/dovecot.py does, so 10,000 mailboxes cost seconds
and no disk.  Users are Dovecot's passwd-file, written by the test server class.

By default Dovecot runs as the test suite's does, in its default (high-security) mode: a new
``imap-login`` and a new ``imap`` process for every connection, about 13 ms of the mail server's
CPU per login + STATUS + logout here.  ``--dovecot-performance`` (:data:`PERFORMANCE_MODE`) turns
on the "high-performance mode" of Dovecot's service configuration guide: login processes serve
many connections and ``imap`` processes are reused (``service_count``), about 1.3 ms per visit.
On a 2-core machine where Dovecot shares the cores with the workers, that keeps the local mail
server from being what a scaling run measures (a real fleet's servers are other machines).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink

from bench import maildir_gen
from tests.servers.dovecot import MAIL_GID, MAIL_UID, Dovecot
from tests.servers.net import free_ports

#: The fleet's users are u00001 … uNNNNN; two more stand beside them.
PROBE_USER, ENGINE_USER = "probe", "engine"
#: Dovecot's high-performance mode (appended to the config; Dovecot merges the service blocks).
PERFORMANCE_MODE = """
service imap-login {
  service_count = 0
  process_min_avail = 2
}
service imap {
  service_count = 1000
  process_min_avail = 2
}
"""


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def fleet_users(n: int) -> dict[str, str]:
    """``{login: password}`` of the N fleet mailboxes, the probe (connection tests) and the engine's."""
    users = {f"u{i:05d}": f"pw-{i:05d}-fleet" for i in range(1, n + 1)}
    users[PROBE_USER] = "pw-probe-fleet"
    users[ENGINE_USER] = "pw-engine-fleet"
    return users


def template(messages: int, cache_dir: Path | None = None) -> Path:
    """The ``cur`` folder of a generated Maildir of ``messages`` messages (cached between runs)."""
    cache = cache_dir or Path(f"/tmp/mailroom-fleet-template-{messages}")
    facts = maildir_gen.ensure(messages, cache, log)
    return Path(facts["path"]) / "cur"


class PerformanceDovecot(Dovecot):
    """The test Dovecot with :data:`PERFORMANCE_MODE` added to its config."""

    def _write_config(self) -> None:
        super()._write_config()
        with open(self.config_path, "a") as fh:
            fh.write(PERFORMANCE_MODE)


def start_dovecot(users: dict[str, str], performance: bool = False) -> Dovecot:
    """Plain IMAP on loopback; no special-use folders, so a first login creates nothing."""
    server_class = PerformanceDovecot if performance else Dovecot
    return server_class(users=users, ssl=False, special_use={}).start()


def fill_inboxes(server: Dovecot, users: list[str], cur: Path) -> int:
    """Link the template's messages into each user's INBOX; returns the files written."""
    names = sorted(p.name for p in cur.iterdir() if p.is_file())
    written = 0
    for user in users:
        maildir = server.home(user) / "Maildir"
        for sub in ("", "cur", "new", "tmp"):
            path = maildir / sub
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, MAIL_UID, MAIL_GID)
        for name in names:
            _link(cur / name, maildir / "cur" / name)
            written += 1
    return written


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another filesystem: a copy, given to the mail uid
        shutil.copy2(source, target)
        os.chown(target, MAIL_UID, MAIL_GID)


class SmtpSink:
    """aiosmtpd on loopback (plain, no AUTH) so the probe's connection test passes end to end."""

    def __init__(self) -> None:
        self.port = free_ports(1)[0]
        self._controller = Controller(Sink(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
