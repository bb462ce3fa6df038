"""Crawl benchmark (issue 3): sunset crawl against wget on the same replica.

For each configuration (pages x latency) the replica is generated once (cached
under output/bench/replica-<pages>), served by nginx (replica.nginx) with that
per-response delay, and crawled by wget and by `sunset crawl --profile demo`,
one after the other, in the same run. For each tool we measure wall time, HTML
pages captured (status 200, counted from its WARC files), pages/s, requests,
peak RSS, and the set of URLs captured, and then compare the sets: every
in-scope URL wget captured must be in sunset's.

    .venv/bin/python bench/crawl.py --quick
    .venv/bin/python bench/crawl.py --pages 1000 --latency 0 20 --repeat 3
    .venv/bin/python bench/crawl.py --tools wget --pages 10000 --latency 20 --timeout 7200
    .venv/bin/python bench/crawl.py --pages 1000 --latency 20 --workers 1 2 4 --repeat 3

The third tool, `scrapy`, is Scrapy alone (bench/scrapy_floor.py): its own
download handler and default middlewares fetching the replica's list of
capturable URLs once each, at the profile's per-host concurrency, through the
same nginx proxy as wget, parsing nothing and writing nothing. No crawler
built on Scrapy can be faster than that on the same machine, so its ratio to
wget shows which targets Scrapy can reach at all.

--workers N... adds, beside wget and the single-process sunset, a shared crawl
of N `sunset crawl --redis` workers (a redis-server on loopback, flushed
before each run) followed by `sunset crawl --finish`; its wall time covers
both, and its peak RSS is that of all workers together.

Results: a table on stdout and output/bench/crawl.json. Not part of the test
suite: the 10,000-page runs at 20 ms take tens of minutes.

How each tool reaches nginx under the real host name, without touching
/etc/hosts: wget is told to use nginx as its HTTP proxy, so it sends
absolute-form requests (GET http://www.wiganboroughccg.nhs.uk/path) and nginx
looks up the path as usual; sunset has --connect-to.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from _common import (
    PROFILE,
    ROOT,
    SEED,
    THEME,
    LineCounter,
    err,
    first_line,
    first_line_of,
    out,
    target_uri,
    warc_bytes,
    warc_files,
)
from _common import measure as measure_tool
from rich.table import Table
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from replica.nginx import serve_nginx
from sunset.profile import Profile, load_profile
from sunset.replica_commands import ensure_replica

PAGES = (1000, 10000)
LATENCIES = (0, 20)
DEFAULT_TIMEOUT = 7200.0
# How many of the URLs one tool captured and the other did not go into the JSON.
SAMPLE = 50


@dataclass
class Run:
    tool: str
    pages: int
    latency_ms: int
    repeat: int
    ok: bool = False
    error: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    wall_s: float = 0.0
    html_pages: int = 0
    pages_per_s: float = 0.0
    requests: int = 0
    responses: int = 0
    peak_rss_mb: float = 0.0
    warc_bytes: int = 0
    revisits_without_headers: int = 0
    urls: set[str] = field(default_factory=set, repr=False)


# --------------------------------------------------------------------------
# Process measurement


class Counter(LineCounter):
    """Counts fetches in a growing log file (lines containing ``marker``) and WARC bytes."""

    def __init__(self, log: Path, marker: bytes | None, warc_dir: Path) -> None:
        super().__init__(log, marker)
        self.warc_dir = warc_dir

    def status(self) -> str:
        return f"{self.poll():>7,} fetches  WARC {warc_bytes(self.warc_dir) / 1e6:8.1f} MB"


class WorkersCounter(Counter):
    """Fetches of a shared crawl, whose lines are in workers/<id>/crawl.log until --finish."""

    def __init__(self, folder: Path, workers: list[str]) -> None:
        super().__init__(folder / "none", None, folder.parent / "warc")
        self.parts = [LineCounter(folder / w / "crawl.log") for w in workers]

    def poll(self) -> int:
        return sum(part.poll() for part in self.parts)


def measure(
    cmd: list[str],
    *,
    run: Run,
    cwd: Path,
    env: dict[str, str],
    stdout: Path,
    stderr: Path,
    counter: Counter,
    timeout: float,
) -> None:
    """Run ``cmd`` to completion or timeout; fill in wall time, exit code and peak RSS."""
    m = measure_tool(
        cmd,
        label=f"{run.tool} {run.pages:,} pages {run.latency_ms} ms",
        status=counter.status,
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=stderr,
        timeout=timeout,
    )
    run.wall_s, run.exit_code, run.peak_rss_mb = m.wall_s, m.exit_code, m.peak_rss_mb
    run.timed_out = m.timed_out


# --------------------------------------------------------------------------
# WARC statistics


def warc_stats(folder: Path, run: Run) -> None:
    """Requests, responses, HTML pages (status 200) and the 200 URL set, from the WARC files."""
    captured: dict[str, tuple[str, str]] = {}  # URI -> (status, content type), last wins
    bare_revisits: list[tuple[str, str]] = []  # (URI, refers-to URI)
    for path in warc_files(folder):
        run.warc_bytes += path.stat().st_size
        try:
            with open(path, "rb") as fh:
                for rec in ArchiveIterator(fh):
                    kind = rec.rec_type
                    if kind == "request":
                        run.requests += 1
                        continue
                    # A revisit stands for a capture whose payload was already
                    # stored (sunset deduplicates; wget does not), so it counts.
                    if kind not in ("response", "revisit"):
                        continue
                    uri = target_uri(rec.rec_headers.get_header("WARC-Target-URI"))
                    run.responses += kind == "response"
                    head = rec.http_headers
                    status = head.get_statuscode() if head else ""
                    if kind == "revisit" and not status:
                        # No HTTP headers in the revisit: take them from the
                        # response it refers to, once every file has been read.
                        refers = rec.rec_headers.get_header("WARC-Refers-To-Target-URI")
                        bare_revisits.append((uri, target_uri(refers)))
                        continue
                    ctype = (head.get_header("Content-Type") or "") if head else ""
                    captured[uri] = (status, ctype)
        except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
            # A run cut off by --timeout can leave a truncated last record.
            err.print(f"  note: {path.name}: stopped reading at a damaged record ({exc})")
    for uri, refers in bare_revisits:
        if refers in captured:
            captured.setdefault(uri, captured[refers])
    run.revisits_without_headers = len(bare_revisits)
    html: set[str] = set()
    for uri, (status, ctype) in captured.items():
        if status != "200":
            continue
        run.urls.add(uri)
        if ctype.split(";")[0].strip().lower() == "text/html":
            html.add(uri)
    # Unique URLs, so a tool that fetched a page twice gets no credit for it.
    run.html_pages = len(html)
    run.pages_per_s = round(run.html_pages / run.wall_s, 2) if run.wall_s else 0.0


# --------------------------------------------------------------------------
# The two tools


def _scope_regex(patterns: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


def _without_proxy() -> dict[str, str]:
    # Proxy variables from the caller's shell would send the tool elsewhere
    # than the nginx proxy it is given.
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def run_wget(profile: Profile, proxy: str, workdir: Path, run: Run, timeout: float) -> None:
    if shutil.which("wget") is None:
        run.error = "wget not found (install the Debian package wget)"
        return
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    log = workdir / "wget.log"
    cmd = [
        "wget",
        "--no-config",  # a user's or the system's wgetrc must not change the run
        "-e",
        "robots=on",
        # nginx as the proxy: requests go there in absolute form and keep the
        # real host name, in the URL, the Host header and the WARC.
        "-e",
        "use_proxy=yes",
        "-e",
        f"http_proxy=http://{proxy}/",
        "--recursive",
        "--level=inf",
        "--page-requisites",
        "--no-parent",
        # wget stays on the start host by default; the profile's excludes
        # (login, mail-a-friend, ...) and trap patterns (session ids), which
        # sunset refuses by rule, are refused by wget too, so both do the same work.
        "--regex-type=pcre",
        f"--timeout={profile.crawl.timeout:g}",
        f"--tries={profile.crawl.retries + 1}",
        "--delete-after",
        f"--directory-prefix={workdir / 'files'}",
        f"--warc-file={workdir / 'wget'}",
        "--no-verbose",
        f"--output-file={log}",
    ]
    refused = (*profile.site.exclude, *profile.crawl.trap_patterns)
    if refused:
        cmd.append(f"--reject-regex={_scope_regex(refused)}")
    if profile.site.include:
        cmd.append(f"--accept-regex={_scope_regex(profile.site.include)}")
    cmd.extend(profile.site.start_urls)
    measure(
        cmd,
        run=run,
        cwd=workdir,
        env=_without_proxy(),
        stdout=workdir / "wget.stdout",
        stderr=workdir / "wget.stderr",
        counter=Counter(log, b" URL:", workdir),
        timeout=timeout,
    )
    # wget exits 8 when any response was an error (the replica's 404s are).
    if run.exit_code not in (0, 8) and not run.timed_out:
        first = first_line(log) or first_line(workdir / "wget.stderr")
        run.error = f"wget exited {run.exit_code}: {first}"
    warc_stats(workdir, run)
    run.ok = run.error is None and not run.timed_out


def run_scrapy_floor(
    profile: Profile, site: Path, proxy: str, workdir: Path, run: Run, timeout: float
) -> None:
    """Scrapy alone (bench/scrapy_floor.py) fetching every capturable URL of the replica once."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    urls = workdir / "urls.txt"
    with (
        open(site / "ground-truth" / "urls.jsonl", encoding="utf-8") as src,
        open(urls, "w", encoding="utf-8") as dst,
    ):
        for line in src:
            entry = json.loads(line)
            if entry.get("capture") and in_scope(entry["url"], profile):
                dst.write(entry["url"] + "\n")
    fetched = workdir / "fetched.jsonl"
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("scrapy_floor.py")),
        str(urls),
        str(fetched),
        "--proxy",
        proxy,
        "--concurrency",
        str(profile.crawl.concurrency_per_host),
    ]
    measure(
        cmd,
        run=run,
        cwd=workdir,
        env=_without_proxy(),
        stdout=workdir / "stdout",
        stderr=workdir / "stderr",
        counter=Counter(fetched, None, workdir),
        timeout=timeout,
    )
    if run.exit_code != 0 and not run.timed_out:
        run.error = f"scrapy floor failed: {first_line(workdir / 'stderr')}"
    html: set[str] = set()
    with suppress(OSError), open(fetched, encoding="utf-8") as fh:
        for line in fh:
            url, status, ctype = json.loads(line)
            run.requests += 1
            run.responses += 1
            if status == 200:
                run.urls.add(url)
                if ctype.split(";")[0].strip().lower() == "text/html":
                    html.add(url)
    run.html_pages = len(html)
    run.pages_per_s = round(run.html_pages / run.wall_s, 2) if run.wall_s else 0.0
    run.ok = run.error is None and not run.timed_out


