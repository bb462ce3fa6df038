"""What the two sites hold, read from files other stages wrote.

Legacy side: a crawl folder (``indexes/index.cdxj``, ``warc/``) and, when
``sunset transform`` has run, its ``content/pages.jsonl`` for titles, text and
which URLs show one page. New side: a crawl of the new site (same layout), a
sitemap (file or URL) or a CSV list. Nothing here imports another stage.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from sys import intern
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree
from lxml import html as lxml_html
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from sunset.errors import SunsetError
from sunset.transformed import require_finished

from .store import BATCH, create, present, scan, storable
from .urls import AFFIX_SHARE, absolute, affix_floor, canonical, request_target, title_pieces

HTML_MIMES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HTTP = re.compile(r"^https?://", re.IGNORECASE)
# An http(s) URL whose host is plain name or IPv4 characters, with no user
# info and at most a numeric port: urlsplit cannot fail on it (in ASCII) and
# finds that host.
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?::[0-9]*)?(?:[/?#]|\Z)", re.IGNORECASE)
# Types that are page furniture, not things anyone bookmarks or links to.
_NOT_CONTENT = re.compile(
    r"^(text/css|(application|text)/(x-)?javascript|font/|application/(x-)?font|"
    r"application/vnd\.ms-fontobject|image/x-icon|image/vnd\.microsoft\.icon)"
)
_DROP_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template")


@dataclass(slots=True)
class Capture:
    url: str
    timestamp: str  # 14 digits
    status: int
    mime: str
    digest: str
    filename: str
    offset: int


@dataclass(slots=True)
class LegacyPage:
    """One legacy page and every URL that shows it."""

    group: str
    url: str  # the primary URL
    urls: list[str]
    title: str = ""
    text: str = ""
    kind: str = "content"  # content | listing | document | asset
    links: list[str] = field(default_factory=list)
    timestamp: str = ""
    digest: str = ""
    mime: str = ""
    from_transform: bool = False  # grouped and cleaned by `sunset transform`


@dataclass(slots=True)
class NewPage:
    url: str
    title: str = ""
    titles: tuple[str, ...] = ()  # other names it goes by (h1, <title>)
    text: str = ""
    kind: str = "page"  # page | document
    digest: str = ""
    headings: tuple[str, ...] = ()  # h2/h3 texts: weighed above body text by topic matching


def valid_url(url: object) -> bool:
    """An absolute http(s) URL that the standard library can take apart.

    Everything read here came from a crawl of someone else's site: a field
    that is not a string, or a URL ``urlsplit`` rejects (``http://[x/``), is
    skipped rather than allowed to stop the run.
    """
    if not isinstance(url, str):
        return False
    if url.isascii() and _PLAIN_URL.match(url):
        # Nearly every URL in a crawl: checked without taking it apart.
        return True
    if not _HTTP.match(url):
        return False
    if not url.isascii():
        try:
            # A lone surrogate (JSON can spell one) is no character a client
            # can send, and the scratch tables only hold UTF-8.
            url.encode("utf-8")
        except UnicodeEncodeError:
            return False
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:
        return False


def _index_path(crawl_dir: Path) -> Path:
    index = crawl_dir / "indexes" / "index.cdxj"
    if not index.is_file():
        raise SunsetError(f"{crawl_dir}: no crawl index at {index} (run 'sunset crawl' first)")
    return index


def _cdxj_lines(index: Path) -> Iterator[Capture]:
    """Every usable capture line of a CDXJ index, in file order."""
    with open(index, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            head, sep, rest = line.partition(" {")
            if not sep:
                continue
            try:
                data = json.loads("{" + rest)
                ts = head.split(" ", 1)[1]
                # A crawl repeats a few types, file names and seconds many
                # thousand times: one shared string each.
                cap = Capture(
                    url=data["url"],
                    timestamp=intern(str(ts)),
                    status=int(data.get("status") or 0),
                    mime=intern(str(data.get("mime") or "").split(";")[0].strip().lower()),
                    digest=str(data.get("digest") or ""),
                    filename=intern(str(data.get("filename") or "")),
                    offset=int(data.get("offset") or 0),
                )
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                continue
            if not valid_url(cap.url):
                continue
            if not (cap.mime + cap.digest + cap.filename).isascii():
                try:
                    (cap.mime + cap.digest + cap.filename).encode("utf-8")
                except UnicodeEncodeError:
                    continue
            yield cap


def read_cdxj(crawl_dir: Path) -> dict[str, Capture]:
    """The latest capture of every URL in a crawl's CDXJ index (the new site's: it is small)."""
    latest: dict[str, Capture] = {}
    mime_of_digest: dict[str, str] = {}
    for cap in _cdxj_lines(_index_path(crawl_dir)):
        if cap.mime != "warc/revisit" and cap.digest:
            mime_of_digest.setdefault(cap.digest, cap.mime)
        old = latest.get(cap.url)
        if old is None or (cap.timestamp, cap.status == 200) >= (
            old.timestamp,
            old.status == 200,
        ):
            latest[cap.url] = cap
    for cap in latest.values():
        if cap.mime == "warc/revisit":
            # A revisit repeats a payload captured earlier, maybe under another
            # URL: its type is that capture's.
            cap.mime = mime_of_digest.get(cap.digest, "")
    return latest


_LEGACY_SCHEMA = """
CREATE TABLE cap(
    id INTEGER PRIMARY KEY, url TEXT UNIQUE NOT NULL, ts TEXT, status INTEGER,
    mime TEXT, digest TEXT, filename TEXT, offset INTEGER);
