"""`sunset crawl --finish`: turn the files of several workers into one crawl folder.

Each worker of a shared crawl writes its own WARC files (its id in the name)
and its own logs under workers/<id>/. Once every worker has stopped, this
checks the WARCs (a worker killed mid-write leaves a torn last record, which
is set aside as a resume does), indexes them all into indexes/index.cdxj with
cdxj-indexer, and merges the workers' crawl.log and pages.jsonl in time order
into the crawl folder, so transform, redirects and package see one archive.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sunset.errors import SunsetError
from sunset.ui import console, summary_table

from .resume import repair
from .run import index_warcs
from .session import seen_key
from .shared import ALIVE_MS, Shared


def _workers(out: Path) -> list[Path]:
    folder = out / "workers"
    if not folder.is_dir():
        raise SunsetError(f"--finish: {out} holds no shared crawl (no workers/ folder)")
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _check_stopped(workers: list[Path]) -> None:
    for w in workers:
        lock = w / "lock"
        if not lock.exists():
            continue
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise SunsetError(
                    f"--finish: worker {w.name} is still running; wait for it to stop"
                ) from None
            fcntl.flock(fh, fcntl.LOCK_UN)


def _lines(path: Path) -> Iterator[str]:
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            if line.endswith("\n"):  # a line cut by a kill is not a log line
                yield line


def _write_atomic(path: Path, lines: Iterator[str]) -> int:
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8", errors="surrogateescape") as fh:
        for line in lines:
            fh.write(line)
            n += 1
    os.replace(tmp, path)
    return n


def _pages(workers: list[Path]) -> Iterator[str]:
    """Every worker's pages.jsonl in capture order, each URL once (the first capture)."""

    def parsed(path: Path) -> Iterator[tuple[str, str, str]]:
        for line in _lines(path):
            try:
                rec = json.loads(line)
                yield str(rec["ts"]), str(rec["url"]), line
            except (ValueError, KeyError, TypeError):
                continue

    seen: set[bytes] = set()
    for _ts, url, line in heapq.merge(*(parsed(w / "pages.jsonl") for w in workers)):
        key = seen_key(url)
        if key not in seen:
            seen.add(key)
            yield line


def _twice(index: Path) -> list[str]:
    """URLs with more than one 2xx response: work re-done after a worker was lost mid-write."""
    twice: list[str] = []
    current, count = None, 0
    for line in _lines(index):
        urlkey, _, rest = line.partition(" ")
        try:
            rec = json.loads(rest.partition(" ")[2])
        except ValueError:
            continue
        if urlkey != current:
            current, count = urlkey, 0
        if str(rec.get("status", "")).startswith("2") and rec.get("mime") != "warc/revisit":
            count += 1
            if count == 2:
                twice.append(str(rec.get("url")))
    return twice


def run_finish(out: Path, name: str, redis_url: str | None = None) -> int:
    workers = _workers(out)
    if not workers:
        raise SunsetError(f"--finish: {out}/workers/ is empty; no worker has run")
    _check_stopped(workers)
    shared = None
    remaining = 0
    if redis_url:
        shared = Shared(redis_url, name, worker="finish")
        workers_now = shared.call("listing workers", shared.client.smembers, shared.workers_key)
        alive = [
            w.decode()
            for w in workers_now
            if shared.call(
                "listing workers", shared.client.exists, f"{shared.ns}alive:{w.decode()}"
            )
        ]
        if alive:
            raise SunsetError(
                f"--finish: worker {', '.join(sorted(alive))} is still running "
                f"(its heartbeat is under {ALIVE_MS // 1000} s old)"
            )
        shared.call("reclaiming leases", shared.reclaim_dead)
        remaining = shared.remaining()
        if remaining:
            raise SunsetError(
                f"--finish: the crawl is not over, {remaining} requests are still queued in "
                "Redis; start workers again to finish them"
            )

    checks = repair(out / "warc", out / "state" / "set-aside")
    torn = [c for c in checks if c.torn]
    for c in torn:
        console.print(
            f"[yellow]{c.path.name}: {c.error or 'torn tail'}; kept {c.records} whole records, "
            "original moved to state/set-aside/"
        )
    files = sorted((out / "warc").glob("*.warc.gz"))
    index = out / "indexes" / "index.cdxj"
    index_warcs(files, index)
    log_lines = _write_atomic(
        out / "crawl.log", heapq.merge(*(_lines(w / "crawl.log") for w in workers))
    )
    pages = _write_atomic(out / "pages.jsonl", _pages(workers))
    twice = _twice(index)

    stats: Counter[str] = Counter()
    per_worker = []
    for w in workers:
        with contextlib.suppress(OSError, ValueError):
            summary = json.loads((w / "crawl.json").read_text())
            stats.update({k: int(v) for k, v in summary.get("stats", {}).items()})
            per_worker.append(
                {
                    "worker": w.name,
                    "seconds": summary.get("seconds"),
                    "responses": summary.get("stats", {}).get("responses", 0),
                    "pages": summary.get("stats", {}).get("pages", 0),
                    "fatal": summary.get("fatal"),
                    "reclaimed_from_lost_workers": summary.get("reclaimed_from_lost_workers", 0),
                }
            )
        if not (w / "crawl.json").exists():
            per_worker.append({"worker": w.name, "stopped": "without a summary (killed)"})
    record = {
        "name": name,
        "finished": datetime.now(UTC).isoformat(),
        "shared": True,
        "workers": per_worker,
        "stats": dict(sorted(stats.items())),
        "pages": pages,
        "warc_files": [f.name for f in files],
        "torn_files_repaired": [c.path.name for c in torn],
        "urls_captured_twice": twice,
    }
    (out / "crawl.json").write_text(json.dumps(record, indent=2) + "\n")
    if shared is not None and not remaining:
        # The crawl is over; its frontier is not needed again.
        shared.call("clearing the crawl's keys", shared.clear)
    summary_table(
        f"finish {name} — {out}",
        [
            ("workers", len(workers)),
            ("WARC files", len(files)),
            ("  repaired after a kill", len(torn)),
            ("HTML pages", pages),
            ("crawl.log lines", log_lines),
            ("URLs captured twice (re-done)", len(twice)),
        ],
    )
    return 0