def _fresh(workdir: Path) -> Path:
    """Empty workdir (sunset refuses to write into an existing crawl) and a logs folder beside it."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    logs = workdir.parent / f"{workdir.name}.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    return logs


def _measure_sunset(
    cmd: list[str], workdir: Path, logs: Path, counter: Counter, run: Run, timeout: float, what: str
) -> None:
    measure(
        cmd,
        run=run,
        cwd=ROOT,
        env=dict(os.environ),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        counter=counter,
        timeout=timeout,
    )
    if run.exit_code != 0 and not run.timed_out:
        first = first_line(logs / "stderr") or f"exit status {run.exit_code}"
        run.error = f"{what} failed: {first}"
    if (workdir / "warc").exists():
        warc_stats(workdir / "warc", run)
    run.ok = run.error is None and not run.timed_out


def _sunset_cmd(workdir: Path, connect_to: list[str], *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "sunset", "crawl", "--profile", PROFILE, "--out", str(workdir)]
    cmd += extra
    for entry in connect_to:
        cmd += ["--connect-to", entry]
    return cmd


def run_sunset(connect_to: list[str], workdir: Path, run: Run, timeout: float) -> None:
    logs = _fresh(workdir)
    counter = Counter(workdir / "crawl.log", None, workdir / "warc")
    cmd = _sunset_cmd(workdir, connect_to)
    _measure_sunset(cmd, workdir, logs, counter, run, timeout, "sunset crawl")


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A throwaway redis-server on loopback for the shared-crawl runs."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server not found (./dev setup installs the Debian package)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _flush(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def run_workers(
    n: int, redis_url: str, connect_to: list[str], workdir: Path, run: Run, timeout: float
) -> None:
    """N `sunset crawl --redis` workers at once, then `--finish`, measured as one run."""
    logs = _fresh(workdir)
    _flush(redis_url)
    worker = shlex.join(_sunset_cmd(workdir, connect_to, "--name", "bench", "--redis", redis_url))
    # One shell runs the workers side by side, waits for all, then merges;
    # measure() follows the whole process tree.
    script = (
        "rc=0; pids=''; "
        + " ".join(f'{worker} --worker w{i} & pids="$pids $!"; ' for i in range(1, n + 1))
        + "for p in $pids; do wait $p || rc=1; done; "
        + f"[ $rc -eq 0 ] && exec {worker} --finish"
        + "; exit $rc"
    )
    counter = WorkersCounter(workdir / "workers", [f"w{i}" for i in range(1, n + 1)])
    _measure_sunset(["sh", "-c", script], workdir, logs, counter, run, timeout, "shared crawl")


# --------------------------------------------------------------------------
# Orchestration and report


def in_scope(url: str, profile: Profile) -> bool:
    host = urlsplit(url).hostname or ""
    if host not in profile.site.allowed_hosts:
        return False
    if any(re.search(p, url) for p in (*profile.site.exclude, *profile.crawl.trap_patterns)):
        return False
    return not profile.site.include or any(re.search(p, url) for p in profile.site.include)


def median_of(runs: list[Run]) -> dict[str, float] | None:
    good = [r for r in runs if r.ok] or [r for r in runs if r.html_pages]
    if not good:
        return None
    keys = ("wall_s", "html_pages", "pages_per_s", "requests", "peak_rss_mb")
    return {k: statistics.median(getattr(r, k) for r in good) for k in keys}


def bench_config(
    pages: int,
    latency: int,
    tools: list[str],
    repeat: int,
    timeout: float,
    base: Path,
    profile: Profile,
) -> dict[str, object]:
    site = base / f"replica-{pages}"
    manifest = ensure_replica(site, pages, SEED, THEME)
    cfg = f"{pages}-{latency}ms"
    runs: dict[str, list[Run]] = {t: [] for t in tools}
    shared = any(t.startswith("workers-") for t in tools)
    with (
        serve_nginx(site, delay_ms=latency) as srv,
        redis_server(base / "redis") if shared else _nothing() as redis_url,
    ):
        err.print(
            f"[bold]{pages:,} pages, {latency} ms[/]: nginx on {srv.proxy}"
            f" serving {srv.routes:,} URLs from {site}"
        )
        for k in range(repeat):
            # Alternate the order so neither tool always runs on a warmer cache.
            order = tools if k % 2 == 0 else list(reversed(tools))
            for tool in order:
                run = Run(tool, pages, latency, k + 1)
                if tool == "wget":
                    run_wget(profile, srv.proxy, base / f"wget-{cfg}", run, timeout)
                elif tool == "scrapy":
                    work = base / f"scrapy-{cfg}"
                    run_scrapy_floor(profile, site, srv.proxy, work, run, timeout)
                elif tool.startswith("workers-"):
                    assert redis_url
                    n = int(tool.removeprefix("workers-"))
                    work = base / f"{tool}-{cfg}"
                    run_workers(n, redis_url, srv.connect_to, work, run, timeout)
                else:
                    run_sunset(srv.connect_to, base / f"sunset-{cfg}", run, timeout)
                if run.error:
                    err.print(f"  [red]{run.error}[/]")
                elif run.timed_out:
                    err.print(f"  [yellow]{tool} stopped after --timeout {timeout:g} s[/]")
                runs[tool].append(run)

    result: dict[str, object] = {
        "pages": pages,
        "latency_ms": latency,
        "replica": str(site),
        "legacy_urls": manifest.get("legacy_urls"),
        "runs": {t: [_public(r) for r in rs] for t, rs in runs.items()},
        "median": {t: median_of(rs) for t, rs in runs.items()},
    }
    # URL sets from each tool's last run: the folders on disk are that run's.
    last = {t: rs[-1] for t, rs in runs.items() if rs and (rs[-1].ok or rs[-1].urls)}
    if "wget" in last and "sunset" in last:
        wget_urls = {u for u in last["wget"].urls if in_scope(u, profile)}
        sunset_urls = last["sunset"].urls
        missed = sorted(wget_urls - sunset_urls)
        extra = sorted(sunset_urls - wget_urls)
        result["compare"] = {
            "wget": len(wget_urls),
            "sunset": len(sunset_urls),
            "wget_minus_sunset": len(missed),
            "sunset_minus_wget": len(extra),
            "missed_sample": missed[:SAMPLE],
            "extra_sample": extra[:SAMPLE],
        }
    medians = result["median"]
    assert isinstance(medians, dict)
    w, s = medians.get("wget"), medians.get("sunset")
    if w and s and w["pages_per_s"]:
        result["speedup"] = round(s["pages_per_s"] / w["pages_per_s"], 2)
    shared_runs = {t: m for t, m in medians.items() if t.startswith("workers-") and m}
    if w and w["pages_per_s"]:
        result["workers_speedup"] = {
            t: round(m["pages_per_s"] / w["pages_per_s"], 2) for t, m in shared_runs.items()
        }
    floor = medians.get("scrapy")
    if w and floor and w["pages_per_s"]:
        result["scrapy_floor_speedup"] = round(floor["pages_per_s"] / w["pages_per_s"], 2)
    one = medians.get("workers-1")
    if one and one["pages_per_s"]:
        result["workers_scaling"] = {
            t: round(m["pages_per_s"] / one["pages_per_s"], 2) for t, m in shared_runs.items()
        }
    return result


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _public(run: Run) -> dict[str, object]:
    data = asdict(run)
    data["urls"] = len(run.urls)
    return data


def rss_ratios(results: list[dict[str, object]]) -> dict[str, float]:
    """sunset's peak RSS at 10,000 pages over that at 1,000, per latency."""
    rss: dict[tuple[int, int], float] = {}
    for r in results:
        med = r["median"].get("sunset")  # type: ignore[union-attr]
        if med and med["peak_rss_mb"]:
            rss[(int(r["pages"]), int(r["latency_ms"]))] = med["peak_rss_mb"]  # type: ignore[call-overload]
    ratios = {}
    for lat in sorted({lat for _, lat in rss}):
        if (10000, lat) in rss and (1000, lat) in rss:
            ratios[f"{lat}ms"] = round(rss[(10000, lat)] / rss[(1000, lat)], 2)
    return ratios


