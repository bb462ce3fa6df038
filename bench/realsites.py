"""Real-site benchmark (issue 16): sunset against trafilatura on wget mirrors of real sites.

    .venv/bin/python bench/realsites.py /work/realsites/archive
    .venv/bin/python bench/realsites.py MIRROR_ROOT --sites inhabithon.helsingborg.se --repeat 1

MIRROR_ROOT holds `<site>/<date>/<host>/...`, wget mirrors (`<path>/index.html`,
links made relative by --convert-links). For each site of the development set
(or --sites), the biggest mirror of it (most HTML files; the latest date on a
tie) is served by the Debian nginx on 127.0.0.1, under its real host name
through `--connect-to`, and:

1. crawled with `sunset crawl` and a profile made for it (make_profile: the one
   function to swap for `sunset init` once that command exists);
2. transformed with `sunset transform`, --repeat times (median wall time);
3. extracted with trafilatura from the same WARC records, with its defaults and
   with favor_recall, --repeat times each, in a subprocess like sunset.

Every tool is timed on the same status-200 HTML response records, as a
process of its own (interpreter start and imports included), runs alternating.

Gold-free scores, per site, on the distinct HTML pages the crawl captured
(identical payloads counted once). A page's reference lines are its whole
visible text (script, style and head aside), one line per block or cell:

- a line found on exactly one page is content; recall is the share of all
  content lines that the tool kept of that page (whitespace folded): its text,
  and what it keeps apart (sunset's title and breadcrumbs, trafilatura's
  metadata header);
- a line found on at least half the pages is template; a page "holds template"
  when a line of the tool's text is one of them, other than the page's own
  title (<title> less the site name, or an h1: a menu names the page on every
  page, so its title is a line of every page); the strict count, own title
  included, is shown in brackets;
- kinds: the share of sunset's pages marked content and listing.

Results: a table on stdout, and output/bench/realsites.json. Nothing of the
mirrors is written outside output/. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote as quote_url
from xml.sax.saxutils import escape as escape_xml

from _common import (
    ROOT,
    LineCounter,
    err,
    first_line,
    first_line_of,
    measure,
    out,
    read_json,
    target_uri,
    warc_bytes,
    warc_files,
)
from lxml import etree
from rich.markup import escape
from rich.table import Table
from warcio.archiveiterator import ArchiveIterator
from warcio.recordloader import ArcWarcRecord

from sunset.nginx import NginxProcess, minimal_conf, quote, running_nginx

DEV_SITES = (
    "traineeprogrammet.se",
    "dunkerskulturhus.se",
    "ekonomicoachen.helsingborg.se",
    "inhabithon.helsingborg.se",
)
TOOLS = ("sunset", "trafilatura", "trafilatura-recall")
TEMPLATE_SHARE = 0.5
TARGET_RECALL = 0.90
TARGET_TEMPLATE_PAGES = 0.01
TARGET_SPEEDUP = 5.0
DEFAULT_TIMEOUT = 1800.0
MIME_TYPES = Path("/etc/nginx/mime.types")


# --------------------------------------------------------------------------
# The mirror, served


def pick_mirror(root: Path, site: str) -> Path | None:
    """The `<date>/<host>` folder of a site with the most HTML files (latest date on a tie)."""
    best: tuple[int, str] | None = None
    chosen = None
    for date in sorted((root / site).glob("*")):
        for host in sorted(date.glob("*")):
            if not host.is_dir():
                continue
            n = sum(1 for _ in host.rglob("*.html"))
            if best is None or (n, date.name) > best:
                best, chosen = (n, date.name), host
    return chosen


def write_sitemap(mirror: Path, host: str, dest: Path) -> int:
    """A sitemap of every HTML file of the mirror, as the live WordPress site had one.

    wget reached pages that no crawled page links to (it had the site's
    sitemap); without this the crawl would see only the linked part. Feeds,
    saved as feed/index.html, are not pages.
    """
    urls = []
    for path in sorted(mirror.rglob("*.html")):
        rel = path.relative_to(mirror).as_posix()
        if "/feed/" in f"/{rel}":
            continue
        if rel == "index.html" or rel.endswith("/index.html"):
            rel = rel[: -len("index.html")]
        urls.append(f"http://{host}/{quote_url(rel)}")
    body = "".join(f"<url><loc>{escape_xml(u)}</loc></url>\n" for u in urls)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n' + body + "</urlset>\n",
        encoding="utf-8",
    )
    return len(urls)


def nginx_conf(mirror: Path, work: Path, port: int) -> Path:
    """A static server for a wget mirror: /a/ and /a/index.html both answer;
    /sitemap.xml is the one write_sitemap made, feeds are served as feeds."""
    http = f"""
    include {quote(str(MIME_TYPES))};
    default_type application/octet-stream;
    charset utf-8;
    sendfile on;
    server_tokens off;
    absolute_redirect off;
    server {{
        listen 127.0.0.1:{port} default_server;
        root {quote(str(mirror))};
        index index.html;
        location / {{
            try_files $uri $uri/index.html $uri/ =404;
        }}
        location ~ /feed/ {{
            types {{ }}
            default_type application/rss+xml;
            try_files $uri $uri/index.html =404;
        }}
        location = /sitemap.xml {{
            alias {quote(str(work / "sitemap.xml"))};
            types {{ }}
            default_type application/xml;
        }}
    }}
