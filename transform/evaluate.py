"""How close extracted content is to the replica's ground truth.

The yardstick beside the extractor, in the spirit of trafilatura's evaluation:
token-level precision, recall and F1 of each page's text against the main
content the replica generated, plus the failures a migration cares about more
than a score: pages missing, paragraphs lost, template text left in, listing
pages mistaken for content.

    python -m transform.evaluate --truth SITE/ground-truth/pages.jsonl \\
        --pages CRAWL/content/pages.jsonl

Reads ground truth as replica/generate.py writes it (``page_truth``) and pages
as transform/CONTRACT.md describes them; only ``legacy_urls`` (plus ``url``),
``text`` and ``kind`` of a page are used, so any extractor's output can be
scored by wrapping it in such dicts.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sunset.transformed import unfinished

# The ground-truth blocks that are the body of a page; titles, captions,
# document links and "related" lists are scored by F1 but are too short or too
# template-like to count one by one.
PARAGRAPH_TYPES = frozenset({"p", "li", "h2", "h3", "tr"})
# Below this many tokens a boilerplate string ("Home", "Next") also occurs in
# real content, so finding it proves nothing.
MIN_BOILERPLATE_TOKENS = 4
TEXT_SAMPLE = 120

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens: runs of Unicode word characters, numbers kept."""
    return _WORD.findall(text.lower())


def normalise(text: str) -> str:
    """Tokens joined by single spaces, so markup, punctuation and layout do not matter."""
    return " ".join(tokens(text))


def _overlap(expected: list[str], got: list[str]) -> int:
    return sum((Counter(expected) & Counter(got)).values())


def _scores(overlap: int, n_expected: int, n_got: int) -> tuple[float, float, float]:
    if not n_expected and not n_got:
        return 1.0, 1.0, 1.0
    # One side empty: either nothing was returned or nothing was there to
    # return; neither earns credit, and a vacuous precision or recall of 1
    # would flatter the averages of a run that drops pages.
    if not n_expected or not n_got:
        return 0.0, 0.0, 0.0
    precision = overlap / n_got
    recall = overlap / n_expected
    f1 = 2 * precision * recall / (precision + recall) if overlap else 0.0
    return precision, recall, f1


def prf(expected_text: str, got_text: str) -> tuple[float, float, float]:
    """Token precision, recall and F1 of ``got_text`` against ``expected_text``.

    Tokens are compared as multisets: a word repeated three times in the truth
    is recalled fully only if it appears three times. Both empty scores 1, 1, 1;
    exactly one empty scores 0, 0, 0.
    """
    exp, got = tokens(expected_text), tokens(got_text)
    return _scores(_overlap(exp, got), len(exp), len(got))


def contains(haystack_norm: str, needle: str) -> bool:
    """Whether ``needle``'s tokens appear, in order and adjacent, in a normalised text."""
    n = normalise(needle)
    # Padding makes the match whole-token: "care" is not in "careful".
    return bool(n) and f" {n} " in f" {haystack_norm} "


# --------------------------------------------------------------------------
# The report


@dataclass
class PageScore:
    url: str  # the truth page's primary URL
    id: str
    kind: str  # the truth page's kind (article, news, multipart, ...)
    found: bool
    matched_url: str | None  # primary URL of the extracted page it was matched to
    extracted_kind: str | None
    expected_tokens: int
    got_tokens: int
    overlap: int
    precision: float
    recall: float
    f1: float
    paragraphs: int
    paragraphs_lost: int


