"""What a crawl has claimed and captured, kept on disk so memory stays flat as the site grows.

A crawl remembers every URL it has claimed (to fetch each once) and the first
capture of every payload (to write later copies as revisits). Held in Python
sets and dicts these grow by about 80 and 200 bytes per URL: a site with no
end (or a frontier of millions) makes that the crawler's largest cost. Here
both live in one SQLite file under the crawl's state/ folder, with a bounded
page cache. Nothing in it needs to survive a crash: a resume rebuilds it from
the WARCs, so it is written without a journal or syncs.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

CACHE_KIB = 16 * 1024  # SQLite's page cache: the memory this costs, whatever the crawl's size


class CrawlMemory:
    """The claimed URL keys (`seen`) and first captures by payload (`payloads`) of one run."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # rebuilt from the WARCs on resume
        self.path = path
        self.db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None)
        for pragma in (
            "journal_mode = OFF",
            "synchronous = OFF",
            f"cache_size = -{CACHE_KIB}",
            "temp_store = FILE",
        ):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE seen (key BLOB PRIMARY KEY) WITHOUT ROWID")
        self.db.execute(
            "CREATE TABLE payloads (digest BLOB PRIMARY KEY, first TEXT NOT NULL) WITHOUT ROWID"
        )
        # Autocommit would sync each statement; one open transaction batches
        # every write, and SQLite spills pages to the file when its cache is full.
        self.db.execute("BEGIN")
        self.seen = _Keys(self.db)
        self.payloads = _Payloads(self.db)

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            if self.path is not None:
                self.path.unlink(missing_ok=True)


class _Keys:
    """A set of short byte keys: `in`, `add`, `add_new` and `update`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __contains__(self, key: bytes) -> bool:
        return self.db.execute("SELECT 1 FROM seen WHERE key = ?", (key,)).fetchone() is not None

    def add(self, key: bytes) -> None:
        self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,))

    def add_new(self, key: bytes) -> bool:
        """Add `key`; False if it was there already (one statement, not two)."""
        return self.db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,)).rowcount == 1

    def update(self, keys: Iterable[bytes]) -> None:
        self.db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((k,) for k in keys))

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM seen").fetchone()[0])


class _Payloads:
    """Payload digest -> "WARC-Date URL" of its first capture: `get` and `setdefault`."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def get(self, digest: bytes) -> str | None:
        row = self.db.execute("SELECT first FROM payloads WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def setdefault(self, digest: bytes, first: str) -> str:
        self.db.execute("INSERT OR IGNORE INTO payloads VALUES (?, ?)", (digest, first))
        return self.get(digest) or first

    def __setitem__(self, digest: bytes, first: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO payloads VALUES (?, ?)", (digest, first))

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM payloads").fetchone()[0])