CREATE TABLE digest_mime(digest TEXT PRIMARY KEY, mime TEXT) WITHOUT ROWID;
CREATE TABLE crawl_title(url TEXT PRIMARY KEY, title TEXT) WITHOUT ROWID;
CREATE TABLE title_piece(piece TEXT);
CREATE TABLE covered(url TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE group_id(gid TEXT PRIMARY KEY) WITHOUT ROWID;
"""
_CAP_COLUMNS = "url, ts, status, mime, digest, filename, offset"
# The same rule as read_cdxj: the latest capture wins, a 200 on a tie.
_UPSERT_CAP = f"""
INSERT INTO cap({_CAP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(url) DO UPDATE SET ts = excluded.ts, status = excluded.status,
    mime = excluded.mime, digest = excluded.digest, filename = excluded.filename,
    offset = excluded.offset
WHERE (excluded.ts, excluded.status = 200) >= (cap.ts, cap.status = 200)
"""
_REDIRECTED = f"status IN ({', '.join(str(s) for s in sorted(REDIRECT_STATUSES))})"
# For other steps' SQL on the same connection: the URLs captured as 3xx.
REDIRECTED_URLS = f"SELECT url FROM cap WHERE {_REDIRECTED}"


def _capture(row: tuple[Any, ...]) -> Capture:
    return Capture(*row)


class LegacyIndex:
    """The legacy crawl's latest capture of every URL, in scratch tables on disk.

    The old site is the large side: held in a dict, its captures would cost a
    few hundred bytes a URL. Rows keep the index's order (a URL's first
    line), which is the order its redirects are written in.
    """

    def __init__(
        self, db: sqlite3.Connection, crawl_dir: Path, significant: tuple[str, ...]
    ) -> None:
        self.db = db
        self.crawl_dir = crawl_dir
        create(db, _LEGACY_SCHEMA)
        # The page a URL shows, for SQL on this connection (grouping, lookups).
        db.create_function(
            "canonical_key", 1, lambda url: canonical(url, significant), deterministic=True
        )
        self._titles_loaded = False
        self.count = self._load(_index_path(crawl_dir))

    def _load(self, index: Path) -> int:
        caps: list[tuple[Any, ...]] = []
        digests: list[tuple[str, str]] = []

        def flush() -> None:
            self.db.executemany(_UPSERT_CAP, caps)
            self.db.executemany("INSERT OR IGNORE INTO digest_mime VALUES (?, ?)", digests)
            caps.clear()
            digests.clear()

        for cap in _cdxj_lines(index):
            if cap.mime != "warc/revisit" and cap.digest:
                digests.append((cap.digest, cap.mime))
            caps.append(
                (cap.url, cap.timestamp, cap.status, cap.mime, cap.digest, cap.filename, cap.offset)
            )
            if len(caps) >= BATCH:
                flush()
        flush()
        # A revisit repeats a payload captured earlier, maybe under another
        # URL: its type is that capture's.
        self.db.execute(
            "UPDATE cap SET mime = coalesce("
            "(SELECT mime FROM digest_mime WHERE digest_mime.digest = cap.digest), '')"
            " WHERE mime = 'warc/revisit'"
        )
        return int(self.db.execute("SELECT count(*) FROM cap").fetchone()[0])

    def latest_timestamp(self) -> str:
        return str(self.db.execute("SELECT max(ts) FROM cap").fetchone()[0] or "")

    def redirects(self) -> Iterator[Capture]:
        """Captured 3xx responses, in index order."""
        for row in scan(self.db, "cap", _CAP_COLUMNS, _REDIRECTED):
            yield _capture(row[1:])

    def _load_titles(self) -> None:
        """The crawl's own page titles (for a crawl that transform has not read)."""
        if self._titles_loaded:
            return
        self._titles_loaded = True
        pieces: list[tuple[str]] = []
        self.db.executemany(
            "INSERT OR REPLACE INTO crawl_title VALUES (?, ?)", iter_crawl_titles(self.crawl_dir)
        )
        # A title counts once however many lines repeat its URL, as in a dict.
        for (title,) in self.db.execute("SELECT title FROM crawl_title"):
            pieces.extend((piece,) for piece in title_pieces(title))
            if len(pieces) >= BATCH:
                self.db.executemany("INSERT INTO title_piece VALUES (?)", pieces)
                pieces.clear()
        self.db.executemany("INSERT INTO title_piece VALUES (?)", pieces)

    def titles_of(self, urls: Iterable[str]) -> dict[str, str]:
        """The crawl's titles of ``urls`` (those it has)."""
        self._load_titles()
        sql = "SELECT url, title FROM crawl_title WHERE url IN ({})"
        return {str(url): str(title) for url, title in present(self.db, sql, set(urls))}

    def title_affixes(self, share: float = AFFIX_SHARE) -> frozenset[str]:
        """:func:`site_affixes` of the crawl's titles, counted on disk."""
        self._load_titles()
        titles = int(self.db.execute("SELECT count(*) FROM crawl_title").fetchone()[0])
        rows = self.db.execute(
            "SELECT piece FROM title_piece GROUP BY piece HAVING count(*) >= ?",
            (affix_floor(titles, share),),
        )
        return frozenset(str(piece) for (piece,) in rows)


def _open_record(crawl_dir: Path, cap: Capture) -> Iterator[object]:
    path = crawl_dir / "warc" / cap.filename
    if not path.is_file():
        path = path.with_name(path.name + ".open")
    with open(path, "rb") as fh:
        fh.seek(cap.offset)
        yield from ArchiveIterator(fh)


def redirect_location(crawl_dir: Path, cap: Capture) -> str | None:
    """The absolute Location of a captured 3xx response, or None."""
    try:
        for record in _open_record(crawl_dir, cap):
            headers = getattr(record, "http_headers", None)
            location = headers.get_header("Location") if headers else None
            return absolute(cap.url, location) if location else None
    except (OSError, ArchiveLoadFailed, ValueError):
        return None
    return None


def read_body(crawl_dir: Path, cap: Capture, limit: int = 5_000_000) -> bytes:
    """The decoded body of a captured response (revisits have none here)."""
    try:
        for record in _open_record(crawl_dir, cap):
            if getattr(record, "rec_type", "") != "response":
                return b""
            return record.content_stream().read(limit)  # type: ignore[attr-defined]
    except (OSError, ArchiveLoadFailed, ValueError, EOFError):
        return b""
    return b""


# ---------------------------------------------------------------------------
# Legacy side


def transform_records(path: Path) -> Iterator[dict[str, Any]]:
    """The page records of a transform ``pages.jsonl`` that have a usable URL.

    Lines that are not JSON objects, or whose ``url`` is not an absolute
    http(s) URL, are skipped: the file may have been edited by hand.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and valid_url(rec.get("url")):
                yield rec


def content_pages(crawl_dir: Path) -> Path | None:
    """The crawl's transform ``pages.jsonl``, None when transform has not run.

    SunsetError when transform's output there is unfinished (it crashed or
    was stopped): a part of its pages would pass for all of them.
    """
    require_finished(crawl_dir / "content")
    path = crawl_dir / "content" / "pages.jsonl"
    return path if path.is_file() else None


def iter_legacy(crawl_dir: Path, captures: LegacyIndex) -> Iterator[LegacyPage]:
    """Every legacy page: transform's pages first, then other captured URLs.

    URLs that transform did not put in a page (documents, images, HTML it
    skipped) are grouped by their canonical key, so ``a.pdf`` and ``A.PDF``
    are one document. Which URLs and group ids are taken is kept on disk
    (tables ``covered`` and ``group_id``), not in sets, and asked a chunk of
    pages at a time.
    """
    db = captures.db
    pages = content_pages(crawl_dir)
    if pages is not None:
        for chunk in _chunks(transform_records(pages)):
            yield from _transform_pages(db, chunk)
    # The uncovered 200s, sorted by canonical key and then by URL length and
    # URL, which a dict of lists sorted in Python gave before: SQLite sorts
    # them on disk. Its byte order of UTF-8 text is Python's order of strings.
    rows = db.execute(
        "SELECT canonical_key(url) AS key, url, ts, mime, digest FROM cap"
        " WHERE status = 200 AND url NOT IN (SELECT url FROM covered)"
        " ORDER BY key, length(url), url"
    )
    grouped = ((key, list(members)) for key, members in groupby(rows, key=itemgetter(0)))
    for chunk in _chunks(grouped):
        taken = _taken(db, "group_id", "gid", (key for key, _ in chunk))
        titles: dict[str, str] = {}
        if pages is None:
            titles = captures.titles_of(members[0][1] for _, members in chunk)
        found: list[LegacyPage] = []
        for key, members in chunk:
            _, url, timestamp, mime, digest = members[0]
            if mime in HTML_MIMES:
                kind = "content"
            elif _NOT_CONTENT.match(mime) or mime.startswith("image/"):
                kind = "asset"
            else:
                kind = "document"
            found.append(
                LegacyPage(
                    group=_claim_id(taken, key, url),
                    url=url,
                    urls=[member[1] for member in members],
                    title=titles.get(url, ""),
                    kind=kind,
                    timestamp=timestamp,
                    digest=digest,
                    mime=mime,
                )
            )
        db.executemany("INSERT OR IGNORE INTO group_id VALUES (?)", ((p.group,) for p in found))
        yield from found


_CHUNK = 256


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _taken(db: sqlite3.Connection, table: str, column: str, values: Iterable[str]) -> set[str]:
    """Which of ``values`` ``table`` already holds."""
    sql = f"SELECT {column} FROM {table} WHERE {column} IN ({{}})"
    return {str(value) for (value,) in present(db, sql, set(values))}


def _claim_id(taken: set[str], group: str, url: str) -> str:
    """``group``, or ``group~url`` if another page took that id first; recorded in ``taken``."""
    # Two pages claiming one id would otherwise lose the first's URLs.
    if group in taken:
        group = f"{group}~{url}"
    taken.add(group)
    return group


def _transform_pages(db: sqlite3.Connection, records: list[dict[str, Any]]) -> list[LegacyPage]:
    """The pages of a chunk of transform's records; a URL belongs to the first page listing it."""
    wanted: list[list[str]] = []
    for rec in records:
        listed = rec.get("legacy_urls")
        variants = [u for u in listed if valid_url(u)] if isinstance(listed, list) else []
        wanted.append(sorted({rec["url"], *variants}))
    covered = _taken(db, "covered", "url", (u for urls in wanted for u in urls))
    ids = [storable(str(rec.get("id") or rec["url"])) for rec in records]
    taken = _taken(db, "group_id", "gid", ids)
    caps = {
        url: (timestamp, digest)
        for url, timestamp, digest in present(
            db, "SELECT url, ts, digest FROM cap WHERE url IN ({})", {r["url"] for r in records}
        )
    }
    found: list[LegacyPage] = []
    new_urls: list[str] = []
    for rec, candidates, group in zip(records, wanted, ids, strict=True):
        urls = [u for u in candidates if u not in covered]
        if not urls:
            continue
        covered.update(urls)
        new_urls += urls
        url = rec["url"]
        links = rec.get("links") if isinstance(rec.get("links"), list) else []
        timestamp, digest = caps.get(url, ("", ""))
        found.append(
            LegacyPage(
                group=_claim_id(taken, group, url),
                url=url,
                urls=urls,
                title=_label(rec.get("title")),
                text=_text(rec.get("text")),
                kind="listing" if rec.get("kind") == "listing" else "content",
                links=[
                    link["url"]
                    for link in links
                    if isinstance(link, dict) and valid_url(link.get("url"))
                ],
                timestamp=timestamp,
                digest=digest,
                mime="text/html",
                from_transform=True,
            )
        )
    db.executemany("INSERT OR IGNORE INTO covered VALUES (?)", ((u,) for u in new_urls))
    db.executemany("INSERT OR IGNORE INTO group_id VALUES (?)", ((p.group,) for p in found))
    return found


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _label(value: object) -> str:
    """A string field that is kept on disk (a title): storable, or empty."""
    return storable(value) if isinstance(value, str) else ""


def iter_crawl_titles(crawl_dir: Path) -> Iterator[tuple[str, str]]:
    """(url, title) from the crawl's own pages.jsonl, for when transform has not run."""
    path = crawl_dir / "pages.jsonl"
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("url"), str):
                yield storable(rec["url"]), _label(rec.get("title"))


