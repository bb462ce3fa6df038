"""`sunset transform` on crawls of pages that once broke it (issue 14, transform part).

Each crawl is a real `sunset crawl` of tests/faultserver.py on loopback; then
the real `sunset transform` (and its readers, `sunset redirects` and `sunset
report`) run as subprocesses, and every check reads only the files they wrote.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultserver import (
    T14_CASE_WORDS,
    T14_CLEAN_PAGES,
    T14_CLEAN_START,
    T14_LINKED,
    T14_START,
    T14_UNSAFE_LINKS,
    serve_faults,
)

SUBPROCESS_TIMEOUT = 180
# The cut the fault crawl is transformed with: the 3 MB page and the 180 MB
# gzip bomb go past it, every other page is far below it.
MAX_PAGE = 1_000_000
# Peak RSS of the whole transform of the fault crawl. Python, lxml and one
# page cut at MAX_PAGE take well under this; inflating the bomb took over 1 GB.
PEAK_RSS_BOUND = 300 * 2**20

PROFILE = """
[site]
name = "transform faults"
start_urls = ["{start}"]
allowed_hosts = ["127.0.0.1"]

[crawl]
timeout = 5
retries = 0
max_body_size = "10MB"
delay = 0
autothrottle = false
concurrency_per_host = 4
obey_robots = true

[successor]
base_url = "http://new.example/"
"""

# Runs `sunset` in this process and writes its peak RSS (bytes) to the file
# named first: the transform of a small crawl extracts in its own process.
PEAK_RSS_LAUNCHER = """
import resource, runpy, sys
out, sys.argv = sys.argv[1], ["sunset", *sys.argv[2:]]
try:
    runpy.run_module("sunset", run_name="__main__")
finally:
    with open(out, "w") as fh:
        fh.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit {self.returncode}; stderr:\n{self.stderr[-3000:]}"


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}


def sunset(*args: str, cwd: Path) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "sunset", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env(),
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def crawl(work: Path, start_path: str) -> tuple[Path, str]:
    """A real crawl of the fault server from `start_path`; (crawl folder, site root)."""
    out = work / "crawl"
    with serve_faults() as server:
        profile = work / "profile.toml"
        profile.write_text(PROFILE.format(start=server.url_for(start_path)), encoding="utf-8")
        run = sunset("crawl", "--profile", str(profile), "--out", str(out), cwd=work)
        root = server.url.rstrip("/")
    assert run.returncode == 0, run.explain()
    return out, root


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def assert_one_line_error(run: Run, *words: str) -> None:
    assert run.returncode != 0, run.explain()
    assert "Traceback" not in run.stderr, run.explain()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sunset: error: "), run.explain()
    for word in words:
        assert word in lines[0], run.explain()


@dataclass
class Transformed:
    crawl: Path
    root: str
    run: Run
    peak_rss: int

    @property
    def content(self) -> Path:
        return self.crawl / "content"

    def records(self) -> dict[str, dict[str, Any]]:
        """pages.jsonl by the path of each record's URL."""
        out = {}
        for rec in read_jsonl(self.content / "pages.jsonl"):
            assert rec["url"].startswith(self.root), rec["url"]
            out[rec["url"][len(self.root) :]] = rec
        return out

    def log(self) -> list[dict[str, str]]:
        return read_jsonl(self.content / "transform.log")

    def files(self, rec: dict[str, Any]) -> dict[str, str]:
        return {k: (self.content / v).read_text(encoding="utf-8") for k, v in rec["files"].items()}

    def line_of(self, path: str) -> str:
        url = self.root + path
        lines = (self.content / "pages.jsonl").read_text(encoding="utf-8").splitlines()
        return next(line for line in lines if json.loads(line)["url"] == url)


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Transformed:
    work = tmp_path_factory.mktemp("transform-faults")
    crawl_dir, root = crawl(work, T14_START)
    rss_file = work / "peak-rss"
    args = ["transform", str(crawl_dir), "--max-page-size", str(MAX_PAGE)]
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_LAUNCHER, str(rss_file), *args],
        capture_output=True,
        text=True,
        cwd=work,
        env=_env(),
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    return Transformed(crawl_dir, root, run, int(rss_file.read_text()))


def test_every_fault_page_becomes_a_page_and_the_run_exits_0(faults: Transformed) -> None:
    assert "Traceback" not in faults.run.stderr, faults.run.explain()
    assert faults.run.returncode == 0, faults.run.explain()
    written = set(faults.records())
    assert written == {T14_START, *T14_LINKED}, faults.run.explain()
    summary = json.loads((faults.content / "transform.json").read_text())
    assert summary["skipped"] == 0 and summary["complete"] is True
    assert [e for e in faults.log() if e["level"] == "skip"] == []


