"""Rate-limit budgets per account and endpoint, shared by every worker through Redis.

A platform's x-rate-limit-limit/remaining/reset headers are recorded after every response; before
a request, take() says whether it may go now or when the window resets (the caller reschedules
for that time: no worker ever sleeps on a limit). An app-wide limit is shared fairly: while n
accounts are active on an endpoint, each may spend at most limit/n of a window.

Without Redis (the embedded default) the budget lives in the process (MemoryBudget), seeded by
the caller from the last headers stored in the database; the platform's 429 stays the backstop.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from socialcare.config import Settings
from socialcare.errors import RateLimited
from socialcare.sources.base import ACCOUNT_WINDOW, RateWindow, epoch_time, read_window

log = logging.getLogger(__name__)

# How long an account counts as active on an endpoint after its last request: one X window.
ACTIVE_SECONDS = 900
REDIS_RETRY_SECONDS = 30.0


def window_from_headers(headers: Mapping[str, str]) -> RateWindow | None:
    """The x-rate-limit-* headers as a RateWindow; None when absent or not numbers."""
    return read_window(
        headers.get("x-rate-limit-limit"),
        headers.get("x-rate-limit-remaining"),
        epoch_time(headers.get("x-rate-limit-reset")),
    )


class RateBudget(Protocol):
    """Where the rate windows live. take() reserves one request: None when it may go now, else
    the time the window resets. shared: the limit is the app's, divided among active accounts."""

    def record(self, account_id: int, endpoint: str, window: RateWindow) -> None: ...

    def window(self, account_id: int, endpoint: str) -> RateWindow | None: ...

    def take(
        self, account_id: int, endpoint: str, now: datetime, *, shared: bool
    ) -> datetime | None: ...

    def share(self, account_id: int, endpoint: str, now: datetime, *, shared: bool) -> int: ...


def _merge(old: RateWindow | None, new: RateWindow) -> RateWindow:
    """A response can arrive after a later one: within one window the lower remaining wins."""
    if old is not None and old.reset_at == new.reset_at:
        return RateWindow(new.limit, min(old.remaining, new.remaining), new.reset_at)
    return new


def _decide(window: RateWindow | None, used: int, share: int, now: datetime) -> datetime | None:
    if window is None or now >= window.reset_at:
        return None  # nothing known, or a new window: the platform's answer will tell
    if window.remaining <= 0 or used > share:
        return window.reset_at
    return None


class MemoryBudget:
    """The budget in this process (no Redis): correct for one worker, a guide for several."""

    def __init__(self) -> None:
        self._windows: dict[tuple[int, str], RateWindow] = {}
        self._used: dict[tuple[int, str, datetime], int] = {}
        self._active: dict[str, dict[int, float]] = {}
        self._lock = threading.Lock()

    def record(self, account_id: int, endpoint: str, window: RateWindow) -> None:
        with self._lock:
            key = (account_id, endpoint)
            self._windows[key] = _merge(self._windows.get(key), window)

    def window(self, account_id: int, endpoint: str) -> RateWindow | None:
        return self._windows.get((account_id, endpoint))

    def _active_count(self, account_id: int, endpoint: str, now: datetime) -> int:
        seen = self._active.setdefault(endpoint, {})
        seen[account_id] = now.timestamp()
        horizon = now.timestamp() - ACTIVE_SECONDS
        return sum(1 for at in seen.values() if at >= horizon)

    def share(self, account_id: int, endpoint: str, now: datetime, *, shared: bool) -> int:
        window = self.window(account_id, endpoint)
        if window is None:
            return 0
        with self._lock:
            n = self._active_count(account_id, endpoint, now) if shared else 1
        return max(1, math.ceil(window.limit / n))

    def take(
        self, account_id: int, endpoint: str, now: datetime, *, shared: bool
    ) -> datetime | None:
        window = self.window(account_id, endpoint)
        share = self.share(account_id, endpoint, now, shared=shared)
        with self._lock:
            if window is None or now >= window.reset_at:
                return None
            key = (account_id, endpoint, window.reset_at)
            used = self._used.get(key, 0) + 1
            verdict = _decide(window, used, share, now)
            if verdict is None:
                self._used[key] = used
                self._windows[(account_id, endpoint)] = RateWindow(
                    window.limit, window.remaining - 1, window.reset_at
                )
            return verdict


