"""The whole messages fetched so far (``message_bodies`` table) and the ones the server no longer has.

A message whose folder or UID no longer exists on the server is remembered
for an hour in Redis as "gone", so the pages and the API answer 404 with that
reason instead of starting the same failing fetch again and again.  The fetch
itself is the job :mod:`webapp.jobs.bodies`.
"""

from __future__ import annotations

from .extensions import db
from .models import Message, MessageBody
from .queue import get_redis

GONE_TEXT = "This message is no longer on the server (it was moved or deleted there since the last sync)."
GONE_TTL = 3600


def cached_raw(message: Message) -> bytes | None:
    row = db.session.get(MessageBody, message.id)
    return bytes(row.raw) if row is not None else None


def _gone_key(message_pk: int) -> str:
    return f"mailroom:body-gone:{message_pk}"


def is_gone(message: Message) -> bool:
    return bool(get_redis().exists(_gone_key(message.id)))


def mark_gone(message_pk: int) -> None:
    get_redis().set(_gone_key(message_pk), "1", ex=GONE_TTL)
