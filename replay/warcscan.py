"""Stream the records of a WARC file and recompute their digests, as warcio does.

sunset writes one gzip member per record, so a file is inflated member by
member with zlib and the record framing is parsed here. zlib and hashlib are C
and release the GIL; warcio's layered Python readers cost more per record than
the hashing itself on a site made of small pages, which is why this does not
go through warcio. ``tests/test_verify.py`` checks the verdicts against
``warcio check`` on a real crawl.

What counts as the payload follows warcio exactly: for ``response``,
``request`` and ``revisit`` records with an http(s) target the HTTP header
block is skipped up to the first line that is empty once trailing whitespace
is stripped (the bytes decoded as UTF-8, else Latin-1); for every other record
the payload is the whole block. Revisit payload digests are not checked (a revisit
carries the digest of another record's payload), nor are those of continuation
segments; records without digest headers are left unverified, not failed.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

READ_SIZE = 1 << 20
# Compressed bytes handed to zlib per call. Small enough that the copy zlib
# makes of the input left over after a member ends (``unused_data``) stays
# cheap when a chunk holds hundreds of small members; large enough that big
# records cost few calls.
FEED_SIZE = 32 << 10
# Inflated bytes per call: bounds memory even at an extreme compression ratio.
MAX_OUT = 4 << 20
# A WARC header block longer than this is damage, not a record.
MAX_WARC_HEAD = 1 << 20
# Past this, an HTTP header block is kept only from its last incomplete line.
KEEP_HTTP_HEAD = 1 << 16

GZIP_MAGIC = b"\x1f\x8b\x08"
HTTP_TYPES = frozenset({"response", "request", "revisit"})

# Every byte that is, or may be part of, a character str.rstrip() removes:
# ASCII whitespace, the separators 0x1c-0x1f, and any non-ASCII byte (it could
# start NBSP, NEL or another Unicode space). A line made only of these is
# possibly blank and gets the exact, slower test.
_MAYBE_SPACE = b" \t\r\x0b\x0c\x1c\x1d\x1e\x1f" + bytes(range(0x80, 0x100))

_HEAD, _BLOCK, _TRAIL, _SKIP = range(4)

Hasher = Any  # hashlib's hash objects have no public type


@dataclass(slots=True)
class Record:
    """One WARC record as read from the file, with its digest verdicts.

    ``offset`` and ``length`` are what a CDXJ index holds: the start of the
    gzip member where the record begins, and the compressed bytes up to the
    end of the member where it ends (for an uncompressed file, the record's
    own bytes).
    """

    offset: int
    length: int = 0
    rec_type: str = ""
    uri: str = ""
    date: str = ""
    record_id: str = ""
    content_type: str = ""
    http_status: str | None = None
    block_digest: str | None = None
    payload_digest: str | None = None
    # True: matches; False: does not; None: nothing to check.
    block_ok: bool | None = None
    payload_ok: bool | None = None
    # sha1 of the payload: what cdxj-indexer writes for a record without a
    # payload digest header.
    payload_sha1: bytes = b""
    problems: list[str] = field(default_factory=list)
    # WARC-Truncated: the capture itself was cut short (a length or time
    # limit, a dropped connection); the record is whole and its digests hold.
    truncated: str = ""

    def payload_sha1_text(self) -> str:
        return "sha1:" + b32_encode(self.payload_sha1)


@dataclass(slots=True)
class Damage:
    """Bytes that could not be read as records: corrupt gzip, garbage, truncation."""

    offset: int
    message: str
    uri: str = ""
    # The input ended inside a record or a gzip member. At the end of a file
    # that is truncation; at the end of one stretch of a file it means the
    # stretch was cut at a false member boundary (see next_member).
    at_end: bool = False


def is_blank_line(line: bytes) -> bool:
    """Whether warcio's header parser would see ``line`` as the end of a header block."""
    if line.translate(None, _MAYBE_SPACE) != b"\n":
        return False
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        text = line.decode("latin-1")
    return not text.rstrip()


