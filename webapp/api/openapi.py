"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the API, built from the routes.

Paths, methods, path parameters and who may call (no token, a token, an administrator's
token) come from ``app.url_map`` and the views' decorators, so a new route appears by itself;
request bodies and query parameters come from the tables below, with string lengths taken
from the model columns (:func:`webapp.column_limits.column_length`) so they cannot drift.
``tests/test_openapi.py`` fails when a route has a body or query the tables do not describe.

The description is public (no token): it holds no data, only the shape of the API that
docs/api.md already publishes, and tools (client generators, Schemathesis) read it before
they have a token.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from werkzeug.routing import PathConverter, Rule

from .. import __version__
from ..column_limits import column_length
from ..filters import ACTIONS as FILTER_ACTIONS
from ..filters import FIELDS as FILTER_FIELDS
from ..filters import MAX_ACTIONS, MAX_CONDITIONS, MAX_VALUE
from ..folders import ROLES as FOLDER_ROLES
from ..input_guard import IdConverter
from ..message_changes import ACTIONS as MESSAGE_ACTIONS
from ..message_changes import MAX_IDS as MESSAGE_CHANGE_MAX_IDS
from ..message_queries import MAX_LIMIT, VIEWS
from ..models import Account, Alias, Filter, OAuthApp, OutgoingAttachment, Service, User
from ..out_of_office import MAX_BODY, MAX_SUBJECT
from ..service_trust import MAX_PEM
from ..signatures import MODES as SIGNATURE_MODES
from ..validation import MAX_ID

# -- schema pieces -----------------------------------------------------------------------------

ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
BOOLEAN = {"type": "boolean"}
ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["error"],
}


def string(column=None, *, max_length: int | None = None, nullable: bool = False, **extra) -> dict:
    """A string schema; ``column`` (a model attribute) gives its maxLength."""
    schema: dict[str, Any] = {"type": ["string", "null"] if nullable else "string", **extra}
    limit = max_length or (column_length(column) if column is not None else None)
    if limit:
        schema["maxLength"] = limit
    return schema


def integer(minimum: int, maximum: int) -> dict:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


def enum(*values, nullable: bool = False) -> dict:
    return {"enum": [*values, None] if nullable else list(values)}


