"""Token buckets in Redis, shared by every worker process: a sender never exceeds its rate.

One Lua script takes tokens atomically and says how long to wait when there are
none; the bucket refills continuously at ``rate`` per second up to ``burst``.
Keys name channels by id only (no personal data in Redis keys).
"""
from __future__ import annotations

import time

from gateway import metrics, runtime

_SCRIPT = """
local key, rate, burst, now, want = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', key, 't', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= want then tokens = tokens - want else wait = (want - tokens) / rate end
redis.call('HSET', key, 't', tokens, 'at', now)
redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""
_sha: dict[int, str] = {}


def _now() -> float:
    # Redis TIME would be one more round trip; workers share a host clock (or NTP-close ones).
    return time.time()


def try_take(key: str, rate: float, burst: float | None = None, tokens: float = 1.0) -> float:
    """Take tokens if available: 0.0; otherwise nothing is taken and the seconds to wait are returned."""
    client = runtime.redis_client()
    # By default at most 2% of a second's sends at once: any 1-second window stays within rate + 2%.
    burst = max(1.0, burst if burst is not None else rate * 0.02)
    sha = _sha.get(id(client))
    if sha is None:
        sha = _sha[id(client)] = client.script_load(_SCRIPT)
    return float(client.evalsha(sha, 1, f"ratelimit:{key}", rate, burst, _now(), tokens))


def try_take_each(keys: list[str], rate: float, burst: float) -> list[float]:
    """One token from each bucket (same rate and burst), in one pipelined round trip: 0.0 where taken,
    else the seconds until that bucket has one (nothing taken from it)."""
    if not keys:
        return []
    client = runtime.redis_client()
    sha = _sha.get(id(client))
    if sha is None:
        sha = _sha[id(client)] = client.script_load(_SCRIPT)
    pipe = client.pipeline(transaction=False)
    now = _now()
    for key in keys:
        pipe.evalsha(sha, 1, f"ratelimit:{key}", rate, max(1.0, burst), now, 1)
    waits = [float(w) for w in pipe.execute()]
    held = sum(1 for w in waits if w > 0)
    if held:
        metrics.RATELIMIT_DEFERRED.labels(_limiter(keys[0])).inc(held)
    return waits


def _limiter(key: str) -> str:
    """The bucket's kind as a metric label ("channel", "pair"): keys go on to name ids, which labels must not."""
    kind, sep, _ = key.partition(":")
    return kind if sep else "other"


def take(key: str, rate: float, burst: float | None = None, tokens: float = 1.0, max_wait_s: float = 30.0) -> bool:
    """Block until the tokens are taken (True) or waiting would exceed max_wait_s (False)."""
    deadline = time.monotonic() + max_wait_s
    waited = 0.0
    while True:
        wait = try_take(key, rate, burst, tokens)
        if wait <= 0:
            if waited:
                metrics.RATELIMIT_WAIT_SECONDS.labels(_limiter(key)).observe(waited)
            return True
        if time.monotonic() + wait > deadline:
            metrics.RATELIMIT_DEFERRED.labels(_limiter(key)).inc()
            return False
        started = time.monotonic()
        time.sleep(wait)
        waited += time.monotonic() - started


class Permit:
    """Tokens taken from the shared bucket in chunks (at most its burst) and handed out in this process:
    one Redis call per chunk instead of one per send, and the rate still holds across all workers."""

    def __init__(self, key: str, rate: float):
        import threading
        # Aim 2% under the limit: the provider counts arrivals, and network and scheduling jitter can
        # bunch sends that left here evenly spaced.
        self.key, self.rate = key, rate * 0.98
        self.chunk = max(1.0, rate * 0.02)
        self._left = 0.0
        self._lock = threading.Lock()

    def take(self, max_wait_s: float = 30.0) -> bool:
        with self._lock:
            if self._left >= 1:
                self._left -= 1
                return True
            if not take(self.key, self.rate, burst=self.chunk, tokens=self.chunk, max_wait_s=max_wait_s):
                return False
            self._left = self.chunk - 1
            return True
