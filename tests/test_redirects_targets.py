"""Issue 15, archive and special targets and a CMS's URL forms, through a real nginx.

Hand-made rows first (the nginx rules for Joomla's forms, robots.txt and
feeds, and the Python model of them that ``redirects check`` relies on),
then a crawl of the replica: one archive timestamp, each part of a
multi-part article to its own archived copy, robots.txt, sitemaps and feeds
never to the archive, and every Joomla form answered by nginx.
"""

from __future__ import annotations

import csv
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import crawled_replica
from test_redirects_nginx import NEW, SITE, expect_301, row, serving

from redirects.evaluate import ask_all
from redirects.model import Row, Site
from redirects.nginx import ROBOTS_BODY, plan, request_target
from replica.generate import iter_jsonl
from sunset.nginx import NGINX
from sunset.profile import UrlForms, list_cms_presets, load_profile

DEMO_PROFILE = Path(__file__).parent.parent / "sunset" / "profiles" / "demo.toml"
needs_nginx = pytest.mark.skipif(
    not Path(NGINX).is_file(), reason="nginx is not installed (./dev setup installs it)"
)

FEED = NEW + "/news/feed/"
JOOMLA_SITE = Site(
    **{
        **SITE.__dict__,
        "front_controller": "/index.php",
        "id_param": "id",
        "feed_params": ("format=feed",),
        "feed_target": FEED,
    }
)
ARTICLE_112 = "/index.php?option=com_content&view=article&id=112"
CATEGORY_8 = "/index.php?option=com_content&view=category&id=8"
FORM_ROWS = [
    row("/your-health", NEW + "/health/"),
    row("/your-ccg/news/112-flu-clinics", NEW + "/flu/"),
    row(ARTICLE_112, NEW + "/flu/"),
    row(CATEGORY_8, NEW + "/news/"),
    row("/your-ccg/news", NEW + "/news/"),
    row("/index.php/old-path", NEW + "/old/"),
]


@needs_nginx
def test_joomla_forms_feeds_and_robots_through_nginx(tmp_path: Path) -> None:
    with serving(FORM_ROWS, tmp_path, JOOMLA_SITE) as (client, result, tested):
        assert "[warn]" not in tested and "[emerg]" not in tested
        assert not result.refused and not result.collisions
        decided = plan(FORM_ROWS, JOOMLA_SITE)
        archive = SITE.fallback_prefix
        probes = {
            **{request_target(r.old): r.new for r in FORM_ROWS},
            # /index.php/<path> is /<path>, whatever the case or trailing slash
            "/index.php/your-health": NEW + "/health/",
            "/index.php/your-health/": NEW + "/health/",
            "/INDEX.PHP/Your-Health?utm_source=x": NEW + "/health/",
            "/index.php/your-ccg/news/112-flu-clinics": NEW + "/flu/",
            "/index.php/your-ccg/news?start=99": NEW + "/news/",
            # an article's id with an alias, a category and a menu item, in any order
            ARTICLE_112 + ":flu-clinics&catid=8&Itemid=5": NEW + "/flu/",
            ARTICLE_112 + "%3Aflu-clinics": NEW + "/flu/",
            ARTICLE_112 + "-flu-clinics&Itemid=999": NEW + "/flu/",
            "/index.php?Itemid=5&id=112:x&view=article&catid=8&option=com_content": NEW + "/flu/",
            CATEGORY_8 + ":news&layout=blog&Itemid=300": NEW + "/news/",
            # another number is another item: not 112's answer
            ARTICLE_112 + "0": archive + ARTICLE_112 + "0",
            ARTICLE_112[:-3] + "1112:x": archive + ARTICLE_112[:-3] + "1112:x",
            # any feed, of a known page or not
            "/your-ccg/news?format=feed&type=rss": FEED,
            CATEGORY_8 + "&format=feed&type=atom": FEED,
            "/unknown?type=rss&FORMAT=Feed": FEED,
            # /index.php itself and another front controller are not folded
            "/index.php/": archive + "/index.php/",
            "/index.phpx/your-health": archive + "/index.phpx/your-health",
            # a path row that was crawled under index.php answers for both
            "/old-path": NEW + "/old/",
        }
        for target, location in probes.items():
            expect_301(client.get(target), location, target)
            assert decided.resolve(target) == (301, location), target
        for target in ("/robots.txt", "/robots.txt?x=1", "/robots%2Etxt"):
            answer = client.get(target)
            assert (answer.status, answer.location) == (200, None), target
            assert answer.body.decode() == ROBOTS_BODY
            assert decided.resolve(target) == (200, "")


