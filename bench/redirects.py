"""Redirects benchmark: `sunset redirects` on a generated 100,000-URL migration.

No crawler is fast enough to make a 100k-URL legacy site for every run, so
this script writes one directly, shaped like a Joomla site moving to
WordPress: the files `sunset redirects` reads from a crawl folder
(`indexes/index.cdxj` as cdxj-indexer writes it, `content/pages.jsonl` as
`sunset transform` writes it, a small WARC holding the old site's own 301s,
`crawl.json`), the new site's inventory as the CSV `--new-csv` reads, and a
ground truth of where every legacy URL should end up (`truth.jsonl`, in the
replica's urls.jsonl shape). Then, per size:

- `sunset redirects LEGACY --new-csv new.csv --out DIR`, as a subprocess:
  wall time and peak RSS of its process tree (VmHWM, as bench/_common
  measures every tool);
- accuracy of redirects.csv against the truth: a URL whose page moved must
  go to exactly that new URL (top-1); a URL whose page is gone must not be
  sent to any page of the new site (the archive is right);
- a real nginx loads the generated redirects.conf (re-rendered for a
  loopback port by redirects.nginx.render_conf): `nginx -t` time, time to
  start and answer, the master's peak RSS, and a sample of legacy URLs
  requested with the legacy Host header must get the status and Location
  redirects.csv says.

First, the replica (400 pages by default) is generated with each successor
flavour, both sites are crawled for real and the legacy crawl transformed;
`sunset redirects` runs on it twice, with the cascade alone
(``topic_match = false``) and with topic matching, and redirects.evaluate
scores each through nginx against the replica's ground truth: top-1 on the
URLs with a successor, and the share of the others sent to the archive.
Issue 15's targets on the rewritten successor: 90% and 95%.

Then the synthetic runs. By default the new site is held at 20,000 rows and
the legacy site grows 25,000 → 50,000 → 100,000 URLs: the 100k × 20k run is
the timing target, and the peak RSS at each size shows the legacy side alone
(it should stay flat). With --new-rows 0 the sizes scale both sites (a new
site a fifth the size of the old one) and one extra run puts the largest
legacy site against the smallest new site, splitting the memory growth
between the two sides.

    .venv/bin/python bench/redirects.py
    .venv/bin/python bench/redirects.py --repeat 3 --keep --full-check
    .venv/bin/python bench/redirects.py --sizes 25000 --no-split
    .venv/bin/python bench/redirects.py --replica-only --replica-pages 2000

With --full-check, `sunset redirects check` (every URL in redirects.csv and
its uncrawled variants, through nginx) is timed on each size as well.

Results: a table on stdout and output/bench/redirects.json. Not part of the
test suite.

There is no competing tool to run on the same input, so the figures quoted
are against the issue's own targets: seconds for 100k legacy URLs against
the 60 s budget; flat memory; and the accuracy against the generator's truth.
"Flat" is judged where the stage is built to be flat: the new site's index is
held in memory by design (it is the smaller side, and every old page is looked
up in it), while everything per legacy URL streams through scratch tables on
disk. So the target is a peak RSS with the largest legacy site at most 1.3×
the peak with the smallest, the new site held at the smallest size; the main
series, both sites grown, must still grow by less than half as fast as the
input. Memory figures do not depend on the machine's load; wall times do, so
the load averages before and after are recorded with them.

The generated site, at every size: about 37% of the articles keep their slug
under a new parent page, 23% are retitled with most sentences kept, 10% are
merged three into one and 30% are gone (a fifth of the categories lose most
of theirs); one in twenty articles reuses most of the previous one's text, as
monthly updates do. Every article answers under its SEF URL, a print view and
an index.php query URL, some also with a trailing slash, other letter case or
the index.php/ prefix; categories page with ?start= and have an RSS feed;
documents are re-uploaded under /wp-content/uploads/ (some renamed), images
are not; 0.5% of the URLs are the old site's own 301s, some chained. The text
is made of invented words, so pages are easier to tell apart than real ones:
the accuracy here is a check that nothing breaks at scale, the replica's
ground truth is the measure of matching quality.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import html
import http.client
import io
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from random import Random
from urllib.parse import urlsplit

from _common import ROOT, Measured, ensure_migration, err, first_line, measure, out, read_json
from rich.markup import escape
from rich.table import Table

from redirects.nginx import CONF, normalise_target, read_settings, render_conf, request_target
from sunset.nginx import NginxError, check_conf, minimal_conf, quote, running_nginx

PROFILE = "demo"
SEED = 1
# Bump when the generated site changes, so a kept folder is not reused.
GENERATOR_VERSION = 2
SIZES = (25_000, 50_000, 100_000)
NEW_PER_LEGACY = 0.2  # 20,000 new-site rows for 100,000 legacy URLs
NEW_ROWS = 20_000  # the new site held at this size by default: 100k × 20k
TARGET_SECONDS = 60.0
TARGET_URLS = 100_000
# Peak RSS with the largest legacy site ÷ with the smallest, same new site.
FLAT_RATIO = 1.3
NGINX_SAMPLE = 2_000
DEFAULT_TIMEOUT = 1800.0

LEGACY = "http://www.wiganboroughccg.nhs.uk"
NEW = "http://healthierwigan.nhs.uk"
WARC_NAME = "legacy-synthetic-00000.warc.gz"

# Shares of the legacy site, by URL.
DOC_URL_SHARE = 0.08
REDIRECT_SHARE = 0.005
MIN_IMAGE_SHARE = 0.03
# Fates of articles: a dropped category loses most of them.
DROPPED_CATEGORY = 0.2
GONE_IN_DROPPED = 0.8
GONE_ELSEWHERE = 0.13
KEPT_FATES = (("moved", 40), ("retitled", 25), ("merged", 10))
DOC_REUPLOADED = 0.45
DOC_RENAMED = 0.05


# --------------------------------------------------------------------------
# Words


def _wordlist(text: str) -> list[str]:
    # Long word lists read better as text than as a column of quoted strings.
    return text.split()


_FUNCTION = _wordlist(
    "the of and to in a for is on that with are by as be this from at or will have it your"
    " we can you our not has all their more an which about if they been was were when who"
    " also any there other new these what how may should would each into than some up"
)
_TOPIC = _wordlist(
    "health care services patients practice hospital community local support people"
    " clinic appointment treatment nurse doctor pharmacy mental children families"
    " carers review consultation plan strategy board meeting minutes report annual"
    " commissioning group borough council partners wellbeing prevention screening"
    " vaccination flu winter urgent emergency waiting times referral diagnosis"
    " recovery therapy rehabilitation stroke diabetes cancer dementia maternity"
    " dental eye hearing physiotherapy continence wheelchair falls respiratory"
    " heart kidney sexual smoking weight alcohol exercise older adults young"
    " neighbourhood team integrated network primary secondary acute social"
    " funding budget contract procurement governance policy equality privacy"
    " feedback engagement survey results update changes improving access quality"
    " safety standards outcomes performance assurance risk audit finance staff"
    " volunteers events awareness campaign guide leaflet information advice"
)
_SYLLABLES = _wordlist(
    "ba be bo ca co da de di fa fe ga gi ha he ka ke la le li lo ma me mi mo na ne ni no"
    " pa pe po ra re ri ro sa se si so ta te ti to va ve vi wa we ya za ton ley wick ham"
    " ford mer ber dal ster ling win ash"
)
_PSEUDO_WORDS = 3000
_STOCK = 40  # sentences many legacy pages share (contact details, disclaimers)
_GENERIC_TITLES = (
    "Frequently asked questions",
    "Useful links",
    "Contact details",
    "Meeting papers",
    "Opening times",
    "How to find us",
    "Privacy notice",
    "Latest news",
)
_MONTHS = _wordlist(
    "january february march april may june july august september october november december"
)
_LEGACY_SECTIONS = (
    ("your-ccg", "Your CCG"),
    ("your-health", "Your health"),
    ("get-involved", "Get involved"),
    ("news-and-events", "News and events"),
    ("publications", "Publications"),
    ("here-to-help", "Here to help"),
    ("governing-body", "Governing body"),
    ("localities", "Localities"),
    ("working-with-us", "Working with us"),
    ("about-us", "About us"),
)
_NEW_SECTIONS = (
    ("about-us", "About us"),
    ("services", "Services"),
    ("your-health", "Your health"),
    ("get-involved", "Get involved"),
    ("news", "News"),
    ("publications", "Publications"),
    ("working-together", "Working together"),
    ("support", "Support"),
)

# Where each old section's categories mostly went; four keep their name.
_SECTION_MOVES = (
    ("your-ccg", "about-us"),
    ("your-health", "your-health"),
    ("get-involved", "get-involved"),
    ("news-and-events", "news"),
    ("publications", "publications"),
    ("here-to-help", "support"),
    ("governing-body", "about-us"),
    ("localities", "services"),
    ("working-with-us", "working-together"),
    ("about-us", "about-us"),
)
SERIES = 0.05  # articles written from the previous one (monthly minutes, updates)


class Words:
    """A Zipf-weighted vocabulary: function words, health words, then invented ones."""

    def __init__(self, rng: Random) -> None:
        invented: dict[str, None] = {}  # a dict keeps insertion order; a set would not
        reserved = set(_FUNCTION) | set(_TOPIC)
        while len(invented) < _PSEUDO_WORDS:
            w = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
            if w not in reserved:
                invented[w] = None
        self.invented = list(invented)
        self.all = _FUNCTION + _TOPIC + self.invented
        # Real text is Zipfian: a handful of words are most of it, which is
        # what makes unrelated pages share short phrases.
        total, cum = 0.0, []
        for rank in range(len(self.all)):
            total += 1.0 / (rank + 2) ** 0.95
            cum.append(total)
        self.cum = cum
        self.rng = rng

    def sentence(self) -> str:
        n = self.rng.randint(8, 22)
        ws = self.rng.choices(self.all, cum_weights=self.cum, k=n)
        return ws[0].capitalize() + " " + " ".join(ws[1:]) + "."

    def sentences(self, words: int) -> list[str]:
        out: list[str] = []
        count = 0
        while count < words:
            s = self.sentence()
            out.append(s)
            count += s.count(" ") + 1
        return out

    def title(self) -> str:
        rng = self.rng
        topic = rng.choice(_TOPIC)
        name = rng.choice(self.invented)
        extra = rng.choice(self.invented)
        pattern = rng.randrange(6)
        if pattern == 0:
            t = f"{name} {topic} review"
        elif pattern == 1:
            t = f"changes to {topic} in {name}"
        elif pattern == 2:
            t = f"{name} {extra} {topic} update"
        elif pattern == 3:
            t = f"a new approach to {topic} {name}"
        elif pattern == 4:
            t = f"{topic} {rng.choice(_TOPIC)} in {name} {extra}"
        else:
            t = f"{name} {topic} consultation {rng.randint(2009, 2019)}"
        return t[0].upper() + t[1:]


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def edit(words: Words, sentences: list[str], keep: float, change: float) -> list[str]:
    """An editor's copy: some sentences dropped, a word swapped in others."""
    rng = words.rng
    out: list[str] = []
    for s in sentences:
        if rng.random() >= keep:
            continue
        if rng.random() < change:
            ws = s.split(" ")
            i = rng.randrange(len(ws))
            ws[i] = rng.choice(words.invented)
            s = " ".join(ws)
        out.append(s)
    return out or sentences[:1]


