"""Site profiles: everything sunset needs to know about one legacy site.

A profile is a TOML file, either shipped in ``sunset/profiles/<name>.toml``
(referred to by name) or anywhere on disk (referred to by path). Loading it
gives frozen dataclasses, so a stage can never mutate the settings another
stage relies on.

Validation is strict on purpose: a typo such as ``dealy = 1`` would otherwise
be silently ignored and the crawl would run with the default delay against a
live public-sector site. Every problem is reported as one line naming the
file, the dotted key and what was expected.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import re
import string
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sunset import __version__
from sunset.errors import SunsetError

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
# Presets of a CMS's URL forms, selected with [redirects] cms = "<name>".
CMS_DIR = PROFILES_DIR / "cms"

DEFAULT_USER_AGENT = (
    f"sunset/{__version__} (+https://github.com/sunset-archive/sunset; web archiving)"
)

# Session ids only duplicate pages that exist without them, so URLs carrying
# one are refused outright.
DEFAULT_TRAP_PATTERNS: tuple[str, ...] = (
    r"(?i)[?&](sid|phpsessid|jsessionid|sessionid|s)=",
    r"(?i)[;&?]jsessionid=",
)

# Calendars hold real pages (months with events) inside an endless URL space,
# so they are capped per path rather than refused.
DEFAULT_CALENDAR_PATTERNS: tuple[str, ...] = (
    r"(?i)[?&](month|date|year|day|week)=",
    r"(?i)/calendar/\d{4}/\d{1,2}",
    # A path that ends in a year and month (and maybe a day): a month view
    # such as /events/2019/11 or /cal/2019-11-04, not a post beneath it.
    r"/(?:19|20)\d\d[/-](?:0?[1-9]|1[0-2])(?:[/-](?:0?[1-9]|[12]\d|3[01]))?/?(?:\?|$)",
)

DEFAULT_SIGNIFICANT_QUERY_PARAMS: tuple[str, ...] = (
    "option",
    "view",
    "id",
    "start",
    "limitstart",
    "showall",
)


class ProfileError(SunsetError):
    """A profile that cannot be used, reported as one line naming file and key."""

    def __init__(self, message: str, *, path: str = "", key: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.key = key


# --------------------------------------------------------------------------
# Public value types


@dataclass(frozen=True)
class ConnectTo:
    """One curl-style ``--connect-to`` rule: requests for host:port go to addr:port2.

    This is how the demo points the real site's host names at a local replica
    without touching /etc/hosts, so the WARC still records the real URLs.
    """

    host: str
    port: int
    addr: str
    port2: int

    def __str__(self) -> str:
        addr = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"{self.host}:{self.port}:{addr}:{self.port2}"


@dataclass(frozen=True)
class Site:
    name: str
    start_urls: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
    description: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    frozen: dt.date | None = None


@dataclass(frozen=True)
class Crawl:
    obey_robots: bool = True
    use_sitemap: bool = True
    concurrency_per_host: int = 4
    delay: float = 0.25
    autothrottle: bool = True
    user_agent: str = DEFAULT_USER_AGENT
    contact: str | None = None
    operator: str | None = None
    # Link hops from a seed (0: no limit). Heritrix's default: far deeper than
    # any menu, and the end of a chain of pages that only ever links onward.
    max_depth: int = 20
    max_path_depth: int = 12
    max_repeated_segments: int = 3
    max_query_variants: int = 50
    trap_patterns: tuple[str, ...] = DEFAULT_TRAP_PATTERNS
    calendar_patterns: tuple[str, ...] = DEFAULT_CALENDAR_PATTERNS
    max_calendar_variants: int = 24
    max_body_size: int = 100 * 1000**2
    warc_max_size: int = 1000**3
    timeout: float = 30.0
    retries: int = 2
    connect_to: tuple[ConnectTo, ...] = ()


@dataclass(frozen=True)
class Boilerplate:
    selectors: tuple[str, ...] = ()
    text_patterns: tuple[str, ...] = ()
    min_share: float = 0.5


@dataclass(frozen=True)
class Pages:
    """How the site shows one page under several URLs (read by transform)."""

    # Query parameters that select one part of a multi-part page (Joomla: start).
    part_params: tuple[str, ...] = ()
    # Query parameters that show every part at once (Joomla: showall).
    all_parts_params: tuple[str, ...] = ()
    # Query parameters that only change presentation (print views, menu ids).
    variant_params: tuple[str, ...] = ()


@dataclass(frozen=True)
class Successor:
    base_url: str | None = None
    host: str | None = None
    # A URL stays a str; a local file becomes an absolute Path.
    inventory_sitemap: str | Path | None = None
    inventory_csv: Path | None = None
    inventory_warc: Path | None = None


@dataclass(frozen=True)
class UrlForms:
    """The other URLs a CMS answers for one page, as data (a preset: ``profiles/cms/*.toml``).

    Read by ``sunset redirects`` to answer those forms too, through the nginx
    maps. Empty values switch a form off.
    """

    # A path prefix the CMS ignores: /index.php/<path> shows /<path>.
    front_controller: str = ""
    # The query parameter that numbers an item; its value may carry an alias
    # after the number (Joomla: id=112:flu-clinics), which the CMS ignores.
    id_param: str = ""
    # A path segment "112-flu-clinics" names item 112 (Joomla's SEF URLs).
    id_prefix: bool = False
    # The URL of content item {id} and of listing {id} (Joomla: article, category).
    content_url: str = ""
    listing_url: str = ""
    # A request with one of these name=value query parameters asks for a feed.
    feed_params: tuple[str, ...] = ()
    # Regular expressions (searched in path?query) naming the CMS's sitemaps.
    sitemap_patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Redirects:
    overrides: Path | None = None
    significant_query_params: tuple[str, ...] = DEFAULT_SIGNIFICANT_QUERY_PARAMS
    # Pairs rather than a dict so the dataclass stays hashable; file order kept.
    section_rules: tuple[tuple[str, str], ...] = ()
    archive_url: str | None = None
    archive_mode: str = "redirect"
    home: str | None = None
    # Where the legacy site's feeds and sitemaps go (absolute, or a path on
    # the new site); None: the new home page, and for sitemaps the successor's
    # inventory sitemap when it is a URL.
    feed: str | None = None
    sitemap: str | None = None
    # A preset of URL forms (``profiles/cms/<name>.toml``) and the profile's
    # own changes to it (``[redirects.url_forms]``), merged into url_forms.
    cms: str | None = None
    url_forms: UrlForms = field(default_factory=UrlForms)
    # Topic matching (ranked retrieval on rare terms) after the cascade's
    # exact/slug/title/content steps; false gives the cascade alone.
    topic_match: bool = True


@dataclass(frozen=True)
class Profile:
    """A validated site profile. ``name`` is the file's stem, ``path`` its location."""

    name: str
    path: Path
    site: Site
    crawl: Crawl
    boilerplate: Boilerplate
    successor: Successor
    redirects: Redirects
    pages: Pages = field(default_factory=Pages)
    # The parsed TOML, kept so overrides can be re-validated from scratch and
    # defaults that depend on other keys (allowed_hosts, home) are recomputed.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def with_overrides(self, **overrides: Any) -> Profile:
        """Return a copy with some keys replaced, validated like the file itself.

        Keys are field names, e.g. ``start_urls=[...]`` or ``connect_to=[...]``;
        they are unique across tables, so no table name is needed. ``None``
        values are ignored, which lets the CLI pass unset options straight in.
        """
        raw = {table: dict(values) for table, values in self.raw.items()}
        for key, value in overrides.items():
            if value is None:
                continue
            table = _FIELD_TABLE.get(key)
            if table is None:
                raise ProfileError(
                    f"profile {self.path}: override {key}: unknown key"
                    f"{_suggest(key, _FIELD_TABLE)}",
                    path=str(self.path),
                    key=key,
                )
            raw.setdefault(table, {})[key] = _to_raw(value)
        return _build(raw, self.path, label=f"{self.path} (with overrides)", name=self.name)

    def successor_profile(self) -> Profile:
        """The same profile aimed at the successor site, to crawl its inventory.

        Only the start URL, the hosts and the exclusions change: the politeness
        settings that suit one site's operator suit the other's.
        """
        base, host = self.successor.base_url, self.successor.host
        if not base or not host:
            raise ProfileError(
                f"profile {self.path}: [successor] base_url is needed to crawl the successor",
                path=str(self.path),
                key="base_url",
            )
        return self.with_overrides(start_urls=[base], allowed_hosts=[host], exclude=[])

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain, TOML/JSON-friendly values (no None), table by table."""
        out: dict[str, dict[str, Any]] = {}
        for table in _TABLES:
            section = getattr(self, table)
            values: dict[str, Any] = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if value is None:
                    continue
                if f.name == "section_rules":
                    values[f.name] = dict(value)
                elif f.name == "url_forms":
                    values[f.name] = {k: _to_raw(v) for k, v in dataclasses.asdict(value).items()}
                else:
                    values[f.name] = _to_raw(value)
            out[table] = values
        return out


# --------------------------------------------------------------------------
# Small public helpers

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Bytes from ``"50MB"``, ``"1.5GiB"`` or a plain int.

    KB/MB/GB are decimal (as WARC tooling and disk vendors count) and
    KiB/MiB/GiB binary, so both habits give the number the user meant.
    Raises ValueError with a short reason.
    """
    if isinstance(value, bool):
        raise ValueError("expected a size like '50MB' or a number of bytes")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("expected a size > 0")
        return value
    if not isinstance(value, str):
        raise ValueError("expected a size like '50MB' or a number of bytes")
    match = _SIZE_RE.match(value)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError("expected a size like '50MB', '1GB' or '512KiB'")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])
    if size <= 0:
        raise ValueError("expected a size > 0")
    return size


_CONNECT_TO_RE = re.compile(
    r"^(?P<host>[^:\[\]\s]+):(?P<port>\d{1,5}):(?P<addr>\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+)"
    r":(?P<port2>\d{1,5})$"
)


def parse_connect_to(value: str) -> ConnectTo:
    """Parse ``HOST:PORT:ADDR:PORT2`` (curl's --connect-to; IPv6 ADDR in brackets).

    Unlike curl, empty HOST/PORT wildcards are refused: a rule that captures
    every host could silently send crawl traffic somewhere unintended.
    Raises ValueError with a short reason.
    """
    match = _CONNECT_TO_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError("expected HOST:PORT:ADDR:PORT2 like 'www.example.org:80:127.0.0.1:8001'")
    port, port2 = int(match["port"]), int(match["port2"])
    if not (1 <= port <= 65535 and 1 <= port2 <= 65535):
        raise ValueError("ports must be between 1 and 65535")
    host = match["host"].lower()
    if not _HOST_RE.match(host):
        raise ValueError(f"{match['host']!r} is not a host name")
    return ConnectTo(host=host, port=port, addr=match["addr"].strip("[]"), port2=port2)


def list_profiles() -> list[str]:
    """Names of the profiles shipped with sunset."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A shipped profile's file for a bare name; otherwise the given path."""
    text = str(name_or_path)
    # Anything that looks like a path is one; a bare word is a shipped name.
    # That way a stray file called "demo" in the cwd cannot shadow a profile.
    if (
        isinstance(name_or_path, Path)
        or "/" in text
        or text.endswith(".toml")
        or text
        in (
            ".",
            "..",
        )
    ):
        path = Path(text).expanduser()
        if not path.is_file():
            raise ProfileError(f"profile {text}: no such file", path=text)
        return path
    path = PROFILES_DIR / f"{text}.toml"
    if not path.is_file():
        known = list_profiles()
        raise ProfileError(
            f"profile {text!r}: no such profile{_suggest(text, known)}"
            f" (shipped: {', '.join(known) or 'none'}; give a path to use your own file)",
            path=text,
        )
    return path


def load_profile(name_or_path: str | Path) -> Profile:
    """Load and validate a profile by shipped name or by path."""
    path = resolve_profile_path(name_or_path)
    label = str(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"profile {label}: not UTF-8 text (byte {exc.start}); save it as UTF-8",
            path=label,
        ) from None
    except OSError as exc:
        raise ProfileError(f"profile {label}: cannot read: {exc.strerror}", path=label) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {label}: {_describe_toml_error(exc)}", path=label) from None
    return _build(data, path, label=label, name=path.stem)


# --------------------------------------------------------------------------
# Validation machinery


class _Bad(Exception):
    """A value problem; ``sub`` locates it inside the key (``[2]``, ``."/x"``)."""

    def __init__(self, message: str, sub: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.sub = sub


class _Ctx:
    """What validators need beyond the value: where relative paths start."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir


Check = Callable[[_Ctx, Any], Any]
_REQUIRED = object()


def _show(value: Any) -> str:
    """A value as the user wrote it in TOML, short enough for one line."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, choices: Sequence[str] | Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _expect(what: str, value: Any) -> _Bad:
    return _Bad(f"expected {what}, got {_show(value)}")


def _bool(ctx: _Ctx, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _expect("true or false", value)
    return value


def _int(minimum: int) -> Check:
    def check(ctx: _Ctx, value: Any) -> int:
        # bool is an int in Python but "true" is never a count.
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _expect(f"an integer >= {minimum}", value)
        return value

    return check


def _number(minimum: float, *, exclusive: bool = False, maximum: float | None = None) -> Check:
    if maximum is not None:
        what = f"a number in ({minimum:g}, {maximum:g}]"
    else:
        what = f"a number {'>' if exclusive else '>='} {minimum:g}"

    def check(ctx: _Ctx, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _expect(what, value)
        low_ok = value > minimum if exclusive else value >= minimum
        if not math.isfinite(value) or not low_ok or (maximum is not None and value > maximum):
            raise _expect(what, value)
        return float(value)

    return check


def _str(*, empty_ok: bool = True) -> Check:
    def check(ctx: _Ctx, value: Any) -> str:
        if not isinstance(value, str) or (not empty_ok and not value.strip()):
            raise _expect("a string" if empty_ok else "a non-empty string", value)
        return value

    return check


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def _valid_url(value: Any) -> bool:
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port, which is the point
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _url(ctx: _Ctx, value: Any) -> str:
    if not _valid_url(value):
        raise _expect("an http(s) URL", value)
    return value


def _host(ctx: _Ctx, value: Any) -> str:
    if not isinstance(value, str) or not _HOST_RE.match(value.lower()):
        raise _expect("a host name like 'www.example.org' (no scheme or port)", value)
    return value.lower()


def _regex(ctx: _Ctx, value: Any) -> str:
    if not isinstance(value, str):
        raise _expect("a regular expression string", value)
    try:
        re.compile(value)
    except re.error as exc:
        raise _Bad(f"invalid regular expression {_show(value)}: {exc}") from None
    return value


def _list(item: Check, *, non_empty: bool = False, what: str = "strings") -> Check:
    def check(ctx: _Ctx, value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list) or (non_empty and not value):
            raise _expect(f"a {'non-empty ' if non_empty else ''}list of {what}", value)
        out = []
        for index, entry in enumerate(value):
            try:
                out.append(item(ctx, entry))
            except _Bad as exc:
                raise _Bad(exc.message, f"[{index}]{exc.sub}") from None
        return tuple(out)

    return check


def _size(ctx: _Ctx, value: Any) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise _Bad(f"{exc}, got {_show(value)}") from None


def _connect_to(ctx: _Ctx, value: Any) -> ConnectTo:
    if not isinstance(value, str):
        raise _expect("a string HOST:PORT:ADDR:PORT2", value)
    try:
        return parse_connect_to(value)
    except ValueError as exc:
        raise _Bad(f"{exc}, got {_show(value)}") from None


def _date(ctx: _Ctx, value: Any) -> dt.date:
    # TOML has a native date type; a quoted string is accepted too because
    # people copy dates from documents.
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _expect("a date YYYY-MM-DD", value)


_EMAIL_RE = re.compile(r"^(mailto:)?[^@\s]+@[^@\s]+\.[^@\s]+$")


def _contact(ctx: _Ctx, value: Any) -> str:
    if isinstance(value, str) and (_EMAIL_RE.match(value) or _valid_url(value)):
        return value
    raise _expect("an e-mail address or http(s) URL", value)


def _path(ctx: _Ctx, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _expect("a file path", value)
    if _looks_like_url(value):
        raise _expect("a local file path, not a URL", value)
    return (ctx.base_dir / Path(value).expanduser()).resolve()


def _url_or_path(ctx: _Ctx, value: Any) -> str | Path:
    if isinstance(value, str) and _looks_like_url(value):
        return _url(ctx, value)
    return _path(ctx, value)


def _looks_like_url(value: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value) is not None


def _choice(*choices: str) -> Check:
    def check(ctx: _Ctx, value: Any) -> str:
        if value not in choices:
            raise _expect("one of " + ", ".join(repr(c) for c in choices), value)
        return value

    return check


def _archive_url(ctx: _Ctx, value: Any) -> str:
    if not isinstance(value, str):
        raise _expect("a URL template containing {url}", value)
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise _Bad(f"malformed template ({exc}), got {_show(value)}") from None
    unknown = names - {"url", "timestamp"}
    if unknown:
        raise _Bad(
            f"unknown placeholder {{{sorted(unknown)[0]}}}; only {{url}} and {{timestamp}}"
            f" are filled in, got {_show(value)}"
        )
    if "url" not in names:
        raise _expect("a URL template containing {url}", value)
    if not _valid_url(value.replace("{url}", "x").replace("{timestamp}", "1")):
        raise _expect("an http(s) URL template containing {url}", value)
    return value


def _section_rules(ctx: _Ctx, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise _expect('a table of "/old/prefix" = "new URL or /path"', value)
    rules = []
    for prefix, target in value.items():
        where = f'."{prefix}"' if not re.fullmatch(r"[A-Za-z0-9_-]+", prefix) else f".{prefix}"
        if not prefix.startswith("/"):
            raise _Bad(f"old path prefix must start with '/', got {_show(prefix)}", where)
        if not isinstance(target, str) or not (target.startswith("/") or _valid_url(target)):
            raise _Bad(
                f"expected an http(s) URL or a path starting with '/', got {_show(target)}", where
            )
        rules.append((prefix, target))
    return tuple(rules)


def _target(ctx: _Ctx, value: Any) -> str:
    if not isinstance(value, str) or not (value.startswith("/") or _valid_url(value)):
        raise _expect("an http(s) URL or a path starting with '/'", value)
    return value


def list_cms_presets() -> list[str]:
    """Names of the CMS URL-form presets shipped with sunset."""
    return sorted(p.stem for p in CMS_DIR.glob("*.toml"))


def _cms(ctx: _Ctx, value: Any) -> str:
    known = list_cms_presets()
    if not isinstance(value, str) or value not in known:
        raise _Bad(
            f"expected one of {', '.join(repr(k) for k in known)} (the presets in"
            f" {CMS_DIR}), got {_show(value)}"
        )
    return value


_FRONT_CONTROLLER = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_QUERY_NAME = re.compile(r"[A-Za-z0-9_]+")
# What a form's URL template may hold: a path and query a client sends as is.
_FORM_TEMPLATE = re.compile(r"/[A-Za-z0-9._~!$'()*+,;=:@/?&%{}-]*")


def _front_controller(ctx: _Ctx, value: Any) -> str:
    if not isinstance(value, str) or not (value == "" or _FRONT_CONTROLLER.fullmatch(value)):
        raise _expect("a path like '/index.php' (or '' for none)", value)
    return value


def _query_name(ctx: _Ctx, value: Any) -> str:
    if not isinstance(value, str) or not (value == "" or _QUERY_NAME.fullmatch(value)):
        raise _expect("a query parameter name (letters, digits, _) or ''", value)
    return value


def _form_template(ctx: _Ctx, value: Any) -> str:
    if value == "":
        return value
    if (
        not isinstance(value, str)
        or not _FORM_TEMPLATE.fullmatch(value)
        or value.count("{id}") != 1
        or value.replace("{id}", "").count("{") + value.replace("{id}", "").count("}")
    ):
        raise _expect(
            "a path and query holding {id} once, like"
            " '/index.php?option=com_content&view=article&id={id}' (or '')",
            value,
        )
    return value


def _feed_param(ctx: _Ctx, value: Any) -> str:
    name, eq, wanted = value.partition("=") if isinstance(value, str) else ("", "", "")
    if not (eq and _QUERY_NAME.fullmatch(name) and re.fullmatch(r"[A-Za-z0-9._~-]+", wanted)):
        raise _expect("name=value, like 'format=feed'", value)
    return value


_URL_FORMS: dict[str, Check] = {
    "front_controller": _front_controller,
    "id_param": _query_name,
    "id_prefix": _bool,
    "content_url": _form_template,
    "listing_url": _form_template,
    "feed_params": _list(_feed_param, what="name=value strings"),
    "sitemap_patterns": _list(_regex, what="regular expressions"),
}


def _url_forms(ctx: _Ctx, value: Any) -> dict[str, Any]:
    """The keys given, checked; merged over the cms preset's in :func:`_build`."""
    if not isinstance(value, dict):
        raise _expect("a table of URL forms", value)
    out: dict[str, Any] = {}
    for key, given in value.items():
        check = _URL_FORMS.get(key)
        if check is None:
            raise _Bad(f"unknown key{_suggest(key, _URL_FORMS)}", f".{key}")
        try:
            out[key] = check(ctx, given)
        except _Bad as exc:
            raise _Bad(exc.message, f".{key}{exc.sub}") from None
    return out


def _load_preset(name: str) -> dict[str, Any]:
    path = CMS_DIR / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _Bad(f"preset {path}: unreadable ({exc})") from None
    data.pop("description", None)
    try:
        return _url_forms(_Ctx(CMS_DIR), data)
    except _Bad as exc:
        raise _Bad(f"preset {path}{exc.sub}: {exc.message}") from None


def _check_forms(forms: UrlForms, significant: Sequence[str]) -> tuple[str, str] | None:
    """(key, problem) if nginx could not tell a form's URLs apart by the significant parameters."""
    known = {name.lower() for name in significant}
    for key in ("content_url", "listing_url"):
        template = getattr(forms, key)
        query = template.partition("?")[2]
        for pair in query.split("&") if query else ():
            name = pair.partition("=")[0]
            if name.lower() not in known:
                return key, (
                    f"parameter {name!r} is not in redirects.significant_query_params:"
                    " nginx could not tell one item's URL from another's"
                )
    if forms.id_param and forms.id_param.lower() not in known:
        return "id_param", f"{forms.id_param!r} is not in redirects.significant_query_params"
    return None


@dataclass(frozen=True)
class _Key:
    check: Check
    required: bool = False


# The schema, table by table. Defaults live on the dataclasses so there is one
# source of truth; keys absent here are unknown and rejected.
_SCHEMA: dict[str, dict[str, _Key]] = {
    "site": {
        "name": _Key(_str(empty_ok=False), required=True),
        "description": _Key(_str()),
        "start_urls": _Key(_list(_url, non_empty=True, what="http(s) URLs"), required=True),
        "allowed_hosts": _Key(_list(_host, non_empty=True, what="host names")),
        "include": _Key(_list(_regex, what="regular expressions")),
        "exclude": _Key(_list(_regex, what="regular expressions")),
        "frozen": _Key(_date),
    },
    "crawl": {
        "obey_robots": _Key(_bool),
        "use_sitemap": _Key(_bool),
        "concurrency_per_host": _Key(_int(1)),
        "delay": _Key(_number(0)),
        "autothrottle": _Key(_bool),
        "user_agent": _Key(_str(empty_ok=False)),
        "contact": _Key(_contact),
        "operator": _Key(_str(empty_ok=False)),
        "max_depth": _Key(_int(0)),
        "max_path_depth": _Key(_int(1)),
        "max_repeated_segments": _Key(_int(1)),
        "max_query_variants": _Key(_int(1)),
        "trap_patterns": _Key(_list(_regex, what="regular expressions")),
        "calendar_patterns": _Key(_list(_regex, what="regular expressions")),
        "max_calendar_variants": _Key(_int(1)),
        "max_body_size": _Key(_size),
        "warc_max_size": _Key(_size),
        "timeout": _Key(_number(0, exclusive=True)),
        "retries": _Key(_int(0)),
        "connect_to": _Key(_list(_connect_to, what="HOST:PORT:ADDR:PORT2 strings")),
    },
    "boilerplate": {
        "selectors": _Key(_list(_str(empty_ok=False), what="CSS selectors")),
        "text_patterns": _Key(_list(_regex, what="regular expressions")),
        "min_share": _Key(_number(0, exclusive=True, maximum=1)),
    },
    "pages": {
        "part_params": _Key(_list(_str(empty_ok=False), what="query parameter names")),
        "all_parts_params": _Key(_list(_str(empty_ok=False), what="query parameter names")),
        "variant_params": _Key(_list(_str(empty_ok=False), what="query parameter names")),
    },
    "successor": {
        "base_url": _Key(_url),
        "host": _Key(_host),
        "inventory_sitemap": _Key(_url_or_path),
        "inventory_csv": _Key(_path),
        "inventory_warc": _Key(_path),
    },
    "redirects": {
        "overrides": _Key(_path),
        "significant_query_params": _Key(_list(_str(empty_ok=False))),
        "section_rules": _Key(_section_rules),
        "archive_url": _Key(_archive_url),
        "archive_mode": _Key(_choice("redirect", "gone")),
        "home": _Key(_url),
        "feed": _Key(_target),
        "sitemap": _Key(_target),
        "cms": _Key(_cms),
        "url_forms": _Key(_url_forms),
        "topic_match": _Key(_bool),
    },
}
_TABLES = tuple(_SCHEMA)
_FIELD_TABLE = {key: table for table, keys in _SCHEMA.items() for key in keys}
_CLASSES: dict[str, type] = {
    "site": Site,
    "crawl": Crawl,
    "boilerplate": Boilerplate,
    "pages": Pages,
    "successor": Successor,
    "redirects": Redirects,
}


def _build(data: Mapping[str, Any], path: Path, *, label: str, name: str) -> Profile:
    def fail(key: str, message: str) -> ProfileError:
        return ProfileError(f"profile {label}: {key}: {message}", path=label, key=key)

    for table, value in data.items():
        if table not in _SCHEMA:
            kind = "table" if isinstance(value, dict) else "key"
            raise fail(
                table,
                f"unknown {kind}{_suggest(table, _SCHEMA)}"
                f" (known tables: {', '.join(f'[{t}]' for t in _TABLES)})",
            )
        if not isinstance(value, dict):
            raise fail(table, f"expected a table [{table}], got {_show(value)}")
    if "site" not in data:
        raise fail("site", "required table [site] is missing")

    ctx = _Ctx(path.parent.resolve())
    sections: dict[str, Any] = {}
    for table, keys in _SCHEMA.items():
        given = data.get(table, {})
        for key in given:
            if key not in keys:
                raise fail(f"{table}.{key}", f"unknown key{_suggest(key, keys)}")
        values: dict[str, Any] = {}
        for key, spec in keys.items():
            if key not in given:
                if spec.required:
                    raise fail(f"{table}.{key}", "required key is missing")
                continue
            try:
                values[key] = spec.check(ctx, given[key])
            except _Bad as exc:
                raise fail(f"{table}.{key}{exc.sub}", exc.message) from None
        sections[table] = values

    site, successor, redirects = sections["site"], sections["successor"], sections["redirects"]
    start_hosts = tuple(dict.fromkeys(urlsplit(u).hostname or "" for u in site["start_urls"]))
    if "allowed_hosts" in site:
        for index, url in enumerate(site["start_urls"]):
            host = urlsplit(url).hostname
            if host not in site["allowed_hosts"]:
                raise fail(
                    f"site.start_urls[{index}]",
                    f"host {host!r} is not in site.allowed_hosts, got {_show(url)}",
                )
    else:
        site["allowed_hosts"] = start_hosts
    if "base_url" in successor and "host" not in successor:
        successor["host"] = urlsplit(successor["base_url"]).hostname
    if "home" not in redirects and "base_url" in successor:
        redirects["home"] = successor["base_url"]
    if "cms" in redirects or "url_forms" in redirects:
        forms: dict[str, Any] = {}
        if "cms" in redirects:
            try:
                forms = _load_preset(redirects["cms"])
            except _Bad as exc:
                raise fail("redirects.cms", exc.message) from None
        forms.update(redirects.get("url_forms", {}))
        merged = UrlForms(**forms)
        significant = redirects.get("significant_query_params", DEFAULT_SIGNIFICANT_QUERY_PARAMS)
        problem = _check_forms(merged, significant)
        if problem is not None:
            raise fail(f"redirects.url_forms.{problem[0]}", problem[1])
        redirects["url_forms"] = merged

    return Profile(
        name=name,
        path=path.resolve(),
        raw={table: dict(values) for table, values in data.items()},
        **{table: _CLASSES[table](**values) for table, values in sections.items()},
    )


def _to_raw(value: Any) -> Any:
    """Turn loaded values back into the shapes TOML produces."""
    if isinstance(value, (ConnectTo, Path)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_to_raw(v) for v in value]
    return value


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's TOMLDecodeError has no lineno attribute; the position is
    # only in the message, so it is moved to the front where editors look.
    message = str(exc)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if match:
        reason = message[: match.start()]
        return f"line {match.group(1)}, column {match.group(2)}: invalid TOML: {reason}"
    match = re.search(r"\s*\(at end of document\)$", message)
    if match:
        return f"end of file: invalid TOML: {message[: match.start()]}"
    return f"invalid TOML: {message}"
