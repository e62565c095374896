"""The fleet benchmark's scaling figures: efficiency per worker count, CPU-ms per mailbox per part,
and what they imply for sizing across machines.

* **Efficiency** of N workers = rate_N / (N x rate_1): 1.00 is perfectly linear.  With
  ``--worker-cpu`` every worker is a core of the same size, so a shortfall is contention
  (something the workers share), not a machine out of cores; "worker cores used / cap" says
  whether the workers really used the CPU they were given.
* **CPU-ms per mailbox** of each part (workers, Dovecot, the workers' PostgreSQL backends, Redis,
  the bench itself), summed over every pass of one kind (first sync, unchanged), from
  :mod:`bench.fleet_cputime`.
* **Ceilings**: one core of a part serves 1000 / ms mailboxes a second, the work of
  (worker ms / part ms) fully busy one-core workers.  That is the sizing argument for many
  machines: the workers scale out, the shared PostgreSQL and Redis are the limit, at that ratio.
"""

from __future__ import annotations

import time

from bench.fleet_cputime import PARTS, CpuMeter
from bench.fleet_workers import Workers


class PassCpu:
    """CPU ms per part, and the workers' CFS throttling, over one pass (a ``with`` block)."""

    def __init__(self, meter: CpuMeter, workers: Workers) -> None:
        self.meter, self.workers = meter, workers
        self.result: dict = {}

    def __enter__(self) -> PassCpu:
        self._t0 = time.monotonic()
        self._before = self.meter.snapshot()
        self._throttle = self.workers.throttling()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self.meter.snapshot()
        throttle = self.workers.throttling()
        self.result = {
            "seconds": round(time.monotonic() - self._t0, 3),
            "cpu_ms": {k: round(v, 1) for k, v in CpuMeter.since(self._before, after).items()},
            "cfs_periods": throttle.get("nr_periods", 0) - self._throttle.get("nr_periods", 0),
            "cfs_throttled": throttle.get("nr_throttled", 0) - self._throttle.get("nr_throttled", 0),
        }


def efficiency(rows: list[dict], key: str) -> None:
    """``<key>_x1`` (rate / the fewest workers' rate) and ``<key>_efficiency`` on each row."""
    base = rows[0]
    for row in rows:
        ratio = row[key] / base[key] if base[key] else None
        row[f"{key}_x1"] = round(ratio, 2) if ratio is not None else None
        row[f"{key}_efficiency"] = (
            round(ratio * base["workers"] / row["workers"], 2) if ratio is not None else None
        )


def pass_figures(cpu: dict, mailboxes: int, workers: int, cap: float | None) -> dict:
    """Per pass: CPU-ms per mailbox per part, worker cores used, and the share of the cap used."""
    per = {part: round(cpu["cpu_ms"].get(part, 0.0) / mailboxes, 2) for part in PARTS}
    cores = cpu["cpu_ms"]["workers"] / 1000 / cpu["seconds"] if cpu["seconds"] else 0.0
    out = {"ms_per_mailbox": per, "worker_cores": round(cores, 3)}
    if cap:
        out["cap_used"] = round(cores / (cap * workers), 2)
        out["throttled_share"] = (
            round(cpu["cfs_throttled"] / cpu["cfs_periods"], 2) if cpu["cfs_periods"] else 0.0
        )
    return out


def ceilings(runs: list[dict], mailboxes: int) -> dict:
    """Per pass kind, CPU-ms per mailbox per part over all runs, and what one core of each serves."""
    out = {}
    for kind in ("first", "unchanged"):
        total = {part: sum(r[kind]["cpu"]["cpu_ms"].get(part, 0.0) for r in runs) for part in PARTS}
        n = mailboxes * len(runs)
        ms = {part: total[part] / n for part in PARTS}
        worker_ms = ms["workers"]
        out[kind] = {
            part: {
                "ms_per_mailbox": round(ms[part], 2),
                "mailboxes_per_core_s": round(1000 / ms[part], 1) if ms[part] > 0 else None,
                "worker_cores_per_core": round(worker_ms / ms[part], 1) if ms[part] > 0 else None,
            }
            for part in PARTS
        }
    return out


def render(summary: dict) -> str:
    """The scaling table and the CPU tables, as text."""
    cap = summary.get("worker_cpu")
    lines = [
        "Scaling (efficiency = rate_N / (N x rate_1); each worker "
        + (f"capped at {cap:g} core)" if cap else "uncapped)"),
        f"{'workers':>7} {'cap':>5} {'first/s':>8} {'x1':>5} {'eff.':>5} {'unch./s':>8} {'x1':>5} "
        f"{'eff.':>5} {'w.cores 1st/unch':>17} {'cap used':>9}",
    ]
    for r in summary["runs"]:
        f, u = r["cpu"]["first"], r["cpu"]["unchanged"]
        used = f"{f['cap_used']:.2f}/{u['cap_used']:.2f}" if cap else "-"
        cores = f"{r['workers'] * cap:.2f}" if cap else "-"
        lines.append(
            f"{r['workers']:>7} {cores:>5} {r['first_per_s']:>8.1f} "
            f"{r['first_per_s_x1'] or 0:>5.2f} {r['first_per_s_efficiency'] or 0:>5.2f} "
            f"{r['unchanged_per_s']:>8.1f} {r['unchanged_per_s_x1'] or 0:>5.2f} "
            f"{r['unchanged_per_s_efficiency'] or 0:>5.2f} "
            f"{f['worker_cores']:>8.2f}/{u['worker_cores']:<8.2f} {used:>9}"
        )
    lines += ["", "CPU-ms per mailbox, per part and pass (first sync | unchanged):"]
    lines.append(f"{'workers':>7} " + " ".join(f"{p:>17}" for p in PARTS))
    for r in summary["runs"]:
        f, u = r["cpu"]["first"]["ms_per_mailbox"], r["cpu"]["unchanged"]["ms_per_mailbox"]
        lines.append(f"{r['workers']:>7} " + " ".join(f"{f[p]:>8.2f}|{u[p]:<8.2f}" for p in PARTS))
    lines += ["", _ceiling_text(summary["cpu_ceilings"])]
    return "\n".join(lines)


def _ceiling_text(ceil: dict) -> str:
    lines = [
        "Ceilings from the CPU-ms (all runs): one core of each part serves      first sync   unchanged",
    ]
    for part in PARTS:
        if part == "workers":
            continue
        f, u = ceil["first"][part], ceil["unchanged"][part]
        lines.append(
            f"  {part:<9} mailboxes/s {_num(f['mailboxes_per_core_s']):>10} {_num(u['mailboxes_per_core_s']):>11}"
            f"   = one-core workers {_num(f['worker_cores_per_core']):>7} {_num(u['worker_cores_per_core']):>7}"
        )
    w = ceil["first"]["workers"], ceil["unchanged"]["workers"]
    lines.append(
        f"  one worker core: mailboxes/s {_num(w[0]['mailboxes_per_core_s']):>10} {_num(w[1]['mailboxes_per_core_s']):>11}"
    )
    return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"