# --------------------------------------------------------------------------
# The generated site


@dataclass
class NewSub:
    """A WordPress parent page under a new section; moved articles sit beneath it."""

    section: str
    slug: str
    title: str

    @property
    def url(self) -> str:
        return f"{NEW}/{self.section}/{self.slug}/"


@dataclass
class Article:
    aid: int
    title: str
    slug: str
    primary: str
    urls: list[str]
    sentences: list[str]
    fate: str = "gone"
    target: str | None = None


@dataclass
class Category:
    cid: int
    section: str
    slug: str
    title: str
    primary: str
    urls: list[str]
    feed: str
    itemid: int
    articles: list[Article] = field(default_factory=list)
    dropped: bool = False
    sub: NewSub | None = None
    target: str | None = None


@dataclass
class Document:
    urls: list[str]
    mime: str
    target: str | None = None


@dataclass
class Generated:
    """What was written, and the counts that describe it."""

    folder: Path
    legacy_urls: int
    new_rows: int
    counts: dict[str, int]
    seconds: float


class Migration:
    """The legacy site and its successor, built in memory then written out."""

    def __init__(self, legacy_urls: int, new_rows: int, seed: int) -> None:
        # A string seed is hashed with SHA-512 by random, so it is stable
        # across runs and Python versions (hash() of a str is not).
        self.rng = Random(f"sunset-bench-redirects:{seed}:{legacy_urls}:{new_rows}")
        self.words = Words(self.rng)
        self.stock = [self.words.sentence() for _ in range(_STOCK)]
        self.new_stock = [self.words.sentence() for _ in range(8)]
        self.n_legacy = legacy_urls
        self.n_new = new_rows
        self.categories: list[Category] = []
        self.documents: list[Document] = []
        self.images: list[str] = []
        self.moves: list[tuple[str, str]] = []  # the old site's own 301s: (url, location)
        self.revisits: set[str] = set()  # variants the crawler saw as duplicates
        self.subs: list[NewSub] = []
        self.merged: list[tuple[str, str, list[Article]]] = []
        self.used_new_slugs: Counter[str] = Counter()
        self.next_id = 100
        self.section_target: dict[str, str | None] = {}
        self.last_sentences: list[str] = []

    # ---- legacy side

    def _id(self) -> int:
        self.next_id += self.rng.randint(1, 4)
        return self.next_id

    def build(self) -> None:
        n = self.n_legacy
        doc_urls = int(n * DOC_URL_SHARE)
        n_moves = int(n * REDIRECT_SHARE)
        structure = 2 + 2 * len(_LEGACY_SECTIONS)
        budget = n - doc_urls - n_moves - structure - int(n * MIN_IMAGE_SHARE)
        used = 0
        while used < budget:
            cat = self._category()
            used += len(cat.urls) + 1 + sum(len(a.urls) for a in cat.articles)
        self._documents(doc_urls)
        self._fates()
        self._fit_new_site()
        self._new_urls()
        self._truths()
        self._moves(n_moves)
        taken = structure + sum(
            len(c.urls) + 1 + sum(len(a.urls) for a in c.articles) for c in self.categories
        )
        taken += sum(len(d.urls) for d in self.documents) + len(self.moves)
        self._images(n - taken)

    def _category(self) -> Category:
        rng = self.rng
        section = rng.choice(_LEGACY_SECTIONS)[0]
        slugs = {c.slug for c in self.categories if c.section == section}
        while True:
            title = self.words.title()
            slug = slugify(title)
            if slug not in slugs:
                break
        cid = self._id()
        itemid = rng.randint(101, 999)
        primary = f"{LEGACY}/{section}/{slug}"
        size = int(min(120, max(3, rng.lognormvariate(2.5, 0.7))))
        urls = [
            primary,
            f"{LEGACY}/index.php?option=com_content&view=category&id={cid}&Itemid={itemid}",
        ]
        # Joomla shows 10 items a page; each further page is its own URL.
        urls += [f"{primary}?start={k * 10}" for k in range(1, min(6, (size + 9) // 10))]
        cat = Category(
            cid=cid,
            section=section,
            slug=slug,
            title=title,
            primary=primary,
            urls=urls,
            feed=f"{primary}?format=feed&type=rss",
            itemid=itemid,
            dropped=rng.random() < DROPPED_CATEGORY,
        )
        # Whether articles carry Joomla's numeric id prefix is a site setting
        # that changed once in the site's life; categories made before differ.
        id_prefix = rng.random() < 0.5
        taken: set[str] = set()
        for _ in range(size):
            cat.articles.append(self._article(cat, id_prefix, taken))
        self.categories.append(cat)
        return cat

    def _article(self, cat: Category, id_prefix: bool, taken: set[str]) -> Article:
        rng = self.rng
        while True:
            generic = rng.random() < 0.02
            title = rng.choice(_GENERIC_TITLES) if generic else self.words.title()
            slug = slugify(title)
            if slug not in taken:
                taken.add(slug)
                break
        aid = self._id()
        segment = f"{aid}-{slug}" if id_prefix else slug
        primary = f"{cat.primary}/{segment}"
        urls = [
            primary,
            f"{primary}?tmpl=component&print=1",
            f"{LEGACY}/index.php?option=com_content&view=article&id={aid}&catid={cat.cid}"
            f"&Itemid={cat.itemid}",
        ]
        if rng.random() < 0.2:
            urls.append(primary + "/")
            self.revisits.add(primary + "/")
        if rng.random() < 0.1:
            path = urlsplit(primary).path
            upper = "/".join(p[:1].upper() + p[1:] for p in path.split("/"))
            urls.append(LEGACY + upper)
            self.revisits.add(LEGACY + upper)
        if rng.random() < 0.1:
            urls.append(f"{LEGACY}/index.php{urlsplit(primary).path}")
        sentences = self.words.sentences(rng.randint(80, 300))
        if self.last_sentences and rng.random() < SERIES:
            # Most of the text of the one before, which makes the text alone
            # a poor guide to which of the two a new page succeeds.
            sentences = [s for s in self.last_sentences if rng.random() < 0.6] + sentences[:4]
        self.last_sentences = sentences
        if rng.random() < 0.25:
            sentences.insert(rng.randrange(len(sentences) + 1), rng.choice(self.stock))
        return Article(aid, title, slug, primary, urls, sentences)

    def _documents(self, budget: int) -> None:
        rng = self.rng
        folders = ("images/documents", "images/stories/pdfs", "media/files", "images/publications")
        exts = (
            ("pdf", "application/pdf", 70),
            ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", 15),
            ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 10),
            ("doc", "application/msword", 5),
        )
        seen: set[str] = set()
        used = 0
        while used < budget:
            ext, mime, _ = rng.choices(exts, weights=[e[2] for e in exts])[0]
            if rng.random() < 0.03:
                # Minutes and agendas get the same file names in different folders.
                name = f"{rng.choice(('minutes', 'agenda', 'papers'))}-{rng.choice(_MONTHS)}-{rng.randint(2012, 2019)}"
            else:
                name = slugify(self.words.title())
            url = f"{LEGACY}/{rng.choice(folders)}/{name}.{ext}"
            if url.lower() in seen:
                continue
            seen.add(url.lower())
            urls = [url]
            if rng.random() < 0.1 and used + 2 <= budget:
                # Links typed by hand: the same file with other letter case.
                base, _, _ = url.rpartition("/")
                urls.append(f"{base}/{name.capitalize()}.{ext.upper()}")
            self.documents.append(Document(urls, mime))
            used += len(urls)

    def _fates(self) -> None:
        rng = self.rng
        names = [f for f, _ in KEPT_FATES]
        weights = [w for _, w in KEPT_FATES]
        for cat in self.categories:
            gone = GONE_IN_DROPPED if cat.dropped else GONE_ELSEWHERE
            for a in cat.articles:
                a.fate = "gone" if rng.random() < gone else rng.choices(names, weights)[0]
        for doc in self.documents:
            doc.target = "reupload" if rng.random() < DOC_REUPLOADED else None

    def _structure_rows(self) -> int:
        return 1 + len(_NEW_SECTIONS) + len(self.subs)

    def _plan_subs(self) -> None:
        """Which WordPress parent page each legacy category's articles go under."""
        rng = self.rng
        home_of = dict(_SECTION_MOVES)
        self.subs = []
        taken: dict[str, set[str]] = {}
        last: dict[str, NewSub] = {}
        for cat in self.categories:
            section = home_of[cat.section]
            if rng.random() < 0.2:
                section = rng.choice(_NEW_SECTIONS)[0]
            prev = last.get(section)
            if prev is not None and rng.random() < 0.4:
                cat.sub = prev  # two old categories became one page
                continue
            used = taken.setdefault(section, set())
            while True:
                if not cat.dropped and rng.random() < 0.5:
                    title, slug = cat.title, cat.slug
                else:
                    title = self.words.title()
                    slug = slugify(title)
                if slug not in used:
                    break
                title = self.words.title()
                slug = slugify(title)
                if slug not in used:
                    break
            used.add(slug)
            sub = NewSub(section, slug, title)
            self.subs.append(sub)
            last[section] = sub
            cat.sub = sub

    def _fit_new_site(self) -> None:
        """Exactly n_new rows: successors, uploads, structure, then new-only pages."""
        self._plan_subs()

        need = self._structure_rows() + sum(1 for d in self.documents if d.target)
        for cat in self.categories:
            merged = sum(1 for a in cat.articles if a.fate == "merged")
            need += sum(1 for a in cat.articles if a.fate in ("moved", "retitled"))
            need += (merged + 2) // 3
        kept = [a for c in self.categories for a in c.articles if a.fate in ("moved", "retitled")]
        self.rng.shuffle(kept)
        # A new site smaller than the old one's survivors: more of the old
        # pages are gone (the generator's ratios only hold approximately).
        while need > self.n_new and kept:
            kept.pop().fate = "gone"
            need -= 1

    def _new_slug(self, slug: str) -> str:
        # WordPress keeps post slugs unique by appending -2, -3, ...
        self.used_new_slugs[slug] += 1
        k = self.used_new_slugs[slug]
        return slug if k == 1 else f"{slug}-{k}"

    def _new_urls(self) -> None:
        rng = self.rng
        for sub in self.subs:
            self.used_new_slugs[sub.slug] += 1
        for cat in self.categories:
            assert cat.sub is not None
            group: list[Article] = []
            merges = [a for a in cat.articles if a.fate == "merged"]
            for a in cat.articles:
                if a.fate == "moved":
                    a.target = f"{cat.sub.url}{self._new_slug(a.slug)}/"
                elif a.fate == "retitled":
                    a.target = f"{cat.sub.url}{self._new_slug(slugify(self.words.title()))}/"
            for i in range(0, len(merges), 3):
                group = merges[i : i + 3]
                title = self.words.title()
                url = f"{cat.sub.url}{self._new_slug(slugify(title))}/"
                for a in group:
                    a.target = url
                self.merged.append((url, title, group))
        for doc in self.documents:
            if not doc.target:
                continue
            path = urlsplit(doc.urls[0]).path
            name = path.rsplit("/", 1)[1]
            stem, _, ext = name.rpartition(".")
            if rng.random() < DOC_RENAMED:
                stem += rng.choice(("-final", "-v2", "-web"))
            # The media library also de-duplicates by suffix, -1 for files.
            k = self.used_new_slugs[f"upload:{stem}.{ext}"]
            self.used_new_slugs[f"upload:{stem}.{ext}"] += 1
            if k:
                stem += f"-{k}"
            doc.target = f"{NEW}/wp-content/uploads/{rng.randint(2019, 2021)}/{rng.randint(1, 12):02d}/{stem}.{ext}"

    def _truths(self) -> None:
        """Where each listing should go, by the rule a reviewer would apply by hand.

        A category goes to the new parent page its articles were moved under,
        if that page kept the category's name or at least half the articles
        survived; otherwise it is gone. A section goes to the new section of
        the same name, else to the deepest new page holding at least 60% of its
        surviving categories. (`sunset redirects` sends a listing to the
        highest page holding its items instead; the two disagree when a whole
        category went under one parent page.)
        """
        for cat in self.categories:
            moved = sum(1 for a in cat.articles if a.target)
            sub = cat.sub
            if sub and (sub.slug == cat.slug or moved * 2 >= len(cat.articles)):
                cat.target = sub.url
            else:
                cat.target = None
        new_sections = {s for s, _ in _NEW_SECTIONS}
        for section, _ in _LEGACY_SECTIONS:
            cats = [c for c in self.categories if c.section == section]
            moved = [c for c in cats if c.target]
            target = None
            if section in new_sections:
                # The new site kept the section's name: that page is its home.
                target = f"{NEW}/{section}/"
            elif len(cats) >= 2 and moved and len(moved) * 2 >= len(cats):
                by_sub = Counter(c.target for c in moved)
                by_section = Counter(c.sub.section for c in moved if c.sub)
                sub, n = by_sub.most_common(1)[0]
                sec, m = by_section.most_common(1)[0]
                if n >= 0.6 * len(moved):
                    target = sub
                elif m >= 0.6 * len(moved):
                    target = f"{NEW}/{sec}/"
            self.section_target[section] = target

    def _moves(self, count: int) -> None:
        """The old site's own 301s: retired Joomla URL schemes pointing at articles."""
        rng = self.rng
        articles = [a for c in self.categories for a in c.articles]
        seen: set[str] = set()
        while len(self.moves) < count:
            a = rng.choice(articles)
            if rng.random() < 0.1 and self.moves:
                # Chains: a move to a URL that itself moved.
                old, _ = rng.choice(self.moves)
                url = f"{LEGACY}/old/{a.aid}-{rng.randrange(10**6)}.html"
                location = urlsplit(old).path
            else:
                url = f"{LEGACY}/component/content/article/{a.aid}-{a.slug}"
                location = urlsplit(a.primary).path if rng.random() < 0.5 else a.primary
            if url in seen:
                continue
            seen.add(url)
            self.moves.append((url, location))

    def _images(self, count: int) -> None:
        rng = self.rng
        articles = [a for c in self.categories for a in c.articles]
        seen: set[str] = set()
        while len(self.images) < count:
            a = rng.choice(articles)
            ext = rng.choice(("jpg", "jpg", "png"))
            url = f"{LEGACY}/images/articles/{a.slug}.{ext}"
            if url in seen:
                url = f"{LEGACY}/images/articles/{a.slug}-{rng.randint(2, 99)}.{ext}"
                if url in seen:
                    continue
            seen.add(url)
            self.images.append(url)

    # ---- writing

    def truth_of(self) -> dict[str, tuple[str | None, str]]:
        """Every legacy URL: where it should go (None: gone, the archive is right), and why."""
        truth: dict[str, tuple[str | None, str]] = {
            f"{LEGACY}/": (f"{NEW}/", "home"),
            f"{LEGACY}/index.php": (f"{NEW}/", "home"),
        }
        for section, _ in _LEGACY_SECTIONS:
            for url in self._section_urls(section):
                truth[url] = (self.section_target[section], "section")
        for cat in self.categories:
            for url in cat.urls:
                truth[url] = (cat.target, "category")
            truth[cat.feed] = (cat.target, "feed")
            for a in cat.articles:
                for url in a.urls:
                    truth[url] = (a.target, a.fate)
        for doc in self.documents:
            for url in doc.urls:
                truth[url] = (doc.target, "document")
        for url in self.images:
            truth[url] = (None, "image")
        moves = dict(self.moves)
        for url, location in self.moves:
            hop = location if location.startswith("http") else LEGACY + location
            for _ in range(10):
                if hop not in moves:
                    break
                hop = moves[hop] if moves[hop].startswith("http") else LEGACY + moves[hop]
            truth[url] = (truth[hop][0], "old-301")
        return truth

    def _section_urls(self, section: str) -> list[str]:
        sid = 10 + [s for s, _ in _LEGACY_SECTIONS].index(section)
        return [
            f"{LEGACY}/{section}",
            f"{LEGACY}/index.php?option=com_content&view=categories&id={sid}&Itemid={sid}",
        ]

    def write(self, folder: Path) -> dict[str, int]:
        legacy = folder / "legacy"
        (legacy / "indexes").mkdir(parents=True, exist_ok=True)
        (legacy / "content").mkdir(parents=True, exist_ok=True)
        (legacy / "warc").mkdir(parents=True, exist_ok=True)
        (legacy / "crawl.json").write_text(json.dumps({"profile": PROFILE}) + "\n")
        offsets = self._write_warc(legacy / "warc" / WARC_NAME)
        self._write_pages(legacy / "content" / "pages.jsonl")
        # What a finished `sunset transform` leaves beside its pages.jsonl:
        # redirects refuses a content folder without it.
        (legacy / "content" / "transform.json").write_text(
            json.dumps({"complete": True, "exit": "finished"}) + "\n"
        )
        self._write_cdxj(legacy / "indexes" / "index.cdxj", offsets)
        rows = self._write_new(folder / "new.csv")
        truth = self.truth_of()
        with open(folder / "truth.jsonl", "w", encoding="utf-8") as fh:
            # The replica's ground-truth/urls.jsonl names the target "successor";
            # so does this, and `python -m redirects.evaluate` reads either.
            for url in sorted(truth):
                successor, fate = truth[url]
                fh.write(json.dumps({"url": url, "successor": successor, "fate": fate}) + "\n")
        articles = [a for c in self.categories for a in c.articles]
        fates = Counter(a.fate for a in articles)
        return {
            "legacy_urls": len(truth),
            "new_rows": rows,
            "articles": len(articles),
            "article_urls": sum(len(a.urls) for a in articles),
            "categories": len(self.categories),
            "documents": len(self.documents),
            "document_urls": sum(len(d.urls) for d in self.documents),
            "images": len(self.images),
            "old_site_301s": len(self.moves),
            **{f"articles_{k}": v for k, v in sorted(fates.items())},
            "urls_with_successor": sum(1 for v, _ in truth.values() if v),
        }

    def _write_warc(self, path: Path) -> dict[str, tuple[int, int]]:
        # Only the 3xx answers need a real record: `sunset redirects` reads
        # their Location from the WARC; everything else is read from the index.
        from warcio.statusandheaders import StatusAndHeaders
        from warcio.warcwriter import WARCWriter

        offsets: dict[str, tuple[int, int]] = {}
        with open(path, "wb") as fh:
            writer = WARCWriter(fh, gzip=True)
            for url, location in self.moves:
                headers = StatusAndHeaders(
                    "301 Moved Permanently",
                    [("Location", location), ("Content-Length", "0")],
                    protocol="HTTP/1.1",
                )
                record = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(b""), http_headers=headers
                )
                start = fh.tell()
                writer.write_record(record)
                offsets[url] = (start, fh.tell() - start)
        return offsets

    def _write_pages(self, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as fh:

            def put(
                pid: str,
                kind: str,
                url: str,
                urls: list[str],
                title: str,
                text: str,
                links: list[tuple[str, str]],
            ) -> None:
                rec = {
                    "id": pid,
                    "kind": kind,
                    "url": url,
                    "legacy_urls": urls,
                    "title": title,
                    "text": text,
                    "links": [{"url": u, "text": t} for u, t in links],
                }
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")

            sections = [(s, t) for s, t in _LEGACY_SECTIONS]
            put(
                "home",
                "listing",
                f"{LEGACY}/",
                [f"{LEGACY}/", f"{LEGACY}/index.php"],
                "Home",
                "Welcome to the CCG.\n" + "\n".join(t for _, t in sections),
                [(f"{LEGACY}/{s}", t) for s, t in sections],
            )
            for section, title in sections:
                cats = [c for c in self.categories if c.section == section]
                put(
                    section,
                    "listing",
                    f"{LEGACY}/{section}",
                    self._section_urls(section),
                    title,
                    "\n".join(c.title for c in cats[:200]),
                    [(c.primary, c.title) for c in cats],
                )
            for cat in self.categories:
                teaser = []
                for a in cat.articles[:20]:
                    teaser += [a.title, a.sentences[0], f"Read more: {a.title}"]
                links = [(a.primary, a.title) for a in cat.articles]
                links += [(u, str(k + 2)) for k, u in enumerate(cat.urls[2:])]
                put(
                    f"{cat.section}-{cat.slug}",
                    "listing",
                    cat.primary,
                    cat.urls,
                    cat.title,
                    "\n".join(teaser),
                    links,
                )
                for a in cat.articles:
                    put(
                        f"{cat.section}-{cat.slug}-{a.slug}",
                        "content",
                        a.primary,
                        sorted(a.urls),
                        a.title,
                        "\n".join(a.sentences),
                        [],
                    )

    def _write_cdxj(self, path: Path, offsets: dict[str, tuple[int, int]]) -> None:
        rng = self.rng
        lines: list[str] = []

        def line(
            url: str, mime: str, status: int = 200, where: tuple[int, int] | None = None
        ) -> None:
            parts = urlsplit(url)
            host = ",".join(reversed((parts.hostname or "").removeprefix("www.").split(".")))
            surt = f"{host}){parts.path.lower() or '/'}" + (
                f"?{parts.query.lower()}" if parts.query else ""
            )
            # The legacy site was crawled on the day it was frozen.
            ts = f"20191104{rng.randint(8, 17):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
            digest = base64.b32encode(
                hashlib.sha1(url.lower().rstrip("/").encode()).digest()
            ).decode()
            offset, length = where or (rng.randint(0, 10**9), rng.randint(500, 60_000))
            rec = {
                "url": url,
                "mime": "warc/revisit" if url in self.revisits else mime,
                "status": str(status),
                "digest": f"sha1:{digest}",
                "length": str(length),
                "offset": str(offset),
                "filename": WARC_NAME,
            }
            lines.append(f"{surt} {ts} {json.dumps(rec)}")

        line(f"{LEGACY}/", "text/html")
        line(f"{LEGACY}/index.php", "text/html")
        for section, _ in _LEGACY_SECTIONS:
            for url in self._section_urls(section):
                line(url, "text/html")
        for cat in self.categories:
            for url in cat.urls:
                line(url, "text/html")
            line(cat.feed, "application/rss+xml")
            for a in cat.articles:
                for url in a.urls:
                    line(url, "text/html")
        for doc in self.documents:
            for url in doc.urls:
                line(url, doc.mime)
        for url in self.images:
            line(url, "image/png" if url.endswith(".png") else "image/jpeg")
        for url, _ in self.moves:
            line(url, "text/html", 301, offsets[url])
        lines.sort()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")

    def _write_new(self, path: Path) -> int:
        rng, words = self.rng, self.words
        rows: list[tuple[str, str, str]] = [
            (f"{NEW}/", "Healthier Wigan", " ".join(words.sentences(60)))
        ]
        for slug, title in _NEW_SECTIONS:
            rows.append((f"{NEW}/{slug}/", title, " ".join(words.sentences(rng.randint(30, 90)))))
        for sub in self.subs:
            rows.append((sub.url, sub.title, " ".join(words.sentences(rng.randint(30, 90)))))

        def body(sentences: list[str]) -> str:
            if rng.random() < 0.1:
                sentences = [*sentences, rng.choice(self.new_stock)]
            return "\n".join(sentences)

        for cat in self.categories:
            for a in cat.articles:
                if a.fate == "moved":
                    intro = words.sentences(15) if rng.random() < 0.3 else []
                    rows.append(
                        (a.target or "", a.title, body(intro + edit(words, a.sentences, 0.9, 0.1)))
                    )
                elif a.fate == "retitled":
                    intro = words.sentences(20) if rng.random() < 0.6 else []
                    kept = edit(words, a.sentences, rng.uniform(0.6, 0.9), 0.2)
                    title = (
                        a.target.rstrip("/").rsplit("/", 1)[1].replace("-", " ").capitalize()
                        if a.target
                        else ""
                    )
                    rows.append((a.target or "", title, body(intro + kept)))
        for url, title, group in self.merged:
            text: list[str] = words.sentences(20)
            for a in group:
                text += edit(words, a.sentences, 0.85, 0.1)
            rows.append((url, title, body(text)))
        for doc in self.documents:
            if doc.target:
                name = doc.target.rsplit("/", 1)[1]
                rows.append((doc.target, name.rsplit(".", 1)[0].replace("-", " ").capitalize(), ""))
        while len(rows) < self.n_new:
            title = words.title()
            if rng.random() < 0.5:
                url = f"{NEW}/news/{rng.randint(2019, 2021)}/{rng.randint(1, 12):02d}/{self._new_slug(slugify(title))}/"
            else:
                sub = rng.choice(self.subs)
                url = f"{sub.url}{self._new_slug(slugify(title))}/"
            rows.append((url, title, body(words.sentences(rng.randint(80, 300)))))
        rng.shuffle(rows)
        with open(path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(("url", "title", "text"))
            w.writerows(rows)
        return len(rows)


def generate(folder: Path, legacy_urls: int, new_rows: int, seed: int) -> Generated:
    """Write the legacy crawl folder, new.csv, truth.jsonl and profile under ``folder``."""
    started = time.monotonic()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    site = Migration(legacy_urls, new_rows, seed)
    site.build()
    counts = site.write(folder)
    seconds = round(time.monotonic() - started, 1)
    stamp = {
        "legacy_urls": legacy_urls,
        "new_rows": new_rows,
        "seed": seed,
        "version": GENERATOR_VERSION,
    }
    (folder / "generated.json").write_text(json.dumps({**stamp, "counts": counts}, indent=2) + "\n")
    return Generated(folder, counts["legacy_urls"], counts["new_rows"], counts, seconds)


def reuse_or_generate(folder: Path, legacy_urls: int, new_rows: int, seed: int) -> Generated:
    """The generated site in ``folder``: kept from an earlier --keep run if it matches."""
    try:
        made = json.loads((folder / "generated.json").read_text())
    except (OSError, ValueError):
        made = {}
    want = {"legacy_urls": legacy_urls, "new_rows": new_rows, "seed": seed}
    if (
        all(made.get(k) == v for k, v in want.items())
        and made.get("version") == GENERATOR_VERSION
        and (folder / "truth.jsonl").is_file()
    ):
        err.print(f"reusing the generated site in {folder}")
        return Generated(folder, legacy_urls, made["counts"]["new_rows"], made["counts"], 0.0)
    err.print(f"generating {legacy_urls:,} legacy URLs and {new_rows:,} new-site rows in {folder}")
    return generate(folder, legacy_urls, new_rows, seed)


# --------------------------------------------------------------------------
# Running sunset redirects


@dataclass
class Run:
    size: int
    repeat: int
    ok: bool = False
    error: str | None = None
    exit_code: int | None = None
    timed_out: bool = False
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    # As redirects.json reports them: rows written and the tool's own seconds
    # (from after start-up and imports to the last file).
    rows: int = 0
    refused: int = 0
    tool_s: float | None = None
    methods: dict[str, int] = field(default_factory=dict)


def run_sunset(gen: Generated, dest: Path, run: Run, timeout: float) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    logs = dest.parent / f"{dest.name}.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "sunset",
        "redirects",
        str(gen.folder / "legacy"),
        "--profile",
        PROFILE,
        "--new-csv",
        str(gen.folder / "new.csv"),
        "--out",
        str(dest),
    ]
    m = measure(
        cmd,
        label=f"sunset redirects {run.size:,} #{run.repeat}",
        status=lambda: f"{_files(dest):>2} files written",
        cwd=ROOT,
        env=dict(os.environ),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        timeout=timeout,
    )
    _fill(run, m)
    summary = read_json(dest / "redirects.json")
    if run.timed_out:
        run.error = f"stopped after --timeout {timeout:g} s"
    elif run.exit_code != 0:
        lines = [ln for ln in (logs / "stderr").read_text(errors="replace").splitlines() if ln]
        why = lines[-1] if lines else first_line(logs / "stdout")
        run.error = f"sunset redirects exited {run.exit_code}: {why}"
    elif not summary or not (dest / "redirects.csv").is_file():
        run.error = "sunset redirects exited 0 but wrote no redirects.json or redirects.csv"
    else:
        run.rows = int(summary.get("rows") or 0)
        run.refused = int(summary.get("refused") or 0)
        run.tool_s = summary.get("seconds")
        run.methods = dict(summary.get("methods") or {})
    run.ok = run.error is None


def _fill(run: Run, m: Measured) -> None:
    run.wall_s, run.exit_code, run.peak_rss_mb = m.wall_s, m.exit_code, m.peak_rss_mb
    run.timed_out = m.timed_out


def _files(folder: Path) -> int:
    try:
        return sum(1 for e in os.scandir(folder) if not e.name.endswith(".tmp"))
    except OSError:
        return 0


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["old"]: row for row in csv.DictReader(fh)}


# --------------------------------------------------------------------------
# Accuracy


def _same(a: str, b: str) -> bool:
    # Every new-site URL ends in "/"; equal but for that is the same page.
    return a.rstrip("/") == b.rstrip("/")


def score(truth_path: Path, rows: dict[str, dict[str, str]]) -> dict[str, object]:
    """Top-1 accuracy of redirects.csv against the generator's truth.

    A URL with a successor must go to exactly it; a URL without one must not
    be sent to any page of the new site (where it goes instead, the archive
    or a parent, is the fallback's business and counted as right).
    """
    new_host = urlsplit(NEW).hostname
    by_fate: dict[str, list[int]] = {}
    wrong: Counter[str] = Counter()
    with_s = top1 = without = kept_off = missing = 0
    misses: list[dict[str, object]] = []
    with open(truth_path, encoding="utf-8") as fh:
        for line in fh:
            t = json.loads(line)
            url, expected, fate = t["url"], t["successor"], t["fate"]
            row = rows.get(url)
            if row is None:
                missing += 1
                ok = False
            elif expected:
                ok = _same(row["new"], expected)
            else:
                ok = urlsplit(row["new"]).hostname != new_host
            if expected:
                with_s += 1
                top1 += ok
            else:
                without += 1
                kept_off += ok
            tally = by_fate.setdefault(fate, [0, 0])
            tally[0] += 1
            tally[1] += ok
            if not ok:
                why = "missing" if row is None else row["method"]
                wrong[f"{fate}: {why}"] += 1
                if len(misses) < 30:
                    misses.append(
                        {
                            "url": url,
                            "fate": fate,
                            "expected": expected,
                            "got": row and row["new"],
                            "method": row and row["method"],
                            "note": row and row["note"],
                        }
                    )
    total = with_s + without
    return {
        "urls": total,
        "accuracy": round((top1 + kept_off) / total, 4) if total else None,
        "with_successor": with_s,
        "top1": round(top1 / with_s, 4) if with_s else None,
        "without_successor": without,
        "kept_off_new_site": round(kept_off / without, 4) if without else None,
        "missing": missing,
        "by_fate": {
            f: {"urls": n, "right": round(k / n, 4)} for f, (n, k) in sorted(by_fate.items())
        },
        "wrong_by_fate_and_method": dict(wrong.most_common()),
        "misses": misses,
    }


# --------------------------------------------------------------------------
# nginx


@dataclass
class NginxLoad:
    ok: bool = False
    error: str | None = None
    map_entries: dict[str, int] = field(default_factory=dict)
    map_mb: float = 0.0
    test_ok: bool = False
    test_s: float | None = None
    start_s: float | None = None  # from starting nginx until it accepts a connection
    # The master's peak, where the config and maps are parsed; the worker is a
    # fork sharing those pages, so adding its VmHWM would count them twice.
    rss_mb: float | None = None
    test_output: str = ""
    requested: int = 0
    as_expected: int = 0
    request_s: float | None = None
    failures: list[dict[str, object]] = field(default_factory=list)


def nginx_load(
    redirects_dir: Path, rows: dict[str, dict[str, str]], sample: int, seed: int
) -> NginxLoad:
    """Serve the generated redirects.conf with a real nginx; ask it a sample of legacy URLs."""
    result = NginxLoad()
    summary = read_json(redirects_dir / "redirects.json")
    for name in ("redirects.map", "redirects-canonical.map", "redirects-paths.map"):
        path = redirects_dir / name
        if path.is_file():
            with open(path, "rb") as fh:
                result.map_entries[name] = sum(1 for ln in fh if not ln.startswith(b"#"))
            result.map_mb += path.stat().st_size / 1e6
    result.map_mb = round(result.map_mb, 1)
    work = redirects_dir.parent / f"{redirects_dir.name}.nginx"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        site, sizes, _listen, maps_dir = read_settings(redirects_dir / CONF)
    except Exception as exc:  # the writer is not ours; report whatever it raises
        result.error = f"cannot read {CONF}: {exc}"
        return result

    def write_conf(port: int) -> Path:
        # The same snippet, listening on loopback instead of port 80.
        snippet = work / CONF
        snippet.write_text(
            render_conf(site, sizes, listen=f"127.0.0.1:{port}", maps_dir=maps_dir),
            encoding="utf-8",
        )
        return minimal_conf(work, f"    include {quote(str(snippet))};")

    allowed = tuple(
        summary.get("site", {}).get("allowed_target_hosts") or site.allowed_target_hosts
    )
    try:
        conf = write_conf(80)
        t = time.monotonic()
        said = check_conf(conf, work)
        result.test_s = round(time.monotonic() - t, 3)
        result.test_output = " | ".join(said.splitlines()[-2:])
        result.test_ok = True
        t = time.monotonic()
        with running_nginx(write_conf, work) as srv:
            result.start_s = round(time.monotonic() - t, 3)
            result.rss_mb = _hwm_mb(srv.pid)
            picked = Random(f"nginx-sample:{seed}").sample(sorted(rows), min(sample, len(rows)))
            t = time.monotonic()
            _ask(srv.host, srv.port, picked, rows, allowed, result)
            result.request_s = round(time.monotonic() - t, 3)
    except NginxError as exc:
        result.error = str(exc)
    result.ok = (
        result.error is None and result.requested > 0 and result.as_expected == result.requested
    )
    if result.error is None and not result.ok:
        result.error = f"{result.requested - result.as_expected:,} of {result.requested:,} answers differ from redirects.csv"
    return result


def _hwm_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _ask(
    host: str,
    port: int,
    urls: list[str],
    rows: dict[str, dict[str, str]],
    allowed: tuple[str, ...],
    result: NginxLoad,
) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        for url in urls:
            row = rows[url]
            want_status = int(row["status"])
            want = normalise_target(row["new"], allowed)
            # The legacy host name, so nginx picks the generated server block.
            headers = {"Host": urlsplit(url).netloc}
            for attempt in (1, 2):
                try:
                    conn.request("GET", request_target(url), headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    break
                except (OSError, http.client.HTTPException):
                    # nginx closes a keep-alive connection after 1,000 requests.
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=10)
                    if attempt == 2:
                        raise
            result.requested += 1
            location = resp.getheader("Location") or ""
            if want_status == 301:
                ok = resp.status == 301 and location == want
            else:
                # A gone page's body links the archived copy.
                ok = resp.status == want_status and html.escape(want).encode() in body
            if ok:
                result.as_expected += 1
            elif len(result.failures) < 20:
                result.failures.append(
                    {"url": url, "want": [want_status, want], "got": [resp.status, location]}
                )
    finally:
        conn.close()


@dataclass
class FullCheck:
    """`sunset redirects check`: every URL in redirects.csv and its uncrawled variants."""

    ok: bool = False
    error: str | None = None
    exit_code: int | None = None
    wall_s: float = 0.0
    peak_rss_mb: float = 0.0
    requested: int | None = None
    as_expected: int | None = None
    wrong: int | None = None


def full_check(gen: Generated, dest: Path, timeout: float) -> FullCheck:
    logs = dest.parent / f"{dest.name}.check.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "sunset",
        "redirects",
        "check",
        str(gen.folder / "legacy"),
        "--out",
        str(dest),
    ]
    m = measure(
        cmd,
        label="sunset redirects check",
        status=lambda: "",
        cwd=ROOT,
        env=dict(os.environ),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        timeout=timeout,
    )
    result = FullCheck(exit_code=m.exit_code, wall_s=m.wall_s, peak_rss_mb=m.peak_rss_mb)
    said = (logs / "stdout").read_text(errors="replace")
    for attr, label in (
        ("requested", "URLs requested"),
        ("as_expected", "answered as expected"),
        ("wrong", "wrong answers"),
    ):
        # The command's summary table: a label, then a count with thousands separators.
        found = re.search(rf"^{label}\s+([\d,]+)", said, re.M)
        if found:
            setattr(result, attr, int(found.group(1).replace(",", "")))
    if m.timed_out:
        result.error = f"stopped after --timeout {timeout:g} s"
    elif result.requested is None:
        lines = [ln for ln in (logs / "stderr").read_text(errors="replace").splitlines() if ln]
        result.error = f"exited {m.exit_code}: {lines[-1] if lines else 'no summary'}"
    elif m.exit_code != 0 or result.wrong:
        result.error = f"{result.wrong:,} wrong answers of {result.requested:,}"
    result.ok = result.error is None
    return result