def header_end(buf: bytes | bytearray, pos: int = 0, stop: int | None = None) -> tuple[int, int]:
    """Find the blank line that ends a header block whose lines start at ``pos``.

    Returns (index just past the blank line, -1), or (-1, the start of the
    first incomplete line) when ``buf[:stop]`` holds no blank line yet.
    """
    if stop is None:
        stop = len(buf)
    term = buf.find(b"\r\n\r\n", pos, stop)
    if term >= 0:
        # The usual case, decided in C: no line before the CRLF CRLF could
        # possibly be blank, so it ends the block.
        squeezed = buf[pos : term + 2].translate(None, _MAYBE_SPACE)
        if not squeezed.startswith(b"\n") and b"\n\n" not in squeezed:
            return term + 4, -1
    else:
        # No CRLF CRLF: if no complete line could be blank either, say so in C
        # rather than test the lines one by one (a header block of a million
        # short lines that never ends).
        last = buf.rfind(b"\n", pos, stop)
        if last < 0:
            return -1, pos
        squeezed = buf[pos : last + 1].translate(None, _MAYBE_SPACE)
        if not squeezed.startswith(b"\n") and b"\n\n" not in squeezed:
            return -1, last + 1
    while True:
        nl = buf.find(b"\n", pos, stop)
        if nl < 0:
            return -1, pos
        if is_blank_line(bytes(buf[pos : nl + 1])):
            return nl + 1, -1
        pos = nl + 1


def parse_digest(value: str) -> tuple[str, str]:
    """(hashlib algorithm name, encoded value) of a WARC digest header."""
    algo, _, encoded = value.partition(":")
    return algo.strip().lower().replace("-", ""), encoded.strip()


_B32 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
# int(..., 32) reads 0-9a-v; mapping the RFC 4648 alphabet onto those digits
# decodes base32 in C (base64.b32decode is a Python loop, too slow per record).
_B32_AS_DIGITS = bytes.maketrans(_B32, b"0123456789abcdefghijklmnopqrstuv")


def b32_decode(encoded: bytes, nbytes: int) -> bytes | None:
    """The ``nbytes`` bytes an upper-case base32 string stands for, or None."""
    encoded = encoded.rstrip(b"=")
    extra = len(encoded) * 5 - nbytes * 8
    if not encoded or not 0 <= extra < 5 or encoded.translate(None, _B32):
        return None
    return (int(encoded.translate(_B32_AS_DIGITS), 32) >> extra).to_bytes(nbytes, "big")


def b32_encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii")


def digest_equal(expected: str, raw: bytes) -> bool:
    """Whether a digest header names ``raw``: base32, or hex or base64 as warcio accepts."""
    if len(expected) == 37 and len(raw) == 20 and expected.startswith("sha1:"):
        return b32_decode(expected[5:].encode("ascii", "replace"), 20) == raw
    encoded = expected.partition(":")[2].strip().encode("ascii", "replace")
    b32_len = (len(raw) * 8 + 4) // 5
    if len(encoded.rstrip(b"=")) == b32_len:
        return b32_decode(encoded, len(raw)) == raw
    if len(encoded) == 2 * len(raw):
        return encoded.lower() == raw.hex().encode()
    try:
        alt = b"-_" if (b"-" in encoded or b"_" in encoded) else None
        return base64.b64decode(encoded, altchars=alt, validate=True) == raw
    except ValueError:
        return False


_CONSTRUCTORS: dict[str, Callable[[], Hasher]] = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "md5": hashlib.md5,
}


def _hasher(value: str | None) -> Hasher | None:
    if not value:
        return None
    if value.startswith("sha1:"):
        return hashlib.sha1()
    algo = parse_digest(value)[0]
    make = _CONSTRUCTORS.get(algo)
    if make is not None:
        return make()
    try:
        return hashlib.new(algo)
    except ValueError:
        return None


def _text(value: bytes) -> str:
    # warcio's header decoding: UTF-8, else Latin-1.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _decode_head(head: bytes) -> str:
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError:
        # warcio decodes line by line, so one bad line does not turn the rest to Latin-1.
        return "\n".join(_text(line) for line in head.split(b"\n"))


