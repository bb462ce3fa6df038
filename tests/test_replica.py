"""The replica: deterministic, truthful, and every link resolves as designed.

All HTTP here is real, on 127.0.0.1, through replica.serve().
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import socket
import time
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from bs4 import BeautifulSoup

from replica import generate, serve
from replica.generate import iter_jsonl

PAGES = 150
SEED = 3
LEGACY = "www.wiganboroughccg.nhs.uk"


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replica") / "site"
    generate(out, pages=PAGES, seed=SEED)
    return out


@pytest.fixture(scope="module")
def running(site: Path):
    with serve(site, access_log=site.parent / "access.jsonl") as run:
        yield run


@pytest.fixture(scope="module")
def truth(site: Path) -> dict[str, dict]:
    return {str(u["url"]): u for u in iter_jsonl(site / "ground-truth" / "urls.jsonl")}


@pytest.fixture(scope="module")
def pages(site: Path) -> dict[str, dict]:
    return {str(p["id"]): p for p in iter_jsonl(site / "ground-truth" / "pages.jsonl")}


class Client:
    """Fetch replica URLs by their real names, like a crawler with --connect-to."""

    def __init__(self, run) -> None:
        self.session = requests.Session()
        self.ports = {}
        for entry in run.connect_to:
            host, _, addr, port = entry.split(":")
            self.ports[host] = f"http://{addr}:{port}"

    def get(self, url: str, **kw) -> requests.Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        kw.setdefault("allow_redirects", False)
        kw.setdefault("timeout", 10)
        headers = {"Host": parts.hostname, **kw.pop("headers", {})}
        return self.session.get(self.ports[parts.hostname] + target, headers=headers, **kw)


def norm(text: str) -> str:
    # Inline links make get_text(" ") put a space before the following punctuation.
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(text.split()))


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def is_subsequence(needle: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(w in it for w in needle)


# ---------------------------------------------------------------- generation


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    generate(tmp_path / "a", pages=80, seed=11)
    generate(tmp_path / "b", pages=80, seed=11)
    generate(tmp_path / "c", pages=80, seed=12)
    a, b, c = (tree_digest(tmp_path / n) for n in "abc")
    assert a == b
    assert a != c


def shingles5(text: str) -> set[tuple[str, ...]]:
    w = words(text)
    return set(zip(*(w[i:] for i in range(5)), strict=False))


def test_rewritten_successor_keeps_names_not_wording(tmp_path: Path) -> None:
    generate(tmp_path / "a", pages=200, seed=11, successor="rewritten")
    generate(tmp_path / "b", pages=200, seed=11, successor="rewritten")
    generate(tmp_path / "plain", pages=200, seed=11)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
    site = tmp_path / "a"
    manifest = json.loads((site / "manifest.json").read_text())
    assert manifest["successor"] == "rewritten"
    # Same legacy pages, paths and titles as the default flavour: only text differs.
    plain = {p["id"]: p for p in iter_jsonl(tmp_path / "plain" / "ground-truth" / "pages.jsonl")}
    old = {str(p["id"]): p for p in iter_jsonl(site / "ground-truth" / "pages.jsonl")}
    assert {k: (v["url"], v["title"]) for k, v in old.items()} == {
        k: (v["url"], v["title"]) for k, v in plain.items()
    }
    fates = {p["fate"] for p in old.values() if p["kind"] == "article"}
    assert {"same-slug", "retitled", "moved", "merged", "split", "gone"} <= fates
    new = list(iter_jsonl(site / "ground-truth" / "new-pages.jsonl"))
    successors = [n for n in new if n["kind"] in ("successor", "merged", "collapsed", "split")]
    assert any(len(n["succeeds"]) > 1 for n in successors)  # merges
    assert any(n.get("continues") for n in successors)  # splits
    named = 0
    for n in successors:
        ids = [*n["succeeds"], *n.get("continues", [])]
        text = f"{n['title']}\n{n['text']}"
        before = set().union(*(shingles5(old[i]["main_text"]) for i in ids))
        assert not shingles5(text) & before, (n["url"], sorted(shingles5(text) & before)[:3])
        names = old[ids[0]]["names"]
        named += names["acronym"] in text or names["programme"] in text
        assert old[ids[0]]["names"]["programme"] in old[ids[0]]["main_text"]
    # Most successors still name their predecessor's programme or its acronym.
    assert named >= 0.8 * len(successors), (named, len(successors))
    # Moved pages left the section their old section maps to.
    moved = [p for p in old.values() if p["fate"] == "moved"]
    assert moved and all(p["successor"] for p in moved)


def test_size_follows_pages(tmp_path: Path) -> None:
    m = generate(tmp_path / "s", pages=600, seed=1)
    assert m["pages"] == 600
    assert m["page_kinds"]["news"] > 50 and m["page_kinds"]["multipart"] >= 3


def test_bad_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="theme"):
        generate(tmp_path / "x", pages=80, theme="nope")
    with pytest.raises(ValueError, match="at least 50"):
        generate(tmp_path / "x", pages=10)
    assert not (tmp_path / "x").exists()


def test_ground_truth_covers_every_page_and_url(site: Path, truth: dict, pages: dict) -> None:
    routes = [r["target"] for r in iter_jsonl(site / "legacy" / "routes.jsonl")]
    assert {f"http://{LEGACY}{t}" for t in routes} <= set(truth)
    new_routes = {r["target"] for r in iter_jsonl(site / "new" / "routes.jsonl")}
    for url, u in truth.items():
        if u["page"] is not None:
            assert u["page"] in pages, url
        if u["successor"]:
            assert urlsplit(u["successor"]).path in new_routes, url
        if u["status"] == 200:
            assert u["sha1"], url
    for p in pages.values():
        assert p["title"] and p["urls"], p["id"]
        assert set(p["urls"]) <= set(truth), p["id"]
        if p["content_page"]:
            assert len(p["main_text"]) > 80, p["id"]
            names = [b["name"] for b in p["boilerplate"]]
            assert "login-form" in names and "footer" in names
    kinds = {u["kind"] for u in truth.values()}
    for needed in (
        "page",
        "part",
        "showall",
        "print",
        "index-php",
        "slash-variant",
        "case-variant",
        "session-variant",
        "listing",
        "rss",
        "redirect",
        "missing",
        "document",
        "image",
        "css",
        "js",
        "font",
        "icon",
        "robots",
        "sitemap",
        "calendar",
        "disallowed",
    ):
        assert needed in kinds, needed
    fates = {p["fate"] for p in pages.values()}
    assert {"same-slug", "retitled", "merged", "gone"} <= fates
    new_pages = list(iter_jsonl(site / "ground-truth" / "new-pages.jsonl"))
    assert any(n["kind"] == "new-only" for n in new_pages)
    assert any(len(n["succeeds"]) > 1 for n in new_pages)  # merged pages
    assert all(urlsplit(n["url"]).path.endswith("/") for n in new_pages)
    for n in new_pages:
        for pid in n["succeeds"]:
            assert pid in pages


def test_template_variants_present(pages: dict) -> None:
    content = [p for p in pages.values() if p["content_page"]]
    without_popup = [p for p in content if not p["template"]["popup"]]
    without_contact = [p for p in content if not p["template"]["contact"]]
    assert 0 < len(without_popup) < len(content) / 2
    assert 0 < len(without_contact) < len(content) / 2
    multipart = [p for p in pages.values() if p["kind"] == "multipart"]
    assert multipart and all(len(p["urls"]) >= 4 for p in multipart)


# ---------------------------------------------------------------- served pages


def test_truth_text_is_what_the_pages_show(running, pages: dict) -> None:
    client = Client(running)
    checked = 0
    for p in pages.values():
        if not p["content_page"]:
            continue
        url = p["urls"][-1] if p["kind"] == "multipart" else p["url"]
        if p["kind"] == "multipart":
            url = next(u for u in p["urls"] if u.endswith("?showall=1"))
        r = client.get(url)
        assert r.status_code == 200, url
        charset = r.headers["Content-Type"].split("charset=")[1]
        soup = BeautifulSoup(r.content.decode(charset), "lxml")
        text = norm(soup.get_text(" "))
        for block in p["main"]:
            assert norm(block["text"]) in text, (url, block)
        page_words = words(text)
        for block in p["boilerplate"]:
            if block["name"] in ("pagination", "pager") and p["kind"] == "multipart":
                continue  # the showall view has no part pager
            assert is_subsequence(words(block["text"]), page_words), (url, block["name"])
        checked += 1
    assert checked > 100


def test_windows_1252_page_decodes_only_with_its_charset(running, pages: dict) -> None:
    page = next(p for p in pages.values() if p["charset"] == "windows-1252")
    r = Client(running).get(page["url"])
    assert r.headers["Content-Type"] == "text/html; charset=windows-1252"
    assert b"\xa39.15" in r.content  # the pound sign as one cp1252 byte
    with pytest.raises(UnicodeDecodeError):
        r.content.decode("utf-8")
    assert "“prepayment certificate”" in r.content.decode("cp1252")


def test_gzip_only_when_accepted(running, truth: dict) -> None:
    client = Client(running)
    url, u = next((k, v) for k, v in truth.items() if v["gzip_sha1"] and v["kind"] == "css")
    raw = client.get(url, headers={"Accept-Encoding": "gzip"}, stream=True)
    encoded = raw.raw.read(decode_content=False)
    assert raw.headers["Content-Encoding"] == "gzip"
    assert hashlib.sha1(encoded).hexdigest() == u["gzip_sha1"]
    assert hashlib.sha1(gzip.decompress(encoded)).hexdigest() == u["sha1"]
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert hashlib.sha1(plain.content).hexdigest() == u["sha1"]


def test_redirect_chain_and_alias_host(running, truth: dict) -> None:
    client = Client(running)
    start = f"http://{LEGACY}/get-involved/have-your-say"
    first = client.get(start)
    assert first.status_code == 301
    second = client.get(first.headers["Location"])
    assert second.status_code == 302
    final = client.get(second.headers["Location"])
    assert final.status_code == 200
    assert truth[start]["successor"] == truth[second.headers["Location"]]["successor"]
    alias = client.get("http://wiganboroughccg.nhs.uk/your-health")
    assert alias.status_code == 301
    assert alias.headers["Location"] == f"http://{LEGACY}/your-health"


def test_lenient_urls_like_joomla(running, truth: dict) -> None:
    client = Client(running)
    news = client.get(f"http://{LEGACY}/your-ccg/news")
    for variant in (
        "/your-ccg/news?utm_source=leaflet",
        "/Your-CCG/News/",
        "/your-ccg/news?PHPSESSID=abc123",
    ):
        r = client.get(f"http://{LEGACY}{variant}")
        assert r.status_code == 200 and r.content == news.content, variant
    article = next(u for u in truth.values() if u["kind"] == "index-php")
    query = dict(p.split("=") for p in urlsplit(article["url"]).query.split("&"))
    other_itemid = (
        f"http://{LEGACY}/index.php?option=com_content&view=article&id={query['id']}&Itemid=999"
    )
    assert hashlib.sha1(client.get(other_itemid).content).hexdigest() == article["sha1"]
    assert client.get(f"http://{LEGACY}/no/such/page").status_code == 404
    assert (
        client.session.head(
            client.ports[LEGACY] + "/robots.txt", headers={"Host": LEGACY}
        ).status_code
        == 200
    )
    post = client.session.post(
        client.ports[LEGACY] + "/your-ccg", data={"username": "x"}, headers={"Host": LEGACY}
    )
    assert post.status_code == 405


def test_calendar_is_endless(running) -> None:
    client = Client(running)
    r = client.get(f"http://{LEGACY}/your-ccg/events?month=2150-12")
    assert r.status_code == 200
    assert "/your-ccg/events?month=2151-01" in r.text
    assert "no events this month" in r.text
    assert client.get(f"http://{LEGACY}/your-ccg/events?month=2019-13").status_code == 404


def test_every_link_resolves_as_designed(running, truth: dict, site: Path) -> None:
    """Walk the served legacy site, checking each discovered URL against the ground truth."""
    client = Client(running)
    calendar_path = "/your-ccg/events"
    start = [f"http://{LEGACY}/", f"http://{LEGACY}/robots.txt", f"http://{LEGACY}/sitemap.xml"]
    seen: set[str] = set(start)
    queue = deque(start)
    trap_months = 0
    while queue:
        url = queue.popleft()
        parts = urlsplit(url)
        u = truth.get(url)
        if u is None:
            # Only the calendar may answer URLs the ground truth does not list.
            assert parts.path == calendar_path and parts.query.startswith("month="), url
            trap_months += 1
            if trap_months > 6:
                continue
        r = client.get(url, headers={"Accept-Encoding": "identity"})
        if u is not None:
            assert r.status_code == u["status"], url
            if u["status"] == 200:
                assert hashlib.sha1(r.content).hexdigest() == u["sha1"], url
            if u["location"]:
                assert r.headers["Location"] == u["location"], url
        for link in extract_links(url, r):
            host = urlsplit(link).hostname
            if host in client.ports and host != "healthierwigan.nhs.uk" and link not in seen:
                seen.add(link)
                queue.append(link)
    expected = {k for k, v in truth.items() if v["capture"]}
    missing = expected - seen
    assert not missing, sorted(missing)[:10]
    # Session-id links and robots-disallowed pages are linked, yet not to be captured.
    assert any(truth[k]["kind"] == "session-variant" for k in seen if k in truth)
    assert any(truth[k]["kind"] == "disallowed" for k in seen if k in truth)


def test_successor_site_links_resolve(running, site: Path) -> None:
    client = Client(running)
    base = "http://healthierwigan.nhs.uk"
    sitemap = client.get(f"{base}/sitemap.xml")
    locs = re.findall(r"<loc>([^<]+)</loc>", sitemap.text)
    new_truth = {n["url"] for n in iter_jsonl(site / "ground-truth" / "new-pages.jsonl")}
    assert set(locs) == new_truth
    for loc in locs:
        r = client.get(loc)
        assert r.status_code == 200, loc
        assert r.text.rstrip().endswith("</html>") and "Skip to content" in r.text
        for link in extract_links(loc, r):
            if urlsplit(link).hostname == "healthierwigan.nhs.uk":
                assert client.get(link).status_code == 200, (loc, link)


def test_access_log_and_delay(site: Path, tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    with serve(site, delay_ms=60, access_log=log) as run:
        t = time.monotonic()
        requests.get(run.legacy_url + "robots.txt", headers={"Host": LEGACY}, timeout=5)
        assert time.monotonic() - t >= 0.06
        port = urlsplit(run.legacy_url).port
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["target"] == "/robots.txt" and entry["status"] == 200
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing left listening


def test_theme_variant_same_text_other_markup(tmp_path: Path) -> None:
    generate(tmp_path / "p", pages=60, seed=5, theme="protostar")
    generate(tmp_path / "c", pages=60, seed=5, theme="classic")
    tp = [p["main_text"] for p in iter_jsonl(tmp_path / "p" / "ground-truth" / "pages.jsonl")]
    tc = [p["main_text"] for p in iter_jsonl(tmp_path / "c" / "ground-truth" / "pages.jsonl")]
    assert tp == tc
    with serve(tmp_path / "c") as run:
        html = requests.get(run.legacy_url, headers={"Host": LEGACY}, timeout=5).text
    assert 'id="overlay-box"' in html and "moduletable" not in html
    assert "Website No Longer Being Updated" in html and "Login Form" in html


# ---------------------------------------------------------------- helpers

CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


def extract_links(url: str, r: requests.Response) -> list[str]:
    ctype = r.headers.get("Content-Type", "")
    out: list[str] = []
    if r.status_code in (301, 302):
        return [r.headers["Location"]]
    if "html" in ctype:
        charset = ctype.split("charset=")[1] if "charset=" in ctype else "utf-8"
        soup = BeautifulSoup(r.content.decode(charset), "lxml")
        base = soup.find("base", href=True)
        base_url = urljoin(url, base["href"]) if base else url
        for tag, attr in (("a", "href"), ("link", "href"), ("img", "src"), ("script", "src")):
            for el in soup.find_all(tag, **{attr: True}):
                out.append(urljoin(base_url, el[attr]))
        for el in soup.find_all("img", srcset=True):
            out.extend(urljoin(base_url, c.split()[0]) for c in el["srcset"].split(","))
    elif "css" in ctype:
        for m in CSS_URL.finditer(r.text):
            out.append(urljoin(url, m.group(1) or m.group(2)))
    elif "xml" in ctype:
        out.extend(re.findall(r"<(?:loc|link)>([^<]+)</", r.text))
    elif ctype.startswith("text/plain"):
        out.extend(re.findall(r"(?m)^Sitemap:\s*(\S+)", r.text))
    return [u.split("#")[0] for u in out if u.startswith("http")]
