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

import ipaddress
import time

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle


def client_ip(request) -> str:
    """The client's address, for every rate limit (DRF's and django-ratelimit's,
    through RATELIMIT_IP_META_KEY).

    With NUM_PROXIES=0, REMOTE_ADDR: X-Forwarded-For is whatever the client
    wrote. Behind N trusted proxies, the Nth address from the right of
    X-Forwarded-For, as DRF's NUM_PROXIES reads it: each proxy appends the
    address it got the request from, so the entries to the left of those are
    the client's own invention. A port after the address is dropped; an entry
    that is not an address falls back to REMOTE_ADDR. An IPv6 client counts
    as its /64, as django-ratelimit's default mask has it: one allocation
    holds more addresses than any limit.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    address = None
    if settings.NUM_PROXIES and forwarded:
        entries = forwarded.split(",")
        address = _address(entries[-min(settings.NUM_PROXIES, len(entries))])
    address = address or _address(remote)
    if address is None:
        return remote
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def _address(entry: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in an X-Forwarded-For entry: ``1.2.3.4``, ``1.2.3.4:5555``,
    ``2001:db8::1`` or ``[2001:db8::1]:443``; None if there is none."""
    entry = entry.strip()
    if entry.startswith("[") and "]" in entry:
        entry = entry[1:entry.index("]")]
    elif entry.count(":") == 1:
        entry = entry.split(":")[0]
    try:
        return ipaddress.ip_address(entry)
    except ValueError:
        return None


class CounterRateThrottle(SimpleRateThrottle):
    """SimpleRateThrottle's rates and cache keys, counted in fixed windows."""

    timer = time.time

    def get_ident(self, request):
        # DRF's reads REST_FRAMEWORK["NUM_PROXIES"] once; this reads the setting per request.
        return client_ip(request)

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