def _parse_warc_head(head: str) -> tuple[str, dict[str, str]]:
    """(version line, header values by lower-cased name; the first wins, as in warcio)."""
    lines = head.split("\n")
    headers: dict[str, str] = {}
    last = ""
    for raw_line in lines[1:]:
        line = raw_line.rstrip()
        if not line:
            break
        if line[0] in " \t":
            # A continuation line belongs to the header before it.
            if last:
                headers[last] += line
            continue
        name, sep, value = line.partition(":")
        last = ""
        if sep:
            key = name.rstrip(" \t").lower()
            if key not in headers:
                headers[key] = value.strip()
                last = key
    return lines[0].strip(), headers


class _Parser:
    """Record framing over the inflated byte stream, fed one piece at a time.

    Completed records and damage collect in ``out``. In a gzip file a record
    is complete only when its member ends, since that fixes its length.
    """

    def __init__(self, raw: bool) -> None:
        self.raw = raw
        self.state = _HEAD
        self.pos = 0  # inflated bytes fed before the current piece
        self.member_start = 0
        self.head = bytearray()
        self.scan = 0
        self.rec: Record | None = None
        self.remaining = 0
        self.block_hasher: Hasher | None = None
        self.payload_hasher: Hasher | None = None
        self.sha1: Hasher | None = None
        self.http_head: bytearray | None = None
        self.http_scan = 0
        # The HTTP header line being read is too long to keep and cannot be
        # blank: its bytes are dropped up to its end.
        self.http_skip_line = False
        # How much of http_head (from http_scan) is known to be possible whitespace.
        self.http_clean = 0
        self.http_done = True
        self.trail = b""
        self.pending: list[Record] = []
        self.out: list[Record | Damage] = []

    def feed(self, data: bytes) -> None:
        i, n = 0, len(data)
        while i < n:
            state = self.state
            if state == _BLOCK:
                j = min(i + self.remaining, n)
                self._block(data, i, j)
                self.remaining -= j - i
                i = j
                if not self.remaining:
                    self._block_done()
            elif state == _HEAD:
                i = self._head(data, i, n)
                if self.state == _BLOCK and i + self.remaining + 4 <= n:
                    # The usual case: the whole record is in this piece.
                    j = i + self.remaining
                    self._block(data, i, j)
                    self.remaining = 0
                    self._block_done()
                    self.trail = data[j : j + 4]
                    i = j + 4
                    self._trail_done(i)
            elif state == _TRAIL:
                need = 4 - len(self.trail)
                self.trail += data[i : i + need]
                i = min(i + need, n)
                if len(self.trail) == 4:
                    self._trail_done(i)
            elif self.raw:
                # Unreadable bytes in a plain WARC: resume at the next record.
                j = data.find(b"WARC/1.", i)
                if j < 0:
                    i = n
                else:
                    self.state, i = _HEAD, j
            else:
                i = n  # skipped up to the end of the gzip member
        self.pos += n

    def _head(self, data: bytes, i: int, n: int) -> int:
        if not self.head:
            # Blank lines between records are tolerated, as warcio does.
            while i < n and data[i] in b"\r\n":
                i += 1
            if i == n:
                return n
            self.rec = Record(offset=self.pos + i if self.raw else self.member_start)
            end, _ = header_end(data, i, n)
            if end >= 0:
                self._start_block(data[i:end])
                return end
        start = len(self.head)
        self.head += data[i:n]
        end, self.scan = header_end(self.head, self.scan)
        if end < 0:
            if len(self.head) > MAX_WARC_HEAD:
                self._damage("no end to the WARC header block")
            return n
        head = bytes(self.head[:end])
        self.head.clear()
        self.scan = 0
        self._start_block(head)
        return i + end - start

    def idle(self) -> bool:
        """Between records, with nothing held: the next member can be read on its own."""
        return self.state == _HEAD and self.rec is None and not self.head and not self.pending

    def member_end(self, end: int) -> None:
        """The gzip member that started at ``member_start`` ends at compressed ``end``."""
        for rec in self.pending:
            rec.length = end - rec.offset
            self.out.append(rec)
        self.pending.clear()
        if self.state == _SKIP:
            self.reset()
        self.member_start = end

    def finish(self) -> None:
        """End of file: an unfinished record is truncation."""
        rec = self.rec
        if rec is not None and self.state != _SKIP:
            what = {
                _HEAD: "inside the record's WARC header block",
                _BLOCK: f"{self.remaining:,} bytes before the end of the record's block",
                _TRAIL: "before the record's closing CRLF CRLF",
            }[self.state]
            self.out.append(
                Damage(rec.offset, f"file ends {what} (truncated)", rec.uri, at_end=True)
            )
        self.reset()

    def _start_block(self, head: bytes) -> None:
        rec = self.rec
        assert rec is not None
        version, h = _parse_warc_head(_decode_head(head))
        if not version.startswith("WARC/"):
            self._damage(f"not a WARC record (starts {version[:40]!r})")
            return
        get = h.get
        rec.rec_type = get("warc-type", "")
        rec.uri = get("warc-target-uri", "").strip("<>")
        rec.date = get("warc-date", "")
        rec.record_id = get("warc-record-id", "")
        rec.content_type = get("content-type", "")
        rec.block_digest = get("warc-block-digest")
        rec.payload_digest = get("warc-payload-digest")
        rec.truncated = get("warc-truncated", "")
        try:
            length = int(h.get("content-length", ""))
        except ValueError:
            length = -1
        if length < 0:
            self._damage("record has no valid Content-Length")
            return
        # A revisit's block (its own HTTP headers) is still there to check; only
        # its payload lives in another record. Segments are checked as a whole.
        block_checked = "warc-segment-number" not in h
        checked = rec.rec_type != "revisit" and block_checked
        self.block_hasher = _hasher(rec.block_digest) if block_checked else None
        if block_checked and rec.block_digest and self.block_hasher is None:
            rec.problems.append(f"unknown block digest algorithm: {rec.block_digest}")
        payload = _hasher(rec.payload_digest) if checked else None
        if checked and rec.payload_digest and payload is None:
            rec.problems.append(f"unknown payload digest algorithm: {rec.payload_digest}")
        # sha1 of the payload is always wanted (an index holds it for records
        # without a payload digest header): share a sha1 payload hasher.
        if payload is not None and payload.name == "sha1":
            self.sha1, self.payload_hasher = payload, None
        else:
            self.sha1, self.payload_hasher = hashlib.sha1(), payload
        is_http = rec.rec_type in HTTP_TYPES and rec.uri.startswith(("http:", "https:"))
        self.http_done = not (is_http and length > 0)
        self.http_head = None
        self.http_scan = 0
        self.http_skip_line = False
        self.http_clean = 0
        self.remaining = length
        self.state = _BLOCK
        if not length:
            self._block_done()

    def _block(self, data: bytes, i: int, j: int) -> None:
        mv = memoryview(data)
        if self.block_hasher is not None:
            self.block_hasher.update(mv[i:j])
        if not self.http_done:
            i = self._http_headers(data, i, j)
            if i < 0:
                return
        assert self.sha1 is not None
        if i < j:
            self.sha1.update(mv[i:j])
            if self.payload_hasher is not None:
                self.payload_hasher.update(mv[i:j])

    def _http_headers(self, data: bytes, i: int, j: int) -> int:
        """Skip the HTTP header block: where the payload starts in data, or -1."""
        head = self.http_head
        if head is None:
            end, _ = header_end(data, i, j)
            if end >= 0:
                self._http_status(data, i)
                self.http_done = True
                return end
            head = self.http_head = bytearray()
        if self.http_skip_line:
            nl = data.find(b"\n", i, j)
            if nl < 0:
                return -1
            self.http_skip_line = False
            i = nl + 1
        start = len(head)
        head += data[i:j]
        # Until a line ends here no new line can be blank: the incomplete
        # line is not searched again for every piece of it (that was
        # quadratic in a long header line).
        if head.find(b"\n", start) >= 0:
            end, self.http_scan = header_end(head, self.http_scan)
        else:
            end = -1
        if end < 0:
            if len(head) > KEEP_HTTP_HEAD:
                self._http_status(head, 0)
                clean = max(self.http_clean - self.http_scan, 0)
                del head[: self.http_scan]
                self.http_scan = 0
                if len(head) > KEEP_HTTP_HEAD:
                    if head[clean:].translate(None, _MAYBE_SPACE):
                        # A line with anything but whitespace in it ends no
                        # header block; only its end is still wanted, so
                        # memory stays flat.
                        self.http_skip_line = True
                        head.clear()
                        clean = 0
                    else:
                        clean = len(head)
                self.http_clean = clean
            return -1
        self._http_status(head, 0)
        self.http_head = None
        self.http_done = True
        return i + end - start

    def _http_status(self, buf: bytes | bytearray, i: int) -> None:
        rec = self.rec
        if rec is None or rec.http_status is not None or rec.rec_type == "request":
            return
        nl = buf.find(b"\n", i)
        words = buf[i : nl if nl >= 0 else len(buf)].split(None, 2)
        ok = len(words) > 1 and words[0].startswith(b"HTTP/")
        rec.http_status = words[1].decode("latin-1") if ok else ""

    def _block_done(self) -> None:
        rec = self.rec
        assert rec is not None and self.sha1 is not None
        if not self.http_done and self.http_head is not None:
            # The block ended inside the HTTP headers: warcio then reads an
            # empty payload, and so does this.
            self._http_status(self.http_head, 0)
        self.http_head = None
        sha1 = self.sha1.digest()
        rec.payload_sha1 = sha1
        if self.block_hasher is not None and rec.block_digest:
            rec.block_ok = digest_equal(rec.block_digest, self.block_hasher.digest())
        if rec.payload_digest and rec.rec_type != "revisit":
            if self.payload_hasher is not None:
                rec.payload_ok = digest_equal(rec.payload_digest, self.payload_hasher.digest())
            elif parse_digest(rec.payload_digest)[0] == "sha1":
                rec.payload_ok = digest_equal(rec.payload_digest, sha1)
        self.block_hasher = self.payload_hasher = self.sha1 = None
        self.trail = b""
        self.state = _TRAIL

    def _trail_done(self, i: int) -> None:
        rec = self.rec
        assert rec is not None
        if self.trail != b"\r\n\r\n":
            rec.problems.append("record does not end with CRLF CRLF")
        if self.raw:
            rec.length = self.pos + i - rec.offset
            self.out.append(rec)
        else:
            self.pending.append(rec)
        self.rec = None
        self.state = _HEAD

    def _damage(self, message: str) -> None:
        rec = self.rec
        assert rec is not None
        self.out.append(Damage(rec.offset, message, rec.uri))
        self.reset()
        self.state = _SKIP

    def reset(self) -> None:
        self.state = _HEAD
        self.head.clear()
        self.scan = 0
        self.rec = None
        self.http_head = None
        self.http_skip_line = False
        self.http_done = True
        self.block_hasher = self.payload_hasher = self.sha1 = None


