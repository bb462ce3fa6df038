"""Verify benchmark (issue 6): `sunset verify` against `zcat FILES | sha1sum`, same files.

The WARC files are a real crawl: `sunset crawl --profile demo` of the
N-page replica (output/bench/replica-N, shared with the other benchmarks,
served by nginx) into output/bench/verify-N/crawl, reused once finished. To
reach a few hundred MB without crawling for many minutes, the benchmarked
folder output/bench/verify-N/bench holds --copies copies of its WARC files
(hard links under other names: the same captured records) with an index
covering all of them, and `sunset package` is run on it once, so it has its
fixity.sha256 and a WACZ (bench.wacz beside it).

Then, in one run, with the page cache warm, --repeat times each in
alternating order:

- `sunset verify BENCH` (the crawl folder: every record's digests, every
  index line, every file's SHA-256);
- `sunset verify bench.wacz` (the same, read in place from the WACZ);
- `sunset verify` on the folder without its fixity.sha256 (hard links):
  nothing then vouches for the index, so every line's SURT key is
  recomputed too, the slowest case;
- `sh -c 'zcat FILES | sha1sum'`, the floor: inflate and hash once.

Throughput is the compressed WARC bytes over wall time (and, alongside, the
inflated bytes over wall time); the ratio is sunset's over zcat|sha1sum's,
with a target of at least 0.5. Peak RSS is the sum of the peaks of the whole
process tree (sunset's worker processes included, each counted with the
interpreter it shares with the parent). Medians are reported.

    .venv/bin/python bench/verify.py
    .venv/bin/python bench/verify.py --pages 500 --copies 2 --repeat 1   # quick

Results: a table on stdout and output/bench/verify.json. Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

from _common import (
    ROOT,
    SEED,
    THEME,
    ensure_crawl,
    err,
    first_line,
    measure,
    out,
    read_json,
)
from rich.markup import escape
from rich.table import Table

from sunset.replica_commands import ensure_replica

PAGES = 5000
COPIES = 5
REPEAT = 3
DEFAULT_TIMEOUT = 3600.0
TARGET_RATIO = 0.5
FOLDER = "sunset verify (crawl folder)"
WACZ = "sunset verify (WACZ)"
# Without fixity.sha256 nothing vouches for the index, so verify also
# recomputes every line's SURT key (surt costs more than the rest of a line).
BARE = "sunset verify (folder, no fixity.sha256)"
FLOOR = "zcat | sha1sum"
TOOLS = (FOLDER, WACZ, BARE, FLOOR)


@dataclass
class Run:
    tool: str
    repeat: int
    ok: bool = False
    error: str | None = None
    exit_code: int | None = None
    wall_s: float = 0.0
    mb_per_s: float = 0.0
    inflated_mb_per_s: float = 0.0
    peak_rss_mb: float = 0.0


# --------------------------------------------------------------------------
# The files


def build_bench(crawl: Path, bench: Path, copies: int) -> list[Path]:
    """``copies`` copies of the crawl's WARC files as one crawl folder, indexed and packaged."""
    originals = sorted((crawl / "warc").glob("*.warc.gz"))
    stamp = bench / ".made-from.json"
    made_from = {
        "crawl": str(crawl),
        "copies": copies,
        "warcs": [[p.name, p.stat().st_size, p.stat().st_mtime] for p in originals],
    }
    wacz = bench.parent / "bench.wacz"
    files = [bench / "warc" / f"c{k}-{p.name}" for k in range(copies) for p in originals]
    if read_json(stamp) == made_from and wacz.is_file() and all(f.is_file() for f in files):
        err.print(f"reusing {bench} and {wacz}")
        return sorted(files)
    shutil.rmtree(bench, ignore_errors=True)
    (bench / "warc").mkdir(parents=True)
    (bench / "indexes").mkdir()
    lines: list[str] = []
    index = (crawl / "indexes" / "index.cdxj").read_text(encoding="utf-8").splitlines()
    for k in range(copies):
        for p in originals:
            dest = bench / "warc" / f"c{k}-{p.name}"
            try:
                os.link(p, dest)
            except OSError:
                shutil.copyfile(p, dest)
        for line in index:
            key, ts, body = line.split(" ", 2)
            entry = json.loads(body)
            entry["filename"] = f"c{k}-{entry['filename']}"
            lines.append(f"{key} {ts} {json.dumps(entry)}")
    lines.sort()
    (bench / "indexes" / "index.cdxj").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copyfile(crawl / "pages.jsonl", bench / "pages.jsonl")
    info = read_json(crawl / "crawl.json")
    info["name"] = "bench"
    info["warc_files"] = sorted(f.name for f in files)
    (bench / "crawl.json").write_text(json.dumps(info, indent=2) + "\n")
    err.print(f"packaging {bench} into {wacz} …")
    result = subprocess.run(
        [sys.executable, "-m", "sunset", "package", str(bench), "--out", str(wacz)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"bench/verify.py: sunset package failed: {result.stderr.strip()}")
    stamp.write_text(json.dumps(made_from) + "\n")
    return sorted(files)


def inflate_stats(files: list[Path]) -> tuple[int, int]:
    """(inflated bytes, gzip members) of the files: one member per record in a sunset crawl."""
    inflated = members = 0
    for path in files:
        data = path.read_bytes()
        mv = memoryview(data)
        pos = 0
        while pos < len(data):
            d = zlib.decompressobj(31)
            members += 1
            while not d.eof and pos < len(data):
                piece = mv[pos : pos + (1 << 16)]
                inflated += len(d.decompress(piece))
                pos += len(piece) - len(d.unused_data)
    return inflated, members


def warm(files: list[Path], wacz: Path) -> None:
    # Both tools then read from memory, not from the disk.
    for path in [*files, wacz]:
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


# --------------------------------------------------------------------------
# Runs


def bare_copy(bench: Path) -> Path:
    """The bench folder without its fixity.sha256 (hard links: the same WARC files)."""
    bare = bench.with_name("bench-no-fixity")
    shutil.rmtree(bare, ignore_errors=True)
    for path in bench.rglob("*"):
        if path.is_file() and path.name != "fixity.sha256" and not path.name.startswith("."):
            dest = bare / path.relative_to(bench)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, dest)
            except OSError:
                shutil.copyfile(path, dest)
    return bare


