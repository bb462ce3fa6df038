"""Build a deterministic replica of a Joomla-era public-body site and its successor.

Output layout (everything a server or a test needs, nothing held in memory later):

    <site>/manifest.json             seed, size, hosts, counts, trap description
    <site>/blobs/ab/<sha1>           every response body, content-addressed
    <site>/legacy/routes.jsonl       what the legacy server answers, one URL a line
    <site>/legacy/articles.json      Joomla article id -> canonical path (index.php URLs)
    <site>/legacy/calendar.json      the calendar shell blob and events by month
    <site>/new/routes.jsonl          what the successor server answers
    <site>/ground-truth/pages.jsonl  per legacy page: main content, boilerplate, successor
    <site>/ground-truth/urls.jsonl   per legacy URL: status, kind, page, capture?, successor
    <site>/ground-truth/new-pages.jsonl  per successor page: text and the pages it replaces

Bodies are written as they are rendered, so a 20,000-page site never sits in
memory as HTML; only the page plan (titles and text blocks) does.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape
from pathlib import Path
from urllib.parse import quote

from . import assets, calendar
from .flavour import FLAVOURS, Flavour, Section
from .rewrite import Facts, Rewriter, drop_joined_runs, shingles
from .templates import THEMES, Chrome, boilerplate_texts, legacy_page, nav_html, new_site_page
from .text import NEWS_PATTERNS, PART_HEADINGS, REPORT_PATTERNS, TITLE_PATTERNS, Prose, slugify

GENERATOR_VERSION = "5"
# How the successor site relates to the legacy one. "reused" keeps most of the
# legacy wording (the original replica); "rewritten" redrafts every page in the
# new site's voice, so only topics and names tie a page to its predecessor.
SUCCESSORS = ("reused", "rewritten")
HTML = "text/html; charset=utf-8"
PER_PAGE = 10  # category blog and news listing page size, as Joomla's ?start=N steps
DOC_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def e(s: str) -> str:
    return escape(s, quote=True)


@dataclass
class Block:
    type: str  # title, h2, h3, p, li, tr, caption, doc, related
    text: str
    html: str


@dataclass
class Document:
    path: str  # URL path, percent-encoded
    filename: str
    kind: str  # pdf, docx, xlsx
    title: str
    data: bytes
    successor: str | None = None
    new_data: bytes | None = None  # bytes the successor serves, when they differ


@dataclass
class Page:
    id: str
    kind: str  # home, section, category, article, news, multipart, news-listing, contact, events
    title: str
    path: str
    topic: str
    section: Section | None = None
    sub: tuple[str, str] | None = None
    jid: int | None = None
    catid: int | None = None  # Joomla category id (its own numbering, not jid's)
    itemid: int = 101
    published: str = ""
    modified: str = ""
    hits: int = 0
    blocks: list[Block] = field(default_factory=list)
    parts: list[tuple[str, list[Block]]] = field(default_factory=list)
    popup: bool = True
    contact: bool = True
    docs: list[Document] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    listed: bool = True  # appears in its category listing (orphans are only in the sitemap)
    charset: str = "utf-8"
    gzip: bool = False
    fate: str = "gone"  # same-path, same-slug, retitled, merged, collapsed, gone
    successor: str | None = None
    urls: list[str] = field(default_factory=list)  # every legacy URL target of this page
    pager: list[tuple[str, str]] = field(default_factory=list)  # prev/next article links


@dataclass
class Route:
    target: str  # path?query as requested
    status: int
    kind: str
    ctype: str = HTML
    blob: str | None = None
    gz_blob: str | None = None
    location: str | None = None
    page: str | None = None
    capture: bool = True
    successor: str | None = None
    alias_of: str | None = None  # serve the same response as this target
    part: int | None = None


class BlobStore:
    """Content-addressed bodies on disk, so identical responses share one file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0
        self.bytes = 0

    def put(self, data: bytes) -> str:
        digest = hashlib.sha1(data).hexdigest()
        path = self.root / digest[:2] / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            self.count += 1
            self.bytes += len(data)
        return digest


def gzip_bytes(data: bytes) -> bytes:
    # mtime=0 keeps the encoded body, and so its digest, reproducible.
    return gzip.compress(data, compresslevel=6, mtime=0)


