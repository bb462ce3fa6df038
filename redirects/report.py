"""report.html: one self-contained page for the people who check the redirect map.

Reviewers may open it offline, attach it to a ticket or mail it around, so it
carries its own CSS and SVG and fetches nothing. Every title, URL and note in it
was crawled from the legacy site and is treated as hostile: it is escaped, and
only http(s) URLs become links. Rows are streamed: counts are aggregated on the
fly and only the entries the capped lists can show are kept.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from redirects.model import GONE, METHODS, Collision, Refused, Row
from redirects.store import BATCH, create, open_scratch, storable
from sunset.htmlpage import clip, csp_hash, esc, is_web_url
from sunset.paths import replacing

# A page sent to its archived copy is the planned outcome for a page nobody
# replaced, not a failure: only the guesses below it need a reviewer.
ARCHIVED = ("archive",)
UNMATCHED = ("parent", "home")

# Families colour the histogram: how much a reviewer should trust a bar at a glance.
FAMILIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("reviewed or same path", ("override", "exact"), "#2e7d32"),
    ("matched", ("slug", "document", "title", "content", "topic", "listing"), "#1565c0"),
    ("rule", ("redirect", "section", "special"), "#8e44ad"),
    ("archived (planned)", ARCHIVED, "#607d8b"),
    ("unmatched", UNMATCHED, "#d35400"),
)
OTHER_FAMILY = ("other", (), "#7f8c8d")
_FAMILY_OF = {m: i for i, (_, methods, _) in enumerate(FAMILIES) for m in methods}

BINS = 10
# A page can have hundreds of variants (session ids, print views); a handful shows
# the pattern and the CSV holds the rest.
VARIANT_CAP = 20
# Crawled strings can be megabytes long; the report only needs enough to recognise them.
TEXT_CAP = 240
URL_TEXT_CAP = 200

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;
max-width:1400px;padding:0 1.5rem 3rem;color:#222;background:#fff}
h1{font-size:1.5rem;margin:1.2rem 0 .6rem}h2{font-size:1.2rem;margin:2rem 0 .5rem;
border-bottom:1px solid #ddd;padding-bottom:.2rem}
nav a{margin-right:1rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
table.summary{width:auto}table.summary th{font-weight:600;white-space:nowrap}
td.u{word-break:break-all;min-width:14rem}
.muted{color:#777}.tag{font-size:.8em;color:#555;background:#eee;border-radius:3px;
padding:0 .3em;margin-left:.3em;white-space:nowrap}
.low{color:#b00020;font-weight:600}
p.more{font-style:italic;color:#555}
details summary{cursor:pointer;color:#555}details ul{margin:.2rem 0;padding-left:1.2rem}
svg{max-width:100%;height:auto}
#filters{margin:.5rem 0;padding:.3rem 0;position:sticky;top:0;background:#fff;display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center}
#filters input,#filters select{padding:.25rem}#filter{width:20rem;max-width:100%}
#filters input[type=number]{width:4.5rem}
ol.cands{margin:0;padding-left:1.2rem}ol.cands .n{color:#555;font-variant-numeric:tabular-nums}
code{background:#f4f4f4;padding:0 .2em}
""".strip()

# Optional: narrows the lists by method, section, confidence and text, from the
# data-* attributes of each listed page. The controls stay hidden unless this
# runs, so the page reads the same without JavaScript. It only toggles `hidden`.
_SCRIPT = """
(function(){var box=document.getElementById("filters");if(!box)return;box.hidden=false;
function el(i){return document.getElementById(i);}
var q=el("filter"),m=el("f-method"),s=el("f-section"),lo=el("f-min"),hi=el("f-max");
function apply(){var t=q.value.toLowerCase(),mv=m.value,sv=s.value,
a=parseFloat(lo.value),b=parseFloat(hi.value);if(isNaN(a))a=0;if(isNaN(b))b=1;
document.querySelectorAll("table.list tbody tr").forEach(function(r){var d=r.dataset,
ok=t===""||r.textContent.toLowerCase().indexOf(t)>=0;
if(ok&&d.method!==undefined){var c=parseFloat(d.conf);
ok=(!mv||d.method===mv)&&(!sv||d.section===sv)&&c>=a-1e-9&&c<=b+1e-9;}
r.hidden=!ok;});}
[q,m,s,lo,hi].forEach(function(e){e.addEventListener("input",apply);
e.addEventListener("change",apply);});})();
""".strip()


