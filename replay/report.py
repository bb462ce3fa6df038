"""report.html: an audit report of one crawl, for whoever checks the archive years later.

From the crawl folder alone it answers: when and how the crawl was made
(warcinfo records, crawl.json), what it holds (fetches by status and by type),
what failed and what the trap guards refused (crawl.log), the SHA-256 of every
file (to compare with a copy or a later fixity check), and where each page can
be replayed. The page carries its own CSS and SVG and loads nothing, so it opens
offline and can be filed with the archive.

Everything read from the crawl (URLs, titles, notes, warcinfo fields, file names)
was written by or about the legacy site and is treated as hostile: it is escaped,
and crawled URLs are never links. The only links are replay links, built on an
http(s) base the caller chose, and relative links to the sibling reports.
crawl.log, the CDXJ index and pages.jsonl can run to millions of lines, so they
are streamed: counts are aggregated and only capped lists are kept.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import re
import shlex
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from sunset import __version__
from sunset.errors import SunsetError
from sunset.htmlpage import clip, csp_hash, esc, is_web_url
from sunset.transformed import require_finished

# Where `sunset replay CRAWL_DIR` listens by default; the collection path under it
# is the crawl's name (see collection_name). Every function takes the base as a
# keyword so another setup can be linked instead.
REPLAY_ORIGIN = "http://127.0.0.1:8080"
LIST_CAP = 500
CHUNK = 1 << 20
# Crawled strings can be megabytes long; the report only needs enough to recognise them.
TEXT_CAP = 240
URL_CAP = 300
# A hostile or broken log could carry a new MIME type or note on every line; past
# this many distinct values the rest are pooled, so memory stays flat.
DISTINCT_CAP = 200
WARCINFO_CAP = 1 << 20
DATAPACKAGE_CAP = 16 << 20
POOLED = "(other values)"

# crawler/CONTRACT.md; -1 is what the crawler logs when a host name does not resolve.
NEGATIVE_CODES: dict[int, str] = {
    -1: "cannot resolve host",
    -2: "connection refused or unreachable",
    -3: "connection reset or lost",
    -4: "timed out",
    -6: "TLS failure",
    -7: "invalid URL or other download error",
    -5000: "refused by a trap guard",
    -5001: "excluded by the profile's patterns",
    -5003: "left out: --max-pages reached",
    -7000: "abandoned: the crawl was interrupted",
    -9998: "refused by robots.txt",
}
GUARD, EXCLUDED, QUOTA, ROBOTS = -5000, -5001, -5003, -9998
REFUSAL_CODES = (GUARD, EXCLUDED, QUOTA, ROBOTS)

TYPES = ("HTML", "images", "CSS/JS", "documents", "other")
TYPE_COLOURS = {
    "HTML": "#1565c0",
    "images": "#2e7d32",
    "CSS/JS": "#8e44ad",
    "documents": "#d35400",
    "other": "#7f8c8d",
    "revisits": "#95a5a6",
}
CLASS_COLOURS = {
    "2xx": "#2e7d32",
    "3xx": "#1565c0",
    "4xx": "#e67e22",
    "5xx": "#c0392b",
    "other": "#7f8c8d",
}
ERROR_COLOUR = "#8e1b1b"
REFUSAL_COLOUR = "#6d4c8d"

_CSS_JS = {
    "text/css",
    "application/javascript",
    "text/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "text/ecmascript",
}
_DOCUMENTS = {
    "application/pdf",
    "application/msword",
    "application/rtf",
    "text/rtf",
    "text/plain",
    "text/csv",
    "application/epub+zip",
    "application/vnd.visio",
}
_DOCUMENT_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.ms-",
    "application/vnd.oasis.opendocument.",
)


def mime_category(mime: str) -> str:
    """One of TYPES for a MIME type (no parameters); unknown or missing is "other"."""
    m = mime.strip().lower()
    if m in ("text/html", "application/xhtml+xml"):
        return "HTML"
    if m.startswith("image/"):
        return "images"
    if m in _CSS_JS:
        return "CSS/JS"
    # application/vnd.ms-fontobject is a font, not an office document.
    if (m in _DOCUMENTS or m.startswith(_DOCUMENT_PREFIXES)) and "font" not in m:
        return "documents"
    return "other"


def status_class(code: int) -> str:
    if 200 <= code < 600:
        return f"{code // 100}xx"
    return "other"


def code_meaning(code: int) -> str:
    if code < 0:
        return NEGATIVE_CODES.get(code, "unknown negative code")
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


# ---------------------------------------------------------------------------
# Reading the crawl


@dataclass(frozen=True, slots=True)
class LogLine:
    """One crawl.log line; "" stands for the log's "-"."""

    ts: str
    status: int
    size: int | None
    url: str
    hops: str
    via: str
    mime: str
    notes: tuple[str, ...]


def parse_log_line(line: str) -> LogLine | None:
    """Parse a crawl.log line (crawler/CONTRACT.md), or None if it is not one."""
    bits = line.split()
    # The crawler percent-encodes spaces, so any other field count is damage.
    if len(bits) != 10:
        return None
    try:
        status = int(bits[1])
    except ValueError:
        return None
    # HTTP codes are three digits and the crawler's own codes four; anything else
    # is damage, and keeping it would let one bad log grow the status table at will.
    if not -9999 <= status <= 999:
        return None

    def opt(value: str) -> str:
        return "" if value == "-" else value

    size = int(bits[2]) if bits[2].isascii() and bits[2].isdigit() else None
    notes = tuple(n for n in bits[9].split(",") if n) if bits[9] != "-" else ()
    return LogLine(bits[0], status, size, bits[3], opt(bits[4]), opt(bits[5]), opt(bits[6]), notes)


@dataclass
class Capped:
    """A count plus the first `cap` items, in the order seen."""

    cap: int
    total: int = 0
    items: list[Any] = field(default_factory=list)

    def add(self, item: Any) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(item)

    @property
    def more(self) -> int:
        return self.total - len(self.items)


def _bump(counts: dict[str, int], key: str, n: int = 1) -> None:
    if key not in counts and len(counts) >= DISTINCT_CAP:
        key = POOLED
    counts[key] = counts.get(key, 0) + n


