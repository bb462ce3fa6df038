"""`sunset transform`: a crawl folder in, a content folder out.

Passes, each streaming over the captures:
1. plan    - the CDXJ index gives every URL's latest HTML capture; URLs are
             grouped into pages (same payload, or the same URL once the
             profile's presentation and part parameters are set aside);
2. learn   - the template is learned from a sample of pages, one per group;
3. extract - each page's content is extracted (a multi-part article from its
             show-all capture, else its parts joined in order), with a
             fingerprint of its text;
4. write   - each page is written as HTML, Markdown and JSON as it comes, in
             group order, with its pages.jsonl line; a page whose text an
             earlier page has is merged into that one, whose record is
             patched at the end; attachments.csv last.

Learning and extraction run in forked worker processes (--workers); a page
whose file id cannot depend on other pages is written by its worker.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_str
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from sunset.paths import replacing
from sunset.profile import Profile
from sunset.transformed import SUMMARY_NAME
from sunset.ui import progress

from .archive import (
    ArchiveError,
    Attachment,
    Capture,
    Inventory,
    WarcFiles,
    iter_payloads,
    payload_size,
    read_inventory,
)
from .dom import (
    TAG_RUN_DEPTH,
    NotHtml,
    collapse_tag_runs,
    decode,
    flatten_deep,
    parse,
    reaches,
    sniff_not_html,
    strip_non_content,
)
from .extract import Extractor, Result, Rules, RulesError, read_dates
from .template import SECTION_MIN_PAGES, PageKeys, TemplateModel, page_keys, section_of

DOCUMENT_EXTENSIONS = (
    ".pdf", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp",
    ".rtf", ".csv", ".txt", ".zip",
)  # fmt: skip
# A page longer than this (as served, or once its Content-Encoding is undone)
# is cut here, with a note: the parsed tree and what is written from it take
# about 50 times the page's bytes, so this bounds a worker's memory.
MAX_PAGE_BYTES = 8 * 1000**2
SAMPLE_PAGES = 100
# Below this many page groups, starting worker processes costs more than it saves.
MIN_PARALLEL_GROUPS = 50
# Groups per task sent to a worker: big enough to amortise the pickling round
# trip, small enough that the ordered results do not stall behind one slow chunk.
CHUNK_GROUPS = 8
# Chunks per worker allowed in flight: keeps the workers busy while the parent
# writes, and keeps memory flat whatever the size of the crawl.
CHUNKS_AHEAD = 4
# URLs whose page key is remembered, per process.
URL_MEMO = 50_000


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


class TransformError(Exception):
    """Nothing can be done: one line for the user, exit code 2."""


@dataclass
class TransformOptions:
    crawl_dir: Path
    out: Path
    profile: Profile
    use_rules: bool = True
    use_learned: bool = True
    rewrite_links: Path | None = None
    progress: bool = True
    sample: int = SAMPLE_PAGES
    # Extraction processes; 1 extracts in this process. More are only used
    # for a crawl of at least MIN_PARALLEL_GROUPS pages.
    workers: int = field(default_factory=default_workers)
    max_page_bytes: int = MAX_PAGE_BYTES


@dataclass
class Summary:
    html_captures: int = 0
    pages: int = 0
    content_pages: int = 0
    listings: int = 0
    multipart: int = 0
    merged_urls: int = 0
    skipped: int = 0
    # Captures the index offered as possible pages (text/plain, no type) that
    # are not HTML: robots.txt, say. Noted in the log, neither pages nor skipped.
    not_html: int = 0
    attachments: int = 0
    seconds: float = 0.0
    template: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)


# -- grouping -----------------------------------------------------------------


class UrlKeys:
    """The page a URL shows, from the URL alone: host, path, and the query
    parameters that select content (presentation and part parameters set aside)."""

    def __init__(self, profile: Profile) -> None:
        pages = profile.pages
        self.parts = {p.lower() for p in pages.part_params}
        self.all_parts = {p.lower() for p in pages.all_parts_params}
        self.variants = {p.lower() for p in pages.variant_params}
        # The same URLs come up again and again (grouping, parts, the links
        # of an article index): each is worked out once, in a bounded memo.
        self.key: Callable[[str], str] = functools.lru_cache(maxsize=URL_MEMO)(self._key)
        # (shows all parts, part number) of a URL.
        self.part: Callable[[str], tuple[bool, int | None]] = functools.lru_cache(maxsize=URL_MEMO)(
            self._part
        )

    def _key(self, url: str) -> str:
        parts = _split(url)
        # The path as it is: a server may well give /Case and /case two pages
        # (one that does not serves the same bytes, and they group on those).
        path = parts.path.rstrip("/") or "/"
        ignored = self.parts | self.all_parts | self.variants
        query = sorted(
            (k.lower(), v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k.lower() not in ignored
        )
        host = (parts.hostname or "").lower()
        return f"{host}{path}" + (f"?{urlencode(query)}" if query else "")

    def _part(self, url: str) -> tuple[bool, int | None]:
        show_all, number = False, None
        for k, v in parse_qsl(_split(url).query, keep_blank_values=True):
            k = k.lower()
            if k in self.all_parts and v not in ("", "0"):
                show_all = True
            elif k in self.parts and v.isdigit():
                number = int(v)
        return show_all, number


class _Union:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


# Grouping splits every captured URL for its key, its part and its order.
_split = functools.lru_cache(maxsize=URL_MEMO)(urlsplit)


def _primary_order(url: str) -> tuple[Any, ...]:
    p = _split(url)
    return (
        bool(p.query),
        "index.php" in p.path,
        p.path != p.path.lower(),
        p.path.endswith("/") and p.path != "/",
        len(url),
        url,
    )


def group_captures(pages: list[Capture], keys: UrlKeys) -> list[list[Capture]]:
    """Captures that show one page, primary URL first; groups in primary-URL order."""
    uf = _Union()
    by_digest: dict[str, str] = {}
    by_key: dict[str, str] = {}
    for cap in pages:
        uf.find(cap.url)
        first = by_digest.setdefault(cap.digest, cap.url)
        uf.join(first, cap.url)
        k = keys.key(cap.url)
        first = by_key.setdefault(k, cap.url)
        uf.join(first, cap.url)
    groups: dict[str, list[Capture]] = {}
    for cap in pages:
        groups.setdefault(uf.find(cap.url), []).append(cap)
    out = [sorted(g, key=lambda c: _primary_order(c.url)) for g in groups.values()]
    out.sort(key=lambda g: g[0].url)
    return out


# -- the run ------------------------------------------------------------------


LogEntry = tuple[str, str, str, str]  # url, level, reason, detail


class Log:
    def __init__(self, path: Path) -> None:
        self.fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.reasons: dict[str, int] = {}

    def write_all(self, entries: Iterable[LogEntry]) -> None:
        for entry in entries:
            self.write(*entry)

    def write(self, url: str, level: str, reason: str, detail: str = "") -> None:
        self.fh.write(
            json.dumps({"url": url, "level": level, "reason": reason, "detail": detail}) + "\n"
        )
        if level == "skip":
            head = reason.split(":", 1)[0]
            self.reasons[head] = self.reasons.get(head, 0) + 1

    def close(self) -> None:
        self.fh.close()


class LogBuffer:
    """Log entries of one page group, written to the real log by the parent, so
    the log has one writer and the same order however many workers there are."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []

    def write(self, url: str, level: str, reason: str, detail: str = "") -> None:
        self.entries.append((url, level, reason, detail))


