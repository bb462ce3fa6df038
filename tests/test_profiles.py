"""Site profiles: shipped ones load, and every mistake is one precise line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from sunset import __version__
from sunset.errors import SunsetError
from sunset.profile import (
    DEFAULT_SIGNIFICANT_QUERY_PARAMS,
    ConnectTo,
    Profile,
    ProfileError,
    list_profiles,
    load_profile,
    parse_connect_to,
    parse_size,
)

SITE = """
[site]
name = "Example"
start_urls = ["https://www.example.org/"]
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str) -> Profile:
    return load_profile(write(tmp_path, text))


# --------------------------------------------------------------------------
# Shipped profiles


def test_shipped_profiles_are_listed() -> None:
    assert {"wigan", "demo"} <= set(list_profiles())


@pytest.mark.parametrize("name", ["wigan", "demo"])
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.path.name == f"{name}.toml"
    assert profile.site.frozen == dt.date(2019, 11, 4)
    assert set(profile.site.allowed_hosts) == {
        "www.wiganboroughccg.nhs.uk",
        "wiganboroughccg.nhs.uk",
    }
    assert profile.successor.host == "healthierwigan.nhs.uk"
    assert profile.redirects.archive_url == (
        "https://webarchive.nationalarchives.gov.uk/ukgwa/{timestamp}/{url}"
    )
    assert profile.redirects.home == profile.successor.base_url
    assert profile.boilerplate.selectors, "the Joomla template furniture must be listed"
    assert "form#login-form" in profile.boilerplate.selectors
    assert any("1000 characters left" in p for p in profile.boilerplate.text_patterns)
    assert any("no longer being updated" in p for p in profile.boilerplate.text_patterns)


def test_wigan_is_the_live_site_and_excludes_joomla_admin() -> None:
    profile = load_profile("wigan")
    assert profile.site.start_urls == ("https://www.wiganboroughccg.nhs.uk/",)
    assert profile.successor.base_url == "https://healthierwigan.nhs.uk/"
    assert profile.successor.inventory_sitemap == "https://healthierwigan.nhs.uk/sitemap.xml"

    def excluded(url: str) -> bool:
        return any(re.search(p, url) for p in profile.site.exclude)

    assert excluded("https://www.wiganboroughccg.nhs.uk/administrator/index.php")
    assert excluded("https://www.wiganboroughccg.nhs.uk/component/users/?view=login")
    assert excluded(
        "https://www.wiganboroughccg.nhs.uk/index.php?option=com_users&task=user.logout"
    )
    assert excluded("https://www.wiganboroughccg.nhs.uk/index.php?task=user.login")
    assert not excluded("https://www.wiganboroughccg.nhs.uk/about-us/governing-body")
    assert not excluded("https://www.wiganboroughccg.nhs.uk/index.php?option=com_content&id=12")


def test_demo_is_fast_and_local() -> None:
    profile = load_profile("demo")
    assert profile.site.start_urls == ("http://www.wiganboroughccg.nhs.uk/",)
    assert profile.successor.base_url == "http://healthierwigan.nhs.uk/"
    # No live sitemap: the demo's inventory is its crawl of the served successor.
    assert profile.successor.inventory_sitemap is None
    assert profile.crawl.delay == 0
    assert profile.crawl.concurrency_per_host == 8
    assert profile.crawl.autothrottle is False
    assert profile.crawl.connect_to == ()


# --------------------------------------------------------------------------
# Defaults and value handling


