"""In Chromium: "Test connection" shows the job running, then the diagnosis, without reloading; the
connect form's "Other" section fills in the server settings found for the typed address.

A real ``mailroom worker`` (child process, same configuration) runs the jobs; the
mail servers are the real Dovecot and aiosmtpd fixtures, discovery asks a local
DNS server and a local HTTPS server.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.servers.net import free_ports
from tests.support.discovery_servers import Route, settle_discovery
from tests.test_discovery import ISP_PATH, ROOMY, config_xml

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser

GOOD = "secret-alice-pw"
GMAIL = "Gmail / Google Workspace"
JOB_MS = 60_000  # a job's result on a loaded machine: worker pick-up plus connection attempts (5 s timeout)


@pytest.fixture
def live(make_app, certs, pki, dns_server, https_server, tmp_path):
    """The app (CSRF on) on a free port, plus ``mailroom worker`` running its jobs until the test ends."""
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    settle_discovery()
    dns_server.reset()
    https_server.reset()
    (closed,) = free_ports(1)
    app = make_app(
        WTF_CSRF_ENABLED=True,
        MAIL_CA_FILE=str(certs.ca_cert),
        DISCOVERY_NAMESERVERS=["127.0.0.1"],
        DISCOVERY_DNS_PORT=dns_server.port,
        DISCOVERY_CA_FILE=str(pki.ca_file),
        DISCOVERY_HTTPS_PORT=https_server.port,
        DISCOVERY_TIMEOUTS=dict(ROOMY),  # the local servers answer at once, even under load
        DISCOVERY_CONNECT_TIMEOUT=10.0,
        DISCOVERY_PROBE_IMAP_PORTS=[[closed, "tls"]],
        DISCOVERY_PROBE_SMTP_PORTS=[[closed, "tls"]],
    )
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id}
        db.session.commit()
        db.session.remove()
    with serve(app, users, worker_dir=tmp_path) as live:
        yield live


def add_manual_mailbox(live, imap, smtp, password) -> int:
    from webapp import accounts
    from webapp.extensions import db
    from webapp.models import User

    with live.app.app_context():
        user = db.session.get(User, live.users["alice"]["id"])
        data = {
            "manual": {
                "imap": dict(zip(("host", "port", "security"), imap, strict=True)),
                "smtp": dict(zip(("host", "port", "security"), smtp, strict=True)),
            },
            "username": "alice",
            "password": password,
            "email": "alice@example.com",
        }
        account_id = accounts.create_account(user, accounts.clean_account(user, data)).id
        db.session.remove()
        return account_id


def watch(page, selector: str) -> None:
    """Record every text ``selector`` shows (window.__seen) and mark the page, to prove no reload."""
    page.evaluate(
        """(selector) => {
            window.__noReload = true;
            window.__seen = [];
            const target = document.querySelector(selector);
            new MutationObserver(() => {
                const now = document.querySelector(selector);
                window.__seen.push(now ? now.textContent : "");
            }).observe(target.closest("table") || document.body,
                       { childList: true, subtree: true, characterData: true });
        }""",
        selector,
    )


def seen(page) -> str:
    return "\n".join(page.evaluate("window.__seen"))


def test_wrong_password_then_fixed_shows_diagnosis_then_connected(live, page, dovecot, smtp_server):
    # SMTP with STARTTLS: the edit form's "Use TLS" box keeps it through the save below.
    account_id = add_manual_mailbox(
        live,
        ("127.0.0.1", dovecot.imaps_port, "tls"),
        ("127.0.0.1", smtp_server.starttls_port, "starttls"),
        "not-the-right-one",
    )
    login(page, live, "alice")
    row = page.locator(f"tbody[data-account-id='{account_id}']")
    expect(row.locator("[data-state]")).to_have_text("Not tested yet")
    watch(page, f"tbody[data-account-id='{account_id}'] .check-result")

    row.locator("[data-action=test]").click()

    row = page.locator(f"tbody[data-account-id='{account_id}']")
    imap = row.locator(".check-protocol[data-protocol=imap]")
    expect(imap.locator(".diagnosis")).to_have_attribute("data-error-class", "auth", timeout=JOB_MS)
    expect(imap.locator(".sentence")).to_have_text("Authentication failed due to incorrect credentials.")
    expect(imap.locator(".hint").first).to_contain_text("Check the login and password.")
    expect(imap.locator(".field-name")).to_have_text("Password")  # the form's label, not the field id
    expect(row.locator("[data-state]")).to_have_text("Authentication error")
    expect(row.locator(".check-protocol[data-protocol=smtp] .sentence")).to_contain_text(
        "incorrect credentials"
    )
    assert page.evaluate("window.__noReload") is True
    assert "Testing…" in seen(page)  # the running state was shown before the result
    shot(page, "connection-test-auth")

    page.click(f"tbody[data-account-id='{account_id}'] a:has-text('Edit')")
    page.fill("#password", GOOD)
    page.click("button[type=submit]:has-text('Save')")
    # A new password is tested at once on save (the list follows that test).
    expect(page).to_have_url(re.compile(r"/mailboxes/(\?testing=\d+&job=[^&]+)?$"))
    row = page.locator(f"tbody[data-account-id='{account_id}']")
    watch(page, f"tbody[data-account-id='{account_id}'] .check-result")
    row.locator("[data-action=test]").click()
    row = page.locator(f"tbody[data-account-id='{account_id}']")
    expect(row.locator("[data-state]")).to_have_text("Connected", timeout=JOB_MS)
    expect(row.locator(".check-protocol[data-protocol=imap]")).to_have_attribute("data-ok", "true")
    expect(row.locator(".check-protocol[data-protocol=smtp]")).to_have_attribute("data-ok", "true")
    expect(row.locator(".step.ok").first).to_contain_text(" ms")
    expect(row.locator(".diagnosis")).to_have_count(0)
    # The latest test's outcome, with its time; the failed test's error is gone from the row (it is in the log).
    expect(row.locator("span.error")).to_have_count(0)
    expect(row).to_contain_text("tested ")
    assert page.evaluate("window.__noReload") is True
    shot(page, "connection-test-connected")
    page.reload()
    row = page.locator(f"tbody[data-account-id='{account_id}']")
    expect(row.locator("[data-state]")).to_have_text("Connected")
    expect(row).not_to_contain_text("incorrect credentials")
    page.goto(live.url + "/mailboxes/log")
    expect(page.locator("body")).to_contain_text("IMAP connection test failed")


def test_tls_on_the_plain_port_is_explained(live, page, dovecot, smtp_server):
    account_id = add_manual_mailbox(
        live,
        ("127.0.0.1", dovecot.imap_port, "tls"),
        ("127.0.0.1", smtp_server.smtps_port, "tls"),
        GOOD,
    )
    login(page, live, "alice")
    watch(page, f"tbody[data-account-id='{account_id}'] .check-result")
    page.locator(f"tbody[data-account-id='{account_id}'] [data-action=test]").click()
    row = page.locator(f"tbody[data-account-id='{account_id}']")
    imap = row.locator(".check-protocol[data-protocol=imap]")
    expect(imap.locator(".diagnosis")).to_have_attribute("data-error-class", "tls", timeout=JOB_MS)
    expect(imap.locator(".sentence")).to_contain_text("this port does not use TLS from the first byte")
    expect(imap.locator(".hint").first).to_contain_text("Use TLS on ports 993, 995 and 465")
    expect(imap.locator(".field-name")).to_have_text("Connection protection")
    expect(imap.locator(".field-name")).to_have_attribute("data-field", "imap.security")
    expect(row.locator("[data-state]")).to_have_text("Connection error")
    assert "Testing…" in seen(page) and page.evaluate("window.__noReload") is True


@pytest.mark.parametrize(
    ("case", "error_class", "sentence", "hint", "field"),
    [
        ("closed_port", "refused", "refused", "check the port number", "IMAP server"),
        ("self_signed", "certificate", "self-signed", "valid certificate", "IMAP server"),
        ("expired", "certificate", "expired", "valid certificate", "IMAP server"),
        (
            "starttls_missing",
            "starttls_missing",
            "does not offer STARTTLS",
            "Mailroom never falls back",
            "Connection protection",
        ),
        ("logindisabled", "auth_method", "LOGINDISABLED", "only over TLS", "Connection protection"),
    ],
)
def test_each_failure_class_shows_its_sentence_and_hint(
    live, page, certs, dovecot_factory, smtp_server, case, error_class, sentence, hint, field
):
    if case == "closed_port":
        imap = ("127.0.0.1", free_ports(1)[0], "tls")
    elif case in ("self_signed", "expired"):
        imap = ("127.0.0.1", dovecot_factory(cert=getattr(certs, case)).imaps_port, "tls")
    elif case == "starttls_missing":
        imap = ("127.0.0.1", dovecot_factory(ssl=False).imap_port, "starttls")
    else:
        server = dovecot_factory(plaintext_auth=False)  # LOGINDISABLED on its plain port, on 127.0.0.2
        imap = (server.host, server.imap_port, "none")
        with live.app.app_context():
            from webapp import settings_store
            from webapp.extensions import db

            settings_store.update({"allowed_internal_hosts": ["127.0.0.1", "127.0.0.2"]})
            db.session.remove()
    account_id = add_manual_mailbox(live, imap, ("127.0.0.1", smtp_server.smtps_port, "tls"), GOOD)
    login(page, live, "alice")
    page.locator(f"tbody[data-account-id='{account_id}'] [data-action=test]").click()
    row = page.locator(f"tbody[data-account-id='{account_id}']")
    diagnosis = row.locator(".check-protocol[data-protocol=imap] .diagnosis")
    expect(diagnosis).to_have_attribute("data-error-class", error_class, timeout=JOB_MS)
    expect(diagnosis.locator(".sentence")).to_contain_text(sentence)
    expect(diagnosis).to_contain_text(hint)
    expect(diagnosis.locator(".field-name")).to_have_text(field)
    shot(page, f"connection-test-{case}")


def test_other_form_fills_in_the_settings_found(live, page, dns_server, https_server):
    dns_server.records["example.test"] = {"A": ["127.0.0.1"]}
    dns_server.records["autoconfig.example.test"] = {"A": ["127.0.0.1"]}
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(
        config_xml(imap=("imap.example.test", 993, "SSL"), smtp=("smtp.example.test", 587, "STARTTLS"))
    )
    login(page, live, "alice")
    page.goto(live.url + "/mailboxes/connect")
    page.select_option("#service", "other")
    page.evaluate(
        "window.__seen = []; new MutationObserver(() => window.__seen.push("
        "document.getElementById('discovery-status').textContent)).observe("
        "document.getElementById('discovery-status'), {childList: true, subtree: true})"
    )

    page.fill("#email", "ann@example.test")
    page.locator("#email").blur()

    status = page.locator("#discovery-status")
    expect(status.locator(".discovery-source")).to_have_attribute("data-source", "autoconfig", timeout=JOB_MS)
    expect(status).to_contain_text(
        "Found in the provider's autoconfig file at https://autoconfig.example.test/mail/config-v1.1.xml"
    )
    assert "Looking up settings…" in "\n".join(page.evaluate("window.__seen"))
    expect(page.locator("#imap_server")).to_have_value("imap.example.test:993")
    expect(page.locator("#imap_security")).to_have_value("tls")
    expect(page.locator("#smtp_server")).to_have_value("smtp.example.test:587")
    expect(page.locator("#smtp_use_tls")).to_be_checked()
    expect(page.locator("#username")).to_have_value("ann@example.test")
    shot(page, "discovery-autoconfig")

    # What the person typed is not replaced without asking.
    https_server.routes[("autoconfig.example.test", ISP_PATH)] = Route(
        config_xml(imap=("mail.example.test", 143, "STARTTLS"))
    )
    page.fill("#imap_server", "mine.example.test:993")
    page.click("#discover-button")
    conflict = status.locator(".discovery-conflict")
    expect(conflict).to_contain_text("You already typed the IMAP server", timeout=JOB_MS)
    expect(conflict).to_contain_text("mail.example.test:143 (STARTTLS)")
    expect(page.locator("#imap_server")).to_have_value("mine.example.test:993")
    conflict.locator("[data-action=use-suggestion]").click()
    expect(page.locator("#imap_server")).to_have_value("mail.example.test:143")
    expect(page.locator("#imap_security")).to_have_value("starttls")


def test_other_form_suggests_the_known_service(live, page):
    login(page, live, "alice")
    page.goto(live.url + "/mailboxes/connect")
    page.select_option("#service", "other")
    page.fill("#email", "mario@gmail.com")
    page.locator("#email").blur()
    status = page.locator("#discovery-status")
    expect(status).to_contain_text(f"gmail.com is served by {GMAIL}: choose {GMAIL} above.", timeout=JOB_MS)
    expect(page.locator("#imap_server")).to_have_value("")
    status.locator("[data-action=choose-service]").click()
    expect(page.locator("#service option:checked")).to_have_text(GMAIL)
    expect(page.locator("#manual-fields")).to_be_hidden()
    expect(page.locator("#service-hints")).to_contain_text("imap.gmail.com:993")


def test_other_form_says_when_nothing_is_found_and_refuses_a_bad_address(live, page):
    login(page, live, "alice")
    page.goto(live.url + "/mailboxes/connect")
    page.select_option("#service", "other")
    page.fill("#email", "ann@nowhere.test")
    page.click("#discover-button")
    status = page.locator("#discovery-status")
    expect(status.locator(".discovery-source")).to_have_text(
        "No settings found for nowhere.test: enter the server details by hand.", timeout=JOB_MS
    )
    expect(status.locator(".discovery-notes li").first).to_be_visible()
    page.fill("#email", "ann@localhost")
    page.click("#discover-button")
    expect(status.locator(".error")).to_contain_text("not a full domain name")


def test_a_removed_service_row_shows_no_ticks_and_saving_another_mailbox_names_it(
    live, page, dovecot, smtp_server
):
    """Issue 12 point 10: a removed-service row never shows the green ticks of its last test, and
    saving another mailbox shows that mailbox's message and the removed one's notice, each naming it."""
    from webapp import accounts, service_catalog
    from webapp.extensions import db
    from webapp.models import Service, User

    with live.app.app_context():
        service = service_catalog.create_service(
            service_catalog.clean_service(
                {
                    "name": "Corp to remove",
                    "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
                    "smtp": {"host": "127.0.0.1", "port": smtp_server.smtps_port, "security": "tls"},
                }
            )
        )
        user = db.session.get(User, live.users["alice"]["id"])
        data = {
            "service_id": service.id,
            "username": "alice",
            "email": "alice@corp.example",
            "password": GOOD,
        }
        corp_id = accounts.create_account(user, accounts.clean_account(user, data)).id
        service_id = service.id
        db.session.remove()
    other_id = add_manual_mailbox(
        live, ("127.0.0.1", dovecot.imaps_port, "tls"), ("127.0.0.1", smtp_server.smtps_port, "tls"), GOOD
    )
    login(page, live, "alice")
    corp = page.locator(f"tbody[data-account-id='{corp_id}']")
    corp.locator("[data-action=test]").click()
    expect(corp.locator("[data-state]")).to_have_text("Connected", timeout=JOB_MS)
    expect(corp.locator(".check-protocol[data-ok=true]")).to_have_count(2)

    with live.app.app_context():
        service_catalog.delete_service(db.session.get(Service, service_id))
        db.session.remove()
    page.reload()
    corp = page.locator(f"tbody[data-account-id='{corp_id}']")
    expect(corp.locator("[data-state]")).to_have_text("Service removed")
    expect(corp.locator(".check-protocol")).to_have_count(0)
    expect(corp).not_to_contain_text("✔")
    # Said by the notification and the state badge; not a third time in the row's error cell.
    expect(page.locator(".notification")).to_contain_text('"Corp to remove" was removed')
    expect(corp.locator(".last-error")).to_have_text("")
    shot(page, "removed-service-row")

    page.click(f"tbody[data-account-id='{other_id}'] a:has-text('Edit')")
    page.fill("#password", GOOD)
    page.click("button[type=submit]:has-text('Save')")
    # A new password is tested at once on save (the list follows that test).
    expect(page).to_have_url(re.compile(r"/mailboxes/(\?testing=\d+&job=[^&]+)?$"))
    flashes = page.locator(".flash")
    expect(flashes.filter(has_text="saved")).to_contain_text("Mailbox alice@example.com saved")
    for text in flashes.all_inner_texts():
        # Every message names the mailbox it is about.
        assert "alice@example.com" in text or "alice@corp.example" in text, text
    expect(page.locator(f"tbody[data-account-id='{other_id}'] span.error")).to_have_count(0)


def _connect_other(page, dovecot, smtp_server, password: str, login_name: str = "alice") -> None:
    """Fill the connect form through "Other" with the real Dovecot and SMTP server, and submit it."""
    page.click("#connect-mailbox")
    page.select_option("#service", "other")
    page.fill("#imap_server", f"127.0.0.1:{dovecot.imaps_port}")
    page.select_option("#imap_security", "tls")
    page.fill("#smtp_server", f"127.0.0.1:{smtp_server.starttls_port}")  # "Use TLS": STARTTLS here
    page.fill("#username", login_name)
    page.fill("#email", f"{login_name}@example.com")
    page.fill("#password", password)
    page.click("button[type=submit]:has-text('Connect')")


def record_check_results(page) -> None:
    """From the first byte of every page: record each text a row's test result shows (window.__seen)."""
    page.add_init_script(
        """window.__seen = [];
        new MutationObserver(() => {
            const now = document.querySelector("tbody.mailbox .check-result");
            if (now) window.__seen.push(now.textContent);
        }).observe(document, { childList: true, subtree: true, characterData: true });"""
    )


