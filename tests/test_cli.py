"""The sunset command line, run for real as a subprocess where it matters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sunset import __version__
from sunset.cli import SunsetGroup, default_out
from sunset.errors import NotBuiltYet, SunsetError
from sunset.profile import load_profile

STAGES = ["crawl", "transform", "redirects", "package", "verify", "replay", "report"]
COMMANDS = [*STAGES, "profile"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a fresh interpreter, as a user's shell would."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sunset", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def test_help_lists_every_subcommand() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert "crawl -> transform -> redirects -> package / verify / replay / report" in result.stdout
    commands_section = result.stdout.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands_section.splitlines() if line.strip()}
    assert set(COMMANDS) <= listed


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"sunset {__version__}"


@pytest.mark.parametrize(
    "command",
    [[c] for c in COMMANDS] + [["profile", "list"], ["profile", "show"], ["profile", "check"]],
    ids=lambda c: " ".join(c),
)
def test_every_subcommand_help_has_examples(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Examples:" in result.stdout
    # \b paragraphs keep one example per line instead of a rewrapped blob.
    examples = result.stdout.split("Examples:", 1)[1].splitlines()
    assert examples[1].strip().startswith("sunset ")


def test_console_script_is_installed_and_works(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("sunset")
    if not script.exists():
        pytest.skip("sunset console script not installed in this interpreter's bin/")
    result = subprocess.run(
        [str(script), "profile", "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "wigan" in result.stdout
    missing = subprocess.run(
        [str(script), "package", "no-such-crawl"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert "Traceback" not in missing.stderr


def test_profile_list() -> None:
    result = run("profile", "list")
    assert result.returncode == 0, result.stderr
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert {"demo", "wigan"} <= set(names)


def test_profile_check_ok() -> None:
    result = run("profile", "check", "wigan")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok: {load_profile('wigan').path}"


def test_profile_check_typo_exits_2_with_one_line(tmp_path: Path) -> None:
    text = load_profile("demo").path.read_text().replace("delay = 0", "dealy = 0")
    bad = tmp_path / "typo.toml"
    bad.write_text(text)
    result = run("profile", "check", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"sunset: error: profile {bad}: crawl.dealy: unknown key")
    assert "did you mean 'delay'?" in result.stderr


def test_profile_check_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('[site]\nname = "x\n')
    result = run("profile", "check", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"profile {bad}: line 2" in result.stderr


def test_profile_check_unknown_name() -> None:
    result = run("profile", "check", "wigna")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "did you mean 'wigan'?" in result.stderr


@pytest.mark.parametrize("name", ["wigan", "demo"])
def test_profile_show_toml_round_trips(tmp_path: Path, name: str) -> None:
    result = run("profile", "show", name)
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "copy.toml"
    copy.write_text(result.stdout)
    check = run("profile", "check", str(copy))
    assert check.returncode == 0, check.stderr
    original, reloaded = load_profile(name), load_profile(copy)
    for table in ("site", "crawl", "boilerplate", "successor", "redirects"):
        assert getattr(reloaded, table) == getattr(original, table), table


def test_profile_show_json() -> None:
    result = run("profile", "show", "demo", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["crawl"]["delay"] == 0
    assert data["site"]["frozen"] == "2019-11-04"


def test_bad_connect_to_is_a_usage_error(tmp_path: Path) -> None:
    result = run("crawl", "-p", "demo", "--connect-to", "nonsense", cwd=tmp_path)
    assert result.returncode == 2
    assert "expected HOST:PORT:ADDR:PORT2" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------
# The error wrapper, on a throwaway group so the real CLI is not modified.


def make_group() -> click.Group:
    @click.group(cls=SunsetGroup)
    def group() -> None:
        pass

    @group.group()
    def nested() -> None:
        pass

    @nested.command()
    def fails() -> None:
        raise SunsetError("first line\nsecond line")

    @group.command()
    def interrupted() -> None:
        raise KeyboardInterrupt

    @group.command()
    def later() -> None:
        raise NotBuiltYet("'sunset later' is not built yet (issue #9)")

    return group


def test_wrapper_turns_errors_into_one_line() -> None:
    runner = CliRunner()
    result = runner.invoke(make_group(), ["nested", "fails"])
    assert result.exit_code == 2
    # .output holds stderr on every click >= 8.1 (mixed in 8.1, appended later).
    assert result.output == "sunset: error: first line second line\n"
    result = runner.invoke(make_group(), ["later"])
    assert result.exit_code == 3


def test_wrapper_ctrl_c_exits_130() -> None:
    result = CliRunner().invoke(make_group(), ["interrupted"])
    assert result.exit_code == 130
    assert result.output == "sunset: interrupted\n"


# ---------------------------------------------------------------------------
# Output location


def test_default_out_is_under_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_out("wigan") == tmp_path / "output" / "wigan"
    assert not (tmp_path / "output").exists(), "computing a path must not create it"


@pytest.mark.parametrize("name", ["", "../etc", "a/b", ".hidden", "a b"])
def test_default_out_rejects_unsafe_names(name: str) -> None:
    with pytest.raises(SunsetError):
        default_out(name)