def print_report(results: list[dict[str, object]], ratios: dict[str, float]) -> None:
    table = Table(title="Crawl benchmark (medians)", title_justify="left")
    for col in (
        "pages",
        "latency",
        "tool",
        "result",
        "wall s",
        "HTML 200",
        "pages/s",
        "requests",
        "peak RSS MB",
        "URLs 200",
    ):
        table.add_column(col, justify="left" if col in ("tool", "result") else "right")
    for r in results:
        runs: dict[str, list[dict]] = r["runs"]  # type: ignore[assignment]
        for tool, rs in runs.items():
            med = r["median"].get(tool)  # type: ignore[union-attr]
            last = rs[-1]
            status = "ok" if last["ok"] else ("timeout" if last["timed_out"] else "failed")
            cells = (
                [
                    f"{med['wall_s']:.1f}",
                    f"{med['html_pages']:,.0f}",
                    f"{med['pages_per_s']:.1f}",
                    f"{med['requests']:,.0f}",
                    f"{med['peak_rss_mb']:.0f}",
                    f"{last['urls']:,}",
                ]
                if med
                else ["-"] * 6
            )
            table.add_row(f"{r['pages']:,}", f"{r['latency_ms']} ms", tool, status, *cells)
    out.print(table)
    for r in results:
        cfg = f"{r['pages']:,} pages, {r['latency_ms']} ms"
        cmp_ = r.get("compare")
        if cmp_:
            out.print(
                f"{cfg}: |wget| {cmp_['wget']:,}  |sunset| {cmp_['sunset']:,}"  # type: ignore[index]
                f"  |wget - sunset| {cmp_['wget_minus_sunset']:,}"  # type: ignore[index]
                f"  |sunset - wget| {cmp_['sunset_minus_wget']:,}"  # type: ignore[index]
            )
        if "speedup" in r:
            out.print(f"{cfg}: sunset pages/s ÷ wget pages/s = {r['speedup']}")
        if "scrapy_floor_speedup" in r:
            out.print(
                f"{cfg}: Scrapy alone (fetch only) pages/s ÷ wget pages/s"
                f" = {r['scrapy_floor_speedup']}"
            )
        for tool, ratio in r.get("workers_speedup", {}).items():  # type: ignore[union-attr]
            scale = r.get("workers_scaling", {}).get(tool)  # type: ignore[union-attr]
            out.print(
                f"{cfg}: {tool} pages/s ÷ wget pages/s = {ratio}"
                + (f"; ÷ workers-1 = {scale}" if scale else "")
            )
        for tool, rs in r["runs"].items():  # type: ignore[union-attr]
            if rs[-1]["error"]:
                out.print(f"{cfg}: {tool}: {rs[-1]['error']}")
    for lat, ratio in ratios.items():
        out.print(f"sunset peak RSS, 10,000 ÷ 1,000 pages at {lat}: {ratio}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark sunset crawl against wget on the nginx-served replica."
    )
    ap.add_argument(
        "--pages",
        type=int,
        nargs="+",
        default=list(PAGES),
        help="replica sizes (default: 1000 10000; at least 50)",
    )
    ap.add_argument(
        "--latency",
        type=int,
        nargs="+",
        default=list(LATENCIES),
        help="per-response delays in ms (default: 0 20)",
    )
    ap.add_argument("--quick", action="store_true", help="only 1,000 pages at 0 ms")
    ap.add_argument(
        "--tools",
        nargs="+",
        choices=("wget", "sunset", "scrapy"),
        default=["wget", "sunset", "scrapy"],
        help="scrapy: Scrapy alone fetching the replica's URL list, parsing and writing"
        " nothing (bench/scrapy_floor.py), the floor under any Scrapy-based crawler",
    )
    ap.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also run shared crawls of N `sunset crawl --redis` workers (e.g. 1 2 4)",
    )
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
        help="folder for replicas, crawls and crawl.json (default output/bench)",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if min(args.pages) < 50 or min(args.latency) < 0:
        ap.error("--pages must be at least 50 and --latency at least 0")
    if args.quick:
        args.pages, args.latency = [1000], [0]
    if any(n < 1 or n > 16 for n in args.workers):
        ap.error("--workers takes counts from 1 to 16")
    args.tools += [f"workers-{n}" for n in sorted(set(args.workers))]
    base: Path = args.out.resolve()
    base.mkdir(parents=True, exist_ok=True)
    profile = load_profile(PROFILE)

    results = []
    started = time.time()
    for pages in sorted(set(args.pages)):
        for latency in sorted(set(args.latency)):
            results.append(
                bench_config(pages, latency, args.tools, args.repeat, args.timeout, base, profile)
            )
    ratios = rss_ratios(results)
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "profile": PROFILE,
        "seed": SEED,
        "repeat": args.repeat,
        "wget": first_line_of(["wget", "--version"]),
        "configs": results,
        "sunset_rss_10k_over_1k": ratios,
    }
    (base / "crawl.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(results, ratios)
    err.print(f"written {base / 'crawl.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
