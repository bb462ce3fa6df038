"""Find and read the HTML captures of a crawl: CDXJ to plan, WARC offsets to read.

The CDXJ index is read line by line; for each URL only its latest successful
HTML capture is kept, and revisit records are resolved to the response that
holds their payload. Records are then read one at a time by file offset, so
no WARC is ever held in memory.
"""

from __future__ import annotations

import codecs
import io
import json
import os
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecordLoader
from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

HTML_MIMES = ("text/html", "application/xhtml+xml", "text/plain", "unk", "")


class ArchiveError(Exception):
    """The crawl folder cannot be read at all (no index, no WARC files)."""


@dataclass(frozen=True)
class Location:
    filename: str
    offset: int
    length: int


@dataclass(frozen=True)
class Capture:
    """One URL's chosen capture: where its record is and where its payload is."""

    url: str
    timestamp: str  # 14-digit, from the index
    status: int
    mime: str
    digest: str
    record: Location  # the response or revisit record of this URL
    payload: Location  # the response record that holds the bytes (itself, unless revisit)


@dataclass(frozen=True)
class Attachment:
    url: str
    mime: str
    digest: str
    payload: Location  # the response record holding its bytes

    @property
    def filename(self) -> str:
        return self.payload.filename

    @property
    def offset(self) -> int:
        return self.payload.offset


@dataclass
class Inventory:
    pages: list[Capture]  # HTML candidates, sorted by URL
    attachments: dict[str, Attachment]  # by URL: every other 200 capture
    unresolved: list[tuple[str, str]]  # (url, reason) for captures that cannot be used


def _parse_line(line: str) -> dict[str, str] | None:
    _, _, rest = line.partition(" {")
    if not rest:
        return None
    try:
        data = json.loads("{" + rest)
        data["timestamp"] = line.split(" ", 2)[1]
    except (ValueError, IndexError):
        return None
    return data