# --------------------------------------------------------------------------
# Report


def median_of(runs: list[Run]) -> dict[str, float] | None:
    good = [r for r in runs if r.ok]
    if not good:
        return None
    return {
        "wall_s": round(statistics.median(r.wall_s for r in good), 2),
        "peak_rss_mb": round(statistics.median(r.peak_rss_mb for r in good), 1),
    }


def memory_growth(sizes: list[dict]) -> dict[str, object]:
    """How peak RSS grows with the input.

    The main series scales both sites together; the extra run (the largest
    legacy site against the smallest new one) splits the growth between the
    two: the legacy side is meant to stream past an in-memory index of the
    new site, so only the new side should cost memory.
    """
    main = [s for s in sizes if s["median"] and not s["split"]]
    growth: dict[str, object] = {
        "ratio": None,
        "input_ratio": None,
        "mb_per_10k_urls": None,
        "mb_per_10k_legacy_urls": None,
        "mb_per_1k_new_rows": None,
        "legacy_only_ratio": None,
        "legacy_only_input_ratio": None,
    }
    if len(main) < 2:
        return growth
    first, last = main[0], main[-1]
    n0, r0 = first["legacy_urls"], first["median"]["peak_rss_mb"]
    n1, r1 = last["legacy_urls"], last["median"]["peak_rss_mb"]
    growth["ratio"] = round(r1 / r0, 2) if r0 else None
    growth["input_ratio"] = round(n1 / n0, 2)
    # The slope between the smallest and largest run: what each further
    # 10,000 legacy URLs (with their 2,000 new-site rows) cost; the
    # interpreter and imports are a fixed cost, so an average would flatter.
    growth["mb_per_10k_urls"] = round((r1 - r0) / (n1 - n0) * 10_000, 1)
    if first["new_rows"] == last["new_rows"]:
        # --new-rows: the new site held, so the series is the legacy side alone.
        growth["legacy_only_ratio"] = growth["ratio"]
        growth["legacy_only_input_ratio"] = growth["input_ratio"]
    split = next((s for s in sizes if s["median"] and s["split"]), None)
    if split:
        rs = split["median"]["peak_rss_mb"]
        if split["new_rows"] == first["new_rows"]:
            # The same new site under both: only the legacy side grew.
            growth["legacy_only_ratio"] = round(rs / r0, 2) if r0 else None
            growth["legacy_only_input_ratio"] = round(split["legacy_urls"] / n0, 2)
        growth["mb_per_10k_legacy_urls"] = round((rs - r0) / (n1 - n0) * 10_000, 1)
        growth["mb_per_1k_new_rows"] = round(
            (r1 - rs) / (last["new_rows"] - split["new_rows"]) * 1_000, 1
        )
    return growth


