"""Helpers the tests share: factories, a real RQ worker, fake servers' routes, secret search.

Test modules import from here (``from tests.support.job_worker import run_burst``); the real
protocol servers the tests start live in ``tests/servers/``.
"""
