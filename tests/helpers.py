"""What several test modules share (not a test module itself)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any


def write_profile(path: Path, start_urls: list[str], hosts: list[str], crawl: str) -> Path:
    """A crawl profile naming only the site and the given [crawl] settings."""
    starts = ", ".join(f'"{u}"' for u in start_urls)
    quoted = ", ".join(f'"{h}"' for h in hosts)
    path.write_text(
        f'[site]\nname = "hostile"\nstart_urls = [{starts}]\n'
        f"allowed_hosts = [{quoted}]\n[crawl]\n{crawl}",
        encoding="utf-8",
    )
    return path


def run_sunset_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args], capture_output=True, text=True, timeout=timeout
    )


def crawled_replica(root: Path, pages: int, seed: int, **options: Any) -> tuple[Path, Path, Path]:
    """(site, legacy crawl, successor crawl): a replica generated under ``root``,
    served on loopback, both sites crawled with the demo profile, the legacy one
    transformed. ``options`` go to replica.generate (e.g. successor="rewritten")."""
    from replica import generate, serve

    site = root / "site"
    generate(site, pages=pages, seed=seed, **options)
    legacy, new = root / "crawl", root / "successor"
    with serve(site) as srv:
        connect = [a for entry in srv.connect_to for a in ("--connect-to", entry)]
        for args in (
            ("--out", str(legacy), "--name", "t"),
            ("--successor", "--out", str(new), "--name", "t-new"),
        ):
            result = run_sunset_cli("crawl", "-p", "demo", *args, *connect)
            assert result.returncode == 0, result.stderr
    result = run_sunset_cli("transform", str(legacy))
    assert result.returncode in (0, 1), result.stderr
    return site, legacy, new
