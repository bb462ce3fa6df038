"""What ``sunset package`` writes and ``sunset verify`` reads: the WACZ 1.1.1 layout.

A WACZ is a ZIP file (https://specs.webrecorder.net/wacz/1.1.1/)::

    archive/<the crawl's WARC files>   stored, never re-compressed
    indexes/index.cdx.gz               the CDXJ index as gzip blocks, stored
    indexes/index.idx                  one line per block: its first key, offset, length
    pages/pages.jsonl                  the pages a player lists
    datapackage.json                   every file above with its size and SHA-256
    datapackage-digest.json            the SHA-256 of datapackage.json

The index is kept in the compressed form (``index.cdx.gz`` plus
``index.idx``), as py-wacz writes it, rather than as one plain CDXJ file:
a player then fetches the small ``.idx`` and only the blocks a lookup needs,
however big the crawl; and pywb's ``wb-manager add --unpack-wacz`` only picks
up index files named ``*.cdx`` or ``*.cdx.gz``.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from typing import BinaryIO
from zipfile import ZipInfo

WACZ_VERSION = "1.1.1"
DATAPACKAGE = "datapackage.json"
DATAPACKAGE_DIGEST = "datapackage-digest.json"
ARCHIVE_DIR = "archive/"
INDEX_DIR = "indexes/"
CDX_GZ = "indexes/index.cdx.gz"
IDX = "indexes/index.idx"
PAGES = "pages/pages.jsonl"
IDX_FORMAT = "cdxj-gzip-1.0"
PAGES_HEADER = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
# cdxj-indexer's default: a lookup inflates one block of this many lines.
LINES_PER_BLOCK = 300

# signature, version, flags, method, time, date, crc, sizes, name and extra lengths
_LOCAL_HEADER = struct.Struct("<4sHHHHHLLLHH")
_LOCAL_MAGIC = b"PK\x03\x04"


def member_data_offset(fh: BinaryIO, info: ZipInfo) -> int:
    """Where a member's bytes start in the ZIP file, read from its local header.

    The central directory only says where the local header is; the header's
    own name and extra-field lengths (which may differ from the central
    copy's) give the start of the data.
    """
    fh.seek(info.header_offset)
    raw = fh.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != _LOCAL_MAGIC:
        raise ValueError(f"no local file header at {info.header_offset} (damaged)")
    fields = _LOCAL_HEADER.unpack(raw)
    flags, name_len, extra_len = fields[2], fields[-2], fields[-1]
    # zipfile refuses a member whose two headers disagree on its name; a
    # reader going straight to the bytes must not be more lenient.
    name = fh.read(name_len).decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if name != info.orig_filename:
        raise ValueError(f"its local file header names it {name!r} (damaged)")
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def cdx_prefix(line: bytes) -> bytes:
    """The ``urlkey timestamp`` part of a CDXJ line (what the .idx keys blocks by)."""
    return line.split(b"{", 1)[0].strip()


class Sha256Writer:
    """A write-only stream that hashes and counts what passes through it."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.out.write(data)

    def hexdigest(self) -> str:
        return self.sha256.hexdigest()


class CompressedIndexWriter:
    """Sorted CDXJ lines in, ``index.cdx.gz`` blocks out, ``index.idx`` lines kept.

    Each block of lines is one gzip member, so a reader can inflate a block
    on its own from the offset and length in the .idx; the .idx also carries
    each block's SHA-256, which ``sunset verify`` checks.
    """

    def __init__(self, out: BinaryIO, data_name: str = "index.cdx.gz") -> None:
        self.out = out
        self.data_name = data_name
        self.block: list[bytes] = []
        self.offset = 0
        self.idx: list[bytes] = [
            b"!meta 0 " + json.dumps({"format": IDX_FORMAT, "filename": data_name}).encode() + b"\n"
        ]

    def add(self, line: bytes) -> None:
        self.block.append(line)
        if len(self.block) >= LINES_PER_BLOCK:
            self.flush()

    def flush(self) -> None:
        if not self.block:
            return
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        data = comp.compress(b"".join(self.block)) + comp.flush()
        entry = {
            "offset": self.offset,
            "length": len(data),
            "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        }
        self.idx.append(cdx_prefix(self.block[0]) + b" " + json.dumps(entry).encode() + b"\n")
        self.out.write(data)
        self.offset += len(data)
        self.block = []

    def idx_bytes(self) -> bytes:
        self.flush()
        return b"".join(self.idx)
