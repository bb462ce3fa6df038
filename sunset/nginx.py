"""Run a local nginx and write values into its config safely.

Shared by the replica (serving a legacy site for benchmarks) and the redirects
stage (proving that the generated maps load and answer as intended). Nothing
here knows what the config is for: callers write their own files and hand
:func:`running_nginx` a function that does so for a given port.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
# Map keys nginx would read as a keyword rather than a value.
MAP_KEYWORDS = frozenset({"default", "hostnames", "include", "volatile"})
# nginx reads its config in 4 KiB buffers and one token must fit in one
# (measured: a 4,095-byte quoted token loads, 4,096 does not). Callers that
# write untrusted values stay well below that.
MAX_TOKEN = 4000
# Escapes nginx's config reader turns back into the byte; every other byte
# inside double quotes is taken literally.
_ESCAPES = {
    ord("\\"): b"\\\\",
    ord('"'): b'\\"',
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
}
_NEEDS_ESCAPE = re.compile(rb'[\\"\n\r\t]')


class NginxError(RuntimeError):
    """nginx is missing, rejected its config, or did not start."""


@dataclass(frozen=True)
class NginxProcess:
    """An nginx started by :func:`running_nginx`."""

    host: str
    port: int
    pid: int
    conf: Path
    error_log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


def nginx_binary() -> str:
    """The nginx executable, or NginxError saying how to install it."""
    nginx = shutil.which("nginx") or NGINX
    if not Path(nginx).is_file():
        raise NginxError("nginx not found; install the Debian package nginx (./dev setup)")
    return nginx


def quote(value: str) -> str:
    """A double-quoted nginx config token whose parsed text is exactly ``value``."""
    if any(c in value for c in "\r\n"):
        # Callers pass URLs and file names; a line break there is a bug upstream,
        # not something to carry silently into a config file.
        raise ValueError(f"cannot put a line break in an nginx config value: {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_bytes(value: bytes) -> bytes:
    """Like :func:`quote` for arbitrary bytes (a decoded ``$uri`` can hold any but NUL)."""
    if b"\0" in value:
        raise ValueError("cannot put a NUL byte in an nginx config value")
    return b'"' + _NEEDS_ESCAPE.sub(_escape, value) + b'"'


def _escape(m: re.Match[bytes]) -> bytes:
    return _ESCAPES[m.group()[0]]


_KEYWORD_BYTES = frozenset(k.encode("ascii") for k in MAP_KEYWORDS)


def _literal_key(key: bytes) -> bytes:
    # A leading "~" would make the key a regex and a bare keyword a directive;
    # map strips one leading backslash, which keeps both literal.
    if key.startswith((b"~", b"\\")) or key in _KEYWORD_BYTES:
        return b"\\" + key
    return key


def map_key(target: str) -> str:
    """A literal ``map`` key matching ``target`` (never a regex or keyword)."""
    return quote(_literal_key(target.encode("utf-8")).decode("utf-8"))


def map_key_bytes(key: bytes) -> bytes:
    """:func:`map_key` for arbitrary bytes."""
    return quote_bytes(_literal_key(key))


def map_value(value: str) -> str:
    # Map values are interpolated: "$" would start a variable name and nginx
    # has no escape for it. In a URL "%24" means the same thing.
    return quote(value.replace("$", "%24"))


def run_user_directive() -> str:
    """``user ...;`` when running as root, else "".

    A root master drops worker privileges to "nobody", who cannot read a
    private temp or pytest folder; keep the workers as the invoking user.
    """
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""


def make_temp_dirs(work: Path) -> dict[str, Path]:
    """nginx's temp folders under ``work`` (its compiled-in ones are under /var/lib)."""
    dirs = {}
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        path = work / "temp" / sub
        path.mkdir(parents=True, exist_ok=True)
        dirs[sub] = path
    return dirs


def minimal_conf(work: Path, http: str, *, workers: int = 1) -> Path:
    """Write ``work/nginx.conf``: a private pid, log and temp dirs around ``http``.

    ``http`` is the body of the ``http {}`` block (typically an ``include``).
    """
    temp = make_temp_dirs(work)
    temp_lines = "\n".join(f"    {sub}_temp_path {quote(str(path))};" for sub, path in temp.items())
    text = f"""# Written by sunset.nginx for a private, loopback-only nginx.
{run_user_directive()}
worker_processes {workers};
pid {quote(str(work / "nginx.pid"))};
error_log {quote(str(work / "error.log"))} warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
{temp_lines}
{http}
}}
"""
    path = work / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


def check_conf(conf: Path, work: Path) -> str:
    """Run ``nginx -t`` on ``conf``; return its output (warnings included) or raise NginxError."""
    nginx = nginx_binary()
    proc = subprocess.run(
        [nginx, "-t", "-c", str(conf), "-p", str(work), "-e", str(work / "test.log")],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise NginxError(f"nginx rejected {conf}: {_last_lines(output)}")
    return output


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (it may be taken before it is used)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def answers(host: str, port: int) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _last_lines(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def tail(path: Path, lines: int = 3) -> str:
    """The last lines of a log file on one line, for error messages."""
    try:
        return _last_lines(path.read_text(errors="replace"), lines)
    except OSError:
        return ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop an nginx master started in its own session, and every worker with it."""
    # SIGQUIT is nginx's graceful shutdown: in-flight responses finish.
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGQUIT)
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    # The master leads its own session, so its group is exactly this nginx;
    # a worker orphaned by a killed master would keep the port open.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running_nginx(
    write_conf: Callable[[int], Path],
    work: Path,
    host: str = "127.0.0.1",
    port: int = 0,
) -> Iterator[NginxProcess]:
    """Run nginx until the block exits, on ``port`` or (0) a free one.

    ``write_conf(port)`` writes the config for that port and returns the main
    file; it is called again if a picked port was taken in the meantime.
    Returns once nginx accepts connections; on exit nginx is stopped and
    nothing is left listening. The error log is ``work/error.log``.
    """
    nginx = nginx_binary()
    # A picked port can be taken between choosing and binding it; try again.
    attempts = 1 if port else 5
    for attempt in range(attempts):
        chosen = port or free_port(host)
        conf = write_conf(chosen)
        error_log = work / "error.log"
        error_log.unlink(missing_ok=True)
        proc = subprocess.Popen(
            [nginx, "-e", str(error_log), "-c", str(conf), "-p", str(work), "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and not answers(host, chosen):
                if time.monotonic() > deadline:
                    raise NginxError(
                        f"nginx did not answer on {host}:{chosen} within"
                        f" {START_TIMEOUT:.0f} s: {tail(error_log)}"
                    )
                time.sleep(0.02)
            if proc.poll() is not None:
                why = tail(error_log) or f"exit status {proc.returncode}"
                if "Address already in use" in why and attempt + 1 < attempts:
                    continue
                raise NginxError(f"nginx failed to start: {why}")
            yield NginxProcess(host=host, port=chosen, pid=proc.pid, conf=conf, error_log=error_log)
            return
        finally:
            stop(proc)


__all__ = [
    "MAP_KEYWORDS",
    "MAX_TOKEN",
    "NGINX",
    "NginxError",
    "NginxProcess",
    "answers",
    "check_conf",
    "free_port",
    "make_temp_dirs",
    "map_key",
    "map_key_bytes",
    "map_value",
    "minimal_conf",
    "nginx_binary",
    "quote",
    "quote_bytes",
    "run_user_directive",
    "running_nginx",
    "stop",
    "tail",
]