def test_a_bad_href_drops_that_link_not_the_page(faults: Transformed) -> None:
    """Item 11: `http://[::1/bad` or a control character raised and lost the run."""
    rec = faults.records()["/t14/bad-href"]
    assert "Bad href page survives with its text." in rec["text"]
    for text in ("broken IPv6 link", "control entity link", "raw control link", "NFKC link"):
        assert text in rec["text"]
    assert faults.root + "/t14/plain" in [link["url"] for link in rec["links"]]
    files = faults.files(rec)
    assert "[::1" not in json.dumps(rec) and "[::1" not in files["md"]
    assert "[::1" not in files["html"] and "\\u0001" not in files["json"]
    assert "[a good link](" + faults.root + "/t14/plain)" in files["md"]


# What an unsafe URL can look like once a browser or a Markdown renderer has
# read it: entities decoded, case folded, whitespace and controls dropped.
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")
UNSAFE = ("javascript:", "vbscript:", "data:", "alert(", "alert%28", "msgbox")


def _as_read(text: str) -> str:
    for _ in range(2):  # twice: "&amp;#106;" in a JSON string is still one entity deep
        text = html.unescape(text)
    text = text.replace("\\t", "").replace("\\n", "").replace("\\u0001", "")
    return _INVISIBLE.sub("", text).lower()


def test_unsafe_url_schemes_are_in_no_output_format(faults: Transformed) -> None:
    """Item 13: .md kept javascript:, vbscript: and data: links and images; JSON listed them."""
    rec = faults.records()["/t14/unsafe"]
    outputs = {**faults.files(rec), "pages.jsonl": faults.line_of("/t14/unsafe")}
    for name, text in outputs.items():
        seen = _as_read(text)
        for bad in UNSAFE:
            assert bad not in seen, (name, bad, text)
    # The links go; what they said stays.
    for _, words in T14_UNSAFE_LINKS:
        assert words in rec["text"], words
    md = outputs["md"]
    assert "[mail us](mailto:webmaster@example.test)" in md
    assert f"![fine image]({faults.root}/t14/pic.png)" in md
    assert [i["url"] for i in rec["images"]] == [faults.root + "/t14/pic.png"]
    assert [link["url"] for link in rec["links"]] == [faults.root + "/t14/plain"]
    # And nowhere else in the run either.
    for path in [faults.content / "pages.jsonl", *(faults.content / "pages").iterdir()]:
        seen = _as_read(path.read_text(encoding="utf-8"))
        assert "javascript:" not in seen and "vbscript:" not in seen, path


def test_a_nul_byte_and_stacked_gzip_are_pages(faults: Transformed) -> None:
    """Item 14: a NUL byte, or Content-Encoding: gzip, gzip, made a page "binary"."""
    records = faults.records()
    nul = records["/t14/nul"]
    assert "Before the NUL" in nul["text"] and "after the NUL, the page goes on." in nul["text"]
    assert "\x00" not in faults.line_of("/t14/nul")
    assert "Twice compressed text is still text." in records["/t14/double-gzip"]["text"]


def _cut_notes(faults: Transformed, path: str) -> list[dict[str, str]]:
    url = faults.root + path
    return [e for e in faults.log() if e["url"] == url and e["reason"].startswith("cut:")]


def test_a_page_past_the_size_limit_is_cut_and_logged(faults: Transformed) -> None:
    """Item 12: a 46 MB page took 4.4 GB; now a page is cut at --max-page-size."""
    rec = faults.records()["/t14/big"]
    assert "The first words of the big page." in rec["text"]
    assert "The last words of the big page." not in rec["text"]
    assert 0.8 * MAX_PAGE < len(rec["text"]) <= MAX_PAGE
    notes = _cut_notes(faults, "/t14/big")
    assert [n["level"] for n in notes] == ["note"], faults.log()
    assert str(MAX_PAGE) in notes[0]["reason"] + notes[0]["detail"]
    assert any(n.startswith("cut:") for n in rec["notes"])


def test_a_gzip_bomb_is_cut_and_memory_stays_bounded(faults: Transformed) -> None:
    """Item 12: a small gzip body that inflated hugely took 2.1 GB."""
    rec = faults.records()["/t14/bomb"]
    assert "The start of the gzip bomb page." in rec["text"]
    assert [n["level"] for n in _cut_notes(faults, "/t14/bomb")] == ["note"], faults.log()
    assert faults.peak_rss < PEAK_RSS_BOUND, f"peak RSS {faults.peak_rss / 2**20:.0f} MiB"


