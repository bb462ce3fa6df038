"""A loopback HTTP server that misbehaves on purpose, for the crawler's fault tests.

Written on raw sockets (socketserver plus our own request parsing) because
http.server always frames responses correctly: it cannot send a body shorter
than its Content-Length, reset a connection, stall before the status line or
trickle a body forever. Every fault here needs that byte-level control.

Every response is HTTP/1.1 with ``Connection: close``, so one connection
carries exactly one exchange and a crawler cannot lean on keep-alive.

Usage::

    with serve_faults() as server:
        crawl(server.url)
        assert server.hits("/flaky") == 3
"""

from __future__ import annotations

import gzip
import socket
import socketserver
import struct
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import urljoin, urlsplit

HOST = "127.0.0.1"

# Defaults the crawl tests rely on; each can be overridden in serve_faults().
FLAKY_FAILURES = 2  # /flaky answers 503 this many times, then 200
SLOW_HEADERS_SECONDS = 6.0  # well past the tests' 2 s crawl timeout
TRICKLE_INTERVAL = 0.2  # /endless sends a few bytes this often
HUGE_SIZE = 50 * 1000**2  # decimal MB, as the profile's sizes are
SHORT_BODY_DECLARED = 5000
SHORT_BODY_SENT = 1000

# How long a handler waits for a client that connected but sends nothing, so
# a stuck client cannot keep a thread (and shutdown) waiting for ever.
REQUEST_READ_TIMEOUT = 10.0
MAX_REQUEST_HEAD = 64 * 1024

# What the index links to: every fault, so a crawler starting at / finds them
# all. /loop-b and the /after-* pages are deliberately missing: they must be
# reached through the redirect and through the broken pages respectively.
LINKED_PATHS: tuple[str, ...] = (
    "/flaky",
    "/always-500",
    "/slow-headers",
    "/reset",
    "/short-body",
    "/endless",
    "/loop-a",
    "/huge",
    "/no-type",
    "/wrong-type",
    "/wrong-type-image",
    "/bad-charset",
    "/malformed",
    "/chunked",
    "/gzip",
)
UNLINKED_PATHS: tuple[str, ...] = ("/loop-b", "/after-bad-charset", "/after-malformed")


