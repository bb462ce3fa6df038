"""The nginx files that answer every legacy URL with one 301 (or 410).

Point the legacy host names at a server whose ``http {}`` block includes
``redirects.conf`` and every old URL answers from three maps, tried in order:

``redirects.map`` (exact)
    keyed by ``$request_uri``, the request target exactly as the client sent
    it: ``/index.php?option=com_content&view=article&id=600&Itemid=282``.
    Non-ASCII characters in a captured URL are written percent-encoded as
    UTF-8, the way browsers send them; a fragment is dropped (never sent).
``redirects-canonical.map`` (canonical)
    keyed by ``"$uri?" + "&".join(f"{name}=$arg_{name}")`` over the profile's
    significant query parameters, in profile order:
    ``/index.php?option=com_content&view=article&id=600&start=&limitstart=&showall=``.
    It catches what nobody crawled: tracking parameters, another ``Itemid``,
    another parameter order.
``redirects-paths.map`` (path)
    keyed by ``$uri`` alone (``/index.php``, ``/news/``), with and without
    the trailing slash; catches ``?start=99`` and any query on a known path.

``$uri`` is nginx's normalised path: percent-decoded, slashes merged, ``.``
and ``..`` resolved (:func:`parse_target` follows ngx_http_parse_complex_uri
step by step); ``$arg_name`` is the raw, undecoded value of the first
``name=`` argument, name matched ignoring case. Where several legacy URLs
share a canonical or path key, the key gets an entry only when the URLs
that decide it agree (see :class:`RedirectPlan`); otherwise that key is left
out and the exact keys still answer the crawled URLs.

A URL no map knows is sent to the archive's copy (``Site.fallback_prefix``
followed by ``$request_uri``) or, with no archive, to the new home page.

Map values are the target URL, or ``410 <target, HTML-escaped>`` for a page
that is gone: nginx answers those 410 with a short HTML page linking the
archived copy.

Everything in a key or target came from a crawl, so nothing is written
unchecked: targets are normalised to percent-encoded ASCII and must be http(s)
URLs on an allowed host (these writers are the last gate against an open
redirect); keys no request line can carry, or nginx would answer 400, are left
out. Each is returned as a :class:`Refused` with a one-line reason.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from sunset.errors import SunsetError
from sunset.nginx import MAX_TOKEN, map_key_bytes, map_value, quote
from sunset.paths import replacing

from .forms import NginxForms
from .model import GONE, MOVED, Collision, Refused, Row, Site
from .store import Buffer, create, open_scratch

EXACT_MAP = "redirects.map"
CANONICAL_MAP = "redirects-canonical.map"
PATHS_MAP = "redirects-paths.map"
CONF = "redirects.conf"
MAP_FILES = {"request_uri": EXACT_MAP, "canonical": CANONICAL_MAP, "path": PATHS_MAP}
# The first line of redirects.conf after this prefix is the JSON that
# `sunset redirects check` rebuilds the config from.
SETTINGS_PREFIX = "# sunset-settings: "
POINTER = 8  # sizeof(void *) on 64-bit; a 32-bit nginx needs less, never more
GONE_PREFIX = "410 "
# robots.txt is answered by the server block itself (see render_conf): every
# old URL may be fetched, so crawlers see its 301 and move their index.
ROBOTS_TXT = b"/robots.txt"
ROBOTS_BODY = "User-agent: *\nDisallow:\n"
# nginx reads "\n" in a quoted string as a line break; quote() refuses one.
_ROBOTS_TOKEN = '"' + ROBOTS_BODY.replace("\n", "\\n") + '"'

# Characters left as they are in a target; everything else is percent-encoded.
# Excludes what nginx or HTML would read specially: $ " ' \ < > ` { } | ^ and space.
_TARGET_SAFE = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!&()*+,;=:@/?"
)
_HEX = frozenset("0123456789abcdefABCDEF")
_ALREADY_SAFE = re.compile(
    r"(?:[A-Za-z0-9\-._~!&()*+,;=:@/?]|%[0-9A-F]{2})*(?:#(?:[A-Za-z0-9\-._~!&()*+,;=:@/?]|%[0-9A-F]{2})*)?"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://([^/?#\\]*)(.*)", re.DOTALL)
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::([0-9]{1,5}))?")
_HOSTNAME = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?|\[[0-9a-f:.]+\]")
_PARAM = re.compile(r"[A-Za-z0-9_]+")
_LISTEN = re.compile(r"[A-Za-z0-9_.:\[\]= -]+")


class TargetError(ValueError):
    """A target URL that cannot be written; the message is the one-line reason."""


# -- targets -----------------------------------------------------------------


def _host(authority: str) -> tuple[str, str]:
    """(lowercased ASCII host, port) of an authority, or TargetError."""
    if "@" in authority:
        raise TargetError("has user info (user@host), which hides the real host")
    m = _HOST_PORT.fullmatch(authority)
    if not m or not m.group(1):
        raise TargetError(f"has no valid host in {authority[:60]!r}")
    host, port = m.group(1).lower().rstrip("."), m.group(2) or ""
    if port and not 0 < int(port) < 65536:
        raise TargetError(f"has an invalid port {port}")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise TargetError(f"has a host that is not a valid name: {host[:60]!r}") from None
    if not _HOSTNAME.fullmatch(host) or host.startswith("*"):
        raise TargetError(f"has a host that is not a valid name: {host[:60]!r}")
    return host, port


def _encode(rest: str) -> str:
    if _ALREADY_SAFE.fullmatch(rest):
        return rest
    out: list[str] = []
    fragment = False
    i = 0
    while i < len(rest):
        c = rest[i]
        if c in _TARGET_SAFE:
            out.append(c)
        elif c == "%" and rest[i + 1 : i + 3] and set(rest[i + 1 : i + 3]) <= _HEX:
            out.append(rest[i : i + 3].upper())
            i += 3
            continue
        elif c == "#" and not fragment:
            fragment = True
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def normalise_target(url: str, allowed_hosts: Iterable[str], *, prefix: bool = False) -> str:
    """``url`` as safe, percent-encoded ASCII, or TargetError saying why not.

    The result holds no character nginx, Apache or HTML would read specially
    (``$`` becomes ``%24``, a space ``%20``...). It must be an absolute http(s)
    URL whose host is in ``allowed_hosts``. With ``prefix`` (a fallback prefix
    to which the request target is appended) an empty path stays empty.
    """
    text = url.strip(" ")
    if _CONTROL.search(text):
        raise TargetError("contains a control character or line break")
    m = _URL.fullmatch(text)
    if not m:
        raise TargetError("is not an absolute http(s) URL")
    scheme, authority, rest = m.group(1).lower(), m.group(2), m.group(3)
    if scheme not in ("http", "https"):
        raise TargetError(f"is a {scheme}: URL, not http(s)")
    host, port = _host(authority)
    allowed = {h.lower().rstrip(".") for h in allowed_hosts}
    if host not in allowed:
        raise TargetError(f"host {host} is not an allowed target host")
    if not prefix and (not rest or rest[0] != "/"):
        # A backslash or nothing after the host: browsers read both as a path.
        rest = "/" + rest
    result = f"{scheme}://{host}{':' + port if port else ''}{_encode(rest)}"
    # An HTML escape makes a character at most six.
    if len(result) * 6 + 8 > MAX_TOKEN and len(quote(map_value_for(GONE, result))) > MAX_TOKEN:
        raise TargetError(f"is longer than nginx's {MAX_TOKEN:,}-byte limit for one value")
    return result


@functools.lru_cache(maxsize=4096)
def _normalised(url: str, allowed_hosts: tuple[str, ...]) -> str:
    # Thousands of legacy URLs share a target (the home page, a section...).
    # Archive targets are one per URL: a bounded cache, or it grows with them.
    return normalise_target(url, allowed_hosts)


# -- what nginx makes of a request target ------------------------------------


class BadRequest(ValueError):
    """nginx would answer 400 to this request target; the message says why."""


# ngx_http_parse_complex_uri states
_USUAL, _SLASH, _DOT, _DOT_DOT = range(4)


def _back_to_parent(out: bytearray) -> None:
    # `out` ends with "/..": drop that and the segment before it, keeping its slash.
    end = len(out) - 4
    while end >= 0 and out[end] != 0x2F:
        end -= 1
    if end < 0:
        raise BadRequest("its '..' segments climb above the root")
    del out[end + 1 :]


def parse_target(target: bytes) -> tuple[bytes, bytes]:
    """``($uri, $args)`` as nginx (1.22, merge_slashes on) derives them from a request target.

    Raises BadRequest where nginx answers 400 instead.
    """
    if not target.startswith(b"/"):
        raise BadRequest("does not start with '/'")
    q = target.find(b"?")
    path = target if q < 0 else target[:q]
    if b"%" not in path and b"/." not in path and b"//" not in path and b"#" not in target:
        # Nothing to decode, merge or resolve: nginx takes the path as it is.
        return path, b"" if q < 0 else target[q + 1 :]
    out = bytearray()
    state = _USUAL
    i, n = 0, len(target)
    args = b""
    while i < n:
        ch = target[i]
        i += 1
        if ch == 0x25:  # "%"
            hexpair = target[i : i + 2]
            if len(hexpair) < 2 or not all(c in b"0123456789abcdefABCDEF" for c in hexpair):
                raise BadRequest("has a '%' not followed by two hex digits")
            i += 2
            ch = int(hexpair, 16)
            if ch == 0:
                raise BadRequest("has %00 in its path")
            if ch in b"%#?":
                # nginx keeps these decoded characters literally, outside the state machine.
                out.append(ch)
                state = _USUAL
                continue
        elif ch == 0x3F:  # "?": the path ends
            if state == _DOT:
                out.pop()
            elif state == _DOT_DOT:
                _back_to_parent(out)
            args = target[i:].split(b"#", 1)[0]
            return bytes(out), args
        elif ch == 0x23:  # "#": a fragment; nginx ignores the rest
            if state == _DOT:
                out.pop()
            elif state == _DOT_DOT:
                _back_to_parent(out)
            return bytes(out), b""
        # A decoded character goes through the same steps as a literal one.
        if ch == 0x2F:  # "/"
            if state == _SLASH:
                continue  # merged
            if state == _DOT:
                state = _SLASH  # "/./" -> "/": the dot is already written, drop it
                out.pop()
                continue
            if state == _DOT_DOT:
                _back_to_parent(out)
                state = _SLASH
                continue
            out.append(ch)
            state = _SLASH
        elif ch == 0x2E and state in (_SLASH, _DOT):  # "."
            out.append(ch)
            state = _DOT if state == _SLASH else _DOT_DOT
        else:
            out.append(ch)
            state = _USUAL
    if state == _DOT:
        out.pop()
    elif state == _DOT_DOT:
        _back_to_parent(out)
    return bytes(out), args


def nginx_arg(args: bytes, name: str) -> bytes:
    """``$arg_<name>``: the raw value of the first ``name=`` argument (name case ignored)."""
    want = name.lower().encode("ascii") + b"="
    size = len(want)
    for part in args.split(b"&"):
        if part[:size].lower() == want:
            return part[size:]
    return b""


def canonical_key(
    uri: bytes, args: bytes, params: tuple[str, ...], forms: NginxForms | None = None
) -> bytes:
    """The canonical map's key, as nginx builds it from ``$uri`` and ``$arg_*``.

    With URL ``forms``, from ``$sunset_uri`` and the id's number (redirects/forms.py).
    """
    if forms:
        return (
            forms.uri(uri)
            + b"?"
            + b"&".join(
                p.encode("ascii") + b"=" + forms.arg(p.lower(), nginx_arg(args, p)) for p in params
            )
        )
    return uri + b"?" + b"&".join(p.encode("ascii") + b"=" + nginx_arg(args, p) for p in params)


def canonical_source(params: tuple[str, ...], forms: NginxForms | None = None) -> str:
    """The same key as an nginx complex value."""
    if forms:
        return f"{forms.uri_variable}?" + "&".join(f"{p}={forms.arg_variable(p)}" for p in params)
    return "$uri?" + "&".join(f"{p}=$arg_{p}" for p in params)


def site_forms(site: Site) -> NginxForms:
    """The URL-form rules ``site`` carries; SunsetError if its feed target is unusable."""
    target = ""
    if site.feed_params and site.feed_target:
        try:
            target = normalise_target(site.feed_target, site.allowed_target_hosts)
        except TargetError as exc:
            raise SunsetError(f"feed target {site.feed_target!r} {exc}") from None
    return NginxForms(site.front_controller, site.id_param, site.feed_params, target)


def split_legacy(old: str) -> tuple[str, str]:
    """(host, request target) of legacy URL ``old``; the target is what a client sends.

    The target has no scheme, host or fragment, and non-ASCII characters
    percent-encoded as UTF-8, as browsers send them. Raises TargetError for a
    URL that is not absolute http(s).
    """
    m = _URL.fullmatch(old)
    if not m or m.group(1).lower() not in ("http", "https"):
        raise TargetError("is not an absolute http(s) URL")
    hp = _HOST_PORT.fullmatch(m.group(2).rsplit("@", 1)[-1])
    host = (hp.group(1) if hp else m.group(2)).lower().rstrip(".")
    rest = m.group(3).split("#", 1)[0]
    if not rest.startswith("/"):
        rest = "/" + rest
    if not rest.isascii():
        rest = "".join(
            c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
            for c in rest
        )
    return host, rest


def request_target(old: str) -> str:
    """The request target a client sends for legacy URL ``old`` (see :func:`split_legacy`)."""
    return split_legacy(old)[1]


@functools.lru_cache(maxsize=64)
def _host_patterns(patterns: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    names = {p.lower().rstrip(".") for p in patterns}
    return frozenset(names), tuple(p[1:] for p in names if p.startswith("*."))


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """True if ``host`` is one of ``patterns`` (``*.example.org`` matches subdomains)."""
    exact, suffixes = _host_patterns(patterns)
    return host in exact or any(host.endswith(s) for s in suffixes)


# -- one row ------------------------------------------------------------------


def _key_fits(key: bytes) -> bool:
    # Escaping at most doubles a key; only long keys need the exact count.
    return len(key) * 2 + 3 <= MAX_TOKEN or len(map_key_bytes(key)) <= MAX_TOKEN


class Prepared(NamedTuple):
    """A row that can be written: its exact key and its answer."""

    key: str  # request target, ASCII
    status: int
    target: str  # normalised
    uri: bytes  # what nginx makes of the key: $uri
    args: bytes  # and $args


def map_value_for(status: int, target: str) -> str:
    """A map value: the target, or ``410 `` and the target escaped for an HTML attribute."""
    return GONE_PREFIX + html.escape(target) if status == GONE else target


def prepare(row: Row, site: Site) -> Prepared | Refused:
    """Check one row; the reasons are shared by every writer, so refusals compare equal."""
    if row.status not in (MOVED, GONE):
        return Refused(row.old, row.new, f"status {row.status} is neither 301 nor 410")
    try:
        target = _normalised(row.new, site.allowed_target_hosts)
    except TargetError as exc:
        return Refused(row.old, row.new, f"target {exc}")
    try:
        host, key = split_legacy(row.old)
    except TargetError as exc:
        return Refused(row.old, row.new, f"legacy URL {exc}")
    reason = ""
    if not host_matches(host, site.legacy_hosts):
        reason = f"legacy host {host or '(none)'} is not one of the legacy hosts"
    elif m := _CONTROL_OR_SPACE.search(key):
        what = "a space" if m.group() == " " else f"control character {m.group()!r}"
        reason = f"legacy URL has {what}, which no request line can carry"
    else:
        raw = key.encode("ascii")
        if not _key_fits(raw):
            reason = f"legacy URL is longer than nginx's {MAX_TOKEN:,}-byte limit for one key"
        else:
            try:
                uri, args = parse_target(raw)
            except BadRequest as exc:
                reason = f"nginx answers 400 to this URL: it {exc}"
            else:
                return Prepared(key, row.status, target, uri, args)
    return Refused(row.old, row.new, reason)


# -- the plan -----------------------------------------------------------------

Answer = tuple[int, str]  # (status, normalised target)


class _Slot:
    """The candidates for one case-folded key of one map."""

    __slots__ = ("answer", "confidence", "key", "members", "old", "seq")

    def __init__(self, key: bytes, answer: Answer, confidence: float, seq: int, old: int) -> None:
        self.key = key
        self.answer = answer
        self.confidence = confidence
        self.seq = seq
        self.old = old  # the number of the row whose URL this is (see RedirectPlan._old)
        # Only keys that fold together with another get a list of who was behind them.
        self.members: list[tuple[int, Answer]] | None = None

    def rank(self) -> tuple[float, bool, int]:
        return (-self.confidence, self.key != self.key.lower(), self.seq)

    def offer(self, other: _Slot) -> None:
        if self.members is None:
            self.members = [(self.old, self.answer)]
        self.members.append((other.old, other.answer))
        if other.rank() < self.rank():
            self.key, self.answer, self.confidence = other.key, other.answer, other.confidence
            self.seq, self.old = other.seq, other.old


class _Group:
    """Legacy URLs sharing one canonical or path key: the lowest tier decides."""

    __slots__ = ("answer", "confidence", "old", "seq", "tier")

    def __init__(self, tier: int, answer: Answer, confidence: float, seq: int, old: int) -> None:
        self.tier = tier
        self.answer: Answer | None = answer  # None: the deciding URLs disagree
        self.confidence = confidence
        self.seq = seq
        self.old = old

    def add(self, tier: int, answer: Answer, confidence: float, old: int) -> None:
        if tier < self.tier:
            self.tier, self.answer, self.confidence, self.old = tier, answer, confidence, old
        elif tier == self.tier:
            if self.answer is not None and answer != self.answer:
                self.answer = None
            self.confidence = max(self.confidence, confidence)


def _fold(key: bytes) -> bytes:
    # nginx lowercases map keys and looked-up values with ASCII rules only.
    return key.lower()


def _label(answer: Answer) -> str:
    status, target = answer
    return f"410 {target}" if status == GONE else target


# The maps in lookup order; ``entry.map`` holds the index.
MAPS = ("request_uri", "canonical", "path")
_EXACT, _CANONICAL, _PATH = range(3)
# One row per legacy URL in ``candidate`` and one per written key in
# ``entry``: what the dicts of _Slot and _Group used to hold. Folded keys are
# not stored: SQLite's lower() folds ASCII letters only, byte by byte, as nginx.
_PLAN_SCHEMA = """
CREATE TABLE candidate(
    seq INTEGER PRIMARY KEY, old TEXT, status INTEGER, target TEXT, confidence REAL,
    exact BLOB, canonical BLOB, canonical_tier INTEGER, path BLOB, path_tier INTEGER);
