"""Benchmark: rebuilding the boards from 1,000,000 totals, beside a bare load.

The totals are generated (no DynamoDB: the scan is measured by
``manage.py rebuild_leaderboard``'s own progress) and fed to the board
loader, ``ranking.boards_rebuild``: all-time, week and day boards, every
player with points in each. In the same run, on the same Redis, the floor
loads the same members with nothing but pipelined ZADD and HSET of 2,000
members a command (no version check, no per-player script). Target: the
rebuild of 1,000,000 totals in <= 60 s.

    python bench/rebuild.py            # 1,000,000 totals
    python bench/rebuild.py --smoke    # tiny run, for CI
"""

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import django_env, redis_server  # noqa: E402

TARGET_S = 60.0
CHUNK = 2000


def generate(n: int, now: datetime):
    from scoring.domain import PlayerTotal, window_keys

    keys = window_keys(now)
    for i in range(n):
        total = 1 + (i * 7919) % 100_000
        yield PlayerTotal(player_id=f"player-{i:07d}", player_name=f"Player {i}", total=total, version=1 + i % 5,
                          reached_at_ms=1_700_000_000_000 + i,
                          windows={keys["week"]: total // 2 + 1, keys["day"]: total // 7 + 1})


def floor(r, n: int, now: datetime) -> float:
    """The same members on the same keys (prefixed), by bare pipelined writes."""
    from scoring import ranking
    from scoring.domain import rank_member

    started = time.perf_counter()
    for chunk in ranking._chunks(generate(n, now), CHUNK):
        pipe = r.pipeline(transaction=False)
        pipe.hset("floor:names", mapping={t.player_id: t.player_name for t in chunk})
        for window in ("all", "week", "day"):
            key = "floor:" + ranking.board_key(window, now)
            members = {}
            for t in chunk:
                value = t.total if window == "all" else t.windows[ranking.board_key(window, now).removeprefix("lb:")]
                members[rank_member(total=value, reached_at_ms=t.reached_at_ms, player_id=t.player_id)] = 0
            pipe.zadd(key, members)
            pipe.hset(key + ":members", mapping={m.rpartition("|")[2]: m for m in members})
            pipe.hset(key + ":versions", mapping={t.player_id: t.version for t in chunk})
        pipe.execute()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--totals", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.totals = 5_000

    with redis_server() as redis_url, tempfile.TemporaryDirectory() as tmp:
        os.environ.update({**django_env("http://127.0.0.1:1", "bench-rebuild", f"{tmp}/db.sqlite3"),
                           "REDIS_URL": redis_url})
        import django

        django.setup()
        from scoring import ranking

        now = datetime.now(UTC)
        r = ranking.client()
        marks = []
        started = time.perf_counter()
        count = ranking.boards_rebuild(generate(args.totals, now), now=now,
                                       progress=lambda c: marks.append((c, time.perf_counter() - started)))
        rebuild_s = time.perf_counter() - started
        for c, t in marks[:: max(1, len(marks) // 5)]:
            print(f"  rebuild: {c:>9,} totals after {t:5.1f} s", flush=True)
        sizes = {w: r.zcard(ranking.board_key(w, now)) for w in ("all", "week", "day")}
        assert count == args.totals and set(sizes.values()) == {args.totals}, (count, sizes)
        top, _ = ranking.top("all", 3)
        floor_s = floor(r, args.totals, now)
        memory = r.info("memory")["used_memory_human"]

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{args.totals:,} totals onto 3 boards (all, week, day); Redis memory after both loads: {memory}")
    print(f"{'load':<28} {'seconds':>8} {'totals/s':>10}")
    print(f"{'boards_rebuild':<28} {rebuild_s:>8.1f} {args.totals / rebuild_s:>10,.0f}")
    print(f"{'floor (bare ZADD/HSET)':<28} {floor_s:>8.1f} {args.totals / floor_s:>10,.0f}")
    print(f"rebuild / floor time: {rebuild_s / floor_s:.2f}x; top of the board: "
          f"{[(e.rank, e.player_id, e.total) for e in top]}")
    if args.smoke:
        print("smoke run: no target", flush=True)
    else:
        print(f"target: {args.totals:,} totals in <= {TARGET_S:g} s: "
              f"{'met' if rebuild_s <= TARGET_S else 'NOT met'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
