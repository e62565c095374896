"""Mailroom in Italian and Polish: catalogues complete, the user's language and time zone, the API's
Accept-Language, plural forms, stored diagnoses translated when shown, plugin catalogues, and
built-in mail texts in the sender's language."""

from __future__ import annotations

import ast
import re
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale, gettext, ngettext

from connectors.errors import Detail, ErrorClass, MailError
from connectors.plugins import get_plugin_manager, hookimpl
from tests import test_connection_jobs, test_discovery_jobs
from tests.conftest import login
from tests.i18n_catalogues import LANGUAGES, compile_catalogues, extract, read_catalogue
from tests.support.job_worker import run_burst
from tests.support.message_factory import make_account
from webapp import i18n, look, quoting
from webapp.compose.routes import outgoing_state_label
from webapp.diagnosis import Audience, explain
from webapp.extensions import db
from webapp.jobs import out_of_office as ooo_jobs
from webapp.models import LogEntry, User


@pytest.fixture(autouse=True, scope="module")
def _compiled():
    compile_catalogues()


def in_language(app, language: str):
    """A request in ``language`` with a fresh app context (Flask-Babel caches the language on g)."""
    context = app.app_context()
    context.push()
    request = app.test_request_context("/", headers={"Accept-Language": language})
    request.push()
    return _Popper(request, context)


class _Popper:
    def __init__(self, *contexts):
        self.contexts = contexts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for context in self.contexts:
            context.pop()


def _ids(catalogue) -> set:
    return {m.id for m in catalogue if m.id}


def test_every_marked_string_has_an_italian_and_a_polish_entry_and_nothing_is_fuzzy_or_obsolete(tmp_path):
    pot = tmp_path / "messages.pot"
    extract(pot)
    with pot.open("rb") as fh:
        marked = _ids(read_po(fh))
    assert len(marked) > 900, "extraction found too little: is babel.cfg still right?"
    for language in LANGUAGES:
        catalogue = read_catalogue(language)
        ids = _ids(catalogue)
        missing = sorted(str(i) for i in marked - ids)
        assert not missing, f"{language}: no entry for {len(missing)} marked string(s): {missing[:15]}"
        stale = sorted(str(i) for i in ids - marked)
        assert not stale, (
            f"{language}: {len(stale)} entry(ies) no string is marked with any more: {stale[:15]}"
        )
        assert not catalogue.obsolete, f"{language}: obsolete (#~) entries: {list(catalogue.obsolete)[:5]}"
        fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
        assert not fuzzy, f"{language}: fuzzy entries to review: {fuzzy[:15]}"
        untranslated = [
            m.id
            for m in catalogue
            if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
        ]
        assert not untranslated, f"{language}: untranslated: {untranslated[:15]}"
        problems = [(m.id, [str(e) for e in errors]) for m, errors in catalogue.check()]
        assert not problems, f"{language}: placeholders or plural forms wrong: {problems[:5]}"


