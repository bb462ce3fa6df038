"""The review loop: what reviewers pick from, what they hand back, what a rerun remembers.

- Every legacy page carries up to three candidate new pages (URL, title,
  score), so a reviewer who disagrees with a row picks from them instead of
  searching the new site.
- An overrides file (an edited redirects.csv, or any ``old,new`` CSV) holds
  decisions only where a row changes the answer (:meth:`Overrides.decide`):
  a whole CSV fed back keeps every unchanged row's method and confidence, and
  a changed row of any URL of a page moves the whole page.
- Any bad row (a target on a host nginx may not send visitors to, something
  that is not a URL, an old URL that is not the legacy site's, a loop) stops
  the run with one line naming ``file:line``, before anything is written.
- The decisions are kept in the output folder (``reviews.csv``) and applied on
  every later run until ``--clear-reviews``; the inputs of the last run
  (``inputs.json``) are reused when the command line does not name new ones.

Overrides live in scratch tables, not dicts: a reviewed redirects.csv can list
every legacy URL.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from sunset.errors import SunsetError
from sunset.paths import replacing

from .csvio import iter_override_rows
from .inventory import LegacyPage, NewPage, valid_url
from .match import FORWARD_FLOOR, MIN_SLUG, Decision, NewIndex, file_name
from .model import METHODS
from .store import create, storable
from .urls import absolute, host_of, path_key, request_target, slug_of, title_key

if TYPE_CHECKING:
    from .run import Plan, RedirectOptions

Candidate = tuple[str, str, float]
MAX_CANDIDATES = 3
# A new page holding less of the old text than this shares stock phrases only
# (the cascade's own floor for "some of the old text").
CONTENT_FLOOR = FORWARD_FLOOR
# Names shared by more new pages than this say little about any one of them.
_NAMESAKES = 10

INPUTS = "inputs.json"
REVIEWS = "reviews.csv"
REVIEW_COLUMNS = ("old", "new", "method", "note")
_INVENTORY = ("new_crawl", "new_sitemap", "new_csv")
_FLAGS = {
    "new_crawl": "--new-crawl",
    "new_sitemap": "--new-sitemap",
    "new_csv": "--new-csv",
    "install_dir": "--install-dir",
    "profile": "--profile",
}


# -- candidates ---------------------------------------------------------------


def new_titles(pages: Iterable[NewPage]) -> dict[str, str]:
    """Title of each new page and file, to show beside its URL."""
    return {p.url: storable(p.title or (p.titles[0] if p.titles else "")) for p in pages}


def target_first(d: Decision, titles: Mapping[str, str]) -> tuple[Candidate, ...]:
    """``d``'s ranked candidates with its own target first when that is a new page.

    The topic step ranks by topic alone; a page the cascade placed by its path
    or text must still show the reviewer the page it goes to first.
    """
    ranked = [c for c in d.candidates if c[0] != d.target]
    if d.target in titles:
        score = max([d.confidence, *(c[2] for c in d.candidates if c[0] == d.target)])
        ranked.insert(0, (d.target, titles[d.target], round(score, 3)))
    return tuple(ranked[:MAX_CANDIDATES])


def find_candidates(
    page: LegacyPage,
    new: NewIndex,
    titles: Mapping[str, str],
    decision: Decision | None,
    legacy_affixes: frozenset[str] = frozenset(),
) -> tuple[Candidate, ...]:
    """The best new pages for ``page``: what the matcher's steps saw, best first.

    The matcher's own list wins when it has one. Otherwise the evidence the
    cascade already looks up is scored as the cascade scores it: the same
    path 1.0, a slug 0.9 (0.7 when several pages share it), a title 0.85
    (0.6), a document 1.0 by digest and 0.8 / 0.5 by name, text by the share
    of the old text the new page holds (from 0.12 on). A name the text contradicts (the text decided for another page) counts
    half. The proposed target scores at least its row's confidence, so a
    matched page lists its target first.
    """
    if decision is not None and decision.candidates:
        return decision.candidates[:MAX_CANDIDATES]
    if page.kind == "asset":
        return ()
    scores: dict[str, float] = {}
    by_text = decision is not None and decision.method == "content"

    def offer(url: str, score: float, name: bool = False) -> None:
        if name and by_text and decision is not None and url != decision.target:
            score /= 2
        if score > scores.get(url, -1.0):
            scores[url] = score

    if page.kind == "document":
        if page.digest and page.digest in new.doc_by_digest:
            offer(new.doc_by_digest[page.digest], 1.0)
        name = file_name(urlsplit(page.url).path)
        found = new.doc_by_name.get(name, []) if name else []
        for url in found[:_NAMESAKES]:
            offer(url, 0.8 if len(found) == 1 else 0.5)
    else:
        for url in (page.url, *page.urls):
            parts = urlsplit(url)
            hit = None if parts.query else new.by_path.get(path_key(parts.path or "/"))
            if hit:
                offer(hit, 1.0)
        slug = slug_of(urlsplit(page.url).path or "/")
        same = new.by_slug.get(slug, []) if len(slug) >= MIN_SLUG else []
        for idx in same[:_NAMESAKES]:
            offer(new.urls[idx], 0.9 if len(same) == 1 else 0.7, name=True)
        key = title_key(page.title, new.affixes | legacy_affixes) if page.title else ""
        same = new.by_title.get(key, []) if len(key) >= MIN_SLUG else []
        for idx in same[:_NAMESAKES]:
            offer(new.urls[idx], 0.85 if len(same) == 1 else 0.6, name=True)
        if page.kind == "content" and page.text:
            ranked, sampled = new.containment(page.text)
            for idx, hits in ranked:
                # Not the share of the new page: a short page full of the
                # site's stock sentences would outrank the page that holds the text.
                forward, _ = new.holds(idx, hits, sampled)
                if forward >= CONTENT_FLOOR:
                    offer(new.urls[idx], min(1.0, forward))
    if decision is not None and (decision.target in new.position or decision.target in titles):
        offer(decision.target, decision.confidence)
    best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CANDIDATES]
    return tuple((url, titles.get(url, ""), round(score, 3)) for url, score in best)


def dump_candidates(candidates: tuple[Candidate, ...]) -> str | None:
    """One text cell for the scratch tables (None: no candidates)."""
    if not candidates:
        return None
    return json.dumps([[storable(u), storable(t), s] for u, t, s in candidates])


def load_candidates(cell: str | None) -> tuple[Candidate, ...]:
    if not cell:
        return ()
    return tuple((str(u), str(t), float(s)) for u, t, s in json.loads(cell))


# -- overrides ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Override:
    target: str  # absolute, as the reviewer wrote it (resolved against the new home page)
    written: str  # exactly as written in the file
    at: tuple[int, int]  # (which file, line), for errors
    origin: str  # "file:line" where the decision was first made, for the row's note
    pinned: bool  # a decision even if the matcher proposes the same target


# A row that names the matcher's own proposal: no override, and not the page's either.
PROPOSAL = Override("", "", (-1, -1), "", False)


class Problems:
    """Bad override rows, reported as one line naming the first (in file order)."""

    def __init__(self, sources: list[str]) -> None:
        self.sources = sources
        self.found: dict[tuple[int, int], str] = {}

    def add(self, at: tuple[int, int], message: str) -> None:
        self.found.setdefault(at, message)

    def check(self) -> None:
        if not self.found:
            return
        (src, line), message = min(self.found.items())
        more = len(self.found) - 1
        tail = f" (and {more} more bad override row{'s' if more > 1 else ''})" if more else ""
        raise SunsetError(f"{self.sources[src]}: line {line}: {message}{tail}")


_SCHEMA = """
CREATE TABLE override_url(
    url TEXT NOT NULL, src INTEGER NOT NULL, target TEXT NOT NULL, written TEXT NOT NULL,
    line INTEGER NOT NULL, origin TEXT NOT NULL, claimed TEXT NOT NULL, pinned INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (url, src)) WITHOUT ROWID;
