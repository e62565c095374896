"""A private, real Dovecot (IMAP, IMAPS, POP3, POP3S) for the test suite.

Each instance writes its own config, passwd-file and Maildir homes into a fresh
temporary folder, runs ``dovecot -F`` as our child on free loopback ports and is
stopped with SIGTERM, as ``doveadm stop`` does.  /work/shared/NOTES.md explains
the settings (run as root, ``dovenull`` login user, non-root mail uid, block syntax).
"""

from __future__ import annotations

import atexit
import base64
import email.message
import email.utils
import mailbox
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .net import free_ports, wait_for_ports

DOVECOT_BIN = "/usr/sbin/dovecot"
DOVEADM_BIN = "/usr/bin/doveadm"
DEFAULT_USERS = {"alice": "secret-alice-pw", "bob": "secret-bob-pw"}
#: Mail files and homes belong to this uid/gid (nobody/nogroup): Dovecot refuses root.
MAIL_UID = MAIL_GID = 65534
SPECIAL_USE = {"Drafts": r"\Drafts", "Sent": r"\Sent", "Junk": r"\Junk", "Trash": r"\Trash"}
#: Maildir info letters for the IMAP system flags ``add_message`` accepts by name.
IMAP_TO_MAILDIR = {r"\draft": "D", r"\flagged": "F", r"\answered": "R", r"\seen": "S", r"\deleted": "T"}
#: ``auth_fault`` scripts for a ``checkpassword`` passdb.  Exit 111 is the checkpassword
#: protocol's temporary failure: Dovecot answers ``NO [UNAVAILABLE] Temporary authentication
#: failure`` (POP3: ``-ERR [SYS/TEMP]``).  "hang" leaves a mark (so a test knows the login is in
#: flight) and waits, so the test can kill Dovecot's processes in the middle of a login.
AUTH_FAULTS = {
    "tempfail": "#!/bin/sh\nexit 111\n",
    "hang": "#!/bin/sh\ntouch '{mark}'\nexec sleep 60\n",
}

_running: set[Dovecot] = set()


class DovecotError(RuntimeError):
    """Dovecot is missing, failed to start, or refused a command."""


def _listener(name: str, port: int | None, ssl: bool = False) -> str:
    # Block syntax needs line breaks; port 0 turns a built-in default listener off.
    return (
        f"  inet_listener {name} {{\n    port = {port or 0}\n" + ("    ssl = yes\n" if ssl else "") + "  }\n"
    )


def _maildir_flags(flags: str | list[str] | tuple[str, ...]) -> str:
    r"""Maildir info letters from ``"SF"`` or IMAP names like ``"\Seen \Flagged"`` / ``["\\Seen"]``."""
    if isinstance(flags, str):
        flags = flags.split() if "\\" in flags else list(flags)
    letters = {IMAP_TO_MAILDIR.get(f.lower(), f) for f in flags}
    for letter in letters:
        if len(letter) != 1:
            raise ValueError(f"unknown flag {letter!r}")
    return "".join(sorted(letters))


