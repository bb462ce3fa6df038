"""`sunset redirects`: decide where every legacy URL goes and write the files.

The cascade, per legacy page (all URL variants of a page share its answer):
override → exact path → slug → document digest/name → title → content →
listing (follows its items) → the old site's own redirect → section rule →
archive (captured pages) → nearest mapped parent → new home page.

A page whose content we hold goes to its archived copy before a parent
guess: the copy is the page the visitor wanted, a parent section is not.
Listing pages are the exception handled by their own step: their content is
links, and they follow where those links went.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

from sunset.errors import SunsetError
from sunset.profile import Profile
from sunset.ui import progress

from . import model
from .inventory import (
    REDIRECT_STATUSES,
    Capture,
    NewPage,
    content_pages,
    crawl_titles,
    iter_legacy,
    read_cdxj,
    read_csv_inventory,
    read_new_crawl,
    read_sitemap,
    redirect_location,
)
from .match import Decision, NewIndex, follow_listing, match_page
from .model import Refused, Row
from .urls import (
    absolute,
    canonical,
    host_of,
    parent_paths,
    path_key,
    request_target,
    site_affixes,
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


def _archive_url(template: str | None, url: str, timestamp: str, frozen: str) -> str | None:
    if not template:
        return None
    return template.replace("{timestamp}", timestamp or frozen).replace("{url}", url)


@dataclass
class Plan:
    """Every decision, before anything is written."""

    rows: list[Row]
    refused: list[Refused]
    site: model.Site
    sources: list[str]
    groups: int
    new_pages: int
    out: Path


def plan_redirects(opts: RedirectOptions) -> Plan:
    from .csvio import read_overrides

    profile = opts.profile
    crawl_dir = opts.crawl_dir
    if not crawl_dir.is_dir():
        raise SunsetError(f"{crawl_dir}: no such crawl folder")
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

    refused: list[Refused] = []

    pages, moved, sources = _new_inventory(opts)
    new = NewIndex(pages, moved)
    del pages

    refused_seen: set[tuple[str, str, str]] = set()

    def refuse(old: str, target: str, why: str) -> None:
        key = (old, target, why)
        if key not in refused_seen:
            refused_seen.add(key)
            refused.append(Refused(old, target, why))

    overrides: dict[str, str] = {}
    override_paths: dict[str, str] = {}
    overrides_path = opts.overrides or rp.overrides
    if overrides_path:
        for old, target in read_overrides(Path(overrides_path)):
            try:
                target = urljoin(home, target)
                old = old if old.startswith("/") else absolute(legacy_base, old)
            except ValueError:
                refuse(old, target, "the override is not a valid URL")
                continue
            if old.startswith("/"):
                override_paths[old] = target
            else:
                overrides[old] = target

    captures = read_cdxj(crawl_dir)
    if not captures:
        raise SunsetError(f"{crawl_dir}: the crawl index lists no usable captures")
    if not frozen:
        # No freeze date in the profile: the archive lookups ask for the crawl's time.
        frozen = max(c.timestamp for c in captures.values())

    moved_caps: list[Capture] = [c for c in captures.values() if c.status in REDIRECT_STATUSES]

    # Page titles straight from the crawl carry the old site's name; transform's do not.
    legacy_affixes = frozenset()
    if content_pages(crawl_dir) is None:
        legacy_affixes = site_affixes(list(crawl_titles(crawl_dir).values()))

    # ---- pass 1: every page through the matching steps; text is dropped after.
    groups: dict[str, _Group] = {}
    url_group: dict[str, str] = {}
    canon_group: dict[str, str] = {}
    variant_params = {p.lower() for p in profile.pages.variant_params}
    with progress("matching legacy pages", unit="pages") as bar:
        for page in iter_legacy(crawl_dir, captures, significant):
            bar.advance()
            if not page.from_transform and variant_params:
                # A feed or print view that transform did not fold into its page
                # (it is not HTML) still goes where the page goes.
                base = drop_params(page.url, variant_params)
                gid = url_group.get(base) if base != page.url else None
                if gid is not None:
                    groups[gid].urls.extend(page.urls)
                    for url in page.urls:
                        url_group[url] = gid
                    continue
            group = _Group(page.url, page.urls, page.title, page.kind, page.timestamp)
            if page.kind == "listing":
                group.links = page.links
            group.decision = match_page(page, new, legacy_affixes)
            groups[page.group] = group
            for url in page.urls:
                url_group[url] = page.group
                canon_group.setdefault(canonical(url, significant), page.group)
    # Every capture is now in a group (or is a redirect, kept above): the index
    # of the whole crawl need not stay in memory while the files are written.
    del captures

    # A slug or title match whose page holds none of the old text, while another
    # old page's text is plainly there, is a namesake: two sections each had a
    # "Flu clinics" page and only one of them moved.
    claims: dict[str, tuple[float, str]] = {}
    for gid, g in groups.items():
        d = g.decision
        if d is not None and d.share >= CLAIM_SHARE and d.share > claims.get(d.target, (0, ""))[0]:
            claims[d.target] = (d.share, gid)
    set_aside: dict[str, str] = {}
    for gid, g in groups.items():
        d = g.decision
        if d is None or d.method not in ("slug", "title"):
            continue
        claim = claims.get(d.target)
        if d.sampled >= 10 and d.share < 0.1 and claim and claim[1] != gid:
            set_aside[gid] = (
                f"{d.method} match {d.target} set aside: it holds {groups[claim[1]].url}'s text"
            )
            g.decision = None

    def group_of(url: str) -> str | None:
        return url_group.get(url) or canon_group.get(canonical(url, significant))

    # ---- pass 2: listings follow their items, deepest first so a section
    # sees where its categories went.
    listings = [g for g in groups.values() if g.kind == "listing" and g.decision is None]
    listings.sort(key=lambda g: -path_key(urlsplit(g.url).path).count("/"))
    for g in listings:
        items: list[Decision | None] = []
        seen: set[str] = set()
        for link in g.links:
            gid = group_of(link)
            if gid is None or gid in seen or groups[gid] is g or groups[gid].kind == "asset":
                continue
            seen.add(gid)
            items.append(groups[gid].decision)
        g.decision = follow_listing(items, new)

    # ---- pass 3: the rest fall back: section rule, archive, parent, home.
    rules = sorted(((path_key(k), v) for k, v in rp.section_rules), key=lambda kv: -len(kv[0]))
    mapped_paths: dict[str, Decision] = {}
    for g in groups.values():
        d = g.decision
        if d is not None:
            mapped_paths.setdefault(path_key(urlsplit(g.url).path or "/"), d)

    def fallback(url: str, captured_ts: str | None) -> Decision:
        key = path_key(urlsplit(url).path or "/")
        for prefix, target in rules:
            if key == prefix or key.startswith(prefix.rstrip("/") + "/"):
                return Decision(urljoin(home, target), "section", 0.6, f"section rule {prefix}")
        if captured_ts is not None:
            archived = _archive_url(rp.archive_url, url, captured_ts, frozen)
            if archived:
                return Decision(archived, "archive", 0.5, "no successor found; archived copy")
        for parent in parent_paths(url_path(url)):
            d = mapped_paths.get(parent)
            if d is not None and parent != "/":
                return Decision(d.target, "parent", 0.3, f"nearest mapped parent {parent}")
        return Decision(home, "home", 0.1, "nothing better: the new home page")

    for gid, g in groups.items():
        if g.decision is None:
            d = fallback(g.url, g.timestamp)
            if gid in set_aside:
                d = Decision(d.target, d.method, d.confidence, f"{d.note}; {set_aside[gid]}")
            g.decision = d

    # ---- the old site's own redirects take their final target's answer.
    legacy_moves: dict[str, str] = {}
    for cap in moved_caps:
        location = redirect_location(crawl_dir, cap)
        if location:
            legacy_moves[cap.url] = location

    def resolve_legacy(url: str) -> tuple[Decision | None, str]:
        seen = {url}
        hops = [url]
        hop = url
        for _ in range(MAX_HOPS):
            nxt = legacy_moves.get(hop)
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
        gid = group_of(hop)
        if gid is not None and groups[gid].decision is not None:
            d = groups[gid].decision
            assert d is not None
            return Decision(d.target, "redirect", d.confidence, f"old redirect to {hop}"), ""
        return fallback(hop, None), ""

    # ---- rows, with overrides applied and chains collapsed.
    def override_for(url: str) -> str | None:
        return overrides.get(url) or override_paths.get(request_target(url))

    rows: list[Row] = []

    def final_target(target: str, depth: int = 0) -> tuple[str | None, str]:
        """A target on the new site or archive, after collapsing chains."""
        known_new = target in new.position or target in new.moved
        if host_of(target) in legacy_hosts and not known_new and depth < MAX_HOPS:
            # An override may name another legacy URL: take that URL's answer.
            gid = group_of(target)
            if target in legacy_moves or gid is None:
                d, why = resolve_legacy(target)
                if d is None:
                    return None, why
                return final_target(d.target, depth + 1)
            d = groups[gid].decision
            assert d is not None
            o = override_for(target)
            return final_target(o or d.target, depth + 1)
        if depth >= MAX_HOPS:
            return None, "redirect chain longer than 10 hops, or a loop"
        end = new.final(target)
        if end is None:
            return None, f"the new site redirects {target} in a loop"
        if host_of(end) not in allowed:
            return None, f"target host {host_of(end) or '(none)'} is not allowed"
        return end, ""

    def emit(url: str, g: _Group | None, d: Decision, gid: str) -> None:
        o = override_for(url)
        if o is None and g is not None and url != g.url:
            o = override_for(g.url)
        if o is not None:
            d = Decision(o, "override", 1.0, "from the overrides file")
        target, why = final_target(d.target)
        if target is None:
            refuse(url, d.target, why)
            return
        gone = rp.archive_mode == "gone" and host_of(target) in archive_hosts
        status = model.GONE if gone else model.MOVED
        rows.append(
            Row(
                old=url,
                new=target,
                method=d.method,
                confidence=d.confidence,
                status=status,
                title=g.title if g else "",
                group=gid,
                note=d.note,
                captured=True,
            )
        )

    emitted: set[str] = set()
    for gid, g in groups.items():
        assert g.decision is not None
        for url in g.urls:
            emit(url, g, g.decision, gid)
            emitted.add(url)
    for cap in moved_caps:
        url = cap.url
        if url in url_group:
            continue
        emitted.add(url)
        if url not in legacy_moves:
            # The Location could not be read back from the WARC: the archived
            # copy still shows what the old site answered.
            d = fallback(url, cap.timestamp)
            emit(url, None, Decision(d.target, d.method, d.confidence, "Location unreadable"), url)
            continue
        d, why = resolve_legacy(url)
        if d is None:
            refuse(url, legacy_moves[url], why)
            continue
        emit(url, None, d, "redirect:" + canonical(url, significant))
    # Overrides for URLs the crawl never saw still win: reviewers add them for
    # links printed on leaflets that nothing on the site pointed to.
    extra = {**overrides, **{absolute(legacy_base, p): t for p, t in override_paths.items()}}
    for url in sorted(set(extra) - emitted):
        if host_of(url) not in legacy_hosts:
            refuse(url, extra[url], f"the override's old URL is not on {', '.join(legacy_hosts)}")
            continue
        emit(url, None, Decision(extra[url], "override", 1.0, "from the overrides file"), url)
    if not rows:
        raise SunsetError(
            f"{crawl_dir}: no legacy URL could be mapped (the crawl holds no page that answered"
            " 200 or a readable redirect)"
        )

    fallback_prefix = ""
    if rp.archive_url and rp.archive_url.endswith("{url}"):
        fallback_prefix = _archive_url(rp.archive_url, legacy_base, frozen, frozen) or ""
    site = model.Site(
        legacy_base=legacy_base,
        legacy_hosts=legacy_hosts,
        new_home=home,
        allowed_target_hosts=tuple(sorted(allowed)),
        significant_query_params=significant,
        fallback_prefix=fallback_prefix,
        gone_mode=rp.archive_mode == "gone",
    )
    return Plan(rows, refused, site, sources, len(groups), len(new), out)


def run_redirects(opts: RedirectOptions) -> RedirectSummary:
    """Plan every redirect, then write the nginx, Apache, CSV and report files."""
    from .apache import write_apache
    from .csvio import write_csv
    from .nginx import write_nginx
    from .report import write_report

    started = time.monotonic()
    plan = plan_redirects(opts)
    rows, refused, site, out, sources = plan.rows, plan.refused, plan.site, plan.out, plan.sources
    profile = opts.profile
    summary = RedirectSummary(out=out, rows=len(rows), groups=plan.groups, new_pages=plan.new_pages)
    summary.notes.extend(sources)
    if content_pages(opts.crawl_dir) is None:
        summary.warnings.append(
            "no transform output (CRAWL_DIR/content/pages.jsonl): matched by path, slug and"
            " title only; run 'sunset transform' first for content matching"
        )
    fallback_prefix, home, legacy_base = site.fallback_prefix, site.new_home, site.legacy_base
    nginx = write_nginx(rows, site, out, include_dir=opts.install_dir)
    refused.extend(nginx.refused)
    apache = write_apache(rows, site, out)
    seen = {(r.old, r.new, r.reason) for r in refused}
    refused.extend(r for r in apache.refused if (r.old, r.new, r.reason) not in seen)
    # Reviewers should see only what is served; what was left out is in the report.
    left_out = {r.old for r in nginx.refused}
    if left_out:
        rows = [r for r in rows if r.old not in left_out]
        summary.rows = len(rows)
    for row in rows:
        summary.methods[row.method] = summary.methods.get(row.method, 0) + 1
    write_csv(rows, out / "redirects.csv")
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
    }
    for n, warning in enumerate(summary.warnings, 1):
        report_summary[f"warning {n}"] = warning
    write_report(out / "report.html", rows, refused, nginx.collisions, report_summary)
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


def drop_params(url: str, names: set[str]) -> str:
    """``url`` without the query parameters in ``names`` (lower-case)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p.split("=", 1)[0].lower() not in names]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))


def url_path(url: str) -> str:
    return urlsplit(url).path or "/"