class Generator:
    def __init__(
        self,
        out: Path,
        pages: int,
        seed: int,
        theme: str,
        flavour: Flavour,
        successor: str = "reused",
    ) -> None:
        if successor not in SUCCESSORS:
            raise ValueError(
                f"unknown successor {successor!r}; expected one of {', '.join(SUCCESSORS)}"
            )
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r}; expected one of {', '.join(THEMES)}")
        if pages < 50:
            raise ValueError("a replica needs at least 50 pages")
        self.out = out
        self.n = pages
        self.seed = seed
        self.theme = theme
        self.fl = flavour
        self.rng = random.Random(seed)
        self.prose = Prose(self.rng, flavour.towns, flavour.places)
        self.blobs = BlobStore(out / "blobs")
        self.pages: list[Page] = []
        self.by_path: dict[str, Page] = {}
        self.routes: dict[str, Route] = {}
        self.new_routes: dict[str, Route] = {}
        self.new_pages: list[dict[str, object]] = []
        self.slugs: set[str] = set()
        self.next_jid = 1
        self.base = f"http://{flavour.legacy_host}"
        self.new_base = f"http://{flavour.new_host}"
        self.events: dict[str, list[dict[str, str]]] = {}
        self.listing_pages: dict[str, list[str]] = {}  # page id -> targets of its listing pages
        self.successor = successor
        # The rewritten flavour draws from its own generator, so its legacy
        # site has the same pages, paths and titles as the default one.
        self.rw_rng = random.Random(f"rewritten:{seed}")
        self.rewriter = Rewriter(self.rw_rng, flavour.towns, flavour.places)
        self.facts: dict[str, Facts] = {}

    # ------------------------------------------------------------------ planning

    def unique_slug(self, text: str, scope: str) -> str:
        base = slugify(text) or "page"
        slug, n = base, 2
        while f"{scope}/{slug}" in self.slugs:
            slug = f"{base}-{n}"
            n += 1
        self.slugs.add(f"{scope}/{slug}")
        return slug

    def add_page(self, page: Page) -> Page:
        self.pages.append(page)
        self.by_path[page.path] = page
        return page

    def date_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def plan(self) -> None:
        fl, r = self.fl, self.rng
        frozen = date.fromisoformat(fl.frozen)
        self.add_page(Page("home", "home", "Home", "/", "self care"))
        for si, sec in enumerate(fl.sections):
            self.add_page(
                Page(
                    f"sec-{sec.slug}",
                    "section",
                    sec.title,
                    f"/{sec.slug}",
                    r.choice(_topics()),
                    section=sec,
                    itemid=110 + si,
                )
            )
            for sj, (slug, title) in enumerate(sec.subsections):
                self.add_page(
                    Page(
                        f"cat-{sec.slug}-{slug}",
                        "category",
                        title,
                        f"/{sec.slug}/{slug}",
                        r.choice(_topics()),
                        section=sec,
                        sub=(slug, title),
                        itemid=200 + si * 20 + sj,
                        # Joomla's first categories are its own (root, uncategorised...).
                        catid=8 + sum(len(s.subsections) for s in fl.sections[:si]) + sj,
                    )
                )
        news_sec = fl.sections[0]
        self.add_page(
            Page(
                "news-listing",
                "news-listing",
                "News",
                f"/{news_sec.slug}/news",
                "self care",
                section=news_sec,
                itemid=180,
            )
        )
        self.add_page(
            Page(
                "events",
                "events",
                "Events",
                f"/{news_sec.slug}/events",
                "self care",
                section=news_sec,
                itemid=181,
            )
        )
        self.add_page(
            Page("contact", "contact", "Contact us", "/contact-us", "self care", itemid=190)
        )

        fixed = len(self.pages)
        remaining = self.n - fixed
        n_news = max(10, round(remaining * 0.22))
        n_multi = max(3, round(remaining * 0.025))
        n_articles = max(10, remaining - n_news - n_multi)
        # Joomla ids are unique across all articles; news ids are drawn from
        # range(100, 100 + 3 * n_news), so the other articles are numbered above it.
        self.next_jid = 100 + 3 * n_news

        # Multi-part articles live under consultation/report categories, plus one
        # privacy notice that sits straight under the first section.
        report_cats = [
            (sec, sub)
            for sec in fl.sections
            for sub in sec.subsections
            if sub[0] in ("consultations", "engagement-reports")
        ] or [(fl.sections[-1], fl.sections[-1].subsections[0])]
        privacy = Page(
            "privacy",
            "multipart",
            "Privacy notice",
            f"/{news_sec.slug}/privacy-notice",
            "prescription ordering",
            section=news_sec,
            jid=self._jid(),
            itemid=182,
        )
        privacy.listed = False
        self.add_page(privacy)
        for i in range(n_multi - 1):
            sec, sub = report_cats[i % len(report_cats)]
            topic = self.prose.topic()
            title = self.prose.title(topic, REPORT_PATTERNS)
            scope = f"/{sec.slug}/{sub[0]}"
            self.add_page(
                Page(
                    f"m{i:05d}",
                    "multipart",
                    title,
                    f"{scope}/{self.unique_slug(title, scope)}",
                    topic,
                    section=sec,
                    sub=sub,
                    jid=self._jid(),
                    itemid=200 + fl.sections.index(sec) * 20 + sec.subsections.index(sub),
                )
            )
        cats = [(sec, sub) for sec in fl.sections for sub in sec.subsections]
        for i in range(n_articles):
            sec, sub = cats[r.randrange(len(cats))]
            topic = self.prose.topic()
            title = self.prose.title(topic)
            scope = f"/{sec.slug}/{sub[0]}"
            self.add_page(
                Page(
                    f"a{i:05d}",
                    "article",
                    title,
                    f"{scope}/{self.unique_slug(title, scope)}",
                    topic,
                    section=sec,
                    sub=sub,
                    jid=self._jid(),
                    itemid=200 + fl.sections.index(sec) * 20 + sec.subsections.index(sub),
                )
            )
        news_ids = sorted(r.sample(range(100, 100 + n_news * 3), n_news))
        for i, nid in enumerate(news_ids):
            topic = self.prose.topic()
            title = self.prose.title(topic, NEWS_PATTERNS)
            slug = self.unique_slug(title, "news")
            self.add_page(
                Page(
                    f"n{i:05d}",
                    "news",
                    title,
                    f"/{news_sec.slug}/news/{nid}-{slug}",
                    topic,
                    section=news_sec,
                    jid=nid,
                    itemid=180,
                )
            )

        # Dates, hits and template variants (pages captured before the popup was
        # added lack it; a few lack the contact line too).
        news = [p for p in self.pages if p.kind == "news"]
        span = (frozen - date(2014, 1, 1)).days
        for i, p in enumerate(news):
            # News ids rise with time, so date them in id order.
            d = date(2014, 1, 1) + timedelta(days=int(span * (i + 1) / (len(news) + 1)))
            p.published = d.isoformat()
        for p in self.pages:
            if not p.published:
                p.published = self.date_between(
                    date(2013, 1, 1), frozen - timedelta(days=3)
                ).isoformat()
            pub = date.fromisoformat(p.published)
            p.modified = self.date_between(pub, max(pub, frozen - timedelta(days=1))).isoformat()
            p.hits = r.randrange(12, 9000)
            p.popup = p.kind == "home" or r.random() >= 0.15
            p.contact = r.random() >= 0.08
        articles = [p for p in self.pages if p.kind == "article"]
        for p in r.sample(articles, 3):
            p.listed = False  # reachable from the sitemap only
        articles[0].charset = "windows-1252"
        for p in [self.pages[0], articles[1], articles[2]]:
            p.gzip = True

    def _jid(self) -> int:
        self.next_jid += 1
        return self.next_jid

    # ------------------------------------------------------------------ content

    def content_blocks(self, page: Page, paragraphs: int) -> list[Block]:
        pr, r = self.prose, self.rng
        blocks: list[Block] = []
        for i in range(paragraphs):
            if i and r.random() < 0.3:
                h = pr.subheading()
                blocks.append(Block("h3", h, f"<h3>{e(h)}</h3>"))
            para = pr.paragraph(page.topic)
            blocks.append(Block("p", para, f"<p>{e(para)}</p>"))
            roll = r.random()
            if roll < 0.15:
                tag = "ul" if r.random() < 0.7 else "ol"
                items = pr.list_items(r.randint(3, 6))
                blocks.extend(Block("li", it, "") for it in items)
                blocks[-len(items)].html = (
                    f"<{tag}>" + "".join(f"<li>{e(it)}</li>" for it in items) + f"</{tag}>"
                )
            elif roll < 0.2:
                rows = [["Meeting", "Date", "Venue"]]
                for _ in range(r.randint(2, 4)):
                    month = r.choice(calendar.MONTH_NAMES)
                    rows.append(
                        [
                            pr.subheading().rstrip("?"),
                            f"{r.randint(1, 28)} {month} 2019",
                            pr.pick(self.fl.places).replace("the ", "").capitalize(),
                        ]
                    )
                html = (
                    '<table class="table">'
                    + "".join(
                        "<tr>"
                        + "".join(
                            (f"<th>{e(c)}</th>" if ri == 0 else f"<td>{e(c)}</td>") for c in row
                        )
                        + "</tr>"
                        for ri, row in enumerate(rows)
                    )
                    + "</table>"
                )
                blocks.extend(Block("tr", " ".join(row), "") for row in rows)
                blocks[-len(rows)].html = html
        return blocks

    def add_image(self, page: Page, slug: str) -> Block:
        r = self.rng
        colour = (r.randrange(256), r.randrange(256), r.randrange(256))
        w, h = r.choice(((120, 80), (160, 90), (200, 120)))
        path = f"/images/articles/{slug}.png"
        self.add_static(
            path, "image/png", assets.png(w, h, colour, stripe=r.randint(0, 8)), "image"
        )
        caption = self.prose.sentence(page.topic)
        srcset = ""
        if r.random() < 0.5:
            path2 = f"/images/articles/{slug}-2x.png"
            self.add_static(path2, "image/png", assets.png(w * 2, h * 2, colour, stripe=3), "image")
            srcset = f' srcset="{path} 1x, {path2} 2x"'
            page.images.append(path2)
        page.images.append(path)
        html = (
            f'<div class="img-caption"><img src="{path}"{srcset} alt="{e(page.topic)}" '
            f'width="{w}" height="{h}"><p class="caption">{e(caption)}</p></div>'
        )
        return Block("caption", caption, html)

    def add_document(self, page: Page, title: str) -> Block:
        r = self.rng
        kind = r.choices(("pdf", "docx", "xlsx"), weights=(7, 2, 1))[0]
        paras = [self.prose.paragraph(page.topic) for _ in range(r.randint(2, 4))]
        if kind == "pdf":
            data = assets.pdf(title, paras)
        elif kind == "docx":
            data = assets.docx(title, paras)
        else:
            data = assets.xlsx(
                title[:31],
                [["Item", "Value"]]
                + [[self.prose.subheading(), str(r.randrange(1, 999))] for _ in range(6)],
            )
        folder = "/images/documents"
        if r.random() < 0.08:
            # Spaces and capitals in uploaded file names: the path is percent-encoded.
            name = f"{title[:40].strip()} {page.published[:4]}.{kind}"
            folder = "/images/documents/Board Papers"
        else:
            name = f"{slugify(title)[:50]}.{kind}"
        path = quote(f"{folder}/{name}")
        if path in self.routes:
            name = f"{page.id}-{name}"
            path = quote(f"{folder}/{name}")
        ctype = DOC_TYPES[kind]
        doc = Document(path, name, kind, title, data)
        page.docs.append(doc)
        self.add_static(path, ctype, data, "document", page=page.id)
        size = max(1, round(len(data) / 1024))
        label = f"Download {title} ({kind.upper()}, {size} KB)"
        return Block("doc", label, f'<p><a href="{path}" class="doclink">{e(label)}</a></p>')

    def fill(self) -> None:
        """Give every page its main content."""
        r = self.rng
        for p in self.pages:
            if p.kind in ("article", "news"):
                p.blocks = self.content_blocks(p, r.randint(3, 9))
                if r.random() < 0.3:
                    p.blocks.insert(
                        r.randint(1, len(p.blocks)), self.add_image(p, slugify(p.title))
                    )
                if r.random() < 0.25:
                    p.blocks.append(self.add_document(p, p.title))
            elif p.kind == "multipart":
                n_parts = 12 if p.id == "privacy" else r.randint(3, 20)
                heads = r.sample(PART_HEADINGS, min(n_parts, len(PART_HEADINGS)))
                while len(heads) < n_parts:
                    heads.append(f"Part {len(heads) + 1}")
                for h in heads:
                    p.parts.append((h, self.content_blocks(p, r.randint(2, 4))))
                if r.random() < 0.6:
                    p.parts[-1][1].append(self.add_document(p, f"{p.title} full report"))
            elif p.kind in ("section", "category"):
                para = self.prose.paragraph(p.topic, 2)
                p.blocks = [Block("p", para, f'<div class="category-desc"><p>{e(para)}</p></div>')]
            elif p.kind == "home":
                para = (
                    f"Welcome to {self.fl.org_short}. We are the NHS organisation that plans "
                    f"local health services for {', '.join(self.fl.towns)}, working with GP "
                    "practices, hospitals and the council."
                )
                p.blocks = [Block("p", para, f"<p>{e(para)}</p>")]
        # windows-1252 page: text that only decodes right with the declared charset.
        p = next(pg for pg in self.pages if pg.charset == "windows-1252")
        special = (
            "Prescription charges rose to £9.15 per item – a “prepayment certificate” can "
            "save money if you need several items; ask at the pharmacy café desk."
        )
        p.blocks.insert(0, Block("p", special, f"<p>{e(special)}</p>"))

        # Related links between pages, in every form the real site mixed up.
        articles = [pg for pg in self.pages if pg.kind == "article"]
        # Orphans stay unlinked: the sitemap is their only way in.
        targets = [pg for pg in self.pages if pg.kind in ("article", "news") and pg.listed]
        for p in articles + [pg for pg in self.pages if pg.kind == "news"]:
            if r.random() < 0.6:
                t = targets[r.randrange(len(targets))]
                if t is p:
                    continue
                href = self.link_variant(t, p)
                text = f"You may also want to read {t.title}."
                p.blocks.append(
                    Block(
                        "related",
                        text,
                        f'<p>You may also want to read <a href="{e(href)}">{e(t.title)}</a>.</p>',
                    )
                )
        self.add_special_links(articles)

    def link_variant(self, target: Page, source: Page) -> str:
        """A link to target in one of the forms the legacy site's editors used."""
        r = self.rng.random()
        path = target.path
        if r < 0.12:
            return self.alias(path + "/", target, "slash-variant")
        if r < 0.17:
            cased = "/".join(seg[:1].upper() + seg[1:] for seg in path.split("/"))
            return self.alias(cased, target, "case-variant")
        if r < 0.27 and target.jid is not None:
            itemid = target.itemid
            href = f"/index.php?option=com_content&view=article&id={target.jid}&Itemid={itemid}"
            return self.alias(href, target, "index-php")
        if r < 0.33:
            return f"{self.base}{path}"
        if r < 0.37:
            sid = hashlib.sha1(f"{self.seed}{source.id}".encode()).hexdigest()[:26]
            return self.alias(f"{path}?sid={sid}", target, "session-variant", capture=False)
        if r < 0.45 and source.sub and target.sub == source.sub:
            return path.rsplit("/", 1)[1]  # relative to the <base href> of a sibling
        return path

    def alias(
        self, target: str, page: Page, kind: str, capture: bool = True, part: int | None = None
    ) -> str:
        if target not in self.routes:
            self.routes[target] = Route(
                target,
                200,
                kind,
                alias_of=page.path,
                page=page.id,
                capture=capture,
                part=part,
            )
            page.urls.append(target)
        return target

    def add_special_links(self, articles: list[Page]) -> None:
        """Redirects (one a chain), links to missing pages, the bare-host alias."""
        fl, r = self.fl, self.rng
        news = self.by_path[f"/{fl.sections[0].slug}/news"]
        involved = [p for p in articles if p.section and p.section.slug == fl.sections[1].slug]
        chain_end = (involved or articles)[0]
        first_sec = fl.sections[1].slug
        specials: list[tuple[str, str]] = [
            ("/news", "Read our latest news"),
            (f"/{first_sec}/have-your-say", "Have your say on local services"),
            (f"/index.php/{fl.sections[2].slug}", "Find out about local services"),
            (f"/{fl.sections[0].slug}/board-papers-2014", "Board papers from 2014"),
            (f"/{fl.sections[2].slug}/flu-jab-2016", "Flu vaccination clinics 2016"),
            ("/images/documents/old-leaflet.pdf", "Download the old leaflet (PDF)"),
        ]
        self.add_redirect("/news", 301, news.path, "redirect")
        self.add_redirect(
            f"/{first_sec}/have-your-say", 301, f"/{first_sec}/have-your-say-2018", "redirect"
        )
        self.add_redirect(f"/{first_sec}/have-your-say-2018", 302, chain_end.path, "redirect")
        self.add_redirect(
            f"/index.php/{fl.sections[2].slug}", 301, f"/{fl.sections[2].slug}", "redirect"
        )
        for target in specials[3:]:
            self.routes[target[0]] = Route(target[0], 404, "missing", page=None)
        if fl.legacy_aliases:
            alias_url = f"http://{fl.legacy_aliases[0]}/{fl.sections[2].slug}"
            specials.append((alias_url, "Your health pages"))
        hosts = r.sample(articles, min(len(articles), len(specials)))
        for (href, label), host in zip(specials, hosts, strict=False):
            host.blocks.append(
                Block("related", label, f'<p><a href="{e(href)}">{e(label)}</a></p>')
            )
        self.alias_links = [href for href, _ in specials if href.startswith("http")]

    def add_redirect(self, target: str, status: int, to: str, kind: str) -> None:
        self.routes[target] = Route(target, status, kind, location=f"{self.base}{to}", ctype=HTML)

    def add_static(
        self,
        target: str,
        ctype: str,
        data: bytes,
        kind: str,
        page: str | None = None,
        gz: bool = False,
    ) -> None:
        blob = self.blobs.put(data)
        route = Route(target, 200, kind, ctype=ctype, blob=blob, page=page)
        if gz:
            route.gz_blob = self.blobs.put(gzip_bytes(data))
        self.routes[target] = route

    # ------------------------------------------------------------------ rendering

    def latest(self) -> list[tuple[str, str]]:
        news = [p for p in self.pages if p.kind == "news"][-5:]
        return [(p.title, p.path) for p in reversed(news)]

    def breadcrumbs(self, p: Page) -> list[tuple[str, str]]:
        crumbs = [("Home", "/")]
        if p.section:
            crumbs.append((p.section.title, f"/{p.section.slug}"))
        if p.sub:
            crumbs.append((p.sub[1], f"/{p.section.slug}/{p.sub[0]}" if p.section else "/"))
        if p.kind not in ("section",) and p.kind != "category":
            crumbs.append((p.title, p.path))
        elif p.kind == "section":
            crumbs = crumbs[:2]
        return crumbs

    def article_html(self, p: Page, body: str, print_link: str | None) -> str:
        pub = date.fromisoformat(p.published)
        when = f"{pub.day} {calendar.MONTH_NAMES[pub.month - 1]} {pub.year}"
        if self.theme == "protostar":
            icons = (
                f'<div class="icons"><ul class="actions"><li class="print-icon"><a href="{e(print_link)}" '
                'rel="nofollow">Print</a></li></ul></div>'
                if print_link
                else ""
            )
            return (
                '<div class="item-page" itemscope itemtype="https://schema.org/Article">'
                f'<div class="page-header"><h2 itemprop="headline">{e(p.title)}</h2></div>{icons}'
                '<dl class="article-info muted"><dt class="article-info-term">Details</dt>'
                f'<dd class="published"><time datetime="{p.published}T09:00:00+00:00">'
                f'Published: {when}</time></dd><dd class="hits">Hits: {p.hits}</dd></dl>'
                f'<div itemprop="articleBody">{body}</div></div>'
            )
        icon = (
            f'<td class="buttonheading"><a href="{e(print_link)}" rel="nofollow">'
            f'<img src="/templates/classic/images/printButton.png" alt="Print"></a></td>'
            if print_link
            else ""
        )
        return (
            '<table class="contentpaneopen"><tr><td class="contentheading" width="100%">'
            f"{e(p.title)}</td>{icon}</tr></table>"
            f'<table class="contentpaneopen"><tr><td class="createdate">{when}</td></tr>'
            f'<tr><td valign="top">{body}</td></tr></table>'
        )

    def chrome(
        self,
        p: Page,
        title: str | None = None,
        feedback: bool = True,
        pager: list[tuple[str, str]] | None = None,
        head_links: list[str] | None = None,
    ) -> Chrome:
        body_class = f"com_content view-{p.kind} itemid-{p.itemid}"
        return Chrome(
            title=title or p.title,
            base_href=f"{self.base}{p.path}",
            body_class=body_class,
            breadcrumbs=self.breadcrumbs(p) if p.kind != "home" else [],
            popup=p.popup,
            contact=p.contact,
            nav_active=p.section.slug if p.section else "",
            charset=p.charset,
            feedback=feedback,
            pager=pager or [],
            head_links=head_links or [],
        )

    def emit(
        self, target: str, p: Page, chrome: Chrome, main: str, kind: str, part: int | None = None
    ) -> Route:
        html = legacy_page(self.fl, self.theme, chrome, main, self.nav[0], self._latest)
        data = html.encode("cp1252" if p.charset == "windows-1252" else "utf-8")
        ctype = f"text/html; charset={p.charset}"
        route = Route(
            target, 200, kind, ctype=ctype, blob=self.blobs.put(data), page=p.id, part=part
        )
        if p.gzip:
            route.gz_blob = self.blobs.put(gzip_bytes(data))
        self.routes[target] = route
        if target not in p.urls:
            p.urls.append(target)
        return route

    def render_legacy(self) -> None:
        self.nav = nav_html(self.fl, "", self.theme)
        self._latest = self.latest()
        by_cat: dict[str, list[Page]] = {}
        for p in self.pages:
            if p.kind in ("article", "multipart") and p.sub and p.section and p.listed:
                by_cat.setdefault(f"/{p.section.slug}/{p.sub[0]}", []).append(p)
        news = [p for p in self.pages if p.kind == "news"]
        neighbours: dict[str, list[Page]] = {}
        for cat in by_cat.values():
            for i, p in enumerate(cat):
                neighbours[p.id] = [
                    cat[i - 1] if i else None,
                    cat[i + 1] if i + 1 < len(cat) else None,
                ]  # type: ignore[list-item]
        for i, p in enumerate(news):
            neighbours[p.id] = [
                news[i - 1] if i else None,
                news[i + 1] if i + 1 < len(news) else None,
            ]  # type: ignore[list-item]

        for p in self.pages:
            if p.kind in ("article", "news"):
                self.render_article(p, neighbours.get(p.id, [None, None]))
            elif p.kind == "multipart":
                self.render_multipart(p)
            elif p.kind == "category":
                self.render_listing(p, by_cat.get(p.path, []))
            elif p.kind == "news-listing":
                self.render_listing(p, list(reversed(news)), news=True)
            elif p.kind == "section":
                self.render_section(p)
            elif p.kind == "home":
                featured = [pg for pg in self.pages if pg.kind == "article" and pg.listed]
                self.render_home(p, featured[:6])
            elif p.kind == "contact":
                self.render_contact(p)
            elif p.kind == "events":
                self.render_events(p)

    def render_article(self, p: Page, nb: list[Page | None]) -> None:
        body = "".join(b.html for b in p.blocks if b.html)
        print_target = f"{p.path}?tmpl=component&print=1"
        main = self.article_html(p, body, print_target)
        pager = []
        if nb[0]:
            pager.append(("Prev", nb[0].path))
        if nb[1]:
            pager.append(("Next", nb[1].path))
        p.pager = pager
        self.emit(p.path, p, self.chrome(p, pager=pager), main, "page")
        from .templates import print_page

        printed = print_page(
            self.fl, self.theme, p.title, self.article_html(p, body, None), f"{self.base}{p.path}"
        )
        data = printed.encode("cp1252" if p.charset == "windows-1252" else "utf-8")
        self.routes[print_target] = Route(
            print_target,
            200,
            "print",
            ctype=f"text/html; charset={p.charset}",
            blob=self.blobs.put(data),
            page=p.id,
        )
        p.urls.append(print_target)

    def render_multipart(self, p: Page) -> None:
        n = len(p.parts)

        def part_html(k: int) -> str:
            head, blocks = p.parts[k]
            return (
                f'<div class="part"><h3>{e(head)}</h3>'
                + "".join(b.html for b in blocks if b.html)
                + "</div>"
            )

        def toc(active: int | None, showall: bool) -> str:
            items = []
            for k, (head, _) in enumerate(p.parts):
                href = p.path if k == 0 else f"{p.path}?showall=&start={k}"
                cls = ' class="toclink active"' if k == active else ' class="toclink"'
                items.append(f'<li><a href="{e(href)}"{cls}>{e(head)}</a></li>')
            cls = ' class="toclink active"' if showall else ' class="toclink"'
            items.append(f'<li><a href="{e(p.path)}?showall=1"{cls}>All Pages</a></li>')
            return (
                '<div class="pull-right article-index"><h3>Article Index</h3>'
                f'<ul class="nav nav-tabs nav-stacked">{"".join(items)}</ul></div>'
            )

        for k in range(n):
            nav = []
            if k > 0:
                nav.append(
                    f'<li class="previous"><a href="{e(self._part_href(p, k - 1))}">Prev</a></li>'
                )
            if k + 1 < n:
                nav.append(f'<li class="next"><a href="{e(p.path)}?start={k + 1}">Next</a></li>')
            body = (
                toc(k, False)
                + f'<div class="pagenavcounter">Page {k + 1} of {n}</div>'
                + part_html(k)
                + f'<ul class="pager pagenav">{"".join(nav)}</ul>'
            )
            main = self.article_html(p, body, None)
            title = p.title if k == 0 else f"{p.title} - {p.parts[k][0]}"
            target = self._part_href(p, k)
            self.emit(
                target, p, self.chrome(p, title=title), main, "page" if k == 0 else "part", part=k
            )
            if k:
                self.alias(f"{p.path}?showall=&start={k}", p, "part", part=k)
                self.routes[f"{p.path}?showall=&start={k}"].alias_of = target
        body = toc(None, True) + "".join(part_html(k) for k in range(n))
        self.emit(
            f"{p.path}?showall=1", p, self.chrome(p), self.article_html(p, body, None), "showall"
        )

    @staticmethod
    def _part_href(p: Page, k: int) -> str:
        return p.path if k == 0 else f"{p.path}?start={k}"

    def intro_item(self, item: Page) -> str:
        first = next((b for b in item.blocks if b.type == "p"), None)
        if first is None and item.parts:
            first = next((b for b in item.parts[0][1] if b.type == "p"), None)
        intro = first.text.split(". ")[0] + "." if first else ""
        return (
            f'<div class="item"><h2 class="item-title"><a href="{e(item.path)}">{e(item.title)}'
            f'</a></h2><p>{e(intro)}</p><p class="readmore"><a class="btn" href="{e(item.path)}">'
            f"Read more: {e(item.title)}</a></p></div>"
        )

    def render_listing(self, p: Page, items: list[Page], news: bool = False) -> None:
        pages = max(1, -(-len(items) // PER_PAGE))
        rss = f"{p.path}?format=feed&type=rss"
        head = [
            f'<link href="{e(rss)}" rel="alternate" type="application/rss+xml" title="RSS 2.0">'
        ]
        for k in range(pages):
            chunk = items[k * PER_PAGE : (k + 1) * PER_PAGE]
            parts = [f'<div class="blog"><h2>{e(p.title)}</h2>']
            if k == 0:
                parts.extend(b.html for b in p.blocks)
                if news and chunk:
                    lead = chunk[0]  # the listing repeats its newest item in full
                    parts.append(
                        f'<div class="items-leading"><h2>{e(lead.title)}</h2>'
                        + "".join(b.html for b in lead.blocks if b.html)
                        + "</div>"
                    )
                    chunk = chunk[1:]
            parts.extend(self.intro_item(it) for it in chunk)
            links = []
            for j in range(pages):
                href = p.path if j == 0 else f"{p.path}?start={j * PER_PAGE}"
                links.append(
                    f'<li><a href="{e(href)}">{j + 1}</a></li>'
                    if j != k
                    else f'<li class="active"><span>{j + 1}</span></li>'
                )
            parts.append(
                f'<div class="pagination"><p class="counter">Page {k + 1} of {pages}</p>'
                f"<ul>{''.join(links)}</ul></div></div>"
            )
            target = p.path if k == 0 else f"{p.path}?start={k * PER_PAGE}"
            self.emit(
                target,
                p,
                self.chrome(p, feedback=False, head_links=head),
                "".join(parts),
                "listing",
            )
        self.render_rss(p, rss, items[:20])

    def render_rss(self, p: Page, target: str, items: list[Page]) -> None:
        entries = "".join(
            f"<item><title>{e(it.title)}</title><link>{self.base}{e(it.path)}</link>"
            f'<guid isPermaLink="true">{self.base}{e(it.path)}</guid>'
            f"<pubDate>{it.published}</pubDate></item>"
            for it in items
        )
        xml = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>{e(p.title)} - {e(self.fl.org_short)}</title><link>{self.base}{e(p.path)}</link>"
            f"<description>{e(p.title)}</description>{entries}</channel></rss>\n"
        )
        self.routes[target] = Route(
            target,
            200,
            "rss",
            ctype="application/rss+xml; charset=utf-8",
            blob=self.blobs.put(xml.encode()),
            page=p.id,
        )
        p.urls.append(target)

    def render_section(self, p: Page) -> None:
        assert p.section is not None
        subs = "".join(
            f'<li><a href="/{p.section.slug}/{slug}">{e(title)}</a></li>'
            for slug, title in p.section.subsections
        )
        main = (
            f'<div class="categories-list"><h2>{e(p.title)}</h2>'
            + "".join(b.html for b in p.blocks)
            + f"<ul>{subs}</ul></div>"
        )
        self.emit(p.path, p, self.chrome(p, feedback=False), main, "listing")

    def render_home(self, p: Page, featured: list[Page]) -> None:
        items = []
        for it in featured:
            items.append(self.intro_item(it))
        # The home page links a few articles by their index.php form, as Joomla's
        # featured module did before SEF URLs were switched on.
        for it in featured[:2]:
            href = f"/index.php?option=com_content&view=article&id={it.jid}&Itemid=101"
            self.alias(href, it, "index-php")
            items.append(f'<p class="legacy-link"><a href="{e(href)}">{e(it.title)}</a></p>')
        # ... and its category module linked categories the same way.
        for cat in [pg for pg in self.pages if pg.kind == "category"][:2]:
            href = (
                f"/index.php?option=com_content&view=category&layout=blog&id={cat.catid}&Itemid=101"
            )
            self.alias(href, cat, "index-php-category")
            items.append(f'<p class="legacy-link"><a href="{e(href)}">{e(cat.title)}</a></p>')
        events = self.by_path[f"/{self.fl.sections[0].slug}/events"]
        rel = self.fl.sections[2].slug  # a relative link resolved against <base href>
        main = (
            '<div class="blog-featured">'
            + "".join(b.html for b in p.blocks)
            + "".join(items)
            + f'<p><a href="{events.path}">What\'s on</a> | <a href="{rel}">Your health</a></p>'
            + "</div>"
        )
        self.emit("/", p, self.chrome(p, feedback=False), main, "page")

    def render_contact(self, p: Page) -> None:
        fl = self.fl
        lines = [
            fl.org_name,
            f"{fl.places[4].replace('the ', '').title()}, {fl.towns[-1]}",
            f"Telephone: {fl.phone}",
            f"Email: {fl.email}",
            "Our offices are open Monday to Friday, 9am to 5pm.",
        ]
        p.blocks = [Block("p", ln, f"<p>{e(ln)}</p>") for ln in lines]
        form = (
            '<form class="contact-form" action="/contact-us" method="post"><fieldset>'
            '<legend>Send an email</legend><label>Name</label><input name="name">'
            '<label>Email</label><input name="email"><label>Message</label><textarea '
            'name="message"></textarea><button type="submit">Send Email</button></fieldset></form>'
        )
        main = (
            f'<div class="contact"><h2>{e(p.title)}</h2><div class="contact-address">'
            + "".join(b.html for b in p.blocks)
            + f"</div>{form}</div>"
        )
        self.emit(p.path, p, self.chrome(p, feedback=False), main, "page")

    def render_events(self, p: Page) -> None:
        frozen = date.fromisoformat(self.fl.frozen)
        year, month = frozen.year, frozen.month
        for k in range(12):
            y, m = calendar.shift(year, month, -k)
            evs = []
            for _ in range(self.rng.randint(1, 4)):
                topic = self.prose.topic()
                evs.append(
                    {
                        "date": f"{self.rng.randint(1, 28)} {calendar.MONTH_NAMES[m - 1]} {y}",
                        "title": f"{topic[0].upper()}{topic[1:]} drop-in",
                        "place": self.prose.pick(self.fl.places),
                    }
                )
            self.events[calendar.month_key(y, m)] = evs
        shell = legacy_page(
            self.fl,
            self.theme,
            self.chrome(p, feedback=False),
            calendar.MARKER,
            self.nav[0],
            self._latest,
        )
        self.calendar_shell = self.blobs.put(shell.encode())
        for key, evs in self.events.items():
            y, m = calendar.parse_month(key)  # type: ignore[misc]
            html, _ = calendar.render(p.path, y, m, evs)
            data = shell.replace(calendar.MARKER, html).encode()
            target = f"{p.path}?month={key}"
            self.routes[target] = Route(
                target, 200, "calendar", blob=self.blobs.put(data), page=p.id
            )
            p.urls.append(target)
            if (y, m) == (year, month):
                self.routes[p.path] = Route(
                    p.path, 200, "page", blob=self.routes[target].blob, page=p.id
                )
                p.urls.insert(0, p.path)
        html, texts = calendar.render(
            p.path, year, month, self.events[calendar.month_key(year, month)]
        )
        p.blocks = [Block("p", t, "") for t in texts]

    # ------------------------------------------------------------------ static files

    def render_static(self) -> None:
        fl, theme = self.fl, self.theme
        t = f"/templates/{theme}"
        css = (
            b'@import url("fonts.css");\n'
            b"body { font-family: 'Open Sans', Arial, sans-serif; margin: 0; }\n"
            b".header { background: #005eb8 url(../images/header-bg.png) repeat-x; }\n"
            b".modal { position: fixed; top: 10%; left: 25%; width: 50%; background: #fff; }\n"
            b".breadcrumb li { display: inline; }\n"
        )
        fonts = (
            b"@font-face { font-family: 'Open Sans'; "
            b"src: url('../fonts/opensans-regular.woff2') format('woff2'), "
            b"url(../fonts/opensans-regular.woff) format('woff'); }\n"
        )
        self.add_static(f"{t}/css/template.css", "text/css", css, "css", gz=True)
        self.add_static(f"{t}/css/fonts.css", "text/css", fonts, "css")
        self.add_static(f"{t}/css/print.css", "text/css", b"body { color: #000; }\n", "css")
        self.add_static(
            f"{t}/fonts/opensans-regular.woff2",
            "font/woff2",
            assets.font_stub("opensans-regular-woff2"),
            "font",
        )
        self.add_static(
            f"{t}/fonts/opensans-regular.woff",
            "font/woff",
            assets.font_stub("opensans-regular-woff"),
            "font",
        )
        self.add_static(
            f"{t}/images/logo.png", "image/png", assets.png(180, 60, (0, 94, 184), 6), "image"
        )
        self.add_static(
            f"{t}/images/header-bg.png", "image/png", assets.png(4, 90, (0, 70, 150), 10), "image"
        )
        if theme == "classic":
            self.add_static(
                f"{t}/images/arrow.png", "image/png", assets.png(8, 8, (90, 90, 90)), "image"
            )
            self.add_static(
                f"{t}/images/printButton.png",
                "image/png",
                assets.png(16, 16, (40, 40, 40)),
                "image",
            )
        self.add_static(
            f"{t}/favicon.ico",
            "image/vnd.microsoft.icon",
            assets.ico(assets.png(16, 16, (0, 94, 184)), 16),
            "icon",
        )
        self.add_static(
            f"{t}/js/template.js",
            "application/javascript",
            (
                b"// Popup notice and comment counter for the archived site.\n"
                b"document.addEventListener('DOMContentLoaded', function () {\n"
                b"  var box = document.querySelector('textarea[maxlength]');\n"
                b"  if (box) { box.addEventListener('input', function () {\n"
                b"    var left = 1000 - box.value.length;\n"
                b"    document.querySelector('.chars-left .count').textContent = left; }); }\n"
                b"});\n"
            ),
            "js",
        )
        self.add_static(
            "/media/jui/js/jquery.min.js",
            "application/javascript",
            b"/* stand-in for the site's jQuery build */\nwindow.jQuery = window.$ = "
            b"function (s) { return document.querySelectorAll(s); };\n",
            "js",
        )
        self.add_static(
            "/robots.txt",
            "text/plain",
            (
                "# robots.txt for the archived site\nUser-agent: *\nDisallow: /administrator/\n"
                "Disallow: /cache/\nDisallow: /tmp/\nDisallow: /component/users/\n"
                "Disallow: /members-area\n"
                f"Sitemap: {self.base}/sitemap.xml\n"
            ).encode(),
            "robots",
        )
        self.routes["/robots.txt"].capture = True
        # Pages behind robots.txt: real answers, so a crawler that ignored the rules would
        # capture them; the ground truth says they must not be requested.
        for target in (
            "/members-area",
            "/component/users/?view=reset&Itemid=101",
            "/component/users/?view=remind&Itemid=101",
        ):
            body = (
                f"<!DOCTYPE html><html><head><title>Members area - {e(fl.org_short)}</title>"
                "</head><body><h1>Please log in</h1></body></html>"
            ).encode()
            self.routes[target] = Route(
                target, 200, "disallowed", blob=self.blobs.put(body), capture=False
            )
        self.add_static(
            "/accessibility",
            HTML,
            (
                f"<!DOCTYPE html><html><head><title>Accessibility - {e(fl.org_short)}</title></head>"
                "<body><h1>Accessibility</h1><p>This site aims to meet WCAG 2.0 AA.</p></body>"
                "</html>"
            ).encode(),
            "page",
        )

    def render_sitemap(self) -> None:
        urls = [p.path for p in self.pages if p.kind != "events"]
        body = "".join(f"<url><loc>{self.base}{e(u)}</loc></url>" for u in urls)
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{body}</urlset>\n"
        )
        self.add_static("/sitemap.xml", "application/xml", xml.encode(), "sitemap")

    # ------------------------------------------------------------------ successor site

    def plan_successors(self) -> None:
        fl, r, pr = self.fl, self.rng, self.prose
        new_sections = [path for path, _ in fl.new_sections]

        def place(sec: Section) -> str:
            options = [s for s in new_sections if s.startswith(sec.new_section)]
            return options[r.randrange(len(options))]

        def add_new(
            path: str,
            title: str,
            blocks: list[Block],
            succeeds: list[str],
            kind: str,
            docs: list[Document] | None = None,
        ) -> str:
            stem, n = path.rstrip("/"), 2
            while path in self.new_routes:
                path = f"{stem}-{n}/"
                n += 1
            self.new_routes[path] = Route(path, 200, kind)  # rendered later
            self.new_pages.append(
                {
                    "path": path,
                    "title": title,
                    "blocks": blocks,
                    "succeeds": succeeds,
                    "kind": kind,
                    "docs": docs or [],
                }
            )
            return path

        self.new_pages.append(
            {
                "path": "/",
                "title": fl.new_site_name,
                "blocks": [
                    Block(
                        "p", f"Health and care information for people in {', '.join(fl.towns)}.", ""
                    )
                ],
                "succeeds": ["home"],
                "kind": "home",
                "docs": [],
            }
        )
        self.new_routes["/"] = Route("/", 200, "home")
        for path, title in fl.new_sections:
            para = pr.paragraph(pr.topic(), 2)
            succeeds = ["contact"] if path == "/contact-us/" else []
            self.new_pages.append(
                {
                    "path": path,
                    "title": title,
                    "blocks": [Block("p", para, "")],
                    "succeeds": succeeds,
                    "kind": "section",
                    "docs": [],
                }
            )
            self.new_routes[path] = Route(path, 200, "section")
        for path, title in fl.campaigns:
            blocks = [Block("p", pr.paragraph(pr.topic()), "") for _ in range(3)]
            add_new(path, title, blocks, [], "new-only")

        home = self.by_path["/"]
        home.successor, home.fate = "/", "same-path"
        contact = self.by_path["/contact-us"]
        contact.successor, contact.fate = "/contact-us/", "same-path"
        for p in self.pages:
            if p.kind in ("section", "category") and p.section:
                p.successor, p.fate = p.section.new_section, "section"

        if self.successor == "rewritten":
            self.plan_rewritten(add_new, place)
        else:
            self.plan_reused(add_new, place)

        # Documents: some re-hosted unchanged, some replaced by a new version.
        for p in self.pages:
            for d in p.docs:
                roll = r.random()
                if p.successor and roll < 0.5:
                    d.successor = (
                        f"/wp-content/uploads/2019/10/{quote(d.filename.replace(' ', '-'))}"
                    )
                    if roll < 0.1 and d.kind == "pdf":
                        # A revised edition: same file name, different bytes. Text after
                        # %%EOF is a PDF comment, so the file stays valid.
                        d.new_data = d.data + b"% revised edition\n"

    def plan_reused(self, add_new: Callable[..., str], place: Callable[[Section], str]) -> None:
        """Successors that keep most of their predecessors' wording (the original replica)."""
        r, pr = self.rng, self.prose
        new_sections = [path for path, _ in self.fl.new_sections]
        articles = [p for p in self.pages if p.kind == "article"]
        merge_pool: dict[str, list[Page]] = {}
        for p in articles:
            assert p.section is not None
            roll = r.random()
            kept = [b for b in p.blocks if b.type not in ("related", "doc", "caption")]
            if roll < 0.10 and p.section.new_section == f"/{p.section.slug}/":
                p.fate = "same-path"
                p.successor = add_new(p.path + "/", p.title, kept, [p.id], "successor", p.docs)
            elif roll < 0.22:
                p.fate = "same-slug"
                slug = p.path.rsplit("/", 1)[1]
                p.successor = add_new(
                    f"{place(p.section)}{slug}/", p.title, kept, [p.id], "successor", p.docs
                )
            elif roll < 0.60:
                p.fate = "retitled"
                title = p.title
                while title == p.title:
                    title = pr.title(p.topic, TITLE_PATTERNS)
                intro = pr.sentence(p.topic, opener=True)
                blocks = [Block("p", intro, ""), *kept[:-1]] if len(kept) > 2 else kept
                p.successor = add_new(
                    f"{place(p.section)}{slugify(title)}/",
                    title,
                    blocks,
                    [p.id],
                    "successor",
                    p.docs,
                )
            elif roll < 0.72:
                p.fate = "merged"
                merge_pool.setdefault(p.section.new_section, []).append(p)
            else:
                p.fate = "gone"
        for new_section, group in merge_pool.items():
            for i in range(0, len(group), 3):
                members = group[i : i + 3]
                if len(members) == 1:
                    members[0].fate = "gone"
                    continue
                title = f"{members[0].topic[0].upper()}{members[0].topic[1:]} and related services"
                blocks = []
                for m in members:
                    blocks.append(Block("h2", m.title, ""))
                    blocks.extend(
                        b for b in m.blocks if b.type not in ("related", "doc", "caption")
                    )
                path = add_new(
                    f"{new_section}{slugify(title)}/",
                    title,
                    blocks,
                    [m.id for m in members],
                    "merged",
                    [d for m in members for d in m.docs],
                )
                for m in members:
                    m.successor = path
        for p in self.pages:
            if p.kind != "multipart" or p.id == "privacy":
                continue
            if p.sub and p.sub[0] == "engagement-reports" and r.random() < 0.7:
                # Every part of a report collapses into one new page.
                assert p.section is not None
                blocks = []
                for head, part in p.parts:
                    blocks.append(Block("h2", head, ""))
                    blocks.extend(b for b in part if b.type not in ("related", "doc", "caption"))
                title = f"{p.title} (summary)"
                p.fate = "collapsed"
                p.successor = add_new(
                    f"{place(p.section)}{slugify(title)}/",
                    title,
                    blocks,
                    [p.id],
                    "collapsed",
                    p.docs,
                )
        n_new_only = max(5, self.n // 20)
        for _ in range(n_new_only):
            topic = pr.topic()
            title = pr.title(topic)
            sec = new_sections[r.randrange(len(new_sections))]
            blocks = [Block("p", pr.paragraph(topic), "") for _ in range(r.randint(2, 5))]
            add_new(f"{sec}{slugify(title)}/", title, blocks, [], "new-only")

    # ------------------------------------------------------------------ rewritten successor

    def add_names(self) -> None:
        """Give legacy pages the names a rewrite keeps: programmes, acronyms, leads, places.

        Each article, report and most news items name a programme of their own;
        some articles also name one their category shares, so a rare name can
        point at several pages. The sentences go in as paragraphs of their own.
        """
        rw, r = self.rewriter, self.rw_rng
        shared: dict[str, list[tuple[str, str]]] = {}
        for p in self.pages:
            if p.kind not in ("article", "news", "multipart"):
                continue
            if p.kind == "news" and r.random() < 0.4:
                continue
            common = None
            if p.kind == "article" and p.sub and p.section and r.random() < 0.3:
                pool = shared.setdefault(f"{p.section.slug}/{p.sub[0]}", [])
                if len(pool) < 2:
                    pool.append(rw.programme())
                common = r.choice(pool)
            facts = rw.facts(common)
            self.facts[p.id] = facts
            sentences = rw.old_sentences(p.topic, facts)
            split = r.randint(1, len(sentences) - 1)
            blocks = p.parts[0][1] if p.parts else p.blocks
            for at, chunk in ((0, sentences[:split]), (len(blocks), sentences[split:])):
                text = " ".join(chunk)
                para = Block("p", text, f"<p>{e(text)}</p>")
                # After the first paragraph; the rest near the end, before related links.
                where = 1 if at == 0 else max(1, len(blocks) - 1)
                blocks.insert(min(where, len(blocks)), para)
        self.shared_programmes = [prog for pool in shared.values() for prog in pool]

    def old_text(self, p: Page) -> str:
        parts = [p.title, *(b.text for b in p.blocks)]
        for head, part in p.parts:
            parts.append(head)
            parts.extend(b.text for b in part)
        return "\n".join(parts)

    def plan_rewritten(self, add_new: Callable[..., str], place: Callable[[Section], str]) -> None:
        """Successors that say the same as their predecessors in other words.

        Fates of articles: a tenth keep their path (where the section kept its
        path too), a tenth their slug under a new parent, the rest that survive
        are retitled under the new section, moved to another section, merged
        two or three into one, or split in two; about a quarter are dropped.
        No successor shares a five-word run with the pages it replaces.
        """
        rw, r = self.rewriter, self.rw_rng
        new_sections = [path for path, _ in self.fl.new_sections if path != "/contact-us/"]
        # The new site's own pages (sections, campaigns) speak its voice too.
        campaigns = {path for path, _ in self.fl.campaigns}
        for np in self.new_pages:
            if np["kind"] == "section" or np["path"] in campaigns:
                topic = self.prose.topic()
                n = len(np["blocks"])  # type: ignore[arg-type]
                drafted = rw.draft(topic, rw.facts(), set(), paragraphs=n, keep=0.0, heading=False)
                np["blocks"] = [Block(t, x, "") for t, x in drafted]

        def draft(p: Page, title: str, avoid: set, keep: float, paragraphs: int) -> list[Block]:
            blocks = rw.draft(p.topic, self.facts[p.id], avoid, paragraphs=paragraphs, keep=keep)
            return [Block(t, x, "") for t, x in drop_joined_runs(title, blocks, avoid)]

        def titled(p: Page, avoid: set, kind: str = "page") -> str:
            for _ in range(20):
                title = rw.title(p.topic, self.facts[p.id], kind)
                if not shingles(title) & avoid:
                    return title
            return f"{p.topic[:1].upper()}{p.topic[1:]}"

        articles = [p for p in self.pages if p.kind == "article"]
        merge_pool: dict[str, list[Page]] = {}
        for p in articles:
            assert p.section is not None
            old = shingles(self.old_text(p))
            roll = r.random()
            if roll < 0.10 and p.section.new_section == f"/{p.section.slug}/":
                p.fate, path = "same-path", p.path + "/"
            elif roll < 0.20:
                p.fate, path = "same-slug", f"{place(p.section)}{p.path.rsplit('/', 1)[1]}/"
            elif roll < 0.50:
                p.fate, path = "retitled", ""
            elif roll < 0.58:
                p.fate, path = "moved", ""
            elif roll < 0.70:
                p.fate = "merged"
                merge_pool.setdefault(p.section.new_section, []).append(p)
                continue
            elif roll < 0.76:
                p.fate = "split"
                self._split(p, old, add_new, place, draft, titled)
                continue
            else:
                p.fate = "gone"
                continue
            title = titled(p, old)
            if not path:
                home = place(p.section)
                if p.fate == "moved":
                    away = [s for s in new_sections if not s.startswith(p.section.new_section)]
                    home = away[r.randrange(len(away))]
                path = f"{home}{slugify(title)}/"
            blocks = draft(p, title, old, 0.75, r.randint(2, 4))
            p.successor = add_new(path, title, blocks, [p.id], "successor", p.docs)
        for new_section, group in merge_pool.items():
            for i in range(0, len(group), 3):
                members = group[i : i + 3]
                if len(members) == 1:
                    members[0].fate = "gone"
                    continue
                avoid = set().union(*(shingles(self.old_text(m)) for m in members))
                title = titled(members[0], avoid, "merged")
                blocks: list[Block] = []
                for m in members:
                    f = self.facts[m.id]
                    head = r.choice((f.programme, f.acronym, f"{m.topic} in {f.town}"))
                    head = head[:1].upper() + head[1:]
                    if not shingles(head) & avoid:
                        blocks.append(Block("h2", head, ""))
                    blocks.extend(draft(m, title, avoid, 0.8, r.randint(1, 2)))
                blocks = [Block(t, x, "") for t, x in drop_joined_runs(
                    title, [(b.type, b.text) for b in blocks], avoid
                )]  # fmt: skip
                path = add_new(
                    f"{new_section}{slugify(title)}/",
                    title,
                    blocks,
                    [m.id for m in members],
                    "merged",
                    [d for m in members for d in m.docs],
                )
                for m in members:
                    m.successor = path
        for p in self.pages:
            if p.kind != "multipart" or p.id == "privacy":
                continue
            if p.sub and p.sub[0] == "engagement-reports" and r.random() < 0.7:
                assert p.section is not None
                old = shingles(self.old_text(p))
                title = titled(p, old, "report")
                blocks = draft(p, title, old, 0.8, min(6, len(p.parts)))
                p.fate = "collapsed"
                p.successor = add_new(
                    f"{place(p.section)}{slugify(title)}/",
                    title,
                    blocks,
                    [p.id],
                    "collapsed",
                    p.docs,
                )
        # Pages only the new site has: same topics, names of their own; and a
        # landing page for some of the programmes a category shared.
        pr = self.prose
        for _ in range(max(5, self.n // 10)):
            topic = pr.topic()
            f = rw.facts()
            blocks = [
                Block(t, x, "")
                for t, x in rw.draft(topic, f, set(), paragraphs=r.randint(2, 4), keep=1.0)
            ]
            title = rw.title(topic, f)
            sec = new_sections[r.randrange(len(new_sections))]
            add_new(f"{sec}{slugify(title)}/", title, blocks, [], "new-only")
        for name, acr in getattr(self, "shared_programmes", []):
            if r.random() < 0.3:
                f = rw.facts((name, acr))
                f = Facts(name, acr, f.lead, f.role, f.place, f.town)
                topic = pr.topic()
                blocks = [
                    Block(t, x, "") for t, x in rw.draft(topic, f, set(), paragraphs=2, keep=1.0)
                ]
                sec = new_sections[r.randrange(len(new_sections))]
                add_new(f"{sec}{slugify(name)}/", f"About {name}", blocks, [], "new-only")

    def _split(
        self,
        p: Page,
        old: set,
        add_new: Callable[..., str],
        place: Callable[[Section], str],
        draft: Callable[..., list[Block]],
        titled: Callable[..., str],
    ) -> None:
        """One page becomes two: the main one (its successor) and a page on where to go."""
        r = self.rw_rng
        assert p.section is not None
        home = place(p.section)
        title = titled(p, old)
        blocks = draft(p, title, old, 0.85, r.randint(2, 3))
        p.successor = add_new(
            f"{home}{slugify(title)}/", title, blocks, [p.id], "successor", p.docs
        )
        second = titled(p, old, "split")
        path = add_new(
            f"{home}{slugify(second)}/", second, draft(p, second, old, 0.5, r.randint(1, 2)), [],
            "split",
        )  # fmt: skip
        self.new_pages[-1]["continues"] = [p.id]
        assert self.new_pages[-1]["path"] == path

    def render_new(self) -> None:
        fl = self.fl
        nav = [(title, path) for path, title in fl.new_sections if path.count("/") == 2]
        for np in self.new_pages:
            blocks: list[Block] = np["blocks"]  # type: ignore[assignment]
            parts = []
            for b in blocks:
                tag = {"h2": "h2", "h3": "h3"}.get(b.type, "p")
                parts.append(f"<{tag}>{e(b.text)}</{tag}>")
            for d in np["docs"]:  # type: ignore[union-attr]
                if d.successor:
                    parts.append(f'<p><a href="{e(d.successor)}">{e(d.title)}</a></p>')
                    data = d.new_data or d.data
                    self.new_routes[d.successor] = Route(
                        d.successor,
                        200,
                        "document",
                        ctype=DOC_TYPES[d.kind],
                        blob=self.blobs.put(data),
                    )
            path = str(np["path"])
            crumbs = [("Home", "/")]
            for sp, st in fl.new_sections:
                if path.startswith(sp) and path != sp:
                    crumbs.append((st, sp))
            crumbs.append((str(np["title"]), path))
            if path == "/":
                crumbs = []
            html = new_site_page(
                fl, fl.new_site_name, str(np["title"]), "\n".join(parts), crumbs, nav
            )
            self.new_routes[path] = Route(
                path, 200, str(np["kind"]), blob=self.blobs.put(html.encode())
            )
        locs = "".join(
            f"<url><loc>{self.new_base}{e(str(np['path']))}</loc></url>" for np in self.new_pages
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{locs}</urlset>\n'
        )
        self.new_routes["/sitemap.xml"] = Route(
            "/sitemap.xml",
            200,
            "sitemap",
            ctype="application/xml",
            blob=self.blobs.put(xml.encode()),
        )
        self.new_routes["/robots.txt"] = Route(
            "/robots.txt",
            200,
            "robots",
            ctype="text/plain",
            blob=self.blobs.put(
                f"User-agent: *\nDisallow:\nSitemap: {self.new_base}/sitemap.xml\n".encode()
            ),
        )
        self.new_routes["/assets/site.css"] = Route(
            "/assets/site.css",
            200,
            "css",
            ctype="text/css",
            blob=self.blobs.put(
                b"body { font-family: system-ui, sans-serif; }\n"
                b".skip-link { position: absolute; left: -999px; }\n"
            ),
        )

    # ------------------------------------------------------------------ writing

    def resolve_successors(self) -> None:
        by_page = {p.id: p for p in self.pages}
        docs = {d.path: d for p in self.pages for d in p.docs}
        for route in self.routes.values():
            if route.kind == "document" and route.target in docs:
                route.successor = docs[route.target].successor
            elif route.page and route.kind not in ("image", "document"):
                page = by_page[route.page]
                if route.kind == "rss":
                    # A feed goes to the new site's feed; the demo profile names
                    # none, so to the new home page (never the archive).
                    route.successor = "/"
                elif page.kind in ("news-listing", "events"):
                    route.successor = None
                else:
                    route.successor = page.successor
            elif route.kind == "sitemap":
                route.successor = "/sitemap.xml"  # the new site's, as the demo profile says
        for route in self.routes.values():
            if route.status in (301, 302) and route.location:
                seen = set()
                hop = route
                while hop and hop.status in (301, 302) and hop.location and hop.target not in seen:
                    seen.add(hop.target)
                    hop = self.routes.get(hop.location[len(self.base) :])  # type: ignore[assignment]
                if hop:
                    route.successor = hop.successor
                    route.page = hop.page

    def write(self) -> dict[str, object]:
        out = self.out
        for sub in ("legacy", "new", "ground-truth"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        for _target, route in self.routes.items():
            if route.alias_of:
                src = self.routes[route.alias_of]
                route.blob, route.gz_blob, route.ctype = src.blob, src.gz_blob, src.ctype
                route.successor = src.successor
        with open(out / "legacy" / "routes.jsonl", "w", encoding="utf-8") as fh:
            for route in self.routes.values():
                fh.write(json.dumps(_route_json(route), sort_keys=True) + "\n")
        with open(out / "new" / "routes.jsonl", "w", encoding="utf-8") as fh:
            for route in self.new_routes.values():
                fh.write(json.dumps(_route_json(route), sort_keys=True) + "\n")
        articles = {str(p.jid): p.path for p in self.pages if p.jid is not None}
        (out / "legacy" / "articles.json").write_text(json.dumps(articles, sort_keys=True))
        (out / "legacy" / "calendar.json").write_text(
            json.dumps(
                {
                    "path": self.by_path[f"/{self.fl.sections[0].slug}/events"].path,
                    "shell": self.calendar_shell,
                    "events": self.events,
                },
                sort_keys=True,
            )
        )

        url_lines = 0
        with open(out / "ground-truth" / "urls.jsonl", "w", encoding="utf-8") as fh:
            for route in self.routes.values():
                fh.write(json.dumps(self.url_truth(route), sort_keys=True) + "\n")
                url_lines += 1
            for href in getattr(self, "alias_links", []):
                host_path = href.split("//", 1)[1]
                path = "/" + host_path.split("/", 1)[1]
                canon = self.routes.get(path)
                fh.write(
                    json.dumps(
                        {
                            "url": href,
                            "status": 301,
                            "kind": "redirect",
                            "page": canon.page if canon else None,
                            "capture": True,
                            "successor": (
                                f"{self.new_base}{canon.successor}"
                                if canon and canon.successor
                                else None
                            ),
                            "location": f"{self.base}{path}",
                            "sha1": None,
                            "gzip_sha1": None,
                            "part": None,
                            "content_type": "text/html",
                        },
                        sort_keys=True,
                    )
                    + "\n"
                )
                url_lines += 1
        with open(out / "ground-truth" / "pages.jsonl", "w", encoding="utf-8") as fh:
            for p in self.pages:
                fh.write(json.dumps(self.page_truth(p), sort_keys=True, ensure_ascii=False) + "\n")
        with open(out / "ground-truth" / "new-pages.jsonl", "w", encoding="utf-8") as fh:
            for np in self.new_pages:
                blocks: list[Block] = np["blocks"]  # type: ignore[assignment]
                fh.write(
                    json.dumps(
                        {
                            "url": f"{self.new_base}{np['path']}",
                            "title": np["title"],
                            "kind": np["kind"],
                            "succeeds": np["succeeds"],
                            "text": "\n".join(b.text for b in blocks),
                            # A split's second half carries on from a page
                            # whose successor is the first half.
                            **({"continues": np["continues"]} if "continues" in np else {}),
                        },
                        sort_keys=True,
                        ensure_ascii=False,
                    )
                    + "\n"
                )
        counts: dict[str, int] = {}
        for p in self.pages:
            counts[p.kind] = counts.get(p.kind, 0) + 1
        manifest = {
            "generator": "sunset.replica",
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "pages": len(self.pages),
            "requested_pages": self.n,
            "theme": self.theme,
            "flavour": self.fl.key,
            "successor": self.successor,
            "legacy_host": self.fl.legacy_host,
            "legacy_aliases": list(self.fl.legacy_aliases),
            "new_host": self.fl.new_host,
            "legacy_urls": url_lines,
            "new_urls": len(self.new_routes),
            "page_kinds": counts,
            "blobs": self.blobs.count,
            "blob_bytes": self.blobs.bytes,
            "traps": [
                {
                    "kind": "calendar",
                    "path": self.by_path[f"/{self.fl.sections[0].slug}/events"].path,
                    "param": "month",
                    "real": sorted(self.events),
                },
                {"kind": "session-id", "param": "sid"},
            ],
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return manifest

    def url_truth(self, route: Route) -> dict[str, object]:
        return {
            "url": f"{self.base}{route.target}",
            "status": route.status,
            "kind": route.kind,
            "page": route.page,
            "part": route.part,
            "capture": route.capture,
            "successor": f"{self.new_base}{route.successor}" if route.successor else None,
            # Answered by the redirect server itself (200), not redirected.
            "served": route.kind == "robots",
            "location": route.location,
            "sha1": route.blob,
            "gzip_sha1": route.gz_blob,
            "content_type": route.ctype,
        }

    def page_truth(self, p: Page) -> dict[str, object]:
        main = [{"type": "title", "text": p.title}] if p.kind not in ("events",) else []
        blocks = list(p.blocks)
        for head, part in p.parts:
            blocks.append(Block("h3", head, ""))
            blocks.extend(part)
        main.extend({"type": b.type, "text": b.text} for b in blocks)
        chrome = self.chrome(p, feedback=p.kind in ("article", "news", "multipart"), pager=p.pager)
        boiler = boilerplate_texts(self.fl, chrome, self.nav[1], [t for t, _ in self._latest])
        # Blocks inside the article wrapper go after the breadcrumbs, in page order.
        at = next(i for i, b in enumerate(boiler) if b["name"] == "navigation") + 1
        at += 1 if any(b["name"] == "breadcrumbs" for b in boiler) else 0
        if p.kind in ("article", "news", "multipart"):
            pub = date.fromisoformat(p.published)
            boiler.insert(
                at,
                {
                    "name": "article-info",
                    "text": f"Details Published: {pub.day} {calendar.MONTH_NAMES[pub.month - 1]} "
                    f"{pub.year} Hits: {p.hits}",
                },
            )
            at += 1
        if p.kind == "multipart":
            heads = [h for h, _ in p.parts]
            boiler.insert(
                at,
                {"name": "article-index", "text": " ".join(["Article Index", *heads, "All Pages"])},
            )
            boiler.insert(at + 1, {"name": "pagination", "text": f"Page 1 of {len(p.parts)} Next"})
        return {
            "id": p.id,
            "kind": p.kind,
            "title": p.title,
            "url": f"{self.base}{p.path}",
            "urls": [f"{self.base}{u}" for u in p.urls],
            "content_page": p.kind in ("article", "news", "multipart", "home", "contact"),
            "published": p.published,
            "modified": p.modified,
            "breadcrumbs": ["Home"]
            if p.kind == "home"
            else [label for label, _ in self.breadcrumbs(p)],
            "main": main,
            "main_text": "\n".join(b["text"] for b in main),
            "boilerplate": boiler,
            "template": {"popup": p.popup, "contact": p.contact, "theme": self.theme},
            "charset": p.charset,
            "attachments": [
                {
                    "url": f"{self.base}{d.path}",
                    "kind": d.kind,
                    "title": d.title,
                    "sha1": hashlib.sha1(d.data).hexdigest(),
                    "successor": f"{self.new_base}{d.successor}" if d.successor else None,
                }
                for d in p.docs
            ],
            "images": [f"{self.base}{i}" for i in p.images],
            "fate": p.fate,
            "successor": f"{self.new_base}{p.successor}" if p.successor else None,
            **({"names": self._names(p)} if p.id in self.facts else {}),
        }

    def _names(self, p: Page) -> dict[str, object]:
        f = self.facts[p.id]
        return {
            "programme": f.programme,
            "acronym": f.acronym,
            "lead": f.lead,
            "place": f.place,
            "town": f.town,
            "shared": list(f.shared) if f.shared else None,
        }

    def run(self) -> dict[str, object]:
        self.plan()
        self.fill()
        if self.successor == "rewritten":
            self.add_names()
        self.render_static()
        self.render_legacy()
        self.render_sitemap()
        self.plan_successors()
        self.resolve_successors()
        self.render_new()
        return self.write()


def _topics() -> tuple[str, ...]:
    from .text import TOPICS

    return TOPICS


def _route_json(route: Route) -> dict[str, object]:
    data: dict[str, object] = {"target": route.target, "status": route.status, "type": route.ctype}
    if route.blob:
        data["blob"] = route.blob
    if route.gz_blob:
        data["gzip"] = route.gz_blob
    if route.location:
        data["location"] = route.location
    return data


def generate(
    out: Path,
    pages: int = 400,
    seed: int = 1,
    theme: str = "protostar",
    flavour: str = "wigan",
    successor: str = "reused",
) -> dict[str, object]:
    """Build a replica under `out` (replaced if it exists) and return its manifest.

    ``successor`` is "reused" (the new site keeps most legacy wording) or
    "rewritten" (see :mod:`replica.rewrite`).
    """
    if successor not in SUCCESSORS:
        raise ValueError(
            f"unknown successor {successor!r}; expected one of {', '.join(SUCCESSORS)}"
        )
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown flavour {flavour!r}; expected one of {', '.join(FLAVOURS)}")
    out = Path(out)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    manifest = Generator(tmp, pages, seed, theme, FLAVOURS[flavour], successor).run()
    # Swap in whole: a server or test never sees a half-written replica.
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return manifest


def iter_jsonl(path: Path) -> Iterator[dict[str, object]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
