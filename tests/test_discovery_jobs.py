"""Discovery in the app: ``POST /api/v1/discover`` and the connect form's route → RQ job on a real
worker → local DNS, local HTTPS and real mail servers → the suggestion the form shows.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import Api, login
from tests.servers.net import free_ports
from tests.support.discovery_servers import Route, settle_discovery
from tests.support.job_worker import run_burst
from tests.test_discovery import ISP_PATH, ROOMY, WELL_KNOWN, config_xml

GMAIL = "Gmail / Google Workspace"


@pytest.fixture
def discovery_config(dns_server, https_server, pki):
    """App configuration pointing discovery at the local servers (probes at a closed port).

    Every source is to answer or give up at once here: roomy timeouts cost nothing, and keep a
    loaded machine's slow TLS handshake from turning an expected answer into a timeout."""
    settle_discovery()
    dns_server.reset()
    https_server.reset()
    (closed,) = free_ports(1)
    return {
        "DISCOVERY_NAMESERVERS": ["127.0.0.1"],
        "DISCOVERY_DNS_PORT": dns_server.port,
        "DISCOVERY_CA_FILE": str(pki.ca_file),
        "DISCOVERY_HTTPS_PORT": https_server.port,
        "DISCOVERY_TIMEOUTS": dict(ROOMY),
        "DISCOVERY_CONNECT_TIMEOUT": 10.0,
        "DISCOVERY_PROBE_IMAP_PORTS": [[closed, "tls"]],
        "DISCOVERY_PROBE_SMTP_PORTS": [[closed, "tls"]],
    }


def build(make_app, config: dict):
    from webapp import settings_store
    from webapp.api_tokens import issue_token
    from webapp.extensions import db
    from webapp.users import create_user

    app = make_app(**config)
    ctx = app.app_context()
    ctx.push()
    settings_store.update({"allowed_internal_hosts": ["127.0.0.1"]})
    client = app.test_client()
    apis = {}
    for name in ("alice", "bob"):
        apis[name] = Api(client, issue_token(create_user(name, f"{name}-console-pw")))
    db.session.commit()
    return app, ctx, apis


@pytest.fixture
def env(make_app, discovery_config):
    """``env(**extra_config)`` → (app, {"alice": Api, "bob": Api}); the app context stays pushed."""
    pushed = []

    def make(**extra):
        app, ctx, apis = build(make_app, {**discovery_config, **extra})
        pushed.append(ctx)
        return app, apis

    yield make
    from webapp.extensions import db

    for ctx in reversed(pushed):
        db.session.remove()
        ctx.pop()


def discover(app, api: Api, email: str) -> dict:
    started = api.post("/api/v1/discover", json={"email": email})
    assert started.status_code == 202, started.get_json()
    body = started.get_json()
    assert set(body) == {"job_id", "status_url"} and started.headers["Location"].endswith(body["status_url"])
    run_burst(app)
    status = api.get(body["status_url"]).get_json()
    assert status["status"] == "finished" and status["kind"] == "discovery", status
    return status["result"]


def a_records(dns_server, *names):
    for name in names:
        dns_server.records.setdefault(name, {})["A"] = ["127.0.0.1"]


# --- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"email": "not-an-address"}, "email", "has no @"),
        ({"email": "ann@localhost"}, "email", "not a full domain name"),
        ({"email": ""}, "email", "Enter an email address"),
        ({"email": 42}, "email", "Enter an email address"),
        ({}, "email", "Enter an email address"),
        ({"email": "ann@example.test", "password": "x"}, "password", "unknown field"),
    ],
)
def test_a_bad_request_is_422_naming_the_field(env, body, field, words):
    from webapp.queue import get_redis

    _, apis = env()
    response = apis["alice"].post("/api/v1/discover", json=body)
    assert response.status_code == 422
    assert words in response.get_json()["fields"][field]
    assert not list(get_redis().scan_iter("mailroom:discovery-request:*"))  # nothing stored, nothing queued
    assert not list(get_redis().scan_iter("rq:job:*"))


def test_discover_needs_a_token(env):
    app, _ = env()
    assert app.test_client().post("/api/v1/discover", json={"email": "a@b.test"}).status_code == 401


# --- the sources, through the job -----------------------------------------------------------------


def test_a_preset_domain_suggests_the_service(env, dns_server):
    app, apis = env()
    result = discover(app, apis["alice"], "mario@gmail.com")
    assert result["source"] == "preset" and result["service_key"] == "gmail"
    assert result["imap"] == {"host": "imap.gmail.com", "port": 993, "security": "tls"}
    assert result["service"]["name"] == GMAIL and isinstance(result["service"]["id"], int)
    assert result["description"] == f"gmail.com is served by {GMAIL}: choose {GMAIL} above."
    assert dns_server.queries == []


def test_the_mx_host_suggests_the_service(env, dns_server, https_server):
    app, apis = env()
    dns_server.records["company.test"] = {"MX": ["10 aspmx.l.google.com."]}
    result = discover(app, apis["alice"], "ann@company.test")
    assert result["source"] == "mx" and result["service"]["name"] == GMAIL
    assert result["description"].startswith(f"company.test is served by {GMAIL}")
    assert "aspmx.l.google.com" in result["description"]
    assert https_server.requests == []