# take() as one script. KEYS: the window hash, the endpoint's active set. ARGV: account id, now
# (epoch seconds), ACTIVE_SECONDS, shared (1/0), the prefix of the used counters. Answers {0}
# when the request may go (nothing known, a new window, or within budget: one request reserved)
# or {1, reset} when the window is spent or the account's share of it used up.
_TAKE = """
local w = redis.call('HMGET', KEYS[1], 'limit', 'remaining', 'reset')
local limit, remaining, reset = tonumber(w[1]), tonumber(w[2]), tonumber(w[3])
if not (limit and remaining and reset) then return {0} end
local now = tonumber(ARGV[2])
local n = 1
if ARGV[4] == '1' then
  local active = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - active)
  n = redis.call('ZCARD', KEYS[2])
  redis.call('EXPIRE', KEYS[2], active * 2)
end
if now >= reset then return {0} end
local share = math.max(1, math.ceil(limit / n))
local used_key = ARGV[5] .. ':' .. w[3]
local used = redis.call('INCR', used_key)
redis.call('EXPIRE', used_key, math.floor(reset - now) + 60)
if remaining <= 0 or used > share then
  redis.call('DECR', used_key)
  return {1, reset}
end
redis.call('HINCRBY', KEYS[1], 'remaining', -1)
return {0}
"""


# record() as one script (what _merge does, atomic: no answer recorded between a read and a
# write is lost). KEYS: the window hash. ARGV: limit, remaining, reset (epoch seconds), the
# hash's time to live.
_RECORD = """
local remaining = tonumber(ARGV[2])
local old = redis.call('HMGET', KEYS[1], 'remaining', 'reset')
if old[2] == ARGV[3] and tonumber(old[1]) and tonumber(old[1]) < remaining then
  remaining = tonumber(old[1])
end
redis.call('HSET', KEYS[1], 'limit', ARGV[1], 'remaining', remaining, 'reset', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return remaining
"""


class RedisBudget:
    """The budget in Redis, under `{namespace}:ratelimit:...`, seen by every worker."""

    def __init__(self, client: Any, namespace: str) -> None:
        self.client = client
        self.prefix = f"{namespace}:ratelimit"
        self._take = client.register_script(_TAKE)
        self._record = client.register_script(_RECORD)

    def _key(self, *parts: object) -> str:
        return ":".join([self.prefix, *(str(p) for p in parts)])

    def record(self, account_id: int, endpoint: str, window: RateWindow) -> None:
        # One round trip a response: the merge with what is stored happens in Redis.
        self._record(
            keys=[self._key("window", endpoint, account_id)],
            args=[window.limit, window.remaining, int(window.reset_at.timestamp()), 86400],
        )

    def window(self, account_id: int, endpoint: str) -> RateWindow | None:
        raw = self.client.hgetall(self._key("window", endpoint, account_id))
        try:
            return RateWindow(
                int(raw[b"limit"]),
                int(raw[b"remaining"]),
                datetime.fromtimestamp(int(raw[b"reset"]), tz=UTC),
            )
        except (KeyError, ValueError):
            return None

    def _active_count(self, account_id: int, endpoint: str, now: datetime) -> int:
        key = self._key("active", endpoint)
        with self.client.pipeline() as pipe:
            pipe.zadd(key, {str(account_id): now.timestamp()})
            pipe.zremrangebyscore(key, "-inf", now.timestamp() - ACTIVE_SECONDS)
            pipe.zcard(key)
            pipe.expire(key, ACTIVE_SECONDS * 2)
            return int(pipe.execute()[2])

    def share(self, account_id: int, endpoint: str, now: datetime, *, shared: bool) -> int:
        window = self.window(account_id, endpoint)
        if window is None:
            return 0
        n = self._active_count(account_id, endpoint, now) if shared else 1
        return max(1, math.ceil(window.limit / n))

    def take(
        self, account_id: int, endpoint: str, now: datetime, *, shared: bool
    ) -> datetime | None:
        # One round trip, atomic: two workers cannot both take the last request of a window.
        answer = self._take(
            keys=[self._key("window", endpoint, account_id), self._key("active", endpoint)],
            args=[
                account_id,
                now.timestamp(),
                ACTIVE_SECONDS,
                int(shared),
                self._key("used", endpoint, account_id),
            ],
        )
        if not answer or int(answer[0]) == 0:
            return None
        return datetime.fromtimestamp(int(answer[1]), tz=UTC)