# Hashes rather than 'unsafe-inline': an injected <script> or <style> would not run
# even if escaping ever failed.
CSP = (
    "default-src 'none'; "
    f"style-src {csp_hash(_STYLE)}; "
    f"script-src {csp_hash(_SCRIPT)}; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)


def _clip(text: str, cap: int = TEXT_CAP) -> str:
    return clip(text, cap)


def _link(url: str) -> str:
    """A link for http(s) URLs; anything else (javascript:, data:, junk) stays text."""
    shown = esc(_clip(url, URL_TEXT_CAP))
    if not is_web_url(url):
        return f"<span>{shown}</span>" if url else '<span class="muted">(none)</span>'
    return f'<a href="{esc(url)}" rel="noreferrer noopener" target="_blank">{shown}</a>'


def _confidence(value: float) -> float:
    """Clamp to 0..1 so one bad value cannot break the chart or the sort."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the usual case; NaN falls through
        return value
    try:
        conf = float(value)
    except (TypeError, ValueError):
        return 0.0
    if math.isnan(conf):
        return 0.0
    return min(1.0, max(0.0, conf))


@dataclass(slots=True)
class _Entry:
    """One legacy page in a review list: its representative row plus a few variants."""

    row: Row
    title: str
    count: int = 1
    min_conf: float = 1.0
    variants: list[tuple[str, str]] = field(default_factory=list)  # (old, new)
    # How many variants to keep: none while only ranking the pages.
    cap: int = VARIANT_CAP

    def add(self, row: Row, conf: float) -> None:
        self.count += 1
        if conf < self.min_conf:
            self.min_conf = conf
        if not self.title and row.title:
            self.title = _clip(row.title)
        if _better_representative(row, self.row):
            row, self.row = self.row, row
        if len(self.variants) < self.cap:
            self.variants.append((row.old, row.new))


def _better_representative(a: Row, b: Row) -> bool:
    # A captured page with the shortest URL is the one a reviewer recognises.
    return (not a.captured, len(a.old), a.old) < (not b.captured, len(b.old), b.old)


@dataclass
class _Review:
    """A review list: how many pages and URLs it has, and which pages it shows, in order.

    The shown pages' entries are built again from disk when the list is
    written (:func:`_shown`), a few hundred at a time.
    """

    which: int = 0
    pages: int = 0
    urls: int = 0
    shown_urls: int = 0
    shown: list[str] = field(default_factory=list)  # groups


@dataclass
class _Stats:
    urls: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)  # distinct groups per method
    conf_sum: dict[str, float] = field(default_factory=dict)
    all_groups: int = 0
    bins: list[list[int]] = field(
        default_factory=lambda: [[0] * (len(FAMILIES) + 1) for _ in range(BINS)]
    )
    unmatched: _Review = field(default_factory=_Review)
    low: _Review = field(default_factory=_Review)
    archived: _Review = field(default_factory=_Review)
    every: _Review = field(default_factory=_Review)
    sections: dict[str, int] = field(default_factory=dict)  # URLs per section
    total: int = 0


_UNMATCHED_LIST, _LOW_LIST, _ARCHIVED_LIST, _EVERY_LIST = 0, 1, 2, 3
# Distinct sections counted for the filter; a crawl with session ids in the
# first path segment would have one per URL.
SECTION_CAP = 5000
SECTION_OPTIONS = 200
# Groups and review rows are one per legacy page or URL (twice for a page in a
# review list: there and in the list of every page).
_SCHEMA = """
CREATE TABLE method_group(method INTEGER, grp TEXT);
CREATE TABLE review(
    list INTEGER, seq INTEGER, grp TEXT, old TEXT, new TEXT, method TEXT,
    confidence REAL, status INTEGER, title TEXT, note TEXT, captured INTEGER, cands TEXT)
"""
_REVIEW_ROWS = (
    "SELECT seq, grp, old, new, method, confidence, status, title, note, captured, cands"
    " FROM review WHERE list = ?"
)
_SECTION = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*(/[^/?#]*)?")


def section_of(url: str) -> str:
    """The first path segment of a legacy URL (``/your-ccg``), what 'section' filters on."""
    m = _SECTION.match(url)
    if not m:
        return ""
    return (m.group(1) or "/").lower()[:80]


def _dump(candidates: tuple[tuple[str, str, float], ...]) -> str | None:
    if not candidates:
        return None
    return json.dumps([[storable(u), storable(t), s] for u, t, s in candidates])


def _load(cell: str | None) -> tuple[tuple[str, str, float], ...]:
    if not cell:
        return ()
    return tuple((str(u), str(t), float(s)) for u, t, s in json.loads(cell))


def _aggregate(
    db: sqlite3.Connection,
    rows: Iterable[Row],
    low_confidence: float,
    list_limit: int,
    archive_prefix: str = "",
) -> _Stats:
    stats = _Stats()
    other = len(FAMILIES)
    create(db, _SCHEMA)
    method_ids: dict[str, int] = {}
    groups: list[tuple[int, str]] = []
    last: tuple[int, str] | None = None
    review: list[tuple[object, ...]] = []
    # A page's URLs come together and share its candidates: encoded once.
    last_cands: tuple[tuple[str, str, float], ...] = ()
    cands_cell: str | None = None
    for row in rows:
        method = row.method
        conf = _confidence(row.confidence)
        group = row.group or row.old
        stats.total += 1
        stats.urls[method] = stats.urls.get(method, 0) + 1
        stats.conf_sum[method] = stats.conf_sum.get(method, 0.0) + conf
        # Methods are few: a number each keeps the per-row table narrow. A
        # page's variants come together, so most repeats never reach SQLite.
        pair = (method_ids.setdefault(method, len(method_ids)), group)
        if pair != last:
            groups.append((pair[0], storable(group)))
            last = pair
        bin_ = int(conf * BINS)
        stats.bins[bin_ if bin_ < BINS else BINS - 1][_FAMILY_OF.get(method, other)] += 1
        if row.candidates != last_cands:
            last_cands, cands_cell = row.candidates, _dump(row.candidates)
        section = section_of(row.old)
        if section in stats.sections or len(stats.sections) < SECTION_CAP:
            stats.sections[section] = stats.sections.get(section, 0) + 1
        if method in UNMATCHED:
            which: int | None = _UNMATCHED_LIST
        elif method in ARCHIVED or (
            # An old redirect to a page that went to the archive went there as planned too.
            archive_prefix and method != "override" and row.new.startswith(archive_prefix)
        ):
            which = _ARCHIVED_LIST
        elif conf < low_confidence:
            which = _LOW_LIST
        else:
            which = None
        fields = (
            stats.total,
            storable(group),
            storable(row.old),
            storable(row.new),
            storable(method),
            conf,
            row.status,
            storable(row.title),
            storable(row.note),
            row.captured,
            cands_cell,
        )
        review.append((_EVERY_LIST, *fields))
        if which is not None:
            review.append((which, *fields))
        if len(groups) >= BATCH or len(review) >= BATCH:
            _flush(db, groups, review)
    _flush(db, groups, review)
    db.execute("CREATE INDEX review_group ON review(list, grp, seq)")
    counts = dict(
        db.execute("SELECT method, count(DISTINCT grp) FROM method_group GROUP BY method")
    )
    stats.groups = {method: counts[n] for method, n in method_ids.items()}
    stats.all_groups = db.execute("SELECT count(DISTINCT grp) FROM method_group").fetchone()[0]
    stats.unmatched = _review(db, _UNMATCHED_LIST, list_limit, _unmatched_key)
    stats.low = _review(db, _LOW_LIST, list_limit, _low_key)
    stats.archived = _review(db, _ARCHIVED_LIST, list_limit, _archived_key)
    stats.every = _review(db, _EVERY_LIST, list_limit, _low_key)
    return stats


def _flush(
    db: sqlite3.Connection, groups: list[tuple[int, str]], review: list[tuple[object, ...]]
) -> None:
    db.executemany("INSERT INTO method_group VALUES (?, ?)", groups)
    db.executemany("INSERT INTO review VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", review)
    groups.clear()
    review.clear()


def _unmatched_key(e: _Entry) -> tuple[int, str]:
    return (-e.count, e.row.old)


def _low_key(e: _Entry) -> tuple[float, int, str]:
    return (e.min_conf, -e.count, e.row.old)


def _archived_key(e: _Entry) -> tuple[float, int, str]:
    # The page whose best candidate came closest is the likeliest missed successor.
    best = e.row.candidates[0][2] if e.row.candidates else 0.0
    return (-best, -e.count, e.row.old)


def _entries(
    rows: Iterable[tuple[Any, ...]], cap: int, candidates: bool = True
) -> Iterator[tuple[int, _Entry]]:
    """(first row number, entry) of each page, from its review rows sorted by page then row.

    ``candidates``: decode them (only the lists that show them, or rank by them, need them).
    """
    for _, members in groupby(rows, key=itemgetter(1)):
        entry: _Entry | None = None
        first = 0
        for seq, group, old, new, method, conf, status, title, note, captured, cands in members:
            got = _load(cands) if candidates else ()
            row = Row(old, new, method, conf, status, title, group, note, bool(captured), got)
            if entry is None:
                entry = _Entry(row=row, title=_clip(row.title), min_conf=conf, cap=cap)
                first = seq
            else:
                entry.add(row, conf)
        assert entry is not None
        yield first, entry


def _review(
    db: sqlite3.Connection, which: int, list_limit: int, key: Callable[[_Entry], Any]
) -> _Review:
    """One review list: every page's entry is built in turn and ranked; the first are kept."""
    review = _Review(which=which)
    rows = db.execute(f"{_REVIEW_ROWS} ORDER BY grp, seq", (which,))

    def ranked() -> Iterator[tuple[Any, int, str, int]]:
        for first, entry in _entries(rows, cap=0, candidates=which == _ARCHIVED_LIST):
            review.pages += 1
            review.urls += entry.count
            # Pages compare as the rows first listed them, as a dict kept them.
            yield key(entry), first, entry.row.group, entry.count

    shown = heapq.nsmallest(max(list_limit, 0), ranked(), key=itemgetter(0, 1))
    review.shown = [group for _, _, group, _ in shown]
    review.shown_urls = sum(count for _, _, _, count in shown)
    return review


_SHOWN_CHUNK = 200


def _shown(db: sqlite3.Connection, review: _Review) -> Iterator[_Entry]:
    """The entries a review list shows, in its order, variants and all."""
    for start in range(0, len(review.shown), _SHOWN_CHUNK):
        groups = review.shown[start : start + _SHOWN_CHUNK]
        marks = ", ".join("?" * len(groups))
        rows = db.execute(
            f"{_REVIEW_ROWS} AND grp IN ({marks}) ORDER BY grp, seq", (review.which, *groups)
        )
        built = {entry.row.group: entry for _, entry in _entries(rows, VARIANT_CAP)}
        yield from (built[group] for group in groups)


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value == value else "n/a"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _summary_html(summary: Mapping[str, object]) -> str:
    if not summary:
        return '<p class="muted">No summary was given.</p>'
    out = ['<table class="summary"><tbody>']
    for key, value in summary.items():
        text = _fmt(value)
        cell = _link(text) if isinstance(value, str) and is_web_url(text) else esc(text)
        out.append(f"<tr><th>{esc(key)}</th><td>{cell}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _methods_html(stats: _Stats) -> str:
    known = [m for m in METHODS if stats.urls.get(m)]
    # A method the model does not know still counts; hiding it would hide rows.
    unknown = sorted(m for m in stats.urls if m not in METHODS)
    out = [
        '<table class="methods"><thead><tr><th>method</th><th>family</th><th>URLs</th>'
        "<th>groups</th><th>share of URLs</th><th>mean confidence</th></tr></thead><tbody>"
    ]
    for method in known + unknown:
        urls = stats.urls[method]
        family = FAMILIES[_FAMILY_OF[method]][0] if method in _FAMILY_OF else OTHER_FAMILY[0]
        out.append(
            f'<tr data-method="{esc(method)}"><td>{esc(method)}</td><td>{esc(family)}</td>'
            f'<td class="n">{urls:,}</td><td class="n">{stats.groups[method]:,}</td>'
            f'<td class="n">{100 * urls / stats.total:.1f}%</td>'
            f'<td class="n">{stats.conf_sum[method] / urls:.2f}</td></tr>'
        )
    if not stats.total:
        out.append('<tr><td colspan="6" class="muted">No rows.</td></tr>')
    mean = sum(stats.conf_sum.values()) / stats.total if stats.total else 0.0
    out.append(
        f'</tbody><tfoot><tr><th colspan="2">total</th><th class="n">{stats.total:,}</th>'
        f'<th class="n">{stats.all_groups:,}</th><th class="n">'
        f'{"100.0%" if stats.total else "–"}</th><th class="n">'
        f"{f'{mean:.2f}' if stats.total else '–'}</th></tr></tfoot></table>"
    )
    return "".join(out)


def _nice_step(top: int, ticks: int = 5) -> int:
    raw = max(1.0, top / ticks)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return int(factor * magnitude)
    return int(10 * magnitude)


def _histogram_svg(bins: list[list[int]], low_confidence: float) -> str:
    width, height = 760, 300
    left, right, top, bottom = 64, 16, 44, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    bin_w = plot_w / BINS
    totals = [sum(b) for b in bins]
    step = _nice_step(max(totals))
    y_max = max(step, math.ceil(max(totals) / step) * step)
    families = [*FAMILIES, OTHER_FAMILY]

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / y_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="hist-title" '
        'font-family="system-ui,sans-serif" font-size="11">',
        '<title id="hist-title">URLs by confidence, in tenths, coloured by method family</title>',
    ]
    # Legend along the top, only for families that occur.
    x = left
    present = [i for i in range(len(families)) if any(b[i] for b in bins)]
    for i in present:
        name, _, colour = families[i]
        out.append(
            f'<rect x="{x}" y="12" width="12" height="12" fill="{colour}"/>'
            f'<text x="{x + 16}" y="22">{esc(name)}</text>'
        )
        x += 24 + 7 * len(name)
    # Grid and y ticks.
    for tick in range(0, y_max + 1, step):
        ty = round(y(tick), 1)
        out.append(
            f'<line x1="{left}" y1="{ty}" x2="{left + plot_w}" y2="{ty}" stroke="#e5e5e5"/>'
            f'<text x="{left - 6}" y="{ty + 4}" text-anchor="end">{tick:,}</text>'
        )
    for i, counts in enumerate(bins):
        bx = left + i * bin_w + 4
        base = 0
        for fam, count in enumerate(counts):
            if not count:
                continue
            y_top, y_bottom = y(base + count), y(base)
            name, _, colour = families[fam]
            out.append(
                f'<rect x="{bx:.1f}" y="{y_top:.1f}" width="{bin_w - 8:.1f}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{colour}">'
                f"<title>{i / BINS:.1f}–{(i + 1) / BINS:.1f} {esc(name)}: {count:,}</title></rect>"
            )
            base += count
        if totals[i]:
            out.append(
                f'<text x="{bx + (bin_w - 8) / 2:.1f}" y="{y(totals[i]) - 4:.1f}" '
                f'text-anchor="middle" class="count">{totals[i]:,}</text>'
            )
    for i in range(BINS + 1):
        tx = left + i * bin_w
        out.append(
            f'<text x="{tx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{i / BINS:.1f}</text>'
        )
    if 0 < low_confidence <= 1:
        lx = left + plot_w * low_confidence
        out.append(
            f'<line x1="{lx:.1f}" y1="{top}" x2="{lx:.1f}" y2="{top + plot_h}" '
            'stroke="#b00020" stroke-dasharray="4 3"/>'
            # Its label sits in the legend row, where no bar or count label can cover it.
            f'<line x1="{x}" y1="18" x2="{x + 18}" y2="18" stroke="#b00020" '
            'stroke-dasharray="4 3"/>'
            f'<text x="{x + 22}" y="22" fill="#b00020">review below {low_confidence:g}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#333"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>'
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 12}" text-anchor="middle" '
        'font-size="12">confidence</text>'
        f'<text transform="translate(16 {top + plot_h / 2:.1f}) rotate(-90)" '
        'text-anchor="middle" font-size="12">URLs</text>'
    )
    if not any(totals):
        out.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            'text-anchor="middle" font-size="14" fill="#777">no rows</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _title_cell(title: str, row: Row) -> str:
    shown = esc(title) if title else '<span class="muted">(no title)</span>'
    if not row.captured:
        shown += ' <span class="tag">link only</span>'
    return f"<td>{shown}</td>"


