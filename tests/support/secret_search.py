"""Everything Mailroom wrote, as text, for tests that search it for a secret.

``database_text()`` dumps every column of every row of every table (read
through SQLAlchemy reflection, so tables added later are searched too);
``redis_text()`` dumps every key and value in the test Redis, with RQ's job
payloads (zlib-compressed pickles) decompressed and unpickled, so a secret in
a job's args, kwargs, meta or result is found whatever its encoding.
"""

from __future__ import annotations

import pickle
import zlib

import sqlalchemy as sa


def database_text() -> str:
    """All values of all rows of all tables of the app's database, one row per line."""
    from webapp.extensions import db

    metadata = sa.MetaData()
    metadata.reflect(bind=db.engine)
    lines = []
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                lines.append(f"{table.name}: " + " | ".join(_text(v) for v in row))
    return "\n".join(lines)


def _text(value) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("latin-1")
    return str(value)


def _decoded(raw: bytes) -> list[str]:
    """The raw bytes as text, plus whatever an RQ payload holds when it is one."""
    out = [raw.decode("latin-1")]
    for data in (raw, _inflate(raw)):
        if data is None:
            continue
        if data is not raw:
            out.append(data.decode("latin-1"))
        try:
            value = pickle.loads(data)  # noqa: S301 (our own test Redis)
        except Exception:
            continue
        out.append(repr(value))
    return out


def _inflate(raw: bytes) -> bytes | None:
    try:
        return zlib.decompress(raw)
    except zlib.error:
        return None


def redis_text(redis) -> str:
    """Every key and every value (strings, hashes, lists, sets, sorted sets, streams) in the Redis db."""
    parts = []
    for key in redis.scan_iter(count=500):
        parts.append(key.decode("latin-1"))
        kind = redis.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [redis.get(key) or b""]
        elif kind == "hash":
            for field, value in redis.hgetall(key).items():
                values += [field, value]
        elif kind == "list":
            values = redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(redis.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            for _id, fields in redis.xrange(key):
                for field, value in fields.items():
                    values += [field, value]
        for value in values:
            parts.extend(_decoded(value))
    return "\n".join(parts)


def rq_jobs(redis) -> list:
    """Every RQ job stored in Redis, fetched as ``rq.job.Job`` (args, kwargs, meta and results readable)."""
    from rq.job import Job

    jobs = []
    for key in redis.scan_iter(match="rq:job:*", count=500):
        name = key.decode()
        if name.count(":") != 2:
            continue  # rq:job:<id>:dependents and the like
        jobs.append(Job.fetch(name.split(":", 2)[2], connection=redis))
    return jobs
