"""A mailbox's filter rules: validation, ordering, storage and matching (no IMAP here).

A rule has conditions (``from``, ``to``, ``subject`` or a named ``header``; ``contains`` or
``equals``, both case-insensitive) combined with ``all``/``any``, and actions (``move`` to a
folder of the same mailbox, ``mark_read``, ``flag``).  Rules are kept in ``position`` order,
0..n-1.  Matching works on a stored :class:`~webapp.models.Message` plus, for header
conditions, the header values fetched from the server (they are not stored);
:mod:`webapp.filter_actions` carries the actions out over IMAP.

Semantics when several rules match one message: every matching rule's flag actions apply; the
first matching rule with a move decides where the message goes (it can only be in one folder).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from flask_babel import gettext as _

from .errors import Invalid, NotFound
from .extensions import db
from .folders import selectable
from .models import Account, Filter, Folder, Message
from .validation import record_id

FIELDS = ("from", "to", "subject", "header")
OPS = ("contains", "equals")
MATCHES = ("all", "any")
ACTIONS = ("move", "mark_read", "flag")
MAX_CONDITIONS = 20
MAX_ACTIONS = 10
MAX_VALUE = 500
#: RFC 5322 field names: printable ASCII without the colon.
_HEADER_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,76}$")
_KNOWN_KEYS = {"name", "match", "conditions", "actions", "enabled", "position"}


# Validation ----------------------------------------------------------------------------------


def clean_filter(account: Account, data: Any, existing: Filter | None = None) -> dict[str, Any]:
    """Validate a rule posted by the API or the page; field errors (``conditions[0].value``) → 422.

    With ``existing`` (PATCH) only the given keys are checked and returned.
    """
    if not isinstance(data, dict):
        raise Invalid({"body": _("must be a JSON object")})
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for key in set(data) - _KNOWN_KEYS:
        errors[key] = _("unknown field")
    partial = existing is not None
    if "name" in data or not partial:
        name = data.get("name", "")
        if not isinstance(name, str) or len(name.strip()) > 120:
            errors["name"] = _("must be text of at most 120 characters")
        else:
            out["name"] = name.strip()
    if "match" in data or not partial:
        match = data.get("match", "all")
        if match not in MATCHES:
            errors["match"] = _("must be all or any")
        else:
            out["match"] = match
    if "enabled" in data or not partial:
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            errors["enabled"] = _("must be true or false")
        else:
            out["enabled"] = enabled
    if "position" in data:
        position = data["position"]
        if not isinstance(position, int) or isinstance(position, bool) or position < 0:
            errors["position"] = _("must be a whole number from 0")
        else:
            out["position"] = position
    if "conditions" in data or not partial:
        conditions = _clean_conditions(data.get("conditions"), errors)
        if conditions is not None:
            out["conditions"] = conditions
    if "actions" in data or not partial:
        actions = _clean_actions(account, data.get("actions"), errors)
        if actions is not None:
            out["actions"] = actions
    if errors:
        raise Invalid(errors, "The filter is not valid.")
    return out


def _clean_conditions(value: Any, errors: dict[str, str]) -> list[dict] | None:
    if not isinstance(value, list) or not value:
        errors["conditions"] = _("at least one condition is needed")
        return None
    if len(value) > MAX_CONDITIONS:
        errors["conditions"] = _("at most %(MAX_CONDITIONS)s conditions", MAX_CONDITIONS=MAX_CONDITIONS)
        return None
    out = []
    for i, item in enumerate(value):
        at = f"conditions[{i}]"
        if not isinstance(item, dict):
            errors[at] = _("must be an object with field, op and value")
            continue
        for key in set(item) - {"field", "header", "op", "value"}:
            errors[f"{at}.{key}"] = _("unknown field")
        cond: dict[str, str] = {}
        fld = item.get("field")
        if fld not in FIELDS:
            errors[f"{at}.field"] = "must be one of " + ", ".join(FIELDS)
        else:
            cond["field"] = fld
        if fld == "header":
            header = item.get("header")
            if not isinstance(header, str) or not _HEADER_NAME.match(header.strip()):
                errors[f"{at}.header"] = _("a header name is needed (letters, digits and dashes, no colon)")
            else:
                cond["header"] = header.strip()
        elif item.get("header") not in (None, ""):
            errors[f"{at}.header"] = _("only a header condition names a header")
        op = item.get("op", "contains")
        if op not in OPS:
            errors[f"{at}.op"] = _("must be contains or equals")
        else:
            cond["op"] = op
        text = item.get("value")
        if not isinstance(text, str) or not text.strip():
            errors[f"{at}.value"] = _("must not be empty")
        elif len(text) > MAX_VALUE:
            errors[f"{at}.value"] = _("at most %(MAX_VALUE)s characters", MAX_VALUE=MAX_VALUE)
        else:
            cond["value"] = text.strip()
        out.append(cond)
    return out


def _clean_actions(account: Account, value: Any, errors: dict[str, str]) -> list[dict] | None:
    if not isinstance(value, list) or not value:
        errors["actions"] = _("at least one action is needed")
        return None
    if len(value) > MAX_ACTIONS:
        errors["actions"] = _("at most %(MAX_ACTIONS)s actions", MAX_ACTIONS=MAX_ACTIONS)
        return None
    out: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(value):
        at = f"actions[{i}]"
        if not isinstance(item, dict):
            errors[at] = _("must be an object with a type")
            continue
        kind = item.get("type")
        for key in set(item) - ({"type", "folder_id"} if kind == "move" else {"type"}):
            errors[f"{at}.{key}"] = _("unknown field")
        if kind not in ACTIONS:
            errors[f"{at}.type"] = "must be one of " + ", ".join(ACTIONS)
            continue
        if kind in seen:
            errors[f"{at}.type"] = _("this action is already in the rule")
            continue
        seen.add(kind)
        if kind == "move":
            folder = _target_folder(account, item.get("folder_id"))
            if isinstance(folder, str):
                errors[f"{at}.folder_id"] = folder
                continue
            out.append({"type": "move", "folder_id": folder.id})
        else:
            out.append({"type": kind})
    return out


def _target_folder(account: Account, folder_id: Any) -> Folder | str:
    """The folder a rule moves to, or the reason it cannot be one."""
    if folder_id is None or folder_id == "":
        return _("choose a folder of this mailbox")
    try:
        folder_id = record_id(folder_id)
    except ValueError as exc:  # names the range: 2**40 is a whole number, just not an id
        return str(exc)
    folder = db.session.get(Folder, folder_id)
    if folder is None or folder.account_id != account.id:
        return _("no such folder in this mailbox")
    if not folder.exists_on_server:
        return _('"%(folder)s" no longer exists on the server', folder=folder.display_name)
    if not selectable(folder):
        return _('"%(folder)s" cannot hold messages (\\Noselect)', folder=folder.display_name)
    return folder


# Storage -------------------------------------------------------------------------------------


def ordered(account: Account, enabled_only: bool = False) -> list[Filter]:
    q = Filter.query.filter_by(account_id=account.id)
    if enabled_only:
        q = q.filter(Filter.enabled.is_(True))
    return q.order_by(Filter.position, Filter.id).all()


def get_filter(account: Account, filter_id: int) -> Filter:
    rule = db.session.get(Filter, filter_id)
    if rule is None or rule.account_id != account.id:
        raise NotFound(_("No such filter in this mailbox."))
    return rule


def create_filter(account: Account, cleaned: dict[str, Any]) -> Filter:
    """Append the rule (or insert it at ``position``); commits."""
    rules = ordered(account)
    rule = Filter(account_id=account.id, position=len(rules))
    _assign(rule, cleaned)
    db.session.add(rule)
    db.session.flush()
    if "position" in cleaned:
        _place(account, rule, cleaned["position"])
    db.session.commit()
    return rule


def update_filter(rule: Filter, cleaned: dict[str, Any]) -> Filter:
    _assign(rule, cleaned)
    if "position" in cleaned:
        _place(rule.account_id, rule, cleaned["position"])
    db.session.commit()
    return rule


def delete_filter(rule: Filter) -> None:
    account_id = rule.account_id
    db.session.delete(rule)
    db.session.flush()
    _renumber(Filter.query.filter_by(account_id=account_id).order_by(Filter.position, Filter.id).all())
    db.session.commit()


def move_filter(rule: Filter, position: int) -> Filter:
    """Put the rule at ``position`` (0 = first; beyond the end = last), the others keep their order."""
    _place(rule.account_id, rule, position)
    db.session.commit()
    return rule


def _assign(rule: Filter, cleaned: dict[str, Any]) -> None:
    for key in ("name", "match", "enabled"):
        if key in cleaned:
            setattr(rule, key, cleaned[key])
    if "conditions" in cleaned:
        rule.conditions = json.dumps(cleaned["conditions"])
    if "actions" in cleaned:
        rule.actions = json.dumps(cleaned["actions"])


def _place(account: Account | int, rule: Filter, position: int) -> None:
    account_id = account if isinstance(account, int) else account.id
    rules = [
        r
        for r in Filter.query.filter_by(account_id=account_id).order_by(Filter.position, Filter.id)
        if r.id != rule.id
    ]
    rules.insert(max(0, min(position, len(rules))), rule)
    _renumber(rules)


def _renumber(rules: list[Filter]) -> None:
    for i, r in enumerate(rules):
        r.position = i


def conditions_of(rule: Filter) -> list[dict]:
    return json.loads(rule.conditions or "[]")


def actions_of(rule: Filter) -> list[dict]:
    return json.loads(rule.actions or "[]")


def filter_as_dict(rule: Filter) -> dict[str, Any]:
    return {
        "id": rule.id,
        "account_id": rule.account_id,
        "position": rule.position,
        "name": rule.name,
        "match": rule.match,
        "enabled": rule.enabled,
        "conditions": conditions_of(rule),
        "actions": actions_of(rule),
    }


def header_names(rules: list[Filter]) -> set[str]:
    """The header names the rules' header conditions need fetched from the server (lower-case)."""
    return {c["header"].lower() for rule in rules for c in conditions_of(rule) if c.get("field") == "header"}


