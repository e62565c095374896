"""Benchmarks that print ratios against targets; ``python -m bench.sync`` (``make bench``)."""