@dataclass
class LogStats:
    """crawl.log, aggregated in one pass."""

    cap: int = LIST_CAP
    lines: int = 0
    malformed: int = 0
    first: str = ""
    last: str = ""
    statuses: dict[int, int] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)
    type_bytes: dict[str, int] = field(default_factory=dict)
    mimes: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0
    revisits: int = 0
    retried: int = 0
    errors: Capped = field(init=False)
    client_errors: Capped = field(init=False)
    server_errors: Capped = field(init=False)
    refusals: dict[str, Capped] = field(default_factory=dict)
    truncated: Capped = field(init=False)
    truncated_reasons: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.errors = Capped(self.cap)
        self.client_errors = Capped(self.cap)
        self.server_errors = Capped(self.cap)
        self.truncated = Capped(self.cap)

    def add(self, rec: LogLine) -> None:
        self.lines += 1
        if not self.first or rec.ts < self.first:
            self.first = rec.ts
        if rec.ts > self.last:
            self.last = rec.ts
        code = rec.status
        self.statuses[code] = self.statuses.get(code, 0) + 1
        if code > 0:
            kind = mime_category(rec.mime)
            size = rec.size or 0
            self.types[kind] = self.types.get(kind, 0) + 1
            self.type_bytes[kind] = self.type_bytes.get(kind, 0) + size
            self.body_bytes += size
            _bump(self.mimes, rec.mime.lower() or "(none)")
            if 400 <= code < 500:
                self.client_errors.add(rec)
            elif 500 <= code < 600:
                self.server_errors.add(rec)
        elif code in REFUSAL_CODES:
            kind = refusal_kind(rec)
            bucket = self.refusals.get(kind)
            if bucket is None:
                if len(self.refusals) >= DISTINCT_CAP:
                    kind = POOLED
                bucket = self.refusals.setdefault(kind, Capped(self.cap))
            bucket.add(rec)
        else:
            self.errors.add(rec)
        for note in rec.notes:
            if note == "revisit":
                self.revisits += 1
            elif note.startswith("retry:"):
                self.retried += 1
            elif note.startswith("truncated:"):
                self.truncated.add(rec)
                _bump(self.truncated_reasons, note.partition(":")[2] or "?")

    @property
    def refused(self) -> int:
        return sum(b.total for b in self.refusals.values())


def refusal_kind(rec: LogLine) -> str:
    if rec.status == ROBOTS:
        return "robots.txt"
    if rec.status == EXCLUDED:
        return "excluded"
    if rec.status == QUOTA:
        return "max-pages"
    guards = [n for n in rec.notes if n.startswith("guard:")]
    return guards[0] if guards else "guard:(unnamed)"


def read_log(path: Path, cap: int = LIST_CAP) -> LogStats:
    stats = LogStats(cap=cap)
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = parse_log_line(line)
            if rec is None:
                stats.malformed += 1
            else:
                stats.add(rec)
    return stats


@dataclass
class IndexStats:
    """The CDXJ index, aggregated in one pass."""

    entries: int = 0
    url_keys: int = 0
    malformed: int = 0
    unsorted_line: int = 0  # first line out of order, 0 if sorted
    revisits: int = 0
    types: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    first: str = ""
    last: str = ""


def read_index(path: Path) -> IndexStats:
    stats = IndexStats()
    prev_line = prev_key = ""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split(" ", 2)
            try:
                fields = json.loads(parts[2]) if len(parts) == 3 else None
            except ValueError:
                fields = None
            if not isinstance(fields, dict):
                stats.malformed += 1
                continue
            key, ts = parts[0], parts[1]
            stats.entries += 1
            # pywb binary-searches the index, so an unsorted one loses captures.
            if line < prev_line and not stats.unsorted_line:
                stats.unsorted_line = number
            if key != prev_key:
                stats.url_keys += 1
            prev_line, prev_key = line, key
            if not stats.first or ts < stats.first:
                stats.first = ts
            if ts > stats.last:
                stats.last = ts
            mime = str(fields.get("mime", ""))
            if mime == "warc/revisit":
                stats.revisits += 1
                kind = "revisits"
            else:
                kind = mime_category(mime)
            stats.types[kind] = stats.types.get(kind, 0) + 1
            status = str(fields.get("status", ""))
            _bump(
                stats.statuses,
                status_class(int(status)) if status.isascii() and status.isdigit() else "none",
            )
            _bump(stats.files, str(fields.get("filename", "")))
    return stats


@dataclass(frozen=True, slots=True)
class Page:
    url: str
    ts: str
    title: str
    status: int | None


@dataclass
class PagesStats:
    total: int = 0
    malformed: int = 0
    shown: list[Page] = field(default_factory=list)


def read_pages(path: Path, cap: int = LIST_CAP) -> PagesStats:
    stats = PagesStats()

    def pages() -> Iterator[Page]:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    item = None
                if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                    stats.malformed += 1
                    continue
                stats.total += 1
                status = item.get("status")
                yield Page(
                    item["url"],
                    str(item.get("ts") or ""),
                    _clip(str(item.get("title") or "")),
                    status if isinstance(status, int) and not isinstance(status, bool) else None,
                )

    # nsmallest keeps a heap of `cap` pages, so memory does not grow with the crawl.
    stats.shown = heapq.nsmallest(max(cap, 0), pages(), key=lambda p: (p.url, p.ts))
    return stats


@dataclass
class WarcInfo:
    file: str
    date: str = ""
    record_id: str = ""
    fields: list[tuple[str, str]] = field(default_factory=list)
    problem: str = ""


def read_warcinfo(path: Path) -> WarcInfo:
    """The warcinfo record that opens a WARC file; `problem` says why it could not be read."""
    from warcio.archiveiterator import ArchiveIterator

    info = WarcInfo(path.name)
    try:
        with open(path, "rb") as fh:
            record = next(iter(ArchiveIterator(fh)), None)
            if record is None:
                info.problem = "the file holds no WARC record"
                return info
            if record.rec_type != "warcinfo":
                info.problem = f"the first record is {record.rec_type!r}, not warcinfo"
                return info
            info.date = record.rec_headers.get_header("WARC-Date") or ""
            info.record_id = record.rec_headers.get_header("WARC-Record-ID") or ""
            body = record.content_stream().read(WARCINFO_CAP)
    # Any failure to parse is a finding for the auditor, not a reason to stop.
    except Exception as exc:
        info.problem = f"cannot read the warcinfo record: {type(exc).__name__}: {exc}"
        return info
    info.fields = parse_warc_fields(body.decode("utf-8", errors="replace"))
    return info


def parse_warc_fields(text: str) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and fields:
            # A folded line continues the previous field.
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
        elif line.strip():
            fields.append(("(unnamed)", line.strip()))
        if len(fields) > DISTINCT_CAP:
            break
    return fields


