"""Transform benchmark (issue 4): sunset transform against trafilatura on one crawl.

The replica (cached under output/bench/replica-<pages>, shared with
bench/crawl.py) is served by nginx and crawled once with `sunset crawl
--profile demo` into output/bench/transform-<pages>/crawl; a finished crawl of
the same replica is reused. Then, in the same run and on the same WARC files:

- `sunset transform CRAWL --out DIR`, as a subprocess;
- trafilatura, also as a subprocess (this script with --trafilatura-worker):
  it streams the WARC files with warcio and calls `trafilatura.extract(html)`
  with default settings on every status-200 HTML response record.

For each: wall time, CPU seconds and peak RSS of the process tree, the 1-minute
load average as the run started (the machine may be shared), pages/s (the
number of status-200 HTML response records in the WARCs, the same for both,
over wall time), and the scores of transform.evaluate against the replica's
ground truth.

    .venv/bin/python bench/transform.py --quick
    .venv/bin/python bench/transform.py --pages 5000 --repeat 3

Results: a table on stdout and output/bench/transform.json. Not part of the
test suite.

trafilatura has no notion of a site's pages, so it is scored on the capture a
reader would land on: each content page's primary URL, or for a multi-part
article its "All Pages" (?showall=1) capture when there is one. It makes no
listing/content decision, so that column is not applicable to it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from _common import (
    PROFILE,
    ROOT,
    SEED,
    THEME,
    LineCounter,
    Measured,
    ensure_crawl,
    err,
    first_line,
    first_line_of,
    measure,
    out,
    target_uri,
    warc_files,
)
from rich.markup import escape
from rich.table import Table
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from sunset.replica_commands import ensure_replica
from transform.evaluate import Report, evaluate, iter_jsonl

PAGES = 5000
QUICK_PAGES = 500
DEFAULT_TIMEOUT = 3600.0
TARGET_F1 = 0.98
TARGET_SPEEDUP = 5.0
TOOLS = ("sunset", "trafilatura")
# What a cached crawl must have been made from to be reused.


@dataclass
class Run:
    tool: str
    repeat: int
    ok: bool = False
    error: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    wall_s: float = 0.0
    html_records: int = 0
    pages_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    # User + system CPU seconds of the tool's whole process tree, and the
    # machine's 1-minute load average as the run started: on a shared machine
    # these say how far the wall time is the tool's own.
    cpu_s: float = 0.0
    # Of cpu_s, the kernel's: for sunset mostly creating its three files a page,
    # which costs from 30 µs to 1 ms a file on a busy shared disk.
    sys_s: float = 0.0
    load_before: float = 0.0
    # sunset: captures skipped (transform.log); trafilatura: records it returned nothing for.
    skipped: int = 0


# --------------------------------------------------------------------------
# WARC records


def is_html_200(rec: ArcWarcRecord) -> bool:
    """A response record of status 200 with an HTML body: what both tools are timed on."""
    if rec.rec_type != "response" or rec.http_headers is None:
        return False
    if rec.http_headers.get_statuscode() != "200":
        return False
    ctype = rec.http_headers.get_header("Content-Type") or ""
    return ctype.split(";")[0].strip().lower() == "text/html"


def count_html_records(warc_dir: Path) -> int:
    n = 0
    for path in warc_files(warc_dir):
        with open(path, "rb") as fh:
            n += sum(1 for rec in ArchiveIterator(fh) if is_html_200(rec))
    return n


def decode(body: bytes, content_type: str) -> str:
    # The replica declares every charset truthfully (one page is windows-1252),
    # so the header is the right answer and trafilatura is not handicapped by
    # a guess; a missing or unknown one falls back to UTF-8.
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
    try:
        return body.decode(m.group(1) if m else "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def trafilatura_worker(warc_dir: Path, dest: Path) -> int:
    """Extract every HTML 200 response with trafilatura; JSON lines {url, text}.

    A revisit record becomes {url, same_as}: its payload is that of an earlier
    response, so the page it stands for has the same extraction.
    """
    # Imported here, so its import time and memory count in the measured run.
    import trafilatura

    with open(dest, "w", encoding="utf-8", buffering=1) as fh:
        for path in warc_files(warc_dir):
            with open(path, "rb") as wf:
                for rec in ArchiveIterator(wf):
                    uri = target_uri(rec.rec_headers.get_header("WARC-Target-URI"))
                    if rec.rec_type == "revisit":
                        refers = rec.rec_headers.get_header("WARC-Refers-To-Target-URI")
                        if refers:
                            fh.write(json.dumps({"url": uri, "same_as": target_uri(refers)}) + "\n")
                        continue
                    if not is_html_200(rec):
                        continue
                    # content_stream() undoes chunking and Content-Encoding (gzip).
                    body = rec.content_stream().read()
                    ctype = rec.http_headers.get_header("Content-Type") or ""
                    text = trafilatura.extract(decode(body, ctype))
                    fh.write(json.dumps({"url": uri, "text": text}) + "\n")
    return 0


def trafilatura_pages(extracted: Path, truth: Path) -> list[dict]:
    """Pages in the shape transform.evaluate reads, one per content page trafilatura saw."""
    texts: dict[str, str] = {}
    same_as: dict[str, str] = {}
    for row in iter_jsonl(extracted):
        if "same_as" in row:
            same_as[row["url"]] = row["same_as"]
        else:
            texts[row["url"]] = row["text"] or ""

    def text_of(url: str) -> str | None:
        return texts.get(url, texts.get(same_as.get(url, "")))

    pages = []
    for t in iter_jsonl(truth):
        if not t.get("content_page"):
            continue
        url = t["url"]
        if t.get("kind") == "multipart":
            showall = [
                u
                for u in t.get("urls", ())
                if parse_qs(urlsplit(u).query).get("showall") == ["1"] and text_of(u) is not None
            ]
            url = showall[0] if showall else url
        text = text_of(url)
        if text is not None:
            pages.append({"url": url, "legacy_urls": [t["url"]], "kind": "content", "text": text})
    return pages


# --------------------------------------------------------------------------
# The crawl


# --------------------------------------------------------------------------
# The two tools


def run_sunset(crawl: Path, dest: Path, run: Run, timeout: float) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    logs = dest.parent / f"{dest.name}.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    cmd = [sys.executable, "-m", "sunset", "transform", str(crawl), "--out", str(dest)]
    run.load_before = round(os.getloadavg()[0], 2)
    # Progress from the tail of pages.jsonl, not from listing a folder that
    # grows to 15k files while sunset writes into it.
    written = LineCounter(dest / "pages.jsonl")
    cpu = _children_cpu()
    m = measure(
        cmd,
        label=f"sunset transform #{run.repeat}",
        status=lambda: f"{written.poll():>7,} pages written",
        cwd=ROOT,
        env=dict(os.environ),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        timeout=timeout,
    )
    _fill(run, m)
    after = _children_cpu()
    run.cpu_s, run.sys_s = round(after[0] - cpu[0], 2), round(after[1] - cpu[1], 2)
    if run.timed_out:
        run.error = f"stopped after --timeout {timeout:g} s"
    # 1 means some captures were skipped (each in transform.log); the pages are there.
    elif run.exit_code not in (0, 1):
        why = first_line(logs / "stderr") or first_line(logs / "stdout")
        run.error = f"sunset transform exited {run.exit_code}: {why}"
    elif not (dest / "pages.jsonl").is_file():
        run.error = f"sunset transform exited {run.exit_code} but wrote no pages.jsonl"
    elif (dest / "transform.log").is_file():
        run.skipped = sum(1 for r in iter_jsonl(dest / "transform.log") if r.get("level") == "skip")
    run.ok = run.error is None


def run_trafilatura(crawl: Path, dest: Path, run: Run, timeout: float) -> None:
    dest.unlink(missing_ok=True)
    logs = dest.parent / f"{dest.stem}.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--trafilatura-worker",
        str(crawl / "warc"),
        str(dest),
    ]
    counter = LineCounter(dest, b'"text"')
    run.load_before = round(os.getloadavg()[0], 2)
    cpu = _children_cpu()
    m = measure(
        cmd,
        label=f"trafilatura #{run.repeat}",
        status=lambda: f"{counter.poll():>7,} pages extracted",
        cwd=ROOT,
        env=dict(os.environ),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        timeout=timeout,
    )
    _fill(run, m)
    after = _children_cpu()
    run.cpu_s, run.sys_s = round(after[0] - cpu[0], 2), round(after[1] - cpu[1], 2)
    if run.timed_out:
        run.error = f"stopped after --timeout {timeout:g} s"
    elif run.exit_code != 0:
        # A Python traceback says what went wrong on its last line.
        lines = [ln for ln in (logs / "stderr").read_text(errors="replace").splitlines() if ln]
        run.error = f"trafilatura worker exited {run.exit_code}: {lines[-1] if lines else ''}"
    else:
        rows = [r for r in iter_jsonl(dest) if "text" in r]
        run.skipped = sum(1 for r in rows if not r["text"])
        if len(rows) != run.html_records:
            run.error = f"extracted {len(rows):,} records of {run.html_records:,}"
    run.ok = run.error is None


def _children_cpu() -> tuple[float, float]:
    """(user + system, system) CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def _fill(run: Run, m: Measured) -> None:
    run.wall_s, run.exit_code, run.peak_rss_mb = m.wall_s, m.exit_code, m.peak_rss_mb
    run.timed_out = m.timed_out
    run.pages_per_s = round(run.html_records / run.wall_s, 2) if run.wall_s else 0.0


