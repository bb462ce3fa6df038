"""Topic matching: where a rewritten page went, judged by what it is about.

A successor site rewrites: pages are merged, split, retitled, moved to other
sections and redrafted, so the right new page may share no five-word run
with the old one, and the cascade's containment step finds nothing. What
survives a rewrite is the topic: rare terms and names (a programme, its
acronym, a clinical lead, a place), words of the title and of the URL. A
person matching by hand looks for exactly those, and so does this step.

It is ranked retrieval. The new site's content pages are indexed with BM25
(``bm25s``: Okapi BM25 with Lucene's IDF over a sparse term-by-page matrix)
from their title, headings and URL words, weighted above their body text.
Each legacy page becomes a query of its rarest terms: a term counts for
more the fewer new pages use it (BM25's IDF) *and* the fewer old pages do
(an IDF over the legacy site), so the old site's own vocabulary ("governing
body", the town names) does not decide anything. Many old pages may land
on one new page: merges are allowed.

The winner is then weighed against a section prior: where the confident
matches of the same old section went (an old section usually moves as a
block). The prior re-ranks close candidates and is one input of the
calibrated confidence, a logistic model of "the top candidate is the right
page" fitted on the replica's rewritten-successor ground truth
(``bench/calibrate_topic.py``). Below :data:`THRESHOLD` the page keeps the
archive as its answer, and its note names the closest candidate.

Memory: the new site's index (a few arrays the size of its postings) is
held in RAM; each legacy page's terms wait in a scratch table on disk
between the pass that reads the legacy site and this one, and the only
per-term state grown from the legacy side is a count array the size of the
new site's vocabulary.
"""

from __future__ import annotations

import math
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from .store import Buffer, create, scan
from .urls import path_key, slug_of, title_key, words

if TYPE_CHECKING:
    from .inventory import LegacyPage
    from .match import Decision, NewIndex

# BM25's parameters, bm25s's defaults (Lucene's).
K1 = 1.5
B = 0.75
# A field counts as its words repeated: a title word is worth three body words.
TITLE_WEIGHT = 3
HEADING_WEIGHT = 2
URL_WEIGHT = 2
K3 = 1.5  # saturation of a term's count in the query, as BM25's k3
QUERY_TERMS = 32  # a page's rarest terms make its query; common ones add nothing
POOL = 8  # candidates kept per page for the section prior to re-rank
CANDIDATES = 3  # shown to reviewers
# How much the section prior re-ranks candidates (score × (1 + boost × prior)).
# Calibration found no boost best: the prior only enters the confidence.
PRIOR_BOOST = 0.0
PRIOR_MIN = 3  # confident matches an old section needs before its prior is used
LISTING_SHARE = 0.6  # of an old section's matches in one new section: its listings go there
# A clear winner (twice the runner-up's score) teaches the prior even when
# the cascade had nothing.
CLEAR_RATIO = 2.0
CASCADE_CONFIDENT = ("exact", "slug", "title", "content")
CLAIM_SHARE = 0.3  # of an old page's text on a new page: that page holds it (run.CLAIM_SHARE)
TEXT_TERMS = 30  # index terms an old page needs for its text to be compared
RARE_DF = 1  # a term this few old pages use names something of theirs
NAMED_SHARE = 0.2  # of a match's score from such terms: the match names the page

# The calibrated confidence: P(top candidate is the right page) =
# sigmoid(bias + Σ weight × feature), fitted by bench/calibrate_topic.py on the
# ground truth of replicas of both successor flavours (seed 21, 400 and 2,000
# pages: not the replicas the tests and benchmark score). Features: the share
# of what the query could score, the lead over the runner-up (weighed apart
# for matches that name the page and those that do not), the section prior,
# the log score, how specific the matched terms are, whether terms only this
# old page uses carry a fifth of the score ("rare"), and the site-wide share
# of old pages whose text the new site kept ("kept").
CALIBRATION = {
    "bias": -10.589,
    "share": 4.883,
    "lead": 9.085,
    "lead_unnamed": 8.419,
    "prior": 2.991,
    "log_score": 1.15,
    "specific": -2.959,
    "rare": 2.794,
    "kept": -7.123,
}
THRESHOLD = 0.5  # below: the archive stays the answer
# A cascade match that rests on a name alone (a slug or title, none of the old
# text on the target) stands unless the topic gives its target less than
# this: then it was a namesake.
KEEP_WEAK = 0.1
NAME_ONLY_SHARE = 0.1

