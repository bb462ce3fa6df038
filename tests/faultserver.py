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
import hashlib
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
TREE_NODES = 400  # /tree/0 .. /tree/399
TREE_BRANCHING = 3  # each /tree/N links to its children only, never to a menu

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
    robots_delay: float = 0.0  # seconds before robots.txt answers
    robots_body: bytes = ROBOTS_TXT
    robots_status: int = 200
    tree_nodes: int = TREE_NODES
    tree_branching: int = TREE_BRANCHING
    page_delay: float = 0.0  # seconds before each /tree/ page answers


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
            route_for(req.path)(self, req, nth)
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
        options = self.server.options
        if options.robots_delay and self.server.stopping.wait(options.robots_delay):
            return
        if options.robots_status != 200:
            body = html_page(f"status {options.robots_status}")
            self._send_simple(options.robots_status, "Robots", body, head=req.method == "HEAD")
            return
        self._ok(req, options.robots_body, content_type="text/plain")

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
    robots_delay: float = 0.0,
    robots_body: bytes = ROBOTS_TXT,
    robots_status: int = 200,
    tree_nodes: int = 0,
    tree_branching: int = 0,
    page_delay: float = 0.0,
) -> Iterator[FaultServer]:
    """Serve the faults on 127.0.0.1 (an ephemeral port) until the block exits.

    On exit every handler is woken and joined and the listening socket is
    closed, so nothing is left listening or running.
    """
    options = FaultOptions(
        flaky_failures,
        slow_headers_seconds,
        trickle_interval,
        huge_size,
        robots_delay,
        robots_body,
        robots_status,
        tree_nodes or TREE_NODES,
        tree_branching or TREE_BRANCHING,
        page_delay,
    )
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


# -- issue 14: crawl faults (discovery, traps, robots, resume) --
#
# Routes under a prefix answer a whole family of paths (an endless calendar,
# a tree of pages); they are looked up after the exact ROUTES.

PREFIX_ROUTES: dict[str, Callable[[_Handler, Request, int], None]] = {}


def route_for(path: str) -> Callable[[_Handler, Request, int], None]:
    handler = ROUTES.get(path)
    if handler is not None:
        return handler
    for prefix in sorted(PREFIX_ROUTES, key=len, reverse=True):
        if path.startswith(prefix):
            return PREFIX_ROUTES[prefix]
    return _Handler.not_found


def tree_children(n: int, nodes: int, branching: int) -> range:
    return range(n * branching + 1, min(n * branching + branching, nodes - 1) + 1)


def _tree(h: _Handler, req: Request, nth: int) -> None:
    """/tree/N links to its children only: what a page holds is the only way to its subtree."""
    options = h.server.options
    tail = req.path.removeprefix("/tree/")
    if not tail.isdigit() or int(tail) >= options.tree_nodes:
        h.not_found(req, nth)
        return
    if options.page_delay and h.server.stopping.wait(options.page_delay):
        return
    n = int(tail)
    kids = tree_children(n, options.tree_nodes, options.tree_branching)
    items = "".join(f'<li><a href="/tree/{k}">node {k}</a></li>' for k in kids)
    h._ok(req, html_page(f"tree {n}", f"<ul>{items}</ul>"))


RTREE_DEPTH = 4  # /rtree/a/b/c/d/ : 81 leaves under 40 folders (a few refused as repeats)
RTREE_INNER = html_page("folder", '<a href="a/">a</a> <a href="b/">b</a> <a href="c/">c</a>')
RTREE_LEAF = html_page("leaf", "<p>nothing below</p>")


def _rtree(h: _Handler, req: Request, nth: int) -> None:
    """/rtree/…/ folders whose pages are byte-identical, linking on by relative links:
    every capture after the first is a revisit, and only its URL tells its links apart."""
    depth = req.path.removeprefix("/rtree/").count("/")
    if depth > RTREE_DEPTH:
        h.not_found(req, nth)
        return
    options = h.server.options
    if options.page_delay and h.server.stopping.wait(options.page_delay):
        return
    h._ok(req, RTREE_INNER if depth < RTREE_DEPTH else RTREE_LEAF)


# A page whose links include ones no URL parser accepts, between good ones.
BAD_LINKS = (
    "/bad-links/ok-1",
    "http://127.0.0.1:99999/port-out-of-range",
    "/bad-links/ok-2",
    "http://[::1/unclosed-ipv6",
    "/bad-links/ok-3",
    "http://[vfoo]/bad-ipv6-literal",
    "/bad-links/ok-4",
)


def _bad_links(h: _Handler, req: Request, nth: int) -> None:
    if req.path == "/bad-links":
        items = "".join(f'<li><a href="{u}">{u}</a></li>' for u in BAD_LINKS)
        h._ok(req, html_page("bad links", f"<ul>{items}</ul>"))
    else:
        h._ok(req, html_page(req.path.rsplit("/", 1)[-1]))


LONG_SEGMENT = "x" * 2100


def _long_url(h: _Handler, req: Request, nth: int) -> None:
    """/long links to a URL over 2,000 characters, and to a plain page after it."""
    if req.path == "/long":
        body = f'<a href="/long/{LONG_SEGMENT}">long</a> <a href="/long/after">after</a>'
        h._ok(req, html_page("long", body))
    else:
        h._ok(req, html_page("long target"))


REDIRECT_CHAIN = 30  # hops in /chain-redirect/0 -> 1 -> ... -> 30 (a 200)