def _method_cell(row: Row) -> str:
    gone = ' <span class="tag">410 gone</span>' if row.status == GONE else ""
    return f"<td>{esc(row.method)}{gone}</td>"


def _variants_html(entry: _Entry) -> str:
    if entry.count == 1:
        return ""
    items = "".join(
        f"<li>{_link(old)}" + (f" → {_link(new)}" if new != entry.row.new else "") + "</li>"
        for old, new in entry.variants
    )
    hidden = entry.count - 1 - len(entry.variants)
    if hidden:
        items += f'<li class="muted">{hidden:,} more in redirects.csv</li>'
    return (
        f"<details><summary>+{entry.count - 1:,} variant{'s' if entry.count > 2 else ''}"
        f"</summary><ul>{items}</ul></details>"
    )


def _candidates_html(row: Row) -> str:
    """The pages a reviewer could pick instead: title (or URL) linked, with its score."""
    if not row.candidates:
        return '<span class="muted">none</span>'
    items = "".join(
        f'<li>{_named_link(url, title)} <span class="n">{_confidence(score):.2f}</span></li>'
        for url, title, score in row.candidates
    )
    return f'<ol class="cands">{items}</ol>'


def _named_link(url: str, title: str) -> str:
    if not title:
        return _link(url)
    shown = esc(_clip(title))
    if not is_web_url(url):
        return f"<span>{shown}</span>"
    return (
        f'<a href="{esc(url)}" title="{esc(_clip(url, URL_TEXT_CAP))}"'
        f' rel="noreferrer noopener" target="_blank">{shown}</a>'
    )


