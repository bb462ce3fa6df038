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
# Cached text keys of template modules, per process: a few per template
# path, so this bounds memory without ever being reached on a sane site.
INFO_CACHE_SIZE = 4096
_HAS_WORD = re.compile(r"[^\W\d_]")
# A table's rows and cells are data: a header row or a date cell that recurs
# across pages is still content. Only whole tables can be template.
# The same holds for list items: a stock list item is still content when its
# list is not template as a whole.
TABLE_PARTS = frozenset(
    ("tr", "td", "th", "thead", "tbody", "tfoot", "caption", "colgroup", "li", "dt", "dd")
)


_SIG_CACHE: dict[tuple[str, str | None, str | None], bytes] = {}


def _sig(el: etree._Element) -> bytes:
    tag = el.tag if isinstance(el.tag, str) else "?"
    if tag in ("html", "body"):
        # Their classes name the page type and menu item (Joomla: "view-article
        # itemid-262"), which would make every page type a template of its own.
        return tag.encode()
    ident, cls = el.get("id"), el.get("class")
    cached = _SIG_CACHE.get((tag, ident, cls))
    if cached is not None:
        return cached
    parts = [tag]
    if ident and not _VOLATILE.search(ident):
        parts.append("#" + ident)
    if cls:
        parts.extend("." + c for c in sorted(set(cls.split())) if not _VOLATILE.search(c))
    sig = "".join(parts).encode("utf-8", "surrogatepass")
    if len(_SIG_CACHE) < 100_000:
        _SIG_CACHE[(tag, ident, cls)] = sig
    return sig


def _h(*data: bytes) -> bytes:
    return hashlib.blake2b(b"\x1f".join(data), digest_size=8).digest()


@dataclass
class Keyed:
    el: etree._Element
    path: bytes
    key: bytes
    chars: int


def _piece(text: str | None) -> tuple[bytes, bool]:
    if not text or text.isspace():
        return b"", False
    key = text_key(text)
    return key.encode("utf-8", "surrogatepass"), bool(_HAS_WORD.search(key))


TextInfo = tuple[bytes, bool, int]  # text hash (b"" when no text), has a word, text length


def _text_info(root: etree._Element, info: dict[etree._Element, TextInfo]) -> None:
    """Fill `info` for root and every element under it not already there.

    An element's text key is built bottom-up from its own text, its
    children's keys and the text between them, so each piece of text is
    normalised once however deep the tree is.
    """
    if root in info:
        return
    for el in reversed([el for el in root.iter() if isinstance(el.tag, str)]):
        if el in info:
            continue
        own, word = _piece(el.text)
        chunks = [own] if own else []
        n = len(el.text or "")
        for child in el:
            sub = info.get(child)
            if sub is not None and sub[0]:
                chunks.append(sub[0])
                word = word or sub[1]
                n += sub[2]
            tail, tail_word = _piece(child.tail)
            if tail:
                chunks.append(tail)
                word = word or tail_word
            n += len(child.tail or "")
        if el.tag == "img":
            src = el.get("src")
            info[el] = (_h(b"@img", src.encode("utf-8", "surrogatepass")) if src else b"", True, 0)
            continue
        if not chunks:
            info[el] = (b"", False, n)
        elif len(chunks) == 1 and len(chunks[0]) == 8 and not own:
            info[el] = (chunks[0], word, n)  # a wrapper around one child: same text, same key
        else:
            info[el] = (_h(*chunks), word, n)


def _key(path: bytes, text: TextInfo) -> bytes | None:
    """The template key of an element, or None when it has none."""
    digest, word, n = text
    # A key of nothing but folded numbers and dates says nothing about
    # the template ("8 September 2019" in a table is content).
    if not digest or not word or n > MAX_TEMPLATE_CHARS:
        return None
    return _h(path, digest)


def keyed_elements(
    root: etree._Element, parents: dict[bytes, tuple[bytes, bytes]] | None = None
) -> Iterator[Keyed]:
    """(element, path hash, key hash, text length) for every element with text, in document order.

    `parents`, when given, gets each path's (parent path, signature), so the
    paths can be rebuilt from their signatures.
    """
    info: dict[etree._Element, TextInfo] = {}
    _text_info(root, info)
    paths: dict[etree._Element, bytes] = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        parent = el.getparent()
        ppath = paths.get(parent, b"") if parent is not None else b""
        sig = _sig(el)
        path = _h(ppath, sig)
        paths[el] = path
        if parents is not None:
            parents.setdefault(path, (ppath, sig))
        text = info[el]
        key = _key(path, text)
        if key is not None:
            yield Keyed(el, path, key, text[2])