# --------------------------------------------------------------------------
# Report


def median_of(runs: list[Run]) -> dict[str, float] | None:
    good = [r for r in runs if r.ok]
    if not good:
        return None
    keys = ("wall_s", "pages_per_s", "peak_rss_mb", "cpu_s", "sys_s", "load_before")
    return {k: round(statistics.median(getattr(r, k) for r in good), 3) for k in keys}


def targets(
    medians: dict[str, dict[str, float] | None], scores: dict[str, dict[str, object] | None]
) -> dict[str, object]:
    s, t = scores.get("sunset"), scores.get("trafilatura")
    ms, mt = medians.get("sunset"), medians.get("trafilatura")
    result: dict[str, object] = {"speedup": None, "checks": {}}
    checks: dict[str, bool | None] = {}
    if ms and mt and mt["pages_per_s"]:
        result["speedup"] = round(ms["pages_per_s"] / mt["pages_per_s"], 2)
    checks[f"pages/s ≥ {TARGET_SPEEDUP:g}× trafilatura"] = (
        None if result["speedup"] is None else result["speedup"] >= TARGET_SPEEDUP  # type: ignore[operator]
    )
    for avg in ("micro", "macro"):
        key = f"{avg}_f1"
        checks[f"{avg} F1 ≥ {TARGET_F1}"] = None if not s else s[key] >= TARGET_F1  # type: ignore[operator]
        checks[f"{avg} F1 above trafilatura's"] = (
            None if not (s and t) else s[key] > t[key]  # type: ignore[operator]
        )
    result["checks"] = checks
    return result


