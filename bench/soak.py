"""Soak: `sunset crawl` with the default profile against a site that never ends (issue 14).

Serves tests/faultserver.py on loopback and crawls its /soak/ hub, which links
to every endless URL space the fault server has: a chain of links, a calendar
in the path, session ids in the path, byte-identical folders, a pager with no
last page, a path that grows a segment per hop, bad links, an overlong URL and
a redirect chain. The profile names only the site, so every crawl setting and
trap guard is the default. With `--site wide` the hub also links to an endless
tree of ordinary pages (ten children each, no trap to catch): then only the
time limit stops the crawl, which shows that memory and the log stay bounded
per page. `--delay 0` lifts the default politeness for more pages per minute.

    .venv/bin/python bench/soak.py                      # 10 minutes, traps only
    .venv/bin/python bench/soak.py --site wide --delay 0 --minutes 10

Samples the crawler's resident memory (with its children) and crawl.log every
few seconds; prints a table and writes output/bench/soak.json. Not part of the
test suite: it runs for minutes by design.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from _common import ROOT, err, out, signal_group, tree_rss_kb
from rich.table import Table

sys.path.insert(0, str(ROOT / "tests"))
from faultserver import serve_faults

SAMPLE_S = 5.0


def read_log(path: Path) -> tuple[int, int, Counter[str], int]:
    """(lines, fetch lines, refusals by note, longest discovery-path field) of a crawl.log."""
    lines = fetches = longest = 0
    refused: Counter[str] = Counter()
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            bits = line.split()
            if len(bits) != 10:
                continue
            lines += 1
            longest = max(longest, len(bits[4]))
            if bits[1].lstrip("-").isdigit() and int(bits[1]) < 0:
                refused[bits[9]] += 1
            else:
                fetches += 1
    return lines, fetches, refused, longest


def soak(args: argparse.Namespace) -> dict[str, object]:
    work = ROOT / "output" / "bench" / "soak"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    crawl = work / "crawl"
    hub = "soak/wide" if args.site == "wide" else "soak/"
    samples: list[tuple[float, float, int, int]] = []  # (s, RSS MB, log bytes, log lines)
    with serve_faults() as server:
        profile = work / "soak.toml"
        settings = "" if args.delay is None else f"[crawl]\ndelay = {args.delay}\n"
        profile.write_text(
            f'[site]\nname = "soak"\nstart_urls = ["{server.url}{hub}"]\n'
            f'allowed_hosts = ["127.0.0.1"]\n{settings}',
            encoding="utf-8",
        )
        cmd = [sys.executable, "-m", "sunset", "crawl", "--profile", str(profile)]
        cmd += ["--out", str(crawl)]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        limit = args.minutes * 60
        with open(work / "stdout.txt", "wb") as so, open(work / "stderr.txt", "wb") as se:
            start = time.monotonic()
            proc = subprocess.Popen(
                cmd, cwd=work, env=env, stdout=so, stderr=se, start_new_session=True
            )
            stopped_by_limit = False
            try:
                while proc.poll() is None:
                    elapsed = time.monotonic() - start
                    if elapsed > limit and not stopped_by_limit:
                        stopped_by_limit = True
                        signal_group(proc.pid, signal.SIGINT)  # the crawl closes its files
                    log = crawl / "crawl.log"
                    size = log.stat().st_size if log.exists() else 0
                    if not samples or elapsed - samples[-1][0] >= SAMPLE_S:
                        lines = 0
                        if log.exists():
                            with open(log, "rb") as fh:
                                lines = sum(
                                    chunk.count(b"\n")
                                    for chunk in iter(lambda: fh.read(1 << 20), b"")
                                )
                        rss = tree_rss_kb(proc.pid) / 1024
                        samples.append((round(elapsed, 1), round(rss, 1), size, lines))
                        err.print(
                            f"  {elapsed:6.0f} s  RSS {rss:6.1f} MB  crawl.log "
                            f"{size / 1e6:7.2f} MB  {lines:,} lines",
                            highlight=False,
                        )
                    time.sleep(0.5)
                    if elapsed > limit + 60:
                        signal_group(proc.pid, signal.SIGKILL)
            finally:
                if proc.poll() is None:
                    signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            wall = time.monotonic() - start
    summary = (
        json.loads((crawl / "crawl.json").read_text()) if (crawl / "crawl.json").exists() else {}
    )
    lines, fetches, refused, longest = read_log(crawl / "crawl.log")
    log_bytes = (crawl / "crawl.log").stat().st_size
    rss = [s[1] for s in samples]
    quarter = max(1, len(rss) // 4)
    return {
        "site": args.site,
        "delay": "profile default" if args.delay is None else args.delay,
        "minutes_limit": args.minutes,
        "wall_s": round(wall, 1),
        "exit_code": proc.returncode,
        "stopped_because": (
            "time limit (SIGINT)" if stopped_by_limit else f"crawl ended: {summary.get('reason')}"
        ),
        "pages": summary.get("stats", {}).get("pages"),
        "responses": summary.get("stats", {}).get("responses"),
        "log_lines": lines,
        "fetch_lines": fetches,
        "refused": dict(refused.most_common()),
        "crawl_log_bytes": log_bytes,
        "bytes_per_log_line": round(log_bytes / lines, 1) if lines else 0,
        "longest_hops_field": longest,
        "peak_rss_mb": max(rss, default=0),
        "rss_first_quarter_mb": max(rss[:quarter], default=0),
        "rss_last_quarter_mb": max(rss[-quarter:], default=0),
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--site", choices=("traps", "wide"), default="traps")
    parser.add_argument("--delay", type=float, default=None, help="override the default delay")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be above 0")
    result = soak(args)
    table = Table(title=f"soak: default profile, {args.site} site, limit {args.minutes:g} min")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key in (
        "stopped_because",
        "exit_code",
        "wall_s",
        "pages",
        "responses",
        "log_lines",
        "crawl_log_bytes",
        "bytes_per_log_line",
        "longest_hops_field",
        "peak_rss_mb",
        "rss_first_quarter_mb",
        "rss_last_quarter_mb",
    ):
        table.add_row(
            key.replace("_", " "),
            f"{result[key]:,}" if isinstance(result[key], int) else str(result[key]),
        )
    for note, count in list(result["refused"].items())[:8]:  # type: ignore[union-attr]
        table.add_row(f"log lines with a negative code: {note}", f"{count:,}")
    out.print(table)
    dest = ROOT / "output" / "bench" / "soak.json"
    dest.write_text(json.dumps(result, indent=2) + "\n")
    err.print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
