from datetime import UTC, datetime, timedelta

import pytest


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    """The API's clock: waiting out a challenge's ``min_seconds`` or its
    expiry is a step of it, not a sleep."""
    clock = Clock()
    monkeypatch.setattr("scoring.api.utcnow", clock)
    monkeypatch.setattr("scoring.services.utcnow", clock)
    return clock
