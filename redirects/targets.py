"""Answers a legacy URL gets for what it is, not for which page it shows.

``sunset redirects`` decides per page; a few URLs of a page need their own
answer on top of that decision:

- every archive link carries one timestamp, the profile's ``frozen`` date
  (or the crawl's, with none): the archive then shows each URL as it stood
  when the site was frozen, and a reviewer sees one date throughout;
- each part of a multi-part article (``?start=2``, ``?limitstart=2``,
  ``?showall=1``) or page of a listing that goes to the archive goes to the
  archived copy of that part, not of its first part;
- robots.txt is answered by nginx itself (see redirects/nginx.py), so it
  gets no row; sitemaps and feeds go to the new site's sitemap and feed
  (the profile's ``[redirects] sitemap`` and ``feed``), never to the
  archive, whose copy of a feed is no feed;
- a CMS's other URL forms of a page (``index.php?option=com_content&
  view=article&id=112`` for ``/your-ccg/news/112-flu-clinics``) get the
  page's answer: :func:`form_urls` names them, from the ids the crawled URLs
  carry (profile ``[redirects] cms``, see redirects/forms.py for the nginx side).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit, urlunsplit

from sunset.profile import Profile

from .match import Decision
from .store import Buffer, create

# Feeds by type, whatever the CMS.
FEED_MIMES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)
# Sitemaps by name, whatever the CMS: sitemap.xml, sitemap_index.xml, sitemap-1.xml.gz.
_SITEMAP_PATH = re.compile(r"(?i)/sitemap[^/]*\.xml(\.gz)?$")
# A SEF segment "112-flu-clinics" carries id 112; "2019-review" is a year.
_ID_SEGMENT = re.compile(r"^(?!(?:19|20)\d\d-)(\d+)-(?=\D)")
_LEADING_NUMBER = re.compile(r"^(\d+)(?:\D|$)")


def archive_url(template: str | None, url: str, timestamp: str) -> str | None:
    """The archive's copy of ``url`` at ``timestamp`` (14 digits), or None without an archive."""
    if not template:
        return None
    return template.replace("{timestamp}", timestamp).replace("{url}", url)


