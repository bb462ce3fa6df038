"""Where sunset writes things.

Everything a run produces goes under ``output/<name>/`` in the current
directory, so a run is self-contained and easy to delete or ship.
"""

from __future__ import annotations

import re
from pathlib import Path

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