def _page_stem(url: str) -> str:
    p = urlsplit(url)
    stem = re.sub(r"[^a-z0-9]+", "-", (p.path + ("-" + p.query if p.query else "")).lower())
    return stem.strip("-")[:80] or "home"


class TakenIds(set[str]):
    """Page ids given so far, and per stem the suffix its next page tries first.

    Suffixes of one stem are given in increasing order and never taken back,
    so a stem's next page starts past its last suffix: ten thousand pages
    with one stem (URLs that differ only past the stem's 80 characters) cost
    ten thousand tries, not fifty million.
    """

    def __init__(self) -> None:
        super().__init__()
        self.next_suffix: dict[str, int] = {}


def _page_id(url: str, taken: set[str]) -> str:
    stem = _page_stem(url)
    counters = taken.next_suffix if isinstance(taken, TakenIds) else {}
    out, n = stem, 2
    if stem in taken:
        n = counters.get(stem, 2)
        out = f"{stem}-{n}"
        while out in taken:
            n += 1
            out = f"{stem}-{n}"
        counters[stem] = n + 1
    taken.add(out)
    return out


def _settled_ids(groups: list[list[Capture]]) -> list[str | None]:
    """Each group's page id when it is the same whichever pages are skipped or
    merged away, else None: then only the pages before it decide.

    An id is a page's stem unless an earlier page took it, and a stem can be
    taken only by a page with the same stem or by a "<stem>-<n>" given to a
    page whose own stem was taken. So a stem no other page has, and that is
    not such a suffixed form of a stem that can be taken, is always the id.
    """
    stems = [_page_stem(g[0].url) for g in groups]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    contested = {stem for stem, n in counts.items() if n > 1}
    # Shorter first: the stem a suffixed form extends is settled before it.
    for stem in sorted(counts, key=len):
        base, dash, n = stem.rpartition("-")
        if dash and n.isdigit() and n == str(int(n)) and int(n) >= 2 and base in contested:
            contested.add(stem)
    return [None if stem in contested else stem for stem in stems]


