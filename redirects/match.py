"""Match legacy pages to new ones: an index of the new site and the cascade's steps.

The new site is the smaller side and is held in memory as a few dicts; the
legacy site streams past it one page at a time, so matching costs one lookup
per step per page and never compares all pairs.

Content similarity is containment, not symmetric cosine: the question is
"does some new page contain this old page's sentences?", which stays true
when three old pages were merged into one new page, or a page gained an
introduction. Texts are cut into overlapping five-word shingles and a fixed,
hash-chosen quarter of them is kept (Broder's mod-m sampling), so both sides
sample the same shingles and the index stays small.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .inventory import LegacyPage, NewPage
from .topic import TopicIndex, new_page_terms
from .urls import path_key, site_affixes, slug_of, title_key, words

SHINGLE = 5
SAMPLE_MASK = 3  # keep shingles whose hash & 3 == 0: a quarter
MIN_SHINGLES = 3  # fewer sampled shingles than this says nothing
CONTENT_MIN = 0.35  # share of the old text a new page must hold on its own
REVERSE_MIN = 0.25  # ... or the share of a new page made of the old text,
FORWARD_FLOOR = 0.12  # together with at least this much of the old text
MIN_SLUG = 4  # shorter slugs ("faq", "news") name too many unrelated pages


@dataclass(frozen=True, slots=True)
class Decision:
    target: str
    method: str
    confidence: float
    note: str = ""
    share: float = 0.0  # how much of the old text the target holds
    sampled: int = 0  # shingles the old text had (0: no text to judge by)
    # (new URL, new title, score 0..1), best first, at most 3
    candidates: tuple[tuple[str, str, float], ...] = ()


class NewIndex:
    """Everything the cascade looks up on the new site."""

    def __init__(self, pages: list[NewPage], moved: dict[str, str] | None = None) -> None:
        self.moved = moved or {}
        self.urls: list[str] = []
        self.titles: list[str] = []  # per content page, for reviewers' candidates
        self.position: dict[str, int] = {}
        self.by_path: dict[str, str] = {}
        self.by_slug: dict[str, list[int]] = {}
        self.by_title: dict[str, list[int]] = {}
        self.doc_by_digest: dict[str, str] = {}
        self.doc_by_name: dict[str, list[str]] = {}
        self.keys = array("q")
        self.owners = array("l")
        self.sampled: list[int] = []
        self.vocab: dict[str, int] = {}
        titles = [p.title for p in pages if p.title]
        self.affixes = site_affixes(titles)
        # The inverted index is two parallel arrays sorted by shingle hash,
        # searched with bisect: 16 bytes a posting instead of a dict entry's ~100.
        hashes = array("q")
        owners = array("l")
        seen: set[str] = set()
        self.topic = TopicIndex()
        for page in pages:
            if page.url in seen:
                continue
            seen.add(page.url)
            path = urlsplit(page.url).path or "/"
            if page.kind == "document":
                if page.digest:
                    self.doc_by_digest.setdefault(page.digest, page.url)
                name = file_name(path)
                if name:
                    self.doc_by_name.setdefault(name, []).append(page.url)
                continue
            idx = len(self.urls)
            self.urls.append(page.url)
            named = [
                title_key(t, self.affixes) for t in dict.fromkeys((page.title, *page.titles)) if t
            ]
            self.titles.append(page.title or next(iter(page.titles), ""))
            self.topic.add(new_page_terms(page.url, named, page.headings, page.text))
            self.position[page.url] = idx
            self.by_path.setdefault(path_key(path), page.url)
            slug = slug_of(path)
            if len(slug) >= MIN_SLUG:
                self.by_slug.setdefault(slug, []).append(idx)
            for title in {title_key(t, self.affixes) for t in (page.title, *page.titles) if t}:
                if title:
                    self.by_title.setdefault(title, []).append(idx)
            shingles = self.shingles(page.text, learn=True)
            self.sampled.append(len(shingles))
            hashes.extend(shingles)
            owners.extend([idx] * len(shingles))
        self._build_postings(hashes, owners)
        self.topic.build()

    def _build_postings(self, hashes: array[int], owners: array[int]) -> None:
        order = sorted(range(len(hashes)), key=hashes.__getitem__)
        keys = array("q", (hashes[i] for i in order))
        held = array("l", (owners[i] for i in order))
        del order, hashes, owners
        # A shingle on many new pages is the new site's own furniture (footer,
        # cookie notice): it says nothing about which page holds a text.
        cap = max(20, len(self.urls) // 100)
        out_keys, out_owners = array("q"), array("l")
        start, n = 0, len(keys)
        while start < n:
            end = bisect_right(keys, keys[start], start)
            if end - start <= cap:
                out_keys.extend(keys[start:end])
                out_owners.extend(held[start:end])
            start = end
        self.keys, self.owners = out_keys, out_owners

    def __len__(self) -> int:
        return len(self.urls)

    def title_of(self, url: str) -> str:
        idx = self.position.get(url)
        return self.titles[idx] if idx is not None else ""

    def shingles(self, text: str, learn: bool = False) -> set[int]:
        """Sampled shingle hashes of ``text``.

        Only new pages add words to the vocabulary (``learn``): a word the new
        site never uses cannot be in a shared shingle, so old pages get a
        throw-away negative id for it and the vocabulary stays the new site's size.
        """
        vocab = self.vocab
        if learn:
            ids = [vocab.setdefault(w, len(vocab)) for w in words(text)]
        else:
            unknown: dict[str, int] = {}
            ids = []
            for w in words(text):
                known = vocab.get(w)
                ids.append(known if known is not None else unknown.setdefault(w, -1 - len(unknown)))
        windows = zip(*(ids[i:] for i in range(SHINGLE)), strict=False)
        return {h for h in map(hash, windows) if not h & SAMPLE_MASK}

    def containment(self, text: str) -> tuple[list[tuple[int, int]], int]:
        """New pages sharing sampled shingles with ``text``: (page, hits), best first.

        Also returns how many shingles ``text`` had, so callers can work out
        both directions: hits / that count is how much of the old text the new
        page holds, hits / ``sampled[page]`` how much of the new page it makes up.
        """
        shingles = self.shingles(text)
        if len(shingles) < MIN_SHINGLES:
            return [], len(shingles)
        hits: Counter[int] = Counter()
        keys, owners = self.keys, self.owners
        for h in shingles:
            at = bisect_left(keys, h)
            while at < len(keys) and keys[at] == h:
                hits[owners[at]] += 1
                at += 1
        # Ties go to the smaller page: the more specific home of the text.
        ranked = sorted(hits.items(), key=lambda kv: (-kv[1], self.sampled[kv[0]], kv[0]))
        return ranked[:5], len(shingles)

    def holds(self, idx: int, hits: int, sampled: int) -> tuple[float, float]:
        """(share of the old text on new page ``idx``, share of that page from the old text)."""
        return hits / max(1, sampled), hits / max(1, self.sampled[idx])

    def final(self, url: str) -> str | None:
        """Where a new-site URL really ends, following the new site's own redirects."""
        seen = {url}
        while url in self.moved:
            url = self.moved[url]
            if url in seen:
                return None
            seen.add(url)
        return url