def _filters_html(stats: _Stats) -> str:
    methods = [m for m in METHODS if stats.urls.get(m)]
    methods += sorted(m for m in stats.urls if m not in METHODS)
    busiest = sorted(stats.sections.items(), key=lambda kv: (-kv[1], kv[0]))[:SECTION_OPTIONS]
    method_options = "".join(
        f'<option value="{esc(m)}">{esc(m)} ({stats.urls[m]:,})</option>' for m in methods
    )
    section_options = "".join(
        f'<option value="{esc(name)}">{esc(name or "(none)")} ({count:,})</option>'
        for name, count in sorted(busiest)
    )
    return (
        '<div id="filters" hidden>'
        '<label>method <select id="f-method"><option value="">any</option>'
        f"{method_options}</select></label>"
        '<label>section <select id="f-section"><option value="">any</option>'
        f"{section_options}</select></label>"
        '<label>confidence from <input id="f-min" type="number" min="0" max="1" step="0.05"'
        ' value="0"></label><label>to <input id="f-max" type="number" min="0" max="1"'
        ' step="0.05" value="1"></label>'
        '<input id="filter" type="search" placeholder="Filter the lists by text…"'
        ' aria-label="Filter the lists by text"></div>'
    )


def _more(count: int, what: str, where: str = "in redirects.csv") -> str:
    return f'<p class="more">{count:,} more {what} {where}</p>' if count > 0 else ""


