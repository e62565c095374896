"""LIST a mailbox's folders with their RFC 6154 special-use attributes and, where offered, counts.

Folder names are kept exactly as the server sent them (modified UTF-7, RFC 3501
§5.1.3), because every later command (SELECT, STATUS, FETCH) must carry that
form; the decoded name is for people only.  imapclient would decode names on
the way in and re-encode them on the way out, which is lossy for names that
are not valid modified UTF-7, so this module reads the raw LIST lines itself.

One command does it all on servers that allow it: ``LIST "" "*" RETURN
(CHILDREN SPECIAL-USE STATUS (MESSAGES))`` (RFC 5258, 6154, 5819); servers
without LIST-EXTENDED get a plain ``LIST`` (most still put the special-use
attributes on it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from imapclient import imap_utf7
from imapclient.response_parser import parse_response

from connectors.imap import ImapClient

#: RFC 6154 attributes (and Gmail's XLIST spellings) that name a role the console knows.
SPECIAL_USE_ROLES = {
    "\\drafts": "drafts",
    "\\sent": "sent",
    "\\junk": "spam",
    "\\spam": "spam",
    "\\trash": "trash",
    "\\inbox": "inbox",
}
#: Every RFC 6154 attribute, kept as the folder's ``special_use`` even without a role.
SPECIAL_USE = {"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash"} | {
    "\\spam",
    "\\inbox",
}
#: Attributes that mean the name cannot be SELECTed (RFC 3501, RFC 5258 \NonExistent).
NOSELECT = {"\\noselect", "\\nonexistent"}


@dataclass(frozen=True)
class ListedFolder:
    """One LIST line: the raw name for commands, the decoded name for people."""

    name: str
    display_name: str
    delimiter: str | None
    attributes: tuple[str, ...]
    message_count: int | None = None

    @property
    def selectable(self) -> bool:
        return not any(a.lower() in NOSELECT for a in self.attributes)

    @property
    def special_use(self) -> str | None:
        """The first RFC 6154 attribute, as the server spelled it (``\\Sent``)."""
        for attr in self.attributes:
            if attr.lower() in SPECIAL_USE:
                return attr
        return None

    @property
    def special_use_role(self) -> str | None:
        """The console role its special-use attribute names (``sent``), or INBOX by name."""
        if self.name.upper() == "INBOX":
            return "inbox"
        for attr in self.attributes:
            role = SPECIAL_USE_ROLES.get(attr.lower())
            if role:
                return role
        return None

    @property
    def depth(self) -> int:
        """How deep in the hierarchy: ``Entrata/Posta ricevuta`` is 1."""
        return self.name.count(self.delimiter) if self.delimiter else 0


def decode_name(raw: str) -> str:
    """The readable form of a modified UTF-7 name; the name itself when it is not valid UTF-7."""
    if "&" not in raw:
        return raw
    try:
        return imap_utf7.decode(raw.encode("ascii"))
    except (UnicodeError, ValueError):
        return raw


def _text(value: object) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            # Not allowed by RFC 3501, but some servers send raw UTF-8 names; keep them usable.
            return value.decode("utf-8", "surrogateescape")
    return str(value)


def _lines(items: list) -> list:
    return [item for item in items if item not in (b"", None)]


def parse_list_line(item: bytes | tuple) -> ListedFolder | None:
    """A ListedFolder from one untagged LIST payload (``(\\Sent) "/" Sent``); None if unusable."""
    parsed = parse_response([item])
    if len(parsed) < 3:
        return None
    flags, delimiter, name = parsed[0], parsed[1], parsed[2]
    raw = _text(name)
    attributes = tuple(_text(f) for f in (flags or ()))
    delim = _text(delimiter) if delimiter is not None else None
    return ListedFolder(name=raw, display_name=decode_name(raw), delimiter=delim, attributes=attributes)


def _parse_status(item: bytes | tuple) -> tuple[str, dict[str, int]] | None:
    parsed = parse_response([item])
    if len(parsed) < 2:
        return None
    pairs = parsed[1]
    values = {_text(pairs[i]).upper(): pairs[i + 1] for i in range(0, len(pairs) - 1, 2)}
    return _text(parsed[0]), values


def list_folders(client: ImapClient) -> list[ListedFolder]:
    """Every folder of the logged-in mailbox, INBOX first, then in the server's order."""
    imap = client.imap
    assert imap is not None, "log in first"
    caps = {c.upper() for c in client.capabilities}
    returns = []
    if "LIST-EXTENDED" in caps:
        returns.append("CHILDREN")
        if "SPECIAL-USE" in caps:
            returns.append("SPECIAL-USE")
    if "LIST-STATUS" in caps:
        returns.append("STATUS (MESSAGES)")
    args = ['""', '"*"']
    if returns:
        args += ["RETURN", "(" + " ".join(returns) + ")"]
    raw_imap = imap._imap
    with client.step("list") as step:
        typ, data = raw_imap._simple_command("LIST", *args)
        if typ != "OK":
            raise raw_imap.error(f"LIST failed: {_text(data[0]) if data else typ}")
        _, lines = raw_imap._untagged_response(typ, data, "LIST")
        statuses = raw_imap.untagged_responses.pop("STATUS", [])
        folders = [f for f in (parse_list_line(item) for item in _lines(lines)) if f is not None]
        counts = {}
        for item in _lines(statuses):
            status = _parse_status(item)
            if status and isinstance(status[1].get("MESSAGES"), int):
                counts[status[0]] = status[1]["MESSAGES"]
        step.detail = f"{len(folders)} folders"
    client.info["folders"] = len(folders)
    seen: set[str] = set()
    out = []
    for folder in folders:
        if folder.name in seen:
            continue  # a server repeating a line must not make two rows
        seen.add(folder.name)
        if folder.name in counts:
            folder = replace(folder, message_count=counts[folder.name])
        out.append(folder)
    out.sort(key=lambda f: f.name.upper() != "INBOX")
    return out