CREATE TABLE entry(map INTEGER, pos INTEGER, key BLOB, status INTEGER, target TEXT)
"""
_FOLDED_KEY = "CAST(lower(key) AS BLOB)"
# Each map's candidates as (folded, key, [tier,] seq, status, target,
# confidence), sorted on disk so that a folded key's candidates come
# together, within them each key's, each in the order they came.
_EXACT_SORTED = (
    "SELECT CAST(lower(exact) AS BLOB) AS folded, exact, seq, status, target, confidence"
    " FROM candidate ORDER BY folded, seq"
)
_CANONICAL_SORTED = (
    "SELECT CAST(lower(canonical) AS BLOB) AS folded, canonical, canonical_tier,"
    " seq, status, target, confidence FROM candidate ORDER BY folded, canonical, seq"
)
# A path's two forms (with and without the trailing slash) share a base,
# first in each row: one run of this sort holds both, so whether the toggled
# form is a path of its own is known there.
_PATH_SORTED = (
    "SELECT CAST(rtrim(lower(path), '/') AS BLOB) AS base, CAST(lower(path) AS BLOB) AS folded,"
    " path, path_tier, seq, status, target, confidence"
    " FROM candidate ORDER BY base, folded, path, seq"
)
_Candidate = tuple[bytes, bytes, int, int, int, str, float]


class RedirectPlan:
    """What the three maps hold for a stream of rows, decided the way nginx will read them.

    Feed rows with :meth:`add`, then call :meth:`finish`. The candidates for
    each map key go to a scratch database on disk (:mod:`redirects.store`);
    :meth:`finish` reads them back sorted by key, so only one key's
    candidates are in memory at a time, and stores the entries decided. Close
    the plan when done (it is a context manager): lookups read from disk.

    Canonical and path keys: the legacy URLs sharing a key are ranked in tiers
    and the lowest non-empty tier decides; the key gets an entry only if all
    its URLs agree. Canonical: tier 0 is a URL already in canonical form (only
    significant parameters, each once, each as ``name=value``), tier 1 the rest.
    Path: tier 0 is a URL with no query, tier 1 one whose significant
    parameters are all empty, tier 2 the rest; a URL under the front
    controller (URL forms) ranks three tiers below the same URL without it.
    With URL forms, a URL under the front controller is never in canonical form.

    Keys that fold to the same bytes (nginx ignores ASCII case) get one entry:
    if their answers differ, the highest confidence wins, then a key already in
    lower case, then the first seen; a :class:`Collision` records it. A map
    lists its keys in the order each folded key was first seen (path keys
    first, then their toggled forms in the same order).
    """

    def __init__(self, site: Site) -> None:
        self.site = site
        self.params = significant_params(site)
        self.forms = site_forms(site)
        self._names = [(p.encode("ascii"), p.lower().encode("ascii")) for p in self.params]
        self._wanted = {low for _, low in self._names}
        self.refused: list[Refused] = []
        self.collisions: list[Collision] = []
        self.skipped = 0  # canonical or path keys too long to write
        self.rows = 0
        self._db = open_scratch()
        create(self._db, _PLAN_SCHEMA)
        self._candidates = Buffer(
            self._db, "INSERT INTO candidate VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        self._entries = Buffer(self._db, "INSERT INTO entry VALUES (?, ?, ?, ?, ?)")
        self._finished = False
        self._indexed = False

    def __enter__(self) -> RedirectPlan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the scratch database."""
        self._db.close()

    def add(self, row: Row) -> Prepared | Refused:
        seq = self.rows
        self.rows += 1
        prepared = prepare(row, self.site)
        if isinstance(prepared, Refused):
            self.refused.append(prepared)
            return prepared
        confidence = row.confidence
        if confidence != confidence:
            # NaN (a hand-edited CSV) would be stored as NULL and rank nowhere.
            confidence = 0.0
        canon, canon_tier, path_tier = self._keys(prepared)
        self._candidates.add(
            (
                seq,
                row.old,
                prepared.status,
                prepared.target,
                confidence,
                prepared.key.encode("ascii"),
                canon,
                canon_tier,
                self.forms.uri(prepared.uri),
                path_tier,
            ),
        )
        return prepared

    def _keys(self, prepared: Prepared) -> tuple[bytes, int, int]:
        """(canonical key, its tier, the path key's tier) of a row; the path key is ``uri``."""
        uri, args = self.forms.uri(prepared.uri), prepared.args
        # One pass over the arguments gives what nginx_arg would for each
        # significant name, and whether the URL is already in canonical form.
        values: dict[bytes, bytes] = {}
        in_form = uri == prepared.uri
        for part in args.split(b"&") if args else ():
            if not part:
                continue
            name, eq, value = part.partition(b"=")
            name = name.lower()
            if not eq:
                in_form = False
            elif name in values or name not in self._wanted:
                in_form = False
                values.setdefault(name, value)
            else:
                values[name] = value
        if self.forms:
            for name, value in values.items():
                folded = self.forms.arg(name.decode("ascii", "replace"), value)
                if folded != value:
                    values[name] = folded
                    in_form = False
        canon = uri + b"?" + b"&".join(p + b"=" + values.get(low, b"") for p, low in self._names)
        if not args:
            path_tier = 0
        elif not any(values.get(low) for _, low in self._names):
            path_tier = 1
        else:
            path_tier = 2
        if uri != prepared.uri:
            # /index.php/x speaks for /x only where /x itself does not.
            path_tier += 3
        return canon, 0 if in_form else 1, path_tier

    def finish(self) -> None:
        """Settle agreements and case collisions; call once, after the last row."""
        if self._finished:
            return
        self._finished = True
        self._candidates.flush()
        db = self._db
        found: list[tuple[int, Collision]] = []
        for _, run in groupby(db.execute(_EXACT_SORTED), key=itemgetter(0)):
            slots = [
                _Slot(key, (status, target), confidence, seq, seq)
                for _, key, seq, status, target, confidence in run
            ]
            self._settle(_EXACT, slots, found)
        self._collided(_EXACT, found)
        for _, run in groupby(db.execute(_CANONICAL_SORTED), key=itemgetter(0)):
            self._settle(_CANONICAL, self._agreed(run), found)
        self._collided(_CANONICAL, found)
        after = self.rows  # toggled entries follow every other path entry
        for _, base_run in groupby(db.execute(_PATH_SORTED), key=itemgetter(0)):
            real: list[bytes] = []
            kept: list[tuple[int, _Slot]] = []
            for folded, run in groupby((r[1:] for r in base_run), key=itemgetter(0)):
                real.append(folded)
                settled = self._settle(_PATH, self._agreed(run), found)
                if settled is not None:
                    kept.append(settled)
            # Both forms of each path, unless the other form is a path of its own.
            for first, slot in kept:
                key = slot.key
                flipped = key[:-1] if key.endswith(b"/") else key + b"/"
                if not flipped or _fold(flipped) in real or not self._fits(flipped):
                    continue
                self._entries.add((_PATH, after + first, flipped, *slot.answer))
        self._collided(_PATH, found)
        self._entries.flush()

    def _agreed(self, candidates: Iterable[_Candidate]) -> list[_Slot]:
        """Canonical or path keys: a slot for each exact key whose deciding URLs agree.

        Read as they come: a path like ``/index.php`` can have most of a
        Joomla site's URLs behind it.
        """
        slots: list[_Slot] = []
        for key, members in groupby(candidates, key=itemgetter(1)):
            group: _Group | None = None
            for _, _, tier, seq, status, target, confidence in members:
                if group is None:
                    group = _Group(tier, (status, target), confidence, seq, seq)
                else:
                    group.add(tier, (status, target), confidence, seq)
            assert group is not None
            if group.answer is not None and self._fits(key):
                slots.append(_Slot(key, group.answer, group.confidence, group.seq, group.old))
        # Keys sharing a folded key compete in the order they were first seen.
        if len(slots) > 1:
            slots.sort(key=lambda slot: slot.seq)
        return slots

    def _settle(
        self, which: int, slots: list[_Slot], found: list[tuple[int, Collision]]
    ) -> tuple[int, _Slot] | None:
        """One entry for a folded key, placed where its first slot was seen."""
        if not slots:
            return None
        slot, first = slots[0], slots[0].seq
        for other in slots[1:]:
            slot.offer(other)
        if slot.members is not None:
            collision = self._collision(MAPS[which], slot)
            if collision is not None:
                found.append((first, collision))
        self._entries.add((which, first, slot.key, *slot.answer))
        return first, slot

    def _collided(self, which: int, found: list[tuple[int, Collision]]) -> None:
        self.collisions.extend(c for _, c in sorted(found, key=itemgetter(0)))
        found.clear()

    def _fits(self, key: bytes) -> bool:
        if not _key_fits(key):
            self.skipped += 1
            return False
        return True

    def _collision(self, name: str, slot: _Slot) -> Collision | None:
        members = slot.members
        if members is None or all(answer == slot.answer for _, answer in members):
            return None
        return Collision(
            map=name,
            key=slot.key.decode("utf-8", "backslashreplace"),
            olds=[self._old(seq) for seq, _ in members],
            targets=[_label(answer) for _, answer in members],
            kept=_label(slot.answer),
        )

    def _old(self, seq: int) -> str:
        # Slots carry a row's number, not its URL: the URLs wait on disk
        # until a collision names them.
        return str(
            self._db.execute("SELECT old FROM candidate WHERE seq = ?", (seq,)).fetchone()[0]
        )

    def entries(self, name: str) -> Iterator[tuple[bytes, Answer]]:
        """(key, answer) of one map, in the order the map file lists them."""
        for key, status, target in self._db.execute(
            "SELECT key, status, target FROM entry WHERE map = ? ORDER BY pos", (MAPS.index(name),)
        ):
            yield key, (status, target)

    # -- answering like nginx ---------------------------------------------

    def _find(self, which: int, key: bytes) -> Answer | None:
        if not self._indexed:
            self._db.execute(f"CREATE UNIQUE INDEX entry_folded ON entry(map, {_FOLDED_KEY})")
            self._indexed = True
        found = self._db.execute(
            f"SELECT status, target FROM entry WHERE map = ? AND {_FOLDED_KEY} = ?",
            (which, _fold(key)),
        ).fetchone()
        return None if found is None else (int(found[0]), str(found[1]))

    def lookup(self, target: str) -> tuple[str, Answer] | None:
        """(map, answer) nginx finds for a request target, or None for the fallback.

        Raises BadRequest where nginx answers 400.
        """
        raw = target.encode("utf-8")
        answer = self._find(_EXACT, raw)
        if answer is not None:
            return "request_uri", answer
        uri, args = parse_target(raw)
        feed = self.forms.feed(args)
        if feed:
            return "feed", (MOVED, feed)
        answer = self._find(_CANONICAL, canonical_key(uri, args, self.params, self.forms))
        if answer is not None:
            return "canonical", answer
        answer = self._find(_PATH, self.forms.uri(uri))
        if answer is not None:
            return "path", answer
        return None

    def resolve(self, target: str) -> Answer:
        """(status, Location or linked URL) nginx answers a request target with."""
        try:
            if parse_target(target.encode("utf-8"))[0] == ROBOTS_TXT:
                # redirects.conf answers it from its own location, before any map.
                return 200, ""
            found = self.lookup(target)
        except BadRequest:
            return 400, ""
        if found is not None:
            return found[1]
        return MOVED, fallback_for(self.site, target)


