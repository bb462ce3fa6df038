"""``sunset verify``: prove that a crawl folder or a WACZ is exactly what was captured.

Four layers, each naming the file, offset and URL of anything wrong:

* Records. Every WARC record is read (:mod:`replay.warcscan`) and its
  WARC-Block-Digest and WARC-Payload-Digest recomputed, as ``warcio check``
  does. Unreadable gzip data, garbage and truncation are reported where they
  start. Records without digest headers are counted as unverifiable; revisit
  records carry another record's payload digest, so theirs are not checked.
* Files. Each file's SHA-256 is compared with the package's: datapackage.json
  (checked in turn against datapackage-digest.json) in a WACZ, and for a crawl
  folder the ``fixity.sha256`` that ``sunset package`` leaves there. A crawl
  folder without one is verified by records and index alone, and the report
  says so. The crawl's own ``crawl.json`` list of WARC files is checked too.
* ZIP. A WACZ's own structure: zipfile trusts its central directory, so the
  end record and every local header are checked against it, stored members'
  CRC-32s are recomputed (zipfile checks the deflated ones), and a member that
  cannot be read is named as damaged. A file that starts or ends as a ZIP but
  cannot be opened as one is a damaged WACZ (a verdict, exit 1), not a usage
  error.
* Index. Every CDXJ line must point (filename, offset) at the start of a
  record with the same URL, timestamp, payload digest, length, HTTP status and
  SURT key; every record that cdxj-indexer would index must have a line. Lines
  and records left over are then paired by (URL, timestamp, digest), which
  tells a deleted record (a line with no record anywhere), an added one (a
  record with no line) and the records merely shifted by it apart.

Speed: a WARC file is split at gzip member boundaries into stretches that
worker processes scan in parallel (the per-record work is Python; zlib and
hashlib are C and release the GIL), while this process hashes whole files.
Memory stays flat in the size of the WARC files; the index costs one integer
per line.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import signal
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rich.markup import escape

from replay.package import FIXITY_NAME, INDEX_PATH, WARC_SUFFIXES
from replay.wacz import (
    ARCHIVE_DIR,
    DATAPACKAGE,
    DATAPACKAGE_DIGEST,
    IDX_FORMAT,
    INDEX_DIR,
    cdx_prefix,
    member_data_offset,
)
from replay.warcscan import Damage, Record, b32_decode, next_member, parse_digest, scan
from sunset.errors import SunsetError
from sunset.ui import console, progress, stdout_console, summary_table

CHUNK = 1 << 20
# Files smaller than this are scanned whole; bigger ones are split into
# stretches of about this size for the worker processes.
SEGMENT = 8 << 20
# Problems printed one per line; the rest are counted.
MAX_SHOWN = 200
# Per scanned stretch, how many unindexed records and unmatched index lines
# are kept for pairing; beyond that they are only counted (memory stays bounded
# even when every record of a file is misplaced).
MAX_LOOSE = 100_000
# Records cdxj-indexer indexes by default (application/warc-fields metadata
# and resource records excepted).
INDEXED_TYPES = frozenset({"response", "revisit", "resource", "metadata"})
OFFSET_SHIFT = 40  # entries pack (WARC offset << 40) | byte position of the index line
# What reading a damaged ZIP or member raises: zipfile's own errors (a bad
# CRC-32, a bad header), zlib's for corrupt deflate data, EOFError for data
# cut short, ValueError for a bad local header, NotImplementedError for a
# compression method that was altered, RuntimeError for a member flagged as
# encrypted, OSError for the disk.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OSError,
)
# How far from its end a ZIP's end record can be (it may carry a comment).
ZIP_TAIL = (1 << 16) + 22
ZIP_END_MAGIC = b"PK\x05\x06"
ZIP_LOCAL_MAGIC = b"PK\x03\x04"
# Where a WACZ keeps its files: a ZIP whose first file is one of these is a WACZ.
WACZ_PREFIXES = (ARCHIVE_DIR, INDEX_DIR, "pages/", DATAPACKAGE)


def _zip_reason(exc: BaseException) -> str:
    if isinstance(exc, zlib.error):
        return f"its deflated data is corrupt ({exc})"
    if isinstance(exc, EOFError):
        return "its data ends early (cut short)"
    if isinstance(exc, OSError):
        return str(exc.strerror or exc)
    return str(exc) or type(exc).__name__


@dataclass
class Problem:
    """One thing wrong, located as precisely as it can be."""

    file: str
    message: str
    offset: int | None = None
    url: str = ""
    # Byte position of the index line involved; turned into a line number
    # for the report, once, at the end.
    index_pos: int | None = None

    def text(self, index_label: str, lines: dict[int, int]) -> str:
        where = self.file if self.offset is None else f"{self.file} @ {self.offset}"
        message = self.message
        if self.index_pos is not None:
            line = f"{index_label} line {lines.get(self.index_pos, '?')}"
            if self.file == index_label and self.offset is None:
                where = line
            else:
                message = f"{line}: {message}"
        return f"{where} {self.url}: {message}" if self.url else f"{where}: {message}"


@dataclass
class FileCheck:
    label: str
    size: int | None = None
    sha256: str | None = None
    expected_sha256: str | None = None
    expected_size: int | None = None
    records: int = 0
    problems: int = 0
    note: str = ""
    unreadable: bool = False  # a damaged ZIP member

    @property
    def verdict(self) -> str:
        if self.unreadable:
            text = "UNREADABLE (damaged ZIP member)"
            return text + (f", {self.records:,} records" if self.records else "")
        if self.size is None:
            return "MISSING"
        if self.expected_sha256 is None:
            text = self.note or "no recorded SHA-256"
        elif self.expected_sha256 != self.sha256:
            text = "SHA-256 DIFFERS"
        elif self.expected_size is not None and self.expected_size != self.size:
            text = "SIZE DIFFERS"
        else:
            text = "SHA-256 ok"
        if self.records:
            text += f", {self.records:,} records"
        if self.problems:
            text += f", {self.problems:,} problems"
        return text


@dataclass
class Report:
    target: Path
    kind: str
    files: list[FileCheck] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    index_label: str = ""
    index_lines: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [p.text(self.index_label, self.index_lines) for p in self.problems]


# --------------------------------------------------------------------------
# What to read


@dataclass
class _Source:
    """One WARC file: on disk, or a member of a WACZ read in place."""

    name: str  # as index lines name it
    label: str  # as the report names it
    path: Path  # the file holding its bytes
    start: int  # where its bytes start in ``path``
    size: int
    member: str | None = None  # a deflated WACZ member: read through zipfile
    check: FileCheck = field(default_factory=lambda: FileCheck(""))
    # A stored WACZ member is read straight from the file, past zipfile's
    # checks, so its CRC-32 is checked here.
    crc: int | None = None
    unreadable: bool = False  # its local header is damaged: not read at all


@dataclass
class _Index:
    """The CDXJ lines, as one plain file (a WACZ's is inflated to a temporary one)."""

    path: Path
    label: str
    entries: dict[int, list[int]] = field(default_factory=dict)
    lines: int = 0
    # Its SHA-256 matches the package's record, so its lines are as packaged.
    vouched: bool = False


@dataclass
class _Task:
    source: int
    label: str
    path: str
    start: int
    member: str | None
    lo: int
    hi: int
    last: bool
    size: int
    entries: list[int]
    index_path: str | None
    check_keys: bool


@dataclass
class _Result:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    # (line position, offset, url, ts, digest) of lines with no record at their offset
    loose_entries: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    # (offset, length, url, ts, digest, type) of indexable records no line points at
    loose_records: list[tuple[int, int, str, str, str, str]] = field(default_factory=list)
    records: int = 0
    # False: the stretch ended inside a member, so its end was no boundary.
    clean_end: bool = True
    # Where the last record read ended: what a read error leaves unchecked.
    reached: int = 0


# --------------------------------------------------------------------------
# Scanning one stretch of one WARC file (in a worker process)


def _ts14(warc_date: str) -> str:
    """The 14-digit timestamp a CDXJ line has for a WARC-Date."""
    d = warc_date
    if len(d) >= 19 and d[4] == "-" and d[10] == "T":
        return d[0:4] + d[5:7] + d[8:10] + d[11:13] + d[14:16] + d[17:19]
    return "".join(ch for ch in d if ch.isdigit())[:14]


def _digest_key(value: str) -> bytes | str:
    """A digest header or index value, comparable however it was encoded."""
    algo, encoded = parse_digest(value) if ":" in value else ("sha1", value.strip())
    raw = b32_decode(encoded.encode("ascii", "replace"), 20) if algo == "sha1" else None
    return raw if raw is not None else f"{algo}:{encoded}"


def _record_digest(rec: Record) -> str:
    return rec.payload_digest or rec.payload_sha1_text()


def _indexable(rec: Record) -> bool:
    if rec.rec_type not in INDEXED_TYPES:
        return False
    return not (
        rec.rec_type in ("resource", "metadata") and rec.content_type == "application/warc-fields"
    )


def _surt(url: str) -> str:
    import surt

    try:
        return surt.surt(url)
    except Exception:  # cdxj-indexer falls back to the URL on any failure
        return url


class _Lines:
    """Index lines by byte position, each read on its own.

    pread, not mmap: a worker's lines are scattered over the whole index, and
    mapped pages would count against its memory however big the index is.
    """

    def __init__(self, path: str | None) -> None:
        self.fd = os.open(path, os.O_RDONLY) if path else None

    def get(self, pos: int) -> tuple[str, str, dict[str, Any]]:
        assert self.fd is not None
        want = 1024
        while True:
            data = os.pread(self.fd, want, pos)
            end = data.find(b"\n")
            if end >= 0 or len(data) < want:
                break
            want *= 4
        line = data[:end] if end >= 0 else data
        key, ts, body = line.split(b" ", 2)
        record = json.loads(body)
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        return key.decode("utf-8", "replace"), ts.decode("ascii", "replace"), record

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


def _scan_task(task: _Task) -> _Result:
    """Scan one stretch of one WARC file and match it against its index lines."""
    res = _Result()
    try:
        return _scan_stretch(task, res)
    except ZIP_ERRORS as exc:
        # What was read stays in the report: a member whose CRC-32 is wrong
        # is found so only at its end, after every record was read.
        what = "damaged ZIP member" if task.member is not None else "cannot read"
        res.problems.append(
            Problem(
                task.label,
                f"{what}: {_zip_reason(exc)} (nothing after this offset checked)",
                max(res.reached, task.lo),
            )
        )
        res.clean_end = True
        return res


def _scan_stretch(task: _Task, res: _Result) -> _Result:
    lines = _Lines(task.index_path)
    entries = task.entries
    n_entries = len(entries)
    k = 0  # next entry to match
    check_missing = task.index_path is not None
    counts = res.counts
    # Verdicts are tallied by kind and named at the end: one dictionary
    # update per record instead of several.
    kinds: Counter[tuple[str, bool | None, bool | None, bool]] = Counter()

    def entry_offset(i: int) -> int:
        return entries[i] >> OFFSET_SHIFT

    def entry_pos(i: int) -> int:
        return entries[i] & ((1 << OFFSET_SHIFT) - 1)

    def loose_entry(i: int) -> None:
        pos = entry_pos(i)
        _, ts, data = lines.get(pos)
        if len(res.loose_entries) < MAX_LOOSE:
            res.loose_entries.append(
                (pos, entry_offset(i), str(data.get("url", "")), ts, str(data.get("digest", "")))
            )
        else:
            counts["loose entries dropped"] += 1

    try:
        with _open_stretch(task) as fh:
            for item in scan(fh, size=task.hi - task.lo, base=task.lo):
                if isinstance(item, Damage):
                    if item.at_end and not task.last:
                        res.clean_end = False
                        return res  # thrown away: the caller rescans across the end
                    while k < n_entries and entry_offset(k) < item.offset:
                        loose_entry(k)
                        k += 1
                    urls = []
                    while k < n_entries and entry_offset(k) == item.offset:
                        urls.append(str(lines.get(entry_pos(k))[2].get("url", "")))
                        counts["index lines on damaged records"] += 1
                        k += 1
                    url = item.uri or (urls[0] if urls else "")
                    res.problems.append(Problem(task.label, item.message, item.offset, url))
                    counts["damaged stretches"] += 1
                    continue
                rec = item
                res.reached = rec.offset + rec.length
                kinds[
                    (
                        rec.rec_type,
                        rec.block_ok,
                        rec.payload_ok,
                        bool(rec.block_digest or rec.payload_digest),
                    )
                ] += 1
                if rec.block_ok is False or rec.payload_ok is False or rec.problems:
                    _record_problems(rec, task.label, res)
                if rec.truncated:
                    counts["records marked WARC-Truncated"] += 1
                while k < n_entries and entry_offset(k) < rec.offset:
                    loose_entry(k)
                    k += 1
                matched = False
                while k < n_entries and entry_offset(k) == rec.offset:
                    if _compare(rec, entry_pos(k), lines, task, res):
                        matched = True
                    else:
                        loose_entry(k)
                    k += 1
                if check_missing and not matched and _indexable(rec):
                    if len(res.loose_records) < MAX_LOOSE:
                        res.loose_records.append(
                            (
                                rec.offset,
                                rec.length,
                                rec.uri,
                                _ts14(rec.date),
                                _record_digest(rec),
                                rec.rec_type,
                            )
                        )
                    else:
                        counts["loose records dropped"] += 1
        while k < n_entries:
            if task.last and entry_offset(k) >= task.size:
                _, _, data = lines.get(entry_pos(k))
                res.problems.append(
                    Problem(
                        task.label,
                        f"index line points past the end of the file ({task.size:,} bytes)",
                        entry_offset(k),
                        str(data.get("url", "")),
                        index_pos=entry_pos(k),
                    )
                )
            else:
                loose_entry(k)
            k += 1
    finally:
        lines.close()
    for (rec_type, block_ok, payload_ok, has_digest), n in kinds.items():
        res.records += n
        counts["records"] += n
        counts[f"type {rec_type or '?'}"] += n
        if block_ok is None and payload_ok is None:
            if rec_type == "revisit":
                counts["revisits (payload not checked)"] += n
            elif has_digest:
                counts["digests not checkable"] += n
            else:
                counts["records without digests (unverifiable)"] += n
        for what, ok in (("block", block_ok), ("payload", payload_ok)):
            if ok is not None:
                counts[f"{what} digests {'ok' if ok else 'FAILED'}"] += n
    return res


def _record_problems(rec: Record, label: str, res: _Result) -> None:
    for what, ok, header in (
        ("block", rec.block_ok, rec.block_digest),
        ("payload", rec.payload_ok, rec.payload_digest),
    ):
        if ok is False:
            computed = "" if what == "block" else f", payload is {rec.payload_sha1_text()}"
            res.problems.append(
                Problem(
                    label,
                    f"{what} digest mismatch ({rec.rec_type} record says {header}{computed})",
                    rec.offset,
                    rec.uri,
                )
            )
    for message in rec.problems:
        res.problems.append(Problem(label, message, rec.offset, rec.uri))


def _compare(rec: Record, pos: int, lines: _Lines, task: _Task, res: _Result) -> bool:
    """Check an index line against the record at its offset; False: a different record.

    The SURT key costs more to recompute than the rest of the record's
    checks together, so it is recomputed only for an index whose own SHA-256
    does not vouch for it (no recorded hash, or a different one): an index
    that is byte for byte what was packaged has the keys cdxj-indexer wrote.
    """
    label = task.label
    try:
        key, ts, data = lines.get(pos)
    except ValueError:
        res.problems.append(Problem(label, "unreadable index line", rec.offset, index_pos=pos))
        return True
    url = str(data.get("url", ""))
    digest = str(data.get("digest", ""))
    same_url = url == rec.uri
    same_digest = bool(digest) and _digest_key(digest) == _digest_key(_record_digest(rec))
    # A line edited in one of the two still names its record; a record that
    # matches in neither, or a request record beside the response it stands
    # for (same URL and time) is another record: the line's own has moved.
    if not (same_url and same_digest) and not (_indexable(rec) and (same_url or same_digest)):
        return False
    res.counts["index lines matched"] += 1
    wrong: list[str] = []
    if not same_url:
        wrong.append(f"url {url!r}, the record's is {rec.uri!r}")
    if not same_digest:
        wrong.append(f"digest {digest or '(none)'}, the record's is {_record_digest(rec)}")
    if ts != _ts14(rec.date):
        wrong.append(f"timestamp {ts}, the record's is {_ts14(rec.date)}")
    length = data.get("length")
    if str(length) != str(rec.length):
        wrong.append(f"length {length}, the record's is {rec.length}")
    status = data.get("status")
    if status not in (None, "-") and rec.http_status is not None and str(status) != rec.http_status:
        wrong.append(f"status {status}, the record's is {rec.http_status}")
    if task.check_keys and same_url and key != _surt(url):
        wrong.append(f"key {key!r}, the URL's is {_surt(url)!r}")
    if wrong:
        res.counts["index lines that differ"] += 1
        res.problems.append(
            Problem(label, "; ".join(wrong), rec.offset, rec.uri or url, index_pos=pos)
        )
    return True


@contextlib.contextmanager
def _open_stretch(task: _Task) -> Iterator[BinaryIO]:
    if task.member is not None:
        with zipfile.ZipFile(task.path) as zf, zf.open(task.member) as fh:
            yield fh  # type: ignore[misc]
        return
    with open(task.path, "rb", buffering=0) as fh:
        fh.seek(task.start + task.lo)
        yield fh  # type: ignore[misc]


# --------------------------------------------------------------------------
# The index


def _load_index(index: _Index, sources: list[_Source], report: Report) -> None:
    """Read every line once: where it points, and that the index is sorted."""
    by_name = {s.name: i for i, s in enumerate(sources)}
    by_base = {s.name.rsplit("/", 1)[-1]: i for i, s in enumerate(sources)}
    entries: dict[int, list[int]] = defaultdict(list)
    previous = b""
    unsorted = 0
    pos = 0
    number = 0
    with open(index.path, "rb") as fh:
        for line in fh:
            here = pos
            pos += len(line)
            number += 1
            if not line.strip():
                continue
            index.lines += 1
            try:
                _, _, body = line.split(b" ", 2)
                data = json.loads(body)
                offset = int(data["offset"])
                filename = str(data["filename"])
                if offset < 0:
                    raise ValueError
            except (ValueError, KeyError, TypeError, OverflowError):
                report.problems.append(
                    Problem(
                        index.label, "not a CDXJ line with a filename and offset", None, "", here
                    )
                )
                continue
            source = by_name.get(filename, by_base.get(filename.rsplit("/", 1)[-1]))
            if source is None:
                report.problems.append(
                    Problem(
                        index.label,
                        f"points at {filename!r}, which is not in the archive",
                        offset,
                        str(data.get("url", "")),
                        here,
                    )
                )
                continue
            if line < previous:
                unsorted += 1
                if unsorted == 1:
                    report.problems.append(
                        Problem(
                            index.label,
                            "out of order: players binary-search the index and miss such lines",
                            None,
                            str(data.get("url", "")),
                            here,
                        )
                    )
            previous = line
            entries[source].append((offset << OFFSET_SHIFT) | here)
    if unsorted > 1:
        report.problems.append(Problem(index.label, f"{unsorted:,} lines in all are out of order"))
    for values in entries.values():
        values.sort()
    index.entries = dict(entries)


def _line_numbers(index: _Index, positions: set[int]) -> dict[int, int]:
    if not positions:
        return {}
    wanted = sorted(positions)
    found: dict[int, int] = {}
    pos = 0
    k = 0
    with open(index.path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            while k < len(wanted) and wanted[k] < pos + len(line):
                found[wanted[k]] = number
                k += 1
            if k == len(wanted):
                break
            pos += len(line)
    return found


# --------------------------------------------------------------------------
# Pairing what the offsets did not


def _pair_leftovers(results: list[tuple[_Source, _Result]], report: Report) -> None:
    """Tell deleted, added and shifted records apart among the unmatched."""
    records: dict[tuple[str, str, bytes | str], list[tuple[_Source, int, int, str]]] = defaultdict(
        list
    )
    for source, res in results:
        for offset, length, url, ts, digest, rec_type in res.loose_records:
            records[(url, ts, _digest_key(digest))].append((source, offset, length, rec_type))
    shifts: list[tuple[_Source, int, int, str, int]] = []  # source, index offset, actual, url, pos
    for source, res in results:
        for pos, offset, url, ts, digest in res.loose_entries:
            found = records.get((url, ts, _digest_key(digest)))
            if found:
                src, actual, _, _ = found.pop(0)
                if src is source:
                    shifts.append((source, offset, actual, url, pos))
                else:
                    report.problems.append(
                        Problem(
                            source.label,
                            f"index line points here but the record is in {src.label} @ {actual}",
                            offset,
                            url,
                            pos,
                        )
                    )
                continue
            report.problems.append(
                Problem(
                    source.label,
                    "no record at the offset the index gives, nor anywhere in the archive"
                    f" with this URL, time {ts} and digest (deleted?)",
                    offset,
                    url,
                    pos,
                )
            )
            report.counts["index lines without a record"] += 1
    for (url, _, _), found in records.items():
        for source, offset, _, rec_type in found:
            report.counts["records missing from the index"] += 1
            report.problems.append(
                Problem(
                    source.label, f"{rec_type} record is not in the index (added?)", offset, url
                )
            )
    # Records found elsewhere in their own file: bytes were removed or added
    # before them. Runs with the same shift are reported once.
    shifts.sort(key=lambda s: (s[0].label, s[1]))
    run: list[tuple[_Source, int, int, str, int]] = []

    def flush() -> None:
        if not run:
            return
        source, offset, actual, url, pos = run[0]
        delta = actual - offset
        more = f" (and {len(run) - 1:,} later lines likewise)" if len(run) > 1 else ""
        report.problems.append(
            Problem(
                source.label,
                f"the record is at {actual}, {abs(delta):,} bytes "
                f"{'later' if delta > 0 else 'earlier'} than the index says{more}:"
                " bytes were added or removed before it",
                offset,
                url,
                pos,
            )
        )
        report.counts["index lines pointing at shifted records"] += len(run)
        run.clear()

    for shift in shifts:
        if run and (run[-1][0] is not shift[0] or run[-1][2] - run[-1][1] != shift[2] - shift[1]):
            flush()
        run.append(shift)
    flush()


# --------------------------------------------------------------------------
# Opening a crawl folder or a WACZ


def _sha256_file(path: Path, start: int = 0, size: int | None = None) -> tuple[str, int]:
    h = hashlib.sha256()
    total = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        while True:
            want = CHUNK if size is None else min(CHUNK, size - total)
            if want <= 0:
                break
            chunk = fh.read(want)
            if not chunk:
                break
            h.update(chunk)
            total += len(chunk)
    return h.hexdigest(), total


def _hash_stored(path: Path, start: int, size: int) -> tuple[str, int, int]:
    """SHA-256, size and CRC-32 of a stored ZIP member's bytes."""
    h = hashlib.sha256()
    crc = 0
    total = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        while total < size and (chunk := fh.read(min(CHUNK, size - total))):
            h.update(chunk)
            crc = zlib.crc32(chunk, crc)
            total += len(chunk)
    return h.hexdigest(), total, crc


def _sha256_stream(fh: BinaryIO) -> tuple[str, int]:
    h = hashlib.sha256()
    total = 0
    while chunk := fh.read(CHUNK):
        h.update(chunk)
        total += len(chunk)
    return h.hexdigest(), total


def _check_file(check: FileCheck, path: Path, report: Report) -> None:
    try:
        check.sha256, check.size = _sha256_file(path)
    except OSError as exc:
        check.size = None
        report.problems.append(Problem(check.label, f"cannot read: {exc.strerror or exc}"))
        return
    _judge(check, report)


def _judge(check: FileCheck, report: Report) -> None:
    if check.expected_sha256 is not None and check.expected_sha256 != check.sha256:
        report.problems.append(
            Problem(
                check.label,
                f"SHA-256 is {check.sha256}, the package records {check.expected_sha256}"
                + (
                    f" ({check.size:,} bytes, recorded {check.expected_size:,})"
                    if check.expected_size is not None
                    else f" ({check.size:,} bytes)"
                ),
            )
        )
    elif check.expected_size is not None and check.expected_size != check.size:
        report.problems.append(
            Problem(
                check.label, f"{check.size:,} bytes, the package records {check.expected_size:,}"
            )
        )


def _read_fixity(path: Path, report: Report) -> dict[str, str] | None:
    if not path.is_file():
        return None
    manifest: dict[str, str] = {}
    for number, line in enumerate(
        path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
    ):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            report.problems.append(Problem(FIXITY_NAME, f"line {number} is not 'SHA256  PATH'"))
            continue
        manifest[name.strip()] = digest.lower()
    return manifest


def _open_crawl(root: Path, report: Report) -> tuple[list[_Source], _Index | None]:
    warc_dir = root / "warc"
    entries = sorted(warc_dir.iterdir()) if warc_dir.is_dir() else []
    warcs = [p for p in entries if p.is_file() and p.name.endswith(WARC_SUFFIXES)]
    unfinished = [
        p
        for p in entries
        if p.is_file() and p.name.endswith(".open") and p.name[:-5].endswith(WARC_SUFFIXES)
    ]
    index_path = root / INDEX_PATH
    if not warcs and not unfinished:
        raise SunsetError(f"{root}: no WARC files in {warc_dir}; nothing to verify")
    # An interrupted crawl leaves its last file .open: its records are as
    # much the capture as any other's, so they are checked too (a torn last
    # record shows as truncation), and the file is named as unfinished.
    for p in unfinished:
        report.problems.append(
            Problem(
                f"warc/{p.name}",
                "unfinished WARC file (still .open: the crawl was interrupted or is still"
                " running; 'sunset crawl --resume' closes it)",
            )
        )
    manifest = _read_fixity(root / FIXITY_NAME, report)
    if manifest is None:
        report.notes.append(
            f"no {FIXITY_NAME} (written by 'sunset package'): files checked by records and"
            " index only"
        )
    sources = []
    for p in warcs:
        label = f"warc/{p.name}"
        check = FileCheck(label)
        if manifest is not None:
            check.expected_sha256 = manifest.pop(label, None)
            if check.expected_sha256 is None:
                report.problems.append(
                    Problem(label, f"not in {FIXITY_NAME}: added after the crawl was packaged?")
                )
                check.note = f"not in {FIXITY_NAME}"
        else:
            check.note = f"no {FIXITY_NAME}"
        sources.append(_Source(p.name, label, p, 0, p.stat().st_size, check=check))
    for p in unfinished:
        check = FileCheck(f"warc/{p.name}", note="unfinished (.open)")
        # Index lines, if any, name the file as it will be once closed.
        sources.append(_Source(p.name[:-5], check.label, p, 0, p.stat().st_size, check=check))
    info_path = root / "crawl.json"
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = None
        report.notes.append("no readable crawl.json: its list of WARC files not checked")
    listed = info.get("warc_files") if isinstance(info, dict) else None
    if isinstance(listed, list):
        present = {p.name for p in warcs} | {p.name.removesuffix(".open") for p in unfinished}
        for name in listed:
            if isinstance(name, str) and name not in present:
                report.problems.append(Problem(f"warc/{name}", "listed in crawl.json but missing"))
        for name in sorted(present - {n for n in listed if isinstance(n, str)}):
            report.problems.append(
                Problem(f"warc/{name}", "not listed in crawl.json: added after the crawl?")
            )
    checks: dict[str, FileCheck] = {}
    for rel in (INDEX_PATH.as_posix(), "pages.jsonl"):
        path = root / rel
        check = FileCheck(rel)
        if manifest is not None:
            check.expected_sha256 = manifest.pop(rel, None)
        if not path.is_file():
            if check.expected_sha256 is not None or rel == INDEX_PATH.as_posix():
                why = " (the crawl did not finish; 'sunset crawl --resume' writes it)"
                report.problems.append(Problem(rel, "missing" + (why if unfinished else "")))
            report.files.append(check)
            continue
        if check.expected_sha256 is None:
            check.note = f"not in {FIXITY_NAME}" if manifest is not None else f"no {FIXITY_NAME}"
        _check_file(check, path, report)
        report.files.append(check)
        checks[rel] = check
    for rel in sorted(manifest or {}):
        report.problems.append(Problem(rel, f"listed in {FIXITY_NAME} but missing"))
    if not index_path.is_file():
        return sources, None
    index = _Index(index_path, INDEX_PATH.as_posix())
    index.vouched = _vouched(checks[INDEX_PATH.as_posix()])
    return sources, index


def _vouched(check: FileCheck) -> bool:
    return check.expected_sha256 is not None and check.expected_sha256 == check.sha256


def _open_wacz(
    path: Path, zf: zipfile.ZipFile, tmp: Path, report: Report
) -> tuple[list[_Source], _Index | None]:
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        if not info.filename:
            report.problems.append(
                Problem(
                    path.name, "damaged WACZ: an entry of the ZIP's central directory has no name"
                )
            )
            continue
        if info.is_dir():
            continue
        if info.filename in infos:
            # Readers disagree on which copy of a repeated name they return, so
            # a second copy can hide a tampered file from one of them.
            report.problems.append(
                Problem(info.filename, "appears more than once in the WACZ (zip member names)")
            )
        infos[info.filename] = info
    warc_names = [n for n in infos if n.startswith(ARCHIVE_DIR) and n.endswith(WARC_SUFFIXES)]
    if DATAPACKAGE not in infos and not warc_names:
        first = _first_member_name(path)
        if first is None or not first.startswith(WACZ_PREFIXES):
            raise SunsetError(f"{path}: not a WACZ (no datapackage.json, no archive/ WARC files)")
        # The bytes begin with a WACZ file that the directory does not list.
        report.problems.append(
            Problem(
                path.name,
                "damaged WACZ: the ZIP's central directory does not list the files it holds"
                f" ({first!r} comes first; the directory lists {len(infos):,} files,"
                " neither datapackage.json nor any archive/ WARC file)",
            )
        )
        return [], None
    listed = _read_datapackage(zf, infos, report)
    resources = listed if listed is not None else {}
    if listed is not None:
        unlisted = [
            n for n in infos if n not in listed and n not in (DATAPACKAGE, DATAPACKAGE_DIGEST)
        ]
        for name in unlisted:
            report.problems.append(Problem(name, "in the WACZ but not listed in datapackage.json"))
        for name in sorted(set(listed) - set(infos)):
            report.problems.append(Problem(name, "listed in datapackage.json but not in the WACZ"))

    def check_for(name: str) -> FileCheck:
        check = FileCheck(name)
        expected = resources.get(name)
        if expected is not None:
            check.expected_sha256, check.expected_size = expected
        else:
            check.note = (
                "not in datapackage.json" if listed is not None else "datapackage unreadable"
            )
        return check

    def damaged(name: str, check: FileCheck, exc: BaseException, then: str = "") -> None:
        check.unreadable = True
        report.problems.append(Problem(name, f"damaged ZIP member: {_zip_reason(exc)}{then}"))

    sources = []
    with open(path, "rb") as raw:
        for name in warc_names:
            info = infos[name]
            check = check_for(name)
            source = _Source(name[len(ARCHIVE_DIR) :], name, path, 0, info.file_size, name, check)
            if info.compress_type == zipfile.ZIP_STORED:
                source.member, source.crc = None, info.CRC
                try:
                    source.start = member_data_offset(raw, info)
                except ZIP_ERRORS as exc:
                    damaged(name, check, exc, "; its records were not read")
                    source.unreadable = True
            sources.append(source)
    index_names = sorted(
        n
        for n in infos
        if n.startswith(INDEX_DIR) and n.endswith((".cdx", ".cdxj", ".cdx.gz", ".cdxj.gz"))
    )
    idx_names = [n for n in infos if n.startswith(INDEX_DIR) and n.endswith(".idx")]
    index = None
    if index_names:
        plain = tmp / "index.cdxj"
        blocks: dict[str, list[Block]] = {}
        checks = [check_for(name) for name in index_names]
        readable = True
        with open(plain, "wb") as out:
            for name, check in zip(index_names, checks, strict=True):
                try:
                    blocks[name] = _inflate_index(zf, infos[name], out, check, report)
                except ZIP_ERRORS as exc:
                    # Half an index would make every record after the damage
                    # look unindexed: the index checks are skipped instead.
                    damaged(name, check, exc, "; index checks skipped")
                    report.files.append(check)
                    readable = False
        label = index_names[0] if len(index_names) == 1 else "indexes/*"
        if readable:
            index = _Index(plain, label, vouched=all(_vouched(c) for c in checks))
        for name in idx_names:
            check = check_for(name)
            try:
                _check_idx(zf, infos[name], blocks, check, report)
            except ZIP_ERRORS as exc:
                damaged(name, check, exc)
                report.files.append(check)
    else:
        report.problems.append(Problem(INDEX_DIR, "no CDXJ index in the WACZ"))
    for name in infos:
        done = name in warc_names or name in index_names or name in idx_names
        if done or name in (DATAPACKAGE, DATAPACKAGE_DIGEST):
            continue
        check = check_for(name)
        try:
            with zf.open(infos[name]) as fh:
                check.sha256, check.size = _sha256_stream(fh)
        except ZIP_ERRORS as exc:
            damaged(name, check, exc)
        else:
            _judge(check, report)
        report.files.append(check)
    return sources, index


def _read_datapackage(
    zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], report: Report
) -> dict[str, tuple[str | None, int | None]] | None:
    """Expected (sha256, bytes) by path, after checking datapackage.json's own digest.

    None when datapackage.json is there but its ZIP member cannot be read:
    what it lists is then unknown, not empty.
    """
    if DATAPACKAGE not in infos:
        report.problems.append(Problem(DATAPACKAGE, "missing: nothing to check files against"))
        return {}
    try:
        data = zf.read(DATAPACKAGE)
    except ZIP_ERRORS as exc:
        report.problems.append(
            Problem(
                DATAPACKAGE,
                f"damaged ZIP member: {_zip_reason(exc)}; nothing to check files against",
            )
        )
        report.files.append(FileCheck(DATAPACKAGE, unreadable=True))
        return None
    check = FileCheck(DATAPACKAGE, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if DATAPACKAGE_DIGEST in infos:
        try:
            digest = json.loads(zf.read(DATAPACKAGE_DIGEST))
            algo, _, value = str(digest.get("hash", "")).partition(":")
            if algo != "sha256" or digest.get("path") != DATAPACKAGE:
                raise ValueError
            check.expected_sha256 = value.lower()
        except ZIP_ERRORS as exc:
            if isinstance(exc, ValueError):  # not JSON, or not what it must hold
                message = "unreadable (expected path and a sha256 hash)"
            else:
                message = f"damaged ZIP member: {_zip_reason(exc)}"
            report.problems.append(Problem(DATAPACKAGE_DIGEST, message))
        except AttributeError:
            report.problems.append(
                Problem(DATAPACKAGE_DIGEST, "unreadable (expected path and a sha256 hash)")
            )
        _judge(check, report)
    else:
        check.note = "no datapackage-digest.json"
        report.notes.append("no datapackage-digest.json: datapackage.json itself is unchecked")
    report.files.append(check)
    try:
        package = json.loads(data)
        items = package["resources"]
        if not isinstance(items, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        report.problems.append(Problem(DATAPACKAGE, "unreadable, or has no resources list"))
        return {}
    resources: dict[str, tuple[str | None, int | None]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            report.problems.append(Problem(DATAPACKAGE, f"resource without a path: {item!r:.80}"))
            continue
        algo, _, value = str(item.get("hash", "")).partition(":")
        size = item.get("bytes")
        resources[item["path"]] = (
            value.lower() if algo == "sha256" else None,
            size if isinstance(size, int) else None,
        )
        if algo != "sha256":
            report.problems.append(
                Problem(item["path"], f"datapackage.json gives no sha256 hash ({algo or 'none'})")
            )
    return resources


Block = tuple[int, int, str, bytes]  # offset, length, sha256, first line's key


class _GzipBlocks:
    """Inflate a gzip stream of one or more members into ``out``, noting each member."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.d: zlib._Decompress | None = None
        self.pos = 0
        self.start = 0
        self.hash = hashlib.sha256()
        self.first = bytearray()
        self.blocks: list[Block] = []
        self.error: tuple[int, str] | None = None

    def feed(self, data: bytes) -> None:
        mv = memoryview(data)
        i = 0
        while i < len(data) and self.error is None:
            if self.d is None:
                self.d = zlib.decompressobj(31)
                self.hash = hashlib.sha256()
                self.first = bytearray()
                self.start = self.pos
            # Small pieces: zlib copies what follows a member's end.
            piece = mv[i : i + (64 << 10)]
            try:
                text = self.d.decompress(piece)
            except zlib.error as exc:
                self.error = (self.start, f"unreadable gzip block ({exc})")
                return
            used = len(piece) - len(self.d.unused_data)
            self.hash.update(piece[:used])
            self.pos += used
            i += used
            if text:
                self.out.write(text)
                if b"\n" not in self.first and len(self.first) < CHUNK:
                    self.first += text
            if self.d.eof:
                key = cdx_prefix(bytes(self.first).split(b"\n", 1)[0])
                self.blocks.append((self.start, self.pos - self.start, self.hash.hexdigest(), key))
                self.d = None

    def close(self) -> None:
        if self.d is not None and self.error is None:
            self.error = (self.start, "ends inside a gzip block (truncated)")


def _inflate_index(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    out: BinaryIO,
    check: FileCheck,
    report: Report,
) -> list[Block]:
    """Append an index member to ``out`` as plain CDXJ, hashing it; its gzip blocks."""
    h = hashlib.sha256()
    size = 0
    blocks = _GzipBlocks(out) if info.filename.endswith(".gz") else None
    last = b"\n"
    with zf.open(info) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
            if blocks is not None:
                blocks.feed(chunk)
            else:
                out.write(chunk)
                last = chunk[-1:]
    if blocks is not None:
        blocks.close()
        if blocks.error is not None:
            offset, message = blocks.error
            report.problems.append(Problem(info.filename, message, offset))
    elif last != b"\n":
        out.write(b"\n")  # the next index file must start on a line of its own
    check.sha256, check.size = h.hexdigest(), size
    _judge(check, report)
    report.files.append(check)
    return blocks.blocks if blocks is not None else []


def _check_idx(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    blocks: dict[str, list[Block]],
    check: FileCheck,
    report: Report,
) -> None:
    """The .idx of a compressed index must describe its gzip blocks exactly."""
    data = zf.read(info)
    check.sha256, check.size = hashlib.sha256(data).hexdigest(), len(data)
    _judge(check, report)
    report.files.append(check)
    target: str | None = None
    rows: list[tuple[int, int, str | None, bytes]] = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            head, body = line.split(b"{", 1)
            meta = json.loads(b"{" + body)
        except ValueError:
            report.problems.append(Problem(info.filename, f"line {number} is not an idx line"))
            continue
        if line.startswith(b"!meta"):
            if meta.get("format") != IDX_FORMAT:
                report.problems.append(
                    Problem(info.filename, f"unknown format {meta.get('format')!r}")
                )
            target = INDEX_DIR + str(meta.get("filename", ""))
            continue
        try:
            rows.append(
                (int(meta["offset"]), int(meta["length"]), meta.get("digest"), head.strip())
            )
        except (KeyError, TypeError, ValueError):
            report.problems.append(Problem(info.filename, f"line {number} lacks offset/length"))
    actual = blocks.get(target or "")
    if actual is None:
        report.problems.append(Problem(info.filename, f"describes {target!r}, not in the WACZ"))
        return
    by_offset = {b[0]: b for b in actual}
    for offset, length, digest, prefix in rows:
        block = by_offset.pop(offset, None)
        if block is None:
            report.problems.append(
                Problem(info.filename, f"block at {offset} is not a gzip block of {target}", offset)
            )
            continue
        wrong = []
        if length != block[1]:
            wrong.append(f"length {length}, the block's is {block[1]}")
        if digest and digest != f"sha256:{block[2]}":
            wrong.append("sha256 differs from the block's")
        if prefix != block[3]:
            wrong.append(f"key {prefix!r}, the block starts {block[3]!r}")
        if wrong:
            report.problems.append(
                Problem(info.filename, f"entry for the block at {offset}: " + "; ".join(wrong))
            )
    for offset in sorted(by_offset):
        report.problems.append(
            Problem(info.filename, f"no entry for the gzip block at {offset} of {target}")
        )


# --------------------------------------------------------------------------
# Running it


def _plan(sources: list[_Source], index: _Index | None) -> list[_Task]:
    tasks = []
    for number, source in enumerate(sources):
        if source.unreadable:
            continue
        bounds = [0]
        if source.member is None and source.size > 2 * SEGMENT:
            with open(source.path, "rb") as fh:
                pieces = source.size // SEGMENT
                for k in range(1, pieces):
                    at = next_member(fh, source.start, k * source.size // pieces, source.size)
                    if at is None:
                        break
                    if at > bounds[-1]:
                        bounds.append(at)
        bounds.append(source.size)
        entries = index.entries.get(number, []) if index is not None else []
        for k in range(len(bounds) - 1):
            lo, hi = bounds[k], bounds[k + 1]
            last = k == len(bounds) - 2
            a = bisect.bisect_left(entries, lo << OFFSET_SHIFT)
            b = len(entries) if last else bisect.bisect_left(entries, hi << OFFSET_SHIFT)
            tasks.append(
                _Task(
                    number,
                    source.label,
                    str(source.path),
                    source.start,
                    source.member,
                    lo,
                    hi,
                    last,
                    source.size,
                    entries[a:b],
                    str(index.path) if index is not None else None,
                    index is not None and not index.vouched,
                )
            )
    return tasks


def _rejoin(tasks: list[_Task], done: dict[int, _Result]) -> list[tuple[_Task, _Result]]:
    """The results in file order, stretches cut at a false boundary rescanned as one.

    _plan makes a file's stretches consecutive in ``tasks``; the last one of a
    file always ends clean, so a merge never crosses into the next file.
    """
    out: list[tuple[_Task, _Result]] = []
    n = 0
    while n < len(tasks):
        task, res = tasks[n], done[n]
        while not res.clean_end:
            n += 1
            following = tasks[n]
            task = dataclasses.replace(
                task,
                hi=following.hi,
                last=following.last,
                entries=task.entries + following.entries,
            )
            res = _scan_task(task)
        out.append((task, res))
        n += 1
    return out


def _hash_sources(sources: list[_Source], report: Report, lock: threading.Lock) -> None:
    for source in sources:
        check = source.check
        if source.unreadable:
            continue
        crc = None
        try:
            if source.member is not None:
                with zipfile.ZipFile(source.path) as zf, zf.open(source.member) as fh:
                    check.sha256, check.size = _sha256_stream(fh)  # type: ignore[arg-type]
            elif source.crc is not None:
                check.sha256, check.size, crc = _hash_stored(source.path, source.start, source.size)
            else:
                check.sha256, check.size = _sha256_file(source.path, source.start, source.size)
        except ZIP_ERRORS as exc:
            # A deflated member's damage is reported by its scan, which reads it too.
            if source.member is None:
                with lock:
                    report.problems.append(
                        Problem(source.label, f"cannot read: {_zip_reason(exc)}")
                    )
            continue
        with lock:
            _judge(check, report)
            if crc is not None and crc != source.crc:
                report.problems.append(
                    Problem(
                        source.label,
                        f"damaged ZIP member: its CRC-32 is {crc:08x},"
                        f" the ZIP records {source.crc:08x}",
                    )
                )


def _workers(tasks: list[_Task]) -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cpus or 1, len(tasks)))


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the parent alone winds down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def verify(target: Path) -> Report:
    """Check a crawl folder or a WACZ; the report lists every problem found."""
    started = time.monotonic()
    if not target.exists():
        raise SunsetError(f"{target}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="sunset-verify-") as tmp:
        if target.is_dir():
            report = Report(target, "crawl folder")
            sources, index = _open_crawl(target, report)
            return _run(report, sources, index, started)
        try:
            zf = zipfile.ZipFile(target)
        except OSError as exc:
            raise SunsetError(f"{target}: cannot read: {exc.strerror or exc}") from None
        except ZIP_ERRORS as exc:
            damage = _zip_damage(target, exc)
            if damage is None:
                raise SunsetError(
                    f"{target}: neither a crawl folder nor a WACZ file (not a ZIP file)"
                ) from None
            report = Report(target, "WACZ")
            report.problems.append(Problem(target.name, damage))
            report.notes.append("nothing inside could be checked")
            report.seconds = round(time.monotonic() - started, 2)
            return report
        with zf:
            report = Report(target, "WACZ")
            _check_zip_structure(target, zf, report)
            if not zf.infolist() and _starts_with_member(target):
                # A ZIP's bytes begin with its first member: an end record
                # that lists none was damaged (or zeroed).
                report.problems.append(
                    Problem(
                        target.name,
                        "damaged WACZ: the ZIP's central directory lists no members,"
                        " yet the file holds some",
                    )
                )
                report.seconds = round(time.monotonic() - started, 2)
                return report
            sources, index = _open_wacz(target, zf, Path(tmp), report)
            return _run(report, sources, index, started)


_END_RECORD = struct.Struct("<4s4H2LH")
_LOCAL = struct.Struct("<4s5H3L2H")
_ZIP64_LOCATOR_MAGIC = b"PK\x06\x07"
_DATA_DESCRIPTOR = 0x08


def _check_zip_structure(path: Path, zf: zipfile.ZipFile, report: Report) -> None:
    """What zipfile reads past: its end record's counts, and each local header.

    zipfile trusts the central directory, so a damaged local header or end
    record would go unnoticed. The fields they share with the central
    directory must agree; the only fields nothing can check are the central
    directory's own attributes (made-by version, file modes).
    """
    infos = zf.infolist()
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - ZIP_TAIL))
        tail = fh.read()
        end = tail.rfind(ZIP_END_MAGIC)
        if 0 <= end <= len(tail) - _END_RECORD.size:
            _, disk, cd_disk, here, total, cd_size, cd_offset, comment = _END_RECORD.unpack_from(
                tail, end
            )
            wrong = []
            zip64 = tail[max(0, end - 20) : max(0, end - 16)] == _ZIP64_LOCATOR_MAGIC
            if not zip64:
                if (disk, cd_disk) != (0, 0):
                    wrong.append(f"disk numbers {disk}, {cd_disk} (a single file has 0)")
                if here != total or total != len(infos):
                    wrong.append(
                        f"counts {here} and {total} files, the directory holds {len(infos)}"
                    )
                # zipfile finds the directory back from the end record and
                # shifts every offset to match: bytes the two disagree by were
                # added before the ZIP, or the size or offset was damaged.
                if zf.start_dir != cd_offset:
                    wrong.append(
                        f"puts the directory at {cd_offset:,} ({cd_size:,} bytes),"
                        f" it is at {zf.start_dir:,}"
                    )
                elif not _directory_fills(fh, zf.start_dir, cd_size, len(infos)):
                    wrong.append(
                        f"gives the directory {cd_size:,} bytes, which its entries do not fill"
                    )
            if comment != len(tail) - end - _END_RECORD.size:
                wrong.append(f"comment length {comment}, {len(tail) - end - 22} bytes follow")
            if wrong:
                report.problems.append(
                    Problem(path.name, "damaged WACZ: the ZIP's end record " + "; ".join(wrong))
                )
        for info in infos:
            if not info.filename or info.header_offset < 0:
                continue  # reported when the member is read
            fh.seek(info.header_offset)
            raw = fh.read(_LOCAL.size)
            if len(raw) < _LOCAL.size or raw[:4] != ZIP_LOCAL_MAGIC:
                continue  # reported when the member is read
            _, version, flags, method, time_, date, crc, csize, usize, _, _ = _LOCAL.unpack(raw)
            y, mo, d, h, mi, sec = info.date_time
            differ = []
            if version != info.reserved << 8 | info.extract_version:
                differ.append("version needed")
            if flags != info.flag_bits:
                differ.append("flags")
            if method != info.compress_type:
                differ.append("compression method")
            if (time_, date) != (h << 11 | mi << 5 | sec // 2, (y - 1980) << 9 | mo << 5 | d):
                differ.append("time")
            if not flags & _DATA_DESCRIPTOR:
                # A data descriptor after the data holds these instead; a
                # ZIP64 member keeps its sizes in an extra field.
                if crc != info.CRC:
                    differ.append("CRC-32")
                if csize != 0xFFFFFFFF and csize != info.compress_size:
                    differ.append("compressed size")
                if usize != 0xFFFFFFFF and usize != info.file_size:
                    differ.append("size")
            if info.volume:
                differ.append(f"disk {info.volume} (a single file has 0)")
            if differ:
                report.problems.append(
                    Problem(
                        info.filename,
                        "damaged ZIP member: its local header disagrees with the central"
                        f" directory on {', '.join(differ)}",
                    )
                )


def _directory_fills(fh: BinaryIO, start: int, size: int, count: int) -> bool:
    """Whether ``count`` central directory entries fill ``size`` bytes exactly.

    zipfile stops at the first entry that reaches the end, so a damaged
    length in the last one makes it read into the end record unnoticed.
    """
    fh.seek(start)
    data = fh.read(size)
    pos = n = 0
    while pos + 46 <= len(data) and data[pos : pos + 4] == b"PK\x01\x02":
        name, extra, comment = struct.unpack_from("<3H", data, pos + 28)
        pos += 46 + name + extra + comment
        n += 1
    return pos == size == len(data) and n == count


def _starts_with_member(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == ZIP_LOCAL_MAGIC


def _first_member_name(path: Path) -> str | None:
    """The name in the local header the file starts with, if it starts with one."""
    with open(path, "rb") as fh:
        head = fh.read(30)
        if len(head) < 30 or head[:4] != ZIP_LOCAL_MAGIC:
            return None
        name_len = int.from_bytes(head[26:28], "little")
        return fh.read(name_len).decode("utf-8", "replace")


def _zip_damage(path: Path, exc: BaseException) -> str | None:
    """Why zipfile cannot open a file that is a ZIP; None when it is no ZIP at all.

    A ZIP starts with a member's local header and ends with the central
    directory and its end record. A file with either is a damaged ZIP (a
    verdict on the archive); a file with neither was never one (a usage error).
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
        fh.seek(max(0, size - ZIP_TAIL))
        tail = fh.read()
    has_end = ZIP_END_MAGIC in tail
    if not has_end and not (head and ZIP_LOCAL_MAGIC.startswith(head)):
        return None
    if not has_end:
        return (
            "damaged WACZ: the ZIP's central directory is missing or cut off (the file ends"
            f" at {size:,} bytes without the ZIP's end record: truncated?)"
        )
    return f"damaged WACZ: the ZIP's central directory is damaged ({_zip_reason(exc)})"


def _run(report: Report, sources: list[_Source], index: _Index | None, started: float) -> Report:
    for source in sources:
        source.check.label = source.label
    if index is not None:
        report.index_label = index.label
        _load_index(index, sources, report)
        report.counts["index lines"] = index.lines
    else:
        report.notes.append("no readable index: records checked, index checks skipped")
    tasks = _plan(sources, index)
    lock = threading.Lock()
    hasher = threading.Thread(target=_hash_sources, args=(sources, report, lock), daemon=True)
    done: dict[int, _Result] = {}
    total = sum(s.size for s in sources)
    workers = _workers(tasks)
    with progress("verifying", total=total, unit="bytes") as tracker:
        if workers > 1:
            # fork: a worker needs nothing but its task, and starts at once.
            ctx = multiprocessing.get_context("fork")
            pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_ignore_sigint)
            try:
                futures = {pool.submit(_scan_task, t): n for n, t in enumerate(tasks)}
                hasher.start()
                for future in as_completed(futures):
                    n = futures[future]
                    done[n] = future.result()
                    tracker.advance(tasks[n].hi - tasks[n].lo)
            finally:
                # On Ctrl-C, queued stretches are dropped; running ones are short.
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            hasher.start()
            for n, task in enumerate(tasks):
                done[n] = _scan_task(task)
                tracker.advance(task.hi - task.lo)
        results = [(sources[t.source], r) for t, r in _rejoin(tasks, done)]
        hasher.join()
    for source, res in results:
        report.counts.update(res.counts)
        report.problems.extend(res.problems)
        source.check.records += res.records
    _pair_leftovers(results, report)
    report.files[:0] = [s.check for s in sources]
    by_file: Counter[str] = Counter(p.file for p in report.problems)
    for check in report.files:
        check.problems = by_file.get(check.label, 0)
    report.problems.sort(key=lambda p: (p.file, p.offset if p.offset is not None else -1))
    if index is not None:
        positions = {p.index_pos for p in report.problems if p.index_pos is not None}
        report.index_lines = _line_numbers(index, positions)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def print_report(report: Report) -> None:
    lines = report.lines()
    for line in lines[:MAX_SHOWN]:
        # One line per problem however long, so the output stays greppable.
        stdout_console.print(f"[red]FAIL[/] {escape(line)}", soft_wrap=True)
    if len(lines) > MAX_SHOWN:
        stdout_console.print(f"… and {len(lines) - MAX_SHOWN:,} more problems")
    summary_table(
        f"files — {report.target}",
        [(f.label, f.verdict) for f in report.files],
    )
    c = report.counts
    rows: list[tuple[str, object]] = [
        ("records read", c["records"]),
        ("block digests ok", c["block digests ok"]),
        ("payload digests ok", c["payload digests ok"]),
    ]
    for key in (
        "block digests FAILED",
        "payload digests FAILED",
        "damaged stretches",
        "revisits (payload not checked)",
        "records without digests (unverifiable)",
        "digests not checkable",
        "records marked WARC-Truncated",
    ):
        if c[key]:
            rows.append((key, c[key]))
    if report.index_label:
        rows.append(("index lines", c["index lines"]))
        rows.append(("index lines matched", c["index lines matched"]))
        for key in (
            "index lines that differ",
            "index lines without a record",
            "index lines pointing at shifted records",
            "records missing from the index",
        ):
            if c[key]:
                rows.append((key, c[key]))
    for note in report.notes:
        rows.append(("note", note))
    rows.append(("seconds", report.seconds))
    verdict = "intact" if report.ok else f"{len(lines):,} PROBLEMS"
    rows.append(("verdict", verdict))
    summary_table(f"verify — {report.kind} {report.target}", rows)


def cli_verify(path: Path) -> int:
    """``sunset verify``: 0 when everything checks out, 1 when anything does not."""
    report = verify(path)
    print_report(report)
    if not report.ok:
        console.print(f"verify: {len(report.problems):,} problems in {path}")
    return 0 if report.ok else 1
