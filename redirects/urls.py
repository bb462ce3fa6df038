"""The keys old and new URLs are compared by.

Each key throws away one more kind of difference that does not change which
page a URL shows: scheme and host (two sites), letter case and a trailing
slash (Joomla and most CMSs fold them), the ``index.php`` front controller,
a Joomla article id prefix (``112-``), a file extension. Query parameters are
kept only when the profile names them significant, as GOV.UK's transition
tool does per site.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit, urlunsplit

# Joomla's "112-" id prefix; a year ("2019-review") is part of the title.
_ID_PREFIX = re.compile(r"^(?!(?:19|20)\d\d-)\d+-(?=[^\d])")
_EXTENSION = re.compile(r"\.(?:html?|php|aspx?|jsp|cfm|shtml)$", re.IGNORECASE)
_FRONT_CONTROLLER = re.compile(r"^/index\.php(?=/|$)", re.IGNORECASE)
_DASHES = re.compile(r"[\s_+\-]+")
_WORDS = re.compile(r"\w+", re.UNICODE)
# A URL whose authority is a plain name or IPv4 host, at most with a numeric
# port: urlsplit would find that host (ASCII URLs only).
_PLAIN_HOST = re.compile(r"[a-z][a-z0-9+.-]*://([a-z0-9.-]+)(?::[0-9]*)?(?:[/?#]|\Z)", re.I)
_TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:»·]\s+")
# A title piece on this share of the pages is the site's name, not the page's.
AFFIX_SHARE = 0.3


def request_target(url: str) -> str:
    """Path and query of ``url`` as sent in a request line (``/a?b=1``)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def host_of(url: str) -> str:
    if url.isascii() and (plain := _PLAIN_HOST.match(url)):
        # Nearly every URL: its host read without taking the URL apart.
        return plain.group(1).lower().rstrip(".")
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def path_key(path: str) -> str:
    """A path with case, trailing slash, ``index.php`` and extension folded away.

    ``/Your-CCG/News/`` and ``/index.php/your-ccg/news.html`` both give
    ``/your-ccg/news``; the root stays ``/``.
    """
    path = unquote(path).lower()
    path = _FRONT_CONTROLLER.sub("", path)
    path = re.sub(r"/{2,}", "/", path).rstrip("/")
    path = _EXTENSION.sub("", path)
    return path or "/"


def slug_of(path: str) -> str:
    """The last segment of a path, as a CMS would have generated it from a title.

    Drops Joomla's numeric id prefix (``112-flu-clinics`` → ``flu-clinics``),
    the extension, case and the difference between spaces, underscores and
    dashes. A purely numeric segment has no slug: it says nothing about the page.
    """
    last = path_key(path).rsplit("/", 1)[-1]
    last = _ID_PREFIX.sub("", last)
    last = _DASHES.sub("-", last).strip("-")
    return "" if last.isdigit() else last


def parent_paths(path: str) -> list[str]:
    """Ancestors of a path key, nearest first, ending with ``/``."""
    key = path_key(path)
    out = []
    while key != "/":
        key = key.rsplit("/", 1)[0] or "/"
        out.append(key)
    return out


def canonical(url: str, significant: tuple[str, ...]) -> str:
    """The key of the page a URL shows: path key plus the significant query, in profile order.

    ``/index.php?Itemid=5&id=7&option=com_content&view=article`` and the same with
    ``utm_source`` added give the same key when ``Itemid`` is not significant.
    """
    parts = urlsplit(url)
    key = path_key(parts.path or "/")
    if parts.query and significant:
        wanted = {name.lower(): name for name in significant}
        values: dict[str, str] = {}
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            low = name.lower()
            if low in wanted and low not in values:
                values[low] = value
        query = "&".join(
            f"{name.lower()}={values[name.lower()]}"
            for name in significant
            if values.get(name.lower())
        )
        if query:
            key = f"{key}?{query}"
    return key


def absolute(base: str, url: str) -> str:
    """``url`` resolved against ``base``, fragment dropped."""
    parts = urlsplit(urljoin(base, url.strip()))
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def title_key(title: str, affixes: frozenset[str] = frozenset()) -> str:
    """A title without the site-name part and with case and punctuation folded."""
    pieces = [p for p in _TITLE_SEPARATORS.split(title.strip()) if p]
    kept = [p for p in pieces if " ".join(words(p)) not in affixes] or pieces
    return " ".join(words(" ".join(kept)))


def title_pieces(title: str) -> set[str]:
    """The pieces of a title split at its separators, folded; none for a one-piece title."""
    pieces = _TITLE_SEPARATORS.split(title.strip())
    if len(pieces) < 2:
        return set()
    return {joined for p in pieces if (joined := " ".join(words(p)))}


def affix_floor(titles: int, share: float = AFFIX_SHARE) -> int:
    """How many of ``titles`` titles must carry a piece for it to be the site's name."""
    return max(3, int(titles * share))


def site_affixes(titles: list[str], share: float = AFFIX_SHARE) -> frozenset[str]:
    """Title pieces that repeat on many pages: the site name, not the page's.

    ``Flu clinics - Wigan Borough CCG`` and ``News - Wigan Borough CCG`` share
    ``wigan borough ccg``; a piece counts when at least ``share`` of the titles
    (and at least 3) carry it.
    """
    counts: dict[str, int] = {}
    for title in titles:
        for piece in title_pieces(title):
            counts[piece] = counts.get(piece, 0) + 1
    floor = affix_floor(len(titles), share)
    return frozenset(piece for piece, n in counts.items() if n >= floor)
