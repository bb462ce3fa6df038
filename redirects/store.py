"""Scratch tables on disk for everything that grows with the legacy site.

The redirects stage keeps one row per legacy URL at several points (its
capture, its page, its redirect, its map keys). Held in dicts those cost
hundreds of bytes each, so memory grew with the old site; here they live in
a private SQLite database that SQLite deletes when it is closed. Only the
new site's index and SQLite's bounded page cache stay in RAM.

An empty file name gives that private database: SQLite keeps it in its page
cache while it is small and spills it to a file in the system's temporary
folder (``TMPDIR``) beyond that. Nothing needs to survive a crash, so there
is no journal and no fsync.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

# Pages SQLite may cache per scratch database. The writers each open one
# while the run's own is open, so this is a few times the resident cost.
CACHE_KIB = 4096
BATCH = 2000
# Values per IN (...) list: well under SQLite's limit on bound parameters.
_IN_LIST = 500
_SURROGATE = re.compile("[\ud800-\udfff]")


def open_scratch() -> sqlite3.Connection:
    """A private, temporary on-disk database, deleted when closed."""
    db = sqlite3.connect("", isolation_level=None)
    for pragma in (
        # Larger pages: fewer reads and writes of the spilled file, shallower trees.
        "page_size=16384",
        "journal_mode=OFF",
        "synchronous=OFF",
        f"cache_size=-{CACHE_KIB}",
        "temp_store=FILE",
    ):
        db.execute(f"PRAGMA {pragma}")
    # One transaction for the database's whole life: a commit per statement
    # would cost far more than the work itself.
    db.execute("BEGIN")
    return db


def create(db: sqlite3.Connection, schema: str) -> None:
    """Run the ``;``-separated statements of ``schema`` inside the open transaction.

    Not ``executescript``: it commits first, and every later statement would
    then be a transaction of its own.
    """
    for statement in schema.split(";"):
        if statement.strip():
            db.execute(statement)


def scan(
    db: sqlite3.Connection,
    table: str,
    columns: str,
    where: str = "",
    params: tuple[Any, ...] = (),
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``table`` in ``id`` order, ``id`` first, read a batch at a time.

    Each batch is read in full before the caller sees it, so the caller may
    update the rows it is given (SQLite leaves a statement still stepping
    through a table undefined if that table changes under it).
    """
    last = 0
    extra = f" AND ({where})" if where else ""
    sql = f"SELECT id, {columns} FROM {table} WHERE id > ?{extra} ORDER BY id LIMIT {BATCH}"
    while True:
        batch = db.execute(sql, (last, *params)).fetchall()
        if not batch:
            return
        yield from batch
        last = batch[-1][0]


def storable(text: str) -> str:
    """``text`` with lone surrogates replaced, so SQLite (UTF-8 only) can hold it.

    JSON may spell a lone surrogate (``"\\udc80"``); it is no character, and
    a title or id holding one would otherwise stop the run.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


class Buffer:
    """Rows for one statement, sent to SQLite a batch at a time (``executemany``).

    A statement per row costs more in Python than SQLite's work on it. Rows
    wait here until a batch is full or :meth:`flush` is called: flush before
    reading a table the buffered rows would change.
    """

    def __init__(self, db: sqlite3.Connection, sql: str) -> None:
        self.db = db
        self.sql = sql
        self.rows: list[tuple[Any, ...]] = []

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.db.executemany(self.sql, self.rows)
            self.rows.clear()


def present(db: sqlite3.Connection, sql: str, values: Iterable[Any]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (ending ``IN ({})``) for ``values``, asked a few hundred at a time."""
    found: list[tuple[Any, ...]] = []
    chunk: list[Any] = []
    for value in values:
        chunk.append(value)
        if len(chunk) >= _IN_LIST:
            found += db.execute(sql.format(", ".join("?" * len(chunk))), chunk).fetchall()
            chunk.clear()
    if chunk:
        found += db.execute(sql.format(", ".join("?" * len(chunk))), chunk).fetchall()
    return found
