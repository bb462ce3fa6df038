"""Find every link and page requisite in HTML, CSS, sitemaps and robots.txt.

Each link comes back with a hop letter (L link, E embed or requisite) and a
short context (`a/@href`, `img/@srcset`, `css url()`), as Heritrix records
outlinks. Parsing is lenient: broken HTML, odd charsets and NUL bytes yield
whatever links can still be found, never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urljoin

import lxml.etree
import lxml.html

CSS_LINK = re.compile(
    r"""@import\s+(?:url\(\s*)?['"]?([^'")\s;]+)|url\(\s*['"]?([^'")\s]+)['"]?\s*\)""",
    re.IGNORECASE,
)
META_REFRESH = re.compile(r"""^\s*\d*\s*[;,]?\s*(?:url\s*=\s*)?['"]?([^'"]+)""", re.IGNORECASE)
SKIP_SCHEMES = ("mailto:", "javascript:", "tel:", "data:", "about:", "#", "callto:", "sms:")

# (tag, attribute, hop) for attributes that hold one URL.
URL_ATTRS: tuple[tuple[str, str, str], ...] = (
    ("a", "href", "L"),
    ("area", "href", "L"),
    ("img", "src", "E"),
    ("script", "src", "E"),
    ("iframe", "src", "E"),
    ("frame", "src", "E"),
    ("embed", "src", "E"),
    ("source", "src", "E"),
    ("track", "src", "E"),
    ("video", "src", "E"),
    ("video", "poster", "E"),
    ("audio", "src", "E"),
    ("object", "data", "E"),
    ("input", "src", "E"),
    ("body", "background", "E"),
    ("table", "background", "E"),
    ("td", "background", "E"),
)
REQUISITE_RELS = frozenset(
    {
        "stylesheet",
        "icon",
        "shortcut",
        "apple-touch-icon",
        "preload",
        "prefetch",
        "manifest",
        "mask-icon",
        "modulepreload",
    }
)


HTML_TYPES = ("text/html", "application/xhtml+xml")


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in head


def is_html(ctype: str, body: bytes) -> bool:
    """Whether a response is parsed as HTML for its links (ctype: lower-cased Content-Type)."""
    return ctype.startswith(HTML_TYPES) or (
        (not ctype or ctype.startswith("text/plain")) and looks_like_html(body)
    )


def _clean(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip().replace("\n", "").replace("\r", "").replace("\t", "")
    if not url or url.lower().startswith(SKIP_SCHEMES):
        return None
    return url


@lru_cache(maxsize=4096)
def _join_cached(base: str, ref: str) -> str | None:
    try:
        return urljoin(base, ref).split("#", 1)[0]
    except ValueError:
        # No parser takes it (a bad IPv6 literal): passed on as written, so
        # the crawl logs it as an invalid URL instead of losing it unsaid.
        return ref.split("#", 1)[0]


def _join(base: str, ref: str) -> str | None:
    # Menus repeat the same root-relative links on every page; keyed on the
    # origin alone, they resolve once per crawl instead of once per page.
    if ref.startswith("/") and not ref.startswith("//"):
        cut = base.find("/", base.find("//") + 2)
        return _join_cached(base if cut < 0 else base[:cut], ref)
    return _join_cached(base, ref)


def _srcset(value: str) -> Iterator[str]:
    for candidate in value.split(","):
        bits = candidate.strip().split()
        if bits:
            yield bits[0]


def html_links(
    body: bytes, url: str, encoding: str | None = None
) -> Iterator[tuple[str, str, str]]:
    """(absolute URL, hop, context) for every link and requisite of an HTML page."""
    body = body.replace(b"\x00", b"")
    if not body.strip():
        return
    try:
        # An unknown declared charset fails already here, so it is inside the try.
        parser = lxml.html.HTMLParser(encoding=encoding, recover=True, remove_comments=True)
        root = lxml.html.document_fromstring(body, parser=parser)
    except (lxml.etree.ParserError, ValueError, LookupError):
        try:  # an unknown declared charset: let lxml guess
            root = lxml.html.document_fromstring(body, parser=lxml.html.HTMLParser(recover=True))
        except (lxml.etree.ParserError, ValueError):
            return
    if root is None:
        return
    base = url
    for el in root.iter("base"):
        href = _clean(el.get("href"))
        if href:
            base = urljoin(url, href)
            break

    def absolute(ref: str) -> str | None:
        return _join(base, ref)

    for tag, attr, hop in URL_ATTRS:
        for el in root.iter(tag):
            ref = _clean(el.get(attr))
            if ref and (link := absolute(ref)):
                yield link, hop, f"{tag}/@{attr}"
    for tag in ("img", "source"):
        for el in root.iter(tag):
            if value := el.get("srcset"):
                for ref in _srcset(value):
                    if (ref := _clean(ref)) and (link := absolute(ref)):
                        yield link, "E", f"{tag}/@srcset"
    for el in root.iter("link"):
        ref = _clean(el.get("href"))
        if not ref or not (link := absolute(ref)):
            continue
        rels = set((el.get("rel") or "").lower().split())
        yield link, "E" if rels & REQUISITE_RELS else "L", "link/@href"
    for el in root.iter("meta"):
        if (el.get("http-equiv") or "").lower() == "refresh":
            m = META_REFRESH.match(el.get("content") or "")
            if m and (ref := _clean(m.group(1))) and (link := absolute(ref)):
                yield link, "R", "meta/@content"
    for el in root.iter("style"):
        for ref in css_refs(el.text or ""):
            if link := absolute(ref):
                yield link, "E", "style/url()"
    for el in root.xpath("//*[@style]"):
        for ref in css_refs(el.get("style") or ""):
            if link := absolute(ref):
                yield link, "E", "@style/url()"


def css_refs(text: str) -> Iterator[str]:
    for m in CSS_LINK.finditer(text):
        ref = _clean(m.group(1) or m.group(2))
        if ref:
            yield ref


def css_links(body: bytes, url: str) -> Iterator[tuple[str, str, str]]:
    text = body.decode("utf-8", "replace")
    for ref in css_refs(text):
        yield urljoin(url, ref).split("#", 1)[0], "E", "css url()"


SITEMAP_LOC = re.compile(rb"<(?:\w+:)?loc>\s*([^<\s]+)\s*</(?:\w+:)?loc>", re.IGNORECASE)


def sitemap_links(body: bytes, url: str) -> tuple[list[str], list[str]]:
    """(page URLs, nested sitemap URLs) from a sitemap or sitemap index.

    A regex rather than an XML parser: sitemaps in the wild are often not
    well-formed, and only <loc> matters.
    """
    is_index = b"<sitemapindex" in body[:2048].lower()
    locs = []
    for m in SITEMAP_LOC.finditer(body):
        loc = m.group(1).decode("utf-8", "replace").replace("&amp;", "&")
        locs.append(urljoin(url, loc))
    return ([], locs) if is_index else (locs, [])


def robots_sitemaps(body: bytes, url: str) -> list[str]:
    out = []
    for line in body.decode("utf-8-sig", "replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "sitemap" and value.strip():
            out.append(urljoin(url, value.strip()))
    return out


def html_title(body: bytes, encoding: str | None = None) -> str:
    m = re.search(rb"<title[^>]*>(.*?)</title>", body[:65536], re.IGNORECASE | re.DOTALL)
    if not m:
        return ""
    raw = m.group(1)
    try:
        text = raw.decode(encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        text = raw.decode("utf-8", "replace")
    return " ".join(lxml.html.fromstring(f"<p>{text}</p>").text_content().split()) if text else ""
