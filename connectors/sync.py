"""The IMAP sync engine: bring a store's copy of some folders in line with the server, cheaply.

Entry point (stable; ``bench/sync.py`` and ``webapp/sync_jobs.py`` call it)::

    from connectors.sync import SyncOptions, sync_folders
    stats = sync_folders(imap, store, [(folder_id, "INBOX")], options=SyncOptions(), progress=None,
                         account_id=None)
    stats.commands["FETCH"]          # IMAP commands sent, by kind: FETCH, STATUS, SELECT, SEARCH, ENABLE
    stats.inserted, stats.updated, stats.deleted, stats.folders  # per-folder FolderResult list

``imap`` is a logged-in ``imapclient.IMAPClient`` (``ImapClient.imap`` in Mailroom); ``store``
is anything implementing :class:`SyncStore` (``webapp.sync_store.SqlSyncStore`` in Mailroom);
folder ids are the store's own keys and names are sent to the server exactly as given
(modified UTF-7, as LIST returned them).

Per folder the engine keeps UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, the message count and
``seeded_uid`` (the highest UID covered by a pass that has not finished yet), and picks the
cheapest correct path on each run:

* unchanged: one STATUS, nothing else (with CONDSTORE; without it flags can change unseen, so
  a FLAGS scan follows);
* flags changed / messages expunged: ``UID FETCH 1:max (FLAGS) (CHANGEDSINCE m VANISHED)`` with
  QRESYNC, ``CHANGEDSINCE`` plus a ``UID SEARCH`` difference when only CONDSTORE is offered (and
  only when the counts disagree), a FLAGS scan of UID ranges on servers with neither;
* new messages: ``UID FETCH a:b`` over explicit UID ranges from the highest stored UID up to
  UIDNEXT-1 (never a list of UIDs: servers refuse long ones);
* UIDVALIDITY changed: the folder's rows are deleted and it is fetched again.

Every batch is written and committed together with ``seeded_uid``, so a run stopped anywhere
(dropped connection, killed worker) is finished by the next run, and the stored set of
(folder, UID, flags) then equals the server's.  State (UIDNEXT, count, HIGHESTMODSEQ) is only
advanced when a folder's run completes; HIGHESTMODSEQ is the baseline for the next
``CHANGEDSINCE``, so it is recorded *before* a first pass starts fetching.
"""

from __future__ import annotations

import imaplib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_fetch_response, parse_response

from connectors import plugins
from connectors.envelope import HEADER_FIELDS, parse_envelope
from connectors.errors import folder_error
from connectors.folder_list import decode_name

#: Bytes of message text fetched for the preview: enough to pass a multipart's boundaries and
#: part headers (a message with attachments) and still reach the start of its text.
PREVIEW_BYTES = 1024

#: Flags that describe the session, not the message; never stored.
_SESSION_FLAGS = {b"\\Recent"}


@dataclass
class FolderState:
    """What the store remembers of a folder between runs."""

    uidvalidity: int | None = None
    uidnext: int | None = None
    highestmodseq: int | None = None
    message_count: int | None = None
    #: Not None while a pass is unfinished: the highest UID it has covered so far.
    seeded_uid: int | None = None
    last_full_sync_at: datetime | None = None
    last_synced_at: datetime | None = None


class SyncStore(Protocol):
    """Where the engine reads and writes; one implementation per database layer.

    Rows given to :meth:`insert_messages` are dicts of ``webapp.models.Message`` columns without
    ``account_id``/``folder_id``, which the store adds.  Nothing is durable before :meth:`commit`.
    """

    def load_state(self, folder_id: int) -> FolderState: ...

    def save_state(self, folder_id: int, state: FolderState) -> None: ...

    def stored_count_and_max_uid(self, folder_id: int) -> tuple[int, int]: ...

    def known_uids(self, folder_id: int) -> set[int]: ...

    def known_flags(self, folder_id: int) -> dict[int, str]: ...

    def insert_messages(self, folder_id: int, rows: list[dict]) -> None: ...

    def update_flags(self, folder_id: int, changes: list[tuple[int, str, int | None]]) -> None: ...

    def delete_uids(self, folder_id: int, uids: Iterable[int]) -> None: ...

    def clear_folder(self, folder_id: int) -> None: ...

    def commit(self) -> None: ...


