"""Score generated redirects against a ground truth, through a real nginx.

The truth is a JSONL file with one line per legacy URL: ``url``, and
``successor`` (the intended new URL, or null when the page has none and
should end at the archive), or ``served`` true for a URL the redirect server
answers itself with a 200 (robots.txt). The replica writes one
(``ground-truth/urls.jsonl``); for a real site a reviewed sample will do.

Every URL in the truth is requested from nginx running the generated config,
including URLs the crawl never saw (session ids, robots-excluded pages), so
the score covers what a visitor would get, not what the CSV claims.

    python -m redirects.evaluate TRUTH.jsonl REDIRECTS_DIR
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sunset.errors import SunsetError


def _same(a: str, b: str) -> bool:
    # Successor paths all end in "/"; a target equal but for that is the same page.
    return a.rstrip("/") == b.rstrip("/")


def score(
    truth: Iterable[Mapping[str, object]],
    answers: Mapping[str, tuple[int, str]],
    archive_hosts: Iterable[str],
) -> dict[str, object]:
    """Top-1 accuracy, archive share and the share answered 301 (or 410).

    ``answers`` maps each truth URL to nginx's (status, Location). URLs the
    server answers itself (``served``) count only in ``served_share``.
    """
    archive = {h.lower() for h in archive_hosts}
    with_s = without = top1 = archived = redirected = total = served = served_ok = 0
    misses: list[dict[str, object]] = []
    for t in truth:
        url = str(t["url"])
        status, location = answers.get(url, (0, ""))
        expected = t.get("successor")
        if t.get("served"):
            served += 1
            ok = status == 200 and not location
            served_ok += ok
            if not ok and len(misses) < 50:
                misses.append({"url": url, "expected": 200, "status": status, "location": location})
            continue
        total += 1
        if status in (301, 410):
            redirected += 1
        if expected:
            with_s += 1
            ok = status == 301 and _same(location, str(expected))
            top1 += ok
        else:
            without += 1
            # A 410 (archive_mode "gone") links the archived copy from its body.
            ok = status == 410 or (urlsplit(location).hostname or "").lower() in archive
            archived += ok
        if not ok and len(misses) < 50:
            misses.append(
                {"url": url, "expected": expected, "status": status, "location": location}
            )
    return {
        "urls": total + served,
        "with_successor": with_s,
        "top1": top1 / with_s if with_s else 1.0,
        "without_successor": without,
        "archived_share": archived / without if without else 1.0,
        "answered_301_share": redirected / total if total else 1.0,
        "served": served,
        "served_share": served_ok / served if served else 1.0,
        "misses": misses,
    }


def evaluate(truth_path: Path, redirects_dir: Path) -> dict[str, object]:
    """Request every truth URL from nginx serving ``redirects_dir`` and score the answers."""
    try:
        truth = [json.loads(line) for line in truth_path.read_text().splitlines() if line]
    except (OSError, ValueError) as exc:
        raise SunsetError(f"{truth_path}: cannot read the ground truth ({exc})") from None
    if not all(isinstance(t, dict) and isinstance(t.get("url"), str) for t in truth):
        raise SunsetError(f"{truth_path}: every line must be an object with a 'url'")
    try:
        settings = json.loads((redirects_dir / "redirects.json").read_text())
    except (OSError, ValueError) as exc:
        raise SunsetError(f"{redirects_dir}: no readable redirects.json ({exc})") from None
    site = settings["site"]
    archive_hosts = [h for h in site["allowed_target_hosts"] if h not in _new_hosts(site)]
    answers = ask_all(redirects_dir, [str(t["url"]) for t in truth])
    return score(truth, answers, archive_hosts)


def ask_all(redirects_dir: Path, urls: list[str]) -> dict[str, tuple[int, str]]:
    """nginx's (status, Location) for each absolute legacy URL, serving ``redirects_dir``."""
    import http.client
    import tempfile

    from sunset.nginx import NginxError, minimal_conf, quote, running_nginx

    from .nginx import CONF, TargetError, read_settings, render_conf, split_legacy

    site, sizes, _listen, _maps = read_settings(redirects_dir / CONF)
    answers: dict[str, tuple[int, str]] = {}
    with tempfile.TemporaryDirectory(prefix="sunset-evaluate-") as tmp:
        work = Path(tmp)

        def write_conf(port: int) -> Path:
            text = render_conf(
                site, sizes, listen=f"127.0.0.1:{port}", maps_dir=redirects_dir.resolve()
            )
            (work / CONF).write_text(text, encoding="utf-8")
            return minimal_conf(work, f"    include {quote(str(work / CONF))};")

        try:
            with running_nginx(write_conf, work, "127.0.0.1") as nginx:
                conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
                for url in urls:
                    try:
                        host, target = split_legacy(url)
                    except TargetError:
                        answers[url] = (0, "")
                        continue
                    try:
                        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
                        conn.putheader("Host", host)
                        conn.endheaders()
                        response = conn.getresponse()
                        response.read()
                        answers[url] = (response.status, response.getheader("Location") or "")
                    except (OSError, http.client.HTTPException):
                        conn.close()
                        answers[url] = (0, "")
                conn.close()
        except NginxError as exc:
            raise SunsetError(f"nginx does not serve {redirects_dir}: {exc}") from None
    return answers


def _new_hosts(site: Mapping[str, object]) -> set[str]:
    return {(urlsplit(str(site["new_home"])).hostname or "").lower()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m redirects.evaluate TRUTH.jsonl REDIRECTS_DIR", file=sys.stderr)
        return 2
    try:
        result = evaluate(Path(args[0]), Path(args[1]))
    except SunsetError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
