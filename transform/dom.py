"""Bytes to a parsed tree: charset decisions that survive lying headers, and text keys.

Every later step works on the lxml tree returned here. The text key of an
element (its normalised text) is what the template learner counts. Inside a
<time> element (and in a counter such as "Hits: 12") digits and month names
are folded, so that "Published: 15 April 2018" and "Published: 3 May 2017" are
the same template block; anywhere else a value is kept with its label.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from lxml import etree

# Removed before anything is looked at: never content, and their text would
# pollute every text key.
DROP_TAGS = ("script", "style", "noscript", "template", "head", "title", "meta", "link")

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.I)
_SINGLE_BYTE = {"cp1252", "latin-1", "iso8859-1", "ascii"}


class NotHtml(ValueError):
    """The payload is not an HTML document (a PDF, an image, binary data, empty)."""


@dataclass
class Decoded:
    text: str
    encoding: str
    notes: list[str] = field(default_factory=list)


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        canonical = codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None
    # Browsers read latin-1 and ascii labels as windows-1252 (WHATWG Encoding).
    if canonical in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return canonical


# Magic numbers of formats served as HTML by mistake: images, archives, Office
# files, and bodies still gzip- or zstd-compressed.
_BINARY_MAGIC = (
    b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"\x1f\x8b",
    b"\x28\xb5\x2f\xfd",
)  # fmt: skip
# C0 controls that no text holds (tab, line feed, form feed, carriage return
# and escape do): the WHATWG MIME sniffing standard's "binary data bytes".
_BINARY_BYTES = bytes(range(0x09)) + b"\x0b" + bytes(range(0x0E, 0x1B)) + bytes(range(0x1C, 0x20))


def sniff_not_html(body: bytes, content_type: str) -> str | None:
    """A reason when the payload is plainly not HTML, else None."""
    head = body[:1024]
    if not body.strip():
        return "empty-body"
    if head.startswith(b"%PDF"):
        return "not-html:pdf"
    if head.startswith(_BINARY_MAGIC):
        return "not-html:binary"
    # A stray NUL or control byte is a broken page, which browsers show; a
    # binary file is full of them, and does not open like markup.
    if (
        not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        and len(head) - len(head.translate(None, _BINARY_BYTES)) > len(head) // 10
        and not head.lstrip().startswith(b"<")
    ):
        return "not-html:binary"
    ctype = content_type.split(";")[0].strip().lower()
    if ctype and ctype not in ("text/html", "application/xhtml+xml", "text/plain"):
        return f"not-html:{ctype}"
    if ctype == "text/plain" and b"<" not in head:
        return "not-html:text/plain"
    return None


def decode(body: bytes, content_type: str) -> Decoded:
    """Decode an HTML payload: BOM, then the declared charset if the bytes agree,
    else UTF-8, else cp1252. NUL characters are dropped, as browsers drop them."""
    dec = _decode(body, content_type)
    if "\x00" in dec.text:
        dec.text = dec.text.replace("\x00", "")
        dec.notes.append("markup:nul-removed")
    return dec


def _decode(body: bytes, content_type: str) -> Decoded:
    notes: list[str] = []
    for bom, enc in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return Decoded(body[len(bom) :].decode(enc, errors="replace"), enc, notes)
    m = _HEADER_CHARSET.search(content_type or "")
    declared = _codec(m.group(1)) if m else None
    if declared is None:
        mm = _META_CHARSET.search(body[:4096])
        declared = _codec(mm.group(1).decode("ascii", "replace")) if mm else None
    is_ascii = body.isascii()
    if declared and declared not in _SINGLE_BYTE and declared != "cp1252":
        try:
            return Decoded(body.decode(declared), declared, notes)
        except (UnicodeDecodeError, LookupError):
            notes.append(f"charset:declared-{declared}-invalid")
    if not is_ascii:
        # Valid UTF-8 with non-ASCII bytes is almost never a single-byte
        # text by accident, so it wins over a single-byte declaration.
        try:
            text = body.decode("utf-8")
            if declared and declared != "utf-8":
                notes.append(f"charset:declared-{declared}-decoded-utf-8")
            return Decoded(text, "utf-8", notes)
        except UnicodeDecodeError:
            pass
    enc = (
        declared if declared in ("cp1252",) or (declared and declared in _SINGLE_BYTE) else "cp1252"
    )
    if declared is None and not is_ascii:
        notes.append("charset:undeclared-decoded-cp1252")
    return Decoded(body.decode(enc, errors="replace"), enc, notes)


# A long run of opening tags with nothing between them: broken or hostile
# markup. libxml2 drops everything nested past its depth limit, words
# included, so such runs are collapsed before parsing.
# Possessive: a tag ends at its first ">", so giving characters back never
# helps, and the regex engine need not try.
_OPEN_TAG = r"<(?=[A-Za-z])(?!(?:img|br|hr|input|meta|link|source|col|area|wbr|base)\b)[^<>]*+>\s*+"
# The first tag spelled out: a pattern that starts with "<" lets the regex
# engine skip to the next "<" instead of trying every character.
_TAG_RUN = re.compile(f"{_OPEN_TAG}(?:{_OPEN_TAG}){{63,}}")
# How deep a run of _TAG_RUN nests, when the parser keeps it nested.
TAG_RUN_DEPTH = 63


def collapse_tag_runs(text: str) -> tuple[str, bool]:
    out, n = _TAG_RUN.subn("<div>", text)
    return out, n > 0


# Plain lxml elements, not lxml.html's: those look up a Python element class
# each time an element is touched, a third of a million calls per thousand pages.
_PARSER = etree.HTMLParser(
    encoding="utf-8",
    remove_comments=True,
    remove_pis=True,
    recover=True,
    no_network=True,
    # huge_tree lifts libxml2's depth limit (256), past which it silently
    # drops the rest of the document; depth is bounded by flatten_deep instead.
    huge_tree=True,
)


def parse(text: str) -> etree._Element:
    """Parse decoded HTML; raises NotHtml when nothing usable comes out."""
    try:
        root = etree.fromstring(text.encode("utf-8", "surrogatepass"), parser=_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError) as exc:
        raise NotHtml(f"unparseable:{type(exc).__name__}") from None
    if root is None:
        raise NotHtml("unparseable:empty")
    return root


MAX_DEPTH = 150


_DEPTH_PROBES: dict[int, etree.XPath] = {}


def reaches(root: etree._Element, depth: int) -> bool:
    """Whether anything is nested `depth` levels under root (libxml2 walks the
    tree level by level, far quicker than visiting each element from Python)."""
    if depth < 1:
        return True
    probe = _DEPTH_PROBES.get(depth)
    if probe is None:
        probe = _DEPTH_PROBES[depth] = etree.XPath(f"boolean({'/'.join(['*'] * depth)})")
    return bool(probe(root))


def flatten_deep(root: etree._Element, max_depth: int = MAX_DEPTH) -> bool:
    """Turn whatever is nested deeper than max_depth into the text it holds.

    Real pages are never that deep; a page that is (broken markup, a trap)
    keeps its words, and every later step can recurse safely.
    """
    if not reaches(root, max_depth):
        return False
    flattened = False
    stack = [(root, 0)]
    while stack:
        el, depth = stack.pop()
        if depth >= max_depth and len(el):
            text = etree.tostring(el, method="text", encoding=str, with_tail=False)
            for child in list(el):
                el.remove(child)
            el.text = text
            flattened = True
            continue
        stack.extend((child, depth + 1) for child in el if isinstance(child.tag, str))
    return flattened


def strip_non_content(root: etree._Element) -> tuple[str | None, str | None]:
    """Remove script/style/head...; return (title, lang) read before removal."""
    title_el = root.find(".//title")
    title = norm_space(_string(title_el)) if title_el is not None else None
    lang = root.get("lang") or root.get("xml:lang")
    for el in list(root.iter(*DROP_TAGS)):
        parent = el.getparent()
        if parent is not None:
            _drop(el)
    return title or None, lang


_string = etree.XPath("string()")


def _drop(el: etree._Element) -> None:
    """Remove an element but keep its tail text in the tree."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail:
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