def test_minimal_profile_gets_defaults(tmp_path: Path) -> None:
    profile = load_text(
        tmp_path,
        """
[site]
name = "Example"
start_urls = ["https://www.example.org/", "https://www.example.org/a", "http://Example.org/"]
""",
    )
    assert profile.site.allowed_hosts == ("www.example.org", "example.org")
    crawl = profile.crawl
    assert crawl.obey_robots and crawl.use_sitemap and crawl.autothrottle
    assert (crawl.concurrency_per_host, crawl.delay, crawl.timeout, crawl.retries) == (
        4,
        0.25,
        30,
        2,
    )
    assert (crawl.max_depth, crawl.max_path_depth, crawl.max_repeated_segments) == (20, 12, 3)
    assert crawl.max_query_variants == 50
    assert crawl.max_body_size == 100_000_000
    assert crawl.warc_max_size == 1_000_000_000
    assert __version__ in crawl.user_agent
    assert any("phpsessid" in p for p in crawl.trap_patterns)
    assert any("month" in p for p in crawl.calendar_patterns)
    assert crawl.max_calendar_variants == 24
    assert profile.boilerplate.min_share == 0.5
    assert profile.redirects.significant_query_params == DEFAULT_SIGNIFICANT_QUERY_PARAMS
    assert profile.redirects.archive_mode == "redirect"
    assert profile.redirects.home is None
    assert profile.successor.base_url is None


def test_paths_resolve_relative_to_the_profile(tmp_path: Path) -> None:
    sub = tmp_path / "profiles"
    sub.mkdir()
    path = write(
        sub,
        SITE
        + """
[successor]
base_url = "https://new.example.org/"
inventory_sitemap = "data/sitemap.xml"
inventory_csv = "../inventory.csv"
inventory_warc = "/abs/new.warc.gz"

[redirects]
overrides = "overrides.csv"
""",
    )
    profile = load_profile(path)
    assert profile.successor.host == "new.example.org"
    assert profile.successor.inventory_sitemap == (sub / "data/sitemap.xml").resolve()
    assert profile.successor.inventory_csv == (tmp_path / "inventory.csv").resolve()
    assert profile.successor.inventory_warc == Path("/abs/new.warc.gz")
    assert profile.redirects.overrides == (sub / "overrides.csv").resolve()
    assert profile.redirects.home == "https://new.example.org/"


def test_full_profile_values(tmp_path: Path) -> None:
    profile = load_text(
        tmp_path,
        SITE
        + """
frozen = "2020-01-31"
include = ['^https://www\\.example\\.org/keep/']

[crawl]
contact = "archive@example.org"
operator = "Example Archive"
max_body_size = 2048
warc_max_size = "1.5GiB"
connect_to = ["www.example.org:443:127.0.0.1:8443", "example.org:80:[::1]:8080"]

[boilerplate]
selectors = ["nav", ".footer"]
min_share = 1

[redirects]
archive_url = "https://archive.example.net/{url}"
archive_mode = "gone"
home = "https://new.example.org/"

[redirects.section_rules]
"/news" = "https://new.example.org/news/"
"/about-us/" = "/about/"
""",
    )
    assert profile.site.frozen == dt.date(2020, 1, 31)
    assert profile.crawl.max_body_size == 2048
    assert profile.crawl.warc_max_size == int(1.5 * 1024**3)
    assert profile.crawl.connect_to == (
        ConnectTo("www.example.org", 443, "127.0.0.1", 8443),
        ConnectTo("example.org", 80, "::1", 8080),
    )
    assert profile.boilerplate.min_share == 1.0
    assert profile.redirects.section_rules == (
        ("/news", "https://new.example.org/news/"),
        ("/about-us/", "/about/"),
    )
    assert profile.redirects.archive_mode == "gone"


def test_profiles_are_frozen() -> None:
    profile = load_profile("demo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.crawl.delay = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        (4096, 4096),
        ("50MB", 50_000_000),
        ("1GB", 1_000_000_000),
        ("1gb", 1_000_000_000),
        ("512 KiB", 512 * 1024),
        ("1.5MB", 1_500_000),
        ("10B", 10),
        ("2TiB", 2 * 1024**4),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "ten MB", "5 XB", "-1MB", 0, -5, True, "0MB", 1.5])
def test_parse_size_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_size(text)  # type: ignore[arg-type]