def command(tool: str, bench: Path, wacz: Path, files: list[Path]) -> list[str]:
    if tool == FOLDER:
        return [sys.executable, "-m", "sunset", "verify", str(bench)]
    if tool == WACZ:
        return [sys.executable, "-m", "sunset", "verify", str(wacz)]
    if tool == BARE:
        return [sys.executable, "-m", "sunset", "verify", str(bench.with_name("bench-no-fixity"))]
    return ["sh", "-c", f"zcat -- {shlex.join(str(f) for f in files)} | sha1sum"]


def run_one(run: Run, cmd: list[str], logs: Path, size: int, inflated: int, timeout: float) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / f"{run.repeat}.stdout", logs / f"{run.repeat}.stderr"
    m = measure(
        cmd,
        label=f"{run.tool} #{run.repeat}",
        status=lambda: "",
        cwd=ROOT,
        env=dict(os.environ),
        stdout=stdout,
        stderr=stderr,
        timeout=timeout,
    )
    run.wall_s, run.exit_code, run.peak_rss_mb = m.wall_s, m.exit_code, m.peak_rss_mb
    if m.timed_out:
        run.error = f"stopped after --timeout {timeout:g} s"
    elif m.exit_code != 0:
        why = first_line(stderr) or first_line(stdout)
        run.error = f"exit status {m.exit_code}: {why}"
    elif run.tool != FLOOR and "intact" not in stdout.read_text(errors="replace"):
        run.error = "sunset verify did not report the archive intact"
    run.ok = run.error is None
    if run.wall_s:
        run.mb_per_s = round(size / 1e6 / run.wall_s, 1)
        run.inflated_mb_per_s = round(inflated / 1e6 / run.wall_s, 1)


def median_of(runs: list[Run]) -> dict[str, float] | None:
    good = [r for r in runs if r.ok]
    if not good:
        return None
    keys = ("wall_s", "mb_per_s", "inflated_mb_per_s", "peak_rss_mb")
    return {k: round(statistics.median(getattr(r, k) for r in good), 2) for k in keys}


