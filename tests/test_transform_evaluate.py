"""transform.evaluate: the arithmetic of the scores, on small hand-made truth and pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from transform.evaluate import contains, evaluate, main, prf, tokens

SITE = "http://www.example.org"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def truth_page(
    path: str,
    main: list[tuple[str, str]],
    *,
    urls: list[str] | None = None,
    content: bool = True,
    kind: str = "article",
    boilerplate: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> dict:
    blocks = [{"type": t, "text": s} for t, s in main]
    return {
        "id": path.strip("/") or "home",
        "kind": kind,
        "url": SITE + path,
        "urls": urls if urls is not None else [SITE + path],
        "content_page": content,
        "main": blocks,
        "main_text": "\n".join(b["text"] for b in blocks),
        "boilerplate": [{"name": n, "text": s} for n, s in boilerplate],
    }


def page(path: str, text: str, *, legacy: list[str] | None = None, kind: str = "content") -> dict:
    return {
        "url": SITE + path,
        "legacy_urls": legacy if legacy is not None else [SITE + path],
        "kind": kind,
        "text": text,
    }


# --------------------------------------------------------------------------
# tokens and prf


def test_tokens_lowercase_unicode_and_numbers() -> None:
    assert tokens("Café, 4,000 people—Wigan's NHS!") == [
        "café",
        "4",
        "000",
        "people",
        "wigan",
        "s",
        "nhs",
    ]
    assert tokens("  \n ") == []


def test_prf_multiset_arithmetic() -> None:
    # Expected a a a b c, got a a b b d e: the overlap is a twice and b once
    # (as sets it would be 2), 3 of 6 returned and 3 of 5 expected.
    p, r, f = prf("a a a b c", "A a b b d e")
    assert p == pytest.approx(3 / 6)
    assert r == pytest.approx(3 / 5)
    assert f == pytest.approx(2 * 0.5 * 0.6 / 1.1)


def test_prf_identical_ignores_punctuation_and_layout() -> None:
    assert prf("Hello, world.\nSecond line", "hello world second   line") == (1.0, 1.0, 1.0)


def test_prf_edge_cases() -> None:
    assert prf("", "") == (1.0, 1.0, 1.0)
    assert prf("...", "  ") == (1.0, 1.0, 1.0)  # no tokens on either side
    assert prf("some text", "") == (0.0, 0.0, 0.0)
    assert prf("", "some text") == (0.0, 0.0, 0.0)
    assert prf("alpha beta", "gamma delta") == (0.0, 0.0, 0.0)


def test_contains_is_whole_token() -> None:
    norm = "the careful plan"
    assert contains(norm, "Careful plan.")
    assert not contains(norm, "care")
    assert not contains(norm, "")


# --------------------------------------------------------------------------
# evaluate


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "truth.jsonl",
        [
            # 1: extracted exactly, but the template's tagline and footer stay in.
            truth_page(
                "/a",
                [("title", "Alpha"), ("p", "one two three four")],
                boilerplate=[
                    ("tagline", "We plan local NHS services"),
                    ("footer", "Copyright 2019 the CCG Accessibility"),
                    ("pager", "Prev Next"),  # < 4 tokens: not checked
                ],
            ),
            # 2: half of it lost; found through a variant URL, not its primary one.
            truth_page(
                "/b",
                [("title", "Beta"), ("p", "five six seven eight"), ("li", "nine ten")],
                urls=[SITE + "/index.php?id=2", SITE + "/b"],
                boilerplate=[("tagline", "We plan local NHS services")],
            ),
            # 3: not extracted at all.
            truth_page("/c", [("title", "Gamma"), ("h3", "lost heading here")]),
            # 4: a listing page, recognised; 5: a listing page taken for content.
            truth_page("/news", [("title", "News")], content=False, kind="category"),
            truth_page("/events", [("p", "calendar")], content=False, kind="events"),
        ],
    )


def test_evaluate_scores(truth: Path, tmp_path: Path) -> None:
    pages = [
        page(
            "/a",
            "Alpha\none two three four\nWe plan local NHS services\nCopyright 2019 the CCG Accessibility",
        ),
        # Primary URL differs from the truth's: matched through legacy_urls.
        page("/b-new", "Beta\nfive six extra", legacy=[SITE + "/index.php?id=2"]),
        page("/news", "News", kind="listing"),
        page("/events", "calendar"),
    ]
    rep = evaluate(truth, pages)

    assert (rep.truth_pages, rep.content_pages, rep.matched) == (5, 3, 2)
    assert rep.missing == [SITE + "/c"]

    a, b, c = rep.pages
    # a: expected alpha one two three four (5); got those + 5 tagline + 5 footer.
    assert (a.expected_tokens, a.got_tokens, a.overlap) == (5, 15, 5)
    assert (a.precision, a.recall) == (pytest.approx(1 / 3), 1.0)
    assert a.f1 == pytest.approx(0.5)
    # b: expected beta five six seven eight nine ten (7); got beta five six extra (4).
    assert (b.expected_tokens, b.got_tokens, b.overlap) == (7, 4, 3)
    assert b.precision == pytest.approx(0.75)
    assert b.recall == pytest.approx(3 / 7)
    assert b.f1 == pytest.approx(2 * 0.75 * (3 / 7) / (0.75 + 3 / 7), abs=1e-6)
    assert b.matched_url == SITE + "/b-new"
    # c: missing, all zeros, its 4 tokens still count against recall.
    assert (c.found, c.expected_tokens, c.f1) == (False, 4, 0.0)

    # micro: overlap 5 + 3 + 0, got 15 + 4 + 0, expected 5 + 7 + 4.
    assert rep.micro_precision == pytest.approx(8 / 19, abs=1e-6)
    assert rep.micro_recall == pytest.approx(8 / 16, abs=1e-6)
    micro_f1 = 2 * (8 / 19) * 0.5 / (8 / 19 + 0.5)
    assert rep.micro_f1 == pytest.approx(micro_f1, abs=1e-6)
    assert rep.macro_f1 == pytest.approx((0.5 + b.f1 + 0.0) / 3, abs=1e-6)

    # paragraphs: a's p kept; b's p (partly there) and li lost; c's h3 lost.
    assert rep.paragraphs_checked == 4
    assert rep.paragraphs_lost == 3
    assert [(x["url"], x["type"]) for x in rep.lost] == [
        (SITE + "/b", "p"),
        (SITE + "/b", "li"),
        (SITE + "/c", "h3"),
    ]

    # boilerplate: a's tagline and footer left in, b's tagline removed; c is
    # missing and "Prev Next" too short, so neither is checked.
    assert rep.boilerplate_checked == 3
    assert rep.boilerplate_removed == 1
    assert rep.boilerplate_removed_share == pytest.approx(1 / 3, abs=1e-6)
    assert rep.boilerplate_leftovers == {"footer": 1, "tagline": 1}
    assert rep.boilerplate_checked_by_name == {"footer": 1, "tagline": 2}

    assert (rep.listing_pages, rep.listing_correct, rep.listing_accuracy) == (2, 1, 0.5)
    assert rep.listing_missing == []
    assert rep.content_as_listing == []


def test_evaluate_perfect_from_file(truth: Path, tmp_path: Path) -> None:
    rows = []
    for line in truth.read_text().splitlines():
        t = json.loads(line)
        kind = "content" if t["content_page"] else "listing"
        rows.append(
            {"url": t["url"], "legacy_urls": t["urls"], "kind": kind, "text": t["main_text"]}
        )
    rep = evaluate(truth, write_jsonl(tmp_path / "pages.jsonl", rows))
    assert (rep.micro_f1, rep.macro_f1, rep.paragraphs_lost) == (1.0, 1.0, 0)
    assert rep.missing == []
    assert rep.boilerplate_removed_share == 1.0
    assert rep.listing_accuracy == 1.0


def test_evaluate_nothing_extracted(truth: Path) -> None:
    rep = evaluate(truth, [])
    assert rep.matched == 0
    assert len(rep.missing) == 3
    assert (rep.micro_precision, rep.micro_recall, rep.micro_f1, rep.macro_f1) == (0, 0, 0, 0)
    assert rep.paragraphs_lost == rep.paragraphs_checked == 4
    # Nothing to check on pages that are not there.
    assert rep.boilerplate_checked == 0
    assert rep.boilerplate_removed_share is None
    assert rep.listing_accuracy == 0.0
    assert rep.listing_missing == [SITE + "/news", SITE + "/events"]


def test_content_page_called_listing(truth: Path) -> None:
    rep = evaluate(truth, [page("/a", "Alpha one two three four", kind="listing")])
    assert rep.content_as_listing == [SITE + "/a"]
    assert rep.pages[0].f1 == 1.0  # still scored on its text


def test_report_dict_and_cli(
    truth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = write_jsonl(tmp_path / "pages.jsonl", [page("/a", "Alpha one two three four")])
    out = tmp_path / "report.json"
    assert main(["--truth", str(truth), "--pages", str(pages), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "micro P / R / F1" in printed
    # micro: all 5 tokens right, 5 of the 16 expected recalled
    assert "1.0000 / 0.3125 / 0.4762" in printed
    data = json.loads(out.read_text())
    assert data["missing"] == [SITE + "/b", SITE + "/c"]
    assert data["pages"][0]["f1"] == 1.0
    assert data["micro_recall"] == pytest.approx(5 / 16)