"""
    return minimal_conf(work, http, workers=2)


@contextmanager
def serve(mirror: Path, work: Path) -> Iterator[NginxProcess]:
    work.mkdir(parents=True, exist_ok=True)
    with running_nginx(lambda port: nginx_conf(mirror, work, port), work) as srv:
        yield srv


def make_profile(host: str, dest: Path) -> Path:
    """A generic crawl profile for one host: start at its home page, stay on it.

    The one thing to replace with `sunset init http://HOST/` when that exists.
    Polite for a real server (robots.txt, sitemap, one host), fast on loopback.
    """
    bare = host.removeprefix("www.")
    hosts = [host] + ([f"www.{bare}"] if host == bare else [bare])
    text = f"""# Written by bench/realsites.py for a mirror of {host}.
[site]
name = "{host} (mirror)"
start_urls = ["http://{host}/"]
allowed_hosts = {json.dumps(hosts)}
exclude = ['/wp-admin(/|$)', '/wp-login\\.php', '/wp-json(/|$)', '/xmlrpc\\.php']

[crawl]
obey_robots = true
use_sitemap = true
concurrency_per_host = 8
delay = 0
autothrottle = false
timeout = 10
retries = 1
"""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text, encoding="utf-8")
    return dest


def crawl_site(mirror: Path, host: str, work: Path, timeout: float) -> dict[str, object]:
    crawl = work / "crawl"
    shutil.rmtree(crawl, ignore_errors=True)
    logs = work / "crawl.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    profile = make_profile(host, work / "profile.toml")
    listed = write_sitemap(mirror, host, work / "nginx" / "sitemap.xml")
    err.print(f"  {listed:,} pages in the sitemap served with it")
    with serve(mirror, work / "nginx") as srv:
        cmd = [sys.executable, "-m", "sunset", "crawl", "--profile", str(profile)]
        cmd += ["--out", str(crawl)]
        bare = host.removeprefix("www.")
        for name in {host, bare, f"www.{bare}"}:
            cmd += ["--connect-to", f"{name}:80:{srv.host}:{srv.port}"]
        counter = LineCounter(crawl / "crawl.log")
        m = measure(
            cmd,
            label=f"sunset crawl {host}",
            status=lambda: (
                f"{counter.poll():>7,} fetches  WARC {warc_bytes(crawl / 'warc') / 1e6:8.1f} MB"
            ),
            cwd=ROOT,
            env=_env(),
            stdout=logs / "stdout",
            stderr=logs / "stderr",
            timeout=timeout,
        )
    summary = read_json(crawl / "crawl.json")
    if m.timed_out or summary.get("reason") != "finished":
        why = first_line(logs / "stderr") or f"exit status {m.exit_code}"
        raise SystemExit(f"bench/realsites.py: the crawl of {host} failed: {why}")
    return {"seconds": m.wall_s, "stats": summary.get("stats"), "profile": str(profile)}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # This checkout's code, whatever is installed in the interpreter.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


# --------------------------------------------------------------------------
# The captured pages and their reference lines


def is_html_200(rec: ArcWarcRecord) -> bool:
    if rec.rec_type != "response" or rec.http_headers is None:
        return False
    if rec.http_headers.get_statuscode() != "200":
        return False
    ctype = rec.http_headers.get_header("Content-Type") or ""
    return ctype.split(";")[0].strip().lower() == "text/html"


def iter_html(warc_dir: Path) -> Iterator[tuple[str, str, bytes, str]]:
    """(url, payload digest, body, content type) of every status-200 HTML response."""
    for path in warc_files(warc_dir):
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if not is_html_200(rec):
                    continue
                uri = target_uri(rec.rec_headers.get_header("WARC-Target-URI"))
                digest = rec.rec_headers.get_header("WARC-Payload-Digest") or uri
                body = rec.content_stream().read()
                yield uri, digest, body, rec.http_headers.get_header("Content-Type") or ""


def decode(body: bytes, content_type: str) -> str:
    m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
    try:
        return body.decode(m.group(1) if m else "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


# Elements that end a line: the HTML block elements, list items, cells, <br>.
_BLOCK = frozenset(
    ("address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div",
     "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4",
     "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary",
     "table", "td", "th", "tr", "ul", "option", "button", "label", "legend")
)  # fmt: skip
_SKIP = frozenset(("script", "style", "noscript", "template", "head", "svg", "iframe"))


def reference_lines(html: str) -> list[str]:
    """The page's whole visible text, one line per block: independent of either tool."""
    try:
        root = etree.fromstring(
            html.encode("utf-8", "surrogatepass"),
            etree.HTMLParser(remove_comments=True, encoding="utf-8"),
        )
    except (etree.ParserError, ValueError):
        return []
    if root is None:
        return []
    lines: list[str] = []
    buf: list[str] = []

    def flush() -> None:
        line = " ".join("".join(buf).split())
        if line:
            lines.append(line)
        buf.clear()

    def walk(el: etree._Element) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in _SKIP:
            return
        block = tag in _BLOCK
        if block:
            flush()
        if el.text and tag:
            buf.append(el.text)
        for child in el:
            walk(child)
            if child.tail:
                buf.append(child.tail)
        if block:
            flush()

    walk(root)
    flush()
    return lines


