"""The fault server misbehaves exactly as intended, checked on the wire.

The crawl fault tests are only as good as their faults: a "reset" that is
really a clean close, or a "short body" that is complete, would let a broken
crawler pass. So each endpoint is checked here with raw sockets, which see
the bytes (and the RSTs) that a higher-level client would smooth over.
"""

from __future__ import annotations

import codecs
import gzip
import re
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.robotparser import RobotFileParser

import lxml.html
import pytest
import requests
from faultserver import (
    BAD_CHARSET_TYPE,
    CHUNKED_PARTS,
    ENDLESS_HEAD,
    GZIP_PLAIN,
    HUGE_HEAD,
    HUGE_SIZE,
    HUGE_TAIL,
    LINKED_PATHS,
    SHORT_BODY,
    SHORT_BODY_DECLARED,
    SHORT_BODY_SENT,
    UNLINKED_PATHS,
    FaultServer,
    accepts_gzip,
    serve_faults,
)

# Matches the crawl tests' profile: a fault that beats this timeout beats the crawler's.
CRAWL_TIMEOUT = 2.0


@dataclass
class RawResponse:
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.status_line.split(" ")[1])

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None


def send_request(
    server: FaultServer, path: str, headers: tuple[str, ...] = (), method: str = "GET"
) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    head = [f"{method} {path} HTTP/1.1", f"Host: {server.host}:{server.port}", *headers]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    return sock


def split_head(data: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, f"no end of headers in {data[:200]!r}"
    lines = head.decode("latin-1").split("\r\n")
    headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return lines[0], headers, body


def read_head(sock: socket.socket) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line and headers, plus whatever body bytes came with them."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed inside the headers: {data!r}"
        data += piece
    return split_head(data)


def fetch_raw(
    server: FaultServer, path: str, headers: tuple[str, ...] = (), method: str = "GET"
) -> RawResponse:
    """One exchange, read until the server closes the connection."""
    with send_request(server, path, headers, method) as sock:
        data = bytearray()
        while piece := sock.recv(65536):
            data += piece
    return RawResponse(*split_head(bytes(data)))


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with serve_faults() as running:
        yield running


# --------------------------------------------------------------------------
# Site shape


def test_index_links_every_fault_and_nothing_that_must_be_discovered(server: FaultServer) -> None:
    resp = fetch_raw(server, "/")
    assert resp.status == 200
    hrefs = re.findall(rb'<a href="([^"]+)"', resp.body)
    assert [h.decode() for h in hrefs] == list(LINKED_PATHS)
    for path in UNLINKED_PATHS:
        assert path.encode() not in resp.body


def test_robots_txt_allows_everything(server: FaultServer) -> None:
    resp = fetch_raw(server, "/robots.txt")
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/plain"
    robots = RobotFileParser()
    robots.parse(resp.body.decode().splitlines())
    for path in ("/", *LINKED_PATHS, *UNLINKED_PATHS):
        assert robots.can_fetch("sunset", server.url_for(path))


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/robots.txt",
        "/always-500",
        "/short-body",
        "/loop-a",
        "/loop-b",
        "/no-type",
        "/wrong-type",
        "/wrong-type-image",
        "/bad-charset",
        "/after-bad-charset",
        "/malformed",
        "/after-malformed",
        "/chunked",
        "/gzip",
        "/no-such-page",
    ],
)
def test_every_response_is_http11_with_connection_close(server: FaultServer, path: str) -> None:
    resp = fetch_raw(server, path)
    assert resp.status_line.startswith("HTTP/1.1 ")
    assert resp.header("Connection") == "close"


def test_unknown_path_is_404_and_garbage_is_400(server: FaultServer) -> None:
    assert fetch_raw(server, "/no-such-page").status == 404
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"this is not http\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def test_hits_count_requests_per_path_ignoring_the_query() -> None:
    with serve_faults() as srv:
        assert srv.hits("/no-type") == 0
        fetch_raw(srv, "/no-type")
        fetch_raw(srv, "/no-type?x=1")
        fetch_raw(srv, "/")
        assert srv.hits("/no-type") == 2
        assert srv.hits("/") == 1
        assert srv.hits("/reset") == 0


# --------------------------------------------------------------------------
# Status faults


def test_flaky_fails_twice_with_503_then_answers_200() -> None:
    with serve_faults() as srv:
        statuses = [fetch_raw(srv, "/flaky").status for _ in range(4)]
        assert statuses == [503, 503, 200, 200]
        assert srv.hits("/flaky") == 4
        assert b"<title>flaky</title>" in fetch_raw(srv, "/flaky").body


def test_always_500_never_recovers(server: FaultServer) -> None:
    for _ in range(4):
        resp = fetch_raw(server, "/always-500")
        assert resp.status == 500
        assert resp.header("Content-Length") == str(len(resp.body))


