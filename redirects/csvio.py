"""redirects.csv for reviewers, and the overrides CSV they hand back.

Reviewers open redirects.csv in a spreadsheet, correct the ``new`` column and
feed the file back as overrides: :func:`read_overrides` needs only the ``old``
and ``new`` columns and ignores the rest.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from sunset.errors import SunsetError
from sunset.paths import replacing

from .model import MOVED, Row

COLUMNS = (
    "old",
    "new",
    "method",
    "confidence",
    "status",
    "title",
    "group",
    "note",
    # What a reviewer picks from: the best new pages, best first (see Row.candidates).
    *(f"candidate_{n}{part}" for n in range(1, 4) for part in ("", "_title", "_score")),
)
# A spreadsheet runs a cell starting with one of these as a formula
# (OWASP's "CSV injection" list). Titles and notes come from the crawled
# pages, so a page titled "=HYPERLINK(...)" must stay text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_csv(rows: Iterable[Row], path: Path) -> int:
    """Write one line per row (UTF-8, ``COLUMNS`` order); return the number of rows."""
    path = Path(path)
    count = 0
    with replacing(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(
                (
                    row.old,
                    row.new,
                    row.method,
                    f"{row.confidence:.3f}",
                    row.status,
                    _text_cell(row.title),
                    row.group,
                    _text_cell(row.note),
                    *_candidate_cells(row),
                )
            )
            count += 1
    return count


def _candidate_cells(row: Row) -> list[str]:
    cells: list[str] = []
    for url, title, score in row.candidates[:3]:
        cells += (url, _text_cell(title), f"{score:.3f}")
    return cells + [""] * (9 - len(cells))


def _open_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """Header and (line number, cells) of a UTF-8 CSV; SunsetError on a bad file.

    Read a row at a time: a reviewed redirects.csv can list every legacy URL.
    """
    lines = _lines(path)
    _, first = next(lines, (0, []))
    return [cell.strip().lower() for cell in first], lines


def _lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        # utf-8-sig: spreadsheets save "CSV UTF-8" with a byte-order mark.
        fh = open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise SunsetError(f"{path}: no such file") from None
    except OSError as exc:
        raise SunsetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    # newline="": csv finds the line ends itself. Not str.splitlines: it also
    # breaks at U+2028, \x85 and \x0c, which a crawled title may hold inside a
    # quoted cell.
    with fh:
        reader = csv.reader(fh)
        try:
            for cells in reader:
                yield reader.line_num, cells
        except UnicodeDecodeError:
            raise SunsetError(
                f"{path}: not UTF-8 text (line {_first_bad_line(path)}); save it as CSV UTF-8"
            ) from None
        except csv.Error as exc:
            if reader.line_num <= 1:
                raise SunsetError(f"{path}: not a CSV file ({exc})") from None
            raise SunsetError(f"{path}: line {reader.line_num}: {exc}") from None


def _first_bad_line(path: Path) -> int:
    # Only for the message of a file that is already known to be broken.
    data = Path(path).read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data[: exc.start].count(b"\n") + 1
    return 1


def _columns(path: Path, header: list[str], needed: tuple[str, ...]) -> dict[str, int]:
    missing = [name for name in needed if name not in header]
    if missing:
        found = ", ".join(h for h in header if h) or "none"
        raise SunsetError(
            f"{path}: needs the columns {' and '.join(needed)}; missing {', '.join(missing)}"
            f" (found: {found})"
        )
    return {name: header.index(name) for name in needed}


class OverrideRow(NamedTuple):
    line: int  # where the row starts in the file, for messages
    old: str
    new: str
    method: str  # the row's method column ("" without one)
    note: str  # the row's note column ("" without one)


def read_overrides(path: Path) -> list[tuple[str, str]]:
    """(old, new) pairs from a CSV with ``old`` and ``new`` columns; empty ``new`` skipped.

    ``old`` is an absolute http(s) URL or a path starting with ``/``; ``new``
    is checked later, by the writers, like every other target.
    """
    return list(iter_overrides(path))


def iter_overrides(path: Path) -> Iterator[tuple[str, str]]:
    """:func:`read_overrides`, a pair at a time: a reviewed file can list every URL."""
    for row in iter_override_rows(path):
        yield row.old, row.new


def iter_override_rows(path: Path) -> Iterator[OverrideRow]:
    """The rows of an overrides CSV with their line numbers; empty ``new`` skipped."""
    header, rows = _open_rows(Path(path))
    at = _columns(Path(path), header, ("old", "new"))
    extra = {name: header.index(name) for name in ("method", "note") if name in header}
    end = 1  # the header's last line
    for line, cells in rows:
        start, end = end + 1, line
        if not any(cell.strip() for cell in cells):
            continue

        old, new = _cell(cells, at["old"]), _cell(cells, at["new"])
        if not new:
            continue
        lowered = old.lower()
        if not (
            (lowered.startswith(("http://", "https://")) and len(old.split("/", 3)[2]) > 0)
            or old.startswith("/")
        ):
            raise SunsetError(
                f"{path}: line {start}: old {old[:80]!r} is not an absolute http(s) URL"
                " or a path starting with /"
            )
        method = _cell(cells, extra.get("method", -1)).lower()
        yield OverrideRow(start, old, new, method, _cell(cells, extra.get("note", -1)))


def _cell(cells: list[str], at: int) -> str:
    return cells[at].strip() if 0 <= at < len(cells) else ""


def read_csv(path: Path) -> Iterator[Row]:
    """The rows of a redirects.csv written by :func:`write_csv`, in file order."""
    header, rows = _open_rows(Path(path))
    at = _columns(Path(path), header, ("old", "new", "status"))
    conf_at = header.index("confidence") if "confidence" in header else None
    for line, cells in rows:
        if not any(cells):
            continue
        try:
            status = int(cells[at["status"]] or MOVED)
            confidence = float(cells[conf_at]) if conf_at is not None and cells[conf_at] else 0.0
            yield Row(
                old=cells[at["old"]],
                new=cells[at["new"]],
                method=cells[header.index("method")] if "method" in header else "",
                confidence=confidence,
                status=status,
            )
        except (ValueError, IndexError):
            raise SunsetError(f"{path}: line {line}: not a redirects.csv row") from None