def _load(
    payload_body: bytes, ctype: str
) -> tuple[Any, str | None, str | None, tuple[str | None, str | None], list[str]]:
    reason = sniff_not_html(payload_body, ctype)
    if reason:
        raise NotHtml(reason)
    dec = decode(payload_body, ctype)
    root = parse(dec.text)
    # A run of 64 opening tags nests at least that deep, unless the parser
    # closed them as it went, when they cost nothing: only a page whose tree
    # goes that deep is searched for runs (a regex pass as long as parsing).
    if reaches(root, TAG_RUN_DEPTH):
        text, collapsed = collapse_tag_runs(dec.text)
        if collapsed:
            dec.notes.append("markup:tag-run-collapsed")
            root = parse(text)
    if flatten_deep(root):
        dec.notes.append("markup:nested-too-deep-flattened")
    dates = read_dates(root)
    title, lang = strip_non_content(root)
    return root, title, lang, dates, dec.notes


_ASCII_BYTES = bytes(range(128))
# ASCII bytes that are not word characters, each to a space; the rest as they are.
_ASCII_WORDS = bytes(
    c if c > 127 or chr(c).isalnum() or c == ord("_") else ord(" ") for c in range(256)
)


def _fingerprint(result: Result) -> str:
    """A hash of the page's words: its text, lower-cased, with every run of
    non-word characters (regex \\W) as one space."""
    text = " ".join(result.blocks).lower()
    data = text.encode("utf-8", "surrogatepass")
    if not text.isascii():
        # The characters beyond ASCII, from their bytes alone; what
        # str.isalnum() calls a word character is what the regex module does.
        beyond = data.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
        spaced = [c for c in set(beyond) if not c.isalnum()]
        for char in spaced:
            text = text.replace(char, " ")
        if spaced:
            data = text.encode("utf-8", "surrogatepass")
    # Now every byte of a character beyond ASCII belongs to a word.
    return hashlib.sha1(b" ".join(data.translate(_ASCII_WORDS).split())).hexdigest()


def _read_rewrites(path: Path) -> dict[str, str]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"old", "new"} <= set(reader.fieldnames):
                raise TransformError(f"{path}: expected a CSV with 'old' and 'new' columns")
            return {row["old"]: row["new"] for row in reader if row.get("old") and row.get("new")}
    except OSError as exc:
        raise TransformError(
            f"{path}: cannot read the redirect map: {exc.strerror or exc}"
        ) from None


def run_transform(opt: TransformOptions, ui: Any = None) -> tuple[int, Summary]:
    started = time.monotonic()
    p = opt.profile
    summary = Summary()
    try:
        rules = (
            Rules.build(p.boilerplate.selectors, p.boilerplate.text_patterns)
            if opt.use_rules
            else Rules.none()
        )
    except RulesError as exc:
        raise TransformError(f"profile {p.path}: {exc}") from None
    rewrite = _read_rewrites(opt.rewrite_links) if opt.rewrite_links else None
    try:
        inv = read_inventory(opt.crawl_dir, DOCUMENT_EXTENSIONS)
    except ArchiveError as exc:
        raise TransformError(str(exc)) from None
    if not (opt.crawl_dir / "warc").is_dir():
        raise TransformError(f"{opt.crawl_dir / 'warc'}: no WARC folder")
    out = opt.out
    head = {"crawl": str(opt.crawl_dir), "profile": str(p.path)}
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Before anything in the folder changes, it stops being a finished
        # run: a reader that finds this (after a crash, a kill, a full disk)
        # refuses the folder instead of using a part of it.
        _write_summary(out, head, summary, "running")
        pages_dir = out / "pages"
        if pages_dir.exists():
            shutil.rmtree(pages_dir)
        pages_dir.mkdir()
        for name in ("pages.jsonl", "attachments.csv"):
            (out / name).unlink(missing_ok=True)
        log = Log(out / "transform.log")
    except OSError as exc:
        raise TransformError(f"{out}: cannot write here: {exc.strerror or exc}") from None
    try:
        code = _run(opt, inv, rules, rewrite, out, pages_dir, log, summary)
    except BaseException as exc:
        log.close()
        summary.seconds = round(time.monotonic() - started, 2)
        summary.reasons = dict(sorted(log.reasons.items()))
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"stopped: {exc}"
        with contextlib.suppress(OSError):
            _write_summary(out, head, summary, why)
        raise
    summary.reasons = dict(sorted(log.reasons.items()))
    summary.seconds = round(time.monotonic() - started, 2)
    try:
        _write_summary(out, head, summary, "finished")
    except OSError as exc:
        raise TransformError(f"{out}: cannot write: {exc.strerror or exc}") from None
    return code, summary


