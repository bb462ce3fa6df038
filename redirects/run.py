"""`sunset redirects`: decide where every legacy URL goes and write the files.

The cascade, per legacy page (all URL variants of a page share its answer):
override → exact path → slug → document digest/name → title → content →
listing (follows its items) → the old site's own redirect → section rule →
archive (captured pages) → nearest mapped parent → new home page.

A page whose content we hold goes to its archived copy before a parent
guess: the copy is the page the visitor wanted, a parent section is not.
Listing pages are the exception handled by their own step: their content is
links, and they follow where those links went.

A few URLs get an answer of their own on top of their page's
(:mod:`redirects.targets`): a part of an archived multi-part page its own
archived copy, sitemaps and feeds the new site's, robots.txt no row at all;
and a CMS's other URL forms of a page (profile ``[redirects] cms``) a row each.

Only the new site's index (:class:`redirects.match.NewIndex`) is held in
memory: it is the smaller side, and every old page is looked up in it.
Everything kept per legacy URL or page (captures, pages and their
decisions, which page a URL or canonical key shows, listing links,
overrides, the rows) lives in scratch tables on disk
(:mod:`redirects.store`), read back in order, so memory stays flat however
large the old site is.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from sunset.errors import SunsetError
from sunset.profile import Profile
from sunset.ui import progress

from . import model
from .inventory import (
    REDIRECTED_URLS,
    LegacyIndex,
    NewPage,
    content_pages,
    iter_legacy,
    read_csv_inventory,
    read_new_crawl,
    read_sitemap,
    redirect_location,
)
from .match import Decision, NewIndex, follow_listing, match_page
from .model import Refused, Row
from .nginx import prepare
from .review import (
    PROPOSAL,
    REVIEWS,
    Override,
    Overrides,
    dump_candidates,
    find_candidates,
    load_candidates,
    new_titles,
    save_state,
    target_first,
)
from .store import Buffer, create, open_scratch, scan
from .targets import Targets, form_rows
from .topic import TopicPass
from .urls import (
    canonical,
    host_of,
    parent_paths,
    path_key,
)

MAX_HOPS = 10
# What --install-dir may hold: it is written into nginx include directives.
_PLAIN_DIR = re.compile(r"/[A-Za-z0-9._/+-]*")
CLAIM_SHARE = 0.3


@dataclass
class RedirectOptions:
    crawl_dir: Path
    profile: Profile
    out: Path | None = None
    new_crawl: Path | None = None
    new_sitemap: str | Path | None = None
    new_csv: Path | None = None
    overrides: Path | None = None
    # The directory the nginx snippet names in its includes (default: out).
    install_dir: Path | None = None
    # Drop the reviews stored in the output folder before this run (redirects.review).
    clear_reviews: bool = False
    profile_ref: str | None = None  # the --profile given, recorded for reruns


@dataclass(slots=True)
class _Group:
    url: str
    urls: list[str]
    title: str
    kind: str
    timestamp: str
    links: list[str] = field(default_factory=list)
    decision: Decision | None = None


@dataclass
class RedirectSummary:
    out: Path
    rows: int = 0
    groups: int = 0
    new_pages: int = 0
    methods: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    collisions: int = 0
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reviews: int = 0  # reviewers' decisions in force, kept in OUT/reviews.csv


def _new_inventory(opts: RedirectOptions) -> tuple[list[NewPage], dict[str, str], list[str]]:
    succ = opts.profile.successor
    crawl, sitemap, csv_path = opts.new_crawl, opts.new_sitemap, opts.new_csv
    if not (crawl or sitemap or csv_path):
        # Inventories named on the command line replace the profile's, never add
        # to them: a run given a local file must not also fetch a live sitemap.
        crawl, csv_path = succ.inventory_warc, succ.inventory_csv
        sitemap = None if crawl else succ.inventory_sitemap
    pages: list[NewPage] = []
    moved: dict[str, str] = {}
    sources: list[str] = []
    if crawl:
        crawl = Path(crawl)
        if not crawl.is_dir():
            raise SunsetError(f"new-site crawl {crawl}: no such folder")
        got, moved = read_new_crawl(crawl)
        pages += got
        sources.append(f"crawl {crawl} ({len(got):,} pages and files)")
    if sitemap:
        got = read_sitemap(sitemap)
        pages += got
        sources.append(f"sitemap {sitemap} ({len(got):,} URLs)")
    if csv_path:
        got = read_csv_inventory(Path(csv_path))
        pages += got
        sources.append(f"CSV {csv_path} ({len(got):,} URLs)")
    if not sources:
        raise SunsetError(
            "no inventory of the new site: give --new-crawl, --new-sitemap or --new-csv,"
            " or set [successor] inventory_* in the profile"
        )
    if not pages:
        raise SunsetError(f"the new site's inventory is empty ({'; '.join(sources)})")
    return pages, moved, sources


# Every table here has a row per legacy URL or page: they are what used to
# grow in dicts. ``grp`` is one row per legacy page, with its decision.
_SCHEMA = """
CREATE TABLE grp(
    id INTEGER PRIMARY KEY, gid TEXT NOT NULL, url TEXT NOT NULL, title TEXT NOT NULL,
    kind TEXT NOT NULL, ts TEXT NOT NULL, pkey TEXT NOT NULL, depth INTEGER NOT NULL,
    target TEXT, method TEXT, confidence REAL, note TEXT, share REAL, sampled INTEGER,
    aside TEXT, cands TEXT);
