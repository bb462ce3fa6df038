"""The crawl's spider: robots.txt first, then seeds and sitemaps, then every link in scope.

It decides what to fetch (scope, trap guards, robots.txt) and what a page links
to; it never touches the WARC, which the downloader middleware writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy.http import Response, TextResponse

from .links import css_links, html_links, html_title, robots_sitemaps, sitemap_links
from .scrapy_parts import CHECKED, RECORD
from .session import Session
from .urls import canonicalize, host_of
from .warc import WarcWriteError

HTML_TYPES = ("text/html", "application/xhtml+xml")


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head


class CaptureSpider(scrapy.Spider):
    name = "sunset"

    def __init__(
        self, session: Session, user_agent: str, frontier: list[dict[str, str]], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.session = session
        self.user_agent = user_agent
        self.frontier = frontier  # requests rebuilt from a previous run's WARCs (resume)
        self.pending_robots = 0

    async def start(self) -> AsyncIterator[Any]:
        s = self.session
        # One robots.txt per origin: the seeds' own (scheme, host and port), and
        # each other allowed host on the seeds' scheme.
        origins = {(urlsplit(u).scheme, urlsplit(u).netloc.lower()) for u in s.seeds}
        default_scheme = min((o[0] for o in origins), default="http")
        for host in s.scope.hosts:
            if not any(host_of(f"{sc}://{nl}/") == host for sc, nl in origins):
                origins.add((default_scheme, host))
        robots = []
        for scheme, netloc in sorted(origins):
            url = f"{scheme}://{netloc}/robots.txt"
            if host_of(url) in s.robots:  # known from the WARCs of an earlier run
                continue
            if s.first_time(url):
                robots.append(url)
        self.pending_robots = len(robots)
        for url in robots:
            yield scrapy.Request(
                url,
                callback=self.on_robots,
                errback=self.on_robots_failed,
                priority=100,
                meta={
                    "hops": "P",
                    "via": None,
                    CHECKED: True,
                    "robots_txt": True,
                    "handle_httpstatus_all": True,
                    "dont_redirect": True,
                },
            )
        if not robots:
            for req in self.after_robots():
                yield req

    def after_robots(self) -> Iterator[scrapy.Request]:
        """Seeds, sitemaps and (on resume) the rebuilt frontier, once robots rules are known."""
        s = self.session
        for seed in s.seeds:
            yield from self.follow(seed, "", None, seed=True)
        for item in self.frontier:
            yield from self.follow(item["url"], item["hops"], item.get("via"))
        self.frontier = []
        if s.use_sitemap:
            origins = sorted({(urlsplit(u).scheme, urlsplit(u).netloc) for u in s.seeds})
            for scheme, netloc in origins:
                yield from self.follow(
                    f"{scheme}://{netloc}/sitemap.xml", "P", None, kind="sitemap"
                )

    def on_robots(self, response: Response) -> Iterator[scrapy.Request]:
        s = self.session
        host = host_of(response.url)
        body = response.body if response.status == 200 else None
        s.load_robots(host, body)
        if body and s.use_sitemap:
            for sm in robots_sitemaps(body, response.url):
                yield from self.follow(sm, "P", response.url, kind="sitemap")
        yield from self._robots_done()

    def on_robots_failed(self, failure: Any) -> Iterator[scrapy.Request]:
        request = failure.request
        self.session.load_robots(host_of(request.url), None)
        yield from self._robots_done()

    def _robots_done(self) -> Iterator[scrapy.Request]:
        self.pending_robots -= 1
        if self.pending_robots == 0:
            yield from self.after_robots()

    def follow(
        self, url: str, hops: str, via: str | None, kind: str | None = None, seed: bool = False
    ) -> Iterator[scrapy.Request]:
        s = self.session
        if not s.scope.host_allowed(url):
            s.stats["offsite"] += 1
            return
        canonical = canonicalize(url)
        if not s.claim(canonical):
            return
        if s.scope.excluded(url):
            s.refuse(url, -5001, "excluded", hops, via)
            return
        if s.max_depth and hops.count("L") > s.max_depth:
            s.refuse(url, -5000, "guard:max-depth", hops, via)
            return
        guard = s.guards.check(canonical)
        if guard and not seed:
            s.refuse(url, -5000, f"guard:{guard}", hops, via)
            return
        if not s.allowed_by_robots(url, self.user_agent):
            s.refuse(url, -9998, "robots", hops, via)
            return
        if s.max_pages and s.stats["queued"] >= s.max_pages:
            s.stats["over-max-pages"] += 1
            return
        s.stats["queued"] += 1
        # Breadth-first (fewer hops first), and a page's requisites right after
        # it, so a page and what it needs are captured close in time.
        priority = -2 * len(hops) + (3 if hops[-1:] in ("E", "R") else 0)
        meta = {"hops": hops, "via": via, CHECKED: True}
        if kind:
            meta["kind"] = kind
        yield scrapy.Request(
            url, callback=self.parse, errback=self.failed, priority=priority, meta=meta
        )

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        s = self.session
        hops = response.meta.get("hops", "")
        rec = response.meta.get(RECORD)
        body = response.body
        ctype = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        links: list[tuple[str, str, str]] = []
        if (
            response.meta.get("kind") == "sitemap"
            or b"<urlset" in body[:1024]
            or (b"<sitemapindex" in body[:1024])
        ):
            pages, nested = sitemap_links(body, response.url)
            for url in nested:
                yield from self.follow(url, hops, response.url, kind="sitemap")
            links = [(u, "S", "sitemap/loc") for u in pages]
        elif "css" in ctype or (not ctype and response.url.lower().endswith(".css")):
            links = list(css_links(body, response.url))
        elif ctype.startswith(HTML_TYPES) or (
            (not ctype or ctype.startswith("text/plain")) and looks_like_html(body)
        ):
            encoding = None
            if isinstance(response, TextResponse):
                try:
                    encoding = response.encoding
                except LookupError:
                    encoding = None
            links = list(html_links(body, response.url, encoding))
            if rec and response.status == 200:
                s.page(response.url, rec[1], html_title(body, encoding), response.status)
                s.stats["pages"] += 1
        for url, hop, _ctx in links:
            # Sitemap entries start a new discovery chain, as Heritrix counts them.
            yield from self.follow(url, "S" if hop == "S" else hops + hop, response.url)
        if rec and links:
            fields = [("via", response.meta.get("via") or "-"), ("hopsFromSeed", hops or "-")]
            fields += [("outlink", f"{u} {h} {c}") for u, h, c in links[:10000]]
            try:
                s.warcs.write_metadata(response.url, rec[0], fields)
            except WarcWriteError as exc:
                s.fail(str(exc))

    def failed(self, failure: Any) -> None:
        # Every attempt was already logged by the WARC middleware; nothing to add.
        return None