def test_parse_connect_to() -> None:
    rule = parse_connect_to("WWW.Example.org:80:127.0.0.1:8001")
    assert rule == ConnectTo(host="www.example.org", port=80, addr="127.0.0.1", port2=8001)
    assert str(rule) == "www.example.org:80:127.0.0.1:8001"
    v6 = parse_connect_to("example.org:443:[::1]:8443")
    assert v6.addr == "::1"
    assert str(v6) == "example.org:443:[::1]:8443"
    assert parse_connect_to(str(v6)) == v6


@pytest.mark.parametrize(
    "text",
    [
        "example.org:80:127.0.0.1",
        ":80:127.0.0.1:8001",
        "example.org::127.0.0.1:8001",
        "example.org:80:127.0.0.1:99999",
        "example.org:0:127.0.0.1:8001",
        "http://example.org:80:127.0.0.1:8001",
        "example.org:80:::1:8001",
        "",
    ],
)
def test_parse_connect_to_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_connect_to(text)


# --------------------------------------------------------------------------
# Overrides


def test_with_overrides_revalidates_and_recomputes_defaults(tmp_path: Path) -> None:
    profile = load_text(tmp_path, SITE)
    changed = profile.with_overrides(
        start_urls=["http://other.example.org/"],
        connect_to=["other.example.org:80:127.0.0.1:8001"],
        delay=0,
        operator=None,
    )
    assert changed.site.start_urls == ("http://other.example.org/",)
    # allowed_hosts was defaulted, so it follows the new start URLs.
    assert changed.site.allowed_hosts == ("other.example.org",)
    assert changed.crawl.connect_to == (ConnectTo("other.example.org", 80, "127.0.0.1", 8001),)
    assert changed.crawl.delay == 0
    assert changed.crawl.operator is None
    assert profile.site.start_urls == ("https://www.example.org/",), "original untouched"
    # Loaded values can be fed back in.
    again = changed.with_overrides(connect_to=changed.crawl.connect_to)
    assert again.crawl.connect_to == changed.crawl.connect_to
    assert again == changed


def test_demo_with_connect_to_override() -> None:
    demo = load_profile("demo").with_overrides(
        connect_to=[
            ConnectTo("www.wiganboroughccg.nhs.uk", 80, "127.0.0.1", 18080),
            "healthierwigan.nhs.uk:80:127.0.0.1:18080",
        ]
    )
    assert [c.port2 for c in demo.crawl.connect_to] == [18080, 18080]
    assert demo.site.allowed_hosts == load_profile("demo").site.allowed_hosts


def test_with_overrides_errors_are_one_line(tmp_path: Path) -> None:
    profile = load_text(tmp_path, SITE)
    with pytest.raises(ProfileError) as bad_value:
        profile.with_overrides(connect_to=["nonsense"])
    message = str(bad_value.value)
    assert "\n" not in message
    assert "crawl.connect_to[0]" in message
    assert "with overrides" in message
    with pytest.raises(
        ProfileError, match=r"override dealy: unknown key \(did you mean 'delay'\?\)"
    ):
        profile.with_overrides(dealy=1)


# --------------------------------------------------------------------------
# Errors: one line, naming the file and the dotted key

