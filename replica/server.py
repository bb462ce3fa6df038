"""Serve a generated replica over real HTTP on loopback.

Two servers run: the legacy site (answering for its host and host aliases) and
the successor. Requests are resolved the way the legacy Joomla site did:
an exact URL first, then the dynamic calendar, index.php article URLs by id,
unknown query parameters ignored, and case or trailing-slash variants folded;
anything else is a 404. Each server can add a fixed delay per response, for
crawl benchmarks at realistic latency, and write a JSONL access log so tests
can prove what was, and was not, requested.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qsl, urlencode, urlsplit

from . import calendar
from .generate import iter_jsonl

# Query parameters the legacy CMS acted on; any other parameter (session ids,
# tracking tags) was ignored and the page served as without it.
SIGNIFICANT_PARAMS = frozenset(
    {
        "start",
        "limitstart",
        "showall",
        "tmpl",
        "print",
        "format",
        "type",
        "month",
        "option",
        "view",
        "id",
        "Itemid",
        "layout",
        "task",
    }
)

NOT_FOUND = (
    b"<!DOCTYPE html>\n<html><head><title>404 - Article not found</title></head><body>"
    b"<h1>404 - Article not found</h1><p>The requested page can't be found.</p>"
    b'<p><a href="/">Go to the home page</a></p></body></html>\n'
)


@dataclass(frozen=True)
class Answer:
    status: int
    ctype: str
    blob: str | None = None
    gzip: str | None = None
    location: str | None = None
    body: bytes | None = None  # rendered on request (calendar, 404)


class Site:
    """The routes of one replica host, loaded once, resolved per request."""

    def __init__(self, root: Path, which: str, host: str, aliases: tuple[str, ...] = ()) -> None:
        self.root = root
        self.host = host
        self.aliases = aliases
        self.routes: dict[str, Answer] = {}
        self.folded: dict[str, str] = {}
        for r in iter_jsonl(root / which / "routes.jsonl"):
            target = str(r["target"])
            self.routes[target] = Answer(
                int(r["status"]),
                str(r["type"]),
                r.get("blob"),
                r.get("gzip"),  # type: ignore[arg-type]
                r.get("location"),  # type: ignore[arg-type]
            )
            if "?" not in target:
                self.folded.setdefault(_fold(target), target)
        self.articles: dict[str, str] = {}
        self.calendar: dict[str, object] | None = None
        if which == "legacy":
            self.articles = json.loads((root / "legacy" / "articles.json").read_text())
            self.calendar = json.loads((root / "legacy" / "calendar.json").read_text())

    def blob(self, digest: str) -> bytes:
        return (self.root / "blobs" / digest[:2] / digest).read_bytes()

    def resolve(self, host: str, target: str) -> Answer:
        if host in self.aliases:
            return Answer(
                301, "text/html; charset=iso-8859-1", location=f"http://{self.host}{target}"
            )
        hit = self.routes.get(target)
        if hit:
            return hit
        parts = urlsplit(target)
        path, query = parts.path, parse_qsl(parts.query, keep_blank_values=True)
        if self.calendar and path == self.calendar["path"]:
            month = dict(query).get("month")
            ym = calendar.parse_month(month) if month else None
            if ym:
                events = self.calendar["events"].get(month, [])  # type: ignore[union-attr]
                html, _ = calendar.render(path, ym[0], ym[1], events)
                shell = self.blob(str(self.calendar["shell"])).decode()
                return Answer(
                    200,
                    "text/html; charset=utf-8",
                    body=shell.replace(calendar.MARKER, html).encode(),
                )
        params = dict(query)
        if (
            path == "/index.php"
            and params.get("option") == "com_content"
            and params.get("view") == "article"
        ):
            canonical = self.articles.get(params.get("id", "").split(":")[0])
            if canonical and canonical in self.routes:
                return self.routes[canonical]
        kept = [(k, v) for k, v in query if k in SIGNIFICANT_PARAMS]
        if len(kept) != len(query):
            stripped = path + ("?" + urlencode(kept) if kept else "")
            if stripped in self.routes:
                return self.routes[stripped]
        folded = self.folded.get(_fold(path))
        if folded:
            candidate = folded + ("?" + urlencode(kept) if kept else "")
            if candidate in self.routes:
                return self.routes[candidate]
        return Answer(404, "text/html; charset=utf-8", body=NOT_FOUND)


def _fold(path: str) -> str:
    return path.lower().rstrip("/") or "/"


class ReplicaServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self, addr: tuple[str, int], site: Site, software: str, delay: float, log: IO[str] | None
    ) -> None:
        super().__init__(addr, Handler)
        self.site = site
        self.software = software
        self.delay = delay
        self.log = log
        self.log_lock = threading.Lock()
        self.count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real servers did
    # Headers and body go out in two writes; with Nagle on, a keep-alive client
    # waits for the delayed ACK (40 ms) on every response.
    disable_nagle_algorithm = True
    server: ReplicaServer

    def version_string(self) -> str:
        return self.server.software

    def log_message(self, format: str, *args: object) -> None:
        pass  # the JSONL access log below replaces stderr chatter

    def do_HEAD(self) -> None:
        self.answer(head=True)

    def do_GET(self) -> None:
        self.answer(head=False)

    def do_POST(self) -> None:
        # Forms on the archived site posted back to the CMS; the replica refuses.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(min(length, 1 << 20))
        self.send(Answer(405, "text/plain; charset=utf-8", body=b"Method Not Allowed\n"), False)

    def answer(self, head: bool) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if self.server.delay:
            time.sleep(self.server.delay)
        try:
            ans = self.server.site.resolve(host, self.path)
        except Exception:  # a replica bug must not look like a network fault
            ans = Answer(500, "text/plain; charset=utf-8", body=b"Internal Server Error\n")
        self.send(ans, head)

    def send(self, ans: Answer, head: bool) -> None:
        site = self.server.site
        encoding = None
        if ans.body is not None:
            body = ans.body
        elif ans.status == 404:
            body = NOT_FOUND
        elif ans.gzip and "gzip" in (self.headers.get("Accept-Encoding") or "").lower():
            body, encoding = site.blob(ans.gzip), "gzip"
        elif ans.blob:
            body = site.blob(ans.blob)
        else:
            body = (
                f'<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head><title>'
                f'{ans.status} Moved</title></head><body><p>The document has moved <a href="'
                f'{ans.location}">here</a>.</p></body></html>\n'
            ).encode()
        self.send_response(ans.status)
        self.send_header("Content-Type", ans.ctype)
        if ans.location:
            self.send_header("Location", ans.location)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        if ans.gzip:
            self.send_header("Vary", "Accept-Encoding")
        if ans.ctype.startswith("text/html") and ans.status == 200:
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Last-Modified", "Mon, 04 Nov 2019 09:00:00 GMT")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                return
        if self.server.log:
            line = json.dumps(
                {
                    "t": round(time.time(), 6),
                    "host": self.headers.get("Host"),
                    "method": self.command,
                    "target": self.path,
                    "status": ans.status,
                    "bytes": len(body),
                    "encoding": encoding,
                    "user_agent": self.headers.get("User-Agent"),
                }
            )
            with self.server.log_lock:
                self.server.log.write(line + "\n")
                self.server.log.flush()
        self.server.count += 1

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(timestamp, usegmt=True)


@dataclass
class Running:
    legacy_url: str
    new_url: str
    legacy_host: str
    legacy_aliases: tuple[str, ...]
    new_host: str
    servers: list[ReplicaServer] = field(default_factory=list)

    @property
    def connect_to(self) -> list[str]:
        """curl-style HOST:PORT:ADDR:PORT2 entries that reach the replica under real names."""
        lp = urlsplit(self.legacy_url).port
        np_ = urlsplit(self.new_url).port
        addr = urlsplit(self.legacy_url).hostname
        entries = [f"{h}:80:{addr}:{lp}" for h in (self.legacy_host, *self.legacy_aliases)]
        entries.append(f"{self.new_host}:80:{addr}:{np_}")
        return entries

    @property
    def requests(self) -> int:
        return sum(s.count for s in self.servers)


def _bind(
    host: str, port: int, site: Site, software: str, delay: float, log: IO[str] | None
) -> ReplicaServer:
    try:
        return ReplicaServer((host, port), site, software, delay, log)
    except OSError as exc:
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


@contextmanager
def serve(
    site_dir: Path,
    host: str = "127.0.0.1",
    legacy_port: int = 0,
    new_port: int = 0,
    delay_ms: float = 0.0,
    access_log: Path | None = None,
) -> Iterator[Running]:
    """Serve both replica sites until the block exits; nothing is left listening."""
    site_dir = Path(site_dir)
    manifest = json.loads((site_dir / "manifest.json").read_text())
    aliases = tuple(manifest.get("legacy_aliases", []))
    legacy = Site(site_dir, "legacy", manifest["legacy_host"], aliases)
    new = Site(site_dir, "new", manifest["new_host"])
    log = open(access_log, "a", encoding="utf-8") if access_log else None  # noqa: SIM115
    servers: list[ReplicaServer] = []
    threads: list[threading.Thread] = []
    try:
        delay = delay_ms / 1000.0
        servers.append(_bind(host, legacy_port, legacy, "Apache/2.4.7 (Ubuntu)", delay, log))
        servers.append(_bind(host, new_port, new, "nginx", delay, log))
        for srv in servers:
            t = threading.Thread(
                target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
            t.start()
            threads.append(t)
        yield Running(
            legacy_url=f"http://{host}:{servers[0].server_address[1]}/",
            new_url=f"http://{host}:{servers[1].server_address[1]}/",
            legacy_host=manifest["legacy_host"],
            legacy_aliases=aliases,
            new_host=manifest["new_host"],
            servers=servers,
        )
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        for t in threads:
            t.join(timeout=5)
        if log:
            log.close()


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, port)) != 0