# Whole records in one gzip member take the short path (whole_record);
# tests turn it off to check that the general parser agrees.
FAST = True


def whole_record(out: bytes, offset: int) -> Record | None:
    """The record that is all of ``out`` (one inflated member), or None if not that simple.

    The same rules as the general parser (:class:`_Parser`), in one pass
    without its state machine; anything unusual (a second record, no CRLF
    CRLF at the end, a digest other than sha1, undecodable headers) returns
    None and the general parser takes the member.
    """
    n = len(out)
    end, _ = header_end(out, 0, n)
    if end < 0 or not out.startswith(b"WARC/"):
        return None
    try:
        _version, h = _parse_warc_head(out[:end].decode("utf-8"))
        length = int(h.get("content-length", ""))
    except ValueError:  # UnicodeDecodeError is one
        return None
    stop = end + length
    if length < 0 or stop + 4 != n or out[stop:] != b"\r\n\r\n":
        return None
    get = h.get
    block_digest = get("warc-block-digest")
    payload_digest = get("warc-payload-digest")
    if (block_digest and not block_digest.startswith("sha1:")) or (
        payload_digest and not payload_digest.startswith("sha1:")
    ):
        return None
    rec_type = get("warc-type", "")
    uri = get("warc-target-uri", "").strip("<>")
    mv = memoryview(out)
    start = end
    status = None
    if length and rec_type in HTTP_TYPES and uri.startswith(("http:", "https:")):
        head_end, _ = header_end(out, end, stop)
        start = head_end if head_end >= 0 else stop
        if rec_type != "request":
            nl = out.find(b"\n", end, stop)
            words = out[end : nl if nl >= 0 else stop].split(None, 2)
            ok = len(words) > 1 and words[0].startswith(b"HTTP/")
            status = words[1].decode("latin-1") if ok else ""
    sha1 = hashlib.sha1(mv[start:stop]).digest()
    block_ok = payload_ok = None
    if "warc-segment-number" not in h:
        # A revisit's block (its HTTP headers) is checked too; its payload
        # digest names bytes held by another record.
        if block_digest:
            raw = sha1 if start == end else hashlib.sha1(mv[end:stop]).digest()
            block_ok = digest_equal(block_digest, raw)
        if payload_digest and rec_type != "revisit":
            payload_ok = digest_equal(payload_digest, sha1)
    return Record(
        offset=offset,
        rec_type=rec_type,
        uri=uri,
        date=get("warc-date", ""),
        record_id=get("warc-record-id", ""),
        content_type=get("content-type", ""),
        http_status=status,
        block_digest=block_digest,
        payload_digest=payload_digest,
        block_ok=block_ok,
        payload_ok=payload_ok,
        payload_sha1=sha1,
        truncated=get("warc-truncated", ""),
    )