def significant_params(site: Site) -> tuple[str, ...]:
    """The profile's significant parameters, once each; SunsetError if nginx cannot name one."""
    seen: dict[str, str] = {}
    for name in site.significant_query_params:
        if not _PARAM.fullmatch(name):
            raise SunsetError(
                f"significant query parameter {name!r} cannot be read by nginx"
                " ($arg_ names are letters, digits and _ only)"
            )
        seen.setdefault(name.lower(), name)
    return tuple(seen.values())


def fallback_for(site: Site, target: str) -> str:
    """Where a URL no map knows goes (what the server block's last ``return`` sends)."""
    prefix, home = fallbacks(site)
    return prefix + target if prefix else home


def fallbacks(site: Site) -> tuple[str, str]:
    """(normalised fallback prefix or "", normalised home page); SunsetError if unusable."""
    try:
        home = normalise_target(site.new_home, site.allowed_target_hosts)
    except TargetError as exc:
        raise SunsetError(f"new home page {site.new_home!r} {exc}") from None
    prefix = ""
    if site.fallback_prefix:
        try:
            prefix = normalise_target(site.fallback_prefix, site.allowed_target_hosts, prefix=True)
        except TargetError as exc:
            raise SunsetError(f"fallback prefix {site.fallback_prefix!r} {exc}") from None
    return prefix, home