ERROR_CASES = [
    pytest.param(
        SITE + "[crawl]\ndealy = 1\n",
        "crawl.dealy",
        "unknown key (did you mean 'delay'?)",
        id="unknown-key-suggestion",
    ),
    pytest.param(
        SITE + "[crawl]\nbananas = 1\n", "crawl.bananas", "unknown key", id="unknown-key-plain"
    ),
    pytest.param(
        SITE + "[crawll]\ndelay = 1\n",
        "crawll",
        "unknown table (did you mean 'crawl'?)",
        id="unknown-table",
    ),
    pytest.param("colour = 'red'\n" + SITE, "colour", "unknown key", id="unknown-top-level-key"),
    pytest.param("site = 3\n", "site", "expected a table [site], got 3", id="table-not-table"),
    pytest.param(
        SITE + "[crawl]\ndelay = 'fast'\n",
        "crawl.delay",
        "expected a number >= 0, got 'fast'",
        id="wrong-type-number",
    ),
    pytest.param(
        SITE + "[crawl]\ndelay = -1\n", "crawl.delay", "expected a number >= 0", id="negative"
    ),
    pytest.param(
        SITE + "[crawl]\nconcurrency_per_host = true\n",
        "crawl.concurrency_per_host",
        "expected an integer >= 1, got true",
        id="bool-as-int",
    ),
    pytest.param(
        SITE + "[crawl]\nretries = 1.5\n",
        "crawl.retries",
        "expected an integer >= 0, got 1.5",
        id="float-as-int",
    ),
    pytest.param(
        SITE + "[crawl]\nobey_robots = 'yes'\n",
        "crawl.obey_robots",
        "expected true or false, got 'yes'",
        id="wrong-type-bool",
    ),
    pytest.param(
        SITE + "[crawl]\ntimeout = 0\n", "crawl.timeout", "expected a number > 0", id="timeout-0"
    ),
    pytest.param(
        SITE + "exclude = ['(unclosed']\n",
        "site.exclude[0]",
        "invalid regular expression '(unclosed'",
        id="bad-regex",
    ),
    pytest.param(
        SITE + "[crawl]\ntrap_patterns = 'x'\n",
        "crawl.trap_patterns",
        "expected a list of regular expressions, got 'x'",
        id="regex-not-list",
    ),
    pytest.param(
        '[site]\nname = "x"\nstart_urls = ["https://ok.example/", "ftp://x.example/"]\n',
        "site.start_urls[1]",
        "expected an http(s) URL, got 'ftp://x.example/'",
        id="bad-url",
    ),
    pytest.param(
        '[site]\nname = "x"\nstart_urls = []\n',
        "site.start_urls",
        "expected a non-empty list of http(s) URLs",
        id="empty-start-urls",
    ),
    pytest.param(
        SITE + "[successor]\nbase_url = 'healthierwigan.nhs.uk'\n",
        "successor.base_url",
        "expected an http(s) URL",
        id="url-without-scheme",
    ),
    pytest.param(
        SITE + "allowed_hosts = ['https://www.example.org/']\n",
        "site.allowed_hosts[0]",
        "expected a host name",
        id="host-with-scheme",
    ),
    pytest.param(
        SITE + "allowed_hosts = ['other.example.org']\n",
        "site.start_urls[0]",
        "host 'www.example.org' is not in site.allowed_hosts",
        id="start-url-outside-allowed-hosts",
    ),
    pytest.param(
        SITE + "[crawl]\nmax_body_size = 'lots'\n",
        "crawl.max_body_size",
        "expected a size like '50MB'",
        id="bad-size",
    ),
    pytest.param(
        SITE + "[crawl]\nwarc_max_size = 0\n",
        "crawl.warc_max_size",
        "expected a size > 0",
        id="zero-size",
    ),
    pytest.param(
        SITE + "[crawl]\nconnect_to = ['www.example.org:80:127.0.0.1']\n",
        "crawl.connect_to[0]",
        "expected HOST:PORT:ADDR:PORT2",
        id="bad-connect-to",
    ),
    pytest.param(
        SITE + "[crawl]\nconnect_to = ['www.example.org:80:127.0.0.1:70000']\n",
        "crawl.connect_to[0]",
        "ports must be between 1 and 65535",
        id="connect-to-port-range",
    ),
    pytest.param(
        SITE + "[crawl]\ncontact = 'call me'\n",
        "crawl.contact",
        "expected an e-mail address or http(s) URL",
        id="bad-contact",
    ),
    pytest.param(
        '[site]\nstart_urls = ["https://www.example.org/"]\n',
        "site.name",
        "required key is missing",
        id="missing-name",
    ),
    pytest.param(
        '[site]\nname = "x"\n', "site.start_urls", "required key is missing", id="missing-urls"
    ),
    pytest.param(
        "[crawl]\ndelay = 1\n", "site", "required table [site] is missing", id="missing-site"
    ),
    pytest.param(
        SITE + "frozen = '04/11/2019'\n",
        "site.frozen",
        "expected a date YYYY-MM-DD",
        id="bad-date",
    ),
    pytest.param(
        SITE + "frozen = '2019-13-01'\n",
        "site.frozen",
        "expected a date YYYY-MM-DD",
        id="impossible-date",
    ),
    pytest.param(
        SITE + "frozen = 2019-11-04T10:00:00\n",
        "site.frozen",
        "expected a date YYYY-MM-DD",
        id="datetime-not-date",
    ),
    pytest.param(
        SITE + "[boilerplate]\nmin_share = 0\n",
        "boilerplate.min_share",
        "expected a number in (0, 1], got 0",
        id="min-share-zero",
    ),
    pytest.param(
        SITE + "[boilerplate]\nmin_share = 1.5\n",
        "boilerplate.min_share",
        "expected a number in (0, 1]",
        id="min-share-high",
    ),
    pytest.param(
        SITE + "[redirects]\narchive_url = 'https://archive.example.net/'\n",
        "redirects.archive_url",
        "expected a URL template containing {url}",
        id="archive-url-no-placeholder",
    ),
    pytest.param(
        SITE + "[redirects]\narchive_url = 'https://a.example.net/{date}/{url}'\n",
        "redirects.archive_url",
        "unknown placeholder {date}",
        id="archive-url-unknown-placeholder",
    ),
    pytest.param(
        SITE + "[redirects]\narchive_mode = 'delete'\n",
        "redirects.archive_mode",
        "expected one of 'redirect', 'gone', got 'delete'",
        id="bad-choice",
    ),
    pytest.param(
        SITE + "[redirects.section_rules]\nnews = '/news/'\n",
        "redirects.section_rules.news",
        "old path prefix must start with '/'",
        id="section-rule-prefix",
    ),
    pytest.param(
        SITE + '[redirects.section_rules]\n"/news" = "news page"\n',
        'redirects.section_rules."/news"',
        "expected an http(s) URL or a path starting with '/'",
        id="section-rule-target",
    ),
    pytest.param(
        SITE + "[successor]\ninventory_csv = 'https://x.example/inv.csv'\n",
        "successor.inventory_csv",
        "expected a local file path, not a URL",
        id="url-for-path",
    ),
]