def _redirect_chain(h: _Handler, req: Request, nth: int) -> None:
    tail = req.path.removeprefix("/redirect-chain/")
    n = int(tail) if tail.isdigit() else 0
    if n >= REDIRECT_CHAIN:
        h._ok(req, html_page("end of the chain"))
    else:
        h._redirect(req, f"/redirect-chain/{n + 1}")


def _link_chain(h: _Handler, req: Request, nth: int) -> None:
    """/link-chain/N links to /link-chain/N+1, for ever: only a depth limit ends it."""
    tail = req.path.removeprefix("/link-chain/")
    n = int(tail) if tail.isdigit() else 0
    h._ok(req, html_page(f"chain {n}", f'<a href="/link-chain/{n + 1}">next</a>'))


def _path_calendar(h: _Handler, req: Request, nth: int) -> None:
    """/cal/YYYY/M: a month view linking to the months before and after, endlessly."""
    bits = req.path.removeprefix("/cal/").split("/")
    try:
        year, month = int(bits[0]), int(bits[1])
    except (IndexError, ValueError):
        year, month = 2019, 11
    prev = (year, month - 1) if month > 1 else (year - 1, 12)
    nxt = (year, month + 1) if month < 12 else (year + 1, 1)
    body = (
        f'<a href="/cal/{prev[0]}/{prev[1]}">previous month</a> '
        f'<a href="/cal/{nxt[0]}/{nxt[1]}">next month</a>'
    )
    h._ok(req, html_page(f"calendar {year}-{month:02d}", body))


def _path_session(h: _Handler, req: Request, nth: int) -> None:
    """/sess/<id>/page: every page links on under a fresh session id, as cookieless sessions do."""
    token = hashlib.sha1(f"{req.path}:{nth}".encode()).hexdigest()[:24]
    body = f'<a href="/sess/{token}/page">on</a> <a href="/sess/{token}/other">other</a>'
    h._ok(req, html_page("session", body))


def _query_pages(h: _Handler, req: Request, nth: int) -> None:
    """/pages?p=N links to ?p=N+1 for ever, as a pager with no last page does."""
    query = urlsplit(req.target).query
    n = int(query[2:]) if query.startswith("p=") and query[2:].isdigit() else 1
    h._ok(req, html_page(f"page {n}", f'<a href="/pages?p={n + 1}">next page</a>'))


def _growing_path(h: _Handler, req: Request, nth: int) -> None:
    """/grow/…: a relative link that adds a segment each time (a missing base href)."""
    h._ok(req, html_page("grow", '<a href="more/">more</a> <a href="x/more/">x</a>'))


def _wide(h: _Handler, req: Request, nth: int) -> None:
    """/wide/N links to ten children, for ever: a site with no end and no trap."""
    tail = req.path.removeprefix("/wide/")
    n = int(tail) if tail.isdigit() else 0
    items = "".join(f'<a href="/wide/{10 * n + k}">{k}</a> ' for k in range(1, 11))
    h._ok(req, html_page(f"wide {n}", items + "<p>" + "text " * 200 + "</p>"))


SOAK_TRAPS = (
    "/link-chain/0",
    "/cal/2019/11",
    "/sess/start/page",
    "/rtree/",
    "/pages?p=1",
    "/grow/",
    "/bad-links",
    "/long",
    "/redirect-chain/0",
)


def _soak(h: _Handler, req: Request, nth: int) -> None:
    """/soak/ links to every endless family; /soak/wide also to the endless wide site."""
    links = [*SOAK_TRAPS, "/wide/0"] if req.path == "/soak/wide" else list(SOAK_TRAPS)
    items = "".join(f'<li><a href="{u}">{u}</a></li>' for u in links)
    h._ok(req, html_page("soak", f"<ul>{items}</ul>"))


PREFIX_ROUTES.update(
    {
        "/soak/": _soak,
        "/pages": _query_pages,
        "/grow/": _growing_path,
        "/wide/": _wide,
        "/tree/": _tree,
        "/rtree/": _rtree,
        "/bad-links": _bad_links,
        "/long": _long_url,
        "/redirect-chain/": _redirect_chain,
        "/link-chain/": _link_chain,
        "/cal/": _path_calendar,
        "/sess/": _path_session,
    }
)


# -- issue 14: transform faults --
# Pages that crawl fine but once broke `sunset transform`. None is linked from
# "/": a transform test starts its crawl at one of the T14_* start pages.

T14_START = "/t14/"  # every page below but the "clean" ones
T14_CLEAN_START = "/t14/clean/"  # ordinary pages only, one of them slow to extract
T14_BIG_SIZE = 3 * 1000**2
# Inflated size of the gzip bomb: under the crawler's decompression bound for
# a 10MB body limit (20x), far over what one page may take in transform.
T14_BOMB_INFLATED = 180 * 1000**2
T14_BOMB_MEMBER = 6 * 1000**2


def _t14_page(title: str, body: str) -> bytes:
    return html_page(title, body + f"\n<p>{title}: words that make this page a page.</p>")


