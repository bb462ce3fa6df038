"""`sunset crawl` against the served replica, checked against its ground truth.

Real parts only: the replica over real HTTP on 127.0.0.1, the crawl as a
subprocess of the installed CLI, `warcio check` on every file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from replica import generate, serve
from replica.generate import iter_jsonl

LEGACY = "www.wiganboroughccg.nhs.uk"
WARCIO = str(Path(sys.executable).with_name("warcio"))  # warcio has no __main__


def b32(hex_sha1: str) -> str:
    return "sha1:" + base64.b32encode(bytes.fromhex(hex_sha1)).decode()


def crawl(out: Path, run, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    connect = [a for entry in run.connect_to for a in ("--connect-to", entry)]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sunset",
            "crawl",
            "-p",
            "demo",
            "--out",
            str(out),
            "--name",
            "test",
            *connect,
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def records(folder: Path) -> list:
    out = []
    for path in sorted(folder.glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                body = rec.raw_stream.read()
                out.append((path.name, rec.rec_type, rec.rec_headers, rec.http_headers, body))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crawl") / "site"
    generate(out, pages=150, seed=3)
    return out


@pytest.fixture(scope="module")
def done(site: Path, tmp_path_factory: pytest.TempPathFactory):
    log = site.parent / "access.jsonl"
    out = tmp_path_factory.mktemp("crawl") / "run"
    with serve(site, access_log=log) as run:
        result = crawl(out, run)
    assert result.returncode == 0, result.stderr
    truth = {u["url"]: u for u in iter_jsonl(site / "ground-truth" / "urls.jsonl")}
    access = [json.loads(line) for line in log.read_text().splitlines()]
    return out, truth, records(out / "warc"), access, result


def test_every_in_scope_url_captured_exactly_once(done) -> None:
    _out, truth, recs, _, _ = done
    captured = Counter(
        h.get_header("WARC-Target-URI") for _, t, h, _, _ in recs if t in ("response", "revisit")
    )
    expected = {u for u, v in truth.items() if v["capture"]}
    assert expected - set(captured) == set()
    assert [u for u, n in captured.items() if n > 1] == []
    refused = {u for u, v in truth.items() if not v["capture"]}
    assert refused & set(captured) == set()


def test_payload_digest_is_sha1_of_served_bytes(done) -> None:
    _, truth, recs, _, _ = done
    checked = 0
    for _, rtype, h, http, _ in recs:
        url = h.get_header("WARC-Target-URI")
        t = truth.get(url)
        if rtype not in ("response", "revisit") or not t or t["status"] != 200:
            continue
        encoded = http.get_header("Content-Encoding") == "gzip"
        want = t["gzip_sha1"] if encoded else t["sha1"]
        assert h.get_header("WARC-Payload-Digest") == b32(want), url
        checked += 1
    assert checked > 300


def test_warcio_check_passes(done) -> None:
    out = done[0]
    files = sorted((out / "warc").glob("*.warc.gz"))
    assert files and not list((out / "warc").glob("*.open"))
    result = subprocess.run(
        [WARCIO, "check", "-v", *map(str, files)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:]


def raw_records(folder: Path):
    """(WARC header fields, block) for every record, decompressed here rather than by warcio."""
    for path in sorted(folder.glob("*.warc.gz")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            d = zlib.decompressobj(31)
            member = d.decompress(data[pos:])
            pos = len(data) - len(d.unused_data)
            head, _, rest = member.partition(b"\r\n\r\n")
            fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
            length = int(fields["Content-Length"])
            assert rest[length:] == b"\r\n\r\n", fields["WARC-Type"]
            yield fields, rest[:length]


def test_every_block_matches_its_length_and_digest(done) -> None:
    checked = 0
    for fields, block in raw_records(done[0] / "warc"):
        assert len(block) == int(fields["Content-Length"])
        digest = "sha1:" + base64.b32encode(hashlib.sha1(block).digest()).decode()
        assert fields["WARC-Block-Digest"] == digest, fields["WARC-Type"]
        checked += 1
    assert checked > 500


def test_warc_records_follow_the_spec(done) -> None:
    _, _, recs, _, _ = done
    first = recs[0]
    assert first[1] == "warcinfo"
    info = first[4].decode()
    for field in (
        "software: sunset/",
        "format: WARC File Format 1.1",
        "conformsTo:",
        "robots: obey",
        "http-header-user-agent:",
        "sunset-settings:",
        "sunset-exactness:",
    ):
        assert field in info, field
    ids = {h.get_header("WARC-Record-ID"): t for _, t, h, _, _ in recs}
    pairs = 0
    for _, rtype, h, _, _ in recs:
        assert h.protocol == "WARC/1.1"
        if rtype in ("response", "request", "revisit"):
            assert len(h.get_header("WARC-Date")) == len("2026-01-01T00:00:00.000000Z")
            assert h.get_header("WARC-IP-Address") == "127.0.0.1"
            assert h.get_header("WARC-Block-Digest").startswith("sha1:")
            assert h.get_header("WARC-Payload-Digest").startswith("sha1:")
        if rtype == "request":
            assert ids[h.get_header("WARC-Concurrent-To")] in ("response", "revisit")
            pairs += 1
        if rtype == "revisit":
            assert h.get_header("WARC-Profile").endswith("/revisit/identical-payload-digest")
            assert h.get_header("WARC-Refers-To-Target-URI") and h.get_header("WARC-Refers-To-Date")
    assert pairs == sum(1 for _, t, _, _, _ in recs if t in ("response", "revisit"))
    assert any(t == "metadata" for _, t, _, _, _ in recs)


def test_headers_and_reason_phrase_kept_as_received(done) -> None:
    home = next(
        block
        for fields, block in raw_records(done[0] / "warc")
        if fields["WARC-Type"] == "response" and fields["WARC-Target-URI"] == f"http://{LEGACY}/"
    )
    head = home.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    assert head[0] == "HTTP/1.1 200 OK"
    assert head[1].startswith("Server: Apache/2.4.7") and head[2].startswith("Date: ")


def test_gzip_response_stored_encoded(done) -> None:
    _, truth, recs, _, _ = done
    gz = [u for u, v in truth.items() if v["gzip_sha1"] and v["capture"]]
    assert gz
    for _, rtype, h, http, body in recs:
        if rtype == "response" and h.get_header("WARC-Target-URI") in gz:
            assert http.get_header("Content-Encoding") == "gzip"
            assert body[:2] == b"\x1f\x8b"  # the payload, still gzip-encoded


def test_each_redirect_hop_has_its_own_record(done) -> None:
    _, _, recs, _, _ = done
    status = {
        h.get_header("WARC-Target-URI"): int(http.get_statuscode())
        for _, t, h, http, _ in recs
        if t == "response"
    }
    assert status[f"http://{LEGACY}/get-involved/have-your-say"] == 301
    assert status[f"http://{LEGACY}/get-involved/have-your-say-2018"] == 302
    assert status["http://wiganboroughccg.nhs.uk/your-health"] == 301


def test_robots_disallowed_never_requested(done) -> None:
    out, _, _, access, _ = done
    targets = {a["target"] for a in access}
    assert not any(t.startswith(("/members-area", "/component/users/")) for t in targets)
    assert " -9998 " in (out / "crawl.log").read_text()


def test_calendar_trap_stopped_at_cap(done) -> None:
    out, _truth, recs, _, _ = done
    months = [
        h.get_header("WARC-Target-URI")
        for _, t, h, _, _ in recs
        if t in ("response", "revisit") and "events?month=" in h.get_header("WARC-Target-URI")
    ]
    assert 12 <= len(months) <= 24  # every real month, then the cap
    log = (out / "crawl.log").read_text()
    assert "guard:calendar" in log and "guard:trap-pattern" in log


def test_index_pages_and_log(done) -> None:
    out, _, recs, _, result = done
    cdxj = (out / "indexes" / "index.cdxj").read_text().splitlines()
    responses = [r for r in recs if r[1] in ("response", "revisit")]
    assert len(cdxj) >= len(responses)
    assert cdxj == sorted(cdxj)
    pages = [json.loads(line) for line in (out / "pages.jsonl").read_text().splitlines()]
    assert len(pages) > 300 and all(p["ts"].endswith("Z") and p["title"] for p in pages)
    for line in (out / "crawl.log").read_text().splitlines():
        assert len(line.split()) == 10, line
    summary = json.loads((out / "crawl.json").read_text())
    assert summary["stats"]["responses"] == len(responses)
    assert "HTML pages" in result.stdout


def test_existing_crawl_is_not_overwritten(done, site: Path) -> None:
    out = done[0]
    before = sorted(p.name for p in (out / "warc").iterdir())
    with serve(site) as run:
        result = crawl(out, run, timeout=60)
    assert result.returncode == 2 and "--resume" in result.stderr
    assert sorted(p.name for p in (out / "warc").iterdir()) == before


def test_kill_and_resume(tmp_path: Path) -> None:
    site = tmp_path / "site"
    generate(site, pages=300, seed=8)
    log = tmp_path / "access.jsonl"
    out = tmp_path / "run"
    with serve(site, access_log=log, delay_ms=4) as run:
        connect = [a for entry in run.connect_to for a in ("--connect-to", entry)]
        cmd = [
            sys.executable,
            "-m",
            "sunset",
            "crawl",
            "-p",
            "demo",
            "--out",
            str(out),
            "--name",
            "kr",
            *connect,
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        crawl_log = out / "crawl.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if crawl_log.exists() and crawl_log.read_text().count("\n") > 250:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        open_files = list((out / "warc").glob("*.warc.gz.open"))
        assert len(open_files) == 1
        # Make sure the kill left a torn record, whatever instant it landed on.
        with open(open_files[0], "r+b") as fh:
            fh.truncate(open_files[0].stat().st_size - 37)
        first_run = len(log.read_text().splitlines())
        kept = records_upto_torn(open_files[0])

        result = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "torn" in result.stderr or "cut off" in result.stderr

    aside = list((out / "state" / "set-aside").iterdir())
    assert len(aside) == 1 and aside[0].name.endswith(".open.torn")
    files = sorted((out / "warc").glob("*.warc.gz"))
    assert len(files) == 2 and not list((out / "warc").glob("*.open"))
    check = subprocess.run([WARCIO, "check", *map(str, files)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-2000:]

    # Nothing that the kept records hold was fetched again.
    second = [json.loads(x) for x in log.read_text().splitlines()[first_run:]]
    refetched = {f"http://{a['host']}{a['target']}" for a in second} & kept
    assert refetched == set()

    truth = {u["url"]: u for u in iter_jsonl(site / "ground-truth" / "urls.jsonl")}
    captured = Counter(
        h.get_header("WARC-Target-URI")
        for _, t, h, _, _ in records(out / "warc")
        if t in ("response", "revisit")
    )
    expected = {u for u, v in truth.items() if v["capture"]}
    assert expected - set(captured) == set()
    assert [u for u, n in captured.items() if n > 1] == []


def records_upto_torn(path: Path) -> set[str]:
    """Target URIs of the whole response/revisit records before a torn tail."""
    from crawler.resume import check_members

    good = check_members(path).good_end
    urls: set[str] = set()
    with open(path, "rb") as fh:
        data = fh.read(good)
    import io

    for rec in ArchiveIterator(io.BytesIO(data)):
        if rec.rec_type in ("response", "revisit"):
            urls.add(rec.rec_headers.get_header("WARC-Target-URI"))
    return urls


def test_unreachable_start_is_one_line(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(
        '[site]\nname = "x"\nstart_urls = ["http://127.0.0.1:9/"]\n'
        "[crawl]\ntimeout = 2\nretries = 0\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sunset", "crawl", "-p", str(profile), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("sunset: error:")]
    assert lines and "connection refused" in lines[0]


def test_dedup_key_keeps_what_is_requested() -> None:
    from crawler.urls import canonicalize

    assert (
        canonicalize("HTTP://WWW.Example.ORG:80/a%7eb/%e2%82%ac?x=%2f#frag")
        == "http://www.example.org/a~b/%E2%82%AC?x=%2F"
    )
    assert canonicalize("https://h:443") == "https://h/"
    assert canonicalize("http://h/Path?b=1&a=2") == "http://h/Path?b=1&a=2"


def test_guards_name_what_they_refuse() -> None:
    from crawler.urls import Guards

    g = Guards.build(
        max_path_depth=3,
        max_repeated_segments=2,
        max_query_variants=2,
        max_calendar_variants=1,
        trap_patterns=[r"[?&]sid="],
        calendar_patterns=[r"[?&]month="],
    )
    assert g.check("http://h/a/b/c/d") == "path-depth"
    assert g.check("http://h/x/x/x") == "repeated-segments"
    assert g.check("http://h/p?sid=1") == "trap-pattern"
    assert g.check("http://h/cal?month=1") is None
    assert g.check("http://h/cal?month=2") == "calendar"
    assert g.check("http://h/list?start=1") is None
    assert g.check("http://h/list?start=2") is None
    assert g.check("http://h/list?start=3") == "query-variants"


def test_full_disk_stops_cleanly_and_keeps_a_valid_warc(tmp_path: Path, site: Path) -> None:
    """A real full filesystem (a 400 KB tmpfs): one error line, exit 1, a valid WARC."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (as CI and ./dev test run)")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(small)], check=True)
    try:
        with serve(site) as run:
            result = crawl(small / "c", run, timeout=120)
        assert result.returncode == 1
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("sunset: error:")]
        assert len(errors) == 1 and "No space left on device" in errors[0]
        assert "Traceback" not in result.stderr
        files = list((small / "c" / "warc").iterdir())
        assert len(files) == 1 and files[0].name.endswith(".warc.gz")  # closed and renamed
        check = subprocess.run([WARCIO, "check", str(files[0])], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout[-2000:]
        assert (
            sum(1 for f, _ in raw_records(small / "c" / "warc") if f["WARC-Type"] == "response")
            > 20
        )
    finally:
        subprocess.run(["umount", str(small)], check=False)


def test_warc_files_rotate_at_the_size_limit(tmp_path: Path, site: Path) -> None:
    with serve(site) as run:
        result = crawl(tmp_path / "r", run, "--warc-max-size", "300KB", timeout=120)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "r" / "warc").glob("*.warc.gz"))
    assert len(files) >= 4
    serials = [int(f.name.split("-")[-2]) for f in files]
    assert serials == list(range(len(files)))
    for f in files:
        assert f.name.startswith("test-") and f.stat().st_size < 300_000 + 200_000
    for f in files:
        with open(f, "rb") as fh:
            assert next(iter(ArchiveIterator(fh))).rec_type == "warcinfo"
    check = subprocess.run([WARCIO, "check", *map(str, files)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-2000:]
    index = (tmp_path / "r" / "indexes" / "index.cdxj").read_text()
    assert all(f'"filename": "{f.name}"' in index for f in files)
