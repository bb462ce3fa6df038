"""`sunset replay` against real pywb on loopback, over a real crawl of the replica.

One crawl of a ~60-page replica is shared by this module and
test_replay_browser.py. The replica server is stopped before anything is
replayed: whatever pywb serves must come from the WARC files.
"""

from __future__ import annotations

import http.client
import http.server
import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from replay.serve import serving
from replica import generate, serve
from replica.generate import iter_jsonl

START_TIMEOUT = 120.0  # generous: a first run may still be installing pywb's venv
URL_LINE = re.compile(r"^(http://127\.0\.0\.1:(\d+))/([^/]+)/(\d{14})/(\S+)$")


# -- the shared crawl ------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaCrawl:
    site: Path
    run: Path
    access_log: Path
    truth: list[dict]  # ground-truth/pages.jsonl
    urls: dict[str, dict]  # ground-truth/urls.jsonl by URL
    captured: set[str]  # URLs in the crawl's index

    def requests_seen(self) -> int:
        return len(self.access_log.read_text().splitlines())

    def article(self) -> dict:
        """A captured article with an image, the test subject for replayed pages."""
        return next(
            p
            for p in self.truth
            if p["kind"] == "article"
            and p["url"] in self.captured
            and p["images"]
            and all(i in self.captured for i in p["images"])
        )

    def blob(self, url: str) -> bytes:
        sha1 = self.urls[url]["sha1"]
        return (self.site / "blobs" / sha1[:2] / sha1).read_bytes()


_CRAWLS: dict[Path, ReplicaCrawl] = {}


def replica_crawl(tmp_path_factory: pytest.TempPathFactory) -> ReplicaCrawl:
    """Generate, serve and crawl the replica once per test session."""
    root = tmp_path_factory.getbasetemp() / "replay-replica"
    if root in _CRAWLS:
        return _CRAWLS[root]
    root.mkdir()
    site = root / "site"
    generate(site, pages=60, seed=5, theme="protostar")
    run = root / "run"
    access_log = root / "access.jsonl"
    with serve(site, access_log=access_log) as srv:
        connect = [a for entry in srv.connect_to for a in ("--connect-to", entry)]
        result = sunset("crawl", "-p", "demo", "--out", str(run), "--name", "t", *connect)
    assert result.returncode == 0, result.stderr
    captured = {
        json.loads(line.split(" ", 2)[2])["url"]
        for line in (run / "indexes" / "index.cdxj").read_text().splitlines()
    }
    crawl = ReplicaCrawl(
        site=site,
        run=run,
        access_log=access_log,
        truth=list(iter_jsonl(site / "ground-truth" / "pages.jsonl")),
        urls={u["url"]: u for u in iter_jsonl(site / "ground-truth" / "urls.jsonl")},
        captured=captured,
    )
    _CRAWLS[root] = crawl
    return crawl


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> ReplicaCrawl:
    # pywb's own venv is made on first use (about a minute); ./dev makes it during
    # setup, but a bare pytest run must not spend that inside a timed replay start.
    from replay.tools import tool_bin

    tool_bin("pywb", "wayback")
    return replica_crawl(tmp_path_factory)


# -- helpers ---------------------------------------------------------------------------


def sunset(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args], capture_output=True, text=True, timeout=timeout
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# No proxy from the environment: every request here is for the local pywb.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)


