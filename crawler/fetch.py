"""A small HTTP/1.1 client that keeps every byte, for the WARC.

Scrapy's own handler hands back parsed headers (original order, spelling and
the reason phrase are gone) and never the request bytes. This client writes
the request itself, so the request bytes are known exactly, and keeps the
status line, headers and body exactly as they came off the socket. A body cut
short (size limit, timeout, early close) is kept and marked with the WARC
truncation reason instead of being thrown away.

A kept-alive connection is reused only when the previous response's end was
certain: after any doubt (bytes beyond the framed body, repeated or
conflicting Content-Length, Transfer-Encoding with Content-Length, HTTP/1.0,
an unasked-for 101) or bytes that arrive while it is idle, it is closed, so
leftover bytes are never read as the next URL's response.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

HEAD_LIMIT = 256 * 1024  # status line + headers; anything larger is not HTTP we can archive
MAX_INTERIM = 16  # 1xx responses before the final one; more is a server gone wrong
INTERRUPTED = -7000  # crawl-log code of a fetch abandoned because the crawl was interrupted


class FetchError(Exception):
    """A fetch that produced no HTTP response; `code` is the crawl-log status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Exchange:
    """One request and its response, as bytes on the wire."""

    url: str
    request: bytes
    head: bytes  # status line and headers, through the blank line
    body: bytes  # as transmitted (chunk framing included)
    content: bytes  # body with transfer coding removed (still content-encoded)
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    ip: str
    date: datetime
    duration: float
    truncated: str | None = None  # WARC-Truncated reason
    reused: bool = False
    # Why the end of this response was in doubt (the connection was closed after it).
    misframed: str | None = None
    interim: list[int] = field(default_factory=list)  # 1xx statuses skipped before this one

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ip: str
    reused: bool = False


