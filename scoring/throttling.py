"""API rate limits as atomic counters in the cache: one round trip a request.

DRF's own throttles keep a list of request times per client and write it back
with a get and a set. Two requests at once (two web processes, one player)
both read the same list and the last write wins, so requests sent in parallel
get past the limit, which is what a password-guessing script does. Here each
request is one atomic increment of a counter that lives for one window
(``cache.incr``: an INCRBY in Redis, under a lock in LocMemCache), so at most
``num_requests`` pass per window of ``duration`` seconds, however they arrive.
Windows are aligned to the clock; the price is the usual fixed-window burst,
up to twice the rate across a window boundary.

If the cache cannot be reached (django-redis with ``IGNORE_EXCEPTIONS`` answers
None and logs it), the request is allowed: the limits fail open, as the
settings say.
"""

import time

from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


class CounterRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's rates and cache keys, counted in fixed windows."""

    timer = time.time

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        count = self._increment(f"{key}:{int(self.now // self.duration)}")
        return count is None or count <= self.num_requests

    def _increment(self, key: str) -> int | None:
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request: no counter yet
            if self.cache.add(key, 1, self.duration + 1):
                return 1
        try:  # another request created it meanwhile: count on it
            return self.cache.incr(key)
        except ValueError:  # and it was evicted at once (a full LocMemCache): let this one through
            return None

    def wait(self) -> float:
        """Seconds until the current window ends (DRF rounds it up)."""
        return self.duration - self.now % self.duration


class CounterUserRateThrottle(CounterRateThrottle, UserRateThrottle):
    """Per signed-in user (per address for anonymous requests), like DRF's
    UserRateThrottle."""
