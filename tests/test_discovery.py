"""Server-settings discovery end to end: local DNS, local HTTPS, real IMAP/SMTP servers on 127.0.0.1.

Each source is tried in order (presets by domain, by MX; autoconfig; SRV;
probing) against servers this module starts; nothing reaches the outside
network.  The address policy allows 127.0.0.1 explicitly, except in the tests
that check it refuses internal addresses.
"""

from __future__ import annotations

import json
import time

import pytest

from connectors import discovery, plugins
from connectors.addresses import AddressPolicy
from connectors.discovery import (
    AutoconfigError,
    DiscoveryContext,
    check_addresses,
    discover,
    discovery_sources,
    parse_autoconfig,
    run_discovery,
)
from connectors.plugins import hookimpl
from connectors.presets import DiscoveredSettings, Endpoint
from connectors.settings import Security
from tests.servers.dovecot import Dovecot, DovecotError
from tests.servers.net import free_ports
from tests.servers.smtp import SMTPServer
from tests.support.discovery_servers import Greeter, Route, settle_discovery

TLS, STARTTLS, NONE = Security.TLS, Security.STARTTLS, Security.NONE
ALLOW_LOOPBACK = AddressPolicy(allowed_networks=("127.0.0.1/32",))
#: Each source's timeout in the tests about timeouts: short, so that a silent server costs little.
TIMEOUTS = {"preset": 2.0, "mx": 1.0, "autoconfig": 1.5, "srv": 1.0, "probe": 2.5}
#: Each source's timeout where a source is to answer: the local servers answer at once, so a
#: ceiling this high costs nothing, and a TLS handshake slowed by a loaded machine (2 cores, load
#: 20-30) does not turn the answer a test expects into a timeout.
ROOMY = dict.fromkeys(TIMEOUTS, 30.0)
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
ISP_PATH = "/mail/config-v1.1.xml"


def config_xml(
    imap: tuple[str, int, str] | None = ("imap.example.test", 993, "SSL"),
    smtp: tuple[str, int, str] | None = ("smtp.example.test", 465, "SSL"),
    username: str = "%EMAILADDRESS%",
    before: str = "",
) -> bytes:
    servers = []
    if imap:
        servers.append(
            f'<incomingServer type="imap"><hostname>{imap[0]}</hostname><port>{imap[1]}</port>'
            f"<socketType>{imap[2]}</socketType><username>{username}</username>"
            "<authentication>password-cleartext</authentication></incomingServer>"
        )
    if smtp:
        servers.append(
            f'<outgoingServer type="smtp"><hostname>{smtp[0]}</hostname><port>{smtp[1]}</port>'
            f"<socketType>{smtp[2]}</socketType><username>{username}</username>"
            "<authentication>password-cleartext</authentication></outgoingServer>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{before}<clientConfig version="1.1">'
        '<emailProvider id="example.test"><domain>example.test</domain>'
        f"<displayName>Example Mail</displayName>{''.join(servers)}</emailProvider></clientConfig>"
    ).encode()


# --- servers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mail_servers(pki):
    """A real Dovecot and a real aiosmtpd server, certificates valid for *.probe.test."""
    try:
        dovecot = Dovecot(users={"ann": "ann-pw"}, cert=pki.pair).start()
    except DovecotError as exc:
        pytest.fail(f"real Dovecot needed: {exc}", pytrace=False)
    smtp = SMTPServer(cert=pki.pair, users={"ann": "ann-pw"}, plain=False).start()
    yield dovecot, smtp
    smtp.stop()
    dovecot.request_stop()  # exits on its own; tests.servers.dovecot reaps it at exit


@pytest.fixture(scope="module")
def closed_port():
    return free_ports(1)[0]


@pytest.fixture(autouse=True)
def fresh(dns_server, https_server):
    settle_discovery()
    dns_server.reset()
    https_server.reset()
    plugins.reset_plugin_manager()
    yield
    plugins.reset_plugin_manager()