def obj(required: tuple[str, ...] = (), **properties: dict) -> dict:
    """A JSON object with exactly these properties (unknown ones are a 422 in every view)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def array(items: dict, max_items: int | None = None) -> dict:
    schema: dict[str, Any] = {"type": "array", "items": items}
    if max_items:
        schema["maxItems"] = max_items
    return schema


ENDPOINT = obj(
    ("host", "port", "security"),
    host=string(Account.imap_host),
    port=integer(1, 65535),
    security=enum("none", "starttls", "tls"),
)
ADDRESSES = {"oneOf": [string(max_length=20000), array(string(Account.email))]}
SEND = obj(
    ("to",),
    **{
        "from": string(Account.email),
        "to": ADDRESSES,
        "cc": ADDRESSES,
        "bcc": ADDRESSES,
        "subject": string(max_length=998),
        "text": string(),
        "html": string(),
        "attachments": array(
            obj(
                ("filename", "content_base64"),
                filename=string(OutgoingAttachment.filename),
                content_type=string(OutgoingAttachment.content_type),
                content_base64=string(),
            )
        ),
        "send_at": string(nullable=True, format="date-time"),
        "in_reply_to": string(max_length=998, nullable=True),
        "references": string(max_length=20000, nullable=True),
        "extra_headers": {"type": "object", "additionalProperties": string(max_length=998)},
    },
)
#: Reply, Reply all, Forward (webapp.replies): the draft's fields to override, what to carry, send or not.
REPLY = obj(
    (),
    send=BOOLEAN,
    forward_attachments=array(integer(1, MAX_ID)),
    **{
        k: SEND["properties"][k]
        for k in ("from", "to", "cc", "bcc", "subject", "text", "html", "attachments", "send_at")
    },
)
FILTER = obj(
    (),
    name=string(Filter.name),
    match=enum("all", "any"),
    enabled=BOOLEAN,
    position=integer(0, MAX_ID),
    conditions=array(
        obj(
            ("field", "value"),
            field=enum(*FILTER_FIELDS),
            header=string(max_length=120),
            op=enum("contains", "equals"),
            value=string(max_length=MAX_VALUE),
        ),
        MAX_CONDITIONS,
    ),
    actions=array(obj(("type",), type=enum(*FILTER_ACTIONS), folder_id=ID), MAX_ACTIONS),
)
SERVICE = obj(
    (),
    name=string(Service.name),
    imap=ENDPOINT,
    smtp=ENDPOINT,
    pop3={"oneOf": [ENDPOINT, {"type": "null"}]},
    hidden=BOOLEAN,
    # A corporate server's own trust (webapp.service_trust): CA certificate(s) as PEM, or no check.
    ca_certificate=string(max_length=MAX_PEM, nullable=True),
    verify_certificate=BOOLEAN,
    # At most this many connections at once to the server (webapp.jobs.connection_slots); null: the plugin's default.
    max_connections={"oneOf": [integer(1, 1000), {"type": "null"}]},
)
ACCOUNT = obj(
    (),
    service_id=ID,
    manual=obj(("imap", "smtp"), imap=ENDPOINT, smtp=ENDPOINT, pop3=ENDPOINT),
    username=string(Account.username),
    password=string(max_length=1024),
    email=string(Account.email),
    description=string(Account.description),
    is_main=BOOLEAN,
    active=BOOLEAN,
    debug=BOOLEAN,
    # Hold INBOX in IMAP IDLE (mailroom idle) and sync within seconds of new mail; IMAP only.
    push=BOOLEAN,
    verify_certificate=BOOLEAN,
    incoming_protocol=enum("imap", "pop3"),
    pop3_leave_on_server=BOOLEAN,
    shared_sender=BOOLEAN,
    signature_mode=enum(*SIGNATURE_MODES),
    signature_text=string(),
    signature_html=string(),
    smtp_requires_auth=BOOLEAN,
    smtp_username=string(Account.smtp_username, nullable=True),
    smtp_password=string(max_length=1024, nullable=True),
    smtp_from=string(Account.smtp_from, nullable=True),
)
CREDENTIALS = obj(
    ("username", "password"),
    username=string(User.username),
    password=string(max_length=1024),
    smtp_username=string(Account.smtp_username, nullable=True),
    smtp_password=string(max_length=1024, nullable=True),
)
PAGE = {"limit": integer(1, MAX_LIMIT), "cursor": string(), "q": string(max_length=200)}

#: The JSON body each view reads (endpoint without ``api.``); an endpoint missing here has none.
REQUEST_BODIES: dict[str, dict] = {
    "create_token": obj(
        ("username", "password"),
        username=string(User.username),
        password=string(max_length=1024),
        name=string(max_length=100),
        days=integer(1, 3650),
    ),
    "create_user": obj(
        ("username", "password"), username=string(User.username), password=string(max_length=1024), admin=BOOLEAN
    ),
    "patch_user": obj((), admin=BOOLEAN, disabled=BOOLEAN),
    "reset_password": obj(("password",), password=string(max_length=1024)),
    "change_my_password": obj(
        ("current_password", "new_password"),
        current_password=string(max_length=1024),
        new_password=string(max_length=1024),
    ),
    "create_service": {**SERVICE, "required": ["name", "imap", "smtp"]},
    "patch_service": SERVICE,
    "test_service": CREDENTIALS,
    "patch_settings": obj(
        (),
        allow_manual_entry=BOOLEAN,
        default_incoming_account_id={"oneOf": [ID, {"type": "null"}]},
        default_outgoing_account_id={"oneOf": [ID, {"type": "null"}]},
        allowed_internal_hosts=array(string(max_length=255)),
        connection_timeout=integer(1, 120),
        sync_interval_minutes=integer(1, 1440),
    ),
    "create_account": ACCOUNT,
    "patch_account": ACCOUNT,
    "create_filter": {**FILTER, "required": ["conditions", "actions"]},
    "patch_filter": FILTER,
    "move_filter": obj((), position=integer(0, MAX_ID), direction=enum("up", "down")),
    "put_out_of_office": obj(
        (),
        enabled=BOOLEAN,
        start=string(nullable=True, format="date-time"),
        end=string(nullable=True, format="date-time"),
        subject=string(max_length=MAX_SUBJECT),
        body=string(max_length=MAX_BODY),
        interval_days=integer(1, 30),
    ),
    "discover": obj(("email",), email=string(Account.email)),
    "patch_folder": obj((), sync=BOOLEAN, role=enum(*FOLDER_ROLES, nullable=True)),
    "patch_me": obj(
        (),
        first_name=string(User.first_name),
        last_name=string(User.last_name),
        job_title=string(User.job_title),
        phone=string(User.phone),
    ),
    "add_alias": obj(("address",), address=string(Alias.address), display_name=string(Alias.display_name)),
    "put_oauth_app": obj(
        ("client_id",),
        client_id=string(OAuthApp.client_id),
        client_secret=string(max_length=1024, nullable=True),
        tenant=string(OAuthApp.tenant, nullable=True),
        scopes=string(max_length=2000),
        enabled=BOOLEAN,
        authorization_url=string(OAuthApp.authorization_url, nullable=True),
        token_url=string(OAuthApp.token_url, nullable=True),
        userinfo_url=string(OAuthApp.userinfo_url, nullable=True),
        revocation_url=string(OAuthApp.revocation_url, nullable=True),
    ),
    "start_oauth": obj((), service_id=ID, account_id=ID),
    "send_message": SEND,
    "patch_outgoing": {**SEND, "required": []},
    "patch_message": obj((), seen=BOOLEAN, flagged=BOOLEAN),
    "message_actions": obj(
        ("ids", "action"),
        ids={**array(ID, MESSAGE_CHANGE_MAX_IDS), "minItems": 1},
        action=enum(*MESSAGE_ACTIONS),
        folder=ID,
    ),
    "reply_message": REPLY,
    "reply_all_message": REPLY,
    "forward_message": REPLY,
}

#: The query parameters each view reads.
QUERY_PARAMETERS: dict[str, dict[str, dict]] = {
    "list_accounts": {"all": enum("1", "true", "0", "false")},
    "logs": {
        "source": string(max_length=32),
        "level": string(max_length=16),
        "account_id": ID,
        "user_id": ID,
        "since": string(format="date-time"),
        "until": string(format="date-time"),
        "q": string(max_length=200),
        "limit": integer(1, 500),
        "cursor": ID,
    },
    "account_messages": {"folder": ID, **PAGE},
    "unified_messages": {"role": enum(*VIEWS), **PAGE},
    "list_threads": {"role": enum(*VIEWS), **PAGE},
    "correspondent_history": {"address": string(Account.email), "limit": PAGE["limit"], "cursor": string()},
    "list_outgoing": {"state": string(max_length=200), "limit": integer(1, 500)},
}

#: The success status of views that do not answer 200.
SUCCESS: dict[str, int] = {
    "create_token": 201,
    "create_user": 201,
    "create_service": 201,
    "create_account": 201,
    "create_filter": 201,
    "add_alias": 201,
    "delete_account": 204,
    "delete_folder": 204,
    "delete_filter": 204,
    "delete_alias": 204,
    "delete_oauth_app": 204,
    "revoke_token": 204,
    "test_account": 202,
    "test_service": 202,
    "sync_account": 202,
    "refresh_folders": 202,
    "run_filters": 202,
    "discover": 202,
    "send_message": 202,
    "patch_outgoing": 202,
    "patch_message": 202,
    "message_actions": 202,
}

#: Views with a second success answer: its status and what it holds.
OTHER_SUCCESS: dict[str, tuple[int, str]] = {
    "patch_account": (
        202,
        "A working mailbox's new login, password or servers are tried first (the job at status_url, also "
        "Location and test: {job_id, status_url}) and saved only if the test passes; the mailbox keeps its "
        "working settings meanwhile, the edit's other fields are saved at once",
    ),
}

#: What a success answer holds, where "Success" says too little.
_REPLY_ANSWER = (
    "The draft {mode, message_id, from, to, cc, subject, text, html, in_reply_to, references, attachments}; "
    'with "send": true, 202 {id, state, message_id, job_id, status_url} as POST /messages/send; '
    "202 {job_id, status_url, draft: null} while the original is fetched (ask again when it finished)"
)
SUCCESS_DESCRIPTIONS: dict[str, str] = {
    "reply_message": _REPLY_ANSWER,
    "reply_all_message": _REPLY_ANSWER,
    "forward_message": _REPLY_ANSWER,
    "create_account": "The mailbox (state new), with test: {job_id, status_url}, its connection test started at once",
    "patch_account": (
        "The mailbox; with test: {job_id, status_url} when its login, password or servers changed and it "
        "was not working (saved and tested at once)"
    ),
}

# -- building ----------------------------------------------------------------------------------

_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def api_rules(app) -> list[Rule]:
    """The ``/api/v1`` rules, in path order."""
    return sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")), key=lambda r: r.rule
    )


def openapi_path(rule: Rule) -> str:
    """``/api/v1/accounts/<int:account_id>`` → ``/api/v1/accounts/{account_id}``."""
    return _VARIABLE.sub(r"{\1}", rule.rule)


def path_parameters(rule: Rule) -> list[dict]:
    out = []
    for name, converter in rule._converters.items():
        schema = ID if isinstance(converter, IdConverter) else string()
        if isinstance(converter, PathConverter):
            schema = string(minLength=1)
        out.append({"name": name, "in": "path", "required": True, "schema": schema})
    return out


def access(view) -> str:
    """``public``, ``token`` or ``admin``: marked on the view by the API's decorators."""
    return getattr(view, "api_access", "public")