def file_name(path: str) -> str:
    name = unquote(path.rsplit("/", 1)[-1]).lower()
    return name if "." in name else ""


def match_page(
    page: LegacyPage, new: NewIndex, legacy_affixes: frozenset[str] = frozenset()
) -> Decision | None:
    """The first step of the cascade (after overrides) that finds a successor, or None."""
    if page.kind == "asset":
        return None
    if page.kind == "document":
        return _match_document(page, new)

    # A listing's text is its items' teasers: it would "contain" an article.
    has_text = bool(page.text) and page.kind == "content"
    ranked, sampled = new.containment(page.text) if has_text else ([], 0)
    hits = dict(ranked)
    strong = _strong(ranked, sampled, new)

    def contradicted(idx: int) -> bool:
        # The text says another page holds this one, and this candidate far less.
        return bool(strong and strong[0] != idx and hits.get(idx, 0) * 2 < strong[1])

    def share(idx: int) -> float:
        return round(hits.get(idx, 0) / max(1, sampled), 3)

    for url in (page.url, *page.urls):
        parts = urlsplit(url)
        if parts.query:
            # /index.php?option=...&id=7 is not the site's front page.
            continue
        hit = new.by_path.get(path_key(parts.path or "/"))
        if hit:
            idx = new.position.get(hit, -1)
            return Decision(hit, "exact", 1.0, "same path on the new site", share(idx), sampled)

    slug = slug_of(urlsplit(page.url).path or "/")
    candidates = new.by_slug.get(slug, []) if len(slug) >= MIN_SLUG else []
    if candidates:
        idx = max(candidates, key=lambda i: (hits.get(i, 0), -i))
        if not contradicted(idx):
            conf = 0.9 if len(candidates) == 1 else 0.7
            note = f"slug '{slug}'" + (f" (1 of {len(candidates)})" if len(candidates) > 1 else "")
            return Decision(new.urls[idx], "slug", conf, note, share(idx), sampled)

    key = title_key(page.title, new.affixes | legacy_affixes) if page.title else ""
    candidates = new.by_title.get(key, []) if len(key) >= MIN_SLUG else []
    if len(candidates) == 1 and not contradicted(candidates[0]):
        idx = candidates[0]
        note = f"same title '{page.title[:60]}'"
        return Decision(new.urls[idx], "title", 0.85, note, share(idx), sampled)

    if strong:
        idx, count = strong
        forward, reverse = new.holds(idx, count, sampled)
        runner = ranked[1][1] if len(ranked) > 1 and ranked[0][0] == idx else 0
        # Two new pages holding the same text is a reason for a human to look.
        close = runner * 3 >= count * 2
        conf = round(min(0.95, 0.45 + max(forward, reverse) / 2) - (0.25 if close else 0.0), 2)
        note = (
            f"holds {forward:.0%} of the old text, which makes up {reverse:.0%} of it"
            f" ({sampled} sampled shingles)"
        )
        if close:
            note += f"; the runner-up shares {runner} of {count} as many"
        return Decision(new.urls[idx], "content", conf, note, share(idx), sampled)
    return None