def html_page(title: str, body: str = "") -> bytes:
    """A small, valid HTML page; each endpoint's content is recognisable by its title."""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n"
    ).encode()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def tiny_png() -> bytes:
    """A valid 1x1 red PNG, built by hand so no image library is needed."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte 0, then one RGB pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def index_page() -> bytes:
    items = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in LINKED_PATHS)
    return html_page("fault server", f"<ul>\n{items}\n</ul>")


ROBOTS_TXT = b"User-agent: *\nAllow: /\n"

# Bodies the crawl tests compare byte for byte with what the WARC stored.
NO_TYPE_BODY = html_page("no type", "<p>no Content-Type header at all</p>")
PNG_BODY = tiny_png()
HTML_AS_PNG_BODY = html_page("html labelled as png")

# The invalid bytes sit in the middle of the page, not at the start: a leading
# FF FE is a UTF-16 byte order mark, which browsers rightly obey, and then no
# client could be expected to find the link.
BAD_CHARSET_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>bad charset</title></head>\n<body>\n"
    b"<p>Latin-1 in a page that claims otherwise: caf\xe9 na\xefve</p>\n"
    b"<p>Bytes no UTF-8 decoder accepts: \xff\xfe\xff\xfe \xc3\x28 \xed\xa0\x80 \xf8\x88\x80\x80"
    b"\x80 \xc0\xaf</p>\n"
    b'<p><a href="/after-bad-charset">the page after the bad charset</a></p>\n'
    b"</body></html>\n"
)
BAD_CHARSET_TYPE = "text/html; charset=x-no-such-charset"

# Everything a sloppy CMS template or hand edit produces, but nothing that
# hides the link from a browser: the link comes before the unterminated
# comment (which by the HTML parsing rules swallows the rest of the
# document), and <title> is closed (an open <title> would swallow it all).
MALFORMED_BODY = (
    b"<html><head><title>malformed</title>\n<body bgcolor=#fff>\n"
    b"<div><p>unclosed paragraph <b>bold <i>bold italic</div>\n"
    b"<p>stray brackets: 1 < 2, a <> b, < < <, x<y>z\n"
    b"<p>a NUL byte here:\x00:and on we go\n"
    b"<table><tr><td>cell<td><font color=red>unclosed font\n"
    b"<p>next: <a href=/after-malformed>unquoted href</a>\n"
    b"<!-- a comment that never ends <p>hidden text\n"
)

# Separate writes, so the client really sees several chunks on the wire.
CHUNKED_PARTS: tuple[bytes, ...] = (
    b"<!DOCTYPE html>\n<html><head><title>chunked</title></head>\n",
    b"<body><h1>chunked</h1>\n<p>first part of the body, ",
    b"second part, " * 20,
    b"and the last part.</p>\n</body></html>\n",
)

GZIP_PLAIN = html_page("gzip", "<p>" + "compressible text " * 200 + "</p>")
# mtime=0 keeps the bytes identical run to run, so digests are stable.
GZIP_BODY = gzip.compress(GZIP_PLAIN, mtime=0)

SHORT_BODY = html_page("short body", "<p>" + "x" * SHORT_BODY_DECLARED + "</p>")[
    :SHORT_BODY_DECLARED
]

ENDLESS_HEAD = b"<!DOCTYPE html>\n<html><head><title>endless</title></head>\n<body>\n"

HUGE_HEAD = b"<!DOCTYPE html>\n<html><head><title>huge</title></head>\n<body>\n"
HUGE_TAIL = b"</body></html>\n"
_HUGE_LINE = b"<p>" + b"filler " * 18 + b"</p>\n"
_HUGE_BLOCK = _HUGE_LINE * (64 * 1024 // len(_HUGE_LINE))


def huge_chunks(size: int) -> Iterator[bytes]:
    """The /huge body, exactly ``size`` bytes, made block by block as it is sent."""
    if size < len(HUGE_HEAD) + len(HUGE_TAIL):
        raise ValueError(f"huge body must be at least {len(HUGE_HEAD) + len(HUGE_TAIL)} bytes")
    yield HUGE_HEAD
    left = size - len(HUGE_HEAD) - len(HUGE_TAIL)
    while left > 0:
        block = _HUGE_BLOCK if left >= len(_HUGE_BLOCK) else _HUGE_BLOCK[:left]
        left -= len(block)
        yield block
    yield HUGE_TAIL


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    path: str
    version: str
    headers: dict[str, str]  # names lower-cased; a repeated header keeps the last value


def parse_request_head(head: bytes) -> Request | None:
    """The request line and headers, or None if they are not HTTP/1.x."""
    # latin-1 maps every byte, so odd bytes in a header cannot crash the parse.
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    # A proxy-style absolute target names the same resource as its path.
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
    return Request(method, target, path or "/", version, headers)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (``gzip;q=0`` refuses it)."""
    for item in accept_encoding.split(","):
        coding, *params = (p.strip() for p in item.split(";"))
        if coding.lower() not in ("gzip", "x-gzip", "*"):
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class _Server(socketserver.ThreadingTCPServer):
    # Non-daemon threads with block_on_close, so server_close() joins every
    # handler: once serve_faults() returns, nothing of the server is left.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, options: FaultOptions) -> None:
        self.options = options
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.open: set[socket.socket] = set()
        super().__init__((HOST, 0), _Handler)

    def track(self, sock: socket.socket) -> bool:
        with self.lock:
            if self.stopping.is_set():
                return False
            self.open.add(sock)
            return True

    def untrack(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.discard(sock)

    def count(self, path: str) -> int:
        with self.lock:
            self.counts[path] += 1
            return self.counts[path]

    def stop_handlers(self) -> None:
        # Shutting the sockets down wakes handlers blocked in recv() or in a
        # send() to a client that stopped reading; the event ends the sleeps.
        with self.lock:
            self.stopping.set()
            for sock in self.open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class FaultOptions:
    flaky_failures: int = FLAKY_FAILURES
    slow_headers_seconds: float = SLOW_HEADERS_SECONDS
    trickle_interval: float = TRICKLE_INTERVAL
    huge_size: int = HUGE_SIZE


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def handle(self) -> None:
        sock = self.request
        if not self.server.track(sock):
            return
        try:
            sock.settimeout(REQUEST_READ_TIMEOUT)
            req = self._read_request()
            if req is None:
                self._send_simple(400, "Bad Request", html_page("bad request"), head=False)
                return
            nth = self.server.count(req.path)
            if req.method not in ("GET", "HEAD"):
                self._send_simple(405, "Method Not Allowed", html_page("not allowed"), head=False)
                return
            ROUTES.get(req.path, _Handler.not_found)(self, req, nth)
        except OSError:
            pass  # the client went away, or shutdown closed the socket
        finally:
            self.server.untrack(sock)

    # -- plumbing ---------------------------------------------------------

    def _read_request(self) -> Request | None:
        buf = b""
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_REQUEST_HEAD:
                return None
            piece = self.request.recv(4096)
            if not piece:
                # Gone before finishing its request: nobody to answer.
                raise ConnectionAbortedError("client closed before sending a request")
            buf += piece
        return parse_request_head(buf.split(b"\r\n\r\n", 1)[0])

    def _head_bytes(self, status: int, reason: str, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason}", f"Date: {formatdate(usegmt=True)}"]
        lines.append("Server: faultserver")
        lines += [f"{k}: {v}" for k, v in headers]
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_simple(
        self,
        status: int,
        reason: str,
        body: bytes,
        *,
        head: bool,
        content_type: str | None = "text/html; charset=utf-8",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        headers = [("Content-Type", content_type)] if content_type else []
        headers += extra or []
        headers.append(("Content-Length", str(len(body))))
        self.request.sendall(self._head_bytes(status, reason, headers) + (b"" if head else body))

    def _ok(
        self,
        req: Request,
        body: bytes,
        *,
        content_type: str | None = "text/html; charset=utf-8",
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        head = req.method == "HEAD"
        self._send_simple(200, "OK", body, head=head, content_type=content_type, extra=extra)

    # -- endpoints ----------------------------------------------------------

    def not_found(self, req: Request, nth: int) -> None:
        self._send_simple(404, "Not Found", html_page("not found"), head=req.method == "HEAD")

    def index(self, req: Request, nth: int) -> None:
        self._ok(req, index_page())

    def robots(self, req: Request, nth: int) -> None:
        self._ok(req, ROBOTS_TXT, content_type="text/plain")

    def flaky(self, req: Request, nth: int) -> None:
        if nth <= self.server.options.flaky_failures:
            self._send_simple(
                503,
                "Service Unavailable",
                html_page("try again", f"<p>failure {nth}</p>"),
                head=req.method == "HEAD",
            )
        else:
            self._ok(req, html_page("flaky", "<p>up at last</p>"))

    def always_500(self, req: Request, nth: int) -> None:
        self._send_simple(
            500, "Internal Server Error", html_page("server error"), head=req.method == "HEAD"
        )

    def slow_headers(self, req: Request, nth: int) -> None:
        # Nothing at all is sent while waiting, not even the status line.
        if self.server.stopping.wait(self.server.options.slow_headers_seconds):
            return
        self._ok(req, html_page("slow headers", "<p>finally</p>"))

    def reset(self, req: Request, nth: int) -> None:
        # Linger on with timeout 0 makes close() send RST instead of FIN.
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.request.close()

    def short_body(self, req: Request, nth: int) -> None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(SHORT_BODY_DECLARED)),
        ]
        body = b"" if req.method == "HEAD" else SHORT_BODY[:SHORT_BODY_SENT]
        self.request.sendall(self._head_bytes(200, "OK", headers) + body)
        # Returning closes the connection normally (FIN), 4000 bytes early.

    def endless(self, req: Request, nth: int) -> None:
        head = self._head_bytes(200, "OK", [("Content-Type", "text/html; charset=utf-8")])
        if req.method == "HEAD":
            self.request.sendall(head)
            return
        self.request.sendall(head + ENDLESS_HEAD)
        tick = 0
        # Ends when a send fails because the client left, or at shutdown.
        while not self.server.stopping.wait(self.server.options.trickle_interval):
            tick += 1
            self.request.sendall(f"<p>tick {tick}</p>\n".encode())

    def loop_a(self, req: Request, nth: int) -> None:
        self._redirect(req, "/loop-b")

    def loop_b(self, req: Request, nth: int) -> None:
        self._redirect(req, "/loop-a")

    def _redirect(self, req: Request, location: str) -> None:
        self._send_simple(
            302,
            "Found",
            html_page("moved", f'<p><a href="{location}">{location}</a></p>'),
            head=req.method == "HEAD",
            extra=[("Location", location)],
        )

    def huge(self, req: Request, nth: int) -> None:
        size = self.server.options.huge_size
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(size))]
        self.request.sendall(self._head_bytes(200, "OK", headers))
        if req.method == "HEAD":
            return
        for block in huge_chunks(size):
            if self.server.stopping.is_set():
                return
            self.request.sendall(block)

    def no_type(self, req: Request, nth: int) -> None:
        self._ok(req, NO_TYPE_BODY, content_type=None)

    def wrong_type(self, req: Request, nth: int) -> None:
        self._ok(req, PNG_BODY, content_type="text/html")

    def wrong_type_image(self, req: Request, nth: int) -> None:
        self._ok(req, HTML_AS_PNG_BODY, content_type="image/png")

    def bad_charset(self, req: Request, nth: int) -> None:
        self._ok(req, BAD_CHARSET_BODY, content_type=BAD_CHARSET_TYPE)

    def after_bad_charset(self, req: Request, nth: int) -> None:
        self._ok(req, html_page("after bad charset"))

    def malformed(self, req: Request, nth: int) -> None:
        self._ok(req, MALFORMED_BODY, content_type="text/html")

    def after_malformed(self, req: Request, nth: int) -> None:
        self._ok(req, html_page("after malformed"))

    def chunked(self, req: Request, nth: int) -> None:
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Transfer-Encoding", "chunked"),
        ]
        self.request.sendall(self._head_bytes(200, "OK", headers))
        if req.method == "HEAD":
            return
        for part in CHUNKED_PARTS:
            self.request.sendall(f"{len(part):X}\r\n".encode() + part + b"\r\n")
        self.request.sendall(b"0\r\n\r\n")

    def gzip(self, req: Request, nth: int) -> None:
        if accepts_gzip(req.headers.get("accept-encoding", "")):
            self._ok(
                req,
                GZIP_BODY,
                extra=[("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")],
            )
        else:
            self._ok(req, GZIP_PLAIN, extra=[("Vary", "Accept-Encoding")])


