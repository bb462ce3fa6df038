"""`sunset crawl --finish`: turn the files of several workers into one crawl folder.

Each worker of a shared crawl writes its own WARC files (its id in the name)
and its own logs under workers/<id>/. Once every worker has stopped, this
checks the WARCs (a worker killed mid-write leaves a torn last record, which
is set aside as a resume does), indexes them all into indexes/index.cdxj with
cdxj-indexer, and merges the workers' crawl.log and pages.jsonl in time order
into the crawl folder, so transform, redirects and package see one archive.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sunset.errors import SunsetError
from sunset.paths import replacing
from sunset.ui import console, summary_table

from .indexing import write_index
from .resume import repair
from .session import seen_key
from .shared import ALIVE_MS, Shared

# A crawl.log line: microsecond UTC time, then at least nine more fields.
# Fields are split on spaces only: a worker escapes spaces and newlines in a
# field but keeps other whitespace (a no-break space in a refused URL).
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z(?: +[^ \n]+){9,}\n")
# Reserved: worker ids start with a letter or digit, so no worker can be this.
FINISH_ID = "-finish"


def _workers(out: Path) -> list[Path]:
    folder = out / "workers"
    if not folder.is_dir():
        raise SunsetError(f"--finish: {out} holds no shared crawl (no workers/ folder)")
    if not (out / "warc").is_dir():
        raise SunsetError(f"--finish: {out} has no warc/ folder; nothing was archived there")
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _check_stopped(workers: list[Path]) -> None:
    for w in workers:
        lock = w / "lock"
        if not lock.is_file():
            continue
        with open(lock, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise SunsetError(
                    f"--finish: worker {w.name} is still running; wait for it to stop"
                ) from None
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass
class Dropped:
    """Lines of the workers' logs that are not what a worker writes (damage, not a kill)."""

    log: int = 0
    pages: int = 0


def _lines(path: Path) -> Iterator[str]:
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            if line.endswith("\n"):  # a line cut by a kill is not a log line
                yield line


def _utf8(line: str) -> bool:
    """False for a line holding bytes that were not UTF-8 (read as lone surrogates)."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _log_lines(path: Path, dropped: Dropped) -> Iterator[str]:
    for line in _lines(path):
        if LOG_LINE.fullmatch(line) and _utf8(line):
            yield line
        else:
            dropped.log += 1


def _write_atomic(path: Path, lines: Iterator[str]) -> int:
    n = 0
    with replacing(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
        for line in lines:
            fh.write(line)
            n += 1
    return n


def _pages(workers: list[Path], dropped: Dropped) -> Iterator[str]:
    """Every worker's pages.jsonl in capture order, each URL once (the first capture)."""

    def parsed(path: Path) -> Iterator[tuple[str, str, str]]:
        for line in _lines(path):
            try:
                rec = json.loads(line)
                ts, url = rec["ts"], rec["url"]
            except (ValueError, KeyError, TypeError):
                ts = url = None
            if isinstance(ts, str) and isinstance(url, str) and _utf8(line):
                yield ts, url, line
            else:
                dropped.pages += 1

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


def _summaries(w: Path) -> Iterator[dict | None]:
    """Each run's summary of one worker (a restarted worker id has several); None if unreadable."""
    lines = list(_lines(w / "runs.jsonl"))
    if not lines and (w / "crawl.json").is_file():
        try:
            lines = [(w / "crawl.json").read_text(encoding="utf-8")]
        except (OSError, UnicodeDecodeError):
            lines = ["-"]
    for line in lines:
        try:
            summary = json.loads(line)
        except ValueError:
            summary = None
        stats = summary.get("stats") if isinstance(summary, dict) else None
        ok = (
            isinstance(stats, dict)
            and all(isinstance(v, int) for v in stats.values())
            and isinstance(summary.get("reclaimed_from_lost_workers", 0), int | None)
        )
        yield summary if ok else None


