"""pytest plugin: real mail servers for the whole suite.

Load with ``pytest_plugins = ["tests.servers.fixtures"]`` (or ``-p tests.servers.fixtures``).
A missing Dovecot fails the tests that need it instead of skipping them, so the
suite cannot pass without real servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .certs import CertSet, make_cert_set
from .dovecot import DEFAULT_USERS, Dovecot, DovecotError, stop_all
from .oauth_server import OAuthServer
from .smtp import SMTPServer

#: Mail users of the OAuth2 servers: the e-mail address the token names, with a password too
#: (PLAIN/LOGIN keep working beside XOAUTH2/OAUTHBEARER).
OAUTH_USERS = {"alice@example.test": "secret-alice-oauth-pw", "bob@example.test": "secret-bob-oauth-pw"}


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    """Test CA plus ``valid``, ``expired``, ``wrong_host`` and ``self_signed`` certificate pairs."""
    return make_cert_set(tmp_path_factory.mktemp("certs"))


def _start_dovecot(**kwargs: Any) -> Dovecot:
    # A second try: the ports were free when picked, but another process (a parallel xdist
    # worker's server) may have taken one before Dovecot bound it.
    for _ in range(2):
        try:
            return Dovecot(**kwargs).start()
        except DovecotError as exc:
            error = str(exc)
            if "not found" in error:
                break
    pytest.fail(f"real Dovecot needed: {error}", pytrace=False)


@pytest.fixture(scope="session")
def _dovecot_reaper() -> Iterator[list[Dovecot]]:
    """Dovecots asked to stop; waited for together at session end (each takes about 1 s to exit)."""
    stopping: list[Dovecot] = []
    yield stopping
    stop_all(stopping)


def _retire(servers: list[Dovecot], reaper: list[Dovecot]) -> None:
    for server in servers:
        server.request_stop()
    reaper.extend(servers)


@pytest.fixture(scope="session")
def dovecot(certs: CertSet, _dovecot_reaper: list[Dovecot]) -> Iterator[Dovecot]:
    """One Dovecot for the session: valid certificate, users alice and bob, plaintext LOGIN allowed."""
    server = _start_dovecot(users=DEFAULT_USERS, cert=certs.valid)
    yield server
    _retire([server], _dovecot_reaper)


@pytest.fixture
def clean_dovecot(dovecot: Dovecot) -> Dovecot:
    """The session Dovecot with every user's Maildir emptied before the test."""
    for user in dovecot.users:
        dovecot.reset_user(user)
    return dovecot


@pytest.fixture
def dovecot_factory(certs: CertSet, _dovecot_reaper: list[Dovecot]) -> Iterator[Callable[..., Dovecot]]:
    """Start extra Dovecots for one test, e.g. ``dovecot_factory(plaintext_auth=False)``,
    ``dovecot_factory(ssl=False)`` or ``dovecot_factory(cert=certs.expired)``; stopped afterwards."""
    started: list[Dovecot] = []

    def make(**kwargs: Any) -> Dovecot:
        if kwargs.get("ssl", True):
            kwargs.setdefault("cert", certs.valid)
        started.append(_start_dovecot(**kwargs))
        return started[-1]

    yield make
    _retire(started, _dovecot_reaper)


@pytest.fixture(scope="session")
def smtp_server(certs: CertSet) -> Iterator[SMTPServer]:
    """One SMTP server for the session: valid certificate, users alice and bob; see ``messages``."""
    server = SMTPServer(cert=certs.valid).start()
    yield server
    server.stop()


@pytest.fixture
def clean_smtp_server(smtp_server: SMTPServer) -> SMTPServer:
    """The session SMTP server with no messages recorded yet."""
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def smtp_factory(certs: CertSet) -> Iterator[Callable[..., SMTPServer]]:
    """Start extra SMTP servers for one test, e.g. ``smtp_factory(cert=certs.wrong_host)``."""
    started: list[SMTPServer] = []

    def make(**kwargs: Any) -> SMTPServer:
        kwargs.setdefault("cert", certs.valid)
        started.append(SMTPServer(**kwargs).start())
        return started[-1]

    yield make
    for server in started:
        server.stop()


# -- OAuth2: one authorization server, Dovecot and SMTP checking tokens against it ---------------


@pytest.fixture(scope="session")
def oauth_server_session() -> Iterator[OAuthServer]:
    """The session's OAuth2 authorization server (prefer ``oauth_server``, which resets it)."""
    server = OAuthServer(users=OAUTH_USERS).start()
    yield server
    server.stop()


@pytest.fixture
def oauth_server(oauth_server_session: OAuthServer) -> OAuthServer:
    """The session's OAuth2 server reset for this test: no tokens, counters zero, failing off,
    1-hour access tokens.  See tests/servers/oauth_server.py and docs/testing-oauth.md."""
    oauth_server_session.reset()
    return oauth_server_session


@pytest.fixture(scope="session")
def oauth_dovecot(
    certs: CertSet, oauth_server_session: OAuthServer, _dovecot_reaper: list[Dovecot]
) -> Iterator[Dovecot]:
    """A session Dovecot whose ``oauth2`` passdb checks XOAUTH2/OAUTHBEARER tokens at the OAuth
    server's introspection endpoint; users ``alice@example.test`` and ``bob@example.test``."""
    server = _start_dovecot(
        users=OAUTH_USERS, cert=certs.valid, oauth2_introspection_url=oauth_server_session.introspection_url
    )
    yield server
    _retire([server], _dovecot_reaper)


@pytest.fixture
def clean_oauth_dovecot(oauth_dovecot: Dovecot) -> Dovecot:
    """``oauth_dovecot`` with every user's Maildir emptied before the test."""
    for user in oauth_dovecot.users:
        oauth_dovecot.reset_user(user)
    return oauth_dovecot


@pytest.fixture(scope="session")
def oauth_smtp_server(certs: CertSet, oauth_server_session: OAuthServer) -> Iterator[SMTPServer]:
    """A session SMTP server taking XOAUTH2/OAUTHBEARER checked at the OAuth server (and the
    ``OAUTH_USERS`` passwords); ``clear()`` it, or use ``clean_oauth_smtp_server``."""
    server = SMTPServer(
        cert=certs.valid, users=OAUTH_USERS, oauth2_introspection_url=oauth_server_session.introspection_url
    ).start()
    yield server
    server.stop()


@pytest.fixture
def clean_oauth_smtp_server(oauth_smtp_server: SMTPServer) -> SMTPServer:
    """``oauth_smtp_server`` with no messages or OAuth2 login attempts recorded yet."""
    oauth_smtp_server.clear()
    return oauth_smtp_server