ROUTES: dict[str, Callable[[_Handler, Request, int], None]] = {
    "/": _Handler.index,
    "/robots.txt": _Handler.robots,
    "/flaky": _Handler.flaky,
    "/always-500": _Handler.always_500,
    "/slow-headers": _Handler.slow_headers,
    "/reset": _Handler.reset,
    "/short-body": _Handler.short_body,
    "/endless": _Handler.endless,
    "/loop-a": _Handler.loop_a,
    "/loop-b": _Handler.loop_b,
    "/huge": _Handler.huge,
    "/no-type": _Handler.no_type,
    "/wrong-type": _Handler.wrong_type,
    "/wrong-type-image": _Handler.wrong_type_image,
    "/bad-charset": _Handler.bad_charset,
    "/after-bad-charset": _Handler.after_bad_charset,
    "/malformed": _Handler.malformed,
    "/after-malformed": _Handler.after_malformed,
    "/chunked": _Handler.chunked,
    "/gzip": _Handler.gzip,
}


@dataclass
class FaultServer:
    """A running fault server: its address and what it has been asked for."""

    host: str
    port: int
    _server: _Server = field(repr=False)

    @property
    def url(self) -> str:
        """The root URL, ``http://127.0.0.1:PORT/``: the start URL for a crawl."""
        return f"http://{self.host}:{self.port}/"

    def url_for(self, path: str) -> str:
        return urljoin(self.url, path)

    def hits(self, path: str) -> int:
        """How many requests for ``path`` (query ignored) arrived so far."""
        with self._server.lock:
            return self._server.counts[path]

    def open_connections(self) -> int:
        """Connections a handler is still serving (an /endless client, say)."""
        with self._server.lock:
            return len(self._server.open)


