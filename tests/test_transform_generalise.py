"""`sunset transform` on a site it has never seen (issue 16): a small synthetic
WordPress-style site, written here, crawled into a hand-made WARC.

Every page shares a header menu, a cookie banner, a search dialog and a footer;
two sections each repeat a sub-menu of their own; event pages carry label and
value fields; some content is collapsed until a click.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_transform import make_crawl

HOST = "http://kultur.test"
PAGE = """<!doctype html><html lang="sv"><head><meta charset="utf-8">
<title>{title} – Kulturhuset</title></head><body>
<header class="site-header"><a class="logo" href="/">Kulturhuset</a>
<ul class="main-menu" role="menubar"><li role="menuitem"><a href="/evenemang/">Evenemang</a></li>
<li role="menuitem"><a href="/om/">Om huset</a></li><li role="menuitem"><a href="/kontakt/">Kontakt</a></li></ul>
</header>
<div id="cookie-consent" class="cookie-banner"><p>Vi använder kakor så att webbplatsen fungerar.</p>
<button>Godkänn kakor</button></div>
<div class="c-modal search-modal" aria-hidden="true"><p>Vad letar du efter idag?</p></div>
<main id="main-content"><div class="o-grid">{submenu}<article class="c-article"><h1>{title}</h1>{body}</article>
</div></main>
<footer class="site-footer"><p>Kulturhuset<br>Storgatan 1<br>252 21 Staden</p>
<p>Kulturhuset är en del av staden.</p></footer>
</body></html>"""

SUBMENU = {
    "evenemang": (
        '<div class="sidebar"><ul class="c-list"><li><a href="/evenemang/kalender/">Kalender</a></li>'
        '<li><a href="/evenemang/biljetter/">Biljetter och priser</a></li>'
        '<li><a href="/evenemang/arkiv/">Tidigare evenemang</a></li></ul></div>'
    ),
    "om": (
        '<div class="sidebar"><ul class="c-list"><li><a href="/om/historia/">Husets historia</a></li>'
        '<li><a href="/om/press/">Press och media</a></li>'
        '<li><a href="/om/jobb/">Lediga jobb</a></li></ul></div>'
    ),
}

EVENTS = [
    ("jazzkvall", "Jazzkväll i salen", "12 maj 19.00", "Stora salen", "200 kronor"),
    ("barnteater", "Barnteater om havet", "14 maj 11.00", "Lilla scenen", "fri entré"),
    ("korsang", "Körsång för alla", "3 juni 18.00", "Foajén", "50 kronor"),
    ("poesi", "Poesiafton", "9 juni 19.30", "Biblioteket", "fri entré"),
    ("dans", "Dansworkshop", "21 juni 10.00", "Studion", "100 kronor"),
    ("film", "Filmvisning i parken", "2 juli 21.00", "Parken", "fri entré"),
]
MEDIA = (
    "<p>Första raden i adressen<br>\n                    Andra raden i adressen</p>"
    "<p><strong>Obs!\u00a0</strong>Biljetterna säljs bara i entrén.</p>"
    '<picture><source srcset="/bild-800.webp 800w, /bild-400.webp 400w" type="image/webp">'
    '<img src="/bild.jpg" srcset="/bild-800.jpg 800w, /bild-400.jpg 400w" alt="Salen"></picture>'
    '<div class="hero">'
    + " ".join(f'<img src="/sal-{w}x{w // 4}.webp" alt="">' for w in (425, 768, 1024, 1920))
    + "</div>"
    '<figure><a href="/stor.jpg"><img src="/liten.jpg" alt="Foajén"></a>'
    "<figcaption>Foajén en vårdag</figcaption></figure>"
    '<video controls src="/film.mp4"><p>Din webbläsare kan inte visa filmen.</p></video>'
    '<audio src="/ljud.mp3">Ingen ljudspelare här.</audio>'
    '<a href="/om/historia/"><h2>Läs om husets historia</h2></a>'
    "<ul><li>Priser för entré<table><tr><th>Vuxen</th><th>Barn</th></tr>"
    "<tr><td>120 kronor</td><td>gratis</td></tr></table></li><li>Öppet alla dagar</li></ul>"
)
GROUPS = ["Traineegrupp 7", "Traineegrupp 8", "Traineegrupp 9", "Traineegrupp 10"]


def event_body(i: int, title: str, when: str, where: str, fee: str) -> str:
    return (
        f"<p>{title} är ett evenemang som bjuder på något alldeles eget, nummer {i}.</p>"
        f"<p><strong>När:</strong> {when}<br><strong>Var:</strong> {where}<br>"
        f"<strong>Entré:</strong> {fee}</p>"
        f'<p class="project-by">Projekt av {GROUPS[i % len(GROUPS)]}.</p>'
    )


def pages() -> dict[str, tuple[str, bytes]]:
    out: dict[str, str] = {}
    for i, (slug, title, when, where, fee) in enumerate(EVENTS):
        out[f"/evenemang/{slug}/"] = PAGE.format(
            title=title, submenu=SUBMENU["evenemang"], body=event_body(i, title, when, where, fee)
        )
    about = [
        ("historia", "Husets historia", "Huset byggdes av tegel och glas för länge sedan."),
        ("press", "Press och media", "Pressbilder och pressmeddelanden finns att hämta här."),
        ("jobb", "Lediga jobb", "Just nu söker vi ingen personal men hör gärna av dig."),
        ("hyra", "Hyra lokal", "Salarna går att hyra för konferenser och fester."),
        ("vanner", "Vänföreningen", "Vänföreningen stödjer husets verksamhet sedan starten."),
    ]
    for slug, title, text in about:
        out[f"/om/{slug}/"] = PAGE.format(title=title, submenu=SUBMENU["om"], body=f"<p>{text}</p>")
    # Collapsed until a click: an accordion, a tab panel, <details>, a "read more".
    out["/om/tillganglighet/"] = PAGE.format(
        title="Tillgänglighet",
        submenu=SUBMENU["om"],
        body=(
            "<p>Så tar du dig runt i huset.</p>"
            '<div class="c-accordion"><button aria-expanded="false">Hiss</button>'
            '<div class="c-accordion__content" aria-hidden="true"><p>Hissen finns vid '
            "huvudentrén och rymmer två rullstolar.</p></div>"
            '<button aria-expanded="false">Toaletter</button>'
            '<div class="c-accordion__content" hidden><p>Tillgänglig toalett finns på '
            "varje våningsplan.</p></div></div>"
            '<div role="tabpanel" style="display:none"><p>Ledsagare går alltid in gratis.</p></div>'
            "<details><summary>Parkering</summary><p>Parkering för rörelsehindrade finns "
            "vid norra gaveln.</p></details>"
            '<div class="read-more" style="display: none"><p>Hörslinga finns i alla salar.</p></div>'
            '<div class="newsletter-popup" hidden><p>Prenumerera på vårt nyhetsbrev nu.</p></div>'
            '<p>Ring oss <span class="material-symbols" aria-hidden="true">call</span> '
            "om du undrar något.</p>"
        ),
    )
    out["/kontakt/"] = PAGE.format(
        title="Kontakt", submenu="", body="<p>Ring växeln på 042-10 50 00 alla vardagar.</p>"
    )
    out["/nyheter/ny-utstallning/"] = PAGE.format(
        title="Ny utställning",
        submenu="",
        body=(
            "<p>En ny utställning om ljus och natur öppnar i höst, med verk av tolv "
            "konstnärer från hela regionen, och den visas i tre månader.</p>"
            '<h2><a href="/om/historia/">Husets historia</a></h2>'
            "<p>Läs också om våra andra utställningar:</p>"
            '<ul><li><a href="/om/historia/">Husets historia</a></li>'
            '<li><a href="/evenemang/jazzkvall/">Jazzkväll</a></li>'
            '<li><a href="/evenemang/poesi/">Poesiafton</a></li></ul>'
            "<p>Utställningen är gratis och öppen för alla åldrar under husets "
            "öppettider, och guidade visningar ges varje lördag klockan elva.</p>"
            "<p>Konstnärerna har arbetat med utställningen i två år, och flera av verken "
            "visas för första gången. Skolklasser är särskilt välkomna att boka en visning.</p>"
            "<p>Under hösten ordnas också samtal med konstnärerna, workshoppar för barn "
            "och en kväll med musik i utställningshallen.</p>"
        ),
    )
    out["/nyheter/media/"] = PAGE.format(
        title="Bilder och film",
        submenu="",
        body=MEDIA,
    )
    # News pages with a sidebar of their own, at the path of the section menus:
    # those are not template site-wide, only in their sections.
    for i, topic in enumerate(("Vårens program", "Nya öppettider", "Renovering klar")):
        side = (
            f'<div class="sidebar"><ul class="c-list"><li><a href="/nyheter/{i}/a">{topic} i korthet</a>'
            f'</li><li><a href="/nyheter/{i}/b">Mer om {topic.lower()}</a></li></ul></div>'
        )
        out[f"/nyheter/notis-{i}/"] = PAGE.format(
            title=topic, submenu=side, body=f"<p>{topic}: nyheten nummer {i} från huset.</p>"
        )
    teasers = "".join(
        f'<div class="c-card"><h2><a href="/evenemang/{slug}/">{title}</a></h2><p>{when}</p></div>'
        for slug, title, when, _w, _f in EVENTS
    )
    out["/evenemang/"] = PAGE.format(title="Evenemang", submenu=SUBMENU["evenemang"], body=teasers)
    return {
        f"{HOST}{path}": ("text/html; charset=utf-8", html.encode()) for path, html in out.items()
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("generalise")
    crawl = make_crawl(root / "crawl", pages())
    profile = root / "p.toml"
    profile.write_text(
        f'[site]\nname = "t"\nstart_urls = ["{HOST}/"]\nallowed_hosts = ["kultur.test"]\n',
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "sunset", "transform", str(crawl), "--profile", str(profile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    content = crawl / "content"
    recs = {}
    for line in (content / "pages.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec["md"] = (content / rec["files"]["md"]).read_text()
        recs[rec["url"].removeprefix(HOST)] = rec
    return recs


def test_content_hidden_until_a_click_is_kept(site: dict[str, dict]) -> None:
    text = site["/om/tillganglighet/"]["text"]
    for kept in (
        "Hissen finns vid huvudentrén",
        "Tillgänglig toalett finns",
        "Ledsagare går alltid in gratis",
        "Parkering för rörelsehindrade",
        "Hörslinga finns i alla salar",
    ):
        assert kept in text, kept


def test_dialogs_popups_and_icons_go(site: dict[str, dict]) -> None:
    for url, rec in site.items():
        for gone in ("Prenumerera på vårt nyhetsbrev", "Vad letar du efter", "kakor"):
            assert gone not in rec["text"], (url, gone)
    assert "Ring oss om du undrar något." in site["/om/tillganglighet/"]["text"]


def test_a_label_with_a_page_value_is_content(site: dict[str, dict]) -> None:
    for i, (slug, _t, when, where, fee) in enumerate(EVENTS):
        text = site[f"/evenemang/{slug}/"]["text"]
        assert f"När: {when}" in text, text
        assert f"Var: {where}" in text, text
        assert f"Entré: {fee}" in text, text
        assert f"Projekt av {GROUPS[i % len(GROUPS)]}." in text, text


def test_a_section_menu_goes_from_its_section(site: dict[str, dict]) -> None:
    for url, rec in site.items():
        if url.startswith("/evenemang/") and url != "/evenemang/":
            assert "Biljetter och priser" not in rec["text"], url
        if url.startswith("/om/"):
            assert "Press och media" not in rec["text"] or url == "/om/press/", url
    # The menu is gone, the page's own title stays.
    assert site["/om/press/"]["text"].startswith("Press och media")


def test_the_template_goes_everywhere(site: dict[str, dict]) -> None:
    for url, rec in site.items():
        for gone in ("Storgatan 1", "Kulturhuset är en del av staden", "Om huset"):
            assert gone not in rec["text"], (url, gone)


def test_an_article_with_a_list_of_links_is_content(site: dict[str, dict]) -> None:
    assert site["/nyheter/ny-utstallning/"]["kind"] == "content"
    assert site["/evenemang/"]["kind"] == "listing"
    for slug, *_ in EVENTS:
        assert site[f"/evenemang/{slug}/"]["kind"] == "content", slug


def test_markdown_reads_as_the_page_does(site: dict[str, dict]) -> None:
    rec = site["/nyheter/media/"]
    md = rec["md"]
    lines = md.splitlines()
    # Text after a line break starts its line (four spaces would make it code).
    assert "Andra raden i adressen" in lines, md
    assert "**Obs!**\u00a0Biljetterna" in md or "**Obs!** Biljetterna" in md, md
    # One image for a picture with sources and a srcset, its URL the src.
    assert md.count("bild") == 1 and "/bild.jpg)" in md, md
    # One image shown at several sizes, one <img> each: once, the largest.
    assert md.count("/sal-") == 1 and "/sal-1920x480.webp" in md, md
    caption = next(line for line in lines if "Foajén en vårdag" in line)
    assert "](" not in caption and "[" not in caption, md
    # A video's or audio's fallback text is for browsers without one.
    for gone in ("Din webbläsare kan inte visa filmen", "Ingen ljudspelare"):
        assert gone not in md and gone not in rec["text"], gone
    # A link around a heading is a heading holding a link.
    assert "## [Läs om husets historia](http://kultur.test/om/historia/)" in lines, md
    # A table inside a list item stays a table.
    assert "| Vuxen | Barn |" in md, md
    assert "| 120 kronor | gratis |" in md, md