_TITLE_CUT = re.compile(r"\s+[-–—|]\s+[^-–—|]*$")


def own_titles(html: str) -> set[str]:
    """The page's own title as it names itself: <title> (less the site's
    name after a dash or bar) and its h1 headings."""
    try:
        root = etree.fromstring(html.encode("utf-8", "surrogatepass"), etree.HTMLParser())
    except (etree.ParserError, ValueError):
        return set()
    if root is None:
        return set()
    out = set()
    for el in root.iter("title", "h1"):
        text = _fold(etree.tostring(el, method="text", encoding=str, with_tail=False))
        if text:
            out.add(text)
            out.add(_TITLE_CUT.sub("", text))
    return out


@dataclass
class Reference:
    pages: dict[str, list[str]]  # url -> reference lines (one URL per distinct payload)
    aliases: dict[str, list[str]]  # url -> every URL with the same payload
    html: dict[str, str]
    records: int
    content: dict[str, set[str]] = field(default_factory=dict)
    template: set[str] = field(default_factory=set)
    titles: dict[str, set[str]] = field(default_factory=dict)


def build_reference(warc_dir: Path) -> Reference:
    ref = Reference({}, {}, {}, 0)
    by_digest: dict[str, str] = {}
    for url, digest, body, ctype in iter_html(warc_dir):
        ref.records += 1
        first = by_digest.get(digest)
        if first is not None:
            ref.aliases[first].append(url)
            continue
        by_digest[digest] = url
        html = decode(body, ctype)
        ref.html[url] = html
        ref.pages[url] = reference_lines(html)
        ref.titles[url] = own_titles(html)
        ref.aliases[url] = [url]
    on_pages: Counter[str] = Counter()
    for lines in ref.pages.values():
        on_pages.update(set(lines))
    n = len(ref.pages)
    ref.template = {line for line, k in on_pages.items() if k >= TEMPLATE_SHARE * n and n > 1}
    ref.content = {
        url: {line for line in set(lines) if on_pages[line] == 1}
        for url, lines in ref.pages.items()
    }
    return ref


