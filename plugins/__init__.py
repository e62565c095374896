"""Built-in Mailroom plugins: one module per mail provider, plus generic helpers.

Each module implements hooks from ``connectors/hookspecs.py``.  The plugin
manager registers them by name from ``connectors.plugins.DEFAULT_PLUGINS`` when
it is first built; that list's order is the order presets are listed in.  This
package imports ``connectors``, never the other way round.
"""