# A trie of the element signatures that lead to template paths: signature ->
# (path hash, is a template path, children).
_Trie = dict[bytes, tuple[bytes, bool, "_Trie"]]


@dataclass
class PageKeys:
    """What learning takes from one page; small, so a worker process can send it."""

    key_path: dict[bytes, bytes]  # key -> its path
    paths: set[bytes]
    path_parent: dict[bytes, tuple[bytes, bytes]]  # path -> (parent path, signature)


def page_keys(root: etree._Element) -> PageKeys:
    page = PageKeys({}, set(), {})
    for k in keyed_elements(root, page.path_parent):
        page.key_path.setdefault(k.key, k.path)
        page.paths.add(k.path)
    return page


@dataclass
class TemplateModel:
    min_share: float = 0.5
    pages: int = 0
    key_pages: Counter[bytes] = field(default_factory=Counter)
    path_pages: Counter[bytes] = field(default_factory=Counter)
    key_path: dict[bytes, bytes] = field(default_factory=dict)
    # path -> (parent path, signature), for every path seen while learning.
    path_parent: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    template: frozenset[bytes] = frozenset()
    # The paths of the template keys, as signatures from the root down: a page
    # is matched by following it, never looking at the elements (the content,
    # mostly) that no template path leads to.
    trie: _Trie = field(default_factory=dict)
    # Serialised element -> its text info, per process (see _cached_info).
    _info_cache: dict[bytes, TextInfo] = field(default_factory=dict, repr=False)

    def observe(self, root: etree._Element) -> None:
        self.add(page_keys(root))

    def add(self, page: PageKeys) -> None:
        """Count one page's keys. Pages may come in any order: what is kept
        of each key and path does not depend on which page showed it first."""
        self.key_pages.update(page.key_path.keys())
        self.path_pages.update(page.paths)
        for key, path in page.key_path.items():
            self.key_path.setdefault(key, path)
        for path, parent in page.path_parent.items():
            self.path_parent.setdefault(path, parent)
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
        self.trie = {}
        for path in sorted({self.key_path[k] for k in self.template}):
            chain = []
            step = path
            while step:
                parent, sig = self.path_parent[step]
                chain.append((sig, step))
                step = parent
            node = self.trie
            for depth, (sig, step) in enumerate(reversed(chain)):
                last = depth == len(chain) - 1
                entry = node.get(sig)
                if entry is None:
                    entry = node[sig] = (step, last, {})
                elif last and not entry[1]:
                    entry = node[sig] = (step, True, entry[2])
                node = entry[2]
        # Only the decision is needed from here on.
        self.key_pages = Counter()
        self.key_path = {}
        self.path_parent = {}

    def matches(self, root: etree._Element) -> list[tuple[etree._Element, bytes]]:
        """The outermost elements under root (root itself aside) whose key is
        template, in document order, each with its markup; row, cell and
        list-item parts never are."""
        found: list[tuple[etree._Element, bytes]] = []
        info: dict[etree._Element, TextInfo] = {}
        template = self.template

        def walk(el: etree._Element, node: _Trie) -> None:
            for child in el:
                if not isinstance(child.tag, str):
                    continue
                entry = node.get(_sig(child))
                if entry is None:
                    continue
                path, is_template_path, below = entry
                if is_template_path and child.tag not in TABLE_PARTS:
                    # Template modules are the same markup on page after page:
                    # their serialisation (a C call) finds the text key worked
                    # out before.
                    markup = etree.tostring(child, with_tail=False)
                    key = _key(path, self._cached_info(child, markup, info))
                    if key is not None and key in template:
                        found.append((child, markup))
                        continue
                if below:
                    walk(child, below)

        entry = self.trie.get(_sig(root))
        if entry is not None:
            walk(root, entry[2])
        return found

    def _cached_info(
        self, el: etree._Element, markup: bytes, info: dict[etree._Element, TextInfo]
    ) -> TextInfo:
        cached = self._info_cache.get(markup)
        if cached is None:
            _text_info(el, info)
            cached = info[el]
            if len(self._info_cache) >= INFO_CACHE_SIZE:
                self._info_cache.clear()
            self._info_cache[markup] = cached
        return cached

    def stats(self) -> dict[str, int]:
        return {"pages_learned": self.pages, "template_keys": len(self.template)}
