"""Terminal output shared by every stage.

Chatter (progress, warnings) goes to stderr via ``console`` so that stdout
carries only results and can be piped; summaries go to stdout.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

# rich looks sys.stderr / sys.stdout up on every write when no file is given,
# so these follow redirection (pytest capture, click's CliRunner) correctly.
console = Console(stderr=True, highlight=False)
stdout_console = Console(highlight=False)


def _cell(value: object) -> str:
    # Thousands separators make page and byte counts readable at a glance.
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def summary_table(title: str, rows: list[tuple[str, object]]) -> None:
    """Print a short two-column table (label, value) to stdout."""
    table = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
    table.add_column("label", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in rows:
        table.add_row(label, _cell(value))
    stdout_console.print(table)


class Tracker:
    """Handle yielded by :func:`progress`; call ``advance()`` as work completes."""

    def __init__(self, progress: Progress | None, task: TaskID | None, total: int | None) -> None:
        self._progress = progress
        self._task = task
        self.total = total
        self.count = 0

    def advance(self, n: int = 1) -> None:
        self.count += n
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def set_total(self, total: int | None) -> None:
        # Crawls discover their size as they go, so the total may change.
        self.total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def set_description(self, description: str) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=description)


@contextmanager
def progress(
    description: str,
    total: int | None = None,
    *,
    unit: str = "items",
    live: bool | None = None,
) -> Iterator[Tracker]:
    """Count work done, live on a terminal and as one final line otherwise.

    In CI logs and pipes a redrawing bar produces thousands of lines, so
    without a TTY nothing is printed until the end. ``live`` forces either
    mode (tests use it).
    """
    is_live = console.is_terminal if live is None else live
    started = time.monotonic()
    if not is_live:
        tracker = Tracker(None, None, total)
        outcome = "done"
        try:
            yield tracker
        except BaseException:
            outcome = "stopped"
            raise
        finally:
            elapsed = time.monotonic() - started
            of_total = f" of {tracker.total:,}" if tracker.total is not None else ""
            console.print(
                f"{description}: {tracker.count:,}{of_total} {unit} {outcome} in {elapsed:.1f}s",
                highlight=False,
            )
        return

    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn() if total is not None else TextColumn(""),
        MofNCompleteColumn() if total is not None else TextColumn("{task.completed:,.0f}"),
        TextColumn(unit),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield Tracker(bar, task, total)


__all__ = ["Tracker", "console", "progress", "stdout_console", "summary_table"]