@dataclass
class Client:
    """Connection pool and request runner shared by one crawl."""

    connect_to: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    verify_tls: bool = False  # an archive keeps what a server sends, even with a stale certificate
    idle: dict[tuple[str, str, int, str], list[_Conn]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Things that happened to connections and belong to no fetch's log line.
    events: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    _active: set[asyncio.Task[object]] = field(default_factory=set)

    def interrupt(self) -> None:
        """Abandon every fetch in flight and refuse new ones: the crawl is stopping.

        A half-received response is not archived (it would count as captured
        and a resume would not fetch it again); each such fetch fails with
        the INTERRUPTED code instead.
        """
        self.interrupted = True
        for task in list(self._active):
            task.cancel()

    def route(self, host: str, port: int) -> tuple[str, int]:
        return self.connect_to.get((host, port), (host, port))

    async def _open(self, scheme: str, host: str, port: int, timeout: float) -> _Conn:
        addr, aport = self.route(host, port)
        key = (scheme, addr, aport, host)
        while self.idle[key]:
            conn = self.idle[key].pop()
            if conn.reader.at_eof() or conn.writer.is_closing():
                conn.writer.close()
                continue
            if _buffered(conn.reader):
                # Bytes that arrived while nothing was asked: the last response
                # on it was longer than it said, or the server answers out of
                # turn. Read as the next response, they would archive one
                # URL's bytes as another's.
                self.events["connections-dropped:unsolicited-bytes"] += 1
                conn.writer.close()
                continue
            conn.reused = True
            return conn
        ctx = None
        if scheme == "https":
            ctx = ssl.create_default_context()
            if not self.verify_tls:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    addr, aport, ssl=ctx, server_hostname=host if ctx else None, limit=HEAD_LIMIT
                ),
                timeout,
            )
        except TimeoutError:
            raise FetchError(-4, f"connect timeout to {addr}:{aport}") from None
        except socket.gaierror as exc:
            raise FetchError(-1, f"cannot resolve {addr}: {exc.strerror}") from None
        except ssl.SSLError as exc:
            raise FetchError(-6, f"TLS failure with {host}: {exc.reason}") from None
        except ConnectionRefusedError:
            raise FetchError(-2, f"connection refused by {addr}:{aport}") from None
        except OSError as exc:
            raise FetchError(-2, f"cannot connect to {addr}:{aport}: {exc.strerror}") from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = writer.get_extra_info("peername")
        return _Conn(reader, writer, peer[0] if peer else addr)

    def _release(self, scheme: str, host: str, port: int, conn: _Conn) -> None:
        addr, aport = self.route(host, port)
        self.idle[(scheme, addr, aport, host)].append(conn)

    async def close(self) -> None:
        for conns in self.idle.values():
            for conn in conns:
                conn.writer.close()
        self.idle.clear()

    async def fetch(
        self,
        url: str,
        method: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeout: float,
        maxsize: int,
    ) -> Exchange:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("host", "content-length")]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace") + body
        if self.interrupted:
            raise FetchError(INTERRUPTED, "not fetched: the crawl was interrupted")
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
        try:
            ex = await self._attempts(url, method, request, timeout, maxsize, scheme, host, port)
        except asyncio.CancelledError:
            if not self.interrupted or task is None:
                raise
            task.uncancel()  # cancelled by interrupt(), which is answered here
            raise FetchError(INTERRUPTED, "abandoned: the crawl was interrupted") from None
        finally:
            if task is not None:
                self._active.discard(task)
        if self.interrupted:
            # Completed as the interrupt came: treated like the others, so that
            # what is archived does not depend on a race.
            raise FetchError(INTERRUPTED, "abandoned: the crawl was interrupted")
        return ex

    async def _attempts(
        self,
        url: str,
        method: str,
        request: bytes,
        timeout: float,
        maxsize: int,
        scheme: str,
        host: str,
        port: int,
    ) -> Exchange:
        # A pooled connection may have been closed by the server while idle;
        # that shows as an immediate EOF, and the request is sent again once
        # on a fresh connection.
        for attempt in range(2):
            conn = await self._open(scheme, host, port, timeout)
            try:
                return await self._exchange(
                    conn, url, method, request, timeout, maxsize, (scheme, host, port)
                )
            except _StaleConnection:
                conn.writer.close()
                if attempt:
                    raise FetchError(-3, "connection closed before any response") from None
            except BaseException:
                # Cancelled mid-exchange: what is left on the connection is unknown.
                conn.writer.close()
                raise
        raise AssertionError("unreachable")

    async def _exchange(
        self,
        conn: _Conn,
        url: str,
        method: str,
        request: bytes,
        timeout: float,
        maxsize: int,
        origin: tuple[str, str, int],
    ) -> Exchange:
        started = time.monotonic()
        date = datetime.now(UTC)
        deadline = started + timeout
        reader, writer = conn.reader, conn.writer
        interim: list[int] = []
        try:
            writer.write(request)
            await asyncio.wait_for(writer.drain(), timeout)
            while True:
                left = max(deadline - time.monotonic(), 0.001)
                head = await asyncio.wait_for(_read_head(reader), left)
                version, status, reason, headers = parse_head(head)
                # 1xx answers (103 Early Hints, an unasked-for 100) come before
                # the response itself; taken as the response, the real one
                # would be left on the connection for the next request.
                if status is None or not 100 <= status < 200 or status == 101:
                    break
                interim.append(status)
                if len(interim) > MAX_INTERIM:
                    writer.close()
                    raise FetchError(-7, f"more than {MAX_INTERIM} interim (1xx) responses")
        except asyncio.IncompleteReadError as exc:
            if conn.reused and not exc.partial and not interim:
                raise _StaleConnection() from None
            writer.close()
            raise FetchError(-3, "connection closed before the response headers") from None
        except asyncio.LimitOverrunError:
            writer.close()
            raise FetchError(-7, f"response headers larger than {HEAD_LIMIT} bytes") from None
        except TimeoutError:
            writer.close()
            raise FetchError(-4, f"no response headers within {timeout:g}s") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            writer.close()
            if conn.reused and not interim:
                raise _StaleConnection() from None
            raise FetchError(-3, f"connection reset: {exc.strerror or exc}") from None
        except OSError as exc:
            writer.close()
            raise FetchError(-3, f"connection lost: {exc.strerror or exc}") from None

        if status is None:
            writer.close()
            raise FetchError(-7, "not an HTTP response")
        framing, length, misframed = _framing(method, status, headers)
        reader_state = _BodyReader(reader, deadline, maxsize)
        truncated: str | None = None
        try:
            if framing == "none":
                body = content = b""
            elif framing == "chunked":
                body, content = await reader_state.chunked()
            elif framing == "length":
                body = await reader_state.exactly(length)
                content = body
            else:
                body = await reader_state.until_eof()
                content = body
        except _Truncated as cut:
            truncated = cut.reason
            body, content = cut.raw, cut.content
        conn_header = ",".join(v for k, v in headers if k.lower() == "connection").lower()
        keep = (
            framing != "eof"
            and not truncated
            and not misframed
            and status != 101
            and version == "HTTP/1.1"
            and "close" not in conn_header
        )
        if keep and _buffered(reader):
            # More bytes than the framing said: they are no one's response.
            keep, misframed = False, "extra-bytes"
        if keep:
            self._release(*origin, conn)
        else:
            writer.close()
        return Exchange(
            url=url,
            request=request,
            head=head,
            body=body,
            content=content,
            status=status,
            reason=reason,
            version=version,
            headers=headers,
            ip=conn.ip,
            date=date,
            duration=time.monotonic() - started,
            truncated=truncated,
            reused=conn.reused,
            misframed=misframed,
            interim=interim,
        )


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The status line and headers through the empty line, CRLF or bare LF alike.

    Old CGI scripts end lines with a bare LF, which browsers accept; waiting
    for CRLF CRLF would wait for ever (or to the timeout) on them. Each line
    is usually in the buffer already, so this costs no extra wait.
    """
    lines: list[bytes] = []
    size = 0
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            raise asyncio.IncompleteReadError(b"".join(lines) + exc.partial, None) from None
        size += len(line)
        if size > HEAD_LIMIT:
            raise asyncio.LimitOverrunError("response head too large", size)
        if line in (b"\r\n", b"\n") and lines:
            lines.append(line)
            return b"".join(lines)
        if line in (b"\r\n", b"\n"):
            continue  # stray empty lines before a status line, as RFC 9112 allows
        lines.append(line)


def _buffered(reader: asyncio.StreamReader) -> int:
    """Bytes received on a connection and not yet read.

    StreamReader has no public way to ask; its buffer has been `_buffer`
    since asyncio began. Without it a client cannot tell a connection that
    holds leftover bytes from a clean one.
    """
    return len(getattr(reader, "_buffer", b""))


def _framing(
    method: str, status: int, headers: list[tuple[str, str]]
) -> tuple[str, int, str | None]:
    """How the body is delimited ("none", "chunked", "length" or "eof"), its length, and
    why the framing is in doubt (then the connection is not used again)."""
    if method == "HEAD" or status in (101, 204, 304) or 100 <= status < 200:
        return "none", 0, None
    codings = [
        c.strip().lower()
        for k, v in headers
        if k.lower() == "transfer-encoding"
        for c in v.split(",")
        if c.strip()
    ]
    lengths = [c.strip() for k, v in headers if k.lower() == "content-length" for c in v.split(",")]
    if codings:
        # Transfer-Encoding wins over Content-Length (RFC 9112 6.3); a body
        # whose last coding is not chunked ends when the connection does.
        framing = "chunked" if codings[-1] == "chunked" else "eof"
        return framing, 0, "te-and-cl" if lengths else None
    if not lengths:
        return "eof", 0, None
    if not all(v.isdigit() for v in lengths):
        return "eof", 0, "content-length"
    if len(lengths) > 1:
        # Repeated, agreeing or not: the first is used, and the connection is
        # not trusted for another exchange.
        return "length", int(lengths[0]), "content-length"
    return "length", int(lengths[0]), None


class _StaleConnection(Exception):
    pass


class _Truncated(Exception):
    def __init__(self, reason: str, raw: bytes, content: bytes) -> None:
        self.reason, self.raw, self.content = reason, raw, content


class _BodyReader:
    """Reads a body under a deadline and a size limit, keeping what arrived."""

    def __init__(self, reader: asyncio.StreamReader, deadline: float, maxsize: int) -> None:
        self.reader = reader
        self.deadline = deadline
        self.maxsize = maxsize
        self.raw = bytearray()
        self.content = bytearray()

    async def _read(self, n: int) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Truncated("time", bytes(self.raw), bytes(self.content))
        try:
            data = await asyncio.wait_for(self.reader.read(n), left)
        except TimeoutError:
            raise _Truncated("time", bytes(self.raw), bytes(self.content)) from None
        except OSError:
            raise _Truncated("disconnect", bytes(self.raw), bytes(self.content)) from None
        return data

    def _take(self, data: bytes, content: bool = True) -> None:
        room = self.maxsize - len(self.raw)
        if self.maxsize and len(data) > room:
            self.raw += data[:room]
            if content:
                self.content += data[:room]
            raise _Truncated("length", bytes(self.raw), bytes(self.content))
        self.raw += data
        if content:
            self.content += data

    async def exactly(self, n: int) -> bytes:
        while len(self.raw) < n:
            data = await self._read(min(65536, n - len(self.raw)))
            if not data:
                raise _Truncated("disconnect", bytes(self.raw), bytes(self.content))
            self._take(data)
        return bytes(self.raw)

    async def until_eof(self) -> bytes:
        while True:
            data = await self._read(65536)
            if not data:
                return bytes(self.raw)
            self._take(data)

    async def _line(self) -> bytes:
        left = self.deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            line = await asyncio.wait_for(self.reader.readuntil(b"\n"), left)
        except TimeoutError:
            raise _Truncated("time", bytes(self.raw), bytes(self.content)) from None
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            raise _Truncated("disconnect", bytes(self.raw), bytes(self.content)) from None
        self._take(line, content=False)
        return line

    async def chunked(self) -> tuple[bytes, bytes]:
        while True:
            line = await self._line()
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _Truncated("disconnect", bytes(self.raw), bytes(self.content)) from None
            if size == 0:
                while (await self._line()).strip():  # trailers, then the blank line
                    pass
                return bytes(self.raw), bytes(self.content)
            got = 0
            while got < size:
                data = await self._read(min(65536, size - got))
                if not data:
                    raise _Truncated("disconnect", bytes(self.raw), bytes(self.content))
                self._take(data)
                got += len(data)
            await self._line()  # the CRLF after the chunk


def parse_head(head: bytes) -> tuple[str, int | None, str, list[tuple[str, str]]]:
    """Status line and headers, leniently (bare LF, odd spacing), order and spelling kept."""
    text = head.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    status_line = lines[0].strip()
    bits = status_line.split(" ", 2)
    if len(bits) < 2 or not bits[0].upper().startswith("HTTP/") or not bits[1].isdigit():
        return "", None, "", []
    version, status, reason = bits[0].upper(), int(bits[1]), bits[2] if len(bits) > 2 else ""
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and headers:  # obsolete line folding
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return version, status, reason, headers
