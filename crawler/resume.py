"""Check the WARC files of an interrupted crawl and rebuild what a resume needs from them.

The WARCs are the only record trusted after a kill: Scrapy's JOBDIR state is
written on a clean shutdown, so after SIGKILL it is stale. A file still named
`.open` (or any file that does not read to its end) is cut back to its last
whole gzip member; the original is moved aside, never silently kept or dropped.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from scrapy.settings.default_settings import RETRY_HTTP_CODES
from warcio.archiveiterator import ArchiveIterator

from .hops import add as hops_add
from .links import css_links, html_links, is_html, robots_sitemaps, sitemap_links
from .session import ROBOTS_PARSE_LIMIT, robots_rules
from .urls import REDIRECTS, ROBOTS_REDIRECTS, canonicalize, host_of, invalid, redirect_target


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
    robots_policy: dict[str, str] = field(default_factory=dict)  # as robots_rules names it
    frontier: list[dict[str, str]] = field(default_factory=list)
    max_serial: int = -1
    responses: int = 0


def _meta(fields: bytes) -> tuple[str, str | None]:
    """(hopsFromSeed, via) of a metadata record."""
    hops, via = "", None
    for line in fields.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(":")
        if key == "hopsFromSeed":
            hops = "" if value.strip() == "-" else value.strip()
        elif key == "via":
            via = None if value.strip() == "-" else value.strip()
    return hops, via


def _latin1(line: bytes) -> str:
    return line.decode("latin-1")


def _records(fh: IO[bytes]) -> ArchiveIterator:
    """The records of a WARC, their HTTP headers read as the crawl's client reads
    them (latin-1: every byte as itself), not as warcio does (UTF-8 when it can),
    so a non-ASCII Location leads where it led in the crawl."""
    records = ArchiveIterator(fh)
    records.loader.http_parser.decode_header = _latin1
    return records


def read_previous(
    folder: Path,
    max_body: int = 100 * 1000**2,
    seeds: Iterable[str] = (),
    calendar: Callable[[str], bool] | None = None,
) -> Previous:
    """What the WARCs in `folder` captured, and the frontier: every URL they link
    to that none of them captured, found exactly as the live crawl finds it, with
    the discovery path and calendar step (`calendar`: whether a canonical URL is
    a calendar's) the live crawl would have given it."""
    prev = Previous()
    # canonical -> (url, hop, via) of the first link found to it
    found: dict[str, tuple[str, str, str]] = {}
    hops_of: dict[str, str] = {}
    # The via of each page that can be a step of a calendar chain (a calendar
    # URL, or a redirect target, which keeps its source's step).
    cal_via: dict[str, str | None] = {}
    # A revisit's body is its original's, but its links are resolved against
    # its own URL (byte-identical pages in different folders link to different
    # pages), so the originals of link-bearing payloads are found again by offset.
    originals: dict[str, tuple[Path, int]] = {}
    revisited: list[tuple[str, str]] = []  # (URL, payload digest)
    # Canonical robots.txt URL -> (rules, policy) of a final answer, or where it redirected.
    robots_answers: dict[str, tuple[bytes, str]] = {}
    robots_moved: dict[str, str] = {}

    def add(links: Iterator[tuple[str, str, str]]) -> None:
        for link in links:
            found.setdefault(_key(link[0]), link)

    for path in sorted(folder.glob("*.warc.gz")):
        serial = path.name.rsplit("-", 2)[-2] if path.name.count("-") >= 3 else ""
        if serial.isdigit():
            prev.max_serial = max(prev.max_serial, int(serial))
        with open(path, "rb") as fh:
            records = _records(fh)
            for rec in records:
                kind = rec.rec_type
                url = rec.rec_headers.get_header("WARC-Target-URI") or ""
                if kind == "metadata":
                    hops, via = _meta(rec.content_stream().read())
                    hops_of[url] = hops
                    if calendar is not None and (hops.endswith("R") or calendar(_key(url))):
                        cal_via[url] = via
                    continue
                if kind not in ("response", "revisit"):
                    continue
                prev.responses += 1
                status = int(rec.http_headers.get_statuscode() or 0) if rec.http_headers else 0
                cut = rec.rec_headers.get_header("WARC-Truncated") or ""
                # An answer the live crawl would have tried again (a server
                # error, a body cut by time or a dropped connection) is not a
                # capture: a crawl killed before its retry retries on resume.
                if status not in RETRY_HTTP_CODES and cut not in ("time", "disconnect"):
                    prev.captured.add(canonicalize(url))
                digest = rec.rec_headers.get_header("WARC-Payload-Digest")
                date = rec.rec_headers.get_header("WARC-Date") or ""
                if kind == "response" and status == 200 and digest and digest not in prev.revisits:
                    prev.revisits[digest] = (url, date)
                if kind == "revisit":
                    if 200 <= status < 300 and digest:
                        revisited.append((url, digest))
                    continue
                robots = urlsplit(url).path.endswith("/robots.txt")
                location = rec.http_headers.get_header("Location") if rec.http_headers else None
                if robots and status in REDIRECTS and location:
                    robots_moved[canonicalize(url)] = redirect_target(url, location)
                elif robots and canonicalize(url) in prev.captured:
                    # Only a final answer is reused: after a server error, or
                    # a body cut by time, the resumed crawl asks again.
                    body = (
                        _read_upto(rec.content_stream(), ROBOTS_PARSE_LIMIT + 1)
                        if 200 <= status < 300
                        else None
                    )
                    truncated = bool(rec.rec_headers.get_header("WARC-Truncated"))
                    robots_answers[canonicalize(url)] = robots_rules(status, body, truncated)
                if 300 <= status < 400:
                    # Scrapy follows these five only, and only with a Location.
                    if status in REDIRECTS and location:
                        target = redirect_target(url, location)
                        add(iter([(target, "R", url)]))
                    continue
                # As the live crawl: the spider parses every 2xx body, a
                # truncated one too (its links are what arrived).
                if not 200 <= status < 300:
                    continue
                add(_links(rec, url, max_body))
                if digest and digest not in originals and _may_link(rec):
                    # Asked only now: warcio reads the record to its end to answer.
                    originals[digest] = (path, records.get_record_offset())
    add(_revisit_links(revisited, originals, max_body))
    # Each host's rules, as the crawl decided them from its /robots.txt and
    # where that redirected (a file of another name below the root is a page).
    for start in sorted({*robots_answers, *robots_moved}):
        if urlsplit(start).path == "/robots.txt" and not urlsplit(start).query:
            answer = _robots_answer(start, robots_answers, robots_moved)
            if answer is not None:
                prev.robots[host_of(start)], prev.robots_policy[host_of(start)] = answer
    starts = {_key(u) for u in seeds}

    def link_to(url: str) -> tuple[str, str] | None:
        """(hop, via) by which the crawl reached a page that left no metadata
        record (a redirect, a page without links): the first link found to it."""
        key = _key(url)
        link = None if key in starts else found.get(key)
        return None if link is None else (link[1], link[2])

    hops_memo: dict[str, str] = {}

    def hops_for(url: str) -> str:
        """The discovery path the crawl gave `url`, rebuilt along first links
        where a page left no metadata record (a redirect chain)."""
        chain: list[tuple[str, str]] = []
        base, cur, seen = "", url, set()
        while cur not in seen:
            seen.add(cur)
            if cur in hops_of or cur in hops_memo:
                base = hops_of[cur] if cur in hops_of else hops_memo[cur]
                break
            link = link_to(cur)
            if link is None:
                break
            chain.append((cur, link[0]))
            if link[0] == "S":  # a sitemap entry starts a chain of its own
                break
            cur = link[1]
        for page, hop in reversed(chain):
            base = "S" if hop == "S" else hops_add(base, hop)
            hops_memo[page] = base
        return base

    cal_memo: dict[str, int] = {}

    def cal_for(url: str) -> int:
        """The calendar step the crawl gave `url` (Session.calendar_depth along
        its vias; 0 for a page that is not a calendar's)."""
        if calendar is None:
            return 0
        chain: list[tuple[str, bool]] = []
        base, cur, seen = 0, url, set()
        while cur is not None and cur not in seen:
            seen.add(cur)
            if cur in cal_memo:
                base = cal_memo[cur]
                break
            via: str | None
            if cur in hops_of:
                redirected = hops_of[cur].endswith("R")
                via = cal_via.get(cur)
            else:
                link = link_to(cur)
                redirected = link is not None and link[0] == "R"
                via = link[1] if link else None
            if not redirected and not calendar(_key(cur)):
                cal_memo[cur] = 0
                break
            chain.append((cur, redirected))
            cur = via
        for page, redirected in reversed(chain):
            base = base if redirected else base + 1
            cal_memo[page] = base
        return cal_memo.get(url, base)

    candidates: dict[str, dict[str, str]] = {}
    for key, (url, hop, via) in found.items():
        if key in prev.captured:
            continue
        hops = "S" if hop == "S" else hops_add(hops_for(via), hop)
        item = {"url": url, "hops": hops, "via": via}
        if cal := cal_for(via):
            item["cal"] = str(cal)
        candidates[key] = item
    prev.frontier = list(candidates.values())
    return prev


def _robots_answer(
    url: str, answers: dict[str, tuple[bytes, str]], moved: dict[str, str]
) -> tuple[bytes, str] | None:
    """(rules, policy) that a robots.txt fetch of `url` ended in, following its
    redirects as the crawl does; None if it ended in nothing final (to ask again)."""
    for _ in range(ROBOTS_REDIRECTS + 1):
        if url in answers:
            return answers[url]
        target = moved.get(url)
        if target is None:
            return None
        if invalid(target) or not urlsplit(target).path.endswith("/robots.txt"):
            break
        url = canonicalize(target)
    # Redirected to a page, or more than five times: as the crawl, no rules.
    return robots_rules(310, None, False)


def _key(url: str) -> str:
    """The canonical form, or for a URL no request can be made from the URL
    itself: it stays in the frontier, for the resumed crawl to log as the crawl did."""
    return url if invalid(url) else canonicalize(url)


def _may_link(rec: object) -> bool:
    """Whether a response is of a kind _links reads (so worth finding again for a revisit)."""
    http = rec.http_headers  # type: ignore[attr-defined]
    ctype = (http.get_header("Content-Type") or "").lower() if http else ""
    return not ctype or any(k in ctype for k in ("html", "css", "xml", "text/plain"))


def _revisit_links(
    revisited: list[tuple[str, str]], originals: dict[str, tuple[Path, int]], max_body: int
) -> Iterator[tuple[str, str, str]]:
    """The links of each revisit: its original's body read again, resolved against its own URL."""
    todo = sorted((originals[digest], url) for url, digest in revisited if digest in originals)
    fh: IO[bytes] | None = None
    current: Path | None = None
    try:
        for (path, offset), url in todo:
            if path != current:
                if fh is not None:
                    fh.close()
                fh, current = open(path, "rb"), path  # noqa: SIM115 - closed below
            fh.seek(offset)
            yield from _links(next(iter(_records(fh))), url, max_body)
    finally:
        if fh is not None:
            fh.close()


def _read_upto(stream: IO[bytes], limit: int) -> bytes:
    # warcio's read(n) returns what one buffer fill gives, not n bytes.
    parts, size = [], 0
    while size < limit and (part := stream.read(min(1 << 20, limit - size))):
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _links(rec: object, url: str, max_body: int) -> Iterator[tuple[str, str, str]]:
    http = rec.http_headers  # type: ignore[attr-defined]
    ctype = (http.get_header("Content-Type") or "").lower() if http else ""
    try:
        # Decoded no further than the live crawl decodes it: a small
        # compressed body can inflate without end.
        body = _read_upto(rec.content_stream(), max_body)  # type: ignore[attr-defined]
    except Exception:  # a body that will not decode yields no links, as in the live crawl
        return
    if urlsplit(url).path == "/robots.txt" and not urlsplit(url).query:
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
    elif is_html(ctype, body):
        charset = ctype.split("charset=")[1].strip() if "charset=" in ctype else None
        for u, hop, _ in html_links(body, url, charset):
            yield u, hop, url
