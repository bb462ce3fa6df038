"""Issue 15, archive and special targets and a CMS's URL forms, through a real nginx.

Hand-made rows first (the nginx rules for Joomla's forms, robots.txt and
feeds, and the Python model of them that ``redirects check`` relies on),
then a crawl of the replica: one archive timestamp, each part of a
multi-part article to its own archived copy, robots.txt, sitemaps and feeds
never to the archive, and every Joomla form answered by nginx.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from test_redirects_nginx import NEW, SITE, expect_301, row, serving

from redirects.model import Row, Site
from redirects.nginx import ROBOTS_BODY, plan, request_target
from sunset.nginx import NGINX

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