drop = _drop


def norm_space(s: str) -> str:
    # str.split() and the regex \s agree on what whitespace is, and split is
    # several times quicker on the short strings this is mostly called with.
    return " ".join(s.split())


_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
_FOLD = re.compile(rf"\d+|\b(?:{_MONTHS})\b")


def plain_key(s: str) -> str:
    """Text as the template learner keys it: case and spacing folded, nothing else.

    A page-specific value keeps its label company: "Projekt av Traineegrupp
    14.", "När: 12 maj" are content, however often the label recurs.
    """
    return " ".join(s.split()).lower()


# A label, a colon and a bare number: a counter ("Hits: 123"), which changes
# by itself and says nothing about the page. Not "Traineegrupp 14.": without
# the colon a number is part of what the text says.
_COUNTER = re.compile(r"[^\W\d_][^\W\d]{0,20}(?: [^\W\d]{1,20}){0,2}: *\d[\d ]*")


def is_counter(s: str | None) -> bool:
    return bool(s) and _COUNTER.fullmatch(" ".join(s.split())) is not None  # type: ignore[union-attr]


def text_key(s: str) -> str:
    """Normalised text for template matching: case, spacing, numbers and month names folded."""
    return _FOLD.sub("#", " ".join(s.split()).lower())


BLOCK_TAGS = frozenset(
    [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "dt",
        "dd",
        "blockquote",
        "pre",
        "figcaption",
        "caption",
        "tr",
        "address",
        "td",
        "th",
    ]
)
_CELLS = frozenset(("td", "th"))
# Where a line ends: before and after a block, before a line break.
_FLUSH_AFTER = (BLOCK_TAGS - _CELLS) | {"div", "section", "article", "table", "ul", "ol", "dl"}
_FLUSH_BEFORE = _FLUSH_AFTER | {"br", "tbody"}


def text_blocks(content: etree._Element) -> list[str]:
    """The content as lines: one per paragraph, heading, list item or table row."""
    out: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        line = norm_space("".join(buf))
        if line:
            out.append(line)
        buf.clear()

    def walk(el: etree._Element) -> None:
        tag = el.tag
        if tag.__class__ is not str:
            tag = ""
        if tag in _FLUSH_BEFORE:
            flush()
        elif tag in _CELLS:
            buf.append(" ")
        if el.text:
            buf.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                buf.append(child.tail)
        if tag in _FLUSH_AFTER:
            flush()

    walk(content)
    flush()
    return out
