"""The review loop of `sunset redirects` (issue 15), end to end on one replica build.

A reviewer reads the top candidates in redirects.csv and report.html, edits
the CSV, feeds the whole file back, and reruns later without repeating the
inputs. Every test runs the real `sunset` command and reads only what it
wrote. The replica, its crawls and the transform are built once per module;
each test writes into its own output folder (or its own copy of the crawl).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import crawled_replica

NEW_HOST = "healthierwigan.nhs.uk"
ARCHIVE_HOST = "webarchive.nationalarchives.gov.uk"
CANDIDATE_COLUMNS = [
    f"candidate_{n}{suffix}" for n in (1, 2, 3) for suffix in ("", "_title", "_score")
]


def sunset(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("review")
    _, legacy, new = crawled_replica(root, 80, 7)
    out = root / "first"
    result = sunset("redirects", str(legacy), "--new-crawl", str(new), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return {"root": root, "crawl": legacy, "new": new, "out": out}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def build(site: dict[str, Path], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return sunset(
        "redirects", str(site["crawl"]), "--new-crawl", str(site["new"]), "--out", str(out), *extra
    )


def copy_crawl(site: dict[str, Path], to: Path) -> Path:
    shutil.copytree(site["crawl"], to, ignore=shutil.ignore_patterns("redirects"))
    return to


# --------------------------------------------------------------------------- candidates


def test_csv_carries_three_candidates_after_note(site: dict[str, Path]) -> None:
    with open(site["out"] / "redirects.csv", encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[header.index("note") + 1 :] == CANDIDATE_COLUMNS
    rows = read_rows(site["out"] / "redirects.csv")
    with_any = 0
    for r in rows:
        urls = [r[f"candidate_{n}"] for n in (1, 2, 3)]
        scores = [r[f"candidate_{n}_score"] for n in (1, 2, 3)]
        # Filled from the first column on, a score beside every URL, best first.
        filled = [u for u in urls if u]
        assert urls[: len(filled)] == filled, r
        assert all(bool(u) == bool(s) for u, s in zip(urls, scores, strict=True)), r
        values = [float(s) for s in scores if s]
        assert all(0.0 <= v <= 1.0 for v in values), r
        assert values == sorted(values, reverse=True), r
        assert len(set(filled)) == len(filled), r
        for u in filled:
            assert u.split("/")[2] == NEW_HOST, r
        with_any += bool(filled)
    assert with_any >= len(rows) // 3, "most pages have something to pick from"


def test_a_matched_page_lists_its_target_first(site: dict[str, Path]) -> None:
    rows = read_rows(site["out"] / "redirects.csv")
    matched = [r for r in rows if r["method"] in ("exact", "slug", "title", "content")]
    assert len(matched) >= 20
    first = [r for r in matched if r["candidate_1"] == r["new"]]
    assert len(first) >= 0.9 * len(matched), [
        (r["old"], r["new"], r["candidate_1"]) for r in matched if r not in first
    ][:5]
    # A page of the new site has a title to show; the target's is the one matched.
    titled = [r for r in first if r["candidate_1_title"]]
    assert len(titled) >= 0.9 * len(first)


def test_report_shows_candidates_and_filters(site: dict[str, Path]) -> None:
    text = (site["out"] / "report.html").read_text(encoding="utf-8")
    rows = read_rows(site["out"] / "redirects.csv")
    for control in ('id="f-method"', 'id="f-section"', 'id="f-min"', 'id="f-max"'):
        assert control in text, control
    # Archived pages are listed as planned, with what a reviewer could pick instead.
    assert 'id="archived-list"' in text
    assert re.search(r'<tr data-method="archive" data-section="[^"]*" data-conf="0\.50"', text)
    assert 'class="cands"' in text
    # Nothing that ends at the archive is listed as a failure or as weak.
    for name in ("unmatched", "low"):
        listed = re.search(rf'id="{name}-list".*?</table>', text, re.S)
        assert listed is None or ARCHIVE_HOST not in listed.group(0), name
    assert any(r["method"] == "redirect" and ARCHIVE_HOST in r["new"] for r in rows)
    # Every page can be narrowed: one filterable entry per legacy page.
    listed = re.search(r'id="pages-list".*?</table>', text, re.S)
    assert listed is not None
    groups = {r["group"] for r in rows}
    assert listed.group(0).count("<tr data-method=") == len(groups)


# --------------------------------------------------------------------------- round trip


def test_whole_csv_fed_back_unchanged_changes_nothing(
    site: dict[str, Path], tmp_path: Path
) -> None:
    edited = tmp_path / "edited.csv"
    shutil.copy(site["out"] / "redirects.csv", edited)
    out = tmp_path / "r"
    result = build(site, out, "--overrides", str(edited))
    assert result.returncode == 0, result.stderr
    before = read_rows(site["out"] / "redirects.csv")
    after = read_rows(out / "redirects.csv")
    assert [r["old"] for r in after] == [r["old"] for r in before]
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert not changed, changed[:3]
    assert not any(r["method"] == "override" for r in after)
    assert (out / "reviews.csv").read_text(encoding="utf-8").count("\n") == 1, "header only"
    # Rows the crawl never saw (a CMS's other URL forms of an id) and special targets
    # (feeds) are this run's own rows too, not reviews of URLs outside the crawl.
    assert any(r["note"].startswith("another URL of the page") for r in before)
    assert any(r["method"] == "special" for r in before)


def test_an_edited_url_form_row_is_a_review(site: dict[str, Path], tmp_path: Path) -> None:
    rows = read_rows(site["out"] / "redirects.csv")
    pick = next(r for r in rows if r["note"].startswith("another URL of the page"))
    target = next(r["new"] for r in rows if r["new"] != pick["new"] and NEW_HOST in r["new"])
    edited = write_rows(
        tmp_path / "edited.csv", [dict(r, new=target) if r is pick else r for r in rows]
    )
    out = tmp_path / "r"
    result = build(site, out, "--overrides", str(edited))
    assert result.returncode == 0, result.stderr
    after = {r["old"]: r for r in read_rows(out / "redirects.csv")}
    assert (after[pick["old"]]["new"], after[pick["old"]]["method"]) == (target, "override")
    changed = [r["old"] for r in rows if after[r["old"]]["new"] != r["new"]]
    assert changed == [pick["old"]]


def test_one_edited_row_becomes_the_only_override(site: dict[str, Path], tmp_path: Path) -> None:
    rows = read_rows(site["out"] / "redirects.csv")
    first: dict[str, str] = {}
    for r in rows:
        first.setdefault(r["group"], r["old"])
    # Not the first URL of its page (a print view, an index.php form): the row a
    # reviewer happens to edit need not be the page's own URL.
    pick = [
        r
        for r in rows
        if r["method"] == "archive" and r["candidate_1"] and first[r["group"]] != r["old"]
    ][-1]
    target = pick["candidate_1"]
    edited_rows = [dict(r, new=target) if r["old"] == pick["old"] else r for r in rows]
    edited = write_rows(tmp_path / "edited.csv", edited_rows)
    out = tmp_path / "r"
    result = build(site, out, "--overrides", str(edited))
    assert result.returncode == 0, result.stderr
    after = {r["old"]: r for r in read_rows(out / "redirects.csv")}
    assert after[pick["old"]]["new"] == target
    assert after[pick["old"]]["method"] == "override"
    assert after[pick["old"]]["confidence"] == "1.000"
    # The page's other URLs (its own, print view, index.php form...) follow.
    # A feed of the page is no copy of it: it keeps going to the new site's feed.
    group = [r for r in rows if r["group"] == pick["group"] and r["method"] != "special"]
    assert len(group) > 1 and group[0]["old"] != pick["old"]
    for r in group:
        assert after[r["old"]]["new"] == target, r["old"]
    others = [r for r in rows if r not in group]
    for r in others:
        got = after[r["old"]]
        assert (got["new"], got["method"], got["confidence"]) == (
            r["new"],
            r["method"],
            r["confidence"],
        ), r["old"]
    reviews = read_rows(out / "reviews.csv")
    assert [(r["old"], r["new"]) for r in reviews] == [(pick["old"], target)]
    assert f"{edited}:" in reviews[0]["note"]


# --------------------------------------------------------------------------- bad overrides


@pytest.mark.parametrize(
    ("new", "old", "message"),
    [
        ("https://evil.example/phish", None, "evil.example"),
        ("http://[::1/broken", None, "not a valid URL"),
        ("javascript:alert(1)", None, "not an absolute http(s) URL"),
        ("/contact-us/", "https://elsewhere.example/x", "not a legacy URL"),
        ("/contact-us/", "not a url", "not an absolute http(s) URL"),
        ("/contact-us/", "http://www.wiganboroughccg.nhs.uk/no-such-page-crawled", "not in"),
    ],
)
def test_bad_override_is_one_line_exit_2_and_nothing_is_written(
    site: dict[str, Path], tmp_path: Path, new: str, old: str | None, message: str
) -> None:
    out = tmp_path / "r"
    shutil.copytree(site["out"], out)
    before = snapshot(out)
    rows = read_rows(site["out"] / "redirects.csv")
    line = 5  # the header is line 1
    bad = dict(rows[line - 2], new=new)
    if old is not None:
        bad["old"] = old
    edited = write_rows(tmp_path / "edited.csv", [*rows[: line - 2], bad, *rows[line - 1 :]])
    result = build(site, out, "--overrides", str(edited))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # Progress chatter may come first (a loop shows only once the pages are matched).
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("sunset: error: "), result.stderr
    assert f"{edited}: line {line}:" in errors[0], result.stderr
    assert message in errors[0], result.stderr
    assert snapshot(out) == before


def test_override_loop_is_an_error_too(site: dict[str, Path], tmp_path: Path) -> None:
    rows = read_rows(site["out"] / "redirects.csv")
    c, d = [r for r in rows if r["method"] in ("exact", "slug", "content")][:2]
    edited = tmp_path / "loop.csv"
    edited.write_text(f"old,new\n{c['old']},{d['old']}\n{d['old']},{c['old']}\n")
    out = tmp_path / "r"
    result = build(site, out, "--overrides", str(edited))
    assert result.returncode == 2, result.stderr
    assert re.search(rf"{re.escape(str(edited))}: line [23]: .*loop", result.stderr), result.stderr
    assert not (out / "redirects.csv").exists()


# --------------------------------------------------------------------------- reruns


def test_rerun_remembers_inputs_and_reviews(site: dict[str, Path], tmp_path: Path) -> None:
    crawl = copy_crawl(site, tmp_path / "crawl")
    rows = read_rows(site["out"] / "redirects.csv")
    pick = next(r for r in rows if r["method"] == "archive" and r["candidate_1"])
    edited = tmp_path / "edited.csv"
    edited.write_text(f"old,new\n{pick['old']},{pick['candidate_1']}\n", encoding="utf-8")
    result = sunset(
        "redirects", str(crawl), "--new-crawl", str(site["new"]), "--overrides", str(edited)
    )
    assert result.returncode == 0, result.stderr
    first = (crawl / "redirects" / "redirects.csv").read_bytes()
    edited.unlink()  # the decisions live beside the crawl now, not in the reviewer's file

    # From another folder, with nothing but the crawl: same inputs, same reviews.
    result = sunset("redirects", str(crawl), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--new-crawl" in result.stderr and str(site["new"]) in result.stderr, result.stderr
    assert "1 stored review" in result.stderr, result.stderr
    assert (crawl / "redirects" / "redirects.csv").read_bytes() == first

    # Another inventory given on the command line replaces the recorded one.
    sitemap = tmp_path / "sitemap.xml"
    urls = [json.loads(line)["url"] for line in (site["new"] / "pages.jsonl").open()]
    sitemap.write_text(
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(f"<url><loc>{u}</loc></url>" for u in urls)
        + "</urlset>"
    )
    result = sunset("redirects", str(crawl), "--new-sitemap", str(sitemap))
    assert result.returncode == 0, result.stderr
    assert "--new-crawl" not in result.stderr, result.stderr
    after = {r["old"]: r for r in read_rows(crawl / "redirects" / "redirects.csv")}
    assert "content" not in {r["method"] for r in after.values()}, "a sitemap has no text"
    assert after[pick["old"]]["method"] == "override", "reviews outlive a change of inventory"
    inputs = json.loads((crawl / "redirects" / "inputs.json").read_text())
    assert inputs["new_sitemap"] == str(sitemap) and inputs["new_crawl"] is None

    # --clear-reviews forgets the reviewers' decisions: the matcher's answer is back.
    result = sunset("redirects", str(crawl), "--new-crawl", str(site["new"]), "--clear-reviews")
    assert result.returncode == 0, result.stderr
    after = {r["old"]: r for r in read_rows(crawl / "redirects" / "redirects.csv")}
    assert after[pick["old"]]["method"] == "archive"
    assert read_rows(crawl / "redirects" / "reviews.csv") == []


def test_a_row_set_back_to_the_proposal_undoes_its_review(
    site: dict[str, Path], tmp_path: Path
) -> None:
    rows = read_rows(site["out"] / "redirects.csv")
    pick = next(r for r in rows if r["method"] == "archive" and r["candidate_1"])
    out = tmp_path / "r"
    first = tmp_path / "first.csv"
    first.write_text(f"old,new\n{pick['old']},{pick['candidate_1']}\n", encoding="utf-8")
    assert build(site, out, "--overrides", str(first)).returncode == 0
    assert len(read_rows(out / "reviews.csv")) == 1
    # A second file for other URLs adds to the stored reviews...
    other = next(r for r in rows if r["method"] == "archive" and r["group"] != pick["group"])
    second = tmp_path / "second.csv"
    second.write_text(f"old,new\n{other['old']},/contact-us/\n", encoding="utf-8")
    assert build(site, out, "--overrides", str(second)).returncode == 0
    assert {r["old"] for r in read_rows(out / "reviews.csv")} == {pick["old"], other["old"]}
    # Feeding a whole CSV again, an older one (the proposal, method column and all) or
    # the one this run wrote (method 'override'), keeps both: unchanged rows decide nothing.
    for whole in (site["out"] / "redirects.csv", out / "redirects.csv"):
        shutil.copy(whole, tmp_path / "whole.csv")
        result = build(site, out, "--overrides", str(tmp_path / "whole.csv"))
        assert result.returncode == 0, result.stderr
        assert {r["old"] for r in read_rows(out / "reviews.csv")} == {pick["old"], other["old"]}
    # ...and the proposed target written back in a plain old,new list removes one.
    undo = tmp_path / "undo.csv"
    undo.write_text(f"old,new\n{pick['old']},{pick['new']}\n", encoding="utf-8")
    result = build(site, out, "--overrides", str(undo))
    assert result.returncode == 0, result.stderr
    assert [r["old"] for r in read_rows(out / "reviews.csv")] == [other["old"]]
    after = {r["old"]: r for r in read_rows(out / "redirects.csv")}
    assert after[pick["old"]]["method"] == "archive"
    assert after[other["old"]]["method"] == "override"