def _write_summary(out: Path, head: dict[str, str], summary: Summary, state: str) -> None:
    """transform.json, whole or not at all; `complete` is what readers check."""
    record = {**head, "complete": state == "finished", "exit": state, **summary.__dict__}
    with replacing(out / SUMMARY_NAME, encoding="utf-8") as fh:
        fh.write(json.dumps(record, indent=2) + "\n")


def _run(
    opt: TransformOptions,
    inv: Inventory,
    rules: Rules,
    rewrite: dict[str, str] | None,
    out: Path,
    pages_dir: Path,
    log: Log,
    summary: Summary,
) -> int:
    """Steps 1 to 4 into `out`; the exit code."""
    p = opt.profile
    size_of = _Sizes(opt.crawl_dir)
    keys = UrlKeys(p)
    groups = group_captures(inv.pages, keys)
    summary.html_captures = len(inv.pages)
    for url, reason in inv.unresolved:
        log.write(url, "skip", reason)
    hosts = frozenset(h.lower() for h in p.site.allowed_hosts)
    workers = opt.workers if len(groups) >= MIN_PARALLEL_GROUPS else 1

    # 2. learn
    model = TemplateModel(min_share=p.boilerplate.min_share)
    live = None if opt.progress else False
    learner = _Learner(opt.crawl_dir, learning_sample(groups, opt.sample), opt.max_page_bytes)
    with (
        _mapped(learner.keys_of, len(learner.caps), workers, learner.files) as learned,
        progress("learning the template", len(learner.caps), unit="pages", live=live) as tick,
    ):
        for page in learned:
            tick.advance()
            if page is not None:
                model.add(page)
    model.finish()
    summary.template = model.stats()

    extractor = Extractor(model, rules, hosts, use_learned=opt.use_learned, rewrite=rewrite)

    # 3. extract, and 4. write each page as it comes: pages only ever merge
    # into an earlier page, whose record is patched once every page is in.
    # A page whose id is settled in advance is written by the process that
    # extracted it; the others here, once the pages before them are known.
    first_by_print: dict[str, int] = {}
    extra_urls: dict[int, list[str]] = {}
    written: list[str] = []  # page ids, in pages.jsonl order
    taken = TakenIds()
    doc_pages: dict[str, list[str]] = {}
    ctx = _ExtractContext(
        opt.crawl_dir,
        extractor,
        keys,
        groups,
        _settled_ids(groups),
        inv,
        pages_dir,
        opt.max_page_bytes,
    )
    completed = False
    try:
        with (
            open(out / "pages.jsonl", "w", encoding="utf-8") as index,
            _mapped(ctx.extract, len(groups), workers, ctx.files) as results,
            progress("extracting pages", len(groups), unit="pages", live=live) as tick,
        ):
            for group, (page, entries, not_html) in zip(groups, results, strict=True):
                tick.advance()
                log.write_all(entries)
                if page is None:
                    if not_html:
                        summary.not_html += len(group)
                        summary.html_captures -= len(group)
                    else:
                        summary.skipped += len(group)
                    continue
                fp = page.fingerprint
                earlier = first_by_print.get(fp) if fp else None
                if earlier is not None and page.kind == "content":
                    extra_urls.setdefault(earlier, []).extend(page.legacy_urls)
                    summary.merged_urls += len(page.legacy_urls)
                    if page.line is not None:
                        _unlink_page(pages_dir, page.page_id)
                    continue
                page_id = _page_id(page.url, taken)
                if page.line is None:
                    assert page.rec is not None
                    try:
                        line, atts = _write_page(page.rec, page_id, inv, size_of, pages_dir)
                    except OSError:
                        raise
                    except Exception as exc:
                        # This page alone is lost, and said so; the run goes on.
                        log.write(page.url, "skip", f"error:{type(exc).__name__}", _said(exc))
                        summary.skipped += len(group)
                        _unlink_page(pages_dir, page_id)
                        continue
                else:
                    if page_id != page.page_id:
                        raise RuntimeError(f"page id {page_id} is not the settled {page.page_id}")
                    line, atts = page.line, page.attachments
                    size_of.learn(atts)
                if fp:
                    first_by_print[fp] = len(written)
                written.append(page_id)
                index.write(line + "\n")
                summary.pages += 1
                if page.kind == "listing":
                    summary.listings += 1
                else:
                    summary.content_pages += 1
                if page.multipart:
                    summary.multipart += 1
                for url, _size in atts:
                    doc_pages.setdefault(url, []).append(page.url)
        if extra_urls:
            _add_merged_urls(out / "pages.jsonl", pages_dir, written, extra_urls)
        summary.attachments = _write_attachments(out / "attachments.csv", inv, doc_pages, size_of)
        completed = True
    except OSError as exc:
        raise TransformError(f"{out}: cannot write: {exc.strerror or exc}") from None
    finally:
        log.close()
        if not completed:
            # Workers write pages before this process takes them: a run cut
            # short (Ctrl-C, a full disk) keeps only the pages pages.jsonl lists.
            _drop_unlisted(pages_dir, set(written))
    return 1 if summary.skipped or inv.unresolved else 0


