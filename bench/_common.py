"""What the benchmarks share: the replica they run on, running a tool under measurement.

Imported by the scripts beside it (they are run as files, so this folder is on
sys.path); not a package and not part of sunset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
# Run as a file, a benchmark has bench/ first on sys.path, where
# bench/transform.py would shadow the transform package. The scripts import
# this module before any of the project's (isort puts it first), so putting
# the project root in front here is early enough.
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))
# Every benchmark crawls the same replica, so output/bench/replica-<pages> is
# generated once and reused by all of them.
PROFILE = "demo"
SEED = 1
THEME = "protostar"
POLL = 0.5

err = Console(stderr=True, highlight=False)
# Piped to a file, rich would squeeze the table into 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 132)


# --------------------------------------------------------------------------
# Process measurement


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(k) for k in fh.read().split())
    except OSError:
        pass
    return kids


def tree_rss_kb(pid: int) -> int:
    """Peak resident memory so far (VmHWM) of a process and all its descendants, in kB.

    VmHWM counts from exec, so a child forked from a large parent (this
    script, after generating a 10k-page replica) is not charged for it.
    """
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
        todo.extend(_children(p))
    return total


class Progress:
    """One live status line on stderr: a rewritten line on a terminal, else one every 15 s."""

    def __init__(self, label: str, status: Callable[[], str]) -> None:
        self.label = label
        self.status = status
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, elapsed: float, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (1.0 if self.tty else 15.0):
            return
        self.last = now
        line = f"  {self.label}: {elapsed:7.1f} s  {self.status()}"
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
            sys.stderr.flush()
        else:
            err.print(line)


class LineCounter:
    """Counts lines (containing ``marker``, if given) in a growing file, reading only the new part."""

    def __init__(self, path: Path, marker: bytes | None = None) -> None:
        self.path = path
        self.marker = marker
        self.offset = 0
        self.count = 0
        self.tail = b""

    def poll(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            chunk = b""
        self.offset += len(chunk)
        # Only complete lines; a half-written one is counted next time.
        data = self.tail + chunk
        lines, _, self.tail = data.rpartition(b"\n")
        if lines:
            for line in lines.split(b"\n"):
                if self.marker is None or self.marker in line:
                    self.count += 1
        return self.count


@dataclass
class Measured:
    wall_s: float
    exit_code: int
    peak_rss_mb: float
    timed_out: bool


def measure(
    cmd: list[str],
    *,
    label: str,
    status: Callable[[], str],
    cwd: Path,
    env: dict[str, str],
    stdout: Path,
    stderr: Path,
    timeout: float,
) -> Measured:
    """Run ``cmd`` to completion or timeout: wall time, exit code and peak RSS of its tree.

    ``status`` gives the tail of the live progress line (what the tool has done so far).
    """
    progress = Progress(label, status)
    peak_tree = 0
    timed_out = False
    reaped: list[tuple[int, os.struct_rusage, float]] = []

    def reap(pid: int) -> None:
        # wait4 rather than Popen.wait: it also returns the child's peak RSS
        # (what GNU time -v reports), and blocking in a thread stamps the exit
        # time exactly instead of to the nearest poll.
        _, status, usage = os.wait4(pid, 0)
        reaped.append((status, usage, time.monotonic()))

    with open(stdout, "wb") as so, open(stderr, "wb") as se:
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=so,
            stderr=se,
            start_new_session=True,
        )
        reaper = threading.Thread(target=reap, args=(proc.pid,), daemon=True)
        reaper.start()
        try:
            while reaper.is_alive():
                elapsed = time.monotonic() - start
                peak_tree = max(peak_tree, tree_rss_kb(proc.pid))
                if elapsed > timeout:
                    # SIGTERM lets a crawler close its WARC; then no mercy.
                    signal_group(proc.pid, signal.SIGKILL if timed_out else signal.SIGTERM)
                    timed_out = True
                    timeout = elapsed + 5
                progress.update(elapsed)
                reaper.join(POLL)
        finally:
            if reaper.is_alive():  # interrupted: leave nothing running
                signal_group(proc.pid, signal.SIGKILL)
                reaper.join()
    status, _usage, end = reaped[0]
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped; Popen must not wait
    elapsed = end - start
    progress.update(elapsed, final=True)
    # Not wait4's ru_maxrss: on Linux it includes the parent's size at fork
    # time, so every tool looked as large as this script (167 MB for both
    # wget and sunset at 10k pages). The sampled VmHWM sum is the tool's own.
    return Measured(
        wall_s=round(elapsed, 3),
        exit_code=proc.returncode,
        peak_rss_mb=round(peak_tree / 1024, 1),
        timed_out=timed_out,
    )


def signal_group(pgid: int, sig: signal.Signals) -> None:
    # The tool leads its own session (start_new_session), so its group is
    # exactly the processes this benchmark started.
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


# --------------------------------------------------------------------------
# Files


def warc_files(folder: Path) -> list[Path]:
    # ".open" files are still being written (or were cut off by a timeout).
    # Not recursive: wget's folder also holds its (emptied) mirror tree.
    return sorted(
        p for p in folder.glob("*") if p.is_file() and re.search(r"\.warc(\.gz)?(\.open)?$", p.name)
    )


def warc_bytes(folder: Path) -> int:
    total = 0
    for p in warc_files(folder) if folder.exists() else []:
        with suppress(OSError):  # renamed from .open between listing and stat
            total += p.stat().st_size
    return total


def first_line(path: Path) -> str:
    try:
        for line in path.read_text(errors="replace").splitlines():
            if line.strip():
                return line.strip()
    except OSError:
        pass
    return ""


def first_line_of(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.split("\n")[0]
    except (OSError, subprocess.SubprocessError):
        return ""


def target_uri(value: str | None) -> str:
    # WARC 1.0 writers (and the 1.1 spec's grammar) may wrap the URI in <>.
    return (value or "").strip().strip("<>")


# --------------------------------------------------------------------------
# The crawl the benchmarks run on

REPLICA_KEYS = ("requested_pages", "seed", "theme", "generator_version")


def read_json(path: Path) -> dict:
    """A JSON object from ``path``, or {} if it is missing or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def ensure_crawl(
    site: Path, manifest: dict, crawl: Path, timeout: float, who: str
) -> dict[str, object]:
    """A finished `sunset crawl --profile demo` of this replica at ``crawl``, made if missing.

    The replica is served by nginx (replica.nginx) so the crawl, not the
    server, sets the pace. A stamp beside the crawl records which replica it
    was made from, so a later benchmark reuses it only for the same replica.
    ``who`` names the calling script in the error raised when the crawl fails.
    """
    from replica.nginx import serve_nginx

    stamp = crawl.parent / "crawl-of.json"
    made_from = {k: manifest.get(k) for k in REPLICA_KEYS}
    summary = read_json(crawl / "crawl.json")
    if (
        summary.get("reason") == "finished"
        and not summary.get("fatal")
        and read_json(stamp) == made_from
        and (crawl / "indexes" / "index.cdxj").is_file()
    ):
        err.print(f"reusing the crawl in {crawl} ({summary.get('finished')})")
        return {"reused": True, "seconds": summary.get("seconds"), "stats": summary.get("stats")}

    shutil.rmtree(crawl, ignore_errors=True)
    stamp.unlink(missing_ok=True)
    crawl.parent.mkdir(parents=True, exist_ok=True)
    logs = crawl.parent / "crawl.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    with serve_nginx(site, delay_ms=0) as srv:
        err.print(f"crawling {srv.routes:,} URLs served by nginx on {srv.proxy} into {crawl}")
        cmd = [sys.executable, "-m", "sunset", "crawl", "--profile", PROFILE, "--out", str(crawl)]
        for entry in srv.connect_to:
            cmd += ["--connect-to", entry]
        counter = LineCounter(crawl / "crawl.log")
        m = measure(
            cmd,
            label="sunset crawl",
            status=lambda: (
                f"{counter.poll():>7,} fetches  WARC {warc_bytes(crawl / 'warc') / 1e6:8.1f} MB"
            ),
            cwd=ROOT,
            env=dict(os.environ),
            stdout=logs / "stdout",
            stderr=logs / "stderr",
            timeout=timeout,
        )
    summary = read_json(crawl / "crawl.json")
    if m.exit_code != 0 or m.timed_out or summary.get("reason") != "finished":
        why = first_line(logs / "stderr") or f"exit status {m.exit_code}"
        raise SystemExit(f"{who}: the crawl of the replica failed: {why}")
    stamp.write_text(json.dumps(made_from) + "\n")
    return {"reused": False, "seconds": m.wall_s, "stats": summary.get("stats")}


