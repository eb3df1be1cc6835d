"""Token buckets for cost budgets: in memory for one process, in Redis for many.

A client's bucket holds at most its budget per minute and refills continuously at a
sixtieth of it per second; a request takes its cost from it, or nothing when there is
not enough. Redis is chosen by URL (RATE_LIMIT_URL, else a redis:// BROADCAST_URL), so
every server process spends from the same buckets.

Rate limiting protects the service; it is not part of any answer's correctness. So when
Redis cannot be reached the limiter fails open: the request runs unmetered, a warning
is logged (at most every WARN_EVERY seconds), and Redis is left alone for RETRY_AFTER
seconds so that an outage does not add a timeout to every request.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from server.settings import Settings

logger = logging.getLogger("crmgraph.ratelimit")

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# A bucket refills at budget / REFILL_SECONDS tokens a second.
REFILL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Bucket:
    """A client's bucket right after a take."""

    allowed: bool
    remaining: int  # whole tokens left
    retry_after: float  # seconds until the refused cost would fit; 0 when allowed
    full_in: float  # seconds until the bucket is full again


class Limiter(Protocol):
    async def take(self, client: str, cost: int, budget: int) -> Bucket | None:
        """Take ``cost`` tokens from the client's bucket of ``budget`` a minute, or
        none when there are too few. A cost of 0 only looks. None: the state is
        unknown (the store is unreachable) and the request is let through."""
        ...

    async def aclose(self) -> None: ...


def _bucket(allowed: bool, tokens: float, cost: int, budget: int) -> Bucket:
    rate = budget / REFILL_SECONDS
    return Bucket(
        allowed=allowed,
        remaining=max(0, math.floor(tokens)),
        retry_after=0.0 if allowed else max(0.0, (cost - tokens) / rate),
        full_in=max(0.0, (budget - tokens) / rate),
    )


class MemoryLimiter:
    """The buckets of one process. A missing bucket is a full one: full buckets are
    dropped, at once when a take leaves one full and in a sweep when the table grows
    past ``prune_at`` clients."""

    PRUNE_AT = 10_000

    def __init__(self) -> None:
        # client -> (tokens, when, budget)
        self._buckets: dict[str, tuple[float, float, int]] = {}
        self._prune_at = self.PRUNE_AT

    async def take(self, client: str, cost: int, budget: int) -> Bucket:
        now = time.monotonic()
        tokens, at, _ = self._buckets.get(client, (float(budget), now, budget))
        tokens = min(float(budget), tokens + (now - at) * budget / REFILL_SECONDS)
        allowed = tokens >= cost
        if allowed:
            tokens -= cost
        if tokens >= budget:
            self._buckets.pop(client, None)
        else:
            if client not in self._buckets and len(self._buckets) >= self._prune_at:
                self._prune(now)
            self._buckets[client] = (tokens, now, budget)
        return _bucket(allowed, tokens, cost, budget)

    def _prune(self, now: float) -> None:
        self._buckets = {
            client: (tokens, at, budget)
            for client, (tokens, at, budget) in self._buckets.items()
            if tokens + (now - at) * budget / REFILL_SECONDS < budget
        }
        # Many clients spending at once: sweep again only once the table has doubled.
        self._prune_at = max(self.PRUNE_AT, 2 * len(self._buckets))

    async def aclose(self) -> None:
        self._buckets.clear()


# Check and take in one step, on Redis's own clock, so that processes with skewed
# clocks and concurrent requests of one client never both spend the last tokens.
# Numbers go back as strings: Redis would truncate Lua numbers to integers.
TAKE_SCRIPT = """
local budget = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local rate = budget / tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = budget
  at = now
end
tokens = math.min(budget, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
if tokens < budget then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[1], math.ceil((budget - tokens) / rate * 1000) + 1000)
else
  redis.call('DEL', KEYS[1])
end
return {allowed, tostring(tokens)}
"""


class RedisLimiter:
    """Buckets shared by every process through one Redis: one hash per client,
    expiring once it would be full again. The script runs by EVALSHA and is loaded
    again when Redis has forgotten it (a restart, SCRIPT FLUSH)."""

    KEY_PREFIX = "crmgraph:cost:"
    TIMEOUT_SECONDS = 0.5
    RETRY_AFTER = 5.0  # after a failure, seconds before Redis is tried again
    WARN_EVERY = 60.0

    def __init__(self, url: str) -> None:
        self.url = url
        # No retries: a slow or absent Redis must not hold requests for long.
        self.redis = Redis.from_url(
            url, socket_timeout=self.TIMEOUT_SECONDS,
            socket_connect_timeout=self.TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0),
        )
        self._take = self.redis.register_script(TAKE_SCRIPT)
        self._down_until = 0.0
        self._warned_at: float | None = None

    async def take(self, client: str, cost: int, budget: int) -> Bucket | None:
        now = time.monotonic()
        if now < self._down_until:
            return None
        try:
            allowed, tokens = await self._take(
                keys=[self.KEY_PREFIX + client], args=[budget, cost, REFILL_SECONDS])
        except (RedisError, OSError, TimeoutError) as exc:
            self._down_until = now + self.RETRY_AFTER
            if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY:
                self._warned_at = now
                logger.warning("rate limiting is off while Redis is unreachable (%s): %s",
                               _safe(self.url), exc)
            return None
        return _bucket(bool(int(allowed)), float(tokens), cost, budget)

    async def aclose(self) -> None:
        await self.redis.aclose()


def _safe(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, _, rest = url.partition("://")
    _credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{'***@' if at else ''}{host}"


def limiter_url(settings: Settings) -> str | None:
    """The Redis URL buckets live at, or None for buckets in memory."""
    if settings.rate_limit_url:
        return settings.rate_limit_url if settings.rate_limit_url.startswith(
            REDIS_SCHEMES) else None
    if settings.broadcast_url.startswith(REDIS_SCHEMES):
        return settings.broadcast_url
    return None


def create_limiter(settings: Settings) -> Limiter:
    url = limiter_url(settings)
    return RedisLimiter(url) if url else MemoryLimiter()
