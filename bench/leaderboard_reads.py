"""Benchmark: leaderboard reads through the API beside the bare Redis calls behind them.

100,000 players are loaded onto the boards (``ranking.boards_rebuild``, the
rebuild's loader), one of them the API user. Then, in alternating rounds,
one request at a time over a kept-alive connection:

- ``GET /api/leaderboard/?limit=100`` (the top 100), beside the bare reads
  of a top 100 with no cache: ZREVRANGE and HMGET of the names;
- ``GET /api/leaderboard/me/?around=5`` (the caller and 5 either side),
  beside the bare reads the old code made: HGET of the member, ZREVRANK,
  ZREVRANGE and HMGET of the names.

A board changes between rounds (one player's total moves), so the API's
top-N cache (keyed by the board's seq) is measured missing once a round,
as on a live board, not only hitting. Targets: p99 <= 10 ms through the
API for each.

    python bench/leaderboard_reads.py            # 100,000 players, 5 rounds of 400 requests each
    python bench/leaderboard_reads.py --smoke    # tiny run, for CI
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import urllib3  # noqa: E402

from bench._stack import quantiles, web_stack  # noqa: E402

TARGET_MS = 10.0


def load_board(players: int, me: str) -> float:
    from scoring import ranking
    from scoring.domain import PlayerTotal

    totals = (PlayerTotal(player_id=me if i == players // 2 else f"p{i}", player_name=f"Player {i}",
                          total=1 + (i * 7919) % 50_000, version=1, reached_at_ms=1_000 + i) for i in range(players))
    started = time.perf_counter()
    ranking.boards_rebuild(totals)
    return time.perf_counter() - started


def bare_top(r, limit: int) -> None:
    members = r.zrevrange("lb:all", 0, limit - 1)
    r.hmget("lb:names", [m.rpartition("|")[2] for m in members])


def bare_around(r, player_id: str, k: int) -> None:
    member = r.hget("lb:all:members", player_id)
    rank = r.zrevrank("lb:all", member)
    members = r.zrevrange("lb:all", max(0, rank - k), rank + k)
    r.hmget("lb:names", [m.rpartition("|")[2] for m in members])


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400, help="per kind per round")
    parser.add_argument("--server", default="uvicorn", choices=["uvicorn", "gunicorn", "daphne"],
                        help="web server (see bench/_stack.py): uvicorn as deployed (the image, compose, make run), "
                             "or gunicorn, which may serve HTTP beside it (docs/deploy.md)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.players, args.rounds, args.requests = 500, 2, 20

    with web_stack(server=args.server, workers=2, threads=4, table="bench-reads", redis=True) as stack:
        os.environ.update(stack.env)
        import django

        django.setup()
        from scoring import ranking
        from scoring.domain import PlayerTotal

        me = _user_id(stack)
        load_s = load_board(args.players, me)
        print(f"loaded {args.players:,} players onto the boards in {load_s:.1f} s", flush=True)
        r = ranking.client()
        http = urllib3.PoolManager(maxsize=1)
        headers = {"Authorization": f"Token {stack.token}"}

        def get(path: str) -> None:
            response = http.request("GET", stack.web_url + path, headers=headers, retries=False, timeout=10)
            assert response.status == 200, (path, response.status, response.data[:200])

        checks = {
            "top-100": (lambda: get("/api/leaderboard/?limit=100"), lambda: bare_top(r, 100)),
            "me-and-around": (lambda: get("/api/leaderboard/me/?around=5"), lambda: bare_around(r, me, 5)),
        }
        for api, bare in checks.values():  # warm: connections, imports, script loads
            timed(api, 20)
            timed(bare, 20)
        samples = {name: {"api": [], "bare": []} for name in checks}
        for i in range(args.rounds):
            mover = f"p{i}"
            ranking.boards_update([PlayerTotal(player_id=mover, player_name=mover, total=60_000 + i, version=2 + i,
                                               reached_at_ms=1)])
            for name, (api, bare) in checks.items():
                first, second = (("api", api), ("bare", bare)) if i % 2 == 0 else (("bare", bare), ("api", api))
                for side, fn in (first, second):
                    samples[name][side] += timed(fn, args.requests)
        report(args, samples)
    return 0


def _user_id(stack) -> str:
    from bench._stack import manage

    return manage(stack.env, "shell", "-c", "from django.contrib.auth.models import User; "
                                             "print(User.objects.get(username='bench').pk)").strip().splitlines()[-1]


def report(args, samples) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{args.players:,} players on the board; {args.rounds} rounds of {args.requests} requests per kind, "
          f"one at a time; web: {args.server}")
    print(f"{'read':<15} {'side':<5} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for name, sides in samples.items():
        q = {side: quantiles(values) for side, values in sides.items()}
        for side in ("api", "bare"):
            print(f"{name:<15} {side:<5} {q[side]['p50']:>7.2f} {q[side]['p95']:>7.2f} {q[side]['p99']:>7.2f} "
                  f"{q[side]['max']:>7.2f}")
        verdict = ("smoke run, no target" if args.smoke
                   else "met" if q["api"]["p99"] <= TARGET_MS else "NOT met")
        print(f"{name:<15} api p99 / bare p99: {q['api']['p99'] / q['bare']['p99']:.2f}x; "
              f"target api p99 <= {TARGET_MS:g} ms: {verdict}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
