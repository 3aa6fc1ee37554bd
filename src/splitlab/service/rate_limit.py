"""A per-client token bucket, kept in memory only.

Clients are keyed by a salted hash (the salt is random per process), so no raw address or API
key is kept; the table is bounded, oldest clients forgotten first.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class RateLimiter:
    """``rate`` requests per second per client, with bursts of up to ``burst`` (≥ 1)."""

    rate: float
    burst: float = 0.0
    clock: Callable[[], float] = time.monotonic
    max_clients: int = 100_000
    _salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    _buckets: OrderedDict[bytes, tuple[float, float]] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError("rate must be > 0")
        self.burst = max(1.0, self.burst or self.rate)

    def acquire(self, client: str) -> float:
        """Take a token for ``client``: 0 when allowed, else the seconds until one is free."""
        key = hashlib.blake2b(client.encode(), key=self._salt, digest_size=16).digest()
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
