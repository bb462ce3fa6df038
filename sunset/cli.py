"""The ``sunset`` command line.

New commands are added with ``@main.command()`` (or ``@main.group()``) at
module level; the error handling in :class:`SunsetGroup` then applies to them
without further work.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NoReturn

import click

from sunset import __version__
from sunset.errors import Interrupted, NotBuiltYet, SunsetError
from sunset.paths import default_out
from sunset.profile import (
    ConnectTo,
    ProfileError,
    list_profiles,
    load_profile,
    parse_connect_to,
)

__all__ = ["default_out", "main"]

INTERRUPTED_EXIT = 130  # what shells report for SIGINT, so scripts can tell


def _error_line(message: str) -> str:
    # One line no matter what a message contains, so logs stay greppable.
    return "sunset: error: " + " ".join(str(message).split())


class SunsetGroup(click.Group):
    """A click group that reports SunsetError and Ctrl-C in one line, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Interrupted as exc:
            click.echo("sunset: interrupted: " + " ".join(str(exc).split()), err=True)
            raise click.exceptions.Exit(exc.exit_code) from None
        except SunsetError as exc:
            click.echo(_error_line(str(exc)), err=True)
            raise click.exceptions.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            # click would print "Aborted!" and exit 1, which scripts cannot
            # tell apart from a real failure.
            click.echo("sunset: interrupted", err=True)
            raise click.exceptions.Exit(INTERRUPTED_EXIT) from None

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        # click's standalone mode prints usage errors as three lines (Usage,
        # Try, Error); run it non-standalone so every bad input, including a
        # bad option value, is reported in the project's single-line form.
        try:
            # Non-standalone click returns the code of a ctx.exit() instead of
            # raising it; commands themselves return None.
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.Exit as exc:
            raise SystemExit(exc.exit_code) from None
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "sunset"
            click.echo(_error_line(f"{exc.format_message()} (see '{where} --help')"), err=True)
            raise SystemExit(exc.exit_code) from None
        except click.ClickException as exc:
            click.echo(_error_line(exc.format_message()), err=True)
            raise SystemExit(exc.exit_code) from None
        except click.Abort:
            click.echo("sunset: interrupted", err=True)
            raise SystemExit(INTERRUPTED_EXIT) from None
        except SunsetError as exc:
            # Errors raised while parsing the group's own options happen
            # before invoke(); catch them here too so the contract has no gaps.
            click.echo(_error_line(str(exc)), err=True)
            raise SystemExit(exc.exit_code) from None
        raise SystemExit(code if isinstance(code, int) else 0)


class ConnectToType(click.ParamType):
    """``--connect-to HOST:PORT:ADDR:PORT2``, checked while parsing options."""

    name = "HOST:PORT:ADDR:PORT2"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, ConnectTo):
            return value
        try:
            return parse_connect_to(value)
        except ValueError as exc:
            self.fail(f"{exc}, got {value!r}", param, ctx)


CONNECT_TO = ConnectToType()
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _not_built(command: str, issue: int) -> NoReturn:
    raise NotBuiltYet(f"'sunset {command}' is not built yet (issue #{issue})")


def _profile_option(required: bool = True) -> Any:
    help_text = "Shipped profile name (see 'sunset profile list') or path to a .toml file."
    if not required:
        help_text += " Default: the profile recorded by the crawl."
    return click.option(
        "--profile",
        "-p",
        "profile_ref",
        metavar="NAME_OR_PATH",
        required=required,
        help=help_text,
    )


def _out_option(what: str) -> Any:
    return click.option(
        "--out",
        "-o",
        type=click.Path(path_type=Path),
        default=None,
        help=f"Where to write {what}.",
    )


