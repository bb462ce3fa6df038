"""report.html: counts, chart, review lists, and that crawled text cannot escape into markup."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from redirects.model import Collision, Refused, Row
from redirects.report import write_report

OLD = "https://old.example"
NEW = "https://new.example"


class _Scan(HTMLParser):
    """Collects what the safety and structure checks look at."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.rels: list[str | None] = []
        self.scripts: list[str] = []
        self.metas: list[dict[str, str | None]] = []
        self.external: list[str] = []
        self.rows_by_table: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cells: list[str] | None = None
        self._in_script = False
        self._depth_td = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self.hrefs.append(a.get("href") or "")
            self.rels.append(a.get("rel"))
        if tag == "meta":
            self.metas.append(a)
        if tag in ("img", "link", "iframe", "object", "embed") or (
            tag == "script" and a.get("src")
        ):
            self.external.append(tag)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.rows_by_table[self._table] = []
        if tag == "tr" and self._table:
            self._cells = []
        if tag == "td" and self._cells is not None:
            self._depth_td += 1
            if self._depth_td == 1:
                self._cells.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag == "td" and self._cells is not None:
            self._depth_td -= 1
        if tag == "tr" and self._table and self._cells:
            self.rows_by_table[self._table].append(self._cells)
            self._cells = None
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        if self._cells is not None and self._cells:
            self._cells[-1] += data