@needs_nginx
def test_a_path_under_the_front_controller_yields_to_the_path_itself(tmp_path: Path) -> None:
    rows = [row("/index.php/x", NEW + "/a/"), row("/x", NEW + "/b/")]
    for n, ordered in enumerate((rows, rows[::-1])):
        (tmp_path / str(n)).mkdir()
        with serving(ordered, tmp_path / str(n), JOOMLA_SITE) as (client, _, _):
            decided = plan(ordered, JOOMLA_SITE)
            for target, location in {
                "/index.php/x": NEW + "/a/",
                "/x": NEW + "/b/",
                "/x?utm_source=y": NEW + "/b/",
                "/x/?utm_source=y": NEW + "/b/",
                "/index.php/x?utm_source=y": NEW + "/b/",
            }.items():
                expect_301(client.get(target), location, target)
                assert decided.resolve(target) == (301, location), target


@needs_nginx
def test_robots_txt_is_never_redirected_even_without_url_forms(tmp_path: Path) -> None:
    rows = [row("/robots.txt", NEW + "/robots.txt"), row("/a", NEW + "/a/")]
    with serving(rows, tmp_path) as (client, _, _):
        answer = client.get("/robots.txt")
        assert answer.status == 200 and answer.body.decode() == ROBOTS_BODY
        expect_301(client.get("/a"), NEW + "/a/", "/a")


FORM_PIECES = [
    "option=com_content", "view=article", "view=category", "id=112", "id=112:a", "id=112%3a",
    "id=112-b", "id=8", "id=8:x", "ID=112", "id=", "id=:112", "id=1a2", "catid=8", "Itemid=5",
    "format=feed", "format=FEED", "format=feedx", "format=", "type=rss", "start=2", "x=1", "",
]  # fmt: skip
FORM_PATHS = [
    "/index.php", "/INDEX.php", "/index.php/your-health", "/index.php/your-health/",
    "/index.php/", "/index.php//your-health", "/index.php/index.php/your-health", "/your-health",
    "/index.phpyour-health", "/index.php%2Fyour-health", "/x/index.php/your-health",
]  # fmt: skip


@needs_nginx
def test_property_the_python_model_of_the_forms_agrees_with_nginx(tmp_path: Path) -> None:
    rng = random.Random(15)
    rows: list[Row] = list(FORM_ROWS)
    with serving(rows, tmp_path, JOOMLA_SITE) as (client, _, _):
        decided = plan(rows, JOOMLA_SITE)
        for _ in range(600):
            query = "&".join(rng.choice(FORM_PIECES) for _ in range(rng.randint(0, 5)))
            target = rng.choice(FORM_PATHS) + (f"?{query}" if query or rng.random() < 0.1 else "")
            got = client.get(target)
            assert (got.status, got.location or "") == decided.resolve(target), target


# -- a crawl of the replica ------------------------------------------------------------

ARCHIVE_HOST = "webarchive.nationalarchives.gov.uk"
FROZEN = "20191104000000"
HOME = "http://healthierwigan.nhs.uk/"


def sunset(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("targets")
    site, legacy, new = crawled_replica(root, 150, 3)
    result = sunset("redirects", str(legacy), "--new-crawl", str(new))
    assert result.returncode == 0, result.stderr
    return {"root": root, "site": site, "crawl": legacy, "new": new, "out": legacy / "redirects"}


def csv_rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "redirects.csv", encoding="utf-8", newline="") as fh:
        return {r["old"]: r for r in csv.DictReader(fh)}


def truth(site: Path) -> list[dict[str, object]]:
    return list(iter_jsonl(site / "ground-truth" / "urls.jsonl"))


