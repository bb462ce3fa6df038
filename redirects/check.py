"""``sunset redirects check``: serve the generated maps with a real nginx and ask it every old URL.

The map files in the redirects folder are served as they are, by the same
``redirects.conf`` text (re-rendered to listen on a free loopback port), so a
hand-edited or truncated map shows up as wrong answers. Every URL in
redirects.csv is requested with its raw request target and its legacy
``Host:``; with ``variants`` a few URLs nobody crawled are requested too, per
legacy path: a tracking parameter appended, the path in upper case and the
trailing slash toggled.

What each URL should get is worked out independently of nginx, by the same
rules the writers follow (:class:`redirects.nginx.RedirectPlan` and its
emulation of nginx's URI parsing). For a row the writers wrote that is the
row's own target; a row they refused, or whose key lost a case collision,
should get what nginx can give it instead (a fallback), and is counted in
``not_as_listed`` rather than as a failure.
"""

from __future__ import annotations

import html
import http.client
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from sunset import ui
from sunset.errors import SunsetError
from sunset.nginx import MAX_TOKEN, NginxError, minimal_conf, quote, running_nginx

from .csvio import read_csv
from .model import GONE, MOVED, Refused
from .nginx import (
    CONF,
    MAP_FILES,
    Answer,
    BadRequest,
    RedirectPlan,
    TargetError,
    host_matches,
    parse_target,
    read_settings,
    render_conf,
    split_legacy,
)

VARIANT_QUERY = "utm_source=sunset-check"
TIMEOUT = 10.0


@dataclass
class Failure:
    """One URL whose answer was not the expected one."""

    url: str  # the request target sent
    expected: str  # the expected Location (for a 410: the URL its page must link)
    status: int | None  # the status received (None: no answer)
    location: str  # the Location received, or what went wrong
    expected_status: int = MOVED
    host: str = ""


@dataclass
class CheckResult:
    """Counts and failures of one check."""

    requested: int = 0  # URLs requested
    passed: int = 0  # answered as expected
    rows: int = 0  # rows in redirects.csv
    variants: int = 0  # of the requests, uncrawled variants
    unsendable: int = 0  # rows whose URL no client sends as written (the writers refused it)
    not_as_listed: int = 0  # rows nginx cannot answer with their own target (refused, collided)
    conf_matches: bool = True  # redirects.conf is exactly what sunset wrote
    failures: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def summary(self) -> str:
        lines = [
            f"{self.requested:,} URLs requested ({self.requested - self.variants:,} from"
            f" redirects.csv, {self.variants:,} variants): {self.passed:,} as expected,"
            f" {len(self.failures):,} wrong, in {self.seconds:.1f} s"
        ]
        if self.not_as_listed:
            lines.append(
                f"{self.not_as_listed:,} rows cannot get their own target"
                " (refused or lost a case collision; see the report)"
            )
        if self.unsendable:
            lines.append(f"{self.unsendable:,} rows have a URL no client can send; not requested")
        if not self.conf_matches:
            lines.append("redirects.conf differs from what sunset wrote (edited by hand?)")
        for failure in self.failures[:10]:
            got = "no answer" if failure.status is None else f"{failure.status}"
            lines.append(
                f"  {failure.url}: expected {failure.expected_status} {failure.expected},"
                f" got {got} {failure.location}".rstrip()
            )
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10:,} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Probe:
    target: str
    host: str
    expected: Answer
    variant: bool


def _sendable(target: str) -> bool:
    # What a client can put in a request line and nginx will not answer 400.
    if len(target) > MAX_TOKEN or not target.isascii():
        return False
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return False
    try:
        parse_target(target.encode("ascii"))
    except BadRequest:
        return False
    return True


def _toggle_slash(path: str) -> str:
    if path == "/":
        return ""
    return path[:-1] if path.endswith("/") else path + "/"


def _probes(out_dir: Path, result: CheckResult, variants: bool) -> tuple[list[_Probe], Path]:
    conf = out_dir / CONF
    for path in (out_dir / "redirects.csv", conf, *(out_dir / m for m in MAP_FILES.values())):
        if not path.is_file():
            raise SunsetError(f"{out_dir}: no {path.name} (run 'sunset redirects' first)")
    site, _, _, _ = read_settings(conf)
    default_host = site.legacy_hosts[0] if site.legacy_hosts else ""
    with RedirectPlan(site) as plan:
        own: list[tuple[str, str, Answer | None]] = []
        for row in read_csv(out_dir / "redirects.csv"):
            result.rows += 1
            prepared = plan.add(row)
            try:
                host, target = split_legacy(row.old)
            except TargetError:
                result.unsendable += 1
                continue
            if not host_matches(host, site.legacy_hosts) or not _sendable(target):
                result.unsendable += 1
                continue
            answer = None if isinstance(prepared, Refused) else (prepared.status, prepared.target)
            own.append((target, host, answer))
        plan.finish()

        probes: list[_Probe] = []
        seen: set[str] = set()
        paths: dict[str, tuple[str, str]] = {}
        for target, host, answer in own:
            expected = plan.resolve(target)
            if expected != answer:
                result.not_as_listed += 1
            if target in seen:
                continue  # the same request twice (the http and https URL, say)
            seen.add(target)
            probes.append(_Probe(target, host, expected, False))
            path = target.split("?", 1)[0]
            paths.setdefault(path.lower(), (path, host))
        if variants:
            for path, host in paths.values():
                for variant in (f"{path}?{VARIANT_QUERY}", path.upper(), _toggle_slash(path)):
                    if not variant or variant in seen or not _sendable(variant):
                        continue
                    seen.add(variant)
                    probes.append(
                        _Probe(variant, host or default_host, plan.resolve(variant), True)
                    )
    return probes, conf


