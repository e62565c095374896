"""Errors of the domain layer, shared by the HTML forms and the JSON API.

Each carries the HTTP status the API answers with and, for validation, a
mapping of field name to message, so a form can put each message under its
field and the API can return the same mapping.
"""

from __future__ import annotations

from connectors.i18n import N_


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def as_dict(self) -> dict:
        body: dict = {"error": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class Malformed(DomainError):
    status = 400


class Invalid(DomainError):
    """One or more fields are invalid."""

    status = 422

    def __init__(self, fields: dict[str, str], message: str = N_("Some fields are not valid.")):
        super().__init__(message, fields)


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class QueueUnavailable(DomainError):
    """503: the job queue (Redis) cannot be reached, so nothing was started; try again shortly.

    Raised by :mod:`webapp.queue` for every enqueue (and every other Redis call a request
    makes), so a page or an API client gets a sentence and ``Retry-After``, never a traceback.
    """

    status = 503
    code = "queue_unavailable"
    #: Seconds a client should wait before retrying (the ``Retry-After`` header).
    retry_after = 30

    def __init__(
        self,
        message: str = N_(
            "The job queue (Redis) cannot be reached right now, so nothing was started. "
            "Try again in a minute; if it persists, tell the administrators."
        ),
    ):
        super().__init__(message)

    def as_dict(self) -> dict:
        return {"error": self.message, "code": self.code}

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class MailboxUnavailable(Exception):
    """A job cannot use the mailbox now (disabled, service removed, no server for the protocol).

    Not a :class:`DomainError`: jobs raise it before connecting and record it as their outcome.
    """