# Matching ------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """What a rule can look at: the stored envelope and the fetched header values (lower-case names)."""

    uid: int
    message: Message
    headers: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Decision:
    """The combined outcome of every matching rule for one message."""

    rules: list[Filter] = field(default_factory=list)
    rule_ids: list[int] = field(default_factory=list)
    mark_read: bool = False
    flag: bool = False
    move_to: int | None = None
    move_rule: Filter | None = None


def matches(rule: Filter, candidate: Candidate) -> bool:
    tests = [_condition(c, candidate) for c in conditions_of(rule)]
    if not tests:
        return False
    return all(tests) if rule.match == "all" else any(tests)


def decide(rules: list[Filter], candidate: Candidate) -> Decision:
    """Apply the rules in order to one message; see the module docstring for several matches."""
    out = Decision()
    for rule in rules:
        if not rule.enabled or not matches(rule, candidate):
            continue
        out.rules.append(rule)
        out.rule_ids.append(rule.id)
        for action in actions_of(rule):
            if action["type"] == "mark_read":
                out.mark_read = True
            elif action["type"] == "flag":
                out.flag = True
            elif action["type"] == "move" and out.move_to is None:
                out.move_to, out.move_rule = int(action["folder_id"]), rule
    return out


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _condition(cond: dict, candidate: Candidate) -> bool:
    msg = candidate.message
    value = _norm(cond["value"])
    op = cond.get("op", "contains")
    kind = cond["field"]
    if kind == "from":
        texts = [f"{msg.from_name} <{msg.from_addr}>"]
        exact = [msg.from_addr or "", msg.from_name or ""]
    elif kind == "to":
        listed = ", ".join(x for x in (msg.to_addrs, msg.cc_addrs) if x)
        texts = [listed]
        exact = [addr for _, addr in getaddresses([listed])] + [name for name, _ in getaddresses([listed])]
    elif kind == "subject":
        texts = exact = [msg.subject or ""]
    else:
        texts = exact = candidate.headers.get(cond["header"].lower(), [])
    if op == "equals":
        return any(_norm(t) == value for t in exact if t)
    return any(value in _norm(t) for t in texts if t)