class Targets:
    """The profile's rules for URLs that get an answer of their own."""

    def __init__(self, profile: Profile, home: str, timestamp: str) -> None:
        rp = profile.redirects
        self.template = rp.archive_url
        self.timestamp = timestamp
        self.home = home
        self.feed = urljoin(home, rp.feed) if rp.feed else home
        sitemap = rp.sitemap
        listed = profile.successor.inventory_sitemap
        if sitemap is None and isinstance(listed, str):
            sitemap = listed  # the new site's own sitemap, as the profile lists it
        self.sitemap = urljoin(home, sitemap) if sitemap else home
        self.forms = rp.url_forms
        self.feed_params = {
            (name.lower(), value.lower())
            for name, _, value in (p.partition("=") for p in self.forms.feed_params)
        }
        self.sitemap_patterns = [re.compile(p) for p in self.forms.sitemap_patterns]
        pages = profile.pages
        self.part_params = {p.lower() for p in pages.part_params}
        self.all_parts_params = {p.lower() for p in pages.all_parts_params}
        self.variant_params = {p.lower() for p in pages.variant_params}
        self.part_names = tuple(dict.fromkeys(p for p in pages.part_params))
        self.all_parts_names = tuple(dict.fromkeys(p for p in pages.all_parts_params))

    # -- archive ------------------------------------------------------------

    def archive(self, url: str) -> str | None:
        return archive_url(self.template, url, self.timestamp)

    def part(self, url: str) -> tuple[bool, int]:
        """(shows every part, part number; 0 for the first part or none)."""
        show_all, number = False, 0
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            name = name.lower()
            if name in self.all_parts_params and value not in ("", "0"):
                show_all = True
            elif name in self.part_params and value.isdigit():
                number = int(value)
        return show_all, number

    def part_copy(self, url: str, captured: Callable[[str], bool]) -> str:
        """The URL whose archived copy shows ``url``'s part.

        ``url`` without presentation parameters and empty part parameters
        (``?showall=&start=2&tmpl=component`` → ``?start=2``) when that was
        captured too: the copy most likely archived. Else ``url`` itself.
        """
        parts = urlsplit(url)
        kept = []
        for piece in parts.query.split("&") if parts.query else ():
            name, _, value = piece.partition("=")
            low = name.lower()
            if low in self.variant_params:
                continue
            if (low in self.part_params or low in self.all_parts_params) and value in ("", "0"):
                continue
            kept.append(piece)
        plain = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))
        return plain if plain != url and captured(plain) else url

    def for_url(
        self, url: str, page_url: str | None, d: Decision, captured: Callable[[str], bool]
    ) -> Decision:
        """``d`` (its page's decision) as ``url`` should get it: a part's own archived copy."""
        if d.method != "archive" or page_url is None or url == page_url:
            return d
        show_all, number = self.part(url)
        if not (show_all or number):
            return d
        archived = self.archive(self.part_copy(url, captured))
        if not archived:
            return d
        what = "all its parts" if show_all else "this part, not the first"
        return Decision(archived, d.method, d.confidence, f"{d.note}; the archived copy of {what}")

    # -- robots.txt, sitemaps, feeds ----------------------------------------

    @staticmethod
    def is_robots(url: str) -> bool:
        """True for /robots.txt, which nginx answers itself (never a row)."""
        try:
            path = urlsplit(url).path
        except ValueError:
            return False
        return path == "/robots.txt" or ("%" in path and unquote(path) == "/robots.txt")

    def special(self, url: str, mime: str = "") -> Decision | None:
        """A sitemap's or a feed's answer, or None for any other URL."""
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if _SITEMAP_PATH.search(parts.path) or any(p.search(target) for p in self.sitemap_patterns):
            return Decision(self.sitemap, "special", 1.0, "a sitemap: the new site's sitemap")
        if mime in FEED_MIMES or self._asks_for_feed(parts.query):
            where = "the new site's feed" if self.feed != self.home else "the new home page"
            return Decision(self.feed, "special", 1.0, f"a feed: {where}")
        return None

    def _asks_for_feed(self, query: str) -> bool:
        if not query or not self.feed_params:
            return False
        return any(
            (name.lower(), value.lower()) in self.feed_params
            for name, value in parse_qsl(query, keep_blank_values=True)
        )

    # -- a CMS's other URL forms -----------------------------------------------

    def form_urls(self, url: str, kind: str) -> Iterator[tuple[str, str]]:
        """(form URL path and query, what names it) for each form of the page ``url`` shows.

        ``kind`` is the page's ("content", "listing"). The ids come from
        the URL itself: a form URL's own id parameter, or a SEF segment
        ``112-title``. A part keeps its part: ``?start=2`` gives the form
        with ``&start=2`` and ``&limitstart=2``.
        """
        forms = self.forms
        if not (forms.content_url or forms.listing_url):
            return
        try:
            parts = urlsplit(url)
        except ValueError:
            return
        show_all, number = self.part(url)
        suffixes = [""]
        if show_all:
            suffixes = [f"&{name}=1" for name in self.all_parts_names]
        elif number:
            suffixes = [f"&{name}={number}" for name in self.part_names]
        found = self._query_form(parts.path, parts.query)
        if found is None and forms.id_prefix:
            path = parts.path
            if forms.front_controller and path.lower().startswith(forms.front_controller.lower()):
                path = path[len(forms.front_controller) :]
            last = unquote(path.rstrip("/").rsplit("/", 1)[-1])
            m = _ID_SEGMENT.match(last)
            template = {"content": forms.content_url, "listing": forms.listing_url}.get(kind, "")
            if m and template:
                found = template, int(m.group(1))
        if found is None:
            return
        template, item = found
        base = template.replace("{id}", str(item))
        for suffix in suffixes:
            yield base + suffix, f"id {item} of {parts.path or '/'}"

    def _query_form(self, path: str, query: str) -> tuple[str, int] | None:
        """(template, id) when ``path?query`` is one of the forms' own URLs."""
        if not query:
            return None
        given: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            given.setdefault(name.lower(), value)
        for template in (self.forms.content_url, self.forms.listing_url):
            if not template:
                continue
            t_path, _, t_query = template.partition("?")
            if path.lower() != t_path.lower():
                continue
            item: int | None = None
            for name, _, value in (p.partition("=") for p in t_query.split("&")):
                have = given.get(name.lower())
                if have is None:
                    break
                if value == "{id}":
                    m = _LEADING_NUMBER.match(have)
                    if m is None:
                        break
                    item = int(m.group(1))
                elif have.lower() != value.lower():
                    break
            else:
                if item is not None:
                    return template, item
        return None


