"""The crawl's spider: robots.txt first, then seeds and sitemaps, then every link in scope.

It decides what to fetch (scope, trap guards, robots.txt) and what a page links
to; it never touches the WARC, which the downloader middleware writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse

from .hops import add as hops_add
from .hops import length as hops_length
from .links import (
    css_links,
    html_links,
    html_title,
    is_html,
    robots_sitemaps,
    sitemap_links,
)
from .queue import encode
from .redis_parts import LEASE
from .scrapy_parts import ABANDONED, CHECKED, RECORD
from .session import Session, robots_rules, seen_key
from .shared import (
    CAP_CALENDAR,
    CAP_VARIANTS,
    OVER_MAX,
    PUSHED,
    REFUSED,
    Candidate,
    RedisLost,
)
from .urls import ROBOTS_REDIRECTS, canonicalize, host_of, invalid, variants_guard
from .warc import WarcWriteError

# How long a worker waits for robots.txt fetched by another worker: that
# worker may be killed, and its lease then expires and is re-done.
ROBOTS_WAIT_S = 600.0
# Where a shared crawl publishes how a robots.txt URL was answered, beside the hosts' rules.
ROBOTS_URL_KEY = "url:"
# Raw URLs remembered by follow(): more than a page template links to.
RECENT_URLS = 8192


@dataclass
class Planned:
    """A URL a shared crawl will claim: queued if `candidate.data`, else a refusal to log."""

    url: str
    hops: str
    via: str | None
    candidate: Candidate
    refusal: tuple[int, str] | None = None


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
        # How each robots.txt fetch ended, by every canonical URL on its way
        # (redirects included): (rules, policy, host of the final URL).
        self.robots_answers: dict[str, tuple[bytes, str, str]] = {}
        # Robots redirects dropped as duplicates, waiting for the chain that
        # claimed their target to end (local crawl).
        self.parked: list[scrapy.Request] = []
        self.tasks: set[asyncio.Future[None]] = set()
        # Raw URLs follow() has already decided on (True: off-site). Menus
        # repeat the same links on every page, and a URL seen before can only
        # be a duplicate again, so most calls end here. Bounded, oldest out.
        self.recent: dict[str, bool] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> CaptureSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.on_dropped, signal=signals.request_dropped)
        if spider.session.shared is not None:
            crawler.signals.connect(spider.on_idle, signal=signals.spider_idle)
        return spider

    def on_dropped(self, request: scrapy.Request, spider: Any = None) -> None:
        """A robots.txt redirect to a robots.txt another chain claimed (apex and
        www both sent to https://www.): that chain's answer is this host's too,
        without a second fetch. A target whose answer cannot come (hosts that
        redirect to each other, a file claimed otherwise) is fetched again."""
        if not request.meta.get("robots_txt"):
            return
        target = canonicalize(request.url)
        if self.session.shared is not None:
            task = asyncio.ensure_future(self.await_shared_answer(request, target))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.parked.append(request)
            self.schedule(self.settle())

    def schedule(self, requests: Iterator[scrapy.Request]) -> None:
        engine = self.crawler.engine
        for request in requests:
            engine.crawl(request)

    def decide_as(
        self, request: scrapy.Request, answer: tuple[bytes, str, str]
    ) -> Iterator[scrapy.Request]:
        """Decide the host of `request`'s chain by another chain's answer."""
        host = request.meta.get("robots_host") or host_of(request.url)
        rules, policy, final = answer
        self.apply_robots(host, rules, f"same-as:{final}:{policy}" if final != host else policy)
        if self.session.shared is None:
            yield from self._robots_done()

    def settle(self) -> Iterator[scrapy.Request]:
        """Decide the parked chains whose target has been answered; when nothing
        else is in flight to answer the rest, fetch each of them again."""
        waiting = []
        for request in self.parked:
            answer = self.robots_answers.get(canonicalize(request.url))
            if answer is None:
                waiting.append(request)
            else:
                yield from self.decide_as(request, answer)
        self.parked = waiting
        if waiting and self.pending_robots == len(waiting):
            self.parked = []
            for request in waiting:
                # Not filtered again; the redirect limit ends a loop.
                yield request.replace(dont_filter=True)

    async def await_shared_answer(self, request: scrapy.Request, target: str) -> None:
        """A shared crawl: another worker's chain may be fetching the target; its
        answer arrives through Redis. Fetched again if it does not in time."""
        s = self.session
        assert s.shared is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2 * s.timeout + 5
        while not s.fatal:
            try:
                known, body = s.shared.robots(ROBOTS_URL_KEY + target)
            except RedisLost as exc:
                s.fail(str(exc))
                return
            if known:
                head, _, rules = (body or b"").partition(b"\n")
                policy, _, final = head.decode("utf-8", "replace").partition(" ")
                for _ in self.decide_as(request, (rules, policy, final)):
                    pass
                return
            if loop.time() > deadline:
                self.schedule(iter([request.replace(dont_filter=True)]))
                return
            await asyncio.sleep(0.1)

    def answered(self, request: scrapy.Request, last_url: str, rules: bytes, policy: str) -> None:
        """Record how a robots.txt fetch ended, under every URL of its chain."""
        s = self.session
        answer = (rules, policy, host_of(last_url))
        for url in [*request.meta.get("redirect_urls", []), last_url]:
            key = canonicalize(url)
            self.robots_answers[key] = answer
            if s.shared is not None:
                try:
                    value = f"{policy} {answer[2]}\n".encode() + rules
                    s.shared.publish_robots(ROBOTS_URL_KEY + key, value)
                except RedisLost as exc:
                    s.fail(str(exc))

    def on_idle(self) -> None:
        """A shared crawl is over only when no worker has anything queued or leased."""
        s = self.session
        if s.fatal or s.shared is None:
            return
        try:
            if not s.shared.seeded() or s.shared.remaining() > 0:
                raise DontCloseSpider
        except RedisLost as exc:
            s.fail(str(exc))

    async def start(self) -> AsyncIterator[Any]:
        s = self.session
        if s.shared is not None:
            await self.start_shared()
            return
        robots = []
        for scheme, netloc in self.robots_origins():
            url = f"{scheme}://{netloc}/robots.txt"
            if host_of(url) in s.robots:  # known from the WARCs of an earlier run
                continue
            # Fetched even when an earlier run did (its answer was not final:
            # a server error or a redirect); claimed so a link to it is not.
            s.first_time(url)
            robots.append(url)
        self.pending_robots = len(robots)
        for url in robots:
            yield self.robots_request(url)
        if not robots:
            for req in self.after_robots():
                yield req

    def robots_origins(self) -> list[tuple[str, str]]:
        """One robots.txt per origin: the seeds' own (scheme, host and port), and
        each other allowed host on the seeds' scheme."""
        s = self.session
        origins = {(urlsplit(u).scheme, urlsplit(u).netloc.lower()) for u in s.seeds}
        default_scheme = min((o[0] for o in origins), default="http")
        for host in s.scope.hosts:
            if not any(host_of(f"{sc}://{nl}/") == host for sc, nl in origins):
                origins.add((default_scheme, host))
        return sorted(origins)

    async def start_shared(self) -> None:
        """Every worker runs this; the first to claim each URL queues it, the others find it taken."""
        s = self.session
        assert s.shared is not None
        try:
            urls = [f"{sc}://{nl}/robots.txt" for sc, nl in self.robots_origins()]
            cands = [
                Candidate(
                    key=seen_key(canonicalize(url)),
                    data=encode(self.robots_request(url), self),
                    score=-100.0,
                )
                for url in urls
            ]
            s.shared.push(cands)
            waiting = {host_of(u) for u in urls}
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ROBOTS_WAIT_S
            while waiting and not s.fatal:
                for host in sorted(waiting):
                    known, body = s.shared.robots(host)
                    if known:
                        s.load_robots(host, body)
                        s.robots_rules[host] = body or b""
                        waiting.discard(host)
                if waiting:
                    if loop.time() > deadline:
                        s.fail(f"no worker fetched robots.txt for {', '.join(sorted(waiting))}")
                        return
                    await asyncio.sleep(0.1)
            # A shared crawl has no frontier from earlier WARCs: no calendar steps.
            urls = ((u, h, v, k, seed) for u, h, v, k, seed, _ in self.after_robots_urls())
            self.push_shared(self.plan_many(urls))
            s.shared.mark_seeded()
        except RedisLost as exc:
            s.fail(str(exc))

    def robots_request(self, url: str) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.on_robots,
            errback=self.on_robots_failed,
            priority=100,
            meta={
                "hops": "P",
                "via": None,
                CHECKED: True,
                "robots_txt": True,
                "robots_host": host_of(url),
                # 4xx and 5xx (after the retries) reach on_robots. Redirects
                # are followed, five at most (RFC 9309 2.3.1.2), and only to
                # another robots.txt (ScopeGate; see on_dropped).
                "handle_httpstatus_list": list(range(400, 600)),
                "redirect_ttl": ROBOTS_REDIRECTS,
            },
        )

    def after_robots_urls(
        self,
    ) -> Iterator[tuple[str, str, str | None, str | None, bool, int]]:
        """(url, hops, via, kind, seed, calendar step of via) of what follows robots.txt."""
        s = self.session
        for seed in s.seeds:
            yield seed, "", None, None, True, 0
        for item in self.frontier:
            yield item["url"], item["hops"], item.get("via"), None, False, int(item.get("cal", 0))
        self.frontier = []
        if s.use_sitemap:
            # Sitemaps that robots.txt files name, only now that every host's
            # rules are known: one may be on, or list pages of, another host.
            for scheme, netloc in self.robots_origins():
                robots_url = f"{scheme}://{netloc}/robots.txt"
                for sm in robots_sitemaps(s.robots_rules.get(host_of(robots_url), b""), robots_url):
                    yield sm, "P", robots_url, "sitemap", False, 0
            origins = sorted({(urlsplit(u).scheme, urlsplit(u).netloc) for u in s.seeds})
            for scheme, netloc in origins:
                yield f"{scheme}://{netloc}/sitemap.xml", "P", None, "sitemap", False, 0

    def plan_many(
        self, items: Iterator[tuple[str, str, str | None, str | None, bool]], cal_parent: int = 0
    ) -> list[Planned]:
        plans = []
        for url, hops, via, kind, seed in items:
            plan = self.plan(url, hops, via, kind, seed, cal_parent)
            if plan is not None:
                plans.append(plan)
        return plans

    def plan(
        self,
        url: str,
        hops: str,
        via: str | None,
        kind: str | None = None,
        seed: bool = False,
        cal_parent: int = 0,
    ) -> Planned | None:
        """What follow() decides, for a shared crawl: the claim itself happens in Redis."""
        s = self.session
        if invalid(url):
            s.refuse(url, -7, "invalid-url", hops, via)
            return None
        if not s.scope.host_allowed(url):
            s.stats["offsite"] += 1
            return None
        canonical = canonicalize(url)
        key = seen_key(canonical)
        if not s.claim_key(key):  # this worker already offered it; most links end here
            return None
        cal = s.calendar_depth(canonical, cal_parent)
        refusal = s.refusal(url, canonical, hops, seed, cal, self.user_agent)
        if refusal:
            return Planned(url, hops, via, Candidate(key=key), refusal)
        request = self.make_request(url, hops, via, kind, cal)
        cand = Candidate(key=key, data=encode(request, self), score=float(-request.priority))
        counted = None if seed else s.guards.counted(canonical)
        if counted:
            cand.path = counted[0]
            cand.variant_cap = s.guards.max_query_variants
            cand.calendar_cap = s.guards.max_calendar_variants if counted[1] else -1
        return Planned(url, hops, via, cand)

    def push_shared(self, plans: list[Planned], lease: str = "") -> None:
        """Claim and queue plans and end `lease` in one Redis step, then log what was refused."""
        s = self.session
        assert s.shared is not None
        codes = s.shared.push([p.candidate for p in plans], lease=lease, max_pages=s.max_pages)
        for plan, code in zip(plans, codes, strict=True):
            if code == PUSHED:
                s.stats["queued"] += 1
            elif code == REFUSED and plan.refusal:
                s.refuse(plan.url, plan.refusal[0], plan.refusal[1], plan.hops, plan.via)
            elif code == CAP_CALENDAR:
                s.refuse(plan.url, -5000, "guard:calendar", plan.hops, plan.via)
            elif code == CAP_VARIANTS:
                guard = variants_guard(plan.candidate.path)
                s.refuse(plan.url, -5000, f"guard:{guard}", plan.hops, plan.via)
            elif code == OVER_MAX:
                s.stats["over-max-pages"] += 1
                s.refuse(plan.url, -5003, "max-pages", plan.hops, plan.via)

    def release(self, request: scrapy.Request, plans: list[Planned] | None = None) -> None:
        """End a shared crawl's lease on `request`, queueing what it led to in the same step."""
        s = self.session
        if s.shared is None:
            return
        try:
            self.push_shared(plans or [], lease=request.meta.get(LEASE, ""))
        except RedisLost as exc:
            s.fail(str(exc))

    def after_robots(self) -> Iterator[scrapy.Request]:
        """Seeds, sitemaps and (on resume) the rebuilt frontier, once robots rules are known."""
        for url, hops, via, kind, seed, cal in self.after_robots_urls():
            yield from self.follow(url, hops, via, kind=kind, seed=seed, cal_parent=cal)

    def on_robots(self, response: Response) -> Iterator[scrapy.Request]:
        rules, policy = robots_rules(response.status, response.body, "truncated" in response.flags)
        self.answered(response.request, response.url, rules, policy)
        yield from self.decide_as(response.request, self.robots_answers[canonicalize(response.url)])
        if self.session.shared is not None:
            self.release(response.request)
            return
        yield from self.settle()

    def on_robots_failed(self, failure: Any) -> Iterator[scrapy.Request]:
        request = failure.request
        if request.meta.get(ABANDONED):
            # The crawl is stopping: nothing was answered, nothing is decided
            # (a shared crawl's worker hands the fetch back as it leaves).
            return
        response = getattr(failure.value, "response", None)
        if response is not None:  # a redirect without a Location, say
            status: int | None = response.status
        elif isinstance(failure.value, IgnoreRequest):
            # Redirected past the limit, or to a page that is not a robots.txt:
            # RFC 9309 lets both count as "unavailable".
            status = 310
        else:
            status = None  # no answer at all, after the retries
        rules, policy = robots_rules(status, None, False)
        self.answered(request, request.url, rules, policy)
        yield from self.decide_as(request, self.robots_answers[canonicalize(request.url)])
        if self.session.shared is not None:
            self.release(request)
            return
        yield from self.settle()

    def apply_robots(self, host: str, rules: bytes, policy: str) -> None:
        """Rules for a host, decided once and written down (crawl.json), shared
        with other workers."""
        s = self.session
        s.load_robots(host, rules)
        s.robots_rules[host] = rules
        s.robots_policy[host] = policy
        if s.shared is not None:
            try:
                s.shared.publish_robots(host, rules)
            except RedisLost as exc:
                s.fail(str(exc))

    def _robots_done(self) -> Iterator[scrapy.Request]:
        if self.pending_robots <= 0:
            return
        self.pending_robots -= 1
        if self.pending_robots <= 0:
            yield from self.after_robots()

    def follow(
        self,
        url: str,
        hops: str,
        via: str | None,
        kind: str | None = None,
        seed: bool = False,
        cal_parent: int = 0,
    ) -> Iterator[scrapy.Request]:
        s = self.session
        recent = self.recent
        if url in recent:
            if recent[url]:
                s.stats["offsite"] += 1
            return
        if len(recent) >= RECENT_URLS:
            del recent[next(iter(recent))]
        if invalid(url):
            recent[url] = False
            s.refuse(url, -7, "invalid-url", hops, via)
            return
        offsite = recent[url] = not s.scope.host_allowed(url)
        if offsite:
            s.stats["offsite"] += 1
            return
        canonical = canonicalize(url)
        if not s.claim(canonical):
            return
        cal = s.calendar_depth(canonical, cal_parent)
        refusal = s.refusal(url, canonical, hops, seed, cal, self.user_agent)
        if refusal is None and not seed and (capped := s.guards.count(canonical)):
            refusal = (-5000, f"guard:{capped}")
        if refusal:
            s.refuse(url, refusal[0], refusal[1], hops, via)
            return
        if s.max_pages and s.stats["queued"] >= s.max_pages:
            s.stats["over-max-pages"] += 1
            s.refuse(url, -5003, "max-pages", hops, via)  # Heritrix's "over quota"
            return
        s.stats["queued"] += 1
        yield self.make_request(url, hops, via, kind, cal)

    def make_request(
        self, url: str, hops: str, via: str | None, kind: str | None = None, cal: int = 0
    ) -> scrapy.Request:
        # Breadth-first (fewer hops first), and a page's requisites right after
        # it, so a page and what it needs are captured close in time.
        priority = -2 * hops_length(hops) + (3 if hops[-1:] in ("E", "R") else 0)
        meta: dict[str, Any] = {"hops": hops, "via": via, CHECKED: True}
        if kind:
            meta["kind"] = kind
        if cal:
            meta["cal"] = cal
        return scrapy.Request(
            url, callback=self.parse, errback=self.failed, priority=priority, meta=meta
        )

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        s = self.session
        hops = response.meta.get("hops", "")
        cal = int(response.meta.get("cal", 0))
        rec = response.meta.get(RECORD)
        body = response.body
        ctype = (response.headers.get("Content-Type") or b"").decode("latin-1").lower()
        links: list[tuple[str, str, str]] = []
        nested: list[str] = []
        if (
            response.meta.get("kind") == "sitemap"
            or b"<urlset" in body[:1024]
            or (b"<sitemapindex" in body[:1024])
        ):
            pages, nested = sitemap_links(body, response.url)
            links = [(u, "S", "sitemap/loc") for u in pages]
        elif "css" in ctype or (not ctype and response.url.lower().endswith(".css")):
            links = list(css_links(body, response.url))
        elif is_html(ctype, body):
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
        if rec and links:
            fields = [("via", response.meta.get("via") or "-"), ("hopsFromSeed", hops or "-")]
            fields += [("outlink", f"{u} {h} {c}") for u, h, c in links[:10000]]
            try:
                s.warcs.write_metadata(response.url, rec[0], fields)
            except WarcWriteError as exc:
                s.fail(str(exc))
        # Sitemap entries start a new discovery chain, as Heritrix counts them.
        targets = [(u, hops, response.url, "sitemap", False) for u in nested]
        targets += [
            (u, "S" if hop == "S" else hops_add(hops, hop), response.url, None, False)
            for u, hop, _ctx in links
        ]
        if s.shared is not None:
            # The lease ends only now, with every outlink queued in the same
            # step: a worker killed before this point leaves the page to be re-done.
            self.release(response.request, self.plan_many(iter(targets), cal))
            return
        for url, thops, via, kind, _seed in targets:
            yield from self.follow(url, thops, via, kind=kind, cal_parent=cal)

    def failed(self, failure: Any) -> None:
        # Every attempt was already logged by the WARC middleware; a shared
        # crawl only has to end the request's lease.
        request = getattr(failure, "request", None)
        # An interrupted fetch keeps its lease; the worker hands it back as it leaves.
        if request is not None and not request.meta.get(ABANDONED):
            self.release(request)
