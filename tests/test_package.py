"""`sunset package` on a real crawl of the replica: a WACZ that `wacz validate` accepts."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from replay.tools import tool_bin
from replica import generate, serve

ROOT = Path(__file__).resolve().parent.parent


def sunset(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def crawled_replica(factory: pytest.TempPathFactory) -> Path:
    """A finished crawl of a 60-page replica, made once per test session.

    test_verify.py uses it too; whoever asks first crawls, the other finds it
    done. Tests copy it (copy_crawl) before writing anything into it.
    """
    base = factory.getbasetemp() / "package-verify-crawl"
    crawl = base / "crawl"
    if (crawl / "crawl.json").is_file():
        return crawl
    shutil.rmtree(base, ignore_errors=True)
    site = base / "site"
    generate(site, pages=60, seed=5, theme="protostar")
    with serve(site) as srv:
        connect = [a for entry in srv.connect_to for a in ("--connect-to", entry)]
        result = sunset("crawl", "-p", "demo", "--out", str(crawl), "--name", "pv", *connect)
    assert result.returncode == 0, result.stderr
    return crawl


def copy_crawl(crawl: Path, dest: Path) -> Path:
    # Only what the crawl contract defines; state/ is resume bookkeeping.
    shutil.copytree(crawl, dest, ignore=shutil.ignore_patterns("state", "*.wacz"))
    return dest


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sunset: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return crawled_replica(tmp_path_factory)


@pytest.fixture(scope="module")
def packaged(crawl: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(crawl copy, its WACZ) from `sunset package` with the default output."""
    work = copy_crawl(crawl, tmp_path_factory.mktemp("pkg") / "crawl")
    result = sunset("package", str(work))
    assert result.returncode == 0, result.stderr
    wacz = work / "pv.wacz"
    assert wacz.is_file()
    assert "pv.wacz" in result.stdout
    return work, wacz


