"""`sunset replay`: browse a crawl folder or a WACZ file with pywb, on loopback only.

pywb runs from its own venv (see replay/tools.py) as a subprocess. Each run
gets a throwaway work folder holding everything pywb reads besides the
archive itself:

    <work>/config.yaml      one fixed collection; no live web, proxy or recorder
    <work>/indexes/*.cdxj   the archive's index, checked, with pywb's own index
                            added for any WARC file the archive's index misses
    <work>/archive/         symlinks to the WARC files (or to the WACZ itself)

Nothing is written into the archive. A WACZ whose WARC members are stored
uncompressed (as the WACZ spec recommends) is served straight out of the zip:
the index's offsets are shifted to where each member's bytes start, so pywb
reads the records from the .wacz file without unpacking it. Compressed members
are the exception and are extracted into the work folder.

Every index line pywb gets names a file in <work>/archive/ and a byte range
inside it, checked here; pywb resolves a record's file by gluing the index's
filename onto the archive path, so an unchecked line could point it anywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import io
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from replay.tools import tool_bin
from sunset.errors import SunsetError
from sunset.ui import console

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# Collection names pywb would route elsewhere (its own static files, the
# listing) or that make a confusing URL.
RESERVED_COLLS = frozenset({"static", "collinfo.json", "cdx", "_", "live", "record", "proxy"})
# pywb's default Content-Security-Policy for replayed pages minus "ws: wss:",
# which would let a page open a socket to any host; the archive holds no
# WebSocket traffic, so nothing replayable needs it.
CSP = (
    "default-src 'unsafe-eval' 'unsafe-inline' 'self' data: blob: mediastream:; form-action 'self'"
)
# Nothing listens on the discard port; see _pywb_env.
DEAD_PROXY = "http://127.0.0.1:9"


class ReplayFailed(SunsetError):
    """pywb could not be started or stopped serving; not the user's input."""

    exit_code = 1


@dataclass(frozen=True)
class Running:
    """A pywb serving one archive; ``url`` is the page to open first."""

    url: str
    base: str  # http://HOST:PORT
    coll: str
    host: str
    port: int
    pid: int
    start_url: str | None
    timestamp: str | None  # 14 digits, the start page's capture
    work: Path
    _proc: subprocess.Popen[bytes] = field(repr=False)

    def replay_url(self, url: str, timestamp: str | None = None, mod: str = "mp_") -> str:
        """The replay address of an archived ``url``.

        ``mod="mp_"`` asks for the page itself (what the framed view loads in
        its iframe), ``""`` for the framed view, ``"id_"`` for the original
        bytes without any rewriting.
        """
        ts = timestamp if timestamp is not None else (self.timestamp or "")
        return f"{self.base}/{self.coll}/{ts}{mod}/{url}"

    def wait(self, timeout: float | None = None) -> int | None:
        """Block until pywb exits (its exit status), or ``timeout`` passes (None)."""
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


@dataclass
class _Collection:
    coll: str
    start_url: str | None
    timestamp: str | None
    unindexed: list[Path]  # WARC files (links in <work>/archive) pywb must index itself


# -- the archive ---------------------------------------------------------------------


def _coll_name(name: str) -> str:
    coll = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return coll if coll and coll not in RESERVED_COLLS else "archive"


def _timestamp(value: object) -> str | None:
    """A capture time from pages.jsonl (ISO 8601, or already 14 digits) as pywb's 14 digits."""
    if not isinstance(value, str):
        return None
    if re.fullmatch(r"\d{14}", value):
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    # pywb's timestamps are UTC; a naive time is taken to be UTC already.
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.strftime("%Y%m%d%H%M%S")


def _start_page(lines: Iterable[str]) -> tuple[str | None, str | None]:
    """The first page listed (pages.jsonl of a crawl or a WACZ): its URL and timestamp."""
    for line in lines:
        try:
            page = json.loads(line)
        except ValueError:
            continue
        # A WACZ's pages.jsonl opens with a header line that has no url.
        if isinstance(page, dict) and isinstance(page.get("url"), str):
            if page.get("status") not in (None, 200, "200"):
                continue
            return page["url"], _timestamp(page.get("ts"))
    return None, None


def _parse_line(line: str) -> tuple[str, dict[str, Any]] | None:
    """(``SURT TIMESTAMP``, fields) of one CDXJ line; None if it is not CDXJ."""
    parts = line.split(" ", 2)
    if len(parts) != 3 or not parts[2].startswith("{"):
        return None
    try:
        fields = json.loads(parts[2])
    except ValueError:
        return None
    if not isinstance(fields, dict):
        return None
    return f"{parts[0]} {parts[1]}", fields