def _f(x: object, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def print_report(report: dict) -> None:
    scored = next((sc for sc in report["scores"].values() if sc), None)
    of = (
        f"; of {scored['content_pages']:,} content pages, {scored['paragraphs_checked']:,}"
        f" paragraphs, {scored['listing_pages']:,} listing pages"
        if scored
        else ""
    )
    table = Table(
        title=f"Transform benchmark, {report['pages']:,}-page replica: "
        f"{report['html_records']:,} HTML captures, medians of {report['repeat']} run(s)",
        caption=f"F1: token level against the ground truth{of}",
        title_justify="left",
        caption_justify="left",
    )
    # Headers broken by hand: at 132 columns, rich would otherwise cut them short.
    cols = (
        "tool",
        "result",
        "wall\ns",
        "cpu\n(sys)\ns",
        "pages\n/s",
        "peak\nRSS MB",
        "micro\nF1",
        "macro\nF1",
        "boiler-\nplate\nremoved",
        "paras\nlost",
        "pages\nmissing",
        "listings\nright",
    )
    for col in cols:
        if col in ("tool", "result"):
            # An error message has to stay readable in the result column.
            table.add_column(col, no_wrap=col == "tool", min_width=24 if col == "result" else None)
        else:
            table.add_column(col, justify="right")
    for tool, runs in report["runs"].items():
        med = report["median"].get(tool)
        sc = report["scores"].get(tool)
        last = runs[-1]
        result = "ok" if last["ok"] else escape(last["error"] or "failed")
        if last["ok"] and last["skipped"]:
            what = "skipped" if tool == "sunset" else "empty"
            result += f", {last['skipped']:,} {what}"
        cells = (
            [
                f"{med['wall_s']:.1f}",
                f"{med['cpu_s']:.1f}\n({med['sys_s']:.1f})",
                f"{med['pages_per_s']:.1f}",
                f"{med['peak_rss_mb']:.0f}",
            ]
            if med
            else ["-"] * 4
        )
        if sc:
            cells += [
                _f(sc["micro_f1"], ".4f"),
                _f(sc["macro_f1"], ".4f"),
                _f(sc["boilerplate_removed_share"], ".4f"),
                f"{sc['paragraphs_lost']:,}",
                f"{sc['missing']:,}",
                "n/a" if sc["listing_accuracy"] is None else f"{sc['listing_accuracy']:.4f}",
            ]
        else:
            cells += ["-"] * 6
        table.add_row(tool, result, *cells)
    out.print(table)
    for tool, runs in report["runs"].items():
        for r in runs:
            if r["error"]:
                out.print(f"{tool} run {r['repeat']}: {escape(r['error'])}")
    loads = ", ".join(
        f"{tool} {', '.join(format(r['load_before'], '.1f') for r in runs)}"
        for tool, runs in report["runs"].items()
    )
    out.print(f"1-minute load average as each run started (2 cores shared): {loads}")
    tg = report["targets"]
    if tg["speedup"] is not None:
        out.print(f"sunset pages/s ÷ trafilatura pages/s = {tg['speedup']}")
    for name, ok in tg["checks"].items():
        mark = "not measured" if ok is None else ("met" if ok else "[red]missed[/]")
        out.print(f"target {escape(name)}: {mark}")
    for tool, sc in report["scores"].items():
        if sc and sc["boilerplate_leftovers"]:
            left = ", ".join(f"{k} {v:,}" for k, v in sc["boilerplate_leftovers"].items())
            out.print(f"{tool}: boilerplate left in: {left}")


def scores_of(rep: Report, *, listings: bool) -> dict[str, object]:
    data = rep.summary()
    if not listings:
        data["listing_correct"] = data["listing_accuracy"] = None
    data["worst"] = [
        {"url": p.url, "f1": p.f1, "found": p.found} for p in rep.worst(10) if p.f1 < 1.0
    ]
    data["lost_sample"] = rep.lost[:20]
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark sunset transform against trafilatura on a crawl of the replica."
    )
    ap.add_argument("--pages", type=int, default=PAGES, help=f"replica size (default {PAGES:,})")
    ap.add_argument("--quick", action="store_true", help=f"a {QUICK_PAGES:,}-page replica")
    ap.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per tool; medians are reported")
    ap.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per run before it is stopped (default {DEFAULT_TIMEOUT:g})",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "output" / "bench",
        help="folder for replicas, crawls and transform.json (default output/bench)",
    )
    ap.add_argument(
        "--trafilatura-worker",
        nargs=2,
        type=Path,
        metavar=("WARC_DIR", "OUT_JSONL"),
        help=argparse.SUPPRESS,  # the measured subprocess, started by this script
    )
    args = ap.parse_args(argv)
    if args.trafilatura_worker:
        return trafilatura_worker(*args.trafilatura_worker)
    if args.quick:
        args.pages = QUICK_PAGES
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.pages < 50:
        ap.error("--pages must be at least 50")

    started = time.time()
    base: Path = args.out.resolve()
    site = base / f"replica-{args.pages}"
    work = base / f"transform-{args.pages}"
    manifest = ensure_replica(site, args.pages, SEED, THEME)
    truth = site / "ground-truth" / "pages.jsonl"
    crawl = work / "crawl"
    crawl_info = ensure_crawl(site, manifest, crawl, args.timeout, "bench/transform.py")
    html_records = count_html_records(crawl / "warc")
    err.print(f"{html_records:,} status-200 HTML response records in {crawl / 'warc'}")

    # Each sunset run writes a folder of its own, and earlier ones are deleted
    # only after the last measurement: ext4 skips inodes freed in the last few
    # minutes when it allocates, so 15k files created next to 15k just deleted
    # cost 10+ s of kernel time (seen as 12 s of sys time instead of 1.7 s).
    trash = work / ".trash"
    for old in work.glob("sunset-content*"):
        if old.is_dir() and not old.name.endswith(".logs"):
            trash.mkdir(exist_ok=True)
            old.rename(trash / f"{old.name}-{time.time_ns()}")
    content = work / "sunset-content"
    runs: dict[str, list[Run]] = {t: [] for t in args.tools}
    for k in range(args.repeat):
        # Alternate the order so neither tool always runs on a warmer page cache.
        for tool in args.tools if k % 2 == 0 else list(reversed(args.tools)):
            run = Run(tool, k + 1, html_records=html_records)
            if tool == "sunset":
                content = work / f"sunset-content-{k + 1}"
                run_sunset(crawl, content, run, args.timeout)
            else:
                run_trafilatura(crawl, work / "trafilatura.jsonl", run, args.timeout)
            if run.error:
                err.print(f"  [red]{escape(run.error)}[/]")
            runs[tool].append(run)

    # Extraction is deterministic: the last run's output stands for all of them.
    scores: dict[str, dict[str, object] | None] = {}
    for tool, rs in runs.items():
        if not rs[-1].ok:
            scores[tool] = None
        elif tool == "sunset":
            scores[tool] = scores_of(evaluate(truth, content / "pages.jsonl"), listings=True)
        else:
            pages = trafilatura_pages(work / "trafilatura.jsonl", truth)
            scores[tool] = scores_of(evaluate(truth, pages), listings=False)
    medians = {t: median_of(rs) for t, rs in runs.items()}
    shutil.rmtree(trash, ignore_errors=True)
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "pages": args.pages,
        "replica": str(site),
        "crawl": str(crawl),
        "crawl_info": crawl_info,
        "profile": PROFILE,
        "seed": SEED,
        "repeat": args.repeat,
        "html_records": html_records,
        "trafilatura": _trafilatura_version(),
        "runs": {t: [asdict(r) for r in rs] for t, rs in runs.items()},
        "median": medians,
        "scores": scores,
        "targets": targets(medians, scores),
    }
    (base / "transform.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    err.print(f"written {base / 'transform.json'}")
    return 0


def _trafilatura_version() -> str:
    out_ = first_line_of(
        [sys.executable, "-c", "import trafilatura; print(trafilatura.__version__)"]
    )
    return out_ or "not importable"


if __name__ == "__main__":
    sys.exit(main())
