"""``sunset package``: a crawl folder (crawler/CONTRACT.md) as one WACZ 1.1.1 file.

Everything is streamed: each WARC file is copied into the ZIP in 1 MiB
chunks (stored, as the spec requires for already-compressed data) and its
SHA-256 is computed on the same pass, so memory stays flat however big the
crawl. The layout is described in :mod:`replay.wacz`.

Besides the WACZ, ``package`` leaves ``fixity.sha256`` in the crawl folder:
the SHA-256 of every WARC file, the index and the page list, in the format
``sha256sum -c`` reads. ``sunset verify CRAWL_DIR`` checks the files against
it (and says so when there is none), so a crawl folder kept next to its WACZ
is as checkable as the WACZ itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from replay.wacz import (
    ARCHIVE_DIR,
    CDX_GZ,
    DATAPACKAGE,
    DATAPACKAGE_DIGEST,
    IDX,
    PAGES,
    PAGES_HEADER,
    WACZ_VERSION,
    CompressedIndexWriter,
    Sha256Writer,
)
from sunset import __version__
from sunset.errors import SunsetError
from sunset.ui import console, progress, summary_table

CHUNK = 1 << 20
FIXITY_NAME = "fixity.sha256"
INDEX_PATH = Path("indexes") / "index.cdxj"
WARC_SUFFIXES = (".warc.gz", ".warc")


@dataclass
class Resource:
    """One file of the package, as datapackage.json lists it."""

    path: str
    sha256: str
    size: int

    def entry(self, name: str) -> dict[str, object]:
        return {
            "name": name,
            "path": self.path,
            "hash": f"sha256:{self.sha256}",
            "bytes": self.size,
        }


@dataclass
class PackageResult:
    wacz: Path
    size: int = 0
    warc_files: int = 0
    warc_bytes: int = 0
    index_lines: int = 0
    pages: int = 0
    pages_skipped: int = 0
    main_page: str | None = None
    fixity: Path | None = None
    seconds: float = 0.0
    resources: list[Resource] = field(default_factory=list)


@dataclass
class _Crawl:
    root: Path
    name: str
    warcs: list[Path]
    index: Path
    pages: Path | None
    info: dict[str, object]


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def inspect_crawl(crawl_dir: Path) -> _Crawl:
    """The crawl's files, or SunsetError saying in one line why it cannot be packaged."""
    if not crawl_dir.exists():
        raise SunsetError(f"{crawl_dir}: no such folder")
    if not crawl_dir.is_dir():
        raise SunsetError(f"{crawl_dir}: not a folder; give the crawl folder (it holds warc/)")
    warc_dir = crawl_dir / "warc"
    entries = sorted(warc_dir.iterdir()) if warc_dir.is_dir() else []
    unfinished = [p.name for p in entries if p.name.endswith(".open")]
    if unfinished:
        raise SunsetError(
            f"{crawl_dir} is unfinished: warc/{unfinished[0]} is still open"
            " (let the crawl finish, or resume it with 'sunset crawl --resume')"
        )
    warcs = [p for p in entries if p.is_file() and p.name.endswith(WARC_SUFFIXES)]
    if not warcs:
        raise SunsetError(f"{crawl_dir}: no WARC files in {warc_dir}; is this a crawl folder?")
    index = crawl_dir / INDEX_PATH
    if not index.is_file():
        raise SunsetError(
            f"{crawl_dir}: no index at {INDEX_PATH} (the crawl did not finish indexing;"
            " rerun it with --resume)"
        )
    info = _read_json(crawl_dir / "crawl.json")
    name = info.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", crawl_dir.resolve().name).strip(".-") or "crawl"
    pages = crawl_dir / "pages.jsonl"
    return _Crawl(crawl_dir, name, warcs, index, pages if pages.is_file() else None, info)


def _resource_name(path: str, taken: set[str]) -> str:
    # Frictionless insists on lower-case names of [-a-z0-9._/]; WARC names
    # carry the crawler's hostname, which may not fit.
    base = re.sub(r"[^-a-z0-9._/]", "-", path.rsplit("/", 1)[-1].lower()) or "file"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def _zip_info(path: str, mtime: float | None, compress: int) -> zipfile.ZipInfo:
    stamp = time.localtime(mtime if mtime is not None else time.time())
    # ZIP dates start in 1980.
    info = zipfile.ZipInfo(path, date_time=max(stamp[:6], (1980, 1, 1, 0, 0, 0)))
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def _copy_warc(zf: zipfile.ZipFile, src: Path, advance: Callable[[int], None]) -> Resource:
    size = src.stat().st_size
    info = _zip_info(ARCHIVE_DIR + src.name, src.stat().st_mtime, zipfile.ZIP_STORED)
    info.file_size = size  # lets zipfile choose ZIP64 up front for big files
    with open(src, "rb") as fh, zf.open(info, "w", force_zip64=size >= (1 << 31)) as dst:
        out = Sha256Writer(dst)
        while chunk := fh.read(CHUNK):
            out.write(chunk)
            advance(len(chunk))
    if out.size != size:
        raise SunsetError(f"{src} changed size while being packaged ({size:,} → {out.size:,})")
    return Resource(info.filename, out.hexdigest(), out.size)


