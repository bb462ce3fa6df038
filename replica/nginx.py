"""Serve a replica's legacy site with a real nginx, for crawl throughput benchmarks.

The Python server (replica.server) is the one to test behaviour against: it
renders the endless events calendar, folds case and trailing-slash variants,
ignores unknown query parameters and answers the host alias with a redirect.
It is also a single Python process, so at thousands of requests per second it,
not the crawler, is what a benchmark would measure. This module serves the
same bytes from nginx instead, but only the *static* part of the legacy site:

- exactly the URLs in ``legacy/routes.jsonl``, looked up by ``$request_uri``;
  every other URL is a 404 with the replica's not-found page. In particular
  calendar months that are not in routes.jsonl answer 404 rather than being
  rendered, so the calendar trap ends where the generated months end;
- redirects with their status and Location as generated;
- the gzip variant (with ``Content-Encoding: gzip``) when the request's
  Accept-Encoding mentions gzip, and ``Vary: Accept-Encoding`` on routes that
  have one;
- no Host-based alias redirect: nginx answers every Host the same way.

nginx compares plain map keys case-insensitively, so of two routes differing
only in letter case the first in routes.jsonl wins for both; the replica's
case variants serve the same body as their original anyway.

A per-response delay (``delay_ms``) needs the echo module from Debian's
``libnginx-mod-http-echo``: ``echo_sleep`` waits on an nginx timer, so a slow
response costs no worker and thousands can be pending at once, like a real
site's latency. With no delay the module is not loaded.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sunset.nginx import (
    NGINX,
    NginxError,
    make_temp_dirs,
    map_key,
    map_value,
    quote,
    run_user_directive,
    running_nginx,
)

from .generate import iter_jsonl
from .server import NOT_FOUND

ECHO_MODULE = Path("/usr/lib/nginx/modules/ngx_http_echo_module.so")
ECHO_PACKAGE = "libnginx-mod-http-echo"
DEFAULT_TYPE = "text/html; charset=utf-8"
LAST_MODIFIED = "Mon, 04 Nov 2019 09:00:00 GMT"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Internal locations; a dotted prefix no replica URL uses, and `internal` makes
# them 404 for clients anyway.
INTERNAL = "/.replica-nginx"


@dataclass(frozen=True)
class NginxSite:
    """A running nginx serving one replica's legacy site."""

    url: str  # http://127.0.0.1:PORT/
    host: str
    port: int
    pid: int
    legacy_host: str
    legacy_aliases: tuple[str, ...]
    conf: Path
    error_log: Path
    routes: int  # distinct map keys nginx serves

    @property
    def connect_to(self) -> list[str]:
        """curl-style HOST:PORT:ADDR:PORT2 entries that reach nginx under the real names."""
        return [f"{h}:80:{self.host}:{self.port}" for h in (self.legacy_host, *self.legacy_aliases)]

    @property
    def proxy(self) -> str:
        """HOST:PORT for clients that send absolute-form requests through a proxy (wget)."""
        return f"{self.host}:{self.port}"


def _fold(target: str) -> bytes:
    # nginx lowercases map keys and lookups with ASCII rules only.
    return target.encode("utf-8").lower()


