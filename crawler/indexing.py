"""The crawl's CDXJ index, built with cdxj-indexer while the WARC files are written.

Indexing a WARC file takes about a seventh of the time the crawl took to write
it, all of it CPU. Done after the crawl, as it used to be, that was a wait at
the end (1.4 s of 15 for 1,000 pages; minutes for a large site). Instead one
child process, started with the crawl, follows each file as it grows (the
crawl tells it the name of each new file on its stdin) and indexes its records
with cdxj-indexer into a sorted part; at the end the parts are merged. A part
is only used when it is sure to describe the finished file:

- the child read exactly the bytes the file ends with: it saw the file renamed
  from `.open` (the writer closed it) and then read to its end, and the byte
  count matches the file's size;
- the writer never cut the file back after a failed write (the child may have
  read bytes that are no longer there); such files are indexed again.

Any file without a good part is indexed at the end as before. The result is
byte-identical to indexing every file at the end (tested). When the crawl
dies, the child's stdin closes: it stops at the file it is on, which was never
closed, and leaves no part of it.

    python -m crawler.indexing PARTS_FOLDER   (what the child runs; paths on stdin)
"""

from __future__ import annotations

import contextlib
import heapq
import io
import os
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO

# Parts are kept here while the crawl runs; one folder per crawling process.
PARTS_PREFIX = ".live-"
POLL = 0.05
SORT_BUFFER = 4 * 1024 * 1024
# Files merged at once: each is an open file, and a crawl may have thousands.
MERGE_FAN_IN = 64


def index_files(files: list[Path], out: IO[str]) -> None:
    """Sorted CDXJ lines of these WARC files; file names relative to their folder."""
    from cdxj_indexer.main import CDXJIndexer

    if files:
        CDXJIndexer(
            out, [str(f) for f in files], sort=True, dir_root=str(files[0].parent)
        ).process_all()


def write_index(files: list[Path], index: Path, parts: dict[Path, Path] | None = None) -> None:
    """The sorted CDXJ index of `files`, written atomically.

    `parts` maps a file to an already sorted index of it; the others are indexed now.
    """
    parts = parts or {}
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = index.with_suffix(".cdxj.tmp")
    todo = [f for f in files if f not in parts]
    scratch: list[Path] = []
    try:
        sources = [parts[f] for f in files if f in parts]
        if todo:
            scratch.append(index.with_suffix(".cdxj.rest"))
            with open(scratch[-1], "w", encoding="utf-8") as fh:
                index_files(todo, fh)
            sources.append(scratch[-1])
        while len(sources) > MERGE_FAN_IN:
            batch, sources = sources[:MERGE_FAN_IN], sources[MERGE_FAN_IN:]
            scratch.append(index.with_suffix(f".cdxj.merge{len(scratch)}"))
            _merge(batch, scratch[-1])
            sources.append(scratch[-1])
            for done in batch:
                if done in scratch:
                    done.unlink()
        _merge(sources, tmp)
        os.replace(tmp, index)
    finally:
        tmp.unlink(missing_ok=True)
        for path in scratch:
            path.unlink(missing_ok=True)


def _merge(sources: list[Path], dest: Path) -> None:
    with contextlib.ExitStack() as stack, open(dest, "w", encoding="utf-8") as out:
        readers = [stack.enter_context(open(p, encoding="utf-8")) for p in sources]
        out.writelines(heapq.merge(*readers))