def _tally(workers: list[Path]) -> tuple[Counter[str], list[dict[str, object]]]:
    stats: Counter[str] = Counter()
    per_worker: list[dict[str, object]] = []
    for w in workers:
        runs = list(_summaries(w))
        good = [r for r in runs if r is not None]
        for r in good:
            stats.update(r["stats"])
        entry: dict[str, object] = {
            "worker": w.name,
            "runs": len(good),
            "responses": sum(r["stats"].get("responses", 0) for r in good),
            "pages": sum(r["stats"].get("pages", 0) for r in good),
            "reclaimed_from_lost_workers": sum(
                int(r.get("reclaimed_from_lost_workers") or 0) for r in good
            ),
            "fatal": [r["fatal"] for r in good if r.get("fatal")],
        }
        if len(good) < len(runs):
            entry["unreadable_summaries"] = len(runs) - len(good)
            console.print(f"[yellow]workers/{w.name}: a run summary is unreadable; not counted")
        if (w / "running").exists():
            # Written as a run starts and removed after its summary: a run
            # that left it ended without one (killed).
            entry["stopped"] = "a run ended without a summary (killed)"
        per_worker.append(entry)
    return stats, per_worker


def run_finish(out: Path, name: str, redis_url: str) -> int:
    workers = _workers(out)
    if not workers:
        raise SunsetError(f"--finish: {out}/workers/ is empty; no worker has run")
    _check_stopped(workers)
    shared = Shared(redis_url, name, worker=FINISH_ID)
    if not shared.call("checking", shared.known):
        raise SunsetError(
            f"--finish: Redis at {shared.url} knows no shared crawl named {name!r}; "
            "give the --name the workers used"
        )
    workers_now = shared.call("listing workers", shared.client.smembers, shared.workers_key)
    alive = [
        w.decode()
        for w in workers_now
        if shared.call("listing workers", shared.client.exists, f"{shared.ns}alive:{w.decode()}")
    ]
    if alive:
        raise SunsetError(
            f"--finish: worker {', '.join(sorted(alive))} is still running "
            f"(or stopped less than {ALIVE_MS // 1000} s ago)"
        )
    shared.call("reclaiming leases", shared.reclaim_dead)
    remaining = shared.remaining()
    if remaining:
        raise SunsetError(
            f"--finish: the crawl is not over, {remaining} requests are still queued in "
            "Redis; start workers again to finish them"
        )
    try:
        return _merge(out, name, workers, shared)
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise SunsetError(
            f"--finish: cannot write the merged crawl{where}: {exc.strerror or exc}; "
            "the workers' own logs are untouched, run --finish again once fixed"
        ) from None


def _merge(out: Path, name: str, workers: list[Path], shared: Shared) -> int:
    checks = repair(out / "warc", out / "state" / "set-aside")
    torn = [c for c in checks if c.torn]
    for c in torn:
        console.print(
            f"[yellow]{c.path.name}: {c.error or 'torn tail'}; kept {c.records} whole records, "
            "original moved to state/set-aside/"
        )
    files = sorted((out / "warc").glob("*.warc.gz"))
    index = out / "indexes" / "index.cdxj"
    write_index(files, index)
    dropped = Dropped()
    log_lines = _write_atomic(
        out / "crawl.log", heapq.merge(*(_log_lines(w / "crawl.log", dropped) for w in workers))
    )
    pages = _write_atomic(out / "pages.jsonl", _pages(workers, dropped))
    if dropped.log or dropped.pages:
        console.print(
            f"[yellow]left out {dropped.log} crawl.log and {dropped.pages} pages.jsonl lines "
            "that are not what a worker writes"
        )
    twice = _twice(index)
    stats, per_worker = _tally(workers)
    finished = datetime.now(UTC).isoformat()
    record = {
        "name": name,
        "finished": finished,
        "shared": True,
        "workers": per_worker,
        "stats": dict(sorted(stats.items())),
        "pages": pages,
        "warc_files": [f.name for f in files],
        "torn_files_repaired": [c.path.name for c in torn],
        "urls_captured_twice": twice,
        "lines_left_out": {"crawl.log": dropped.log, "pages.jsonl": dropped.pages},
    }
    _write_atomic(out / "crawl.json", iter([json.dumps(record, indent=2) + "\n"]))
    shared.call("clearing the crawl's keys", shared.finish, finished)
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