def scan(
    stream: BinaryIO,
    size: int | None = None,
    on_chunk: Callable[[bytes], None] | None = None,
    base: int = 0,
) -> Iterator[Record | Damage]:
    """Every record, and every stretch of damage, in a WARC stream, in file order.

    ``stream`` is read sequentially in large chunks, at most ``size`` bytes
    when given; each chunk goes to ``on_chunk`` (whole-file hash, progress)
    before it is parsed. Offsets are reported from ``base``: where the stream
    starts in the WARC file, when a scan covers one stretch of it (see
    :func:`next_member`). Gzip is recognised from the first bytes. After a
    corrupt member the scan resumes at the next gzip header, so one bad byte
    does not hide the rest of the file.
    """
    reader = _Reader(stream, size, on_chunk)
    first = reader.read()
    if first.startswith(GZIP_MAGIC):
        yield from _scan_gzip(reader, first, base)
    else:
        yield from _scan_plain(reader, first, base)


def next_member(fh: BinaryIO, start: int, pos: int, end: int) -> int | None:
    """Offset of the first gzip member at or after ``pos`` that holds a WARC record.

    ``fh`` holds the WARC at ``start`` (a WACZ keeps it inside), offsets are
    relative to that and the search stops at ``end``. A place where a scan
    can be split: a candidate counts only if it inflates to ``WARC/``, which
    chance gzip magic inside compressed data does not. A gzipped WARC file
    archived as a payload and deflated as stored blocks would pass, though:
    the scan of the stretch before then ends inside a member (a Damage with
    ``at_end``), and the caller must rescan across the false boundary.
    """
    window = 1 << 18
    while pos < end:
        fh.seek(start + pos)
        buf = fh.read(min(window + (64 << 10), end - pos))
        if not buf:
            return None
        i = 0
        while True:
            j = buf.find(GZIP_MAGIC, i)
            if j < 0 or j >= window:
                break
            try:
                out = zlib.decompressobj(31).decompress(buf[j : j + (64 << 10)], 16)
            except zlib.error:
                out = b""
            if out.startswith(b"WARC/"):
                return pos + j
            i = j + 1
        pos += window
    return None