def ensure_migration(folder: Path, pages: int, seed: int, successor: str) -> dict[str, Path]:
    """A replica (``successor`` flavour), crawls of both its sites and the legacy transform.

    What `sunset redirects` reads when it is scored against the replica's
    ground truth: ``site`` (the replica and its truth), ``crawl`` (the legacy
    crawl, transformed) and ``successor`` (the crawl of the new site). Made
    under ``folder`` once and reused while the stamp beside them matches.
    """
    from replica import generate, serve
    from replica.generate import GENERATOR_VERSION

    paths = {"site": folder / "site", "crawl": folder / "crawl", "successor": folder / "successor"}
    made_from = {
        "pages": pages,
        "seed": seed,
        "successor": successor,
        "generator_version": GENERATOR_VERSION,
    }
    stamp = folder / "made-from.json"
    if read_json(stamp) == made_from and (paths["crawl"] / "content" / "pages.jsonl").is_file():
        err.print(f"reusing the {successor} replica and its crawls in {folder}")
        return paths
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    err.print(f"generating a {pages:,}-page replica ({successor} successor) in {folder}")
    generate(paths["site"], pages=pages, seed=seed, successor=successor)

    def sunset(*args: str) -> None:
        cmd = [sys.executable, "-m", "sunset", *args]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        # transform exits 1 when some captures were skipped: still a finished run.
        if done.returncode not in (0, 1) or (args[0] == "crawl" and done.returncode):
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise SystemExit(f"sunset {args[0]} failed on the replica in {folder}: {why}")

    with serve(paths["site"]) as srv:
        connect = [a for entry in srv.connect_to for a in ("--connect-to", entry)]
        err.print("  crawling the legacy site and its successor")
        sunset("crawl", "-p", PROFILE, "--out", str(paths["crawl"]), "--name", "legacy", *connect)
        sunset(
            "crawl", "-p", PROFILE, "--successor", "--out", str(paths["successor"]),
            "--name", "successor", *connect,
        )  # fmt: skip
    err.print("  transforming the legacy crawl")
    sunset("transform", str(paths["crawl"]))
    stamp.write_text(json.dumps(made_from) + "\n")
    return paths
