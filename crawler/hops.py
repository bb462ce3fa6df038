"""Discovery paths: one letter per hop from a seed, capped the way Heritrix caps them.

A path is "" for a seed, else letters such as "LLER" (L link, E embed, R
redirect, S sitemap, P prerequisite). It travels with every request and is
written on every crawl.log line, so an endless chain of pages would make both
grow without bound (a line per page, each a letter longer: quadratic). Past
SHOWN letters only the last SHOWN are kept, behind a count of the dropped
ones: "312+LLL…" (as Heritrix writes it), so a path never exceeds about
SHOWN + 12 characters.
"""

from __future__ import annotations

SHOWN = 50


def _split(hops: str) -> tuple[int, str]:
    count, plus, tail = hops.partition("+")
    if plus and count.isdigit():
        return int(count), tail
    return 0, hops


def add(hops: str, letter: str) -> str:
    """The path one hop further."""
    dropped, tail = _split(hops)
    tail += letter
    if len(tail) <= SHOWN:
        return f"{dropped}+{tail}" if dropped else tail
    cut = len(tail) - SHOWN
    return f"{dropped + cut}+{tail[cut:]}"


def length(hops: str) -> int:
    """Hops from the seed, dropped ones included."""
    dropped, tail = _split(hops)
    return dropped + len(tail)


def links(hops: str) -> int:
    """Link hops from the seed. Dropped hops count as links: past SHOWN hops a
    chain is made of links, and an overestimate only refuses sooner."""
    dropped, tail = _split(hops)
    return dropped + tail.count("L")


def trailing(hops: str, letter: str) -> int:
    """How many hops in a row at the end are `letter` (a redirect chain: "R")."""
    dropped, tail = _split(hops)
    run = len(tail) - len(tail.rstrip(letter))
    return run + dropped if run == len(tail) else run