@dataclass(frozen=True, slots=True)
class Fixity:
    path: str  # relative to the crawl folder, with "/"
    role: str
    size: int
    sha256: str


def sha256_file(path: Path, chunk: int = CHUNK) -> tuple[str, int]:
    """(hex SHA-256, size) of a file, read in fixed chunks so memory stays flat."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb") as fh:
        while n := fh.readinto(buf):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


@dataclass
class Wacz:
    file: str
    created: str = ""
    software: str = ""
    version: str = ""
    resources: int | None = None
    problem: str = ""


def read_wacz(path: Path) -> Wacz:
    """A few facts from a WACZ's datapackage.json; checking it is 'sunset verify''s job."""
    info = Wacz(path.name)
    try:
        with zipfile.ZipFile(path) as zf:
            member = zf.getinfo("datapackage.json")
            if member.file_size > DATAPACKAGE_CAP:
                info.problem = "datapackage.json is implausibly large"
                return info
            data = json.loads(zf.read(member))
    except KeyError:
        info.problem = "no datapackage.json inside"
        return info
    except Exception as exc:
        info.problem = f"cannot read it as a WACZ: {type(exc).__name__}: {exc}"
        return info
    if not isinstance(data, dict):
        info.problem = "datapackage.json is not an object"
        return info
    info.created = str(data.get("created", ""))
    info.software = str(data.get("software", ""))
    info.version = str(data.get("wacz_version", ""))
    resources = data.get("resources")
    info.resources = len(resources) if isinstance(resources, list) else None
    return info


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


@dataclass
class Audit:
    """Everything the report shows, gathered from one crawl folder."""

    crawl_dir: Path
    crawl: dict[str, Any]
    log: LogStats
    index: IndexStats
    pages: PagesStats
    warcinfo: list[WarcInfo]
    fixity: list[Fixity]
    waczs: list[Wacz]
    transform: dict[str, Any] | None = None
    redirects: dict[str, Any] | None = None
    has_redirects_report: bool = False
    warnings: list[str] = field(default_factory=list)
    generated: str = ""


def _warc_files(crawl_dir: Path) -> list[Path]:
    folder = crawl_dir / "warc"
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.endswith((".warc.gz", ".warc"))
    )


def gather(crawl_dir: Path, *, list_cap: int = LIST_CAP) -> Audit:
    """Read a crawl folder into an Audit; SunsetError if it is not a usable crawl."""
    crawl_dir = Path(crawl_dir)
    if not crawl_dir.is_dir():
        raise SunsetError(f"{crawl_dir}: no such crawl folder")
    crawl_json = crawl_dir / "crawl.json"
    if not crawl_json.is_file():
        raise SunsetError(f"{crawl_dir}: no crawl.json, so not a crawl folder (run 'sunset crawl')")
    try:
        crawl = _read_json(crawl_json)
    except (OSError, ValueError) as exc:
        raise SunsetError(f"{crawl_json}: cannot read it: {exc}") from None
    if not isinstance(crawl, dict):
        raise SunsetError(f"{crawl_json}: not a crawl summary (expected a JSON object)")
    index_path = crawl_dir / "indexes" / "index.cdxj"
    if not index_path.is_file():
        raise SunsetError(f"{crawl_dir}: no CDXJ index at indexes/index.cdxj")
    warcs = _warc_files(crawl_dir)
    if not warcs:
        raise SunsetError(f"{crawl_dir}: no WARC files under warc/")
    # The report shows transform's counts: never those of a run that did not finish.
    require_finished(crawl_dir / "content")
    log_path = crawl_dir / "crawl.log"
    if not log_path.is_file():
        raise SunsetError(f"{crawl_dir}: no crawl.log")
    warnings: list[str] = []
    try:
        log = read_log(log_path, list_cap)
        index = read_index(index_path)
        pages_path = crawl_dir / "pages.jsonl"
        if pages_path.is_file():
            pages = read_pages(pages_path, list_cap)
        else:
            pages = PagesStats()
            warnings.append("pages.jsonl is missing: no page list and no replay links.")
        warcinfo = [read_warcinfo(p) for p in warcs]
        fixity, waczs = _fixity(crawl_dir, warcs)
    except OSError as exc:
        raise SunsetError(
            f"{crawl_dir}: cannot read {exc.filename or 'a file'}: {exc.strerror}"
        ) from None
    audit = Audit(crawl_dir, crawl, log, index, pages, warcinfo, fixity, waczs, warnings=warnings)
    audit.transform = _optional_json(crawl_dir / "content" / "transform.json", warnings)
    audit.redirects = _optional_json(crawl_dir / "redirects" / "redirects.json", warnings)
    audit.has_redirects_report = (crawl_dir / "redirects" / "report.html").is_file()
    audit.generated = datetime.now(UTC).isoformat(timespec="seconds")
    warnings.extend(_findings(audit, warcs))
    return audit


def _fixity(crawl_dir: Path, warcs: list[Path]) -> tuple[list[Fixity], list[Wacz]]:
    files: list[tuple[Path, str]] = [(crawl_dir / "crawl.json", "crawl summary")]
    for name, role in (("crawl.log", "crawl log"), ("pages.jsonl", "page list")):
        if (crawl_dir / name).is_file():
            files.append((crawl_dir / name, role))
    indexes = crawl_dir / "indexes"
    files += [(p, "CDXJ index") for p in sorted(indexes.iterdir()) if p.is_file()]
    files += [(p, "WARC") for p in warcs]
    wacz_paths = sorted(p for p in crawl_dir.glob("*.wacz") if p.is_file())
    files += [(p, "WACZ package") for p in wacz_paths]
    out = []
    for path, role in files:
        digest, size = sha256_file(path)
        out.append(Fixity(path.relative_to(crawl_dir).as_posix(), role, size, digest))
    return out, [read_wacz(p) for p in wacz_paths]


def _optional_json(path: Path, warnings: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = _read_json(path)
    except (OSError, ValueError) as exc:
        warnings.append(f"{path.parent.name}/{path.name} could not be read ({exc}).")
        return None
    if not isinstance(data, dict):
        warnings.append(f"{path.parent.name}/{path.name} is not a JSON object.")
        return None
    return data


def _findings(audit: Audit, warcs: list[Path]) -> list[str]:
    """Inconsistencies an auditor should see before trusting the numbers."""
    out = []
    crawl = audit.crawl
    if crawl.get("fatal"):
        out.append(f"The crawl stopped on an error: {crawl['fatal']}")
    reason = crawl.get("reason")
    if reason not in (None, "finished"):
        out.append(f"The crawl ended with reason {reason!r}, not 'finished'.")
    on_disk = {p.name for p in warcs}
    listed = crawl.get("warc_files")
    if isinstance(listed, list):
        listed_names = {str(n) for n in listed}
        missing = sorted(listed_names - on_disk)
        extra = sorted(on_disk - listed_names)
        if missing:
            out.append(f"WARC files listed in crawl.json but missing: {', '.join(missing)}")
        if extra:
            out.append(f"WARC files not listed in crawl.json: {', '.join(extra)}")
    open_files = sorted(p.name for p in (audit.crawl_dir / "warc").glob("*.open"))
    if open_files:
        out.append(f"WARC files never closed (.open): {', '.join(open_files)}")
    unknown = sorted(f for f in audit.index.files if f not in on_disk)
    if unknown:
        out.append(f"The index points at files not under warc/: {', '.join(unknown)}")
    if audit.index.unsorted_line:
        out.append(
            f"The CDXJ index is not sorted (line {audit.index.unsorted_line:,}); "
            "replay will miss captures and distinct URL counts are approximate."
        )
    for what, count in (
        ("crawl.log", audit.log.malformed),
        ("the CDXJ index", audit.index.malformed),
        ("pages.jsonl", audit.pages.malformed),
    ):
        if count:
            out.append(f"{count:,} malformed lines in {what} were skipped.")
    for info in audit.warcinfo:
        if info.problem:
            out.append(f"{info.file}: {info.problem}")
    for wacz in audit.waczs:
        if wacz.problem:
            out.append(f"{wacz.file}: {wacz.problem}")
    return out


# ---------------------------------------------------------------------------
# HTML helpers

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1400px;padding:0 1.5rem 3rem;color:#222;background:#fff}
h1{font-size:1.5rem;margin:1.2rem 0 .3rem}h2{font-size:1.2rem;margin:2rem 0 .5rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}h3{font-size:1rem;margin:1.2rem 0 .3rem}
nav a{margin-right:1rem}
table{border-collapse:collapse;margin:.4rem 0}
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:600;white-space:nowrap}
table.list{width:100%}
.u{word-break:break-all}td.t{white-space:nowrap}td.h{font-family:ui-monospace,monospace;word-break:break-all}
.muted{color:#777}p.more{font-style:italic;color:#555}
.warn{border:1px solid #e0a800;background:#fff8e1;padding:.5rem 1rem;margin:1rem 0}
.warn li{margin:.2rem 0}
pre{background:#f7f7f7;border:1px solid #e5e5e5;padding:.5rem;white-space:pre-wrap;
word-break:break-all;margin:.3rem 0}
code{background:#f4f4f4;padding:0 .2em}
svg{max-width:100%;height:auto;display:block;margin:.5rem 0}
""".strip()


