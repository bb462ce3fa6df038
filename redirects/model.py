"""The records the redirects stage passes between its steps.

Matching decides one :class:`Row` per legacy URL; the writers (nginx, Apache,
CSV, report) and ``sunset redirects check`` only ever see rows, so each can be
tested on its own with hand-made rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The cascade, in the order it is tried. A row records the step that decided it.
METHODS = (
    "override",  # the reviewers' overrides CSV: always wins, never second-guessed
    "special",  # robots.txt, a sitemap or a feed: the new site's equivalent, never the archive
    "exact",  # the same path exists on the new site
    "slug",  # the same last path segment, once Joomla's id prefix, .html, case... are dropped
    "document",  # a file with the same content digest or file name on the new site
    "title",  # the same (normalised) title on the new site
    "content",  # the new page contains the old page's text
    "topic",  # ranked retrieval: the new page shares the old one's rare terms (redirects.topic)
    "listing",  # a listing page follows the pages it listed
    "redirect",  # the old site already redirected it; it takes its final target's row
    "section",  # a section rule from the profile (old prefix -> new page)
    "archive",  # no successor: the archived copy
    "parent",  # the nearest parent path that has a successor
    "home",  # nothing better: the new home page
)

# Row.status
MOVED = 301
GONE = 410


@dataclass(slots=True)
class Row:
    """Where one legacy URL goes, and why."""

    old: str  # absolute legacy URL, exactly as captured (scheme, host, path, query)
    new: str  # absolute target URL
    method: str  # one of METHODS
    confidence: float  # 0..1: how sure the matcher is that ``new`` is the right place
    status: int = MOVED  # 301, or 410 for a "gone" page whose body links ``new``
    title: str = ""  # the legacy page's title, for reviewers
    group: str = ""  # rows of one legacy page (its variants) share a group
    note: str = ""  # evidence, e.g. "containment 0.93 of 14 shingles"
    captured: bool = True  # False for URLs known only from links or redirects
    # (new URL, new title, score 0..1), best first, at most 3: what a reviewer picks from
    candidates: tuple[tuple[str, str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Refused:
    """A legacy URL or override that was left out of the generated files."""

    old: str
    new: str
    reason: str  # one line, e.g. "target host evil.example is not allowed"


@dataclass
class Site:
    """What the writers need to know about the two sites."""

    legacy_base: str  # e.g. "https://www.wiganboroughccg.nhs.uk" (no trailing slash)
    legacy_hosts: tuple[str, ...]  # server_name values for the nginx server block
    new_home: str  # absolute URL of the successor's home page
    allowed_target_hosts: tuple[str, ...]  # a target on any other host is refused
    significant_query_params: tuple[str, ...]
    # Where a URL with no row at all goes: an absolute URL prefix to which the
    # request's path and query are appended (the archive's lookup of the legacy
    # URL), or "" for the new home page.
    fallback_prefix: str = ""
    gone_mode: bool = False  # archive_mode = "gone": archived pages answer 410
    extra: dict[str, Any] = field(default_factory=dict)
    # The CMS's other URL forms that nginx folds together (redirects/forms.py):
    # a front controller ("/index.php"), an id parameter whose alias suffix is
    # dropped ("id"), and feed parameters ("format=feed") sent to feed_target.
    front_controller: str = ""
    id_param: str = ""
    feed_params: tuple[str, ...] = ()
    feed_target: str = ""


@dataclass
class Collision:
    """Legacy URLs that nginx cannot tell apart (its plain map keys ignore case)."""

    map: str  # which map: "request_uri", "canonical" or "path"
    key: str  # the key as written
    olds: list[str]  # the legacy URLs behind it
    targets: list[str]  # their targets, in the same order
    kept: str  # the target written for the key, or "" if the key was left out