def write_config(
    site_dir: Path, work: Path, host: str, port: int, delay_ms: float
) -> tuple[Path, int]:
    """Write nginx.conf and routes.conf into ``work``; return the main file and key count."""
    site_dir = Path(site_dir).resolve()
    blobs = site_dir / "blobs"
    make_temp_dirs(work)
    (work / "404.html").write_bytes(NOT_FOUND)

    seen: set[bytes] = set()
    keys: list[str] = []
    status: list[str] = []
    ctype: list[str] = []
    blob: list[str] = []
    gz: list[str] = []
    location: list[str] = []
    statuses: set[int] = set()
    longest = 0
    for route in iter_jsonl(site_dir / "legacy" / "routes.jsonl"):
        target = str(route["target"])
        folded = _fold(target)
        if folded in seen:
            continue  # nginx would reject the duplicate key; the first one wins
        seen.add(folded)
        rid = f"r{len(keys)}"
        keys.append(f"    {map_key(target)} {rid};")
        longest = max(longest, len(folded))
        code = int(route["status"])  # type: ignore[call-overload]
        statuses.add(code)
        if code != 200:
            status.append(f"    {rid} {code};")
        if route.get("type") and route["type"] != DEFAULT_TYPE:
            ctype.append(f"    {rid} {map_value(str(route['type']))};")
        # The Python server sends its own not-found page for every 404.
        if route.get("blob") and code != 404:
            digest = str(route["blob"])
            blob.append(f"    {rid} {map_value(digest[:2] + '/' + digest)};")
        if route.get("gzip"):
            digest = str(route["gzip"])
            gz.append(f"    {rid} {map_value(digest[:2] + '/' + digest)};")
        if route.get("location"):
            location.append(f"    {rid} {map_value(str(route['location']))};")

    def block(source: str, var: str, default: str, lines: list[str]) -> str:
        return "\n".join([f"map {source} {var} {{", f"    default {default};", *lines, "}", ""])

    # Routes with a status nginx cannot serve from a file (not 200, not a
    # redirect) go through error_page, which keeps the status and can still
    # send the route's own body.
    errors = sorted({404} | {s for s in statuses if s != 200 and s not in REDIRECT_STATUSES})
    routes = [
        "# Generated by replica.nginx from legacy/routes.jsonl; one id per distinct URL.",
        block("$request_uri", "$replica_rid", '""', keys),
        # Known routes default to 200; no id at all means an unknown URL.
        block("$replica_rid", "$replica_status", "200", ['    "" 404;', *status]),
        block("$replica_rid", "$replica_type", quote(DEFAULT_TYPE), ctype),
        block("$replica_rid", "$replica_blob", '""', blob),
        block("$replica_rid", "$replica_gzip", '""', gz),
        block("$replica_rid", "$replica_location", '""', location),
        # Same test as the Python server: any mention of gzip in Accept-Encoding.
        block("$http_accept_encoding", "$replica_accepts_gzip", "0", ['    "~*gzip" 1;']),
        block(
            "$replica_accepts_gzip$replica_gzip",
            "$replica_send",
            "$replica_blob",
            ['    "~^1(?<replica_gz>.+)$" $replica_gz;'],
        ),
        block(
            "$replica_accepts_gzip$replica_gzip",
            "$replica_encoding",
            '""',
            ['    "~^1." gzip;'],
        ),
        block("$replica_gzip", "$replica_vary", "Accept-Encoding", ['    "" "";']),
        # Caching headers as the Python server sends them, rather than the blob
        # file's mtime, which changes whenever the replica is regenerated.
        block(
            "$replica_status:$replica_type",
            "$replica_cache_control",
            '""',
            ['    "~^200:text/html" no-cache;'],
        ),
        block(
            "$replica_status:$replica_type",
            "$replica_last_modified",
            quote(LAST_MODIFIED),
            ['    "~^200:text/html" "";'],
        ),
    ]
    (work / "routes.conf").write_text("\n".join(routes), encoding="utf-8")

    route_logic = []
    for code in sorted(statuses & REDIRECT_STATUSES):
        route_logic.append(f"if ($replica_status = {code}) {{ return {code} $replica_location; }}")
    for code in errors:
        route_logic.append(f"if ($replica_status = {code}) {{ return {code}; }}")
    route_logic.append(f"rewrite ^ {INTERNAL}/blob/$replica_send last;")
    if delay_ms > 0:
        if not ECHO_MODULE.is_file():
            raise NginxError(
                f"delay_ms needs nginx's echo module ({ECHO_MODULE} not found);"
                f" install the Debian package {ECHO_PACKAGE}"
            )
        front = [
            f"echo_sleep {delay_ms / 1000:.3f};",
            f"echo_exec {INTERNAL}/route;",
        ]
    else:
        front = route_logic

    # A big map needs buckets that fit its longest key (key + pointer + padding).
    bucket = 64
    while bucket < longest + 32:
        bucket *= 2
    hash_max = max(2048, 2 * len(keys))
    user = run_user_directive()
    load = f"load_module {ECHO_MODULE};" if delay_ms > 0 else ""
    workers = max(1, min(4, os.cpu_count() or 1))

    def indent(lines: list[str], n: int) -> str:
        return "\n".join(" " * n + line for line in lines)

    conf = f"""# Generated by replica.nginx for {site_dir}
{user}
{load}
worker_processes {workers};
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    server_tokens off;
    # No Content-Type from nginx itself: each route sets its own below.
    types {{ }}
    default_type "";
    sendfile on;
    tcp_nodelay on;
    keepalive_requests 100000;
    # The Python server never answers 304 or 206; neither should this one.
    etag off;
    if_modified_since off;
    max_ranges 0;
    client_body_temp_path {work / "temp" / "client_body"};
    proxy_temp_path {work / "temp" / "proxy"};
    fastcgi_temp_path {work / "temp" / "fastcgi"};
    uwsgi_temp_path {work / "temp" / "uwsgi"};
    scgi_temp_path {work / "temp" / "scgi"};
    map_hash_bucket_size {bucket};
    map_hash_max_size {hash_max};
    include {work / "routes.conf"};

    server {{
        listen {host}:{port} default_server;
        absolute_redirect off;
        error_page {" ".join(str(c) for c in errors)} {INTERNAL}/error;

        location / {{
{indent(front, 12)}
        }}

        location = {INTERNAL}/route {{
            internal;
{indent(route_logic, 12)}
        }}

        location = {INTERNAL}/error {{
            internal;
            if ($replica_blob) {{
                rewrite ^ {INTERNAL}/blob/$replica_blob last;
            }}
            add_header Content-Type $replica_type always;
            add_header Cache-Control $replica_cache_control always;
            add_header Last-Modified $replica_last_modified always;
            alias {work / "404.html"};
        }}

        location {INTERNAL}/blob/ {{
            internal;
            add_header Content-Type $replica_type always;
            add_header Content-Encoding $replica_encoding always;
            add_header Vary $replica_vary always;
            add_header Cache-Control $replica_cache_control always;
            add_header Last-Modified $replica_last_modified always;
            alias {blobs}/;
        }}
    }}
}}
"""
    path = work / "nginx.conf"
    path.write_text(conf, encoding="utf-8")
    return path, len(keys)