def archived(url: str, timestamp: str = FROZEN) -> str:
    return f"https://{ARCHIVE_HOST}/ukgwa/{timestamp}/{url}"


def map_values(out: Path) -> list[str]:
    values = []
    for name in ("redirects.map", "redirects-canonical.map", "redirects-paths.map"):
        for line in (out / name).read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                values.append(line.rsplit('" "', 1)[1].rstrip('";'))
    return values


def archive_timestamps(out: Path) -> set[str]:
    """Every archive link's timestamp in the CSV, the maps and the fallback."""
    links = [r["new"] for r in csv_rows(out).values()] + map_values(out)
    links.append(json.loads((out / "redirects.json").read_text())["site"]["fallback_prefix"])
    found = [re.search(r"/ukgwa/([0-9]+)/", link) for link in links if ARCHIVE_HOST in link]
    assert found and all(found), "archive links without a timestamp"
    return {m.group(1) for m in found if m}


def test_every_archive_link_carries_the_frozen_date(replica: dict[str, Path]) -> None:
    crawled = {
        line.split(" ", 2)[1] for line in (replica["crawl"] / "indexes" / "index.cdxj").open()
    }
    assert FROZEN not in crawled  # the crawl's own times differ: the test can tell
    assert archive_timestamps(replica["out"]) == {FROZEN}
    conf = (replica["out"] / "redirects.conf").read_text()
    assert f'return 301 "https://{ARCHIVE_HOST}/ukgwa/{FROZEN}/http://' in conf


def test_each_part_goes_to_its_own_archived_copy(replica: dict[str, Path]) -> None:
    rows = csv_rows(replica["out"])
    parts = [t for t in truth(replica["site"]) if t["kind"] in ("part", "showall")]
    gone = [t for t in parts if not t["successor"] and t["url"] in rows]
    kept = [t for t in parts if t["successor"] and t["url"] in rows]
    assert len({t["page"] for t in gone}) >= 2 and kept, "the replica needs both kinds"
    for t in gone:
        url = str(t["url"])
        base, _, query = url.partition("?")
        own = f"{base}?start={t['part']}" if t["kind"] == "part" else url
        assert query and rows[url]["new"] == archived(own), url
        assert rows[url]["method"] == "archive"
    # Each part its own copy, and none the first part's.
    for page in {t["page"] for t in gone}:
        targets = {rows[str(t["url"])]["new"] for t in gone if t["page"] == page}
        first = next(t for t in truth(replica["site"]) if t["page"] == page and t["kind"] == "page")
        assert len(targets) >= 3 and archived(str(first["url"])) not in targets
    # A page with a successor takes every part there.
    for t in kept:
        assert rows[str(t["url"])]["new"].rstrip("/") == str(t["successor"]).rstrip("/")
    # Through nginx, a part nobody crawled with a tracking parameter: its own copy too.
    url = str(next(t["url"] for t in gone if t["kind"] == "part" and "showall" not in t["url"]))
    answers = ask_all(replica["out"], [url + "&utm_source=leaflet", url])
    assert answers[url + "&utm_source=leaflet"] == (301, archived(url))


def test_robots_sitemaps_and_feeds_are_not_sent_to_the_archive(replica: dict[str, Path]) -> None:
    rows = csv_rows(replica["out"])
    legacy = "http://www.wiganboroughccg.nhs.uk"
    assert not [old for old in rows if "robots.txt" in old]
    sitemap = rows[legacy + "/sitemap.xml"]
    assert (sitemap["new"], sitemap["method"]) == (
        "http://healthierwigan.nhs.uk/sitemap.xml",
        "special",
    )
    feeds = [t["url"] for t in truth(replica["site"]) if t["kind"] == "rss"]
    assert len(feeds) > 5
    for url in feeds:
        assert (rows[str(url)]["new"], rows[str(url)]["method"]) == (HOME, "special"), url
    category = str(feeds[0]).split("?", 1)[0]
    uncrawled = [
        category + "?format=feed&type=atom",
        legacy + "/index.php?option=com_content&view=category&id=8&format=feed&type=rss",
        legacy + "/robots.txt",
    ]
    answers = ask_all(replica["out"], [str(u) for u in feeds] + uncrawled)
    assert answers.pop(legacy + "/robots.txt") == (200, "")
    assert set(answers.values()) == {(301, HOME)}