def _entries_html(
    db: sqlite3.Connection, review: _Review, css_id: str, low_confidence: float
) -> Iterator[str]:
    if not review.pages:
        yield '<p class="muted">None.</p>'
        return
    yield (
        f'<table class="list" id="{css_id}-list"><thead><tr><th>#</th><th>old page title</th>'
        "<th>old URL</th><th>proposed target</th><th>method</th><th>confidence</th>"
        "<th>note</th><th>candidates</th></tr></thead><tbody>"
    )
    for n, entry in enumerate(_shown(db, review), 1):
        row = entry.row
        conf = entry.min_conf
        conf_class = "n low" if conf < low_confidence else "n"
        # What the filters read: the page's method, section and confidence.
        data = (
            f'data-method="{esc(row.method)}" data-section="{esc(section_of(row.old))}"'
            f' data-conf="{conf:.2f}"'
        )
        yield (
            f'<tr {data}><td class="n">{n}</td>{_title_cell(entry.title, row)}'
            f'<td class="u">{_link(row.old)}{_variants_html(entry)}</td>'
            f'<td class="u">{_link(row.new)}</td>{_method_cell(row)}'
            f'<td class="{conf_class}">{conf:.2f}</td><td>{esc(_clip(row.note))}</td>'
            f"<td>{_candidates_html(row)}</td></tr>"
        )
    yield "</tbody></table>"
    if len(review.shown) < review.pages:
        urls = review.urls - review.shown_urls
        yield _more(review.pages - len(review.shown), f"pages ({urls:,} URLs)")