def read_inventory(crawl_dir: Path, documents: tuple[str, ...]) -> Inventory:
    """Choose, per URL, the capture to transform, from the crawl's CDXJ index."""
    index = crawl_dir / "indexes" / "index.cdxj"
    if not index.is_file():
        raise ArchiveError(f"{index}: no CDXJ index; is {crawl_dir} a sunset crawl folder?")
    originals: dict[str, Location] = {}
    # url -> (timestamp, mime, digest, location): a few small fields per URL,
    # not the parsed index line, so a large site's index stays small here.
    latest: dict[str, tuple[str, str, str, Location]] = {}
    names: dict[str, str] = {}
    with open(index, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            rec = _parse_line(line.rstrip("\n"))
            if rec is None or "url" not in rec or rec.get("status") != "200":
                continue
            mime = (rec.get("mime") or "").lower()
            try:
                name = names.setdefault(rec["filename"], rec["filename"])
                loc = Location(name, int(rec["offset"]), int(rec["length"]))
            except (KeyError, ValueError):
                continue
            digest = rec.get("digest", "")
            if mime != "warc/revisit":
                originals.setdefault(digest, loc)
            url = rec["url"]
            prev = latest.get(url)
            if prev is None or rec["timestamp"] >= prev[0]:
                latest[url] = (rec["timestamp"], mime, digest, loc)
    pages: list[Capture] = []
    attachments: dict[str, Attachment] = {}
    unresolved: list[tuple[str, str]] = []
    for url in sorted(latest):
        timestamp, mime, digest, loc = latest[url]
        try:
            # Every later step splits the URL: one that cannot be split
            # (an index edited by hand, say) is refused here, once.
            urlsplit(url).port  # noqa: B018
        except ValueError:
            unresolved.append((url, "bad-url"))
            continue
        payload = loc
        if mime == "warc/revisit":
            found = originals.get(digest)
            if found is None:
                unresolved.append((url, "revisit-without-original"))
                continue
            payload = found
        is_doc = url.split("?", 1)[0].lower().endswith(documents)
        if mime in HTML_MIMES or (mime == "warc/revisit" and not is_doc):
            pages.append(Capture(url, timestamp, 200, mime, digest, loc, payload))
        else:
            attachments[url] = Attachment(url, mime, digest, payload)
    return Inventory(pages, attachments, unresolved)


@dataclass
class Payload:
    url: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes  # Content-Encoding already removed
    truncated: str | None
    content_type: str
    notes: list[str]
    # The size the body was cut at (read_payload with cut=True), else None.
    cut: int | None = None


class WarcFiles:
    """WARC files kept open across reads, for one process.

    A crawl's pages sit in a few large files, and reopening one per record
    costs an open, a close and a cold read buffer each time. A handle is never
    shared with a forked child: the two would share one file offset, so a
    child that inherits this object starts with no open files.
    """

    MAX_OPEN = 16  # a crawl rolls WARCs at a large size; this bounds descriptors anyway

    def __init__(self, crawl_dir: Path) -> None:
        self.warc_dir = crawl_dir / "warc"
        self._open: OrderedDict[str, BinaryIO] = OrderedDict()
        self._pid = os.getpid()

    def get(self, filename: str) -> BinaryIO:
        """An open handle on one WARC file; OSError when it cannot be opened."""
        if self._pid != os.getpid():
            # Dropped, not closed: closing is the parent's business, and the
            # child's copies of the descriptors go when it exits.
            self._open = OrderedDict()
            self._pid = os.getpid()
        fh = self._open.get(filename)
        if fh is not None:
            self._open.move_to_end(filename)
            return fh
        fh = open(self.warc_dir / filename, "rb")  # noqa: SIM115 - closed by close()
        self._open[filename] = fh
        if len(self._open) > self.MAX_OPEN:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return fh

    def close(self) -> None:
        if self._pid == os.getpid():
            for fh in self._open.values():
                fh.close()
        self._open.clear()

    def __enter__(self) -> WarcFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_payload(
    crawl_dir: Path,
    loc: Location,
    url: str,
    max_bytes: int,
    files: WarcFiles | None = None,
    *,
    cut: bool = False,
) -> Payload:
    """Read one response record at its offset and return its decoded HTTP payload.

    A payload longer than max_bytes, as stored or once its Content-Encoding
    is undone, is refused (ValueError "too-large"), or with cut=True cut to
    at most max_bytes (Payload.cut says so). Either way no more than about
    max_bytes of it is ever held, however far it would inflate.

    Raises ValueError with a short reason when the record cannot be read.
    """
    if files is None:
        with WarcFiles(crawl_dir) as own:
            return read_payload(crawl_dir, loc, url, max_bytes, own, cut=cut)
    try:
        fh = files.get(loc.filename)
    except OSError as exc:
        raise ValueError(f"warc-unreadable:{exc.strerror or exc}") from None
    whole = _whole_response(fh, loc)
    if whole is not None:
        rec_headers, http_headers, raw = whole
        raw = raw[: max_bytes + 1]
    else:
        fh.seek(loc.offset)
        it = ArchiveIterator(fh, no_record_parse=False, arc2warc=False)
        try:
            record = next(iter(it))
        except (StopIteration, ArchiveLoadFailed, OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"record-unreadable:{type(exc).__name__}") from None
        if record.rec_type != "response" or record.http_headers is None:
            raise ValueError(f"not-a-response:{record.rec_type}")
        rec_headers, http_headers = record.rec_headers, record.http_headers
        try:
            raw = record.raw_stream.read(max_bytes + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"record-corrupt:{type(exc).__name__}") from None
    headers = list(http_headers.headers)
    truncated = rec_headers.get_header("WARC-Truncated")
    notes: list[str] = []
    over = len(raw) > max_bytes
    if over and not cut:
        raise ValueError(f"too-large:>{max_bytes} bytes")
    status = int(http_headers.get_statuscode() or 0)
    # Every Content-Encoding header, in the order the codings were applied.
    codings = ",".join(v for k, v in headers if k.lower() == "content-encoding")
    body, inflated_over = _decode_content(
        raw[:max_bytes], codings, notes, max_bytes, cut_input=over
    )
    if inflated_over and not cut:
        raise ValueError(f"too-large:>{max_bytes} bytes once decoded")
    ctype = http_headers.get_header("Content-Type") or ""
    payload = Payload(url, status, headers, body, truncated, ctype, notes)
    if over or inflated_over:
        payload.body = _clean_cut(body, max_bytes)
        payload.cut = max_bytes
    return payload


def _clean_cut(body: bytes, limit: int) -> bytes:
    """body cut to at most `limit` bytes where no character is split.

    A split character would make the whole page invalid UTF-8 (or invalid in
    its declared multi-byte charset), and so decoded as windows-1252: the cut
    is made before a "<" or a line end, which no multi-byte character in an
    ASCII-compatible charset contains, when one is near the end.
    """
    if len(body) <= limit:
        return body
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body[: limit - limit % 2]
    floor = max(0, limit - 64 * 1024)
    end = max(body.rfind(b"<", floor, limit), body.rfind(b"\n", floor, limit))
    if end <= 0:
        end = limit
        # Not inside a UTF-8 sequence: back off its continuation bytes.
        while end > limit - 4 and 0x80 <= body[end] < 0xC0:
            end -= 1
    return body[:end]


# Records up to this many bytes on disk are read in one go and parsed here;
# bigger ones are streamed by warcio, so memory stays flat.
WHOLE_RECORD_BYTES = 4 * 1000**2
WHOLE_RECORD_INFLATED = 16 * 1000**2
# warcio's own header parsers, as its ArchiveIterator sets them up.
_WARC_HEADERS = StatusAndHeadersParser(ArcWarcRecordLoader.WARC_TYPES)
_HTTP_HEADERS = StatusAndHeadersParser(ArcWarcRecordLoader.HTTP_TYPES, verify=False)


def _whole_response(
    fh: BinaryIO, loc: Location
) -> tuple[StatusAndHeaders, StatusAndHeaders, bytes] | None:
    """(WARC headers, HTTP headers, payload as stored) of the ordinary record:
    an HTTP response in one gzip member of the length the index gives.

    What warcio's iterator would return, through warcio's own header parser,
    without its buffered, streaming readers (a fifth of the time a small page
    takes). Anything else is None, and left to warcio.
    """
    if not 0 < loc.length <= WHOLE_RECORD_BYTES:
        return None
    try:
        member = os.pread(fh.fileno(), loc.length, loc.offset)
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        # Capped: a small record can inflate to gigabytes (found by review);
        # one that would go past the cap is streamed by warcio instead.
        data = inflate.decompress(member, WHOLE_RECORD_INFLATED)
        if not inflate.eof or inflate.unused_data or inflate.unconsumed_tail:
            return None
        stream = io.BytesIO(data)
        rec_headers = _WARC_HEADERS.parse(stream)
        uri = rec_headers.get_header("WARC-Target-URI")
        if (
            rec_headers.get_header("WARC-Type") != "response"
            or not uri
            or uri.startswith("<")
            or " " in uri
            or not uri.startswith(("http:", "https:"))
        ):
            return None
        length = int(rec_headers.get_header("Content-Length") or "")
        start = stream.tell()
        if length <= 0 or len(data) - start < length:
            return None
        block = io.BytesIO(data[start : start + length])
        http_headers = _HTTP_HEADERS.parse(block)
        return rec_headers, http_headers, data[start + block.tell() : start + length]
    except Exception:
        return None


# Decoders hand back their output this much at a time, so a small body that
# inflates hugely is cut as it inflates, never held whole.
_INFLATE_CHUNK = 1 << 20


class _Incomplete(Exception):
    """The encoded stream ends, or breaks, before its end."""


def _gunzip(data: bytes) -> Iterator[bytes]:
    """Every member of a gzip stream (concatenated members are one stream)."""
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        yield from _inflate(d, data)
        if not d.eof:
            raise _Incomplete
        # Zero bytes may pad a gzip file; anything else after it is not gzip.
        data = d.unused_data.lstrip(b"\x00")
        if data and not data.startswith(b"\x1f\x8b"):
            return


def _inflate(d: Any, data: bytes) -> Iterator[bytes]:
    """A zlib-style decompressor's output, a chunk at a time."""
    while True:
        out = d.decompress(data, _INFLATE_CHUNK)
        if out:
            yield out
        data = d.unconsumed_tail
        if d.eof or (not data and len(out) < _INFLATE_CHUNK):
            return


def _deflate(data: bytes) -> Iterator[bytes]:
    # "deflate" is meant as zlib-wrapped, and often sent raw: the first bytes say.
    try:
        zlib.decompressobj(zlib.MAX_WBITS).decompress(data[:64], 1)
        wbits = zlib.MAX_WBITS
    except zlib.error:
        wbits = -zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    yield from _inflate(d, data)
    if not d.eof:
        raise _Incomplete


def _unbrotli(data: bytes) -> Iterator[bytes]:
    import brotli  # installed with Scrapy, which asks servers for it

    d = brotli.Decompressor()
    for start in range(0, len(data), 1 << 16):
        yield d.process(data[start : start + (1 << 16)], output_buffer_limit=_INFLATE_CHUNK)
        while not d.can_accept_more_data():
            yield d.process(b"", output_buffer_limit=_INFLATE_CHUNK)
    if not d.is_finished():
        raise _Incomplete


def _unzstd(data: bytes) -> Iterator[bytes]:
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd  # installed with Scrapy, which asks servers for it

    while data:
        d = zstd.ZstdDecompressor()
        while True:
            out = d.decompress(data, _INFLATE_CHUNK)
            if out:
                yield out
            data = b""
            if d.eof or d.needs_input:
                break
        if not d.eof:
            raise _Incomplete
        data = d.unused_data


_DECODERS: dict[str, Callable[[bytes], Iterator[bytes]]] = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _deflate,
    "br": _unbrotli,
    "zstd": _unzstd,
}


