"""How long to wait before trying again: one rule for every retry loop.

Exponential, capped, and with full jitter by default, as AWS's
"Exponential Backoff And Jitter" recommends for many clients retrying the
same service at once. Standard library only, so the store, the stream
reader and the EventBridge publisher can all use it.

Not tenacity: each of our loops does something between attempts (renew
leases, stop on SIGTERM, resend only what DynamoDB left unprocessed), so
they keep their own loop and share only the delay. botocore's retry config
already retries single calls; this is for what it cannot see.
"""

import random

# Doublings past which every base in use is far beyond its cap.
_MAX_DOUBLINGS = 60


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: bool = True) -> float:
    """The wait before retry ``attempt`` (0 or more): ``base * 2**attempt``,
    at most ``cap``; with ``jitter``, a uniform draw below that bound. Any
    attempt number will do: a loop that has retried for hours passes one
    past where ``2**attempt`` would overflow a float."""
    bound = min(cap, base * 2.0 ** min(max(0, attempt), _MAX_DOUBLINGS))
    return random.uniform(0, bound) if jitter else bound