# No script at all, and the one style block pinned by hash: an injected <script> or
# <style> would not run even if escaping ever failed.
CSP = (
    "default-src 'none'; "
    f"style-src {csp_hash(_STYLE)}; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)


def _clip(text: str, cap: int = TEXT_CAP) -> str:
    return clip(text, cap)


def _url_text(url: str) -> str:
    return f'<span class="u">{esc(_clip(url, URL_CAP))}</span>' if url else _NONE


_NONE = '<span class="muted">–</span>'


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n:,} bytes"


def _kv_table(rows: Sequence[tuple[str, object]], css_id: str = "") -> str:
    ident = f' id="{css_id}"' if css_id else ""
    out = [f'<table class="kv"{ident}><tbody>']
    for key, value in rows:
        out.append(f"<tr><th>{esc(key)}</th><td>{esc(_clip(_fmt(value), 2000))}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _more(count: int, where: str) -> str:
    return f'<p class="more">{count:,} more, not listed here; {esc(where)}</p>' if count > 0 else ""


def bar_chart_svg(
    chart_id: str, title: str, bars: Sequence[tuple[str, float, str, str]], *, width: int = 760
) -> str:
    """A horizontal bar chart as inline SVG; bars are (label, value, colour, value text)."""
    label_w, value_w, row_h, pad = 260, 130, 24, 8
    plot_w = width - label_w - value_w
    rows = max(len(bars), 1)
    height = pad * 2 + row_h * rows
    top = max((v for _, v, _, _ in bars), default=0) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{esc(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-labelledby="{esc(chart_id)}-title" font-family="system-ui,sans-serif" '
        'font-size="12">',
        f'<title id="{esc(chart_id)}-title">{esc(title)}</title>',
    ]
    for i, (label, value, colour, text) in enumerate(bars):
        y = pad + i * row_h
        w = plot_w * value / top if value > 0 else 0.0
        if value > 0:
            w = max(w, 1.5)  # a bar for 1 among a million must still show
        out.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{esc(_clip(label, 42))}</text>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{esc(colour)}"><title>{esc(label)}: {esc(text)}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{esc(text)}</text>'
        )
    if not bars:
        out.append(f'<text x="{label_w}" y="{pad + 16}" fill="#777">nothing to show</text>')
    out.append(
        f'<line x1="{label_w}" y1="{pad}" x2="{label_w}" y2="{height - pad}" stroke="#333"/></svg>'
    )
    return "".join(out)


# pywb's own routes, which a collection must not shadow.
_PYWB_ROUTES = frozenset({"static", "collinfo.json", "cdx", "_", "live", "record", "proxy"})


def collection_name(name: str) -> str:
    """The pywb collection `sunset replay` serves a crawl named `name` under.

    Must agree with replay/serve.py: lower case, runs of anything but
    [a-z0-9_-] folded to "-", trimmed; "archive" when nothing usable is left.
    """
    folded = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return folded if folded and folded not in _PYWB_ROUTES else "archive"


def default_replay_base(crawl_dir: Path, crawl: Mapping[str, Any]) -> str:
    name = str(crawl.get("name") or "") or Path(crawl_dir).resolve().name
    return f"{REPLAY_ORIGIN}/{collection_name(name)}/"


def normalise_replay_base(base: str) -> str:
    try:
        parts = urlsplit(base)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise SunsetError(f"replay base {base!r} is not an http(s) URL")
    return base if base.endswith("/") else base + "/"


def timestamp14(ts: str) -> str | None:
    """'2026-11-23T12:35:06.0779Z' → '20261123123506', the form pywb puts in its URLs."""
    digits = "".join(c for c in ts[:19] if c in "0123456789")
    return digits if len(digits) == 14 else None


# Reserved characters stay as they are so pywb sees the URL as captured; spaces,
# quotes, angle brackets, non-ASCII and "#" are percent-encoded.
_REPLAY_SAFE = "!$%&'()*+,/:;=?@[]~"


def replay_url(base: str, ts14: str, url: str) -> str:
    return f"{base}{ts14}/{quote(url, safe=_REPLAY_SAFE)}"


def _relative_href(target: Path, report: Path) -> str:
    rel = os.path.relpath(target.resolve(), report.resolve().parent)
    # Quoting ":" keeps a folder name like "c:x" from reading as a URL scheme.
    return quote(rel.replace(os.sep, "/"), safe="/")


# ---------------------------------------------------------------------------
# Sections


def _crawl_times(audit: Audit) -> tuple[str, str]:
    """(started, finished): the earliest warcinfo or log entry, and crawl.json's end."""
    # crawl.json times only the last run (after start-up, and once per resume), so
    # the first record written is the better start.
    candidates = [audit.log.first] + [i.date for i in audit.warcinfo if i.date]
    started = min((c for c in candidates if c), default="")
    return started, str(audit.crawl.get("finished") or "")


def _site_name(audit: Audit) -> str:
    for info in audit.warcinfo:
        for name, value in info.fields:
            if name == "description" and value:
                return value
    return str(audit.crawl.get("name") or audit.crawl_dir.name)


def _summary_section(audit: Audit, replay_base: str) -> str:
    log, crawl = audit.log, audit.crawl
    settings = crawl.get("settings") if isinstance(crawl.get("settings"), dict) else {}
    started, finished = _crawl_times(audit)
    warc_bytes = sum(f.size for f in audit.fixity if f.role == "WARC")
    rows: list[tuple[str, object]] = [
        ("crawl name", crawl.get("name")),
        ("site", _site_name(audit)),
        ("start URLs", settings.get("start_urls")),
        ("started (first record)", started or None),
        ("last crawl.log entry", log.last or None),
        ("finished (crawl.json)", finished or None),
        ("outcome", crawl.get("reason")),
        ("HTML pages captured", audit.pages.total),
        ("fetch attempts logged", log.lines),
        ("index entries (captures)", audit.index.entries),
        ("distinct URLs in the index", audit.index.url_keys),
        ("fetch errors", log.errors.total),
        ("HTTP 4xx / 5xx", f"{log.client_errors.total:,} / {log.server_errors.total:,}"),
        ("refused (guards, robots.txt, excluded)", log.refused),
        ("truncated records", log.truncated.total),
        ("WARC files", sum(1 for f in audit.fixity if f.role == "WARC")),
        ("WARC bytes", human_bytes(warc_bytes)),
        ("replay links point at", replay_base),
    ]
    return _kv_table(rows, "summary-table")


def _warcinfo_html(audit: Audit) -> str:
    groups: dict[tuple[tuple[str, str], ...], list[WarcInfo]] = {}
    for info in audit.warcinfo:
        if not info.problem:
            groups.setdefault(tuple(info.fields), []).append(info)
    out = [
        '<table class="list" id="warc-files"><thead><tr><th>WARC file</th>'
        "<th>warcinfo date</th><th>warcinfo record id</th></tr></thead><tbody>"
    ]
    for info in audit.warcinfo:
        date = (
            esc(info.date)
            if not info.problem
            else f'<span class="muted">{esc(info.problem)}</span>'
        )
        out.append(
            f'<tr><td class="u">{esc(info.file)}</td><td>{date}</td>'
            f'<td class="u">{esc(info.record_id)}</td></tr>'
        )
    out.append("</tbody></table>")
    for n, (fields, infos) in enumerate(groups.items(), 1):
        which = (
            "all WARC files"
            if len(infos) == len(audit.warcinfo)
            else ", ".join(i.file for i in infos[:20]) + (" …" if len(infos) > 20 else "")
        )
        out.append(f"<h3>warcinfo fields ({esc(which)})</h3>")
        out.append(f'<table class="kv warcinfo" id="warcinfo-{n}"><tbody>')
        for name, value in fields:
            out.append(f"<tr><th>{esc(name)}</th><td>{_field_value(value)}</td></tr>")
        out.append("</tbody></table>")
    return "".join(out)


def _field_value(value: str) -> str:
    # Settings are recorded as one JSON line; laid out, an auditor can read them.
    if value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return (
                f"<pre>{esc(_clip(json.dumps(parsed, indent=2, ensure_ascii=False), 20000))}</pre>"
            )
    return f'<span class="u">{esc(_clip(value, 2000))}</span>'


def _provenance_section(audit: Audit) -> str:
    crawl = audit.crawl
    started, finished = _crawl_times(audit)
    rows: list[tuple[str, object]] = [
        ("name", crawl.get("name")),
        ("profile", crawl.get("profile")),
        ("sunset version", crawl.get("sunset")),
        ("started (first WARC record or crawl.log line)", started or None),
        ("finished", finished or None),
        ("duration of the last run (s)", crawl.get("seconds")),
        ("resumed", crawl.get("resumed")),
        ("outcome", crawl.get("reason")),
        ("fatal error", crawl.get("fatal") or "none"),
    ]
    parts = [
        "<h3>crawl.json</h3>",
        _kv_table(rows, "crawl-json"),
        "<h3>WARC files and their warcinfo records</h3>",
        _warcinfo_html(audit),
    ]
    settings = crawl.get("settings")
    if isinstance(settings, dict) and settings:
        parts.append("<h3>Settings (crawl.json)</h3>")
        parts.append(_kv_table([(str(k), v) for k, v in settings.items()], "settings"))
    stats = crawl.get("stats")
    if isinstance(stats, dict) and stats:
        parts.append("<h3>Counters kept by the crawler (crawl.json)</h3>")
        parts.append(_kv_table([(str(k), v) for k, v in stats.items()], "stats"))
    return "".join(parts)


def _status_bars(log: LogStats) -> list[tuple[str, float, str, str]]:
    classes: dict[str, int] = {}
    negatives: list[tuple[int, int]] = []
    for code, count in log.statuses.items():
        if code < 0:
            negatives.append((code, count))
        else:
            key = status_class(code)
            classes[key] = classes.get(key, 0) + count
    bars = [
        (name, classes[name], CLASS_COLOURS[name], f"{classes[name]:,}")
        for name in ("2xx", "3xx", "4xx", "5xx", "other")
        if classes.get(name)
    ]
    # Fetch errors first, then the refusals, each by code.
    for code, count in sorted(negatives, key=lambda c: (c[0] in REFUSAL_CODES, -c[0])):
        colour = REFUSAL_COLOUR if code in REFUSAL_CODES else ERROR_COLOUR
        bars.append((f"{code} {code_meaning(code)}", count, colour, f"{count:,}"))
    return bars


def _contents_section(audit: Audit) -> str:
    log, index = audit.log, audit.index
    out = [
        "<p>Every line of crawl.log counts once: a URL fetched twice (a retry) counts twice, "
        "and refusals are lines too. Types and bytes count HTTP responses only; bytes are "
        "body bytes as received.</p>",
        "<h3>Fetch attempts by status</h3>",
        bar_chart_svg("status-chart", "crawl.log lines by status", _status_bars(log)),
        '<table id="status-table"><thead><tr><th>status</th><th>meaning</th><th>class</th>'
        '<th class="n">lines</th></tr></thead><tbody>',
    ]
    for code in sorted(log.statuses, key=lambda c: (c < 0, abs(c))):
        count = log.statuses[code]
        klass = "refused" if code in REFUSAL_CODES else "error" if code < 0 else status_class(code)
        out.append(
            f'<tr data-code="{code}" data-count="{count}"><td class="n">{code}</td>'
            f"<td>{esc(code_meaning(code))}</td><td>{klass}</td>"
            f'<td class="n">{count:,}</td></tr>'
        )
    out.append(
        f'</tbody><tfoot><tr><th colspan="3">total</th><th class="n">{log.lines:,}</th></tr>'
        "</tfoot></table>"
    )
    type_bars = [
        (t, log.types.get(t, 0), TYPE_COLOURS[t], f"{log.types.get(t, 0):,}") for t in TYPES
    ]
    byte_bars = [
        (t, log.type_bytes.get(t, 0), TYPE_COLOURS[t], human_bytes(log.type_bytes.get(t, 0)))
        for t in TYPES
    ]
    out += [
        "<h3>HTTP responses by content type</h3>",
        bar_chart_svg("type-chart", "HTTP responses by content type", type_bars),
        "<h3>Bytes received by content type</h3>",
        bar_chart_svg("bytes-chart", "Body bytes received by content type", byte_bars),
        '<table id="type-table"><thead><tr><th>type</th><th class="n">responses</th>'
        '<th class="n">bytes</th></tr></thead><tbody>',
    ]
    for t in TYPES:
        out.append(
            f'<tr data-type="{esc(t)}"><td>{esc(t)}</td><td class="n">{log.types.get(t, 0):,}</td>'
            f'<td class="n">{log.type_bytes.get(t, 0):,}</td></tr>'
        )
    out.append(
        f'</tbody><tfoot><tr><th>total</th><th class="n">{sum(log.types.values()):,}</th>'
        f'<th class="n">{log.body_bytes:,}</th></tr></tfoot></table>'
    )
    if log.mimes:
        out.append(
            "<details><summary>MIME types as served</summary>"
            '<table id="mime-table"><thead><tr><th>MIME type</th><th>type</th>'
            '<th class="n">responses</th></tr></thead><tbody>'
        )
        for mime, count in sorted(log.mimes.items(), key=lambda m: (-m[1], m[0])):
            out.append(
                f'<tr><td class="u">{esc(_clip(mime))}</td><td>{esc(mime_category(mime))}</td>'
                f'<td class="n">{count:,}</td></tr>'
            )
        out.append("</tbody></table></details>")
    out.append(
        f"<p>{log.revisits:,} responses had a body identical to an earlier capture and are "
        f"stored as revisit records; {log.retried:,} lines are retries of an earlier "
        "attempt.</p>"
    )
    index_rows: list[tuple[str, object]] = [
        ("entries", index.entries),
        ("distinct URL keys", index.url_keys),
        ("revisit entries", index.revisits),
        ("earliest / latest capture", f"{index.first or '–'} / {index.last or '–'}"),
        ("by type", {k: index.types[k] for k in sorted(index.types)}),
        ("by status class", {k: index.statuses[k] for k in sorted(index.statuses)}),
        ("WARC files referenced", {k: index.files[k] for k in sorted(index.files)}),
    ]
    out += ["<h3>The CDXJ index (what replay can find)</h3>", _kv_table(index_rows, "index")]
    return "".join(out)


def _log_table(css_id: str, items: Sequence[LogLine], *, reason: bool = False) -> str:
    if not items:
        return '<p class="muted">None.</p>'
    head = "<th>reason</th>" if reason else ""
    out = [
        f'<table class="list" id="{css_id}"><thead><tr><th>#</th><th>time</th><th>status</th>'
        f"<th>URL</th><th>referrer</th>{head}<th>notes</th></tr></thead><tbody>"
    ]
    for n, rec in enumerate(items, 1):
        why = ""
        if reason:
            why = f"<td>{esc(code_meaning(rec.status))}</td>"
        # keepalive says only that a connection was reused; it explains no failure.
        shown = [note for note in rec.notes if note != "keepalive"]
        notes = esc(_clip(",".join(shown))) if shown else _NONE
        out.append(
            f'<tr><td class="n">{n}</td><td class="t">{esc(rec.ts)}</td><td class="n">{rec.status}</td>'
            f"<td>{_url_text(rec.url)}</td><td>{_url_text(rec.via)}</td>{why}"
            f"<td>{notes}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def _failures_section(audit: Audit) -> str:
    log = audit.log
    error_codes = {c: n for c, n in log.statuses.items() if c < 0 and c not in REFUSAL_CODES}
    out = [f"<h3>Fetch errors — {log.errors.total:,}</h3>"]
    if error_codes:
        out.append(
            '<table id="error-codes"><thead><tr><th>code</th><th>meaning</th>'
            '<th class="n">attempts</th></tr></thead><tbody>'
        )
        for code in sorted(error_codes, reverse=True):
            out.append(
                f'<tr><td class="n">{code}</td><td>{esc(code_meaning(code))}</td>'
                f'<td class="n">{error_codes[code]:,}</td></tr>'
            )
        out.append("</tbody></table>")
    out.append(
        "<p>No HTTP response was received; a retried URL appears once per attempt.</p>"
        + _log_table("errors-list", log.errors.items, reason=True)
        + _more(log.errors.more, "see crawl.log (negative status codes)")
    )
    for title, css_id, capped in (
        ("HTTP 4xx (client errors)", "client-errors", log.client_errors),
        ("HTTP 5xx (server errors)", "server-errors", log.server_errors),
    ):
        out.append(f"<h3>{title} — {capped.total:,}</h3>")
        out.append(_log_table(css_id, capped.items))
        out.append(_more(capped.more, "see crawl.log"))
    out.append(f"<h3>Truncated records — {log.truncated.total:,}</h3>")
    if log.truncated_reasons:
        out.append(
            _kv_table(
                [
                    (f"truncated: {k}", v)
                    for k, v in sorted(log.truncated_reasons.items(), key=lambda kv: kv[0])
                ],
                "truncated-reasons",
            )
        )
    out.append(
        "<p>A body cut short is still archived, marked <code>WARC-Truncated</code>: "
        "<code>length</code> (the size limit), <code>time</code> (the timeout) or "
        "<code>disconnect</code> (the server closed early).</p>"
        + _log_table("truncated-list", log.truncated.items)
        + _more(log.truncated.more, "see crawl.log (notes truncated:…)")
    )
    return "".join(out)


_REFUSAL_HELP = {
    "robots.txt": "the site's robots.txt disallowed it (the crawl obeyed robots.txt)",
    "excluded": "it matched the profile's exclude patterns, or missed its include patterns",
    "guard:query-variants": "too many query-string variants of one path",
    "guard:path-depth": "the path was deeper than the limit",
    "guard:repeated-segments": "a path segment repeated too often (a link loop)",
    "guard:trap-pattern": "it matched a known crawler-trap pattern",
    "guard:calendar": "too many calendar pages (an endless date archive)",
}


def _refusals_section(audit: Audit) -> str:
    log = audit.log
    if not log.refusals:
        return "<p>Nothing was refused.</p>"
    kinds = sorted(log.refusals, key=lambda k: (-log.refusals[k].total, k))
    out = [
        "<p>URLs the crawler found but chose not to fetch, and why. They are not in the "
        "archive.</p>",
        '<table id="refusals-table"><thead><tr><th>refused by</th><th>why</th>'
        '<th class="n">URLs</th></tr></thead><tbody>',
    ]
    for kind in kinds:
        out.append(
            f'<tr data-refusal="{esc(kind)}"><td>{esc(_clip(kind))}</td>'
            f"<td>{esc(_REFUSAL_HELP.get(kind, ''))}</td>"
            f'<td class="n">{log.refusals[kind].total:,}</td></tr>'
        )
    out.append("</tbody></table>")
    for n, kind in enumerate(kinds, 1):
        capped = log.refusals[kind]
        out.append(f"<h3>{esc(_clip(kind))} — {capped.total:,}</h3>")
        out.append(_log_table(f"refused-{n}", capped.items))
        out.append(_more(capped.more, "see crawl.log"))
    return "".join(out)


def _fixity_section(audit: Audit) -> str:
    out = [
        "<p>SHA-256 of every file of the crawl as it was when this report was written. "
        "To check a copy later, save the block below as <code>SHA256SUMS</code> in the crawl "
        "folder and run <code>sha256sum -c SHA256SUMS</code>; "
        "<code>sunset verify</code> also checks every record inside the WARC files.</p>",
        '<table class="list" id="fixity"><thead><tr><th>file</th><th>role</th>'
        '<th class="n">bytes</th><th>SHA-256</th></tr></thead><tbody>',
    ]
    for f in audit.fixity:
        out.append(
            f'<tr data-file="{esc(f.path)}"><td class="u">{esc(f.path)}</td><td>{esc(f.role)}</td>'
            f'<td class="n">{f.size:,}</td><td class="h">{f.sha256}</td></tr>'
        )
    total = sum(f.size for f in audit.fixity)
    out.append(
        f'</tbody><tfoot><tr><th colspan="2">{len(audit.fixity):,} files</th>'
        f'<th class="n">{total:,}</th><th></th></tr></tfoot></table>'
    )
    sums = "\n".join(f"{f.sha256}  {f.path}" for f in audit.fixity)
    out.append(f'<pre id="sha256sums">{esc(sums)}</pre>')
    for wacz in audit.waczs:
        if wacz.problem:
            continue
        rows: list[tuple[str, object]] = [
            ("created", wacz.created or None),
            ("software", wacz.software or None),
            ("WACZ version", wacz.version or None),
            ("resources listed in datapackage.json", wacz.resources),
        ]
        out.append(f"<h3>{esc(wacz.file)}</h3>" + _kv_table(rows))
    return "".join(out)


def _replay_section(audit: Audit, replay_base: str) -> str:
    parts = urlsplit(replay_base)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    command = f"sunset replay {shlex.quote(str(audit.crawl_dir))} --port {port}"
    out = [
        "<p>The links open each page as captured, through pywb on this machine. Start it "
        f"first with <code>{esc(command)}</code>; the links assume it serves the crawl at "
        f"<code>{esc(replay_base)}</code>. Nothing on the live web is linked: the legacy "
        "URLs are shown as text.</p>"
    ]
    pages = audit.pages
    if not pages.shown:
        out.append('<p class="muted">No pages.</p>')
        return "".join(out)
    out.append(
        f"<p>{pages.total:,} HTML pages, in URL order.</p>"
        '<table class="list" id="pages"><thead><tr><th>#</th><th>title</th><th>URL</th>'
        "<th>captured</th><th>status</th><th>replay</th></tr></thead><tbody>"
    )
    for n, page in enumerate(pages.shown, 1):
        ts14 = timestamp14(page.ts)
        if ts14 and is_web_url(page.url):
            href = replay_url(replay_base, ts14, page.url)
            link = f'<a href="{esc(href)}" rel="noreferrer noopener" target="_blank">replay</a>'
        else:
            link = _NONE
        title = esc(page.title) if page.title else '<span class="muted">(no title)</span>'
        out.append(
            f'<tr><td class="n">{n}</td><td>{title}</td><td>{_url_text(page.url)}</td>'
            f'<td class="t">{esc(_clip(page.ts, 40))}</td><td class="n">{_fmt(page.status)}</td>'
            f"<td>{link}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(_more(pages.total - len(pages.shown), "all pages are in pages.jsonl"))
    return "".join(out)


def _transform_section(data: Mapping[str, Any]) -> str:
    keys = (
        ("HTML captures read", "html_captures"),
        ("pages", "pages"),
        ("content pages", "content_pages"),
        ("listings", "listings"),
        ("multi-part articles", "multipart"),
        ("skipped", "skipped"),
        ("attachments", "attachments"),
        ("seconds", "seconds"),
    )
    rows: list[tuple[str, object]] = [(label, data[k]) for label, k in keys if k in data]
    reasons = data.get("reasons")
    if isinstance(reasons, dict) and reasons:
        rows.append(("skipped, by reason", reasons))
    return (
        "<p>Clean content extracted by <code>sunset transform</code> into <code>content/</code>."
        "</p>" + _kv_table(rows, "transform")
    )


def _redirects_section(data: Mapping[str, Any], audit: Audit, report: Path) -> str:
    rows: list[tuple[str, object]] = [
        (label, data[k])
        for label, k in (
            ("legacy URLs mapped", "rows"),
            ("legacy pages", "groups"),
            ("new-site pages", "new_pages"),
        )
        if k in data
    ]
    methods = data.get("methods")
    if isinstance(methods, dict):
        for method, count in methods.items():
            rows.append((f"by method: {method}", count))
    for label, k in (("refused (left out)", "refused"), ("case collisions", "collisions")):
        if k in data:
            rows.append((label, data[k]))
    out = [
        "<p>Redirects from the legacy URLs, written by <code>sunset redirects</code> into "
        "<code>redirects/</code>.</p>",
        _kv_table(rows, "redirects"),
    ]
    if audit.has_redirects_report:
        href = _relative_href(audit.crawl_dir / "redirects" / "report.html", report)
        out.append(
            f'<p>The reviewers\' report: <a href="{esc(href)}">redirects/report.html</a></p>'
        )
    return "".join(out)


def render(audit: Audit, report: Path, *, replay_base: str | None = None) -> str:
    """The report as one HTML document; `report` is where it will live (for relative links).

    `replay_base` defaults to where `sunset replay CRAWL_DIR` serves the crawl.
    """
    replay_base = normalise_replay_base(
        replay_base or default_replay_base(audit.crawl_dir, audit.crawl)
    )
    log = audit.log
    sections = [
        ("summary", "Summary", _summary_section(audit, replay_base)),
        ("provenance", "How the crawl was made", _provenance_section(audit)),
        ("contents", "What it holds", _contents_section(audit)),
        (
            "failures",
            f"What failed — {log.errors.total + log.client_errors.total + log.server_errors.total:,}",
            _failures_section(audit),
        ),
        ("refused", f"What was refused — {log.refused:,}", _refusals_section(audit)),
        ("fixity", "Fixity", _fixity_section(audit)),
        ("replay", "Pages and their replay", _replay_section(audit, replay_base)),
    ]
    if audit.transform is not None:
        sections.append(("transform", "Transform", _transform_section(audit.transform)))
    if audit.redirects is not None:
        sections.append(
            ("redirects", "Redirects", _redirects_section(audit.redirects, audit, report))
        )
    heading = f"Crawl audit report — {_clip(str(audit.crawl.get('name') or audit.crawl_dir.name))}"
    nav = "".join(f'<a href="#{sid}">{esc(title.split(" —")[0])}</a>' for sid, title, _ in sections)
    warnings = ""
    if audit.warnings:
        items = "".join(f"<li>{esc(_clip(w, 2000))}</li>" for w in audit.warnings)
        warnings = f'<div class="warn" id="warnings"><strong>Check these first</strong><ul>{items}</ul></div>'
    body = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{html}</section>'
        for sid, title, html in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(heading)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{esc(heading)}</h1>"
        f'<p class="muted">Written {esc(audit.generated)} by sunset {esc(__version__)} from '
        f"<code>{esc(audit.crawl_dir)}</code>.</p>"
        f"<nav>{nav}</nav>{warnings}{body}</body></html>\n"
    )


def write_report(
    crawl_dir: Path,
    out: Path | None = None,
    *,
    replay_base: str | None = None,
    list_cap: int = LIST_CAP,
) -> tuple[Path, Audit]:
    """Write the audit report (default CRAWL_DIR/report.html); returns its path and the data."""
    if replay_base is not None:
        normalise_replay_base(replay_base)  # a bad base fails before any work
    crawl_dir = Path(crawl_dir)
    audit = gather(crawl_dir, list_cap=list_cap)
    path = Path(out) if out is not None else crawl_dir / "report.html"
    if path.is_dir():
        raise SunsetError(f"{path}: is a folder; give the report's file name")
    if path.suffix.lower() not in (".html", ".htm"):
        # The crawl's own files are evidence: a typo must not overwrite one.
        raise SunsetError(f"{path}: the report's name must end in .html")
    if not path.parent.is_dir():
        raise SunsetError(f"{path.parent}: no such folder for the report")
    text = render(audit, path, replay_base=replay_base)
    # Replace atomically so nobody opens a half-written report.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise SunsetError(f"{path}: cannot write the report: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path, audit


def cli_report(crawl_dir: Path, out: Path | None, *, replay_base: str | None = None) -> None:
    """`sunset report`: write the report and print a short summary and its path."""
    from sunset.ui import summary_table

    path, audit = write_report(crawl_dir, out, replay_base=replay_base)
    log = audit.log
    rows: list[tuple[str, object]] = [
        ("HTML pages", audit.pages.total),
        ("fetch attempts", log.lines),
    ]
    for name in ("2xx", "3xx", "4xx", "5xx"):
        count = sum(n for c, n in log.statuses.items() if c > 0 and status_class(c) == name)
        if count:
            rows.append((f"  {name}", count))
    rows += [
        ("fetch errors", log.errors.total),
        ("refused (guards, robots, excluded)", log.refused),
        ("truncated", log.truncated.total),
        ("files hashed", len(audit.fixity)),
        ("bytes hashed", sum(f.size for f in audit.fixity)),
        ("warnings", len(audit.warnings)),
    ]
    summary_table(f"report — {crawl_dir}", rows)
    # On its own line and unwrapped, so scripts and terminals can pick the path up whole.
    print(f"report: {path}")


__all__ = [
    "REPLAY_ORIGIN",
    "Audit",
    "LogLine",
    "bar_chart_svg",
    "cli_report",
    "collection_name",
    "default_replay_base",
    "gather",
    "mime_category",
    "parse_log_line",
    "read_warcinfo",
    "render",
    "replay_url",
    "sha256_file",
    "timestamp14",
    "write_report",
]
