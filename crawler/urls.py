"""URL canonicalisation, scope and trap guards.

The canonical form is only a de-duplication key: the crawler always requests,
and the WARC always records, the URL exactly as it was found (after the
minimal escaping HTTP needs).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urljoin, urlsplit, urlunsplit

from w3lib.url import safe_url_string

from .hops import trailing

DEFAULT_PORTS = {"http": 80, "https": 443}
# The statuses Scrapy's RedirectMiddleware follows (with a Location).
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Redirects a robots.txt fetch follows (RFC 9309 asks for at least five).
ROBOTS_REDIRECTS = 5
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


_PLAIN = re.compile(r"[A-Za-z0-9\-._~/!$&'()*+,;=:@?]*")


def _normalise_pct(text: str, safe: bytes) -> str:
    """Decode %XX of unreserved characters, upper-case the rest, escape what must be."""
    if "%" not in text and _PLAIN.fullmatch(text) and ("?" not in text or b"?" in safe):
        return text  # nothing to normalise: the common case, kept cheap
    raw = text.encode("utf-8", "surrogateescape")

    def fix(m: re.Match[bytes]) -> bytes:
        byte = int(m.group(1), 16)
        return bytes([byte]) if byte in _UNRESERVED else b"%" + m.group(1).upper()

    raw = _PCT.sub(fix, raw)
    out = bytearray()
    for byte in raw:
        if byte in _UNRESERVED or byte in safe:
            out.append(byte)
        else:
            out.extend(b"%%%02X" % byte)
    return out.decode("ascii")


_PATH_SAFE = b"/!$&'()*+,;=:@%"
_QUERY_SAFE = b"/!$&'()*+,;=:@%?"


@lru_cache(maxsize=4096)
def canonicalize(url: str) -> str:
    """The de-duplication key of a URL.

    Drops the fragment and a default port, lower-cases scheme and host, and
    normalises percent-encoding. Query order and letter case in the path are
    kept: on many servers they change the answer.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = ascii_host((parts.hostname or "").lower().rstrip("."))
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if parts.username is not None:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    if port is not None and port != DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = _normalise_pct(parts.path or "/", _PATH_SAFE)
    query = _normalise_pct(parts.query, _QUERY_SAFE)
    return urlunsplit((scheme, netloc, path, query, ""))


def invalid(url: str) -> bool:
    """True for a URL no HTTP request can be made from (a bad port or IPv6
    literal, no host): refused with a log line, never raised mid-page."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError:
        return True
    return parts.scheme.lower() in DEFAULT_PORTS and not parts.hostname


def redirect_target(url: str, location: str) -> str:
    """Where a redirect from `url` leads, as Scrapy's RedirectMiddleware resolves
    it (`location`: the header's bytes as latin-1; non-ASCII bytes are %-escaped
    as they are, as browsers do). A Location no URL parser accepts is returned
    as sent (invalid() is True for it)."""
    try:
        target = safe_url_string(location.encode("latin-1", "replace"))
        if location.startswith("//"):
            target = urlsplit(url).scheme + "://" + target.lstrip("/")
        return urljoin(url, target)
    except ValueError:
        return location


# A path segment that is an opaque token rather than a name: a long run of
# letters and digits mixed (a session id, a cache key), a UUID, or an ASP.NET
# cookieless session "(S(...))". One inside a path makes every page's links a
# new URL, so such paths are counted per shape, as query variants are.
_TOKEN_SEGMENT = re.compile(
    r"(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{16,}"
    r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
    r"|\([A-Za-z]\(.*\)\)"
)


def path_shape(path: str) -> str | None:
    """The path with its token segments (all but the last) replaced by "*", or
    None when it has none. The last segment is left alone: there a token names
    one document among many (a download, a record), not a session."""
    segments = path.split("/")
    last = len(segments) - 1
    while last > 0 and not segments[last]:
        last -= 1
    shaped = False
    for i in range(1, last):
        if _TOKEN_SEGMENT.fullmatch(segments[i]):
            segments[i] = "*"
            shaped = True
    return "/".join(segments) if shaped else None


def variants_guard(key: str) -> str:
    """The guard named when a counter key is over its cap."""
    return "path-variants" if "/*/" in key or key.endswith("/*") else "query-variants"


@lru_cache(maxsize=4096)
def host_of(url: str) -> str:
    return ascii_host((urlsplit(url).hostname or "").lower().rstrip("."))


def ascii_host(host: str) -> str:
    """A host name as requests carry it: an internationalised name in its
    ASCII (punycode) form, as Scrapy sends it and allowed_hosts must hold it.
    One the IDNA codec refuses is left as it is (its fetch fails, logged)."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@dataclass
