"""`sunset verify` on what hostile sites and interrupted crawls leave: a verdict, soon (issue 14).

Two real crawls of tests/faultserver.py's /v14/ pages, whose bodies are 5 MB
of filler (about 1000:1 under gzip) cut short by the server: one crawl runs to
its end, the other is killed with SIGKILL while a body stalls. `sunset verify`
then runs as a subprocess on them, on copies cut short as a torn write leaves
them, and on their WACZ. Each run must end within a generous bound with the
right exit status and name what is wrong.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faultserver import serve_faults
from helpers import write_profile
from test_crawl_faults import run_sunset

from replay import verify as verify_mod
from replay import warcscan
from replay.warcscan import Record, scan

ROOT = Path(__file__).resolve().parent.parent

# Verify reads these folders (tens of MB inflated) in well under a second;
# before the fix it never finished. Generous, for a loaded 2-core machine.
VERIFY_BOUND = 30.0
CRAWL_TIMEOUT = 120


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    def fails(self) -> list[str]:
        return [line[5:] for line in self.out.splitlines() if line.startswith("FAIL ")]

    def explain(self) -> str:
        return f"exit {self.code} in {self.seconds:.1f}s\n{self.out[-4000:]}\n{self.err[-2000:]}"


def sunset(*args: str, timeout: float = VERIFY_BOUND) -> Run:
    run = run_sunset(*args, cwd=ROOT, timeout=timeout)
    if run.returncode is None:
        pytest.fail(f"sunset {' '.join(args)} still running after {timeout:.0f}s")
    return Run(run.returncode, run.stdout, run.stderr, run.elapsed)


def verify_profile(path: Path, start_url: str) -> Path:
    # timeout: /v14/stall is given up (WARC-Truncated: time) after 2 s.
    crawl = (
        'timeout = 2\nretries = 0\nmax_body_size = "10MB"\ndelay = 0\n'
        "autothrottle = false\nobey_robots = false\n"
    )
    return write_profile(path, [start_url], ["127.0.0.1"], crawl)


def _logged(crawl: Path, path: str) -> bool:
    log = crawl / "crawl.log"
    return log.is_file() and f"/{path.lstrip('/')} " in log.read_text(encoding="utf-8")


@dataclass
class Crawls:
    finished: Path
    killed: Path


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> Crawls:
    base = tmp_path_factory.mktemp("verify-damage")
    with serve_faults() as server:
        profile = verify_profile(base / "profile.toml", server.url_for("/v14/"))
        finished = base / "finished"
        run = sunset("crawl", "-p", str(profile), "--out", str(finished), timeout=CRAWL_TIMEOUT)
        assert run.code == 0, run.explain()

        killed = base / "killed"
        proc = subprocess.Popen(
            [sys.executable, "-m", "sunset", "crawl", "-p", str(profile), "--out", str(killed)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            # Killed once both cut bodies are logged and /v14/stall is stalling.
            deadline = time.monotonic() + CRAWL_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None:
                if server.hits("/v14/stall") and all(
                    _logged(killed, p) for p in ("/v14/cut-a", "/v14/cut-b")
                ):
                    break
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the crawl ended before it could be killed"
    return Crawls(finished, killed)


def only_warc(folder: Path) -> Path:
    (warc,) = [p for p in (folder / "warc").iterdir() if p.is_file()]
    return warc


def member_of(folder: Path, path: str) -> tuple[int, int]:
    """(offset, length) of the response for ``path`` in the WARC, from the index."""
    for line in (folder / "indexes" / "index.cdxj").read_text().splitlines():
        entry = json.loads(line.split(" ", 2)[2])
        if entry["url"].endswith(path):
            return int(entry["offset"]), int(entry["length"])
    raise AssertionError(f"{path} not in the index")


def truncated_count(run: Run) -> int:
    found = re.search(r"^records marked WARC-Truncated\s+(\d+)\s*$", run.out, re.M)
    return int(found.group(1)) if found else 0


def logged_truncated(folder: Path) -> int:
    log = (folder / "crawl.log").read_text(encoding="utf-8")
    return sum(1 for line in log.splitlines() if "truncated:" in line.split(" ")[-1])


def cut_copy(src: Path, dest: Path, warc_cut: int | None = None) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("state"))
    if warc_cut is not None:
        warc = only_warc(dest)
        with open(warc, "r+b") as fh:
            fh.truncate(warc_cut)
    return dest


# --------------------------------------------------------------------------
# Item 18: big truncated responses, cut files, an interrupted crawl


def test_truncated_5mb_responses_verify_fast_and_intact(crawls: Crawls) -> None:
    run = sunset("verify", str(crawls.finished))
    assert run.code == 0, run.explain()
    assert run.fails() == [], run.explain()
    assert "intact" in run.out
    # Each cut body is a whole record whose digests were checked.
    assert truncated_count(run) == logged_truncated(crawls.finished) == 3, run.explain()
    assert run.seconds < VERIFY_BOUND


def test_warc_cut_inside_a_5mb_record_is_named(crawls: Crawls, tmp_path: Path) -> None:
    # The last big record is cut, so whole 5 MB members come before the cut.
    spans = {p: member_of(crawls.finished, p) for p in ("/v14/cut-a", "/v14/cut-b", "/v14/stall")}
    path, (offset, length) = max(spans.items(), key=lambda item: item[1][0])
    folder = cut_copy(crawls.finished, tmp_path / "cut", offset + length // 2)
    run = sunset("verify", str(folder))
    assert run.code == 1, run.explain()
    name = only_warc(folder).name
    expected = re.compile(
        rf"warc/{re.escape(name)} @ {offset} http://127\.0\.0\.1:\d+{path}:"
        r" file ends inside a gzip member \(truncated\)$"
    )
    assert any(expected.match(line) for line in run.fails()), run.explain()
    assert "Traceback" not in run.err


def test_killed_crawl_is_verified_not_refused(crawls: Crawls, tmp_path: Path) -> None:
    """SIGKILL leaves a .open WARC and no index: its records are checked, the rest named."""
    folder = cut_copy(crawls.killed, tmp_path / "killed")
    warc = only_warc(folder)
    assert warc.name.endswith(".warc.gz.open")
    run = sunset("verify", str(folder))
    assert run.code == 1, run.explain()
    fails = run.fails()
    assert any(f.startswith(f"warc/{warc.name}: unfinished WARC file") for f in fails), fails
    assert any(f.startswith("indexes/index.cdxj: missing") for f in fails), fails
    # The records before the kill, both 5 MB cut bodies among them, were read.
    assert truncated_count(run) == logged_truncated(folder) >= 2, run.explain()
    assert not any("digest mismatch" in f for f in fails), fails


def test_killed_crawl_with_a_torn_last_record_is_named(crawls: Crawls, tmp_path: Path) -> None:
    """A kill during a write leaves the last record torn: named, the rest still read."""
    source = only_warc(crawls.killed)
    size = source.stat().st_size
    folder = cut_copy(crawls.killed, tmp_path / "torn", size - 5000)
    run = sunset("verify", str(folder))
    assert run.code == 1, run.explain()
    name = only_warc(folder).name
    assert any(
        f.startswith(f"warc/{name} @ ") and "file ends inside a gzip member (truncated)" in f
        for f in run.fails()
    ), run.explain()


# --------------------------------------------------------------------------
# The same kind, record by record: big members and header blocks that never end


def _member(block: bytes, n: int, level: int = 6) -> bytes:
    """One gzip member holding a response record whose block is ``block``."""
    digest = "sha1:" + base64.b32encode(hashlib.sha1(block).digest()).decode()
    head = (
        "WARC/1.1\r\nWARC-Type: response\r\n"
        f"WARC-Target-URI: http://example.org/{n}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{n:012d}>\r\n"
        "Content-Type: application/http; msgtype=response\r\n"
        f"WARC-Block-Digest: {digest}\r\nContent-Length: {len(block)}\r\n\r\n"
    ).encode()
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    return comp.compress(head + block + b"\r\n\r\n") + comp.flush()


SCAN_SCRIPT = """
import sys
from replay.warcscan import scan
with open(sys.argv[1], "rb") as fh:
    for item in scan(fh):
        print(type(item).__name__, item.offset, getattr(item, "length", ""),
              getattr(item, "block_ok", ""), flush=True)
