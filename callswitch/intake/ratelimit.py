"""In-process token buckets for the per-IP and per-site intake limits.

A bucket holds ``count`` tokens and refills at ``count / period`` per second. The table
is capped (least recently used keys are forgotten first), so a flood from many
addresses cannot grow memory without bound. (The per-phone limit is counted in
Postgres instead, so that it holds across every daemon sharing the database.)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from callswitch.config import RateLimit


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    def __init__(self, limit: RateLimit, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.rate = limit.count / limit.period
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """Take one token for ``key``. Returns 0.0 if allowed, else seconds until a token is free."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(float(self.limit.count), now)
            self._buckets[key] = bucket
            if len(self._buckets) > self.max_keys:
                # Forget the least recently used address: O(1), bounded memory under a flood.
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.limit.count, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            self._buckets.move_to_end(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def __len__(self) -> int:
        return len(self._buckets)
