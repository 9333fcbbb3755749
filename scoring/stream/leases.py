"""Leases and deaths: who reads which shard, and what a holder's death means.

A lease is a conditional write (``store.lease_acquire``, ``lease_replace``):
of two workers racing for a shard, exactly one wins. A lease that expired
instead of being released means its holder died (or stalled) with it. Each
such death is counted against the shard's checkpoint: one more if the last
death was at the same checkpoint, else the first. While deaths stand at the
checkpoint a worker starts from, it reads records one at a time, so that a
record that kills workers is found (see ``reader.StreamReader``).
"""

from scoring import store
from scoring.store import Lease

# The death_sequence of a shard that had no checkpoint yet.
NO_CHECKPOINT = "-"


def deaths_at(lease: Lease, checkpoint: str | None) -> int:
    """Holders that died with the shard at this checkpoint, in a row."""
    return lease.deaths if lease.death_sequence == (checkpoint or NO_CHECKPOINT) else 0


def lease_take(*, shard_id: str, owner: str, ttl_seconds: float, seen: Lease | None, checkpoint: str | None,
               now_ms: int) -> Lease | None:
    """Take a shard's lease that is free or expired, if it is still as
    ``seen`` (None: no lease item yet), counting its holder's death if it
    died holding it. Returns the lease taken, or None if another worker
    changed it first. Renewals go through ``store.lease_acquire``."""
    deaths, death_sequence = (seen.deaths, seen.death_sequence) if seen else (0, None)
    if seen and seen.died_holding:
        at = checkpoint or NO_CHECKPOINT
        deaths = deaths + 1 if death_sequence == at else 1
        death_sequence = at
    lease = Lease(shard_id, owner, now_ms + int(ttl_seconds * 1000), deaths, death_sequence)
    return lease if store.lease_replace(lease=lease, seen=seen, now_ms=now_ms) else None