def test_the_profile_sets_language_and_time_zone_and_the_pages_follow(app, client, users):
    alice = db.session.get(User, users["alice"]["id"])
    account = make_account(alice.id, "alice@example.test")
    account.last_checked_at = datetime(2026, 1, 15, 12, 0)  # stored in UTC
    db.session.commit()
    login(client, "alice", users["alice"]["password"])

    english = client.get("/mailboxes/").get_data(as_text=True)
    assert 'lang="en"' in english and "My mailboxes" in english and "tested Jan 15, 2026, 12:00" in english

    # Errors name the field (and come in the language being left).
    bad = client.post("/profile/language", data={"language": "de", "time_zone": "Mars/Olympus_Mons"})
    assert bad.status_code == 422
    page = bad.get_data(as_text=True)
    assert 'data-field="language">Choose one of the languages offered.' in page
    assert 'data-field="time_zone">Unknown time zone' in page
    db.session.refresh(alice)
    assert alice.language is None and alice.time_zone is None

    saved = client.post("/profile/language", data={"language": "it", "time_zone": "Europe/Rome"})
    assert saved.status_code == 302
    db.session.refresh(alice)
    assert (alice.language, alice.time_zone) == ("it", "Europe/Rome")
    italian = client.get("/mailboxes/", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    assert (
        'lang="it"' in italian and "Caselle di posta" in italian and "Collega una casella di posta" in italian
    )
    assert "15 gen 2026, 13:00" in italian  # the user's zone (CET) and the language's date format
    assert "Lingua e ora salvate." in italian  # the flash of the save, already in the new language

    client.post("/profile/language", data={"language": "pl", "time_zone": "America/New_York"})
    polish = client.get("/mailboxes/").get_data(as_text=True)
    assert 'lang="pl"' in polish and "Moje konta pocztowe" in polish and "15 sty 2026, 07:00" in polish
    profile = client.get("/profile/").get_data(as_text=True)
    assert "Język i czas" in profile and '<option selected value="America/New_York">' in profile

    # Back to the browser's language and the server's zone.
    client.post("/profile/language", data={"language": "", "time_zone": ""})
    db.session.refresh(alice)
    assert alice.language is None and alice.time_zone is None
    assert "Caselle di posta" in client.get(
        "/mailboxes/", headers={"Accept-Language": "it-IT,it;q=0.9"}
    ).get_data(as_text=True)


def test_signed_out_pages_follow_the_browser_and_fall_back_to_english(client):
    assert "Zaloguj się" in client.get(
        "/login", headers={"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"}
    ).get_data(as_text=True)
    assert "Accedi" in client.get("/login", headers={"Accept-Language": "it"}).get_data(as_text=True)
    german = client.get("/login", headers={"Accept-Language": "de-DE,de;q=0.9"}).get_data(as_text=True)
    assert "Log in" in german and 'lang="en"' in german


def test_the_api_answers_sentences_in_accept_language_and_keeps_codes_and_fields_english(app, api, users):
    alice = db.session.get(User, users["alice"]["id"])
    alice.language = "pl"  # the page setting does not decide for a script
    db.session.commit()
    body = {"manual": {"imap": {"host": "imap.example.com", "port": 99999, "security": "tls"}}}

    english = api["alice"].post("/api/v1/accounts", json=body).get_json()
    italian = api["alice"].post("/api/v1/accounts", json=body, headers={"Accept-Language": "it"})
    assert italian.status_code == 422
    answer = italian.get_json()
    assert set(answer["fields"]) == set(english["fields"])  # field names stay English
    assert "manual.imap.port" in answer["fields"]
    assert (
        answer["error"] == "Alcuni campi non sono validi."
        and english["error"] == "Some fields are not valid."
    )
    assert answer["fields"]["manual.imap.port"] == "deve essere un numero intero tra 1 e 65535"
    missing = api["alice"].get("/api/v1/accounts/999999", headers={"Accept-Language": "pl"}).get_json()
    assert missing["error"] == "Nie ma takiego konta pocztowego."


@pytest.mark.parametrize(
    ("count", "message", "mailbox"),
    [
        (1, "1 wiadomość", "1 skrzynka"),
        (2, "2 wiadomości", "2 skrzynki"),
        (5, "5 wiadomości", "5 skrzynek"),
        (12, "12 wiadomości", "12 skrzynek"),
        (22, "22 wiadomości", "22 skrzynki"),
    ],
)
def test_polish_plural_forms(app, count, message, mailbox):
    with in_language(app, "pl"):
        assert ngettext("%(num)d message", "%(num)d messages", count) == message
        assert ngettext("%(num)d mailbox", "%(num)d mailboxes", count) == mailbox
    with in_language(app, "it"):
        assert ngettext("%(num)d message", "%(num)d messages", count) == (
            "1 messaggio" if count == 1 else f"{count} messaggi"
        )


def test_a_stored_diagnosis_is_translated_when_shown(app):
    dns = MailError(
        ErrorClass.DNS, "imap", "connect", detail=Detail.DNS_MISSING.format(host="imap.example.test")
    )
    stored = explain(dns.as_dict(), Audience.OWNER)  # what the job stores: English
    assert stored["message"] == "The host name imap.example.test could not be found."
    for language, sentence, hint, label in (
        ("it", "Impossibile trovare il nome host imap.example.test.", "Controlla che il nome", "Server IMAP"),
        ("pl", "Nie znaleziono nazwy hosta imap.example.test.", "Sprawdź pisownię", "Serwer IMAP"),
    ):
        with in_language(app, language):
            shown = i18n.localize_error(stored)
            assert shown["message"] == sentence
            assert shown["hints"][0].startswith(hint)
            assert shown["field_label"] == label
            assert shown["field"] == "imap.host"  # ids stay English
    # A service user's "ask your administrator" hint, built from a template with values.
    tls = MailError(
        ErrorClass.TLS, "imap", "connect", detail=Detail.PLAINTEXT_PORT.format(port=993, tls_port="")
    )
    for_user = explain(tls.as_dict(), Audience.SERVICE_USER, service_name="Acme Mail")
    with in_language(app, "pl"):
        shown = i18n.localize_error(for_user)
        assert shown["hints"] == [
            "Poproś administratora o sprawdzenie zabezpieczenia połączenia IMAP (TLS lub STARTTLS) i portu usługi "
            "pocztowej „Acme Mail”. To ustawienie usługi, a nie Twojego konta."
        ]
        assert shown["message"].startswith("Nie udało się nawiązać bezpiecznego połączenia.")
    owner = explain(tls.as_dict(), Audience.OWNER)  # the detail, with the forms' "No" for None
    assert '(or "No")' in owner["message"]
    with in_language(app, "it"):
        assert i18n.translate_stored(owner["message"]) == (
            "Il server ha risposto in chiaro: questa porta non usa TLS dal primo byte. Scegli STARTTLS "
            "(o Nessuna) per la porta 993, oppure usa la porta TLS."
        )
        assert i18n.translate_stored("Something no catalogue knows.") == "Something no catalogue knows."
    with in_language(app, "pl"):  # a mailbox's last error: "IMAP: " before the stored sentence
        failed = "IMAP: Authentication failed due to incorrect credentials."
        assert (
            i18n.translate_stored(failed)
            == "IMAP: Uwierzytelnianie nie powiodło się z powodu błędnych danych logowania."
        )


def test_a_plugin_ships_its_own_catalogue(tmp_path, fresh_plugins, make_app):
    from babel.messages.catalog import Catalog

    catalogue = Catalog(locale="it")
    catalogue.add("Acme wants the password from the Acme portal.", "Acme vuole la password del portale Acme.")
    catalogue.add("Connect", "Attacca")  # a plugin's entry wins over Mailroom's own
    folder = tmp_path / "it" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "messages.mo").open("wb") as fh:
        write_mo(fh, catalogue)

    class AcmeTranslations:
        @hookimpl
        def mailroom_translation_directories(self):
            return [str(tmp_path)]

    get_plugin_manager().register(AcmeTranslations(), name="acme_translations")
    app = make_app()
    assert app.config["BABEL_TRANSLATION_DIRECTORIES"].split(";") == ["translations", str(tmp_path)]
    with in_language(app, "it"):
        assert (
            gettext("Acme wants the password from the Acme portal.")
            == "Acme vuole la password del portale Acme."
        )
        assert gettext("Connect") == "Attacca"
        assert gettext("My mailboxes") == "Caselle di posta"  # Mailroom's catalogue still answers