@dataclass
class Report:
    truth_pages: int = 0
    content_pages: int = 0
    matched: int = 0
    missing: list[str] = field(default_factory=list)
    # Content pages the extractor called listings: scored all the same.
    content_as_listing: list[str] = field(default_factory=list)
    micro_precision: float = 0.0
    micro_recall: float = 0.0
    micro_f1: float = 0.0
    macro_precision: float = 0.0
    macro_recall: float = 0.0
    macro_f1: float = 0.0
    paragraphs_checked: int = 0
    paragraphs_lost: int = 0
    # {"url", "type", "text"} of each lost block, text cut to TEXT_SAMPLE chars.
    lost: list[dict[str, str]] = field(default_factory=list)
    boilerplate_checked: int = 0
    boilerplate_removed: int = 0
    boilerplate_removed_share: float | None = None
    boilerplate_checked_by_name: dict[str, int] = field(default_factory=dict)
    boilerplate_leftovers: dict[str, int] = field(default_factory=dict)
    listing_pages: int = 0
    listing_correct: int = 0
    listing_accuracy: float | None = None
    # Listing pages with no extracted page at all (counted as wrong).
    listing_missing: list[str] = field(default_factory=list)
    pages: list[PageScore] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> dict[str, object]:
        """The headline numbers, without the per-page and per-block lists."""
        return {
            "truth_pages": self.truth_pages,
            "content_pages": self.content_pages,
            "matched": self.matched,
            "missing": len(self.missing),
            "content_as_listing": len(self.content_as_listing),
            "micro_precision": self.micro_precision,
            "micro_recall": self.micro_recall,
            "micro_f1": self.micro_f1,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "paragraphs_checked": self.paragraphs_checked,
            "paragraphs_lost": self.paragraphs_lost,
            "boilerplate_checked": self.boilerplate_checked,
            "boilerplate_removed": self.boilerplate_removed,
            "boilerplate_removed_share": self.boilerplate_removed_share,
            "boilerplate_leftovers": self.boilerplate_leftovers,
            "listing_pages": self.listing_pages,
            "listing_correct": self.listing_correct,
            "listing_accuracy": self.listing_accuracy,
        }

    def worst(self, n: int = 10) -> list[PageScore]:
        return sorted(self.pages, key=lambda p: (p.f1, p.url))[:n]


# --------------------------------------------------------------------------
# Evaluation


def iter_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _index(pages: Iterable[dict]) -> dict[str, dict]:
    """Legacy URL -> the extracted page showing it; the first page to claim a URL keeps it."""
    by_url: dict[str, dict] = {}
    for page in pages:
        urls = list(page.get("legacy_urls") or [])
        if page.get("url"):
            urls.append(page["url"])
        for u in urls:
            by_url.setdefault(u, page)
    return by_url


def _find(truth: dict, by_url: dict[str, dict]) -> dict | None:
    # The primary URL first: with parts or variants split into several pages,
    # the one at the page's own address is the one a reader lands on.
    for u in (truth["url"], *truth.get("urls", ())):
        if u in by_url:
            return by_url[u]
    return None


def evaluate(truth_pages_jsonl: Path, pages: Iterable[dict] | Path) -> Report:
    """Score extracted pages against the ground truth of a replica."""
    by_url = _index(iter_jsonl(pages) if isinstance(pages, Path) else pages)
    rep = Report()
    sums = Counter[str]()
    checked_by_name: Counter[str] = Counter()
    leftovers: Counter[str] = Counter()
    for truth in iter_jsonl(truth_pages_jsonl):
        rep.truth_pages += 1
        page = _find(truth, by_url)
        if not truth.get("content_page"):
            rep.listing_pages += 1
            if page is None:
                rep.listing_missing.append(truth["url"])
            elif page.get("kind") == "listing":
                rep.listing_correct += 1
            continue

        rep.content_pages += 1
        if page is None:
            rep.missing.append(truth["url"])
        else:
            rep.matched += 1
            if page.get("kind") == "listing":
                rep.content_as_listing.append(truth["url"])
        got_text = (page or {}).get("text") or ""
        exp, got = tokens(truth.get("main_text", "")), tokens(got_text)
        ov = _overlap(exp, got)
        p, r, f = _scores(ov, len(exp), len(got))
        sums.update(expected=len(exp), got=len(got), overlap=ov)

        got_norm = " ".join(got)
        checked = lost = 0
        for block in truth.get("main", ()):
            if block.get("type") not in PARAGRAPH_TYPES or not tokens(block.get("text", "")):
                continue
            checked += 1
            if not contains(got_norm, block["text"]):
                lost += 1
                rep.lost.append(
                    {
                        "url": truth["url"],
                        "type": block["type"],
                        "text": block["text"][:TEXT_SAMPLE],
                    }
                )
        rep.paragraphs_checked += checked
        rep.paragraphs_lost += lost

        # A missing page has no template left in it, which is no achievement.
        if page is not None:
            for bp in truth.get("boilerplate", ()):
                if len(tokens(bp.get("text", ""))) < MIN_BOILERPLATE_TOKENS:
                    continue
                checked_by_name[bp["name"]] += 1
                if contains(got_norm, bp["text"]):
                    leftovers[bp["name"]] += 1

        rep.pages.append(
            PageScore(
                url=truth["url"],
                id=truth.get("id", ""),
                kind=truth.get("kind", ""),
                found=page is not None,
                matched_url=page.get("url") if page else None,
                extracted_kind=page.get("kind") if page else None,
                expected_tokens=len(exp),
                got_tokens=len(got),
                overlap=ov,
                precision=round(p, 6),
                recall=round(r, 6),
                f1=round(f, 6),
                paragraphs=checked,
                paragraphs_lost=lost,
            )
        )

    micro = _scores(sums["overlap"], sums["expected"], sums["got"])
    rep.micro_precision, rep.micro_recall, rep.micro_f1 = (round(x, 6) for x in micro)
    if rep.pages:
        n = len(rep.pages)
        rep.macro_precision = round(sum(p.precision for p in rep.pages) / n, 6)
        rep.macro_recall = round(sum(p.recall for p in rep.pages) / n, 6)
        rep.macro_f1 = round(sum(p.f1 for p in rep.pages) / n, 6)
    rep.boilerplate_checked = sum(checked_by_name.values())
    rep.boilerplate_removed = rep.boilerplate_checked - sum(leftovers.values())
    if rep.boilerplate_checked:
        rep.boilerplate_removed_share = round(rep.boilerplate_removed / rep.boilerplate_checked, 6)
    rep.boilerplate_checked_by_name = dict(sorted(checked_by_name.items()))
    rep.boilerplate_leftovers = dict(sorted(leftovers.items()))
    if rep.listing_pages:
        rep.listing_accuracy = round(rep.listing_correct / rep.listing_pages, 6)
    return rep


