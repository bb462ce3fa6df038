"""Layer 1: learn the site's template from the site itself.

Every element of a page gets a key: its structural path (tags, with the ids and
classes that name a module, not the ones that mark state such as "active")
plus its normalised text. A key is template when it recurs on many pages and
on most of the pages that have its path at all: the navigation, the popup, the
login module, "Published: <date>" lines. An inline element that shares its
line with other text is never template on its own (a recurring label, "När:",
keeps its page's value company). Content recurs too (a stock list
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
from urllib.parse import urlsplit

from lxml import etree

from .dom import is_counter, plain_key, text_blocks, text_key

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
_COUNTER_CHARS = 60
# A section is learned from when the sample holds this many of its pages, and
# a key is its template when on this many of them (and on most of them).
SECTION_MIN_PAGES = 4
# A line on at least this share of the pages learned from is template, wherever it is.
TEMPLATE_LINE_SHARE = 0.5
SECTION_MIN_KEY_PAGES = 3
# A table's rows and cells are data: a header row or a date cell that recurs
# across pages is still content. Only whole tables can be template.
# The same holds for list items: a stock list item is still content when its
# list is not template as a whole.
TABLE_PARTS = frozenset(
    ("tr", "td", "th", "thead", "tbody", "tfoot", "caption", "colgroup", "li", "dt", "dd")
)


# Inline elements: one of these is template only as a line of its own; beside
# other text it is a label whose line holds a page's own value.
INLINE_TAGS = frozenset(
    ("a", "abbr", "b", "cite", "code", "em", "i", "label", "mark", "q", "s", "small", "span",
     "strong", "sub", "sup", "time", "u")
)  # fmt: skip


def _has_text(el: etree._Element) -> bool:
    return any(not t.isspace() for t in el.itertext())


def part_of_line(el: etree._Element) -> bool:
    """Whether el is inline and shares its line with other text ("<b>När:</b> 12 maj")."""
    if el.tag not in INLINE_TAGS:
        return False
    if el.tail and not el.tail.isspace():
        return True
    parent = el.getparent()
    if parent is None:
        return False
    if parent.text and not parent.text.isspace():
        return True
    for sib in parent:
        if sib is el:
            continue
        if sib.tail and not sib.tail.isspace():
            return True
        if isinstance(sib.tag, str) and _has_text(sib):
            return True
    return False


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
    key = plain_key(text)
    return key.encode("utf-8", "surrogatepass"), bool(_HAS_WORD.search(key))


def _folded(el: etree._Element) -> tuple[bytes, bool, int]:
    """The text info of a <time> or a counter: numbers and months folded, so
    "Published: 3 May 2017" recurs; everything else is keyed as written."""
    text = etree.tostring(el, method="text", encoding=str, with_tail=False)
    if not text or text.isspace():
        return b"", False, len(text)
    key = text_key(text)
    return (
        _h(b"@fold", key.encode("utf-8", "surrogatepass")),
        bool(_HAS_WORD.search(key)),
        len(text),
    )


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
        if el.tag == "time" or (n <= _COUNTER_CHARS and not len(el) and is_counter(el.text)):
            info[el] = _folded(el)
            continue
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
    section: str = ""  # see section_of
    lines: set[bytes] = field(default_factory=set)  # line_hash of each of its lines


def section_of(url: str) -> str:
    """The section a page belongs to: the first segment of its path ("" for none).

    A section's own index page (/events/) is in it, with its pages
    (/events/concert/); a top-level page is a section of one page, which
    teaches nothing.
    """
    path = urlsplit(url).path.lstrip("/")
    first, sep, _rest = path.partition("/")
    if not sep and "." in first:  # /index.html, /about.php: a file, not a folder
        return ""
    return first.lower()


def page_keys(root: etree._Element, section: str = "") -> PageKeys:
    page = PageKeys({}, set(), {}, section)
    for k in keyed_elements(root, page.path_parent):
        page.key_path.setdefault(k.key, k.path)
        page.paths.add(k.path)
    page.lines = {line_hash(line) for line in text_blocks(root) if _HAS_WORD.search(line)}
    return page


def line_hash(line: str) -> bytes:
    """A line of text (see dom.text_blocks) as the line layer counts it."""
    return _h(b"@line", plain_key(line).encode("utf-8", "surrogatepass"))


@dataclass
class TemplateModel:
    min_share: float = 0.5
    pages: int = 0
    key_pages: Counter[bytes] = field(default_factory=Counter)
    path_pages: Counter[bytes] = field(default_factory=Counter)
    key_path: dict[bytes, bytes] = field(default_factory=dict)
    # path -> (parent path, signature), for every path seen while learning.
    path_parent: dict[bytes, tuple[bytes, bytes]] = field(default_factory=dict)
    # The same counts per section (see section_of), from the same sample: a
    # block repeated across one section (its sub-menu) but not site-wide.
    section_pages: Counter[str] = field(default_factory=Counter)
    section_key_pages: dict[str, Counter[bytes]] = field(default_factory=dict)
    section_path_pages: dict[str, Counter[bytes]] = field(default_factory=dict)
    # Pages (of the sample) that hold each line, wherever it is in the page.
    line_pages: Counter[bytes] = field(default_factory=Counter)
    template: frozenset[bytes] = frozenset()
    # Lines on most pages of the site: what is left of the template inside
    # blocks that are not (an address in a page's own card, a menu entry as
    # a heading), taken out line by line.
    template_lines: frozenset[bytes] = frozenset()
    # Of template, the keys learned in a section only.
    section_template: int = 0
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
        self.line_pages.update(page.lines)
        if page.section:
            self.section_pages[page.section] += 1
            self.section_key_pages.setdefault(page.section, Counter()).update(page.key_path.keys())
            self.section_path_pages.setdefault(page.section, Counter()).update(page.paths)

    @property
    def min_pages(self) -> int:
        # Two pages can only show a template if both are all there is.
        return 2 if self.pages <= 3 else 3

    def finish(self) -> None:
        floor = self.min_pages
        site = {
            k
            for k, n in self.key_pages.items()
            if n >= floor and n >= self.min_share * self.path_pages[self.key_path[k]]
        }
        extra: set[bytes] = set()
        for section, pages in self.section_pages.items():
            # A section learns as the site does, from pages of its own: a key
            # on most of the section's pages that have its path.
            if pages < SECTION_MIN_PAGES or pages == self.pages:
                continue
            paths = self.section_path_pages[section]
            extra.update(
                k
                for k, n in self.section_key_pages[section].items()
                if n >= SECTION_MIN_KEY_PAGES
                and k not in site
                and n >= self.min_share * pages
                and n >= self.min_share * paths[self.key_path[k]]
            )
        self.section_template = len(extra)
        self.template = frozenset(site | extra)
        self.template_lines = frozenset(
            h
            for h, n in self.line_pages.items()
            if n >= floor and n >= TEMPLATE_LINE_SHARE * self.pages
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
        self.section_key_pages = {}
        self.section_path_pages = {}
        self.line_pages = Counter()
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
                    if key is not None and key in template and not part_of_line(child):
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
        return {
            "pages_learned": self.pages,
            "template_keys": len(self.template),
            "sections_learned": sum(
                1 for n in self.section_pages.values() if n >= SECTION_MIN_PAGES
            ),
            "section_template_keys": self.section_template,
            "template_lines": len(self.template_lines),
        }
