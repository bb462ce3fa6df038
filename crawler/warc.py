"""WARC/1.1 output: rotation, naming, warcinfo, and records built from raw bytes.

warcio parses and re-serialises HTTP headers when it is handed a response, which
would lose their exact bytes; here each record's block is the raw bytes as
received, the digests are computed from those bytes, and warcio only frames and
compresses the record. Each record is built whole in memory and written with
one call, so a crash leaves at most one torn record at the end of a file, and a
failed write (a full disk) is cut back to the last whole record.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import socket
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from .fetch import Exchange

WARC_VERSION = "WARC/1.1"
GZIP_LEVEL = 6
REVISIT_PROFILE = "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
CONFORMS_TO = "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/"


def sha1_b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def warc_date(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


class RawHttpHeaders(StatusAndHeaders):
    """HTTP headers that warcio writes back exactly as received.

    warcio writes a revisit record's block from its parsed HTTP headers,
    re-serialised; this keeps the received bytes instead.
    """

    def __init__(self, raw: bytes) -> None:
        super().__init__("", [], protocol="")
        self.headers_buff = raw

    def compute_headers_buffer(self, header_filter: object = None) -> None:
        return None

    def __bool__(self) -> bool:
        # warcio tests the headers object for truth before writing it; with no
        # parsed headers the base class would say False and the block be lost.
        return True


class WarcWriteError(Exception):
    """Writing the archive failed (disk full, permissions); the file was cut back."""


@dataclass
class Written:
    record_id: str
    date: str
    filename: str
    offset: int
    length: int
    payload_digest: str | None = None


class WarcFiles:
    """Writes records to rotating WARC files named prefix-timestamp-serial-host.warc.gz."""

    def __init__(
        self, folder: Path, prefix: str, max_size: int, info: dict[str, str], first_serial: int = 0
    ) -> None:
        self.folder = folder
        self.prefix = prefix
        self.max_size = max_size
        self.info = info
        self.serial = first_serial
        self.host = socket.gethostname().split(".")[0] or "localhost"
        self.fh: io.RawIOBase | None = None
        self.path: Path | None = None
        self.size = 0
        self.files: list[Path] = []
        # Told of each file once its warcinfo record is on disk (the live indexer).
        self.on_open: Callable[[Path], None] | None = None
        # Names of files cut back after a failed write: a reader that followed
        # them may have seen bytes that are no longer there.
        self.cut: set[str] = set()
        # warcio frames each record; compression is done here, one gzip member
        # per record as before, at level 6: warcio's fixed level 9 costs about
        # twice the CPU for a percent or two of size.
        self.writer = WARCWriter(None, gzip=False, warc_version=WARC_VERSION)

    # -- files

    def _open(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        name = f"{self.prefix}-{stamp}-{self.serial:05d}-{self.host}.warc.gz"
        self.serial += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        # ".open" until closed, as Heritrix does: a file still named so after
        # a crash is checked (and a torn tail set aside) before a resume.
        self.path = self.folder / (name + ".open")
        # Unbuffered: after a failed write nothing is left pending in a buffer,
        # so cutting the file back to the last whole record sticks.
        self.fh = open(self.path, "xb", buffering=0)  # noqa: SIM115
        self.size = 0
        info = dict(self.info)
        block = "".join(f"{k}: {v}\r\n" for k, v in info.items() if v).encode("utf-8")
        self._write(
            self._record(
                "warcinfo", "", [("WARC-Filename", name)], block, "application/warc-fields"
            )
        )
        if self.on_open is not None:
            self.on_open(self.path)

    def close(self) -> None:
        if self.fh is None or self.path is None:
            return
        try:
            os.fsync(self.fh.fileno())
        finally:
            self.fh.close()
        final = self.path.with_name(self.path.name.removesuffix(".open"))
        os.replace(self.path, final)
        self.files.append(final)
        self.fh = None
        self.path = None

    def close_if_whole(self) -> bool:
        """Close the open file if it ends on a whole record; for an exit at once.

        Called from a signal handler, which may have stopped this object in
        the middle of a write: the file is closed only when its size on disk
        is the size of the records written whole, and otherwise left `.open`.
        """
        if self.fh is None or self.path is None:
            return True
        try:
            if os.fstat(self.fh.fileno()).st_size != self.size:
                return False
        except (OSError, ValueError):
            return False
        self.close()
        return True

    # -- records

    def _record(
        self,
        rec_type: str,
        uri: str,
        extra: list[tuple[str, str]],
        block: bytes,
        content_type: str,
        date: str | None = None,
        rid: str | None = None,
        payload_digest: str | None = None,
    ) -> tuple[ArcWarcRecord, str, str]:
        rid = rid or record_id()
        date = date or warc_date(datetime.now(UTC))
        headers = [("WARC-Type", rec_type), ("WARC-Record-ID", rid), ("WARC-Date", date)]
        if uri:
            headers.append(("WARC-Target-URI", uri))
        headers += extra
        headers.append(("WARC-Block-Digest", sha1_b32(block)))
        if payload_digest:
            headers.append(("WARC-Payload-Digest", payload_digest))
        status = StatusAndHeaders("", headers, protocol=WARC_VERSION)
        if rec_type == "revisit":
            # warcio writes only the HTTP headers of a revisit; hand them over as raw bytes.
            rec = ArcWarcRecord(
                "warc",
                rec_type,
                status,
                io.BytesIO(b""),
                RawHttpHeaders(block),
                content_type,
                len(block),
            )
            rec.payload_length = 0
        else:
            rec = ArcWarcRecord(
                "warc", rec_type, status, io.BytesIO(block), None, content_type, len(block)
            )
            rec.payload_length = len(block)
        return rec, rid, date

    def _write(self, built: tuple[ArcWarcRecord, str, str]) -> Written:
        rec, rid, date = built
        buf = io.BytesIO()
        self.writer.out = buf
        self.writer.write_record(rec)
        packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        data = packer.compress(buf.getvalue()) + packer.flush()
        assert self.fh is not None and self.path is not None
        offset = self.size
        try:
            view = memoryview(data)
            while view:
                written = self.fh.write(view)
                view = view[written or 0 :]
        except OSError as exc:
            # Leave the file ending on a whole record, whatever reached the disk.
            self.cut.add(self.path.name.removesuffix(".open"))
            with contextlib.suppress(OSError):
                self.fh.truncate(offset)
                self.fh.seek(offset)
            raise WarcWriteError(f"cannot write {self.path.name}: {exc.strerror or exc}") from None
        self.size += len(data)
        return Written(rid, date, self.path.name.removesuffix(".open"), offset, len(data))

    def _ensure_room(self) -> None:
        if self.fh is None or (self.max_size and self.size >= self.max_size):
            self.close()
            self._open()

    def write_exchange(
        self,
        ex: Exchange,
        revisit_of: tuple[str, str] | None = None,
    ) -> tuple[Written, Written]:
        """Write response (or revisit) then request, linked by WARC-Concurrent-To."""
        self._ensure_room()
        date = warc_date(ex.date)
        payload_digest = sha1_b32(ex.body)
        common = [("WARC-IP-Address", ex.ip)] if ex.ip else []
        if revisit_of:
            extra = [
                *common,
                ("WARC-Profile", REVISIT_PROFILE),
                ("WARC-Refers-To-Target-URI", revisit_of[0]),
                ("WARC-Refers-To-Date", revisit_of[1]),
            ]
            # The identical-payload profile keeps the headers and drops the body.
            built = self._record(
                "revisit",
                ex.url,
                extra,
                ex.head,
                "application/http; msgtype=response",
                date,
                payload_digest=payload_digest,
            )
        else:
            extra = list(common)
            if ex.truncated:
                extra.append(("WARC-Truncated", ex.truncated))
            built = self._record(
                "response",
                ex.url,
                extra,
                ex.head + ex.body,
                "application/http; msgtype=response",
                date,
                payload_digest=payload_digest,
            )
        resp = self._write(built)
        resp.payload_digest = payload_digest
        req_block = ex.request
        head_end = req_block.find(b"\r\n\r\n") + 4
        req = self._write(
            self._record(
                "request",
                ex.url,
                [*common, ("WARC-Concurrent-To", resp.record_id)],
                req_block,
                "application/http; msgtype=request",
                date,
                payload_digest=sha1_b32(req_block[head_end:]),
            )
        )
        return resp, req

    def write_metadata(self, url: str, concurrent_to: str, fields: list[tuple[str, str]]) -> None:
        self._ensure_room()
        block = "".join(f"{k}: {v}\r\n" for k, v in fields).encode("utf-8")
        self._write(
            self._record(
                "metadata",
                url,
                [("WARC-Concurrent-To", concurrent_to)],
                block,
                "application/warc-fields",
            )
        )