class Dovecot:
    """A running Dovecot with users from a passwd-file and Maildir homes.

    ``plaintext_auth=False`` sets ``disable_plaintext_auth = yes``.  Dovecot
    counts a connection whose client and server address are equal as secure,
    so such an instance listens on 127.0.0.2 (reached from 127.0.0.1) to really
    advertise LOGINDISABLED on its plain ports; use ``host`` to connect.
    ``ssl=False`` runs without TLS: no STARTTLS/STLS and no IMAPS/POP3S ports.
    ``oauth2_introspection_url`` adds XOAUTH2 and OAUTHBEARER, checked by Dovecot's ``oauth2``
    passdb against that RFC 7662 endpoint (see tests/servers/oauth_server.py).
    ``auth_fault`` ("tempfail" or "hang", see AUTH_FAULTS) replaces the password check with a
    failing ``checkpassword`` passdb: a server that cannot check passwords, not one that rejects them.
    """

    def __init__(
        self,
        users: dict[str, str] | None = None,
        cert: tuple[str | Path, str | Path] | None = None,
        *,
        ssl: bool = True,
        plaintext_auth: bool = True,
        host: str | None = None,
        start_timeout: float = 10.0,
        separator: str = "/",
        special_use: dict[str, str] | None = None,
        oauth2_introspection_url: str | None = None,
        auth_fault: str | None = None,
        max_connections: int = 200,
    ) -> None:
        if ssl and cert is None:
            raise ValueError("a (cert, key) pair is needed unless ssl=False")
        self.users = dict(DEFAULT_USERS if users is None else users)
        for name, password in self.users.items():
            if any(c in name for c in ":/\n") or "\n" in password:
                raise ValueError(f"unusable test user {name!r}")
        self.cert = (Path(cert[0]), Path(cert[1])) if cert else None
        self.ssl = ssl
        self.plaintext_auth = plaintext_auth
        self.host = host or ("127.0.0.1" if plaintext_auth else "127.0.0.2")
        self.start_timeout = start_timeout
        if separator not in ("/", "."):
            raise ValueError("separator must be '/' or '.'")
        #: The namespace's hierarchy separator as IMAP clients see it.
        self.separator = separator
        #: Folders created for every user with their RFC 6154 attribute (default: SPECIAL_USE).
        self.special_use = dict(SPECIAL_USE if special_use is None else special_use)
        #: RFC 7662 endpoint (with client credentials in the URL) for the ``oauth2`` passdb; the
        #: passwd-file passdb keeps serving PLAIN/LOGIN beside it.  OAuth users are the ``users``
        #: whose name is the token's ``email`` (e.g. ``alice@example.test``).
        self.oauth2_introspection_url = oauth2_introspection_url
        if auth_fault is not None and auth_fault not in AUTH_FAULTS:
            raise ValueError(f"auth_fault must be one of {sorted(AUTH_FAULTS)}")
        self.auth_fault = auth_fault
        #: Connections per user and address, and (when over 100) the imap process limit:
        #: ``max_connections=600`` lets one client hold 500 IDLE connections (tests/test_idle_memory).
        self.max_connections = max_connections
        self.root: Path | None = None
        self.imap_port = self.imaps_port = self.pop3_port = self.pop3s_port = None
        self._proc: subprocess.Popen | None = None

    # -- life cycle -------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        assert self.root, "Dovecot not started"
        return self.root / "dovecot.conf"

    @property
    def ports(self) -> dict[str, int | None]:
        return {
            "imap": self.imap_port,
            "imaps": self.imaps_port,
            "pop3": self.pop3_port,
            "pop3s": self.pop3s_port,
        }

    def start(self) -> Dovecot:
        """Write the config, start Dovecot in the foreground and wait until every port accepts connections."""
        if self._proc is not None:
            return self
        for binary in (DOVECOT_BIN, DOVEADM_BIN):
            if not os.access(binary, os.X_OK):
                raise DovecotError(f"{binary} not found: install dovecot-imapd and dovecot-pop3d (Debian)")
        # Own folder, not pytest's tmp (mode 0700 there): the mail uid must reach its home.
        self.root = Path(tempfile.mkdtemp(prefix="mailroom-dovecot-"))
        self.root.chmod(0o755)
        ports = free_ports(4 if self.ssl else 2, self.host)
        self.imap_port, self.pop3_port = ports[:2]
        if self.ssl:
            self.imaps_port, self.pop3s_port = ports[2:]
        self._write_config()
        for user in self.users:
            self._mkdir_owned(self.home(user))
        self._proc = subprocess.Popen(
            [DOVECOT_BIN, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=open(self.root / "stdout.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        _running.add(self)
        proc = self._proc
        closed = wait_for_ports(
            self.host, ports, time.monotonic() + self.start_timeout, alive=lambda: proc.poll() is None
        )
        if closed or self._proc.poll() is not None:
            log = self.log_text()
            self.stop()
            raise DovecotError(f"Dovecot did not open ports {closed} on {self.host}:\n{log}")
        return self

    def restart(self, down_for: float = 0.0) -> None:
        """Kill Dovecot (as a crash would), wait ``down_for`` seconds, start it again on the same
        ports with the same config and mail: clients see their connections drop, then come back."""
        assert self._proc is not None and self.root is not None, "Dovecot not started"
        self.kill()
        time.sleep(down_for)
        self._proc = subprocess.Popen(
            [DOVECOT_BIN, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=open(self.root / "stdout.log", "ab"),
            stderr=subprocess.STDOUT,
        )
        proc = self._proc
        ports = [p for p in self.ports.values() if p]
        closed = wait_for_ports(
            self.host, ports, time.monotonic() + self.start_timeout, alive=lambda: proc.poll() is None
        )
        if closed:
            raise DovecotError(f"Dovecot did not reopen ports {closed}:\n{self.log_text()}")

    def stop(self) -> None:
        """Stop Dovecot (SIGTERM, SIGKILL after 10 s) and remove its folder; safe to call twice."""
        self.request_stop()
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if proc.stdout:
                proc.stdout.close()
        _running.discard(self)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def request_stop(self) -> None:
        """Send the stop signal without waiting; ``stop()`` later waits and cleans up."""
        # SIGTERM to the master is what ``doveadm stop`` sends; doveadm then polls for seconds,
        # while waiting on our own child returns once its log process ends (about 1 s).
        if self.auth_fault == "hang":
            self.kill()  # a password check still waiting would outlive a polite stop
        elif self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()

    def kill(self) -> None:
        """SIGKILL the master and every process below it at once, as a crashing machine would.

        Clients connected to it see their connection drop; ``stop()`` still cleans up.
        """
        if self._proc is None or self._proc.poll() is not None:
            return
        pids, todo = [], [self._proc.pid]
        while todo:  # the whole tree first, then the signals: a dying master must not reparent them
            pid = todo.pop()
            pids.append(pid)
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as fh:
                    todo += [int(child) for child in fh.read().split()]
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._proc.wait(timeout=10)

    @property
    def auth_in_flight(self) -> Path:
        """The mark the "hang" ``auth_fault`` leaves while a password check is waiting."""
        assert self.root, "Dovecot not started"
        return self.root / "marks" / "auth-in-flight"

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        """Dovecot's log and console output so far (for error messages)."""
        if self.root is None:
            return ""
        parts = [
            p.read_text(errors="replace")
            for p in (self.root / "stdout.log", self.root / "dovecot.log")
            if p.exists()
        ]
        return "".join(parts)

    def doveadm(self, *args: str) -> subprocess.CompletedProcess:
        """Run ``doveadm -c CONF ARGS`` against this instance, e.g. ``doveadm("mailbox", "list", "-u", "alice")``."""
        result = subprocess.run(
            [DOVEADM_BIN, "-c", str(self.config_path), *args], capture_output=True, text=True
        )
        if result.returncode:
            raise DovecotError(f"doveadm {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    def _write_config(self) -> None:
        assert self.root
        users_file = self.root / "users"
        # PLAIN.b64 lets passwords hold ':' and non-ASCII without breaking the passwd-file.
        users_file.write_text(
            "".join(
                f"{name}:{{PLAIN.b64}}{base64.b64encode(pw.encode()).decode()}:{MAIL_UID}:{MAIL_GID}::{self.home(name)}\n"
                for name, pw in self.users.items()
            )
        )
        users_file.chmod(0o644)
        mailboxes = "".join(
            f'  mailbox "{name}" {{\n    special_use = {flag}\n    auto = subscribe\n  }}\n'
            for name, flag in self.special_use.items()
        )
        tls = (
            f"ssl = yes\nssl_cert = <{self.cert[0]}\nssl_key = <{self.cert[1]}\n"
            if self.ssl
            else "ssl = no\n"
        )
        oauth_mechs = oauth_passdb = password_mechs = ""
        if self.oauth2_introspection_url:
            oauth_mechs = " xoauth2 oauthbearer"
            oauth_passdb = self._write_oauth2_config()
            # A refused token must not go on to be compared with the passwords.
            password_mechs = "  mechanisms = plain login\n"
        self.config_path.write_text(f"""\
protocols = imap pop3
listen = {self.host}
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
{tls}disable_plaintext_auth = {"no" if self.plaintext_auth else "yes"}
auth_mechanisms = plain login{oauth_mechs}
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:~/Maildir:UTF-8
mail_plugins = $mail_plugins listescape
mail_fsync = never
mail_max_userip_connections = {self.max_connections}
{self._connection_limits()}{oauth_passdb}{self._password_passdb(users_file, password_mechs)}
userdb {{
  driver = passwd-file
  args = {users_file}
}}
namespace inbox {{
  inbox = yes
  separator = {self.separator}
{mailboxes}}}
# No anvil penalty socket: failed logins in one test must not slow down the next ones.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
{_listener("imap", self.imap_port)}{_listener("imaps", self.imaps_port, ssl=True)}}}
service pop3-login {{
{_listener("pop3", self.pop3_port)}{_listener("pop3s", self.pop3s_port, ssl=True)}}}
""")

    def _connection_limits(self) -> str:
        """Dovecot runs one imap process per connection; its default limit is 100 (the default
        config here is left as it was)."""
        if self.max_connections <= 200:
            return ""
        n = self.max_connections
        return f"default_process_limit = {n}\ndefault_client_limit = {4 * n}\ndefault_vsz_limit = 256M\n"

    def _password_passdb(self, users_file: Path, mechanisms: str) -> str:
        """The passdb for PLAIN/LOGIN: the passwd-file, or a failing checkpassword script."""
        assert self.root
        if self.auth_fault is None:
            return f"passdb {{\n  driver = passwd-file\n  args = {users_file}\n{mechanisms}}}"
        marks = self.root / "marks"
        marks.mkdir(exist_ok=True)
        marks.chmod(0o777)  # the auth process may run as an unprivileged user
        script = self.root / "checkpassword.sh"
        script.write_text(AUTH_FAULTS[self.auth_fault].format(mark=self.auth_in_flight))
        script.chmod(0o755)
        return f"passdb {{\n  driver = checkpassword\n  args = {script}\n{mechanisms}}}"

    def _write_oauth2_config(self) -> str:
        """The oauth2 passdb's args file (introspection only, no tokeninfo) and its passdb block."""
        assert self.root and self.oauth2_introspection_url
        conf = self.root / "dovecot-oauth2.conf.ext"
        # The file holds the introspection client's secret: readable by the auth process only (root).
        conf.write_text(
            f"introspection_mode = post\n"
            f"introspection_url = {self.oauth2_introspection_url}\n"
            "force_introspection = yes\n"
            "username_attribute = email\n"
            "active_attribute = active\n"
            "active_value = true\n"
            "timeout_msecs = 5000\n"
        )
        conf.chmod(0o600)
        return f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {conf}\n}}\n"

    # -- mail -------------------------------------------------------------------------

    def home(self, user: str) -> Path:
        assert self.root, "Dovecot not started"
        if user not in self.users:
            raise KeyError(f"no such test user {user!r}")
        return self.root / "home" / user

    def folder_path(self, user: str, folder: str = "INBOX") -> Path:
        """The Maildir++ directory of ``folder`` (hierarchy by ``separator``), UTF-8, listescape ``\\NN``."""
        base = self.home(user) / "Maildir"
        if folder.upper() == "INBOX":
            return base
        parts = []
        for part in folder.split(self.separator):
            part = part.replace("\\", "\\5c").replace(".", "\\2e").replace("/", "\\2f")
            parts.append(part)
        escaped = ".".join(parts)
        if escaped.startswith("~"):
            escaped = "\\7e" + escaped[1:]
        return base / ("." + escaped)

    def create_folder(self, user: str, folder: str, subscribe: bool = True) -> None:
        """Create ``folder`` (a UTF-8 name, hierarchy by ``separator``) the way a mail client would."""
        self.doveadm("mailbox", "create", "-u", user, *(["-s"] if subscribe else []), folder)

    def delete_folder(self, user: str, folder: str) -> None:
        """Delete ``folder`` and its messages, as another client would (``doveadm mailbox delete``)."""
        self.doveadm("mailbox", "delete", "-u", user, folder)

    def rename_folder(self, user: str, old: str, new: str) -> None:
        self.doveadm("mailbox", "rename", "-u", user, old, new)

    def maildir(self, user: str, folder: str = "INBOX") -> mailbox.Maildir:
        """The folder as a ``mailbox.Maildir`` (created if missing); use ``add_message`` to write."""
        path = self._ensure_folder(user, folder)
        return mailbox.Maildir(path, factory=None, create=False)

    def add_message(
        self,
        user: str,
        message: bytes | str | email.message.Message,
        folder: str = "INBOX",
        flags: str | list[str] | tuple[str, ...] = "",
        internaldate: float | None = None,
    ) -> Path:
        r"""Deliver one message straight into the Maildir, owned by the mail uid.

        ``flags`` are Maildir letters (``"SF"``) or IMAP system flags (``"\Seen \Flagged"``);
        ``internaldate`` (a timestamp) becomes the file's mtime, which Dovecot reports as INTERNALDATE.
        """
        if isinstance(message, email.message.Message):
            message = message.as_bytes()
        elif isinstance(message, str):
            message = message.encode()
        return self._deliver(self._ensure_folder(user, folder), message, _maildir_flags(flags), internaldate)

    def add_messages(
        self, user: str, n: int, folder: str = "INBOX", subject: str = "Test message"
    ) -> list[str]:
        """Deliver ``n`` small distinct messages (``"{subject} {i}"``, i from 1); return their Message-IDs."""
        path = self._ensure_folder(user, folder)
        date = email.utils.formatdate(localtime=False)
        batch = uuid.uuid4().hex[:12]
        ids = []
        for i in range(1, n + 1):
            msgid = f"<{batch}.{i}@mailroom.test>"
            ids.append(msgid)
            raw = (
                f"From: Sender <sender@example.com>\r\nTo: {user}@example.com\r\nSubject: {subject} {i}\r\n"
                f"Date: {date}\r\nMessage-ID: {msgid}\r\nMIME-Version: 1.0\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\nBody of message {i}.\r\n"
            ).encode()
            self._deliver(path, raw, "", None)
        return ids

    def reset_user(self, user: str) -> None:
        """Remove the user's whole Maildir (folders, indexes, subscriptions); Dovecot recreates it on login."""
        shutil.rmtree(self.home(user) / "Maildir", ignore_errors=True)

    def _ensure_folder(self, user: str, folder: str) -> Path:
        path = self.folder_path(user, folder)
        for sub in ("cur", "new", "tmp"):
            self._mkdir_owned(path / sub)
        if folder.upper() != "INBOX" and not (path / "maildirfolder").exists():
            (path / "maildirfolder").touch()
            os.chown(path / "maildirfolder", MAIL_UID, MAIL_GID)
        return path

    def _deliver(self, path: Path, raw: bytes, flags: str, internaldate: float | None) -> Path:
        unique = f"{time.time_ns()}.P{os.getpid()}Q{uuid.uuid4().hex[:8]}.mailroom,S={len(raw)}"
        tmp = path / "tmp" / unique
        tmp.write_bytes(raw)
        os.chown(tmp, MAIL_UID, MAIL_GID)
        if internaldate is not None:
            os.utime(tmp, (internaldate, internaldate))
        final = path / "cur" / f"{unique}:2,{flags}" if flags else path / "new" / unique
        os.rename(tmp, final)
        return final

    @staticmethod
    def _mkdir_owned(path: Path) -> None:
        """mkdir -p, giving every directory created below the instance root to the mail uid."""
        missing = []
        while not path.exists():
            missing.append(path)
            path = path.parent
        for p in reversed(missing):
            p.mkdir(mode=0o700)
            os.chown(p, MAIL_UID, MAIL_GID)


def stop_all(servers: list[Dovecot] | set[Dovecot]) -> None:
    """Stop several instances in parallel (each takes about a second to exit)."""
    servers = list(servers)
    for server in servers:
        server.request_stop()
    for server in servers:
        server.stop()


@atexit.register
def _stop_running() -> None:
    """Last resort if a session dies before its fixtures tear down."""
    stop_all(_running)