class Scope:
    """Which URLs belong to the crawl: allowed hosts plus include/exclude patterns."""

    hosts: frozenset[str]
    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def build(cls, hosts: Iterable[str], include: Iterable[str], exclude: Iterable[str]) -> Scope:
        return cls(
            frozenset(h.lower() for h in hosts),
            tuple(re.compile(p) for p in include),
            tuple(re.compile(p) for p in exclude),
        )

    def host_allowed(self, url: str) -> bool:
        return urlsplit(url).scheme in DEFAULT_PORTS and host_of(url) in self.hosts

    def excluded(self, url: str) -> bool:
        """True when the profile's patterns leave this (in-host) URL out."""
        if self.include and not any(p.search(url) for p in self.include):
            return True
        return any(p.search(url) for p in self.exclude)


@dataclass
class Guards:
    """Crawler-trap guards; each refusal names the guard that fired.

    Memory grows with the number of distinct paths, not with the number of
    URLs, because per-path counters hold counts and a small set only for the
    capped families.
    """

    max_path_depth: int = 12
    max_repeated_segments: int = 3
    max_query_variants: int = 50
    max_calendar_variants: int = 24
    trap_patterns: tuple[re.Pattern[str], ...] = ()
    calendar_patterns: tuple[re.Pattern[str], ...] = ()
    # Longer URLs are refused (with a log line): 2,083 is what browsers and
    # Scrapy have long used, and past it servers answer 414 or truncate.
    max_url_length: int = 2083
    # Redirects in a row before the next hop is refused (RFC 9110 warns of
    # loops past five; browsers give up at about twenty).
    max_redirects: int = 20
    _variants: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _calendar: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @classmethod
    def build(
        cls,
        *,
        max_path_depth: int,
        max_repeated_segments: int,
        max_query_variants: int,
        max_calendar_variants: int,
        trap_patterns: Iterable[str],
        calendar_patterns: Iterable[str],
    ) -> Guards:
        return cls(
            max_path_depth,
            max_repeated_segments,
            max_query_variants,
            max_calendar_variants,
            tuple(re.compile(p) for p in trap_patterns),
            tuple(re.compile(p) for p in calendar_patterns),
        )

    def check(self, canonical: str) -> str | None:
        """Return the name of the guard that refuses this new URL, or None (and count it)."""
        return self.static(canonical) or self.count(canonical)

    def count(self, canonical: str) -> str | None:
        """The capped guards: count the URL against its path's caps, or name the cap it exceeds."""
        counted = self.counted(canonical)
        if counted:
            key, calendar = counted
            if calendar:
                if self._calendar[key] >= self.max_calendar_variants:
                    return "calendar"
                self._calendar[key] += 1
            if self._variants[key] >= self.max_query_variants:
                return variants_guard(key)
            self._variants[key] += 1
        return None

    def static(self, canonical: str) -> str | None:
        """The guards that need no counting: length, depth, repeated segments, trap patterns."""
        if len(canonical) > self.max_url_length:
            return "url-length"
        parts = urlsplit(canonical)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > self.max_path_depth:
            return "path-depth"
        counts: dict[str, int] = defaultdict(int)
        for seg in segments:
            counts[seg.lower()] += 1
            if counts[seg.lower()] > self.max_repeated_segments:
                return "repeated-segments"
        if any(p.search(canonical) for p in self.trap_patterns):
            return "trap-pattern"
        return None

    def redirects(self, hops: str) -> str | None:
        """The guard that refuses one more hop of a redirect chain, or None."""
        return "redirect-hops" if trailing(hops, "R") > self.max_redirects else None

    def counted(self, canonical: str) -> tuple[str, bool] | None:
        """(per-path counter key, is a calendar URL) for a URL with a query or a
        token in its path, else None.

        A shared crawl keeps these counters in Redis (crawler/shared.py) so the
        caps hold for all workers together.
        """
        parts = urlsplit(canonical)
        shape = path_shape(parts.path)
        if not parts.query and shape is None:
            return None
        return f"{parts.netloc}{shape or parts.path}", any(
            p.search(canonical) for p in self.calendar_patterns
        )