# --------------------------------------------------------------------------
# Command line


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def print_report(rep: Report, worst: int = 5) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title="Extraction against ground truth", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("content pages (truth)", f"{rep.content_pages:,}"),
        ("  matched / missing", f"{rep.matched:,} / {len(rep.missing):,}"),
        (
            "micro P / R / F1",
            " / ".join(map(_pct, (rep.micro_precision, rep.micro_recall, rep.micro_f1))),
        ),
        (
            "macro P / R / F1",
            " / ".join(map(_pct, (rep.macro_precision, rep.macro_recall, rep.macro_f1))),
        ),
        ("paragraphs lost", f"{rep.paragraphs_lost:,} of {rep.paragraphs_checked:,}"),
        (
            "boilerplate removed",
            f"{_pct(rep.boilerplate_removed_share)} "
            f"({rep.boilerplate_removed:,} of {rep.boilerplate_checked:,})",
        ),
        (
            "listing pages recognised",
            f"{_pct(rep.listing_accuracy)} ({rep.listing_correct:,} of {rep.listing_pages:,})",
        ),
        ("content pages called listings", f"{len(rep.content_as_listing):,}"),
    ]
    for name, n in sorted(rep.boilerplate_leftovers.items(), key=lambda kv: -kv[1]):
        rows.append((f"  left in: {name}", f"{n:,} of {rep.boilerplate_checked_by_name[name]:,}"))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    bad = [p for p in rep.worst(worst) if p.f1 < 1.0]
    if bad:
        console.print("lowest F1:")
        for p in bad:
            console.print(f"  {p.f1:.3f}  {p.url}" + ("" if p.found else "  (missing)"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m transform.evaluate",
        description="Score extracted pages (pages.jsonl) against a replica's ground truth.",
    )
    ap.add_argument("--truth", type=Path, required=True, help="SITE/ground-truth/pages.jsonl")
    ap.add_argument("--pages", type=Path, required=True, help="CONTENT/pages.jsonl")
    ap.add_argument("--json", type=Path, help="also write the full report here")
    args = ap.parse_args(argv)
    for path in (args.truth, args.pages):
        if not path.is_file():
            ap.error(f"no such file: {path}")
    why = unfinished(args.pages.parent, need_summary=False)
    if why is not None:
        ap.error(f"{args.pages}: from an unfinished transform ({why}); run it again")
    rep = evaluate(args.truth, args.pages)
    print_report(rep)
    if args.json:
        args.json.write_text(json.dumps(rep.to_dict(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
