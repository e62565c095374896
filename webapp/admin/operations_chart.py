"""The Operations page's 24-hour sync-lag chart, drawn here as SVG coordinates.

The template writes them into an inline ``<svg>`` (elements and presentation attributes, no
``style`` and no script), so the page needs nothing the Content-Security-Policy forbids.
"""

from __future__ import annotations

import time

WIDTH, HEIGHT, PAD = 600, 160, 30
SPAN = 24 * 3600


def lag_chart(samples: list[dict], now: float | None = None) -> dict:
    """Polyline points for oldest and p95 (seconds) over the last 24 h, and the y-axis top label."""
    now = now or time.time()
    top = max([1.0] + [max(s["oldest"], s["p95"]) for s in samples])

    def point(sample: dict, key: str) -> str:
        x = PAD + (WIDTH - 2 * PAD) * (1 - (now - sample["t"]) / SPAN)
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (sample[key] / top)
        return f"{x:.1f},{y:.1f}"

    return {
        "width": WIDTH,
        "height": HEIGHT,
        "pad": PAD,
        "oldest": " ".join(point(s, "oldest") for s in samples),
        "p95": " ".join(point(s, "p95") for s in samples),
        "top": duration(top),
    }


def duration(seconds: float | None) -> str:
    """``42 s``, ``7 min``, ``3.5 h``: a lag as a person reads it."""
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