def _refused_html(refused: Sequence[Refused], list_limit: int) -> str:
    if not refused:
        return '<p class="muted">None.</p>'
    # Grouping by reason puts one systematic cause (a disallowed host...) in one block.
    shown = sorted(refused, key=lambda r: (r.reason, r.old))[: max(list_limit, 0)]
    out = [
        '<table class="list" id="refused-list"><thead><tr><th>#</th><th>old URL</th>'
        "<th>target</th><th>reason</th></tr></thead><tbody>"
    ]
    for n, item in enumerate(shown, 1):
        out.append(
            f'<tr><td class="n">{n}</td><td class="u">{_link(item.old)}</td>'
            f'<td class="u">{_link(item.new)}</td><td>{esc(_clip(item.reason))}</td></tr>'
        )
    out.append("</tbody></table>")
    out.append(_more(len(refused) - len(shown), "refused", "in refused.jsonl"))
    return "".join(out)


def _collisions_html(collisions: Sequence[Collision], list_limit: int) -> str:
    if not collisions:
        return '<p class="muted">None.</p>'

    # A key left out loses every URL behind it, so those come first; then the ones
    # whose URLs disagree on the target, where keeping one sends the others astray.
    def importance(c: Collision) -> tuple[bool, bool, int, str]:
        return (bool(c.kept), len(set(c.targets)) <= 1, -len(c.olds), c.key)

    shown = sorted(collisions, key=importance)[: max(list_limit, 0)]
    out = [
        '<table class="list" id="collisions-list"><thead><tr><th>#</th><th>map</th>'
        "<th>key</th><th>legacy URLs → their targets</th><th>kept</th></tr></thead><tbody>"
    ]
    for n, item in enumerate(shown, 1):
        pairs = "".join(
            f"<li>{_link(old)} → {_link(new)}</li>"
            for old, new in zip(item.olds[:VARIANT_CAP], item.targets[:VARIANT_CAP], strict=False)
        )
        if len(item.olds) > VARIANT_CAP:
            pairs += f'<li class="muted">{len(item.olds) - VARIANT_CAP:,} more</li>'
        kept = _link(item.kept) if item.kept else '<span class="low">left out</span>'
        out.append(
            f'<tr><td class="n">{n}</td><td>{esc(item.map)}</td>'
            f'<td class="u">{esc(_clip(item.key, URL_TEXT_CAP))}</td>'
            f'<td class="u"><ul>{pairs}</ul></td><td class="u">{kept}</td></tr>'
        )
    out.append("</tbody></table>")
    out.append(_more(len(collisions) - len(shown), "collisions", "not listed here"))
    return "".join(out)


