"""Benchmark: fan-out of one leaderboard update to many websocket clients.

N clients (default 1,000) hold a socket on /ws/leaderboard/ to the real
daphne server; updates are sent to their group through the real Redis
channel layer, exactly as consume_scores sends them, stamped with the time
they were sent. Each client records when it received each one. Prints the
delivery latency p50/p95/p99 over all deliveries. Target: p99 <= 500 ms.

Baseline, side by side in the same run: the same updates delivered to a
single client (the per-message floor of the path), and the ratio of the two.

    python bench/fanout.py
    python bench/fanout.py --smoke
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import websockets  # noqa: E402
from channels_redis.core import RedisChannelLayer  # noqa: E402

from bench._stack import live_stack, quantiles  # noqa: E402


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def measure(stack, *, clients: int, updates: int, gap: float) -> tuple[list[float], int]:
    received: list[float] = []
    ready = asyncio.Semaphore(0)
    sockets = []

    async def client():
        async with websockets.connect(f"{stack.ws_url}/ws/leaderboard/?window=all",
                                      additional_headers={"Origin": stack.web_url}, max_queue=None) as ws:
            sockets.append(ws)
            await ws.recv()  # the snapshot
            ready.release()
            async for raw in ws:
                now = time.time()
                message = json.loads(raw)
                if message.get("type") == "delta" and "sent_at" in message:
                    received.append(now - message["sent_at"])

    tasks = []
    for i in range(clients):
        tasks.append(asyncio.create_task(client()))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # don't stampede daphne's accept loop
    for _ in range(clients):
        await asyncio.wait_for(ready.acquire(), timeout=120)
    layer = RedisChannelLayer(hosts=[stack.redis_url])
    for seq in range(updates):
        await layer.group_send("leaderboard.all", {
            "type": "leaderboard.delta", "window": "all", "seq": 10_000 + seq, "changes": [], "joined": [],
            "left": [], "top": [{"rank": r, "player_id": str(r), "player": f"Player {r}", "total": 1000 - r}
                                for r in range(1, 11)],
            "sent_at": time.time()})
        await asyncio.sleep(gap)
    deadline = time.time() + 10
    while len(received) < clients * updates and time.time() < deadline:
        await asyncio.sleep(0.1)
    missing = clients * updates - len(received)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await layer.flush()
    return received, missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between updates")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.updates, args.gap = 20, 3, 0.3
    limit = raise_fd_limit()
    with live_stack(players=1) as stack:
        single, single_missing = asyncio.run(measure(stack, clients=1, updates=args.updates, gap=args.gap))
        many, many_missing = asyncio.run(measure(stack, clients=args.clients, updates=args.updates, gap=args.gap))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"open-file limit {limit}")
    print(f"{args.updates} updates, {args.gap:g} s apart, through Redis and one daphne process")
    print(f"{'clients':>8} {'deliveries':>10} {'missing':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for clients, values, missing in ((1, single, single_missing), (args.clients, many, many_missing)):
        q = quantiles(values)
        print(f"{clients:>8} {len(values):>10} {missing:>8} {q['p50']:>7.1f} {q['p95']:>7.1f} {q['p99']:>7.1f} "
              f"{q['max']:>7.1f}")
    ratio = quantiles(many)["p99"] / quantiles(single)["p99"]
    print(f"ratio p99 {args.clients} clients / 1 client: {ratio:.1f}; target p99 <= 500 ms: "
          f"{'met' if quantiles(many)['p99'] <= 500 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