def _said(exc: BaseException) -> str:
    """An exception's message, short enough for one log line."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:299] + "…"


def _extract_one(
    ctx: _ExtractContext, cap: Capture, log: LogBuffer, group_key: str
) -> tuple[Result | None, dict[str, Any]]:
    extractor, keys = ctx.extractor, ctx.keys
    for _cap, payload, err in iter_payloads(
        ctx.crawl_dir, [cap], ctx.max_page_bytes, ctx.files, cut=True
    ):
        if payload is None:
            log.write(cap.url, "skip", err or "unreadable")
            return None, {}
        try:
            root, title, lang, dates, notes = _load(payload.body, payload.content_type)
        except NotHtml as exc:
            if _declared_html(payload.content_type):
                log.write(cap.url, "skip", str(exc))
            else:
                # Not a page that failed: a capture that never claimed to be
                # one (robots.txt, a file sent with no type).
                log.write(cap.url, "note", str(exc))
                raise _NotAPage from None
            return None, {}
        notes = notes + payload.notes
        if payload.truncated:
            notes.append(f"truncated:{payload.truncated}")
        if payload.cut is not None:
            notes.append(f"cut:kept-first-{payload.cut}-bytes")
        for n in notes:
            log.write(cap.url, "note", n)
        result = extractor.extract(
            cap.url, root, title, lang, dates, same_page=lambda u: keys.key(u) == group_key
        )
        result.notes = notes + result.notes
        where = {
            "url": cap.url,
            "date": cap.timestamp,
            "warc_file": cap.payload.filename,
            "warc_offset": cap.payload.offset,
            "digest": cap.digest,
        }
        return result, where
    return None, {}


class _NotAPage(Exception):
    """The capture is not HTML and was never said to be."""


def _extract_other(
    ctx: _ExtractContext, cap: Capture, log: LogBuffer, group_key: str
) -> tuple[Result | None, dict[str, Any]]:
    """_extract_one for a capture other than the group's primary: one that is
    not HTML is only one capture fewer, not a group that is no page."""
    try:
        return _extract_one(ctx, cap, log, group_key)
    except _NotAPage:
        return None, {}


def _declared_html(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml")


def _extract_group(
    ctx: _ExtractContext, group: list[Capture], log: LogBuffer
) -> dict[str, Any] | None:
    keys = ctx.keys
    primary = group[0]
    group_key = keys.key(primary.url)
    show_all = [c for c in group if keys.part(c.url)[0]]
    parts: dict[int, Capture] = {}
    for c in group:
        sa, n = keys.part(c.url)
        if n is not None and not sa:
            parts.setdefault(n, c)
    source = None
    part_urls: list[str] = []
    if show_all:
        result, where = _extract_other(ctx, show_all[0], log, group_key)
        source = "showall"
    else:
        result, where = _extract_one(ctx, primary, log, group_key)
    if result is None and show_all:
        result, where = _extract_one(ctx, primary, log, group_key)
        source = None
    if result is None:
        return None
    listing = result.listing
    if parts and not listing:
        part_urls = [primary.url] + [
            parts[n].url for n in sorted(parts) if parts[n].url != primary.url
        ]
        if source != "showall":
            source = "joined"
            for n in sorted(parts):
                if parts[n].url == primary.url:
                    continue
                more, _ = _extract_other(ctx, parts[n], log, group_key)
                if more is None:
                    continue
                _join(result, more)
    rec: dict[str, Any] = {
        "kind": "listing" if listing else "content",
        "url": primary.url,
        "legacy_urls": sorted(c.url for c in group),
        "title": result.title,
        "headings": result.headings,
        "breadcrumbs": result.breadcrumbs,
        "published": result.published,
        "modified": result.modified,
        "text": result.text,
        "word_count": len(result.text.split()),
        "language": result.lang,
        "links": result.links,
        "images": result.images,
        "parts": {"urls": part_urls, "source": source} if part_urls else None,
        "removed": [r.to_dict() for r in result.removed],
        "capture": where,
        "notes": result.notes,
        "_html": result.html,
        "_markdown": result.markdown,
        # Only pages with real text are merged on it: two near-empty pages
        # are not the same page.
        "_fingerprint": _fingerprint(result) if len(result.text.split()) >= 20 else "",
    }
    return rec


@dataclass
class Page:
    """One group's extracted page, as a worker sends it back."""

    url: str
    kind: str
    legacy_urls: list[str]
    fingerprint: str
    multipart: bool
    # Written by the worker: its settled id, its pages.jsonl line and its
    # attachments (url, size). Else `rec`, for the parent to finish and write.
    page_id: str | None = None
    line: str | None = None
    attachments: list[tuple[str, int | None]] = field(default_factory=list)
    rec: dict[str, Any] | None = None


