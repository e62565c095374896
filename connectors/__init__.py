"""The mail core of Mailroom: protocol settings, clients, errors, plugins.

Nothing in this package imports Flask, so workers, tools and third-party
plugins can use it on its own.
"""
