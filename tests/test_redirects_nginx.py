"""redirects.nginx, .apache, .csvio: the files a real nginx loads and answers from, on loopback."""

from __future__ import annotations

import html
import http.client
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from redirects.apache import APACHE_MAP, GONE_MARK, write_apache
from redirects.csvio import COLUMNS, read_csv, read_overrides, write_csv
from redirects.model import GONE, Row, Site
from redirects.nginx import (
    CANONICAL_MAP,
    EXACT_MAP,
    PATHS_MAP,
    NginxResult,
    RedirectPlan,
    TargetError,
    normalise_target,
    parse_target,
    plan,
    request_target,
    write_nginx,
)
from sunset.errors import SunsetError
from sunset.nginx import NGINX, check_conf, minimal_conf, quote, running_nginx

pytestmark = [
    pytest.mark.skipif(
        not Path(NGINX).is_file(), reason="nginx is not installed (./dev setup installs it)"
    ),
    pytest.mark.timeout(120),
]

LEGACY = "https://www.wiganboroughccg.nhs.uk"
NEW = "https://healthierwigan.nhs.uk"
ARCHIVE = "https://webarchive.nationalarchives.gov.uk/ukgwa/20191104000000/" + LEGACY
SITE = Site(
    legacy_base=LEGACY,
    legacy_hosts=("www.wiganboroughccg.nhs.uk", "wiganboroughccg.nhs.uk"),
    new_home=NEW + "/",
    allowed_target_hosts=("healthierwigan.nhs.uk", "webarchive.nationalarchives.gov.uk"),
    significant_query_params=("option", "view", "id", "start", "limitstart", "showall"),
    fallback_prefix=ARCHIVE,
)
HOST = "www.wiganboroughccg.nhs.uk"
ARTICLE = "/index.php?option=com_content&view=article&id=600"


def row(old: str, new: str, confidence: float = 0.9, status: int = 301) -> Row:
    return Row(old=LEGACY + old, new=new, method="exact", confidence=confidence, status=status)


@dataclass
class Answer:
    status: int
    location: str | None
    body: bytes
    content_type: str | None


