"""replica.nginx: a real nginx serves the legacy routes byte for byte, on loopback."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import time
from pathlib import Path

import pytest
import requests

from replica import generate
from replica.generate import iter_jsonl
from replica.nginx import ECHO_MODULE, NGINX, serve_nginx
from replica.server import NOT_FOUND, port_free

pytestmark = pytest.mark.skipif(
    not Path(NGINX).is_file(), reason="nginx is not installed (./dev setup installs it)"
)

LEGACY = "www.wiganboroughccg.nhs.uk"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("replica") / "site"
    generate(out, pages=80, seed=3)
    return out


def get(session: requests.Session, base: str, target: str, gzip: bool) -> requests.Response:
    # Raw bytes: requests would otherwise undo the gzip we want to compare.
    r = session.get(
        base.rstrip("/") + target,
        headers={"Host": LEGACY, "Accept-Encoding": "gzip, deflate" if gzip else "identity"},
        allow_redirects=False,
        stream=True,
        timeout=10,
    )
    r.raw_bytes = r.raw.read(decode_content=False)  # type: ignore[attr-defined]
    return r


def test_every_route_served_as_generated(site: Path) -> None:
    routes = list(iter_jsonl(site / "legacy" / "routes.jsonl"))
    first: dict[str, dict] = {}
    for route in routes:
        first.setdefault(str(route["target"]).lower(), route)
    seen = {"ok": 0, "gzip": 0, "redirect": 0, "missing": 0}
    with serve_nginx(site) as srv, requests.Session() as session:
        for route in routes:
            target = str(route["target"])
            # nginx matches keys case-insensitively: a case variant gets the
            # answer of the first route that folds to the same key.
            expect = first[target.lower()]
            r = get(session, srv.url, target, gzip=False)
            assert r.status_code == expect["status"], target
            if expect["status"] == 200:
                assert sha1(r.raw_bytes) == expect["blob"], target
                assert r.headers["Content-Type"] == expect["type"], target
                assert "Content-Encoding" not in r.headers, target
                assert ("Vary" in r.headers) == bool(expect.get("gzip")), target
                seen["ok"] += 1
            elif expect.get("location"):
                assert r.headers["Location"] == expect["location"], target
                seen["redirect"] += 1
            else:
                assert expect["status"] == 404 and r.raw_bytes == NOT_FOUND, target
                seen["missing"] += 1
            if expect.get("gzip"):
                z = get(session, srv.url, target, gzip=True)
                assert z.status_code == 200
                assert sha1(z.raw_bytes) == expect["gzip"], target
                assert z.headers["Content-Encoding"] == "gzip"
                assert z.headers["Vary"] == "Accept-Encoding"
                seen["gzip"] += 1
        # A route without a gzip variant is sent plain even to a gzip client.
        plain = next(r for r in routes if r["status"] == 200 and not r.get("gzip"))
        z = get(session, srv.url, str(plain["target"]), gzip=True)
        assert sha1(z.raw_bytes) == plain["blob"] and "Content-Encoding" not in z.headers
    assert seen["ok"] > 250 and seen["gzip"] and seen["redirect"] and seen["missing"]


def test_unknown_urls_and_absolute_form(site: Path) -> None:
    calendar = json.loads((site / "legacy" / "calendar.json").read_text())
    with serve_nginx(site) as srv, requests.Session() as session:
        for target in (
            "/no-such-page",
            f"{calendar['path']}?month=2031-01",
            "/.replica-nginx/error",
        ):
            r = get(session, srv.url, target, gzip=False)
            assert r.status_code == 404, target
            assert r.raw_bytes == NOT_FOUND
            assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        # The way wget reaches it: the real URL sent to nginx as a proxy.
        r = session.get(
            f"http://{LEGACY}/robots.txt",
            proxies={"http": srv.url},
            headers={"Accept-Encoding": "identity"},
            timeout=10,
        )
        assert r.status_code == 200 and b"Disallow: /administrator/" in r.content
    assert port_free(srv.host, srv.port)


def fake_site(root: Path, routes: list[dict]) -> Path:
    """A hand-written replica, for keys that need quoting in nginx's config."""
    for route in routes:
        body = route.pop("body", None)
        if body is not None:
            route["blob"] = sha1(body)
            path = root / "blobs" / route["blob"][:2] / route["blob"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
    (root / "legacy").mkdir(parents=True)
    with open(root / "legacy" / "routes.jsonl", "w") as fh:
        for route in routes:
            fh.write(json.dumps(route) + "\n")
    (root / "manifest.json").write_text(json.dumps({"legacy_host": LEGACY}))
    return root


def raw_get(port: int, target: str) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", target, headers={"Host": LEGACY})
    r = conn.getresponse()
    r.body = r.read()  # type: ignore[attr-defined]
    conn.close()
    return r


def test_awkward_keys_and_case_collisions(tmp_path: Path) -> None:
    html = "text/html; charset=utf-8"
    site = fake_site(
        tmp_path,
        [
            {"target": "/Case", "status": 200, "type": "text/plain", "body": b"upper"},
            {"target": "/case", "status": 200, "type": "text/plain", "body": b"lower"},
            {"target": '/q"uote', "status": 200, "type": html, "body": b"quote"},
            {"target": "/back\\slash\\n", "status": 200, "type": html, "body": b"backslash"},
            {"target": "/~tilde;{x}", "status": 200, "type": html, "body": b"tilde"},
            {"target": "/a?b=$c&d=1", "status": 301, "type": html, "location": "/x?y=$z"},
            {"target": "/gone", "status": 410, "type": html, "body": b"gone"},
        ],
    )
    with serve_nginx(site) as srv:
        assert raw_get(srv.port, "/case").body == b"upper"  # first one wins
        assert raw_get(srv.port, "/CASE").body == b"upper"
        assert raw_get(srv.port, '/q"uote').body == b"quote"
        assert raw_get(srv.port, "/back\\slash\\n").body == b"backslash"
        assert raw_get(srv.port, "/~tilde;{x}").body == b"tilde"
        moved = raw_get(srv.port, "/a?b=$c&d=1")
        # nginx cannot send a literal "$" from a map value; %24 is the same URL.
        assert moved.status == 301 and moved.getheader("Location") == "/x?y=%24z"
        gone = raw_get(srv.port, "/gone")
        assert gone.status == 410 and gone.body == b"gone"
        assert raw_get(srv.port, "/q").status == 404


@pytest.mark.skipif(not ECHO_MODULE.is_file(), reason="libnginx-mod-http-echo is not installed")
def test_delay_applied_and_nothing_left_running(site: Path) -> None:
    def fastest(url: str) -> float:
        times = []
        with requests.Session() as session:
            for _ in range(3):
                t = time.perf_counter()
                assert session.get(url, headers={"Host": LEGACY}, timeout=10).status_code == 200
                times.append(time.perf_counter() - t)
        return min(times)

    with serve_nginx(site, delay_ms=200) as slow:
        delayed = fastest(slow.url + "robots.txt")
        # Unknown URLs and redirects wait too, as the Python server's do.
        t = time.perf_counter()
        assert requests.get(slow.url + "nope", timeout=10).status_code == 404
        assert time.perf_counter() - t >= 0.19
    with serve_nginx(site) as fast:
        prompt = fastest(fast.url + "robots.txt")
    assert delayed >= 0.19 and prompt < 0.1
    for srv in (slow, fast):
        assert port_free(srv.host, srv.port)
        with pytest.raises(ProcessLookupError):
            os.kill(srv.pid, 0)