@pytest.fixture
def context(dns_server, https_server, pki, closed_port):
    """A context pointing at the local servers, allowing 127.0.0.1; ``context(**changes)`` varies it."""

    def make(**changes):
        settings = dict(
            resolver=dns_server.resolver(),
            address_policy=ALLOW_LOOPBACK,
            timeouts=dict(ROOMY),
            https_port=https_server.port,
            ca_file=str(pki.ca_file),
            connect_timeout=10.0,
            probe_imap_ports=((closed_port, TLS),),
            probe_smtp_ports=((closed_port, TLS),),
        )
        settings.update(changes)
        return DiscoveryContext(**settings)

    return make


def a_records(dns_server, *names, ip="127.0.0.1"):
    for name in names:
        dns_server.records.setdefault(name, {})["A"] = [ip]


def outcomes(report):
    return [(a.source, a.outcome) for a in report.attempts]


# --- the address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email, message",
    [
        ("", "Enter an email address"),
        ("ann.example.test", "has no @"),
        ("@example.test", "nothing comes before the @"),
        ("ann@", "domain after the @ is missing"),
        ("ann smith@example.test", "characters not allowed"),
        ("ann@exa mple.test", "not a valid domain name"),
        ("ann@-bad-.test", "not a valid domain name"),
        ("ann@localhost", "not a full domain name"),
        ("ann@[127.0.0.1]", "not for an address like"),
        ("ann@127.0.0.1", "not for an IP address"),
        ("a" * 65 + "@example.test", "longer than 64"),
    ],
)
def test_a_bad_address_raises_value_error_with_a_clear_message(email, message, context):
    with pytest.raises(ValueError, match=message):
        discover(email, context())


def test_the_plugin_helper_answers_none_for_a_bad_address():
    assert discovery.discover_settings("not an address") is None


def test_an_international_domain_is_idna_encoded():
    assert discovery.validate_email(" Ann@Bücher.Example ") == (
        "Ann@bücher.example",
        "Ann",
        "xn--bcher-kva.example",
    )


# --- order --------------------------------------------------------------------------------


def test_sources_are_asked_preset_mx_autoconfig_srv_probe():
    assert [s.name for s in discovery_sources()] == ["preset", "mx", "autoconfig", "srv", "probe"]


def test_a_preset_domain_beats_mx_and_needs_no_network(context, dns_server):
    dns_server.records["gmail.com"] = {"MX": ["10 mx.pec.aruba.it."]}
    report = run_discovery("mario@gmail.com", context())
    assert report.result.source == "preset" and report.result.service_key == "gmail"
    assert report.result.imap == Endpoint("imap.gmail.com", 993, TLS)
    assert outcomes(report) == [("preset", "answer")]
    assert dns_server.queries == []


@pytest.mark.parametrize(
    "mx, key",
    [
        (["10 aspmx.l.google.com.", "20 alt1.aspmx.l.google.com."], "gmail"),
        (["0 contoso-test.mail.protection.outlook.com."], "office365"),
        (["5 mx.other.test.", "10 mx.pec.aruba.it."], "aruba_pec"),  # first MX unknown, next one known
    ],
)
def test_the_mx_host_picks_a_preset(mx, key, context, dns_server, https_server):
    dns_server.records["company.test"] = {"MX": mx}
    report = run_discovery("ann@company.test", context())
    found = report.result
    assert (found.source, found.service_key) == ("mx", key)
    assert found.imap == plugins.service_preset(key).imap and found.smtp == plugins.service_preset(key).smtp
    assert found.extra["mx"] in {m.split()[1].rstrip(".") for m in mx}
    assert outcomes(report) == [("preset", "nothing"), ("mx", "answer")]
    assert https_server.requests == []


