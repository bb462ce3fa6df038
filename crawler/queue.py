"""A disk queue for Scrapy's scheduler that stores requests in a few bytes.

Scrapy's own disk queue pickles ``Request.to_dict()`` for every request, which
costs more per request than fetching one from a fast server. Almost every
request of a capture is a plain GET made by the spider: a URL, two callback
names, a priority and a small meta dict of strings. Those are written with
``marshal`` (fast, and exact for str/bytes/int/None/dict/list). Anything else
(a request with a body, cookies, unusual meta) goes through Scrapy's own
serialisation, so nothing a middleware attaches is ever lost.
"""

from __future__ import annotations

import marshal
import pickle
from typing import TYPE_CHECKING, Any

from queuelib import FifoDiskQueue
from scrapy import Request
from scrapy.utils.request import request_from_dict

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

_COMPACT = b"m"
_SCRAPY = b"p"


def _name(spider: Any, func: Any) -> str | bool | None:
    """The spider method's name, None for no callback, False if not expressible."""
    if func is None:
        return None
    name = getattr(func, "__name__", None)
    if name and getattr(func, "__self__", None) is spider:
        return name
    return False


def encode(request: Request, spider: Any) -> bytes:
    cb = _name(spider, request.callback)
    eb = _name(spider, request.errback)
    if (
        type(request) is Request
        and request.method == "GET"
        and not request.body
        and not request.cookies
        and not request.cb_kwargs
        and cb is not False
        and eb is not False
    ):
        headers = [(k, list(v)) for k, v in request.headers.items()]
        fields = (
            request.url,
            cb,
            eb,
            request.priority,
            request.dont_filter,
            request.meta,
            headers,
            list(request.flags),
            request.encoding,
        )
        try:
            return _COMPACT + marshal.dumps(fields)
        except ValueError:  # a meta value marshal cannot write exactly
            pass
    return _SCRAPY + pickle.dumps(request.to_dict(spider=spider), protocol=4)


def decode(data: bytes, spider: Any) -> Request:
    if data[:1] == _SCRAPY:
        return request_from_dict(pickle.loads(data[1:]), spider=spider)
    url, cb, eb, priority, dont_filter, meta, headers, flags, encoding = marshal.loads(data[1:])
    return Request(
        url,
        callback=getattr(spider, cb) if cb else None,
        errback=getattr(spider, eb) if eb else None,
        priority=priority,
        dont_filter=dont_filter,
        meta=meta,
        headers=headers or None,
        flags=flags,
        encoding=encoding,
    )


class CompactDiskQueue(FifoDiskQueue):
    """FIFO on disk (queuelib), one compact record per request."""

    def __init__(self, crawler: Crawler, key: str) -> None:
        self.spider = crawler.spider
        super().__init__(key)

    @classmethod
    def from_crawler(
        cls, crawler: Crawler, key: str, *args: Any, **kwargs: Any
    ) -> CompactDiskQueue:
        return cls(crawler, key)

    def push(self, request: Request) -> None:  # type: ignore[override]
        super().push(encode(request, self.spider))

    def pop(self) -> Request | None:  # type: ignore[override]
        data = super().pop()
        return decode(data, self.spider) if data else None

    def peek(self) -> Request | None:  # type: ignore[override]
        data = super().peek()
        return decode(data, self.spider) if data else None
