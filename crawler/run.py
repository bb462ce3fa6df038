"""Run a capture: check inputs, wire Scrapy, show progress, index, summarise.

The only entry point other code needs is `run_crawl(options)`; the CLI calls it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import scrapy
import warcio
from scrapy.core.engine import ExecutionEngine
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.settings import default_settings

from sunset import __version__
from sunset.errors import Interrupted, SunsetError
from sunset.profile import ConnectTo, Profile
from sunset.ui import console, summary_table

from .decoding import ACCEPT_ENCODING
from .fetch import Client
from .indexing import LiveIndexer, write_index
from .resume import read_previous, repair
from .seen import CrawlMemory
from .session import Session, seen_key
from .shared import Shared, redacted
from .spider import CaptureSpider
from .urls import Guards, Scope
from .warc import CONFORMS_TO, WarcFiles

NOT_EXACT = (
    "request and response bytes are recorded exactly as sent and received over HTTP/1.1; "
    "not recorded: DNS lookups, TLS handshakes and certificates, and the timing of packets "
    "within a fetch"
)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class CrawlFailed(SunsetError):
    exit_code = 1


@dataclass
class CrawlOptions:
    profile: Profile
    out: Path
    name: str
    resume: bool = False
    connect_to: list[ConnectTo] = field(default_factory=list)
    max_pages: int = 0
    concurrency: int | None = None
    delay: float | None = None
    timeout: float | None = None
    retries: int | None = None
    max_body_size: int | None = None
    warc_max_size: int | None = None
    ignore_robots: bool = False
    progress: bool = True
    redis: str | None = None  # share the crawl with other workers through this Redis
    worker: str | None = None  # this worker's id in a shared crawl (default: allocated)


def _check_out(out: Path, resume: bool, shared: bool = False) -> None:
    if out.exists() and not out.is_dir():
        raise SunsetError(f"--out {out}: exists and is not a folder")
    if shared:
        pass  # other workers write beside this one, each into its own files
    elif resume:
        if not (out / "warc").is_dir():
            raise SunsetError(f"--resume: {out} holds no earlier crawl (no warc/ folder)")
    elif (out / "warc").exists() and any((out / "warc").iterdir()):
        raise SunsetError(
            f"{out} already holds a crawl; add --resume to continue it, or pick another --name/--out"
        )
    try:
        (out / "warc").mkdir(parents=True, exist_ok=True)
        # Per process: workers of a shared crawl check the same folder at once.
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise SunsetError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None


def run_crawl(opt: CrawlOptions) -> int:
    # The crawl installs its own SIGINT/SIGTERM handlers (see _Interrupt) and
    # keeps them to the end, so a second signal is an exit at once wherever it lands.
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        return _run_crawl(opt)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_crawl(opt: CrawlOptions) -> int:
    p = opt.profile
    c = p.crawl
    out = opt.out
    if opt.redis and opt.resume:
        raise SunsetError(
            "--resume with --redis: a shared crawl's frontier is in Redis; start workers "
            "again (without --resume) and they carry on"
        )
    _check_out(out, opt.resume, shared=bool(opt.redis))
    seeds = list(p.site.start_urls)
    for seed in seeds:
        parts = urlsplit(seed)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SunsetError(f"start URL {seed!r} is not an http(s) URL")
    connect = {
        (ct.host.lower(), ct.port): (ct.addr, ct.port2) for ct in [*c.connect_to, *opt.connect_to]
    }

    checks = []
    prev = None
    if opt.resume:
        checks = repair(out / "warc", out / "state" / "set-aside")
        for chk in checks:
            if chk.torn:
                console.print(
                    f"[yellow]{chk.path.name}: {chk.error or 'torn tail'}; kept "
                    f"{chk.records} whole records, original moved to state/set-aside/"
                )
        patterns = [re.compile(p) for p in c.calendar_patterns]
        prev = read_previous(
            out / "warc",
            opt.max_body_size or c.max_body_size,
            seeds,
            lambda canonical: any(p.search(canonical) for p in patterns),
        )

    user_agent = c.user_agent
    settings_record = {
        "profile": str(p.path),
        "start_urls": seeds,
        "allowed_hosts": sorted(p.site.allowed_hosts),
        "obey_robots": c.obey_robots and not opt.ignore_robots,
        "concurrency_per_host": opt.concurrency or c.concurrency_per_host,
        "delay": c.delay if opt.delay is None else opt.delay,
        "autothrottle": c.autothrottle,
        "timeout": opt.timeout or c.timeout,
        "retries": c.retries if opt.retries is None else opt.retries,
        "max_body_size": opt.max_body_size or c.max_body_size,
        "warc_max_size": opt.warc_max_size or c.warc_max_size,
        "max_query_variants": c.max_query_variants,
        "max_calendar_variants": c.max_calendar_variants,
        "max_path_depth": c.max_path_depth,
        "max_repeated_segments": c.max_repeated_segments,
        "max_depth": c.max_depth,
        "connect_to": [f"{h}:{pt}:{a}:{p2}" for (h, pt), (a, p2) in connect.items()],
        "resume": opt.resume,
    }
    info = {
        "software": f"sunset/{__version__} (Scrapy/{scrapy.__version__}; warcio/{warcio_version()}; "
        f"Python/{platform.python_version()})",
        "format": "WARC File Format 1.1",
        "conformsTo": CONFORMS_TO,
        "isPartOf": opt.name,
        "description": p.site.description or p.site.name,
        "robots": "obey" if settings_record["obey_robots"] else "ignore",
        "operator": c.operator or "",
        "hostname": socket.gethostname(),
        "http-header-user-agent": user_agent,
        "http-header-from": c.contact or "",
        "sunset-settings": json.dumps(settings_record, sort_keys=True),
        "sunset-exactness": NOT_EXACT,
    }
    shared = None
    logs_dir = out
    prefix = opt.name
    lock = None
    if opt.redis:
        shared = Shared(opt.redis, opt.name, opt.worker)
        logs_dir = out / "workers" / shared.worker
        fresh = not logs_dir.exists()
        lock = _lock_worker(logs_dir, shared.worker)
        try:
            shared.join(_fingerprint(settings_record))
        except SunsetError:
            # Refused before it wrote anything: no empty worker folder is left
            # for --finish to find. Removed while the lock is still held, so a
            # worker starting with the same id cannot lock a file then deleted.
            if fresh:
                with contextlib.suppress(OSError):
                    (logs_dir / "lock").unlink()
                    logs_dir.rmdir()
            lock.close()
            raise
        try:
            (logs_dir / "running").write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise SunsetError(f"cannot write {logs_dir}: {exc.strerror or exc}") from None
        prefix = f"{opt.name}-{shared.worker}"
        info["sunset-worker"] = shared.worker
        settings_record["redis"] = redacted(opt.redis)
        settings_record["worker"] = shared.worker
    warcs = WarcFiles(
        out / "warc",
        prefix,
        settings_record["warc_max_size"],
        info,
        first_serial=(prev.max_serial + 1) if prev else 0,
    )
    live = None
    if shared is None:
        # --finish indexes a shared crawl, after it has checked every worker's files.
        LiveIndexer.clear_stale(out / "indexes")
        live = LiveIndexer(out / "indexes")
        warcs.on_open = live.follow
    session = Session(
        folder=logs_dir,
        warcs=warcs,
        client=Client(connect_to=connect),
        scope=Scope.build(p.site.allowed_hosts, p.site.include, p.site.exclude),
        guards=Guards.build(
            max_path_depth=c.max_path_depth,
            max_repeated_segments=c.max_repeated_segments,
            max_query_variants=c.max_query_variants,
            max_calendar_variants=c.max_calendar_variants,
            trap_patterns=c.trap_patterns,
            calendar_patterns=c.calendar_patterns,
        ),
        obey_robots=settings_record["obey_robots"],
        max_depth=c.max_depth,
        max_pages=opt.max_pages,
        timeout=settings_record["timeout"],
        max_body_size=settings_record["max_body_size"],
        use_sitemap=c.use_sitemap,
        seeds=seeds,
        shared=shared,
        per_host=settings_record["concurrency_per_host"],
        delay=settings_record["delay"],
        memory=CrawlMemory(logs_dir / "state" / "memory.sqlite"),
    )
    frontier: list[dict[str, str]] = []
    if prev:
        session.seen.update(seen_key(k) for k in prev.captured)
        for key in sorted(prev.captured):
            session.guards.check(key)  # count what is already captured against the caps
        for digest, (url, date) in prev.revisits.items():
            session.remember_payload(digest, url, date)
        for host, body in prev.robots.items():
            session.load_robots(host, body)
            session.robots_policy[host] = f"earlier-run:{prev.robots_policy.get(host, 'robots-ok')}"
        frontier = prev.frontier
    session.open_logs()
    hosts = len(p.site.allowed_hosts)
    per_host = settings_record["concurrency_per_host"]
    if shared is None:
        # Left by a run that exited at once (a second Ctrl-C, a kill): never read again.
        for stale in (out / "state").glob("jobdir-*"):
            shutil.rmtree(stale, ignore_errors=True)
    jobdir = out / "state" / f"jobdir-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
    settings = {
        "SUNSET_SESSION": session,
        "USER_AGENT": user_agent,
        "ROBOTSTXT_OBEY": False,  # robots.txt is fetched, archived and applied by the spider
        "DOWNLOAD_HANDLERS": {
            "http": "crawler.scrapy_parts.RawHttpDownloadHandler",
            "https": "crawler.scrapy_parts.RawHttpDownloadHandler",
        },
        # Accept-Encoding as Scrapy's compression middleware sent it; that
        # middleware is replaced by bounded decoding in the download handler.
        "DEFAULT_REQUEST_HEADERS": {
            **default_settings.DEFAULT_REQUEST_HEADERS,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.scrapy_parts.ScopeGate": 100,
            "crawler.scrapy_parts.RetryCutShort": 940,
            "crawler.scrapy_parts.WarcMiddleware": 950,
            "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware": None,
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            # Not needed by a capture, and each costs time on every response:
            # the handler applies timeouts, the spider extracts meta refresh
            # links itself (as R hops), and session stats count bytes.
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware": None,
            "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
            "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
            "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
            "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
        },
        "SPIDER_MIDDLEWARES": {
            # Breadth-first order comes from the spider's own hop count.
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
            # It drops long URLs without a crawl.log line; the spider's
            # url-length guard refuses them, logged, live and on resume alike.
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
        },
        "DUPEFILTER_CLASS": "crawler.scrapy_parts.SessionDupeFilter",
        "CONCURRENT_REQUESTS": max(16, per_host * hosts),
        "CONCURRENT_REQUESTS_PER_DOMAIN": per_host,
        "DOWNLOAD_DELAY": settings_record["delay"],
        "AUTOTHROTTLE_ENABLED": c.autothrottle,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(per_host),
        # Scrapy starts at 5 s whatever the profile says; start at the
        # profile's delay and let the measured latency move it from there.
        "AUTOTHROTTLE_START_DELAY": settings_record["delay"],
        "RETRY_TIMES": settings_record["retries"],
        "DOWNLOAD_TIMEOUT": settings_record["timeout"],
        # The handler enforces the body limit itself (and keeps what it cut),
        # and stops decoding a compressed body at the same limit.
        "DOWNLOAD_MAXSIZE": settings_record["max_body_size"],
        "DOWNLOAD_WARNSIZE": 0,
        # One past the redirect guard, so the hop it refuses reaches the
        # ScopeGate and is logged instead of being dropped by Scrapy unsaid.
        "REDIRECT_MAX_TIMES": session.guards.max_redirects + 1,
        # Breadth-first, with the pending queue on disk so memory stays flat.
        "SCHEDULER_DISK_QUEUE": "crawler.queue.CompactDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "JOBDIR": str(jobdir),
        "LOG_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # The spider yields a few requests per page and no items; Scrapy's
        # default of 100 parallel output workers costs 100 tasks per response.
        "CONCURRENT_ITEMS": 4,
        # Otherwise Scrapy re-reads the callback's source on every response.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        # Scrapy's own resume state is not used (see crawler/resume.py), and it
        # would write after a disk-full stop.
        "EXTENSIONS": {"scrapy.extensions.spiderstate.SpiderState": None},
        "STATS_DUMP": False,
    }
    settings["LOG_INSTALL_ROOT_HANDLER"] = False
    if shared is not None:
        # scrapy-redis's scheduler over the shared queue (crawler/redis_parts.py);
        # the crawl-wide delay is kept by the download handler, not per process.
        settings["SCHEDULER"] = "crawler.redis_parts.LeasedScheduler"
        settings["DOWNLOAD_DELAY"] = 0
        for key in ("JOBDIR", "SCHEDULER_DISK_QUEUE", "SCHEDULER_MEMORY_QUEUE"):
            settings.pop(key)
        # An idle worker looks for work others queued every 0.2 s instead of
        # Scrapy's 5 s heartbeat: with several workers the queue runs dry often.
        ExecutionEngine._SLOT_HEARTBEAT_INTERVAL = 0.2
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(CaptureSpider)
    closing: list[asyncio.Future[None]] = []

    def stop() -> None:
        if crawler.engine is not None:
            closing.append(
                asyncio.ensure_future(crawler.engine.close_spider_async(reason="write-failed"))
            )

    session.stop = stop
    interrupt = _Interrupt(session, crawler, warcs, resumable=shared is None)
    for sig in STOP_SIGNALS:
        signal.signal(sig, interrupt.on_signal)
    started = time.monotonic()
    stop_progress = threading.Event()
    ticker = threading.Thread(
        target=_progress,
        args=(session, crawler, stop_progress, started, opt.progress),
        daemon=True,
    )
    ticker.start()
    try:
        process.crawl(crawler, session=session, user_agent=user_agent, frontier=frontier)
        # Scrapy's own handlers wait for every download in flight on the first
        # SIGINT (an endless one for ever) and stop the reactor on the second
        # without recording why; _Interrupt does both properly.
        process.start(install_signal_handlers=False)
    except BaseException:
        if live is not None:
            live.close()  # no index is made of a crawl that raised; no child is left
        raise
    finally:
        stop_progress.set()
        ticker.join(timeout=2)
        try:
            warcs.close()
        except OSError as exc:
            session.fatal = session.fatal or f"cannot finish the WARC file: {exc.strerror or exc}"
        session.close_logs()
        session.memory.close()
        shutil.rmtree(jobdir, ignore_errors=True)
        if shared is not None:
            shared.leave()
        if lock is not None:
            lock.close()
    elapsed = time.monotonic() - started
    session.stats.update(session.client.events)
    files = [Path(w) for w in warcs.files]
    if live is not None:
        files = sorted((out / "warc").glob("*.warc.gz"))
        try:
            write_index(files, out / "indexes" / "index.cdxj", live.finish(warcs.cut))
        except OSError as exc:
            # The WARCs are complete; the index can be rebuilt from them later.
            session.fatal = session.fatal or f"cannot write the CDXJ index: {exc.strerror or exc}"
        finally:
            live.close()
    st = session.stats
    summary = {
        "name": opt.name,
        "profile": str(p.path),
        "sunset": __version__,
        "finished": datetime.now(UTC).isoformat(),
        "seconds": round(elapsed, 2),
        "resumed": opt.resume,
        "stats": dict(sorted(st.items())),
        "warc_files": [f.name for f in files],
        "settings": settings_record,
        "fatal": session.fatal,
        "robots": dict(sorted(session.robots_policy.items())),
        "reason": crawler.stats.get_value("finish_reason") if crawler.stats else None,
    }
    if interrupt.signum is not None:
        summary["reason"] = "interrupted"
        summary["signal"] = signal.Signals(interrupt.signum).name
    if shared is not None:
        summary["worker"] = shared.worker
        summary["reclaimed_from_lost_workers"] = shared.reclaimed
    try:
        (logs_dir / "crawl.json").write_text(json.dumps(summary, indent=2) + "\n")
        if shared is not None:
            # A worker id can run again (after Redis was lost): --finish adds up every run.
            with open(logs_dir / "runs.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(summary) + "\n")
            (logs_dir / "running").unlink(missing_ok=True)
    except OSError as exc:
        session.fatal = session.fatal or f"cannot write crawl.json: {exc.strerror or exc}"
    refused = sum(v for k, v in st.items() if k.startswith("refused:"))
    summary_table(
        f"crawl {opt.name} — {out}" + (f" — worker {shared.worker}" if shared else ""),
        [
            ("HTML pages", st["pages"]),
            ("responses archived", st["responses"]),
            ("  of which revisits", st["revisits"]),
            ("  truncated", st["truncated"]),
            ("fetch errors (all attempts)", st["errors"]),
            ("refused (guards, robots, excluded)", refused),
            ("bytes received", st["bytes"]),
            ("WARC files", len(files)),
            ("seconds", round(elapsed, 1)),
            ("pages/s", round(st["pages"] / elapsed, 1) if elapsed else 0),
        ],
    )
    if session.fatal:
        again = "; start the workers again once Redis is back" if shared and shared.lost else ""
        raise CrawlFailed(
            f"crawl stopped: {session.fatal}; what was written is kept and valid{again}"
        )
    if interrupt.signum is not None:
        name = signal.Signals(interrupt.signum).name
        again = (
            "start the worker again to carry on"
            if shared is not None
            else "run the same command with --resume to finish it"
        )
        raise Interrupted(
            f"crawl stopped by {name}; what was written is kept and valid; {again}",
            exit_code=128 + interrupt.signum,
        )
    if shared is not None:
        console.print(
            f"worker {shared.worker} done; when every worker has stopped, run "
            f"`sunset crawl --finish --out {out}` to index and merge the crawl"
        )
        return 0
    if st["responses"] == 0 and not (prev and prev.responses):
        raise CrawlFailed(f"nothing was captured: {_first_error(out)}")
    for host, policy in sorted(session.robots_policy.items()):
        if policy.endswith(":disallow-all"):
            console.print(
                f"[yellow]robots.txt of {host} could not be read in full ({policy}): "
                "RFC 9309 says to assume everything is disallowed, so nothing else there "
                "was fetched; --ignore-robots crawls it anyway"
            )
    return 0


class _Interrupt:
    """SIGINT/SIGTERM: the first stops the crawl in good order, a second at once.

    The first abandons the fetches in flight (logged as interrupted, not
    archived, so a resume fetches them), closes the spider and lets the run
    end as usual: WARC files closed, index and crawl.json written, exit
    128 + the signal. A second exits at once, closing the WARC file first if
    it ends on a whole record (otherwise it stays `.open`, and a resume cuts
    it back to its last whole record).
    """

    def __init__(
        self, session: Session, crawler: Crawler, warcs: WarcFiles, resumable: bool
    ) -> None:
        self.session = session
        self.crawler = crawler
        self.warcs = warcs
        self.resumable = resumable
        self.signum: int | None = None
        self.closing: list[asyncio.Future[None]] = []

    def on_signal(self, signum: int, frame: object) -> None:
        # Runs in the main thread between two bytecodes of whatever it was doing.
        if self.signum is not None:
            self.exit_now()
        self.signum = signum
        from twisted.internet import reactor

        reactor.callFromThread(self.stop)  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.session.client.interrupt()
        self.closing.append(asyncio.ensure_future(self._close_spider()))
        name = signal.Signals(self.signum or signal.SIGINT).name
        later = "left for --resume" if self.resumable else "left to be fetched again"
        with contextlib.suppress(OSError, ValueError):  # no terminal left to tell
            sys.stderr.write(
                f"\nsunset: interrupted ({name}): stopping; fetches in flight are {later} "
                f"(send it again to quit at once)\n"
            )
            sys.stderr.flush()

    async def _close_spider(self) -> None:
        # The engine may not be running yet (a signal during start-up);
        # meanwhile every fetch is refused, so the crawl cannot get far.
        while True:
            engine = self.crawler.engine
            if engine is not None and engine.spider is not None:
                try:
                    await engine.close_spider_async(reason="interrupted")
                    return
                except RuntimeError:
                    pass
            await asyncio.sleep(0.1)

    def exit_now(self) -> None:
        closed = False
        with contextlib.suppress(Exception):
            closed = self.warcs.close_if_whole()
        left = "" if closed else "; the last WARC file is left .open, and --resume repairs it"
        with contextlib.suppress(OSError):
            os.write(2, f"\nsunset: interrupted again: stopped at once{left}\n".encode())
        os._exit(128 + (self.signum or signal.SIGINT))


def _fingerprint(settings: dict[str, object]) -> str:
    """What every worker of one shared crawl must agree on: what to capture and how to guard."""
    keys = (
        "start_urls",
        "allowed_hosts",
        "obey_robots",
        "max_query_variants",
        "max_calendar_variants",
        "max_path_depth",
        "max_repeated_segments",
        "max_depth",
    )
    text = json.dumps({k: settings.get(k) for k in keys}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _lock_worker(folder: Path, worker: str) -> IO[str]:
    """Hold workers/<id>/lock for the worker's lifetime; `--finish` refuses while one is held."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fh = open(folder / "lock", "a+")  # noqa: SIM115
    except OSError as exc:
        raise SunsetError(f"cannot write {folder}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise SunsetError(f"worker {worker} is already running in {folder.parent.parent}") from None
    with contextlib.suppress(OSError):
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
    return fh


def warcio_version() -> str:
    try:
        from importlib.metadata import version

        return version("warcio")
    except Exception:
        return getattr(warcio, "__version__", "?")


def _first_error(out: Path) -> str:
    try:
        with open(out / "crawl.log", encoding="utf-8") as fh:
            for line in fh:
                bits = line.split()
                if len(bits) >= 10 and bits[1].startswith("-"):
                    reasons = {
                        "-1": "cannot resolve host",
                        "-2": "connection refused",
                        "-3": "connection reset",
                        "-4": "timed out",
                        "-6": "TLS failure",
                    }
                    return f"{bits[3]}: {reasons.get(bits[1], 'download failed')}"
    except OSError:
        pass
    return "no start URL answered"


def _progress(
    session: Session, crawler: object, stop: threading.Event, started: float, enabled: bool
) -> None:
    tty = enabled and sys.stderr.isatty()
    last_line = time.monotonic()  # without a terminal, a line every 10 s, none for short runs
    while not stop.wait(0.5):
        st = session.stats
        stats = getattr(crawler, "stats", None)
        queued = 0
        if session.shared is not None:
            with contextlib.suppress(Exception):
                queued = session.shared.client.zcard(session.shared.queue_key)
        elif stats is not None:
            queued = (stats.get_value("scheduler/enqueued") or 0) - (
                stats.get_value("scheduler/dequeued") or 0
            )
        elapsed = time.monotonic() - started
        line = (
            f"pages {st['pages']:,}  responses {st['responses']:,}  "
            f"{st['bytes'] / 1e6:,.1f} MB  queue {max(queued, 0):,}  errors {st['errors']:,}  "
            f"{st['responses'] / elapsed if elapsed else 0:,.0f}/s"
        )
        if tty:
            sys.stderr.write("\r" + line + "\x1b[K")
            sys.stderr.flush()
        elif enabled and time.monotonic() - last_line >= 10:
            sys.stderr.write(line + "\n")
            last_line = time.monotonic()
    if tty:
        sys.stderr.write("\n")
