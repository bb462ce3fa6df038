"""The CDXJ index built while the WARC files are written (crawler/indexing.py).

Real files written by WarcFiles, real child processes running cdxj-indexer
over them as they grow; each result is compared with cdxj-indexer run over the
finished files, the way the index was built before.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from crawler.fetch import Exchange
from crawler.indexing import PARTS_PREFIX, LiveIndexer, write_index
from crawler.warc import WarcFiles


def exchange(n: int) -> Exchange:
    body = f"<html><title>page {n}</title>{'x' * (n * 37 % 900)}</html>".encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n"
    return Exchange(
        url=f"http://example.org/page/{n}",
        request=f"GET /page/{n} HTTP/1.1\r\nHost: example.org\r\n\r\n".encode(),
        head=head.encode(),
        body=body,
        content=body,
        status=200,
        reason="OK",
        version="HTTP/1.1",
        headers=[("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
        ip="127.0.0.1",
        date=datetime.now(UTC),
        duration=0.01,
    )


def write_crawl(folder: Path, pages: int, max_size: int, pause: float = 0.0) -> WarcFiles:
    warcs = WarcFiles(folder / "warc", "t", max_size, {"software": "test"})
    live = LiveIndexer(folder / "indexes")
    warcs.on_open = live.follow
    warcs.live = live  # type: ignore[attr-defined]
    for n in range(pages):
        resp, _req = warcs.write_exchange(exchange(n))
        warcs.write_metadata(f"http://example.org/page/{n}", resp.record_id, [("outlink", "x")])
        if pause and n % 50 == 0:
            time.sleep(pause)  # the children catch up and wait for more, as in a crawl
    warcs.close()
    return warcs


def reference(files: list[Path], dest: Path) -> bytes:
    write_index(files, dest)
    return dest.read_bytes()


def test_index_made_while_writing_equals_index_made_after(tmp_path: Path) -> None:
    warcs = write_crawl(tmp_path, 600, max_size=60_000, pause=0.05)
    live: LiveIndexer = warcs.live  # type: ignore[attr-defined]
    files = sorted((tmp_path / "warc").glob("*.warc.gz"))
    assert len(files) > 3  # rotated
    assert live.child is not None
    pid = live.child.pid
    parts = live.finish(warcs.cut)
    assert live.child.pid == pid  # one child for all the files
    assert sorted(parts) == files  # every file's part holds
    index = tmp_path / "indexes" / "index.cdxj"
    write_index(files, index, parts)
    live.close()
    assert index.read_bytes() == reference(files, tmp_path / "ref.cdxj")
    # cdxj-indexer's default: one line per response, its request folded in.
    assert len(index.read_text().splitlines()) == 600
    assert not list((tmp_path / "indexes").glob(f"{PARTS_PREFIX}*"))


def test_a_file_cut_back_is_indexed_again(tmp_path: Path) -> None:
    warcs = write_crawl(tmp_path, 100, max_size=0)
    live: LiveIndexer = warcs.live  # type: ignore[attr-defined]
    files = sorted((tmp_path / "warc").glob("*.warc.gz"))
    parts = live.finish({files[0].name})  # as if a failed write had been cut back
    assert parts == {}
    write_index(files, tmp_path / "index.cdxj", parts)
    live.close()
    assert (tmp_path / "index.cdxj").read_bytes() == reference(files, tmp_path / "ref.cdxj")


def test_a_file_never_closed_gives_no_part_and_no_stuck_child(tmp_path: Path) -> None:
    warcs = WarcFiles(tmp_path / "warc", "t", 0, {"software": "test"})
    live = LiveIndexer(tmp_path / "indexes")
    warcs.on_open = live.follow
    warcs.write_exchange(exchange(1))
    assert warcs.fh is not None
    warcs.fh.close()  # the writer failed: the file stays .open
    started = time.monotonic()
    assert live.finish() == {}
    assert time.monotonic() - started < 10
    live.close()


def test_a_child_whose_crawl_was_killed_exits_without_a_part(tmp_path: Path) -> None:
    # The crawling process dies with its file still .open: the child's stdin
    # closes, it reads what is there and leaves without writing a part.
    script = f"""
import sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from pathlib import Path
from crawler.indexing import LiveIndexer
from crawler.warc import WarcFiles
from tests.test_crawl_indexing import exchange
warcs = WarcFiles(Path({str(tmp_path)!r}) / "warc", "t", 0, {{"software": "test"}})
live = LiveIndexer(Path({str(tmp_path)!r}) / "indexes")
warcs.on_open = live.follow
warcs.write_exchange(exchange(1))
print(live.child.pid, flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{child}").exists():
        status = (
            Path(f"/proc/{child}/status").read_text() if Path(f"/proc/{child}").exists() else ""
        )
        if "zombie" in status:
            break
        time.sleep(0.05)
    status = Path(f"/proc/{child}/status").read_text() if Path(f"/proc/{child}").exists() else ""
    assert not status or "zombie" in status, "the indexing child outlived its crawl"
    parts = list((tmp_path / "indexes").glob(f"{PARTS_PREFIX}*/*"))
    assert parts == []
    LiveIndexer.clear_stale(tmp_path / "indexes")
    assert not list((tmp_path / "indexes").glob(f"{PARTS_PREFIX}*"))


def test_many_parts_merge_in_rounds(tmp_path: Path, monkeypatch) -> None:
    from crawler import indexing

    warcs = write_crawl(tmp_path, 300, max_size=8_000)
    live: LiveIndexer = warcs.live  # type: ignore[attr-defined]
    files = sorted((tmp_path / "warc").glob("*.warc.gz"))
    parts = live.finish(warcs.cut)
    assert len(parts) == len(files) > 20
    # A crawl of thousands of files must not hold thousands open at once.
    monkeypatch.setattr(indexing, "MERGE_FAN_IN", 4)
    opened: list[int] = []
    real_merge = indexing._merge

    def counting(sources: list[Path], dest: Path) -> None:
        opened.append(len(sources))
        real_merge(sources, dest)

    monkeypatch.setattr(indexing, "_merge", counting)
    del parts[files[3]]  # and one file indexed at the end, merged with the parts
    write_index(files, tmp_path / "index.cdxj", parts)
    live.close()
    assert max(opened) <= 4 and len(opened) > 1
    assert (tmp_path / "index.cdxj").read_bytes() == reference(files, tmp_path / "ref.cdxj")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "index.cdxj",
        "indexes",
        "ref.cdxj",
        "warc",
    ]


def test_a_stuck_child_never_blocks_the_crawl(tmp_path: Path) -> None:
    import os
    import signal

    warcs = WarcFiles(tmp_path / "warc", "t", 1, {"software": "test"})  # a file per record
    live = LiveIndexer(tmp_path / "indexes")
    warcs.on_open = live.follow
    warcs.write_exchange(exchange(0))
    assert live.child is not None
    os.kill(live.child.pid, signal.SIGSTOP)  # stops reading its stdin

    def crawl() -> None:
        for n in range(1, 1200):  # enough file names to fill the pipe many times over
            warcs.write_exchange(exchange(n))

    writer = threading.Thread(target=crawl, daemon=True)
    writer.start()
    writer.join(timeout=60)
    if writer.is_alive():
        live.child.kill()  # unblock it, then fail
        writer.join()
        raise AssertionError("the crawl blocked on the stuck indexing child")
    warcs.close()
    parts = live.finish(warcs.cut)
    files = sorted((tmp_path / "warc").glob("*.warc.gz"))
    assert len(files) == 1200 and len(parts) < 2
    write_index(files, tmp_path / "index.cdxj", parts)
    live.close()
    assert (tmp_path / "index.cdxj").read_bytes() == reference(files, tmp_path / "ref.cdxj")
