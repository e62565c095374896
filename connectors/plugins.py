"""The plugin manager: built-in provider plugins plus installed ``mailroom`` entry points.

The rest of Mailroom calls the small functions at the bottom of this module
(:func:`service_presets`, :func:`diagnosis_hints`, ...) rather than
``pm.hook`` directly, so that merging rules live in one place:

* pluggy calls the most recently registered plugin first; built-ins are
  registered before entry-point plugins, so a third-party plugin outranks a
  built-in one, and ``@hookimpl(tryfirst=True)`` outranks both;
* where answers are merged (presets by key, folder roles by folder, protocol
  clients by protocol), the higher-ranked answer wins and the built-in order
  of :data:`DEFAULT_PLUGINS` sets the order of lists.

A plugin that fails to import or to register is logged and skipped, so one
broken package cannot take the web app or the workers down.  Set
``MAILROOM_DISABLE_PLUGINS=name,name`` to keep named plugins (built-in module
names like ``plugins.yahoo`` or entry-point names) from loading at all.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.metadata
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pluggy

from connectors import hookspecs
from connectors.connection_limits import ConnectionLimit
from connectors.presets import FOLDER_ROLES, ServicePreset
from connectors.settings import ServerSettings

log = logging.getLogger(__name__)

PROJECT = "mailroom"
ENTRY_POINT_GROUP = "mailroom"

hookimpl = pluggy.HookimplMarker(PROJECT)

#: The built-in plugins, registered in this order when the manager is first built
#: (as datasette registers its DEFAULT_PLUGINS).  They are named, not imported, so
#: that ``connectors`` never imports ``plugins`` (which imports ``connectors``).
#: The order is the order presets are listed in, and later modules win when answers
#: are merged: ``protocols`` (the built-in IMAP/POP3/SMTP clients) and ``custom``
#: (generic folder names) come first so every other plugin outranks them.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.protocols",
    "plugins.custom",
    "plugins.gmail",
    "plugins.office365",
    "plugins.outlook",
    "plugins.yahoo",
    "plugins.icloud",
    "plugins.aruba",
    "plugins.aruba_pec",
    "plugins.legalmail",
    # Discovery sources.  pluggy asks the last registered first within a rank, so
    # these are listed in reverse: presets by domain and by MX (both tryfirst),
    # autoconfig, SRV, then probing (trylast).  See docs/discovery.md.
    "plugins.discovery_probe",
    "plugins.discovery_srv",
    "plugins.discovery_autoconfig",
    "plugins.discovery_mx",
    "plugins.presets_discovery",
)

_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
_load_errors: list[dict] = []


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _pm
    if _pm is None:
        with _lock:
            if _pm is None:
                _pm = _build_plugin_manager()
    return _pm


def reset_plugin_manager() -> None:
    """Forget the manager so the next call rebuilds it (tests, after installing a plugin)."""
    global _pm
    with _lock:
        _pm = None
        _load_errors.clear()


def plugin_load_errors() -> list[dict]:
    """Plugins that were skipped because they failed: ``[{"name", "error"}]``."""
    get_plugin_manager()
    return [dict(e) for e in _load_errors]


def _disabled_names() -> set[str]:
    return {n.strip() for n in os.environ.get("MAILROOM_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _build_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in _disabled_names():
        pm.set_blocked(name)
    for module_name in DEFAULT_PLUGINS:
        if pm.is_blocked(module_name):
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:  # a broken built-in must not stop the app either
            _record_failure(pm, module_name, exc)
    _load_entry_points(pm)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    # pluggy's load_setuptools_entrypoints stops at the first plugin that raises;
    # loading one name at a time lets the others through.
    try:
        names = sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})
    except Exception as exc:  # corrupt metadata somewhere on sys.path
        log.error("Could not read %r entry points: %s", ENTRY_POINT_GROUP, exc)
        return
    for name in names:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as exc:
            _record_failure(pm, name, exc)


def _record_failure(pm: pluggy.PluginManager, name: str, exc: BaseException) -> None:
    log.error("Mailroom plugin %r was not loaded: %s", name, exc, exc_info=exc)
    if pm.has_plugin(name):  # registered halfway before failing validation
        pm.unregister(name=name)
    _load_errors.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})


def _mailroom_version() -> str:
    try:
        return importlib.metadata.version(PROJECT)
    except importlib.metadata.PackageNotFoundError:
        # Running from a checkout that was never pip-installed.
        cfg = configparser.ConfigParser()
        cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
        return cfg.get("metadata", "version", fallback="unknown")


def describe_plugins() -> list[dict[str, Any]]:
    """What is loaded, in registration order, for ``mailroom plugins`` and the admin page.

    Each entry: ``name`` (module for built-ins, distribution for entry-point
    plugins), ``version``, ``builtin``, ``module`` and ``hooks`` (sorted names).
    """
    pm = get_plugin_manager()
    distinfo = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    builtin_version = f"built-in (mailroom {_mailroom_version()})"
    described = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a blocked name
            continue
        dist = distinfo.get(id(plugin))
        described.append(
            {
                "name": dist.project_name if dist else name,
                "version": dist.version if dist else builtin_version,
                "builtin": dist is None,
                "module": getattr(plugin, "__name__", type(plugin).__name__),
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or ()),
            }
        )
    return described


def service_presets() -> list[ServicePreset]:
    """Every known preset once, built-ins first in ``DEFAULT_PLUGINS`` order.

    When two plugins give the same key, the higher-ranked plugin's preset is
    kept in the lower-ranked one's position, so overriding Gmail does not move
    it down the list.
    """
    results = get_plugin_manager().hook.mailroom_service_presets()
    by_key: dict[str, ServicePreset] = {}
    for batch in reversed(results):  # pluggy answers highest-ranked first
        for preset in _as_list(batch):
            if isinstance(preset, ServicePreset):
                by_key[preset.key] = preset
            else:
                log.warning("Ignoring %r from mailroom_service_presets: not a ServicePreset", preset)
    return list(by_key.values())


def service_preset(key: str | None) -> ServicePreset | None:
    """The preset with ``key``, or None."""
    if not key:
        return None
    return next((p for p in service_presets() if p.key == key), None)


def protocol_clients() -> dict[str, type]:
    """``{protocol: client class}`` merged from all plugins, higher-ranked winning."""
    merged: dict[str, type] = {}
    for answer in reversed(get_plugin_manager().hook.mailroom_protocol_clients()):
        merged.update(answer or {})
    return merged


def diagnosis_hints(
    error_class: str,
    protocol: str,
    service_key: str | None = None,
    settings: ServerSettings | None = None,
) -> list[str]:
    """All plugins' fix hints for a failure, highest-ranked first, without repeats."""
    results = get_plugin_manager().hook.mailroom_diagnosis_hints(
        error_class=_text(error_class), protocol=_text(protocol), service_key=service_key, settings=settings
    )
    hints: list[str] = []
    for batch in results:
        for hint in _as_list(batch):
            if hint and hint not in hints:
                hints.append(str(hint))
    return hints


