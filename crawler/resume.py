"""Check the WARC files of an interrupted crawl and rebuild what a resume needs from them.

The WARCs are the only record trusted after a kill: Scrapy's JOBDIR state is
written on a clean shutdown, so after SIGKILL it is stale. A file still named
`.open` (or any file that does not read to its end) is cut back to its last
whole gzip member; the original is moved aside, never silently kept or dropped.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from .links import css_links, html_links, robots_sitemaps, sitemap_links
from .urls import canonicalize, host_of


@dataclass
class FileCheck:
    path: Path
    records: int
    good_end: int
    size: int
    error: str | None

    @property
    def torn(self) -> bool:
        return self.error is not None or self.good_end != self.size


def check_members(path: Path) -> FileCheck:
    """Walk the gzip members of a .warc.gz; stop at the first one that is incomplete or bad."""
    size = path.stat().st_size
    records = 0
    good_end = 0
    with open(path, "rb") as fh:
        while good_end < size:
            fh.seek(good_end)
            d = zlib.decompressobj(31)
            consumed = 0
            head = b""
            try:
                while not d.eof:
                    chunk = fh.read(1 << 16)
                    if not chunk:
                        return FileCheck(
                            path,
                            records,
                            good_end,
                            size,
                            f"record {records + 1} is cut off at byte {size}",
                        )
                    out = d.decompress(chunk)
                    if len(head) < 16:
                        head += out[:16]
                    consumed += len(chunk) - len(d.unused_data)
            except zlib.error as exc:
                return FileCheck(
                    path,
                    records,
                    good_end,
                    size,
                    f"record {records + 1} at byte {good_end} is corrupt ({exc})",
                )
            if not head.startswith(b"WARC/"):
                return FileCheck(
                    path,
                    records,
                    good_end,
                    size,
                    f"record {records + 1} at byte {good_end} is not a WARC record",
                )
            good_end += consumed
            records += 1
    return FileCheck(path, records, good_end, size, None)


def repair(folder: Path, aside: Path) -> list[FileCheck]:
    """Make every WARC in `folder` end on a whole record; move torn originals to `aside`."""
    checks = []
    for path in sorted(folder.iterdir()):
        if not path.name.endswith((".warc.gz", ".warc.gz.open")):
            continue
        check = check_members(path)
        final = path.with_name(path.name.removesuffix(".open"))
        if check.torn:
            aside.mkdir(parents=True, exist_ok=True)
            kept = aside / (path.name + ".torn")
            shutil.move(path, kept)
            if check.good_end:
                with open(kept, "rb") as src, open(final, "wb") as dst:
                    remaining = check.good_end
                    while remaining:
                        chunk = src.read(min(1 << 20, remaining))
                        dst.write(chunk)
                        remaining -= len(chunk)
        elif path != final:
            path.rename(final)
        checks.append(check)
    return checks


@dataclass
class Previous:
    """What earlier runs captured, as read back from their WARCs."""

    captured: set[str] = field(default_factory=set)  # canonical URLs with a response or revisit
    revisits: dict[str, tuple[str, str]] = field(default_factory=dict)
    robots: dict[str, bytes | None] = field(default_factory=dict)
    frontier: list[dict[str, str]] = field(default_factory=list)
    max_serial: int = -1
    responses: int = 0


def _hops(fields: bytes) -> str:
    for line in fields.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key == "hopsFromSeed":
            return "" if value.strip() == "-" else value.strip()
    return ""


def read_previous(folder: Path) -> Previous:
    prev = Previous()
    candidates: dict[str, tuple[str, str]] = {}  # canonical -> (url, hops, via) of a found link
    found: list[tuple[str, str, str]] = []
    hops_of: dict[str, str] = {}
    for path in sorted(folder.glob("*.warc.gz")):
        serial = path.name.rsplit("-", 2)[-2] if path.name.count("-") >= 3 else ""
        if serial.isdigit():
            prev.max_serial = max(prev.max_serial, int(serial))
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                kind = rec.rec_type
                url = rec.rec_headers.get_header("WARC-Target-URI") or ""
                if kind == "metadata":
                    hops_of[url] = _hops(rec.content_stream().read())
                    continue
                if kind not in ("response", "revisit"):
                    continue
                prev.captured.add(canonicalize(url))
                prev.responses += 1
                status = int(rec.http_headers.get_statuscode() or 0) if rec.http_headers else 0
                digest = rec.rec_headers.get_header("WARC-Payload-Digest")
                date = rec.rec_headers.get_header("WARC-Date") or ""
                if kind == "response" and status == 200 and digest and digest not in prev.revisits:
                    prev.revisits[digest] = (url, date)
                if kind == "revisit":
                    continue
                if url.endswith("/robots.txt"):
                    body = rec.content_stream().read() if status == 200 else None
                    prev.robots[host_of(url)] = body
                if 300 <= status < 400 and rec.http_headers:
                    location = rec.http_headers.get_header("Location")
                    if location:
                        from urllib.parse import urljoin

                        found.append((urljoin(url, location), "R", url))
                    continue
                if status != 200 or rec.rec_headers.get_header("WARC-Truncated"):
                    continue
                found.extend(_links(rec, url))
    for url, hop, via in found:
        key = canonicalize(url)
        if key in prev.captured or key in candidates:
            continue
        base = hops_of.get(via, "")
        candidates[key] = (url, "S" if hop == "S" else base + hop, via)
    prev.frontier = [{"url": u, "hops": h, "via": v} for u, h, v in candidates.values()]
    return prev


def _links(rec: object, url: str) -> Iterator[tuple[str, str, str]]:
    http = rec.http_headers  # type: ignore[attr-defined]
    ctype = (http.get_header("Content-Type") or "").lower() if http else ""
    try:
        body = rec.content_stream().read()  # type: ignore[attr-defined]
    except Exception:  # a body that will not decode yields no links, as in the live crawl
        return
    if url.endswith("/robots.txt"):
        for sm in robots_sitemaps(body, url):
            yield sm, "P", url
    elif b"<urlset" in body[:1024] or b"<sitemapindex" in body[:1024]:
        pages, nested = sitemap_links(body, url)
        for u in pages:
            yield u, "S", url
        for u in nested:
            yield u, "P", url
    elif "css" in ctype:
        for u, hop, _ in css_links(body, url):
            yield u, hop, url
    elif "html" in ctype or not ctype:
        charset = ctype.split("charset=")[1].strip() if "charset=" in ctype else None
        for u, hop, _ in html_links(body, url, charset):
            yield u, hop, url