def print_report(report: dict) -> None:
    table = Table(
        title=(
            f"Verify benchmark: {report['warc_files']} WARC files, {report['warc_mb']:,.0f} MB"
            f" gzip ({report['inflated_mb']:,.0f} MB inflated, {report['records']:,} records),"
            f" medians of {report['repeat']} run(s)"
        ),
        title_justify="left",
    )
    for col in ("tool", "result", "wall\ns", "MB/s\n(gzip)", "MB/s\n(inflated)", "peak\nRSS MB"):
        table.add_column(col, justify="left" if col in ("tool", "result") else "right")
    for tool, runs in report["runs"].items():
        med = report["median"].get(tool)
        last = runs[-1]
        result = "ok" if last["ok"] else escape(last["error"] or "failed")
        cells = (
            [
                f"{med['wall_s']:.2f}",
                f"{med['mb_per_s']:.1f}",
                f"{med['inflated_mb_per_s']:.1f}",
                f"{med['peak_rss_mb']:.0f}",
            ]
            if med
            else ["-"] * 4
        )
        table.add_row(tool, result, *cells)
    out.print(table)
    for tool, ratio in report["ratios"].items():
        mark = "not measured" if ratio is None else ("met" if ratio >= TARGET_RATIO else "missed")
        shown = "-" if ratio is None else f"{ratio:.2f}"
        out.print(f"{tool} ÷ zcat|sha1sum throughput = {shown} (target ≥ {TARGET_RATIO}): {mark}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark sunset verify against zcat | sha1sum.")
    ap.add_argument("--pages", type=int, default=PAGES, help=f"replica size (default {PAGES:,})")
    ap.add_argument(
        "--copies", type=int, default=COPIES, help=f"copies of the WARC files (default {COPIES})"
    )
    ap.add_argument("--repeat", type=int, default=REPEAT, help=f"runs per tool (default {REPEAT})")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per run")
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "bench", help="bench folder")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.copies < 1:
        ap.error("--repeat and --copies must be at least 1")
    if not shutil.which("zcat") or not shutil.which("sha1sum"):
        ap.error("needs zcat and sha1sum on PATH")

    started = time.time()
    base: Path = args.out.resolve()
    site = base / f"replica-{args.pages}"
    work = base / f"verify-{args.pages}"
    manifest = ensure_replica(site, args.pages, SEED, THEME)
    crawl_info = ensure_crawl(site, manifest, work / "crawl", args.timeout, "bench/verify.py")
    bench = work / "bench"
    files = build_bench(work / "crawl", bench, args.copies)
    bare_copy(bench)
    wacz = work / "bench.wacz"
    size = sum(f.stat().st_size for f in files)
    # The copies are the same bytes: measure one set.
    originals = sorted((work / "crawl" / "warc").glob("*.warc.gz"))
    inflated, records = (args.copies * n for n in inflate_stats(originals))
    warm(files, wacz)

    runs: dict[str, list[Run]] = {t: [] for t in TOOLS}
    for k in range(args.repeat):
        # Alternate the order so no tool always runs on a warmer cache.
        for tool in TOOLS if k % 2 == 0 else list(reversed(TOOLS)):
            run = Run(tool, k + 1)
            slug = tool.split(" (")[-1].rstrip(")").replace(" ", "").replace("|", "-")
            run_one(
                run,
                command(tool, bench, wacz, files),
                work / "logs" / slug,
                size,
                inflated,
                args.timeout,
            )
            if run.error:
                err.print(f"  [red]{escape(run.error)}[/]")
            runs[tool].append(run)

    medians = {t: median_of(rs) for t, rs in runs.items()}
    floor = medians.get(FLOOR)
    ratios = {
        t: (round(m["mb_per_s"] / floor["mb_per_s"], 2) if m and floor else None)
        for t, m in medians.items()
        if t != FLOOR
    }
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "pages": args.pages,
        "copies": args.copies,
        "repeat": args.repeat,
        "crawl": str(work / "crawl"),
        "crawl_info": crawl_info,
        "bench": str(bench),
        "wacz": str(wacz),
        "warc_files": len(files),
        "warc_mb": round(size / 1e6, 1),
        "inflated_mb": round(inflated / 1e6, 1),
        "records": records,
        "cpus": len(os.sched_getaffinity(0)),
        "runs": {t: [asdict(r) for r in rs] for t, rs in runs.items()},
        "median": medians,
        "ratios": ratios,
        "target_ratio": TARGET_RATIO,
    }
    (base / "verify.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    err.print(f"written {base / 'verify.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
