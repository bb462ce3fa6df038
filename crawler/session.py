"""State shared by the components of one crawl: logs, scope, guards, robots, revisits.

Scrapy wires the components (download handler, WARC middleware, spider); this
object is what they have in common, handed to each through the crawler
settings so that none reaches into another's internals.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from protego import Protego

from .fetch import Client
from .hops import links as hops_links
from .seen import CrawlMemory, _Keys, _Payloads
from .shared import RedisLost, Shared
from .urls import Guards, Scope, canonicalize, host_of
from .warc import WarcFiles


def _digest_key(digest: str) -> bytes:
    algo, _, value = digest.partition(":")
    try:
        return base64.b32decode(value) if algo == "sha1" else digest.encode()
    except ValueError:
        return digest.encode()


def seen_key(canonical: str) -> bytes:
    return hashlib.blake2b(canonical.encode("utf-8", "surrogatepass"), digest_size=12).digest()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Characters that would split a crawl.log field (str.split() splits on every
# Unicode space) or a line: escaped as %XX of their UTF-8 bytes.
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f\x85\u2028\u2029]")


def _escape(m: re.Match[str]) -> str:
    return "".join(f"%{b:02X}" for b in m.group().encode("utf-8", "surrogatepass"))


def _field(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    return _UNSAFE.sub(_escape, text)


# What robots.txt rules stand for when none can be read (RFC 9309 2.3.1):
# a server or network error means "assume complete disallow"; a 4xx means
# there are no rules. The policy is applied as rules so that every mode of the
# crawl (a shared crawl publishes them to the other workers) decides alike.
DISALLOW_ALL = b"User-agent: *\nDisallow: /\n"
# RFC 9309 2.5 asks for at least 500 KiB to be parsed, and Google ignores the
# rest; an archive of a site keeps to all of its owner's rules, so this only
# bounds memory against a file that never ends.
ROBOTS_PARSE_LIMIT = 8 * 1024 * 1024


def robots_rules(status: int | None, body: bytes | None, truncated: bool) -> tuple[bytes, str]:
    """(rules to apply, policy note for the log) for a robots.txt fetch outcome.

    status None: no response at all (connection failed or timed out after the retries).
    """
    if status is None:
        return DISALLOW_ALL, "robots-unreachable:disallow-all"
    if 200 <= status < 300:
        body = body or b""
        if truncated and len(body) < ROBOTS_PARSE_LIMIT:
            return DISALLOW_ALL, "robots-incomplete:disallow-all"
        return body[:ROBOTS_PARSE_LIMIT], "robots-ok"
    if 400 <= status < 500:
        return b"", "robots-unavailable:allow-all"
    # 5xx after the retries, or a redirect chain that never ended in an answer.
    if 300 <= status < 400:
        return b"", "robots-redirects:allow-all"
    return DISALLOW_ALL, "robots-unreachable:disallow-all"


@dataclass
class Session:
    folder: Path
    warcs: WarcFiles
    client: Client
    scope: Scope
    guards: Guards
    obey_robots: bool
    max_depth: int
    max_pages: int
    timeout: float
    max_body_size: int
    use_sitemap: bool
    seeds: list[str]
    robots: dict[str, Protego | None] = field(default_factory=dict)
    # How each host's rules were decided (robots-ok, robots-unreachable:disallow-all, ...).
    robots_policy: dict[str, str] = field(default_factory=dict)
    robots_rules: dict[str, bytes] = field(default_factory=dict)  # as applied
    # Canonical URLs already captured or queued (as 12-byte digests, a
    # collision chance near 1e-19 per pair), and payload digest (raw 20 bytes)
    # -> "WARC-Date URL" of its first capture; on disk, so memory stays flat.
    memory: CrawlMemory = field(default_factory=lambda: CrawlMemory(None))
    stats: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    fatal: str | None = None
    stop: Callable[[], None] | None = None  # set by the runner: ends the crawl early
    # Set when several workers share the crawl through Redis (crawler/shared.py),
    # with the politeness limits they must keep together.
    shared: Shared | None = None
    per_host: int = 8
    delay: float = 0.0
    _log: IO[str] | None = None
    _pages: IO[str] | None = None

    @property
    def seen(self) -> _Keys:
        return self.memory.seen

    @property
    def revisits(self) -> _Payloads:
        return self.memory.payloads

    def __deepcopy__(self, memo: dict[int, object]) -> Session:
        # Scrapy deep-copies its settings; the session is a shared handle, not a value.
        return self

    def open_logs(self) -> None:
        self._log = open(self.folder / "crawl.log", "a", encoding="utf-8")  # noqa: SIM115
        self._pages = open(self.folder / "pages.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def close_logs(self) -> None:
        for fh in (self._log, self._pages):
            if fh:
                try:
                    fh.close()
                except OSError as exc:  # the last buffered line could not be written
                    self.fatal = self.fatal or f"cannot write logs: {exc.strerror or exc}"

    def log(
        self,
        status: int,
        size: int | None,
        url: str,
        hops: str,
        via: str | None,
        mime: str | None,
        duration_ms: int,
        digest: str | None,
        notes: list[str],
    ) -> None:
        """One crawl.log line, in the field order crawler/CONTRACT.md documents."""
        assert self._log is not None
        if self.shared is not None:
            notes = [*notes, f"worker:{self.shared.worker}"]
        line = " ".join(
            [
                now_iso(),
                f"{status:>5}",
                _field(size),
                _field(url),
                _field(hops or "-"),
                _field(via),
                _field(mime),
                str(duration_ms),
                _field(digest),
                _field(",".join(notes) or None),
            ]
        )
        try:
            self._log.write(line + "\n")
            self._log.flush()
        except OSError as exc:
            self.fail(f"cannot write crawl.log: {exc.strerror or exc}")

    def page(self, url: str, ts: str, title: str, status: int) -> None:
        assert self._pages is not None
        try:
            self._pages.write(
                json.dumps(
                    {"url": url, "ts": ts, "title": title, "status": status}, ensure_ascii=False
                )
                + "\n"
            )
            self._pages.flush()
        except OSError as exc:
            self.fail(f"cannot write pages.jsonl: {exc.strerror or exc}")

    def fail(self, message: str) -> None:
        """Nothing more can be archived (a full disk): stop, keeping what is written."""
        if self.fatal is None:
            self.fatal = message
            if self.stop is not None:
                self.stop()

    def refuse(self, url: str, code: int, note: str, hops: str, via: str | None) -> None:
        self.stats[f"refused:{note}"] += 1
        self.log(code, None, url, hops, via, None, 0, None, [note])

    # -- robots

    def allowed_by_robots(self, url: str, user_agent: str) -> bool:
        if not self.obey_robots:
            return True
        rules = self.robots.get(host_of(url))
        return rules is None or rules.can_fetch(url, user_agent)

    def load_robots(self, host: str, body: bytes | None) -> None:
        """Apply robots rules for a host (b"" or None: no rules, everything allowed)."""
        # utf-8-sig: a leading byte order mark would hide the first line (often
        # the only User-agent line), and with it every rule of the file.
        self.robots[host] = (
            Protego.parse(body[:ROBOTS_PARSE_LIMIT].decode("utf-8-sig", "replace"))
            if body
            else None
        )

    # -- what to refuse

    def calendar_depth(self, canonical: str, parent: int) -> int:
        """Steps along a chain of calendar links (0: not a calendar URL).

        The calendar cap counts per path and so depends on the order pages are
        fetched: a walk one way (the endless future) can use it all while the
        other way (the real past months) waits, as it does when a shared
        crawl's worker dies holding that page. Capping each chain at half the
        cap (less one for the page the walk started from) keeps both ways.
        """
        if not any(p.search(canonical) for p in self.guards.calendar_patterns):
            return 0
        return parent + 1

    def calendar_chain_cap(self) -> int:
        return max(1, (self.guards.max_calendar_variants - 1) // 2)

    def refusal(
        self, url: str, canonical: str, hops: str, seed: bool, cal: int, user_agent: str
    ) -> tuple[int, str] | None:
        """(crawl-log code, note) if a rule that needs no counting refuses the URL.

        One decision for every way a URL arrives: a link (follow), a shared
        crawl's plan, a redirect hop (ScopeGate) and a resumed frontier. The
        counted caps come after, locally (follow) or in Redis (a shared crawl).
        """
        if self.scope.excluded(url):
            return (-5001, "excluded")
        if self.max_depth and hops_links(hops) > self.max_depth:
            return (-5000, "guard:max-depth")
        if guard := self.guards.redirects(hops):
            return (-5000, f"guard:{guard}")
        if not seed and cal > self.calendar_chain_cap():
            return (-5000, "guard:calendar")
        if not seed and (guard := self.guards.static(canonical)):
            return (-5000, f"guard:{guard}")
        if not self.allowed_by_robots(url, user_agent):
            return (-9998, "robots")
        return None

    def first_time(self, url: str) -> bool:
        """True the first time a URL (by canonical form) is offered for capture."""
        return self.claim(canonicalize(url))

    def first_capture(self, digest: str) -> tuple[str, str] | None:
        """(URL, WARC-Date) of the first capture with this payload digest, if any."""
        key = _digest_key(digest)
        try:
            hit = self.revisits.get(key)
        except sqlite3.Error as exc:
            self.fail(f"cannot read the crawl's state: {exc}")
            return None  # a full record is always a safe choice
        if hit is None and self.shared is not None:
            try:
                hit = self.shared.first_capture(key)
            except RedisLost as exc:
                self.fail(str(exc))
                return None  # a full record is always a safe choice
            if hit is not None:
                with contextlib.suppress(sqlite3.Error):  # only a cache of Redis's answer
                    self.revisits[key] = hit
        if hit is None:
            return None
        date, _, url = hit.partition(" ")
        return url, date

    def remember_payload(self, digest: str, url: str, date: str) -> None:
        key = _digest_key(digest)
        try:
            value = self.revisits.setdefault(key, f"{date} {url}")
        except sqlite3.Error as exc:
            self.fail(f"cannot write the crawl's state: {exc}")
            return
        if self.shared is not None:
            # Only after the record is written: another worker's revisit may
            # then refer to it, and it must exist.
            try:
                self.shared.remember_payload(key, value)
            except RedisLost as exc:
                self.fail(str(exc))

    def claim(self, canonical: str) -> bool:
        """Mark a canonical URL as taken; False if it already was."""
        return self.claim_key(seen_key(canonical))

    def claim_key(self, key: bytes) -> bool:
        try:
            return self.seen.add_new(key)
        except sqlite3.Error as exc:  # a full disk under state/
            self.fail(f"cannot write the crawl's state: {exc}")
            return False