def test_built_in_mail_texts_follow_the_senders_language_not_the_readers(app):
    date = datetime(2026, 3, 3, 12, 0)
    with in_language(app, "it"):  # an Italian browser …
        line = quoting.attribution(
            date, "Carol <carol@example.com>", i18n.language_of(SimpleNamespace(language="pl"))
        )
        assert line.startswith("Dnia 3 mar 2026") and line.endswith("Carol <carol@example.com> napisał(a):")
        block = quoting.forward_block({"from": "Carol", "subject": "Plan"}, date, "pl")
        assert block[0] == "---------- Przekazana wiadomość ----------" and "Temat: Plan" in block
        # … a sender without a choice writes in the request's language.
        assert i18n.language_of(SimpleNamespace(language=None)) == "it"
    # The out-of-office reply's built-in subject is in its owner's language (the job has no request).
    owner = SimpleNamespace(user=SimpleNamespace(language="pl"))
    assert ooo_jobs._auto_subject(owner, "Oferta") == "Autoodpowiedź: Oferta"
    assert (
        ooo_jobs._auto_subject(SimpleNamespace(user=SimpleNamespace(language=None)), "Offer") == "Auto: Offer"
    )
    with force_locale("it"):
        assert gettext("Auto: %(subject)s", subject="x") == "Risposta automatica: x"


