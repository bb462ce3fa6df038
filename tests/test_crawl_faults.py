"""`sunset crawl` against a server that misbehaves on purpose (issue 3, faults and bad input).

One real crawl of tests/faultserver.py, run as a subprocess the way a user
runs it; every check then reads only what the crawl wrote (crawl.log and the
WARC files, as crawler/CONTRACT.md describes them), never the crawler's
internals. The bad-input tests at the end each run their own short command.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from faultserver import (
    BAD_CHARSET_BODY,
    CHUNKED_PARTS,
    ENDLESS_HEAD,
    GZIP_PLAIN,
    HTML_AS_PNG_BODY,
    HUGE_HEAD,
    MALFORMED_BODY,
    NO_TYPE_BODY,
    PNG_BODY,
    SHORT_BODY,
    SHORT_BODY_DECLARED,
    SHORT_BODY_SENT,
    SLOW_HEADERS_SECONDS,
    serve_faults,
)
from warcio.archiveiterator import ArchiveIterator

# The profile's [crawl] settings; the checks below are derived from them.
TIMEOUT = 2
RETRIES = 2
ATTEMPTS = RETRIES + 1
MAX_BODY = 10 * 1000**2  # "10MB": the profile counts MB in decimal
PROFILE_CRAWL = f"""
[crawl]
timeout = {TIMEOUT}
retries = {RETRIES}
max_body_size = "10MB"
delay = 0
autothrottle = false
concurrency_per_host = 4
obey_robots = true
"""

SUBPROCESS_TIMEOUT = 120  # a hung crawler is killed here and fails the tests
# Worst case is ATTEMPTS x TIMEOUT for each slow fault, fetched in parallel,
# plus interpreter start-up: a crawl that takes longer is stuck somewhere.
BOUNDED_SECONDS = 60

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


# --------------------------------------------------------------------------
# Running the command


@dataclass
class Run:
    returncode: int | None  # None: killed after SUBPROCESS_TIMEOUT
    stdout: str
    stderr: str
    elapsed: float

    def explain(self) -> str:
        return f"exit {self.returncode} after {self.elapsed:.1f}s; stderr:\n{self.stderr[-3000:]}"


def _text(data: bytes | str | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def run_sunset(*args: str, cwd: Path, timeout: float = SUBPROCESS_TIMEOUT) -> Run:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sunset", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # What a killed crawler printed comes back as bytes even with text=True.
        return Run(None, _text(exc.stdout), _text(exc.stderr), time.monotonic() - started)
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def write_profile(path: Path, start_url: str) -> Path:
    host = urlsplit(start_url).hostname
    path.write_text(
        f'[site]\nname = "fault server"\nstart_urls = ["{start_url}"]\n'
        f'allowed_hosts = ["{host}"]\n{PROFILE_CRAWL}',
        encoding="utf-8",
    )
    return path


def assert_one_line_error(run: Run) -> None:
    assert "Traceback" not in run.stderr, run.explain()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.explain()
    assert lines[0].startswith("sunset: error: "), run.explain()


# --------------------------------------------------------------------------
# Reading what the crawl wrote


@dataclass
class LogLine:
    """One crawl.log line, field by field as crawler/CONTRACT.md numbers them."""

    raw: str
    ts: str
    status: int
    size: str
    url: str
    hops: str
    referrer: str
    mime: str
    duration: int
    digest: str
    notes: tuple[str, ...]

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"


def parse_log_line(line: str) -> LogLine | None:
    # Heritrix-style: runs of spaces (the status is right-aligned), no field holds one.
    fields = line.split()
    if len(fields) != 10:
        return None
    try:
        status, duration = int(fields[1]), int(fields[7])
    except ValueError:
        return None
    notes = () if fields[9] == "-" else tuple(fields[9].split(","))
    return LogLine(line, fields[0], status, fields[2], *fields[3:7], duration, fields[8], notes)


@dataclass
class Record:
    """A WARC record with its block read whole (the biggest is about MAX_BODY)."""

    file: Path
    warc_headers: list[tuple[str, str]]
    block: bytes

    def warc(self, name: str) -> str | None:
        for key, value in self.warc_headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def type(self) -> str:
        return self.warc("WARC-Type") or ""

    @property
    def path(self) -> str:
        return urlsplit(self.warc("WARC-Target-URI") or "").path or "/"

    def _split(self) -> tuple[bytes, bytes]:
        head, sep, payload = self.block.partition(b"\r\n\r\n")
        return (head, payload) if sep else (b"", self.block)

    @property
    def http_status(self) -> int | None:
        head = self._split()[0]
        if not head.startswith(b"HTTP/"):
            return None
        return int(head.split(b"\r\n", 1)[0].split(b" ")[1])

    def http(self, name: str) -> str | None:
        """An HTTP header of the stored response, exactly as sent."""
        for line in self._split()[0].split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None

    @property
    def payload(self) -> bytes:
        """The body bytes as transmitted (chunk framing and compression included)."""
        return self._split()[1]


@dataclass
class Crawl:
    run: Run
    out: Path
    site: str  # scheme://host:port of the fault server
    log_lines: list[LogLine] = field(default_factory=list)
    bad_log_lines: list[str] = field(default_factory=list)
    warc_files: list[Path] = field(default_factory=list)
    records: list[Record] = field(default_factory=list)
    warc_errors: list[str] = field(default_factory=list)

    def log(self, path: str) -> list[LogLine]:
        """Attempts for one path, oldest first (timestamps sort as text)."""
        return sorted((x for x in self.log_lines if x.path == path), key=lambda x: x.ts)

    def responses(self, path: str) -> list[Record]:
        return [r for r in self.records if r.type == "response" and r.path == path]

    def response(self, path: str, status: int = 200) -> Record:
        found = [r for r in self.responses(path) if r.http_status == status]
        assert found, (
            f"no {status} response record for {path}; statuses seen: "
            f"{[r.http_status for r in self.responses(path)]}; {self.run.explain()}"
        )
        return found[-1]


def read_crawl(run: Run, out: Path, site: str) -> Crawl:
    crawl = Crawl(run, out, site)
    log = out / "crawl.log"
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            parsed = parse_log_line(line)
            if parsed is None:
                crawl.bad_log_lines.append(line)
            else:
                crawl.log_lines.append(parsed)
    crawl.warc_files = sorted((out / "warc").glob("*.warc.gz"))
    for path in crawl.warc_files:
        try:
            with path.open("rb") as stream:
                # no_record_parse keeps the HTTP head inside the block, so the
                # block digest can be recomputed over exactly what was stored.
                for rec in ArchiveIterator(stream, no_record_parse=True):
                    crawl.records.append(
                        Record(path, list(rec.rec_headers.headers), rec.raw_stream.read())
                    )
        except Exception as exc:  # reported by a test, so the others still run
            crawl.warc_errors.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return crawl


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def dechunk(data: bytes) -> bytes:
    out, rest = b"", data
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        assert sep, "chunked body ends without its last chunk"
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out += rest[:size]
        assert rest[size : size + 2] == b"\r\n", "chunk not followed by CRLF"
        rest = rest[size + 2 :]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Crawl:
    work = tmp_path_factory.mktemp("crawl-faults")
    out = work / "crawl"
    with serve_faults() as server:
        profile = write_profile(work / "faults.toml", server.url)
        run = run_sunset("crawl", "--profile", str(profile), "--out", str(out), cwd=work)
    return read_crawl(run, out, server.url.rstrip("/"))


# --------------------------------------------------------------------------
# The crawl as a whole


def test_crawl_exits_0_in_bounded_time(crawl: Crawl) -> None:
    assert crawl.run.returncode == 0, crawl.run.explain()
    assert crawl.run.elapsed < BOUNDED_SECONDS, crawl.run.explain()
    assert (crawl.out / "crawl.log").is_file()
    assert crawl.warc_files, "no WARC files written"
    assert not list((crawl.out / "warc").glob("*.open")), "WARC files left open"


def test_crawl_log_lines_follow_the_contract(crawl: Crawl) -> None:
    assert crawl.log_lines, crawl.run.explain()
    assert crawl.bad_log_lines == []
    for line in crawl.log_lines:
        assert TIMESTAMP_RE.match(line.ts), line.raw
        assert line.size == "-" or line.size.isdigit(), line.raw
        assert urlsplit(line.url).scheme == "http", line.raw
        assert line.hops == "-" or re.fullmatch(r"[LERSP]+", line.hops), line.raw
        assert line.mime == "-" or ";" not in line.mime, line.raw
        assert line.duration >= 0, line.raw


def test_every_fetch_goes_to_the_crawled_host_and_port(crawl: Crawl) -> None:
    # robots.txt and sitemap.xml included: they are derived URLs, easy to get wrong.
    assert crawl.log_lines, crawl.run.explain()
    wrong = [x.raw for x in crawl.log_lines if not x.url.startswith(crawl.site + "/")]
    assert wrong == []


def test_robots_txt_is_fetched_first_as_a_prerequisite(crawl: Crawl) -> None:
    lines = crawl.log("/robots.txt")
    assert [(x.status, x.hops) for x in lines] == [(200, "P")], [x.raw for x in lines]
    first_page = min(x.ts for x in crawl.log_lines if x.path != "/robots.txt")
    assert lines[0].ts <= first_page


def test_warcio_check_passes_on_every_warc_file(crawl: Crawl) -> None:
    assert crawl.warc_files, crawl.run.explain()
    # warcio has no __main__ module, so call its CLI entry point directly.
    check = subprocess.run(
        [sys.executable, "-c", "from warcio.cli import main; main()", "check", "-v"]
        + [str(p) for p in crawl.warc_files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]


def test_warc_files_read_cleanly(crawl: Crawl) -> None:
    assert crawl.warc_files, crawl.run.explain()
    assert crawl.warc_errors == []
    assert crawl.records[0].type == "warcinfo"


def test_every_block_digest_is_correct(crawl: Crawl) -> None:
    checked = 0
    for rec in crawl.records:
        digest = rec.warc("WARC-Block-Digest")
        if rec.type in ("request", "response"):
            assert digest, f"{rec.type} for {rec.path} has no WARC-Block-Digest"
        if digest:
            assert digest == sha1_b32(rec.block), f"{rec.type} {rec.path} in {rec.file.name}"
            checked += 1
    assert checked, crawl.run.explain()


def test_every_response_payload_digest_covers_the_body_as_transmitted(crawl: Crawl) -> None:
    responses = [r for r in crawl.records if r.type == "response"]
    assert responses, crawl.run.explain()
    for rec in responses:
        assert rec.warc("WARC-Payload-Digest") == sha1_b32(rec.payload), rec.path


# --------------------------------------------------------------------------
# One fault each


def test_flaky_503s_are_retried_until_the_200(crawl: Crawl) -> None:
    statuses = [x.status for x in crawl.log("/flaky")]
    assert statuses == [503, 503, 200], crawl.run.explain()
    assert b"<title>flaky</title>" in crawl.response("/flaky").payload


def test_always_500_is_logged_as_500_after_the_retries(crawl: Crawl) -> None:
    statuses = [x.status for x in crawl.log("/always-500")]
    assert statuses == [500] * ATTEMPTS, crawl.run.explain()


def test_slow_headers_is_logged_as_a_timeout(crawl: Crawl) -> None:
    lines = crawl.log("/slow-headers")
    assert lines, crawl.run.explain()
    assert 1 <= len(lines) <= ATTEMPTS
    assert [x.status for x in lines] == [-4] * len(lines), [x.raw for x in lines]
    assert not crawl.responses("/slow-headers")


def test_a_timed_out_attempt_is_logged_with_its_duration(crawl: Crawl) -> None:
    lines = crawl.log("/slow-headers")
    assert lines, crawl.run.explain()
    for line in lines:
        # Field 8: gave up at about the timeout, before the server's late answer.
        assert TIMEOUT * 1000 * 0.5 <= line.duration < SLOW_HEADERS_SECONDS * 1000, line.raw


def test_reset_is_logged_as_a_lost_connection_after_the_retries(crawl: Crawl) -> None:
    lines = crawl.log("/reset")
    assert [x.status in (-3, -7) for x in lines] == [True] * ATTEMPTS, [x.raw for x in lines]


def test_short_body_is_kept_and_marked_disconnect(crawl: Crawl) -> None:
    records = [r for r in crawl.responses("/short-body") if r.warc("WARC-Truncated")]
    assert records, crawl.run.explain()
    for rec in records:
        assert rec.warc("WARC-Truncated") == "disconnect"
        assert rec.http("Content-Length") == str(SHORT_BODY_DECLARED)
        assert rec.payload == SHORT_BODY[:SHORT_BODY_SENT]


def test_endless_body_is_cut_at_the_timeout_and_marked_time(crawl: Crawl) -> None:
    records = crawl.responses("/endless")
    assert records, crawl.run.explain()
    assert any(r.warc("WARC-Truncated") == "time" for r in records), [
        r.warc_headers for r in records
    ]
    for rec in records:
        assert rec.http_status == 200
        assert rec.http("Content-Length") is None
        assert rec.payload.startswith(ENDLESS_HEAD)


def test_redirect_loop_ends_and_each_hop_is_its_own_record(crawl: Crawl) -> None:
    a = crawl.response("/loop-a", 302)
    b = crawl.response("/loop-b", 302)
    assert a.http("Location") == "/loop-b"
    assert b.http("Location") == "/loop-a"
    # Each URL fetched once (a retry or two at most), not bounced between for ever.
    assert 1 <= len(crawl.log("/loop-a")) <= ATTEMPTS
    assert 1 <= len(crawl.log("/loop-b")) <= ATTEMPTS


def test_a_redirect_target_is_logged_as_found_by_redirect(crawl: Crawl) -> None:
    lines = crawl.log("/loop-b")
    assert lines, crawl.run.explain()
    for line in lines:
        # /loop-b is linked from nowhere: only /loop-a's redirect can have found it.
        assert line.hops.endswith("R"), line.raw
        assert urlsplit(line.referrer).path == "/loop-a", line.raw


def test_huge_is_cut_at_the_size_limit_and_marked_length(crawl: Crawl) -> None:
    records = [r for r in crawl.responses("/huge") if r.warc("WARC-Truncated")]
    assert records, crawl.run.explain()
    for rec in records:
        assert rec.warc("WARC-Truncated") == "length"
        assert rec.http("Content-Length") == "50000000"  # the header as received
        head_size = len(rec.block) - len(rec.payload)
        assert len(rec.block) <= MAX_BODY + head_size
        assert 0 < len(rec.payload) <= MAX_BODY
        assert rec.payload.startswith(HUGE_HEAD)


@pytest.mark.parametrize(
    ("path", "body", "mime"),
    [
        pytest.param("/no-type", NO_TYPE_BODY, "-", id="no-type"),
        pytest.param("/wrong-type", PNG_BODY, "text/html", id="wrong-type"),
        pytest.param("/wrong-type-image", HTML_AS_PNG_BODY, "image/png", id="wrong-type-image"),
        pytest.param("/bad-charset", BAD_CHARSET_BODY, "text/html", id="bad-charset"),
        pytest.param("/malformed", MALFORMED_BODY, "text/html", id="malformed"),
    ],
)
def test_odd_content_is_captured_byte_for_byte(
    crawl: Crawl, path: str, body: bytes, mime: str
) -> None:
    assert crawl.response(path).payload == body
    # The log's MIME field is the Content-Type without parameters, "-" when absent.
    assert [x.mime for x in crawl.log(path) if x.status == 200] == [mime]


@pytest.mark.parametrize(
    ("path", "found_on"),
    [("/after-bad-charset", "/bad-charset"), ("/after-malformed", "/malformed")],
    ids=["bad-charset", "malformed"],
)
def test_links_in_broken_pages_are_found_and_followed(
    crawl: Crawl, path: str, found_on: str
) -> None:
    assert b"<title>" in crawl.response(path).payload
    lines = crawl.log(path)
    assert lines, crawl.run.explain()
    for line in lines:
        assert urlsplit(line.referrer).path == found_on, line.raw
        assert line.hops.endswith("L"), line.raw


def test_chunked_is_stored_as_sent_and_its_payload_digest_checks_out(crawl: Crawl) -> None:
    rec = crawl.response("/chunked")
    assert (rec.http("Transfer-Encoding") or "").lower() == "chunked"
    assert dechunk(rec.payload) == b"".join(CHUNKED_PARTS)
    assert rec.warc("WARC-Payload-Digest") == sha1_b32(rec.payload)


def test_gzip_is_stored_still_compressed(crawl: Crawl) -> None:
    rec = crawl.response("/gzip")
    assert rec.http("Content-Encoding") == "gzip"
    assert rec.payload[:2] == b"\x1f\x8b"
    assert gzip.decompress(rec.payload) == GZIP_PLAIN


# --------------------------------------------------------------------------
# Bad input: each a short command of its own


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Holding the bind keeps any other process off the port during the test.
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_unreachable_start_url_exits_1_with_one_line(tmp_path: Path, closed_port: int) -> None:
    profile = write_profile(tmp_path / "dead.toml", f"http://127.0.0.1:{closed_port}/")
    out = tmp_path / "crawl"
    run = run_sunset("crawl", "--profile", str(profile), "--out", str(out), cwd=tmp_path)
    # CONTRACT.md: 1 when the crawl captured nothing, e.g. every start URL unreachable.
    assert run.returncode == 1, run.explain()
    assert_one_line_error(run)
    # "Everything written so far stays valid": at least, no half-written WARC.
    assert not list(out.glob("warc/*.open"))


def test_output_folder_under_a_regular_file_exits_2_with_one_line(tmp_path: Path) -> None:
    # chmod cannot stop root (the tests may run as root); a file as parent can.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    with serve_faults() as server:
        profile = write_profile(tmp_path / "faults.toml", server.url)
        run = run_sunset(
            "crawl", "--profile", str(profile), "--out", str(blocker / "crawl"), cwd=tmp_path
        )
        fetched = server.hits("/") + server.hits("/robots.txt")
    assert run.returncode == 2, run.explain()
    assert_one_line_error(run)
    assert blocker.read_text() == "not a folder\n"
    assert fetched == 0, "bad input should be refused before touching the site"


def test_nonsense_connect_to_exits_2_with_one_line(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "faults.toml", "http://127.0.0.1:9/")
    out = tmp_path / "crawl"
    run = run_sunset(
        "crawl",
        "--profile",
        str(profile),
        "--out",
        str(out),
        "--connect-to",
        "nonsense",
        cwd=tmp_path,
    )
    assert run.returncode == 2, run.explain()
    assert_one_line_error(run)
    assert not out.exists()
