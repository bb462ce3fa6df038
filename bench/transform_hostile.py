"""Memory and time of `sunset transform` on hostile pages (issue 14).

Builds small crawl folders by hand (a WARC and its CDXJ index, as `sunset
crawl` writes them), one per case, each with a few ordinary pages beside the
hostile one, and runs `sunset transform --workers 1` on each as a subprocess,
measuring its wall time and peak RSS (the process extracts the pages itself):

- big:  one 46 MB HTML page (teasers: headings, links, paragraphs);
- bomb: a 2.6 MB gzip body (Content-Encoding: gzip) that inflates to 2.6 GB,
        an HTML head followed by zero bytes.

    .venv/bin/python bench/transform_hostile.py
    .venv/bin/python bench/transform_hostile.py --cases bomb --max-page-size 16MB

Results: a table on stdout and output/bench/transform_hostile.json. Not part
of the test suite: the cases are big by design.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from _common import ROOT, err, out
from cdxj_indexer.main import CDXJIndexer
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

HOST = "http://hostile.example"
BIG_BYTES = 46 * 1000**2
BOMB_INFLATED = 2600 * 1000**2
BOMB_MEMBER = 100 * 1000**2

# Runs `sunset` in this process and prints its peak RSS (KiB) on the last line
# of stderr, however it ends.
LAUNCHER = """
import resource, runpy, sys
sys.argv = ["sunset", *sys.argv[1:]]
try:
    runpy.run_module("sunset", run_name="__main__")
finally:
    print(f"peak-rss-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def big_page() -> bytes:
    unit = (
        '<div class="teaser"><h3><a href="/news/{i}">News item {i}</a></h3>'
        "<p>Some words of a paragraph, with <b>bold</b> and "
        '<a href="/about">a link</a> in it.</p></div>\n'
    )
    head = b"<!DOCTYPE html><html><head><title>big</title></head><body><main>\n"
    tail = b"</main></body></html>\n"
    parts, size, i = [head], len(head) + len(tail), 0
    while size < BIG_BYTES:
        piece = unit.format(i=i).encode()
        parts.append(piece)
        size += len(piece)
        i += 1
    parts.append(tail)
    return b"".join(parts)


def bomb_body() -> bytes:
    head = b"<!DOCTYPE html><html><head><title>bomb</title></head><body><p>A bomb.</p>"
    # Concatenated gzip members are one gzip stream: made in a moment.
    filler = gzip.compress(b"\x00" * BOMB_MEMBER, mtime=0)
    return gzip.compress(head, mtime=0) + filler * (BOMB_INFLATED // BOMB_MEMBER)


def ordinary(i: int) -> bytes:
    return (
        f"<!DOCTYPE html><html><head><title>Page {i}</title></head><body>"
        f"<h1>Page {i}</h1><p>Paragraph {i} of an ordinary page.</p></body></html>"
    ).encode()


Response = tuple[str, list[tuple[str, str]], bytes]
CASES: dict[str, Callable[[], Response]] = {
    "big": lambda: (f"{HOST}/big", [("Content-Type", "text/html")], big_page()),
    "bomb": lambda: (
        f"{HOST}/bomb",
        [("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        bomb_body(),
    ),
}


def make_crawl(folder: Path, responses: Iterator[Response]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "warc").mkdir(parents=True)
    (folder / "indexes").mkdir()
    warc = folder / "warc" / "hostile-0.warc.gz"
    with open(warc, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        for url, headers, body in responses:
            http = StatusAndHeaders(
                "200 OK", [*headers, ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
            )
            writer.write_record(
                writer.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=http
                )
            )
    with open(folder / "indexes" / "index.cdxj", "w") as index:
        CDXJIndexer(index, [str(warc)], sort=True, dir_root=str(folder / "warc")).process_all()
    (folder / "crawl.json").write_text(json.dumps({"profile": "demo"}))


def measure(crawl: Path, max_page_size: str | None, timeout: float) -> dict[str, object]:
    cmd = [sys.executable, "-c", LAUNCHER, "transform", str(crawl), "--workers", "1"]
    if max_page_size:
        cmd += ["--max-page-size", max_page_size]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"exit": None, "seconds": timeout, "peak_rss_mb": None, "error": "timed out"}
    seconds = round(time.monotonic() - started, 1)
    peak = None
    lines = proc.stderr.strip().splitlines()
    if lines and lines[-1].startswith("peak-rss-kib "):
        peak = round(int(lines.pop().split()[1]) / 1024)
    error = next((ln for ln in reversed(lines) if "Error" in ln or "error:" in ln), None)
    log_path = crawl / "content" / "transform.log"
    notes = []
    if log_path.is_file():
        notes = [json.loads(x) for x in log_path.read_text().splitlines()]
    return {
        "exit": proc.returncode,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "error": error,
        "log": [f"{e['level']} {e['reason']}" for e in notes if "hostile" in e["url"]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", choices=sorted(CASES), default=sorted(CASES))
    ap.add_argument("--max-page-size", default=None, help="passed on (default: sunset's)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "bench")
    args = ap.parse_args(argv)
    results = {}
    for case in args.cases:
        crawl = args.out / f"hostile-{case}"
        err.print(f"building {crawl}")
        make_crawl(
            crawl, iter([CASES[case](), *((f"{HOST}/p{i}", [], ordinary(i)) for i in range(4))])
        )
        err.print(f"sunset transform on {case} …")
        results[case] = measure(crawl, args.max_page_size, args.timeout)
        shutil.rmtree(crawl / "content", ignore_errors=True)
    for case, r in results.items():
        out.print(
            f"{case:5} exit {r['exit']}  {r['seconds']:>6} s  peak RSS {r['peak_rss_mb']} MB"
            f"  {r['error'] or ''}  {'; '.join(r['log'])}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "transform_hostile.json").write_text(
        json.dumps({"cwd": os.getcwd(), "results": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