# ---------------------------------------------------------------------------
# New side


def _html_title_text(body: bytes) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """A new page's title, the other names it goes by, its main text and its h2/h3 headings."""
    try:
        doc = lxml_html.document_fromstring(body)
    except (etree.ParserError, ValueError):
        return "", (), "", ()
    head_title = " ".join((doc.findtext(".//title") or "").split())
    h1 = doc.find(".//h1")
    h1_text = " ".join(h1.text_content().split()) if h1 is not None else ""
    for bad in doc.iter(*_DROP_TAGS):
        bad.drop_tree()
    mains = doc.xpath("//main|//*[@role='main']|//article")
    root = mains[0] if mains else doc.find("body")
    root = root if root is not None else doc
    text = "\n".join(" ".join(t.split()) for t in root.itertext() if t.strip())
    headings = tuple(
        h for el in root.iter("h2", "h3") if (h := " ".join(el.text_content().split()))
    )
    title = h1_text or head_title
    return title, tuple(t for t in (h1_text, head_title) if t), text, headings


def read_new_crawl(crawl_dir: Path) -> tuple[list[NewPage], dict[str, str]]:
    """Pages, documents and redirects of a crawl of the new site.

    Titles and text come from the crawl's ``content/pages.jsonl`` when
    ``sunset transform`` has been run on it, else from each page's HTML.
    """
    captures = read_cdxj(crawl_dir)
    pages: list[NewPage] = []
    moved: dict[str, str] = {}
    done: set[str] = set()
    transformed = content_pages(crawl_dir)
    if transformed is not None:
        for rec in transform_records(transformed):
            listed = rec.get("legacy_urls")
            if isinstance(listed, list):
                done.update(u for u in listed if isinstance(u, str))
            done.add(rec["url"])
            headings = rec.get("headings") if isinstance(rec.get("headings"), list) else []
            pages.append(
                NewPage(
                    url=rec["url"],
                    title=_text(rec.get("title")),
                    titles=tuple(h for h in headings if isinstance(h, str) and h)[:1],
                    text=_text(rec.get("text")),
                    headings=tuple(h for h in headings if isinstance(h, str) and h)[1:],
                )
            )
    for url in sorted(captures):
        cap = captures[url]
        if cap.status in REDIRECT_STATUSES:
            location = redirect_location(crawl_dir, cap)
            if location:
                moved[url] = location
            continue
        if cap.status != 200 or url in done:
            continue
        if cap.mime in HTML_MIMES:
            title, titles, text, headings = _html_title_text(read_body(crawl_dir, cap))
            pages.append(NewPage(url=url, title=title, titles=titles, text=text, headings=headings))
        elif not (
            _NOT_CONTENT.match(cap.mime)
            or cap.mime.startswith("image/")
            or re.match(r"^(application|text)/([\w.-]+\+)?xml$|^text/plain$", cap.mime)
        ):
            pages.append(NewPage(url=url, kind="document", digest=cap.digest))
    return pages, moved