@click.group(cls=SunsetGroup, context_settings=CONTEXT)
@click.version_option(
    __version__, "--version", "-V", prog_name="sunset", message="%(prog)s %(version)s"
)
def main() -> None:
    """Retire a legacy website without losing it.

    sunset crawls the old site into standard WARC files, extracts the real
    content from its page template, maps every old URL to its new home (or to
    a web archive) as nginx redirects, and packages the result so it can be
    verified, replayed and reported on long after the server is switched off.
    Each site is described by a profile (see 'sunset profile list').

    \b
    Pipeline:
      crawl -> transform -> redirects -> package / verify / replay / report

    Output goes to output/NAME/ under the current directory unless --out is given.
    """


# ---------------------------------------------------------------------------
# profile


@main.group("profile", context_settings=CONTEXT)
def profile_group() -> None:
    """List, show and check site profiles.

    \b
    Examples:
      sunset profile list
      sunset profile show wigan
      sunset profile check ./my-site.toml
    """


@profile_group.command("list", short_help="List the shipped profiles.")
def profile_list() -> None:
    """List the profiles shipped with sunset, with the site each describes.

    \b
    Examples:
      sunset profile list
    """
    for name in list_profiles():
        try:
            title = load_profile(name).site.name
        except ProfileError as exc:
            # One broken shipped file should not hide the others.
            title = f"(invalid: {exc})"
        click.echo(f"{name}\t{title}")