def fetch(url: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    try:
        with OPENER.open(url, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def raw_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (urllib would normalise ../)."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


def page_text(html: bytes) -> str:
    return norm(BeautifulSoup(html, "lxml").get_text(" "))


def body_paragraph(page: dict) -> str:
    return next(b["text"] for b in page["main"] if b["type"] != "title" and len(b["text"]) > 40)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


@dataclass
class Sentinel:
    port: int
    hits: list[str]


@contextmanager
def counting_server() -> Iterator[Sentinel]:
    """A local web server that records every request: a live fetch would land here."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"LIVE WEB")

        def log_message(self, format: str, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield Sentinel(srv.server_address[1], hits)
    finally:
        srv.shutdown()
        srv.server_close()


@contextmanager
def replay_cli(archive: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run `sunset replay ARCHIVE --port 0` and yield it with the URL it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sunset", "replay", str(archive), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()
    try:
        try:
            line = lines.get(timeout=START_TIMEOUT).strip()
        except queue.Empty:
            pytest.fail("sunset replay printed no URL")
        assert line, (
            f"sunset replay exited: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
        )
        yield proc, line
    finally:
        # SIGTERM first, so a failed test still lets sunset stop pywb and clean up.
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()


# -- the end-to-end test ---------------------------------------------------------------


def test_replay_crawl_end_to_end(crawl: ReplicaCrawl) -> None:
    requests_before = crawl.requests_seen()
    before = snapshot(crawl.run)
    article = crawl.article()
    home = next(p for p in crawl.truth if p["kind"] == "home")
    redirect = next(
        u for u in crawl.urls.values() if u["kind"] == "redirect" and u["url"] in crawl.captured
    )
    with replay_cli(crawl.run) as (proc, url), counting_server() as sentinel:
        m = URL_LINE.match(url)
        assert m, url
        base, port, coll, ts, start = m[1], int(m[2]), m[3], m[4], m[5]
        assert start == home["url"]

        def replayed(target: str, mod: str = "mp_") -> str:
            return f"{base}/{coll}/{ts}{mod}/{target}"

        # The printed URL is pywb's framed view of the start page.
        status, _, body = fetch(url)
        assert status == 200
        assert b"replay_iframe" in body and start.encode() in body and ts.encode() in body

        # The home page and an article, with the text they had.
        status, headers, body = fetch(replayed(home["url"]))
        assert status == 200 and headers.get_content_type() == "text/html"
        assert norm(body_paragraph(home)) in page_text(body)
        status, headers, body = fetch(replayed(article["url"]))
        assert status == 200, article["url"]
        assert norm(body_paragraph(article)) in page_text(body)
        assert norm(article["title"]) in page_text(body)

        # Its stylesheet and image links point back into the replay, and answer there.
        soup = BeautifulSoup(body, "lxml")
        css_links = [el["href"] for el in soup.select('link[rel~="stylesheet"][href]')]
        img_links = [el["src"] for el in soup.select("img[src]")]
        assert css_links and img_links
        for link in css_links + img_links:
            assert link.startswith((f"/{coll}/", f"{base}/{coll}/")), link
        css_replayed = css_links[0] if css_links[0].startswith("http") else base + css_links[0]
        status, headers, _ = fetch(css_replayed)
        assert status == 200 and headers.get_content_type() == "text/css"
        css_url = css_replayed.split("_/", 1)[1]
        # id_ serves the archived bytes unrewritten: they must be the site's own.
        status, _, original = fetch(replayed(css_url, "id_"))
        assert status == 200
        assert original == crawl.blob(css_url)
        image = article["images"][0]
        status, headers, data = fetch(replayed(image, "im_"))
        assert status == 200 and headers.get_content_maintype() == "image"
        assert data == crawl.blob(image)

        # A legacy redirect replays as the redirect it was, into the replay.
        status, headers, _ = fetch(replayed(redirect["url"]))
        assert status == redirect["status"]
        assert headers["Location"].endswith(f"mp_/{redirect['location']}")
        assert headers["Location"].startswith(f"{base}/{coll}/")

        # Not in the archive: pywb's not-found page, never the live web. A URL on
        # a server that is up and listening must not reach it either.
        for missing in (
            home["url"] + "not-archived-page",
            f"http://127.0.0.1:{sentinel.port}/live-fetch-probe",
        ):
            # (The framed view, no modifier, is a page of pywb's own that always loads.)
            for mod in ("mp_", "id_", "im_", "js_"):
                status, _, body = fetch(replayed(missing, mod))
                assert status == 404, (missing, mod)
                assert b"LIVE WEB" not in body
        assert sentinel.hits == [], "pywb fetched from the live web"

        # Nothing outside the collection: no file from disk, through any route.
        for path in (
            "/static/../../../../../../etc/passwd",
            "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            f"/static/_/{coll}/../../../../../../etc/passwd",
            f"/{coll}/{ts}id_/file:///etc/passwd",
            f"/live/mp_/http://127.0.0.1:{sentinel.port}/",
        ):
            status, body = raw_get("127.0.0.1", port, path)
            assert status != 200 and b"root:" not in body, path
        assert sentinel.hits == []

        pywb = children(proc.pid)
        assert pywb and all(alive(p) for p in pywb)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in stderr
    assert not any(alive(p) for p in pywb), "pywb left running"
    assert not port_open(port)
    assert crawl.requests_seen() == requests_before, "the replica was asked during replay"
    assert snapshot(crawl.run) == before, "replay wrote into the crawl folder"


def test_sigterm_stops_pywb_and_frees_the_port(crawl: ReplicaCrawl) -> None:
    with replay_cli(crawl.run) as (proc, url):
        port = int(URL_LINE.match(url)[2])  # type: ignore[index]
        pywb = children(proc.pid)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert not any(alive(p) for p in pywb)
    assert not port_open(port)


def test_pywb_does_not_outlive_a_killed_sunset(crawl: ReplicaCrawl) -> None:
    with replay_cli(crawl.run) as (proc, url):
        port = int(URL_LINE.match(url)[2])  # type: ignore[index]
        pywb = children(proc.pid)
        assert pywb
        work = {Path(os.readlink(f"/proc/{p}/cwd")) for p in pywb}
        proc.kill()  # no chance to clean up: the kernel's parent-death signal must do it
        proc.wait()
        deadline = time.monotonic() + 15
        while (any(alive(p) for p in pywb) or port_open(port)) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not any(alive(p) for p in pywb)
    assert not port_open(port)
    for folder in work:  # left behind by the kill, by design
        shutil.rmtree(folder, ignore_errors=True)


# -- the context manager, WACZ files and hostile indexes --------------------------------


def make_wacz(crawl: ReplicaCrawl, out: Path, compression: int) -> Path:
    """A minimal WACZ-shaped zip of the crawl: WARCs, CDXJ index, pages."""
    with zipfile.ZipFile(out, "w") as zf:
        for warc in sorted((crawl.run / "warc").glob("*.warc.gz")):
            zf.write(warc, f"archive/{warc.name}", compress_type=compression)
        zf.write(crawl.run / "indexes" / "index.cdxj", "indexes/index.cdxj")
        header = json.dumps({"format": "json-pages-1.0", "id": "pages", "title": "All Pages"})
        pages = (crawl.run / "pages.jsonl").read_text()
        zf.writestr("pages/pages.jsonl", header + "\n" + pages, compress_type=zipfile.ZIP_DEFLATED)
    return out


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"]
)
def test_serving_a_wacz(crawl: ReplicaCrawl, tmp_path: Path, compression: int) -> None:
    wacz = make_wacz(crawl, tmp_path / "site-archive.wacz", compression)
    article = crawl.article()
    with serving(wacz) as running:
        assert running.coll == "site-archive"
        assert running.start_url == next(p["url"] for p in crawl.truth if p["kind"] == "home")
        status, _, body = fetch(running.replay_url(article["url"]))
        assert status == 200
        assert norm(body_paragraph(article)) in page_text(body)
        image = article["images"][0]
        status, _, data = fetch(running.replay_url(image, mod="id_"))
        assert status == 200 and data == crawl.blob(image)
        archive = list((running.work / "archive").iterdir())
        if compression == zipfile.ZIP_STORED:
            # Served from inside the .wacz: nothing unpacked.
            assert [p.name for p in archive] == ["archive.wacz"] and archive[0].is_symlink()
        work = running.work
    assert not work.exists()


def test_wacz_from_sunset_package(crawl: ReplicaCrawl, tmp_path: Path) -> None:
    if importlib.util.find_spec("replay.package") is None:
        pytest.skip("package not built yet")
    run = tmp_path / "run"  # package may write beside the crawl; keep the shared one as it is
    shutil.copytree(crawl.run, run)
    wacz = tmp_path / "t.wacz"
    result = sunset("package", str(run), "--out", str(wacz))
    assert result.returncode == 0, result.stderr
    home = next(p for p in crawl.truth if p["kind"] == "home")
    with replay_cli(wacz) as (proc, url):
        m = URL_LINE.match(url)
        assert m and m[5] == home["url"]
        status, _, body = fetch(f"{m[1]}/{m[3]}/{m[4]}mp_/{home['url']}")
        assert status == 200 and norm(body_paragraph(home)) in page_text(body)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_index_lines_pointing_outside_the_archive_are_not_served(
    crawl: ReplicaCrawl, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(crawl.run, run, symlinks=True)
    index = run / "indexes" / "index.cdxj"
    warc = next((run / "warc").glob("*.warc.gz")).name
    hostile = [
        ("secret", {"filename": "../../../../../../../../etc/passwd", "offset": "0"}),
        ("abs", {"filename": "/etc/passwd", "offset": "0"}),
        ("beyond", {"filename": warc, "offset": str(10**9)}),
    ]
    with open(index, "a") as fh:
        for name, fields in hostile:
            url = f"http://www.wiganboroughccg.nhs.uk/{name}"
            fields = {"url": url, "mime": "text/html", "status": "200", "length": "100", **fields}
            fh.write(f"uk,nhs,wiganboroughccg)/{name} 20200101000000 {json.dumps(fields)}\n")
    with serving(run) as running:
        text = "".join(p.read_text() for p in (running.work / "indexes").glob("*.cdxj"))
        assert "etc/passwd" not in text and str(10**9) not in text
        for name, _ in hostile:
            status, _, body = fetch(running.replay_url(f"http://www.wiganboroughccg.nhs.uk/{name}"))
            assert status == 404 and b"root:" not in body
        # The lines before them still replay.
        status, _, _ = fetch(running.replay_url(running.start_url or ""))
        assert status == 200


def test_crawl_without_an_index_is_indexed_by_pywb(crawl: ReplicaCrawl, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(crawl.run, run)
    (run / "indexes" / "index.cdxj").unlink()
    article = crawl.article()
    with serving(run) as running:
        assert (running.work / "indexes" / "pywb.cdxj").stat().st_size > 0
        status, _, body = fetch(running.replay_url(article["url"]))
        assert status == 200 and norm(body_paragraph(article)) in page_text(body)


# -- bad input -------------------------------------------------------------------------


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sunset: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_archives(tmp_path: Path) -> None:
    one_line_error(sunset("replay", str(tmp_path / "nowhere")), "does not exist")
    one_line_error(sunset("replay", str(tmp_path)), "not a crawl folder")
    (tmp_path / "warc").mkdir()
    one_line_error(sunset("replay", str(tmp_path)), "no WARC files")
    junk = tmp_path / "junk.wacz"
    junk.write_bytes(b"this is not a zip file\n" * 100)
    one_line_error(sunset("replay", str(junk)), "not a readable WACZ")
    empty = tmp_path / "empty.wacz"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("datapackage.json", "{}")
    one_line_error(sunset("replay", str(empty)), "no WARC files")


def test_damaged_wacz(crawl: ReplicaCrawl, tmp_path: Path) -> None:
    wacz = make_wacz(crawl, tmp_path / "d.wacz", zipfile.ZIP_DEFLATED)
    data = bytearray(wacz.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(64)  # inside the WARC member's deflate stream
    wacz.write_bytes(bytes(data))
    one_line_error(sunset("replay", str(wacz)), "damaged")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "::", "example.org"])
def test_non_loopback_hosts_are_refused(crawl: ReplicaCrawl, host: str) -> None:
    one_line_error(sunset("replay", str(crawl.run), "--host", host), "loopback")


def test_port_in_use(crawl: ReplicaCrawl) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(sunset("replay", str(crawl.run), "--port", str(port)), str(port))