def _fold(text: str) -> str:
    return " ".join(text.split())


def _out_lines(text: str) -> set[str]:
    lines = set()
    for line in text.splitlines():
        line = _fold(line)
        # trafilatura writes list items as "- item"; the reference has the item.
        if line.startswith("- "):
            line = line[2:]
        if line:
            lines.add(line)
    return lines


def score(
    ref: Reference, texts: dict[str, str | None], extras: dict[str, str] | None = None
) -> dict[str, object]:
    """Recall of content lines and pages holding template lines, for one tool's texts
    by URL; `extras`, what the tool keeps apart from the text, counts for recall only."""
    extras = extras or {}
    found = total = 0
    per_page: list[float] = []
    with_template: list[str] = []
    strict: list[str] = []
    missing = 0
    for url in ref.pages:
        text = next((texts[u] for u in ref.aliases[url] if u in texts), None)
        if text is None:
            missing += 1
            text = ""
        extra = next((extras[u] for u in ref.aliases[url] if u in extras), "")
        folded = _fold(text + "\n" + extra)
        want = ref.content[url]
        hit = sum(1 for line in want if line in folded)
        found += hit
        total += len(want)
        if want:
            per_page.append(hit / len(want))
        left = _out_lines(text) & ref.template
        if left:
            strict.append(url)
        # A page's own title is a line of every page when the menu links to
        # it; on that page it is the page's, not the template's.
        if left - ref.titles.get(url, set()):
            with_template.append(url)
    n = len(ref.pages)
    return {
        "pages": n,
        "missing": missing,
        "content_lines": total,
        "recall": round(found / total, 4) if total else None,
        "recall_macro": round(statistics.mean(per_page), 4) if per_page else None,
        "template_pages": len(with_template),
        "template_share": round(len(with_template) / n, 4) if n else None,
        "template_sample": sorted(with_template)[:10],
        "template_pages_strict": len(strict),
        "template_share_strict": round(len(strict) / n, 4) if n else None,
    }


# --------------------------------------------------------------------------
# The tools, timed


@dataclass
class Run:
    tool: str
    repeat: int
    ok: bool = False
    error: str | None = None
    wall_s: float = 0.0
    pages_per_s: float = 0.0
    # The tool's own time, interpreter start and imports aside (sunset:
    # transform.json "seconds"; trafilatura: its loop over the records).
    work_s: float = 0.0
    work_pages_per_s: float = 0.0
    peak_rss_mb: float = 0.0
    load_before: float = 0.0


def run_sunset(crawl: Path, profile: Path, dest: Path, run: Run, records: int, t: float) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    logs = dest.parent / f"{dest.name}.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    cmd = [sys.executable, "-m", "sunset", "transform", str(crawl), "--out", str(dest)]
    cmd += ["--profile", str(profile)]
    written = LineCounter(dest / "pages.jsonl")
    run.load_before = round(os.getloadavg()[0], 2)
    m = measure(
        cmd,
        label=f"sunset transform #{run.repeat}",
        status=lambda: f"{written.poll():>7,} pages written",
        cwd=ROOT,
        env=_env(),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        timeout=t,
    )
    _fill(run, m.wall_s, m.peak_rss_mb, records)
    if m.timed_out:
        run.error = f"stopped after {t:g} s"
    elif m.exit_code not in (0, 1) or not (dest / "pages.jsonl").is_file():
        why = first_line(logs / "stderr") or f"exit {m.exit_code}"
        run.error = f"sunset transform: {why}"
    else:
        _work(run, float(read_json(dest / "transform.json").get("seconds") or 0), records)
    run.ok = run.error is None