_HOWTO = """
<p>To correct the map, open <code>redirects.csv</code> in a spreadsheet. Each row has the
proposed target (<code>new</code>), how it was found (<code>method</code>,
<code>confidence</code>, <code>note</code>) and the three best candidate pages
(<code>candidate_1</code>… with title and score). Where a row is wrong, set its
<code>new</code> column to the right page, often one of its candidates; one changed row
of a page moves the page (its print views and index.php forms follow). Save the whole file
as, for example, <code>edited.csv</code> and pass it back with
<code>sunset redirects CRAWL_DIR --overrides edited.csv</code>. Only the pages whose target
you changed become <code>override</code>; the other rows keep their method and confidence.
A bad row (a target
off the allowed hosts, something that is not a URL, an old URL this crawl does not have)
stops the run naming its file and line, and nothing is written.</p>
<p>Reviews are kept beside the map, in <code>reviews.csv</code>, and applied on every rerun:
a plain <code>sunset redirects CRAWL_DIR</code> reuses the last run's inventory, install
folder, profile and reviews (it says so). To undo one review, set its row back to the
proposed target in a plain <code>old,new</code> list, or delete its line from
<code>reviews.csv</code>; <code>--clear-reviews</code> forgets them all.
Then check the result with <code>sunset redirects check CRAWL_DIR</code> and look at this
report again.</p>
""".strip()


