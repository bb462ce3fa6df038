"""`sunset verify` on a real crawl and its WACZ: clean passes, every tampering is named.

Each tampering is applied to a copy of the packaged crawl folder, and to a copy
of its WACZ, and must be reported with the file, the record's offset and its
URL. The scans run with small stretches, so the parallel path (several worker
processes, stretches split at gzip member boundaries) is what gets tested.
Digests are cross-checked against `warcio check`, record by record.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from test_package import (
    ROOT,
    copy_crawl,
    crawled_replica,
    one_line_error,
    sunset,
)
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from replay import verify as verify_mod
from replay import warcscan
from replay.tools import tool_bin
from replay.wacz import member_data_offset
from replay.warcscan import Damage, Record, digest_equal, scan

WARCIO = Path(sys.executable).with_name("warcio")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A crawl folder with its fixity.sha256, and its WACZ (outside it)."""
    crawl = crawled_replica(tmp_path_factory)
    work = copy_crawl(crawl, tmp_path_factory.mktemp("verify") / "crawl")
    wacz = work.parent / "pv.wacz"
    result = sunset("package", str(work), "--out", str(wacz))
    assert result.returncode == 0, result.stderr
    return work, wacz


@pytest.fixture(autouse=True)
def small_stretches(monkeypatch: pytest.MonkeyPatch) -> None:
    # The test crawl is under 1 MB; 64 kB stretches give a dozen worker tasks.
    monkeypatch.setattr(verify_mod, "SEGMENT", 64 << 10)