@contextmanager
def serve_faults(
    *,
    flaky_failures: int = FLAKY_FAILURES,
    slow_headers_seconds: float = SLOW_HEADERS_SECONDS,
    trickle_interval: float = TRICKLE_INTERVAL,
    huge_size: int = HUGE_SIZE,
) -> Iterator[FaultServer]:
    """Serve the faults on 127.0.0.1 (an ephemeral port) until the block exits.

    On exit every handler is woken and joined and the listening socket is
    closed, so nothing is left listening or running.
    """
    options = FaultOptions(flaky_failures, slow_headers_seconds, trickle_interval, huge_size)
    server = _Server(options)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="faultserver",
        daemon=True,
    )
    thread.start()
    try:
        yield FaultServer(HOST, server.server_address[1], server)
    finally:
        server.shutdown()
        server.stop_handlers()
        server.server_close()
        thread.join(timeout=5)


# -- issue 14: verify faults --
# Big, very compressible bodies that end early: what an interrupted crawl of
# a hostile site leaves behind. A 5 MB body of filler deflates at about 1000
# to 1, which is what once made `sunset verify` loop for ever.

VERIFY_BIG_SIZE = 5 * 1000**2
VERIFY_PATHS: tuple[str, ...] = ("/v14/cut-a", "/v14/cut-b", "/v14/stall", "/v14/small")


