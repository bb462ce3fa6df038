"""The replayed article in a real browser: Debian's headless Chromium, driven over the
Chrome DevTools Protocol on a pipe (--remote-debugging-pipe), so no extra package
and no debugging port. Every request the page makes is recorded from the
browser's side: its stylesheet and images must load from the replay and nothing
may fail or go anywhere else.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_replay import ReplicaCrawl, replica_crawl

from replay.serve import serving

CHROMIUM = os.environ.get("SUNSET_CHROMIUM", "/usr/bin/chromium")
TIMEOUT = 60.0


class CDP:
    """A minimal DevTools client: commands out on one pipe, replies and events back."""

    def __init__(self, write_fd: int, read_fd: int) -> None:
        self._w = write_fd
        self._r = read_fd
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any] | None:
        # Messages are JSON, each ended by a NUL byte.
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], left)
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._read_message(deadline)
            if reply is None:
                raise TimeoutError(method)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Collect events for a while."""
        deadline = time.monotonic() + seconds
        while (message := self._read_message(deadline)) is not None:
            self.events.append(message)

    def names(self) -> list[str]:
        return [e.get("method", "") for e in self.events]


@contextmanager
def chromium(profile: Path) -> Iterator[CDP]:
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()
    args = [
        "--headless",
        "--no-sandbox",  # tests run as root in CI containers
        "--disable-gpu",
        "--remote-debugging-pipe",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        # No traffic of the browser's own (updates, safe browsing, metrics);
        # anything that is not loopback goes to a dead proxy.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--proxy-server=127.0.0.1:9",
        "about:blank",
    ]
    # The DevTools pipe must be fds 3 (browser reads) and 4 (browser writes).
    # bash, not sh: dash cannot redirect from a descriptor above 9.
    redirect = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
    proc = subprocess.Popen(
        ["/bin/bash", "-c", redirect, CHROMIUM, *args],
        pass_fds=(to_browser_r, from_browser_w),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(to_browser_r)
    os.close(from_browser_w)
    try:
        yield CDP(to_browser_w, from_browser_r)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        os.close(to_browser_w)
        os.close(from_browser_r)


def load(cdp: CDP, url: str) -> str:
    """Open url in a new tab, wait for load and a quiet network; returns the session."""
    target = cdp.send("Target.createTarget", url="about:blank")["targetId"]
    session = cdp.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    cdp.send("Network.enable", session)
    cdp.send("Page.enable", session)
    # pywb's banner starts a web worker; its requests are only seen from the
    # worker's own session, which it waits for before running.
    cdp.send(
        "Target.setAutoAttach", session, autoAttach=True, waitForDebuggerOnStart=True, flatten=True
    )
    cdp.events.clear()
    cdp.send("Page.navigate", session, url=url)
    deadline = time.monotonic() + TIMEOUT
    handled = 0

    def follow_workers() -> None:
        nonlocal handled
        while handled < len(cdp.events):
            event = cdp.events[handled]
            handled += 1
            if event.get("method") == "Target.attachedToTarget":
                child = event["params"]["sessionId"]
                cdp.send("Network.enable", child)
                cdp.send("Runtime.runIfWaitingForDebugger", child)

    while "Page.loadEventFired" not in cdp.names():
        assert time.monotonic() < deadline, "page did not load"
        cdp.pump(0.3)
        follow_workers()
    # Quiet: every request started has finished or failed, and nothing new for a while.
    while True:
        before = len(cdp.events)
        cdp.pump(0.7)
        follow_workers()
        if len(cdp.events) == before and not pending(cdp.events):
            return session
        if time.monotonic() > deadline:
            requests = {
                e["params"]["requestId"]: e["params"]["request"]["url"]
                for e in cdp.events
                if e.get("method") == "Network.requestWillBeSent"
            }
            pytest.fail(f"requests never finished: {[requests[r] for r in pending(cdp.events)]}")


def pending(events: list[dict[str, Any]]) -> set[str]:
    started = {
        e["params"]["requestId"] for e in events if e.get("method") == "Network.requestWillBeSent"
    }
    done = {
        e["params"]["requestId"]
        for e in events
        if e.get("method") in ("Network.loadingFinished", "Network.loadingFailed")
    }
    return started - done


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> ReplicaCrawl:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} not installed (Debian package 'chromium'; ./dev setup installs it)"
        )
    return replica_crawl(tmp_path_factory)


def test_replayed_article_loads_its_stylesheet_and_images(
    crawl: ReplicaCrawl, tmp_path: Path
) -> None:
    article = crawl.article()
    with serving(crawl.run) as running, chromium(tmp_path / "profile") as cdp:
        # The framed view, as a person would open it: pywb's page with the
        # archived page in its iframe.
        url = running.replay_url(article["url"], mod="")
        session = load(cdp, url)
        events = cdp.events
        requests = {
            e["params"]["requestId"]: e["params"]["request"]["url"]
            for e in events
            if e.get("method") == "Network.requestWillBeSent"
        }
        responses = [e["params"] for e in events if e.get("method") == "Network.responseReceived"]
        failures = [e["params"] for e in events if e.get("method") == "Network.loadingFailed"]
        # Every request went to the replay, and nothing else.
        elsewhere = [
            u
            for u in requests.values()
            if not u.startswith((running.base + "/", "data:", "blob:", "about:"))
        ]
        assert elsewhere == [], elsewhere
        assert failures == [], [(requests.get(f["requestId"]), f["errorText"]) for f in failures]
        bad = [(r["response"]["url"], r["response"]["status"]) for r in responses]
        bad = [(u, s) for u, s in bad if not 200 <= s < 400]
        assert bad == [], bad
        # The archived page and its requisites came from the collection.
        archived = [
            (r["type"], r["response"]["url"])
            for r in responses
            if r["response"]["url"].startswith(f"{running.base}/{running.coll}/")
        ]
        assert any(t == "Document" and u.endswith(f"mp_/{article['url']}") for t, u in archived)
        assert any(t == "Stylesheet" for t, _ in archived), archived
        images = {u.split("_/", 1)[1] for t, u in archived if t == "Image"}
        # The article's image is listed with a 2x variant in srcset; the
        # browser picks one of them.
        assert images & set(article["images"]), images

        # And from inside the page: its stylesheets are parsed, its images decoded.
        check = """
            (() => {
              const d = document.querySelector('#replay_iframe').contentDocument;
              return JSON.stringify({
                title: d.title,
                sheets: [...d.styleSheets].map(s => [s.href, s.cssRules.length]),
                images: [...d.images].map(i => [i.currentSrc, i.complete, i.naturalWidth]),
              });
            })()
        """
        result = cdp.send("Runtime.evaluate", session, expression=check, returnByValue=True)
        page = json.loads(result["result"]["value"])
        assert article["title"] in page["title"]
        assert page["sheets"] and all(rules > 0 for _, rules in page["sheets"]), page["sheets"]
        assert page["images"], "the article shows no image"
        for src, complete, width in page["images"]:
            assert complete and width > 0, src
