"""CLI commands around the shipped replica: generate it, serve it, run the demo.

They live apart from the pipeline stages because they are the project's own
test bed, not part of retiring a real site; `sunset demo` is where the two meet.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import click

from replica import generate as generate_replica
from replica import serve
from replica.generate import GENERATOR_VERSION, SUCCESSORS
from replica.templates import THEMES
from sunset.errors import SunsetError
from sunset.paths import default_out
from sunset.ui import console, summary_table

PAGES = click.IntRange(50, 100_000)
SUCCESSOR_HELP = (
    "How the successor site relates to the legacy one: 'reused' keeps most legacy wording,"
    " 'rewritten' merges, splits, retitles, moves and rewords pages (only topics and names"
    " survive)."
)


def ensure_replica(
    site: Path,
    pages: int,
    seed: int,
    theme: str,
    force: bool = False,
    successor: str = "reused",
) -> dict:
    """Generate the replica unless one with the same parameters is already there."""
    manifest_path = site / "manifest.json"
    if manifest_path.exists() and not force:
        try:
            m = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            m = {}
        if (
            m.get("requested_pages"),
            m.get("seed"),
            m.get("theme"),
            m.get("generator_version"),
            m.get("successor", "reused"),
        ) == (
            pages,
            seed,
            theme,
            GENERATOR_VERSION,
            successor,
        ):
            return m
    console.print(f"generating a {pages:,}-page replica in {site} …")
    try:
        site.parent.mkdir(parents=True, exist_ok=True)
        return generate_replica(site, pages=pages, seed=seed, theme=theme, successor=successor)
    except OSError as exc:
        raise SunsetError(f"cannot write the replica to {site}: {exc.strerror or exc}") from None


def _manifest_rows(m: dict) -> list[tuple[str, object]]:
    kinds = m.get("page_kinds", {})
    return [
        ("legacy host", m["legacy_host"]),
        ("successor host", m["new_host"]),
        ("legacy pages", m["pages"]),
        (
            "  articles / news / multi-part",
            f"{kinds.get('article', 0):,} / "
            f"{kinds.get('news', 0):,} / {kinds.get('multipart', 0):,}",
        ),
        ("legacy URLs (ground truth)", m["legacy_urls"]),
        ("successor URLs", m["new_urls"]),
        ("theme / seed", f"{m['theme']} / {m['seed']}"),
        ("successor", m.get("successor", "reused")),
        ("bytes on disk", m["blob_bytes"]),
    ]


def register(main: click.Group) -> None:
    @main.group("replica")
    def replica_group() -> None:
        """The replica of a legacy site that the demo and the tests run against.

        \b
        Examples:
          sunset replica generate
          sunset replica generate --pages 20000 --out output/replica-20k
          sunset replica generate --theme classic --out output/replica-classic
          sunset replica generate --successor rewritten --out output/replica-rewritten
        """

    @replica_group.command("generate")
    @click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=None,
        help="Folder to write (default output/replica).",
    )
    @click.option(
        "--pages", type=PAGES, default=400, show_default=True, help="Number of legacy pages."
    )
    @click.option(
        "--seed",
        type=int,
        default=1,
        show_default=True,
        help="Same seed, same replica, byte for byte.",
    )
    @click.option(
        "--theme",
        type=click.Choice(THEMES),
        default="protostar",
        show_default=True,
        help="Legacy template markup (same text, different HTML).",
    )
    @click.option(
        "--successor",
        type=click.Choice(SUCCESSORS),
        default="reused",
        show_default=True,
        help=SUCCESSOR_HELP,
    )
    def replica_generate(
        out: Path | None, pages: int, seed: int, theme: str, successor: str
    ) -> None:
        """Write a deterministic replica of the legacy site and its successor, with ground truth.

        \b
        Examples:
          sunset replica generate
          sunset replica generate --pages 20000 --seed 7 --out output/replica-20k
          sunset replica generate --successor rewritten --out output/replica-rewritten
        """
        site = out or default_out("replica")
        started = time.monotonic()
        m = ensure_replica(site, pages, seed, theme, force=True, successor=successor)
        summary_table(
            f"replica written to {site}",
            [
                *_manifest_rows(m),
                ("seconds", round(time.monotonic() - started, 1)),
            ],
        )

    @main.command("serve-replica")
    @click.option(
        "--site",
        type=click.Path(path_type=Path),
        default=None,
        help="Replica folder (default output/replica; generated if missing).",
    )
    @click.option("--pages", type=PAGES, default=400, show_default=True)
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--theme", type=click.Choice(THEMES), default="protostar", show_default=True)
    @click.option(
        "--successor",
        type=click.Choice(SUCCESSORS),
        default="reused",
        show_default=True,
        help=SUCCESSOR_HELP,
    )
    @click.option(
        "--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on."
    )
    @click.option(
        "--legacy-port",
        type=click.IntRange(0, 65535),
        default=0,
        help="Port for the legacy site (0 = any free port).",
    )
    @click.option(
        "--new-port",
        type=click.IntRange(0, 65535),
        default=0,
        help="Port for the successor site (0 = any free port).",
    )
    @click.option(
        "--delay-ms",
        type=click.FloatRange(0, 60_000),
        default=0.0,
        help="Added latency per response, for crawl benchmarks.",
    )
    @click.option(
        "--access-log",
        type=click.Path(path_type=Path),
        default=None,
        help="Append one JSON line per request to this file.",
    )
    def serve_replica(
        site: Path | None,
        pages: int,
        seed: int,
        theme: str,
        successor: str,
        host: str,
        legacy_port: int,
        new_port: int,
        delay_ms: float,
        access_log: Path | None,
    ) -> None:
        """Serve the replica's legacy and successor sites on loopback until Ctrl-C.

        Both sites answer under their real host names: point a crawler at them
        with the printed --connect-to values (as curl's option of that name).

        \b
        Examples:
          sunset serve-replica
          sunset serve-replica --legacy-port 8001 --new-port 8002 --delay-ms 20
          curl --connect-to www.wiganboroughccg.nhs.uk:80:127.0.0.1:8001 \\
               http://www.wiganboroughccg.nhs.uk/
        """
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise SunsetError(f"--host {host}: the replica is served on loopback only")
        site = site or default_out("replica")
        ensure_replica(site, pages, seed, theme, successor=successor)
        stop = threading.Event()
        # SIGINT as well as SIGTERM: started as a background job, a process
        # inherits SIGINT ignored and Ctrl-C would never reach it.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        try:
            with serve(site, host, legacy_port, new_port, delay_ms, access_log) as run:
                click.echo(f"legacy site:    {run.legacy_url}  (http://{run.legacy_host}/)")
                click.echo(f"successor site: {run.new_url}  (http://{run.new_host}/)")
                for entry in run.connect_to:
                    click.echo(f"--connect-to {entry}")
                click.echo("Ctrl-C to stop.")
                try:
                    while not stop.wait(0.5):
                        pass
                except KeyboardInterrupt:
                    pass
                click.echo(f"stopped after {run.requests:,} requests", err=True)
        except OSError as exc:
            raise SunsetError(str(exc)) from None

    @main.command("demo")
    @click.option(
        "--out",
        type=click.Path(path_type=Path),
        default=None,
        help="Folder for everything the demo writes (default output/demo).",
    )
    @click.option("--pages", type=PAGES, default=400, show_default=True)
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option(
        "--successor",
        type=click.Choice(SUCCESSORS),
        default="reused",
        show_default=True,
        help=SUCCESSOR_HELP,
    )
    def demo(out: Path | None, pages: int, seed: int, successor: str) -> None:
        """Run the whole pipeline against the shipped replica, served on loopback.

        Generates the replica, serves it under its real host names, runs every
        stage that is built, stops the servers and prints a summary.

        \b
        Examples:
          sunset demo
          sunset demo --pages 2000 --out output/demo-2k
          sunset demo --successor rewritten --out output/demo-rewritten
        """
        out = out or default_out("demo")
        started = time.monotonic()
        m = ensure_replica(out / "replica", pages, seed, "protostar", successor=successor)
        rows: list[tuple[str, object]] = _manifest_rows(m)
        with serve(out / "replica", access_log=out / "replica-access.jsonl") as run:
            rows.extend(_smoke_check(run))
            rows.extend(_demo_crawl(out, run))
            rows.extend(_demo_crawl(out, run, successor=True))
        rows.append(("servers", "stopped"))
        rows.extend(_demo_transform(out))
        rows.extend(_demo_redirects(out))
        rows.extend(_demo_package(out))
        rows.append(("seconds", round(time.monotonic() - started, 1)))
        summary_table(f"sunset demo — output in {out}", rows)
        wacz = out / "crawl" / "demo.wacz"
        # The command as this run was started, so it works without an activated venv.
        exe = sys.argv[0] if Path(sys.argv[0]).name == "sunset" else f"{sys.executable} -m sunset"
        click.echo(f"\nBrowse the archive as it was captured:\n  {exe} replay {wacz}")


def _smoke_check(run: object) -> list[tuple[str, object]]:
    """Fetch a few URLs under the real host names, as a crawler will."""
    # Here, not at the top: every sunset command imports this module, and
    # requests alone took a sixth of a second to import.
    import requests

    from replica.server import Running

    assert isinstance(run, Running)
    session = requests.Session()
    checks = [
        (run.legacy_url, run.legacy_host, "/robots.txt", 200),
        (run.legacy_url, run.legacy_host, "/sitemap.xml", 200),
        (run.legacy_url, run.legacy_host, "/", 200),
        (run.new_url, run.new_host, "/sitemap.xml", 200),
    ]
    ok = 0
    for base, host, path, want in checks:
        try:
            r = session.get(
                base.rstrip("/") + path, headers={"Host": host}, timeout=10, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise SunsetError(f"the replica did not answer {host}{path}: {exc}") from None
        if r.status_code != want:
            raise SunsetError(f"the replica answered {r.status_code} for {host}{path}")
        ok += 1
    return [("replica served", f"{ok}/{len(checks)} checks answered on loopback")]


def _demo_crawl(out: Path, run: object, successor: bool = False) -> list[tuple[str, object]]:
    """Crawl the served replica (or its successor) under its real host names."""
    import shutil

    from crawler.run import CrawlOptions, run_crawl
    from replica.server import Running
    from sunset.profile import load_profile, parse_connect_to

    assert isinstance(run, Running)
    profile = load_profile("demo")
    if successor:
        profile = profile.successor_profile()
    crawl_dir = out / ("successor" if successor else "crawl")
    # The demo's crawl is its own output: a rerun replaces it rather than resuming.
    shutil.rmtree(crawl_dir, ignore_errors=True)
    if successor:
        # Twisted's reactor runs once per process: the second crawl gets its own.
        import subprocess
        import sys

        connect = [a for entry in run.connect_to for a in ("--connect-to", entry)]
        cmd = [sys.executable, "-m", "sunset", "crawl", "-p", "demo", "--successor"]
        cmd += ["--out", str(crawl_dir), "--name", "demo-successor", *connect]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise SunsetError(f"the crawl of the successor failed (exit {done.returncode})")
    else:
        run_crawl(
            CrawlOptions(
                profile=profile,
                out=crawl_dir,
                name="demo",
                connect_to=[parse_connect_to(c) for c in run.connect_to],
            )
        )
    summary = json.loads((crawl_dir / "crawl.json").read_text())
    st = summary["stats"]
    label = "crawl of the successor" if successor else "crawl"
    return [
        (
            label,
            f"{st.get('pages', 0):,} pages, {st.get('responses', 0):,} responses in "
            f"{len(summary['warc_files'])} WARC file(s)",
        ),
        (f"{label} output", str(crawl_dir)),
    ]


def _demo_transform(out: Path) -> list[tuple[str, object]]:
    from sunset.profile import load_profile
    from transform.run import TransformOptions, run_transform

    crawl_dir = out / "crawl"
    _code, summary = run_transform(
        TransformOptions(
            crawl_dir=crawl_dir, out=crawl_dir / "content", profile=load_profile("demo")
        )
    )
    return [
        (
            "transform",
            f"{summary.pages:,} pages ({summary.content_pages:,} content,"
            f" {summary.listings:,} listings), {summary.skipped:,} captures skipped",
        ),
        ("transform output", str(crawl_dir / "content")),
    ]


def _demo_package(out: Path) -> list[tuple[str, object]]:
    from replay.package import build_wacz
    from replay.report import write_report
    from replay.verify import verify

    crawl_dir = out / "crawl"
    packed = build_wacz(crawl_dir, crawl_dir / "demo.wacz")
    checked = verify(packed.wacz)
    if checked.problems:
        raise SunsetError(
            f"verify found {len(checked.problems)} problem(s) in the WACZ just written:"
            f" {checked.problems[0].file}: {checked.problems[0].message}"
        )
    report, _audit = write_report(crawl_dir)
    return [
        (
            "package",
            f"{packed.wacz} ({packed.size:,} bytes, {packed.warc_files} WARC file(s),"
            f" {packed.pages:,} pages)",
        ),
        (
            "verify",
            f"every digest, file hash and index line checked: no problems ({checked.seconds:.1f}s)",
        ),
        ("audit report", str(report)),
    ]


def _demo_redirects(out: Path) -> list[tuple[str, object]]:
    from redirects.check import check
    from redirects.evaluate import evaluate
    from redirects.run import RedirectOptions, run_redirects
    from sunset.profile import load_profile

    crawl_dir = out / "crawl"
    summary = run_redirects(
        RedirectOptions(
            crawl_dir=crawl_dir, profile=load_profile("demo"), new_crawl=out / "successor"
        )
    )
    checked = check(summary.out)
    scores = evaluate(out / "replica" / "ground-truth" / "urls.jsonl", summary.out)
    (summary.out / "accuracy.json").write_text(json.dumps(scores, indent=2) + "\n")
    return [
        (
            "redirects",
            f"{summary.rows:,} legacy URLs mapped, {summary.refused:,} left out,"
            f" report {summary.out / 'report.html'}",
        ),
        (
            "redirects check (nginx)",
            f"{checked.passed:,} of {checked.requested:,} answered as expected",
        ),
        (
            "accuracy vs ground truth",
            f"top-1 {scores['top1']:.1%} of {scores['with_successor']:,} URLs with a successor;"
            f" {scores['archived_share']:.1%} of {scores['without_successor']:,} without one"
            f" go to the archive; {scores['answered_301_share']:.1%} answered 301",
        ),
    ]