def test_case_distinct_paths_are_distinct_pages(faults: Transformed) -> None:
    """Item 17: /weird/Case and /weird/case with different bodies became one page."""
    records = faults.records()
    upper, lower = records["/t14/weird/Case"], records["/t14/weird/case"]
    assert T14_CASE_WORDS["Case"] in upper["text"] and "pears" not in upper["text"]
    assert T14_CASE_WORDS["case"] in lower["text"] and "apples" not in lower["text"]
    assert upper["legacy_urls"] == [faults.root + "/t14/weird/Case"]
    assert lower["legacy_urls"] == [faults.root + "/t14/weird/case"]
    # File names that a case-blind file system keeps apart too.
    assert upper["id"].lower() != lower["id"].lower()
    names = [p.name.lower() for p in (faults.content / "pages").iterdir()]
    assert len(names) == len(set(names))
    assert "apples" in faults.files(upper)["md"] and "pears" in faults.files(lower)["md"]


# --------------------------------------------------------------------------
# A clean crawl, and an unfinished transform of it


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("transform-clean")
    return crawl(work, T14_CLEAN_START)


def test_a_clean_crawl_transforms_with_exit_0(clean: tuple[Path, str]) -> None:
    """Item 15: robots.txt counted as a skipped HTML capture, so every run exited 1."""
    crawl_dir, root = clean
    run = sunset("transform", str(crawl_dir), cwd=crawl_dir.parent)
    assert run.returncode == 0, run.explain()
    summary = json.loads((crawl_dir / "content" / "transform.json").read_text())
    assert summary["skipped"] == 0 and summary["complete"] is True
    log = read_jsonl(crawl_dir / "content" / "transform.log")
    assert [e for e in log if e["level"] == "skip"] == []
    robots = [e for e in log if e["url"] == root + "/robots.txt"]
    assert [e["level"] for e in robots] == ["note"]
    urls = {rec["url"] for rec in read_jsonl(crawl_dir / "content" / "pages.jsonl")}
    assert {root + f"/t14/clean/{n}" for n in T14_CLEAN_PAGES} <= urls


def _new_site_csv(folder: Path) -> Path:
    path = folder / "new.csv"
    path.write_text("url,title\nhttp://new.example/,Home\n", encoding="utf-8")
    return path


def _killed_mid_run(crawl_dir: Path) -> None:
    """Start `sunset transform` and SIGKILL it while it extracts the slow page."""
    pages = crawl_dir / "content" / "pages"
    before_slow = pages / f"t14-clean-{T14_CLEAN_PAGES[-1]}.json"
    # The folder holds a finished run's pages (copied with their times):
    # wait for this run's own.
    started = time.time_ns()

    def written() -> bool:
        with contextlib.suppress(OSError):
            return before_slow.stat().st_mtime_ns > started
        return False

    proc = subprocess.Popen(
        [sys.executable, "-m", "sunset", "transform", str(crawl_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not written() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "transform ended before it could be interrupted"
        assert written()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


def test_readers_refuse_an_unfinished_transform(clean: tuple[Path, str], tmp_path: Path) -> None:
    """Item 16: after a crash, `redirects` silently used a partial pages.jsonl."""
    crawl_dir, _ = clean
    done = tmp_path / "done"
    shutil.copytree(crawl_dir, done, ignore=shutil.ignore_patterns("redirects", "report.html"))
    run = sunset("transform", str(done), cwd=tmp_path)
    assert run.returncode == 0, run.explain()
    new_csv = _new_site_csv(tmp_path)
    # A finished transform is read as before.
    run = sunset("redirects", str(done), "--new-csv", str(new_csv), cwd=tmp_path)
    assert run.returncode == 0, run.explain()
    run = sunset("report", str(done), cwd=tmp_path)
    assert run.returncode == 0, run.explain()

    cut = tmp_path / "cut"
    shutil.copytree(done, cut, ignore=shutil.ignore_patterns("redirects", "report.html"))
    _killed_mid_run(cut)
    assert (cut / "content" / "pages.jsonl").exists()
    assert json.loads((cut / "content" / "transform.json").read_text())["complete"] is False
    for args in (
        ["redirects", str(cut), "--new-csv", str(new_csv)],
        ["redirects", str(done), "--new-crawl", str(cut), "--out", str(tmp_path / "r2")],
        ["report", str(cut)],
    ):
        assert_one_line_error(sunset(*args, cwd=tmp_path), "unfinished", "transform")
    assert not (cut / "redirects").exists()
    assert not (cut / "report.html").exists()