def _iso_from_14(ts: str) -> str | None:
    if not re.fullmatch(r"\d{14}", ts):
        return None
    return f"{ts[:4]}-{ts[4:6]}-{ts[6:8]}T{ts[8:10]}:{ts[10:12]}:{ts[12:14]}Z"


@dataclass
class _IndexPass:
    lines: int = 0
    sha256: str = ""
    main_ts: str | None = None


def _check_index(crawl: _Crawl, start_url: str | None) -> _IndexPass:
    """Read the crawl's CDXJ once before anything is written: refuse it early if broken."""
    names = {p.name for p in crawl.warcs}
    result = _IndexPass()
    src_hash = hashlib.sha256()
    previous = b""
    with open(crawl.index, "rb") as fh:
        for number, line in enumerate(fh, 1):
            src_hash.update(line)
            if not line.strip():
                continue
            where = f"{crawl.index}:{number}"
            try:
                _key, ts, body = line.split(b" ", 2)
                entry = json.loads(body)
            except ValueError:
                raise SunsetError(f"{where}: not a CDXJ line") from None
            filename = entry.get("filename") if isinstance(entry, dict) else None
            if not isinstance(filename, str) or filename not in names:
                raise SunsetError(f"{where}: refers to {filename!r}, which is not in warc/")
            line = line.rstrip(b"\n")
            # Players binary-search the blocks: an unsorted index loses captures.
            if line < previous:
                raise SunsetError(f"{where}: the index is not sorted")
            previous = line
            if result.main_ts is None and start_url and entry.get("url") == start_url:
                result.main_ts = ts.decode("ascii", "replace")
            result.lines += 1
    result.sha256 = src_hash.hexdigest()
    return result


def _write_index(zf: zipfile.ZipFile, crawl: _Crawl, checked: _IndexPass) -> list[Resource]:
    """indexes/index.cdx.gz and indexes/index.idx from the crawl's CDXJ."""
    src_hash = hashlib.sha256()
    info = _zip_info(CDX_GZ, crawl.index.stat().st_mtime, zipfile.ZIP_STORED)
    info.file_size = crawl.index.stat().st_size  # an upper bound: picks ZIP64 if needed
    with open(crawl.index, "rb") as fh, zf.open(info, "w") as dst:
        out = Sha256Writer(dst)
        writer = CompressedIndexWriter(out)
        for line in fh:
            src_hash.update(line)
            if line.strip():
                writer.add(line if line.endswith(b"\n") else line + b"\n")
        writer.flush()
    if src_hash.hexdigest() != checked.sha256:
        raise SunsetError(f"{crawl.index} changed while being packaged")
    cdx = Resource(CDX_GZ, out.hexdigest(), out.size)
    return [cdx, _write_bytes(zf, IDX, writer.idx_bytes())]


def _write_bytes(zf: zipfile.ZipFile, path: str, data: bytes) -> Resource:
    info = _zip_info(path, None, zipfile.ZIP_DEFLATED)
    zf.writestr(info, data)
    return Resource(path, hashlib.sha256(data).hexdigest(), len(data))


def _write_pages(
    zf: zipfile.ZipFile, crawl: _Crawl, result: PackageResult
) -> tuple[Resource, str | None, list[tuple[str, str]]]:
    """pages/pages.jsonl from the crawl's pages.jsonl: (resource, its sha256, first pages)."""
    src_hash = hashlib.sha256() if crawl.pages is not None else None
    first: list[tuple[str, str]] = []
    info = _zip_info(PAGES, None, zipfile.ZIP_DEFLATED)
    with zf.open(info, "w") as dst:
        out = Sha256Writer(dst)
        out.write(json.dumps(PAGES_HEADER).encode() + b"\n")
        if crawl.pages is not None:
            with open(crawl.pages, "rb") as fh:
                for line in fh:
                    assert src_hash is not None
                    src_hash.update(line)
                    page = _page(line)
                    if page is None:
                        if line.strip():
                            result.pages_skipped += 1
                        continue
                    out.write(json.dumps(page, ensure_ascii=False).encode() + b"\n")
                    result.pages += 1
                    if not first:
                        first.append((page["url"], page["ts"]))
    digest = src_hash.hexdigest() if src_hash is not None else None
    return Resource(PAGES, out.hexdigest(), out.size), digest, first


def _page(line: bytes) -> dict[str, str] | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    url, ts, title = row.get("url"), row.get("ts"), row.get("title")
    if not isinstance(url, str) or not isinstance(ts, str):
        return None
    page = {"url": url, "ts": ts}
    if isinstance(title, str) and title:
        page["title"] = title
    return page


def _warcinfo_description(warc: Path) -> str | None:
    """The ``description:`` of the first file's warcinfo record, if it opens with one."""
    try:
        with open(warc, "rb") as fh:
            head = fh.read(1 << 16)
        text = zlib.decompressobj(31).decompress(head, 1 << 16) if head[:2] == b"\x1f\x8b" else head
    except (OSError, zlib.error):
        return None
    if b"WARC-Type: warcinfo" not in text[:2048]:
        return None
    m = re.search(rb"\ndescription:[ \t]*([^\r\n]+)", text)
    return m.group(1).decode("utf-8", "replace").strip() if m else None


