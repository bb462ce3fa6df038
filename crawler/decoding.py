"""Content-Encoding decoding in bounded steps, for the spider's eyes only.

The WARC keeps a body exactly as received; the spider needs it decoded to find
links. Scrapy's HttpCompressionMiddleware decodes a whole body in one call on
the event loop, and either keeps all of it or drops the response when it
passes DOWNLOAD_MAXSIZE: a 1 MB gzip bomb that inflates to 1 GB held 2 GB of
memory and stalled every other fetch for 20-30 s, and its links were lost.

Here the codings are undone as a chain of streaming decoders pulled 64 KiB at
a time: the decoded body stops at a limit (the profile's max_body_size), the
event loop gets control back every few milliseconds, and what was decoded
before the limit, or before a corrupt byte, is still handed on.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

# brotli and zstd come with recent Scrapy; without them br and zstd are not asked for.
brotli: ModuleType | None
zstd: ModuleType | None
try:
    import brotli
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import brotlicffi as brotli  # type: ignore[import-not-found,no-redef]
    except ImportError:
        brotli = None
if brotli is not None and not hasattr(brotli.Decompressor, "can_accept_more_data"):
    brotli = None  # before 1.2 its output cannot be bounded
try:
    from compression import zstd  # type: ignore[import-not-found,no-redef]
except ImportError:  # pragma: no cover - Python before 3.14
    try:
        from backports import zstd  # type: ignore[import-not-found,no-redef]
    except ImportError:
        zstd = None

_DECODERS = frozenset(
    {"gzip", "x-gzip", "deflate"}
    | ({"br"} if brotli is not None else set())
    | ({"zstd"} if zstd is not None else set())
)
# What the crawler asks for: the codings decoded here (Scrapy's own list).
ACCEPT_ENCODING = ", ".join(c for c in ("gzip", "deflate", "br", "zstd") if c in _DECODERS)
STEP = 64 * 1024  # decoded bytes asked for at a time
_INPUT = 64 * 1024  # encoded bytes handed to a decoder at a time
SLICE_SECONDS = 0.005  # decoding time before the event loop gets a turn


class DecodeError(Exception):
    """The encoded data is corrupt or ends early; what was decoded before stays."""


class _Reader(Protocol):
    def read(self, n: int) -> bytes: ...


@dataclass
class Decoded:
    body: bytes
    codings_left: list[str] = field(default_factory=list)  # not decoded (unknown), in header order
    truncated: bool = False  # the decoded body reached the limit; more was there
    error: str | None = None  # "gzip: ...": why decoding stopped early


def split_codings(values: list[str]) -> tuple[list[str], list[str]]:
    """(codings to undo, last applied first; codings left as they are, in header order).

    Decoding stops at the first coding (from the last applied) that is not
    known here, as a browser would: the ones under it cannot be reached.
    """
    codings = [c.strip().lower() for v in values for c in v.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    undo: list[str] = []
    while codings and codings[-1] in _DECODERS:
        undo.append(codings.pop())
    return undo, codings


class _Source:
    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.pos = 0

    def read(self, n: int) -> bytes:
        piece = self.view[self.pos : self.pos + n].tobytes()
        self.pos += len(piece)
        return piece


class _Zlib:
    """gzip (members one after another, as RFC 1952 allows) or deflate (zlib-wrapped or raw)."""

    def __init__(self, source: _Reader, coding: str) -> None:
        self.source = source
        self.gzip = coding in ("gzip", "x-gzip")
        self.name = "gzip" if self.gzip else "deflate"
        self.d = zlib.decompressobj(31 if self.gzip else 15)
        self.pending = b""
        self.started = False  # output or a whole header seen: no switch to raw deflate after
        self.done = False

    def read(self, n: int) -> bytes:
        while not self.done:
            if self.d.eof:
                # The end of one gzip member; another may follow. Anything else
                # after the stream (padding, garbage) is ignored, as browsers do.
                rest = self.d.unused_data or self.source.read(_INPUT)
                if self.gzip and rest[:2] == b"\x1f\x8b":
                    self.d = zlib.decompressobj(31)
                    self.pending = rest
                    continue
                self.done = True
                break
            if not self.pending:
                self.pending = self.source.read(_INPUT)
                if not self.pending:
                    raise DecodeError(f"{self.name}: the data ends before the stream does")
            try:
                out = self.d.decompress(self.pending, n)
            except zlib.error as exc:
                if not self.gzip and not self.started:
                    # Some servers send raw deflate, without the zlib header.
                    self.d = zlib.decompressobj(-15)
                    self.started = True
                    continue
                raise DecodeError(f"{self.name}: {exc}") from None
            self.started = True
            self.pending = self.d.unconsumed_tail
            if out:
                return out
        return b""


class _Brotli:
    name = "br"

    def __init__(self, source: _Reader) -> None:
        assert brotli is not None
        self.source = source
        self.d = brotli.Decompressor()

    def read(self, n: int) -> bytes:
        while not self.d.is_finished():
            data = b""
            if self.d.can_accept_more_data():
                data = self.source.read(_INPUT)
            try:
                out = self.d.process(data, output_buffer_limit=n)
            except brotli.error as exc:  # type: ignore[union-attr]
                raise DecodeError(f"br: {exc}") from None
            if out:
                return out
            if not data and self.d.can_accept_more_data() and not self.d.is_finished():
                raise DecodeError("br: the data ends before the stream does")
        return b""


class _Zstd:
    """Frames one after another, as the format allows."""

    name = "zstd"

    def __init__(self, source: _Reader) -> None:
        assert zstd is not None
        self.source = source
        self.d = zstd.ZstdDecompressor()
        self.done = False

    def read(self, n: int) -> bytes:
        while not self.done:
            if self.d.eof:
                rest = self.d.unused_data or self.source.read(_INPUT)
                if not rest:
                    self.done = True
                    break
                self.d = zstd.ZstdDecompressor()  # type: ignore[union-attr]
                data = rest
            elif self.d.needs_input:
                data = self.source.read(_INPUT)
                if not data:
                    raise DecodeError("zstd: the data ends before the stream does")
            else:
                data = b""
            try:
                out = self.d.decompress(data, n)
            except zstd.ZstdError as exc:  # type: ignore[union-attr]
                raise DecodeError(f"zstd: {exc}") from None
            if out:
                return out
        return b""


def _decoder(source: _Reader, coding: str) -> _Reader:
    if coding == "br":
        return _Brotli(source)
    if coding == "zstd":
        return _Zstd(source)
    return _Zlib(source, coding)


async def decode(data: bytes, content_encoding: list[str], limit: int) -> Decoded:
    """Undo the Content-Encoding codings of `data`, keeping at most `limit` decoded bytes."""
    undo, left = split_codings(content_encoding)
    if not undo or not data:
        return Decoded(data, left)
    reader: _Reader = _Source(data)
    for coding in undo:
        reader = _decoder(reader, coding)
    pieces: list[bytes] = []
    size = 0
    truncated = False
    error = None
    turn = time.monotonic()
    try:
        while True:
            room = limit - size
            if room <= 0:
                truncated = bool(reader.read(1))
                break
            piece = reader.read(min(STEP, room))
            if not piece:
                break
            if len(piece) > room:  # brotli may hand back a little more than asked
                piece, truncated = piece[:room], True
            pieces.append(piece)
            size += len(piece)
            if truncated:
                break
            if time.monotonic() - turn > SLICE_SECONDS:
                await asyncio.sleep(0)
                turn = time.monotonic()
    except DecodeError as exc:
        error = str(exc)
        if not size:
            # Nothing decoded at all: most often a body that is not encoded
            # as it says (a proxy decoded it, a server mislabels it). Its
            # links are looked for in it as received, as far as the limit.
            return Decoded(data[:limit], left, len(data) > limit, error)
    body = b"".join(pieces)
    pieces.clear()
    return Decoded(body, left, truncated, error)