def _judge(probe: _Probe, status: int | None, locations: list[str], body: bytes) -> Failure | None:
    want_status, want = probe.expected
    location = locations[0] if locations else ""
    if want_status == GONE:
        link = f'href="{html.escape(want)}"'.encode("ascii")
        ok = status == GONE and not locations and link in body
    else:
        ok = status == want_status and locations == [want]
    if ok:
        return None
    if len(locations) > 1:
        location = " | ".join(locations)
    return Failure(probe.target, want, status, location, want_status, probe.host)


def _ask(
    host: str, port: int, probes: list[_Probe], done: threading.Lock, bar: ui.Tracker | None
) -> Iterator[Failure | None]:
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        for probe in probes:
            try:
                conn.putrequest("GET", probe.target, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", probe.host)
                conn.endheaders()
                response = conn.getresponse()
                body = response.read()
                verdict = _judge(
                    probe, response.status, response.msg.get_all("Location") or [], body
                )
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request reconnects
                verdict = Failure(
                    probe.target, probe.expected[1], None, repr(exc), probe.expected[0], probe.host
                )
            if bar is not None:
                with done:
                    bar.advance()
            yield verdict
    finally:
        conn.close()


def check(
    out_dir: Path,
    host: str = "127.0.0.1",
    variants: bool = True,
    progress: bool = True,
    threads: int = 4,
) -> CheckResult:
    """Serve ``out_dir``'s maps with nginx on ``host`` and request every URL; see the module doc."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    result = CheckResult()
    probes, conf = _probes(out_dir, result, variants)
    site, sizes, listen, maps_dir = read_settings(conf)
    written = conf.read_text(encoding="utf-8")
    result.conf_matches = written == render_conf(site, sizes, listen=listen, maps_dir=maps_dir)

    with tempfile.TemporaryDirectory(prefix="sunset-check-") as tmp:
        work = Path(tmp)

        def write_conf(port: int) -> Path:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            text = render_conf(site, sizes, listen=address, maps_dir=out_dir.resolve())
            (work / CONF).write_text(text, encoding="utf-8")
            return minimal_conf(
                work,
                f"    keepalive_requests 1000000;\n    include {quote(str(work / CONF))};",
                workers=2,
            )

        bar_context: AbstractContextManager[ui.Tracker | None] = (
            ui.progress("checking redirects", total=len(probes), unit="URLs")
            if progress
            else nullcontext()
        )
        try:
            with running_nginx(write_conf, work, host) as nginx, bar_context as bar:
                lock = threading.Lock()
                verdicts: list[list[Failure | None]] = [[] for _ in range(max(1, threads))]
                chunks = [probes[i :: len(verdicts)] for i in range(len(verdicts))]
                crashed: list[BaseException] = []

                def work_on(i: int) -> None:
                    try:
                        verdicts[i].extend(_ask(host, nginx.port, chunks[i], lock, bar))
                    except BaseException as exc:  # re-raised below, in the caller's thread
                        crashed.append(exc)

                workers = [threading.Thread(target=work_on, args=(i,)) for i in range(len(chunks))]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                if crashed:
                    raise crashed[0]
        except NginxError as exc:
            raise SunsetError(f"nginx does not serve {out_dir}: {exc}") from None

    # Report in the order the URLs were listed, not the order threads finished.
    order = {id(p): n for n, p in enumerate(probes)}
    failures: list[tuple[int, Failure]] = []
    for i, chunk in enumerate(chunks):
        for probe, verdict in zip(chunk, verdicts[i], strict=True):
            if verdict is not None:
                failures.append((order[id(probe)], verdict))
    failures.sort(key=lambda pair: pair[0])
    result.failures = [f for _, f in failures]
    result.requested = len(probes)
    result.variants = sum(p.variant for p in probes)
    result.passed = result.requested - len(result.failures)
    result.seconds = round(time.monotonic() - started, 2)
    return result