@profile_group.command("show", short_help="Print a profile with all defaults filled in.")
@click.argument("name_or_path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
def profile_show(name_or_path: str, as_json: bool) -> None:
    """Print the resolved profile: every key, defaults included.

    The TOML output is itself a valid profile, so it is a good starting
    point for a new site.

    \b
    Examples:
      sunset profile show wigan
      sunset profile show demo --json
      sunset profile show wigan > my-site.toml
    """
    profile = load_profile(name_or_path)
    data = profile.to_dict()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(f"# profile {profile.name} ({profile.path}), defaults filled in")
    click.echo(_to_toml(data), nl=False)


@profile_group.command("check", short_help="Validate a profile.")
@click.argument("name_or_path")
def profile_check(name_or_path: str) -> None:
    """Validate a profile; print 'ok: PATH' or one line saying what is wrong.

    Exits 0 when the profile is valid and 2 when it is not.

    \b
    Examples:
      sunset profile check wigan
      sunset profile check ./my-site.toml
    """
    profile = load_profile(name_or_path)
    click.echo(f"ok: {profile.path}")


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Literal strings keep regexes readable (no doubled backslashes).
        if "'" not in value and not any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return f"'{value}'"
        return json.dumps(value)
    if isinstance(value, list):
        items = [_toml_scalar(v) for v in value]
        if sum(len(i) + 2 for i in items) < 70:
            return "[" + ", ".join(items) + "]"
        return "[\n" + "".join(f"    {i},\n" for i in items) + "]"
    return str(value)  # dates: TOML's own YYYY-MM-DD


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _to_toml(data: dict[str, dict[str, Any]]) -> str:
    lines: list[str] = []
    for table, values in data.items():
        subtables = {k: v for k, v in values.items() if isinstance(v, dict)}
        lines.append(f"\n[{table}]")
        for key, value in values.items():
            if key not in subtables:
                lines.append(f"{_toml_key(key)} = {_toml_scalar(value)}")
        for key, sub in subtables.items():
            lines.append(f"\n[{table}.{_toml_key(key)}]")
            lines.extend(f"{_toml_key(k)} = {_toml_scalar(v)}" for k, v in sub.items())
    return "\n".join(lines).lstrip("\n") + "\n"


# ---------------------------------------------------------------------------
# Pipeline stages. Not built yet: their options are the intended interface
# so scripts and docs can be written against it; each body says which issue
# will deliver it.


@main.command(short_help="Crawl a site into WARC files, CDXJ index and crawl log.")
@_profile_option()
@click.option("--name", help="Run name; output goes to output/NAME/. Default: the profile name.")
@_out_option("the WARC files and crawl log (default: output/NAME/)")
@click.option(
    "--connect-to",
    "connect_to",
    type=CONNECT_TO,
    multiple=True,
    help="Send requests for HOST:PORT to ADDR:PORT2, as curl does. Repeatable.",
)
@click.option(
    "--start-url",
    "start_urls",
    multiple=True,
    metavar="URL",
    help="Override the profile's start URLs. Repeatable.",
)
@click.option(
    "--successor",
    is_flag=True,
    help="Crawl the profile's successor site instead (its inventory for 'sunset redirects').",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted crawl in the same folder.")
@click.option(
    "--max-pages",
    type=click.IntRange(0),
    default=0,
    help="Stop queueing new URLs after this many (0 = no limit).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Requests in flight per host (overrides the profile).",
)
@click.option(
    "--delay",
    type=click.FloatRange(0),
    default=None,
    help="Seconds between requests to one host (overrides the profile).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Seconds allowed for one fetch (overrides the profile).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=None,
    help="Retries after a 5xx or a network error (overrides the profile).",
)
@click.option(
    "--max-body-size",
    default=None,
    metavar="SIZE",
    help="Cut bodies at this size, e.g. 50MB (overrides the profile).",
)
@click.option(
    "--warc-max-size",
    default=None,
    metavar="SIZE",
    help="Start a new WARC file after this size, e.g. 1GB (overrides the profile).",
)
@click.option(
    "--ignore-robots", is_flag=True, help="Do not apply robots.txt (it is still archived)."
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    envvar="SUNSET_REDIS",
    default=None,
    help="Share this crawl with other workers through Redis, e.g. redis://host:6379/0"
    " (env SUNSET_REDIS).",
)
@click.option("--worker", default=None, help="This worker's id in a shared crawl (default: new).")
@click.option(
    "--finish",
    is_flag=True,
    help="After a shared crawl: check, index and merge the workers' files into one crawl.",
)
def crawl(
    profile_ref: str,
    name: str | None,
    out: Path | None,
    connect_to: tuple[ConnectTo, ...],
    start_urls: tuple[str, ...],
    successor: bool,
    resume: bool,
    max_pages: int,
    concurrency: int | None,
    delay: float | None,
    timeout: float | None,
    retries: int | None,
    max_body_size: str | None,
    warc_max_size: str | None,
    ignore_robots: bool,
    redis_url: str | None,
    worker: str | None,
    finish: bool,
) -> None:
    """Crawl a site into WARC files, politely and without falling into traps.

    Follows links within the profile's allowed hosts, honours robots.txt
    and the crawl delay, and records every request and response byte for
    byte. Writes warc/, indexes/index.cdxj, crawl.log, pages.jsonl and
    crawl.json (see crawler/CONTRACT.md).

    \b
    Examples:
      sunset crawl --profile wigan
      sunset crawl -p wigan --name wigan-2024 --resume
      sunset crawl -p demo --connect-to www.wiganboroughccg.nhs.uk:80:127.0.0.1:8001
      sunset crawl -p wigan --successor
      sunset crawl -p wigan --redis redis://10.0.0.5:6379/0     (on each machine)
      sunset crawl -p wigan --redis redis://10.0.0.5:6379/0 --finish
    """
    from crawler.run import CrawlOptions, run_crawl
    from sunset.profile import parse_size

    profile = load_profile(profile_ref)
    if successor:
        profile = profile.successor_profile()
    if start_urls:
        profile = profile.with_overrides(start_urls=list(start_urls))
    run_name = name or (profile.path.stem if profile.path else "crawl")
    if successor and not name:
        run_name += "-successor"
    if redis_url is not None and not redis_url.strip():
        raise SunsetError("--redis is empty; give the Redis URL, e.g. redis://127.0.0.1:6379/0")
    if worker is not None and not redis_url:
        raise SunsetError("--worker names a worker of a shared crawl; give --redis too")
    if finish and not redis_url:
        raise SunsetError(
            "--finish needs --redis (the crawl's Redis), to check that no work is left"
        )
    if finish and (resume or worker is not None):
        raise SunsetError(
            "--finish merges a stopped shared crawl; it takes no --resume or --worker"
        )
    if worker is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}", worker):
        raise SunsetError(
            f"--worker {worker!r}: use up to 40 letters, digits, '_', '-' and '.' (it goes in file names)"
        )
    if finish:
        from crawler.finish import run_finish

        run_finish(out or default_out(run_name), run_name, redis_url)
        return
    sizes = {}
    for flag, value in (("--max-body-size", max_body_size), ("--warc-max-size", warc_max_size)):
        try:
            sizes[flag] = parse_size(value) if value is not None else None
        except ValueError as exc:
            raise SunsetError(f"{flag} {value}: {exc}") from None
    run_crawl(
        CrawlOptions(
            profile=profile,
            out=out or default_out(run_name),
            name=run_name,
            resume=resume,
            connect_to=list(connect_to),
            max_pages=max_pages,
            concurrency=concurrency,
            delay=delay,
            timeout=timeout,
            retries=retries,
            max_body_size=sizes["--max-body-size"],
            warc_max_size=sizes["--warc-max-size"],
            ignore_robots=ignore_robots,
            redis=redis_url,
            worker=worker,
        )
    )


@main.command(short_help="Extract clean content from a crawl.")
@click.argument("crawl_dir", type=click.Path(path_type=Path, file_okay=False))
@_profile_option(required=False)
@_out_option("the extracted content (default: CRAWL_DIR/content/)")
@click.option(
    "--rewrite-links",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="CSV",
    help="A redirects.csv (old,new): internal links are rewritten to the new URLs.",
)
@click.option("--no-rules", is_flag=True, help="Do not apply the profile's boilerplate rules.")
@click.option("--no-learned", is_flag=True, help="Do not apply the learned site template.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that extract pages (default: the CPU count, at most 4).",
)
@click.option(
    "--max-page-size",
    default="8MB",
    show_default=True,
    metavar="SIZE",
    help="A page longer than this (once decompressed) is cut here, and the cut logged.",
)
def transform(
    crawl_dir: Path,
    profile_ref: str | None,
    out: Path | None,
    rewrite_links: Path | None,
    no_rules: bool,
    no_learned: bool,
    workers: int | None,
    max_page_size: str,
) -> None:
    """Extract each page's real content, stripping the site template.

    Reads only the crawl's WARC files and CDXJ index. The template is
    learned from the site itself, then the profile's rules and a generic
    main-content fallback take out what is left; each page records what was
    removed and why. Writes pages/ (HTML, Markdown, JSON per page),
    pages.jsonl, attachments.csv, transform.log and transform.json (see
    transform/CONTRACT.md). Exit code 1 when some HTML captures were skipped.

    \b
    Examples:
      sunset transform output/wigan
      sunset transform output/wigan --profile ./wigan-tweaked.toml
      sunset transform output/demo/crawl --rewrite-links output/demo/crawl/redirects/redirects.csv
    """
    from sunset.profile import parse_size
    from transform.run import TransformError, TransformOptions, run_transform

    try:
        max_page_bytes = parse_size(max_page_size)
    except ValueError as exc:
        raise SunsetError(f"--max-page-size {max_page_size}: {exc}") from None
    profile = _crawl_profile(crawl_dir, profile_ref)
    try:
        code, summary = run_transform(
            TransformOptions(
                crawl_dir=crawl_dir,
                out=out or crawl_dir / "content",
                profile=profile,
                use_rules=not no_rules,
                use_learned=not no_learned,
                **({"workers": workers} if workers else {}),
                rewrite_links=rewrite_links,
                max_page_bytes=max_page_bytes,
            )
        )
    except TransformError as exc:
        raise SunsetError(str(exc)) from None
    from sunset.ui import summary_table

    summary_table(
        "transform",
        [
            ("HTML captures", summary.html_captures),
            ("pages written", summary.pages),
            ("  content / listings", f"{summary.content_pages} / {summary.listings}"),
            ("  multi-part articles", summary.multipart),
            ("duplicate URLs merged", summary.merged_urls),
            ("attachments", summary.attachments),
            ("template learned from", f"{summary.template.get('pages_learned', 0)} pages"),
            ("skipped", summary.skipped),
            *[(f"  {k}", v) for k, v in summary.reasons.items()],
            ("not HTML (noted in the log)", summary.not_html),
            ("seconds", summary.seconds),
            ("output", str(out or crawl_dir / "content")),
        ],
    )
    if code:
        raise click.exceptions.Exit(code)


def _crawl_profile(crawl_dir: Path, profile_ref: str | None) -> Any:
    """The profile given, else the one the crawl recorded in crawl.json."""
    if not crawl_dir.is_dir():
        raise SunsetError(f"{crawl_dir}: no such crawl folder")
    if profile_ref is None:
        try:
            profile_ref = json.loads((crawl_dir / "crawl.json").read_text())["profile"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SunsetError(
                f"{crawl_dir}: no crawl.json naming the profile; pass --profile"
            ) from None
    return load_profile(str(profile_ref))


class _BuildByDefault(click.Group):
    """``sunset redirects DIR`` builds; ``sunset redirects check DIR`` checks."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["build", *args]
        return super().parse_args(ctx, args)


@main.group(
    "redirects",
    cls=_BuildByDefault,
    context_settings=CONTEXT,
    short_help="Write nginx redirects for every old URL, and check them with nginx.",
)
def redirects_group() -> None:
    """Map every old URL to its new page or its archived copy, as nginx and Apache config.

    \b
    sunset redirects CRAWL_DIR [options]     build the map (same as 'build')
    sunset redirects check CRAWL_DIR         prove it with a real nginx on loopback

    \b
    Examples:
      sunset redirects output/wigan --new-crawl output/wigan-successor
      sunset redirects output/wigan --new-sitemap https://healthierwigan.nhs.uk/sitemap.xml
      sunset redirects output/wigan --overrides edited.csv   # a reviewed redirects.csv
      sunset redirects output/wigan                          # again: same inputs, same reviews
      sunset redirects check output/wigan
    """


@redirects_group.command("build")
@click.argument("crawl_dir", type=click.Path(path_type=Path, file_okay=False))
@_profile_option(required=False)
@_out_option("the nginx map, snippet, CSV and report (default: CRAWL_DIR/redirects/)")
@click.option(
    "--new-crawl",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A 'sunset crawl --successor' of the new site: URLs, titles and text.",
)
@click.option(
    "--new-sitemap",
    default=None,
    metavar="URL_OR_FILE",
    help="The new site's sitemap.xml (URLs only).",
)
@click.option(
    "--new-csv",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A CSV list of the new site: url[,title,text].",
)
@click.option(
    "--overrides",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="An edited redirects.csv (or any CSV with old,new columns): the rows whose new"
    " target differs from the proposal, or whose method says override, become reviews.",
)
@click.option(
    "--install-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory the nginx snippet will include the maps from (default: the output).",
)
@click.option(
    "--clear-reviews",
    is_flag=True,
    help="Forget the reviews stored by earlier runs (OUT/reviews.csv) before this one.",
)
@click.option(
    "--forget-inputs",
    is_flag=True,
    help="Do not reuse the last run's inventory, --install-dir and --profile (OUT/inputs.json).",
)
def redirects_build(
    crawl_dir: Path,
    profile_ref: str | None,
    out: Path | None,
    new_crawl: Path | None,
    new_sitemap: str | None,
    new_csv: Path | None,
    overrides: Path | None,
    install_dir: Path | None,
    clear_reviews: bool,
    forget_inputs: bool,
) -> None:
    """Map every crawled URL to the successor site or the web archive.

    Reads the crawl (and 'sunset transform' output when present) and an
    inventory of the new site; writes redirects.map, redirects.conf,
    redirects.apache.txt, redirects.csv (with the top 3 candidate pages of
    each old page) and report.html.

    \b
    The review loop:
      1. edit redirects.csv: set 'new' to the right page (often a candidate);
      2. feed it back whole: --overrides edited.csv. Rows you did not change
         keep their method and confidence; a changed row moves its page;
         a bad row stops the run (exit 2) naming its file and line, and
         nothing is written;
      3. the reviews are kept in OUT/reviews.csv and applied on every rerun,
         and a plain 'sunset redirects CRAWL_DIR' reuses the last run's
         --new-crawl/--new-sitemap/--new-csv, --install-dir and --profile.
      Undo one review with a plain old,new list that sets it back to the
      proposed target (or delete its line from reviews.csv); --clear-reviews
      forgets them all, --forget-inputs the recorded inputs.

    \b
    Examples:
      sunset redirects build output/wigan --new-crawl output/wigan-successor
      sunset redirects build output/wigan --out /etc/nginx/sunset/
      sunset redirects output/wigan --overrides edited.csv
      sunset redirects output/wigan            # same inputs and reviews again
    """
    from redirects.model import METHODS
    from redirects.review import INPUTS, REVIEWS, recall
    from redirects.run import RedirectOptions, run_redirects
    from sunset.ui import summary_table

    folder = out or crawl_dir / "redirects"
    given = {
        "new_crawl": new_crawl,
        "new_sitemap": new_sitemap,
        "new_csv": new_csv,
        "install_dir": install_dir,
        "profile": profile_ref,
    }
    recalled = recall(folder, given, forget=forget_inputs, clear_reviews=clear_reviews)
    if recalled.reused:
        click.echo(
            f"sunset: reusing the inputs of the last run ({folder / INPUTS}): "
            + "; ".join(recalled.reused)
            + " (name others to replace them, or --forget-inputs)",
            err=True,
        )
    if recalled.reviews:
        n = recalled.reviews
        click.echo(
            f"sunset: applying {n} stored review{'s' if n != 1 else ''} ({folder / REVIEWS}"
            + (f", first given in {recalled.last_overrides}" if recalled.last_overrides else "")
            + "); --clear-reviews forgets them",
            err=True,
        )
    if recalled.cleared:
        n = recalled.cleared
        click.echo(
            f"sunset: --clear-reviews: dropping {n} stored review{'s' if n != 1 else ''}"
            f" ({folder / REVIEWS})",
            err=True,
        )
    values = recalled.values
    profile = _crawl_profile(crawl_dir, values["profile"])

    def path_or_none(key: str) -> Path | None:
        return Path(values[key]) if values.get(key) else None

    summary = run_redirects(
        RedirectOptions(
            crawl_dir=crawl_dir,
            profile=profile,
            out=out,
            new_crawl=path_or_none("new_crawl"),
            new_sitemap=values["new_sitemap"],
            new_csv=path_or_none("new_csv"),
            overrides=overrides,
            install_dir=path_or_none("install_dir"),
            clear_reviews=clear_reviews,
            profile_ref=values["profile"],
        )
    )
    rows: list[tuple[str, object]] = [
        ("legacy URLs mapped", summary.rows),
        ("legacy pages", summary.groups),
        ("new-site pages", summary.new_pages),
    ]
    for method in METHODS:
        if summary.methods.get(method):
            rows.append((f"  {method}", summary.methods[method]))
    rows += [
        ("left out (see report)", summary.refused),
        ("reviews in force", summary.reviews),
        ("case collisions", summary.collisions),
        ("seconds", summary.seconds),
        ("report", summary.files.get("report", "")),
    ]
    summary_table(f"redirects — {summary.out}", rows)
    from sunset.ui import console

    for warning in summary.warnings:
        console.print(f"warning: {warning}", highlight=False)


@redirects_group.command("check")
@click.argument("crawl_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The redirects folder to check (default: CRAWL_DIR/redirects/).",
)
@click.option(
    "--no-variants",
    is_flag=True,
    help="Only request the URLs in redirects.csv, not uncrawled variants of them.",
)
def redirects_check(crawl_dir: Path, out: Path | None, no_variants: bool) -> None:
    """Serve the generated config with a real nginx on loopback and request every old URL.

    Every URL in redirects.csv must get exactly one 301 (or 410) whose
    Location is its target; uncrawled variants (a tracking parameter, upper
    case, a toggled trailing slash) must land where their page does.
    Exits 1 when any answer is wrong.

    \b
    Examples:
      sunset redirects check output/wigan
    """
    from redirects.check import check
    from sunset.ui import summary_table

    folder = out or crawl_dir / "redirects"
    if not (folder / "redirects.csv").is_file():
        raise SunsetError(f"{folder}: no redirects.csv (run 'sunset redirects {crawl_dir}' first)")
    result = check(folder, variants=not no_variants)
    rows: list[tuple[str, object]] = [
        ("URLs requested", result.requested),
        ("answered as expected", result.passed),
        ("wrong answers", len(result.failures)),
    ]
    for failure in result.failures[:10]:
        rows.append(("  " + failure.url[:70], f"{failure.status} {failure.location}"[:90]))
    summary_table(f"redirects check — {folder}", rows)
    if result.failures:
        raise click.exceptions.Exit(1)


# The auditors' side lives in replay/; each command's body is one call into it.


@main.command(short_help="Package a crawl as a WACZ file.")
@click.argument("crawl_dir", type=click.Path(path_type=Path, file_okay=False))
@_out_option("the WACZ file (default: CRAWL_DIR/NAME.wacz)")
def package(crawl_dir: Path, out: Path | None) -> None:
    """Package a crawl's WARC files, index and page list as one WACZ 1.1.1 file.

    \b
    Examples:
      sunset package output/wigan
      sunset package output/wigan --out /srv/archives/wigan.wacz
    """
    from replay.package import cli_package

    cli_package(crawl_dir, out)


@main.command(short_help="Check an archive's fixity, record by record.")
@click.argument("archive", type=click.Path(path_type=Path))
def verify(archive: Path) -> None:
    """Recompute every digest of a crawl folder or WACZ file and check its index.

    Exits 1 when anything was altered, naming the file, offset and URL.

    \b
    Examples:
      sunset verify output/wigan/wigan.wacz
      sunset verify output/wigan
    """
    from replay.verify import cli_verify

    code = cli_verify(archive)
    if code:
        raise click.exceptions.Exit(code)


@main.command(short_help="Browse an archive locally with pywb.")
@click.argument("archive", type=click.Path(path_type=Path))
@click.option(
    "--host", "bind", default="127.0.0.1", show_default=True, help="Loopback address to listen on."
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 = any free port).",
)
def replay(archive: Path, bind: str, port: int) -> None:
    """Serve a crawl folder or WACZ with pywb so the old site can be browsed as it was.

    \b
    Examples:
      sunset replay output/wigan/wigan.wacz
      sunset replay output/wigan --port 9000
    """
    from replay.serve import cli_replay

    cli_replay(archive, bind, port)


@main.command(short_help="Write an HTML audit report for a crawl.")
@click.argument("crawl_dir", type=click.Path(path_type=Path, file_okay=False))
@_out_option("the report (default: CRAWL_DIR/report.html)")
def report(crawl_dir: Path, out: Path | None) -> None:
    """An audit report: how the crawl was made, what it holds, what failed, fixity digests.

    \b
    Examples:
      sunset report output/wigan
      sunset report output/wigan --out audit.html
    """
    from replay.report import cli_report

    cli_report(crawl_dir, out)


# The replica commands (demo, serve-replica, replica) live with the replica
# tooling; registering them here keeps one `sunset` entry point.
from sunset.replica_commands import register as _register_replica_commands  # noqa: E402

_register_replica_commands(main)