def test_wacz_validate_accepts_it(packaged: tuple[Path, Path]) -> None:
    _, wacz = packaged
    result = subprocess.run(
        [str(tool_bin("wacz")), "validate", "-f", str(wacz)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation succeeded" in result.stdout


def test_layout_and_compression(packaged: tuple[Path, Path]) -> None:
    work, wacz = packaged
    warcs = sorted(p.name for p in (work / "warc").glob("*.warc.gz"))
    with zipfile.ZipFile(wacz) as zf:
        infos = {i.filename: i for i in zf.infolist()}
        assert sorted(n[len("archive/") :] for n in infos if n.startswith("archive/")) == warcs
        for name in warcs:
            info = infos[f"archive/{name}"]
            # Stored byte for byte: players range-read records inside the ZIP.
            assert info.compress_type == zipfile.ZIP_STORED
            assert zf.read(info) == (work / "warc" / name).read_bytes()
        assert infos["indexes/index.cdx.gz"].compress_type == zipfile.ZIP_STORED
        assert {"indexes/index.idx", "pages/pages.jsonl", "datapackage.json"} <= set(infos)
        assert "datapackage-digest.json" in infos


def test_datapackage_lists_every_file_with_its_hash(packaged: tuple[Path, Path]) -> None:
    work, wacz = packaged
    with zipfile.ZipFile(wacz) as zf:
        raw = zf.read("datapackage.json")
        package = json.loads(raw)
        digest = json.loads(zf.read("datapackage-digest.json"))
        assert digest == {"path": "datapackage.json", "hash": f"sha256:{_sha(raw)}"}
        assert package["profile"] == "data-package"
        assert package["wacz_version"] == "1.1.1"
        assert package["software"].startswith("sunset ")
        assert package["title"] == "pv"
        assert time.strptime(package["created"], "%Y-%m-%dT%H:%M:%SZ")
        members = sorted(n for n in zf.namelist() if not n.startswith("datapackage"))
        assert sorted(r["path"] for r in package["resources"]) == members
        for resource in package["resources"]:
            data = zf.read(resource["path"])
            assert resource["hash"] == f"sha256:{_sha(data)}"
            assert resource["bytes"] == len(data)
            assert resource["name"] == resource["name"].lower()
    info = json.loads((work / "crawl.json").read_text())
    assert package["mainPageUrl"] == info["settings"]["start_urls"][0]
    assert time.strptime(package["mainPageDate"], "%Y-%m-%dT%H:%M:%SZ")


def test_pages_and_index_carry_the_crawls(packaged: tuple[Path, Path]) -> None:
    work, wacz = packaged
    with zipfile.ZipFile(wacz) as zf:
        pages = zf.read("pages/pages.jsonl").decode().splitlines()
        cdx_gz = zf.read("indexes/index.cdx.gz")
        idx = zf.read("indexes/index.idx").decode().splitlines()
    assert json.loads(pages[0]) == {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    crawl_pages = [json.loads(line) for line in (work / "pages.jsonl").read_text().splitlines()]
    assert len(pages) - 1 == len(crawl_pages) > 0
    for line, page in zip(pages[1:], crawl_pages, strict=True):
        row = json.loads(line)
        assert row["url"] == page["url"] and row["ts"] == page["ts"]
        assert row.get("title") == (page.get("title") or None)
    # The compressed index inflates back to the crawl's CDXJ, byte for byte.
    assert gzip.decompress(cdx_gz) == (work / "indexes" / "index.cdxj").read_bytes()
    meta = idx[0].split(" ", 2)
    assert meta[:2] == ["!meta", "0"]
    assert json.loads(meta[2]) == {"format": "cdxj-gzip-1.0", "filename": "index.cdx.gz"}
    end = 0
    for line in idx[1:]:
        prefix, body = line.split(" {", 1)
        block = json.loads("{" + body)
        assert block["offset"] == end
        data = cdx_gz[block["offset"] : block["offset"] + block["length"]]
        assert block["digest"] == f"sha256:{_sha(data)}"
        first = gzip.decompress(data).split(b"\n", 1)[0].decode()
        assert first.startswith(prefix + " {")
        end += block["length"]
    assert end == len(cdx_gz)


def test_fixity_manifest_reads_with_sha256sum(packaged: tuple[Path, Path]) -> None:
    work, _ = packaged
    manifest = (work / "fixity.sha256").read_text().splitlines()
    names = {line.split("  ", 1)[1] for line in manifest}
    assert {"indexes/index.cdxj", "pages.jsonl"} <= names
    assert {f"warc/{p.name}" for p in (work / "warc").glob("*.warc.gz")} <= names
    if shutil.which("sha256sum"):
        check = subprocess.run(
            ["sha256sum", "--strict", "-c", "fixity.sha256"],
            cwd=work,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout + check.stderr


def test_out_option(packaged: tuple[Path, Path], tmp_path: Path) -> None:
    work, wacz = packaged
    target = tmp_path / "named.wacz"
    assert sunset("package", str(work), "--out", str(target)).returncode == 0
    folder = tmp_path / "folder"
    folder.mkdir()
    assert sunset("package", str(work), "-o", str(folder)).returncode == 0
    for made in (target, folder / "pv.wacz"):
        with zipfile.ZipFile(made) as zf, zipfile.ZipFile(wacz) as ref:
            assert sorted(zf.namelist()) == sorted(ref.namelist())
    assert "end in .wacz" in one_line_error(
        sunset("package", str(work), "--out", str(tmp_path / "x.zip"))
    )
    assert not list(tmp_path.glob(".*.part")), "no partial file left behind"


def test_refuses_unfinished_crawl(crawl: Path, tmp_path: Path) -> None:
    work = copy_crawl(crawl, tmp_path / "crawl")
    warc = next((work / "warc").glob("*.warc.gz"))
    warc.rename(warc.with_name(warc.name + ".open"))
    line = one_line_error(sunset("package", str(work)))
    assert ".open" in line and "unfinished" in line
    assert not list(work.glob("*.wacz"))


def test_refuses_crawl_without_index(crawl: Path, tmp_path: Path) -> None:
    work = copy_crawl(crawl, tmp_path / "crawl")
    (work / "indexes" / "index.cdxj").unlink()
    assert "no index" in one_line_error(sunset("package", str(work)))
    assert not list(work.glob("*.wacz")) and not list(work.glob(".*.part"))


def test_refuses_index_naming_a_missing_warc(crawl: Path, tmp_path: Path) -> None:
    work = copy_crawl(crawl, tmp_path / "crawl")
    index = work / "indexes" / "index.cdxj"
    lines = index.read_text().splitlines(keepends=True)
    entry = json.loads(lines[3].split(" ", 2)[2])
    lines[3] = lines[3].replace(entry["filename"], "gone.warc.gz")
    index.write_text("".join(lines))
    line = one_line_error(sunset("package", str(work)))
    assert "gone.warc.gz" in line and ":4:" in line


def test_bad_input(tmp_path: Path) -> None:
    assert "no such folder" in one_line_error(sunset("package", str(tmp_path / "nope")))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no WARC files" in one_line_error(sunset("package", str(empty)))


def test_memory_stays_flat_as_the_warc_grows(crawl: Path, tmp_path: Path) -> None:
    """Packaging 64 MB more WARC data costs no more memory: it is streamed."""
    small = copy_crawl(crawl, tmp_path / "small")
    big = copy_crawl(crawl, tmp_path / "big")
    # package copies WARC files without parsing them, so random bytes will do.
    with open(big / "warc" / "zz-padding.warc.gz", "wb") as fh:
        for _ in range(64):
            fh.write(os.urandom(1 << 20))
    peaks = [_peak_rss_kb("replay.package", "build_wacz", d) for d in (small, big)]
    assert peaks[1] - peaks[0] < 16 * 1024, peaks


def _peak_rss_kb(module: str, function: str, path: Path) -> int:
    """VmHWM of a fresh interpreter that runs ``module.function(path)``, in kB."""
    code = (
        f"import sys; from pathlib import Path; from {module} import {function}\n"
        f"{function}(Path(sys.argv[1]))\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.split()[-1])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