def test_people_without_a_zone_get_the_servers(monkeypatch, make_app):
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    assert i18n.server_time_zone() == "Europe/Warsaw"
    app = make_app()
    assert app.config["BABEL_DEFAULT_TIMEZONE"] == "Europe/Warsaw"
    with in_language(app, "pl"):
        assert i18n.when(datetime(2026, 7, 1, 10, 0)) == "1 lip 2026, 12:00"  # CEST, UTC+2
    monkeypatch.setenv("TZ", "Not/A_Zone")
    assert i18n.server_time_zone() != "Not/A_Zone"  # an unknown TZ is not taken


def test_state_words_are_one_things_state_not_the_folder_views_plural(app, client, users):
    """ "Sent"/"Scheduled" as a message's state (context "message state") and "Active"/"Disabled"
    as a user's (context "user state") have their own entries: singular, in the noun's gender."""
    expected = {
        "it": {
            "sent": "Inviato",
            "scheduled": "Programmato",
            "folder": "Inviati",
            "user": ("Attivo", "Disattivato"),
        },
        "pl": {
            "sent": "Wysłana",
            "scheduled": "Zaplanowana",
            "folder": "Wysłane",
            "user": ("Aktywny", "Wyłączony"),
        },
    }
    for language, words in expected.items():
        with in_language(app, language):
            assert look.state_word("sent") == outgoing_state_label("sent") == words["sent"]
            assert look.state_word("scheduled") == outgoing_state_label("scheduled") == words["scheduled"]
            assert gettext("Sent") == words["folder"]  # the folder view keeps its plural
    bob = db.session.get(User, users["bob"]["id"])
    bob.disabled_at = datetime(2026, 1, 1)
    db.session.commit()
    login(client, "admin", users["admin"]["password"])
    for language, words in expected.items():
        page = client.get("/admin/email/users", headers={"Accept-Language": language}).get_data(as_text=True)
        active, disabled = words["user"]
        assert (
            f'<span class="word">{active}</span>' in page and f'<span class="word">{disabled}</span>' in page
        )


# --- texts a discovery job stores (connect form › "Find settings") ---------------------------------

# The discovery tests' app, pointed at the local DNS and HTTPS servers (their fixtures, reused).
discovery_config = test_discovery_jobs.discovery_config
discovery_env = test_discovery_jobs.env
discover = test_discovery_jobs.discover

