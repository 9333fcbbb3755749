"""A clock for tests of code that takes ``clock`` and ``sleep``: time starts
now and moves only when a test moves it (``clock.now += 11``) or the code
under test sleeps."""

from datetime import UTC, datetime


class Clock:
    def __init__(self):
        self.now = datetime.now(UTC).timestamp()
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds
