"""The send job's stored texts (log lines, a message's error) are shown in the reader's language."""

from __future__ import annotations

import pytest

from tests.conftest import login
from tests.i18n_catalogues import compile_catalogues
from tests.support.message_factory import make_account
from tests.test_i18n import in_language
from webapp import i18n
from webapp.extensions import db
from webapp.jobs.send import WORDS
from webapp.models import OutgoingMessage

AUTH = "SMTP: Authentication failed due to incorrect credentials."


@pytest.fixture(autouse=True, scope="module")
def _compiled():
    compile_catalogues()


def _failed_message(user_id: int) -> OutgoingMessage:
    account = make_account(user_id, "alice@example.test")
    row = OutgoingMessage(
        user_id=user_id,
        account_id=account.id,
        from_addr="alice@example.test",
        to_addrs='["bob@example.test"]',
        subject="Invoice",
        message_id="<failed@example.test>",
        state="failed",
        error=AUTH,
        error_class="auth",
    )
    db.session.add(row)
    db.session.commit()
    return row


@pytest.mark.parametrize(
    "language, sentence",
    [("it", "Autenticazione non riuscita: credenziali errate."), ("pl", None)],
)
def test_a_failed_messages_error_is_in_the_readers_language(app, client, users, language, sentence):
    row = _failed_message(users["alice"]["id"])
    with in_language(app, language):
        sentence = sentence or i18n.translate_stored(AUTH.removeprefix("SMTP: "))
    assert sentence != AUTH.removeprefix("SMTP: ")
    login(client, "alice", users["alice"]["password"])
    headers = {"Accept-Language": language}
    status = client.get(f"/compose/outgoing/{row.id}", headers=headers).get_data(as_text=True)
    listing = client.get("/compose/outgoing?state=failed", headers=headers).get_data(as_text=True)
    polled = client.get(f"/compose/outgoing/{row.id}/state", headers=headers).get_json()
    for page in (status, listing):
        assert sentence in page and "Authentication failed" not in page
    assert polled["error"] == f"SMTP: {sentence}" and polled["error_sentence"] == sentence


def test_the_send_jobs_log_lines_and_errors_are_translated_with_their_values(app):
    sent = WORDS["sent"].format(subject="Q3", sender="a@example.test", message_id="<1@x>", count=2)
    retry = WORDS["send_retry"].format(subject="Q3", message_id="<1@x>", error=AUTH)
    copy = WORDS["copy_not_saved"].format(error=AUTH)
    with in_language(app, "it"):
        assert i18n.translate_stored(sent) == 'Inviato "Q3" da a@example.test (<1@x>); destinatari: 2.'
        assert i18n.translate_stored(retry) == (
            'Invio di "Q3" (<1@x>) non riuscito: SMTP: Autenticazione non riuscita: credenziali errate. '
            "Verrà ritentato."
        )
        assert i18n.translate_stored(copy) == (
            "Inviato, ma non è stato possibile salvare la copia in Posta inviata: "
            "SMTP: Autenticazione non riuscita: credenziali errate."
        )
    with in_language(app, "pl"):
        assert i18n.translate_stored(sent) == "Wysłano „Q3” z a@example.test (<1@x>); odbiorcy: 2."


@pytest.mark.parametrize(
    "language, field, banner",
    [
        ("it", "deve essere una sola riga", "Alcuni campi non sono validi."),
        ("pl", "musi być jednym wierszem", None),
    ],
)
def test_a_new_messages_subject_error_and_its_banner_are_in_the_readers_language(
    app, client, users, language, field, banner
):
    make_account(users["alice"]["id"], "alice@example.test")
    login(client, "alice", users["alice"]["password"])
    with in_language(app, language):
        banner = banner or i18n.translate_stored("Some fields are not valid.")
    page = client.post(
        "/compose/",
        data={"to": "bob@example.test", "subject": "one\x01two", "body": "hi"},
        headers={"Accept-Language": language},
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 422
    assert field in text and f'id="compose-error">{banner}</div>' in text
    assert "Some fields are not valid." not in text and "must be one line" not in text
