"""Write a person's changes back to an IMAP server: flags with ``UID STORE``, moves with ``UID MOVE``.

Importable without Flask (the mail core); :mod:`webapp.jobs.message_changes` calls it on a
logged-in ``imapclient.IMAPClient`` with the folder names exactly as LIST gave them (modified
UTF-7)::

    flags = store_flags(imap, "INBOX", [4, 5, 9], "\\\\Seen", add=True, folder_label="Inbox")
    flags                      # {4: "\\\\Seen", 5: "\\\\Flagged \\\\Seen"}: what the server answered
    moved = move(imap, "INBOX", [4, 5], "Trash", folder_label="Inbox", target_label="Trash")
    moved.new_uids             # {4: 17, 5: 18} from COPYUID (UIDPLUS), {} without it
    moved.uidvalidity          # the target's UIDVALIDITY as COPYUID said, or None

One command per call with a compact UID set (``4:5,9``, never a long list: servers refuse
those), in chunks of :data:`CHUNK` UIDs.  A move uses ``UID MOVE`` (RFC 6851) when the server
has MOVE; otherwise ``UID COPY`` + ``UID STORE +FLAGS.SILENT (\\\\Deleted)`` + ``UID EXPUNGE``
(UIDPLUS), and without UIDPLUS the source copies stay marked ``\\\\Deleted`` (a plain EXPUNGE
would also remove mail other clients marked deleted): ``MoveResult.expunged`` is then False.

Failures are :class:`connectors.errors.MailError`: a folder the server does not have is
``folder_missing`` naming it, any other refusal ``protocol`` with the server's words; a
connection that breaks is left to the caller's client to classify (``client.classify``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

from connectors.errors import folder_error
from connectors.sync import flags_text, uid_set

#: UIDs per STORE/MOVE/COPY command.
CHUNK = 500


def compress(uids: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` → ``1:3,7``: a short UID set."""
    parts: list[str] = []
    start = prev = None
    for uid in sorted(set(uids)):
        if start is not None and uid == prev + 1:
            prev = uid
            continue
        if start is not None:
            parts.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    if start is not None:
        parts.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(parts)


def uid_chunks(uids: Iterable[int]) -> list[str]:
    """``uids`` as compact UID sets of at most :data:`CHUNK` UIDs each, one per command."""
    ordered = sorted(set(uids))
    return [compress(ordered[i : i + CHUNK]) for i in range(0, len(ordered), CHUNK)]


def _select(imap: Any, folder: str, label: str) -> dict:
    imap.folder_encode = False  # names are the server's modified UTF-7 already
    try:
        return imap.select_folder(folder)
    except IMAPClientError as exc:
        raise folder_error("imap", "select", str(exc), label) from None


def store_flags(
    imap: Any, folder: str, uids: Iterable[int], flag: str, *, add: bool, folder_label: str
) -> dict:
    """``UID STORE <set> +FLAGS|-FLAGS (flag)`` in ``folder``: ``{uid: flags}`` as the server answered.

    A UID missing from the answer is not in the folder any more (moved or deleted elsewhere).
    """
    _select(imap, folder, folder_label)
    raw = imap._imap
    out: dict[int, str] = {}
    for chunk in uid_chunks(uids):
        # The raw command: imapclient's add_flags() cannot take a UID *set* (it parses it as ints).
        raw.untagged_responses.pop("FETCH", None)
        typ, data = raw.uid("STORE", chunk, "+FLAGS" if add else "-FLAGS", f"({flag})")
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise folder_error("imap", "store", text, folder_label)
        for msg, item in parse_fetch_response([d for d in data if d is not None]).items():
            uid = item.get(b"UID", msg)
            if b"FLAGS" in item:
                out[int(uid)] = flags_text(item[b"FLAGS"])
    return out


@dataclass
class MoveResult:
    """What a move did: each source UID's new UID in the target (when the server said, UIDPLUS)."""

    new_uids: dict[int, int] = field(default_factory=dict)
    uidvalidity: int | None = None
    #: False when the server has neither MOVE nor UIDPLUS: the sources are only marked \\Deleted.
    expunged: bool = True
    command: str = "MOVE"


def move(imap: Any, folder: str, uids: Iterable[int], target: str, *, folder_label: str, target_label: str,
         use_move: bool = True, use_uidplus: bool = True) -> MoveResult:  # fmt: skip
    """Move ``uids`` from ``folder`` to ``target``; ``use_move``/``use_uidplus`` False act as if the
    server lacked them (tests cover each path against one Dovecot)."""
    caps = {c.upper() if isinstance(c, bytes) else c.upper().encode() for c in imap.capabilities()}
    has_move, has_uidplus = use_move and b"MOVE" in caps, use_uidplus and b"UIDPLUS" in caps
    _select(imap, folder, folder_label)
    raw = imap._imap
    mailbox = imap._normalise_folder(target)
    result = MoveResult(expunged=has_move or has_uidplus, command="MOVE" if has_move else "COPY")
    for chunk in uid_chunks(uids):
        raw.untagged_responses.pop("COPYUID", None)
        typ, data = raw.uid(result.command, chunk, mailbox)
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
            raise folder_error("imap", result.command.lower(), text, target_label)
        for validity, src, dst in copyuid(raw, data):
            result.uidvalidity = validity
            result.new_uids.update(zip(src, dst, strict=False))
        if has_move:
            continue
        typ, data = raw.uid("STORE", chunk, "+FLAGS.SILENT", "(\\Deleted)")
        if typ != "OK":
            raise folder_error("imap", "store", repr(data), folder_label)
        if has_uidplus:
            typ, data = raw.uid("EXPUNGE", chunk)
            if typ != "OK":
                raise folder_error("imap", "expunge", repr(data), folder_label)
    return result


def copyuid(raw: Any, data: list) -> list[tuple[int, list[int], list[int]]]:
    """The COPYUID answers (RFC 4315) of the last command: (uidvalidity, source UIDs, new UIDs).

    MOVE sends it in an untagged OK, COPY in the tagged one; imaplib files both response codes
    under ``untagged_responses["COPYUID"]``.
    """
    texts = list(raw.untagged_responses.pop("COPYUID", []) or [])
    for item in data or []:
        if isinstance(item, bytes) and b"[COPYUID " in item:
            texts.append(item.split(b"[COPYUID ", 1)[1].split(b"]", 1)[0])
    found = []
    for text in texts:
        parts = text.split()
        if len(parts) == 3:
            found.append((int(parts[0]), uid_set(parts[1]), uid_set(parts[2])))
    return found