def plan(rows: Iterable[Row], site: Site) -> RedirectPlan:
    """A finished :class:`RedirectPlan` for ``rows``; close it when done."""
    result = RedirectPlan(site)
    try:
        for row in rows:
            result.add(row)
        result.finish()
    except BaseException:
        result.close()
        raise
    return result


# -- hash sizes -----------------------------------------------------------------


@dataclass
class HashSizes:
    """``map_hash_bucket_size`` and ``map_hash_max_size`` for the maps written."""

    bucket_size: int = 128
    max_size: int = 2048

    @staticmethod
    def element(key_len: int) -> int:
        # ngx_hash.c: NGX_HASH_ELT_SIZE = pointer + align(len + 2, pointer)
        return POINTER + (key_len + 2 + POINTER - 1) // POINTER * POINTER

    @classmethod
    def for_maps(cls, maps: Iterable[tuple[int, int, int]]) -> HashSizes:
        """Sizes for maps given as (keys, longest key, total key bytes).

        nginx refuses to start unless one bucket holds the largest element and
        a terminating pointer. It then looks for a table size at which no
        bucket overflows: with more than 10,000 allowed and fewer than 100
        allowed per key it only tries the last 1,000 sizes below the maximum,
        otherwise it counts up from ``keys / (bucket / 16)``. So: buckets with
        room for eight average keys (and the longest), and a maximum of twice
        the largest map's keys plus 1,000, which leaves that map's table at
        most half full where nginx looks; a bucket then overflows only if eight
        keys hash into it.
        """
        longest = 0
        mean = 0.0
        largest = 0
        for count, max_len, total in maps:
            if not count:
                continue
            longest = max(longest, cls.element(max_len))
            mean = max(mean, POINTER + total / count + 2 + POINTER / 2)
            largest = max(largest, count)
        need = max(128, longest + POINTER, int(8 * mean))
        bucket = 128
        while bucket < need:
            bucket *= 2
        return cls(bucket_size=bucket, max_size=max(2048, 2 * largest + 1000))