def test_redirect_loop_bounces_between_two_urls(server: FaultServer) -> None:
    a = fetch_raw(server, "/loop-a")
    b = fetch_raw(server, "/loop-b")
    assert (a.status, a.header("Location")) == (302, "/loop-b")
    assert (b.status, b.header("Location")) == (302, "/loop-a")
    with pytest.raises(requests.TooManyRedirects):
        requests.get(server.url_for("/loop-a"), timeout=10)


# --------------------------------------------------------------------------
# Connection faults


def test_slow_headers_sends_nothing_for_longer_than_the_crawl_timeout(
    server: FaultServer,
) -> None:
    with send_request(server, "/slow-headers") as sock:
        sock.settimeout(CRAWL_TIMEOUT + 0.5)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert time.monotonic() - started >= CRAWL_TIMEOUT + 0.5


def test_slow_headers_answers_once_the_wait_is_over() -> None:
    with serve_faults(slow_headers_seconds=0.5) as srv:
        started = time.monotonic()
        resp = fetch_raw(srv, "/slow-headers")
        assert time.monotonic() - started >= 0.5
        assert resp.status == 200


def test_reset_aborts_the_connection_with_rst(server: FaultServer) -> None:
    before = server.hits("/reset")
    with send_request(server, "/reset") as sock, pytest.raises(ConnectionResetError):
        # A clean close (FIN) would return b"" here instead of raising.
        sock.recv(1024)
    assert server.hits("/reset") == before + 1
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url_for("/reset"), timeout=10)


def test_short_body_declares_5000_bytes_sends_1000_and_closes_cleanly(
    server: FaultServer,
) -> None:
    resp = fetch_raw(server, "/short-body")  # a reset would raise here
    assert resp.status == 200
    assert resp.header("Content-Length") == str(SHORT_BODY_DECLARED)
    assert len(resp.body) == SHORT_BODY_SENT
    assert resp.body == SHORT_BODY[:SHORT_BODY_SENT]
    assert len(SHORT_BODY) == SHORT_BODY_DECLARED


def test_endless_trickles_without_length_until_the_client_leaves() -> None:
    with serve_faults() as srv:
        sock = send_request(srv, "/endless")
        status, headers, body = read_head(sock)
        names = {k.lower(): v for k, v in headers}
        assert status == "HTTP/1.1 200 OK"
        assert "content-length" not in names
        assert "transfer-encoding" not in names
        assert names["connection"] == "close"
        assert names["content-type"].startswith("text/html")

        deadline = time.monotonic() + 1.2
        sock.settimeout(0.5)
        while time.monotonic() < deadline:
            piece = sock.recv(4096)
            assert piece, "endless closed the connection"
            body += piece
        assert body.startswith(ENDLESS_HEAD)
        assert body.count(b"<p>tick ") >= 3
        assert srv.open_connections() == 1

        sock.close()
        # The next sends fail, and the handler stops rather than spinning on.
        assert wait_until(lambda: srv.open_connections() == 0, timeout=3)


def test_huge_sends_50mb_with_content_length_without_holding_it_in_memory() -> None:
    with serve_faults() as srv:
        tracemalloc.start()
        try:
            sock = send_request(srv, "/huge")
            status, headers, first = read_head(sock)
            names = {k.lower(): v for k, v in headers}
            received = len(first)
            start, tail = first[: len(HUGE_HEAD)], first[-64:]
            buf = bytearray(1 << 20)
            view = memoryview(buf)
            while n := sock.recv_into(buf):
                received += n
                # Keep only what the checks need, or the client would be the one hoarding.
                if len(start) < len(HUGE_HEAD):
                    start += bytes(view[: len(HUGE_HEAD) - len(start)])
                tail = (tail + bytes(view[max(0, n - 64) : n]))[-64:]
            sock.close()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert status == "HTTP/1.1 200 OK"
    assert names["content-type"].startswith("text/html")
    assert int(names["content-length"]) == HUGE_SIZE == 50_000_000
    assert received == HUGE_SIZE
    assert start == HUGE_HEAD
    assert tail.endswith(HUGE_TAIL)
    assert peak < 8 * 1000**2, f"peak Python allocations {peak} bytes while serving /huge"


def test_huge_stops_sending_when_the_client_leaves() -> None:
    with serve_faults() as srv:
        sock = send_request(srv, "/huge")
        read_head(sock)
        received = 0
        while received < 2_000_000:
            received += len(sock.recv(65536))
        # RST on close, as a crawler that hit its size limit might do.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        assert wait_until(lambda: srv.open_connections() == 0, timeout=3)


# --------------------------------------------------------------------------
# Content faults


