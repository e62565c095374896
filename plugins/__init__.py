"""Built-in Mailroom plugins: one module per mail provider, plus generic helpers.

Each module implements hooks from ``connectors/hookspecs.py`` and is
registered by ``connectors/plugins.py`` in the order below; that order is the
order presets are listed in, and later modules win when answers are merged.
``protocols`` (the built-in IMAP/POP3/SMTP clients) and ``custom`` (generic
folder names) come first so every other plugin outranks them.
"""

BUILTIN_PLUGINS: tuple[str, ...] = (
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