CREATE TABLE url_group(url TEXT PRIMARY KEY, grp INTEGER NOT NULL, seq INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE canon_group(key TEXT PRIMARY KEY, grp INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE listing_link(grp INTEGER NOT NULL, url TEXT NOT NULL, item INTEGER);
CREATE TABLE listing_order(id INTEGER PRIMARY KEY, grp INTEGER NOT NULL);
CREATE TABLE mapped_path(path TEXT PRIMARY KEY, target TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE legacy_move(url TEXT PRIMARY KEY, location TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE redirect_row(
    id INTEGER PRIMARY KEY, old TEXT NOT NULL, new TEXT NOT NULL, method TEXT NOT NULL,
    confidence REAL NOT NULL, status INTEGER NOT NULL, title TEXT NOT NULL,
    grp TEXT NOT NULL, note TEXT NOT NULL, cgrp INTEGER);
CREATE TABLE left_out(old TEXT PRIMARY KEY) WITHOUT ROWID
"""
_DECISION = "target, method, confidence, note, share, sampled"
_SET_DECISION = (
    "UPDATE grp SET target = ?, method = ?, confidence = ?, note = ?, share = ?, sampled = ?"
    " WHERE id = ?"
)


def _decision(row: tuple[Any, ...]) -> Decision | None:
    """A Decision from the six ``_DECISION`` columns (None while undecided)."""
    target, method, confidence, note, share, sampled = row
    if target is None:
        return None
    return Decision(target, method, confidence, note, share, sampled)


def _decision_values(d: Decision | None) -> tuple[Any, ...]:
    if d is None:
        return (None,) * 6
    return (d.target, d.method, d.confidence, d.note, d.share, d.sampled)


@dataclass
class Plan:
    """Every decision, before anything is written: the rows wait on disk, in ``db``."""

    db: sqlite3.Connection
    rows: int
    refused: list[Refused]
    site: model.Site
    sources: list[str]
    groups: int
    new_pages: int
    out: Path
    overrides: Overrides | None = None

    def iter_rows(self, served_only: bool = False) -> Iterator[Row]:
        """The rows in the order they were decided; ``served_only`` drops those left out."""
        where = " WHERE r.old NOT IN (SELECT old FROM left_out)" if served_only else ""
        # The columns are Row's first eight fields, in order; the candidates are the page's.
        for *fields, cands in self.db.execute(
            "SELECT r.old, r.new, r.method, r.confidence, r.status, r.title, r.grp, r.note,"
            " g.cands FROM redirect_row AS r LEFT JOIN grp AS g ON g.id = r.cgrp"
            f"{where} ORDER BY r.id"
        ):
            yield Row(*fields, candidates=load_candidates(cands))

    def leave_out(self, olds: Iterable[str]) -> int:
        """Mark rows as left out of the served files; how many rows are still served."""
        self.db.executemany("INSERT OR IGNORE INTO left_out VALUES (?)", ((o,) for o in olds))
        (served,) = self.db.execute(
            "SELECT count(*) FROM redirect_row WHERE old NOT IN (SELECT old FROM left_out)"
        ).fetchone()
        return int(served)

    def methods(self) -> dict[str, int]:
        """Served rows per method, in the order each method first appears."""
        return {
            str(method): int(count)
            for method, count, _ in self.db.execute(
                "SELECT method, count(*), min(id) AS first FROM redirect_row"
                " WHERE old NOT IN (SELECT old FROM left_out) GROUP BY method ORDER BY first"
            )
        }


def plan_redirects(opts: RedirectOptions) -> Plan:
    """Decide every row; the caller closes ``Plan.db``."""
    db = open_scratch()
    try:
        return _plan(opts, db)
    except BaseException:
        db.close()
        raise


def _plan(opts: RedirectOptions, db: sqlite3.Connection) -> Plan:
    profile = opts.profile
    crawl_dir = opts.crawl_dir
    if not crawl_dir.is_dir():
        raise SunsetError(f"{crawl_dir}: no such crawl folder")
    # An unfinished transform of either site is refused before anything is written.
    for crawl in (crawl_dir, opts.new_crawl):
        if crawl is not None:
            content_pages(crawl)
    out = opts.out or crawl_dir / "redirects"
    if opts.install_dir is not None and not _PLAIN_DIR.fullmatch(str(opts.install_dir)):
        raise SunsetError(
            f"--install-dir {str(opts.install_dir)!r}: use a plain absolute path"
            " (no quotes, control characters or glob characters: nginx would read them)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SunsetError(f"cannot write to {out}: {exc.strerror or exc}") from None

    rp = profile.redirects
    significant = tuple(rp.significant_query_params)
    frozen = (profile.site.frozen.strftime("%Y%m%d") + "000000") if profile.site.frozen else ""
    start = profile.site.start_urls[0]
    legacy_base = f"{urlsplit(start).scheme}://{urlsplit(start).netloc}"
    legacy_hosts = tuple(h.lower() for h in profile.site.allowed_hosts)
    new_base = profile.successor.base_url or ""
    home = rp.home or new_base
    if not home:
        raise SunsetError("the profile names no successor: set [successor] base_url")
    allowed = {host_of(home)}
    if profile.successor.host:
        allowed.add(profile.successor.host.lower())
    archive_hosts: set[str] = set()
    if rp.archive_url:
        archive_hosts.add(host_of(rp.archive_url.replace("{timestamp}", "0").replace("{url}", "")))
    allowed |= archive_hosts
    allowed.discard("")

    create(db, _SCHEMA)
    refused: list[Refused] = []

    pages, moved, sources = _new_inventory(opts)
    new = NewIndex(pages, moved)
    titles = new_titles(pages)
    del pages

    refused_seen: set[tuple[str, str, str]] = set()

    def refuse(old: str, target: str, why: str) -> None:
        key = (old, target, why)
        if key not in refused_seen:
            refused_seen.add(key)
            refused.append(Refused(old, target, why))

    # The reviews stored by earlier runs, then the overrides file over them; any
    # bad row stops the run here, before the matching and before any file is written.
    overrides = Overrides(db, home, legacy_base, legacy_hosts)
    stored = out / REVIEWS
    if not opts.clear_reviews and stored.is_file():
        overrides.load(stored, stored=True)
    overrides_path = opts.overrides or rp.overrides
    if overrides_path:
        overrides.load(Path(overrides_path))
    overrides.problems.check()

    captures = LegacyIndex(db, crawl_dir, significant)
    if not captures.count:
        raise SunsetError(f"{crawl_dir}: the crawl index lists no usable captures")
    if not frozen:
        # No freeze date in the profile: the archive lookups ask for the crawl's time.
        frozen = captures.latest_timestamp()
    # Every archive link carries that one timestamp, not each capture's own.
    targets = Targets(profile, home, frozen)
    for key, where in (("feed", targets.feed), ("sitemap", targets.sitemap)):
        if host_of(where) not in allowed:
            raise SunsetError(
                f"[redirects] {key} {where!r}: host {host_of(where) or '(none)'} is not the"
                " new site's (allowed: " + ", ".join(sorted(allowed)) + ")"
            )

    # Page titles straight from the crawl carry the old site's name; transform's do not.
    legacy_affixes: frozenset[str] = frozenset()
    if content_pages(crawl_dir) is None:
        legacy_affixes = captures.title_affixes()

    def group_of_url(url: str) -> int | None:
        found = db.execute("SELECT grp FROM url_group WHERE url = ?", (url,)).fetchone()
        return None if found is None else int(found[0])

    def group_of(url: str) -> int | None:
        gno = group_of_url(url)
        if gno is None:
            key = canonical(url, significant)
            found = db.execute("SELECT grp FROM canon_group WHERE key = ?", (key,)).fetchone()
            gno = None if found is None else int(found[0])
        return gno

    def decision_of(gno: int) -> Decision | None:
        return _decision(db.execute(f"SELECT {_DECISION} FROM grp WHERE id = ?", (gno,)).fetchone())

    topics = TopicPass(
        db, new, legacy_affixes, enabled=rp.topic_match, ruled=[k for k, _ in rp.section_rules]
    )

    # ---- pass 1: every page through the matching steps; text is dropped after.
    variant_params = {p.lower() for p in profile.pages.variant_params}
    group_rows = Buffer(
        db,
        f"INSERT INTO grp(id, gid, url, title, kind, ts, pkey, depth, {_DECISION}, cands)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    url_rows = Buffer(db, "INSERT OR REPLACE INTO url_group VALUES (?, ?, ?)")
    canon_rows = Buffer(db, "INSERT OR IGNORE INTO canon_group VALUES (?, ?)")
    link_rows = Buffer(db, "INSERT INTO listing_link(grp, url) VALUES (?, ?)")
    seq = 0
    groups = 0

    def add_urls(gno: int, urls: list[str]) -> None:
        nonlocal seq
        for url in urls:
            url_rows.add((url, gno, seq))
            seq += 1

    with progress("matching legacy pages", unit="pages") as bar:
        for page in iter_legacy(crawl_dir, captures):
            bar.advance()
            if not page.from_transform and variant_params:
                # A feed or print view that transform did not fold into its page
                # (it is not HTML) still goes where the page goes.
                base = drop_params(page.url, variant_params)
                if base != page.url:
                    url_rows.flush()
                    gno = group_of_url(base)
                    if gno is not None:
                        add_urls(gno, page.urls)
                        continue
            decision = match_page(page, new, legacy_affixes)
            pkey = path_key(urlsplit(page.url).path or "/")
            groups += 1
            gno = groups
            topics.add(gno, page)
            group_rows.add(
                (
                    gno,
                    page.group,
                    page.url,
                    page.title,
                    page.kind,
                    page.timestamp,
                    pkey,
                    pkey.count("/"),
                    *_decision_values(decision),
                    dump_candidates(find_candidates(page, new, titles, decision, legacy_affixes)),
                )
            )
            if page.kind == "listing":
                for link in page.links:
                    link_rows.add((gno, link))
            add_urls(gno, page.urls)
            for url in page.urls:
                canon_rows.add((canonical(url, significant), gno))
    for buffer in (group_rows, url_rows, canon_rows, link_rows):
        buffer.flush()

    # A slug or title match whose page holds none of the old text, while another
    # old page's text is plainly there, is a namesake: two sections each had a
    # "Flu clinics" page and only one of them moved. Claims are per new page.
    claims: dict[str, tuple[float, int]] = {}
    for gno, target, share in scan(db, "grp", "target, share", "target IS NOT NULL"):
        if share >= CLAIM_SHARE and share > claims.get(target, (0.0, 0))[0]:
            claims[target] = (share, gno)
    aside = Buffer(
        db,
        "UPDATE grp SET aside = ?, target = NULL, method = NULL, confidence = NULL,"
        " note = NULL, share = NULL, sampled = NULL WHERE id = ?",
    )
    for gno, method, target, share, sampled in scan(
        db, "grp", "method, target, share, sampled", "method IN ('slug', 'title')"
    ):
        claim = claims.get(target)
        if sampled >= 10 and share < 0.1 and claim and claim[1] != gno:
            (holder,) = db.execute("SELECT url FROM grp WHERE id = ?", (claim[1],)).fetchone()
            aside.add((f"{method} match {target} set aside: it holds {holder}'s text", gno))
    aside.flush()
    del claims

    # ---- topic matching (redirects.topic) for what the cascade left, before
    # listings follow their items; every ranked page gets its candidates.
    decided = Buffer(db, _SET_DECISION)
    ranked = Buffer(db, "UPDATE grp SET cands = ? WHERE id = ?")
    for gno, d in topics.decide():
        decided.add((*_decision_values(d), gno))
        if d.candidates:
            ranked.add((dump_candidates(target_first(d, titles)), gno))
    decided.flush()
    ranked.flush()

    # ---- pass 2: listings follow their items, deepest first so a section
    # sees where its categories went. Which page each link shows does not
    # change here, only decisions do: the links are resolved once, in SQLite.
    db.execute("CREATE INDEX listing_link_grp ON listing_link(grp)")
    db.execute(
        "UPDATE listing_link SET item = coalesce("
        "(SELECT grp FROM url_group WHERE url = listing_link.url),"
        " (SELECT grp FROM canon_group WHERE key = canonical_key(listing_link.url)))"
    )
    db.execute(
        "INSERT INTO listing_order(grp) SELECT id FROM grp"
        " WHERE kind = 'listing' AND target IS NULL ORDER BY depth DESC, id"
    )
    for _, gno in scan(db, "listing_order", "grp"):
        items: list[Decision | None] = []
        seen: set[int] = set()
        links = db.execute(
            f"SELECT l.item, g.kind, {', '.join('g.' + c for c in _DECISION.split(', '))}"
            " FROM listing_link AS l LEFT JOIN grp AS g ON g.id = l.item"
            " WHERE l.grp = ? ORDER BY l.rowid",
            (gno,),
        ).fetchall()
        for other, kind, *decided in links:
            if other is None or other in seen or other == gno or kind == "asset":
                continue
            seen.add(other)
            items.append(_decision(tuple(decided)))
        db.execute(_SET_DECISION, (*_decision_values(follow_listing(items, new)), gno))

    # Listings whose items were placed, but too far apart to agree, go where
    # most of their old section went (redirects.topic's section prior).
    for gno, d in topics.listings():
        db.execute(_SET_DECISION, (*_decision_values(d), gno))

    # ---- pass 3: the rest fall back: section rule, archive, parent, home.
    rules = sorted(((path_key(k), v) for k, v in rp.section_rules), key=lambda kv: -len(kv[0]))
    # The first page decided for a path speaks for it, as dict.setdefault did.
    db.execute(
        "INSERT OR IGNORE INTO mapped_path"
        " SELECT pkey, target FROM grp WHERE target IS NOT NULL ORDER BY id"
    )

    def fallback(url: str, captured_ts: str | None) -> Decision:
        key = path_key(urlsplit(url).path or "/")
        for prefix, target in rules:
            if key == prefix or key.startswith(prefix.rstrip("/") + "/"):
                return Decision(urljoin(home, target), "section", 0.6, f"section rule {prefix}")
        if captured_ts is not None:
            archived = targets.archive(url)
            if archived:
                return Decision(archived, "archive", 0.5, "no successor found; archived copy")
        for parent in parent_paths(url_path(url)):
            if parent == "/":
                continue
            found = db.execute(
                "SELECT target FROM mapped_path WHERE path = ?", (parent,)
            ).fetchone()
            if found is not None:
                return Decision(found[0], "parent", 0.3, f"nearest mapped parent {parent}")
        return Decision(home, "home", 0.1, "nothing better: the new home page")

    fell_back = Buffer(db, _SET_DECISION)
    for gno, url, timestamp, set_aside in scan(db, "grp", "url, ts, aside", "target IS NULL"):
        d = replace(fallback(url, timestamp), candidates=topics.candidates(gno))
        if set_aside is not None:
            d = replace(d, note=f"{d.note}; {set_aside}")
        fell_back.add((*_decision_values(d), gno))
        if d.candidates:
            ranked.add((dump_candidates(target_first(d, titles)), gno))
    fell_back.flush()
    ranked.flush()

    # ---- the old site's own redirects take their final target's answer.
    for cap in captures.redirects():
        location = redirect_location(crawl_dir, cap)
        if location:
            db.execute("INSERT OR REPLACE INTO legacy_move VALUES (?, ?)", (cap.url, location))

    def legacy_move(url: str) -> str | None:
        found = db.execute("SELECT location FROM legacy_move WHERE url = ?", (url,)).fetchone()
        return None if found is None else str(found[0])

    def resolve_legacy(url: str) -> tuple[Decision | None, str]:
        seen = {url}
        hops = [url]
        hop = url
        for _ in range(MAX_HOPS):
            nxt = legacy_move(hop)
            if nxt is None:
                break
            if nxt in seen:
                return None, "redirect loop on the old site: " + " → ".join([*hops, nxt])[:300]
            seen.add(nxt)
            hops.append(nxt)
            hop = nxt
        if host_of(hop) in allowed:
            return Decision(hop, "redirect", 0.9, "the old site already redirected here"), ""
        if host_of(hop) not in legacy_hosts:
            return None, f"the old site redirected off-site, to {host_of(hop)}"
        gno = group_of(hop)
        d = decision_of(gno) if gno is not None else None
        if d is not None:
            return Decision(d.target, "redirect", d.confidence, f"old redirect to {hop}"), ""
        return fallback(hop, None), ""

    # ---- rows, with overrides applied and chains collapsed.
    def final_target(target: str, depth: int = 0) -> tuple[str | None, str]:
        """A target on the new site or archive, after collapsing chains."""
        known_new = target in new.position or target in new.moved
        if host_of(target) in legacy_hosts and not known_new and depth < MAX_HOPS:
            # An override may name another legacy URL: take that URL's answer.
            gno = group_of(target)
            if gno is None or legacy_move(target) is not None:
                d, why = resolve_legacy(target)
                if d is None:
                    return None, why
                return final_target(d.target, depth + 1)
            d = decision_of(gno)
            assert d is not None
            o = overrides.peek(target)
            return final_target(o.target if o else d.target, depth + 1)
        if depth >= MAX_HOPS:
            return None, "redirect chain longer than 10 hops, or a loop"
        end = new.final(target)
        if end is None:
            return None, f"the new site redirects {target} in a loop"
        if host_of(end) not in allowed:
            return None, f"target host {host_of(end) or '(none)'} is not allowed"
        return end, ""

    rows = 0
    row_buffer = Buffer(
        db,
        "INSERT INTO redirect_row(old, new, method, confidence, status, title, grp, note, cgrp)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    checked = model.Site(legacy_base, legacy_hosts, home, tuple(sorted(allowed)), significant)

    def captured(url: str) -> bool:
        return group_of_url(url) is not None

    def override_for(url: str, d: Decision, inherited: Override | None = None) -> Override | None:
        """``url``'s reviewed decision (see Overrides.decide); ``d`` is the matcher's."""
        ends: dict[str, str | None] = {}

        def end(target: str) -> str | None:
            if target not in ends:
                ends[target] = final_target(target)[0]
            return ends[target]

        def same(a: str, b: str) -> bool:
            return a == b or (end(a) is not None and end(a) == end(b))

        def agrees(o: Override) -> bool:
            return d.method != "override" and same(o.target, d.target)

        return overrides.decide(url, agrees, same, inherited)

    def proposed(url: str, page_url: str | None, d: Decision, mime: str = "") -> Decision:
        """The page's decision as this URL of it answers: a feed, a part's own copy."""
        return targets.special(url, mime) or targets.for_url(url, page_url, d, captured)

    def emit(
        url: str,
        page_url: str | None,
        title: str,
        d: Decision,
        gid: str,
        cgrp: int | None = None,
        page: Override | None = None,
        mime: str = "",
    ) -> None:
        nonlocal rows
        if targets.is_robots(url):
            # nginx answers it from its own location: a row would never be served.
            o = overrides.peek(url)
            if o is not None:
                message = "robots.txt is answered by nginx itself (allow all), not redirected"
                overrides.problems.add(o.at, f"{url[:100]} → {o.written[:100]}: {message}")
            return
        d = proposed(url, page_url, d, mime)
        o = override_for(url, d, page)
        if o is PROPOSAL:
            o = None
        if o is not None:
            d = Decision(o.target, "override", 1.0, f"reviewed: {o.origin}")
        target, why = final_target(d.target)
        if o is not None:
            # A reviewer's mistake stops the run (one line naming the row), never
            # a silent fall to the catch-all.
            problem = review_problem(url, target, why)
            if problem:
                message = f"{url[:100]} → {o.written[:100]}: {problem}"
                overrides.problems.add(o.at, message)
                return
        if target is None:
            refuse(url, d.target, why)
            return
        gone = rp.archive_mode == "gone" and host_of(target) in archive_hosts
        status = model.GONE if gone else model.MOVED
        row_buffer.add((url, target, d.method, d.confidence, status, title, gid, d.note, cgrp))
        rows += 1

    def review_problem(url: str, target: str | None, why: str) -> str:
        if target is None:
            return why
        # What the writers would refuse later, refused now, while nothing is written.
        refused = prepare(Row(url, target, "override", 1.0), checked)
        return refused.reason if isinstance(refused, Refused) else ""

    def page_review(gno: int, page_url: str, d: Decision) -> Override | None:
        """A review of any URL of a page moves the page: the first, its own URL's first."""
        for url in (page_url, *overrides.reviewed_urls(gno)):
            found = db.execute("SELECT mime FROM cap WHERE url = ?", (url,)).fetchone()
            o = override_for(url, proposed(url, page_url, d, found[0] or "" if found else ""))
            if o is not None and o is not PROPOSAL:
                return o
        return None

    db.execute("CREATE INDEX url_group_order ON url_group(grp, seq)")
    overrides.index_pages("url_group")
    last, page = 0, None
    for url, gid, page_url, title, target, method, confidence, note, gno, mime in db.execute(
        "SELECT u.url, g.gid, g.url, g.title, g.target, g.method, g.confidence, g.note, g.id,"
        " c.mime FROM url_group AS u JOIN grp AS g ON g.id = u.grp"
        " LEFT JOIN cap AS c ON c.url = u.url ORDER BY u.grp, u.seq"
    ):
        d = Decision(target, method, confidence, note)
        if gno != last:
            # The other URLs of a page follow its review, unless they have their own.
            last, page = gno, page_review(gno, page_url, d)
        emit(url, page_url, title, d, gid, gno, page, mime or "")
    for cap in captures.redirects():
        url = cap.url
        if group_of_url(url) is not None:
            continue
        location = legacy_move(url)
        if location is None:
            # The Location could not be read back from the WARC: the archived
            # copy still shows what the old site answered.
            d = fallback(url, cap.timestamp)
            d = Decision(d.target, d.method, d.confidence, "Location unreadable")
            emit(url, None, "", d, url)
            continue
        d, why = resolve_legacy(url)
        if d is None:
            if overrides.peek(url) is None:
                refuse(url, location, why)
                continue
            d = Decision(location, "redirect", 0.0, why)
        emit(url, None, "", d, "redirect:" + canonical(url, significant))
    row_buffer.flush()
    # A CMS's other URL forms of each id take their page's answer. They go in
    # before the reviewers' unseen URLs: a fed-back CSV holds them as this
    # run's own rows, and one whose target a reviewer changed is a review.
    added = form_rows(db, targets, legacy_base, refuse)
    rows += added
    if added and overrides.count:
        form_urls = (
            "SELECT id, old, new, method, confidence, note FROM redirect_row"
            " WHERE old NOT IN (SELECT url FROM url_group)"
            f" AND old NOT IN ({REDIRECTED_URLS}) ORDER BY id"
        )
        for rid, url, target, method, confidence, note in db.execute(form_urls).fetchall():
            o = override_for(url, Decision(target, method, confidence, note))
            if o is None or o is PROPOSAL:
                continue
            end, why = final_target(o.target)
            problem = review_problem(url, end, why)
            if problem:
                overrides.problems.add(o.at, f"{url[:100]} → {o.written[:100]}: {problem}")
                continue
            gone = rp.archive_mode == "gone" and host_of(end) in archive_hosts
            db.execute(
                "UPDATE redirect_row SET new = ?, method = 'override', confidence = 1.0,"
                " status = ?, note = ? WHERE id = ?",
                (end, model.GONE if gone else model.MOVED, f"reviewed: {o.origin}", rid),
            )
    # Overrides for URLs the crawl never saw still win: reviewers add them for
    # links printed on leaflets that nothing on the site pointed to. A row that
    # says the matcher decided it names a URL that is not in this crawl: a typo,
    # or a CSV of another crawl.
    known = f"SELECT url FROM url_group UNION ALL {REDIRECTED_URLS} UNION ALL SELECT old FROM redirect_row"
    for url, o, claimed in overrides.unseen(known):
        if claimed and claimed != "override":
            message = (
                f"old URL {url[:100]} is not in this crawl, although its method column says"
                f" '{claimed}' (write 'override' there to add a URL the crawl never saw)"
            )
            overrides.problems.add(o.at, message)
            continue
        emit(url, None, "", Decision(o.target, "override", 1.0, ""), url)
    overrides.problems.check()
    row_buffer.flush()
    if not rows:
        raise SunsetError(
            f"{crawl_dir}: no legacy URL could be mapped (the crawl holds no page that answered"
            " 200 or a readable redirect)"
        )

    fallback_prefix = ""
    if rp.archive_url and rp.archive_url.endswith("{url}"):
        fallback_prefix = targets.archive(legacy_base) or ""
    forms = rp.url_forms
    site = model.Site(
        legacy_base=legacy_base,
        legacy_hosts=legacy_hosts,
        new_home=home,
        allowed_target_hosts=tuple(sorted(allowed)),
        significant_query_params=significant,
        fallback_prefix=fallback_prefix,
        gone_mode=rp.archive_mode == "gone",
        front_controller=forms.front_controller,
        id_param=forms.id_param,
        feed_params=forms.feed_params,
        feed_target=(new.final(targets.feed) or targets.feed) if forms.feed_params else "",
    )
    return Plan(db, rows, refused, site, sources, groups, len(new), out, overrides)


def run_redirects(opts: RedirectOptions) -> RedirectSummary:
    """Plan every redirect, then write the nginx, Apache, CSV and report files."""
    started = time.monotonic()
    plan = plan_redirects(opts)
    try:
        summary = _write(opts, plan, started)
        # Only a run that wrote everything records what it was given.
        summary.reviews = save_state(opts, plan)
        return summary
    finally:
        plan.db.close()


def _write(opts: RedirectOptions, plan: Plan, started: float) -> RedirectSummary:
    from .apache import write_apache
    from .csvio import write_csv
    from .nginx import write_nginx
    from .report import write_report

    refused, site, out, sources = plan.refused, plan.site, plan.out, plan.sources
    profile = opts.profile
    summary = RedirectSummary(out=out, rows=plan.rows, groups=plan.groups, new_pages=plan.new_pages)
    summary.notes.extend(sources)
    if content_pages(opts.crawl_dir) is None:
        summary.warnings.append(
            "no transform output (CRAWL_DIR/content/pages.jsonl): matched by path, slug and"
            " title only; run 'sunset transform' first for content matching"
        )
    fallback_prefix, home, legacy_base = site.fallback_prefix, site.new_home, site.legacy_base
    nginx = write_nginx(plan.iter_rows(), site, out, include_dir=opts.install_dir)
    refused.extend(nginx.refused)
    apache = write_apache(plan.iter_rows(), site, out)
    seen = {(r.old, r.new, r.reason) for r in refused}
    refused.extend(r for r in apache.refused if (r.old, r.new, r.reason) not in seen)
    # Reviewers should see only what is served; what was left out is in the report.
    if nginx.refused:
        summary.rows = plan.leave_out(r.old for r in nginx.refused)
    summary.methods = plan.methods()
    write_csv(plan.iter_rows(served_only=True), out / "redirects.csv")
    summary.refused = len(refused)
    summary.collisions = len(nginx.collisions)
    summary.seconds = round(time.monotonic() - started, 2)
    report_summary = {
        "site": profile.site.name,
        "legacy site": legacy_base,
        "successor": home,
        "crawl": str(opts.crawl_dir),
        "new-site inventory": "; ".join(sources),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "legacy URLs with a redirect": summary.rows,
        "legacy pages": summary.groups,
        "new-site pages": summary.new_pages,
        "left out (refused)": summary.refused,
        "case collisions": summary.collisions,
        "URLs not listed": f"301 to {fallback_prefix or home} + the requested path",
        "robots.txt": "answered by nginx itself: 200, allow all (never redirected)",
    }
    if site.front_controller or site.id_param or site.feed_params:
        forms = profile.redirects.cms or "[redirects.url_forms]"
        report_summary["URL forms"] = f"{forms}: answered by nginx (see redirects.conf)"
    for n, warning in enumerate(summary.warnings, 1):
        report_summary[f"warning {n}"] = warning
    write_report(
        out / "report.html",
        plan.iter_rows(served_only=True),
        refused,
        nginx.collisions,
        report_summary,
        archive_prefix=_archive_prefix(profile.redirects.archive_url),
    )
    summary.files = {
        "nginx map": str(out / "redirects.map"),
        "nginx snippet": str(out / "redirects.conf"),
        "apache map": str(out / "redirects.apache.txt"),
        "csv": str(out / "redirects.csv"),
        "report": str(out / "report.html"),
    }
    with open(out / "refused.jsonl", "w", encoding="utf-8") as fh:
        for r in refused:
            fh.write(json.dumps(asdict(r), ensure_ascii=False) + "\n")
    (out / "redirects.json").write_text(
        json.dumps(
            {
                "rows": summary.rows,
                "groups": summary.groups,
                "new_pages": summary.new_pages,
                "methods": summary.methods,
                "refused": summary.refused,
                "collisions": summary.collisions,
                "seconds": summary.seconds,
                "sources": sources,
                "site": asdict(site),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return summary


def _archive_prefix(template: str | None) -> str:
    """What every archive link starts with (``https://host/ukgwa/``), or "" if nothing fixed."""
    head = (template or "").split("{", 1)[0]
    return head if "://" in head and "/" in head.split("://", 1)[1] else ""


def drop_params(url: str, names: set[str]) -> str:
    """``url`` without the query parameters in ``names`` (lower-case)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0].lower() not in names]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def url_path(url: str) -> str:
    return urlsplit(url).path or "/"