CREATE TABLE override_path(
    path TEXT PRIMARY KEY, target TEXT NOT NULL, written TEXT NOT NULL, seq INTEGER NOT NULL,
    src INTEGER NOT NULL, line INTEGER NOT NULL, origin TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID
"""
# Within one file the last row naming a URL wins.
_UPSERT_URL = (
    "INSERT OR REPLACE INTO override_url"
    "(url, src, target, written, line, origin, claimed, pinned) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The first line naming a path keeps its place, the last its target.
_UPSERT_PATH = (
    "INSERT INTO override_path(path, target, written, seq, src, line, origin)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
    " target = excluded.target, written = excluded.written, src = excluded.src,"
    " line = excluded.line, origin = excluded.origin"
)
_URL_ROWS = (
    "SELECT target, written, src, line, origin, pinned, claimed FROM override_url"
    " WHERE url = ? ORDER BY src DESC"
)


class Overrides:
    """The reviewers' decisions: stored reviews, then the overrides file over them.

    The reviews stored by earlier runs always count; a row of the overrides
    file counts where it changes an answer (see :meth:`decide`).
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        home: str,
        legacy_base: str,
        legacy_hosts: tuple[str, ...],
    ) -> None:
        self.db = db
        self.home = home
        self.legacy_base = legacy_base
        self.legacy_hosts = legacy_hosts
        self.sources: list[str] = []
        self.problems = Problems(self.sources)
        self.count = 0
        self.stored_src = -1  # which source is the stored reviews.csv
        self._seq = 0
        create(db, _SCHEMA)

    def load(self, path: Path, stored: bool = False) -> int:
        """Read one file of decisions (later files win); how many rows it gave."""
        from .nginx import host_matches

        src = len(self.sources)
        if stored:
            self.stored_src = src
        label = str(path)
        self.sources.append(label)
        given = 0
        for row in iter_override_rows(Path(path)):
            where = f"{label}:{row.line}"
            at = (src, row.line)
            try:
                target = urljoin(self.home, row.new)
            except ValueError:
                self.problems.add(at, f"new {row.new[:100]!r} is not a valid URL")
                continue
            if not valid_url(target):
                self.problems.add(
                    at,
                    f"new {row.new[:100]!r} is not an absolute http(s) URL or a path on the"
                    " new site",
                )
                continue
            old = row.old
            if not old.startswith("/"):
                try:
                    old = absolute(self.legacy_base, old)
                    host = host_of(old)
                except ValueError:
                    self.problems.add(at, f"old {row.old[:100]!r} is not a valid URL")
                    continue
                if not host_matches(host, self.legacy_hosts):
                    self.problems.add(
                        at,
                        f"old {row.old[:100]!r} is not a legacy URL (legacy hosts:"
                        f" {', '.join(self.legacy_hosts)})",
                    )
                    continue
            origin = (row.note or where) if stored else where
            pinned = stored or row.method == "override"
            if old.startswith("/"):
                self.db.execute(
                    _UPSERT_PATH, (old, target, row.new, self._seq, src, row.line, origin)
                )
            else:
                claimed = row.method if row.method in METHODS else ""
                self.db.execute(
                    _UPSERT_URL, (old, src, target, row.new, row.line, origin, claimed, pinned)
                )
            self._seq += 1
            given += 1
        self.count += given
        return given

    def _path_row(self, url: str) -> Override | None:
        try:
            path = request_target(url)
        except ValueError:
            return None
        found = self.db.execute(
            "SELECT target, written, src, line, origin FROM override_path WHERE path = ?",
            (path,),
        ).fetchone()
        if found is None:
            return None
        self.db.execute("UPDATE override_path SET used = 1 WHERE path = ?", (path,))
        target, written, src, line, origin = found
        return Override(target, written, (src, line), origin, True)

    def peek(self, url: str) -> Override | None:
        """The newest row for ``url`` (or its path), without asking the matcher.

        For following a chain through another legacy URL: a row that agrees
        with the matcher names the matcher's own target anyway.
        """
        if not self.count:
            return None
        found = self.db.execute(_URL_ROWS, (url,)).fetchone()
        if found is None:
            return self._path_row(url)
        target, written, src, line, origin, pinned, _ = found
        return Override(target, written, (src, line), origin, bool(pinned))

    def decide(
        self,
        url: str,
        agrees: Callable[[Override], bool],
        same: Callable[[str, str], bool],
        inherited: Override | None = None,
    ) -> Override | None:
        """The reviewed decision for ``url``.

        ``agrees(o)``: does row ``o`` name what the matcher proposes for ``url``?
        ``same(a, b)``: do targets ``a`` and ``b`` end at the same place?
        ``inherited``: its page's decision, which a variant URL follows.

        Returns a row of a file; ``inherited``; :data:`PROPOSAL` when a row says the
        matcher's answer is right; or None. A row of the newest file counts only
        where it changes the answer the URL would get without it: a row that
        repeats the matcher's proposal is an unchanged row of a whole
        redirects.csv (its method column names a matcher step), or else says
        "the proposal is right" and undoes older reviews; a row that repeats an
        older review, or its page's, is that review. Stored reviews always count.
        """
        if not self.count:
            return inherited
        rows = self.db.execute(_URL_ROWS, (url,)).fetchall()
        if not rows:
            return self._path_row(url) or inherited
        chosen: tuple[Any, ...] | None = None
        stored = self.stored_src
        for n, row in enumerate(rows):
            target, written, src, line, origin, pinned, claimed = row
            if src == stored:
                chosen = row
                break
            o = Override(target, written, (src, line), origin, bool(pinned))
            if agrees(o):
                if claimed:
                    continue
                return PROPOSAL
            older = rows[n + 1][0] if n + 1 < len(rows) else None
            before = older if older is not None else (inherited.target if inherited else None)
            if before is not None and same(target, before):
                continue
            chosen = row
            break
        if chosen is None:
            return inherited
        target, written, src, line, origin, pinned, _ = chosen
        self.db.execute("UPDATE override_url SET used = 1 WHERE url = ? AND src = ?", (url, src))
        return Override(target, written, (src, line), origin, bool(pinned))

    def index_pages(self, url_group: str) -> None:
        """Note which pages have rows, from ``url_group(url, grp, seq)``: few do."""
        if not self.count:
            return
        self.db.execute(
            "CREATE TEMP TABLE reviewed_url AS SELECT grp, seq, url FROM"
            f" {url_group} WHERE url IN (SELECT url FROM override_url)"
        )
        self.db.execute("CREATE INDEX reviewed_url_grp ON reviewed_url(grp, seq)")

    def reviewed_urls(self, grp: int) -> list[str]:
        """URLs of page ``grp`` that have rows, in the page's order (:meth:`index_pages`)."""
        if not self.count:
            return []
        return [
            url
            for (url,) in self.db.execute(
                "SELECT url FROM reviewed_url WHERE grp = ? ORDER BY seq", (grp,)
            )
        ]

    def unseen(self, known_urls_sql: str) -> Iterator[tuple[str, Override, str]]:
        """(URL, decision, method column) for old URLs no captured URL answers.

        Reviewers add these for links printed on leaflets that nothing on the
        site pointed to.
        """
        if not self.count:
            return
        self.db.execute(
            "CREATE TEMP TABLE extra_override(url TEXT PRIMARY KEY, claimed TEXT NOT NULL)"
            " WITHOUT ROWID"
        )
        # The newest file's row of each URL says what its method column claims.
        self.db.execute(
            "INSERT OR REPLACE INTO extra_override SELECT url, claimed FROM override_url"
            " ORDER BY src"
        )
        for (path,) in self.db.execute("SELECT path FROM override_path ORDER BY seq").fetchall():
            self.db.execute(
                "INSERT OR IGNORE INTO extra_override VALUES (?, '')",
                (absolute(self.legacy_base, path),),
            )
        rows = self.db.execute(
            "SELECT url, claimed FROM extra_override"
            f" WHERE url NOT IN ({known_urls_sql}) ORDER BY url"
        ).fetchall()
        for url, claimed in rows:
            o = self.peek(url)
            if o is not None:
                yield url, o, claimed

    def save(self, path: Path) -> int:
        """Write the decisions in force to ``path`` (replaced whole); how many."""
        count = 0
        rows = self.db.execute(
            "SELECT url, target, origin FROM override_url WHERE used = 1"
            " UNION ALL SELECT path, target, origin FROM override_path WHERE used = 1"
            " ORDER BY 1"
        )
        with replacing(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(REVIEW_COLUMNS)
            for old, target, origin in rows:
                writer.writerow((old, target, "override", origin))
                count += 1
        return count


# -- what a rerun remembers ---------------------------------------------------


def _absolute(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    if text.lower().startswith(("http://", "https://")):
        return text
    return str(Path(text).resolve())


def recorded_inputs(
    new_crawl: Path | None,
    new_sitemap: str | Path | None,
    new_csv: Path | None,
    install_dir: Path | None,
    profile: str | None,
) -> dict[str, str | None]:
    """What ``inputs.json`` keeps of one run: absolute, so a rerun from elsewhere finds it."""
    chosen = str(profile) if profile else None
    if chosen and Path(chosen).is_file():
        chosen = str(Path(chosen).resolve())
    return {
        "new_crawl": _absolute(new_crawl),
        "new_sitemap": _absolute(new_sitemap),
        "new_csv": _absolute(new_csv),
        "install_dir": str(install_dir) if install_dir else None,
        "profile": chosen,
    }


def save_state(opts: RedirectOptions, plan: Plan) -> int:
    """Record a finished run in its output folder: the reviews in force and the inputs.

    Returns how many reviews are in force.
    """
    reviews = plan.overrides.save(plan.out / REVIEWS) if plan.overrides else 0
    record: dict[str, str | None] = recorded_inputs(
        opts.new_crawl, opts.new_sitemap, opts.new_csv, opts.install_dir, opts.profile_ref
    )
    # Which file the reviews last came from: for the message of a rerun only,
    # its decisions are in reviews.csv.
    record["overrides"] = _absolute(opts.overrides)
    with replacing(plan.out / INPUTS, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(record, indent=2) + "\n")
    return reviews


@dataclass
class Recalled:
    values: dict[str, Any]  # the inputs this run uses
    reused: list[str]  # "--new-crawl /x", for the message
    reviews: int  # stored reviews that will be applied (0 with --clear-reviews)
    cleared: int  # stored reviews --clear-reviews drops
    last_overrides: str | None


def _read_inputs(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SunsetError(
            f"{path}: unreadable ({exc}); delete it or pass --forget-inputs"
        ) from None
    if not isinstance(record, dict):
        raise SunsetError(f"{path}: not an inputs record; delete it or pass --forget-inputs")
    return {k: v for k, v in record.items() if isinstance(v, str)}


def count_reviews(out: Path) -> int:
    path = out / REVIEWS
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8", newline="") as fh:
        return max(0, sum(1 for _ in csv.reader(fh)) - 1)


def recall(out: Path, given: Mapping[str, Any], forget: bool, clear_reviews: bool) -> Recalled:
    """The inputs of this run: the command line's, else the last run's (``inputs.json``).

    Inventories go together: naming any of --new-crawl, --new-sitemap or
    --new-csv replaces all three recorded ones, as it replaces the profile's.
    """
    values = dict(given)
    reused: list[str] = []
    last = {} if forget else _read_inputs(out / INPUTS)
    if not any(values.get(k) for k in _INVENTORY):
        for key in _INVENTORY:
            if last.get(key):
                values[key] = last[key]
                reused.append(f"{_FLAGS[key]} {last[key]}")
    for key in ("install_dir", "profile"):
        if not values.get(key) and last.get(key):
            values[key] = last[key]
            reused.append(f"{_FLAGS[key]} {last[key]}")
    stored = count_reviews(out)
    return Recalled(
        values=values,
        reused=reused,
        reviews=0 if clear_reviews else stored,
        cleared=stored if clear_reviews else 0,
        last_overrides=last.get("overrides"),
    )