def test_connecting_runs_the_test_and_shows_its_steps_then_the_diagnosis(live, page, dovecot, smtp_server):
    """Point 14: the person only clicks Connect; the page they land on shows the test running, then its answer."""
    record_check_results(page)
    login(page, live, "alice")
    _connect_other(page, dovecot, smtp_server, "not-the-right-one")

    expect(page).to_have_url(re.compile(r"/mailboxes/\?testing=\d+&job="))
    row = page.locator("tbody.mailbox")
    imap = row.locator(".check-protocol[data-protocol=imap]")
    expect(imap.locator(".diagnosis")).to_have_attribute("data-error-class", "auth", timeout=JOB_MS)
    expect(imap.locator(".sentence")).to_have_text("Authentication failed due to incorrect credentials.")
    expect(imap.locator(".hint").first).to_contain_text("Check the login and password.")
    expect(imap.locator(".field-name")).to_have_text("Password")
    expect(imap.locator(".step").first).to_contain_text(" ms")  # the steps the test went through
    expect(row.locator("[data-state]")).to_have_text("Authentication error")
    assert "Testing…" in seen(page)  # the running test was shown before its answer
    shot(page, "connect-runs-test-auth")

    # The edit page keeps the diagnosis in plain view until a test passes.
    row.locator("a.edit-link").click()
    last = page.locator("#last-test")
    expect(last).to_contain_text("Not working yet")
    expect(last.locator(".check-protocol[data-protocol=imap] .field-name")).to_have_text("Password")

    # Another mailbox of the same server, with the right password: Connected, with nothing else done.
    page.goto(live.url + "/mailboxes/")
    _connect_other(page, dovecot, smtp_server, "secret-bob-pw", login_name="bob")
    expect(page).to_have_url(re.compile(r"/mailboxes/\?testing=\d+&job="))
    fresh = page.locator("tbody.mailbox").filter(has_text="bob@example.com")
    expect(fresh.locator("[data-state]")).to_have_text("Connected", timeout=JOB_MS)
    expect(fresh.locator(".check-protocol[data-ok=true]")).to_have_count(2)
    expect(fresh.locator(".diagnosis")).to_have_count(0)
    shot(page, "connect-runs-test-connected")