@dataclass(frozen=True)
class _Target:
    """Where the records of one WARC file named in an index really are."""

    link: str  # file name in <work>/archive/
    start: int  # where the WARC's first byte is in that file
    size: int


def _write_index(
    sources: Iterable[Iterable[str]], targets: dict[str, _Target], out: Path
) -> tuple[int, int, set[str]]:
    """Copy the CDXJ lines that point inside ``targets`` to ``out``, sorted.

    Returns (lines kept, lines dropped, WARC names indexed).
    """
    kept = dropped = 0
    seen: set[str] = set()
    ordered = True
    previous = ""
    with open(out, "w", encoding="utf-8") as fh:
        for source in sources:
            for raw in source:
                line = raw.rstrip("\r\n")
                if not line or line.startswith(("!", " ")):
                    continue  # blank lines and CDX headers
                parsed = _parse_line(line)
                if parsed is None:
                    dropped += 1
                    continue
                key, fields = parsed
                name = str(fields.get("filename", ""))
                name = name.removeprefix("archive/")  # some WACZ writers keep the folder
                target = targets.get(name)
                try:
                    offset, length = int(fields["offset"]), int(fields["length"])
                except (KeyError, TypeError, ValueError, OverflowError):
                    offset = length = -1
                if target is None or offset < 0 or length <= 0 or offset + length > target.size:
                    dropped += 1
                    continue
                seen.add(name)
                fields["filename"] = target.link
                fields["offset"] = str(target.start + offset)
                text = f"{key} {json.dumps(fields, ensure_ascii=False)}"
                ordered = ordered and text >= previous
                previous = text
                fh.write(text + "\n")
                kept += 1
    if not ordered:
        # pywb binary-searches its index; merged or hand-edited ones need sorting.
        lines = out.read_text(encoding="utf-8").splitlines()
        lines.sort()
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return kept, dropped, seen


def _link(target: Path, link: Path) -> None:
    try:
        link.symlink_to(target.resolve())
    except OSError as exc:
        raise ReplayFailed(f"cannot link {target} into {link.parent}: {exc.strerror}") from None


def _prepare_crawl(crawl: Path, work: Path) -> _Collection:
    warc_dir = crawl / "warc"
    if not warc_dir.is_dir():
        raise SunsetError(f"{crawl} is not a crawl folder (it has no warc/ folder)")
    warcs = sorted(
        p for p in warc_dir.iterdir() if p.name.endswith((".warc.gz", ".warc")) and p.is_file()
    )
    if not warcs:
        raise SunsetError(f"{crawl} holds no WARC files (warc/ is empty)")
    still_open = sum(1 for p in warc_dir.iterdir() if p.name.endswith(".open"))
    if still_open:
        console.print(f"[yellow]warning:[/] {still_open} WARC file(s) still being written; skipped")
    targets: dict[str, _Target] = {}
    for warc in warcs:
        _link(warc, work / "archive" / warc.name)
        targets[warc.name] = _Target(warc.name, 0, warc.stat().st_size)
    indexes = sorted((crawl / "indexes").glob("*.cdxj"))

    def lines(path: Path) -> Iterator[str]:
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from fh

    _, dropped, seen = _write_index(
        (lines(p) for p in indexes), targets, work / "indexes" / "crawl.cdxj"
    )
    if dropped:
        console.print(
            f"[yellow]warning:[/] {dropped} index line(s) point outside the crawl's WARC files;"
            " not served"
        )
    unindexed = [work / "archive" / w.name for w in warcs if w.name not in seen]
    pages = crawl / "pages.jsonl"
    start_url = timestamp = None
    if pages.is_file():
        with open(pages, encoding="utf-8", errors="replace") as fh:
            start_url, timestamp = _start_page(fh)
    name = crawl.resolve().name
    with contextlib.suppress(OSError, ValueError, AttributeError):
        name = str(json.loads((crawl / "crawl.json").read_text())["name"]) or name
    return _Collection(_coll_name(name), start_url, timestamp, unindexed)


def _data_start(fh: IO[bytes], info: zipfile.ZipInfo) -> int:
    """Where a member's bytes begin in the zip: after its local header, whose extra
    field may differ in length from the central directory's copy."""
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_len + extra_len