def folder_role_hints(service_key: str | None, folders: list[str]) -> dict[str, str]:
    """``{folder: role}`` for the given folders, merged from all plugins.

    Answers naming folders that are not in ``folders``, or roles that are not
    in ``FOLDER_ROLES``, are dropped: a plugin cannot invent folders.
    """
    folders = list(folders)
    known = set(folders)
    merged: dict[str, str] = {}
    for answer in reversed(
        get_plugin_manager().hook.mailroom_folder_role_hints(service_key=service_key, folders=folders)
    ):
        for folder, role in (answer or {}).items():
            if folder in known and role in FOLDER_ROLES:
                merged[folder] = role
    return {f: merged[f] for f in folders if f in merged}


def messages_synced(account_id: int, folder: str, uids: list[int]) -> None:
    """Tell plugins about new messages; a failing listener is logged, never raised.

    Sync has already committed by now, so a plugin bug must not mark it failed.
    """
    try:
        get_plugin_manager().hook.mailroom_messages_synced(
            account_id=account_id, folder=folder, uids=list(uids)
        )
    except Exception:
        log.exception("A mailroom_messages_synced plugin failed for account %s folder %r", account_id, folder)


def _text(value: Any) -> str:
    """Enum members (Protocol.IMAP, an error class) as their plain string value."""
    return str(getattr(value, "value", value))


def _as_list(value: Any) -> list:
    """Accept a list, a tuple, one item or None from a plugin."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def server_saves_sent(service_key: str | None) -> bool:
    """Does the provider file the Sent copy itself (so Mailroom must not APPEND one)?

    The first plugin answer that is not None wins; without one, the preset's
    ``files_sent_copy`` decides.  A failing plugin is logged and counts as no answer.
    """
    try:
        answer = get_plugin_manager().hook.mailroom_server_saves_sent(service_key=service_key)
    except Exception:
        log.exception("A mailroom_server_saves_sent plugin failed for %r", service_key)
        answer = None
    if answer is not None:
        return bool(answer)
    preset = service_preset(service_key)
    return bool(preset and preset.files_sent_copy)


def connection_limit(host: str | None) -> ConnectionLimit | None:
    """The first plugin's cap on concurrent connections to ``host``; a failing plugin, or an
    answer that is not a :class:`ConnectionLimit`, counts as no answer (logged)."""
    if not host:
        return None
    try:
        answer = get_plugin_manager().hook.mailroom_connection_limit(host=host.lower())
    except Exception:
        log.exception("A mailroom_connection_limit plugin failed for %r", host)
        return None
    if answer is not None and not isinstance(answer, ConnectionLimit):
        log.warning("A mailroom_connection_limit plugin answered %r for %r; ignored", answer, host)
        return None
    return answer
