"""One page: take the template out in layers, then write what is left as text, HTML and Markdown.

Layers, in order, each recording what it removed:
1. learned  - template blocks learned from the site (transform.template);
2. generic  - breadcrumbs, hidden dialogs, navigation landmarks and forms,
              which HTML marks the same way on every site;
3. rules    - the profile's selectors and text patterns;
4. group    - lists that only link to the page's own other URLs (an
              "Article Index" of a multi-part article);
5. fallback - when the learned template says nothing about a page (a one-off
              layout), the main element or the densest text block is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3
from cssselect import parse as parse_css
from lxml import etree
from lxml.cssselect import CSSSelector, SelectorError
from markdownify import ATX, MarkdownConverter

from .dom import drop, norm_space, text_blocks
from .template import INFO_CACHE_SIZE, TemplateModel, line_hash, part_of_line

HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_BREADCRUMB = re.compile(r"breadcrumb|pathway", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_LANDMARK_TAGS = frozenset(("nav", "aside", "form"))
_DIALOG_ROLES = frozenset(("dialog", "alertdialog", "tooltip"))
# A token of an id or class that names a pop-up, wherever it is in the page
# ("c-modal", "cookie-consent", "popup_box"), and ones that do only when the
# element is hidden too (a visible "banner" may be a page's own hero image).
_POPUP = re.compile(
    r"(?:^|[\s_-])(?:modal|popup|pop-up|lightbox|cookies?|consent|gdpr|dialog)(?:$|[\s_-])", re.I
)
_POPUP_IF_HIDDEN = re.compile(
    r"(?:^|[\s_-])(?:banner|overlay|toast|notice|newsletter|offcanvas|off-canvas|drawer|alert)"
    r"(?:$|[\s_-])",
    re.I,
)
_DECORATION_TAGS = frozenset(("span", "i", "b", "em", "strong", "small", "svg", "img", "sup"))
_DECORATION_CHARS = 40
_MEDIA_TAGS = ("video", "audio", "object", "embed", "canvas", "iframe")
_CRUMB_SEPARATORS = " \t\n»>›/|:-"
_SANITISE_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "dl", "dt", "em",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol",
    "p", "pre", "q", "s", "small", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "time", "tr", "u", "ul",
}  # fmt: skip
_SANITISE_ATTRS = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "ol": {"start"},
}
TEXT_RULE_MAX_CHARS = 500
# The URL schemes a link or an image may keep, in every output format (the
# HTML sanitiser, Markdown and the JSON records): anything else is dropped.
URL_SCHEMES = frozenset(("http", "https", "mailto", "tel"))
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
# Stripped from both ends of a URL by a browser (C0 controls and space) ...
_URL_EDGES = "".join(map(chr, range(0x21)))
# ... and percent-encoded where they remain (a browser encodes them; lxml
# refuses to store them).
_URL_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


def safe_url(base: str, href: str) -> str | None:
    """href resolved against base, or None when it is not a URL that output
    may hold: a scheme outside URL_SCHEMES (javascript:, vbscript:, data:,
    however cased or split by tabs and newlines, which browsers remove), or a
    URL that cannot be parsed (a broken IPv6 host, say).

    Character references are already decoded by the parser (&#106; is "j").
    """
    url = href.strip().strip(_URL_EDGES)
    if "\t" in url or "\n" in url or "\r" in url:
        url = url.replace("\t", "").replace("\n", "").replace("\r", "")
    m = _SCHEME.match(url)
    if m is not None and m.group(1).lower() not in URL_SCHEMES:
        return None
    if _URL_CONTROLS.search(url):
        url = _URL_CONTROLS.sub(lambda c: f"%{ord(c.group()):02X}", url)
    try:
        absolute = urljoin(base, url)
        parts = urlsplit(absolute)
        parts.port  # noqa: B018 - raises for a port that cannot be one
    except ValueError:
        return None
    if parts.scheme.lower() not in URL_SCHEMES:
        return None
    return absolute


def _is_web(url: str) -> bool:
    return url[:6].lower().startswith(("http:", "https:"))


class RulesError(ValueError):
    pass


@dataclass
class Rules:
    selectors: list[tuple[str, CSSSelector]]
    patterns: list[re.Pattern[str]]
    # Per selector: strings its matches' markup must hold (see _needs).
    needs: dict[str, frozenset[str]] = field(default_factory=dict)
    # Per pattern: the literal text any match of it holds, or None (see _literal).
    literals: list[Literal | None] = field(default_factory=list)

    @classmethod
    def build(cls, selectors: tuple[str, ...], patterns: tuple[str, ...]) -> Rules:
        compiled = []
        needs = {}
        for sel in selectors:
            try:
                compiled.append((sel, CSSSelector(sel)))
                # A group ("a, b") matches where any of its selectors does.
                needs[sel] = frozenset.intersection(*(_needs(t) for t in parse_css(sel)))
            except SelectorError as exc:
                raise RulesError(f"boilerplate selector {sel!r}: {exc}") from None
        return cls(
            compiled, [re.compile(p) for p in patterns], needs, [_literal(p) for p in patterns]
        )

    @classmethod
    def none(cls) -> Rules:
        return cls([], [])


@dataclass(frozen=True)
class Literal:
    """Plain text that every match of a text pattern holds (see _literal)."""

    text: str
    ignore_case: bool
    regex: re.Pattern[str]  # the text alone, with the pattern's flags

    def found_in(self, page: str, folded: str) -> bool:
        """Whether page holds it; folded is fold_for_ascii(page)."""
        if not self.ignore_case:
            return self.text in page
        if self.text.isascii():
            # A substring test, far quicker than a case-blind regex search.
            return self.text.lower() in folded
        return self.regex.search(page) is not None


# The characters beyond ASCII that the regex module's case-blind matching
# takes for an ASCII letter (a test checks this against the module itself).
_ASCII_FOLDS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def fold_for_ascii(text: str) -> str:
    """text lower-cased so that wherever a case-blind pattern matches plain
    ASCII text, that text, lower-cased, is a substring of this."""
    if not text.isascii() and any(c in text for c in "\u0130\u0131\u017f\u212a"):
        # Per-character translation is slow: only for the rare page that needs it.
        text = text.translate(_ASCII_FOLDS)
    return text.lower()


def _literal(pattern: str) -> Literal | None:
    """The longest run of plain characters in a text pattern's top level, or None.

    Every match of the pattern holds it, so a page whose text does not is
    searched without that pattern: an element's text is part of its page's
    text. Read with the regex module's own parser, so a pattern it cannot
    read simply gets no shortcut.
    """
    try:
        from re import _constants, _parser  # type: ignore[attr-defined]

        parsed = _parser.parse(pattern)
        best: list[int] = []
        run: list[int] = []
        for op, av in parsed.data:
            if op is _constants.LITERAL:
                run.append(av)
                if len(run) > len(best):
                    best = list(run)
            else:
                run = []
        if not best:
            return None
        text = "".join(map(chr, best))
        flags = parsed.state.flags & ~re.VERBOSE
        return Literal(text, bool(flags & re.IGNORECASE), re.compile(re.escape(text), flags))
    except Exception:
        return None


_PLAIN_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _needs(tree: Any) -> frozenset[str]:
    """Strings that the markup of any element a selector matches must contain.

    From the parsed selector: tag names, classes, ids, attribute names and
    values, each of which lxml writes out as it is when it is plain ASCII.
    What only narrows a match (a negation, :is(), a position) adds nothing,
    and a node this does not know adds nothing either: the strings are a
    filter that may let a page through for nothing, never one that holds a
    match back. A page whose content has none of a selector's strings is not
    searched with it at all.
    """
    out: set[str] = set()

    def plain(token: str | None, prefix: str = "") -> None:
        if token and _PLAIN_TOKEN.fullmatch(token):
            out.add(prefix + token)

    def walk(node: Any) -> None:
        name = type(node).__name__
        if name == "Selector":
            walk(node.parsed_tree)
        elif name == "Element":
            if node.element and node.element != "*" and not node.namespace:
                plain(node.element, "<")
        elif name == "Class":
            plain(node.class_name)
            walk(node.selector)
        elif name == "Hash":
            plain(node.id)
            walk(node.selector)
        elif name == "Attrib":
            if not node.namespace and getattr(node, "flag", None) in (None, "s"):
                plain(node.attrib)
                value = getattr(node.value, "value", None)
                if node.operator != "exists" and isinstance(value, str):
                    plain(value)
            walk(node.selector)
        elif name == "CombinedSelector":
            walk(node.selector)
            walk(node.subselector)
        elif name == "Relation":
            # :has(): what it relates to is inside the page body whenever the
            # element matched is not the body itself (never removed anyway).
            walk(node.selector)
            args = node.arguments
            if len(args) == 1 and isinstance(args[0], tuple) and len(args[0]) == 2:
                walk(args[0][1])
        elif name in ("Negation", "Function", "Pseudo", "Matching", "SpecificityAdjustment"):
            walk(node.selector)

    walk(tree)
    return frozenset(out)


@dataclass
class Removed:
    layer: str
    why: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"layer": self.layer, "why": self.why, "text": self.text}


@dataclass
class Result:
    url: str
    title: str | None
    headings: list[str]
    breadcrumbs: list[str]
    published: str | None
    modified: str | None
    lang: str | None
    blocks: list[str]
    html: str
    markdown: str
    links: list[dict[str, str]]
    images: list[dict[str, str]]
    listing: bool
    removed: list[Removed]
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.blocks)


def _text(el: etree._Element) -> str:
    return etree.tostring(el, method="text", encoding=str, with_tail=False)


def _short(s: str) -> str:
    s = norm_space(s)
    return s if len(s) <= 200 else s[:199] + "…"


def read_dates(root: etree._Element) -> tuple[str | None, str | None]:
    """Published and modified dates from metadata, before any block is removed."""
    published = modified = None
    for meta in root.iter("meta"):
        prop = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        content = meta.get("content")
        if not content:
            continue
        if prop in ("article:published_time", "datepublished", "dc.date.issued", "dcterms.issued"):
            published = published or content
        elif prop in ("article:modified_time", "datemodified", "dcterms.modified"):
            modified = modified or content
    for el in root.iter("time"):
        value = el.get("datetime")
        if not value:
            continue
        where = " ".join(
            (a.get("class") or "") + " " + (a.get("itemprop") or "")
            for a in (el, *el.iterancestors())
        ).lower()
        if "modified" in where or "updated" in where:
            modified = modified or value
        else:
            published = published or value
    return _iso_date(published), _iso_date(modified)


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    m = re.match(r"\d{4}-\d{2}-\d{2}", value.strip())
    return m.group(0) if m else None


class Extractor:
    def __init__(
        self,
        model: TemplateModel,
        rules: Rules,
        internal_hosts: frozenset[str],
        use_learned: bool = True,
        rewrite: dict[str, str] | None = None,
    ) -> None:
        self.rewrite = rewrite or {}
        self.model = model
        self.rules = rules
        self.hosts = internal_hosts
        self.use_learned = use_learned
        self._removed_text: dict[bytes, str] = {}

    # -- layers -----------------------------------------------------------

    def _remove(
        self,
        el: etree._Element,
        layer: str,
        why: str,
        out: list[Removed],
        markup: bytes | None = None,
    ) -> None:
        if el.getparent() is None:
            return
        text = _short(_text(el)) if markup is None else self._said(el, markup)
        out.append(Removed(layer, why, text))
        drop(el)

    def learned(self, body: etree._Element, out: list[Removed]) -> int:
        found = self.model.matches(body)
        for el, markup in found:
            self._remove(el, "learned", "recurs across the site", out, markup)
        return len(found)

    def _said(self, el: etree._Element, markup: bytes) -> str:
        # What a removed module said is a function of its markup, which
        # recurs: worked out once per process.
        text = self._removed_text.get(markup)
        if text is None:
            if len(self._removed_text) >= INFO_CACHE_SIZE:
                self._removed_text.clear()
            text = self._removed_text[markup] = _short(_text(el))
        return text

    def generic(self, body: etree._Element, out: list[Removed]) -> list[str]:
        crumbs: list[str] = []
        # Document order, by hand, never into what was removed (see by_rules).
        stack: list[Iterator[etree._Element]] = [iter(list(body))]
        while stack:
            el = next(stack[-1], None)
            if el is None:
                stack.pop()
                continue
            tag = el.tag
            if tag.__class__ is not str:
                continue
            # Only an attribute or a landmark tag can make an element go.
            if (el.keys() or tag in _LANDMARK_TAGS) and self._generic_one(el, crumbs, out):
                continue
            stack.append(iter(list(el)))
        return crumbs

    def _generic_one(self, el: etree._Element, crumbs: list[str], out: list[Removed]) -> bool:
        """Remove el if it is a breadcrumb trail, hidden, a dialog or a landmark."""
        ident = f"{el.get('id') or ''} {el.get('class') or ''} {el.get('aria-label') or ''} {el.get('itemtype') or ''}"
        if (_BREADCRUMB.search(ident) and el.tag not in ("a", "span", "li")) or (
            "BreadcrumbList" in ident
        ):
            if not crumbs:
                crumbs.extend(breadcrumb_items(el))
            self._remove(el, "generic", "breadcrumbs", out)
            return True
        role = (el.get("role") or "").lower()
        hidden = (
            el.get("aria-hidden") == "true"
            or el.get("hidden") is not None
            or _HIDDEN_STYLE.search(el.get("style") or "") is not None
        )
        names = f"{el.get('id') or ''} {el.get('class') or ''}"
        # Content collapsed until a click (an accordion panel, a tab, "read
        # more") is hidden the same way as a pop-up: only what names itself a
        # dialog goes here; a recurring one the learned layer takes anyway.
        if (
            role in _DIALOG_ROLES
            or el.tag == "dialog"
            or _POPUP.search(names)
            or (hidden and _POPUP_IF_HIDDEN.search(names))
        ):
            self._remove(el, "generic", "dialog or pop-up", out)
            return True
        if hidden and el.tag in _DECORATION_TAGS and len(_text(el)) <= _DECORATION_CHARS:
            # An icon's ligature ("expand_more") or a visual duplicate.
            self._remove(el, "generic", "hidden decoration", out)
            return True
        if el.tag in _LANDMARK_TAGS or role in (
            "navigation",
            "complementary",
            "search",
            "banner",
            "contentinfo",
            "menu",
            "menubar",
        ):
            self._remove(el, "generic", f"landmark {role or el.tag}", out)
            return True
        return False

    def by_rules(self, body: etree._Element, out: list[Removed]) -> None:
        # Removing only ever takes markup away, so what the page does not hold
        # now no selector can match later.
        markup = etree.tostring(body, encoding=str) if self.rules.needs else ""
        for source, sel in self.rules.selectors:
            needs = self.rules.needs.get(source)
            if needs and not all(n in markup for n in needs):
                continue
            for el in sel(body):
                if el is not body and el.getparent() is not None:
                    self._remove(el, "rules", f"selector {source}", out)
        patterns = self.rules.patterns
        if not patterns:
            return
        if len(self.rules.literals) == len(patterns):
            page = norm_space(_text(body))
            folded = fold_for_ascii(page)
            patterns = [
                pat
                for pat, lit in zip(patterns, self.rules.literals, strict=True)
                if lit is None or lit.found_in(page, folded)
            ]
            if not patterns:
                return
        # Document order, by hand: a removed module's elements are never
        # visited, where walking a snapshot would ask each one whether it is
        # still in the page.
        stack: list[tuple[etree._Element, Iterator[etree._Element]]] = [(body, iter(list(body)))]
        # Texts already found to match no pattern: a wrapper has its child's text.
        plain: set[str] = set()
        while stack:
            el = next(stack[-1][1], None)
            if el is None:
                stack.pop()
                continue
            if not isinstance(el.tag, str):
                continue
            text = _text(el)
            if len(text) <= TEXT_RULE_MAX_CHARS:
                flat = norm_space(text)
                target = None if flat in plain else self._text_rule(body, el, flat, patterns, out)
                if target is not None:
                    if target is not el:
                        while stack[-1][0] is not target:
                            stack.pop()
                        stack.pop()
                    continue
                plain.add(flat)
            stack.append((el, iter(list(el))))

    def _text_rule(
        self,
        body: etree._Element,
        el: etree._Element,
        flat: str,
        patterns: list[re.Pattern[str]],
        out: list[Removed],
    ) -> etree._Element | None:
        """Remove the module whose text a pattern matches; return it, or None."""
        for pat in patterns:
            if pat.search(flat):
                # Take the module the text belongs to: climb while the
                # parent is still small enough to be one module.
                target = el
                size = len(flat)
                parent = target.getparent()
                while parent is not None and parent is not body:
                    # Grow only while the parent is little more than the
                    # module itself, never into neighbouring content.
                    psize = len(norm_space(_text(parent)))
                    if psize > TEXT_RULE_MAX_CHARS or psize > 2.5 * size + 150:
                        break
                    target, parent, size = parent, parent.getparent(), psize
                self._remove(target, "rules", f"text {pat.pattern}", out)
                return target
        return None

    def group(
        self,
        body: etree._Element,
        base: str,
        same_page: Callable[[str], bool] | None,
        out: list[Removed],
    ) -> None:
        if same_page is None:
            return
        for lst in list(body.iter("ul", "ol")):
            if lst.getparent() is None:
                continue
            hrefs = [a.get("href") for a in lst.iter("a") if a.get("href")]
            if len(hrefs) < 2:
                continue
            inside = sum(1 for h in hrefs if (u := safe_url(base, h)) and same_page(u))
            if inside >= 0.8 * len(hrefs):
                # An index of the page's own parts; take its heading with it.
                target = lst
                parent = lst.getparent()
                if parent is not None and parent is not body and len(list(parent)) <= 3:
                    target = parent
                self._remove(target, "group", "links only to this page's own parts", out)

    def fallback(self, body: etree._Element, out: list[Removed]) -> etree._Element:
        """The main element, or the element with the most paragraph text."""
        for xp in ("//main", "//*[@role='main']", "//article"):
            found = body.xpath(xp)
            if len(found) == 1 and len(_text(found[0]).strip()) > 0.5 * len(_text(body).strip()):
                return found[0]
        best, best_score = body, 0.0
        for el in body.iter("div", "td", "section", "article", "main"):
            score = 0.0
            for p in el.iterchildren("p", "h1", "h2", "h3", "ul", "ol", "table", "blockquote"):
                t = _text(p)
                links = sum(len(_text(a)) for a in p.iter("a"))
                score += max(0, len(t.strip()) - 2 * links)
            if score > best_score:
                best, best_score = el, score
        return best

    # -- the page -----------------------------------------------------------

    def extract(
        self,
        url: str,
        root: etree._Element,
        title_tag: str | None,
        lang: str | None,
        dates: tuple[str | None, str | None],
        same_page: Callable[[str], bool] | None = None,
    ) -> Result:
        base = url
        base_el = root.find(".//base")
        if base_el is not None and base_el.get("href"):
            base = safe_url(url, base_el.get("href")) or url
        body = root.find("body")
        if body is None:
            body = root
        removed: list[Removed] = []
        notes: list[str] = []
        learned = self.learned(body, removed) if self.use_learned else 0
        crumbs = self.generic(body, removed)
        self.by_rules(body, removed)
        self.group(body, base, same_page, removed)
        content = body
        if learned == 0 or self.model.pages < 2:
            content = self.fallback(body, removed)
            if content is not body:
                notes.append(f"fallback:{content.tag}")
                outside = len(norm_space(_text(body))) - len(norm_space(_text(content)))
                if outside > 0:
                    removed.append(
                        Removed("fallback", "outside the main content", f"{outside} characters")
                    )
        return self._result(url, base, content, title_tag, lang, dates, crumbs, removed, notes)

    def lines(
        self, content: etree._Element, blocks: list[str], keep: set[str], out: list[Removed]
    ) -> bool:
        """Take out what is left of the template line by line: a line found on
        most of the site's pages, as a block of its own or between line breaks,
        unless it is one of `keep` (the page's own title). Whether any went."""
        template = self.model.template_lines
        bad = {line for line in blocks if line not in keep and line_hash(line) in template}
        if not bad:
            return False
        before = len(out)
        why = "line on most pages"
        stack: list[Iterator[etree._Element]] = [iter(list(content))]
        while stack:
            el = next(stack[-1], None)
            if el is None:
                stack.pop()
                continue
            if el.tag.__class__ is not str:
                continue
            text = norm_space(_text(el))
            if not text:
                continue
            if text in bad and not part_of_line(el):
                self._remove(el, "learned", why, out)
                continue
            stack.append(iter(list(el)))
        # Lines between line breaks, each a text node of its own.
        for br in list(content.iter("br")):
            parent = br.getparent()
            if parent is None:
                continue
            prev = br.getprevious()
            if prev is None and parent.text and norm_space(parent.text) in bad:
                out.append(Removed("learned", why, _short(parent.text)))
                parent.text = None
            elif (
                prev is not None and prev.tag == "br" and prev.tail and norm_space(prev.tail) in bad
            ):
                out.append(Removed("learned", why, _short(prev.tail)))
                prev.tail = None
            nxt = br.getnext()
            if br.tail and (nxt is None or nxt.tag == "br") and norm_space(br.tail) in bad:
                out.append(Removed("learned", why, _short(br.tail)))
                br.tail = None
        return len(out) > before

    def _result(
        self,
        url: str,
        base: str,
        content: etree._Element,
        title_tag: str | None,
        lang: str | None,
        dates: tuple[str | None, str | None],
        crumbs: list[str],
        removed: list[Removed],
        notes: list[str],
    ) -> Result:
        # What a page shows in place of a player is for browsers without one.
        for media in list(content.iter(*_MEDIA_TAGS)):
            if media is not content and media.getparent() is not None:
                drop(media)
        _hoist_edge_space(content)
        _one_size_each(content)
        # Every URL is made safe here, in the tree, so the HTML, the Markdown
        # and the JSON are all written from the same safe URLs.
        links: list[dict[str, str]] = []
        link_els: list[etree._Element] = []
        for a in content.iter("a"):
            href = a.get("href")
            if not href or href.startswith("#"):
                continue
            absolute = safe_url(base, href)
            if absolute is None:
                del a.attrib["href"]  # the link goes; its text stays
                continue
            if not _is_web(absolute):  # mailto:, tel:
                a.set("href", absolute)
                continue
            new = self.rewrite.get(absolute)
            if new is not None and safe_url(absolute, new) is not None:
                absolute = new
            a.set("href", absolute)
            if (urlsplit(absolute).hostname or "").lower() in self.hosts:
                links.append({"url": absolute, "text": norm_space(_text(a))})
                link_els.append(a)
        images = []
        image_els: list[etree._Element] = []
        for img in content.iter("img"):
            src = img.get("src")
            if src:
                absolute = safe_url(base, src)
                if absolute is None or not _is_web(absolute):
                    del img.attrib["src"]
                    continue
                img.set("src", absolute)
                images.append({"url": absolute, "alt": img.get("alt") or ""})
                image_els.append(img)
        blocks = text_blocks(content)
        headings = [norm_space(_text(h)) for h in content.iter(*HEADINGS)]
        headings = [h for h in headings if h]
        title = headings[0] if headings else _site_suffix_cut(title_tag)
        # The kind is the page's as extracted so far: the line layer takes
        # out menu entries, which are also the titles of a listing's teasers.
        listing = is_listing(content, blocks, links, url, self.hosts)
        keep = {t for t in (title, _site_suffix_cut(title_tag)) if t}
        if (
            self.use_learned
            and self.model.template_lines
            and self.lines(content, blocks, keep, removed)
        ):
            blocks = text_blocks(content)
            headings = [h for h in (norm_space(_text(h)) for h in content.iter(*HEADINGS)) if h]
            inside = set(content.iter("a"))
            links = [lk for lk, a in zip(links, link_els, strict=True) if a in inside]
            inside_img = set(content.iter("img"))
            images = [im for im, el in zip(images, image_els, strict=True) if el in inside_img]
        inner = "".join(
            etree.tostring(child, method="html", encoding=str, with_tail=True) for child in content
        )
        inner = (content.text or "") + inner
        clean = nh3.clean(
            inner,
            tags=_SANITISE_TAGS,
            attributes=_SANITISE_ATTRS,
            url_schemes=set(URL_SCHEMES),
            link_rel=None,
            strip_comments=True,
        )
        clean = _squeeze_blank(clean)
        return Result(
            url=url,
            title=title,
            headings=headings,
            breadcrumbs=crumbs,
            published=dates[0],
            modified=dates[1],
            lang=lang,
            blocks=blocks,
            html=clean,
            markdown=to_markdown(clean),
            links=links,
            images=images,
            listing=listing,
            removed=removed,
            notes=notes,
        )


def _site_suffix_cut(title: str | None) -> str | None:
    if not title:
        return None
    for sep in (" - ", " | ", " – "):
        if sep in title:
            return title.rsplit(sep, 1)[0].strip() or title
    return title


_LAST_LINK = etree.XPath("(.//a)[last()]")


def breadcrumb_items(el: etree._Element) -> list[str]:
    items = [norm_space(_text(a)) for a in el.iter("a")]
    # The current page is usually the text after the last link.
    last = _LAST_LINK(el)
    tail_text = ""
    if last:
        after = []
        node = last[0]
        for following in node.itersiblings():
            after.append(_text(following))
        if node.tail:
            after.insert(0, node.tail)
        for anc in node.iterancestors():
            if anc is el:
                break
            if anc.tail:
                after.append(anc.tail)
            for following in anc.itersiblings():
                after.append(_text(following))
        tail_text = norm_space(" ".join(after)).strip(_CRUMB_SEPARATORS)
    else:
        tail_text = norm_space(_text(el))
        if ":" in tail_text:
            tail_text = tail_text.split(":", 1)[1]
        tail_text = tail_text.strip(_CRUMB_SEPARATORS)
    items = [i for i in items if i]
    if tail_text:
        items.append(tail_text)
    return items


# Own prose (paragraph text that is neither link text nor a teaser's) that
# makes a page content whatever links it lists: an article, not a listing.
PROSE_CHARS = 500
# A paragraph shorter than this is a caption, a date, a "read more" line.
_SENTENCE_CHARS = 80


def _teaser_items(content: etree._Element) -> list[etree._Element]:
    """Children of one shape, three or more under one parent, each with its own link."""
    out: list[etree._Element] = []
    for parent in content.iter():
        kids = [c for c in parent if isinstance(c.tag, str)]
        if len(kids) < 3:
            continue
        shapes: dict[tuple[str, str | None], list[etree._Element]] = {}
        for c in kids:
            if c.find(".//a") is not None:
                shapes.setdefault((c.tag, c.get("class")), []).append(c)
        for group in shapes.values():
            if len(group) >= 3:
                out.extend(group)
    return out


def _prose_chars(content: etree._Element, teasers: list[etree._Element]) -> int:
    inside = {el for t in teasers for el in t.iter()}
    n = 0
    for p in content.iter("p", "blockquote"):
        if p in inside:
            continue
        own = len(norm_space(_text(p))) - sum(len(norm_space(_text(a))) for a in p.iter("a"))
        if own >= _SENTENCE_CHARS:
            n += own
    return n


def is_listing(
    content: etree._Element,
    blocks: list[str],
    links: list[dict[str, str]],
    url: str,
    hosts: frozenset[str],
) -> bool:
    """A page made of links to other pages with their teasers: a listing, not content.

    A page with prose of its own (PROSE_CHARS of paragraphs that are not
    link text nor inside teasers) is content, whatever links it lists.
    """
    total = sum(len(b) for b in blocks)
    if total == 0:
        return False
    targets = {lk["url"].split("#", 1)[0] for lk in links} - {url}
    teasers = _teaser_items(content)
    # Headings that are nothing but a link to another page are teasers'
    # titles (a blog or news list): three make a listing whatever else the
    # page says; one or two do only on a page without prose of its own.
    linked_headings = 0
    for h in content.iter(*HEADINGS):
        a = h.find(".//a")
        href = a.get("href") if a is not None else None
        if (
            href
            and href.split("#", 1)[0] != url
            and (urlsplit(href).hostname or "").lower() in hosts
            and len(_text(a).strip()) >= 0.9 * len(_text(h).strip()) > 0
        ):
            linked_headings += 1
    if linked_headings >= 3:
        return True
    if _prose_chars(content, teasers) >= PROSE_CHARS:
        return False
    if linked_headings:
        return True
    if len(targets) < 3:
        return False
    link_chars = sum(len(lk["text"]) for lk in links)
    if link_chars >= 0.35 * total:
        return True
    # A short introduction over a list of links to other pages (a section page).
    if total - link_chars < 400:
        for lst in content.iter("ul", "ol"):
            items = [li for li in lst.iterchildren("li")]
            if len(items) >= 3 and all(
                (a := li.find(".//a")) is not None
                and len(_text(a).strip()) >= 0.8 * len(_text(li).strip())
                for li in items
            ):
                return True
    # Teasers: their text is most of the page's.
    if teasers:
        teaser_chars = sum(len(_text(c)) for c in teasers)
        if teaser_chars >= 0.5 * total:
            return True
    return False


_BLANK = re.compile(r"\n\s*\n\s*\n+")


def _squeeze_blank(s: str) -> str:
    return _BLANK.sub("\n\n", s).strip() + "\n"


_SIZE_SUFFIX = re.compile(r"-(\d+)x(\d+)(?=\.\w+$)")


def _one_size_each(content: etree._Element) -> None:
    """Of sibling images that are one image at several sizes ("a-425x118.webp",
    "a-1920x533.webp": a theme's own srcset), keep the largest."""
    for parent in {img.getparent() for img in content.iter("img")}:
        if parent is None:
            continue
        sizes: dict[str, list[tuple[int, etree._Element]]] = {}
        for img in parent.iterchildren("img"):
            src = (img.get("src") or "").split("?", 1)[0]
            m = _SIZE_SUFFIX.search(src)
            if m:
                sizes.setdefault(_SIZE_SUFFIX.sub("", src), []).append((int(m.group(1)), img))
        for same in sizes.values():
            if len(same) > 1:
                keep = max(same, key=lambda wi: wi[0])[1]
                for _w, img in same:
                    if img is not keep:
                        drop(img)


_INLINE_MARKS = ("strong", "b", "em", "i", "u", "s", "a")


def _hoist_edge_space(content: etree._Element) -> None:
    """Move the spaces at the edges of bold, italic and link text (a no-break
    space too) outside it: Markdown's markers must touch their words, and
    the space must stay between them and the next word."""
    for el in content.iter(*_INLINE_MARKS):
        if el is content:
            continue
        last = el[-1] if len(el) else None
        end = last.tail if last is not None else el.text
        if end and end[-1:].isspace():
            kept = end.rstrip()
            if last is not None:
                last.tail = kept or None
            else:
                el.text = kept or None
            el.tail = end[len(kept) :] + (el.tail or "")
        start = el.text
        if start and start[:1].isspace():
            kept = start.lstrip()
            el.text = kept or None
            space = start[: len(start) - len(kept)]
            prev = el.getprevious()
            parent = el.getparent()
            if prev is not None:
                prev.tail = (prev.tail or "") + space
            elif parent is not None:
                parent.text = (parent.text or "") + space


# -- Markdown ------------------------------------------------------------------


class _Markdown(MarkdownConverter):
    """markdownify, as the content pages need it: ATX headings, "-" bullets,
    and every URL as the sanitised HTML has it."""

    def __init__(self) -> None:
        super().__init__(heading_style=ATX, bullets="-", escape_misc=False)

    def convert_a(self, el: Any, text: str, parent_tags: Any) -> str:
        # A link around a heading (a teaser's title) is a heading holding a
        # link: "[## Title](url)" is no Markdown heading.
        inner = text.strip()
        m = _HEADING_MARK.match(inner)
        if m and el.get("href") and "\n" not in inner:
            link = super().convert_a(el, inner[m.end() :], parent_tags)
            return f"\n\n{m.group()}{link}\n\n"
        return str(super().convert_a(el, text, parent_tags))

    def convert_figure(self, el: Any, text: str, parent_tags: Any) -> str:
        # A figure is a block of its own, its caption on the next line.
        return f"\n\n{text.strip()}\n\n" if text.strip() else ""


_HEADING_MARK = re.compile(r"#{1,6} ")
_MARKDOWN = _Markdown()
_LEADING_SPACE = re.compile(r"^[ \t]+(?=\S)", re.M)


def to_markdown(html: str) -> str:
    """Markdown of the sanitised content HTML (see Extractor._result)."""
    text = _MARKDOWN.convert(html)
    # The source's indentation after a line break is not Markdown's: four
    # spaces would start a code block. Lists and tables nested in a list
    # item keep theirs.
    text = _LEADING_SPACE.sub(_keep_nesting, text)
    return _squeeze_blank(text) if text.strip() else ""


def _keep_nesting(m: re.Match[str]) -> str:
    rest = m.string[m.end() : m.end() + 3]
    return m.group() if rest[:1] in ("-", "|") or rest[:1].isdigit() else ""