# The page (None: skipped), its log entries, and whether the group was no
# page at all rather than a page that failed.
GroupResult = tuple[Page | None, list[LogEntry], bool]


class _Sizes:
    """Payload sizes of attachments, read once per process and URL."""

    def __init__(self, crawl_dir: Path) -> None:
        self.crawl_dir = crawl_dir
        self.known: dict[str, int | None] = {}

    def __call__(self, a: Attachment) -> int | None:
        if a.url not in self.known:
            self.known[a.url] = payload_size(self.crawl_dir, a.payload)
        return self.known[a.url]

    def learn(self, sizes: Iterable[tuple[str, int | None]]) -> None:
        for url, size in sizes:
            self.known.setdefault(url, size)


class _ExtractContext:
    """What extracting a group needs: learned once in the parent, and inherited,
    not pickled, by forked workers (so their str hashes match the parent's too)."""

    def __init__(
        self,
        crawl_dir: Path,
        extractor: Extractor,
        keys: UrlKeys,
        groups: list[list[Capture]],
        settled: list[str | None],
        inv: Inventory,
        pages_dir: Path,
        max_page_bytes: int,
    ) -> None:
        self.crawl_dir = crawl_dir
        self.max_page_bytes = max_page_bytes
        self.extractor = extractor
        self.keys = keys
        self.groups = groups
        self.settled = settled
        self.inv = inv
        self.pages_dir = pages_dir
        self.sizes = _Sizes(crawl_dir)
        self.files = WarcFiles(crawl_dir)

    def extract(self, index: int) -> GroupResult:
        log = LogBuffer()
        group = self.groups[index]
        try:
            return self._extract(index, group, log)
        except _NotAPage:
            return None, log.entries, True
        except OSError:
            raise  # a full disk, say: the run cannot go on
        except Exception as exc:
            # Whatever one page does (a bug, a page no parser expected), it
            # is that page that is lost, and logged, not the run.
            log.write(group[0].url, "skip", f"error:{type(exc).__name__}", _said(exc))
            if self.settled[index] is not None:
                _unlink_page(self.pages_dir, self.settled[index])
            return None, log.entries, False

    def _extract(self, index: int, group: list[Capture], log: LogBuffer) -> GroupResult:
        rec = _extract_group(self, group, log)
        if rec is None:
            return None, log.entries, False
        page = Page(
            url=rec["url"],
            kind=rec["kind"],
            legacy_urls=rec["legacy_urls"],
            fingerprint=rec.pop("_fingerprint"),
            multipart=bool(rec["parts"]),
        )
        page_id = self.settled[index]
        if page_id is None:
            page.rec = rec
        else:
            page.page_id = page_id
            page.line, page.attachments = _write_page(
                rec, page_id, self.inv, self.sizes, self.pages_dir
            )
        return page, log.entries, False


def learning_sample(groups: list[list[Capture]], size: int) -> list[Capture]:
    """The pages the template is learned from: `size` of them, in an order
    that does not depend on the crawl's, and then enough of each section's
    own for the section to be learned (see TemplateModel), at most `size` more.
    """
    order = sorted(
        (g[0] for g in groups),
        key=lambda c: hashlib.blake2b(c.url.encode(), digest_size=8).digest(),
    )
    chosen = order[:size]
    per_section: dict[str, int] = {}
    for cap in chosen:
        sec = section_of(cap.url)
        per_section[sec] = per_section.get(sec, 0) + 1
    extra = []
    want = 2 * SECTION_MIN_PAGES
    for cap in order[size:]:
        if len(extra) >= size:
            break
        sec = section_of(cap.url)
        if sec and per_section.get(sec, 0) < want:
            per_section[sec] = per_section.get(sec, 0) + 1
            extra.append(cap)
    return chosen + extra


