"""`sunset replica generate`, `sunset serve-replica` and `sunset demo`, run as a user would."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

SUNSET = [sys.executable, "-m", "sunset"]


def run(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SUNSET, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )


def test_demo_prints_summary_and_leaves_nothing_listening(tmp_path: Path) -> None:
    result = run("demo", "--pages", "80", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sunset demo" in result.stdout and "4/4 checks" in result.stdout
    assert (
        "pages," in result.stdout
        and (tmp_path / "output" / "demo" / "crawl" / "indexes" / "index.cdxj").exists()
    )
    assert "stopped" in result.stdout
    # The later stages ran on that crawl: transform, redirects, the nginx check.
    demo = tmp_path / "output" / "demo"
    assert (demo / "crawl" / "content" / "pages.jsonl").exists()
    assert (demo / "successor" / "indexes" / "index.cdxj").exists()
    for name in ("redirects.map", "redirects.conf", "redirects.csv", "report.html"):
        assert (demo / "crawl" / "redirects" / name).exists(), name
    checked = re.search(r"([\d,]+) of ([\d,]+) answered as expected", result.stdout)
    assert checked and checked.group(1) == checked.group(2), result.stdout
    scores = json.loads((demo / "crawl" / "redirects" / "accuracy.json").read_text())
    # 80 pages leave most categories with one article or none, so listings have
    # little to follow; the 95% target is asserted on 150+ pages in test_redirects.
    assert scores["answered_301_share"] == 1.0 and scores["top1"] >= 0.75, scores
    # ... then package, verify and the audit report; the replay command is printed.
    assert (demo / "crawl" / "demo.wacz").exists()
    assert (demo / "crawl" / "report.html").exists()
    assert "no problems" in result.stdout
    assert f"sunset replay {demo / 'crawl' / 'demo.wacz'}" in result.stdout
    log = tmp_path / "output" / "demo" / "replica-access.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["target"] for e in entries} >= {"/robots.txt", "/sitemap.xml", "/"}
    # The replica ran under its real host names.
    hosts = {e["host"] for e in entries}
    assert {"www.wiganboroughccg.nhs.uk", "healthierwigan.nhs.uk"} <= hosts
    assert hosts <= {
        "www.wiganboroughccg.nhs.uk",
        "wiganboroughccg.nhs.uk",
        "healthierwigan.nhs.uk",
    }
    # A second run reuses the replica instead of regenerating it.
    again = run("demo", "--pages", "80", cwd=tmp_path)
    assert again.returncode == 0 and "generating" not in again.stderr


def test_replica_generate_and_bad_sizes(tmp_path: Path) -> None:
    ok = run("replica", "generate", "--pages", "60", "--out", "r", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "r" / "ground-truth" / "urls.jsonl").exists()
    bad = run("replica", "generate", "--pages", "10", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--pages" in bad.stderr
    assert "Traceback" not in bad.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_replica_until_ctrl_c(tmp_path: Path) -> None:
    run("replica", "generate", "--pages", "60", "--out", "r", cwd=tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [*SUNSET, "serve-replica", "--site", "r", "--legacy-port", str(port), "--pages", "60"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        assert f"127.0.0.1:{port}" in lines[0]
        assert any(f"www.wiganboroughccg.nhs.uk:80:127.0.0.1:{port}" in ln for ln in lines)
        r = requests.get(
            f"http://127.0.0.1:{port}/robots.txt",
            headers={"Host": "www.wiganboroughccg.nhs.uk"},
            timeout=5,
        )
        assert r.status_code == 200 and "Disallow: /members-area" in r.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(0.1)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_replica_port_in_use_is_one_line(tmp_path: Path) -> None:
    run("replica", "generate", "--pages", "60", "--out", "r", cwd=tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(
            "serve-replica",
            "--site",
            "r",
            "--pages",
            "60",
            "--legacy-port",
            str(port),
            cwd=tmp_path,
            timeout=30,
        )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_serve_replica_refuses_non_loopback(tmp_path: Path) -> None:
    result = run("serve-replica", "--host", "0.0.0.0", cwd=tmp_path, timeout=30)
    assert result.returncode == 2 and "loopback" in result.stderr
