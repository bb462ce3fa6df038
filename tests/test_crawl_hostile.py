"""`sunset crawl` against hostile sites (issue 14): nothing lost, nothing unbounded, every
refusal logged.

Each check runs the real command against tests/faultserver.py on loopback and
reads only what the crawl wrote (crawl.log, crawl.json, the WARCs) and what the
server was asked for.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from faultserver import BAD_LINKS, LONG_SEGMENT, serve_faults
from helpers import write_profile
from test_crawl_faults import Crawl, LogLine, read_crawl, run_sunset
from warcio.archiveiterator import ArchiveIterator

FAST = "delay = 0\nautothrottle = false\nconcurrency_per_host = 4\ntimeout = 5\n"


def site_profile(path: Path, site: str, starts: list[str], crawl: str = FAST) -> Path:
    return write_profile(path, [site + s for s in starts], ["127.0.0.1"], crawl)


def crawl_once(work: Path, site: str, starts: list[str], crawl: str = FAST, *args: str) -> Crawl:
    profile = site_profile(work / "p.toml", site, starts, crawl)
    out = work / "crawl"
    run = run_sunset("crawl", "--profile", str(profile), "--out", str(out), *args, cwd=work)
    return read_crawl(run, out, site.rstrip("/"))


def refusals(crawl: Crawl, note: str) -> list[LogLine]:
    return [x for x in crawl.log_lines if x.status < 0 and note in x.notes]


def fetched(crawl: Crawl, prefix: str) -> list[LogLine]:
    return [x for x in crawl.log_lines if x.status > 0 and x.path.startswith(prefix)]


def ts(line: LogLine) -> float:
    return datetime.strptime(line.ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


# --------------------------------------------------------------------------
# Discovery and traps: one crawl, with the profile's default guards


@dataclass
class Traps:
    crawl: Crawl
    hits: dict[str, int]


TRAP_STARTS = [
    "bad-links",
    "long",
    "redirect-chain/0",
    "link-chain/0",
    "cal/2019/11",
    "sess/start/page",
]


@pytest.fixture(scope="module")
def traps(tmp_path_factory: pytest.TempPathFactory) -> Traps:
    work = tmp_path_factory.mktemp("traps")
    with serve_faults() as server:
        crawl = crawl_once(work, server.url, TRAP_STARTS)
        paths = [
            *(f"/bad-links/ok-{i}" for i in range(1, 5)),
            f"/long/{LONG_SEGMENT}",
            "/long/after",
            "/redirect-chain/20",
            "/redirect-chain/21",
            "/link-chain/20",
            "/link-chain/21",
        ]
        hits = {p: server.hits(p) for p in paths}
    assert crawl.run.returncode == 0, crawl.run.explain()
    return Traps(crawl, hits)


def test_every_log_line_keeps_its_ten_fields(traps: Traps) -> None:
    assert traps.crawl.bad_log_lines == []


def test_a_bad_link_is_logged_and_the_links_after_it_still_followed(traps: Traps) -> None:
    for i in range(1, 5):
        assert traps.hits[f"/bad-links/ok-{i}"] == 1, f"ok-{i} was not fetched"
    logged = " ".join(x.url for x in refusals(traps.crawl, "invalid-url"))
    for bad in BAD_LINKS:
        if "ok-" not in bad:
            assert bad.split("/")[2] in logged, f"no invalid-url line for {bad}"
    assert all(x.status == -7 for x in refusals(traps.crawl, "invalid-url"))


def test_an_overlong_url_is_refused_with_a_log_line(traps: Traps) -> None:
    assert traps.hits[f"/long/{LONG_SEGMENT}"] == 0
    assert traps.hits["/long/after"] == 1
    lines = refusals(traps.crawl, "guard:url-length")
    assert [x.path for x in lines] == [f"/long/{LONG_SEGMENT}"]
    assert lines[0].status == -5000


def test_a_redirect_chain_is_cut_with_a_log_line(traps: Traps) -> None:
    assert traps.hits["/redirect-chain/20"] == 1
    assert traps.hits["/redirect-chain/21"] == 0
    lines = refusals(traps.crawl, "guard:redirect-hops")
    assert [x.path for x in lines] == ["/redirect-chain/21"]


def test_default_depth_limit_ends_an_endless_chain_of_links(traps: Traps) -> None:
    assert traps.hits["/link-chain/20"] == 1
    assert traps.hits["/link-chain/21"] == 0
    assert [x.path for x in refusals(traps.crawl, "guard:max-depth")] == ["/link-chain/21"]


def test_default_guards_cap_a_calendar_in_the_path(traps: Traps) -> None:
    months = {x.path for x in fetched(traps.crawl, "/cal/")}
    # Real months on both sides of the start are kept; the endless tails are not.
    assert {"/cal/2019/10", "/cal/2019/12", "/cal/2019/5", "/cal/2020/5"} <= months
    assert len(months) <= 24
    assert refusals(traps.crawl, "guard:calendar")


def test_default_guards_cap_session_ids_in_the_path(traps: Traps) -> None:
    pages = fetched(traps.crawl, "/sess/")
    assert len(pages) <= 2 * 50 + 2
    assert refusals(traps.crawl, "guard:path-variants")


def test_the_discovery_path_is_capped_as_heritrix_does(tmp_path: Path) -> None:
    with serve_faults() as server:
        crawl = crawl_once(
            tmp_path, server.url, ["link-chain/0"], FAST + "max_depth = 0\n", "--max-pages", "120"
        )
    assert crawl.run.returncode == 0, crawl.run.explain()
    hops = {x.path: x.hops for x in crawl.log_lines}
    assert hops["/link-chain/50"] == "L" * 50
    assert hops["/link-chain/51"] == "1+" + "L" * 50
    assert hops["/link-chain/110"] == "60+" + "L" * 50
    assert max(len(h) for h in hops.values()) <= 54


# --------------------------------------------------------------------------
# robots.txt: nothing goes out before it has been answered


ROBOTS = b"User-agent: *\nDisallow: /tree/1\n"


def test_pages_wait_for_a_slow_robots_txt_and_obey_it(tmp_path: Path) -> None:
    with serve_faults(robots_delay=2.0, robots_body=ROBOTS, tree_nodes=40) as server:
        crawl = crawl_once(tmp_path, server.url, ["tree/0"])
        disallowed = server.hits("/tree/1") + server.hits("/tree/4")
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert disallowed == 0
    robots = crawl.log("/robots.txt")
    assert [x.status for x in robots] == [200]
    answered = ts(robots[0])
    pages = [x for x in crawl.log_lines if x.status > 0 and x.path != "/robots.txt"]
    assert pages
    # A fetch's line is written when it ends; it started `duration` before.
    assert min(ts(x) - x.duration / 1000 for x in pages) >= answered - 0.01


def test_a_robots_txt_slower_than_the_timeout_disallows_everything(tmp_path: Path) -> None:
    crawl_settings = FAST.replace("timeout = 5", "timeout = 1") + "retries = 0\n"
    with serve_faults(robots_delay=3.0, robots_body=ROBOTS, tree_nodes=40) as server:
        crawl = crawl_once(tmp_path, server.url, ["tree/0"], crawl_settings)
        pages = server.hits("/tree/0")
    assert pages == 0, "a page was fetched although robots.txt never answered"
    # Nothing but the robots.txt attempt: the crawl says it captured nothing.
    assert crawl.run.returncode == 1, crawl.run.explain()
    summary = json.loads((crawl.out / "crawl.json").read_text())
    assert summary["robots"] == {"127.0.0.1": "robots-unreachable:disallow-all"}


def test_a_robots_txt_server_error_disallows_everything(tmp_path: Path) -> None:
    # RFC 9309 2.3.1.4: 5xx means "assume complete disallow", after the retries.
    with serve_faults(robots_status=503, tree_nodes=40) as server:
        crawl = crawl_once(tmp_path, server.url, ["tree/0"], FAST + "retries = 1\n")
        pages = server.hits("/tree/0")
        asked = server.hits("/robots.txt")
    assert pages == 0 and asked == 2
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert "disallow" in crawl.run.stderr
    summary = json.loads((crawl.out / "crawl.json").read_text())
    assert summary["robots"] == {"127.0.0.1": "robots-unreachable:disallow-all"}
    assert [x.notes for x in crawl.log("/tree/0")] == [("robots",)]


def test_a_huge_robots_txt_is_obeyed_to_its_last_line(tmp_path: Path) -> None:
    filler = b"".join(b"# comment line %07d\n" % i for i in range(150_000))  # 3 MB
    with serve_faults(robots_body=filler + ROBOTS, tree_nodes=40) as server:
        crawl = crawl_once(tmp_path, server.url, ["tree/0"])
        disallowed = server.hits("/tree/1")
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert disallowed == 0
    assert len(fetched(crawl, "/tree/")) > 10


# --------------------------------------------------------------------------
# Pace: AutoThrottle adapts from the profile's delay, not from Scrapy's 5 s


def test_autothrottle_keeps_the_profiles_pace(tmp_path: Path) -> None:
    delay = 0.05
    settings = f"delay = {delay}\nautothrottle = true\nconcurrency_per_host = 2\ntimeout = 5\n"
    with serve_faults(tree_nodes=60) as server:
        crawl = crawl_once(tmp_path, server.url, ["tree/0"], settings)
    assert crawl.run.returncode == 0, crawl.run.explain()
    starts = sorted(ts(x) - x.duration / 1000 for x in crawl.log_lines if x.status > 0)
    assert len(starts) >= 60
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Scrapy spreads each delay over 0.5x to 1.5x; the median stays near it.
    assert 0.5 * delay <= statistics.median(gaps) <= 2.5 * delay, gaps
    # Before the fix AutoThrottle sat at its 5 s start delay: minutes for this.
    assert starts[-1] - starts[0] < 60 * delay * 3


# --------------------------------------------------------------------------
# Resume after kill -9: the frontier is rebuilt from what the WARCs hold


def captured_urls(out: Path) -> set[str]:
    urls: set[str] = set()
    for path in sorted((out / "warc").glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type in ("response", "revisit"):
                    urls.add(rec.rec_headers.get_header("WARC-Target-URI"))
    return urls


def crawl_command(profile: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "sunset", "crawl", "--profile", str(profile), "--out", str(out)]


# /rtree/ pages are byte-identical (each capture after the first is a revisit):
# only their URLs tell their links apart, which is what an earlier resume lost.
TREE_SETTINGS = FAST.replace("concurrency_per_host = 4", "concurrency_per_host = 2")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("tree")
    with serve_faults(page_delay=0.004) as server:
        profile = site_profile(work / "p.toml", server.url, ["rtree/"], TREE_SETTINGS)
        clean = work / "clean"
        done = subprocess.run(crawl_command(profile, clean), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        yield server, profile, work, captured_urls(clean)


@pytest.mark.parametrize("share", [0.2, 0.45, 0.75])
def test_resume_after_kill_reaches_what_a_clean_crawl_reaches(tree, share: float) -> None:
    _server, profile, work, clean = tree
    out = work / f"killed-{share}"
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        crawl_command(profile, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    log = out / "crawl.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= share * len(clean):
            break
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = captured_urls(out) if (out / "warc").exists() else set()
    assert len(before) < len(clean), "the crawl ended before it was killed"
    resumed = subprocess.run(
        [*crawl_command(profile, out), "--resume"], capture_output=True, text=True, env=env
    )
    assert resumed.returncode == 0, resumed.stderr
    assert captured_urls(out) == clean


def test_a_refused_url_stays_refused_on_resume(tmp_path: Path) -> None:
    with serve_faults() as server:
        profile = site_profile(tmp_path / "p.toml", server.url, ["long"])
        out = tmp_path / "crawl"
        first = run_sunset(
            "crawl", "--profile", str(profile), "--out", str(out), "--max-pages", "1", cwd=tmp_path
        )
        assert first.returncode == 0, first.explain()
        again = run_sunset(
            "crawl", "--profile", str(profile), "--out", str(out), "--resume", cwd=tmp_path
        )
        assert again.returncode == 0, again.explain()
        long_hits = server.hits(f"/long/{LONG_SEGMENT}")
        after_hits = server.hits("/long/after")
    assert long_hits == 0
    assert after_hits == 1
    crawl = read_crawl(again, out, server.url)
    assert len(refusals(crawl, "guard:url-length")) >= 1
    # The first run's cap is logged too, once per URL it left for later.
    capped = {x.path for x in refusals(crawl, "max-pages")}
    assert "/long/after" in capped
    assert all(x.status == -5003 for x in refusals(crawl, "max-pages"))


def test_an_answer_the_crawl_would_retry_is_retried_on_resume(tmp_path: Path) -> None:
    # The first run gives up after one 503; a resume must not count it as captured.
    with serve_faults(flaky_failures=1) as server:
        first = crawl_once(tmp_path, server.url, ["flaky"], FAST + "retries = 0\n")
        assert [x.status for x in first.log("/flaky")] == [503]
        profile = tmp_path / "p.toml"
        again = run_sunset(
            "crawl", "--profile", str(profile), "--out", str(first.out), "--resume", cwd=tmp_path
        )
        assert again.returncode == 0, again.explain()
        asked = server.hits("/flaky")
    resumed = read_crawl(again, first.out, server.url)
    assert asked == 2
    assert [x.status for x in resumed.log("/flaky")] == [503, 200]
