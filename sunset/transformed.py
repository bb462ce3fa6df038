"""Whether a folder of `sunset transform` output is a finished run.

transform writes transform.json first with "complete": false, before it
changes anything else in the folder, and rewrites it with "complete": true
as its very last step. Every stage that reads transform's output asks here
first, so a run that crashed, was killed or ran out of disk is refused, not
read in part.
"""

from __future__ import annotations

import json
from pathlib import Path

from sunset.errors import SunsetError

SUMMARY_NAME = "transform.json"
PAGES_NAME = "pages.jsonl"


def unfinished(content_dir: Path, *, need_summary: bool = True) -> str | None:
    """Why the transform output in content_dir is not a finished run, or None
    when it is one, or when there is no transform output there at all.

    need_summary=False lets a pages.jsonl with no transform.json pass (one
    made by hand, for a tool that scores any such file).
    """
    summary = content_dir / SUMMARY_NAME
    if not summary.is_file():
        if need_summary and (content_dir / PAGES_NAME).exists():
            return f"it has {PAGES_NAME} but no {SUMMARY_NAME}, which a transform writes last"
        return None
    try:
        data = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"its {SUMMARY_NAME} cannot be read ({exc})"
    if not isinstance(data, dict):
        return f"its {SUMMARY_NAME} is not a JSON object"
    # No "complete" key: an older sunset, which wrote the file only at the end.
    if data.get("complete", True) is not True:
        return f"{SUMMARY_NAME} says {str(data.get('exit') or 'not complete')[:200]!r}"
    return None


def require_finished(content_dir: Path) -> None:
    """SunsetError (one line) when content_dir holds an unfinished transform."""
    why = unfinished(content_dir)
    if why is not None:
        raise SunsetError(
            f"{content_dir}: unfinished transform output ({why});"
            " run 'sunset transform' again before using it"
        )