SITEMAP_MAX_BYTES = 200_000_000  # decompressed; the protocol allows 50 MB per file


def read_sitemap(source: str | Path, fetch_limit: int = 50) -> list[NewPage]:
    """URLs of a sitemap or sitemap index, from a file or an http(s) URL.

    A sitemap index may only name http(s) parts; read from a file, a part
    whose file name sits beside the index is read from there (offline runs).
    Nothing else on disk is ever opened because a sitemap said so.
    """
    if isinstance(source, str) and not _HTTP.match(source):
        source = Path(source)
    pages: list[NewPage] = []
    queue: list[str | Path] = [source]
    seen: set[str] = set()
    while queue and len(seen) < fetch_limit:
        item = queue.pop(0)
        if str(item) in seen:
            continue
        seen.add(str(item))
        data = _inflate(item, _load(item))
        try:
            events = etree.iterparse(
                io.BytesIO(data),
                events=("end",),
                resolve_entities=False,
                no_network=True,
                huge_tree=False,
            )
            for _, el in events:
                tag = el.tag.rsplit("}", 1)[-1] if isinstance(el.tag, str) else ""
                if tag == "loc" and el.text and el.text.strip():
                    loc = el.text.strip()
                    parent = el.getparent()
                    ptag = parent.tag.rsplit("}", 1)[-1] if parent is not None else ""
                    if not valid_url(loc):
                        pass  # a relative or hostile <loc> names nothing we can use
                    elif ptag == "sitemap":
                        queue.append(_part_source(item, loc))
                    else:
                        pages.append(NewPage(url=loc, kind=_kind_from_url(loc)))
                    el.clear()
        except etree.XMLSyntaxError as exc:
            raise SunsetError(f"sitemap {item}: not valid XML ({exc.msg})") from None
    return pages


