"""Small pieces every self-contained HTML report of sunset uses.

The reports (redirects' review page, the auditors' report) show text from
crawled, untrusted pages, and are read offline years later: everything is
escaped, only http(s) URLs become links, and a Content-Security-Policy pins
their inline style (and script) by hash.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from urllib.parse import urlsplit


def csp_hash(source: str) -> str:
    """The CSP source expression that allows exactly this inline style or script."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def esc(text: object) -> str:
    """``text`` escaped for HTML element content and quoted attribute values."""
    return escape(str(text), quote=True)


def clip(text: str, cap: int) -> str:
    """``text`` cut to ``cap`` characters, with an ellipsis when cut."""
    return text if len(text) <= cap else text[: cap - 1] + "…"


def is_web_url(url: str) -> bool:
    """Only these become links: never ``javascript:``, ``data:`` or a local file."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)
