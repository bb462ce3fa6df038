"""The state several crawl workers share through Redis: frontier, seen-set, leases, politeness.

A worker takes a request from the shared queue with a *lease*: the request is
moved, in one step, from the queue into the worker's own `taken` hash. The
lease ends in the same step that makes the request's consequences durable:
its outlinks pushed, or the redirect or retry it turned into queued, or its
failure logged. A worker killed with SIGKILL therefore loses nothing: its
heartbeat key expires and any other worker moves its `taken` requests back
to the queue. The crawl is over when the queue and every `taken` hash are
empty, which no worker can see too early because work is always in one or
the other.

Claiming a URL (the seen-set), counting it against the trap guards' caps and
queueing it happen in one Lua script, so the caps hold for the whole crawl
and a URL can never be marked seen without being queued.

Politeness is crawl-wide: a host's concurrency limit is a list of slot
tokens that workers take (blocking until one is free) and give back, and its
delay a "next allowed start" timestamp on Redis's own clock, so workers on
different machines agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.exceptions import AuthenticationError, RedisError

from sunset.errors import SunsetError

HEARTBEAT_S = 1.0
# A worker is presumed dead when its heartbeat is this old.
ALIVE_MS = 8000

# Codes returned by the push script, one per candidate.
DUPLICATE, PUSHED, REFUSED, CAP_CALENDAR, CAP_VARIANTS, OVER_MAX = range(6)

_PUSH = """
local out = {}
local maxp = tonumber(ARGV[2])
local i = 3
while i <= #ARGV do
  local key, score, data, path = ARGV[i], ARGV[i+1], ARGV[i+2], ARGV[i+3]
  local varcap, calcap = tonumber(ARGV[i+4]), tonumber(ARGV[i+5])
  i = i + 6
  local code
  if redis.call('SISMEMBER', KEYS[1], key) == 1 then
    code = 0
  elseif data == '' then
    redis.call('SADD', KEYS[1], key)
    code = 2
  else
    code = 1
    if path ~= '' then
      if calcap >= 0 and tonumber(redis.call('HGET', KEYS[4], path) or '0') >= calcap then
        code = 3
      elseif varcap >= 0 and tonumber(redis.call('HGET', KEYS[3], path) or '0') >= varcap then
        code = 4
      end
    end
    if code == 1 and maxp > 0 and tonumber(redis.call('GET', KEYS[5]) or '0') >= maxp then
      code = 5
    end
    redis.call('SADD', KEYS[1], key)
    if code == 1 then
      if path ~= '' then
        if calcap >= 0 then redis.call('HINCRBY', KEYS[4], path, 1) end
        redis.call('HINCRBY', KEYS[3], path, 1)
      end
      if maxp > 0 then redis.call('INCR', KEYS[5]) end
      redis.call('ZADD', KEYS[2], score, data)
    end
  end
  out[#out + 1] = code
end
if ARGV[1] ~= '' then redis.call('HDEL', KEYS[6], ARGV[1]) end
return out
"""

# Re-queue without the seen-set (retries) and end a lease in the same step.
_REQUEUE = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
if ARGV[1] ~= '' then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
"""

_TAKE = """
local r = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #r == 0 then return false end
redis.call('ZREM', KEYS[1], r[1])
local token = redis.sha1hex(r[1])
redis.call('HSET', KEYS[2], token, r[2] .. ' ' .. r[1])
return {token, r[1]}
"""

_RECLAIM = """
local all = redis.call('HGETALL', KEYS[1])
for i = 2, #all, 2 do
  local v = all[i]
  local sp = string.find(v, ' ', 1, true)
  redis.call('ZADD', KEYS[2], string.sub(v, 1, sp - 1), string.sub(v, sp + 1))
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[3], ARGV[1])
return #all / 2
"""

# A host's concurrency slots are tokens in a list, made once by whichever
# worker first needs them. A worker takes one with BLMOVE into its own held
# list (so a dead worker's tokens can be found and given back) and gives it
# back here; waiting on BLMOVE wakes the moment a token is returned.
_SLOTS_INIT = """
if redis.call('SET', KEYS[2], ARGV[1], 'NX') then
  for i = 1, tonumber(ARGV[1]) do redis.call('RPUSH', KEYS[1], tostring(i)) end
end
return redis.call('GET', KEYS[2])
"""

_SLOT_RETURN = """
if redis.call('LREM', KEYS[2], 1, ARGV[1]) > 0 then redis.call('RPUSH', KEYS[1], ARGV[1]) end
return 1
"""

_SLOTS_RECLAIM = """
local n = 0
while redis.call('LMOVE', KEYS[2], KEYS[1], 'LEFT', 'RIGHT') do n = n + 1 end
return n
"""

# The crawl-wide delay: a host's turn is granted (0) only once the delay has
# passed since the last grant, on Redis's clock; otherwise the ms to wait.
# Granting at send time rather than booking a start in advance means a worker
# whose event loop is late cannot end up sending right beside the next one.
_TURN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if now < nxt then return nxt - now end
redis.call('SET', KEYS[1], now + tonumber(ARGV[1]), 'PX', tonumber(ARGV[1]) + 60000)
return 0
"""


class RedisLost(SunsetError):
    """Redis stopped answering mid-crawl."""


# A crawl's name is part of every key and of SCAN patterns: no glob characters.
CRAWL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def redacted(url: str) -> str:
    """The URL without its password, for messages and records."""
    try:
        password = urlsplit(url).password
    except ValueError:
        # Not parseable (an unclosed IPv6 bracket): hide everything after the scheme.
        return url.split("://", 1)[0] + "://***" if "://" in url else "***"
    if password:
        return url.replace(f":{password}@", ":***@", 1)
    return url


def connect(url: str) -> redis.Redis:
    """A client for URL, checked with PING; a clear one-line error if Redis is not there."""
    shown = redacted(url)
    try:
        path = urlsplit(url).path if url.startswith(("redis://", "rediss://")) else ""
    except ValueError as exc:
        raise SunsetError(f"--redis {shown}: not a Redis URL ({exc})") from None
    if path.strip("/") and not path.strip("/").isdigit():
        raise SunsetError(f"--redis {shown}: the path must be a database number, such as /0")
    try:
        # Every call but the blocking slot wait (on its own client) answers
        # at once; 10 s means a server that is there but silent.
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)
        client.ping()
    except AuthenticationError:
        raise SunsetError(
            f"--redis {shown}: Redis refused the password, or needs one: "
            "redis://:PASSWORD@host:port/db"
        ) from None
    except RedisError as exc:
        raise SunsetError(f"--redis {shown}: cannot reach Redis ({_reason(exc)})") from None
    except (ValueError, TypeError) as exc:
        # redis-py rejects unknown URL options only when it connects.
        raise SunsetError(f"--redis {shown}: not a Redis URL ({_reason(exc)})") from None
    return client


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class Candidate:
    """A URL the spider wants queued (data) or only claimed so a refusal is logged once."""

    key: bytes
    data: bytes = b""  # encoded request; empty: claim only
    score: float = 0.0
    path: str = ""  # guard counter key for URLs with a query; empty: not counted
    variant_cap: int = -1
    calendar_cap: int = -1


class Shared:
    """One worker's handle on the crawl-wide state in Redis."""

    def __init__(self, url: str, crawl: str, worker: str | None = None) -> None:
        if not CRAWL_NAME.fullmatch(crawl):
            raise SunsetError(
                f"crawl name {crawl!r}: a shared crawl's name is up to 64 letters, digits, "
                "'_', '-' and '.'"
            )
        self.url = redacted(url)
        self.client = connect(url)
        self.ns = f"sunset:{crawl}:"
        self.queue_key = self.ns + "queue"
        self.seen_key = self.ns + "seen"
        self.workers_key = self.ns + "workers"
        self._push = self.client.register_script(_PUSH)
        self._requeue = self.client.register_script(_REQUEUE)
        self._take = self.client.register_script(_TAKE)
        self._reclaim = self.client.register_script(_RECLAIM)
        self._slots_init = self.client.register_script(_SLOTS_INIT)
        self._slot_return = self.client.register_script(_SLOT_RETURN)
        self._slots_reclaim = self.client.register_script(_SLOTS_RECLAIM)
        self._turn = self.client.register_script(_TURN)
        self._aio: redis.asyncio.Redis | None = None
        self._slot_hosts: set[str] = set()
        self.worker = worker or self._new_worker_id()
        self.taken_key = self._taken(self.worker)
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.reclaimed = 0
        self.lost: str | None = None

    # -- keys and errors

    def _taken(self, worker: str) -> str:
        return f"{self.ns}taken:{worker}"

    def _alive(self, worker: str) -> str:
        return f"{self.ns}alive:{worker}"

    def call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RedisError as exc:
            raise self._lost(what, exc) from None

    def _lost(self, what: str, exc: BaseException) -> RedisLost:
        self.lost = self.lost or f"lost Redis at {self.url} while {what} ({_reason(exc)})"
        return RedisLost(self.lost)

    # -- workers

    def _new_worker_id(self) -> str:
        host = socket.gethostname().split(".")[0] or "host"
        n = self.call("registering", self.client.incr, self.ns + "worker-seq")
        return f"{host}-w{n}"

    def join(self, settings_fingerprint: str) -> None:
        """Register this worker; refuse one that joins with other crawl settings."""
        ok = self.call(
            "registering",
            self.client.set,
            self._alive(self.worker),
            os.getpid(),
            nx=True,
            px=ALIVE_MS,
        )
        if not ok:
            raise SunsetError(f"worker {self.worker} is already running in this crawl")
        if self.finished():
            self.call("registering", self.client.delete, self._alive(self.worker))
            raise SunsetError(
                "this crawl was finished with --finish; start a new one with another --name"
            )
        first = self.call(
            "registering", self.client.set, self.ns + "settings", settings_fingerprint, nx=True
        )
        if not first:
            theirs = self.call("registering", self.client.get, self.ns + "settings")
            if theirs is not None and theirs.decode() != settings_fingerprint:
                self.call("registering", self.client.delete, self._alive(self.worker))
                raise SunsetError(
                    "this crawl was started in Redis with another profile or scope; "
                    "use the same profile and options, or another --name"
                )
        self.call("registering", self.client.sadd, self.workers_key, self.worker)
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="sunset-heartbeat")
        self._beat.start()

    def _heartbeat(self) -> None:
        # A thread, not the event loop: a worker busy parsing a huge page is
        # still alive and must keep its leases.
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(RedisError):
                self.client.set(self._alive(self.worker), os.getpid(), px=ALIVE_MS)
                self.client.sadd(self.workers_key, self.worker)
                self.reclaim_dead()

    def reclaim_dead(self, hosts: Iterable[str] = ()) -> int:
        """Return the leased requests of workers whose heartbeat stopped to the queue."""
        moved = 0
        for raw in self.client.smembers(self.workers_key):
            other = raw.decode()
            if other == self.worker or self.client.exists(self._alive(other)):
                continue
            moved += int(
                self._reclaim(
                    keys=[self._taken(other), self.queue_key, self.workers_key], args=[other]
                )
            )
            self._return_slots(other)
        self.reclaimed += moved
        return moved

    def _return_slots(self, worker: str) -> None:
        suffix = f":{worker}"
        for key in self.client.scan_iter(match=f"{self.ns}held:*{suffix}"):
            name = key.decode()
            host = name[len(self.ns) + len("held:") : -len(suffix)]
            self._slots_reclaim(keys=[self.ns + f"slots:{host}", name])

    def leave(self) -> None:
        """Stop the heartbeat; hand back any lease and slot still held (a stop mid-crawl)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        with contextlib.suppress(RedisError):
            self._reclaim(
                keys=[self.taken_key, self.queue_key, self.workers_key], args=[self.worker]
            )
            self._return_slots(self.worker)
            self.client.delete(self._alive(self.worker))

    # -- frontier

    def push(self, candidates: list[Candidate], lease: str = "", max_pages: int = 0) -> list[int]:
        """Claim and queue candidates, and end `lease`, in one atomic step."""
        args: list[Any] = [lease, max_pages]
        for c in candidates:
            args += [c.key, repr(c.score), c.data, c.path, c.variant_cap, c.calendar_cap]
        if not candidates and not lease:
            return []
        codes = self.call(
            "queueing URLs",
            self._push,
            keys=[
                self.seen_key,
                self.queue_key,
                self.ns + "guard:variants",
                self.ns + "guard:calendar",
                self.ns + "queued",
                self.taken_key,
            ],
            args=args,
        )
        return [int(c) for c in codes]

    def requeue(self, data: bytes, score: float, lease: str = "") -> None:
        self.call(
            "queueing a retry",
            self._requeue,
            keys=[self.queue_key, self.taken_key],
            args=[lease, repr(score), data],
        )

    def take(self) -> tuple[str, bytes] | None:
        got = self.call("taking a request", self._take, keys=[self.queue_key, self.taken_key])
        if not got:
            return None
        return got[0].decode(), got[1]

    def release(self, lease: str) -> None:
        if lease:
            self.call("ending a lease", self.client.hdel, self.taken_key, lease)

    def claim(self, key: bytes) -> bool:
        return bool(self.call("claiming a URL", self.client.sadd, self.seen_key, key))

    def queue_size(self) -> int:
        return int(self.call("reading the queue", self.client.zcard, self.queue_key))

    def remaining(self) -> int:
        """Requests queued or leased anywhere in the crawl (0: the crawl is over)."""
        workers = [
            w.decode() for w in self.call("checking", self.client.smembers, self.workers_key)
        ]
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.queue_key)
        for w in workers:
            pipe.hlen(self._taken(w))
        return sum(int(n) for n in self.call("checking", pipe.execute))

    def mark_seeded(self) -> None:
        self.call("starting", self.client.set, self.ns + "seeded", "1")

    def seeded(self) -> bool:
        return bool(self.call("checking", self.client.exists, self.ns + "seeded"))

    # -- revisits

    def first_capture(self, digest: bytes) -> str | None:
        hit = self.call("looking up a digest", self.client.hget, self.ns + "digests", digest)
        return hit.decode("utf-8", "surrogateescape") if hit is not None else None

    def remember_payload(self, digest: bytes, value: str) -> None:
        self.call(
            "recording a digest",
            self.client.hsetnx,
            self.ns + "digests",
            digest,
            value.encode("utf-8", "surrogateescape"),
        )

    # -- robots.txt, fetched by one worker and read by all

    def publish_robots(self, host: str, body: bytes | None) -> None:
        value = b"1" + body if body is not None else b"0"
        self.call("sharing robots.txt", self.client.hset, self.ns + "robots", host, value)

    def robots(self, host: str) -> tuple[bool, bytes | None]:
        """(known, body) for host's robots.txt as published by whichever worker fetched it."""
        value = self.call("reading robots.txt", self.client.hget, self.ns + "robots", host)
        if value is None:
            return False, None
        return True, (value[1:] if value[:1] == b"1" else None)

    # -- politeness

    async def take_slot(self, host: str, limit: int, delay_ms: int) -> str:
        """One of the host's crawl-wide concurrency slots, after the crawl-wide delay."""
        free, held = self.ns + f"slots:{host}", self.ns + f"held:{host}:{self.worker}"
        if host not in self._slot_hosts:
            self.call(
                "making politeness slots",
                self._slots_init,
                keys=[free, free + ":size"],
                args=[limit],
            )
            self._slot_hosts.add(host)
        if self._aio is None:
            # Blocking waits need the asyncio client: the event loop must go on.
            self._aio = redis.asyncio.Redis.from_url(self.url, socket_connect_timeout=5)
        while True:
            try:
                token = await self._aio.blmove(free, held, 1, "LEFT", "RIGHT")
            except RedisError as exc:
                raise self._lost("waiting for a politeness slot", exc) from None
            if token is not None:
                break
            if self.lost:
                raise RedisLost(self.lost)
        while delay_ms > 0:
            try:
                wait = int(
                    self.call(
                        "keeping the delay",
                        self._turn,
                        keys=[self.ns + f"next:{host}"],
                        args=[delay_ms],
                    )
                )
            except RedisLost:
                self.free_slot(host, token.decode())
                raise
            if wait <= 0:
                break
            await asyncio.sleep(wait / 1000)
        return token.decode()

    def free_slot(self, host: str, token: str) -> None:
        with contextlib.suppress(RedisError):
            self._slot_return(
                keys=[self.ns + f"slots:{host}", self.ns + f"held:{host}:{self.worker}"],
                args=[token],
            )

    async def close(self) -> None:
        if self._aio is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._aio.aclose()

    # -- after the crawl

    def keys(self) -> Iterator[bytes]:
        return self.client.scan_iter(match=self.ns + "*")

    def known(self) -> bool:
        """Whether a worker ever started this crawl in this Redis database."""
        return bool(self.client.exists(self.ns + "settings", self.ns + "finished"))

    def finished(self) -> bool:
        return bool(self.call("checking", self.client.exists, self.ns + "finished"))

    def finish(self, when: str) -> None:
        """Drop the crawl's frontier, keeping a marker so no late worker starts it afresh."""
        for key in list(self.keys()):
            self.client.delete(key)
        self.client.set(self.ns + "finished", when)