@pytest.mark.parametrize(("text", "key", "fragment"), ERROR_CASES)
def test_validation_errors_are_one_line(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"profile {path}: {key}: "), message
    assert fragment in message, message
    assert caught.value.key == key
    assert isinstance(caught.value, SunsetError)
    assert caught.value.exit_code == 2


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + "[crawl]\ndelay = = 1\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"profile {path}: line 6, column "), message
    assert "invalid TOML" in message


def test_toml_error_at_end_of_file(tmp_path: Path) -> None:
    path = write(tmp_path, SITE + 'description = "unterminated')
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"profile {path}: ")
    assert "invalid TOML" in str(caught.value)


def test_non_utf8_profile(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(SITE.encode() + b'description = "caf\xe9"\n')
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile(path)


def test_unknown_profile_name_suggests() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile("wigna")
    message = str(caught.value)
    assert "\n" not in message
    assert "did you mean 'wigan'?" in message
    assert "demo" in message and "wigan" in message


def test_missing_profile_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(missing)
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(str(missing))


def test_bare_name_does_not_read_cwd_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A file called "demo" in the working directory must not shadow the
    # shipped profile of that name.
    (tmp_path / "demo").write_text("garbage = = =")
    monkeypatch.chdir(tmp_path)
    assert load_profile("demo").name == "demo"