@contextmanager
def serve_nginx(
    site_dir: Path | str,
    host: str = "127.0.0.1",
    port: int = 0,
    delay_ms: float = 0,
) -> Iterator[NginxSite]:
    """Run nginx on the replica's legacy routes until the block exits.

    ``port=0`` picks a free port. Returns once nginx answers connections;
    on exit nginx is stopped and nothing is left listening.
    """
    site_dir = Path(site_dir)
    manifest = json.loads((site_dir / "manifest.json").read_text())
    keys = 0

    def write(chosen: int) -> Path:
        nonlocal keys
        conf, keys = write_config(site_dir, work, host, chosen, delay_ms)
        return conf

    with tempfile.TemporaryDirectory(prefix="replica-nginx-") as tmp:
        work = Path(tmp)
        with running_nginx(write, work, host, port) as proc:
            yield NginxSite(
                url=proc.url,
                host=host,
                port=proc.port,
                pid=proc.pid,
                legacy_host=manifest["legacy_host"],
                legacy_aliases=tuple(manifest.get("legacy_aliases", [])),
                conf=proc.conf,
                error_log=proc.error_log,
                routes=keys,
            )


# Re-exported: these lived here before sunset.nginx existed.
__all__ = [
    "NGINX",
    "NginxError",
    "NginxSite",
    "map_key",
    "map_value",
    "quote",
    "serve_nginx",
    "write_config",
]