def targets(sizes: list[dict], growth: dict[str, object]) -> dict[str, bool | None]:
    at_target = next((s for s in sizes if s["legacy_urls"] == TARGET_URLS and not s["split"]), None)
    med = at_target["median"] if at_target else None
    ngx = at_target["nginx"] if at_target else None
    return {
        f"{TARGET_URLS:,} legacy URLs in under {TARGET_SECONDS:g} s": (
            None if not med else med["wall_s"] < TARGET_SECONDS
        ),
        f"nginx loads the {TARGET_URLS:,}-URL maps and answers as redirects.csv says": (
            None if not ngx else bool(ngx["ok"])
        ),
        # Both sites grown: memory grows by less than half as fast as the input.
        "peak RSS grows by less than half the input's growth": (
            None
            if growth["ratio"] is None
            else growth["ratio"] - 1 < (growth["input_ratio"] - 1) / 2  # type: ignore[operator]
        ),
        # Only the legacy side grown: flat.
        f"peak RSS with the largest legacy site at most {FLAT_RATIO:g}× the smallest's"
        " (same new site)": (
            None
            if growth["legacy_only_ratio"] is None
            else growth["legacy_only_ratio"] <= FLAT_RATIO  # type: ignore[operator]
        ),
    }


def print_report(report: dict) -> None:
    table = Table(
        title=f"Redirects benchmark: generated Joomla → WordPress migrations, "
        f"medians of {report['repeat']} run(s) per size",
        caption="MB per 10k URLs: peak RSS added per 10,000 legacy URLs since the size above."
        " accuracy: the right page for URLs with a successor (top-1), kept off the new site"
        " for the rest (gone right), against the generator's truth. nginx as CSV: sampled legacy"
        " URLs nginx answered as redirects.csv says.",
        title_justify="left",
        caption_justify="left",
    )
    cols = (
        "legacy\nURLs",
        "new\nrows",
        "result",
        "wall\ns",
        "peak\nRSS MB",
        "MB per\n10k URLs",
        "rows",
        "accu-\nracy",
        "top-1",
        "gone\nright",
        "nginx -t\ns",
        "nginx\nstart s",
        "nginx\nmaster\nRSS MB",
        "nginx\nas CSV",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("result", "nginx\nas CSV") else "right")
    prev: tuple[int, float] | None = None
    for s in report["sizes"]:
        med, sc, ngx, last = s["median"], s["score"], s["nginx"], s["runs"][-1]
        result = "ok" if last["ok"] else escape(last["error"] or "failed")
        # What the URLs added since the next smaller size cost: the slope, not
        # the average, since the interpreter and imports are a fixed cost.
        per10k = "-"
        if med and prev and not s["split"]:
            per10k = (
                f"{(med['peak_rss_mb'] - prev[1]) / (s['legacy_urls'] - prev[0]) * 10_000:+.1f}"
            )
        if med and not s["split"]:
            prev = (s["legacy_urls"], med["peak_rss_mb"])
        cells = [
            f"{s['legacy_urls']:,}",
            f"{s['new_rows']:,}",
            result,
            f"{med['wall_s']:.1f}" if med else "-",
            f"{med['peak_rss_mb']:.0f}" if med else "-",
            per10k,
            f"{last['rows']:,}" if last["ok"] else "-",
            _f(sc and sc["accuracy"], ".4f"),
            _f(sc and sc["top1"], ".4f"),
            _f(sc and sc["kept_off_new_site"], ".4f"),
            _f(ngx and ngx["test_s"], ".2f"),
            _f(ngx and ngx["start_s"], ".2f"),
            _f(ngx and ngx["rss_mb"], ".0f"),
        ]
        if ngx is None:
            cells.append("-")
        elif ngx["ok"]:
            cells.append(f"{ngx['as_expected']:,}/{ngx['requested']:,}")
        else:
            cells.append(escape(ngx["error"] or "failed"))
        table.add_row(*cells)
    out.print(table)
    g = report["memory_growth"]
    if g["ratio"] is not None:
        out.print(
            f"peak RSS, largest ÷ smallest size: {g['ratio']}× for {g['input_ratio']}× the URLs"
            f" ({g['mb_per_10k_urls']} MB per further 10k legacy URLs"
            + (")" if g["legacy_only_ratio"] == g["ratio"] else " and 2k new rows)")
        )
    if g["mb_per_10k_legacy_urls"] is not None:
        out.print(
            f"split by side: {g['mb_per_10k_legacy_urls']} MB per 10k legacy URLs"
            f" (new site held at the smallest size), {g['mb_per_1k_new_rows']} MB per 1k"
            " new-site rows"
        )
    if g["legacy_only_ratio"] is not None:
        out.print(
            f"peak RSS, legacy side alone: {g['legacy_only_ratio']}× for"
            f" {g['legacy_only_input_ratio']}× the legacy URLs (target at most {FLAT_RATIO:g}×)"
        )
    load = report.get("load_average") or {}
    if load:
        out.print(
            "load average (1, 5, 15 min): before "
            + ", ".join(f"{x:.2f}" for x in load["before"])
            + "; after "
            + ", ".join(f"{x:.2f}" for x in load["after"])
            + f"; {report['cpus']} CPUs"
        )
    for s in report["sizes"]:
        med = s["median"]
        if med and s["legacy_urls"] == TARGET_URLS and not s["split"]:
            out.print(
                f"{TARGET_URLS:,} URLs: {med['wall_s']:.1f} s = "
                f"{med['wall_s'] / TARGET_SECONDS:.0%} of the {TARGET_SECONDS:g} s budget"
            )
        fc = s.get("full_check")
        if fc:
            said = (
                f"{fc['as_expected']:,} of {fc['requested']:,} as expected"
                if fc["requested"] is not None
                else escape(fc["error"] or "failed")
            )
            out.print(
                f"{s['legacy_urls']:,} × {s['new_rows']:,}: sunset redirects check: {said}"
                f" in {fc['wall_s']:.1f} s, peak RSS {fc['peak_rss_mb']:.0f} MB"
            )
        for r in s["runs"]:
            if r["error"]:
                out.print(
                    f"{s['legacy_urls']:,} × {s['new_rows']:,} run {r['repeat']}:"
                    f" {escape(r['error'])}"
                )
        if s["score"] and s["score"]["wrong_by_fate_and_method"]:
            top = list(s["score"]["wrong_by_fate_and_method"].items())[:6]
            out.print(
                f"{s['legacy_urls']:,} × {s['new_rows']:,}: wrong answers by fate: method — "
                + ", ".join(f"{k} {v:,}" for k, v in top)
            )
    for name, ok in report["targets"].items():
        mark = "not measured" if ok is None else ("met" if ok else "[red]missed[/]")
        out.print(f"target {escape(name)}: {mark}")