def _document(
    db: sqlite3.Connection,
    stats: _Stats,
    refused: Sequence[Refused],
    collisions: Sequence[Collision],
    summary: Mapping[str, object],
    low_confidence: float,
    list_limit: int,
) -> Iterator[str]:
    """The page, a piece at a time: the review lists alone run to megabytes."""
    site = summary.get("site") or summary.get("site name") or summary.get("legacy host") or ""
    heading = f"Redirect report{f' — {_clip(str(site))}' if site else ''}"

    unmatched, low, archived, every = stats.unmatched, stats.low, stats.archived, stats.every
    # (id, title, the section's HTML pieces), made only when written.
    sections: list[tuple[str, str, Callable[[], Iterable[str]]]] = [
        ("summary", "Summary", lambda: [_summary_html(summary)]),
        ("methods", "Counts by method", lambda: [_methods_html(stats)]),
        ("confidence", "Confidence", lambda: [_histogram_svg(stats.bins, low_confidence)]),
        (
            "unmatched",
            f"Needs review: unmatched — {unmatched.pages:,} pages, {unmatched.urls:,} URLs",
            lambda: itertools.chain(
                [
                    "<p>No successor page was found and no archived copy is held: these go to "
                    "a parent page or the home page, a guess. Most variants first.</p>"
                ],
                _entries_html(db, unmatched, "unmatched", low_confidence),
            ),
        ),
        (
            "low",
            f"Needs review: confidence below {low_confidence:g} — "
            f"{low.pages:,} pages, {low.urls:,} URLs",
            lambda: itertools.chain(
                [
                    "<p>A successor was proposed but the evidence is weak. Least confident first.</p>"
                ],
                _entries_html(db, low, "low", low_confidence),
            ),
        ),
        (
            "archived",
            f"Archived, as planned — {archived.pages:,} pages, {archived.urls:,} URLs",
            lambda: itertools.chain(
                [
                    "<p>No page of the new site holds these, so each goes to its archived "
                    "copy: the intended outcome for a page nobody replaced, not a failure. "
                    "The pages whose best candidate came closest come first, for a reviewer "
                    "who knows better.</p>"
                ],
                _entries_html(db, archived, "archived", low_confidence),
            ),
        ),
        (
            "pages",
            f"Every page — {every.pages:,} pages, {every.urls:,} URLs",
            lambda: itertools.chain(
                [
                    "<p>Every legacy page, least confident first; narrow it with the filters "
                    "at the top.</p>"
                ],
                _entries_html(db, every, "pages", low_confidence),
            ),
        ),
        (
            "refused",
            f"Refused — {len(refused):,}",
            lambda: [
                "<p>URLs or overrides left out of the generated configuration, with the reason.</p>"
                + _refused_html(refused, list_limit)
            ],
        ),
        (
            "collisions",
            f"Case collisions — {len(collisions):,}",
            lambda: [
                "<p>Legacy URLs that differ only in case; nginx cannot tell them apart, so only "
                "one target is written for each key. Keys left out first.</p>"
                + _collisions_html(collisions, list_limit)
            ],
        ),
        ("howto", "How to correct", lambda: [_HOWTO]),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title.split(" —")[0])}</a>' for sid, title, _ in sections)
    yield (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(heading)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{esc(heading)}</h1><nav>{nav}</nav>{_filters_html(stats)}"
    )
    for sid, title, html in sections:
        yield f'<section id="{sid}"><h2>{esc(title)}</h2>'
        yield from html()
        yield "</section>"
    yield f"<script>{_SCRIPT}</script></body></html>\n"


def write_report(
    path: Path,
    rows: Iterable[Row],
    refused: Sequence[Refused],
    collisions: Sequence[Collision],
    summary: Mapping[str, object],
    low_confidence: float = 0.6,
    list_limit: int = 2000,
    archive_prefix: str = "",
) -> None:
    """Write report.html for reviewers: counts, a confidence chart and what to check.

    ``rows`` is consumed once and may be a generator of any length. A row
    whose target starts with ``archive_prefix`` (the web archive) is listed
    with the archived pages, as planned, whatever step sent it there.
    """
    # Rows per legacy URL and page wait on disk (redirects.store), so a
    # report of any size takes the same memory.
    path = Path(path)
    with closing(open_scratch()) as db:
        stats = _aggregate(db, rows, low_confidence, list_limit, archive_prefix)
        with replacing(path, "w", encoding="utf-8") as fh:
            for piece in _document(
                db, stats, refused, collisions, summary, low_confidence, list_limit
            ):
                fh.write(piece)
