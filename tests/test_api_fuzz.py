"""Property-based fuzzing of /api/v1 from its own OpenAPI description: no request may get a 5xx.

Two passes over every operation of ``/api/v1/openapi.json``, in-process against the WSGI app,
as a real administrator with a real token, on whichever database the run uses:

1. Schemathesis (Hypothesis underneath) generates requests that fit the description and
   requests that break it, once with the path pointing at real rows (so bodies reach the
   validators and the database) and once with generated ids; fixed examples per operation,
   derandomized, so a run is repeatable.
2. Hand-written odd values (2**31, 2**63, -1, 0, huge strings, NUL, lone surrogates, deep
   JSON, wrong types, empty and non-JSON bodies) in every path parameter, every query
   parameter and every body field (one level into nested objects), one at a time.

It prints how many requests it sent and how many 5xx it saw, and fails on any 5xx.

A third test holds the server to its description (Schemathesis's conformance checks, as a user
and as an administrator): every answer's status, Content-Type and JSON body as described, a
request that breaks the schema refused (4xx), and one that fits it accepted, except for a 422
from the operations whose rules go beyond the schema (``openapi.BEYOND_SCHEMA``).

Size: in ``make test`` and CI, pass 1 generates 3 examples per operation and mode, and pass 2
sends every odd value to every path and query parameter and every raw body, but only a third
of the odd JSON values to each body field (a different third to the next field, so each value
still reaches each operation's body): about 4,800 requests instead of 8,700.
``MAILROOM_FUZZ=full`` runs the size it had before the suite was cut for time (10 examples,
every value in every field); ``MAILROOM_FUZZ_EXAMPLES=N`` sets pass 1 alone.  Run the full
size after changing the API or its validation:
``MAILROOM_FUZZ=full .venv/bin/pytest tests/test_api_fuzz.py -s``.
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi import checks as conformance

from tests.support.api_fuzz_support import (
    ODD_JSON_VALUES,
    ODD_PATH_VALUES,
    ODD_QUERY_VALUES,
    ODD_RAW_BODIES,
    Counter,
    dumps,
    seed_world,
)
from webapp.api import openapi

#: Generated examples per operation and mode (operations x up to 3 modes x this requests).
FULL = os.environ.get("MAILROOM_FUZZ", "").lower() == "full"
EXAMPLES = int(os.environ.get("MAILROOM_FUZZ_EXAMPLES") or (10 if FULL else 3))

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def fuzz(app, api, users, request):
    """The seeded app behind a request counter; prints the totals when the test ends."""
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash must be a 500 we can count, not an exception
    ids = seed_world(api, users)
    counter = Counter(app.wsgi_app)
    app.wsgi_app = counter
    yield counter, ids
    database = app.extensions["sqlalchemy"].engine.dialect.name
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(
            f"\nAPI fuzz ({database}): {counter.requests} requests, {len(counter.server_errors)} with a 5xx answer"
        )


def _operations(app, *, conformance: bool = False):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    if conformance:
        # A NUL in any string is refused before any view (docs/api.md), which no schema type says; the
        # token is ours to send, not a parameter to break.
        schema.config.generation.update(allow_x00=False, with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Deletions last, so the real rows stay for the other operations as long as possible.
    return sorted(operations, key=lambda op: (op.method.upper() == "DELETE", op.path))


def _schemathesis_pass(operation, headers: dict, path_parameters: dict | None, mode) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case):
        case.call(headers=headers)

    run()


def test_api_fuzz_never_answers_5xx(app, users, fuzz):
    counter, ids = fuzz
    headers = {"Authorization": f"Bearer {users['admin']['token']}"}
    for operation in _operations(app):
        names = [p.name for p in operation.path_parameters]
        real = {name: ids.get(name, "1") for name in names} if names else None
        if real:
            _schemathesis_pass(operation, headers, real, GenerationMode.POSITIVE)
        _schemathesis_pass(operation, headers, None, GenerationMode.POSITIVE)
        _schemathesis_pass(operation, headers, real, GenerationMode.NEGATIVE)
        _odd_values_pass(app.test_client(), operation, headers, ids)
    assert counter.requests > 1000
    assert counter.server_errors == [], "\n".join(counter.server_errors[:50])


# -- the hand-written pass ------------------------------------------------------------------

_PARAM = re.compile(r"{([^}]+)}")


def _url(path: str, ids: dict, override: dict | None = None) -> str:
    values = {**ids, **(override or {})}
    values.update({name: "1" for name in _PARAM.findall(path) if name not in values})
    for name in list(values):
        path = path.replace(
            "{" + name + "}", values[name] if override and name in override else quote(values[name])
        )
    return path


def _body_fields(operation) -> dict[str, dict]:
    """Top-level body fields and, for object fields, ``parent.child`` one level down."""
    body = operation.definition.raw.get("requestBody", {})
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    fields: dict[str, dict] = {}
    for name, sub in schema.get("properties", {}).items():
        fields[name] = sub
        for child in sub.get("properties", {}):
            fields[f"{name}.{child}"] = sub["properties"][child]
    return fields


def _with_value(field: str, value) -> dict:
    parent, _, child = field.partition(".")
    return {parent: {child: value}} if child else {parent: value}


def _odd_values_pass(client, operation, headers: dict, ids: dict) -> None:
    method, path = operation.method.upper(), operation.path
    send = lambda url, **kw: client.open(url, method=method, headers=headers, **kw)  # noqa: E731
    for param in operation.path_parameters:
        for value in ODD_PATH_VALUES:
            send(_url(path, ids, {param.name: value}))
    base = _url(path, ids)
    for param in operation.query:
        for value in ODD_QUERY_VALUES:
            send(f"{base}?{param.name}={value}")
    if "requestBody" not in operation.definition.raw:
        return
    for data, content_type in ODD_RAW_BODIES:
        send(base, data=data, content_type=content_type)
    fields = list(_body_fields(operation))
    # Full size: every odd value in every field.  Default: field i gets every k-th value starting at
    # i % k (k = 3, or the number of fields when fewer), so each value still reaches each body.
    stride = 1 if FULL else max(1, min(3, len(fields)))
    for i, field in enumerate(fields):
        for value in ODD_JSON_VALUES[i % stride :: stride]:
            send(base, data=dumps(_with_value(field, value)), content_type="application/json")


# -- the description's promises -------------------------------------------------------------

CONFORMANCE_CHECKS = [
    conformance.status_code_conformance,
    conformance.content_type_conformance,
    conformance.response_schema_conformance,
    conformance.negative_data_rejection,
    conformance.positive_data_acceptance,
]


def _disagreements(operation, headers: dict, path_parameters: dict | None, mode, found: dict) -> None:
    """Each check that fails, once per operation, check and status, with the first request that showed it."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
    beyond = operation.definition.raw["operationId"] in openapi.BEYOND_SCHEMA

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case):
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CONFORMANCE_CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                if beyond and isinstance(failure, RejectedPositiveData) and response.status_code == 422:
                    continue
                key = (operation.label, failure.title, response.status_code)
                found.setdefault(
                    key, f"{mode.value}: {case.as_curl_command()[:300]} -> {response.text[:300]}"
                )

    try:
        run()
    except Unsatisfiable:  # negative mode, nothing to break: no query or body (the path is fixed)
        assert mode == GenerationMode.NEGATIVE


def test_api_answers_as_its_description_says(app, api, users):
    """Status codes, Content-Types and bodies as described; schema-breaking requests refused, fitting ones taken."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    ids = seed_world(api, users)
    found: dict[tuple, str] = {}
    for role in ("alice", "admin"):
        headers = {"Authorization": f"Bearer {users[role]['token']}"}
        for operation in _operations(app, conformance=True):
            names = [p.name for p in operation.path_parameters]
            real = {name: ids.get(name, "1") for name in names} if names else None
            _disagreements(operation, headers, real, GenerationMode.POSITIVE, found)
            _disagreements(operation, headers, real, GenerationMode.NEGATIVE, found)
    report = "\n".join(
        f"{label}: {title} ({status})\n    {example}" for (label, title, status), example in found.items()
    )
    assert found == {}, report
