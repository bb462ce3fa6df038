"""The events calendar: a crawler trap that links to the next month forever.

The generator renders the months that hold events; the server renders any
other month on request from the same function, so the trap is truly endless
while staying deterministic.
"""

from __future__ import annotations

import re
from html import escape

MARKER = "<!--sunset:calendar-->"
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def parse_month(value: str) -> tuple[int, int] | None:
    m = MONTH_RE.match(value)
    if not m:
        return None
    year, month = int(m.group(1)), int(m.group(2))
    if not (1900 <= year <= 2999 and 1 <= month <= 12):
        return None
    return year, month


def shift(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def month_key(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def render(path: str, year: int, month: int, events: list[dict[str, str]]) -> tuple[str, list[str]]:
    """Main-content HTML for one month, and its text blocks for the ground truth."""
    prev_y, prev_m = shift(year, month, -1)
    next_y, next_m = shift(year, month, 1)
    heading = f"Events in {MONTH_NAMES[month - 1]} {year}"
    texts = [heading]
    if events:
        rows = []
        for ev in events:
            rows.append(
                f"<tr><td>{escape(ev['date'])}</td><td>{escape(ev['title'])}</td>"
                f"<td>{escape(ev['place'])}</td></tr>"
            )
            texts.append(f"{ev['date']} {ev['title']} {ev['place']}")
        body = (
            '<table class="eventlist"><thead><tr><th>Date</th><th>Event</th><th>Venue</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    else:
        body = '<p class="noevents">There are no events this month.</p>'
        texts.append("There are no events this month.")
    nav = (
        f'<p class="cal-nav"><a href="{path}?month={month_key(prev_y, prev_m)}" rel="prev">'
        f"&laquo; {MONTH_NAMES[prev_m - 1]} {prev_y}</a> | "
        f'<a href="{path}?month={month_key(next_y, next_m)}" rel="next">'
        f"{MONTH_NAMES[next_m - 1]} {next_y} &raquo;</a></p>"
    )
    html = f'<div class="calendar"><h2>{escape(heading)}</h2>{body}{nav}</div>'
    return html, texts
