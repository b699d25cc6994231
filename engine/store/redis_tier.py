"""The shared tier in Redis (`SharedTier`, tier.py): compiled chunks, so that replicas compile
each text once.

Values are the bytes of codec.py under `epic-lab:chunk:<key>`, each write announced
on `epic-lab:compiled` (prefetch.py listens there). A compile in
progress holds `epic-lab:lock:<key>` (SET NX with an expiry): another replica asked for the same
text waits for the value instead of compiling it again. Redis is a cache here, never the only
copy, and Redis is run with `maxmemory` and `allkeys-lru`, so it may drop any entry at any time.

Every failure (down, unreachable, restarted, out of memory) makes an operation return "nothing"
and records a warning for the app to show; the caller carries on from its local tier. After a
connection failure the tier is skipped for `retry_after_s`, so a dead Redis costs requests
nothing; the first operation after that tries again, and sharing resumes when Redis answers.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from engine.store.tier import SharedStatus

log = logging.getLogger(__name__)
NAMESPACE = "epic-lab"
LOCK_MS = 60_000  # a compile longer than this may run on two replicas: twice the work, still right
POLL_S = 0.02  # how often a waiting replica looks for the value another one is compiling
INFO_EVERY_S = 1.0  # memory figures are read at most this often (the app asks after every action)
# Delete the lock only if it is still ours: it may have expired and been taken by another.
_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


def redact(url: str) -> str:
    """The URL without its password (it is shown in the app)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username or ''}:***@{parts.hostname}{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class RedisTier:
    """Chunk bytes in one Redis database, shared by every replica that names the same URL.

    A `SharedTier`. Thread-safe (redis-py's connection pool); no method raises on a Redis
    failure but `subscribe`.
    """

    def __init__(self, url: str, retry_after_s: float = 2.0, lock_ms: int = LOCK_MS,
                 namespace: str = NAMESPACE) -> None:
        self.url, self.retry_after_s, self.lock_ms = redact(url), retry_after_s, lock_ms
        self._namespace = namespace
        # One immediate retry (a pooled connection may be dead after a Redis restart), no
        # backoff: a request must not stall on Redis. Connecting fails fast; a large value
        # over a slow link may take a while.
        self._client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=10.0,
                                            retry=Retry(NoBackoff(), 1))
        self._unlock_script = self._client.register_script(_UNLOCK)
        self._mutex = threading.Lock()
        self._down_until = 0.0  # time.monotonic() before which the tier is skipped
        self._error = ""  # the last failure, shown until an operation succeeds
        self._memory: tuple[int, int, str] = (0, 0, "")
        self._memory_at = -INFO_EVERY_S

    def _key(self, key: str) -> str:
        return f"{self._namespace}:chunk:{key}"

    def _lock_key(self, key: str) -> str:
        return f"{self._namespace}:lock:{key}"

    @property
    def available(self) -> bool:
        """False while skipped after a connection failure."""
        return time.monotonic() >= self._down_until

    def _call(self, what: str, fn, default):
        """fn() on the client; on a failure, record it and return `default`."""
        if not self.available:
            return default
        try:
            result = fn()
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            with self._mutex:
                self._down_until = time.monotonic() + self.retry_after_s
                self._error = (f"shared chunk store {self.url} unreachable since "
                               f"{time.strftime('%H:%M:%S')} ({_reason(e)}): this replica "
                               "serves from its own memory and shares nothing")
            log.warning("%s failed: %s", what, self._error)
            return default
        except redis.RedisError as e:
            with self._mutex:
                self._error = f"shared chunk store {self.url}: {what} failed ({_reason(e)})"
            log.warning(self._error)
            return default
        with self._mutex:
            if self._error:
                log.info("shared chunk store %s answers again", self.url)
            self._error = ""
        return result

    def get(self, key: str) -> bytes | None:
        """The stored bytes of a chunk; None when absent or Redis fails."""
        return self._call("read", lambda: self._client.get(self._key(key)), None)

    def put(self, key: str, data: bytes) -> bool:
        """Store a chunk's bytes (whole or not at all: SET is atomic) and announce its key to
        the replicas listening (`subscribe`) -> whether it was stored."""
        def write():
            stored, _ = (self._client.pipeline().set(self._key(key), data)
                         .publish(self.channel, key).execute())
            return stored
        return bool(self._call("write", write, False))

    def delete(self, keys: list[str]) -> int:
        """Remove these chunks' bytes -> how many were there (0 when Redis fails)."""
        if not keys:
            return 0
        return int(self._call("delete", lambda: self._client.delete(*map(self._key, keys)), 0))

    @property
    def channel(self) -> str:
        """Where the keys of newly shared chunks are published."""
        return f"{self._namespace}:compiled"

    def num_listeners(self) -> int:
        """Replicas subscribed to `channel` right now (0 when Redis fails)."""
        return int(self._call("count listeners",
                              lambda: self._client.pubsub_numsub(self.channel)[0][1], 0))

    def subscribe(self) -> RedisSubscription:
        """A subscription to `channel` on a connection of its own; raises ConnectionError on
        a Redis failure (its one caller, the prefetcher, retries by itself)."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(self.channel)
        except redis.RedisError as e:
            pubsub.close()
            raise ConnectionError(_reason(e)) from e
        return RedisSubscription(pubsub)

    def addresses(self) -> tuple[str, ...]:
        """The URL (password redacted) and the host as redis-py's errors write it."""
        parts = urlsplit(self.url)
        hosts = (f"{parts.hostname}:{parts.port or 6379}", parts.hostname) if parts.hostname else ()
        return (self.url, *hosts)

    def lock(self, key: str) -> str | None:
        """Take the compile lock of `key` -> a token to `unlock` with, "" when Redis fails (go
        ahead alone), or None when another replica holds it (`wait` for its value)."""
        token = uuid.uuid4().hex
        taken = self._call("lock", lambda: self._client.set(self._lock_key(key), token, nx=True,
                                                            px=self.lock_ms), "failed")
        if taken == "failed":
            return ""
        return token if taken else None

    def unlock(self, key: str, token: str | None) -> None:
        if token:
            self._call("unlock", lambda: self._unlock_script(keys=[self._lock_key(key)],
                                                             args=[token]), None)

    def wait(self, key: str, timeout_s: float | None = None) -> bytes | None:
        """The value of `key` once the replica holding its lock has written it; None when the
        lock is gone without a value (that replica failed: compile it yourself), on timeout,
        or when Redis fails."""
        deadline = time.monotonic() + (self.lock_ms / 1e3 if timeout_s is None else timeout_s)
        while time.monotonic() < deadline:
            def probe():
                with self._client.pipeline() as pipe:  # MULTI/EXEC: one consistent view
                    return pipe.exists(self._key(key)).exists(self._lock_key(key)).execute()
            state = self._call("wait", probe, None)
            if state is None:
                return None
            has_value, locked = state
            if has_value:
                return self.get(key)
            if not locked:
                return None
            time.sleep(POLL_S)
        return None

    def status(self) -> SharedStatus:
        """Connection, memory figures and any warning (reads Redis's INFO at most once a
        second; never waits on a Redis that just failed)."""
        now = time.monotonic()
        if now - self._memory_at >= INFO_EVERY_S:
            info = self._call("info", lambda: self._client.info("memory"), None)
            if info is not None:  # else try again next time: Redis may be back by then
                self._memory_at = now
                self._memory = (int(info.get("used_memory", 0)), int(info.get("maxmemory", 0)),
                                str(info.get("maxmemory_policy", "")))
        used, maximum, policy = self._memory
        with self._mutex:
            error = self._error
        connected = not error and self.available
        warning = error
        if connected and policy and maximum == 0:  # (policy is "" until INFO was read)
            warning = (f"shared chunk store {self.url} has no maxmemory: it grows until the "
                       "machine runs out (start redis-server with --maxmemory and "
                       "--maxmemory-policy allkeys-lru)")
        elif connected and policy and policy != "allkeys-lru":
            warning = (f"shared chunk store {self.url} evicts with {policy}, not allkeys-lru: "
                       "once full, new chunks are not shared")
        return SharedStatus(self.url, connected, used, maximum, policy, warning)


class RedisSubscription:
    """The announced keys, read from a Redis pub/sub connection (a `Subscription`)."""

    def __init__(self, pubsub: redis.client.PubSub) -> None:
        self._pubsub = pubsub

    def next_key(self, timeout_s: float) -> str | None:
        try:
            message = self._pubsub.get_message(timeout=timeout_s)
        except redis.RedisError as e:  # Redis went away: the caller subscribes again
            raise ConnectionError(_reason(e)) from e
        if message is None or message.get("type") != "message":
            return None
        data = message["data"]
        return data.decode("ascii", "replace") if isinstance(data, bytes) else str(data)

    def close(self) -> None:
        self._pubsub.close()


def _reason(error: Exception) -> str:
    return (str(error) or type(error).__name__).splitlines()[0][:160]