def _decode_content(
    raw: bytes, encoding: str | None, notes: list[str], limit: int, cut_input: bool = False
) -> tuple[bytes, bool]:
    """The body with its content codings undone, last applied first, and
    whether it went past `limit` bytes (it is then cut there, roughly).

    A coding that cannot be undone leaves the body as it was at that step,
    with a note; a stream that ends early keeps what came before the end.
    cut_input: raw was already cut short, so an early end is no news.
    """
    codings = [c.strip().lower() for c in (encoding or "").split(",")]
    codings = [c for c in codings if c not in ("", "identity")]
    body = raw
    for coding in reversed(codings):
        decoder = _DECODERS.get(coding)
        if decoder is None:
            notes.append(f"content-encoding:unsupported-{coding}")
            return body, False
        out = bytearray()
        try:
            for chunk in decoder(body):
                out += chunk
                if len(out) > limit:
                    del out[limit + 1 :]
                    return bytes(out), True
        except ImportError:
            notes.append(f"content-encoding:unsupported-{coding}")
            return body, False
        except Exception:  # zlib.error, brotli.error, ZstdError, EOFError, _Incomplete
            if not out:
                notes.append("content-encoding:undecodable")
                return body, False
            if not cut_input:
                notes.append("content-encoding:truncated")
        body = bytes(out)
    return body, False