@dataclass
class SyncOptions:
    """Knobs of a run.  ``use_condstore``/``use_qresync`` False make the engine act as if the
    server lacked them (tests cover every path against one Dovecot; a buggy server can be handled)."""

    use_condstore: bool = True
    use_qresync: bool = True
    #: UIDs per FETCH range (the range widens on its own when UIDs are sparse).
    batch_size: int = 1000
    #: UIDs per range of a FLAGS-only scan.
    flags_batch_size: int = 5000
    preview_bytes: int = PREVIEW_BYTES


@dataclass
class FolderResult:
    folder_id: int
    #: The name on the wire (modified UTF-7), for commands; ``display_name`` is for people.
    name: str
    #: "unchanged", "incremental", "first", "resumed" or "reseeded"; "error" when it failed.
    path: str = ""
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    total: int = 0
    #: The sentence for a person when the folder failed; its taxonomy class and fix hint beside it.
    error: str | None = None
    error_class: str | None = None
    hint: str | None = None
    raw_error: str | None = None
    display_name: str = ""
    #: UIDs stored by this run that are really new mail: not a first pass, a reseed or a resumed one.
    new_uids: list[int] = field(default_factory=list)


@dataclass
class SyncStats:
    commands: Counter = field(default_factory=Counter)
    folders: list[FolderResult] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def inserted(self) -> int:
        return sum(f.inserted for f in self.folders)

    @property
    def updated(self) -> int:
        return sum(f.updated for f in self.folders)

    @property
    def deleted(self) -> int:
        return sum(f.deleted for f in self.folders)

    @property
    def errors(self) -> list[FolderResult]:
        return [f for f in self.folders if f.error]

    @property
    def new_uids(self) -> dict[int, list[int]]:
        """Folder id → UIDs of new mail stored by this run (seeding passes excluded), for automation."""
        return {f.folder_id: list(f.new_uids) for f in self.folders if f.new_uids}

    def as_dict(self) -> dict:
        return {
            "commands": dict(self.commands),
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "elapsed_ms": round(self.elapsed * 1000, 1),
            "folders": [_folder_dict(f) for f in self.folders],
        }


def _folder_dict(result: FolderResult) -> dict:
    out = vars(result).copy()
    out["new"] = len(out.pop("new_uids"))  # a count: a burst of mail must not bloat job results and logs
    return out


#: ``progress(folder_number, folder_count, folder_name, done, total)``; folder_number from 1,
#: folder_name decoded for people (``Entrata/Über``, not ``Entrata/&ANw-ber``).
ProgressCallback = Callable[[int, int, str, int, int], None]


class FolderGone(Exception):
    """The server said NO to STATUS/SELECT of the folder (deleted or renamed elsewhere).

    ``step`` is the refused command; ``str(exc)`` the server's words.
    """

    def __init__(self, text: str, step: str = "select") -> None:
        super().__init__(text)
        self.step = step


def sync_folders(
    imap: Any,
    store: SyncStore,
    folders: Sequence[tuple[int, str]],
    *,
    options: SyncOptions | None = None,
    progress: ProgressCallback | None = None,
    account_id: int | None = None,
) -> SyncStats:
    """Sync ``folders`` (``(store folder id, server name)`` pairs); see the module docstring.

    A folder the server refuses is reported in its FolderResult and the others still sync;
    connection failures propagate (the caller classifies them) after the work so far is committed.
    """
    engine = _Engine(imap, store, options or SyncOptions(), progress, account_id)
    start = time.perf_counter()
    saved_encode = getattr(imap, "folder_encode", None)
    imap.folder_encode = False  # names are already modified UTF-7, as the server sent them
    try:
        for number, (folder_id, name) in enumerate(folders, 1):
            result = FolderResult(folder_id, name, display_name=decode_name(name))
            engine.stats.folders.append(result)
            try:
                engine.sync_folder(result, number, len(folders))
            except FolderGone as exc:
                _refused(result, exc)
    finally:
        if saved_encode is not None:
            imap.folder_encode = saved_encode
        engine.stats.elapsed = time.perf_counter() - start
    return engine.stats


