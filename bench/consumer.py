"""Benchmark: the stream consumer against a raw floor, on an empty and a full table.

A backlog of submissions (default 10,000 from 1,000 players) is written to
the table, then drained by the real consumer (`consume_scores --once`, run
in-process). In the same run, on the same moto server, the raw floor reads
the same records with GetRecords and makes one UpdateItem per record. The
whole thing is repeated on a table pre-filled with 100,000 applied SCORE
items, to show that the cost of a record does not grow with the table.

    python bench/consumer.py            # full run (the prefill takes about a minute)
    python bench/consumer.py --smoke    # tiny run, for CI
"""

import argparse
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import django_env, manage, moto_server  # noqa: E402

TASKS = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50}
# One seeded generator for every backlog of a run, so runs are repeatable.
_RNG = random.Random(7)


def write_backlog(store, Submission, *, count: int, players: int, status="pending", rng=_RNG):
    """Submissions written 25 at a time (BatchWriteItem), as INSERTs on the stream."""
    items = []
    for _ in range(count):
        player = rng.randrange(players)
        task = rng.choice(list(TASKS))
        submission = Submission(id=str(uuid.uuid4()), player_id=f"p{player}", player_name=f"Player {player}",
                                task=task, submitted_at=datetime.now(UTC))
        if status == "applied":
            from dataclasses import replace

            from scoring.domain import Status
            submission = replace(submission, status=Status.APPLIED, points=TASKS[task],
                                 processed_at=datetime.now(UTC))
        items.append(store.submission_to_item(submission))
    store.items_put_many(items)
    return [item["submission_id"]["S"] for item in items]


def stream_shard(store):
    client = store.streams_client()
    arn = store.stream_arn()
    shard = client.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    return client, arn, shard


def skip_prefill(store, *, prefill: int) -> None:
    """Checkpoint past the prefill, as a consumer that kept up would have.

    moto numbers a stream's records with consecutive integers (AWS's are only
    increasing), so the last
    prefill record is the first one plus prefill - 1; checked below.
    """
    client, arn, shard = stream_shard(store)
    it = client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first = client.get_records(ShardIterator=it, Limit=1)["Records"][0]["dynamodb"]["SequenceNumber"]
    last = str(int(first) + prefill - 1).zfill(len(first))
    it = client.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                   SequenceNumber=last)["ShardIterator"]
    assert client.get_records(ShardIterator=it, Limit=1)["Records"] == [], "prefill was not the whole stream"
    store.checkpoint_put(shard_id=shard, sequence_number=last)


def run_consumer(call_command, *, batch_size: int) -> float:
    start = time.perf_counter()
    call_command("consume_scores", "--once", "--batch-size", str(batch_size), "--progress-every", "3600")
    return time.perf_counter() - start


def run_floor(store, *, count: int, batch_size: int) -> float:
    """GetRecords from the consumer's starting point, one UpdateItem a record."""
    client, arn, shard = stream_shard(store)
    checkpoint = store.checkpoint_get(shard_id=shard + "#floor")
    kwargs = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint.sequence_number}
              if checkpoint else {"ShardIteratorType": "TRIM_HORIZON"})
    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard, **kwargs)["ShardIterator"]
    ddb = store.client()
    done = 0
    start = time.perf_counter()
    while done < count:
        response = client.get_records(ShardIterator=iterator, Limit=min(batch_size, count - done))
        iterator = response["NextShardIterator"]
        for record in response["Records"]:
            image = record["dynamodb"].get("NewImage", {})
            if record["eventName"] != "INSERT" or not image.get("PK", {}).get("S", "").startswith("SCORE#"):
                continue  # bookkeeping written between prefill and backlog
            ddb.update_item(TableName=store.table_name(), Key={"PK": {"S": "FLOOR#" + image["player_id"]["S"]},
                                                           "SK": {"S": "TOTAL"}},
                            UpdateExpression="ADD #t :p", ExpressionAttributeNames={"#t": "total"},
                            ExpressionAttributeValues={":p": {"N": "10"}})
            done += 1
    return time.perf_counter() - start


def measure(label, *, count, players, prefill, batch_size, store, Submission, call_command, table):
    from django.conf import settings

    settings.DYNAMODB_TABLE = table
    store.table_ensure(name=table)
    if prefill:
        t = time.perf_counter()
        write_backlog(store, Submission, count=prefill, players=players, status="applied")
        print(f"  [{label}] prefilled {prefill} applied SCORE items in {time.perf_counter() - t:.1f}s", flush=True)
        skip_prefill(store, prefill=prefill)
        client, arn, shard = stream_shard(store)
        store.checkpoint_put(shard_id=shard + "#floor", sequence_number=store.checkpoint_get(
            shard_id=shard).sequence_number)
    backlog = write_backlog(store, Submission, count=count, players=players)
    consumer_s = run_consumer(call_command, batch_size=batch_size)
    from scoring.domain import Status

    settled = store.scores_get_many(submission_ids=backlog)
    pending = sum(1 for s in settled.values() if s.status is Status.PENDING)
    assert len(settled) == count and pending == 0, f"{pending} of {count} submissions left pending"
    floor_s = run_floor(store, count=count, batch_size=batch_size)
    # Not DescribeTable's ItemCount: moto computes it by walking every item.
    items = prefill + count + players
    return {"label": label, "consumer_rps": count / consumer_s, "floor_rps": count / floor_s, "items": items}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--players", type=int, default=1_000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.count, args.players, args.prefill, args.batch_size = 200, 20, 1_000, 100

    with moto_server() as (endpoint, _), tempfile.TemporaryDirectory() as tmp:
        env = django_env(endpoint, "bench-empty", f"{tmp}/catalog.sqlite3")
        manage(env, "migrate", "--noinput")
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        from scoring import store
        from scoring.domain import Submission

        kwargs = dict(count=args.count, players=args.players, batch_size=args.batch_size, store=store,
                      Submission=Submission, call_command=call_command)
        empty = measure("empty table", prefill=0, table="bench-empty", **kwargs)
        full = measure(f"{args.prefill:,} items", prefill=args.prefill, table="bench-full", **kwargs)
        report(args, empty, full)  # before stopping moto, which may take a while
    return 0


def report(args, empty, full) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"backlog: {args.count} submissions from {args.players} players, batch size {args.batch_size}")
    print(f"{'table':<16} {'~items':>8} {'consumer rec/s':>15} {'floor rec/s':>12} {'ratio':>6}")
    for row in (empty, full):
        print(f"{row['label']:<16} {row['items'] or 0:>8} {row['consumer_rps']:>15.1f} {row['floor_rps']:>12.1f} "
              f"{row['consumer_rps'] / row['floor_rps']:>6.2f}")
    print(f"per-record cost, full vs empty table: {empty['consumer_rps'] / full['consumer_rps']:.2f}x "
          f"(1.00 = no growth)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
