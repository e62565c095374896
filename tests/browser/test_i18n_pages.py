"""In Chromium, Mailroom in Italian and in Polish: an administrator whose console language is set
and a user who picks hers on My profile walk the connect form, a failed connection test (its
diagnosis sentence and hint translated by the page, from the English the job stored), the Email
Service Settings (add, hide, delete with the affected-users page, and the notification the owner
reads) and the message list with its dates and plural forms.

The connection test is a real job on the real queue, worked by an RQ worker in the test process
(``run_burst``, no worker process to start), against the real Dovecot.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import expect

from tests.i18n_catalogues import compile_catalogues
from tests.servers.net import free_ports
from tests.support.job_worker import run_burst

from .conftest import USERS, login, serve, shot

pytestmark = pytest.mark.browser

TEXT = {
    "it": {
        "language": "Italiano",
        "profile_saved": "Lingua e ora salvate.",
        "mailboxes": "Caselle di posta",
        "connect": "Collega una casella di posta",
        "service_label": "Servizio di posta",
        "imap_label": "Server IMAP",
        "incoming": "Configurazione posta in entrata (IMAP)",
        "settings": "Impostazioni dei servizi email",
        "add": "Aggiungi server aziendale",
        "save": "Salva",
        "added": 'Server aziendale "Studio Rossi PEC" aggiunto.',
        "hidden": '"Studio Rossi PEC" ora è nascosto nel modulo di collegamento.',
        "hidden_badge": "nascosto",
        "count_1": "1 casella di posta",
        "delete_heading": "Eliminare “Studio Rossi PEC”?",
        "deleted": '"Studio Rossi PEC" eliminato; 1 casella di posta ha perso il servizio',
        "removed_note": 'il servizio di posta "Studio Rossi PEC" è stato rimosso da un amministratore',
        "test": "Verifica connessione",
        "testing": "Verifica in corso…",
        "queued": "in coda",
        "sentence": "Autenticazione non riuscita: credenziali errate.",
        "hint": "Controlla nome utente e password.",
        "field_label": "Campo da correggere:",
        "field": "Password",
        "state": "Errore di autenticazione",
        "inbox": "Posta in arrivo",
        "messages": "Messaggi",
        "threads": "Conversazioni",
        "two": "2 messaggi",
        "date": "1 mar 2026",
        "search": "Cerca",
        "found": "gmail.com è servito da Gmail / Google Workspace: scegli Gmail / Google Workspace qui sopra.",
        "log_imap": "Test di connessione IMAP non riuscito: Autenticazione non riuscita: credenziali errate.",
        "log_source": "Autenticazione IMAP",
    },
    "pl": {
        "language": "Polski",
        "profile_saved": "Zapisano język i czas.",
        "mailboxes": "Moje konta pocztowe",
        "connect": "Podłącz konto pocztowe",
        "service_label": "Usługa pocztowa",
        "imap_label": "Serwer IMAP",
        "incoming": "Poczta przychodząca (IMAP)",
        "settings": "Konfiguracja Email",
        "add": "Dodaj serwer firmowy",
        "save": "Zapisz",
        "added": "Dodano serwer firmowy „Studio Rossi PEC”.",
        "hidden": "Usługa „Studio Rossi PEC” jest teraz ukryta w formularzu podłączania.",
        "hidden_badge": "ukryta",
        "count_1": "1 skrzynka",
        "delete_heading": "Usunąć „Studio Rossi PEC”?",
        "deleted": "Usunięto „Studio Rossi PEC”; 1 skrzynka straciła usługę",
        "removed_note": "usługa pocztowa „Studio Rossi PEC” została usunięta przez administratora",
        "test": "Testuj połączenie",
        "testing": "Testowanie…",
        "queued": "w kolejce",
        "sentence": "Uwierzytelnianie nie powiodło się z powodu błędnych danych logowania.",
        "hint": "Sprawdź login i hasło.",
        "field_label": "Pole do poprawienia:",
        "field": "Hasło",
        "state": "Błąd uwierzytelniania",
        "inbox": "Odebrane",
        "messages": "Wiadomości",
        "threads": "Wątki",
        "two": "2 wiadomości",
        "date": "1 mar 2026",
        "search": "Szukaj",
        "found": "gmail.com obsługuje Gmail / Google Workspace: wybierz powyżej Gmail / Google Workspace.",
        "log_imap": "Test połączenia IMAP nie powiódł się: Uwierzytelnianie nie powiodło się z powodu błędnych "
        "danych logowania.",
        "log_source": "Uwierzytelnianie IMAP",
    },
}


@pytest.fixture
def live(make_app, certs):
    """The app (CSRF on, the test CA trusted, loopback servers allowed), served on a free port."""
    from webapp import settings_store
    from webapp.extensions import db
    from webapp.users import create_user

    compile_catalogues()
    app = make_app(WTF_CSRF_ENABLED=True, MAIL_CA_FILE=str(certs.ca_cert))
    users = {}
    with app.app_context():
        settings_store.update({"allowed_internal_hosts": ["127.0.0.1"], "connection_timeout": 5})
        for name, admin in USERS:
            users[name] = {"id": create_user(name, f"{name}-console-pw", admin=admin).id, "password": None}
        db.session.commit()
        db.session.remove()
    with serve(app, users) as live:
        yield live


def _seed(live, dovecot, language: str) -> dict:
    """The admin's language; alice's hand-typed mailbox (wrong password) with two messages of one
    thread in its INBOX."""
    from tests.support.message_factory import make_folder, make_message
    from webapp import accounts
    from webapp.extensions import db
    from webapp.models import User

    with live.app.app_context():
        db.session.get(User, live.users["admin"]["id"]).language = language
        db.session.commit()
        alice = db.session.get(User, live.users["alice"]["id"])
        data = {
            "manual": {
                "imap": {"host": "127.0.0.1", "port": dovecot.imaps_port, "security": "tls"},
                "smtp": {"host": "127.0.0.1", "port": free_ports(1)[0], "security": "tls"},  # refused
            },
            "username": "alice",
            "password": "not-the-right-one",
            "email": "alice@example.com",
        }
        account = accounts.create_account(alice, accounts.clean_account(alice, data))
        inbox = make_folder(account)
        make_message(inbox, subject="Preventivo", message_id="<a@x>", date=datetime(2026, 3, 1, 9, 0))
        make_message(
            inbox, subject="Re: Preventivo", message_id="<b@x>", in_reply_to="<a@x>", date=datetime(2026, 3, 1, 10, 0)
        )
        out = {"account_id": account.id}
        db.session.remove()
    return out


@pytest.mark.parametrize("language", ["it", "pl"])
def test_italian_and_polish_users_walk_the_console(live, new_page, dovecot, language):
    t = TEXT[language]
    seeded = _seed(live, dovecot, language)
    account_id = seeded["account_id"]

    # --- alice picks her language on My profile; every page follows ---------------------------
    alice = login(new_page(), live, "alice")
    alice.goto(live.url + "/profile/")
    alice.select_option("#language", language)
    alice.select_option("#time_zone", "Europe/Warsaw" if language == "pl" else "Europe/Rome")
    alice.click("#locale-form button[type=submit]")
    expect(alice.locator(".flash-success")).to_have_text(t["profile_saved"])
    expect(alice.locator("html")).to_have_attribute("lang", language)
    expect(alice.locator("header nav")).to_contain_text(t["mailboxes"])

    # --- the connect form -------------------------------------------------------------------------
    alice.goto(live.url + "/mailboxes/connect")
    expect(alice.locator("h1")).to_have_text(t["connect"])
    expect(alice.locator("label[for=service]")).to_have_text(t["service_label"])
    expect(alice.locator("label[for=imap_server]")).to_have_text(t["imap_label"])
    # "Find settings": the discovery job stores English; the form shows the reader's language.
    alice.select_option("#service", "other")
    with alice.expect_response(lambda r: r.url.endswith("/mailboxes/discover") and r.status == 202):
        alice.fill("#email", "mario@gmail.com")
        alice.locator("#email").blur()
    run_burst(live.app)
    expect(alice.locator("#discovery-status .discovery-source")).to_have_text(t["found"], timeout=30_000)

    # --- a failed connection test: the job stores English, the page shows the reader's language --
    alice.goto(live.url + "/mailboxes/")
    row = alice.locator(f"tbody[data-account-id='{account_id}']")
    with alice.expect_response(lambda r: r.url.endswith("/test") and r.request.method == "POST") as started:
        row.locator("[data-action=test]").click()
    assert started.value.status == 202
    # What the page script writes while the job waits comes in the language too (mailroom-texts).
    expect(row.locator(".running-label")).to_have_text(t["testing"])
    expect(row.locator(".job-status")).to_have_text(t["queued"])
    run_burst(live.app)  # the job, on the queue the page enqueued it on
    row = alice.locator(f"tbody[data-account-id='{account_id}']")
    imap = row.locator(".check-protocol[data-protocol=imap]")
    expect(imap.locator(".diagnosis")).to_have_attribute("data-error-class", "auth")
    expect(imap.locator(".sentence")).to_have_text(t["sentence"])
    expect(imap.locator(".hint").first).to_have_text(t["hint"])
    expect(imap).to_contain_text(t["field_label"])
    expect(imap.locator(".field-name")).to_have_text(t["field"])
    expect(imap.locator(".field-name")).to_have_attribute("data-field", "password")  # ids stay English
    expect(row.locator("[data-state]")).to_contain_text(t["state"])
    assert row.locator("[data-action=test]").inner_text().strip() == t["test"]
    shot(alice, f"i18n-connection-test-{language}")

    # --- the mailbox's log: the lines the job stored in English, in the reader's language ----------
    alice.goto(live.url + "/mailboxes/log")
    imap_line = alice.locator("#log tbody tr", has_text=t["log_imap"])
    expect(imap_line).to_have_count(1)
    expect(imap_line.locator("td").nth(1)).to_have_text(t["log_source"])

    # --- the message list: labels, dates in the language, plural forms ------------------------
    alice.goto(live.url + "/messages/")
    expect(alice.locator("h1")).to_have_text(t["inbox"])
    expect(alice.locator("#messages")).to_contain_text(t["date"])
    expect(alice.locator("#messages tr.message")).to_have_count(2)
    expect(alice.locator(".search button[type=submit]")).to_have_text(t["search"])
    alice.click("#view-threads")
    expect(alice.locator("#threads .thread-count")).to_have_text(t["two"])
    expect(alice.locator("#view-messages")).to_have_text(t["messages"])
    expect(alice.locator("#view-threads")).to_have_text(t["threads"])

    # --- the administrator's Email Service Settings: add, hide, delete ---------------------------
    admin = login(new_page(), live, "admin")
    admin.set_viewport_size({"width": 1366, "height": 900})
    admin.goto(live.url + "/admin/email/services")
    expect(admin.locator("html")).to_have_attribute("lang", language)
    # At 1366 px the administration links, longer in it/pl, keep to one line and all fit in it.
    admin_row = admin.locator("header .nav-admin ul")
    rows = "(ul) => new Set([...ul.children].map((li) => Math.round(li.getBoundingClientRect().top))).size"
    assert admin_row.evaluate(rows) == 1, f"{language}: the administration links wrap at 1366 px"
    assert admin_row.evaluate("(ul) => ul.scrollWidth <= ul.clientWidth"), "administration links cut off"
    assert admin.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    expect(admin.locator("h1")).to_have_text(t["settings"])
    admin.click("#add-corporate-server")
    expect(admin.locator("#trust-fields")).to_be_visible()
    expect(admin.locator("legend").first).to_have_text(t["incoming"])
    admin.fill("#name", "Studio Rossi PEC")
    admin.fill("#imap_server", "imap.studiorossi.example:993")
    admin.fill("#smtp_server", "smtp.studiorossi.example:465")
    admin.click(f"button[type=submit]:has-text('{t['save']}')")
    expect(admin.locator(".flash-success")).to_have_text(t["added"])
    service = admin.locator('#services tr[data-service-name="Studio Rossi PEC"]')
    service.locator('[data-action="toggle-hidden"]').click()
    expect(admin.locator(".flash-success")).to_have_text(t["hidden"])
    service = admin.locator('#services tr[data-service-name="Studio Rossi PEC"]')
    expect(service.locator(".badge.muted")).to_have_text(t["hidden_badge"])

    # alice's second mailbox goes through the service: the delete page lists her.
    _mailbox_on(live, "Studio Rossi PEC")
    admin.reload()
    service = admin.locator('#services tr[data-service-name="Studio Rossi PEC"]')
    expect(service.locator(".mailbox-count")).to_have_text(t["count_1"])
    shot(admin, f"i18n-admin-services-{language}")
    service.locator('[data-action="delete"]').click()
    expect(admin.locator("h1")).to_have_text(t["delete_heading"])
    expect(admin.locator("#affected tbody tr")).to_have_count(1)
    expect(admin.locator("#affected tbody tr td").first).to_have_text("alice")
    admin.click("#confirm-delete")
    expect(admin.locator(".flash-success")).to_contain_text(t["deleted"])

    # The owner's notification was stored once, in English; each reader sees it in their language.
    alice.goto(live.url + "/mailboxes/")
    expect(alice.locator(".notification")).to_contain_text(t["removed_note"])
    expect(alice.locator(".notification")).to_contain_text("studio@studiorossi.example")


def _mailbox_on(live, service_name: str) -> None:
    from webapp import accounts
    from webapp.extensions import db
    from webapp.models import Service, User

    with live.app.app_context():
        service = Service.query.filter_by(name=service_name).one()
        service.hidden = False  # a hidden service takes no new mailbox; the admin hid it for new ones
        user = db.session.get(User, live.users["alice"]["id"])
        data = {"service_id": service.id, "username": "studio@studiorossi.example", "password": "pw"}
        accounts.create_account(user, accounts.clean_account(user, data))
        service.hidden = True
        db.session.commit()
        db.session.remove()
