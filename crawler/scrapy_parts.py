"""The Scrapy components of a capture, each with one job, wired by settings.

- RawHttpDownloadHandler: fetches with crawler.fetch.Client and hands Scrapy a
  normal Response, its body decoded (crawler.decoding, bounded by the body
  limit), while the exact bytes travel with it in request.meta.
- WarcMiddleware (downloader middleware, order 950): the closest component to
  the downloader, so it sees every response before RedirectMiddleware (600)
  follows it: every redirect hop reaches the WARC, and every body as received
  (never the decoded one the spider sees).
- RetryCutShort (940): fetches again a response cut short by time or disconnect.
- ScopeGate (downloader middleware, order 100): robots.txt and the profile's
  patterns for requests the spider did not create itself (redirect targets).
- SessionDupeFilter: de-duplicates on the canonical URL form.
"""

from __future__ import annotations

import ipaddress
import time
from typing import TYPE_CHECKING, Any

from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes

from .decoding import Decoded, decode
from .fetch import INTERRUPTED, FetchError
from .hops import add as hops_add
from .shared import RedisLost
from .urls import REDIRECTS, canonicalize, host_of, invalid, redirect_target
from .warc import WarcWriteError, sha1_b32

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

    from .session import Session

EXCHANGE = "_sunset_exchange"
DECODED = "_sunset_decoded"
CUT_SHORT = "_sunset_cut_short"
ABANDONED = "_sunset_abandoned"  # set on a request whose fetch an interrupt abandoned
CHECKED = "_sunset_checked"
RECORD = "_sunset_record"

_ERRORS = {
    -1: CannotResolveHostError,
    -2: DownloadConnectionRefusedError,
    -4: DownloadTimeoutError,
}


class FetchInterrupted(IgnoreRequest):
    """The fetch was abandoned because the crawl is stopping (SIGINT/SIGTERM).

    An IgnoreRequest, so that no retry is made; logged, never archived, and in
    a shared crawl its lease is kept, to be handed back to the queue.
    """


def session_of(crawler: Crawler) -> Session:
    return crawler.settings["SUNSET_SESSION"]


class RawHttpDownloadHandler:
    lazy = False

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.session = session_of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RawHttpDownloadHandler:
        return cls(crawler)

    async def download_request(self, request: Request) -> Response:
        s = self.session
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, values in request.headers.items()
            for v in values
        ]
        timeout = float(request.meta.get("download_timeout") or s.timeout)
        maxsize = int(request.meta.get("download_maxsize") or s.max_body_size)
        host = slot = None
        if s.shared is not None:
            host = host_of(request.url)
            slot = await self._crawl_wide_slot(host)
        started = time.monotonic()
        try:
            ex = await s.client.fetch(
                request.url, request.method, headers, request.body or b"", timeout, maxsize
            )
        except FetchError as exc:
            request.meta["_sunset_error"] = exc.code
            request.meta["_sunset_duration"] = time.monotonic() - started
            if exc.code == INTERRUPTED:
                request.meta[ABANDONED] = True
                raise FetchInterrupted(str(exc)) from None
            raise _ERRORS.get(exc.code, DownloadFailedError)(str(exc)) from None
        finally:
            if s.shared is not None and host and slot:
                s.shared.free_slot(host, slot)
        request.meta[EXCHANGE] = ex
        # What AutoThrottle reads to adapt the delay to the server's pace;
        # Scrapy's own handler sets it, and without it the delay stays at the start value.
        request.meta["download_latency"] = ex.duration
        resp_headers = Headers()
        for k, v in ex.headers:
            # As bytes, exactly as received: Headers would encode a str as
            # UTF-8, and a non-ASCII Location would be followed as mojibake.
            resp_headers.appendlist(k.encode("latin-1"), v.encode("latin-1"))
        body = ex.content
        codings = [v for k, v in ex.headers if k.lower() == "content-encoding"]
        if codings and request.method != "HEAD":
            # The WARC gets ex.body as received; the spider gets it decoded,
            # up to the body limit, in steps that leave the event loop free.
            decoded = await decode(ex.content, codings, maxsize)
            request.meta[DECODED] = decoded
            body = decoded.body
            del resp_headers["Content-Encoding"]
            if decoded.codings_left:
                resp_headers["Content-Encoding"] = ", ".join(decoded.codings_left)
        cls = responsetypes.from_args(headers=resp_headers, url=request.url, body=body[:4096])
        try:
            ip = ipaddress.ip_address(ex.ip)
        except ValueError:
            ip = None
        flags = ["truncated"] if ex.truncated else []
        return cls(
            url=request.url,
            status=ex.status,
            headers=resp_headers,
            body=body,
            flags=flags,
            request=request,
            ip_address=ip,
            protocol=ex.version,
        )

    async def _crawl_wide_slot(self, host: str) -> str:
        """Wait for one of the host's slots and its delay, across all workers.

        Scrapy's own per-slot limits only see this process; in a shared crawl
        the limits are for the whole crawl, kept in Redis.
        """
        s = self.session
        assert s.shared is not None
        try:
            return await s.shared.take_slot(host, s.per_host, int(s.delay * 1000))
        except RedisLost as exc:
            s.fail(str(exc))
            raise IgnoreRequest(str(exc)) from None

    async def close(self) -> None:
        await self.session.client.close()
        if self.session.shared is not None:
            await self.session.shared.close()


class WarcMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.session = session_of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        s = self.session
        ex = request.meta.pop(EXCHANGE, None)
        # A redirect made from this request must pass the duplicate filter anew.
        request.meta.pop(CHECKED, None)
        if ex is None:  # not fetched by our handler (never expected); nothing to archive
            return response
        notes = []
        digest = None
        revisit = None
        if ex.status == 200 and ex.body and not ex.truncated:
            digest = sha1_b32(ex.body)
            revisit = s.first_capture(digest)
        try:
            resp, _ = s.warcs.write_exchange(ex, revisit_of=revisit)
        except WarcWriteError as exc:
            s.fail(str(exc))
            raise IgnoreRequest(str(exc)) from None
        digest = resp.payload_digest
        if revisit:
            notes.append("revisit")
            s.stats["revisits"] += 1
        elif ex.status == 200 and ex.body and not ex.truncated and digest:
            s.remember_payload(digest, ex.url, resp.date)
        if ex.truncated:
            notes.append(f"truncated:{ex.truncated}")
            s.stats["truncated"] += 1
            request.meta[CUT_SHORT] = ex.truncated
        decoded: Decoded | None = request.meta.pop(DECODED, None)
        if decoded is not None and decoded.truncated:
            notes.append("decoded-truncated")
            s.stats["decoded-truncated"] += 1
        # A body cut short in transit cannot decode to its end; that is not news.
        if decoded is not None and decoded.error and not ex.truncated:
            notes.append("decode-error:" + decoded.error.split(":", 1)[0])
            s.stats["decode-errors"] += 1
        retries = request.meta.get("retry_times")
        if retries:
            notes.append(f"retry:{retries}")
        if ex.reused:
            notes.append("keepalive")
        if ex.misframed:
            notes.append(f"misframed:{ex.misframed}")
            s.stats["misframed"] += 1
        notes += [f"interim:{code}" for code in ex.interim]
        request.meta[RECORD] = (resp.record_id, resp.date)
        ctype = ex.header("content-type")
        mime = ctype.split(";")[0].strip().lower() if ctype else None
        s.stats["responses"] += 1
        s.stats[f"status:{ex.status}"] += 1
        s.stats["bytes"] += len(ex.body)
        s.log(
            ex.status,
            len(ex.body),
            ex.url,
            request.meta.get("hops", ""),
            request.meta.get("via"),
            mime,
            int(ex.duration * 1000),
            digest,
            notes,
        )
        if 300 <= ex.status < 400 and ex.header("location"):
            # RedirectMiddleware builds the next hop's request from this meta:
            # record that it was reached by a redirect, from this URL.
            request.meta["hops"] = hops_add(request.meta.get("hops", ""), "R")
            request.meta["via"] = ex.url
            target = redirect_target(ex.url, ex.header("location") or "")
            if ex.status in REDIRECTS and invalid(target):
                # RedirectMiddleware would raise on it, and the hop would end
                # unlogged; refused here, the 3xx goes on as an answer.
                s.refuse(target, -7, "invalid-url", request.meta["hops"], ex.url)
                request.meta["dont_redirect"] = True
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        request.meta.pop(EXCHANGE, None)
        if isinstance(exception, IgnoreRequest) and not isinstance(exception, FetchInterrupted):
            return None
        code = request.meta.pop("_sunset_error", -7)
        if isinstance(exception, FetchInterrupted):
            notes = ["interrupted"]
            self.session.stats["interrupted"] += 1
        else:
            notes = [type(exception).__name__]
        retries = request.meta.get("retry_times")
        if retries:
            notes.append(f"retry:{retries}")
        s = self.session
        if code != INTERRUPTED:
            s.stats["errors"] += 1
        s.log(
            code,
            None,
            request.url,
            request.meta.get("hops", ""),
            request.meta.get("via"),
            None,
            int(request.meta.pop("_sunset_duration", 0.0) * 1000),
            None,
            notes,
        )
        return None