def _work(run: Run, seconds: float, records: int) -> None:
    run.work_s = round(seconds, 3)
    run.work_pages_per_s = round(records / seconds, 2) if seconds else 0.0


def run_trafilatura(crawl: Path, dest: Path, run: Run, records: int, t: float) -> None:
    dest.unlink(missing_ok=True)
    logs = dest.parent / f"{dest.stem}.logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    mode = "recall" if run.tool.endswith("recall") else "default"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--trafilatura-worker"]
    cmd += [str(crawl / "warc"), str(dest), mode]
    counter = LineCounter(dest)
    run.load_before = round(os.getloadavg()[0], 2)
    m = measure(
        cmd,
        label=f"{run.tool} #{run.repeat}",
        status=lambda: f"{counter.poll():>7,} pages extracted",
        cwd=ROOT,
        env=_env(),
        stdout=logs / "stdout",
        stderr=logs / "stderr",
        timeout=t,
    )
    _fill(run, m.wall_s, m.peak_rss_mb, records)
    if m.timed_out:
        run.error = f"stopped after {t:g} s"
    elif m.exit_code != 0:
        lines = [ln for ln in (logs / "stderr").read_text(errors="replace").splitlines() if ln]
        run.error = f"trafilatura worker exited {m.exit_code}: {lines[-1] if lines else ''}"
    else:
        _work(run, float(Path(f"{dest}.seconds").read_text()), records)
    run.ok = run.error is None


def _fill(run: Run, wall: float, rss: float, records: int) -> None:
    run.wall_s, run.peak_rss_mb = wall, rss
    run.pages_per_s = round(records / wall, 2) if wall else 0.0


def trafilatura_worker(warc_dir: Path, dest: Path, mode: str) -> int:
    """Extract every status-200 HTML response with trafilatura; JSON lines {url, text}."""
    import trafilatura  # imported here, so its import counts in the timed process

    recall = mode == "recall"
    started = time.perf_counter()
    with open(dest, "w", encoding="utf-8") as fh:
        for url, _digest, body, ctype in iter_html(warc_dir):
            # with_metadata: its title, like sunset's, counts as kept.
            text = trafilatura.extract(decode(body, ctype), favor_recall=recall, with_metadata=True)
            fh.write(json.dumps({"url": url, "text": text}) + "\n")
    # Its own time, as sunset's transform.json has: imports and start-up aside.
    Path(f"{dest}.seconds").write_text(f"{time.perf_counter() - started:.4f}\n")
    return 0


