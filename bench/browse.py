"""How long the browsing queries take on a big store: ``python -m bench.browse [N]`` (default 100,000).

Builds a throw-away SQLite database (or uses ``DATABASE_URL``, whose tables are
dropped and recreated: never point it at real data) with one user, two
mailboxes and N messages, then prints the median time of each query: the
first page and a deep page of the unified inbox (keyset: both should cost the
same), a search, Flagged, the thread view and a correspondent history.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta


def main(n: int = 100_000) -> None:
    from webapp import create_app
    from webapp import message_queries as mq
    from webapp.extensions import db
    from webapp.models import Account, Folder, Message
    from webapp.users import create_user

    instance = tempfile.mkdtemp(prefix="mailroom-bench-browse-")
    config = {"INSTANCE_PATH": instance, "SECRET_KEY": "bench"}
    if not os.environ.get("DATABASE_URL"):
        config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(instance, "bench.sqlite3")
    app = create_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
        user = create_user("bench", "bench-pw-123456")
        folders = []
        for i in range(2):
            account = Account(user_id=user.id, username=f"u{i}", email=f"u{i}@example.com", manual=True)
            db.session.add(account)
            db.session.flush()
            folder = Folder(
                account_id=account.id, name="INBOX", display_name="INBOX", role="inbox", sync=True
            )
            db.session.add(folder)
            db.session.flush()
            folders.append(folder)
        rng = random.Random(4)
        t0 = datetime(2020, 1, 1)
        rows = []
        for i in range(n):
            folder = folders[i % 2]
            sender = f"person{rng.randrange(500)}@example.com"
            thread = rng.randrange(n // 4 or 1)
            rows.append(
                {
                    "account_id": folder.account_id,
                    "folder_id": folder.id,
                    "uid": i + 1,
                    "message_id": f"<m{i}@x>",
                    "thread_key": f"<t{thread}@x>",
                    "subject": f"Subject {rng.randrange(10_000)}",
                    "from_name": f"Person {sender[6:-12]}",
                    "from_addr": sender,
                    "participants": f" {sender} u{i % 2}@example.com ",
                    "date": t0 + timedelta(minutes=rng.randrange(3_000_000)),
                    "flags": "",
                    "seen": True,
                    "flagged": rng.random() < 0.01,
                    "preview": "",
                }
            )
        for start in range(0, n, 5000):
            db.session.execute(db.insert(Message), rows[start : start + 5000])
        db.session.commit()

        deep = mq.paginate(mq.view_query(user, "inbox"), 50)
        for _ in range(100):
            deep = mq.paginate(mq.view_query(user, "inbox"), 50, deep.next_cursor)
        cases = {
            "unified inbox, first page": lambda: mq.paginate(mq.view_query(user, "inbox"), 50),
            "unified inbox, page 102": lambda: mq.paginate(
                mq.view_query(user, "inbox"), 50, deep.next_cursor
            ),
            "one folder, first page": lambda: mq.paginate(mq.folder_query(folders[0]), 50),
            "search 'person42'": lambda: mq.paginate(mq.view_query(user, "inbox", "person42"), 50),
            "flagged": lambda: mq.paginate(mq.view_query(user, "flagged"), 50),
            "threads, first page": lambda: mq.threads(user, "inbox", limit=50),
            "history of one address": lambda: mq.history(user, "person7@example.com", 50),
        }
        print(f"{n} messages, {db.engine.dialect.name}")
        for name, call in cases.items():
            times = []
            for _ in range(5):
                start = time.perf_counter()
                call()
                times.append((time.perf_counter() - start) * 1000)
                db.session.rollback()
            print(f"  {name:28} {statistics.median(times):8.1f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