def unchanged_folders(
    imap: Any, folders: Sequence[tuple[int, str, FolderState]]
) -> list[FolderResult] | None:
    """One ``STATUS`` per folder: the folders' results if none changed since its completed pass,
    else None (it stops at the first change, a refused folder or a server without CONDSTORE).

    ``folders`` are ``(store folder id, server name, stored FolderState)``: the caller read the
    states beforehand (a batch of mailboxes reads them in one query), so this touches no store.
    The cheap half of :func:`sync_folders`'s unchanged path, for checking many mailboxes
    concurrently; a None answer means "run :func:`sync_folders`" on the same connection.
    """
    engine = _Engine(imap, None, SyncOptions(), None, None)
    saved_encode = getattr(imap, "folder_encode", None)
    imap.folder_encode = False  # names are already modified UTF-7, as the server sent them
    try:
        results = []
        for number, (folder_id, name, state) in enumerate(folders, 1):
            if state.uidvalidity is None or state.seeded_uid is not None:
                return None  # never synced, or a pass to finish: no STATUS can say "unchanged"
            result = FolderResult(folder_id, name, display_name=decode_name(name))
            try:
                if not engine._unchanged(result, state, number, len(folders)):
                    return None
            except FolderGone:
                return None  # the full sync records the folder's error
            results.append(result)
        return results
    finally:
        if saved_encode is not None:
            imap.folder_encode = saved_encode


def _refused(result: FolderResult, exc: FolderGone) -> None:
    """Record a folder the server refused, classified (``folder_missing`` when it is gone)."""
    error = folder_error("imap", exc.step, str(exc), result.display_name)
    result.path, result.error = "error", error.message
    result.error_class, result.hint, result.raw_error = error.error_class.value, error.hint, error.raw


def uid_set(text: bytes | str) -> list[int]:
    """``1:3,7`` → ``[1, 2, 3, 7]`` (a sequence-set as sent by VANISHED)."""
    if isinstance(text, bytes):
        text = text.decode("ascii")
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if ":" in part:
            lo, hi = sorted(int(x) for x in part.split(":"))
            out.extend(range(lo, hi + 1))
        else:
            out.append(int(part))
    return out


_UID = re.compile(rb"[( ]UID (\d+)")
_FLAGS = re.compile(rb"[( ]FLAGS \(([^)]*)\)")
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)")
_DATE = re.compile(rb'[( ]INTERNALDATE "([^"]*)"')
_MODSEQ = re.compile(rb"[( ]MODSEQ \((\d+)\)")
_LITERAL_AT_END = re.compile(rb"\{\d+\}$")


class _Unparsed(Exception):
    """The fast reader met a response shape it does not know; imapclient's parser takes over."""


def parse_fetch_fast(data: list) -> dict[int, dict]:
    """imaplib's FETCH data → ``{uid: {b"FLAGS": (...), b"RFC822.SIZE": n, b"MODSEQ": (n,),
    b"INTERNALDATE": b"raw", b"HEADER": bytes, b"TEXT": bytes}}``.

    imapclient's general parser tokenises every byte of every response in Python and was half of
    a first sync's time; a FETCH answer to our own fixed item list has a known shape (a line per
    literal, the literals already cut out by imaplib), so regular expressions on the short lines
    suffice.  Anything unexpected raises :class:`_Unparsed` and the caller uses imapclient's parser.
    """
    out: dict[int, dict] = {}
    lines: list[bytes] = []
    literals: dict[bytes, bytes] = {}
    for part in data:
        if isinstance(part, tuple):
            line, literal = part
            lines.append(line)
            head = line[-200:]
            if b"BODY[HEADER" in head:
                literals[b"HEADER"] = literal
            elif b"BODY[TEXT]" in head:
                literals[b"TEXT"] = literal
            elif b"PREVIEW" in head:
                literals[b"TEXT"] = literal
            elif not _LITERAL_AT_END.search(line):
                raise _Unparsed(line[:80])
            continue
        if part is None:
            continue
        lines.append(part)
        text = b" ".join(lines)
        lines = []
        found = _UID.search(text)
        if found is None:
            raise _Unparsed(text[:80])
        item: dict = dict(literals)
        literals = {}
        flags = _FLAGS.search(text)
        if flags is not None:
            item[b"FLAGS"] = tuple(flags.group(1).split())
        size = _SIZE.search(text)
        if size is not None:
            item[b"RFC822.SIZE"] = int(size.group(1))
        date = _DATE.search(text)
        if date is not None:
            item[b"INTERNALDATE"] = date.group(1)
        modseq = _MODSEQ.search(text)
        if modseq is not None:
            item[b"MODSEQ"] = (int(modseq.group(1)),)
        out.setdefault(int(found.group(1)), {}).update(item)  # an unsolicited FETCH may add to it
    if lines:
        raise _Unparsed(lines[0][:80])
    return out