# One href per way a link once raised out of urljoin/urlsplit or lxml.
T14_BAD_HREF_BODY = _t14_page(
    "bad href",
    "<p>Bad href page survives with its text.</p>\n<ul>\n"
    '<li><a href="http://[::1/bad">broken IPv6 link</a></li>\n'
    '<li><a href="/t14/ctl&#1;entity">control entity link</a></li>\n'
    '<li><a href="/t14/ctl\x01raw">raw control link</a></li>\n'
    '<li><a href="http://exa\u2100mple.test/">NFKC link</a></li>\n'
    '<li><a href="http://127.0.0.1:99999999/">bad port link</a></li>\n'
    "</ul>\n"
    '<p><img src="http://[::1/img.png" alt="bad image"> <a href="/t14/plain">a good link</a></p>',
)

T14_UNSAFE_LINKS: tuple[tuple[str, str], ...] = (
    ("javascript:alert%286%29", "percent"),
    ("JaVaScRiPt:alert(1)", "mixed case"),
    ("java&#9;script:alert(2)", "tab entity"),
    ("java\tscript:alert(3)", "raw tab"),
    ("&#106;avascript:alert(4)", "letter entity"),
    (" javascript:alert(5)", "leading space"),
    ("&#1;javascript:alert(7)", "leading control"),
    ("java&#10;script:alert(8)", "newline entity"),
    ("vbscript:msgbox(9)", "vbscript"),
    ("VBScript:msgbox(10)", "vbscript case"),
    ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxMSk8L3NjcmlwdD4=", "data html"),
    ("DATA:text/html,<script>alert(12)</script>", "data case"),
    ("javascript://127.0.0.1/%0aalert(13)", "host-shaped"),
)
T14_UNSAFE_IMAGES: tuple[tuple[str, str], ...] = (
    ("javascript:alert(14)", "js image"),
    ("JAVASCRIPT:alert(15)", "js image case"),
    ("data:text/html,<script>alert(16)</script>", "data image"),
    ("vbscript:msgbox(17)", "vb image"),
)
T14_UNSAFE_BODY = _t14_page(
    "unsafe links",
    "<p>Unsafe links page keeps its words.</p>\n<p>"
    + "\n".join(f'<a href="{href}">{text}</a>' for href, text in T14_UNSAFE_LINKS)
    + "</p>\n<p>"
    + "\n".join(f'<img src="{src}" alt="{alt}">' for src, alt in T14_UNSAFE_IMAGES)
    + '</p>\n<p><a href="mailto:webmaster@example.test">mail us</a>'
    ' <a href="/t14/plain">plain page</a> <img src="/t14/pic.png" alt="fine image"></p>',
)

# One NUL early in the page, inside its text: browsers show the page.
T14_NUL_BODY = _t14_page("nul byte", "<p>Before the NUL\x00after the NUL, the page goes on.</p>")

T14_DOUBLE_GZIP_PLAIN = _t14_page("double gzip", "<p>Twice compressed text is still text.</p>")
T14_DOUBLE_GZIP_BODY = gzip.compress(gzip.compress(T14_DOUBLE_GZIP_PLAIN, mtime=0), mtime=0)

T14_BIG_HEAD = (
    b"<!DOCTYPE html>\n<html><head><title>big page</title></head>\n<body>\n"
    b"<h1>big page</h1>\n<p>The first words of the big page.</p>\n"
)
T14_BIG_TAIL = b"<p>The last words of the big page.</p>\n</body></html>\n"


def t14_big_body(size: int = T14_BIG_SIZE) -> bytes:
    line = b"<p>big page filler words, one paragraph after another.</p>\n"
    count = (size - len(T14_BIG_HEAD) - len(T14_BIG_TAIL)) // len(line)
    return T14_BIG_HEAD + line * count + T14_BIG_TAIL


T14_BOMB_HEAD = _t14_page("gzip bomb", "<p>The start of the gzip bomb page.</p>").replace(
    b"</body></html>\n", b""
)


def t14_bomb_body(inflated: int = T14_BOMB_INFLATED) -> bytes:
    """A page that inflates to `inflated` bytes of blank space; gzip members
    concatenated (which gzip allows), so it is made in a moment."""
    filler = gzip.compress(b" " * T14_BOMB_MEMBER, mtime=0)
    members = max(1, (inflated - len(T14_BOMB_HEAD)) // T14_BOMB_MEMBER)
    return (
        gzip.compress(T14_BOMB_HEAD, mtime=0)
        + filler * members
        + gzip.compress(b"<p>The end of the bomb.</p></body></html>\n", mtime=0)
    )


T14_CASE_WORDS = {
    "Case": "Capital letters in the path: an article about apples.",
    "case": "Small letters in the path: a different article, about pears.",
}


def _t14_case_body(variant: str) -> bytes:
    return _t14_page(f"weird {variant}", f"<p>{T14_CASE_WORDS[variant]}</p>")


T14_CLEAN_PAGES = ("a", "b", "c")


def t14_slow_body() -> bytes:
    """An ordinary page that takes transform a second or so (a long list of
    links, off-site so the crawler does not follow them): a window in which
    to interrupt it."""
    items = "\n".join(
        f'<li><a href="http://elsewhere.test/{i}">Elsewhere {i}</a> and <b>more</b></li>'
        for i in range(30_000)
    )
    return _t14_page("slow page", f"<ul>\n{items}\n</ul>")


def _t14_index(title: str, paths: list[str]) -> bytes:
    items = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in paths)
    return html_page(title, f"<ul>\n{items}\n</ul>")


T14_LINKED: tuple[str, ...] = (
    "/t14/plain",
    "/t14/bad-href",
    "/t14/unsafe",
    "/t14/nul",
    "/t14/double-gzip",
    "/t14/big",
    "/t14/bomb",
    "/t14/weird/Case",
    "/t14/weird/case",
)