def test_autoconfig_fills_servers_and_says_where_from(env, dns_server, https_server):
    app, apis = env()
    a_records(dns_server, "example.test", "autoconfig.example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(
        config_xml(username="%EMAILLOCALPART%")
    )
    result = discover(app, apis["alice"], "ann@example.test")
    assert result["source"] == "autoconfig"
    assert result["imap"] == {"host": "imap.example.test", "port": 993, "security": "tls"}
    assert result["smtp"] == {"host": "smtp.example.test", "port": 465, "security": "tls"}
    assert result["username"] == "ann"
    url = "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=ann%40example.test"
    assert result["description"] == f"Found in the provider's autoconfig file at {url}."
    assert [a["source"] for a in result["attempts"]] == ["preset", "mx", "autoconfig"]


def test_the_well_known_autoconfig_url(env, dns_server, https_server):
    app, apis = env()
    a_records(dns_server, "example.test")
    https_server.routes[("example.test", WELL_KNOWN)] = Route(config_xml())
    result = discover(app, apis["alice"], "ann@example.test")
    assert result["source"] == "autoconfig" and WELL_KNOWN in result["description"]
    assert result["username"] == "ann@example.test"


def test_srv_records(env, dns_server):
    app, apis = env()
    dns_server.records.update(
        {
            "_imaps._tcp.srv.test": {"SRV": ["0 1 993 imap.srv.test."]},
            "_submissions._tcp.srv.test": {"SRV": ["0 1 465 smtp.srv.test."]},
        }
    )
    result = discover(app, apis["alice"], "ann@srv.test")
    assert result["source"] == "srv"
    assert result["imap"] == {"host": "imap.srv.test", "port": 993, "security": "tls"}
    assert result["description"].startswith("From DNS SRV records (_imaps._tcp.srv.test")


def test_probing_real_servers(make_app, discovery_config, dns_server, pki, dovecot_factory, smtp_factory):
    dovecot = dovecot_factory(cert=pki.pair)
    smtp = smtp_factory(cert=pki.pair)
    a_records(dns_server, "imap.probe.test", "smtp.probe.test")
    config = {
        **discovery_config,
        "DISCOVERY_PROBE_IMAP_PORTS": [[dovecot.imaps_port, "tls"]],
        "DISCOVERY_PROBE_SMTP_PORTS": [[smtp.smtps_port, "tls"]],
    }
    app, ctx, apis = build(make_app, config)
    try:
        result = discover(app, apis["alice"], "ann@probe.test")
    finally:
        ctx.pop()
    assert result["source"] == "probe"
    assert result["imap"] == {"host": "imap.probe.test", "port": dovecot.imaps_port, "security": "tls"}
    assert result["description"].startswith("Guessed by connecting to imap.probe.test:")


def test_nothing_found_says_why(env, dns_server):
    app, apis = env()
    result = discover(app, apis["alice"], "ann@nowhere.test")
    assert result["source"] is None and result["imap"] is None and result["smtp"] is None
    assert result["description"].startswith("No settings found for nowhere.test")
    assert result["notes"] and all(isinstance(n, str) for n in result["notes"])
    assert {a["source"] for a in result["attempts"]} == {"preset", "mx", "autoconfig", "srv", "probe"}


def test_an_internal_address_not_allowed_is_not_fetched(env, dns_server, https_server):
    from webapp import settings_store

    app, apis = env()
    settings_store.update({"allowed_internal_hosts": []})
    a_records(dns_server, "example.test", "autoconfig.example.test")
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(config_xml())
    result = discover(app, apis["alice"], "ann@example.test")
    assert result["source"] is None
    assert https_server.requests == []
    assert any("127.0.0.1" in note for note in result["notes"]), result["notes"]


# --- keys, not data, in the job; ownership ----------------------------------------------------------


def test_the_job_gets_a_key_and_the_address_is_read_once(env, dns_server):
    from rq.job import Job

    from webapp.queue import get_redis

    app, apis = env()
    started = apis["alice"].post("/api/v1/discover", json={"email": "ann@gmail.com"}).get_json()
    job = Job.fetch(started["job_id"], connection=get_redis())
    (key,) = job.args
    assert key.startswith("mailroom:discovery-request:") and "gmail" not in json.dumps([job.args, job.kwargs])
    assert get_redis().get(key) == b"ann@gmail.com"
    assert apis["bob"].get(started["status_url"]).status_code == 404
    run_burst(app)
    assert get_redis().get(key) is None
    assert apis["bob"].get(started["status_url"]).status_code == 404
    assert apis["alice"].get(started["status_url"]).get_json()["result"]["source"] == "preset"


def test_the_connect_form_route_starts_the_same_job(env):
    app, _ = env()
    client = app.test_client()
    login(client, "alice", "alice-console-pw")
    bad = client.post("/mailboxes/discover", json={"email": "nope"})
    assert bad.status_code == 422 and "email" in bad.get_json()["fields"]
    started = client.post("/mailboxes/discover", json={"email": "ann@gmail.com"})
    assert started.status_code == 202
    status_url = started.get_json()["status_url"]
    assert status_url.startswith("/mailboxes/jobs/")
    run_burst(app)
    body = client.get(status_url).get_json()
    assert body["status"] == "finished" and body["result"]["service"]["name"] == GMAIL
    from flask import g

    g.pop("_login_user", None)  # the pushed app context would carry the signed-in user over
    anonymous = app.test_client().post("/mailboxes/discover", json={"email": "a@gmail.com"})
    assert anonymous.status_code in (302, 401)
