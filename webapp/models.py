"""The database tables of Mailroom, named after the domain.

A *service* is an entry of the administrator's list (a built-in provider from a
plugin, or a corporate server); an *account* is one user's mailbox, connected
through a service or through server details typed by hand.  An account reads
its service's servers at each connection, so editing a service needs no
reconnect; deleting one leaves the account, marked as having lost its service.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from connectors.i18n import N_
from connectors.settings import Protocol, Security, ServerSettings

from . import passwords
from .extensions import db


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


#: Table option for every table with an integer id: SQLite's AUTOINCREMENT never hands out an id
#: again (plain SQLite reuses the highest one after a delete, so a new mailbox got a deleted
#: mailbox's id and whatever still pointed at it); PostgreSQL's sequences never reuse anyway.
#: tests/test_integrity.py checks every such table declares it.
AUTOINCREMENT = {"sqlite_autoincrement": True}


class Role(str, enum.Enum):
    ADMIN = "admin"
    USER = "user"


class AccountState(str, enum.Enum):
    NEW = "new"  # never tested
    CONNECTED = "connected"
    AUTH_ERROR = "auth_error"
    CONNECTION_ERROR = "connection_error"
    SERVICE_REMOVED = "service_removed"
    DISABLED = "disabled"
    NEEDS_SIGN_IN = "needs_sign_in"  # OAuth2 refresh token refused (invalid_grant)

    @property
    def label(self) -> str:
        return {
            "new": N_("Not tested yet"),
            "connected": N_("Connected"),
            "auth_error": N_("Authentication error"),
            "connection_error": N_("Connection error"),
            "service_removed": N_("Service removed"),
            "disabled": N_("Disabled"),
            "needs_sign_in": N_("Needs to sign in again"),
        }[self.value]

    @property
    def is_error(self) -> bool:
        return self in (
            AccountState.AUTH_ERROR,
            AccountState.CONNECTION_ERROR,
            AccountState.SERVICE_REMOVED,
            AccountState.NEEDS_SIGN_IN,
        )


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER.value)
    #: The sender's fields that fill the company's centralized signature.
    first_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    last_name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    job_title: Mapped[str] = mapped_column(String(120), default="", server_default="")
    phone: Mapped[str] = mapped_column(String(64), default="", server_default="")
    #: The console's language (en/it/pl) and IANA time zone; None: the browser's / the server's.
    language: Mapped[str | None] = mapped_column(String(8))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Set while an administrator has disabled the user: no sign-in, no session, no API token,
    #: no sync of their mailboxes; nothing of theirs is deleted (webapp/users.py).
    disabled_at: Mapped[datetime | None]
    last_sign_in_at: Mapped[datetime | None]

    accounts: Mapped[list[Account]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def is_active(self) -> bool:  # Flask-Login's: login_user() refuses an inactive user
        return self.disabled_at is None

    def set_password(self, password: str) -> None:
        self.password_hash = passwords.hash_password(password)

    def check_password(self, password: str) -> bool:
        return passwords.verify(self.password_hash, password)


class ApiToken(db.Model):
    """A bearer token for the JSON API; only its SHA-256 is stored.

    A token works until ``expires_at`` and stops at once when ``revoked_at`` is set
    (see webapp/api_tokens.py, the one module that reads and writes these rows).
    """

    __tablename__ = "api_tokens"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class UserSession(db.Model):
    """A signed-in browser: the page session cookie is accepted only while its row exists.

    The cookie holds the random session id; only its SHA-256 is stored here, so a
    database dump cannot be replayed.  Logout deletes the row, a password change
    deletes all of the user's rows (webapp/sessions.py).
    """

    __tablename__ = "user_sessions"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))


class ServiceKind(str, enum.Enum):
    BUILTIN = "builtin"
    CORPORATE = "corporate"


class _ServerColumns:
    """IMAP, SMTP and (optional) POP3 endpoints, shared by services and hand-entered accounts."""

    imap_host: Mapped[str | None] = mapped_column(String(255))
    imap_port: Mapped[int | None]
    imap_security: Mapped[str | None] = mapped_column(String(16))
    smtp_host: Mapped[str | None] = mapped_column(String(255))
    smtp_port: Mapped[int | None]
    smtp_security: Mapped[str | None] = mapped_column(String(16))
    pop3_host: Mapped[str | None] = mapped_column(String(255))
    pop3_port: Mapped[int | None]
    pop3_security: Mapped[str | None] = mapped_column(String(16))

    def endpoint(self, protocol: str) -> dict | None:
        host = getattr(self, f"{protocol}_host")
        if not host:
            return None
        return {
            "host": host,
            "port": getattr(self, f"{protocol}_port"),
            "security": getattr(self, f"{protocol}_security"),
        }

    def set_endpoint(self, protocol: str, endpoint: dict | None) -> None:
        endpoint = endpoint or {}
        setattr(self, f"{protocol}_host", endpoint.get("host"))
        setattr(self, f"{protocol}_port", endpoint.get("port"))
        setattr(self, f"{protocol}_security", endpoint.get("security"))


class Service(_ServerColumns, db.Model):
    """One entry of the list of mail services people may use."""

    __tablename__ = "services"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The plugin preset key for built-in services (``gmail``); None for corporate servers.
    key: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default=ServiceKind.CORPORATE.value)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    hidden: Mapped[bool] = mapped_column(default=False)
    #: A corporate server's own trust: PEM of its CA certificate(s), added to the system CAs
    #: for every mailbox connecting through it (see webapp.service_trust).
    ca_certificate: Mapped[str | None] = mapped_column(Text)
    #: Off: "do not verify the certificate" for every mailbox of the service (a standing warning).
    verify_certificate: Mapped[bool] = mapped_column(default=True, server_default="1")
    #: At most this many connections to the service's mail server at once, from every worker on
    #: every machine (webapp.jobs.connection_slots); None: the provider plugin's default, if any.
    max_connections: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    accounts: Mapped[list[Account]] = relationship(back_populates="service", passive_deletes=True)

    @property
    def is_builtin(self) -> bool:
        return self.kind == ServiceKind.BUILTIN.value


class Account(_ServerColumns, db.Model):
    """A user's mailbox."""

    __tablename__ = "accounts"
    __table_args__ = (
        # Exactly one main mailbox per user: the database itself refuses a second one.
        Index(
            "uq_accounts_main_per_user",
            "user_id",
            unique=True,
            sqlite_where=db.text("is_main"),
            postgresql_where=db.text("is_main"),
        ),
        # Cron's one query for due mailboxes (webapp.jobs.due.due_query).
        Index("ix_accounts_active_next_sync_at", "active", "next_sync_at"),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"), index=True)
    #: The service's name when the account was connected, kept to explain a removed service.
    service_name: Mapped[str | None] = mapped_column(String(120))
    #: Server details typed by hand ("Other") instead of a service.
    manual: Mapped[bool] = mapped_column(default=False)
    username: Mapped[str] = mapped_column(String(320))
    password_encrypted: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str] = mapped_column(String(320))
    description: Mapped[str] = mapped_column(String(255), default="")
    is_main: Mapped[bool] = mapped_column(default=False)
    #: Off: no connection, no sync, no sending; the data stays.
    active: Mapped[bool] = mapped_column(default=True, server_default="1")
    #: Record the protocol conversation (secrets masked) in the email log.
    debug: Mapped[bool] = mapped_column(default=False, server_default="0")
    #: Off only for servers with internal certificates; the pages then show a standing warning.
    verify_certificate: Mapped[bool] = mapped_column(default=True, server_default="1")
    #: "imap" or "pop3": how incoming mail is read.
    incoming_protocol: Mapped[str] = mapped_column(String(8), default="imap", server_default="imap")
    smtp_requires_auth: Mapped[bool] = mapped_column(default=True, server_default="1")
    #: A separate SMTP login when it differs from the incoming one.
    smtp_username: Mapped[str | None] = mapped_column(String(320))
    smtp_password_encrypted: Mapped[str | None] = mapped_column(Text)
    #: The From address for SMTP when it differs from ``email``.
    smtp_from: Mapped[str | None] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(32), default=AccountState.NEW.value)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    #: The last connection test's report as JSON (steps, durations, classified error).
    last_check: Mapped[str | None] = mapped_column(Text)
    #: POP3: keep downloaded messages on the server (the safe default of the products this replaces).
    pop3_leave_on_server: Mapped[bool] = mapped_column(default=True, server_default="1")
    #: Set by an administrator: every user may send from it; its messages stay its owner's.
    shared_sender: Mapped[bool] = mapped_column(default=False, server_default="0")
    #: "none", "custom" (signature_text / signature_html) or "central" (the company template).
    signature_mode: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    signature_text: Mapped[str | None] = mapped_column(Text)
    signature_html: Mapped[str | None] = mapped_column(Text)
    #: "password" or "oauth2" (tokens below, encrypted like passwords).
    auth_method: Mapped[str] = mapped_column(String(16), default="password", server_default="password")
    oauth_access_token_encrypted: Mapped[str | None] = mapped_column(Text)
    oauth_refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    oauth_expires_at: Mapped[datetime | None]
    oauth_scope: Mapped[str | None] = mapped_column(Text)
    #: The last sync run: when it ended, and its error (None when it went well).
    last_synced_at: Mapped[datetime | None]
    last_sync_error: Mapped[str | None] = mapped_column(Text)
    #: Push on: ``mailroom idle`` holds INBOX in IMAP IDLE, so cron sweeps it less often.
    push: Mapped[bool] = mapped_column(default=False, server_default="0")
    #: When cron syncs it next (None: at once); spread over the interval (webapp.jobs.due).
    next_sync_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship(back_populates="accounts")
    service: Mapped[Service | None] = relationship(back_populates="accounts")
    folders: Mapped[list[Folder]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def state_enum(self) -> AccountState:
        return AccountState(self.state)

    @property
    def service_removed(self) -> bool:
        return self.state == AccountState.SERVICE_REMOVED.value

    def server(self, protocol: str) -> dict | None:
        """The endpoint used at the next connection: the service's current one, or the typed one."""
        if self.manual:
            return self.endpoint(protocol)
        if self.service is None:
            return None
        return self.service.endpoint(protocol)

    def server_settings(self, protocol: str, timeout: float = 15.0) -> ServerSettings | None:
        endpoint = self.server(protocol)
        if endpoint is None:
            return None
        return ServerSettings(
            protocol=Protocol(protocol),
            host=endpoint["host"],
            port=endpoint["port"],
            security=Security(endpoint["security"]),
            timeout=timeout,
        )


class Setting(db.Model):
    """Console-wide settings as JSON values; see webapp.settings_store for the known keys."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Notification(db.Model):
    """Something a user must see the next time they use the console (a removed service, …)."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "account_id", "kind", name="uq_notifications_user_account_kind"),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16), default="error")
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]