def _t14_ok(body: bytes, **kw: object) -> Callable[[_Handler, Request, int], None]:
    def handler(self: _Handler, req: Request, nth: int) -> None:
        self._ok(req, body, **kw)  # type: ignore[arg-type]

    return handler


def _t14_lazy(make: Callable[[], bytes], **kw: object) -> Callable[[_Handler, Request, int], None]:
    made: list[bytes] = []

    def handler(self: _Handler, req: Request, nth: int) -> None:
        if not made:
            made.append(make())
        self._ok(req, made[0], **kw)  # type: ignore[arg-type]

    return handler


ROUTES.update(
    {
        T14_START: _t14_ok(_t14_index("transform faults", list(T14_LINKED))),
        "/t14/plain": _t14_ok(_t14_page("plain", "<p>An ordinary page among the faults.</p>")),
        "/t14/bad-href": _t14_ok(T14_BAD_HREF_BODY),
        "/t14/unsafe": _t14_ok(T14_UNSAFE_BODY),
        "/t14/nul": _t14_ok(T14_NUL_BODY),
        # Sent whatever the client accepts: a hostile server does.
        "/t14/double-gzip": _t14_ok(
            T14_DOUBLE_GZIP_BODY, extra=[("Content-Encoding", "gzip, gzip")]
        ),
        "/t14/big": _t14_lazy(t14_big_body),
        "/t14/bomb": _t14_lazy(t14_bomb_body, extra=[("Content-Encoding", "gzip")]),
        "/t14/weird/Case": _t14_ok(_t14_case_body("Case")),
        "/t14/weird/case": _t14_ok(_t14_case_body("case")),
        T14_CLEAN_START: _t14_ok(
            _t14_index(
                "clean pages", [f"/t14/clean/{n}" for n in T14_CLEAN_PAGES] + ["/t14/clean/slow"]
            )
        ),
        **{
            f"/t14/clean/{n}": _t14_ok(_t14_page(f"clean {n}", f"<p>Clean page {n}.</p>"))
            for n in T14_CLEAN_PAGES
        },
        "/t14/clean/slow": _t14_lazy(t14_slow_body),
    }
)


# -- issue 14: fetch faults (decoding, keep-alive framing, interrupts) --
#
# Three route families, none linked from "/": a crawl starts at its hub.
#
# /dec/  content codings: a gzip bomb (about 1 MB that inflates to 1 GiB),
#        the same bomb gzipped again, stacked and alternative codings, a
#        corrupt gzip stream, and slow pages fetched while the bomb decodes.
# /ka/   keep-alive that really keeps the connection: every /ka/ response
#        leaves it open and the handler reads the next request from it, so a
#        client that reuses it after a misframed response reads the leftover
#        bytes as the next URL's response. Each response says which
#        connection carried it (X-Conn) and its place on it (X-Seq).
# /int/  pages for interrupting a crawl: two that are very slow the first
#        time only, and a chain of pages that takes a few seconds to walk.

BOMB_SIZE = 1 << 30  # inflated bytes of /dec/bomb
_BOMB_BLOCK = 1 << 20
DEC_CODED = ("gzip-gzip", "deflate", "deflate-raw", "br", "zstd")
DEC_SLOW_PAGES = 4
DEC_SLOW_SECONDS = 1.0  # each /dec/slow-N body takes this long to arrive
DEC_STALL_SECONDS = 8.0  # /dec/stall-once stalls this long the first time (past the timeout)
SMUGGLED_MARK = b"SMUGGLED-RESPONSE"
INT_PAGES = 30
INT_PAGE_DELAY = 0.1
INT_SLOW_SECONDS = 60.0  # the first answer of /int/slow-N takes this long