def _strong(ranked: list[tuple[int, int]], sampled: int, new: NewIndex) -> tuple[int, int] | None:
    """The best content candidate if the evidence is more than shared phrasing.

    Unrelated pages on one site share a few stock phrases (a tenth of the text,
    typically). A successor either holds much of the old text, or is largely
    made of it (an edited page that dropped some paragraphs); and it must
    clearly beat the runner-up, or the shared text is a template's.
    """
    if not ranked:
        return None
    idx, count = ranked[0]
    forward, reverse = new.holds(idx, count, sampled)
    runner = ranked[1][1] if len(ranked) > 1 else 0
    if count < MIN_SHINGLES or count < 2 * runner:
        return None
    if forward >= CONTENT_MIN or (reverse >= REVERSE_MIN and forward >= FORWARD_FLOOR):
        return idx, count
    return None


def _match_document(page: LegacyPage, new: NewIndex) -> Decision | None:
    if page.digest and page.digest in new.doc_by_digest:
        return Decision(new.doc_by_digest[page.digest], "document", 1.0, "same content digest")
    name = file_name(urlsplit(page.url).path)
    found = new.doc_by_name.get(name, []) if name else []
    if len(found) == 1:
        return Decision(found[0], "document", 0.8, f"same file name '{name}', other bytes")
    if found:
        return Decision(found[0], "document", 0.5, f"file name '{name}' on {len(found)} URLs")
    return None


def follow_listing(
    items: list[Decision | None], new: NewIndex, min_items: int = 1
) -> Decision | None:
    """Where a listing page goes: where the pages it listed went.

    A category page whose articles moved under /about-us/ goes to /about-us/;
    a news listing whose items all went to the archive goes there too (None).
    The landing page is the deepest new page holding nearly all the moved
    items, else the highest (below the home page) holding most of them: a
    listing spanned its section, and its items are often spread over the new
    section's sub-pages.
    """
    if len(items) < min_items:
        return None
    moved = [d for d in items if d is not None and d.method not in ("archive", "home")]
    if len(moved) * 3 < len(items):
        return None
    support: Counter[str] = Counter()
    for d in moved:
        parts = path_key(urlsplit(d.target).path or "/").strip("/").split("/")
        # An article's own page is not where its listing belongs, only its
        # ancestors are; a sub-listing already landed on a section page.
        top = len(parts) + 1 if d.method == "listing" else len(parts)
        for depth in range(1, top):
            prefix = "/" + "/".join(parts[:depth])
            if prefix in new.by_path:
                support[prefix] += 1
    # Nearly all items under one sub-section: that is where the listing moved.
    # Items spread over a section's sub-pages: the section's top page.
    tight = [(p.count("/"), p) for p, n in support.items() if n >= 0.8 * len(moved)]
    loose = [(p.count("/"), p) for p, n in support.items() if n >= 0.6 * len(moved)]
    if tight:
        _, prefix = max(tight)
    elif loose:
        _, prefix = min(loose)
    else:
        return None
    share = support[prefix] / len(items)
    return Decision(
        new.by_path[prefix],
        "listing",
        round(min(0.8, 0.3 + share / 2), 2),
        f"{support[prefix]} of {len(items)} listed pages moved under it",
    )