def test_without_a_frozen_date_the_crawl_date_and_the_profile_feed(
    replica: dict[str, Path], tmp_path: Path
) -> None:
    text = DEMO_PROFILE.read_text(encoding="utf-8")
    assert "\nfrozen = 2019-11-04\n" in text and "\ncms = " in text
    text = text.replace("\nfrozen = 2019-11-04\n", "\n")
    text = text.replace("\ncms = ", '\nfeed = "/news/feed/"\ncms = ')
    profile = tmp_path / "p.toml"
    profile.write_text(text, encoding="utf-8")
    out = tmp_path / "r"
    result = sunset(
        "redirects", str(replica["crawl"]), "-p", str(profile),
        "--new-crawl", str(replica["new"]), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    latest = max(
        line.split(" ", 2)[1] for line in (replica["crawl"] / "indexes" / "index.cdxj").open()
    )
    assert archive_timestamps(out) == {latest}
    feed = HOME + "news/feed/"
    rss = [r for r in csv_rows(out).values() if "format=feed" in r["old"]]
    assert rss and all(r["new"] == feed for r in rss)
    other = "http://www.wiganboroughccg.nhs.uk/anything?format=feed&type=atom"
    assert ask_all(out, [other])[other] == (301, feed)


@pytest.mark.parametrize("key", ["feed", "sitemap"])
def test_a_feed_or_sitemap_target_off_the_new_site_is_one_line_exit_2(
    replica: dict[str, Path], tmp_path: Path, key: str
) -> None:
    text = DEMO_PROFILE.read_text(encoding="utf-8").replace(
        "\ncms = ", f'\n{key} = "https://evil.example/x"\ncms = '
    )
    text = text.replace('\nsitemap = "http://healthierwigan.nhs.uk/sitemap.xml"\n', "\n")
    profile = tmp_path / "p.toml"
    profile.write_text(text, encoding="utf-8")
    out = tmp_path / "r"
    result = sunset(
        "redirects", str(replica["crawl"]), "-p", str(profile),
        "--new-crawl", str(replica["new"]), "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"[redirects] {key}" in result.stderr and "evil.example" in result.stderr
    assert not out.exists() or not any(out.iterdir())


def test_every_joomla_form_is_answered_through_nginx(replica: dict[str, Path]) -> None:
    rows = csv_rows(replica["out"])
    legacy = "http://www.wiganboroughccg.nhs.uk"
    index = legacy + "/index.php"
    facts = truth(replica["site"])
    # An article whose id only its SEF URL carries: /your-ccg/news/112-title.
    news = [t for t in facts if t["kind"] == "page" and re.search(r"/news/[0-9]+-", str(t["url"]))]
    assert len(news) > 10
    article = str(news[0]["url"])
    item = re.search(r"/news/([0-9]+)-([^/?]+)", article)
    assert item is not None
    number, alias = item.groups()
    want = rows[article]["new"]
    form = f"{index}?option=com_content&view=article&id={number}"
    assert rows[form]["new"] == want and "id " + number in rows[form]["note"]
    # A category whose id only a link in its index.php form carries.
    links = [t for t in facts if t["kind"] == "index-php-category"]
    assert links and all(str(t["url"]) in rows for t in links)
    link = str(links[0]["url"])
    catid = re.search(r"[?&]id=([0-9]+)", link)
    assert catid is not None
    category = rows[link]["new"]
    probes = {
        form: want,
        f"{form}:{alias}": want,
        f"{form}%3A{alias}&catid=8&Itemid=5": want,
        f"{index}?Itemid=180&id={number}-{alias}&view=article&option=com_content": want,
        f"{index}?option=com_content&view=category&id={catid.group(1)}": category,
        f"{index}?option=com_content&view=category&id={catid.group(1)}:x&Itemid=9": category,
        f"{index}?option=com_content&view=article&id={number}&format=feed&type=rss": HOME,
    }
    # /index.php/<path> answers as /<path>, for every kind of page.
    for t in facts:
        url = str(t["url"])
        if (
            t["kind"] in ("page", "listing")
            and url in rows
            and "?" not in url
            and url != legacy + "/"
        ):
            probes[legacy + "/index.php" + url[len(legacy) :]] = rows[url]["new"]
    assert len(probes) > 100
    answers = ask_all(replica["out"], list(probes))
    wrong = {url: (answers[url], want) for url, want in probes.items() if answers[url][1] != want}
    assert not wrong, list(wrong.items())[:5]
    assert {status for status, _ in answers.values()} == {301}
    # The catch-all still has every other id: an unknown article is the archive's.
    unknown = f"{index}?option=com_content&view=article&id=99999:x"
    assert ask_all(replica["out"], [unknown])[unknown] == (301, archived(unknown))


@needs_nginx
def test_the_check_command_passes_with_the_forms(replica: dict[str, Path]) -> None:
    result = sunset("redirects", "check", str(replica["crawl"]))
    assert result.returncode == 0, result.stdout + result.stderr


# -- the preset in the profile -----------------------------------------------------------

SITE_TOML = """
[site]
name = "Example"
start_urls = ["https://www.example.org/"]

[successor]
base_url = "https://new.example.org/"

[redirects]
"""


@pytest.mark.parametrize("name", ["wigan", "demo"])
def test_shipped_profiles_select_the_joomla_preset(name: str) -> None:
    forms = load_profile(name).redirects.url_forms
    assert forms.front_controller == "/index.php" and forms.id_param == "id" and forms.id_prefix
    assert forms.content_url == "/index.php?option=com_content&view=article&id={id}"
    assert forms.listing_url == "/index.php?option=com_content&view=category&id={id}"
    assert forms.feed_params == ("format=feed",)
    assert "joomla" in list_cms_presets()


def test_url_forms_change_the_preset_key_by_key(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        SITE_TOML + 'cms = "joomla"\nfeed = "/news/feed"\n'
        '[redirects.url_forms]\nid_prefix = false\nfeed_params = ["format=feed", "feed=rss"]\n'
    )
    profile = load_profile(path)
    forms = profile.redirects.url_forms
    assert not forms.id_prefix and forms.feed_params == ("format=feed", "feed=rss")
    assert forms.front_controller == "/index.php"  # the rest is the preset's
    assert profile.redirects.feed == "/news/feed"
    # A profile without a preset has no forms, and nginx folds nothing.
    path.write_text(SITE_TOML)
    assert load_profile(path).redirects.url_forms == UrlForms()


def test_profile_show_round_trips_the_forms(tmp_path: Path) -> None:
    shown = sunset("profile", "show", "demo")
    assert shown.returncode == 0, shown.stderr
    path = tmp_path / "shown.toml"
    path.write_text(shown.stdout.split("\n", 1)[1])
    assert load_profile(path).redirects == load_profile("demo").redirects


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('cms = "wordpress"', "redirects.cms", "'joomla'"),
        ("[redirects.url_forms]\nidprefix = true", "redirects.url_forms.idprefix", "id_prefix"),
        (
            '[redirects.url_forms]\ncontent_url = "/index.php?id=1"',
            "redirects.url_forms.content_url",
            "{id}",
        ),
        ('[redirects.url_forms]\nfeed_params = ["format"]', "feed_params[0]", "name=value"),
        ('[redirects.url_forms]\nfront_controller = "index.php"', "front_controller", "/index"),
        (
            'significant_query_params = ["id"]\ncms = "joomla"',
            "redirects.url_forms.content_url",
            "'option' is not in redirects.significant_query_params",
        ),
        ('feed = "news"', "redirects.feed", "path starting with '/'"),
    ],
)
def test_bad_forms_are_one_line_naming_the_key(
    tmp_path: Path, extra: str, key: str, message: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(SITE_TOML + extra + "\n")
    result = sunset("profile", "check", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert key in result.stderr and message in result.stderr, result.stderr
