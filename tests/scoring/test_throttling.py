"""The API's rate limits are atomic counters: requests sent in parallel never
get past the limit, on either cache the app runs with."""

import threading
from types import SimpleNamespace

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django_redis.cache import RedisCache

from scoring.throttling import CounterUserRateThrottle
from tests.conftest import free_port


class TenPerHour(CounterUserRateThrottle):
    rate = "10/hour"


def throttle(cache, *, now: float | None = None) -> TenPerHour:
    t = TenPerHour()
    t.cache = cache
    if now is not None:
        t.timer = lambda: now
    return t


def request_from(user_id: int):
    return SimpleNamespace(user=SimpleNamespace(is_authenticated=True, pk=user_id))


@pytest.fixture(params=["locmem", "redis"])
def cache(request):
    if request.param == "locmem":
        return LocMemCache("throttle-test", {})
    redis_url = request.getfixturevalue("redis_url")
    return RedisCache(redis_url, {"OPTIONS": {"IGNORE_EXCEPTIONS": True}})


def test_parallel_requests_never_pass_the_limit(cache):
    threads, tries = 16, 5
    start = threading.Barrier(threads)
    allowed = []

    def client():
        start.wait()
        for _ in range(tries):
            allowed.append(throttle(cache, now=1_000_000.0).allow_request(request_from(7), None))

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(allowed) == threads * tries
    assert allowed.count(True) == 10


def test_the_limit_is_per_player_and_per_window(cache):
    window_start = 3600.0 * 500
    for _ in range(10):
        assert throttle(cache, now=window_start + 5).allow_request(request_from(1), None)
    refused = throttle(cache, now=window_start + 600)
    assert not refused.allow_request(request_from(1), None)
    assert refused.wait() == 3000  # the rest of the hour: Retry-After
    assert throttle(cache, now=window_start + 600).allow_request(request_from(2), None)  # another player
    assert throttle(cache, now=window_start + 3600).allow_request(request_from(1), None)  # the next hour


def test_an_unreachable_redis_lets_requests_through():
    down = RedisCache(f"redis://127.0.0.1:{free_port()}/0",
                      {"OPTIONS": {"IGNORE_EXCEPTIONS": True, "SOCKET_CONNECT_TIMEOUT": 0.2}})
    assert all(throttle(down).allow_request(request_from(1), None) for _ in range(12))


class OnePerHour(CounterUserRateThrottle):
    rate = "1/hour"


class RacedCache(LocMemCache):
    """Another request creates the window's counter between this request's
    incr (no counter yet) and its add: a timing threads rarely hit."""

    def incr(self, key, delta=1, version=None):
        if not self.has_key(key, version):
            super().add(key, 1, 3600, version)  # the other request, first in the window
            raise ValueError(f"Key '{key}' not found")
        return super().incr(key, delta, version)


def test_losing_the_race_to_create_the_counter_still_counts():
    limited = OnePerHour()
    limited.cache = RacedCache("throttle-race", {})
    assert not limited.allow_request(request_from(1), None)  # the other request took the one slot