def bomb_prefix() -> bytes:
    return (
        b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>bomb</title></head>\n'
        b'<body><p><a href="/dec/after-bomb">after the bomb</a></p>\n'
    )


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``bomb_prefix()`` padded with spaces to ``size`` bytes (whole MiBs).

    Built without compressing ``size`` bytes: after a full flush the deflate
    output for a MiB of spaces is the same every time, so it is made once and
    repeated; the CRC is computed over the spaces, which is quick.
    """
    if size % _BOMB_BLOCK or size < 2 * _BOMB_BLOCK:
        raise ValueError("bomb size must be a whole number of MiB, at least 2")
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = bomb_prefix() + b" " * (_BOMB_BLOCK - len(bomb_prefix()))
    spaces = b" " * _BOMB_BLOCK
    head = packer.compress(first) + packer.flush(zlib.Z_FULL_FLUSH)
    steady = packer.compress(spaces) + packer.flush(zlib.Z_FULL_FLUSH)
    if packer.compress(spaces) + packer.flush(zlib.Z_FULL_FLUSH) != steady:
        raise AssertionError("deflate output for a block of spaces is not steady")
    final_block = packer.flush(zlib.Z_FINISH)[:-8]  # without this stream's own trailer
    crc = zlib.crc32(first)
    for _ in range(size // _BOMB_BLOCK - 1):
        crc = zlib.crc32(spaces, crc)
    trailer = struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)
    return head + steady * (size // _BOMB_BLOCK - 1) + final_block + trailer


_bombs: dict[int, bytes] = {}
_bombs_lock = threading.Lock()


def cached_bomb(size: int) -> bytes:
    with _bombs_lock:
        if size not in _bombs:
            _bombs[size] = gzip_bomb(size)
        return _bombs[size]


def dec_plain(name: str) -> bytes:
    return html_page(name, f'<p><a href="/dec/after-{name}">after {name}</a></p>')


def dec_encoded(name: str) -> tuple[bytes, str]:
    """The body of /dec/<name> as sent, and its Content-Encoding."""
    import brotli

    plain = dec_plain(name)
    if name == "gzip-gzip":
        return gzip.compress(gzip.compress(plain, mtime=0), mtime=0), "gzip, gzip"
    if name == "deflate":
        return zlib.compress(plain), "deflate"
    if name == "deflate-raw":  # what some servers send as "deflate": no zlib header
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        return packer.compress(plain) + packer.flush(), "deflate"
    if name == "br":
        return brotli.compress(plain), "br"
    if name == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return zstd.compress(plain), "zstd"
    raise KeyError(name)


# A gzip stream whose deflate data is garbage after the first bytes.
_GOOD_GZIP = gzip.compress(dec_plain("gzip-corrupt") * 20, mtime=0)
GZIP_CORRUPT_BODY = _GOOD_GZIP[:40] + bytes(range(256)) * 4


def dec_slow_body(n: int) -> bytes:
    return html_page(f"slow {n}", "<p>" + "slowly " * 200 + "</p>")


def _dec_hub(h: _Handler, req: Request, nth: int) -> None:
    paths = ["/dec/bomb", "/dec/bomb-stacked"]
    paths += [f"/dec/slow-{i}" for i in range(1, DEC_SLOW_PAGES + 1)]
    paths += [f"/dec/{name}" for name in DEC_CODED]
    paths += ["/dec/gzip-corrupt", "/dec/gzip-mislabelled", "/dec/cut-once", "/dec/stall-once"]
    items = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in paths)
    h._ok(req, html_page("decoding hub", f"<ul>\n{items}\n</ul>"))


def _dec_bomb(h: _Handler, req: Request, nth: int) -> None:
    h._ok(req, cached_bomb(BOMB_SIZE), extra=[("Content-Encoding", "gzip")])


def _dec_bomb_stacked(h: _Handler, req: Request, nth: int) -> None:
    body = gzip.compress(cached_bomb(BOMB_SIZE), mtime=0)
    h._ok(req, body, extra=[("Content-Encoding", "gzip, gzip")])


def _dec_coded(h: _Handler, req: Request, nth: int) -> None:
    body, coding = dec_encoded(req.path.removeprefix("/dec/"))
    h._ok(req, body, extra=[("Content-Encoding", coding)])


def _dec_gzip_corrupt(h: _Handler, req: Request, nth: int) -> None:
    h._ok(req, GZIP_CORRUPT_BODY, extra=[("Content-Encoding", "gzip")])


def _dec_gzip_mislabelled(h: _Handler, req: Request, nth: int) -> None:
    # Says gzip, is plain HTML: a misconfigured server or a proxy that decoded it.
    h._ok(req, dec_plain("gzip-mislabelled"), extra=[("Content-Encoding", "gzip")])


def _dec_after(h: _Handler, req: Request, nth: int) -> None:
    h._ok(req, html_page(req.path))


def _dec_slow(h: _Handler, req: Request, nth: int) -> None:
    body = dec_slow_body(int(req.path.rsplit("-", 1)[1]))
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    h.request.sendall(h._head_bytes(200, "OK", headers))
    pieces = 10
    step = -(-len(body) // pieces)
    for i in range(pieces):
        if h.server.stopping.wait(DEC_SLOW_SECONDS / pieces):
            return
        h.request.sendall(body[i * step : (i + 1) * step])


def _dec_cut_once(h: _Handler, req: Request, nth: int) -> None:
    """Cut short the first time (closed early, or stalled past the timeout), whole after."""
    body = dec_plain(req.path.removeprefix("/dec/"))
    if nth > 1:
        h._ok(req, body)
        return
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    h.request.sendall(h._head_bytes(200, "OK", headers) + body[:60])
    if req.path == "/dec/stall-once":
        h.server.stopping.wait(DEC_STALL_SECONDS)


ROUTES.update(
    {
        "/dec/": _dec_hub,
        "/dec/cut-once": _dec_cut_once,
        "/dec/stall-once": _dec_cut_once,
        "/dec/after-cut-once": _dec_after,
        "/dec/after-stall-once": _dec_after,
        "/dec/bomb": _dec_bomb,
        "/dec/bomb-stacked": _dec_bomb_stacked,
        "/dec/gzip-corrupt": _dec_gzip_corrupt,
        "/dec/gzip-mislabelled": _dec_gzip_mislabelled,
        "/dec/after-gzip-mislabelled": _dec_after,
        "/dec/after-bomb": _dec_after,
        "/dec/after-gzip-corrupt": _dec_after,
        **{f"/dec/{name}": _dec_coded for name in DEC_CODED},
        **{f"/dec/after-{name}": _dec_after for name in DEC_CODED},
        **{f"/dec/slow-{i}": _dec_slow for i in range(1, DEC_SLOW_PAGES + 1)},
    }
)


# -- keep-alive --------------------------------------------------------------

KA_GOOD_PAGES = 8
# Responses after which a careful client must not use the connection again.
KA_DOUBTFUL = (
    "/ka/extra-bytes",
    "/ka/extra-after-chunked",
    "/ka/two-lengths",
    "/ka/same-length-twice",
    "/ka/te-and-cl",
    "/ka/http10",
    "/ka/no-content-with-body",
    "/ka/switching",
)
IDLE_HOST = "idle.test"  # a second name for the server: its own connection pool


def smuggled_response() -> bytes:
    body = html_page("smuggled", f"<p>{SMUGGLED_MARK.decode()}</p>")
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: keep-alive\r\n\r\n" + body
    )


def ka_body(path: str, port: int) -> bytes:
    """What /ka/<path> really is: the body its response declares (dechunked)."""
    if path == "/ka/":
        links = [f"/ka/good-{i}" for i in range(1, KA_GOOD_PAGES + 1)]
        links += [*KA_DOUBTFUL, "/ka/early-hints", "/ka/lf-only"]
        links.append(f"http://{IDLE_HOST}:{port}/ka/idle-bytes")
        items = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in links)
        return html_page("keep-alive hub", f"<ul>\n{items}\n</ul>")
    if path in ("/ka/idle-bytes", "/ka/idle-hop"):
        target = "/ka/idle-hop" if path == "/ka/idle-bytes" else "/ka/idle-next"
        host = "127.0.0.1" if path == "/ka/idle-bytes" else IDLE_HOST
        return html_page(path, f'<p><a href="http://{host}:{port}{target}">next</a></p>')
    if path in ("/ka/no-content-with-body", "/ka/switching"):
        return b""
    return html_page(path, f"<p>the page at {path}</p>")


_ka_ids = [0]
_ka_ids_lock = threading.Lock()


class _KaConn:
    """Per connection: its id and how many responses it carried."""

    def __init__(self) -> None:
        with _ka_ids_lock:
            _ka_ids[0] += 1
            self.id = _ka_ids[0]
        self.seq = 0


def _ka_head(
    conn: _KaConn,
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    version: str = "HTTP/1.1",
) -> bytes:
    conn.seq += 1
    lines = [f"{version} {status} {reason}", "Server: faultserver"]
    lines += [f"X-Conn: {conn.id}", f"X-Seq: {conn.seq}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _ka_respond(h: _Handler, req: Request, conn: _KaConn) -> bool:
    """Answer one /ka/ request; False when the connection should end here."""
    path = req.path
    body = ka_body(path, h.server.server_address[1])
    html = ("Content-Type", "text/html; charset=utf-8")
    length = ("Content-Length", str(len(body)))
    send = h.request.sendall
    if path == "/ka/extra-bytes":
        send(_ka_head(conn, 200, "OK", [html, length]) + body + smuggled_response())
    elif path == "/ka/extra-after-chunked":
        head = _ka_head(conn, 200, "OK", [html, ("Transfer-Encoding", "chunked")])
        send(head + f"{len(body):X}\r\n".encode() + body + b"\r\n0\r\n\r\n" + smuggled_response())
    elif path == "/ka/two-lengths":
        send(_ka_head(conn, 200, "OK", [html, length, ("Content-Length", "7")]) + body)
    elif path == "/ka/same-length-twice":
        send(_ka_head(conn, 200, "OK", [html, length, length]) + body)
    elif path == "/ka/te-and-cl":
        framing = [("Content-Length", "5"), ("Transfer-Encoding", "chunked")]
        head = _ka_head(conn, 200, "OK", [html, *framing])
        send(head + f"{len(body):X}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    elif path == "/ka/http10":  # an HTTP/1.0 answer that keeps the connection without saying so
        send(_ka_head(conn, 200, "OK", [html, length], version="HTTP/1.0") + body)
    elif path == "/ka/no-content-with-body":  # 204 must not have a body; this one does
        send(_ka_head(conn, 204, "No Content", []) + smuggled_response())
    elif path == "/ka/switching":  # an upgrade nobody asked for
        send(_ka_head(conn, 101, "Switching Protocols", [("Upgrade", "nonsense")]))
    elif path == "/ka/early-hints":
        hints = _ka_head(conn, 103, "Early Hints", [("Link", "</ka/good-1>; rel=preload")])
        send(hints + _ka_head(conn, 200, "OK", [html, length]) + body)
    elif path == "/ka/lf-only":  # bare LF line ends, as some old CGI scripts send
        head = _ka_head(conn, 200, "OK", [html, length]).replace(b"\r\n", b"\n")
        send(head + body)
    elif path == "/ka/idle-bytes":
        send(_ka_head(conn, 200, "OK", [html, length]) + body)
        # Unasked-for bytes on a connection the client keeps idle in its pool.
        if h.server.stopping.wait(0.05):
            return False
        send(smuggled_response())
    elif path == "/ka/idle-hop":
        # Keeps the idle.test connection idle (with the bytes above waiting
        # in it) until well after they arrived.
        if h.server.stopping.wait(0.5):
            return False
        send(_ka_head(conn, 200, "OK", [html, length]) + body)
    else:
        send(_ka_head(conn, 200, "OK", [html, length]) + body)
    return True


def _ka_serve(h: _Handler, req: Request, nth: int) -> None:
    conn = _KaConn()
    while True:
        if req.path not in KA_PATHS:
            # Served as usual, with Connection: close, and the connection ends.
            ROUTES.get(req.path, _Handler.not_found)(h, req, nth)
            return
        if not _ka_respond(h, req, conn):
            return
        try:
            nxt = h._read_request()
        except (ConnectionAbortedError, TimeoutError):
            return  # the client closed its connection, or left it idle too long
        if nxt is None or nxt.method not in ("GET", "HEAD"):
            return
        req, nth = nxt, h.server.count(nxt.path)


KA_PATHS: frozenset[str] = frozenset(
    [
        "/ka/",
        *(f"/ka/good-{i}" for i in range(1, KA_GOOD_PAGES + 1)),
        *KA_DOUBTFUL,
        "/ka/early-hints",
        "/ka/lf-only",
        "/ka/idle-bytes",
        "/ka/idle-hop",
        "/ka/idle-next",
    ]
)
ROUTES.update(dict.fromkeys(KA_PATHS, _ka_serve))


# -- interrupts ----------------------------------------------------------------


def int_body(path: str) -> bytes:
    if path == "/int/":
        links = ["/int/slow-1", "/int/slow-2", "/int/page/1"]
        items = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in links)
        return html_page("interrupt hub", f"<ul>\n{items}\n</ul>")
    if path.startswith("/int/page/"):
        n = int(path.rsplit("/", 1)[1])
        nxt = f'<p><a href="/int/page/{n + 1}">next</a></p>' if n < INT_PAGES else ""
        return html_page(f"page {n}", nxt)
    return html_page(path, "<p>" + "slow " * 400 + "</p>")


def _int_hub(h: _Handler, req: Request, nth: int) -> None:
    h._ok(req, int_body(req.path))


def _int_page(h: _Handler, req: Request, nth: int) -> None:
    if h.server.stopping.wait(INT_PAGE_DELAY):
        return
    h._ok(req, int_body(req.path))


def _int_slow(h: _Handler, req: Request, nth: int) -> None:
    body = int_body(req.path)
    if nth > 1:
        h._ok(req, body)
        return
    headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    h.request.sendall(h._head_bytes(200, "OK", headers) + body[:100])
    if h.server.stopping.wait(INT_SLOW_SECONDS):
        return
    h.request.sendall(body[100:])


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
        "/int/": _int_hub,
        "/int/slow-1": _int_slow,
        "/int/slow-2": _int_slow,
        **{f"/int/page/{n}": _int_page for n in range(1, INT_PAGES + 1)},
        "/v14/": _verify_index,
        "/v14/cut-a": _verify_cut,
        "/v14/cut-b": _verify_cut,
        "/v14/stall": _verify_stall,
        "/v14/small": _verify_small,
    }
)


# -- issue 14: review faults --
# Hostile links, redirects and robots.txt files found in review. Every page
# under /rv/ answers (a page, or a redirect named by its path); none is linked
# from "/". Pages on other host names reach this server through connect_to;
# robots.txt for the host names under RV_DOMAIN is answered by _rv_robots.

RV_DOMAIN = ".rv.test"

# (href, why): links no ordinary page should hold, each between good ones.
RV_ODD_LINKS: tuple[str, ...] = (
    "/rv/odd/ok-1",
    "http://[::1/unclosed",
    "http://[vfoo]/literal",
    "http://exa\uff03mple.org/nfkc-host",
    "http://127.0.0.1:0/port-zero",
    "http:///no-host",
    "/rv/odd/with space",
    "/rv/odd/tab\there",
    "/rv/odd/ctl\x01char",
    "/rv/odd/nul%00byte",
    "/rv/odd/line\u2028sep",
    "/rv/odd/ünicode-päth",
    "/rv/odd//double//slash",
    "/rv/odd/bad%zzpct",
    "/rv/odd/q?" + "k=v&" * 300,
    "HTTP://127.0.0.1:{port}/rv/odd/upper-scheme",
    "//127.0.0.1:{port}/rv/odd/scheme-relative",
    "http://bücher.example/idn-offsite",
    "/rv/odd/ok-2",
)

# Redirects whose Location is odd: /rv/redir/<name> answers with LOCATIONS[name].
RV_LOCATIONS: dict[str, str | None] = {
    "ipv6": "http://[::1/unclosed",
    "port": "http://127.0.0.1:99999/x",
    "literal": "http://[vfoo]/x",
    "space": "/rv/odd/redirected with space",
    "utf8": "/rv/odd/utf8-\u00c3\u00bc",  # sent as latin-1: the UTF-8 bytes of "ü"
    "latin1": "/rv/odd/latin1-\u00fc",  # "ü" as one ISO-8859-1 byte, as old servers send it
    "empty": "",
    "none": None,
    "self": "/rv/redir/self",
}


def _rv_page(h: _Handler, req: Request, nth: int) -> None:
    port = h.server.server_address[1]
    if req.path == "/rv/odd/":
        items = "".join(f'<li><a href="{u.format(port=port)}">x</a></li>' for u in RV_ODD_LINKS)
        items += "".join(f'<li><a href="/rv/redir/{name}">r</a></li>' for name in RV_LOCATIONS)
        items += '<li><a href="/rv/choices">300</a></li>'
        h._ok(req, html_page("odd links", f"<ul>{items}</ul>"))
        return
    if req.path.startswith("/rv/redir/"):
        name = req.path.removeprefix("/rv/redir/")
        if name in RV_LOCATIONS:
            location = RV_LOCATIONS[name]
            extra = [] if location is None else [("Location", location)]
            h._send_simple(302, "Found", html_page("moved"), head=False, extra=extra)
            return
    if req.path == "/rv/idn":  # links to its own host written in Unicode, and in punycode
        links = (
            '<a href="http://b\u00fccher.rv.test/rv/idn-unicode">u</a> '
            '<a href="http://xn--bcher-kva.rv.test/rv/idn-punycode">p</a> '
            '<a href="http://B\u00dcCHER.rv.test/rv/idn-upper">U</a>'
        )
        h._ok(req, html_page("idn", links))
        return
    if req.path == "/rv/choices":  # a 300 with a Location: not a redirect to follow
        extra = [("Location", "/rv/odd/chosen")]
        h._send_simple(300, "Multiple Choices", html_page("choose"), head=False, extra=extra)
        return
    if req.path == "/rv/docs/":  # a page about robots.txt, with an example file
        links = '<a href="robots.txt">an example</a> <a href="after">after</a>'
        h._ok(req, html_page("docs", links))
        return
    if req.path == "/rv/docs/robots.txt":  # not the site's: only /robots.txt is
        h._ok(req, b"User-agent: *\nDisallow: /\n", content_type="text/plain")
        return
    if req.path == "/rv/start":  # a page linking to what robots.txt disallows
        h._ok(req, html_page("start", '<a href="/rv/secret">secret</a>'))
        return
    h._ok(req, html_page("rv " + req.path.rsplit("/", 1)[-1]))


PREFIX_ROUTES.update({"/rv/": _rv_page})


def _rv_depth(h: _Handler, req: Request, nth: int) -> None:
    """/rv/d/N links to /rv/go/N+1, which redirects to /rv/d/N+1, for ever. /rv/d/2
    fails once (503): a crawl with no retries leaves it for its resume."""
    tail = req.path.rsplit("/", 1)[-1]
    n = int(tail) if tail.isdigit() else 0
    if req.path.startswith("/rv/go/"):
        h._redirect(req, f"/rv/d/{n}")
    elif n == 2 and nth == 1:
        h._send_simple(503, "Service Unavailable", html_page("busy"), head=False)
    else:
        h._ok(req, html_page(f"depth {n}", f'<a href="/rv/go/{n + 1}">next</a>'))


PREFIX_ROUTES.update({"/rv/d/": _rv_depth, "/rv/go/": _rv_depth})


# robots.txt by host name (all of them on this server, through connect_to):
# RV_ROBOTS[host:port or host] = (seconds before the answer, status, body or Location).
RV_ROBOTS: dict[str, tuple[float, int, str]] = {
    # A robots.txt that names a sitemap on another host, whose robots.txt is slow.
    "first.rv.test": (
        0.0,
        200,
        "User-agent: *\nDisallow:\nSitemap: http://slow.rv.test/rv/sm.xml\n",
    ),
    "slow.rv.test": (1.5, 200, "User-agent: *\nDisallow: /rv/secret\n"),
    # An apex and its www both redirect to one robots.txt (as to https://www.):
    # here the www one answers later, so the apex's redirect claims the target.
    "apex.rv.test": (0.0, 301, "http://www.rv.test:8080/robots.txt"),
    "www.rv.test": (0.5, 301, "http://www.rv.test:8080/robots.txt"),
    "www.rv.test:8080": (0.0, 200, "User-agent: *\nDisallow: /rv/secret\n"),
    # Status 0: the first answer stalls after a few bytes for `delay` seconds.
    "stall.rv.test": (3.0, 0, "User-agent: *\nDisallow: /rv/secret\n"),
}
RV_SITEMAP = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    b"<url><loc>http://slow.rv.test/rv/secret</loc></url>"
    b"<url><loc>http://slow.rv.test/rv/listed</loc></url></urlset>\n"
)

_plain_robots = ROUTES["/robots.txt"]


def _rv_robots(h: _Handler, req: Request, nth: int) -> None:
    host = req.headers.get("host", "").lower()
    rule = RV_ROBOTS.get(host) or RV_ROBOTS.get(host.rsplit(":", 1)[0])
    if rule is None:
        _plain_robots(h, req, nth)
        return
    delay, status, text = rule
    if status == 0:  # a body cut short by a stall, the first time only
        body = text.encode()
        if nth == 1:
            head = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            h.request.sendall(h._head_bytes(200, "OK", head) + body[:10])
            h.server.stopping.wait(delay)
        else:
            h._ok(req, body, content_type="text/plain")
        return
    if delay and h.server.stopping.wait(delay):
        return
    if 300 <= status < 400:
        h._redirect(req, text)
    else:
        h._ok(req, text.encode(), content_type="text/plain")


def _rv_sitemap(h: _Handler, req: Request, nth: int) -> None:
    h._ok(req, RV_SITEMAP, content_type="application/xml")


ROUTES.update({"/robots.txt": _rv_robots, "/rv/sm.xml": _rv_sitemap})


RV_ROBOTS.update(
    {
        # Two hosts whose robots.txt files redirect to each other.
        "loopa.rv.test": (0.0, 302, "http://loopb.rv.test/robots.txt"),
        "loopb.rv.test": (0.0, 302, "http://loopa.rv.test/robots.txt"),
    }
)
RV_ROBOTS.update(
    {
        # Saved by an editor that starts UTF-8 files with a byte order mark.
        "bom.rv.test": (0.0, 200, "\ufeffUser-agent: *\r\nDisallow: /rv/secret\r\n"),
    }
)
