"""The crawl's CDXJ index, built with cdxj-indexer while the WARC files are written.

Indexing a WARC file takes about a seventh of the time the crawl took to write
it, all of it CPU. Done after the crawl, as it used to be, that was a wait at
the end (1.4 s of 15 for 1,000 pages; minutes for a large site). Instead, as
each file is opened, a child process follows it as it grows and indexes its
records with cdxj-indexer into a sorted part; at the end the parts are merged.
A part is only used when it is sure to describe the finished file:

- the child read exactly the bytes the file ends with: it saw the file renamed
  from `.open` (the writer closed it) and then read to its end, and the byte
  count matches the file's size;
- the writer never cut the file back after a failed write (the child may have
  read bytes that are no longer there); such files are indexed again.

Any file without a good part is indexed at the end as before. The result is
byte-identical to indexing every file at the end (tested).

    python -m crawler.indexing FD FILE.warc.gz.open PART.cdxj   (what the child runs)
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
from collections.abc import Iterable
from pathlib import Path
from typing import IO

# Parts are kept here while the crawl runs; one folder per crawling process.
PARTS_PREFIX = ".live-"
POLL = 0.05
SORT_BUFFER = 4 * 1024 * 1024


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
    scratch = index.with_suffix(".cdxj.rest")
    try:
        if todo:
            with open(scratch, "w", encoding="utf-8") as fh:
                index_files(todo, fh)
        sources = [parts[f] for f in files if f in parts] + ([scratch] if todo else [])
        with contextlib.ExitStack() as stack, open(tmp, "w", encoding="utf-8") as out:
            readers = [stack.enter_context(open(p, encoding="utf-8")) for p in sources]
            out.writelines(heapq.merge(*readers))
        os.replace(tmp, index)
    finally:
        tmp.unlink(missing_ok=True)
        scratch.unlink(missing_ok=True)


class LiveIndexer:
    """Starts a child per WARC file as it opens; at the end, hands back the parts that hold."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / f"{PARTS_PREFIX}{os.getpid()}"
        self.children: dict[Path, tuple[subprocess.Popen[bytes], Path]] = {}

    @staticmethod
    def clear_stale(folder: Path) -> None:
        """Remove the parts folders of crawls that were killed."""
        for old in folder.glob(f"{PARTS_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)

    def follow(self, open_path: Path) -> None:
        final = open_path.with_name(open_path.name.removesuffix(".open"))
        part = self.folder / (final.name + ".cdxj")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # The child gets the open file itself: a small file may be closed
            # and renamed before the child has started.
            with open(open_path, "rb") as fh:
                fd = fh.fileno()
                child = subprocess.Popen(
                    [sys.executable, "-m", "crawler.indexing", str(fd), str(open_path), str(part)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    pass_fds=(fd,),
                )
        except OSError:
            return  # indexed at the end instead
        self.children[final] = (child, part)

    def finish(self, cut: Iterable[str] = ()) -> dict[Path, Path]:
        """Wait for the children; the parts that describe their finished files."""
        cut = set(cut)
        good: dict[Path, Path] = {}
        for final, (child, part) in self.children.items():
            # Closing stdin tells a child whose file was never renamed (the
            # writer failed) that no more is coming.
            with contextlib.suppress(OSError):
                assert child.stdin is not None
                child.stdin.close()
            try:
                code = child.wait(timeout=_patience(final))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
                continue
            if code == 0 and part.is_file() and final.name not in cut:
                good[final] = part
        self.children.clear()
        return good

    def close(self) -> None:
        for child, _part in self.children.values():
            with contextlib.suppress(OSError):
                child.kill()
                child.wait()
        self.children.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _patience(final: Path) -> float:
    # A child keeps pace with the crawl, so at the end it has at most the tail
    # left; the bound only matters if it is stuck, and then the file is
    # indexed again. cdxj-indexer reads well over 2 MB/s.
    try:
        size = final.stat().st_size
    except OSError:
        size = 0
    return 60 + size / 2e6


class _Follow(io.RawIOBase):
    """A growing `.open` file read to its end once the writer has renamed it."""

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self.final = path.with_name(path.name.removesuffix(".open"))
        self.fh = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by close()
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
            ready, _, _ = select.select([sys.stdin], [], [], POLL)
            if ready and not sys.stdin.buffer.read1(1):
                self.done = True  # the crawl ended (or died) without renaming it

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()
        super().close()


def _child(fd: int, open_path: Path, part: Path) -> int:
    from cdxj_indexer.main import CDXJIndexer, SortingWriter

    src = _Follow(fd, open_path)
    tmp = part.with_suffix(".tmp")
    ok = False
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            # process_all() opens files by name; the growing stream is handed to
            # process_one() instead, under the name the file will have once closed.
            # Sorted in runs of a few MB spilled to disk: this process runs
            # beside the crawl, so its memory adds to the crawl's.
            sorter = SortingWriter(out, SORT_BUFFER)
            CDXJIndexer(sorter, []).process_one(
                io.BufferedReader(src, 1 << 16), sorter, src.final.name
            )
            sorter.flush()
        ok = src.final.is_file() and src.total == src.final.stat().st_size
    except Exception:  # any failure means: index this file again at the end
        ok = False
    finally:
        src.close()
    if ok:
        os.replace(tmp, part)
        return 0
    tmp.unlink(missing_ok=True)
    return 1


if __name__ == "__main__":
    import signal

    # The parent's Ctrl-C reaches the whole group; it decides, and kills us if need be.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(_child(int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