def _prepare_wacz(wacz: Path, work: Path) -> _Collection:
    link = "archive.wacz"
    try:
        zf = zipfile.ZipFile(wacz)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SunsetError(f"{wacz} is not a readable WACZ file: {exc}") from None
    with zf, open(wacz, "rb") as raw:
        try:
            targets: dict[str, _Target] = {}
            names = [i.filename for i in zf.infolist()]
            if len(names) != len(set(names)):
                raise SunsetError(
                    f"{wacz}: a file name appears twice in the WACZ; run 'sunset verify' on it"
                )
            for info in zf.infolist():
                name = info.filename
                base = name.removeprefix("archive/")
                if info.is_dir() or base == name or "/" in base or base.startswith("."):
                    continue
                if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
                    targets[base] = _Target(link, _data_start(raw, info), info.file_size)
                else:
                    with zf.open(info) as src, open(work / "archive" / base, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    targets[base] = _Target(base, 0, info.file_size)
            if not targets:
                raise SunsetError(f"{wacz} holds no WARC files under archive/")
            if any(t.link == link for t in targets.values()):
                _link(wacz, work / "archive" / link)
            index_names = sorted(
                n
                for n in zf.namelist()
                if n.startswith("indexes/") and n.endswith((".cdxj", ".cdx.gz", ".cdx"))
            )
            if not index_names:
                raise SunsetError(f"{wacz} has no CDXJ index under indexes/")

            def lines(member: str) -> Iterator[str]:
                with zf.open(member) as fh:
                    # A .cdx.gz is a ZipNum index: gzip members of CDXJ lines.
                    stream = gzip.GzipFile(fileobj=fh) if member.endswith(".gz") else fh
                    yield from io.TextIOWrapper(stream, encoding="utf-8", errors="replace")

            kept, dropped, _ = _write_index(
                (lines(n) for n in index_names), targets, work / "indexes" / "wacz.cdxj"
            )
            start_url = timestamp = None
            if "pages/pages.jsonl" in zf.namelist():
                with zf.open("pages/pages.jsonl") as fh:
                    start_url, timestamp = _start_page(
                        io.TextIOWrapper(fh, encoding="utf-8", errors="replace")
                    )
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
            raise SunsetError(f"{wacz} is damaged: {exc}") from None
    if not kept:
        raise SunsetError(f"{wacz}: no index line points at a record in its WARC files")
    if dropped:
        console.print(
            f"[yellow]warning:[/] {dropped} index line(s) point outside the WACZ's WARC files;"
            " not served"
        )
    name = wacz.name.removesuffix(".wacz")
    return _Collection(_coll_name(name), start_url, timestamp, [])


def _prepare(archive: Path, work: Path) -> _Collection:
    for sub in ("archive", "indexes"):
        (work / sub).mkdir()
    if archive.is_dir():
        return _prepare_crawl(archive, work)
    if archive.is_file():
        return _prepare_wacz(archive, work)
    if not archive.exists():
        raise SunsetError(f"{archive} does not exist")
    raise SunsetError(f"{archive} is neither a crawl folder nor a WACZ file")


def _index_with_pywb(files: list[Path], work: Path) -> None:
    """Index WARC files the archive's own index does not cover, with pywb's indexer."""
    if not files:
        return
    console.print(f"indexing {len(files)} WARC file(s) the crawl's index does not cover …")
    indexer = tool_bin("pywb", "cdx-indexer")
    out = work / "indexes" / "pywb.cdxj"
    result = subprocess.run(
        [
            indexer,
            *("--cdxj", "--sort", "--postappend"),
            *("--dir-root", str(work / "archive")),
            *("--output", str(out)),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        env=_pywb_env(),
        cwd=work,
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise SunsetError(f"pywb could not index the WARC files: {lines[-1] if lines else '?'}")


# -- the network ---------------------------------------------------------------------


def check_host(host: str) -> str:
    """The loopback address to listen on; anything else is refused."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise SunsetError(f"--host {host}: give a loopback address such as 127.0.0.1") from None
    if not addr.is_loopback:
        raise SunsetError(
            f"--host {host}: replay listens on loopback only (127.0.0.1 or ::1);"
            " the archive is not for serving to a network"
        )
    return str(addr)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _free_port(host: str) -> int:
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _check_port(host: str, port: int) -> None:
    # pywb's server sets SO_REUSEADDR, so only a live listener keeps it out;
    # test the same way, or a port in TIME_WAIT would be refused here only.
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise SunsetError(f"cannot listen on {host} port {port}: {exc.strerror}") from None


def _base(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _status(url: str) -> int | None:
    # No proxy from the environment: this must reach the local pywb.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _pywb_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    # pywb fetches from no web server in this config; should a code path ever
    # try, proxy settings send it to a dead port instead of the internet. Its
    # own front end reaches its internal record server on localhost, which is
    # exempt.
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        env[var] = env[var.upper()] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = "localhost,127.0.0.1,::1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _config(work: Path, coll: str) -> str:
    # JSON strings are valid YAML and quote any path safely.
    q = json.dumps
    return f"""\
# Written by `sunset replay` for one run; removed when it stops.
debug: false
# Only the collection below: no collections found on disk, no live web
# ($live), no recording, no proxy mode.
enable_auto_colls: false
collections_root: {q(str(work / "no-collections"))}
collections:
  {q(coll)}:
    index_paths: {q(str(work / "indexes"))}
    archive_paths: {q(str(work / "archive") + os.sep)}
framed_replay: true
client_side_replay: false
enable_memento: true
enable_auto_fetch: false
csp-header: {q(CSP)}
"""


def _death_signal() -> Callable[[], None] | None:
    """A pre-exec hook so that pywb gets SIGTERM if sunset dies without cleaning up
    (SIGKILL, a crash): the kernel's PR_SET_PDEATHSIG, Linux only.

    prctl is looked up here, in the parent, so the child runs nothing between
    fork and exec but the call itself (no imports, no dlopen locks).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    term = int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, term)

    return hook


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop pywb and anything it started (it leads its own process group)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(STOP_TIMEOUT)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _start(
    wayback: Path, work: Path, coll: str, host: str, port: int
) -> tuple[subprocess.Popen[bytes], int]:
    """Start pywb and wait until it serves the collection; returns it and its port."""
    attempts = 1 if port else 5
    for attempt in range(attempts):
        chosen = port or _free_port(host)
        log = work / "pywb.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(wayback), "--bind", host, "--port", str(chosen), "--threads", "8"],
                cwd=work,
                env=_pywb_env() | {"PYWB_CONFIG_FILE": str(work / "config.yaml")},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # The signal comes when the thread that started pywb ends, so
                # serving() belongs in a thread that outlives the block.
                preexec_fn=_death_signal(),
            )
        ready = f"{_base(host, chosen)}/{coll}/"
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while proc.poll() is None:
                if _status(ready) == 200:
                    return proc, chosen
                if time.monotonic() > deadline:
                    raise ReplayFailed(
                        f"pywb did not answer on {host}:{chosen} within {START_TIMEOUT:.0f} s:"
                        f" {_tail(log)}"
                    )
                time.sleep(0.05)
        except BaseException:
            _stop(proc)
            raise
        why = _tail(log) or f"exit status {proc.returncode}"
        if "Address already in use" in why:
            if attempt + 1 < attempts:
                continue
            raise SunsetError(f"cannot listen on {host} port {chosen}: address already in use")
        raise ReplayFailed(f"pywb failed to start: {why}")
    raise AssertionError("unreachable")


@contextmanager
def serving(archive: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[Running]:
    """Serve ``archive`` (a crawl folder or a .wacz) with pywb until the block exits.

    ``port=0`` picks a free port. On exit pywb is stopped, the port is free
    again and the work folder is gone.
    """
    host = check_host(host)
    if port:
        _check_port(host, port)
    archive = Path(archive)
    work = Path(tempfile.mkdtemp(prefix="sunset-replay-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        collection = _prepare(archive, work)
        # After the archive is checked: a bad path fails fast even before
        # pywb's first install.
        wayback = tool_bin("pywb", "wayback")
        _index_with_pywb(collection.unindexed, work)
        (work / "config.yaml").write_text(_config(work, collection.coll), encoding="utf-8")
        proc, chosen = _start(wayback, work, collection.coll, host, port)
        base = _base(host, chosen)
        if collection.start_url:
            url = f"{base}/{collection.coll}/{collection.timestamp or '*'}/{collection.start_url}"
        else:
            url = f"{base}/{collection.coll}/"
        yield Running(
            url=url,
            base=base,
            coll=collection.coll,
            host=host,
            port=chosen,
            pid=proc.pid,
            start_url=collection.start_url,
            timestamp=collection.timestamp,
            work=work,
            _proc=proc,
        )
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP end the run the way Ctrl-C does, so pywb is stopped.

    SIGINT too: a shell starts background jobs with SIGINT ignored, and Python
    then never turns it into KeyboardInterrupt; a server that says "Ctrl-C to
    stop" must stop on it wherever it was started from.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous: dict[int, Callable[..., Any] | int | None] = {}
    for sig in wanted:
        previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cli_replay(archive: Path, bind: str, port: int) -> None:
    """Body of `sunset replay`: serve until Ctrl-C or SIGTERM, then stop pywb cleanly."""
    with _signals_interrupt():
        try:
            with serving(archive, bind, port) as running:
                console.print(
                    f"replaying {archive} with pywb on {running.base}/ (Ctrl-C to stop)",
                    soft_wrap=True,
                )
                # The one line on stdout: the address to open, for people and scripts.
                click.echo(running.url)
                code = running.wait()
                raise ReplayFailed(
                    f"pywb stopped unexpectedly (exit status {code}): {_tail(running.work / 'pywb.log')}"
                )
        except KeyboardInterrupt:
            console.print("replay stopped")