def _inflate(item: str | Path, data: bytes) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, SITEMAP_MAX_BYTES)
    except zlib.error:
        raise SunsetError(f"sitemap {item}: not a valid gzip file") from None
    if inflater.unconsumed_tail:
        raise SunsetError(f"sitemap {item}: more than {SITEMAP_MAX_BYTES:,} bytes unpacked")
    return out


def _part_source(parent: str | Path, loc: str) -> str | Path:
    if isinstance(parent, Path):
        local = parent.parent / Path(unquote(urlsplit(loc).path)).name
        if local.is_file():
            return local
    return loc


def _load(item: str | Path) -> bytes:
    if isinstance(item, Path):
        try:
            with open(item, "rb") as fh:
                data = fh.read(SITEMAP_MAX_BYTES + 1)
        except OSError as exc:
            raise SunsetError(f"sitemap {item}: {exc.strerror or exc}") from None
    else:
        import requests

        try:
            with requests.get(item, timeout=30, stream=True) as response:
                if response.status_code != 200:
                    raise SunsetError(f"sitemap {item}: HTTP {response.status_code}")
                data = response.raw.read(SITEMAP_MAX_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise SunsetError(f"sitemap {item}: {exc.__class__.__name__}") from None
    if len(data) > SITEMAP_MAX_BYTES:
        raise SunsetError(f"sitemap {item}: larger than {SITEMAP_MAX_BYTES:,} bytes")
    return data


def _kind_from_url(url: str) -> str:
    try:
        path = urlsplit(url).path.lower()
    except ValueError:
        return "page"
    return (
        "document" if re.search(r"\.(pdf|docx?|xlsx?|pptx?|odt|ods|csv|rtf|zip)$", path) else "page"
    )


def read_csv_inventory(path: Path) -> list[NewPage]:
    """A CSV list of the new site: a ``url`` column, optional ``title`` and ``text``."""
    try:
        fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise SunsetError(f"{path}: {exc.strerror or exc}") from None
    pages: list[NewPage] = []
    with fh:
        try:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "url" not in reader.fieldnames:
                raise SunsetError(f"{path}: needs a 'url' column (found {reader.fieldnames})")
            for n, row in enumerate(reader, start=2):
                url = (row.get("url") or "").strip()
                if not url:
                    continue
                if not valid_url(url):
                    raise SunsetError(f"{path}:{n}: not an absolute http(s) URL: {url[:80]!r}")
                pages.append(
                    NewPage(
                        url=url,
                        title=(row.get("title") or "").strip(),
                        text=row.get("text") or "",
                        kind=_kind_from_url(url),
                    )
                )
        except UnicodeDecodeError:
            raise SunsetError(f"{path}: not UTF-8 text") from None
        except csv.Error as exc:
            raise SunsetError(f"{path}: not a valid CSV file ({exc})") from None
    return pages


__all__ = [
    "REDIRECTED_URLS",
    "Capture",
    "LegacyIndex",
    "LegacyPage",
    "NewPage",
    "iter_legacy",
    "read_cdxj",
    "read_csv_inventory",
    "read_new_crawl",
    "read_sitemap",
    "redirect_location",
    "request_target",
]