class _Learner:
    """Reads the learning sample's pages; inherited by forked workers like _ExtractContext."""

    def __init__(self, crawl_dir: Path, caps: list[Capture], max_page_bytes: int) -> None:
        self.crawl_dir = crawl_dir
        self.caps = caps
        self.max_page_bytes = max_page_bytes
        self.files = WarcFiles(crawl_dir)

    def keys_of(self, index: int) -> PageKeys | None:
        try:
            return self._keys_of(self.caps[index])
        except Exception:
            # A page that cannot be read is not learned from; extracting it
            # says why in the log.
            return None

    def _keys_of(self, cap: Capture) -> PageKeys | None:
        for _cap, payload, _err in iter_payloads(
            self.crawl_dir, [cap], self.max_page_bytes, self.files, cut=True
        ):
            if payload is None:
                return None
            try:
                root, *_ = _load(payload.body, payload.content_type)
            except NotHtml:
                return None
            body = root.find("body")
            return page_keys(body if body is not None else root, section_of(cap.url))
        return None


# Set in the parent just before a pool forks; each worker calls its copy.
_worker_task: Callable[[int], Any] | None = None


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group; the parent alone decides what
    # stops, and terminates the pool, so workers print no tracebacks of their own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_run(index: int) -> Any:
    assert _worker_task is not None
    return _worker_task(index)


T = TypeVar("T")


@contextmanager
def _mapped(
    task: Callable[[int], T], count: int, workers: int, files: WarcFiles
) -> Iterator[Iterator[T]]:
    """task(0), task(1) … task(count - 1), in order; in forked worker processes
    when workers > 1. `files` is the task's WARC handles, closed at the end."""
    if workers <= 1:
        try:
            yield (task(i) for i in range(count))
        finally:
            files.close()
        return
    global _worker_task
    # Closed before the fork: a shared handle would share its file offset.
    files.close()
    _worker_task = task
    # Workers get indexes, not groups or captures: those are already in their
    # memory, and an int pickles for nothing.
    in_flight = threading.BoundedSemaphore(workers * CHUNK_GROUPS * CHUNKS_AHEAD)
    stopping = threading.Event()

    def indexes() -> Iterator[int]:
        # Runs in the pool's task thread: it waits for the parent to take
        # results before it hands out more, so results never pile up.
        for i in range(count):
            while not in_flight.acquire(timeout=0.1):
                if stopping.is_set():
                    return
            if stopping.is_set():
                return
            yield i

    def taken(results: Iterator[T]) -> Iterator[T]:
        for r in results:
            in_flight.release()
            yield r

    # Out of the collector's sight while the workers live: a collection in a
    # worker would otherwise visit, and so copy, every page of memory it
    # shares with the parent (the crawl index, the groups, the model).
    gc.freeze()
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init)
    try:
        yield taken(pool.imap(_worker_run, indexes(), chunksize=CHUNK_GROUPS))
        pool.close()
    except BaseException:
        stopping.set()
        pool.terminate()
        raise
    finally:
        pool.join()
        gc.unfreeze()
        _worker_task = None


def _join(into: Result, more: Result) -> None:
    """Append a later part of a multi-part article: its blocks after the title it repeats."""
    skip = 1 if more.blocks and into.blocks and more.blocks[0] == into.blocks[0] else 0
    into.blocks.extend(more.blocks[skip:])
    into.headings.extend(h for h in more.headings[skip:])
    into.html += more.html
    into.markdown += "\n" + more.markdown
    into.links.extend(more.links)
    into.images.extend(more.images)
    into.removed.extend(more.removed)