def operation(rule: Rule, method: str, view) -> dict:
    name = rule.endpoint.removeprefix("api.")
    doc = inspect.getdoc(view) or name.replace("_", " ")
    op: dict[str, Any] = {"operationId": name, "summary": doc.splitlines()[0]}
    params = path_parameters(rule) + [
        {"name": key, "in": "query", "required": False, "schema": schema}
        for key, schema in QUERY_PARAMETERS.get(name, {}).items()
    ]
    if params:
        op["parameters"] = params
    if name in REQUEST_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": REQUEST_BODIES[name]}},
        }
    op["responses"] = responses(rule, name, access(view))
    if access(view) != "public":
        op["security"] = [{"bearer": []}]
    return op


def responses(rule: Rule, name: str, who: str) -> dict:
    code = SUCCESS.get(name, 200)
    out: dict[str, Any] = {str(code): {"description": SUCCESS_DESCRIPTIONS.get(name, "Success")}}
    if name in OTHER_SUCCESS:
        other, text = OTHER_SUCCESS[name]
        out[str(other)] = {"description": text}
    for status in out:
        if status != "204":
            out[status]["content"] = {"application/json": {"schema": {}}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    codes = {"default": "Another error, with a sentence"}
    if name in REQUEST_BODIES:
        codes.update(
            {"400": "The body is not a JSON object", "422": "A field is not valid (named in fields)"}
        )
    if name in QUERY_PARAMETERS:
        codes["422"] = "A field is not valid (named in fields)"
    if who != "public":
        codes["401"] = "A valid token is required"
    if who == "admin":
        codes["403"] = "This needs an administrator"
    if rule.arguments:
        codes["404"] = "No such object (or not yours)"
    out.update({c: {"description": text, **error} for c, text in codes.items()})
    return out


def build(app) -> dict:
    """The whole description for ``app`` (see the module docstring)."""
    paths: dict[str, dict] = {}
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(openapi_path(rule), {})[method.lower()] = operation(rule, method, view)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mailroom API", "version": __version__, "description": "See docs/api.md."},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
