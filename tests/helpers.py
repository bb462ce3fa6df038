"""What several test modules share (not a test module itself)."""

from __future__ import annotations

from pathlib import Path


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