def _verify_index(self: _Handler, req: Request, nth: int) -> None:
    links = "".join(f'<p><a href="{p}">{p}</a></p>' for p in VERIFY_PATHS)
    self._ok(req, html_page("verify faults", links))


def _verify_cut(self: _Handler, req: Request, nth: int) -> None:
    # Promises twice the body it sends, then closes: kept as WARC-Truncated.
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(2 * VERIFY_BIG_SIZE)),
    ]
    self.request.sendall(self._head_bytes(200, "OK", headers))
    if req.method == "HEAD":
        return
    for block in huge_chunks(VERIFY_BIG_SIZE):
        if self.server.stopping.is_set():
            return
        self.request.sendall(block)


def _verify_stall(self: _Handler, req: Request, nth: int) -> None:
    # The body, then nothing more until the client gives up or the server stops.
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(2 * VERIFY_BIG_SIZE)),
    ]
    self.request.sendall(self._head_bytes(200, "OK", headers))
    if req.method == "HEAD":
        return
    for block in huge_chunks(VERIFY_BIG_SIZE):
        if self.server.stopping.is_set():
            return
        self.request.sendall(block)
    self.server.stopping.wait()


def _verify_small(self: _Handler, req: Request, nth: int) -> None:
    self._ok(req, html_page("small", "<p>a page of ordinary size</p>"))


ROUTES.update(
    {
        "/v14/": _verify_index,
        "/v14/cut-a": _verify_cut,
        "/v14/cut-b": _verify_cut,
        "/v14/stall": _verify_stall,
        "/v14/small": _verify_small,
    }
)