def _render(tmp_path: Path, rows: list[Row] | Iterator[Row], **kwargs: object) -> str:
    path = tmp_path / "report.html"
    write_report(
        path,
        rows,
        kwargs.pop("refused", []),  # type: ignore[arg-type]
        kwargs.pop("collisions", []),  # type: ignore[arg-type]
        kwargs.pop("summary", {"site": "Example"}),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return path.read_text(encoding="utf-8")


def _scan(text: str) -> _Scan:
    scan = _Scan()
    scan.feed(text)
    scan.close()
    return scan


def _svg(text: str) -> ET.Element:
    match = re.search(r"<svg\b.*?</svg>", text, re.S)
    assert match, "the chart is inline SVG"
    return ET.fromstring(match.group(0))


def _row(path: str, method: str, conf: float, group: str = "", **kw: object) -> Row:
    return Row(
        old=OLD + path,
        new=NEW + "/" + method,
        method=method,
        confidence=conf,
        group=group or path,
        **kw,  # type: ignore[arg-type]
    )


def test_counts_by_method_count_urls_and_groups(tmp_path: Path) -> None:
    rows = [
        _row("/a", "exact", 1.0, "a"),
        _row("/a?print=1", "exact", 1.0, "a"),
        _row("/b", "exact", 1.0, "b"),
        _row("/c", "title", 0.8, "c"),
        _row("/d", "title", 0.6, "d"),
        _row("/e", "home", 0.1, "e"),
    ]
    text = _render(tmp_path, rows)
    by_method = {
        m: re.search(rf'data-method="{m}">(.*?)</tr>', text).group(1)  # type: ignore[union-attr]
        for m in ("exact", "title", "home")
    }
    cells = {m: re.findall(r'<td class="n">([^<]*)</td>', row) for m, row in by_method.items()}
    assert cells["exact"] == ["3", "2", "50.0%", "1.00"]
    assert cells["title"] == ["2", "2", "33.3%", "0.70"]
    assert cells["home"] == ["1", "1", "16.7%", "0.10"]
    assert 'data-method="slug"' not in text, "zero counts are skipped"
    # The METHODS order, not the order of arrival.
    assert text.index('data-method="exact"') < text.index('data-method="title"')
    assert text.index('data-method="title"') < text.index('data-method="home"')
    assert len(_scan(text).rows_by_table["unmatched-list"]) == 1


def test_summary_keys_are_all_rendered(tmp_path: Path) -> None:
    summary = {"site": "Wigan", "legacy host": "www.old.example", "pages": 12345, "accuracy": 0.9}
    text = _render(tmp_path, [], summary=summary)
    for key in summary:
        assert f"<th>{key}</th>" in text
    assert "12,345" in text
    assert "0.9" in text


def test_hostile_text_is_escaped_and_only_web_urls_are_links(tmp_path: Path) -> None:
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    rows = [
        Row(
            old="javascript:alert(1)",
            new="data:text/html,<script>alert(3)</script>",
            method="home",
            confidence=0.1,
            title=hostile,
            note=hostile,
        ),
        Row(
            old=OLD + "/x", new="JavaScript:alert(4)", method="title", confidence=0.2, title=hostile
        ),
        Row(old=OLD + "/ok", new=NEW + "/ok", method="title", confidence=0.3, title="fine"),
    ]
    refused = [Refused(old="vbscript:x", new="https://evil.example/", reason=hostile)]
    collisions = [Collision("path", "<b>", ["javascript:1"], [hostile], "")]
    text = _render(
        tmp_path, rows, refused=refused, collisions=collisions, summary={"<site>": hostile}
    )
    scan = _scan(text)
    assert len(scan.scripts) == 1, "only the report's own filter script"
    assert "alert" not in scan.scripts[0]
    assert not scan.external, "no images, frames or external resources"
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img" not in text
    for href in scan.hrefs:
        assert href.startswith(("http://", "https://", "#")), href
    assert OLD + "/ok" in scan.hrefs
    assert "https://evil.example/" in scan.hrefs
    for href, rel in zip(scan.hrefs, scan.rels, strict=True):
        if not href.startswith("#"):
            assert rel == "noreferrer noopener"
    # Shown as text so reviewers can still see and fix it.
    assert "javascript:alert(1)" in text
    csp = [m for m in scan.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    policy = csp[0]["content"] or ""
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "script-src 'sha256-" in policy


def test_unmatched_variants_of_one_page_are_one_entry(tmp_path: Path) -> None:
    # "home", not "archive": an archived page is planned, not unmatched (issue 15).
    rows = [_row(f"/page?sid={i}", "home", 0.0, "page", title="Old page") for i in range(1, 20)]
    rows.insert(7, _row("/page", "home", 0.0, "page", title="Old page"))
    rows += [_row("/other", "parent", 0.2, title="Other"), _row("/z", "home", 0.1)]
    text = _render(tmp_path, rows)
    entries = _scan(text).rows_by_table["unmatched-list"]
    assert len(entries) == 3
    first = entries[0]
    assert first[1] == "Old page"
    assert first[2].startswith(OLD + "/page+19 variants"), "the shortest URL stands for the page"
    assert "3 pages, 22 URLs" in text
    # Then by URL among single pages.
    assert entries[1][2] == OLD + "/other"
    assert entries[2][2] == OLD + "/z"
    assert entries[2][1] == "(no title)"


def test_low_confidence_is_listed_least_confident_first(tmp_path: Path) -> None:
    rows = [
        _row("/b", "content", 0.5),
        _row("/a", "title", 0.3),
        _row("/c", "slug", 0.59),
        _row("/d", "slug", 0.6),  # at the threshold: not low
        _row("/e", "exact", 0.95),
        _row("/f", "home", 0.05),  # unmatched, listed there instead
    ]
    entries = _scan(_render(tmp_path, rows)).rows_by_table["low-list"]
    assert [e[2] for e in entries] == [OLD + "/a", OLD + "/b", OLD + "/c"]
    assert [e[5] for e in entries] == ["0.30", "0.50", "0.59"]
    assert [
        e[1] for e in _scan(_render(tmp_path, rows, low_confidence=0.4)).rows_by_table["low-list"]
    ] == ["(no title)"]


def test_lists_are_capped_with_a_pointer_to_the_csv(tmp_path: Path) -> None:
    rows = [_row(f"/u{i:03}", "home", 0.0) for i in range(30)]
    rows += [_row(f"/l{i:03}", "title", i / 100) for i in range(30)]
    refused = [Refused(OLD + f"/r{i}", NEW, "no reason") for i in range(12)]
    text = _render(tmp_path, rows, refused=refused, list_limit=10)
    tables = _scan(text).rows_by_table
    assert len(tables["unmatched-list"]) == 10
    assert len(tables["low-list"]) == 10
    assert len(tables["refused-list"]) == 10
    assert "20 more pages (20 URLs) in redirects.csv" in text
    assert text.count("more pages (20 URLs) in redirects.csv") == 2
    assert "2 more refused" in text
    # The cap keeps the least confident.
    assert tables["low-list"][0][5] == "0.00"
    assert tables["low-list"][-1][5] == "0.09"


def test_collisions_show_urls_targets_and_what_was_kept(tmp_path: Path) -> None:
    collisions = [
        Collision("path", "/about", [OLD + "/About", OLD + "/about"], [NEW + "/a", NEW + "/b"], ""),
        Collision("path", "/news", [OLD + "/News", OLD + "/news"], [NEW + "/n"] * 2, NEW + "/n"),
    ]
    text = _render(tmp_path, [], collisions=collisions)
    entries = _scan(text).rows_by_table["collisions-list"]
    assert [e[2] for e in entries] == ["/about", "/news"], "keys left out first"
    assert "left out" in entries[0][4]
    assert NEW + "/b" in entries[0][3]


def test_empty_input_renders(tmp_path: Path) -> None:
    text = _render(tmp_path, iter([]), summary={})
    assert text.startswith("<!DOCTYPE html>")
    assert "No rows." in text
    assert "How to correct" in text
    assert "sunset redirects check CRAWL_DIR" in text
    assert "--overrides edited.csv" in text
    svg = _svg(text)
    assert svg.tag.endswith("svg")
    assert "no rows" in ET.tostring(svg, encoding="unicode")


def test_histogram_is_well_formed_and_labelled(tmp_path: Path) -> None:
    rows = [_row(f"/{i}", "exact", 1.0) for i in range(7)]
    rows += [_row(f"/t{i}", "title", 0.55) for i in range(3)]
    rows += [_row("/h", "home", 0.0), _row("/nan", "slug", float("nan"))]
    svg = _svg(_render(tmp_path, rows))
    ns = "{http://www.w3.org/2000/svg}"
    counts = [t.text for t in svg.iter(f"{ns}text") if t.get("class") == "count"]
    assert counts == ["2", "3", "7"], "bar totals, 1.0 falls in the last bin, NaN in the first"
    labels = [t.text for t in svg.iter(f"{ns}text")]
    assert "confidence" in labels
    assert "URLs" in labels
    assert "0.0" in labels
    assert "1.0" in labels


def test_100k_rows_render_quickly_and_stay_small(tmp_path: Path) -> None:
    methods = ("exact", "slug", "title", "content", "archive", "home", "section")

    def rows() -> Iterator[Row]:
        for i in range(100_000):
            method = methods[i % len(methods)]
            yield Row(
                old=f"{OLD}/p/{i // 4}?v={i % 4}",
                new=f"{NEW}/{method}/{i // 4}",
                method=method,
                confidence=(i % 101) / 100,
                title=f"Page {i // 4}",
                group=f"g{i // 4}",
                note="containment 0.93 of 14 shingles",
            )

    start = time.perf_counter()
    text = _render(tmp_path, rows())
    elapsed = time.perf_counter() - start
    assert elapsed < 5, elapsed
    assert len(text.encode()) < 10_000_000
    assert "100,000" in text
    _svg(text)
    tables = _scan(text).rows_by_table
    assert len(tables["unmatched-list"]) == 2000
    assert len(tables["low-list"]) == 2000


# --------------------------------------------------------------------------- issue 15


def test_archived_pages_are_planned_not_unmatched(tmp_path: Path) -> None:
    near = ((NEW + "/near", "Near miss", 0.42), (NEW + "/far", "", 0.13))
    rows = [
        _row("/gone", "archive", 0.5, title="Gone"),
        _row("/gone-close", "archive", 0.5, title="Close", candidates=near),
        _row("/guess", "parent", 0.3),
        _row("/kept", "exact", 1.0),
    ]
    text = _render(tmp_path, rows)
    tables = _scan(text).rows_by_table
    assert [e[2] for e in tables["unmatched-list"]] == [OLD + "/guess"]
    # The likeliest missed successor first; its candidates linked with their scores.
    assert [e[2] for e in tables["archived-list"]] == [OLD + "/gone-close", OLD + "/gone"]
    assert tables["archived-list"][0][7] == "Near miss 0.42" + NEW + "/far 0.13"
    assert tables["archived-list"][1][7] == "none"
    assert "Archived, as planned — 2 pages, 2 URLs" in text
    assert "Needs review: unmatched — 1 pages, 1 URLs" in text
    assert NEW + "/near" in _scan(text).hrefs
    # Its own family in the chart: not counted with the guesses.
    assert "archived (planned)" in ET.tostring(_svg(text), encoding="unicode")


def test_an_old_redirect_to_the_archive_is_planned_too(tmp_path: Path) -> None:
    archive = "https://archive.example/wayback/"
    rows = [
        Row(OLD + "/moved", archive + "2019/" + OLD + "/gone", "redirect", 0.5),
        Row(OLD + "/mine", archive + "2019/" + OLD + "/mine", "override", 1.0),
        Row(OLD + "/weak", NEW + "/weak", "redirect", 0.5),
    ]
    tables = _scan(_render(tmp_path, rows, archive_prefix=archive)).rows_by_table
    assert [e[2] for e in tables["archived-list"]] == [OLD + "/moved"]
    assert [e[2] for e in tables["low-list"]] == [OLD + "/weak"]
    # Without knowing the archive, a weak redirect is just weak.
    tables = _scan(_render(tmp_path, rows)).rows_by_table
    assert [e[2] for e in tables["low-list"]] == [OLD + "/moved", OLD + "/weak"]


def test_every_page_is_listed_with_what_the_filters_read(tmp_path: Path) -> None:
    rows = [
        _row("/your-ccg/news/a", "content", 0.76, "a"),
        _row("/your-ccg/news/a?print=1", "content", 0.76, "a"),
        _row("/Your-CCG/b", "exact", 1.0, "b"),
        _row("/c", "archive", 0.5, "c"),
        Row(old="javascript:x", new=NEW, method='"><b>', confidence=0.2),
    ]
    text = _render(tmp_path, rows)
    found = re.findall(
        r'<tr data-method="([^"]*)" data-section="([^"]*)" data-conf="([^"]*)">', text
    )
    every = found[-4:]
    assert sorted(every) == sorted(
        [
            ("&quot;&gt;&lt;b&gt;", "", "0.20"),
            ("archive", "/c", "0.50"),
            ("content", "/your-ccg", "0.76"),
            ("exact", "/your-ccg", "1.00"),
        ]
    )
    assert len(_scan(text).rows_by_table["pages-list"]) == 4, "one entry per page"
    # The controls: every method and section present, once, with its URL count.
    assert '<option value="content">content (2)</option>' in text
    assert '<option value="archive">archive (1)</option>' in text
    assert '<option value="/your-ccg">/your-ccg (3)</option>' in text
    assert 'id="f-min"' in text and 'id="f-max"' in text and 'id="filter"' in text
    # Hidden until the (hashed, inline) script shows them: nothing is fetched.
    assert '<div id="filters" hidden>' in text
    script = _scan(text).scripts[0]
    assert "dataset" in script and "f-section" in script and "fetch" not in script
