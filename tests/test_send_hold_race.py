"""A disable that holds a message while its send job is picking it up is not overwritten by the job.

The job reads the row and its owner, finds nothing to hold, and then marks the row ``sending``.
An administrator's disable committed in between (it holds every waiting message,
webapp/send_holds.py) used to be overwritten by that write: the row went ``sending`` and the
message left although its owner was disabled and the administrator had seen it held.  The job now
moves the row to ``sending`` only if its state is still the one it read (webapp/jobs/send.py).

Real Dovecot + aiosmtpd; the disable is the real API call, made at that moment of the real job.
"""

from __future__ import annotations

from webapp import send_holds
from webapp.extensions import db
from webapp.jobs.send import send_outgoing
from webapp.models import OutgoingMessage

from .test_send_holds import _send, app, mailbox  # noqa: F401 (fixtures)


def test_a_disable_committed_while_the_job_picks_the_message_up_holds_it(
    app,  # noqa: F811
    api,
    users,
    mailbox,  # noqa: F811
    smtp_server,
    monkeypatch,
):
    alice_id = users["alice"]["id"]
    queued = _send(api["alice"], subject="Right now")
    real_must_hold = send_holds.must_hold

    def disabled_meanwhile(row, user):
        answer = real_must_hold(row, user)  # nothing to hold yet: the owner is enabled
        with app.app_context():  # another session and connection, as the web process has
            disabled = api["admin"].patch(f"/api/v1/users/{alice_id}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.json
        return answer

    monkeypatch.setattr(send_holds, "must_hold", disabled_meanwhile)
    result = send_outgoing(queued["id"])
    monkeypatch.undo()

    assert smtp_server.messages == [], result
    db.session.expire_all()
    assert db.session.get(OutgoingMessage, queued["id"]).state == "held", result
    assert result["skipped"] and result["state"] == "held"