class FailSafeBudget:
    """A Redis budget that degrades to the process's own when Redis does not answer: a lost
    budget costs at most a 429, while a poller stopped by it would miss mentions."""

    def __init__(self, primary: RateBudget) -> None:
        self.primary = primary
        self.fallback = MemoryBudget()
        self._down_until = 0.0

    def _run(self, name: str, *args: Any, **kwargs: Any) -> Any:
        import redis

        if time.monotonic() >= self._down_until:
            try:
                return getattr(self.primary, name)(*args, **kwargs)
            except redis.RedisError as exc:
                # Not asked again for a while: every request of a poll would wait on it.
                self._down_until = time.monotonic() + REDIS_RETRY_SECONDS
                log.warning("rate budget: Redis unavailable (%s); using this process's", exc)
        return getattr(self.fallback, name)(*args, **kwargs)

    def record(self, account_id: int, endpoint: str, window: RateWindow) -> None:
        self.fallback.record(account_id, endpoint, window)
        self._run("record", account_id, endpoint, window)

    def window(self, account_id: int, endpoint: str) -> RateWindow | None:
        result: RateWindow | None = self._run("window", account_id, endpoint)
        return result

    def take(
        self, account_id: int, endpoint: str, now: datetime, *, shared: bool
    ) -> datetime | None:
        result: datetime | None = self._run("take", account_id, endpoint, now, shared=shared)
        return result

    def share(self, account_id: int, endpoint: str, now: datetime, *, shared: bool) -> int:
        return int(self._run("share", account_id, endpoint, now, shared=shared))


def redis_client(settings: Settings) -> Any:
    """A Redis client for REDIS_URL with short timeouts (the budget must never hang a poll)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    url = settings.redis_url
    if url.lower().startswith("rediss://") and "ssl_cert_reqs=" not in url:
        url += ("&" if "?" in url else "?") + f"ssl_cert_reqs={settings.redis_tls_verify}"
    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 1)
    )


def budget_from_settings(settings: Settings) -> RateBudget:
    """Redis when REDIS_URL is set, else this process's memory."""
    if not settings.redis_url:
        return MemoryBudget()
    return FailSafeBudget(RedisBudget(redis_client(settings), settings.redis_namespace))


class AccountBudget:
    """The budget of a platform whose limit is the account's own (Mastodon's and Bluesky's: one
    window for every endpoint): taken from before each request of the account being served and
    recorded from each answer, where every worker sees it. take() raises RateLimited, before
    any request, while the window is spent."""

    def __init__(self, settings: Settings, platform: str) -> None:
        self.budget = budget_from_settings(settings)
        self.platform = platform
        self.account_id: int | None = None  # the account the source is serving now
        self._recorded: tuple[int, RateWindow] | None = None  # the last window recorded

    def take(self, action: str) -> None:
        if self.account_id is None:
            return
        retry_at = self.budget.take(
            self.account_id, ACCOUNT_WINDOW, datetime.now(UTC), shared=False
        )
        if retry_at is not None:
            raise RateLimited(
                f"{self.platform} {action}: the account's rate window is spent until "
                f"{retry_at.isoformat()}",
                retry_after=retry_at,
            )

    def record(self, window: RateWindow | None) -> None:
        """Record an answer's window (one already recorded, as a call without new headers
        leaves it, is not sent again)."""
        if self.account_id is None or window is None:
            return
        if self._recorded != (self.account_id, window):
            self.budget.record(self.account_id, ACCOUNT_WINDOW, window)
            self._recorded = (self.account_id, window)