_STOP_WORDS = """a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up us very was we were what when where which
    while who whom why will with would you your yours www http https html htm php index"""
_STOP = frozenset(_STOP_WORDS.split())


def _term(w: str) -> str:
    """The index term for a lower-case word ("" for a word that is not indexed)."""
    if len(w) < 2 or w in _STOP or (w.isdigit() and len(w) < 3):
        return ""
    if len(w) > 3 and w[-1] == "s" and w[-2] != "s":
        return w[:-1]
    return w


# Words seen before and their terms: a site repeats a few thousand words
# millions of times. Bounded, so a legacy site of invented words cannot grow it.
_TERM_OF: dict[str, str] = {}
_TERM_CACHE = 200_000


def terms(text: str) -> list[str]:
    """Index terms: lower-case words without stop words, plurals folded ("SDFs" → "sdf")."""
    known = _TERM_OF
    out: list[str] = []
    for w in words(text):
        t = known.get(w)
        if t is None:
            t = _term(w)
            if len(known) < _TERM_CACHE:
                known[w] = t
        if t:
            out.append(t)
    return out


def url_terms(url: str) -> list[str]:
    """Words of a URL's path: its slug and the sections above it."""
    path = path_key(urlsplit(url).path or "/")
    return terms(path.replace("/", " ").replace("-", " ").replace("_", " "))


def new_page_terms(
    url: str, titles: Iterable[str], headings: Iterable[str], text: str
) -> list[str]:
    """What a new page is indexed by: each field's terms, repeated by the field's weight."""
    out: list[str] = []
    for title in titles:
        out += terms(title) * TITLE_WEIGHT
    for heading in headings:
        out += terms(heading) * HEADING_WEIGHT
    out += url_terms(url) * URL_WEIGHT
    out += terms(text)
    return out