def _start_url(info: dict[str, object]) -> str | None:
    settings = info.get("settings")
    urls = settings.get("start_urls") if isinstance(settings, dict) else None
    if isinstance(urls, list) and urls and isinstance(urls[0], str):
        return urls[0]
    return None


def _output_path(crawl: _Crawl, out: Path | None) -> Path:
    if out is None:
        return crawl.root / f"{crawl.name}.wacz"
    if out.is_dir():
        return out / f"{crawl.name}.wacz"
    if out.suffix != ".wacz":
        raise SunsetError(f"{out}: a WACZ file name must end in .wacz")
    if not out.parent.is_dir():
        raise SunsetError(f"{out}: folder {out.parent} does not exist")
    return out


def build_wacz(crawl_dir: Path, out: Path | None = None, *, fixity: bool = True) -> PackageResult:
    """Write the WACZ for ``crawl_dir``; see the module docstring."""
    started = time.monotonic()
    crawl = inspect_crawl(crawl_dir)
    target = _output_path(crawl, out)
    result = PackageResult(wacz=target)
    tmp = target.with_name(f".{target.name}.part")
    start_url = _start_url(crawl.info)
    sizes = [p.stat().st_size for p in crawl.warcs]
    fixity_lines: list[tuple[str, str]] = []
    index = _check_index(crawl, start_url)
    try:
        with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
            with progress("packaging", total=sum(sizes), unit="bytes") as tracker:
                for warc in crawl.warcs:
                    res = _copy_warc(zf, warc, tracker.advance)
                    result.resources.append(res)
                    fixity_lines.append((res.sha256, f"warc/{warc.name}"))
            result.resources += _write_index(zf, crawl, index)
            fixity_lines.append((index.sha256, INDEX_PATH.as_posix()))
            pages, pages_sha, first = _write_pages(zf, crawl, result)
            result.resources.append(pages)
            if pages_sha is not None:
                fixity_lines.append((pages_sha, "pages.jsonl"))
            main_url, main_date = start_url, _iso_from_14(index.main_ts or "")
            if main_date is None and first:
                main_url, main_date = first[0]
            result.main_page = main_url
            package = _datapackage(crawl, result.resources, main_url, main_date)
            data = (json.dumps(package, indent=2, ensure_ascii=False) + "\n").encode()
            _write_bytes(zf, DATAPACKAGE, data)
            digest = {"path": DATAPACKAGE, "hash": "sha256:" + hashlib.sha256(data).hexdigest()}
            _write_bytes(zf, DATAPACKAGE_DIGEST, (json.dumps(digest, indent=2) + "\n").encode())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    result.index_lines = index.lines
    result.warc_files = len(crawl.warcs)
    result.warc_bytes = sum(sizes)
    result.size = target.stat().st_size
    if fixity:
        result.fixity = _write_fixity(crawl.root, fixity_lines)
    result.seconds = round(time.monotonic() - started, 2)
    return result


def _datapackage(
    crawl: _Crawl, resources: list[Resource], main_url: str | None, main_date: str | None
) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    package: dict[str, object] = {
        "profile": "data-package",
        "wacz_version": WACZ_VERSION,
        "title": crawl.name,
    }
    description = _warcinfo_description(crawl.warcs[0])
    if description:
        package["description"] = description
    package["created"] = now
    package["software"] = f"sunset {__version__}"
    if main_url:
        package["mainPageUrl"] = main_url
        if main_date:
            package["mainPageDate"] = main_date
    taken: set[str] = set()
    package["resources"] = [r.entry(_resource_name(r.path, taken)) for r in resources]
    return package


def _write_fixity(root: Path, lines: list[tuple[str, str]]) -> Path | None:
    """CRAWL_DIR/fixity.sha256, atomically; a read-only crawl folder only costs a warning."""
    path = root / FIXITY_NAME
    tmp = root / f".{FIXITY_NAME}.part"
    try:
        tmp.write_text("".join(f"{digest}  {name}\n" for digest, name in lines), encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        console.print(f"warning: could not write {path}: {exc.strerror or exc}")
        return None
    return path


def cli_package(crawl_dir: Path, out: Path | None) -> None:
    """``sunset package``: build the WACZ and print what went into it."""
    result = build_wacz(crawl_dir, out)
    rows: list[tuple[str, object]] = [
        ("WACZ", str(result.wacz)),
        ("size (bytes)", result.size),
        ("WARC files", result.warc_files),
        ("WARC bytes", result.warc_bytes),
        ("index lines", result.index_lines),
        ("pages", result.pages),
    ]
    if result.pages_skipped:
        rows.append(("page lines skipped (unreadable)", result.pages_skipped))
    if result.main_page:
        rows.append(("main page", result.main_page))
    rows.append(("fixity manifest", str(result.fixity) if result.fixity else "not written"))
    rows.append(("seconds", result.seconds))
    summary_table(f"package — {crawl_dir}", rows)