# -- writing --------------------------------------------------------------------


@dataclass
class NginxResult:
    """What :func:`write_nginx` wrote."""

    files: dict[str, Path]  # "request_uri", "canonical", "path", "conf"
    written: dict[str, int]  # entries per map
    refused: list[Refused]
    collisions: list[Collision]
    hash: HashSizes
    rows: int = 0
    skipped: int = 0  # canonical or path keys too long for nginx
    notes: list[str] = field(default_factory=list)


def _write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    # nginx reloaded mid-write would read half a map; a rename is all or nothing.
    with replacing(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


@functools.lru_cache(maxsize=4096)
def _map_value(answer: Answer) -> bytes:
    # Thousands of keys share a value (the home page, a section page...);
    # archive values are one per URL, so the cache is bounded, not a dict.
    return quote(map_value_for(*answer)).encode("ascii")


def _map_lines(name: str, decided: RedirectPlan, stats: list[int]) -> Iterable[bytes]:
    what = {
        "request_uri": "$request_uri (the request target as sent)",
        "canonical": "the canonical key (see redirects.conf)",
        "path": "$uri (the decoded, normalised path)",
    }[name]
    yield (
        f"# Generated by sunset; included in redirects.conf inside a map on {what}.\n"
        "# Value: the target URL, or '410 ' and the target HTML-escaped for a page that is gone.\n"
    ).encode()
    count = longest = total = 0
    for key, answer in decided.entries(name):
        count += 1
        longest = max(longest, len(key))
        total += len(key)
        yield map_key_bytes(key) + b" " + _map_value(answer) + b";\n"
    stats[:] = [count, longest, total]


def write_nginx(
    rows: Iterable[Row],
    site: Site,
    out_dir: Path,
    *,
    listen: str | int = 80,
    include_dir: Path | None = None,
) -> NginxResult:
    """Write the three maps and ``redirects.conf`` into ``out_dir``.

    ``include_dir`` is the absolute directory the conf's includes name (where
    the maps will be installed, e.g. ``/etc/nginx/sunset``); default ``out_dir``.
    """
    out_dir = Path(out_dir)
    include = Path(include_dir) if include_dir is not None else out_dir.resolve()
    if not include.is_absolute():
        raise SunsetError(f"include folder {include} must be an absolute path")
    fallbacks(site)  # a bad home page or prefix fails before any work
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    stats: dict[str, list[int]] = {}
    with plan(rows, site) as result:
        for name in MAPS:
            path = out_dir / MAP_FILES[name]
            stats[name] = [0, 0, 0]
            _write_atomic(path, _map_lines(name, result, stats[name]))
            files[name] = path
    sizes = HashSizes.for_maps(tuple(s) for s in stats.values())
    conf = out_dir / CONF
    text = render_conf(site, sizes, listen=listen, maps_dir=include)
    _write_atomic(conf, [text.encode("utf-8")])
    files["conf"] = conf
    return NginxResult(
        files=files,
        written={name: s[0] for name, s in stats.items()},
        refused=result.refused,
        collisions=result.collisions,
        hash=sizes,
        rows=result.rows,
        skipped=result.skipped,
    )


# -- redirects.conf -------------------------------------------------------------

_GONE_BODY = (
    '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
    "<title>Page removed</title></head><body><h1>This page has been removed</h1>"
    '<p>An archived copy is at <a href="$sunset_gone">$sunset_gone</a>.</p></body></html>'
)


def _server_names(site: Site) -> list[str]:
    names = []
    for host in site.legacy_hosts:
        low = host.lower().rstrip(".")
        if not _HOSTNAME.fullmatch(low):
            raise SunsetError(f"legacy host {host!r} is not a host name nginx can serve")
        names.append(low)
    if not names:
        raise SunsetError("no legacy hosts: the server block would answer no name")
    return names


def settings_json(site: Site, sizes: HashSizes, listen: str, maps_dir: Path) -> str:
    return json.dumps(
        {
            "legacy_base": site.legacy_base,
            "legacy_hosts": list(site.legacy_hosts),
            "new_home": site.new_home,
            "allowed_target_hosts": list(site.allowed_target_hosts),
            "significant_query_params": list(site.significant_query_params),
            "fallback_prefix": site.fallback_prefix,
            **_forms_settings(site),
            "listen": listen,
            "maps_dir": str(maps_dir),
            "map_hash_bucket_size": sizes.bucket_size,
            "map_hash_max_size": sizes.max_size,
        },
        ensure_ascii=True,
        sort_keys=True,
    )


def _forms_settings(site: Site) -> dict[str, object]:
    # Only what is set: a site without URL forms keeps the settings line it had.
    values = {
        "front_controller": site.front_controller,
        "id_param": site.id_param,
        "feed_params": list(site.feed_params),
        "feed_target": site.feed_target,
    }
    return {key: value for key, value in values.items() if value}


def read_settings(conf: Path) -> tuple[Site, HashSizes, str, Path]:
    """(site, hash sizes, listen, maps dir) recorded in a redirects.conf's first line."""
    try:
        with open(conf, encoding="utf-8") as fh:
            first = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise SunsetError(f"{conf}: cannot read ({exc})") from None
    if not first.startswith(SETTINGS_PREFIX):
        raise SunsetError(f"{conf}: not written by sunset (no settings line)")
    try:
        data = json.loads(first[len(SETTINGS_PREFIX) :])
        site = Site(
            legacy_base=data["legacy_base"],
            legacy_hosts=tuple(data["legacy_hosts"]),
            new_home=data["new_home"],
            allowed_target_hosts=tuple(data["allowed_target_hosts"]),
            significant_query_params=tuple(data["significant_query_params"]),
            fallback_prefix=data["fallback_prefix"],
            front_controller=str(data.get("front_controller", "")),
            id_param=str(data.get("id_param", "")),
            feed_params=tuple(str(p) for p in data.get("feed_params", ())),
            feed_target=str(data.get("feed_target", "")),
        )
        sizes = HashSizes(int(data["map_hash_bucket_size"]), int(data["map_hash_max_size"]))
        return site, sizes, str(data["listen"]), Path(data["maps_dir"])
    except (ValueError, KeyError, TypeError) as exc:
        raise SunsetError(f"{conf}: unreadable settings line ({exc})") from None


def render_conf(site: Site, sizes: HashSizes, *, listen: str | int = 80, maps_dir: Path) -> str:
    """The text of redirects.conf: hash sizes, the maps and a server block on ``listen``."""
    listen = str(listen)
    if not _LISTEN.fullmatch(listen):
        raise SunsetError(f"listen {listen!r} is not an address and/or port nginx accepts")
    names = _server_names(site)
    params = significant_params(site)
    prefix, home = fallbacks(site)
    forms = site_forms(site)
    longest_name = max(HashSizes.element(len(n)) for n in names) + POINTER
    # nginx's default is one cache line (64 bytes on x86) and fails on longer names.
    names_bucket = (
        f"server_names_hash_bucket_size {1 << (longest_name - 1).bit_length()};\n"
        if longest_name > 64
        else ""
    )
    fallback = f'{quote(prefix)[:-1]}$request_uri"' if prefix else quote(home)

    def inc(name: str) -> str:
        return quote(str(maps_dir / name))

    return f"""{SETTINGS_PREFIX}{settings_json(site, sizes, listen, maps_dir)}
# Generated by sunset: redirects for {", ".join(names)}.
#
# Include this file inside nginx's http {{}} block, before any other map: the
# map_hash_* directives below must come before the first map, and nginx
# rejects them if set twice (delete them here if your http block sets them
# already, at least as large). Then `nginx -t && nginx -s reload`.
#
# Lookup order: the exact request target, then the canonical key (path plus
# significant query parameters), then the path alone; no match goes to the
# archive (or the new home page). Keys compare ignoring ASCII case. A feed
# (with URL forms set) goes to the feed target after the exact map; robots.txt
# is answered here, never redirected.

# One bucket holds the longest key plus a pointer; the max size is twice the
# largest map's keys plus 1,000 (see redirects/nginx.py, HashSizes).
map_hash_bucket_size {sizes.bucket_size};
map_hash_max_size {sizes.max_size};
{names_bucket}{_forms_conf(forms, params)}
map $request_uri $sunset_by_uri {{
    default "";
    include {inc(EXACT_MAP)};
}}

map {quote(canonical_source(params, forms))} $sunset_by_canonical {{
    default "";
    include {inc(CANONICAL_MAP)};
}}

map {forms.uri_variable} $sunset_by_path {{
    default "";
    include {inc(PATHS_MAP)};
}}

# The first non-empty of exact, {"feed, " if forms.feed_params else ""}canonical, path.
map $sunset_by_canonical $sunset_by_canonical_or_path {{
    "" $sunset_by_path;
    default $sunset_by_canonical;
}}
{_feed_chain(forms)}
map $sunset_by_uri $sunset_target {{
    "" {"$sunset_by_rest" if forms.feed_params else "$sunset_by_canonical_or_path"};
    default $sunset_by_uri;
}}

# "410 <escaped URL>": a page that is gone; the rest is for its HTML link.
map $sunset_target $sunset_gone {{
    default "";
    "~^410 (.+)$" $1;
}}

server {{
    listen {listen};
    server_name {" ".join(quote(n) for n in names)};
    # Targets are absolute URLs; never let nginx rewrite them.
    absolute_redirect off;
    server_name_in_redirect off;
    port_in_redirect off;
    default_type "text/html; charset=utf-8";

    # Not redirected: the new site's rules would be read as the old host's
    # (and could hide old URLs' 301s from crawlers), the archive's are the
    # archive's. Every old URL may be fetched, so its 301 is seen.
    location = /robots.txt {{
        default_type "text/plain; charset=utf-8";
        return 200 {_ROBOTS_TOKEN};
    }}

    location / {{
        if ($sunset_gone) {{
            return 410 {quote(_GONE_BODY)};
        }}
        if ($sunset_target) {{
            return 301 $sunset_target;
        }}
        return 301 {fallback};
    }}
}}
"""


def _forms_conf(forms: NginxForms, params: tuple[str, ...]) -> str:
    if not forms:
        return ""
    value = map_value(forms.feed_target) if forms.feed_params else '""'
    return "\n# The CMS's other URL forms (redirects/forms.py).\n" + forms.conf(params, value)


def _feed_chain(forms: NginxForms) -> str:
    if not forms.feed_params:
        return ""
    return """
map $sunset_feed $sunset_by_rest {
    "" $sunset_by_canonical_or_path;
    default $sunset_feed;
}
"""