def payload_size(crawl_dir: Path, loc: Location) -> int | None:
    """Bytes of a response's HTTP payload as served (streamed, never held), or None."""
    try:
        with open(crawl_dir / "warc" / loc.filename, "rb") as fh:
            whole = _whole_response(fh, loc)
            if whole is not None:
                return len(whole[2])
            fh.seek(loc.offset)
            record = next(iter(ArchiveIterator(fh)))
            n = 0
            while chunk := record.raw_stream.read(1 << 16):
                n += len(chunk)
            return n
    except Exception:  # OSError, ArchiveLoadFailed, zlib.error, a bad header value ...
        # A size is a detail: a record that cannot give it costs only that.
        return None


def iter_payloads(
    crawl_dir: Path,
    pages: list[Capture],
    max_bytes: int,
    files: WarcFiles | None = None,
    *,
    cut: bool = False,
) -> Iterator[tuple[Capture, Payload | None, str | None]]:
    """(capture, payload, None) or (capture, None, reason) for each page, in order.

    Reads through `files` when given (the caller keeps it, and closes it);
    otherwise through handles of its own, closed when the iteration ends.
    max_bytes and cut: as read_payload.
    """
    if files is None:
        with WarcFiles(crawl_dir) as own:
            yield from iter_payloads(crawl_dir, pages, max_bytes, own, cut=cut)
        return
    for cap in pages:
        try:
            payload = read_payload(crawl_dir, cap.payload, cap.url, max_bytes, files, cut=cut)
        except ValueError as exc:
            yield cap, None, str(exc)
        else:
            yield cap, payload, None
