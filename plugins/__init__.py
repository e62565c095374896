"""Built-in Mailroom plugins: one module per mail provider, plus generic helpers.

Each module implements hooks from ``connectors/hookspecs.py`` and is
registered by ``connectors/plugins.py`` in the order below; that order is the
order presets are listed in, and later modules win when answers are merged.
``custom`` (generic folder names) comes first so every provider outranks it.
"""

BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.custom",
    "plugins.gmail",
    "plugins.office365",
    "plugins.outlook",
    "plugins.yahoo",
    "plugins.icloud",
    "plugins.aruba",
    "plugins.aruba_pec",
    "plugins.legalmail",
    "plugins.presets_discovery",
)