class _Reader:
    def __init__(
        self, stream: BinaryIO, size: int | None, on_chunk: Callable[[bytes], None] | None
    ) -> None:
        self.stream = stream
        self.left = size
        self.on_chunk = on_chunk

    def read(self) -> bytes:
        n = READ_SIZE if self.left is None else min(READ_SIZE, self.left)
        if n <= 0:
            return b""
        chunk = self.stream.read(n) or b""
        if self.left is not None:
            self.left -= len(chunk)
        if chunk and self.on_chunk is not None:
            self.on_chunk(chunk)
        return chunk


def _scan_plain(reader: _Reader, chunk: bytes, base: int) -> Iterator[Record | Damage]:
    parser = _Parser(raw=True)
    parser.pos = base
    if chunk and not chunk.lstrip(b"\r\n").startswith(b"WARC/"):
        yield Damage(base, "neither gzip nor WARC data")
        return
    while chunk:
        parser.feed(chunk)
        yield from parser.out
        parser.out.clear()
        chunk = reader.read()
    parser.finish()
    yield from parser.out


def _scan_gzip(reader: _Reader, chunk: bytes, base: int) -> Iterator[Record | Damage]:
    parser = _Parser(raw=False)
    parser.member_start = base
    d: Any = None  # the current member's zlib decompressor
    # base: the WARC offset of chunk[0]
    # After damage: look for the next gzip header and keep quiet about false
    # starts (the magic bytes occur by chance inside compressed data) until a
    # member reads as a record again.
    recovering = False
    while chunk:
        mv = memoryview(chunk)
        n = len(chunk)
        i = 0
        while i < n:
            fresh = d is None
            if fresh:
                if recovering:
                    j = chunk.find(GZIP_MAGIC, i)
                    if j < 0:
                        i = max(i, n - len(GZIP_MAGIC) + 1)  # it may straddle chunks
                        break
                    i = j
                d = zlib.decompressobj(31)
                parser.member_start = base + i
            piece = mv[i : i + FEED_SIZE]
            try:
                out = d.decompress(piece, MAX_OUT)
            except zlib.error as exc:
                start = parser.member_start
                if not recovering:
                    rec = parser.rec or (parser.pending[0] if parser.pending else None)
                    uri = rec.uri if rec is not None else ""
                    yield Damage(start, f"unreadable gzip data ({exc})", uri)
                parser.reset()
                parser.pending.clear()
                d = None
                recovering = True
                i = start - base + 1 if start >= base else i + 1
                continue
            # At a member's end the input left over is in unused_data; CPython
            # leaves a copy of it in unconsumed_tail too when an earlier call
            # stopped at MAX_OUT, and counting it twice would step back into
            # the member just read (over and over: verify never finished).
            i += len(piece) - len(d.unused_data if d.eof else d.unconsumed_tail)
            if fresh and d.eof and FAST and parser.idle():
                # A whole member inflated in one call, as most are.
                rec = whole_record(out, parser.member_start)
                if rec is not None:
                    rec.length = base + i - parser.member_start
                    parser.pos += len(out)
                    parser.member_start = base + i
                    d = None
                    recovering = False
                    yield rec
                    continue
            if out:
                parser.feed(out)
            if d.eof:
                d = None
                parser.member_end(base + i)
            if parser.out:
                for item in parser.out:
                    if isinstance(item, Record):
                        recovering = False
                        yield item
                    elif not recovering:
                        yield item
                parser.out.clear()
        tail = chunk[i:]
        base += n - len(tail)
        more = reader.read()
        if not more:
            break
        chunk = tail + more if tail else more
    if d is not None and not recovering:
        rec = parser.rec or (parser.pending[0] if parser.pending else None)
        yield Damage(
            parser.member_start,
            "file ends inside a gzip member (truncated)",
            rec.uri if rec is not None else "",
            at_end=True,
        )
        parser.reset()
    parser.pending.clear()
    parser.finish()
    if not recovering:
        yield from parser.out
