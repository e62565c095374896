"""Where a worker's time goes, from a py-spy raw profile (``bench.fleet --py-spy DIR``).

``python -m bench.profile_shares DIR/unchanged-pass-N.txt [--rate 200]``

py-spy's ``--format raw`` writes one line per distinct stack: ``frame;frame;… count``, the
first frames naming the worker process and, for a sample taken in a forked work horse, the
horse.  Each stack is put in the first category of :data:`CATEGORIES` whose pattern it
matches (so an import made inside the plugin manager's first build counts as that build),
threads that only wait are set apart, and the rest is shown as a share of the active samples
and as milliseconds per job (one job per work horse seen).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

#: Leaf frames of threads that wait (the lock keeper, the pulse, the parent waiting for its horse).
WAITING = re.compile(
    r"^(Condition\.wait|Event\.wait|Worker\.wait_for_horse|RQScheduler\.work|_wait_for_tstate_lock)"
)
#: (label, regex on the stack): the first match wins.
CATEGORIES = [
    (
        "plugin manager built in each horse (open_client -> connectors.plugins)",
        r"_build_plugin_manager",
    ),
    ("ssl.create_default_context (connectors.net.tls_context)", r"create_default_context"),
    ("other imports inside the job (first use in each horse)", r"_find_and_load"),
    ("fork of the work horse", r"fork_work_horse \([^;]*$|<lambda> \(webapp/cli\.py"),
    ("SQLAlchemy mapper configuration (each horse)", r"_configure_registries"),
    ("SQL compilation (the horse's statement cache is empty)", r"SQLCompiler\.__init__|Compiled\.__init__"),
    ("database commit", r"do_commit"),
    ("database queries (execute, fetch, ORM)", r"sqlalchemy/|psycopg|sqlite3"),
    ("password decryption (Fernet)", r"cryptography/"),
    ("IMAP connect, greeting, CAPABILITY", r"ImapClient\.connect"),
    ("IMAP login", r"ImapClient\.login"),
    ("engine: connectors.sync.sync_folders (STATUS, decisions)", r"sync_folders"),
    ("IMAP logout and close", r"ProtocolClient\.__exit__|logout"),
    ("Redis (sync lock, job state, registries)", r"redis/"),
    ("RQ job bookkeeping (other)", r"rq/"),
]


def parse(path: Path) -> tuple[Counter, Counter, set[str]]:
    """(samples per category, samples per waiting leaf, horse pids) of a raw py-spy file."""
    shares: Counter = Counter()
    waiting: Counter = Counter()
    horses: set[str] = set()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        procs = [f.split(":")[0] for f in frames if f.startswith("process ")]
        if len(procs) > 1:
            horses.add(procs[1])
        code = [f for f in frames if not f.startswith("process ")]
        if code and WAITING.match(code[-1]):
            waiting[code[-1].split(" (")[0]] += int(count)
            continue
        text = ";".join(code)
        label = next((name for name, rx in CATEGORIES if re.search(rx, text)), "other")
        shares[label] += int(count)
    return shares, waiting, horses


def report(path: Path, rate: int) -> str:
    shares, waiting, horses = parse(path)
    active = sum(shares.values())
    jobs = max(1, len(horses))
    lines = [
        f"{path.name}: {active} active samples at {rate} Hz over {jobs} jobs "
        f"= {1000 * active / rate / jobs:.0f} ms of active time per job "
        f"(+ {sum(waiting.values())} samples of waiting threads, left out)",
        "",
        f"{'':78}{'share':>7}{'ms/job':>8}",
    ]
    for label, n in shares.most_common():
        lines.append(f"{label:78}{100 * n / active:>6.1f}%{1000 * n / rate / jobs:>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_shares", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("profile", type=Path, help="py-spy --format raw output")
    parser.add_argument("--rate", type=int, default=200, help="py-spy's sampling rate (bench.fleet uses 200)")
    args = parser.parse_args(argv)
    print(report(args.profile, args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