def test_mx_beats_autoconfig(context, dns_server, https_server):
    dns_server.records["example.test"] = {"MX": ["10 aspmx.l.google.com."], "A": ["127.0.0.1"]}
    a_records(dns_server, "autoconfig.example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
    assert discover("ann@example.test", context()).source == "mx"
    assert https_server.requests == []


def test_autoconfig_from_the_isp_host_comes_first(context, dns_server, https_server):
    a_records(dns_server, "example.test", "autoconfig.example.test")
    dns_server.records["example.test"]["MX"] = ["10 mx.example.test."]  # a MX no preset knows
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(
        config_xml(username="%EMAILLOCALPART%")
    )
    https_server.routes[("example.test", WELL_KNOWN)] = Route(
        config_xml(imap=("other.example.test", 993, "SSL"))
    )
    report = run_discovery("ann@example.test", context())
    found = report.result
    assert found.source == "autoconfig"
    assert found.extra["url"] == (
        "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=ann%40example.test"
    )
    assert found.imap == Endpoint("imap.example.test", 993, TLS)
    assert found.smtp == Endpoint("smtp.example.test", 465, TLS)
    assert found.username_hint == "ann"
    assert found.extra["display_name"] == "Example Mail"
    assert found.extra["authentication"]["imap"] == ["password-cleartext"]
    assert ("autoconfig.example.test", f"{ISP_PATH}?emailaddress=ann%40example.test") in https_server.requests
    assert outcomes(report) == [("preset", "nothing"), ("mx", "nothing"), ("autoconfig", "answer")]
    assert "no preset matches the MX hosts mx.example.test" in report.attempts[1].detail


def test_autoconfig_falls_back_to_the_well_known_url(context, dns_server, https_server):
    a_records(dns_server, "example.test")  # no autoconfig.example.test at all
    https_server.routes[("example.test", WELL_KNOWN)] = Route(config_xml(username="%EMAILADDRESS%"))
    found = discover("ann@example.test", context())
    assert found.source == "autoconfig"
    assert found.extra["url"] == "https://example.test/.well-known/autoconfig/mail/config-v1.1.xml"
    assert found.username_hint == "ann@example.test"


def test_srv_answers_when_there_is_no_autoconfig(context, dns_server, https_server):
    a_records(dns_server, "srv.test", "autoconfig.srv.test")  # both URLs answer 404
    dns_server.records.update(
        {
            "_imaps._tcp.srv.test": {"SRV": ["0 0 0 ."]},  # implicit TLS not offered
            "_imap._tcp.srv.test": {
                "SRV": ["20 0 143 backup.srv.test.", "10 5 143 imap.srv.test.", "10 50 143 imap2.srv.test."]
            },
            "_submissions._tcp.srv.test": {"SRV": ["0 1 465 smtp.srv.test."]},
            "_submission._tcp.srv.test": {"SRV": ["0 1 587 other.srv.test."]},
            "_pop3s._tcp.srv.test": {"SRV": ["0 1 995 pop.srv.test."]},
        }
    )
    report = run_discovery("ann@srv.test", context())
    found = report.result
    assert found.source == "srv"
    assert found.imap == Endpoint("imap2.srv.test", 143, STARTTLS)  # lowest priority, then highest weight
    assert found.smtp == Endpoint("smtp.srv.test", 465, TLS)  # submissions preferred over submission
    assert found.pop3 == Endpoint("pop.srv.test", 995, TLS)
    assert found.extra["records"]["imap"] == "_imap._tcp.srv.test SRV 10 50 143 imap2.srv.test"
    assert found.username_hint == "ann@srv.test"
    assert [a.source for a in report.attempts] == ["preset", "mx", "autoconfig", "srv"]
    assert "HTTP 404" in report.attempts[2].detail
    # Only this domain's two autoconfig URLs were asked (a request an earlier test's discovery left
    # in flight may reach the shared server late: not counted).
    assert len([host for host, _ in https_server.requests if host.endswith("srv.test")]) == 2


def test_autoconfig_beats_srv(context, dns_server, https_server):
    a_records(dns_server, "autoconfig.srv.test")
    dns_server.records["_imaps._tcp.srv.test"] = {"SRV": ["0 1 993 imap.srv.test."]}
    https_server.routes[("autoconfig.srv.test", ISP_PATH)] = Route(config_xml())
    assert discover("ann@srv.test", context()).source == "autoconfig"


def test_probing_comes_last_and_finds_real_servers(context, dns_server, mail_servers):
    dovecot, smtp = mail_servers
    a_records(dns_server, "imap.probe.test", "smtp.probe.test")
    ctx = context(
        probe_imap_ports=((dovecot.imaps_port, TLS), (dovecot.imap_port, STARTTLS)),
        probe_smtp_ports=((smtp.smtps_port, TLS), (smtp.starttls_port, STARTTLS)),
    )
    report = run_discovery("ann@probe.test", ctx)
    found = report.result
    assert [a.source for a in report.attempts] == ["preset", "mx", "autoconfig", "srv", "probe"]
    assert found.source == "probe"
    assert found.imap == Endpoint("imap.probe.test", dovecot.imaps_port, TLS)
    assert found.smtp == Endpoint("smtp.probe.test", smtp.smtps_port, TLS)
    assert found.extra["verified"]["imap"] == f"imap.probe.test:{dovecot.imaps_port} tls"


def test_probing_uses_starttls_when_the_server_advertises_it(context, dns_server, mail_servers):
    dovecot, smtp = mail_servers
    a_records(dns_server, "mail.probe.test")  # no imap./smtp. names: mail.<domain> serves both
    ctx = context(
        probe_imap_ports=((dovecot.imap_port, STARTTLS),),
        probe_smtp_ports=((smtp.starttls_port, STARTTLS),),
    )
    found = discover("ann@probe.test", ctx)
    assert found.imap == Endpoint("mail.probe.test", dovecot.imap_port, STARTTLS)
    assert found.smtp == Endpoint("mail.probe.test", smtp.starttls_port, STARTTLS)


def test_probing_never_suggests_a_server_without_starttls(context, dns_server):
    imap, smtp = Greeter("imap").start(), Greeter("smtp").start()
    try:
        a_records(dns_server, "imap.probe.test", "smtp.probe.test")
        ctx = context(probe_imap_ports=((imap.port, STARTTLS),), probe_smtp_ports=((smtp.port, STARTTLS),))
        report = run_discovery("ann@probe.test", ctx)
    finally:
        imap.stop()
        smtp.stop()
    assert report.result is None
    assert imap.connections >= 1 and smtp.connections >= 1
    assert "IMAP without STARTTLS" in report.attempts[-1].detail


def test_probing_needs_a_certificate_valid_for_the_host(context, dns_server, mail_servers):
    dovecot, _ = mail_servers
    a_records(dns_server, "mail.badcert.test")  # the certificate names *.probe.test only
    ctx = context(probe_imap_ports=((dovecot.imaps_port, TLS),))
    report = run_discovery("ann@badcert.test", ctx)
    assert report.result is None
    assert "certificate of mail.badcert.test is not valid" in report.attempts[-1].detail


# --- what is ignored ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        Route(b"<clientConfig><emailProvider><incomingServer"),  # not well-formed
        Route(b"<html><body>Welcome</body></html>"),  # a web page, not autoconfig
        Route(config_xml(imap=None)),  # no incoming server
        Route(config_xml(before="<!DOCTYPE x [<!ENTITY a 'aaaa'>]>")),  # entities: refused
        Route(config_xml(before="<!--" + "x" * 300_000 + "-->")),  # larger than 256 KiB
        Route(config_xml(before="<!--" + "x" * 300_000 + "-->"), content_length=False),
        Route(b"", status=302, headers={"Location": "http://example.test/plain.xml"}),  # https -> http
    ],
    ids=[
        "malformed",
        "html",
        "no-incoming",
        "doctype",
        "oversized",
        "oversized-unannounced",
        "http-redirect",
    ],
)
def test_a_bad_first_document_is_ignored_and_the_next_url_answers(bad, context, dns_server, https_server):
    a_records(dns_server, "example.test", "autoconfig.example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = bad
    https_server.routes[("example.test", "/plain.xml")] = Route(
        config_xml(imap=("plain.example.test", 993, "SSL"))
    )
    https_server.routes[("example.test", WELL_KNOWN)] = Route(
        config_xml(imap=("wk.example.test", 993, "SSL"))
    )
    report = run_discovery("ann@example.test", context())
    assert report.result.source == "autoconfig"
    assert report.result.imap.host == "wk.example.test"
    assert report.attempts[-1].detail.startswith("From the domain's autoconfig file")


def test_malformed_autoconfig_everywhere_lets_srv_answer(context, dns_server, https_server):
    a_records(dns_server, "srv.test", "autoconfig.srv.test")
    dns_server.records["_imaps._tcp.srv.test"] = {"SRV": ["0 1 993 imap.srv.test."]}
    https_server.routes[("autoconfig.srv.test", ISP_PATH)] = Route(b"<clientConfig>")
    https_server.routes[("srv.test", WELL_KNOWN)] = Route(b"\x00\xff not xml")
    report = run_discovery("ann@srv.test", context())
    assert report.result.source == "srv" and report.result.smtp is None
    assert "not well-formed XML" in report.attempts[2].detail


def test_an_https_redirect_is_followed(context, dns_server, https_server):
    a_records(dns_server, "autoconfig.example.test", "example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(
        status=301, headers={"Location": "https://example.test/moved.xml"}
    )
    https_server.routes[("example.test", "/moved.xml")] = Route(
        config_xml(imap=("moved.example.test", 993, "SSL"))
    )
    found = discover("ann@example.test", context())
    assert found.imap.host == "moved.example.test"
    assert found.extra["url"] == "https://example.test/moved.xml"


def test_an_untrusted_certificate_is_not_believed(context, dns_server, https_server):
    a_records(dns_server, "autoconfig.example.test", "example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
    report = run_discovery("ann@example.test", context(ca_file=None))  # the test CA is not trusted
    assert report.result is None
    assert "certificate of autoconfig.example.test is not valid" in report.attempts[2].detail
    assert https_server.requests == []


def test_autoconfig_prefers_imap_and_encrypted_servers():
    document = b"""<clientConfig><emailProvider id="x">
      <incomingServer type="pop3"><hostname>pop.x.test</hostname><port>110</port><socketType>plain</socketType></incomingServer>
      <incomingServer type="pop3"><hostname>pop.x.test</hostname><port>995</port><socketType>SSL</socketType></incomingServer>
      <incomingServer type="imap"><hostname>%EMAILDOMAIN%</hostname><port>143</port><socketType>plain</socketType>
        <username>%EMAILLOCALPART%</username></incomingServer>
      <incomingServer type="imap"><hostname>imap.x.test</hostname><port>143</port><socketType>STARTTLS</socketType>
        <username>%REALNAME%</username><authentication>OAuth2</authentication></incomingServer>
      <incomingServer type="exchange"><hostname>ews.x.test</hostname><port>443</port><socketType>SSL</socketType></incomingServer>
      <incomingServer type="imap"><hostname>bad host</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
      <incomingServer type="imap"><hostname>imap.x.test</hostname><port>99999</port><socketType>SSL</socketType></incomingServer>
      <outgoingServer type="smtp"><hostname>smtp.x.test</hostname><port>25</port><socketType>plain</socketType></outgoingServer>
      <outgoingServer type="smtp"><hostname>smtp.x.test</hostname><port>587</port><socketType>STARTTLS</socketType>
        <username>%EMAILADDRESS%</username></outgoingServer>
    </emailProvider></clientConfig>"""
    doc = parse_autoconfig(document, "ann@x.test")
    assert [s.endpoint for s in doc.servers["imap"]] == [
        Endpoint("imap.x.test", 143, STARTTLS),
        Endpoint("x.test", 143, NONE),
    ]
    found = doc.to_settings(extra={"url": "https://x.test/"})
    assert found.imap == Endpoint("imap.x.test", 143, STARTTLS)
    assert found.pop3 == Endpoint("pop.x.test", 995, TLS)
    assert found.smtp == Endpoint("smtp.x.test", 587, STARTTLS)
    assert found.username_hint == "ann@x.test"  # %REALNAME% cannot be filled in: the SMTP one is used
    assert found.extra["authentication"]["imap"] == ["OAuth2"]


@pytest.mark.parametrize(
    "data",
    [b"<notConfig/>", b"<clientConfig/>", b'<!DOCTYPE c SYSTEM "http://x/"><clientConfig/>', b"x" * 300_000],
)
def test_unusable_autoconfig_documents_are_refused(data):
    with pytest.raises(AutoconfigError):
        parse_autoconfig(data, "ann@x.test")


# --- timeouts ----------------------------------------------------------------------------


def test_a_dns_server_that_never_answers_mx_costs_only_the_mx_timeout(context, dns_server, https_server):
    a_records(dns_server, "autoconfig.example.test")
    dns_server.silent_types = {"MX"}
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
    report = run_discovery("ann@example.test", context(timeouts={**ROOMY, "mx": TIMEOUTS["mx"]}))
    mx = report.attempts[1]
    assert (mx.source, mx.outcome) == ("mx", "nothing")
    assert "timed out" in mx.detail
    assert TIMEOUTS["mx"] * 0.8 <= mx.seconds < TIMEOUTS["mx"] + 0.5
    assert report.result.source == "autoconfig"


def test_a_silent_dns_server_makes_every_source_give_up_in_its_own_time(context, dns_server):
    dns_server.silent = True
    started = time.monotonic()
    report = run_discovery("ann@example.test", context(timeouts=dict(TIMEOUTS)))
    elapsed = time.monotonic() - started
    assert report.result is None
    assert [a.source for a in report.attempts] == ["preset", "mx", "autoconfig", "srv", "probe"]
    for attempt in report.attempts[1:]:
        assert attempt.outcome == "nothing", attempt
        assert attempt.seconds < TIMEOUTS[attempt.source] + 0.5, attempt
    assert elapsed < sum(TIMEOUTS.values())


def test_a_hanging_first_url_leaves_time_for_the_well_known_one(context, dns_server, https_server):
    a_records(dns_server, "autoconfig.example.test", "example.test")
    budget = 4.0  # autoconfig's timeout: shorter than the hang, room for the other fetch under load
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml(), delay=2 * budget)
    https_server.routes[("example.test", WELL_KNOWN)] = Route(
        config_xml(imap=("wk.example.test", 993, "SSL"))
    )
    report = run_discovery("ann@example.test", context(timeouts={**ROOMY, "autoconfig": budget}))
    assert report.result.imap.host == "wk.example.test"
    assert report.attempts[2].seconds < budget + 0.5


class SlowPlugin:
    DISCOVERY_SOURCE = "slow"

    @hookimpl(tryfirst=True)
    def mailroom_discover_settings(self, timeout):
        time.sleep(timeout + 3)  # ignores its timeout
        return DiscoveredSettings(imap=Endpoint("late.test", 993, TLS), smtp=None, source="slow")


class BrokenPlugin:
    @hookimpl(tryfirst=True)
    def mailroom_discover_settings(self, domain):
        raise RuntimeError(f"cannot handle {domain}")


def test_a_plugin_that_overruns_or_raises_is_skipped(context, monkeypatch):
    monkeypatch.setattr(discovery, "GRACE", 0.2)
    pm = plugins.get_plugin_manager()
    pm.register(SlowPlugin(), name="slow")
    pm.register(BrokenPlugin(), name="broken")
    started = time.monotonic()
    report = run_discovery("ann@gmail.com", context(timeouts={**TIMEOUTS, "slow": 0.3}))
    assert time.monotonic() - started < 1.5
    assert outcomes(report) == [("broken", "error"), ("slow", "timeout"), ("preset", "answer")]
    assert "cannot handle gmail.com" in report.attempts[0].detail


# --- the address guard -----------------------------------------------------------------


def test_internal_addresses_are_refused_without_an_allowance(context, dns_server, https_server):
    imap = Greeter("imap").start()
    try:
        a_records(dns_server, "autoconfig.example.test", "example.test", "imap.example.test")
        https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
        https_server.routes[("example.test", WELL_KNOWN)] = Route(config_xml())
        ctx = context(address_policy=AddressPolicy(), probe_imap_ports=((imap.port, STARTTLS),))
        report = run_discovery("ann@example.test", ctx)
    finally:
        imap.stop()
    assert report.result is None
    assert https_server.requests == [] and imap.connections == 0
    assert "autoconfig.example.test resolves to 127.0.0.1, a loopback address" in report.attempts[2].detail
    assert "imap.example.test resolves to 127.0.0.1, a loopback address" in report.attempts[4].detail


def test_a_private_address_is_refused_and_an_allowed_host_passes(context, dns_server, https_server):
    a_records(dns_server, "autoconfig.example.test", ip="10.20.30.40")
    report = run_discovery("ann@example.test", context(disabled_sources={"probe"}))
    assert "10.20.30.40, a private address" in report.attempts[2].detail
    a_records(dns_server, "autoconfig.example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
    allowed = AddressPolicy(allowed_hosts=(".example.test",))
    assert discover("ann@example.test", context(address_policy=allowed)).source == "autoconfig"


def test_a_name_with_one_internal_address_is_refused_as_a_whole(context):
    import ipaddress

    addresses = [
        ipaddress.ip_address("192.0.2.10"),
        ipaddress.ip_address("8.8.8.8"),
        ipaddress.ip_address("::1"),
    ]
    with pytest.raises(discovery.AddressRefused, match="192.0.2.10"):
        check_addresses(DiscoveryContext(), "mixed.example.test", addresses)
    with pytest.raises(discovery.AddressRefused, match="::1, a loopback"):
        check_addresses(DiscoveryContext(), "mixed.example.test", addresses[1:])
    check_addresses(DiscoveryContext(), "public.example.test", addresses[1:2])


# --- the report --------------------------------------------------------------------------


def test_the_report_is_json_and_says_where_the_answer_came_from(context, dns_server):
    dns_server.records["company.test"] = {"MX": ["10 aspmx.l.google.com."]}
    report = run_discovery("ann@company.test", context())
    data = json.loads(json.dumps(report.as_dict()))
    assert data["result"] == {
        "imap": {"host": "imap.gmail.com", "port": 993, "security": "tls"},
        "smtp": {"host": "smtp.gmail.com", "port": 465, "security": "tls"},
        "pop3": {"host": "pop.gmail.com", "port": 995, "security": "tls"},
        "source": "mx",
        "username_hint": "ann@company.test",
        "service_key": "gmail",
        "extra": {"mx": "aspmx.l.google.com"},
    }
    assert (
        data["description"]
        == "The domain's mail is handled by aspmx.l.google.com (Gmail / Google Workspace)."
    )
    assert [a["source"] for a in data["attempts"]] == ["preset", "mx"]


def test_run_all_sources_without_stopping(context, dns_server, https_server):
    dns_server.records["example.test"] = {"MX": ["10 aspmx.l.google.com."]}
    a_records(dns_server, "autoconfig.example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
    report = run_discovery("ann@example.test", context(disabled_sources={"probe"}), stop_at_first=False)
    assert [a.source for a in report.answers] == ["mx", "autoconfig"]
    assert report.result.source == "mx"
    assert outcomes(report)[-1] == ("probe", "skipped")


def test_an_offline_context_asks_only_the_presets(dns_server):
    report = run_discovery("ann@example.test", DiscoveryContext.offline(resolver=dns_server.resolver()))
    assert report.result is None and dns_server.queries == []
    assert [a.outcome for a in report.attempts] == ["nothing", "skipped", "skipped", "skipped", "skipped"]


def test_timeouts_given_for_some_sources_keep_the_defaults_for_the_others():
    ctx = DiscoveryContext(timeouts={"probe": 1.5, "corpdir": 3})
    assert ctx.timeout_for("probe") == 1.5 and ctx.timeout_for("corpdir") == 3
    assert ctx.timeout_for("mx") == discovery.DEFAULT_TIMEOUTS["mx"]
    assert ctx.timeout_for("unknown") == ctx.default_timeout