# -- rows for the forms ------------------------------------------------------------

_FORM_SCHEMA = """
CREATE TABLE form_row(
    url TEXT NOT NULL, new TEXT NOT NULL, method TEXT NOT NULL, confidence REAL NOT NULL,
    status INTEGER NOT NULL, title TEXT NOT NULL, grp TEXT NOT NULL, note TEXT NOT NULL);
CREATE INDEX grp_gid ON grp(gid)
"""


def form_rows(
    db: sqlite3.Connection,
    targets: Targets,
    legacy_base: str,
    refuse: Callable[[str, str, str], None],
) -> int:
    """Add a row for each form URL of each id the rows' URLs carry; how many were added.

    Reads and extends ``sunset redirects``' scratch tables ``redirect_row``
    and ``grp`` (redirects/run.py), after every other row is written: a
    form's answer is its page's final answer, overrides and the old site's
    redirects included. A form URL the crawl holds keeps its own row; one
    named by pages with different answers is left out (and says so).
    """
    forms = targets.forms
    if not (forms.content_url or forms.listing_url):
        return 0
    create(db, _FORM_SCHEMA)
    found = Buffer(db, "INSERT INTO form_row VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    for old, new, method, confidence, status, title, gid, kind in db.execute(
        "SELECT r.old, r.new, r.method, r.confidence, r.status, r.title, r.grp, g.kind"
        " FROM redirect_row AS r LEFT JOIN grp AS g ON g.gid = r.grp ORDER BY r.id"
    ):
        if method == "special":
            continue  # a feed's answer is no answer for its page
        for form, source in targets.form_urls(old, kind or ""):
            note = f"another URL of the page: {source}"
            found.add((legacy_base + form, new, method, confidence, status, title, gid, note))
    found.flush()
    # Decided in a table of its own first: redirect_row grows below.
    db.execute(
        "CREATE TABLE form_answer AS SELECT url, count(DISTINCT new || ' ' || status) AS answers,"
        " min(rowid) AS first FROM form_row WHERE url NOT IN (SELECT old FROM redirect_row)"
        " GROUP BY url"
    )
    added = db.execute(
        "INSERT INTO redirect_row(old, new, method, confidence, status, title, grp, note)"
        " SELECT f.url, f.new, f.method, f.confidence, f.status, f.title, f.grp, f.note"
        " FROM form_answer AS a JOIN form_row AS f ON f.rowid = a.first"
        " WHERE a.answers = 1 ORDER BY a.first"
    ).rowcount
    for url, note in db.execute(
        "SELECT a.url, f.note FROM form_answer AS a JOIN form_row AS f ON f.rowid = a.first"
        " WHERE a.answers > 1 ORDER BY a.first"
    ).fetchall():
        answers = [
            str(new)
            for (new,) in db.execute(
                "SELECT new FROM form_row WHERE url = ? GROUP BY new ORDER BY min(rowid) LIMIT 3",
                (url,),
            )
        ]
        refuse(
            url,
            answers[0],
            f"pages with different answers carry its id ({note.split(': ', 1)[-1]}):"
            f" {', '.join(answers)}",
        )
    return int(added)
