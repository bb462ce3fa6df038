"""Layer 1: learn the site's template from the site itself.

Every element of a page gets a key: its structural path (tags, with the ids and
classes that name a module, not the ones that mark state such as "active")
plus its normalised text. A key is template when it recurs on many pages and
on most of the pages that have its path at all: the navigation, the popup, the
login module, "Published: <date>" lines. Content recurs too (a stock list
item, a repeated heading), but at a path where most pages say something else,
so the share rule keeps it.

Only a sample of pages is learned from, so memory does not grow with the site.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree

from .dom import text_key

# Class and id tokens that mark state or position rather than a module.
_VOLATILE = re.compile(
    r"\d|^(active|current|selected|open|opened|parent|deeper|default|first|last|odd|even|"
    r"hover|focus|in|show|shown|hide|hidden|fade|expanded|collapsed|alias-parent-active)$"
)
# Above this many characters an element holds more than a module: never template.
MAX_TEMPLATE_CHARS = 20_000


def _sig(el: etree._Element) -> str:
    tag = el.tag if isinstance(el.tag, str) else "?"
    ident = el.get("id")
    parts = [tag]
    if ident and not _VOLATILE.search(ident):
        parts.append("#" + ident)
    cls = el.get("class")
    if cls:
        parts.extend("." + c for c in sorted(set(cls.split())) if not _VOLATILE.search(c))
    return "".join(parts)


def _h(data: str) -> bytes:
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=8).digest()


@dataclass
class Keyed:
    el: etree._Element
    path: bytes
    key: bytes
    chars: int


def keyed_elements(root: etree._Element) -> Iterator[Keyed]:
    """(element, path hash, key hash, text length) for every element with text, in document order."""
    # Text lengths bottom-up first, so only elements small enough to be a
    # module have their text serialised (keeps deep or huge pages linear).
    lengths: dict[etree._Element, int] = {}
    order = [el for el in root.iter() if isinstance(el.tag, str)]
    for el in reversed(order):
        n = len(el.text or "")
        for child in el:
            n += lengths.get(child, 0) + len(child.tail or "")
        lengths[el] = n
    paths: dict[etree._Element, str] = {}
    for el in order:
        parent = el.getparent()
        path = (paths[parent] + "/" if parent is not None and parent in paths else "") + _sig(el)
        paths[el] = path
        n = lengths[el]
        if el.tag == "img":
            # A picture repeated at the same place (logo, arrows, print button).
            src = el.get("src")
            if src:
                yield Keyed(el, _h(path), _h(path + "\x1f@img:" + src), 0)
            continue
        if n == 0 or n > MAX_TEMPLATE_CHARS:
            continue
        key = text_key(etree.tostring(el, method="text", encoding=str, with_tail=False))
        if key:
            yield Keyed(el, _h(path), _h(path + "\x1f" + key), n)


@dataclass
class TemplateModel:
    min_share: float = 0.5
    pages: int = 0
    key_pages: Counter[bytes] = field(default_factory=Counter)
    path_pages: Counter[bytes] = field(default_factory=Counter)
    key_path: dict[bytes, bytes] = field(default_factory=dict)
    template: frozenset[bytes] = frozenset()

    def observe(self, root: etree._Element) -> None:
        keys: set[bytes] = set()
        paths: set[bytes] = set()
        for k in keyed_elements(root):
            keys.add(k.key)
            paths.add(k.path)
            self.key_path.setdefault(k.key, k.path)
        self.key_pages.update(keys)
        self.path_pages.update(paths)
        self.pages += 1

    @property
    def min_pages(self) -> int:
        # Two pages can only show a template if both are all there is.
        return 2 if self.pages <= 3 else 3

    def finish(self) -> None:
        floor = self.min_pages
        self.template = frozenset(
            k
            for k, n in self.key_pages.items()
            if n >= floor and n >= self.min_share * self.path_pages[self.key_path[k]]
        )
        # Only the decision is needed from here on.
        self.key_pages = Counter()
        self.key_path = {}

    def stats(self) -> dict[str, int]:
        return {"pages_learned": self.pages, "template_keys": len(self.template)}