def run_verify(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = verify_mod.cli_verify(path)
    out = capsys.readouterr().out
    fails = [line[5:] for line in out.splitlines() if line.startswith("FAIL ")]
    return code, fails, out


def warc_of(folder: Path) -> Path:
    return next((folder / "warc").glob("*.warc.gz"))


def index_entries(folder: Path) -> list[dict[str, str]]:
    lines = (folder / "indexes" / "index.cdxj").read_text().splitlines()
    return [json.loads(line.split(" ", 2)[2]) for line in lines]


def html_target(folder: Path, n: int = 10) -> dict[str, str]:
    """The n-th HTML page response in file order: the record every tampering aims at."""
    pages = [e for e in index_entries(folder) if e["mime"] == "text/html" and e["status"] == "200"]
    return sorted(pages, key=lambda e: int(e["offset"]))[n]


# --------------------------------------------------------------------------
# Clean archives


def test_clean_crawl_folder_and_wacz_pass(
    packaged: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    crawl, wacz = packaged
    for target in (crawl, wacz):
        code, fails, out = run_verify(target, capsys)
        assert (code, fails) == (0, []), out
        assert "intact" in out
        report = verify_mod.verify(target)
        counts = report.counts
        assert counts["records"] > 100
        assert counts["index lines"] == counts["index lines matched"] > 50
        assert counts["payload digests ok"] > 0 and counts["block digests ok"] > 0
        assert counts["revisits (payload not checked)"] >= 0
        # Every record is read once: the stretches tile the file exactly.
        with open(warc_of(crawl), "rb") as fh:
            assert counts["records"] == sum(1 for _ in scan(fh))


def test_reads_a_wacz_made_by_py_wacz(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another tool's layout (its own index lines, idx and resource names) verifies too."""
    crawl, _ = packaged
    theirs = tmp_path / "py-wacz.wacz"
    made = subprocess.run(
        [str(tool_bin("wacz")), "create", "-o", str(theirs), str(warc_of(crawl))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    code, fails, out = run_verify(theirs, capsys)
    assert (code, fails) == (0, []), out
    assert "indexes/index.idx" in out


def test_cli_exit_codes(packaged: tuple[Path, Path], tmp_path: Path) -> None:
    crawl, wacz = packaged
    result = sunset("verify", str(wacz))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact" in result.stdout
    broken = copy_crawl(crawl, tmp_path / "crawl")
    warc = warc_of(broken)
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    warc.write_bytes(data)
    result = sunset("verify", str(broken))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAIL warc/{warc.name}" in result.stdout


def test_edited_revisit_header_is_caught(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crawl, _ = packaged
    bare = copy_crawl(crawl, tmp_path / "crawl")
    (bare / "fixity.sha256").unlink()  # only the record's own digest may catch it
    revisit = next(e for e in index_entries(bare) if e["mime"] == "warc/revisit")
    off, length = int(revisit["offset"]), int(revisit["length"])
    warc = warc_of(bare)
    data = warc.read_bytes()
    record = gzip.decompress(data[off : off + length])
    edited = record.replace(b"HTTP/1.1 200", b"HTTP/1.1 201", 1)
    assert edited != record
    # Same compressed length, so no offset moves and the index still matches.
    member = gzip.compress(edited, mtime=0)
    if len(member) != length:
        pytest.skip("re-compressed member changed length")
    warc.write_bytes(data[:off] + member + data[off + length :])
    code, fails, out = run_verify(bare, capsys)
    assert code == 1, out
    assert any(f"@ {off}" in f and "block digest" in f for f in fails), fails


def test_crawl_folder_without_manifest_is_checked_by_records_and_index(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crawl, _ = packaged
    bare = copy_crawl(crawl, tmp_path / "crawl")
    (bare / "fixity.sha256").unlink()
    code, fails, out = run_verify(bare, capsys)
    assert (code, fails) == (0, []), out
    assert "no fixity.sha256" in out


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    assert "no such file or folder" in one_line_error(sunset("verify", str(tmp_path / "none")))
    fake = tmp_path / "fake.wacz"
    fake.write_text("not a zip at all\n")
    assert "not a ZIP" in one_line_error(sunset("verify", str(fake)))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no WARC files" in one_line_error(sunset("verify", str(empty)))
    other = tmp_path / "other.wacz"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("hello.txt", "hi")
    assert "not a WACZ" in one_line_error(sunset("verify", str(other)))


# --------------------------------------------------------------------------
# Tampering: each kind applied to the WARC bytes or the index lines


def _members(data: bytes) -> list[tuple[int, int]]:
    spans, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        end = len(data) - len(d.unused_data)
        spans.append((pos, end - pos))
        pos = end
    return spans


def _forged_record(url: str) -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True, warc_version="1.1")
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
    record = writer.create_warc_record(
        url, "response", payload=io.BytesIO(b"<p>forged</p>"), http_headers=http
    )
    writer.write_record(record)
    return buf.getvalue()


def flip_in_payload(data: bytes, off: int, length: int) -> bytes:
    """One byte of the page body changed, the member re-compressed: only a digest can tell."""
    record = bytearray(gzip.decompress(data[off : off + length]))
    warc_end = record.index(b"\r\n\r\n") + 4
    body = record.index(b"\r\n\r\n", warc_end) + 4
    record[body + 40] ^= 0x20
    return data[:off] + gzip.compress(bytes(record), mtime=0) + data[off + length :]


def flip_raw(data: bytes, off: int, length: int) -> bytes:
    out = bytearray(data)
    out[off + length // 2] ^= 0x01
    return bytes(out)


def truncate(data: bytes, off: int, length: int) -> bytes:
    # Cut inside the target record, which must then be the one named.
    return data[: off + length // 2]


def delete(data: bytes, off: int, length: int) -> bytes:
    assert (off, length) in _members(data)
    return data[:off] + data[off + length :]


FORGED = "http://www.wiganboroughccg.nhs.uk/forged-page"


def add(data: bytes, off: int, length: int) -> bytes:
    return data + _forged_record(FORGED)


WARC_TAMPERS: dict[str, Callable[[bytes, int, int], bytes]] = {
    "payload": flip_in_payload,
    "raw-byte": flip_raw,
    "truncate": truncate,
    "delete": delete,
    "add": add,
}
# What each is reported as, after "FILE @ OFFSET URL: ".
EXPECTED = {
    "payload": "payload digest mismatch",
    "raw-byte": "unreadable gzip data",
    "truncate": "file ends inside a gzip member (truncated)",
    "delete": "(deleted?)",
    "add": "record is not in the index (added?)",
    "index-digest": "digest sha1:AAAA",
    "index-url": "url 'http",
}


def edit_index(text: str, kind: str, entry: dict[str, str]) -> str:
    lines = text.splitlines(keepends=True)
    marker = f'"offset": "{entry["offset"]}"'
    (k,) = [i for i, line in enumerate(lines) if marker in line and entry["url"] in line]
    if kind == "index-digest":
        lines[k] = lines[k].replace(entry["digest"], "sha1:" + "A" * 32)
    else:
        lines[k] = lines[k].replace(f'"url": "{entry["url"]}"', f'"url": "{entry["url"]}-evil"')
    return "".join(lines)


def expectation(kind: str, entry: dict[str, str], original_size: int) -> tuple[str, str]:
    if kind == "add":
        return str(original_size), FORGED
    return entry["offset"], entry["url"]


def assert_named(fails: list[str], label: str, offset: str, url: str, phrase: str) -> None:
    wanted = f"{label} @ {offset} {url}: "
    hits = [f for f in fails if f.startswith(wanted) and phrase in f]
    assert hits, f"no problem naming {wanted!r} with {phrase!r} in:\n" + "\n".join(fails)


@pytest.mark.parametrize("kind", [*WARC_TAMPERS, "index-digest", "index-url"])
def test_crawl_folder_tampering_is_named(
    kind: str,
    packaged: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    crawl, _ = packaged
    work = copy_crawl(crawl, tmp_path / "crawl")
    warc = warc_of(work)
    entry = html_target(work)
    data = warc.read_bytes()
    if kind in WARC_TAMPERS:
        warc.write_bytes(WARC_TAMPERS[kind](data, int(entry["offset"]), int(entry["length"])))
    else:
        index = work / "indexes" / "index.cdxj"
        index.write_text(edit_index(index.read_text(), kind, entry))
    code, fails, out = run_verify(work, capsys)
    assert code == 1, out
    offset, url = expectation(kind, entry, len(data))
    assert_named(fails, f"warc/{warc.name}", offset, url, EXPECTED[kind])
    changed = "indexes/index.cdxj" if kind.startswith("index") else f"warc/{warc.name}"
    assert any(f.startswith(f"{changed}: SHA-256 is ") for f in fails), "fixity caught it too"
    if kind.startswith("index"):
        line = re.search(r"indexes/index\.cdxj line (\d+): ", "\n".join(fails))
        assert line and int(line.group(1)) >= 1


def _rewrite_wacz(src: Path, dst: Path, replace: dict[str, bytes]) -> None:
    """A copy of a WACZ with some members' bytes replaced; datapackage.json left as it was."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, replace.get(info.filename, zin.read(info)))


@pytest.mark.parametrize("kind", [*WARC_TAMPERS, "index-digest", "index-url"])
def test_wacz_tampering_is_named(
    kind: str,
    packaged: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    crawl, wacz = packaged
    entry = html_target(crawl)
    member = f"archive/{warc_of(crawl).name}"
    target = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(wacz) as zf:
        data = zf.read(member)
        cdx = zf.read("indexes/index.cdx.gz")
    off, length = int(entry["offset"]), int(entry["length"])
    if kind == "raw-byte":
        # In place, as bit rot would do it: the ZIP itself is untouched.
        shutil.copy(wacz, target)
        with open(target, "r+b") as fh, zipfile.ZipFile(wacz) as zf:
            at = member_data_offset(fh, zf.getinfo(member)) + off + length // 2
            fh.seek(at)
            byte = fh.read(1)[0]
            fh.seek(at)
            fh.write(bytes([byte ^ 0x01]))
    elif kind in WARC_TAMPERS:
        _rewrite_wacz(wacz, target, {member: WARC_TAMPERS[kind](data, off, length)})
    else:
        text = edit_index(gzip.decompress(cdx).decode(), kind, entry)
        _rewrite_wacz(wacz, target, {"indexes/index.cdx.gz": gzip.compress(text.encode())})
    code, fails, out = run_verify(target, capsys)
    assert code == 1, out
    offset, url = expectation(kind, entry, len(data))
    assert_named(fails, member, offset, url, EXPECTED[kind])
    changed = "indexes/index.cdx.gz" if kind.startswith("index") else member
    assert any(f.startswith(f"{changed}: SHA-256 is ") for f in fails), "datapackage caught it"


def test_edited_datapackage_is_caught(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, wacz = packaged
    with zipfile.ZipFile(wacz) as zf:
        package = json.loads(zf.read("datapackage.json"))
    package["resources"][0]["hash"] = "sha256:" + "0" * 64
    target = tmp_path / "edited.wacz"
    _rewrite_wacz(wacz, target, {"datapackage.json": json.dumps(package).encode()})
    code, fails, _ = run_verify(target, capsys)
    assert code == 1
    assert any(f.startswith("datapackage.json: SHA-256 is ") for f in fails)
    assert any(f.startswith(package["resources"][0]["path"] + ": SHA-256 is ") for f in fails)


def test_edited_surt_key_is_named_when_the_index_is_not_vouched_for(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crawl, _ = packaged
    work = copy_crawl(crawl, tmp_path / "crawl")
    (work / "fixity.sha256").unlink()  # nothing vouches for the index: keys are recomputed
    entry = html_target(work)
    index = work / "indexes" / "index.cdxj"
    lines = index.read_text().splitlines(keepends=True)
    marker = f'"offset": "{entry["offset"]}"'
    (k,) = [i for i, line in enumerate(lines) if marker in line]
    key = lines[k].split(" ", 1)[0]
    lines[k] = lines[k].replace(key, key + "-moved", 1)
    index.write_text("".join(sorted(lines)))
    code, fails, _ = run_verify(work, capsys)
    assert code == 1
    assert_named(fails, f"warc/{warc_of(work).name}", entry["offset"], entry["url"], "key '")


def test_added_and_missing_files_are_named(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crawl, _ = packaged
    work = copy_crawl(crawl, tmp_path / "crawl")
    extra = work / "warc" / "zz-extra.warc.gz"
    extra.write_bytes(_forged_record(FORGED))
    (work / "pages.jsonl").unlink()
    code, fails, _ = run_verify(work, capsys)
    assert code == 1
    assert any(f.startswith("warc/zz-extra.warc.gz: not in fixity.sha256") for f in fails)
    assert any(f.startswith("warc/zz-extra.warc.gz: not listed in crawl.json") for f in fails)
    assert_named(fails, "warc/zz-extra.warc.gz", "0", FORGED, "not in the index (added?)")
    assert any(f.startswith("pages.jsonl: missing") for f in fails)


# --------------------------------------------------------------------------
# Digests as warcio computes them


def _warcio_verdicts(path: Path) -> dict[int, str]:
    """offset -> 'pass' / 'fail' / 'revisit' / 'none', from `warcio check -v`."""
    result = subprocess.run(
        [str(WARCIO), "check", "-v", str(path)], capture_output=True, text=True, timeout=120
    )
    verdicts: dict[int, str] = {}
    offset = None
    for line in result.stdout.splitlines():
        m = re.match(r"\s+offset (\d+) WARC-Record-ID", line)
        if m:
            offset = int(m.group(1))
            continue
        if offset is None or not line.startswith("    "):
            continue
        text = line.strip()
        verdict = (
            "fail"
            if "failed" in text
            else "pass"
            if text == "digest pass"
            else "revisit"
            if "(revisit)" in text
            else "none"
            if text == "no digest to check"
            else f"? {text}"
        )
        if verdicts.get(offset) != "fail":
            verdicts[offset] = verdict
    return verdicts


def _our_verdicts(path: Path) -> dict[int, str]:
    verdicts: dict[int, str] = {}
    with open(path, "rb") as fh:
        for item in scan(fh):
            assert isinstance(item, Record), item
            oks = (item.block_ok, item.payload_ok)
            if False in oks:
                verdicts[item.offset] = "fail"
            elif item.rec_type == "revisit":
                # warcio check skips revisits; sunset also checks their block
                # (its own HTTP headers), which a clean crawl passes.
                assert item.block_ok is not False
                verdicts[item.offset] = "revisit"
            elif True in oks:
                verdicts[item.offset] = "pass"
            else:
                verdicts[item.offset] = "none"
    return verdicts


@pytest.fixture(params=[True, False], ids=["short-path", "general-parser"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways through the scanner: whole members at once, and the state machine."""
    monkeypatch.setattr(warcscan, "FAST", request.param)
    return bool(request.param)


def test_digests_agree_with_warcio_check_on_the_crawl(
    packaged: tuple[Path, Path], tmp_path: Path, fast: bool
) -> None:
    crawl, _ = packaged
    warc = warc_of(crawl)
    ours, theirs = _our_verdicts(warc), _warcio_verdicts(warc)
    assert ours == theirs
    assert set(ours.values()) >= {"pass", "revisit"}
    # Uncompressed, offsets are plain byte positions; warcio reports the same.
    plain = tmp_path / warc.name.removesuffix(".gz")
    plain.write_bytes(gzip.decompress(warc.read_bytes()))
    ours, theirs = _our_verdicts(plain), _warcio_verdicts(plain)
    assert ours == theirs and len(ours) == len(_our_verdicts(warc))
    # And on the gzip file with one payload byte changed.
    entry = html_target(crawl)
    bad = tmp_path / warc.name
    bad.write_bytes(flip_in_payload(warc.read_bytes(), int(entry["offset"]), int(entry["length"])))
    ours, theirs = _our_verdicts(bad), _warcio_verdicts(bad)
    assert ours == theirs
    assert [o for o, v in ours.items() if v == "fail"] == [int(entry["offset"])]


def _b32(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


def _member(rec_type: str, uri: str, block: bytes, payload: bytes | None) -> bytes:
    headers = [
        ("WARC-Type", rec_type),
        ("WARC-Record-ID", f"<urn:uuid:{hashlib.md5(block + uri.encode()).hexdigest()}>"),
        ("WARC-Date", "2026-01-02T03:04:05Z"),
        ("WARC-Target-URI", uri),
    ]
    if payload is not None:
        headers += [("WARC-Block-Digest", _b32(block)), ("WARC-Payload-Digest", _b32(payload))]
    headers += [("Content-Type", "application/http; msgtype=response")]
    headers += [("Content-Length", str(len(block)))]
    head = "WARC/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return gzip.compress(head.encode() + block + b"\r\n\r\n", mtime=0)


# (record type, URI, what warcio skips as HTTP headers, the payload after it)
EDGE_CASES: list[tuple[str, str, bytes, bytes]] = [
    ("response", "http://x/a", b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n", b"body"),
    ("response", "http://x/lf", b"HTTP/1.1 200 OK\nA: b\n\n", b"body"),
    # A line of whitespace ends the headers, whatever follows.
    ("response", "http://x/ws", b"HTTP/1.1 200 OK\r\nA: b\r\n \t\r\n", b"X: y\r\n\r\nbody"),
    # So does NBSP (Latin-1 or UTF-8) and the ASCII file separator: str.rstrip() eats them.
    ("response", "http://x/nbsp1", b"HTTP/1.1 200 OK\r\nA: b\r\n\xa0\r\n", b"X: y\r\n\r\nbody"),
    ("response", "http://x/nbsp8", b"HTTP/1.1 200 OK\r\nA: b\r\n\xc2\xa0\r\n", b"X\r\n\r\nbody"),
    ("response", "http://x/fs", b"HTTP/1.1 200 OK\r\nA: b\r\n\x1c\r\n", b"X: y\r\n\r\nbody"),
    # ... but not a Latin-1 letter.
    ("response", "http://x/e9", b"HTTP/1.1 200 OK\r\n\xe9\r\n\r\n", b"body"),
    ("response", "http://x/nohead", b"HTTP/1.1 200 OK\r\nA: b", b""),
    ("response", "http://x/blank", b"\r\n", b"HTTP/1.1 200 OK\r\n\r\nbody"),
    ("response", "dns:x", b"", b"20260102030405\nx. 60 IN A 127.0.0.1\n"),
    ("resource", "http://x/r", b"", b"HTTP/1.1 200 OK\r\n\r\nplain resource"),
    ("request", "https://x/q", b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n", b""),
    ("response", "http://x/empty", b"", b""),
]


def test_payload_boundary_follows_warcio_on_odd_headers(tmp_path: Path, fast: bool) -> None:
    """Where the payload starts, on header blocks that only warcio's rule decides."""
    good = tmp_path / "good.warc.gz"
    naive = tmp_path / "naive.warc.gz"
    with open(good, "wb") as g, open(naive, "wb") as n:
        for rec_type, uri, head, payload in EDGE_CASES:
            block = head + payload
            g.write(_member(rec_type, uri, block, payload))
            # A writer that ends headers at the first CRLF CRLF disagrees on some.
            cut = block.find(b"\r\n\r\n")
            n.write(_member(rec_type, uri, block, block[cut + 4 :] if cut >= 0 else b""))
        g.write(_member("response", "http://x/nodigest", b"HTTP/1.1 200 OK\r\n\r\n", None))
        g.write(_member("revisit", "http://x/a", b"HTTP/1.1 200 OK\r\n\r\n", b"other"))
    ours = _our_verdicts(good)
    assert ours == _warcio_verdicts(good)
    assert sorted(ours.values()).count("pass") == len(EDGE_CASES)
    assert ours[max(ours)] == "revisit" and "none" in ours.values()
    ours_naive = _our_verdicts(naive)
    assert ours_naive == _warcio_verdicts(naive)
    assert "fail" in ours_naive.values() and "pass" in ours_naive.values()


def test_digest_encodings() -> None:
    raw = hashlib.sha1(b"x").digest()
    assert digest_equal("sha1:" + base64.b32encode(raw).decode(), raw)
    assert digest_equal("sha1:" + raw.hex(), raw)
    assert digest_equal("sha1:" + base64.b64encode(raw).decode(), raw)
    assert not digest_equal("sha1:" + base64.b32encode(raw[::-1]).decode(), raw)
    assert not digest_equal("sha1:" + "8" * 32, raw)  # not base32, though int() would read it


def test_damage_resync_reports_once_and_keeps_reading(
    packaged: tuple[Path, Path],
) -> None:
    crawl, _ = packaged
    data = bytearray(warc_of(crawl).read_bytes())
    spans = _members(bytes(data))
    total = len(spans)
    # Garbage in the middle of one member: one damage, every other record read.
    off, length = spans[total // 3]
    data[off + 12 : off + length - 12] = os.urandom(length - 24)
    items = list(scan(io.BytesIO(bytes(data))))
    damage = [i for i in items if isinstance(i, Damage)]
    assert [d.offset for d in damage] == [off]
    assert sum(isinstance(i, Record) for i in items) == total - 1


def test_archived_warc_file_does_not_fool_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .warc.gz served by the old site, deflated as stored blocks inside its record.

    Its own gzip members then sit verbatim in the file and look like places
    to split the scan; the stretch cut there must be rescanned whole, and
    none of the archived file's records may surface as records.
    """
    inner = b"".join(
        _member(
            "response", f"http://inner/{k}", b"HTTP/1.1 200 OK\r\n\r\n" + os.urandom(9000), None
        )
        for k in range(40)
    )
    folder = tmp_path / "crawl"
    (folder / "warc").mkdir(parents=True)
    with open(folder / "warc" / "a.warc.gz", "wb") as fh:
        outer = []
        for k in range(60):
            if k % 20 == 10:
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\n\r\n"
                raw = _member("response", f"http://site/dump{k}.warc.gz", head + inner, inner)
                # Stored, not deflated: what zlib does with incompressible data.
                raw = gzip.compress(gzip.decompress(raw), compresslevel=0, mtime=0)
            else:
                body = b"HTTP/1.1 200 OK\r\n\r\n" + os.urandom(5000)
                raw = _member("response", f"http://site/{k}", body, body[19:])
            outer.append(raw)
            fh.write(raw)
    assert sum(len(r) for r in outer) > 8 * (64 << 10), "several stretches"
    cut_short: list[int] = []
    rejoin = verify_mod._rejoin

    def spy(tasks: list, done: dict) -> list:
        cut_short.append(sum(not r.clean_end for r in done.values()))
        return rejoin(tasks, done)

    monkeypatch.setattr(verify_mod, "_rejoin", spy)
    report = verify_mod.verify(folder)
    assert cut_short and cut_short[0] > 0, "some stretch was cut at a false boundary"
    assert report.lines() == ["indexes/index.cdxj: missing"]  # the only problem: a bare folder
    assert report.counts["records"] == 60
    assert report.counts["payload digests ok"] == 60


# --------------------------------------------------------------------------
# Memory


def test_memory_stays_flat_as_the_warc_grows(packaged: tuple[Path, Path], tmp_path: Path) -> None:
    """48 MB more WARC data, incompressible, costs verify no more memory."""
    crawl, _ = packaged
    small = copy_crawl(crawl, tmp_path / "small")
    big = copy_crawl(crawl, tmp_path / "big")
    with open(big / "warc" / "zz-big.warc.gz", "wb") as fh:
        for k in range(48):
            body = b"HTTP/1.1 200 OK\r\n\r\n" + os.urandom(1 << 20)
            fh.write(_member("response", f"http://x/{k}", body, body[19:]))
    peaks = [_peak_rss_kb(d) for d in (small, big)]
    assert peaks[1] - peaks[0] < 24 * 1024, peaks


def _peak_rss_kb(path: Path) -> int:
    # One process (no workers) so its own high-water mark is the whole cost.
    code = (
        "import sys; from pathlib import Path; import replay.verify as v\n"
        "v._workers = lambda tasks: 1\n"
        "r = v.verify(Path(sys.argv[1]))\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def test_wacz_with_a_repeated_member_name_is_not_intact(
    packaged: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings
    import zipfile

    _, wacz = packaged
    twice = tmp_path / "twice.wacz"
    shutil.copy(wacz, twice)
    with zipfile.ZipFile(twice) as zf:
        name = next(n for n in zf.namelist() if n.startswith("archive/"))
        data = zf.read(name)
    with warnings.catch_warnings(), zipfile.ZipFile(twice, "a") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate: that is the point
        zf.writestr(zipfile.ZipInfo(name), data)
    code, fails, out = run_verify(twice, capsys)
    assert code == 1, out
    assert any("more than once" in f for f in fails), fails