def test_no_type_has_no_content_type_header(server: FaultServer) -> None:
    resp = fetch_raw(server, "/no-type")
    assert resp.status == 200
    assert resp.header("Content-Type") is None
    assert resp.body.startswith(b"<!DOCTYPE html>")


def test_wrong_type_is_a_png_labelled_html(server: FaultServer) -> None:
    resp = fetch_raw(server, "/wrong-type")
    assert resp.header("Content-Type") == "text/html"
    png = resp.body
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # Walk the chunks and check every CRC, so it is a real PNG, not just a signature.
    pos, kinds = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", png[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc
        if kind == b"IDAT":
            assert zlib.decompress(data) == b"\x00\xff\x00\x00"
        kinds.append(kind)
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_wrong_type_image_is_html_labelled_png(server: FaultServer) -> None:
    resp = fetch_raw(server, "/wrong-type-image")
    assert resp.header("Content-Type") == "image/png"
    assert resp.body.startswith(b"<!DOCTYPE html>")


def test_bad_charset_names_an_unknown_charset_over_invalid_bytes(server: FaultServer) -> None:
    resp = fetch_raw(server, "/bad-charset")
    assert resp.status == 200
    assert resp.header("Content-Type") == BAD_CHARSET_TYPE
    with pytest.raises(LookupError):
        codecs.lookup("x-no-such-charset")
    with pytest.raises(UnicodeDecodeError):
        resp.body.decode("utf-8")
    assert b"\xff\xfe" in resp.body
    # Not a byte order mark, which would (rightly) turn the page into UTF-16.
    assert not resp.body.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf"))
    # The link survives for a forgiving parser, so a crawler can be asked to find it.
    assert lxml.html.fromstring(resp.body).xpath("//a/@href") == ["/after-bad-charset"]
    assert fetch_raw(server, "/after-bad-charset").status == 200


def test_malformed_is_broken_but_a_browser_style_parser_finds_its_link(
    server: FaultServer,
) -> None:
    resp = fetch_raw(server, "/malformed")
    assert resp.status == 200
    body = resp.body
    assert b"\x00" in body
    assert b"<a href=/after-malformed>" in body  # unquoted attribute
    assert b"1 < 2" in body  # stray <
    assert body.rfind(b"<!--") > body.rfind(b"-->")  # unterminated comment
    assert b"</html>" not in body and b"</body>" not in body
    assert lxml.html.fromstring(body).xpath("//a/@href") == ["/after-malformed"]
    assert fetch_raw(server, "/after-malformed").status == 200


def test_chunked_sends_several_chunks(server: FaultServer) -> None:
    resp = fetch_raw(server, "/chunked")
    assert resp.status == 200
    assert resp.header("Transfer-Encoding") == "chunked"
    assert resp.header("Content-Length") is None
    # Decode the framing by hand; a library would hide whether it is right.
    rest, sizes, decoded = resp.body, [], b""
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        sizes.append(size)
        if size == 0:
            assert rest == b"\r\n"  # no trailers, then the end
            break
        decoded += rest[:size]
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    assert len(sizes) == len(CHUNKED_PARTS) + 1 >= 4
    assert decoded == b"".join(CHUNKED_PARTS)
    assert requests.get(server.url_for("/chunked"), timeout=10).content == decoded


@pytest.mark.parametrize(
    ("accept", "compressed"),
    [
        ("gzip, deflate", True),
        ("deflate, gzip;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("identity", False),
        (None, False),
    ],
)
def test_gzip_only_when_the_client_accepts_it(
    server: FaultServer, accept: str | None, compressed: bool
) -> None:
    headers = (f"Accept-Encoding: {accept}",) if accept is not None else ()
    resp = fetch_raw(server, "/gzip", headers)
    assert resp.status == 200
    assert resp.header("Content-Length") == str(len(resp.body))
    assert resp.header("Vary") == "Accept-Encoding"
    if compressed:
        assert resp.header("Content-Encoding") == "gzip"
        assert resp.body[:2] == b"\x1f\x8b"
        assert gzip.decompress(resp.body) == GZIP_PLAIN
    else:
        assert resp.header("Content-Encoding") is None
        assert resp.body == GZIP_PLAIN
    assert accepts_gzip(accept or "") is compressed


# --------------------------------------------------------------------------
# Lifecycle


def test_shutdown_is_prompt_and_leaves_nothing_listening_or_running() -> None:
    threads_before = set(threading.enumerate())
    with serve_faults() as srv:
        port = srv.port
        # Handlers that would otherwise run for seconds or for ever.
        busy = [send_request(srv, path) for path in ("/endless", "/slow-headers", "/huge")]
        assert wait_until(lambda: srv.open_connections() == 3)
        started = time.monotonic()
    assert time.monotonic() - started < 2
    for sock in busy:
        sock.close()
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