NOTHING_FOUND = {
    "it": {
        "description": "Nessuna impostazione trovata per nowhere.test: inserisci a mano i dati dei server.",
        "notes": ["mx: nowhere.test non ha record MX", "srv: nessun record SRV IMAP o POP3 per nowhere.test"],
        "english": ["has no MX records", "has no address", "SRV records for", "answered", "nothing found"],
    },
    "pl": {
        "description": "Nie znaleziono ustawień dla nowhere.test: wpisz dane serwerów ręcznie.",
        "notes": [
            "mx: nowhere.test nie ma rekordów MX",
            "srv: brak rekordów SRV IMAP ani POP3 dla nowhere.test",
        ],
        "english": ["has no MX records", "has no address", "SRV records for", "answered", "nothing found"],
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_discovery_job_stores_english_and_the_reader_gets_the_description_and_notes_in_their_language(
    discovery_env, dns_server, language
):
    """A real discovery job (local DNS and HTTPS, probes at a closed port) for a person whose
    console is Italian or Polish: the form's description and every note come translated; the
    same stored result read by an English API caller stays English."""
    app, apis = discovery_env()
    english = discover(app, apis["alice"], "ann@nowhere.test")
    assert english["description"].startswith("No settings found for nowhere.test")
    client = app.test_client()
    with app.app_context():
        db.session.get(User, User.query.filter_by(username="alice").one().id).language = language
        db.session.commit()
    login(client, "alice", "alice-console-pw")
    started = client.post("/mailboxes/discover", json={"email": "ann@nowhere.test"})
    assert started.status_code == 202
    run_burst(app)
    result = client.get(started.get_json()["status_url"]).get_json()["result"]
    expected = NOTHING_FOUND[language]
    assert result["description"] == expected["description"]
    for note in expected["notes"]:
        assert note in result["notes"], result["notes"]
    assert len(result["notes"]) == len(english["notes"]) == 5, result["notes"]
    for note in result["notes"]:
        assert not any(words in note for words in expected["english"]), note
    # The stored job result itself stays English (language-neutral): another reader gets theirs.
    again = apis["alice"].get(started.get_json()["status_url"].replace("/mailboxes/", "/api/v1/"))
    assert again.get_json()["result"]["description"].startswith("No settings found for nowhere.test")
    from flask import g

    g.pop("_login_user", None)


def test_a_discovered_service_is_named_in_the_readers_language(discovery_env):
    app, apis = discovery_env()
    headers = {"Accept-Language": "it"}
    started = apis["alice"].post("/api/v1/discover", json={"email": "mario@gmail.com"}, headers=headers)
    run_burst(app)
    status = apis["alice"].get(started.get_json()["status_url"], headers=headers).get_json()
    gmail = "Gmail / Google Workspace"
    assert status["result"]["description"] == f"gmail.com è servito da {gmail}: scegli {gmail} qui sopra."


# --- email log lines a job stores (the mailbox's log, the administrator's log) ---------------------

# The connection tests' app, people and mailbox helpers (their fixtures, reused).
japp = test_connection_jobs.japp
people = test_connection_jobs.people

LOG_LINES = {
    "it": {
        "imap": "Test di connessione IMAP non riuscito: Autenticazione non riuscita: credenziali errate.",
        "smtp": "Test di connessione SMTP non riuscito: Autenticazione non riuscita: credenziali errate.",
        "source": "Autenticazione IMAP",
        "level": "errore",
    },
    "pl": {
        "imap": "Test połączenia IMAP nie powiódł się: Uwierzytelnianie nie powiodło się z powodu błędnych "
        "danych logowania.",
        "smtp": "Test połączenia SMTP nie powiódł się: Uwierzytelnianie nie powiodło się z powodu błędnych "
        "danych logowania.",
        "source": "Uwierzytelnianie IMAP",
        "level": "błąd",
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_connection_tests_log_lines_are_stored_in_english_and_shown_in_the_readers_language(
    japp, people, dovecot, smtp_server, language
):
    """A real connection test (a wrong password) run by the worker: the email log
    keeps English, and the mailbox's log page and the administrator's show the lines, their
    source and level in the reader's language."""
    alice = people["alice"]
    account_id = test_connection_jobs.make_mailbox(
        alice,
        test_connection_jobs.imaps(dovecot),
        test_connection_jobs.smtps(smtp_server),
        password="wrong-pw-9",
    )
    test_connection_jobs.run_test(japp, alice, account_id)
    stored = [e.message for e in LogEntry.query.filter_by(account_id=account_id).order_by(LogEntry.id)]
    assert any(m.startswith("IMAP connection test failed: ") for m in stored), stored
    assert any(m.startswith("SMTP connection test failed: ") for m in stored), stored

    for name in ("alice", "admin"):
        db.session.get(User, people[name].user_id).language = language
    db.session.commit()
    expected = LOG_LINES[language]
    for name, path in (("alice", "/mailboxes/log"), ("admin", "/admin/email/log")):
        client = japp.test_client()
        login(client, name, f"{name}-console-pw")
        page = client.get(path).get_data(as_text=True)
        for words in (expected["imap"], expected["smtp"], f">{expected['source']}<", expected["level"]):
            assert words in page, (name, words)
        shown = re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)  # the details stay as stored (JSON)
        assert "connection test failed" not in shown and "incorrect credentials" not in shown


# --- every stored log line comes from a marked template --------------------------------------------

#: Files whose log lines are still written as English f-strings (docs/translations.md, "Not
#: translated yet"); a file leaves this list once its lines come from N_ templates.
UNMARKED_LOG_LINES: set[str] = set()


def _stored_text_problems(expression, assigned: dict, depth: int = 0) -> list[str]:
    """Why ``expression`` (a log line's message) is not a text the web can translate when shown."""
    if isinstance(expression, ast.JoinedStr):
        return ["an f-string"]
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        return [f"the unmarked literal {expression.value[:40]!r}"]
    if isinstance(expression, ast.BinOp):
        return ["a text glued with + or %"]
    if isinstance(expression, ast.IfExp):
        return [
            *_stored_text_problems(expression.body, assigned, depth),
            *_stored_text_problems(expression.orelse, assigned, depth),
        ]
    if (
        isinstance(expression, ast.Call)
        and isinstance(expression.func, ast.Attribute)
        and expression.func.attr == "format"
    ):
        return _stored_text_problems(expression.func.value, assigned, depth)
    if isinstance(expression, ast.Name) and depth < 3:
        return [
            p
            for value in assigned.get(expression.id, [])
            for p in _stored_text_problems(value, assigned, depth + 1)
        ]
    return []  # a template constant, a parameter, a helper's answer


def _assignments(function) -> dict:
    out: dict = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in [target, *getattr(target, "elts", [])]:
                    if isinstance(name, ast.Name):
                        value = node.value if name is target else None
                        out.setdefault(name.id, []).append(value if value is not None else ast.Constant(None))
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            out.setdefault(node.target.id, []).append(
                ast.BinOp(ast.Name(node.target.id), node.op, node.value)
            )
    return out


def _log_line_messages(tree):
    """(line number, message expression, the function's assignments) of every email-log write."""
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        assigned = _assignments(function)
        for call in ast.walk(function):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            is_record = (
                isinstance(func, ast.Attribute)
                and func.attr == "record"
                and getattr(func.value, "id", "") == "email_log"
            )
            is_line = isinstance(func, ast.Name) and func.id == "Line"
            if not (is_record or is_line):
                continue
            message = (
                call.args[2]
                if len(call.args) > 2
                else next((k.value for k in call.keywords if k.arg == "message"), None)
            )
            if message is not None:
                yield call.lineno, message, assigned


def test_email_log_lines_are_stored_from_marked_templates():
    """A line a job or a service writes into the email log is shown later to readers of any
    language: it must be an ``N_`` template (``.format`` with values), never an f-string or an
    unmarked literal, or the it/pl pages show it in English (docs/translations.md)."""
    root = Path(__file__).resolve().parent.parent / "webapp"
    found = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for lineno, message, assigned in _log_line_messages(tree):
            problems = _stored_text_problems(message, assigned)
            if problems:
                found.setdefault(str(path.relative_to(root.parent)), []).append(
                    f"line {lineno}: {', '.join(problems)}"
                )
    unexpected = {path: lines for path, lines in found.items() if path not in UNMARKED_LOG_LINES}
    assert not unexpected, f"email log lines not from an N_ template: {unexpected}"
    fixed = sorted(set(UNMARKED_LOG_LINES) - set(found))
    assert not fixed, f"these files' log lines are marked now: take them off UNMARKED_LOG_LINES: {fixed}"


def test_a_syncs_stored_lines_are_translated_with_their_values(app):
    """Sync lines nest stored texts (a failed sync names the mailbox's error, itself a template):
    each level is translated, values kept; the longer of two templates that begin alike wins."""
    failed = "Sync failed: IMAP: The host name imap.example.test could not be found. It will be retried."
    synced = "Synced folders: 2; new: 5, flag changes: 0, removed: 1 (3 FETCH, 0.4 s)."
    with in_language(app, "it"):
        assert i18n.translate_stored(failed) == (
            "Sincronizzazione non riuscita: IMAP: Impossibile trovare il nome host imap.example.test. "
            "Verrà ritentata."
        )
        assert i18n.translate_stored(synced) == (
            "Cartelle sincronizzate: 2; nuovi: 5, flag cambiati: 0, rimossi: 1 (3 FETCH, 0.4 s)."
        )
    with in_language(app, "pl"):
        assert i18n.translate_stored(synced).startswith("Zsynchronizowane foldery: 2; nowe: 5,")
        # A filter's actions are stored phrases joined with "; ", each translated.
        line = 'Filter "Reports" on "Weekly" from a@example.test in INBOX: marked as read; moved to Archive.'
        assert i18n.translate_stored(line) == (
            "Filtr \"Reports\" dla „Weekly” od a@example.test w INBOX: oznaczono jako przeczytane; "
            "przeniesiono do Archive."
        )


def test_a_mailboxs_filters_read_in_the_readers_language(app, users):
    """The filter form's choices and the list's "when"/"then" were English codes and phrases."""
    from tests.support.message_factory import make_folder

    alice = db.session.get(User, users["alice"]["id"])
    alice.language = "it"
    account = make_account(alice.id, "alice@example.test")
    archive = make_folder(account, name="Archive")
    db.session.commit()
    client = app.test_client()
    login(client, "alice", users["alice"]["password"])
    rule = {"name": "R", "match": "all", "cond_field": "subject", "cond_header": "", "cond_op": "contains"}
    rule |= {"cond_value": "fattura", "act_type": "move", "act_folder": str(archive.id), "enabled": "1"}
    assert client.post(f"/mailboxes/{account.id}/filters/new", data=rule).status_code == 302
    page = client.get(f"/mailboxes/{account.id}/filters").get_data(as_text=True)
    assert "Oggetto contiene &#34;fattura&#34;" in page and "sposta in Archive" in page
    form = client.get(f"/mailboxes/{account.id}/filters/new").get_data(as_text=True)
    for words in ('value="subject" >Oggetto<', 'value="equals" >è uguale a<', 'value="mark_read" >Segna come letto<'):
        assert words in form, words
    assert ">Move to folder<" not in form and ">subject<" not in form


def test_the_company_signature_page_explains_placeholders_and_refuses_bad_ones_in_the_readers_language(
    app, users
):
    admin = db.session.get(User, users["admin"]["id"])
    admin.language = "pl"
    db.session.commit()
    client = app.test_client()
    login(client, "admin", users["admin"]["password"])
    page = client.get("/admin/email/signature").get_data(as_text=True)
    assert "imię i nazwisko oddzielone spacją" in page and "separated by a space" not in page
    body = {"company_name": "ACME", "central_signature_text": "Hi {{nickname}}", "central_signature_html": ""}
    refused = client.post("/admin/email/signature", data=body)
    assert refused.status_code == 422
    assert "Nieznany symbol zastępczy „{{nickname}}”; użyj jednego z: first_name," in refused.get_data(as_text=True)


def test_a_jobs_failure_sentences_are_translated_when_shown(app):
    """A job whose worker died, or that failed without a sentence of its own: the job status
    answer stores English and shows each sentence in the reader's language."""
    from webapp import job_status
    from webapp.jobs import abandoned

    with in_language(app, "it"):
        shown = i18n.translate_stored(f"{abandoned.SENTENCE} {abandoned.START_AGAIN}")
        assert shown == (
            "Il worker si è fermato mentre eseguiva questo job (è stato terminato o la sua macchina non "
            "risponde più). Avvialo di nuovo."
        )
        assert i18n.translate_stored(job_status.UNEXPECTED).startswith("Il job non è riuscito")


def test_a_failed_message_changes_notice_is_translated_when_shown(app):
    from webapp.jobs.message_changes import INTERNAL_ERROR
    from webapp.message_changes import NO_LONGER_THERE

    with in_language(app, "pl"):
        assert i18n.translate_stored(NO_LONGER_THERE.format(folder="Archiwum")) == (
            "Wiadomości nie ma już w folderze „Archiwum” na serwerze."
        )
        assert i18n.translate_stored(INTERNAL_ERROR).startswith("Nie udało się zapisać zmiany")
