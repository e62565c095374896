"""``run_burst`` gives pytest its SIGINT/SIGTERM handlers back (RQ's worker replaces them with a
warm shutdown and leaves them, so Ctrl-C or a CI timeout would only fail the running test)."""

from __future__ import annotations

import signal

from tests.support.job_worker import run_burst


def test_run_burst_leaves_pytests_signal_handlers(app):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    run_burst(app)
    run_burst(app, fork=True)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
