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
from ..models import (
    Account,
    Alias,
    Filter,
    LogLevel,
    LogSource,
    OAuthApp,
    OutgoingAttachment,
    OutgoingState,
    Service,
    User,
)
from ..out_of_office import MAX_BODY, MAX_SUBJECT
from ..passwords import DEFAULT_MIN_LENGTH as DEFAULT_MIN_PASSWORD
from ..passwords import MAX_LENGTH as MAX_PASSWORD
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


#: Python's whitespace (what ``str.strip`` removes), spelled out: a schema's ``\s`` is ECMA's, which differs.
_WS = "\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
SPACE = f"[{_WS}]"
NOT_SPACE = f"[^{_WS}]"


def stripped(max_length: int, allowed: str = r"[\s\S]", nullable: bool = False) -> dict:
    """Text the server strips before checking it: at most ``max_length`` characters of ``allowed``
    between any spaces (so the limit is a pattern: ``maxLength`` would count the spaces)."""
    pattern = f"^{SPACE}*{allowed}{{0,{max_length}}}{SPACE}*$"
    return {"type": ["string", "null"] if nullable else "string", "pattern": pattern}


def line(column, nullable: bool = False) -> dict:
    """A one-line text field as ``validation.text`` reads it: no control character once stripped."""
    return stripped(column_length(column), r"[^\x00-\x1f]", nullable)


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
    host=string(Account.imap_host, pattern=NOT_SPACE),
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


def _nonempty(items: dict, max_items: int) -> dict:
    return {**array(items, max_items), "minItems": 1}


#: 0 is first; beyond the end is last.
POSITION = {"type": "integer", "minimum": 0}
CONDITION_OP = enum("contains", "equals")
CONDITION_VALUE = string(max_length=MAX_VALUE, pattern=NOT_SPACE)  # not blank
FILTER = obj(
    (),
    name=stripped(column_length(Filter.name)),
    match=enum("all", "any"),
    enabled=BOOLEAN,
    position=POSITION,
    conditions=_nonempty(
        {
            "oneOf": [
                obj(
                    ("field", "header", "value"),
                    field=enum("header"),
                    header=string(
                        max_length=120, pattern=f"^{SPACE}*[\\x21-\\x39\\x3b-\\x7e]{{1,76}}{SPACE}*$"
                    ),
                    op=CONDITION_OP,
                    value=CONDITION_VALUE,
                ),
                obj(
                    ("field", "value"),
                    field=enum(*(f for f in FILTER_FIELDS if f != "header")),
                    header=enum("", nullable=True),  # only a header condition names one
                    op=CONDITION_OP,
                    value=CONDITION_VALUE,
                ),
            ]
        },
        MAX_CONDITIONS,
    ),
    # Only a move names its folder (one of the mailbox's); each action type at most once.
    actions=_nonempty(
        {
            "oneOf": [
                obj(("type", "folder_id"), type=enum("move"), folder_id=ID),
                obj(("type",), type=enum(*(a for a in FILTER_ACTIONS if a != "move"))),
            ]
        },
        MAX_ACTIONS,
    ),
)
SERVICE = obj(
    (),
    name=line(Service.name),
    imap=ENDPOINT,
    smtp=ENDPOINT,
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
    username=line(Account.username),
    password=string(max_length=1024),
    email=line(Account.email, nullable=True),  # null: the login when it is an address
    description=line(Account.description, nullable=True),
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
    smtp_username=line(Account.smtp_username, nullable=True),
    smtp_password=string(max_length=1024, nullable=True),
    smtp_from=line(Account.smtp_from, nullable=True),
)
#: Where the mail comes from: a service or hand-typed servers, never both.
_SOURCES = [{"required": ["service_id"]}, {"required": ["manual"]}]
CREDENTIALS = obj(
    ("username", "password"),
    username=string(Account.username, minLength=1),
    password=string(max_length=1024, minLength=1),
    smtp_username=string(Account.smtp_username, nullable=True),
    smtp_password=string(max_length=1024, nullable=True),
)
PAGE = {"limit": integer(1, MAX_LIMIT), "cursor": string(), "q": string(max_length=200)}