class LiveIndexer:
    """One child process indexing each WARC file while it is written; the parts that hold."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / f"{PARTS_PREFIX}{os.getpid()}"
        self.child: subprocess.Popen[bytes] | None = None
        self.files: list[Path] = []  # final names, in the order they were opened

    @staticmethod
    def clear_stale(folder: Path) -> None:
        """Remove the parts folders of crawls that were killed."""
        for old in folder.glob(f"{PARTS_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)

    def follow(self, open_path: Path) -> None:
        """Called by the WARC writer once a new file holds its warcinfo record."""
        try:
            if self.child is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.child = subprocess.Popen(
                    [sys.executable, "-m", "crawler.indexing", str(self.folder)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    # Out of the terminal's process group: Ctrl-C is for the
                    # crawl, which then closes the child's stdin.
                    process_group=0,
                )
                assert self.child.stdin is not None
                os.set_blocking(self.child.stdin.fileno(), False)
            assert self.child.stdin is not None
            line = os.fsencode(open_path) + b"\n"
            # Never blocks: a child so far behind (or stuck) that the pipe is
            # full is given up, and its files are indexed at the end.
            if os.write(self.child.stdin.fileno(), line) != len(line):
                raise BlockingIOError
        except BlockingIOError:
            with contextlib.suppress(OSError):
                self.child.kill()
            return
        except (OSError, ValueError):
            return  # indexed at the end instead
        self.files.append(open_path.with_name(open_path.name.removesuffix(".open")))

    def finish(self, cut: Iterable[str] = ()) -> dict[Path, Path]:
        """Wait for the child; the parts that describe their finished files."""
        if self.child is None:
            return {}
        cut = set(cut)
        # Closing stdin says no file is coming; one never renamed (the writer
        # failed) is left without a part.
        with contextlib.suppress(OSError, ValueError):
            assert self.child.stdin is not None
            self.child.stdin.close()
        try:
            self.child.wait(timeout=_patience(self.files))
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        good: dict[Path, Path] = {}
        for final in self.files:
            part = self.folder / (final.name + ".cdxj")
            if part.is_file() and final.name not in cut:
                good[final] = part
        return good

    def close(self) -> None:
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(OSError):
                self.child.kill()
            self.child.wait()
        if self.child is not None and self.child.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.child.stdin.close()
        self.child = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _patience(files: list[Path]) -> float:
    # The child keeps pace with the crawl, so at the end it has at most the
    # tail of the last file left; the bound only matters if it is stuck, and
    # then the files are indexed again. cdxj-indexer reads well over 2 MB/s.
    size = 0
    for final in files[-2:]:
        with contextlib.suppress(OSError):
            size += final.stat().st_size
    return 60 + size / 2e6


class _Paths:
    """The file names the crawl sends on stdin, read without blocking."""

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self.pending = b""
        self.queue: list[Path] = []
        self.closed = False

    def poll(self, timeout: float) -> None:
        """Take what has arrived, waiting up to `timeout` for something."""
        if self.closed:
            return
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        data = os.read(self.fd, 65536)
        if not data:
            self.closed = True
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        self.queue.extend(Path(os.fsdecode(line)) for line in lines if line)

    def next(self) -> Path | None:
        while not self.queue and not self.closed:
            self.poll(1.0)
        return self.queue.pop(0) if self.queue else None


class _Follow(io.RawIOBase):
    """A growing `.open` file, read to its end once the writer has renamed it."""

    def __init__(self, path: Path, paths: _Paths) -> None:
        self.path = path
        self.final = path.with_name(path.name.removesuffix(".open"))
        self.paths = paths
        try:
            self.fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            # Closed and renamed before we got here: complete under its final name.
            self.fh = open(self.final, "rb", buffering=0)  # noqa: SIM115
        self.total = 0
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            n = self.fh.readinto(buffer) or 0
            if n:
                self.total += n
                return n
            if self.done:
                return 0
            if self.final.exists() or not self.path.exists():
                # Renamed after it was closed: what is there now is all there
                # is; one more read drains it.
                self.done = True
                continue
            if self.paths.closed:
                raise _CrawlGone
            self.paths.poll(POLL)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        super().close()


class _CrawlGone(Exception):
    """stdin closed while a file was still being written: the crawl ended or died."""


def _index_one(path: Path, paths: _Paths, folder: Path) -> bool:
    from cdxj_indexer.main import CDXJIndexer, SortingWriter

    final = path.with_name(path.name.removesuffix(".open"))
    part = folder / (final.name + ".cdxj")
    tmp = part.with_suffix(".tmp")
    ok = False
    sorter = None
    try:
        src = _Follow(path, paths)
    except OSError:
        return False  # gone (set aside, or the folder removed): indexed at the end
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            # Sorted in runs of a few MB spilled to disk: this process runs
            # beside the crawl, so its memory adds to the crawl's.
            sorter = SortingWriter(out, SORT_BUFFER)
            # process_all() opens files by name; the growing stream is handed to
            # process_one() instead, under the name the file will have once closed.
            CDXJIndexer(sorter, []).process_one(
                io.BufferedReader(src, 1 << 16), sorter, src.final.name
            )
            sorter.flush()
        ok = src.final.is_file() and src.total == src.final.stat().st_size
    except Exception:  # any failure means: index this file again at the end
        ok = False
    finally:
        src.close()
        if sorter is not None and not ok:
            for run in sorter.tmp_files:
                with contextlib.suppress(OSError):
                    os.unlink(run)
    if ok:
        os.replace(tmp, part)
    else:
        tmp.unlink(missing_ok=True)
    return ok


def _child(folder: Path) -> int:
    # cdxj-indexer spills its sorted runs to the temporary folder: keep them in
    # the parts folder, which the crawl removes whatever happens to this process.
    tempfile.tempdir = str(folder)
    crawl = os.getppid()
    paths = _Paths()
    while (path := paths.next()) is not None:
        if os.getppid() != crawl:
            break  # the crawl died: nobody will merge what is left
        if not _index_one(path, paths, folder) and paths.closed and not _renamed(path):
            break  # the crawl is gone and this file was never closed: nothing more to do
    return 0


def _renamed(path: Path) -> bool:
    return path.with_name(path.name.removesuffix(".open")).exists()


if __name__ == "__main__":
    sys.exit(_child(Path(sys.argv[1])))
