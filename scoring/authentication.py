"""Token authentication with a short per-process cache.

DRF's TokenAuthentication runs an ORM query per request; on the submit path
that was the largest cost left after the task lookup (bench/api_submit.py).
A revoked token or a deactivated user is refused within
settings.TOKEN_CACHE_SECONDS (at once in the process that made the change).
"""

import time

from django.conf import settings
from rest_framework.authentication import TokenAuthentication

_cache: dict[str, tuple[float, tuple]] = {}
_MAX_ENTRIES = 10_000


class CachedTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key):
        ttl = settings.TOKEN_CACHE_SECONDS
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        result = super().authenticate_credentials(key)  # raises AuthenticationFailed
        if ttl > 0:
            if len(_cache) >= _MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, result)
        return result


def token_cache_clear(**kwargs) -> None:
    _cache.clear()

