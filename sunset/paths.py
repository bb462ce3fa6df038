"""Where sunset writes things.

Everything a run produces goes under ``output/<name>/`` in the current
directory, so a run is self-contained and easy to delete or ship.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sunset.errors import SunsetError

OUTPUT_DIR_NAME = "output"

# One folder level, no dot-prefixed names: a run name must not be able to
# escape output/ or hide itself.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def output_root() -> Path:
    """``output/`` under the current working directory (not created)."""
    return Path.cwd() / OUTPUT_DIR_NAME


def default_out(name: str) -> Path:
    """Default folder for the run called ``name`` (not created)."""
    if not _NAME_RE.match(name) or ".." in name:
        raise SunsetError(
            f"run name {name!r}: use letters, digits, '.', '_' or '-' (no slashes);"
            " pass --out to write elsewhere"
        )
    return output_root() / name


@contextmanager
def replacing(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Write `path` whole or not at all: a file beside it, renamed over it at the end.

    A reader (nginx reloading, a reviewer opening the report) never sees half a
    file, and a failure part-way leaves the old file and no temporary one.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
