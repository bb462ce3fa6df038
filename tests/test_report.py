"""`sunset report` on a real crawl of a small replica, on tampered copies of it, and on bad input."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from html import escape, unescape
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from replay.report import (
    bar_chart_svg,
    collection_name,
    mime_category,
    parse_log_line,
    read_log,
    sha256_file,
    timestamp14,
    write_report,
)
from replica import generate, serve
from sunset.errors import SunsetError

HOST = "http://www.wiganboroughccg.nhs.uk"
# `sunset replay` serves a crawl named "r" (the fixture's --name) as collection "r".
REPLAY_BASE = "http://127.0.0.1:8080/r/"


def sunset(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    site = root / "site"
    generate(site, pages=60, seed=3)
    run = root / "run"
    with serve(site) as srv:
        connect = [a for entry in srv.connect_to for a in ("--connect-to", entry)]
        result = sunset("crawl", "-p", "demo", "--out", str(run), "--name", "r", *connect)
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="module")
def reported(crawl: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    result = sunset("report", str(crawl))
    assert result.returncode == 0, result.stderr
    return result, (crawl / "report.html").read_text(encoding="utf-8")


def log_lines(run: Path) -> list[list[str]]:
    return [line.split() for line in (run / "crawl.log").read_text().splitlines() if line]


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.S)


def copy_crawl(crawl: Path, dest: Path) -> Path:
    run = dest / "copy"
    shutil.copytree(crawl, run, ignore=shutil.ignore_patterns("report.html"))
    return run


def test_writes_report_and_prints_summary(reported, crawl: Path) -> None:
    result, html = reported
    assert html.startswith("<!DOCTYPE html>")
    assert str(crawl / "report.html") in result.stdout
    assert "fetch attempts" in result.stdout


def test_status_counts_match_crawl_log(reported, crawl: Path) -> None:
    _, html = reported
    expected = Counter(int(bits[1]) for bits in log_lines(crawl))
    shown = {
        int(code): int(count)
        for code, count in re.findall(r'<tr data-code="(-?\d+)" data-count="(\d+)">', html)
    }
    assert shown == dict(expected)
    assert f'<th class="n">{sum(expected.values()):,}</th>' in html


def test_warcinfo_software_shown(reported, crawl: Path) -> None:
    _, html = reported
    for warc in (crawl / "warc").glob("*.warc.gz"):
        with open(warc, "rb") as fh:
            record = next(iter(ArchiveIterator(fh)))
            body = record.content_stream().read().decode()
        software = next(line for line in body.splitlines() if line.startswith("software:"))
        assert escape(software.partition(":")[2].strip()) in html
        assert "<th>robots</th>" in html


def test_every_file_hashed(reported, crawl: Path) -> None:
    _, html = reported
    files = [*(crawl / "warc").glob("*.warc.gz"), crawl / "indexes" / "index.cdxj"]
    files += [crawl / "crawl.log", crawl / "pages.jsonl"]
    for path in files:
        data = path.read_bytes()
        rel = path.relative_to(crawl).as_posix()
        row = re.search(rf'<tr data-file="{re.escape(rel)}">(.*?)</tr>', html)
        assert row, rel
        assert hashlib.sha256(data).hexdigest() in row.group(1)
        assert f"{len(data):,}" in row.group(1)
        # The sha256sum block lets an auditor check a copy with standard tools.
        assert f"{hashlib.sha256(data).hexdigest()}  {rel}" in html


def test_guard_refusals_listed(reported, crawl: Path) -> None:
    _, html = reported
    refused = [b for b in log_lines(crawl) if b[1] in ("-5000", "-5001", "-9998")]
    assert any(b[1] == "-5000" for b in refused), "the replica should trip a trap guard"
    for bits in refused:
        assert escape(bits[3]) in html
    guards = Counter(n for b in refused for n in b[9].split(",") if n.startswith("guard:"))
    for guard, count in guards.items():
        row = re.search(rf'<tr data-refusal="{re.escape(guard)}">(.*?)</tr>', html)
        assert row and f">{count:,}</td>" in row.group(1)
    assert 'data-refusal="robots.txt"' in html


def test_issue_14_log_codes_have_their_meaning(crawl: Path, tmp_path: Path) -> None:
    # The crawler's newer codes: a quota refusal, an interrupted fetch, an invalid URL.
    run = copy_crawl(crawl, tmp_path)
    ts = "2026-11-23T12:00:00.000000Z"
    lines = [
        f"{ts} -5003 - {HOST}/later L {HOST}/ - 0 - max-pages",
        f"{ts} -7000 - {HOST}/slow L {HOST}/ - 900 - interrupted",
        f"{ts} -7 - http://[::1/x L {HOST}/ - 0 - invalid-url",
    ]
    with open(run / "crawl.log", "a") as fh:
        fh.write("\n".join(lines) + "\n")
    result = sunset("report", str(run))
    assert result.returncode == 0, result.stderr
    html = (run / "report.html").read_text()
    assert 'data-refusal="max-pages"' in html
    assert re.search(r'<td class="n">-7000</td><td>abandoned: the crawl was interrupted</td>', html)
    assert re.search(r'<td class="n">-7</td><td>invalid URL or other download error</td>', html)
    assert "unknown negative code" not in html


def test_charts_are_wellformed_svg(reported) -> None:
    _, html = reported
    charts = svgs(html)
    assert len(charts) >= 3
    for chart in charts:
        root = ET.fromstring(chart)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.findall(".//{http://www.w3.org/2000/svg}rect")


def test_self_contained(reported) -> None:
    _, html = reported
    lowered = html.lower()
    assert 'src="http' not in lowered and "src=" not in lowered
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    assert "<script" not in lowered
    assert 'http-equiv="content-security-policy"' in lowered
    for href in re.findall(r'href="([^"]*)"', html):
        href = unescape(href)
        assert href.startswith(("#", REPLAY_BASE)), href


def test_replay_links(reported, crawl: Path) -> None:
    _, html = reported
    pages = [json.loads(line) for line in (crawl / "pages.jsonl").read_text().splitlines()]
    first = min(pages, key=lambda p: (p["url"], p["ts"]))
    link = f"{REPLAY_BASE}{timestamp14(first['ts'])}/{first['url']}"
    assert re.fullmatch(r"\d{14}", timestamp14(first["ts"]) or "")
    assert f'href="{escape(link)}"' in html
    assert f"sunset replay {crawl} --port 8080" in html


def test_replay_base_and_cap_are_keywords(crawl: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    path, audit = write_report(crawl, out, replay_base="http://localhost:9000/legacy", list_cap=5)
    html = path.read_text()
    assert path == out and audit.pages.total > 5
    assert len(re.findall(r'href="http://localhost:9000/legacy/\d{14}/http', html)) == 5
    assert f"{audit.pages.total - 5:,} more" in html
    assert "--port 9000" in html
    with pytest.raises(SunsetError):
        write_report(crawl, out, replay_base="javascript:alert(1)//")


def test_hostile_input_is_escaped(crawl: Path, tmp_path: Path) -> None:
    run = copy_crawl(crawl, tmp_path)
    ts = "2026-11-23T12:00:00.000000Z"
    evil = f'{HOST}/<script>alert(1)</script>?a=%22&b="><img/src=x/onerror=alert(2)>'
    lines = [
        f"{ts} 404 12 {evil} L javascript:alert(3) text/html 1 - -",
        f"{ts} -5000 - {HOST}/x<b>y L {evil} - 0 - guard:<img/src=x/onerror=alert(4)>",
        f"{ts} -4 - {HOST}/slow L {HOST}/ - 10000 - retry:1",
        "this line is not a crawl.log line",
    ]
    with open(run / "crawl.log", "a") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(run / "pages.jsonl", "a") as fh:
        page = {"url": "javascript:alert(5)", "ts": ts, "title": "<script>alert(6)</script>"}
        fh.write(json.dumps(page) + "\n")
        page = {"url": f"{HOST}/a", "ts": ts, "title": "</title><style>*{display:none}</style>"}
        fh.write(json.dumps(page) + "\n")
    result = sunset("report", str(run))
    assert result.returncode == 0, result.stderr
    html = (run / "report.html").read_text()
    lowered = html.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<b>" not in lowered
    assert lowered.count("<style>") == 1
    assert 'href="javascript' not in lowered
    assert escape("<script>alert(1)</script>") in html
    assert escape("<script>alert(6)</script>") in html
    assert escape("guard:<img/src=x/onerror=alert(4)>") in html
    # The timeout shows with its meaning; the junk line is counted, not dropped silently.
    assert re.search(r'<td class="n">-4</td><td>timed out</td>', html)
    assert "1 malformed lines in crawl.log" in html
    for chart in svgs(html):
        ET.fromstring(chart)


def test_optional_parts(crawl: Path, reported, tmp_path: Path) -> None:
    _, plain = reported
    assert 'id="transform"' not in plain and 'id="redirects"' not in plain
    run = copy_crawl(crawl, tmp_path)
    (run / "content").mkdir()
    (run / "content" / "transform.json").write_text(
        json.dumps({"pages": 42, "listings": 7, "skipped": 3, "reasons": {"not-html": 3}})
    )
    (run / "redirects").mkdir()
    (run / "redirects" / "redirects.json").write_text(
        json.dumps({"rows": 99, "methods": {"exact": 60, "archive": 39}, "refused": 2})
    )
    (run / "redirects" / "report.html").write_text("<!DOCTYPE html>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("datapackage.json", json.dumps({"created": "2026-11-23", "resources": []}))
    (run / "r.wacz").write_bytes(buf.getvalue())
    out = tmp_path / "elsewhere" / "audit.html"
    out.parent.mkdir()
    result = sunset("report", str(run), "--out", str(out))
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    transform = re.search(r'<table class="kv" id="transform">(.*?)</table>', html).group(1)
    assert "<th>pages</th><td>42</td>" in transform and "<th>listings</th><td>7</td>" in transform
    assert "<th>by method: archive</th><td>39</td>" in html
    assert "<th>refused (left out)</th><td>2</td>" in html
    assert 'href="../copy/redirects/report.html"' in html
    assert hashlib.sha256(buf.getvalue()).hexdigest() in html
    assert not (run / "report.html").exists()


def break_no_crawl_json(run: Path) -> None:
    (run / "crawl.json").unlink()


def break_bad_crawl_json(run: Path) -> None:
    (run / "crawl.json").write_text("{not json")


def break_no_index(run: Path) -> None:
    (run / "indexes" / "index.cdxj").unlink()


def break_no_warc(run: Path) -> None:
    for path in (run / "warc").iterdir():
        path.unlink()


def break_no_folder(run: Path) -> None:
    shutil.rmtree(run)


BREAKAGES = [break_no_crawl_json, break_bad_crawl_json, break_no_index, break_no_warc]
BREAKAGES.append(break_no_folder)


@pytest.mark.parametrize("damage", BREAKAGES, ids=lambda f: f.__name__)
def test_bad_input_raises_one_line(crawl: Path, tmp_path: Path, damage) -> None:
    run = copy_crawl(crawl, tmp_path)
    damage(run)
    with pytest.raises(SunsetError) as info:
        write_report(run)
    assert "\n" not in str(info.value) and str(run) in str(info.value)
    assert not (run / "report.html").exists()


def test_bad_input_exits_2_with_one_line(crawl: Path, tmp_path: Path) -> None:
    procs = []
    # In parallel: each is an interpreter start-up, where most of the time goes.
    for damage in (break_no_folder, break_no_index):
        run = copy_crawl(crawl, tmp_path / damage.__name__)
        damage(run)
        command = [sys.executable, "-m", "sunset", "report", str(run)]
        procs.append(subprocess.Popen(command, stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr
        assert stderr.startswith("sunset: error: ") and stderr.count("\n") == 1, stderr


@pytest.mark.parametrize(
    "name", ["demo", "Wigan CCG (2019)", "--x--", "static", "", "Ünïcode_site-1"]
)
def test_collection_name_matches_replay(name: str) -> None:
    serve = pytest.importorskip("replay.serve")
    coll_name = getattr(serve, "_coll_name", None)
    if coll_name is None:
        pytest.skip("replay.serve no longer names collections with _coll_name")
    assert collection_name(name) == coll_name(name)


def test_parse_log_line() -> None:
    rec = parse_log_line(
        f"2026-11-23T09:30:00.123456Z  -5000 - {HOST}/a?b=1 LLE {HOST}/ - 0 - guard:calendar,x"
    )
    assert rec and rec.status == -5000 and rec.size is None and rec.mime == ""
    assert rec.notes == ("guard:calendar", "x") and rec.via == f"{HOST}/"
    assert parse_log_line("too few fields") is None
    assert parse_log_line("t x 1 u - - - 0 - -") is None


@pytest.mark.parametrize(
    ("mime", "kind"),
    [
        ("text/html", "HTML"),
        ("image/png", "images"),
        ("text/css", "CSS/JS"),
        ("application/javascript", "CSS/JS"),
        ("application/pdf", "documents"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "documents"),
        ("application/vnd.ms-fontobject", "other"),
        ("font/woff2", "other"),
        ("", "other"),
    ],
)
def test_mime_category(mime: str, kind: str) -> None:
    assert mime_category(mime) == kind


def test_sha256_across_chunks(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 9000  # not a multiple of the chunk size
    path.write_bytes(data)
    assert sha256_file(path, chunk=4096) == (hashlib.sha256(data).hexdigest(), len(data))


def test_chart_with_hostile_labels_parses() -> None:
    svg = bar_chart_svg("c", "t<&>", [("<x>&'\"", 3, "#000", "3"), ("y", 0, "#000", "0")])
    ET.fromstring(svg)


def test_log_is_streamed_with_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "crawl.log"
    with open(path, "w") as fh:
        for i in range(12_000):
            status = ("200", "404", "-4", "-5000")[i % 4]
            fh.write(
                f"2026-11-23T09:30:00.{i:06d}Z {status} 10 {HOST}/p{i} L {HOST}/ "
                f"text/html 1 - guard:trap-pattern,truncated:length\n"
            )
    tracemalloc.start()
    stats = read_log(path, cap=50)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stats.lines == 12_000 and stats.client_errors.total == 3_000
    assert len(stats.client_errors.items) == 50 and stats.truncated.total == 12_000
    assert len(stats.truncated.items) == 50 and stats.refusals["guard:trap-pattern"].total == 3_000
    assert peak < 2_000_000


def test_report_never_overwrites_the_crawls_own_files(crawl: Path, tmp_path: Path) -> None:
    from replay.report import write_report
    from sunset.errors import SunsetError

    run = copy_crawl(crawl, tmp_path / "c")
    warc = next((run / "warc").glob("*.warc.gz"))
    before = warc.read_bytes()
    with pytest.raises(SunsetError, match=r"must end in \.html"):
        write_report(run, warc)
    assert warc.read_bytes() == before
