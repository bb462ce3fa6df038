"""Separate virtual environments for tools whose pins would clash with sunset's.

pywb pins ``redis==2.10.6`` and ``werkzeug==3.1.7``; scrapy-redis needs
``redis>=4.2``. Rather than downgrade the project, each such tool gets its
own venv, created on first use and reused afterwards, and sunset runs its
commands as subprocesses. The venvs live under ``$SUNSET_TOOLS_DIR`` (default
``~/.cache/sunset/tools``), one folder per tool, and are rebuilt when the
requirement list changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sunset.errors import SunsetError
from sunset.ui import console

# Only the lower bounds sunset was tested with; the tools' own pins come along.
TOOLS: dict[str, tuple[str, ...]] = {
    "pywb": ("pywb>=2.9",),
    "wacz": ("wacz>=0.5",),
}


def tools_dir() -> Path:
    env = os.environ.get("SUNSET_TOOLS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "sunset" / "tools"


def _stamp(requirements: tuple[str, ...]) -> str:
    text = "\n".join((sys.version, *requirements))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tool_bin(name: str, command: str | None = None) -> Path:
    """Path of ``command`` (default: ``name``) in the tool's venv, installing it if needed."""
    if name not in TOOLS:
        raise SunsetError(f"unknown tool {name!r}")
    requirements = TOOLS[name]
    venv = tools_dir() / name
    stamp_file = venv / ".sunset-stamp"
    stamp = _stamp(requirements)
    exe = venv / "bin" / (command or name)
    if stamp_file.is_file() and stamp_file.read_text().strip() == stamp and exe.exists():
        return exe
    console.print(f"installing {name} into its own environment at {venv} (first use only) …")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *requirements],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        detail = ""
        if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
            lines = exc.stderr.decode(errors="replace").strip().splitlines()
            detail = f": {lines[-1]}" if lines else ""
        raise SunsetError(f"could not install {name} into {venv}{detail}") from None
    if not exe.exists():
        raise SunsetError(f"{name} installed into {venv} but has no {exe.name} command")
    stamp_file.write_text(stamp + "\n")
    return exe


def main(argv: list[str] | None = None) -> int:
    """``python -m replay.tools [NAME ...]``: make sure the tools' venvs exist (all by default).

    ``./dev`` runs this during setup, so a first ``sunset replay`` or test run
    does not stop for a minute to install pywb.
    """
    names = (sys.argv[1:] if argv is None else argv) or sorted(TOOLS)
    try:
        for name in names:
            tool_bin(name, "wayback" if name == "pywb" else None)
    except SunsetError as exc:
        print(f"replay.tools: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
