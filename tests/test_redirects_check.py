"""redirects.check: a real nginx serves the generated folder and every old URL is asked for."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_redirects_nginx import ARCHIVE, ARTICLE, HAND_ROWS, NEW, SITE, row

from redirects.check import check
from redirects.csvio import write_csv
from redirects.model import GONE, Row
from redirects.nginx import EXACT_MAP, MAP_FILES, write_nginx
from sunset.errors import SunsetError
from sunset.nginx import NGINX

pytestmark = [
    pytest.mark.skipif(
        not Path(NGINX).is_file(), reason="nginx is not installed (./dev setup installs it)"
    ),
    pytest.mark.timeout(120),
]


def generate(out: Path, rows: list[Row]) -> Path:
    write_nginx(rows, SITE, out)
    write_csv(rows, out / "redirects.csv")
    return out


def test_good_output_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = generate(tmp_path / "redirects", HAND_ROWS)
    result = check(out)
    assert result.ok and result.exit_code == 0, result.summary()
    assert result.rows == len(HAND_ROWS)
    assert result.variants > 10
    assert result.requested == len(HAND_ROWS) + result.variants
    assert result.passed == result.requested
    assert result.conf_matches and not result.not_as_listed and not result.unsendable
    assert "0 wrong" in result.summary()
    # Without a terminal, progress is one line on stderr at the end.
    assert "checking redirects:" in capsys.readouterr().err


def test_a_tampered_map_line_is_a_failure(tmp_path: Path) -> None:
    out = generate(tmp_path / "redirects", HAND_ROWS)
    exact = out / EXACT_MAP
    text = exact.read_text()
    line = f'"{ARTICLE}&Itemid=282" "{NEW}/flu-clinics";'
    assert line in text
    exact.write_text(text.replace(line, f'"{ARTICLE}&Itemid=282" "{NEW}/somewhere-else";'))
    result = check(out, variants=False, progress=False)
    assert not result.ok and result.exit_code == 1
    assert result.variants == 0 and result.requested == len(HAND_ROWS)
    [failure] = result.failures
    assert failure.url == ARTICLE + "&Itemid=282"
    assert failure.expected == NEW + "/flu-clinics" and failure.expected_status == 301
    assert (failure.status, failure.location) == (301, NEW + "/somewhere-else")
    assert "somewhere-else" in result.summary()


def test_a_gone_page_that_redirects_is_a_failure(tmp_path: Path) -> None:
    out = generate(tmp_path / "redirects", HAND_ROWS)
    # All three maps answer /old-consultation: break it in each.
    for name in MAP_FILES.values():
        path = out / name
        path.write_text(path.read_text().replace('"410 ', '"'))
    result = check(out, progress=False)
    failed = {f.url: f for f in result.failures}
    page = "/old-consultation"
    assert set(failed) == {page, page.upper(), page + "/", page + "?utm_source=sunset-check"}
    assert failed["/old-consultation"].status == 301
    assert failed["/old-consultation"].expected_status == GONE
    assert failed["/old-consultation"].expected == ARCHIVE + "/old-consultation?a=1&b=2"


def test_refused_and_collided_rows_are_counted_not_failed(tmp_path: Path) -> None:
    rows = [
        *HAND_ROWS,
        row("/Page", NEW + "/a", confidence=0.4),
        row("/page", NEW + "/b", confidence=0.8),
        row("/evil", "https://evil.example/"),
        row("/with space", NEW + "/x"),
    ]
    out = generate(tmp_path / "redirects", rows)
    result = check(out, progress=False)
    assert result.ok, result.summary()
    # /Page lost to /page, /evil was refused (both still get an answer: checked);
    # "/with space" cannot be sent at all.
    assert result.not_as_listed == 2 and result.unsendable == 1
    assert "cannot get their own target" in result.summary()


def test_hand_edited_conf_is_noticed_and_an_unloadable_map_is_an_error(tmp_path: Path) -> None:
    out = generate(tmp_path / "redirects", HAND_ROWS[:3])
    conf = out / "redirects.conf"
    conf.write_text(conf.read_text().replace("absolute_redirect off;", "absolute_redirect off; "))
    result = check(out, progress=False)
    assert result.ok and not result.conf_matches
    assert "differs" in result.summary()
    (out / EXACT_MAP).write_text('"/a" "https://healthierwigan.nhs.uk/";\n"/b"\n')
    with pytest.raises(SunsetError, match="nginx does not serve"):
        check(out, progress=False)
    (out / EXACT_MAP).unlink()
    with pytest.raises(SunsetError, match=r"no redirects\.map"):
        check(out, progress=False)


def test_uncrawled_variants_follow_the_writers_rules(tmp_path: Path) -> None:
    rows = [
        row("/Services/Flu/", NEW + "/flu/"),
        row("/services/flu/clinics?id=3", NEW + "/clinics/"),
        row("/gone", ARCHIVE + "/gone", status=GONE),
    ]
    out = generate(tmp_path / "redirects", rows)
    result = check(out, progress=False)
    assert result.ok, result.summary()
    # Per path: a tracking parameter, upper case, the other trailing slash.
    assert result.variants == 3 * 3