"""


def test_members_inflating_past_the_output_limit_are_read_once(tmp_path: Path) -> None:
    # 5 MB of filler deflates to a few kB: one call inflates MAX_OUT, the next
    # reaches the member's end (where zlib's leftover input was counted twice
    # and the scan stepped back into the member, for ever).
    body = b"<p>" + b"filler " * 18 + b"</p>\n"
    block = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + body * (5_000_000 // len(body))
    assert len(block) > warcscan.MAX_OUT
    members = [_member(block, n) for n in range(3)]
    path = tmp_path / "big.warc.gz"
    path.write_bytes(b"".join(members))
    # A subprocess, so a scan that never ends is killed, not left spinning.
    try:
        proc = subprocess.run(
            [sys.executable, "-c", SCAN_SCRIPT, str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=VERIFY_BOUND,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"scanning 3 records of 5 MB took over {VERIFY_BOUND:.0f}s")
    assert proc.returncode == 0, proc.stderr
    offsets = [0, len(members[0]), len(members[0]) + len(members[1])]
    assert proc.stdout.splitlines() == [
        f"Record {o} {len(m)} True" for o, m in zip(offsets, members, strict=True)
    ]


@pytest.mark.parametrize("kind", ["long-line", "long-blank-ish-line", "many-lines"])
def test_http_header_block_that_never_ends_is_read_in_linear_time(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A response whose HTTP headers never end: each byte is looked at a bounded number of times."""
    size = 3_000_000
    rnd = random.Random(14)
    if kind == "long-line":  # one header line, no newline, incompressible
        tail = b"X-Long: " + rnd.randbytes(size).replace(b"\n", b"a")
    elif kind == "long-blank-ish-line":  # bytes that might be Unicode spaces
        tail = bytes(0x80 | b for b in rnd.randbytes(size))
    else:  # a million short header lines, none blank
        tail = b"a\r\n" * (size // 3)
    block = b"HTTP/1.1 200 OK\r\n" + tail
    scanned = [0, 0]  # bytes header_end was asked to search; lines tested one by one
    real_end, real_blank = warcscan.header_end, warcscan.is_blank_line

    def counting_end(buf: bytes | bytearray, pos: int = 0, stop: int | None = None) -> Any:
        scanned[0] += (len(buf) if stop is None else stop) - pos
        return real_end(buf, pos, stop)

    def counting_blank(line: bytes) -> bool:
        scanned[1] += 1
        return real_blank(line)

    monkeypatch.setattr(warcscan, "header_end", counting_end)
    monkeypatch.setattr(warcscan, "is_blank_line", counting_blank)
    monkeypatch.setattr(warcscan, "FAST", False)  # the general parser, piece by piece
    (rec,) = list(scan(io.BytesIO(_member(block, 1, level=1))))
    assert isinstance(rec, Record) and rec.block_ok is True
    assert rec.http_status == "200"
    assert scanned[0] < 4 * len(block), scanned
    assert scanned[1] < 1000, scanned


# --------------------------------------------------------------------------
# Item 19: a damaged WACZ is a verdict (exit 1), not "not a ZIP" (exit 2)

EOCD = struct.Struct("<4sHHHHLLH")  # ZIP end of central directory record
CENTRAL = struct.Struct("<4sHHHHHHLLLHHHHHLL")  # one central directory entry


@pytest.fixture(scope="module")
def wacz(crawls: Crawls, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = cut_copy(crawls.finished, tmp_path_factory.mktemp("wacz") / "crawl")
    out = work.parent / "v14.wacz"
    run = sunset("package", str(work), "--out", str(out))
    assert run.code == 0, run.explain()
    return out


def central_entries(data: bytes) -> dict[str, tuple[int, int]]:
    """Each member's (central entry offset, local header offset)."""
    end = data.rindex(b"PK\x05\x06")
    count, _, cd_offset = EOCD.unpack_from(data, end)[4:7]
    entries: dict[str, tuple[int, int]] = {}
    pos = cd_offset
    for _ in range(count):
        fields = CENTRAL.unpack_from(data, pos)
        name_len, extra_len, comment_len, local = fields[10], fields[11], fields[12], fields[16]
        name = data[pos + CENTRAL.size : pos + CENTRAL.size + name_len].decode()
        entries[name] = (pos, local)
        pos += CENTRAL.size + name_len + extra_len + comment_len
    return entries


def with_bad_crc(data: bytes, name: str) -> bytes:
    """The member's CRC-32 changed in both its headers, as when its bytes went bad."""
    central, local = central_entries(data)[name]
    out = bytearray(data)
    for at in (central + 16, local + 14):
        (crc,) = struct.unpack_from("<L", out, at)
        struct.pack_into("<L", out, at, crc ^ 0x5A5A5A5A)
    return bytes(out)


def patched(data: bytes, at: int, fmt: str, change: Callable[[int], int]) -> bytes:
    """``data`` with the little-endian field at ``at`` passed through ``change``."""
    out = bytearray(data)
    (value,) = struct.unpack_from(fmt, out, at)
    struct.pack_into(fmt, out, at, change(value))
    return bytes(out)


def end_record(data: bytes) -> int:
    return data.rindex(b"PK\x05\x06")


def only_last_listed(data: bytes) -> bytes:
    """The end record pointed at the last directory entry alone, counts and all."""
    entries = central_entries(data)
    last = max(c for c, _ in entries.values())
    end = end_record(data)
    out = bytearray(data)
    struct.pack_into("<HHLL", out, end + 8, 1, 1, end - last, last)
    return bytes(out)


def zeroed(data: bytes, at: int, n: int = 64) -> bytes:
    return data[:at] + bytes(min(n, len(data) - at)) + data[at + n :]


def warc_member(data: bytes) -> str:
    return next(n for n in central_entries(data) if n.startswith("archive/"))


def data_span(data: bytes, name: str) -> tuple[int, int]:
    """Where a member's bytes are in the ZIP (start, end)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(name)
    local = info.header_offset
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_len + extra_len
    return start, start + info.compress_size


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    # name: (damage, what the FAIL line must say)
    "last-200-bytes-cut": (lambda d: d[:-200], "central directory is missing or cut off"),
    "end-record-cut": (lambda d: d[:-22], "central directory is missing or cut off"),
    "cut-inside-the-warc": (
        lambda d: d[: sum(data_span(d, warc_member(d))) // 2],
        "central directory is missing or cut off",
    ),
    "central-directory-zeroed": (
        lambda d: zeroed(d, central_entries(d)["indexes/index.idx"][0]),
        "central directory is damaged",
    ),
    "first-local-header-zeroed": (lambda d: zeroed(d, 0, 40), "local file header"),
    "bad-crc-datapackage": (lambda d: with_bad_crc(d, "datapackage.json"), "CRC-32"),
    "bad-crc-pages": (lambda d: with_bad_crc(d, "pages/pages.jsonl"), "CRC-32"),
    "bad-crc-index": (lambda d: with_bad_crc(d, "indexes/index.cdx.gz"), "CRC-32"),
    "bad-crc-warc": (lambda d: with_bad_crc(d, warc_member(d)), "CRC-32"),
    "deflated-data-zeroed": (
        lambda d: zeroed(d, data_span(d, "datapackage.json")[0] + 20, 16),
        "damaged ZIP member",
    ),
    # zipfile reads past these: the fields a local header shares with the
    # central directory, and the end record's own counts and lengths.
    "local-crc-only": (
        lambda d: patched(
            d, central_entries(d)["pages/pages.jsonl"][1] + 14, "<L", lambda v: ~v & 0xFFFFFFFF
        ),
        "local header disagrees with the central directory on CRC-32",
    ),
    "local-time": (
        lambda d: patched(
            d, central_entries(d)["datapackage.json"][1] + 10, "<H", lambda v: v ^ 0x21
        ),
        "local header disagrees with the central directory on time",
    ),
    "local-size-of-the-warc": (
        lambda d: patched(d, 22, "<L", lambda v: v + 1),
        "local header disagrees with the central directory on size",
    ),
    "end-record-count": (
        lambda d: patched(d, end_record(d) + 10, "<H", lambda v: v - 1),
        "the ZIP's end record counts",
    ),
    "end-record-emptied": (
        lambda d: zeroed(d, end_record(d) + 4, 18),
        "central directory lists no members",
    ),
    "end-record-offset": (
        lambda d: patched(d, end_record(d) + 16, "<L", lambda v: v - 100),
        "the ZIP's end record puts the directory at",
    ),
    "last-entry-comment-length": (
        lambda d: patched(
            d,
            max(c for c, _ in central_entries(d).values()) + 32,
            "<H",
            lambda v: v + 10,
        ),
        "which its entries do not fill",
    ),
    "directory-lists-only-the-last-file": (
        only_last_listed,
        "central directory does not list the files it holds",
    ),
    "deflated-idx-zeroed": (
        lambda d: zeroed(d, data_span(d, "indexes/index.idx")[0] + 10, 16),
        "damaged ZIP member",
    ),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_wacz_is_named_with_exit_1(kind: str, wacz: Path, tmp_path: Path) -> None:
    damage, phrase = DAMAGE[kind]
    broken = tmp_path / "broken.wacz"
    broken.write_bytes(damage(wacz.read_bytes()))
    run = sunset("verify", str(broken))
    assert run.code == 1, run.explain()
    assert "Traceback" not in run.err and "not a ZIP" not in run.err, run.explain()
    fails = run.fails()
    assert any(phrase in line for line in fails), run.explain()


def test_wacz_holding_a_truncated_warc_is_named(crawls: Crawls, tmp_path: Path) -> None:
    offset, length = member_of(crawls.finished, "/v14/stall")
    folder = cut_copy(crawls.finished, tmp_path / "crawl", offset + length // 2)
    out = tmp_path / "cut.wacz"
    run = sunset("package", str(folder), "--out", str(out))
    assert run.code == 0, run.explain()
    run = sunset("verify", str(out))
    assert run.code == 1, run.explain()
    name = only_warc(folder).name
    assert any(
        line.startswith(f"archive/{name} @ {offset} ") and "(truncated)" in line
        for line in run.fails()
    ), run.explain()


def test_not_a_zip_is_still_a_usage_error(tmp_path: Path) -> None:
    for name, content in (("text.wacz", b"just some text\n"), ("empty.wacz", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        run = sunset("verify", str(path))
        assert run.code == 2, run.explain()
        lines = run.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sunset: error: "), run.explain()
        assert "not a ZIP" in lines[0] or "empty" in lines[0]


def test_any_cut_or_zeroed_stretch_is_a_verdict(
    wacz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Cuts and zeroed runs all over the file: exit 1 every time, never an exception."""
    data = wacz.read_bytes()
    cd_start = min(c for c, _ in central_entries(data).values())
    points = sorted({*range(1, len(data), len(data) // 24), *range(cd_start - 400, len(data), 97)})
    broken = tmp_path / "sweep.wacz"
    for damage in ("cut", "zero"):
        for at in points:
            broken.write_bytes(data[:at] if damage == "cut" else zeroed(data, at))
            try:
                code = verify_mod.cli_verify(broken)
            except Exception as exc:  # any exception at all is the failure
                pytest.fail(f"{damage} at {at}: {type(exc).__name__}: {exc}")
            out = capsys.readouterr().out
            assert code == 1, f"{damage} at {at}:\n{out}"