class RetryCutShort:
    """Fetch again a response cut short by the timeout or an early close.

    Such a body is already archived (marked WARC-Truncated) and logged; the
    cause is often passing (a busy server, a dropped connection, a stalled
    crawler), so it is fetched again, within the same retry budget as errors
    and 5xx answers, as Heritrix does. Only when every attempt came back cut
    short does the spider get the last one. A body cut at the size limit is
    not retried: it would be cut the same way again.
    """

    RETRIED = ("time", "disconnect")

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryCutShort:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        cut = request.meta.pop(CUT_SHORT, None)
        if cut not in self.RETRIED or request.meta.get("dont_retry"):
            return response
        assert self.crawler.spider is not None
        again = get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=f"truncated:{cut}",
            max_retry_times=request.meta.get("max_retry_times"),
        )
        return again or response


class ScopeGate:
    """Robots rules and scope for requests that bypass the spider (redirect hops)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.session = session_of(crawler)
        self.user_agent = crawler.settings.get("USER_AGENT")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ScopeGate:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        s = self.session
        if request.meta.get("robots_txt"):
            if request.meta.get("redirect_times") and not request.url.split("?")[0].endswith(
                "/robots.txt"
            ):
                # A robots.txt redirected to a page (often the home page): no
                # rules there, and fetching it here would claim that page.
                raise IgnoreRequest(f"robots.txt redirected elsewhere: {request.url}")
            return None
        if request.meta.get(CHECKED):
            return None  # a request the spider has just decided on
        hops = request.meta.get("hops", "")
        via = request.meta.get("via")
        if not s.scope.host_allowed(request.url):
            s.stats["offsite"] += 1
            raise IgnoreRequest(f"offsite: {request.url}")
        # The spider's own rules, so a redirect hop is decided as a link to the
        # same URL would be, and as a resumed crawl decides it.
        refusal = s.refusal(
            request.url,
            canonicalize(request.url),
            hops,
            False,
            int(request.meta.get("cal", 0)),
            self.user_agent,
        )
        if refusal:
            s.refuse(request.url, refusal[0], refusal[1], hops, via)
            raise IgnoreRequest(f"{refusal[1]}: {request.url}")
        return None


class SessionDupeFilter:
    """Canonical-URL de-duplication shared with the spider's own bookkeeping."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SessionDupeFilter:
        return cls(session_of(crawler))

    def request_seen(self, request: Request) -> bool:
        if request.meta.get(CHECKED):
            return False  # the spider has just claimed it
        return not self.session.first_time(request.url)

    def open(self) -> None:
        return None

    def close(self, reason: str) -> None:
        return None

    def log(self, request: Request, spider: Any) -> None:
        self.session.stats["duplicates"] += 1
