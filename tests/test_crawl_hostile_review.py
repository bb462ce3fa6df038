"""Issue 14, found in review: hostile links, redirects and robots.txt files, and
a resume that decides as the crawl did.

Each check runs the real `sunset crawl` against tests/faultserver.py on
loopback and reads only what the crawl wrote and what the server was asked for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from faultserver import RV_LOCATIONS, serve_faults
from helpers import write_profile
from test_crawl_faults import Crawl, LogLine, Run, read_crawl, run_sunset
from test_crawl_hostile import FAST, site_profile, ts
from test_crawl_redis import REDIS_SERVER, redis_server


@dataclass
class Resumed:
    first: Crawl
    again: Run
    lines: list[LogLine]  # what the resume added to crawl.log


def crawl_and_resume(
    work: Path, site: str, starts: list[str], crawl: str = FAST, profile: Path | None = None
) -> Resumed:
    """A crawl run to its end, then resumed (with nothing left to do, unless it failed)."""
    profile = profile or site_profile(work / "p.toml", site, starts, crawl)
    out = work / "crawl"
    first = run_sunset("crawl", "--profile", str(profile), "--out", str(out), cwd=work)
    first_crawl = read_crawl(first, out, site.rstrip("/"))
    before = len(first_crawl.log_lines)
    again = run_sunset("crawl", "--profile", str(profile), "--out", str(out), "--resume", cwd=work)
    lines = read_crawl(again, out, site.rstrip("/")).log_lines[before:]
    return Resumed(first_crawl, again, lines)


# --------------------------------------------------------------------------
# Odd links and odd redirects, crawled and then resumed


@dataclass
class Odd(Resumed):
    hits: dict[str, int]


# A non-ASCII Location is followed as a browser follows it: its bytes, %-escaped.
RAW_LOCATIONS = ("/rv/odd/utf8-%C3%BC", "/rv/odd/latin1-%FC")


@pytest.fixture(scope="module")
def odd(tmp_path_factory: pytest.TempPathFactory) -> Odd:
    work = tmp_path_factory.mktemp("odd")
    with serve_faults() as server:
        done = crawl_and_resume(work, server.url, ["rv/odd/"])
        hits = {p: server.hits(p) for p in RAW_LOCATIONS}
    return Odd(done.first, done.again, done.lines, hits)


def test_odd_links_crawl_with_every_line_whole(odd: Resumed) -> None:
    assert odd.first.run.returncode == 0, odd.first.run.explain()
    assert odd.first.bad_log_lines == []
    fetched = {x.path for x in odd.first.log_lines if x.status > 0}
    assert {"/rv/odd/ok-1", "/rv/odd/ok-2"} <= fetched


def test_a_redirect_to_a_url_no_request_can_be_made_from_is_logged(odd: Resumed) -> None:
    invalid = [x for x in odd.first.log_lines if "invalid-url" in x.notes]
    via = {x.referrer.rsplit("/", 1)[-1] for x in invalid if "/rv/redir/" in x.referrer}
    assert {"ipv6", "port", "literal"} <= via, [x.raw for x in invalid]
    redirected = [x for x in invalid if "/rv/redir/" in x.referrer]
    assert all(x.status == -7 and x.hops.endswith("R") for x in redirected)
    assert set(via) <= set(RV_LOCATIONS)


def test_a_non_ascii_location_is_followed_byte_for_byte(odd: Odd) -> None:
    assert odd.hits == dict.fromkeys(RAW_LOCATIONS, 1)


def test_a_resume_after_odd_links_runs_and_fetches_nothing_again(odd: Resumed) -> None:
    assert "Traceback" not in odd.again.stderr, odd.again.explain()
    assert odd.again.returncode == 0, odd.again.explain()
    assert [x.raw for x in odd.lines if x.status > 0] == []


# --------------------------------------------------------------------------
# A resume decides as the crawl did


def test_a_resume_walks_no_further_along_a_calendar(tmp_path: Path) -> None:
    with serve_faults() as server:
        done = crawl_and_resume(tmp_path, server.url, ["cal/2019/11"])
    assert done.first.run.returncode == 0, done.first.run.explain()
    assert any("guard:calendar" in x.notes for x in done.first.log_lines)
    assert done.again.returncode == 0, done.again.explain()
    assert [x.raw for x in done.lines if x.status > 0] == []
    assert {x.notes for x in done.lines} == {("guard:calendar",)}


def test_a_redirect_target_left_for_the_resume_keeps_its_depth(tmp_path: Path) -> None:
    # /rv/d/2 is reached by /rv/d/1 -> /rv/go/2 -> (302) /rv/d/2, two links (LRLR) from
    # the seed, and fails once; its own links are one too deep for max_depth 2.
    settings = FAST + "retries = 0\nmax_depth = 2\n"
    with serve_faults() as server:
        done = crawl_and_resume(tmp_path, server.url, ["rv/d/0"], settings)
        deeper = server.hits("/rv/go/3")
    assert done.first.run.returncode == 0, done.first.run.explain()
    assert [x.status for x in done.first.log("/rv/d/2")] == [503]
    assert done.again.returncode == 0, done.again.explain()
    assert [(x.path, x.status) for x in done.lines if x.status > 0] == [("/rv/d/2", 200)]
    assert deeper == 0
    assert [(x.path, x.hops) for x in done.lines if x.status < 0] == [("/rv/go/3", "LRLRL")]


# --------------------------------------------------------------------------
# robots.txt of several hosts


def hosts_profile(path: Path, port: int, seed: str, hosts: list[str], ports=(80,)) -> Path:
    rules = ", ".join(f'"{h}:{p}:127.0.0.1:{port}"' for h in hosts for p in ports)
    return write_profile(path, [seed], hosts, f"{FAST}connect_to = [{rules}]\n")


def crawl_hosts(work: Path, profile: Path, shared: bool) -> Crawl:
    """One crawl, or (shared) two workers sharing it through a real Redis, then --finish."""
    out = work / "crawl"
    base = ["crawl", "--profile", str(profile), "--out", str(out)]
    if not shared:
        return read_crawl(run_sunset(*base, cwd=work), out, "")
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    with redis_server(work / "redis") as url:
        base += ["--name", "shared", "--redis", url]
        env = {**os.environ, "NO_COLOR": "1"}
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "sunset", *base],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for proc in workers:
                _, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        done = run_sunset(*base, "--finish", cwd=work)
    return read_crawl(done, out, "")


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
def test_a_sitemap_named_by_one_host_waits_for_the_robots_txt_of_its_own(
    tmp_path: Path, shared: bool
) -> None:
    with serve_faults() as server:
        profile = hosts_profile(
            tmp_path / "p.toml",
            server.port,
            "http://first.rv.test/rv/first",
            ["first.rv.test", "slow.rv.test"],
        )
        crawl = crawl_hosts(tmp_path, profile, shared)
        secret = server.hits("/rv/secret")
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert secret == 0, "a page robots.txt disallows was fetched"
    robots = [x for x in crawl.log_lines if x.url == "http://slow.rv.test/robots.txt"]
    assert [x.status for x in robots] == [200]
    slow = [x for x in crawl.log_lines if "slow.rv.test/rv/" in x.url and x.status > 0]
    assert {x.path for x in slow} == {"/rv/sm.xml", "/rv/listed"}
    assert min(ts(x) - x.duration / 1000 for x in slow) >= ts(robots[0]) - 0.01


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
def test_hosts_whose_robots_txt_redirect_to_one_file_both_obey_it(
    tmp_path: Path, shared: bool
) -> None:
    with serve_faults() as server:
        profile = hosts_profile(
            tmp_path / "p.toml",
            server.port,
            "http://www.rv.test/rv/start",
            ["apex.rv.test", "www.rv.test"],
            ports=(80, 8080),
        )
        crawl = crawl_hosts(tmp_path, profile, shared)
        secret = server.hits("/rv/secret")
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert secret == 0
    assert [x.notes[0] for x in crawl.log_lines if x.path == "/rv/secret"] == ["robots"]


def test_an_interrupt_while_robots_txt_is_awaited_decides_nothing(tmp_path: Path) -> None:
    # An abandoned robots.txt fetch is no answer: no rules are made up from it
    # (it was taken as "unreachable: disallow all", and every seed logged -9998).
    with serve_faults(robots_delay=5.0) as server:
        profile = site_profile(tmp_path / "p.toml", server.url, ["rv/start"])
        out = tmp_path / "crawl"
        command = [sys.executable, "-m", "sunset", "crawl", "--profile", str(profile)]
        proc = subprocess.Popen(
            [*command, "--out", str(out)],
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while server.hits("/robots.txt") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        stopped = read_crawl(Run(proc.returncode, "", err, 0), out, server.url)
        summary = json.loads((out / "crawl.json").read_text())
    assert proc.returncode == 130, err
    assert [x.raw for x in stopped.log_lines if x.status == -9998] == []
    assert summary["robots"] == {}


def test_a_robots_txt_cut_short_by_time_is_asked_again_on_resume(tmp_path: Path) -> None:
    # The crawl gives up on it (no retries) and disallows everything, as RFC
    # 9309 says; the resume retries it as it retries any body cut by time.
    with serve_faults() as server:
        profile = hosts_profile(
            tmp_path / "p.toml", server.port, "http://stall.rv.test/rv/start", ["stall.rv.test"]
        )
        text = profile.read_text().replace("timeout = 5", "timeout = 1\nretries = 0")
        profile.write_text(text)
        done = crawl_and_resume(tmp_path, "http://stall.rv.test/", [], profile=profile)
        asked = server.hits("/robots.txt")
        start = server.hits("/rv/start")
    summary = json.loads((done.first.out / "crawl.json").read_text())
    assert asked == 2
    assert start == 1
    assert done.again.returncode == 0, done.again.explain()
    assert summary["robots"] == {"stall.rv.test": "robots-ok"}


def test_a_file_named_robots_txt_below_the_root_is_a_page_on_resume(tmp_path: Path) -> None:
    # /rv/docs/robots.txt disallows everything, but it is not the site's robots.txt.
    with serve_faults() as server:
        profile = site_profile(tmp_path / "p.toml", server.url, ["rv/docs/"])
        out = tmp_path / "crawl"
        base = ["crawl", "--profile", str(profile), "--out", str(out)]
        first = run_sunset(*base, "--max-pages", "3", cwd=tmp_path)
        crawl = read_crawl(first, out, server.url)
        again = run_sunset(*base, "--resume", cwd=tmp_path)
        after = server.hits("/rv/docs/after")
    assert first.returncode == 0, first.explain()
    assert [x.status for x in crawl.log("/rv/docs/robots.txt")] == [200]
    assert [x.status for x in crawl.log("/rv/docs/after")] == [-5003]
    assert again.returncode == 0, again.explain()
    assert after == 1


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
def test_hosts_whose_robots_txt_redirect_to_each_other_are_crawled(
    tmp_path: Path, shared: bool
) -> None:
    # RFC 9309: a redirect loop is "unavailable", so there are no rules.
    with serve_faults() as server:
        profile = hosts_profile(
            tmp_path / "p.toml",
            server.port,
            "http://loopa.rv.test/rv/start",
            ["loopa.rv.test", "loopb.rv.test"],
        )
        # A shared worker waits up to 2 x timeout + 5 s for another worker's
        # answer before it fetches the target itself: kept short here.
        profile.write_text(profile.read_text().replace("timeout = 5", "timeout = 1"))
        crawl = crawl_hosts(tmp_path, profile, shared)
        asked = server.hits("/robots.txt")
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert {x.url for x in crawl.log_lines if x.status == 200} >= {
        "http://loopa.rv.test/rv/start",
        "http://loopa.rv.test/rv/secret",
    }
    assert asked <= 2 * 12


def test_links_to_the_site_with_its_name_in_unicode_are_in_scope(tmp_path: Path) -> None:
    # allowed_hosts holds the ASCII (punycode) form; pages may write either.
    with serve_faults() as server:
        host = "xn--bcher-kva.rv.test"
        profile = hosts_profile(tmp_path / "p.toml", server.port, f"http://{host}/rv/idn", [host])
        crawl = crawl_hosts(tmp_path, profile, shared=False)
        hits = {p: server.hits(p) for p in ("/rv/idn-unicode", "/rv/idn-punycode", "/rv/idn-upper")}
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert hits == {"/rv/idn-unicode": 1, "/rv/idn-punycode": 1, "/rv/idn-upper": 1}
    assert crawl.bad_log_lines == []


def test_a_robots_txt_that_starts_with_a_byte_order_mark_is_obeyed(tmp_path: Path) -> None:
    with serve_faults() as server:
        host = "bom.rv.test"
        profile = hosts_profile(tmp_path / "p.toml", server.port, f"http://{host}/rv/start", [host])
        crawl = crawl_hosts(tmp_path, profile, shared=False)
        secret = server.hits("/rv/secret")
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert secret == 0
    assert [x.notes for x in crawl.log_lines if x.path == "/rv/secret"] == [("robots",)]