# --------------------------------------------------------------------------
# The replica: the old cascade and the topic matcher side by side

MATCHERS = (("cascade", "the cascade alone (topic_match = false)"), ("topic", "cascade + topic"))


def replica_comparison(base: Path, pages: int, seed: int, timeout: float) -> list[dict]:
    """Both matchers on both successor flavours of the replica, scored through nginx.

    The replica is crawled for real (both sites) and transformed; each
    matcher is one `sunset redirects` run over the same crawls, and
    redirects.evaluate asks nginx for every URL in the ground truth.
    """
    from redirects.evaluate import evaluate

    results = []
    for flavour in ("rewritten", "reused"):
        folder = base / f"replica-{flavour}-{pages}-{seed}"
        paths = ensure_migration(folder, pages, seed, flavour)
        for matcher, label in MATCHERS:
            profile = ROOT / "sunset" / "profiles" / f"{PROFILE}.toml"
            if matcher == "cascade":
                profile_text = profile.read_text(encoding="utf-8") + "\ntopic_match = false\n"
                profile = folder / "cascade.toml"
                profile.write_text(profile_text, encoding="utf-8")
            dest = folder / f"redirects-{matcher}"
            shutil.rmtree(dest, ignore_errors=True)
            logs = folder / f"redirects-{matcher}.logs"
            shutil.rmtree(logs, ignore_errors=True)
            logs.mkdir(parents=True)
            cmd = [
                sys.executable, "-m", "sunset", "redirects", str(paths["crawl"]),
                "--profile", str(profile), "--new-crawl", str(paths["successor"]),
                "--out", str(dest),
            ]  # fmt: skip
            m = measure(
                cmd,
                label=f"sunset redirects, {flavour} replica, {matcher}",
                status=lambda dest=dest: f"{_files(dest):>2} files written",
                cwd=ROOT,
                env=dict(os.environ),
                stdout=logs / "stdout",
                stderr=logs / "stderr",
                timeout=timeout,
            )
            row: dict[str, object] = {
                "successor": flavour,
                "matcher": matcher,
                "label": label,
                "pages": pages,
                "seed": seed,
                "wall_s": m.wall_s,
                "exit_code": m.exit_code,
            }
            if m.exit_code == 0:
                scores = evaluate(paths["site"] / "ground-truth" / "urls.jsonl", dest)
                row.update({k: v for k, v in scores.items() if k != "misses"})
                row["methods"] = read_json(dest / "redirects.json").get("methods")
            results.append(row)
    return results