def _finish_record(
    rec: dict[str, Any], page_id: str, inv: Inventory, size_of: Callable[[Attachment], int | None]
) -> dict[str, Any]:
    atts = []
    seen: set[str] = set()
    for link in rec["links"]:
        a = inv.attachments.get(link["url"])
        if (
            a is None
            or a.url in seen
            or not urlsplit(a.url).path.lower().endswith(DOCUMENT_EXTENSIONS)
        ):
            continue
        seen.add(a.url)
        atts.append(
            {
                "url": a.url,
                "type": a.mime,
                "size": size_of(a),
                "warc_file": a.filename,
                "warc_offset": a.offset,
                "digest": a.digest,
                "text": link["text"],
            }
        )
    title = rec["title"] or ""
    html_doc = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title></head>\n<body>\n{rec['_html']}</body></html>\n"
    )
    md = rec["_markdown"]
    ordered = {"id": page_id, **{k: v for k, v in rec.items() if not k.startswith("_")}}
    ordered["attachments"] = atts
    ordered["files"] = {
        "html": f"pages/{page_id}.html",
        "md": f"pages/{page_id}.md",
        "json": f"pages/{page_id}.json",
    }
    ordered["_html"] = html_doc
    ordered["_markdown"] = md
    return ordered


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _write_page(
    rec: dict[str, Any],
    page_id: str,
    inv: Inventory,
    size_of: Callable[[Attachment], int | None],
    pages_dir: Path,
) -> tuple[str, list[tuple[str, int | None]]]:
    """Write a page's HTML, Markdown and JSON; its pages.jsonl line and attachments."""
    rec = _finish_record(rec, page_id, inv, size_of)
    stem = os.path.join(pages_dir, page_id)
    _write_file(f"{stem}.html", rec.pop("_html"))
    _write_file(f"{stem}.md", rec.pop("_markdown"))
    line, pretty = _dumps(rec)
    _write_file(f"{stem}.json", pretty + "\n")
    return line, [(a["url"], a["size"]) for a in rec["attachments"]]


def _drop_unlisted(pages_dir: Path, listed: set[str]) -> None:
    with contextlib.suppress(OSError):
        for path in pages_dir.iterdir():
            stem = path.name.rsplit(".", 1)[0]
            if stem not in listed:
                path.unlink(missing_ok=True)


def _unlink_page(pages_dir: Path, page_id: str | None) -> None:
    for ext in ("html", "md", "json"):
        (pages_dir / f"{page_id}.{ext}").unlink(missing_ok=True)


def _write_file(path: Path | str, text: str) -> None:
    # Straight to the descriptor: a Python file object per small file costs
    # more than the write.
    data = memoryview(text.encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _add_merged_urls(
    index: Path, pages_dir: Path, written: list[str], extra_urls: dict[int, list[str]]
) -> None:
    """Give the pages that others merged into all their legacy URLs, in pages.jsonl
    and in their JSON files, once every page is written."""
    tmp = index.with_name(f".{index.name}.tmp")
    with open(index, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if n in extra_urls:
                rec = json.loads(line)
                rec["legacy_urls"] = sorted(set(rec["legacy_urls"]) | set(extra_urls[n]))
                line, pretty = _dumps(rec)
                line += "\n"
                _write_file(pages_dir / f"{written[n]}.json", pretty + "\n")
            dst.write(line)
    os.replace(tmp, index)


def _dumps(rec: dict[str, Any]) -> tuple[str, str]:
    """json.dumps(rec, ensure_ascii=False), and the same with indent=2, in one pass
    that escapes each string once (json's indenting encoder is pure Python)."""

    def scalar(o: Any) -> str | None:
        # Most values are strings: no call, no pair, for those.
        if type(o) is str:
            return _json_str(o)
        if o is None:
            return "null"
        if type(o) is dict or type(o) is list:
            return None
        return json.dumps(o)

    def both(o: Any, ind: str) -> tuple[str, str]:
        inner = ind + "  "
        if type(o) is dict:
            if not o:
                return "{}", "{}"
            flat, pretty = [], []
            for k, v in o.items():
                key = _json_str(k)
                s = scalar(v)
                if s is None:
                    f, p = both(v, inner)
                else:
                    f = p = s
                flat.append(f"{key}: {f}")
                pretty.append(f"{inner}{key}: {p}")
            return "{" + ", ".join(flat) + "}", "{\n" + ",\n".join(pretty) + "\n" + ind + "}"
        if not o:
            return "[]", "[]"
        flat, pretty = [], []
        for v in o:
            s = scalar(v)
            if s is None:
                f, p = both(v, inner)
            else:
                f = p = s
            flat.append(f)
            pretty.append(inner + p)
        return "[" + ", ".join(flat) + "]", "[\n" + ",\n".join(pretty) + "\n" + ind + "]"

    top = scalar(rec)
    return (top, top) if top is not None else both(rec, "")


def _write_attachments(
    path: Path,
    inv: Inventory,
    doc_pages: dict[str, list[str]],
    size_of: Callable[[Attachment], int | None],
) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["url", "type", "size", "warc_file", "warc_offset", "digest", "pages"])
        for url in sorted(inv.attachments):
            a = inv.attachments[url]
            if not urlsplit(url).path.lower().endswith(DOCUMENT_EXTENSIONS):
                continue
            w.writerow(
                [
                    a.url,
                    a.mime,
                    size_of(a),
                    a.filename,
                    a.offset,
                    a.digest,
                    " ".join(sorted(set(doc_pages.get(url, [])))),
                ]
            )
            n += 1
    return n
