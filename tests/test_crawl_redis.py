"""Several `sunset crawl --redis` workers sharing one crawl through a real redis-server.

Real parts only: redis-server from Debian on a loopback port, the replica over
HTTP on 127.0.0.1, each worker a subprocess of the installed CLI, SIGKILL for
a lost worker, `warcio check` on every file.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from replica import generate, serve
from replica.generate import iter_jsonl

REDIS_SERVER = shutil.which("redis-server")
WARCIO = str(Path(sys.executable).with_name("warcio"))
LEGACY = "www.wiganboroughccg.nhs.uk"

pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (./dev setup installs it)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """A redis-server on loopback, persisting to `folder` (so a restart finds the crawl)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = subprocess.Popen(
        [
            str(REDIS_SERVER),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def sunset_crawl(out: Path, redis_url: str, *extra: str) -> list[str]:
    base = [sys.executable, "-m", "sunset", "crawl", "-p", "demo", "--out", str(out)]
    return [*base, "--name", "shared", "--redis", redis_url, *extra]


def worker_cmd(out: Path, run, redis_url: str, *extra: str) -> list[str]:
    connect = [a for entry in run.connect_to for a in ("--connect-to", entry)]
    return sunset_crawl(out, redis_url, *connect, *extra)


def finish(out: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sunset_crawl(out, redis_url, "--finish"), capture_output=True, text=True, timeout=120
    )


def log_lines(path: Path) -> int:
    try:
        return sum(1 for _ in open(path, encoding="utf-8"))
    except OSError:
        return 0


def captures(out: Path) -> tuple[Counter[str], Counter[str]]:
    """(all captures, full responses with a 2xx status) per target URL, over every WARC."""
    every: Counter[str] = Counter()
    full: Counter[str] = Counter()
    for path in sorted((out / "warc").glob("*.warc.gz")):
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type not in ("response", "revisit"):
                    continue
                url = rec.rec_headers.get_header("WARC-Target-URI")
                every[url] += 1
                if rec.rec_type == "response" and rec.http_headers.get_statuscode()[:1] == "2":
                    full[url] += 1
    return every, full


def warcio_check(out: Path) -> None:
    files = sorted((out / "warc").glob("*.warc.gz"))
    assert files and not list((out / "warc").glob("*.open"))
    result = subprocess.run([WARCIO, "check", *map(str, files)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]


def assert_complete(out: Path, site: Path, max_twice: int = 1) -> dict:
    truth = {u["url"]: u for u in iter_jsonl(site / "ground-truth" / "urls.jsonl")}
    expected = {u for u, v in truth.items() if v["capture"]}
    every, full = captures(out)
    assert expected - set(every) == set()
    assert {u for u, v in truth.items() if not v["capture"]} & set(every) == set()
    summary = json.loads((out / "crawl.json").read_text())
    # A URL re-done after its worker was lost is a revisit of the first capture,
    # unless the worker died between writing the record and sharing its digest:
    # then both are whole responses, and --finish names the URL.
    twice = sorted(u for u, n in full.items() if n > 1)
    assert twice == sorted(summary["urls_captured_twice"])
    assert len(twice) <= max_twice, twice
    index = (out / "indexes" / "index.cdxj").read_text().splitlines()
    indexed = {json.loads(line.split(" ", 2)[2])["url"] for line in index}
    assert expected - indexed == set()
    warcio_check(out)
    return summary


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shared") / "site"
    generate(out, pages=150, seed=3)
    return out


def test_three_workers_one_killed_midway(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "crawl"
    with redis_server(tmp_path / "redis") as url, serve(site, delay_ms=10) as run:
        procs = [
            subprocess.Popen(
                worker_cmd(out, run, url, "--worker", f"w{i}", "--concurrency", "4"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in (1, 2, 3)
        ]
        victim = out / "workers" / "w2" / "crawl.log"
        deadline = time.monotonic() + 120
        while log_lines(victim) < 60 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert log_lines(victim) >= 60, "worker w2 never got going"
        procs[1].send_signal(signal.SIGKILL)
        results = [p.communicate(timeout=300) for p in procs]
        assert procs[1].returncode == -signal.SIGKILL
        for p, (_, err) in ((procs[0], results[0]), (procs[2], results[2])):
            assert p.returncode == 0, err[-2000:]
        done = finish(out, url)
        assert done.returncode == 0, done.stderr
    summary = assert_complete(out, site)
    workers = {w["worker"]: w for w in summary["workers"]}
    assert set(workers) == {"w1", "w2", "w3"}
    assert "killed" in workers["w2"].get("stopped", "")
    # The survivors took back what w2 had leased when it died.
    assert (
        workers["w1"]["reclaimed_from_lost_workers"] + workers["w3"]["reclaimed_from_lost_workers"]
        >= 1
    )
    assert {f.split("-")[1] for f in summary["warc_files"]} == {"w1", "w2", "w3"}
    notes = Counter(
        line.split()[9].rsplit("worker:", 1)[-1]
        for line in (out / "crawl.log").read_text().splitlines()
    )
    assert set(notes) == {"w1", "w2", "w3"}
    pages = [json.loads(line)["url"] for line in (out / "pages.jsonl").read_text().splitlines()]
    assert len(pages) == len(set(pages))


def test_delay_holds_across_workers(tmp_path: Path) -> None:
    site = tmp_path / "site"
    generate(site, pages=50, seed=5)
    log = tmp_path / "access.jsonl"
    out = tmp_path / "crawl"
    delay = 0.05
    with redis_server(tmp_path / "redis") as url, serve(site, access_log=log) as run:
        procs = [
            subprocess.Popen(
                worker_cmd(out, run, url, "--delay", str(delay), "--max-pages", "90"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-2000:]
    hits = [json.loads(line) for line in log.read_text().splitlines()]
    per_worker = Counter(
        line.split()[9].rsplit("worker:", 1)[-1]
        for w in (out / "workers").iterdir()
        for line in (w / "crawl.log").read_text().splitlines()
    )
    assert len(per_worker) == 3 and min(per_worker.values()) >= 5, per_worker
    times = sorted(h["t"] for h in hits if h.get("host", LEGACY).split(":")[0] == LEGACY)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) > 40
    # Three workers each keeping the delay on their own would hit the host
    # about every delay/3; one crawl-wide delay keeps the gaps near `delay`.
    # The times are the replica's, taken after it wrote each response, so a
    # single gap can shrink by the server's own jitter; the spread cannot.
    assert statistics.fmean(gaps) >= 0.95 * delay, statistics.fmean(gaps)
    assert statistics.median(gaps) >= 0.9 * delay, statistics.median(gaps)
    assert statistics.quantiles(gaps, n=10)[0] >= 0.6 * delay, sorted(gaps)[:10]


def test_redis_lost_midway_then_back(site: Path, tmp_path: Path) -> None:
    out = tmp_path / "crawl"
    port = free_port()
    with serve(site, delay_ms=10) as run:
        with redis_server(tmp_path / "redis", port) as url:
            procs = [
                subprocess.Popen(
                    worker_cmd(out, run, url, "--concurrency", "4"),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if sum(log_lines(p) for p in out.glob("workers/*/crawl.log")) >= 120:
                    break
                time.sleep(0.02)
        # redis-server has stopped (SIGTERM, state saved): the workers stop cleanly.
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 1, err[-2000:]
            lines = [line for line in err.strip().splitlines() if line.strip()]
            assert "lost Redis" in lines[-1] and "Traceback" not in err, err[-2000:]
        warcio_check(out)
        before = sum(1 for _ in out.glob("warc/*.warc.gz"))
        with redis_server(tmp_path / "redis", port) as url:
            again = [
                subprocess.Popen(
                    worker_cmd(out, run, url),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(2)
            ]
            for p in again:
                _, err = p.communicate(timeout=300)
                assert p.returncode == 0, err[-2000:]
            done = finish(out, url)
            assert done.returncode == 0, done.stderr
    assert sum(1 for _ in out.glob("warc/*.warc.gz")) > before
    # What each worker had fetched and written but not yet reported to Redis
    # when it went away is fetched again: at most its concurrency (4) per worker.
    assert_complete(out, site, max_twice=8)


def test_unreachable_redis_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        sunset_crawl(tmp_path / "c", f"redis://127.0.0.1:{port}/0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot reach Redis" in err[0], result.stderr
    assert "Traceback" not in result.stderr


def test_scrapy_redis_and_pywb_each_have_their_redis_client() -> None:
    """pywb pins redis 2.10.6, scrapy-redis needs redis>=4.2: both resolve, in separate venvs."""
    from replay.tools import tool_bin

    main = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert main.returncode == 0, main.stdout
    import redis
    import scrapy_redis  # noqa: F401

    assert tuple(int(x) for x in redis.__version__.split(".")[:2]) >= (4, 2)
    pywb_python = tool_bin("pywb").with_name("python")
    theirs = subprocess.run(
        [str(pywb_python), "-c", "import redis, pywb; print(redis.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stdout.strip().startswith("2."), theirs.stdout
    check = subprocess.run(
        [str(pywb_python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout


def test_finish_and_workers_refuse_bad_input(tmp_path: Path) -> None:
    """--finish on damaged worker files, the wrong name, no Redis; a worker after the finish."""
    import redis

    out = tmp_path / "crawl"
    (out / "warc").mkdir(parents=True)
    a = out / "workers" / "a"
    a.mkdir(parents=True)
    good = "2026-11-23T10:00:00.000001Z   200 10 http://h/ - - text/html 1 sha1:X worker:a\n"
    (a / "crawl.log").write_text(good + "\x00\x01 garbage that is not a log line\n", "utf-8")
    (a / "pages.jsonl").write_text(
        '{"url": "http://h/", "ts": "2026-11-23T10:00:00Z", "title": "", "status": 200}\n'
        '{"url": null, "ts": null}\n',
        "utf-8",
    )
    (a / "runs.jsonl").write_text('null\n{"stats": {"pages": 1, "responses": 2}}\n', "utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sunset", "crawl", "-p", "demo", "--out", str(out), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
        assert result.returncode != 0, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], result.stderr

    with redis_server(tmp_path / "redis") as url:
        redis.Redis.from_url(url).set("sunset:fake:settings", "x")
        redis.Redis.from_url(url).set("sunset:other:queue", "x")
        one_line_error(run("--name", "fake", "--finish"), "--finish needs --redis")
        one_line_error(run("--name", "*", "--redis", url, "--finish"), "crawl name '*'")
        one_line_error(run("--name", "fake", "--redis", "", "--finish"), "--redis is empty")
        one_line_error(run("--name", "nope", "--redis", url, "--finish"), "knows no shared crawl")
        one_line_error(
            run("--name", "fake", "--redis", url.replace("/0", "/abc"), "--finish"),
            "must be a database number",
        )
        done = run("--name", "fake", "--redis", url, "--finish")
        assert done.returncode == 0, done.stderr
        record = json.loads((out / "crawl.json").read_text())
        assert record["lines_left_out"] == {"crawl.log": 1, "pages.jsonl": 1}
        assert (out / "crawl.log").read_text() == good
        assert record["stats"] == {"pages": 1, "responses": 2}
        assert record["workers"][0]["unreadable_summaries"] == 1
        # Another crawl's keys are untouched; this one keeps only its marker.
        keys = sorted(k.decode() for k in redis.Redis.from_url(url).keys("*"))
        assert keys == ["sunset:fake:finished", "sunset:other:queue"]
        workers_before = sorted(p.name for p in (out / "workers").iterdir())
        one_line_error(run("--name", "fake", "--redis", url), "was finished with --finish")
        # The refused worker leaves no folder of its own behind.
        assert sorted(p.name for p in (out / "workers").iterdir()) == workers_before
        again = run("--name", "fake", "--redis", url, "--finish")
        assert again.returncode == 0, again.stderr
    secret = run("--name", "fake", "--redis", f"redis://:s3cret@127.0.0.1:{free_port()}/0")
    one_line_error(secret, "cannot reach Redis")
    assert "s3cret" not in secret.stderr


def test_finish_keeps_odd_log_lines_and_redis_urls_fail_in_one_line(tmp_path: Path) -> None:
    """Found by review: lines a worker wrote that --finish dropped, URLs that gave tracebacks."""
    import redis

    out = tmp_path / "crawl"
    (out / "warc").mkdir(parents=True)
    a = out / "workers" / "a"
    a.mkdir(parents=True)
    # A refused in-site URL keeps a no-break space (only spaces are escaped).
    odd = "2026-11-23T10:00:00.000001Z -5001 - http://h/a\u00a0b L http://h/ - - - excluded\n"
    (a / "crawl.log").write_text(odd, "utf-8")
    (a / "runs.jsonl").write_text(
        '{"stats": {"pages": 1}, "reclaimed_from_lost_workers": "x"}\n{"stats": {"pages": 2}}\n',
        "utf-8",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sunset", "crawl", "-p", "demo", "--out", str(out), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def one_line_error(result: subprocess.CompletedProcess[str], text: str) -> str:
        assert result.returncode != 0, result.stdout
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and text in lines[0], result.stderr
        return lines[0]

    for bad in ("redis://[::1/0", "redis://127.0.0.1:1/0?foo=bar"):
        one_line_error(run("--name", "odd", "--redis", bad, "--finish"), "not a Redis URL")
    # A host that cannot be resolved is not a password problem.
    line = one_line_error(
        run("--name", "odd", "--redis", "redis://auth-host.invalid:6379/0", "--finish"),
        "cannot reach Redis",
    )
    assert "password" not in line
    with redis_server(tmp_path / "redis") as url:
        client = redis.Redis.from_url(url)
        client.set("sunset:odd:settings", "x")
        client.config_set("requirepass", "s3cret")
        one_line_error(run("--name", "odd", "--redis", url, "--finish"), "password")
        authed = url.replace("redis://", "redis://:s3cret@")
        done = run("--name", "odd", "--redis", authed, "--finish")
        assert done.returncode == 0, done.stderr
        assert (out / "crawl.log").read_text("utf-8") == odd
        record = json.loads((out / "crawl.json").read_text())
        assert record["lines_left_out"] == {"crawl.log": 0, "pages.jsonl": 0}
        assert record["stats"] == {"pages": 2}
        assert record["workers"][0]["unreadable_summaries"] == 1