class Client:
    """One keep-alive connection that sends request targets byte for byte."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, target: str, host: str = HOST) -> Answer:
        self.conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        self.conn.putheader("Host", host)
        self.conn.endheaders()
        r = self.conn.getresponse()
        body = r.read()
        locations = r.msg.get_all("Location") or []
        assert len(locations) <= 1, target
        return Answer(r.status, locations[0] if locations else None, body, r.getheader("Type"))

    def close(self) -> None:
        self.conn.close()


@contextmanager
def serving(
    rows: list[Row], tmp_path: Path, site: Site = SITE
) -> Iterator[tuple[Client, NginxResult, str]]:
    """Write the files with listen on a free loopback port, load them in nginx, serve.

    Yields a client, the writer's result and ``nginx -t``'s output.
    """
    out = tmp_path / "out"
    work = tmp_path / "work"
    work.mkdir()
    results: list[NginxResult] = []

    def write(port: int) -> Path:
        results.append(write_nginx(rows, site, out, listen=f"127.0.0.1:{port}"))
        return minimal_conf(work, f"    include {quote(str(out / 'redirects.conf'))};")

    with running_nginx(write, work) as nginx:
        tested = check_conf(nginx.conf, work)
        client = Client(nginx.port)
        try:
            yield client, results[-1], tested
        finally:
            client.close()


def expect_301(answer: Answer, location: str, what: str) -> None:
    assert (answer.status, answer.location) == (301, location), what


# -- nginx, hand-made rows ---------------------------------------------------------

HAND_ROWS = [
    row(ARTICLE + "&Itemid=282", NEW + "/flu-clinics"),
    row(ARTICLE + "&Itemid=300", NEW + "/flu-clinics"),
    row("/index.php?option=com_content&view=article&id=601&Itemid=282", NEW + "/other"),
    row("/index.php?option=com_content&view=category&id=5", NEW + "/news/"),
    row("/index.php", NEW + "/", confidence=0.5),
    row("/your-ccg/news", NEW + "/news/"),
    row("/your-ccg/news?start=10", NEW + "/news/?page=2"),
    row("/About-Us/", NEW + "/about/"),
    row("/old-consultation", ARCHIVE + "/old-consultation?a=1&b=2", status=GONE),
    row("/search", NEW + '/search?q=a b"c$d'),
]


def test_exact_canonical_path_case_slash_fallback_and_gone(tmp_path: Path) -> None:
    with serving(HAND_ROWS, tmp_path) as (client, result, tested):
        assert "[warn]" not in tested and "[emerg]" not in tested
        assert not result.refused and not result.collisions
        assert result.written["request_uri"] == len(HAND_ROWS)
        decided = plan(HAND_ROWS, SITE)
        probes = {
            # exact, each crawled URL
            **{request_target(r.old): r.new for r in HAND_ROWS if r.status == 301},
            # canonical: a tracking parameter, another order, an unknown Itemid
            ARTICLE + "&Itemid=282&utm_source=x": NEW + "/flu-clinics",
            "/index.php?id=600&Itemid=5&view=article&option=com_content": NEW + "/flu-clinics",
            ARTICLE + "&Itemid=999": NEW + "/flu-clinics",
            "/index.php?OPTION=com_content&view=article&ID=600": NEW + "/flu-clinics",
            # an article nobody crawled: the path's own row (no query) decides
            "/index.php?option=com_content&view=article&id=999": NEW + "/",
            # path: a page number nobody crawled, any query on a known path
            "/your-ccg/news?start=99": NEW + "/news/",
            "/your-ccg/news?fbclid=abc": NEW + "/news/",
            # case and trailing slash
            "/YOUR-CCG/NEWS": NEW + "/news/",
            "/your-ccg/news/": NEW + "/news/",
            "/about-us": NEW + "/about/",
            "/ABOUT-US/?x=1": NEW + "/about/",
            # decoded and normalised the way nginx does it
            "/your-ccg//news": NEW + "/news/",
            "/your-ccg/./extra/../news": NEW + "/news/",
            "/your%2Dccg/news": NEW + "/news/",
            # unknown: the archive's copy of exactly that URL
            "/no/such/page?x=1&y=%22": ARCHIVE + "/no/such/page?x=1&y=%22",
            "/": ARCHIVE + "/",
        }
        probes[request_target(HAND_ROWS[-1].old)] = NEW + "/search?q=a%20b%22c%24d"
        for target, location in probes.items():
            answer = client.get(target)
            expect_301(answer, location, target)
            assert decided.resolve(target) == (301, location), target
        # The apex name is served by the same block.
        expect_301(client.get("/your-ccg/news", host="wiganboroughccg.nhs.uk"), NEW + "/news/", "")

        archived = ARCHIVE + "/old-consultation?a=1&b=2"
        for target in ("/old-consultation", "/old-consultation?utm_source=x", "/OLD-consultation/"):
            gone = client.get(target)
            assert gone.status == 410 and gone.location is None, target
            assert f'<a href="{html.escape(archived)}">'.encode() in gone.body
            assert decided.resolve(target) == (410, archived)


def test_conf_is_readable_and_names_the_install_folder(tmp_path: Path) -> None:
    result = write_nginx(HAND_ROWS, SITE, tmp_path, include_dir=Path("/etc/nginx/sunset"))
    conf = (tmp_path / "redirects.conf").read_text()
    assert 'include "/etc/nginx/sunset/redirects.map";' in conf
    assert 'include "/etc/nginx/sunset/redirects-paths.map";' in conf
    assert "listen 80;" in conf
    assert 'server_name "www.wiganboroughccg.nhs.uk" "wiganboroughccg.nhs.uk";' in conf
    assert f'return 301 "{ARCHIVE}$request_uri";' in conf
    assert result.files["conf"] == tmp_path / "redirects.conf"
    assert f"map_hash_bucket_size {result.hash.bucket_size};" in conf
    # The map files hold only comments and key-value lines.
    for name in (EXACT_MAP, CANONICAL_MAP, PATHS_MAP):
        for line in (tmp_path / name).read_text().splitlines():
            assert line.startswith("#") or re.fullmatch(r'"[^"]*" "[^"$]*";', line), line
    canonical = (tmp_path / CANONICAL_MAP).read_text()
    key = "/index.php?option=com_content&view=article&id=600&start=&limitstart=&showall="
    assert f'"{key}" "{NEW}/flu-clinics";' in canonical
    with pytest.raises(SunsetError, match="absolute"):
        write_nginx(HAND_ROWS, SITE, tmp_path, include_dir=Path("relative/dir"))


def test_home_page_fallback_without_archive(tmp_path: Path) -> None:
    site = Site(**{**SITE.__dict__, "fallback_prefix": ""})
    with serving(HAND_ROWS[:2], tmp_path, site) as (client, _, _):
        expect_301(client.get("/nowhere?x=1"), NEW + "/", "fallback")


def test_case_collisions_reported_and_nginx_still_loads(tmp_path: Path) -> None:
    rows = [
        row("/Page", NEW + "/a", confidence=0.5),
        row("/page", NEW + "/b", confidence=0.9),  # higher confidence wins
        row("/Tie", NEW + "/c", confidence=0.5),
        row("/tie", NEW + "/d", confidence=0.5),  # a tie: the lower-case key wins
        row("/First", NEW + "/e", confidence=0.5),
        row("/FIRST", NEW + "/f", confidence=0.5),  # a tie, neither lower case: first seen
        row("/Same", NEW + "/g"),
        row("/same", NEW + "/g"),  # agree: one entry, no collision
    ]
    with serving(rows, tmp_path) as (client, result, tested):
        assert "[emerg]" not in tested
        kept = {(c.map, c.key.lower()): c for c in result.collisions}
        assert {k[0] for k in kept} == {"request_uri", "canonical", "path"}
        exact = {k[1]: c for k, c in kept.items() if k[0] == "request_uri"}
        assert set(exact) == {"/page", "/tie", "/first"}
        assert exact["/page"].kept == NEW + "/b" and exact["/page"].key == "/page"
        assert exact["/page"].olds == [LEGACY + "/Page", LEGACY + "/page"]
        assert exact["/page"].targets == [NEW + "/a", NEW + "/b"]
        assert exact["/tie"].kept == NEW + "/d"
        assert exact["/first"].kept == NEW + "/e"
        assert result.written["request_uri"] == 4
        for target, location in {
            "/PAGE": "/b",
            "/page": "/b",
            "/Page?x=1": "/b",
            "/tIE": "/d",
            "/first/": "/e",
            "/SAME": "/g",
        }.items():
            expect_301(client.get(target), NEW + location, target)


OPEN_REDIRECTS = [
    "https://evil.example/",
    "//evil.example/",
    "https://healthierwigan.nhs.uk.evil.example/",
    "https://evil.example\\@healthierwigan.nhs.uk/",
    "https://healthierwigan.nhs.uk@evil.example/",
    "https://healthierwigan.nhs.uk:443@evil.example/",
    "https://evil.example%2F@healthierwigan.nhs.uk/",
    "https:/\\evil.example/",
    "https:evil.example",
    "javascript:alert(document.cookie)",
    "JaVaScRiPt://healthierwigan.nhs.uk/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "ftp://healthierwigan.nhs.uk/",
    "HTTPS://EVIL.EXAMPLE/",
    " https://evil.example/",
    "\thttps://healthierwigan.nhs.uk/",
    "https://healthierwigan.nhs.uk/\r\nSet-Cookie: x=1",
    "/relative/path",
    "",
    "https://xn--healthierwign-evil.example/",
    "https://healthierwigan。nhs。uk.evil.example/",
]


def test_open_redirect_targets_are_refused_never_written(tmp_path: Path) -> None:
    rows = [row(f"/bad-{i}", target) for i, target in enumerate(OPEN_REDIRECTS)]
    rows.append(row("/good", NEW + "/fine"))
    with serving(rows, tmp_path) as (client, result, _):
        assert [r.new for r in result.refused] == OPEN_REDIRECTS
        for refused in result.refused:
            assert refused.reason and "\n" not in refused.reason
        written = b"".join((tmp_path / "out" / m).read_bytes() for m in (EXACT_MAP, PATHS_MAP))
        assert b"evil" not in written.lower() and b"javascript" not in written.lower()
        for i in range(len(OPEN_REDIRECTS)):
            # Not in any map: the archive's copy, on the archive's host.
            expect_301(client.get(f"/bad-{i}"), f"{ARCHIVE}/bad-{i}", OPEN_REDIRECTS[i])
        expect_301(client.get("/good"), NEW + "/fine", "good")
    apache = write_apache(rows, SITE, tmp_path)
    assert [r.new for r in apache.refused] == OPEN_REDIRECTS
    assert "evil" not in apache.path.read_text().lower()


def test_targets_normalised_to_safe_ascii() -> None:
    allowed = ("healthierwigan.nhs.uk",)
    cases = {
        NEW + "/a b/$x/\"q'/<t>/{b}/|/^/`/é/%zz/%4a/%e9?q=1#frag#more": (
            NEW
            + "/a%20b/%24x/%22q%27/%3Ct%3E/%7Bb%7D/%7C/%5E/%60/%C3%A9/%25zz/%4A/%E9?q=1#frag%23more"
        ),
        "HTTPS://HealthierWigan.NHS.uk": NEW + "/",
        "https://healthierwigan.nhs.uk.:8443?x=1": "https://healthierwigan.nhs.uk:8443/?x=1",
        # A backslash after the host is a path to browsers; encoded, it stays one.
        "https://healthierwigan.nhs.uk\\evil.example": NEW + "/%5Cevil.example",
        NEW + "/;{}#": NEW + "/;%7B%7D#",
    }
    for url, expected in cases.items():
        assert normalise_target(url, allowed) == expected, url
    with pytest.raises(TargetError, match="longer"):
        normalise_target(NEW + "/" + "a" * 5000, allowed)
    with pytest.raises(SunsetError, match="fallback prefix"):
        write_nginx(
            [],
            Site(**{**SITE.__dict__, "fallback_prefix": "https://evil.example/"}),
            Path("/nonexistent"),
        )


def test_keys_no_request_can_carry_are_refused(tmp_path: Path) -> None:
    bad = {
        "/a b": "a space",
        "/a\tb": "control character",
        "/a\x00b": "control character",
        "/a%zzb": "nginx answers 400",
        "/a%4": "nginx answers 400",
        "/a%00b": "nginx answers 400",
        "/../etc/passwd": "nginx answers 400",
        "/a/%2e%2e/%2e%2e/b": "nginx answers 400",
        "/" + "x" * 4100: "longer than",
    }
    rows = [row(old, NEW + "/x") for old in bad]
    rows += [
        Row("https://other.example/page", NEW + "/x", "exact", 0.9),
        Row("mailto:someone@wiganboroughccg.nhs.uk", NEW + "/x", "exact", 0.9),
        row("/fine", NEW + "/x", status=302),
    ]
    result = write_nginx(rows, SITE, tmp_path)
    reasons = [r.reason for r in result.refused]
    assert len(reasons) == len(rows)
    for reason, why in zip(reasons, bad.values(), strict=False):
        assert why in reason
    assert "not one of the legacy hosts" in reasons[-3]
    assert "not an absolute http(s) URL" in reasons[-2]
    assert "neither 301 nor 410" in reasons[-1]
    assert result.written["request_uri"] == 0


def test_non_ascii_keys_are_sent_percent_encoded(tmp_path: Path) -> None:
    rows = [row("/café/ünïcode?q=Größe", NEW + "/cafe"), row("/中文#section", NEW + "/zh")]
    with serving(rows, tmp_path) as (client, result, _):
        assert not result.refused
        expect_301(client.get("/caf%C3%A9/%C3%BCn%C3%AFcode?q=Gr%C3%B6%C3%9Fe"), NEW + "/cafe", "")
        # The path map has the decoded bytes: lower-case escapes find it too.
        expect_301(client.get("/caf%c3%a9/%c3%bcn%c3%afcode?other=1"), NEW + "/cafe", "")
        expect_301(client.get("/%E4%B8%AD%E6%96%87"), NEW + "/zh", "fragment dropped")


def test_nginx_uri_parsing_matches_the_documented_cases() -> None:
    cases = {
        b"/a//b/./c/../d?x=1": (b"/a/b/d", b"x=1"),
        b"/a%2Fb%2F%2Fc": (b"/a/b/c", b""),
        b"/a/%2e%2e/b": (b"/b", b""),
        b"/a%3Fb?x=1#frag": (b"/a?b", b"x=1"),
        b"/a#b?x=1": (b"/a", b""),
        b"/a%23b%25c": (b"/a#b%c", b""),
        b"/a/.": (b"/a/", b""),
        b"/a/..": (b"/", b""),
        b"/a?x=%zz&y": (b"/a", b"x=%zz&y"),
    }
    for target, expected in cases.items():
        assert parse_target(target) == expected, target


# -- the hash sizes hold at 100,000 keys -------------------------------------------


def test_hundred_thousand_rows_write_fast_and_load_without_warnings(tmp_path: Path) -> None:
    rng = random.Random(7)

    def rows() -> Iterator[Row]:
        for i in range(100_000):
            if i % 2:
                old = f"/index.php?option=com_content&view=article&id={i}&Itemid={rng.randint(1, 400)}"
            else:
                old = f"/your-ccg/section-{i % 300}/{i}-an-article-title-with-words-{i}"
            yield row(old, f"{NEW}/page-{i % 5000}/", confidence=rng.random())

    started = time.perf_counter()
    result = write_nginx(rows(), SITE, tmp_path / "out")
    seconds = time.perf_counter() - started
    assert result.written == {"request_uri": 100_000, "canonical": 100_000, "path": 100_000}
    assert seconds < 15, f"{seconds:.1f} s to write 100,000 rows"
    assert result.hash.max_size == 2 * 100_000 + 1000
    conf = minimal_conf(tmp_path, f"include {quote(str(tmp_path / 'out' / 'redirects.conf'))};")
    started = time.perf_counter()
    output = check_conf(conf, tmp_path)
    assert "[warn]" not in output and "test is successful" in output, output
    assert time.perf_counter() - started < 10


# -- property test: hostile legacy URLs and targets ----------------------------------

HOSTILE = [
    '"', "'", " ", ";", "{", "}", "$", "#", "\\", "%", "%41", "%2e", "%2E", "%2F", "%2f",
    "%zz", "%4", "%00", "%0A", "%0d", "%09", "%20", "%22", "%5C", "%25", "%23", "%3F",
    "%C3%A9", "%FF", "\r", "\n", "\t", "\x00", "\x7f", "é", "中", "~", "\\", "`",
    "default", "include", "hostnames", "volatile", "..", ".", "/", "//", "?", "&", "=",
    "a", "B", "id=", "option=", "&Itemid=", "${x}", "$uri", "\\n", "\\\"", "*", "|", "<",
    ">", "^", "[", "]", "@", ":", "+", ",", "!",
]  # fmt: skip


def hostile_old(rng: random.Random) -> str:
    first = rng.choice(["~", "\\", "default", "include", "hostnames", "volatile", "a", "%7E", ""])
    parts = [first] + [rng.choice(HOSTILE) for _ in range(rng.randint(0, 12))]
    if rng.random() < 0.03:
        parts.append("x" * rng.randint(1000, 4200))  # near nginx's token limit, both sides
    return LEGACY + "/" + "".join(parts)


def hostile_target(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.05:
        return rng.choice(OPEN_REDIRECTS)
    host = rng.choice(
        [NEW, "https://HEALTHIERWIGAN.nhs.uk", ARCHIVE, "http://healthierwigan.nhs.uk"]
    )
    return host + "/" + "".join(rng.choice(HOSTILE) for _ in range(rng.randint(0, 10)))


def test_property_hostile_urls_are_refused_or_answered_exactly(tmp_path: Path) -> None:
    rng = random.Random(20191104)
    rows = [
        Row(
            old=hostile_old(rng),
            new=hostile_target(rng),
            method="exact",
            confidence=round(rng.random(), 2),
            status=GONE if rng.random() < 0.1 else 301,
        )
        for _ in range(1200)
    ]
    decided = RedirectPlan(SITE)
    prepared = [decided.add(r) for r in rows]
    decided.finish()
    collided = {old for c in decided.collisions for old in c.olds}
    with serving(rows, tmp_path) as (client, result, tested):
        assert "[emerg]" not in tested and "[warn]" not in tested
        assert len(result.refused) == sum(not hasattr(p, "key") for p in prepared)
        for refused in result.refused:
            assert refused.reason and "\n" not in refused.reason
        answered = variants = 0
        for r, p in zip(rows, prepared, strict=True):
            if not hasattr(p, "key"):
                continue
            # Its own URL: exactly its own answer, unless a case twin took the key.
            got = client.get(p.key)
            want = decided.resolve(p.key)
            if r.old not in collided:
                assert want == (p.status, p.target), r.old
            if want[0] == GONE:
                assert got.status == 410, r.old
                assert f'href="{html.escape(want[1])}"'.encode() in got.body, r.old
            else:
                assert (got.status, got.location) == want, r.old
            answered += 1
            # Variants nobody crawled: nginx and the Python model must agree.
            for variant in (p.key + ("&" if "?" in p.key else "?") + "utm=1", p.key.upper()):
                if len(variant) > 4000:
                    continue
                got = client.get(variant)
                want = decided.resolve(variant)
                assert got.status == want[0], variant
                if want[0] == 301:
                    assert got.location == want[1], variant
                variants += 1
        # The generator must produce plenty of both kinds.
        assert answered > 300 and len(result.refused) > 300 and variants > 500


# -- Apache ---------------------------------------------------------------------------


def test_apache_map_format(tmp_path: Path) -> None:
    rows = [
        *HAND_ROWS,
        row("/Case", NEW + "/upper"),
        row("/case", NEW + "/lower"),
        row("/a b", NEW + "/space"),
        row("/dup", NEW + "/low", confidence=0.2),
        row("/dup", NEW + "/high", confidence=0.8),
        row("/evil", "https://evil.example/"),
    ]
    result = write_apache(rows, SITE, tmp_path)
    assert result.path == tmp_path / APACHE_MAP
    text = result.path.read_text(encoding="ascii")
    entries = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, value = line.split(" ")
        assert key.startswith("/") and not re.search(r"\s", key + value)
        entries[key] = value
    assert entries["/Case"] == NEW + "/upper" and entries["/case"] == NEW + "/lower"
    assert entries["/dup"] == NEW + "/high"
    assert entries[ARTICLE + "&Itemid=282"] == NEW + "/flu-clinics"
    assert entries["/old-consultation"] == GONE_MARK + ARCHIVE + "/old-consultation?a=1&b=2"
    assert entries["/search"] == NEW + "/search?q=a%20b%22c%24d"
    assert [r.old for r in result.refused] == [LEGACY + "/a b", LEGACY + "/evil"]
    assert result.written == len(entries)
    assert "RewriteMap sunset" in text and "%{THE_REQUEST}" in text


# -- CSV ---------------------------------------------------------------------------------


def test_csv_round_trip_and_formula_guard(tmp_path: Path) -> None:
    rows = [
        Row(LEGACY + "/a", NEW + "/a", "title", 0.87654, title="=HYPERLINK(\"x\")", note="-1"),
        Row(LEGACY + "/b", ARCHIVE + "/b", "archive", 0.1, status=GONE, title="Ünïcode, \"q\"", group="g1", note="@x"),
        Row(LEGACY + "/c", NEW + "/c", "home", 0.0, title="+44 \n two lines", note="fine"),
    ]  # fmt: skip
    path = tmp_path / "redirects.csv"
    assert write_csv(rows, path) == 3
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(COLUMNS)
    back = list(read_csv(path))
    assert [(r.old, r.new, r.status) for r in back] == [(r.old, r.new, r.status) for r in rows]
    assert back[0].confidence == pytest.approx(0.877)
    import csv

    with open(path, encoding="utf-8", newline="") as fh:
        cells = list(csv.DictReader(fh))
    assert cells[0]["title"] == '\'=HYPERLINK("x")' and cells[0]["note"] == "'-1"
    assert cells[1]["title"] == 'Ünïcode, "q"' and cells[1]["note"] == "'@x"
    assert cells[2]["title"] == "'+44 \n two lines" and cells[2]["note"] == "fine"
    assert cells[1]["old"] == LEGACY + "/b" and cells[1]["status"] == "410"
    # An edited redirects.csv is a valid overrides file.
    assert read_overrides(path) == [(r.old, r.new) for r in rows]


def test_read_overrides_accepts_what_reviewers_save_and_says_what_is_wrong(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_bytes(
        "\ufeffNote,OLD,New\n"  # a spreadsheet's byte-order mark, other columns, any case
        "x,https://www.wiganboroughccg.nhs.uk/a,https://healthierwigan.nhs.uk/a\n"
        "y,/b?id=1,https://healthierwigan.nhs.uk/b\n"
        "z,/skipped,\n"
        ",,\n".encode()
    )
    assert read_overrides(good) == [
        ("https://www.wiganboroughccg.nhs.uk/a", "https://healthierwigan.nhs.uk/a"),
        ("/b?id=1", "https://healthierwigan.nhs.uk/b"),
    ]
    bad = tmp_path / "bad.csv"
    cases = {
        b"old,new\n/a,https://x/\nnot-a-url,https://x/\n": r"line 3: old 'not-a-url'",
        b"old,new\n/a,https://x/\nhttps://,https://x/\n": "line 3",
        b"old,target\n/a,https://x/\n": "missing new",
        b"\xff\xfeo\x00l\x00d\x00": "not UTF-8",
        b"": "missing old",
    }
    for content, message in cases.items():
        bad.write_bytes(content)
        with pytest.raises(SunsetError, match=message) as info:
            read_overrides(bad)
        assert "\n" not in str(info.value)
    with pytest.raises(SunsetError, match="no such file"):
        read_overrides(tmp_path / "missing.csv")