class LogSource(str, enum.Enum):
    IMAP_AUTH = "IMAP Auth"
    SMTP_AUTH = "SMTP Auth"
    POP3_AUTH = "POP3 Auth"
    INCOMING = "Incoming mail"
    SYNC = "Sync"
    EMAIL_LOGGER = "Email Logger"
    ADMIN = "Admin"


class LogLevel(str, enum.Enum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LogEntry(db.Model):
    """The email log: what connection tests, syncs, sends and administrators did.

    Rows keep the mailbox and user ids (nullable, so the log outlives them) and
    their names as text, so an entry still reads right after a deletion.
    """

    __tablename__ = "email_log"
    __table_args__ = (Index("ix_email_log_created_at_id", "created_at", "id"), AUTOINCREMENT)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(32), index=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    account_label: Mapped[str | None] = mapped_column(String(320))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    user_label: Mapped[str | None] = mapped_column(String(150))
    #: Who did it: a console user name, or "system" for jobs.
    created_by: Mapped[str] = mapped_column(String(150), default="system")
    #: Structured extras as JSON: a check report, a protocol transcript with secrets masked.
    details: Mapped[str | None] = mapped_column(Text)


class FolderRole(str, enum.Enum):
    """The folders the console needs to know by role (RFC 6154 special-use, or the user's choice)."""

    INBOX = "inbox"
    DRAFTS = "drafts"
    SENT = "sent"
    SPAM = "spam"
    TRASH = "trash"


class Folder(db.Model):
    """An IMAP folder of a mailbox (or the single POP3 inbox), with its sync state.

    ``name`` is kept exactly as the server sent it (modified UTF-7), because
    that is what commands must carry; ``display_name`` is its decoded form.
    The sync state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, count) lets the next
    run choose the cheapest correct path.
    """

    __tablename__ = "folders"
    __table_args__ = (
        UniqueConstraint("account_id", "name", name="uq_folders_account_name"),
        # At most one folder per role in a mailbox: the database refuses a second Sent.
        Index(
            "uq_folders_account_role",
            "account_id",
            "role",
            unique=True,
            sqlite_where=db.text("role IS NOT NULL"),
            postgresql_where=db.text("role IS NOT NULL"),
        ),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(1024))
    display_name: Mapped[str] = mapped_column(String(1024))
    delimiter: Mapped[str | None] = mapped_column(String(4))
    #: LIST attributes as the server sent them, space-separated (``\HasNoChildren \Sent``).
    attributes: Mapped[str] = mapped_column(Text, default="")
    #: The RFC 6154 special-use attribute the server gave, if any (``\Sent``).
    special_use: Mapped[str | None] = mapped_column(String(32))
    role: Mapped[str | None] = mapped_column(String(16))
    sync: Mapped[bool] = mapped_column(default=False)
    #: False when the last LIST no longer showed it; its messages stay until it is removed.
    exists_on_server: Mapped[bool] = mapped_column(default=True, server_default="1")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uidnext: Mapped[int | None] = mapped_column(BigInteger)
    highestmodseq: Mapped[int | None] = mapped_column(BigInteger)
    message_count: Mapped[int | None]
    #: Highest UID stored by the current (possibly interrupted) full pass; resumes from here.
    seeded_uid: Mapped[int | None] = mapped_column(BigInteger)
    last_full_sync_at: Mapped[datetime | None]
    last_synced_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(back_populates="folders")


class Message(db.Model):
    """One message of a synced folder: the envelope and a preview, not the body.

    Unique per (folder, uid); identity across folders and mailboxes is the
    Message-ID header (``message_id``), which the history view uses to show a
    message synced through two mailboxes once.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("folder_id", "uid", name="uq_messages_folder_uid"),
        Index("ix_messages_folder_date", "folder_id", "date"),
        Index("ix_messages_account_date", "account_id", "date"),
        # A POP3 message is downloaded once: the database itself refuses a second row for a UIDL.
        Index(
            "uq_messages_folder_pop3_uidl",
            "folder_id",
            "pop3_uidl",
            unique=True,
            sqlite_where=db.text("pop3_uidl IS NOT NULL"),
            postgresql_where=db.text("pop3_uidl IS NOT NULL"),
        ),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    #: POP3 only: the server's UIDL of the message (``uid`` is then a local counter).
    pop3_uidl: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    #: The References header: Message-IDs, space-separated.
    references_header: Mapped[str | None] = mapped_column(Text)
    #: The Message-ID of the thread's first message as far as References tell: the thread view groups by it.
    thread_key: Mapped[str | None] = mapped_column(String(998), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_name: Mapped[str] = mapped_column(String(320), default="")
    from_addr: Mapped[str] = mapped_column(String(320), default="", index=True)
    #: Decoded ``Name <addr>`` lists, comma-separated, for display.
    to_addrs: Mapped[str] = mapped_column(Text, default="")
    cc_addrs: Mapped[str] = mapped_column(Text, default="")
    #: Every address of From/To/Cc, lower-case, space-separated with spaces at both ends (`` a@x b@y ``).
    participants: Mapped[str] = mapped_column(Text, default="")
    date: Mapped[datetime | None]
    size: Mapped[int | None]
    #: IMAP flags, space-separated (``\Seen \Flagged``).
    flags: Mapped[str] = mapped_column(Text, default="")
    seen: Mapped[bool] = mapped_column(default=False)
    flagged: Mapped[bool] = mapped_column(default=False, index=True)
    modseq: Mapped[int | None] = mapped_column(BigInteger)
    preview: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageBody(db.Model):
    """The raw RFC 5322 bytes of a message: POP3 downloads, and IMAP bodies fetched on demand."""

    __tablename__ = "message_bodies"

    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)


class MessageChange(db.Model):
    """A person's change to a message (read, flag, move), shown at once and written back by a job.

    Written only by :mod:`webapp.message_changes`.  ``pending``: the row already shows the change
    and the job has not answered; ``failed``: the job failed, the row was put back, ``error`` says
    why (a notice until dismissed); ``placed``: moved on the server, the row waits in the target
    folder under a placeholder UID until the target's next sync adopts it as ``new_uid``.
    ``folder_id``/``uid`` name the message on the server before the change.
    """

    __tablename__ = "message_changes"
    __table_args__ = (
        Index("ix_message_changes_folder_state", "folder_id", "state"),
        Index("ix_message_changes_target_state", "target_folder_id", "state"),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    uid: Mapped[int] = mapped_column(BigInteger)
    #: read, unread, flag, unflag or move (Move to Trash is a move to the Trash folder).
    action: Mapped[str] = mapped_column(String(16))
    target_folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    #: The message's flags as the server last had them: what a failure puts back.
    server_flags: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    new_uid: Mapped[int | None] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alias(db.Model):
    """An extra address a mailbox may send as."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("account_id", "address", name="uq_aliases_account_address"), AUTOINCREMENT)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: Lower-case address.
    address: Mapped[str] = mapped_column(String(320), index=True)
    display_name: Mapped[str] = mapped_column(String(320), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutgoingState(str, enum.Enum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: Its owner is disabled: kept, not sent (webapp/send_holds.py, docs/users.md).
    HELD = "held"


_OUT = OutgoingState
#: Every change of an outgoing message's state, and nothing else (``None``: a row being made).
#: Moving to the state a row is already in is not a change and always allowed.
OUTGOING_TRANSITIONS: dict[OutgoingState | None, frozenset[OutgoingState]] = {
    None: frozenset({_OUT.QUEUED, _OUT.SCHEDULED}),
    # Edited, re-scheduled or due now; picked up by its job; cancelled; its mailbox is gone;
    # its owner was disabled.
    _OUT.QUEUED: frozenset({_OUT.SCHEDULED, _OUT.SENDING, _OUT.CANCELLED, _OUT.FAILED, _OUT.HELD}),
    _OUT.SCHEDULED: frozenset({_OUT.QUEUED, _OUT.SENDING, _OUT.CANCELLED, _OUT.FAILED, _OUT.HELD}),
    # Its owner enabled again (its time still to come), or the owner sends, edits or cancels it.
    _OUT.HELD: frozenset({_OUT.SCHEDULED, _OUT.QUEUED, _OUT.CANCELLED}),
    # Done; failed for good; a transient failure before the server accepted it (retried).
    _OUT.SENDING: frozenset({_OUT.SENT, _OUT.FAILED, _OUT.QUEUED}),
    # Only an operator re-queueing its failed RQ job runs it again.
    _OUT.FAILED: frozenset({_OUT.SENDING}),
    _OUT.SENT: frozenset(),
    _OUT.CANCELLED: frozenset(),
}


class IllegalTransition(Exception):
    """An outgoing message was asked to change state along an edge :data:`OUTGOING_TRANSITIONS` lacks."""


class OutgoingMessage(db.Model):
    """A message a user sends through one of the mailboxes they may send from.

    ``message_id`` is made once, when the row is created, and ``smtp_accepted_at``
    is written as soon as the SMTP server accepted it: a retried job sees it and
    never sends twice, and the Sent copy carries the same Message-ID so the next
    sync recognises it.
    """

    __tablename__ = "outgoing_messages"
    # A client's Idempotency-Key is unique per user: the database decides between two
    # concurrent requests with the same key (webapp/send_queue.py).
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_outgoing_messages_user_idempotency_key"),
        AUTOINCREMENT,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"), index=True)
    from_addr: Mapped[str] = mapped_column(String(320))
    from_name: Mapped[str] = mapped_column(String(320), default="", server_default="")
    #: JSON lists of addresses.
    to_addrs: Mapped[str] = mapped_column(Text, default="[]")
    cc_addrs: Mapped[str] = mapped_column(Text, default="[]")
    bcc_addrs: Mapped[str] = mapped_column(Text, default="[]")
    subject: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references_header: Mapped[str | None] = mapped_column(Text)
    #: Extra headers as JSON (``Auto-Submitted`` for out-of-office replies, …).
    extra_headers: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    #: "compose", "api", "out_of_office", "filter".
    origin: Mapped[str] = mapped_column(String(32), default="compose", server_default="compose")
    state: Mapped[str] = mapped_column(String(16), default=OutgoingState.QUEUED.value, index=True)
    send_at: Mapped[datetime | None] = mapped_column(index=True)
    job_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    smtp_accepted_at: Mapped[datetime | None]
    sent_copy_saved_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(32))
    #: The API client's ``Idempotency-Key`` and the SHA-256 of the request body it came with.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    attachments: Mapped[list[OutgoingAttachment]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="OutgoingAttachment.id"
    )

    @property
    def state_enum(self) -> OutgoingState | None:
        return OutgoingState(self.state) if self.state else None

    def can_move_to(self, state: OutgoingState) -> bool:
        current = self.state_enum
        return state == current or state in OUTGOING_TRANSITIONS[current]

    def move_to(self, state: OutgoingState) -> None:
        """The one way an outgoing message changes state; an edge the table lacks raises."""
        if not self.can_move_to(state):
            raise IllegalTransition(f"An outgoing message cannot go from {self.state} to {state.value}.")
        self.state = state.value


class OutgoingAttachment(db.Model):
    __tablename__ = "outgoing_attachments"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    outgoing_id: Mapped[int] = mapped_column(
        ForeignKey("outgoing_messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    data: Mapped[bytes] = mapped_column(LargeBinary)


class OutOfOffice(db.Model):
    """A mailbox's automatic reply (RFC 3834): on/off, a date window, subject and body."""

    __tablename__ = "out_of_office"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    #: One reply per sender per this many days.
    interval_days: Mapped[int] = mapped_column(default=4, server_default="4")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutoReply(db.Model):
    """When a mailbox last replied automatically to a sender: one reply per sender per interval."""

    __tablename__ = "auto_replies"
    __table_args__ = (UniqueConstraint("account_id", "sender", name="uq_auto_replies_account_sender"), AUTOINCREMENT)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    sender: Mapped[str] = mapped_column(String(320))
    replied_at: Mapped[datetime] = mapped_column(default=utcnow)


class Filter(db.Model):
    """An ordered rule of a mailbox: conditions (any/all) and actions, run on new messages.

    ``conditions`` is JSON ``[{"field": "from"|"to"|"subject"|"header", "header": name?,
    "op": "contains"|"equals", "value": str}]``; ``actions`` is JSON ``[{"type": "move",
    "folder_id": id} | {"type": "mark_read"} | {"type": "flag"}]``.
    """

    __tablename__ = "filters"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    name: Mapped[str] = mapped_column(String(120), default="")
    match: Mapped[str] = mapped_column(String(8), default="all")
    conditions: Mapped[str] = mapped_column(Text, default="[]")
    actions: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthApp(db.Model):
    """The OAuth2 application an administrator registered at a provider, for one service.

    Built-in providers (Gmail, Microsoft 365) take their endpoints and scopes from
    their plugin; a corporate "Custom OAuth2" service stores its own URLs here.
    """

    __tablename__ = "oauth_apps"
    __table_args__ = AUTOINCREMENT

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), unique=True)
    client_id: Mapped[str] = mapped_column(String(512))
    client_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    #: Microsoft: common, organizations, consumers or a tenant id.
    tenant: Mapped[str | None] = mapped_column(String(255))
    #: Space-separated; empty means the plugin's default scopes.
    scopes: Mapped[str] = mapped_column(Text, default="")
    authorization_url: Mapped[str | None] = mapped_column(String(1024))
    token_url: Mapped[str | None] = mapped_column(String(1024))
    userinfo_url: Mapped[str | None] = mapped_column(String(1024))
    revocation_url: Mapped[str | None] = mapped_column(String(1024))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
