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


ROUTES.update(
    {
        "/int/": _int_hub,
        "/int/slow-1": _int_slow,
        "/int/slow-2": _int_slow,
        **{f"/int/page/{n}": _int_page for n in range(1, INT_PAGES + 1)},
    }
)
