"""Issue 14, found in review: hostile links, redirects and robots.txt files, and
a resume that decides as the crawl did.

Each check runs the real `sunset crawl` against tests/faultserver.py on
loopback and reads only what the crawl wrote and what the server was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from faultserver import RV_LOCATIONS, serve_faults
from test_crawl_faults import Crawl, LogLine, Run, read_crawl, run_sunset
from test_crawl_hostile import FAST, write_profile


@dataclass
class Resumed:
    first: Crawl
    again: Run
    lines: list[LogLine]  # what the resume added to crawl.log


def crawl_and_resume(work: Path, site: str, starts: list[str], crawl: str = FAST) -> Resumed:
    """A crawl run to its end, then resumed: the resume has nothing left to do."""
    profile = write_profile(work / "p.toml", site, starts, crawl)
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