def print_replica(rows: list[dict]) -> None:
    table = Table(
        title="The replica, crawled: old cascade and topic matcher side by side (through nginx)",
        caption="top-1: legacy URLs with a successor that reach it; archived: URLs without one"
        " sent to the web archive. Targets on the rewritten successor: top-1 ≥ 90%, archived"
        " ≥ 95%.",
        title_justify="left",
        caption_justify="left",
    )
    for col in ("successor", "matcher", "URLs with\nsuccessor", "top-1", "without", "archived",
                "wall s"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("successor", "matcher") else "right")
    for r in rows:
        table.add_row(
            f"{r['successor']} ({r['pages']} pages, seed {r['seed']})",
            str(r["label"]),
            _f(r.get("with_successor"), ","),
            _f(r.get("top1"), ".1%"),
            _f(r.get("without_successor"), ","),
            _f(r.get("archived_share"), ".1%"),
            f"{r['wall_s']:.1f}",
        )
    out.print(table)


def _f(x: object, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark sunset redirects on generated 25k-100k URL migrations."
    )
    ap.add_argument(
        "--sizes",
        default=",".join(str(s) for s in SIZES),
        help="legacy URL counts, comma-separated; the new site gets a fifth as many rows"
        f" (default {','.join(str(s) for s in SIZES)})",
    )
    ap.add_argument("--repeat", type=int, default=1, help="runs per size; medians are reported")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument(
        "--sample",
        type=int,
        default=NGINX_SAMPLE,
        help=f"legacy URLs requested from nginx per size (default {NGINX_SAMPLE:,})",
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep (and later reuse) the generated sites"
    )
    ap.add_argument(
        "--full-check",
        action="store_true",
        help="also time `sunset redirects check` on every size (all URLs and variants)",
    )
    ap.add_argument(
        "--no-split",
        action="store_true",
        help="skip the extra run of the largest legacy site against the smallest new one",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per run before it is stopped (default {DEFAULT_TIMEOUT:g})",
    )
    ap.add_argument(
        "--new-rows",
        type=int,
        default=NEW_ROWS,
        help=f"hold the new site at this many rows for every size (default {NEW_ROWS:,}:"
        " 25k, 50k and 100k legacy URLs against it show the legacy side alone); 0 scales it"
        " with the legacy site (a fifth) and adds the split run",
    )
    ap.add_argument(
        "--replica-pages",
        type=int,
        default=400,
        help="pages of the replica crawled to compare the cascade and the topic matcher"
        " (default 400; 0 skips it)",
    )
    ap.add_argument("--replica-seed", type=int, default=SEED)
    ap.add_argument(
        "--replica-only", action="store_true", help="only the replica comparison, no synthetic run"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "output" / "bench",
        help="folder for the generated sites and redirects.json (default output/bench)",
    )
    args = ap.parse_args(argv)
    try:
        sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        ap.error("--sizes takes comma-separated integers")
    if not sizes or min(sizes) < 2_000:
        ap.error("each size must be at least 2,000 legacy URLs")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    started = time.time()
    # Other work on the machine slows the wall times (not the memory figures).
    load_before = os.getloadavg()
    base: Path = args.out.resolve()
    base.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    replica: list[dict] = []
    if args.replica_pages:
        replica = replica_comparison(base, args.replica_pages, args.replica_seed, args.timeout)
        print_replica(replica)
    if args.new_rows:
        plan = [(size, args.new_rows, False) for size in sizes]
    else:
        plan = [(size, round(size * NEW_PER_LEGACY), False) for size in sizes]
        if len(sizes) > 1 and not args.no_split:
            plan.append((sizes[-1], round(sizes[0] * NEW_PER_LEGACY), True))
    if args.replica_only:
        plan = []
    for size, new_rows, split in plan:
        folder = base / (f"redirects-{size}-{new_rows}" if split else f"redirects-{size}")
        gen = reuse_or_generate(folder, size, new_rows, args.seed)
        runs: list[Run] = []
        for k in range(args.repeat):
            run = Run(size, k + 1)
            run_sunset(gen, folder / "redirects", run, args.timeout)
            if run.error:
                err.print(f"  [red]{escape(run.error)}[/]")
            runs.append(run)
        score_: dict[str, object] | None = None
        ngx: NginxLoad | None = None
        checked: FullCheck | None = None
        if runs[-1].ok:
            # Matching is deterministic: the last run's files stand for all.
            rows = read_rows(folder / "redirects" / "redirects.csv")
            score_ = score(folder / "truth.jsonl", rows)
            err.print(f"  nginx: loading the maps and asking {min(args.sample, len(rows)):,} URLs")
            ngx = nginx_load(folder / "redirects", rows, args.sample, args.seed)
            del rows
            if args.full_check:
                checked = full_check(gen, folder / "redirects", args.timeout)
        results.append(
            {
                "legacy_urls": size,
                "new_rows": new_rows,
                # The extra run: only the legacy side grown (see memory_growth).
                "split": split,
                "folder": str(folder),
                "generated": gen.counts,
                "generate_s": gen.seconds,
                "runs": [asdict(r) for r in runs],
                "median": median_of(runs),
                "score": score_,
                "nginx": asdict(ngx) if ngx else None,
                "full_check": asdict(checked) if checked else None,
            }
        )
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    growth = memory_growth(results)
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "profile": PROFILE,
        "seed": args.seed,
        "repeat": args.repeat,
        "generator_version": GENERATOR_VERSION,
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "target_seconds": TARGET_SECONDS,
        "flat_ratio": FLAT_RATIO,
        "replica": replica,
        "sizes": results,
        "memory_growth": growth,
        "targets": targets(results, growth),
    }
    (base / "redirects.json").write_text(json.dumps(report, indent=2) + "\n")
    if replica:
        print_replica(replica)
    if results:
        print_report(report)
    err.print(f"written {base / 'redirects.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