def flags_text(flags: Iterable[bytes]) -> str:
    """The stored form of IMAP flags: sorted, space-separated, without ``\\Recent``."""
    return " ".join(sorted(f.decode("utf-8", "replace") for f in flags if f not in _SESSION_FLAGS))


def _utc(value: Any) -> datetime | None:
    if isinstance(value, bytes):
        try:
            value = parse_to_datetime(value, normalise=False)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass
class _Selected:
    """What SELECT answered for a folder (UIDNEXT found by SEARCH when the server gives none)."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    modseq: int | None


class _Engine:
    def __init__(self, imap, store: SyncStore, options: SyncOptions, progress, account_id) -> None:
        self.imap = imap
        self.raw = imap._imap  # imaplib underneath: explicit UID ranges, untagged VANISHED
        self.store = store
        self.options = options
        self.progress = progress
        self.account_id = account_id
        self.stats = SyncStats()
        caps = {c.upper() if isinstance(c, bytes) else c.upper().encode() for c in imap.capabilities()}
        self.condstore = options.use_condstore and (b"CONDSTORE" in caps or b"QRESYNC" in caps)
        self.qresync = self.condstore and options.use_qresync and b"QRESYNC" in caps
        self._enabled = False

    # -- commands -------------------------------------------------------------------------

    def _status(self, name: str) -> dict[bytes, int]:
        what = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"] + (["HIGHESTMODSEQ"] if self.condstore else [])
        self.stats.commands["STATUS"] += 1
        try:
            data = self.imap._command_and_check(
                "status", self.imap._normalise_folder(name), f"({' '.join(what)})"
            )
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise FolderGone(_server_words(exc), "status") from None
        items = parse_response(data)[-1]
        return {items[i].upper(): int(items[i + 1]) for i in range(0, len(items) - 1, 2)}

    def _enable(self) -> None:
        if self._enabled or not self.condstore:
            return
        self._enabled = True
        self.stats.commands["ENABLE"] += 1
        self.imap.enable("QRESYNC" if self.qresync else "CONDSTORE")

    def _select(self, name: str) -> dict[bytes, Any]:
        self._enable()
        self.stats.commands["SELECT"] += 1
        try:
            return self.imap.select_folder(name, readonly=True)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            raise FolderGone(_server_words(exc)) from None

    def _uid_fetch(
        self, uids: str, items: str, modifiers: str | None = None, fast: bool = False
    ) -> tuple[dict, list[int]]:
        """``UID FETCH uids items [modifiers]``: the parsed FETCH responses and any VANISHED UIDs."""
        return self._parse_fetch(*self._fetch_finish(self._fetch_send(uids, items, modifiers)), fast)

    def _fetch_send(self, uids: str, items: str, modifiers: str | None = None) -> str:
        """Send ``UID FETCH`` without waiting for its answer (read by :meth:`_fetch_finish`): the tag.

        Only one command is ever outstanding, and it is sent after the previous answer was read
        and taken out of imaplib's untagged responses, so answers cannot mix.
        """
        raw = self.raw
        raw.untagged_responses.pop("FETCH", None)
        raw.untagged_responses.pop("VANISHED", None)
        args = ["FETCH", uids, items] + ([modifiers] if modifiers else [])
        self.stats.commands["FETCH"] += 1
        return raw._command("UID", *args)

    def _fetch_finish(self, tag: str) -> tuple[list, list[int]]:
        """Read the answer to a sent ``UID FETCH``: imaplib's FETCH data and any VANISHED UIDs."""
        raw = self.raw
        typ, data = raw._command_complete("FETCH", tag)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"UID FETCH failed: {data!r}")
        data = raw.untagged_responses.pop("FETCH", [None])
        vanished = []
        for line in raw.untagged_responses.pop("VANISHED", []) or []:
            if isinstance(line, bytes):
                vanished.extend(uid_set(line.replace(b"(EARLIER)", b"").strip()))
        return data, vanished

    def _drain(self, tag: str) -> None:
        """Read and drop the answer to a pipelined command after a failure, so the connection stays usable."""
        try:
            self.raw._command_complete("FETCH", tag)
        except Exception:
            pass  # the connection itself failed: the original error is what matters
        self.raw.untagged_responses.pop("FETCH", None)
        self.raw.untagged_responses.pop("VANISHED", None)

    @staticmethod
    def _parse_fetch(data: list, vanished: list[int], fast: bool = False) -> tuple[dict, list[int]]:
        if data == [None]:
            return {}, vanished
        if fast:
            try:
                return parse_fetch_fast(data), vanished
            except _Unparsed:
                pass
        parsed = parse_fetch_response(data, False, True)
        for item in parsed.values():  # the same keys as the fast reader
            for key in list(item):
                if key.startswith(b"BODY[HEADER"):
                    item[b"HEADER"] = item.pop(key)
                elif key.startswith(b"BODY[TEXT]") or key == b"PREVIEW":
                    item[b"TEXT"] = item.pop(key)
        return parsed, vanished

    def _search_uids(self, lo: int, hi: int) -> set[int]:
        self.stats.commands["SEARCH"] += 1
        return set(self.imap.search(["UID", f"{lo}:{hi}"]))

    # -- one folder -----------------------------------------------------------------------

    def sync_folder(self, result: FolderResult, number: int, count: int) -> None:
        """One folder, the cheapest correct way: nothing changed, flags/expunges, new mail, a reseed."""
        fid = result.folder_id
        state = self.store.load_state(fid)
        if self._unchanged(result, state, number, count):
            return
        box = self._select_box(result.name)
        result.total = box.exists
        state = self._reseed_if_new_uidvalidity(result, state, box)
        stored, max_uid = self.store.stored_count_and_max_uid(fid)
        state = self._start_pass(result, state, box)
        # New mail, as opposed to seeding: an incremental run, or one resuming an interrupted incremental
        # run (a folder that completed a pass before).  A first pass or a reseed stores old mail.
        fresh = result.path == "incremental" or (
            result.path == "resumed" and state.last_full_sync_at is not None
        )
        if box.uidnext is None:  # a server without UIDNEXT: find the top ourselves
            box.uidnext = (max(self._search_uids(1, 2**32 - 1) or {0}) + 1) if box.exists else 1
        stored = self._sync_stored(result, state, box, max_uid, stored)
        stored = self._sync_new(result, state, box, max_uid, stored, (number, count), fresh)
        stored = self._sync_unannounced_expunges(result, max_uid, stored, box.exists)
        self._finish_pass(result, state, box)
        self._report(number, count, result.name, stored, box.exists)

    def _unchanged(self, result: FolderResult, state: FolderState, number: int, count: int) -> bool:
        """One STATUS says nothing changed since a completed pass: record that and stop."""
        status = self._status(result.name)
        complete = state.uidvalidity is not None and state.seeded_uid is None
        same = (
            complete
            and status.get(b"UIDVALIDITY") == state.uidvalidity
            and status.get(b"UIDNEXT") == state.uidnext
            and status.get(b"MESSAGES") == state.message_count
        )
        if same and self.condstore and status.get(b"HIGHESTMODSEQ") == state.highestmodseq:
            result.path, result.total = "unchanged", state.message_count or 0
            self._report(number, count, result.name, result.total, result.total)
            return True
        return False

    def _select_box(self, name: str) -> _Selected:
        selected = self._select(name)
        return _Selected(
            uidvalidity=int(selected.get(b"UIDVALIDITY", 0)),
            uidnext=int(selected.get(b"UIDNEXT", 0)) or None,
            exists=int(selected.get(b"EXISTS", 0)),
            modseq=int(selected[b"HIGHESTMODSEQ"])
            if self.condstore and b"HIGHESTMODSEQ" in selected
            else None,
        )

    def _reseed_if_new_uidvalidity(
        self, result: FolderResult, state: FolderState, box: _Selected
    ) -> FolderState:
        """A new UIDVALIDITY makes every stored UID meaningless: drop the folder's rows, start again."""
        if state.uidvalidity is not None and state.uidvalidity != box.uidvalidity:
            self.store.clear_folder(result.folder_id)
            result.path = "reseeded"
            return FolderState()
        return state

    def _start_pass(self, result: FolderResult, state: FolderState, box: _Selected) -> FolderState:
        """Name the path (first, resumed, incremental); a first pass saves where CHANGEDSINCE starts."""
        if state.uidvalidity is None:
            # A first pass: remember where CHANGEDSINCE must start before anything is fetched.
            state = FolderState(uidvalidity=box.uidvalidity, highestmodseq=box.modseq, seeded_uid=0)
            self.store.save_state(result.folder_id, state)
            self.store.commit()
            result.path = result.path or "first"
        elif state.seeded_uid is not None:
            result.path = "resumed"
        else:
            result.path = "incremental"
        return state

    def _sync_stored(
        self, result: FolderResult, state: FolderState, box: _Selected, max_uid: int, stored: int
    ) -> int:
        """1. What changed among the stored messages: flags and expunges."""
        baseline = state.highestmodseq
        if max_uid and self.condstore and baseline is not None:
            if box.modseq is None or box.modseq != baseline:
                result.updated, result.deleted = self._changed_since(result.folder_id, max_uid, baseline)
        elif max_uid:
            result.updated, result.deleted = self._flag_scan(result.folder_id, max_uid)
        return stored - result.deleted

    def _sync_new(
        self,
        result: FolderResult,
        state: FolderState,
        box: _Selected,
        max_uid: int,
        stored: int,
        progress: tuple[int, int],
        fresh: bool,
    ) -> int:
        """2. New messages, in UID ranges, a commit per batch."""
        number, count = progress
        start = max(max_uid, state.seeded_uid or 0) + 1
        self._report(number, count, result.name, stored, box.exists)
        if start < box.uidnext:
            state.seeded_uid = start - 1
            result.inserted = self._fetch_new(
                result.folder_id,
                result.name,
                state,
                start,
                box.uidnext - 1,
                stored,
                box.exists,
                number,
                count,
                result.new_uids if fresh else None,
            )
        return stored + result.inserted

    def _sync_unannounced_expunges(self, result: FolderResult, max_uid: int, stored: int, exists: int) -> int:
        """3. Expunges a CONDSTORE-only server did not announce: compare counts, then SEARCH."""
        if max_uid and self.condstore and not self.qresync and stored != exists:
            present = self._search_uids(1, max_uid)
            gone = self.store.known_uids(result.folder_id) - present
            gone = {uid for uid in gone if uid <= max_uid}
            if gone:
                self.store.delete_uids(result.folder_id, gone)
                result.deleted += len(gone)
                stored -= len(gone)
        return stored

    def _finish_pass(self, result: FolderResult, state: FolderState, box: _Selected) -> None:
        """Save what the server said, so the next run can compare, and commit."""
        now = datetime.now(UTC).replace(tzinfo=None)
        if state.seeded_uid is not None and result.path in ("first", "reseeded", "resumed"):
            state.last_full_sync_at = now
        state.uidvalidity, state.uidnext, state.message_count = box.uidvalidity, box.uidnext, box.exists
        state.highestmodseq = box.modseq
        state.seeded_uid = None
        state.last_synced_at = now
        self.store.save_state(result.folder_id, state)
        self.store.commit()

    def _changed_since(self, fid: int, max_uid: int, baseline: int) -> tuple[int, int]:
        modifiers = f"(CHANGEDSINCE {baseline}{' VANISHED' if self.qresync else ''})"
        fetched, vanished = self._uid_fetch(f"1:{max_uid}", "(UID FLAGS)", modifiers)
        changes = [
            (uid, flags_text(item.get(b"FLAGS", ())), _modseq(item))
            for uid, item in fetched.items()
            if uid <= max_uid
        ]
        if changes:
            self.store.update_flags(fid, changes)
        gone = [uid for uid in vanished if uid <= max_uid]
        if gone:
            self.store.delete_uids(fid, gone)
        self.store.commit()
        # VANISHED may name UIDs never stored; count only what the store had.
        return len(changes), len(set(gone))

    def _flag_scan(self, fid: int, max_uid: int) -> tuple[int, int]:
        """Servers without CONDSTORE: read every stored message's flags; absent UIDs were expunged."""
        known = self.store.known_flags(fid)
        changes: list[tuple[int, str, int | None]] = []
        seen: set[int] = set()
        step = self.options.flags_batch_size
        for lo in range(1, max_uid + 1, step):
            hi = min(lo + step - 1, max_uid)
            fetched, _ = self._uid_fetch(f"{lo}:{hi}", "(UID FLAGS)")
            for uid, item in fetched.items():
                if uid in known:
                    seen.add(uid)
                    flags = flags_text(item.get(b"FLAGS", ()))
                    if flags != known[uid]:
                        changes.append((uid, flags, None))
        gone = set(known) - seen
        if changes:
            self.store.update_flags(fid, changes)
        if gone:
            self.store.delete_uids(fid, gone)
        self.store.commit()
        return len(changes), len(gone)

    def _fetch_new(self, fid, name, state, lo, top, stored, exists, number, count, new_uids=None) -> int:
        """Fetch UIDs ``lo..top`` in ranges, a commit per range.

        Pipelined: the next range's ``UID FETCH`` is sent as soon as the current answer has been
        read, so the server produces it while this side parses and stores; an error drains the
        outstanding answer before it propagates.
        """
        header_item = f"BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS)})]"
        items = (
            f"(UID FLAGS RFC822.SIZE INTERNALDATE{' MODSEQ' if self.condstore else ''} {header_item} "
            f"BODY.PEEK[TEXT]<0.{self.options.preview_bytes}>)"
        )
        width = self.options.batch_size
        inserted = 0
        if lo > top:
            return 0
        hi = min(lo + width - 1, top)
        pending: str | None = self._fetch_send(f"{lo}:{hi}", items)
        with _quiet_imaplib(self.raw):
            try:
                while pending is not None:
                    data, vanished = self._fetch_finish(pending)
                    pending = None
                    # Sparse UIDs (many expunged): widen the range so a batch still carries about
                    # batch_size.  Counted from the answer's closing lines, one per message.
                    answered = sum(1 for part in data if isinstance(part, bytes))
                    if answered < width // 4:
                        next_width = min(width * 4, 1 << 20)
                    elif width > self.options.batch_size and answered > self.options.batch_size:
                        next_width = max(self.options.batch_size, width // 2)
                    else:
                        next_width = width
                    if hi < top:
                        next_lo, next_hi = hi + 1, min(hi + next_width, top)
                        pending = self._fetch_send(f"{next_lo}:{next_hi}", items)
                    fetched, _ = self._parse_fetch(data, vanished, fast=True)
                    rows, uids = self._rows(fetched, lo, hi)
                    if rows:
                        self.store.insert_messages(fid, rows)
                    state.seeded_uid = hi
                    self.store.save_state(fid, state)
                    self.store.commit()
                    inserted += len(rows)
                    if new_uids is not None:
                        new_uids.extend(uids)
                    if uids and self.account_id is not None:
                        plugins.messages_synced(self.account_id, name, uids)
                    self._report(number, count, name, stored + inserted, exists)
                    if pending is not None:
                        lo, hi, width = next_lo, next_hi, next_width
            except BaseException:
                if pending is not None:
                    self._drain(pending)
                raise
        return inserted

    @staticmethod
    def _rows(fetched: dict[int, dict], lo: int, hi: int) -> tuple[list[dict], list[int]]:
        """Message rows (without account/folder) of the fetched UIDs in ``lo..hi``, and their UIDs."""
        rows = []
        uids = []
        for uid in sorted(fetched):
            if uid < lo or uid > hi:
                continue  # an unsolicited FETCH (flag change of another message)
            item = fetched[uid]
            row = parse_envelope(item.get(b"HEADER"), item.get(b"TEXT"))
            flags = item.get(b"FLAGS", ())
            row["uid"] = uid
            row["flags"] = flags_text(flags)
            row["seen"] = b"\\Seen" in flags
            row["flagged"] = b"\\Flagged" in flags
            row["size"] = item.get(b"RFC822.SIZE")
            row["modseq"] = _modseq(item)
            if row["date"] is None:
                row["date"] = _utc(item.get(b"INTERNALDATE"))
            rows.append(row)
            uids.append(uid)
        return rows, uids

    def _report(self, number: int, count: int, name: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(number, count, decode_name(name), done, total)


@contextmanager
def _quiet_imaplib(raw: Any) -> Iterator[None]:
    """imapclient sets imaplib's debug level to 5, so imaplib formats the repr of every response
    (each literal, then the whole batch) for a logger that is usually off; skip that work unless
    the ``imapclient.imaplib`` logger really records DEBUG."""
    saved = getattr(raw, "debug", 0)
    if saved and not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
        raw.debug = 0
    try:
        yield
    finally:
        raw.debug = saved


def _modseq(item: dict) -> int | None:
    value = item.get(b"MODSEQ")
    if isinstance(value, tuple) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) else None


def _server_words(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text