#: The JSON body each view reads (endpoint without ``api.``); an endpoint missing here has none.
REQUEST_BODIES: dict[str, dict] = {
    "create_token": obj(
        ("username", "password"),
        username=string(User.username, minLength=1),
        password=string(max_length=1024, minLength=1),
        name=string(max_length=100),
        days=integer(1, 3650),
    ),
    "create_user": obj(
        ("username", "password"),
        username=string(User.username),
        password=string(max_length=1024),
        admin=BOOLEAN,
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
    "create_account": {**ACCOUNT, "required": ["username", "password"], "oneOf": _SOURCES},
    "patch_account": {**ACCOUNT, "not": {"required": ["service_id", "manual"]}},
    "create_filter": {**FILTER, "required": ["conditions", "actions"]},
    "patch_filter": FILTER,
    "move_filter": {
        **obj((), position=POSITION, direction=enum("up", "down")),
        "anyOf": [{"required": ["position"]}, {"required": ["direction"]}],
    },
    "put_out_of_office": obj(
        (),
        enabled=BOOLEAN,
        starts_at=string(nullable=True, format="date-time"),
        ends_at=string(nullable=True, format="date-time"),
        subject=string(max_length=MAX_SUBJECT),
        body=string(max_length=MAX_BODY),
        interval_days=integer(1, 30),
    ),
    "discover": obj(("email",), email=string(Account.email)),
    "patch_folder": obj((), sync=BOOLEAN, role=enum(*FOLDER_ROLES, nullable=True)),
    "patch_me": obj(
        (),
        # null (or blank) empties the field
        first_name=line(User.first_name, nullable=True),
        last_name=line(User.last_name, nullable=True),
        job_title=line(User.job_title, nullable=True),
        phone=stripped(column_length(User.phone), r"[0-9 +\-./()]", nullable=True),
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
    # A new mailbox names its service; signing in again names the mailbox (its service by default).
    "start_oauth": {
        **obj((), service_id=ID, account_id=ID),
        "anyOf": [{"required": ["service_id"]}, {"required": ["account_id"]}],
    },
    "send_message": SEND,
    "patch_outgoing": {**SEND, "required": []},
    "patch_message": {**obj((), seen=BOOLEAN, flagged=BOOLEAN), "minProperties": 1},
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

_STATE = "(?:" + "|".join(s.value for s in OutgoingState) + ")"
_STATES = f"^{SPACE}*(?:{_STATE}{SPACE}*)?(?:,{SPACE}*(?:{_STATE}{SPACE}*)?)*$"

#: Bodies with a new console password (at least PASSWORD_MIN_LENGTH characters, no space at either end).
NEW_PASSWORDS = {
    "create_user": "password",
    "reset_password": "password",
    "change_my_password": "new_password",
}

#: The query parameters each view reads.
QUERY_PARAMETERS: dict[str, dict[str, dict]] = {
    "list_accounts": {"all": enum("", "1", "true", "0", "false")},
    "logs": {
        # An empty value is no filter, as for every filter of the log.
        "source": enum("", *(s.value for s in LogSource)),
        "level": enum("", *(lv.value for lv in LogLevel)),
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
    # One state or several, comma-separated (?state=scheduled,failed); empty: every state.
    "list_outgoing": {"state": string(max_length=200, pattern=_STATES), "limit": integer(1, 500)},
}

#: Query parameters a view cannot do without (the others are optional).
REQUIRED_QUERY: dict[str, set[str]] = {"correspondent_history": {"address"}}

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

_FETCHING = "while the message's body is fetched from the server; ask again when that job has finished"
_REPLY_ACCEPTED = (
    '"send": true: {id, state, message_id, job_id, status_url} as POST /messages/send; or, '
    "the original not fetched yet, {job_id, status_url, message_id, draft: null} (ask again when it finished)"
)

#: Views with a second success answer: its status and what it holds.
OTHER_SUCCESS: dict[str, tuple[int, str]] = {
    "account_message": (
        202,
        "The message with body: null and the fetch job {job_id, status_url}, " + _FETCHING,
    ),
    "get_message": (202, "The message with body: null and the fetch job {job_id, status_url}, " + _FETCHING),
    "message_attachment": (202, "{job_id, status_url, body: null} " + _FETCHING),
    "reply_message": (202, _REPLY_ACCEPTED),
    "reply_all_message": (202, _REPLY_ACCEPTED),
    "forward_message": (202, _REPLY_ACCEPTED),
    "patch_account": (
        202,
        "A working mailbox's new login, password or servers are tried first (the job at status_url, also "
        "Location and test: {job_id, status_url}) and saved only if the test passes; the mailbox keeps its "
        "working settings meanwhile, the edit's other fields are saved at once",
    ),
}

#: What a success answer holds, where "Success" says too little.
_REPLY_ANSWER = (
    "The draft {mode, message_id, from, to, cc, subject, text, html, in_reply_to, references, attachments}"
)
SUCCESS_DESCRIPTIONS: dict[str, str] = {
    "message_attachment": "The attachment's bytes, with its own Content-Type",
    "outgoing_attachment": "The attachment's bytes, with its own Content-Type",
    "reply_message": _REPLY_ANSWER,
    "reply_all_message": _REPLY_ANSWER,
    "forward_message": _REPLY_ANSWER,
    "create_account": "The mailbox (state new), with test: {job_id, status_url}, its connection test started at once",
    "patch_account": (
        "The mailbox; with test: {job_id, status_url} when its login, password or servers changed and it "
        "was not working (saved and tested at once)"
    ),
}

_ADDRESSES = "email addresses"
_MESSAGE = (
    "email addresses, a From you may send as, attachments (base64, a MIME type, a file name), header "
    "names, Message-IDs, send_at in the future, a text or HTML"
)
_HOSTS = "host names or IP addresses"
#: What the server checks beyond the schema: a request that fits the schema may still be a 422 naming
#: the field for these (said in the 422 answer).  tests/test_api_fuzz.py holds every other operation to
#: accepting what fits the schema.
BEYOND_SCHEMA: dict[str, str] = {
    "account_messages": "a cursor must come from a previous page",
    "unified_messages": "a cursor must come from a previous page",
    "list_threads": "a cursor must come from a previous page",
    "correspondent_history": "an email address; a cursor must come from a previous page",
    "create_account": f"{_ADDRESSES}, {_HOSTS}, a visible service, manual servers allowed, push only with IMAP",
    "patch_account": f"{_ADDRESSES}, {_HOSTS}, a visible service, manual servers allowed, push only with IMAP",
    "create_filter": "a move's folder must be one of the mailbox's; each action type at most once",
    "patch_filter": "a move's folder must be one of the mailbox's; each action type at most once",
    "put_out_of_office": "the reply text before it is turned on; the end after the start",
    "create_service": f"{_HOSTS}, a PEM certificate, a name not taken",
    "patch_service": f"{_HOSTS}, a PEM certificate; a built-in service takes only hidden and max_connections",
    "patch_settings": "the default mailboxes must exist; allowed_internal_hosts are host names or networks",
    "put_oauth_app": "https:// URLs, required for a corporate service; a tenant only for Microsoft",
    "start_oauth": "a service that signs in with OAuth2, with its OAuth2 app set up",
    "create_user": "a username of letters, digits and . _ - @ +, not taken",
    "change_my_password": "the current password must be right",
    "discover": "an email address",
    "add_alias": "an email address you may use",
    "send_message": _MESSAGE,
    "patch_outgoing": _MESSAGE,
    "reply_message": _MESSAGE,
    "reply_all_message": _MESSAGE,
    "forward_message": _MESSAGE + "; forward_attachments only in a forward, numbers of the original's",
    "message_actions": "a move's folder must be one of the messages' mailbox",
}

#: Views whose success answer is a file, not JSON.
BINARY = {"message_attachment", "outgoing_attachment"}

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


def request_body(name: str, min_password: int) -> dict:
    """The body's schema; a new console password follows the configured rule (webapp.passwords)."""
    schema = REQUEST_BODIES[name]
    if name in NEW_PASSWORDS:
        field = NEW_PASSWORDS[name]
        rule = {
            "minLength": min_password,
            "maxLength": MAX_PASSWORD,
            "pattern": f"^{NOT_SPACE}(?:[\\s\\S]*{NOT_SPACE})?$",
        }
        schema = {**schema, "properties": {**schema["properties"], field: {"type": "string", **rule}}}
    return schema


def operation(rule: Rule, method: str, view, min_password: int) -> dict:
    name = rule.endpoint.removeprefix("api.")
    doc = inspect.getdoc(view) or name.replace("_", " ")
    op: dict[str, Any] = {"operationId": name, "summary": doc.splitlines()[0]}
    params = path_parameters(rule) + [
        {"name": key, "in": "query", "required": key in REQUIRED_QUERY.get(name, ()), "schema": schema}
        for key, schema in QUERY_PARAMETERS.get(name, {}).items()
    ]
    if params:
        op["parameters"] = params
    if name in REQUEST_BODIES:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": request_body(name, min_password)}},
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
            media = "*/*" if name in BINARY and status == "200" else "application/json"
            out[status]["content"] = {media: {"schema": {}}}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    codes = {"default": "Another error, with a sentence"}
    invalid = "A field is not valid (named in fields)"
    if name in BEYOND_SCHEMA:
        invalid += "; beyond this schema the server checks: " + BEYOND_SCHEMA[name]
    if name in REQUEST_BODIES:
        codes.update({"400": "The body is not a JSON object", "422": invalid})
    if name in QUERY_PARAMETERS:
        codes["422"] = invalid
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
    min_password = int(app.config.get("PASSWORD_MIN_LENGTH") or DEFAULT_MIN_PASSWORD)
    for rule in api_rules(app):
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(openapi_path(rule), {})[method.lower()] = operation(
                rule, method, view, min_password
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "Mailroom API", "version": __version__, "description": "See docs/api.md."},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