class TopicIndex:
    """BM25 over the new site's content pages, in memory (the new site is the small side).

    Pages are added one at a time as arrays of term ids (4 bytes a term);
    :meth:`build` hands them to bm25s and keeps only its score matrix.
    """

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._pending: list[array[int]] = []
        self.docs = 0
        self.data = np.zeros(0, dtype=np.float32)
        self.indices = np.zeros(0, dtype=np.int32)
        self.indptr = np.zeros(1, dtype=np.int64)
        self.idf = np.zeros(0, dtype=np.float32)
        self.top = np.zeros(0, dtype=np.float32)

    def add(self, doc_terms: list[str]) -> None:
        vocab = self.vocab
        self._pending.append(array("i", [vocab.setdefault(t, len(vocab)) for t in doc_terms]))

    def build(self) -> TopicIndex:
        docs, self._pending = self._pending, []
        self.docs = len(docs)
        if not self.vocab:
            return self
        import bm25s  # 0.1 s to import, with numpy: only when there is a site to index

        model = bm25s.BM25(k1=K1, b=B, method="lucene")
        model.index((docs, dict(self.vocab)), create_empty_token=False, show_progress=False)
        del docs
        # Only the term-by-page score matrix (CSC: a column per term) is kept.
        scores = model.scores
        self.data = np.asarray(scores["data"], dtype=np.float32)
        self.indices = np.asarray(scores["indices"], dtype=np.int32)
        self.indptr = np.asarray(scores["indptr"], dtype=np.int64)
        del model, scores
        df = np.diff(self.indptr).astype(np.float32)
        self.idf = np.log1p((self.docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        # The best any page scores on each term: what a query could reach at most.
        self.top = np.maximum.reduceat(self.data, self.indptr[:-1]).astype(np.float32)
        return self

    def __len__(self) -> int:
        return len(self.vocab)

    def gather(self, ids: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, ...]:
        """The query's postings in one piece: (page, weighted score, query term row) each."""
        starts, ends = self.indptr[ids], self.indptr[ids + 1]
        pages = np.concatenate([self.indices[a:b] for a, b in zip(starts, ends, strict=True)])
        lengths = ends - starts
        rows = np.repeat(np.arange(len(ids)), lengths)
        values = np.concatenate([self.data[a:b] for a, b in zip(starts, ends, strict=True)])
        return pages, values * weights[rows], rows

    def scores(self, gathered: tuple[np.ndarray, ...]) -> np.ndarray:
        """Weighted BM25 score of every new page for a gathered query."""
        pages, values, _ = gathered
        return np.bincount(pages, weights=values, minlength=self.docs)

    def breakdown(
        self, gathered: tuple[np.ndarray, ...], terms: int, docs: np.ndarray
    ) -> np.ndarray:
        """Each query term's part of each of ``docs``' scores: an array of terms × docs."""
        pages, values, rows = gathered
        out = np.zeros((terms, len(docs)), dtype=np.float64)
        order = np.argsort(docs)
        hit = np.isin(pages, docs)
        column = order[np.searchsorted(docs[order], pages[hit])]
        # A term's postings name each page once: no two values land on one cell.
        out[rows[hit], column] = values[hit]
        return out


def calibrated(
    share: float,
    lead: float,
    prior: float,
    score: float,
    specific: float,
    rare: float,
    kept: float = 0.0,
) -> float:
    c = CALIBRATION
    # A match "names" the page when terms hardly any old page uses (an
    # acronym, a programme, a person) carry a fair part of its score.
    named = rare >= NAMED_SHARE * score
    z = (
        c["bias"]
        + c["share"] * share
        + (c["lead"] if named else c["lead_unnamed"]) * lead
        + c["prior"] * prior
        + c["log_score"] * math.log1p(score)
        + c["specific"] * specific
        + c["rare"] * named
        + c["kept"] * kept
    )
    # The logistic, written so that neither side overflows: a new site known
    # only from a sitemap (titles, no text) gives features far out of range.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(max(z, -700.0))
    return e / (1.0 + e)


def old_keys(url: str) -> tuple[str, str]:
    """An old page's section and category: the first one and two segments of its path."""
    parts = path_key(urlsplit(url).path or "/").strip("/").split("/")
    top = parts[0] if len(parts) > 1 else ""
    cat = "/".join(parts[:2]) if len(parts) > 2 else top
    return top, cat


def new_section(url: str) -> str:
    """A new page's section: the first segment of its path ("" for top-level pages)."""
    parts = path_key(urlsplit(url).path or "/").strip("/").split("/")
    return parts[0] if len(parts) > 1 else ""


@dataclass(slots=True)
class Features:
    idx: int
    score: float
    share: float  # of the best score the query could reach
    lead: float  # over the best other candidate, after the prior, as a share of this one
    prior: float  # share of the old section's confident matches in this candidate's section
    specific: float  # how few old pages share the terms it matched on (1: only this one)
    rare: float  # the part of its score from terms at most RARE_DF old pages use
    confidence: float


_SCHEMA = """
CREATE TABLE topic_bag(
    id INTEGER PRIMARY KEY, ids BLOB NOT NULL, weights BLOB NOT NULL,
    old_top TEXT NOT NULL, old_cat TEXT NOT NULL, has_text INTEGER NOT NULL);
CREATE TABLE topic_rank(
    id INTEGER PRIMARY KEY, reach REAL NOT NULL, idx BLOB NOT NULL, score BLOB NOT NULL,
    specific BLOB NOT NULL, rare BLOB NOT NULL);
CREATE TABLE topic_left(id INTEGER PRIMARY KEY, candidates TEXT NOT NULL);
CREATE TABLE topic_feature(
    id INTEGER PRIMARY KEY, url TEXT NOT NULL, score REAL NOT NULL, share REAL NOT NULL,
    lead REAL NOT NULL, prior REAL NOT NULL, specific REAL NOT NULL, rare REAL NOT NULL,
    kept REAL NOT NULL, confidence REAL NOT NULL,
    cascade INTEGER NOT NULL)
"""


class TopicPass:
    """The topic step over a run's scratch database.

    :meth:`add` takes each legacy page during the pass that reads the legacy
    site; :meth:`decide` runs once all are in and the cascade has decided
    what it could.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        new: NewIndex,
        legacy_affixes: frozenset[str],
        enabled: bool = True,
        ruled: Iterable[str] = (),
    ) -> None:
        self.enabled = enabled
        # Old prefixes the profile's section rules send somewhere: a reviewer
        # said where that section goes, and a topic guess does not overrule it.
        self.ruled = tuple(path_key(prefix).rstrip("/") for prefix in ruled)
        self.db = db
        self.new = new
        self.index: TopicIndex = new.topic
        self.affixes = new.affixes | legacy_affixes
        create(db, _SCHEMA)
        self.bags = Buffer(db, "INSERT INTO topic_bag VALUES (?, ?, ?, ?, ?, ?)")
        # How many legacy pages use each of the new site's terms: the legacy
        # side's IDF, in an array the size of the new site's vocabulary.
        self.df = np.zeros(len(self.index), dtype=np.int32)
        self.pages = 0
        sections = [new_section(u) for u in new.urls]
        self.section_names = sorted(set(sections))
        number = {s: i for i, s in enumerate(self.section_names)}
        self.section_of = np.array([number[s] for s in sections], dtype=np.int32)

    # ---------------------------------------------------------------- pass 1

    def add(self, gno: int, page: LegacyPage) -> None:
        """Keep ``page``'s query terms (those the new site uses) for :meth:`decide`."""
        if not self.enabled or page.kind != "content" or not len(self.index):
            return
        counts: Counter[str] = Counter()
        if page.title:
            for t in terms(title_key(page.title, self.affixes)):
                counts[t] += TITLE_WEIGHT
        for t in terms(slug_of(urlsplit(page.url).path or "/").replace("-", " ")):
            counts[t] += URL_WEIGHT
        body = terms(page.text)
        counts.update(body)
        vocab = self.index.vocab
        known = [(vocab[t], n) for t, n in counts.items() if t in vocab]
        if not known:
            return
        ids = np.fromiter((i for i, _ in known), dtype=np.int32, count=len(known))
        tf = np.fromiter((n for _, n in known), dtype=np.float32, count=len(known))
        weights = ((K3 + 1) * tf / (K3 + tf)).astype(np.float32)
        self.df[ids] += 1
        self.pages += 1
        top, cat = old_keys(page.url)
        key = path_key(urlsplit(page.url).path or "/")
        if any(key == r or key.startswith(r + "/") for r in self.ruled):
            return
        has_text = len(body) >= TEXT_TERMS
        self.bags.add((gno, ids.tobytes(), weights.tobytes(), top, cat, has_text))

    # ---------------------------------------------------------------- pass 2

    def _query(
        self, ids_blob: bytes, weights_blob: bytes, idf_old: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.frombuffer(ids_blob, dtype=np.int32)
        weights = np.frombuffer(weights_blob, dtype=np.float32) * idf_old[ids]
        if len(ids) > QUERY_TERMS:
            # The terms rare on both sites; BM25's IDF already weighs the new side.
            keep = np.argpartition(-(weights * self.index.idf[ids]), QUERY_TERMS)[:QUERY_TERMS]
            ids, weights = ids[keep], weights[keep]
        return ids, weights

    def _rank(self) -> None:
        idf_old = np.log1p((self.pages - self.df + 0.5) / (self.df + 0.5)).astype(np.float32)
        self.idf_old = idf_old
        index = self.index
        out = Buffer(self.db, "INSERT INTO topic_rank VALUES (?, ?, ?, ?, ?, ?)")
        # A new page holding another old page's text is that page's successor:
        # an old page with text of its own, none of it there, is not its
        # predecessor too (it is a namesake on the same topic).
        claimed = np.array(
            sorted(
                {
                    at
                    for (target,) in self.db.execute(
                        "SELECT DISTINCT target FROM grp WHERE share >= ?", (CLAIM_SHARE,)
                    )
                    if (at := self.new.position.get(target)) is not None
                }
            ),
            dtype=np.int64,
        )
        for gno, ids_blob, weights_blob, has_text in scan(
            self.db, "topic_bag", "ids, weights, has_text"
        ):
            ids, weights = self._query(ids_blob, weights_blob, idf_old)
            gathered = index.gather(ids, weights)
            scores = index.scores(gathered)
            if has_text and len(claimed):
                scores[claimed] = 0
            pool = min(POOL, len(scores))
            best = (
                np.argpartition(-scores, pool - 1)[:pool] if pool < len(scores) else np.arange(pool)
            )
            best = best[np.argsort(-scores[best], kind="stable")]
            best = best[scores[best] > 0]
            if not len(best):
                continue
            reach = float((weights * index.top[ids]).sum())
            # A match on terms few old pages use (a programme, its acronym, a
            # name) singles this page out; one on terms many share does not.
            parts = index.breakdown(gathered, len(ids), best)
            df = self.df[ids][:, None]
            specific = (parts / df).sum(axis=0) / parts.sum(axis=0)
            rare = (parts * (df <= RARE_DF)).sum(axis=0)
            out.add(
                (
                    gno,
                    reach,
                    best.astype(np.int32).tobytes(),
                    scores[best].astype(np.float32).tobytes(),
                    specific.astype(np.float32).tobytes(),
                    rare.astype(np.float32).tobytes(),
                )
            )
        out.flush()

    def _learn_prior(self) -> dict[str, dict[int, float]]:
        """Per old section and category: the share of its confident matches in each new section."""
        counts: dict[str, Counter[int]] = {}
        number = {s: i for i, s in enumerate(self.section_names)}

        def count(top: str, cat: str, section: int) -> None:
            for key in {f"s:{top}", f"c:{cat}"}:
                counts.setdefault(key, Counter())[section] += 1

        confident = ", ".join(f"'{m}'" for m in CASCADE_CONFIDENT)
        for _gno, target, method, share, sampled, top, cat in self.db.execute(
            "SELECT g.id, g.target, g.method, g.share, g.sampled, b.old_top, b.old_cat"
            " FROM grp AS g JOIN topic_bag AS b"
            f" ON b.id = g.id WHERE g.method IN ({confident}) AND g.confidence >= 0.7"
        ):
            if _weak_values(method, share, sampled):
                continue
            section = number.get(new_section(target))
            if section is not None:
                count(top, cat, section)
        for _gno, idx_blob, score_blob, top, cat in self.db.execute(
            "SELECT r.id, r.idx, r.score, b.old_top, b.old_cat FROM topic_rank AS r"
            " JOIN topic_bag AS b ON b.id = r.id JOIN grp AS g ON g.id = r.id"
            " WHERE g.target IS NULL"
        ):
            scores = np.frombuffer(score_blob, dtype=np.float32)
            if len(scores) > 1 and scores[0] < CLEAR_RATIO * scores[1]:
                continue
            count(top, cat, int(self.section_of[np.frombuffer(idx_blob, dtype=np.int32)[0]]))
        prior: dict[str, dict[int, float]] = {}
        for key, c in counts.items():
            total = sum(c.values())
            if total >= PRIOR_MIN:
                prior[key] = {s: n / total for s, n in c.items()}
        self.prior_counts = counts
        return prior

    def _kept_wording(self) -> float:
        """The share of old pages with text whose text the new site still holds.

        A site-wide hint: where the successor kept most of its wording, an old
        page whose text is nowhere on the new site was most likely dropped, and
        a page on the same topic is a namesake more often than its successor.
        """
        with_text, held = self.db.execute(
            "SELECT count(*), sum(g.share >= ?) FROM topic_bag AS b JOIN grp AS g ON g.id = b.id"
            " WHERE b.has_text",
            (CLAIM_SHARE,),
        ).fetchone()
        return (held or 0) / with_text if with_text else 0.0

    def listings(self) -> Iterator[tuple[int, Decision]]:
        """Listings their items could not place, sent where their old section went.

        ``follow_listing`` places a listing under the new page that holds
        most of the pages it listed; when its moved items are spread too
        thin for that, the section prior still knows where most of the old
        section's confident matches went, and that section's landing page is
        the listing's answer. A listing whose items mostly went to the
        archive goes there too (it is left alone).
        """
        from .match import Decision

        prior = getattr(self, "prior_counts", None)
        if not prior:
            return
        for gno, url in scan(self.db, "grp", "url", "kind = 'listing' AND target IS NULL"):
            parts = path_key(urlsplit(url).path or "/").strip("/").split("/")
            if not parts[0]:
                continue
            moved, total = self.db.execute(
                "SELECT count(g.target), count(*) FROM (SELECT DISTINCT item FROM listing_link"
                " WHERE grp = ? AND item IS NOT NULL AND item != ?) AS l"
                " JOIN grp AS g ON g.id = l.item WHERE g.kind != 'asset'",
                (gno, gno),
            ).fetchone()
            if not total or moved * 3 < total:
                continue
            for key in (f"c:{'/'.join(parts[:2])}", f"s:{parts[0]}"):
                counts = prior.get(key)
                if not counts or sum(counts.values()) < PRIOR_MIN:
                    continue
                section, n = counts.most_common(1)[0]
                support = sum(counts.values())
                landing = self.new.by_path.get(path_key("/" + self.section_names[section]))
                if n < LISTING_SHARE * support or not landing:
                    break
                yield (
                    gno,
                    Decision(
                        landing,
                        "listing",
                        round(min(0.7, 0.2 + n / support / 2), 2),
                        f"section prior: {n} of {support} confident matches from"
                        f" /{key[2:]}/ went under /{self.section_names[section]}/",
                    ),
                )
                break

    def _features(
        self,
        idx: np.ndarray,
        scores: np.ndarray,
        specific: np.ndarray,
        rare: np.ndarray,
        reach: float,
        prior: dict[int, float],
    ) -> list[Features]:
        boosted = [
            float(s) * (1 + PRIOR_BOOST * prior.get(int(self.section_of[i]), 0.0))
            for i, s in zip(idx, scores, strict=True)
        ]
        order = sorted(range(len(idx)), key=lambda k: (-boosted[k], int(idx[k])))
        out: list[Features] = []
        for k in order:
            others = max((b for j, b in enumerate(boosted) if j != k), default=0.0)
            lead = (boosted[k] - others) / boosted[k] if boosted[k] > 0 else 0.0
            share = min(1.0, float(scores[k]) / reach) if reach > 0 else 0.0
            p = prior.get(int(self.section_of[idx[k]]), 0.0)
            spec, few = float(specific[k]), float(rare[k])
            conf = calibrated(share, lead, p, float(scores[k]), spec, few, self.kept)
            out.append(Features(int(idx[k]), float(scores[k]), share, lead, p, spec, few, conf))
        return out

    def decide(self) -> Iterator[tuple[int, Decision]]:
        """Decisions for the pages the topic step places, and candidates for every ranked page.

        Pages the cascade decided keep their decision, now with candidates,
        unless it rests on a name alone (a slug or title, none of the old
        text on the target) and the topic says the target is about something else:
        then the topic's best page takes over, or the archive. Undecided pages
        above the threshold get a ``topic`` decision; the rest stay undecided
        (the archive), with a note naming the closest page.
        """
        self.bags.flush()
        if not self.pages:
            return
        self._rank()
        self.prior_of = self._learn_prior()
        self.kept = self._kept_wording()
        self.left = Buffer(self.db, "INSERT INTO topic_left VALUES (?, ?)")
        self.aside = Buffer(self.db, "UPDATE grp SET aside = ? WHERE id = ?")
        self.undo = Buffer(
            self.db,
            "UPDATE grp SET aside = ?, target = NULL, method = NULL, confidence = NULL,"
            " note = NULL, share = NULL, sampled = NULL WHERE id = ?",
        )
        # What each top candidate was judged by: for calibration and for reading misses.
        self.features = Buffer(
            self.db, "INSERT INTO topic_feature VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        last = 0
        while True:
            # A batch is read whole before anything is yielded: the caller
            # updates grp, and SQLite must not be stepping through it then.
            batch = self.db.execute(
                "SELECT r.id, r.reach, r.idx, r.score, r.specific, r.rare, b.ids, b.weights,"
                " b.old_top,"
                " b.old_cat,"
                " g.target, g.method, g.confidence, g.note, g.share, g.sampled, g.aside"
                " FROM topic_rank AS r JOIN topic_bag AS b ON b.id = r.id"
                " JOIN grp AS g ON g.id = r.id WHERE r.id > ? ORDER BY r.id LIMIT 500",
                (last,),
            ).fetchall()
            if not batch:
                break
            last = batch[-1][0]
            for row in batch:
                decision = self._judge(*row)
                if decision is not None:
                    yield row[0], decision
        for buffer in (self.aside, self.undo, self.left, self.features):
            buffer.flush()

    def _judge(
        self,
        gno: int,
        reach: float,
        idx_blob: bytes,
        score_blob: bytes,
        specific_blob: bytes,
        rare_blob: bytes,
        ids_blob: bytes,
        weights_blob: bytes,
        top: str,
        cat: str,
        target: str | None,
        method: str | None,
        confidence: float | None,
        note: str | None,
        share: float | None,
        sampled: int | None,
        set_aside: str | None,
    ) -> Decision | None:
        """One ranked page's decision (None: it stays undecided, for the archive)."""
        from .match import Decision

        new = self.new
        prior = self.prior_of.get(f"c:{cat}") or self.prior_of.get(f"s:{top}") or {}
        ranked = self._features(
            np.frombuffer(idx_blob, dtype=np.int32),
            np.frombuffer(score_blob, dtype=np.float32),
            np.frombuffer(specific_blob, dtype=np.float32),
            np.frombuffer(rare_blob, dtype=np.float32),
            reach,
            prior,
        )
        best = ranked[0]

        def record(stands: bool) -> None:
            # ``stands``: the cascade's decision was kept, the topic step decided nothing.
            self.features.add(
                (gno, new.urls[best.idx], best.score, best.share, best.lead, best.prior,
                 best.specific, best.rare, self.kept, best.confidence, stands)
            )  # fmt: skip

        if target is not None:
            d = Decision(target, str(method), float(confidence or 0), note or "", share or 0.0,
                         sampled or 0)  # fmt: skip
            if not _weak(d):
                record(True)
                return replace(d, candidates=self._candidates(ranked, first=d))
            at = new.position.get(target)
            mine = next((f for f in ranked if f.idx == at), None)
            if at is None or (mine is not None and mine.confidence >= KEEP_WEAK):
                record(True)
                return replace(d, candidates=self._candidates(ranked, first=d))
            # A namesake: the slug (or title) is the same, the topic is not.
            held = (
                f"topic confidence {mine.confidence:.2f}"
                if mine
                else "not among its topic candidates"
            )
            set_aside = f"{method} match {target} set aside: {held}"
        record(False)
        ids, weights = self._query(ids_blob, weights_blob, self.idf_old)
        if best.confidence >= THRESHOLD:
            why = self._terms(ids, weights, best.idx)
            note = (
                f"topic: {why}; {best.share:.0%} of the query's reach,"
                f" {best.lead:.0%} ahead of the next"
                + (f", section prior {best.prior:.0%}" if best.prior else "")
                + (f"; {set_aside}" if target is not None else "")
            )
            d = Decision(new.urls[best.idx], "topic", round(best.confidence, 2), note)
            return replace(d, candidates=self._candidates(ranked))
        close = (
            f"closest new page {new.urls[best.idx]} ({self._terms(ids, weights, best.idx)})"
            f" at confidence {best.confidence:.2f}, below {THRESHOLD:.2f}"
        )
        text = (f"{set_aside}; " if set_aside else "") + close
        (self.undo if target is not None else self.aside).add((text, gno))
        self.left.add((gno, _encode(self._candidates(ranked))))
        return None

    def _terms(self, ids: np.ndarray, weights: np.ndarray, doc: int, n: int = 4) -> str:
        names = self._names()
        gathered = self.index.gather(ids, weights)
        parts = self.index.breakdown(gathered, len(ids), np.array([doc]))[:, 0]
        found = [(int(ids[k]), float(parts[k])) for k in np.argsort(-parts)[:n] if parts[k] > 0]
        return (
            "terms " + ", ".join(f"'{names[t]}'" for t, _ in found) if found else "no shared terms"
        )

    def _names(self) -> list[str]:
        names = getattr(self, "_term_names", None)
        if names is None:
            names = [""] * len(self.index.vocab)
            for term, i in self.index.vocab.items():
                names[i] = term
            self._term_names = names
        return names

    def _candidates(
        self, ranked: list[Features], first: Decision | None = None
    ) -> tuple[tuple[str, str, float], ...]:
        new = self.new
        out: list[tuple[str, str, float]] = []
        if first is not None:
            out.append((first.target, new.title_of(first.target), round(first.confidence, 3)))
        for f in ranked:
            url = new.urls[f.idx]
            if len(out) >= CANDIDATES:
                break
            if all(url != c[0] for c in out):
                out.append((url, new.titles[f.idx], round(f.confidence, 3)))
        return tuple(out)

    def candidates(self, gno: int) -> tuple[tuple[str, str, float], ...]:
        """The candidates of a page the topic step left undecided (for its archive row)."""
        found = self.db.execute("SELECT candidates FROM topic_left WHERE id = ?", (gno,)).fetchone()
        return _decode(found[0]) if found else ()


def _weak(d: Decision) -> bool:
    """A cascade decision that rests on a name, not on the old text being there."""
    return _weak_values(d.method, d.share, d.sampled)


def _weak_values(method: str, share: float, sampled: int) -> bool:
    # Shared text, even a little, is stronger evidence than shared topic: a
    # content match always stands.
    return method in ("slug", "title") and sampled >= 10 and share < NAME_ONLY_SHARE


def _encode(candidates: tuple[tuple[str, str, float], ...]) -> str:
    import json

    return json.dumps(candidates, ensure_ascii=False)


def _decode(text: str) -> tuple[tuple[str, str, float], ...]:
    import json

    return tuple((str(u), str(t), float(s)) for u, t, s in json.loads(text))
