"""The scheduler's disk queue gives back the requests it was given, field for field."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from scrapy import FormRequest, Request

from crawler.queue import CompactDiskQueue, decode, encode


class Spider:
    def parse(self, response):  # pragma: no cover - only referenced by name
        return None

    def failed(self, failure):  # pragma: no cover
        return None


def _same(a: Request, b: Request) -> None:
    assert type(a) is type(b)
    assert (a.url, a.method, a.body, a.priority, a.dont_filter) == (
        b.url,
        b.method,
        b.body,
        b.priority,
        b.dont_filter,
    )
    assert a.meta == b.meta
    assert dict(a.headers) == dict(b.headers)
    assert a.callback == b.callback and a.errback == b.errback


def test_plain_spider_request_round_trips_compactly() -> None:
    spider = Spider()
    req = Request(
        "http://example.org/a%20b?x=1#frag",
        callback=spider.parse,
        errback=spider.failed,
        priority=-4,
        meta={"hops": "LLE", "via": "http://example.org/", "_sunset_checked": True},
    )
    data = encode(req, spider)
    assert data[:1] == b"m"
    _same(req, decode(data, spider))


def test_retried_request_keeps_headers_and_retry_meta() -> None:
    spider = Spider()
    req = Request(
        "http://example.org/",
        callback=spider.parse,
        headers={"User-Agent": "sunset", "Accept": ["a", "b"]},
        meta={"retry_times": 2, "redirect_urls": ["http://example.org/x"], "download_latency": 0.5},
        dont_filter=True,
    )
    _same(req, decode(encode(req, spider), spider))


def test_unusual_requests_fall_back_to_scrapy_serialisation() -> None:
    spider = Spider()
    form = FormRequest("http://example.org/f", formdata={"a": "1"}, callback=spider.parse)
    data = encode(form, spider)
    assert data[:1] == b"p"
    _same(form, decode(data, spider))
    # marshal cannot write a Path; pickle can.
    odd = Request("http://example.org/", meta={"where": Path("/x")}, callback=spider.parse)
    data = encode(odd, spider)
    assert data[:1] == b"p"
    _same(odd, decode(data, spider))


def test_queue_is_fifo_on_disk_and_survives_reopening(tmp_path: Path) -> None:
    spider = Spider()
    crawler = SimpleNamespace(spider=spider)
    q = CompactDiskQueue.from_crawler(crawler, str(tmp_path / "q"))
    urls = [f"http://example.org/{i}" for i in range(50)]
    for u in urls:
        q.push(Request(u, callback=spider.parse))
    assert q.pop().url == urls[0]
    q.close()
    q = CompactDiskQueue.from_crawler(crawler, str(tmp_path / "q"))
    got = []
    while (r := q.pop()) is not None:
        got.append(r.url)
    assert got == urls[1:]
