"""scrapy-redis, adapted so that a worker killed mid-crawl loses nothing.

scrapy-redis gives Scrapy a scheduler whose queue lives in Redis, so several
processes share one frontier. Its pop removes a request outright, and its
duplicate filter and its push are two separate calls; a worker killed between
them, or while it holds popped requests, loses those URLs for good (the
scrapy-cluster maintainers say the same of in-flight requests). Here the
queue's pop is a lease and its push is the atomic claim-and-queue of
crawler/shared.py; everything else (the Scheduler's wiring, stats, the
queue interface) is scrapy-redis's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy_redis.queue import Base
from scrapy_redis.scheduler import Scheduler

from .queue import decode, encode
from .session import seen_key
from .shared import DUPLICATE, PUSHED, Candidate, RedisLost
from .urls import canonicalize

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from .session import Session
    from .shared import Shared

LEASE = "_sunset_lease"


def score_of(request: Request) -> float:
    # scrapy-redis's priority queue pops the lowest score first.
    return float(-request.priority)


class LeasedQueue(Base):
    """The shared priority queue; a pop leases the request to this worker."""

    def __init__(self, shared: Shared, spider: Any) -> None:
        # Requests are encoded by crawler.queue (compact marshal), not by
        # scrapy-redis's serializer, which this queue never calls.
        super().__init__(shared.client, spider, shared.queue_key)
        self.shared = shared

    def __len__(self) -> int:
        return self.shared.queue_size()

    def pop(self, timeout: int = 0) -> Request | None:
        got = self.shared.take()
        if got is None:
            return None
        lease, data = got
        request = decode(data, self.spider)
        request.meta[LEASE] = lease
        return request


class LeasedScheduler(Scheduler):
    """scrapy-redis's Scheduler over a LeasedQueue and atomic claim-and-queue."""

    def __init__(self, session: Session, crawler: Crawler) -> None:
        assert session.shared is not None
        self.session = session
        self.shared: Shared = session.shared
        super().__init__(
            server=self.shared.client,
            persist=True,  # other workers share the queue: never flush it on close
            queue_key=self.shared.queue_key,
            dupefilter_key=self.shared.seen_key,
        )
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LeasedScheduler:
        return cls(crawler.settings["SUNSET_SESSION"], crawler)

    def open(self, spider: Any) -> None:
        self.spider = spider
        self.queue = LeasedQueue(self.shared, spider)

    def close(self, reason: str) -> None:
        return None

    def enqueue_request(self, request: Request) -> bool:
        """Queue a request made by a middleware (a redirect hop, a retry) and end its parent's lease."""
        lease = request.meta.pop(LEASE, "")
        try:
            if request.dont_filter:
                self.shared.requeue(encode(request, self.spider), score_of(request), lease)
                pushed = True
            else:
                cand = Candidate(
                    key=seen_key(canonicalize(request.url)),
                    data=encode(request, self.spider),
                    score=score_of(request),
                )
                code = self.shared.push([cand], lease=lease)[0]
                pushed = code == PUSHED
                if code == DUPLICATE:
                    self.session.stats["duplicates"] += 1
        except RedisLost as exc:
            self.session.fail(str(exc))
            return False
        if pushed and self.stats:
            self.stats.inc_value("scheduler/enqueued/redis", spider=self.spider)
        return pushed

    def next_request(self) -> Request | None:
        if self.session.fatal:
            return None
        try:
            request = self.queue.pop()
        except RedisLost as exc:
            self.session.fail(str(exc))
            return None
        if request is not None and self.stats:
            self.stats.inc_value("scheduler/dequeued/redis", spider=self.spider)
        return request

    def has_pending_requests(self) -> bool:
        if self.session.fatal:
            return False
        try:
            return len(self.queue) > 0
        except RedisLost as exc:
            self.session.fail(str(exc))
            return False