def sunset_texts(
    content: Path,
) -> tuple[dict[str, str], dict[str, str], Counter[str], list[dict]]:
    """Text by URL, what the record keeps apart (title, breadcrumbs), kinds, records."""
    texts: dict[str, str] = {}
    extras: dict[str, str] = {}
    kinds: Counter[str] = Counter()
    records = []
    with open(content / "pages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            kinds[rec["kind"]] += 1
            records.append({"url": rec["url"], "kind": rec["kind"], "id": rec["id"]})
            # Everything the record keeps of the page: its text, and the
            # title and breadcrumbs it holds apart from the text.
            kept = "\n".join([rec.get("title") or "", *(rec.get("breadcrumbs") or [])])
            for u in rec.get("legacy_urls") or [rec["url"]]:
                texts[u] = rec.get("text") or ""
                extras[u] = kept
    return texts, extras, kinds, records


def trafilatura_texts(path: Path) -> dict[str, str | None]:
    texts: dict[str, str | None] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts[row["url"]] = row["text"] or ""
    return texts


# --------------------------------------------------------------------------
# One site


def bench_site(root: Path, site: str, base: Path, repeat: int, timeout: float) -> dict:
    mirror = pick_mirror(root, site)
    if mirror is None:
        return {"site": site, "error": f"no mirror under {root / site}"}
    host = mirror.name
    work = base / site
    err.print(f"[bold]{site}[/]: serving {mirror}")
    crawl_info = crawl_site(mirror, host, work, timeout)
    crawl = work / "crawl"
    ref = build_reference(crawl / "warc")
    err.print(
        f"  {ref.records:,} HTML records, {len(ref.pages):,} distinct pages,"
        f" {len(ref.template):,} template lines,"
        f" {sum(len(c) for c in ref.content.values()):,} content lines"
    )
    profile = Path(str(crawl_info["profile"]))
    runs: dict[str, list[Run]] = {t: [] for t in TOOLS}
    trash = work / ".trash"
    for k in range(repeat):
        order = TOOLS if k % 2 == 0 else tuple(reversed(TOOLS))
        for tool in order:
            run = Run(tool, k + 1)
            if tool == "sunset":
                dest = work / f"sunset-content-{k + 1}"
                if dest.exists():
                    trash.mkdir(exist_ok=True)
                    dest.rename(trash / f"{dest.name}-{time.time_ns()}")
                run_sunset(crawl, profile, dest, run, ref.records, timeout)
            else:
                run_trafilatura(crawl, work / f"{tool}.jsonl", run, ref.records, timeout)
            if run.error:
                err.print(f"  [red]{escape(run.error)}[/]")
            runs[tool].append(run)
    shutil.rmtree(trash, ignore_errors=True)

    scores: dict[str, dict[str, object] | None] = {}
    kinds: Counter[str] = Counter()
    for tool, rs in runs.items():
        if not rs[-1].ok:
            scores[tool] = None
            continue
        if tool == "sunset":
            texts, extras, kinds, records = sunset_texts(work / f"sunset-content-{repeat}")
            scores[tool] = score(ref, texts, extras)  # type: ignore[arg-type]
            (work / "sunset-pages.json").write_text(json.dumps(records, indent=1) + "\n")
        else:
            scores[tool] = score(ref, trafilatura_texts(work / f"{tool}.jsonl"))

    def median(rs: list[Run], key: str) -> float | None:
        good = [getattr(r, key) for r in rs if r.ok]
        return round(statistics.median(good), 2) if good else None

    medians = {t: median(rs, "pages_per_s") for t, rs in runs.items()}
    work = {t: median(rs, "work_pages_per_s") for t, rs in runs.items()}
    n_pages = sum(kinds.values())
    return {
        "site": site,
        "mirror": str(mirror),
        "host": host,
        "crawl": crawl_info,
        "html_records": ref.records,
        "distinct_pages": len(ref.pages),
        "template_lines": len(ref.template),
        "runs": {t: [asdict(r) for r in rs] for t, rs in runs.items()},
        "pages_per_s": medians,
        "speedup": {
            t: round(medians["sunset"] / medians[t], 2)
            for t in TOOLS[1:]
            if medians.get("sunset") and medians.get(t)
        },
        "work_pages_per_s": work,
        "work_speedup": {
            t: round(work["sunset"] / work[t], 2)
            for t in TOOLS[1:]
            if work.get("sunset") and work.get(t)
        },
        "scores": scores,
        "kinds": {k: round(v / n_pages, 4) for k, v in sorted(kinds.items())} if n_pages else {},
        "kind_counts": dict(kinds),
    }


# --------------------------------------------------------------------------
# Report


def _f(x: object, fmt: str) -> str:
    return "-" if x is None else format(x, fmt)


def print_report(report: dict) -> None:
    table = Table(
        title=f"Real sites: sunset and trafilatura on the same captures, medians of"
        f" {report['repeat']} run(s)",
        caption=escape(
            "recall: content lines (on one page only) kept, in the text or the title and"
            " breadcrumbs kept apart; template: pages holding a line found on ≥50% of pages"
            " other than the page's own title [counting that too]; pages/s: over the process's"
            " wall time [over the tool's own time, start-up and imports aside]; ×: pages/s"
            " ratio sunset ÷ tool [the same on own time]"
        ),
        title_justify="left",
        caption_justify="left",
    )
    for col in ("site", "tool", "pages", "recall", "recall\n(macro)", "template\npages",
                "pages/s", "×", "kinds"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("site", "tool", "kinds") else "right")
    for site in report["sites"]:
        if site.get("error"):
            table.add_row(site["site"], escape(site["error"]), *[""] * 7)
            continue
        for tool in TOOLS:
            sc = site["scores"].get(tool)
            pps = f"{_f(site['pages_per_s'].get(tool), '.1f')}\n[{_f(site['work_pages_per_s'].get(tool), '.1f')}]"
            if tool == "sunset":
                ratio = ""
                kinds = ", ".join(f"{k} {v:.0%}" for k, v in site["kinds"].items())
            else:
                ratio = (
                    f"{_f(site['speedup'].get(tool), '.1f')}"
                    f"\n[{_f(site['work_speedup'].get(tool), '.1f')}]"
                )
                kinds = ""
            if sc is None:
                table.add_row(site["site"], tool, *["-"] * 4, pps, ratio, kinds)
                continue
            table.add_row(
                site["site"] if tool == "sunset" else "",
                tool,
                f"{sc['pages']:,}",
                _f(sc["recall"], ".3f"),
                _f(sc["recall_macro"], ".3f"),
                f"{sc['template_pages']:,} ({sc['template_share']:.1%})"
                f"\n[{sc['template_pages_strict']:,} ({sc['template_share_strict']:.1%})]",
                pps,
                ratio,
                kinds,
            )
    out.print(table)
    for site in report["sites"]:
        if site.get("error"):
            continue
        sc = site["scores"].get("sunset")
        speed = site["speedup"].get("trafilatura")
        own = site["work_speedup"].get("trafilatura")
        checks = {
            f"recall ≥ {TARGET_RECALL}": sc
            and sc["recall"] is not None
            and sc["recall"] >= TARGET_RECALL,
            f"template on ≤ {TARGET_TEMPLATE_PAGES:.0%} of pages": sc
            and sc["template_share"] <= TARGET_TEMPLATE_PAGES,
            f"≥ {TARGET_SPEEDUP:g}× trafilatura's pages/s": speed is not None
            and speed >= TARGET_SPEEDUP,
            f"≥ {TARGET_SPEEDUP:g}× on own time": own is not None and own >= TARGET_SPEEDUP,
        }
        marks = ", ".join(f"{k}: {'met' if v else '[red]missed[/]'}" for k, v in checks.items())
        out.print(f"{site['site']}: {marks}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mirror_root", type=Path, nargs="?", help="folder of <site>/<date>/<host>/")
    ap.add_argument("--sites", nargs="+", default=list(DEV_SITES), help="default: the dev set")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool (default 3)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    ap.add_argument("--out", type=Path, default=ROOT / "output" / "bench")
    ap.add_argument("--trafilatura-worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.trafilatura_worker:
        warc_dir, dest, mode = args.trafilatura_worker
        return trafilatura_worker(Path(warc_dir), Path(dest), mode)
    if args.mirror_root is None or not args.mirror_root.is_dir():
        ap.error("MIRROR_ROOT must be a folder of <site>/<date>/<host>/ mirrors")
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    started = time.time()
    base = args.out.resolve() / "realsites"
    base.mkdir(parents=True, exist_ok=True)
    sites = [
        bench_site(args.mirror_root.resolve(), s, base, args.repeat, args.timeout)
        for s in args.sites
    ]
    report = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "repeat": args.repeat,
        "trafilatura": first_line_of(
            [sys.executable, "-c", "import trafilatura; print(trafilatura.__version__)"]
        ),
        "sites": sites,
    }
    dest = args.out.resolve() / "realsites.json"
    dest.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    err.print(f"written {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
