"""Benchmark: end-to-end latency, from POST /api/scores/ to the websocket message.

Players submit at a steady rate (default 20/s for 60 s) through the real API;
each player holds a websocket and the clock stops when their own
`submission` message arrives, pushed by the real `consume_scores` process
through Redis. Prints p50/p95/p99. Target: p99 <= 300 ms.

By default this is the `make run` and compose shape: one ASGI server process
(``--server``: uvicorn, or daphne) serves the API and the websockets.
``--http-server gunicorn`` serves the API from gunicorn instead, the split
docs/deploy.md describes.

Baseline, measured side by side in the same run on the same moto server: the
stream floor, a raw PutItem followed by a GetRecords loop polling at the
consumer's interval until the record shows up. The pipeline cannot beat it.

    python bench/latency.py
    python bench/latency.py --server daphne
    python bench/latency.py --smoke
"""

import argparse
import asyncio
import json
import os
import platform
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import urllib3  # noqa: E402
import websockets  # noqa: E402

from bench._stack import ASGI_SERVERS, live_stack, quantiles  # noqa: E402


async def run_pipeline(stack, *, rate: float, duration: float) -> tuple[list[float], int, list[float]]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    post_seconds: list[float] = []
    lost = 0
    http = urllib3.PoolManager(maxsize=8)

    async def listen(player):
        headers = {"Cookie": f"sessionid={player['session']}", "Origin": stack.ws_url.replace("ws://", "http://")}
        async with websockets.connect(f"{stack.ws_url}/ws/leaderboard/?window=all", additional_headers=headers) as ws:
            player["ready"].set()
            async for raw in ws:
                message = json.loads(raw)
                if message["type"] == "submission":
                    started = sent.pop(message["submission"]["id"], None)
                    if started is not None:
                        latencies.append(time.perf_counter() - started)

    loop = asyncio.get_running_loop()
    for player in stack.players:
        player["ready"] = asyncio.Event()
    listeners = [asyncio.create_task(listen(p)) for p in stack.players]
    await asyncio.gather(*(p["ready"].wait() for p in stack.players))

    def post(player):
        started = time.perf_counter()
        response = http.request("POST", f"{stack.web_url}/api/scores/", body=b'{"task": "warm-up-sums"}',
                                headers={"Authorization": f"Token {player['token']}",
                                         "Content-Type": "application/json",
                                         "Idempotency-Key": str(uuid.uuid4())})
        if response.status != 202:
            raise RuntimeError(f"API answered {response.status}: {response.data[:200]!r}")
        post_seconds.append(time.perf_counter() - started)
        sent[json.loads(response.data)["id"]] = started

    interval = 1 / rate
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < duration:
        player = stack.players[i % len(stack.players)]
        # Keep the clock honest: a slow POST must not delay the next one.
        loop.run_in_executor(None, post, player)
        i += 1
        await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
    deadline = time.perf_counter() + 10
    while sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    lost = len(sent)
    for task in listeners:
        task.cancel()
    return latencies, lost, post_seconds


def run_floor(stack, *, rate: float, duration: float, poll_interval: float) -> list[float]:
    """PutItem, then GetRecords every poll_interval until the record appears."""
    import boto3

    kwargs = {"endpoint_url": stack.endpoint, "region_name": "us-east-1", "aws_access_key_id": "bench",
              "aws_secret_access_key": "bench"}
    ddb = boto3.client("dynamodb", **kwargs)
    streams = boto3.client("dynamodbstreams", **kwargs)
    table = "bench-floor"
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "PK", "AttributeType": "S"}],
                     BillingMode="PAY_PER_REQUEST",
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")["ShardIterator"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = threading.Event()

    def reader():
        nonlocal iterator
        while not done.is_set() or sent:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            iterator = response["NextShardIterator"]
            now = time.perf_counter()
            for record in response["Records"]:
                started = sent.pop(record["dynamodb"]["Keys"]["PK"]["S"], None)
                if started is not None:
                    latencies.append(now - started)
            if not response["Records"]:
                time.sleep(poll_interval)

    thread = threading.Thread(target=reader)
    thread.start()
    start = time.perf_counter()
    for i in range(int(rate * duration)):
        key = f"SCORE#{uuid.uuid4()}"
        sent[key] = time.perf_counter()
        ddb.put_item(TableName=table, Item={"PK": {"S": key}})
        time.sleep(max(0.0, start + (i + 1) / rate - time.perf_counter()))
    done.set()
    thread.join(timeout=15)
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="submissions per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds")
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--poll-interval", type=float, default=0.1, help="consumer's STREAM_POLL_INTERVAL")
    parser.add_argument("--server", choices=ASGI_SERVERS, default="uvicorn", help="the ASGI server")
    parser.add_argument("--http-server", choices=["asgi", "gunicorn"], default="asgi",
                        help="what serves the API: the ASGI server (make run, compose) or gunicorn")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.rate, args.duration, args.players = 5.0, 3.0, 3
    load_before = os.getloadavg()
    env = {"STREAM_POLL_INTERVAL": str(args.poll_interval), "SCORE_SUBMIT_RATE": "100000/minute"}
    with live_stack(players=args.players, extra_env=env, server=args.server,
                    http_server=args.http_server if args.http_server == "gunicorn" else None) as stack:
        time.sleep(2)  # let the consumer take its lease
        latencies, lost, posts = asyncio.run(run_pipeline(stack, rate=args.rate, duration=args.duration))
        floor = run_floor(stack, rate=args.rate, duration=args.duration, poll_interval=args.poll_interval)
    pipe, base = quantiles(latencies), quantiles(floor)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{args.rate:g} submissions/s for {args.duration:g} s from {args.players} players; "
          f"consumer poll interval {args.poll_interval:g} s; API on "
          f"{args.server if args.http_server == 'asgi' else 'gunicorn'}, websockets on {args.server}")
    print(f"{'path':<34} {'n':>5} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for label, values, q in (("POST -> websocket message", latencies, pipe),
                             ("  of which the POST itself", posts, quantiles(posts)),
                             ("floor: PutItem -> GetRecords", floor, base)):
        print(f"{label:<34} {len(values):>5} {q['p50']:>7.1f} {q['p95']:>7.1f} {q['p99']:>7.1f} {q['max']:>7.1f}")
    print(f"lost (no message within 10 s): {lost}")
    print(f"ratio p99 pipeline/floor: {pipe['p99'] / base['p99']:.2f}; target p99 <= 300 ms: "
          f"{'met' if pipe['p99'] <= 300 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
