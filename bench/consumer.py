"""Benchmark: the stream consumer against a raw floor, on an empty and a full table.

A backlog of submissions (default 10,000 from 1,000 players) is written to
the table, then drained by the real consumer (`consume_scores --once`, run
in-process). In the same run, on the same moto server, the raw floor reads
the same records with GetRecords and makes one UpdateItem per record. The
whole thing is repeated on a table pre-filled with 100,000 applied SCORE
items, to show that the cost of a record does not grow with the table.

``--holds`` measures the hold rules instead (scoring.domain.hold_decide):
the same backlog is drained with SCORE_HOLD_RULES on and off, side by side,
each on a fresh table, in rounds that alternate which goes first. Target:
on within 10% of off. With the defaults (10 submissions a player, a burst
limit of 30) nothing is held, so this is the cost of the bookkeeping (each
TOTAL's ``recent`` list, the rules read per batch); ``--hold-burst-count 5``
holds about half.

    python bench/consumer.py            # full run (the prefill takes about a minute)
    python bench/consumer.py --holds    # hold rules on vs off, about 20 minutes
    python bench/consumer.py --smoke    # tiny run, for CI (with --holds: of that mode)
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import django_env, manage, moto_server  # noqa: E402

TASKS = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50}
# One seeded generator for every backlog of a run, so runs are repeatable.
_RNG = random.Random(7)


# How long the --holds backlog's completions took to play: above every
# difficulty's review time (4.5, 9 and 24 s as seeded), so the speed rule is
# checked for each and holds none.
PLAYED_MS = 30_000


def write_backlog(store, Submission, *, count: int, players: int, status="pending", rng=_RNG,
                  elapsed_ms: int | None = None):
    """Submissions written 25 at a time (BatchWriteItem), as INSERTs on the stream."""
    items = []
    for _ in range(count):
        player = rng.randrange(players)
        task = rng.choice(list(TASKS))
        submission = Submission(id=str(uuid.uuid4()), player_id=f"p{player}", player_name=f"Player {player}",
                                task=task, submitted_at=datetime.now(UTC), elapsed_ms=elapsed_ms)
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


def run_consumer(call_command, *, batch_size: int | None) -> float:
    start = time.perf_counter()
    size = ["--batch-size", str(batch_size)] if batch_size else []
    call_command("consume_scores", "--once", *size, "--progress-every", "3600")
    return time.perf_counter() - start


def run_floor(store, *, count: int) -> float:
    """GetRecords (full pages) from the consumer's starting point, one
    UpdateItem a record."""
    client, arn, shard = stream_shard(store)
    checkpoint = store.checkpoint_get(shard_id=shard + "#floor")
    kwargs = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint.sequence_number}
              if checkpoint else {"ShardIteratorType": "TRIM_HORIZON"})
    iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard, **kwargs)["ShardIterator"]
    ddb = store.client()
    done = 0
    start = time.perf_counter()
    while done < count:
        response = client.get_records(ShardIterator=iterator, Limit=min(store.GET_RECORDS_LIMIT, count - done))
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
    floor_s = run_floor(store, count=count)
    # Not DescribeTable's ItemCount: moto computes it by walking every item.
    items = prefill + count + players
    return {"label": label, "consumer_rps": count / consumer_s, "floor_rps": count / floor_s, "items": items}


def drain_holds(*, table, rules_on, rng, count, players, batch_size, store, Submission, call_command) -> dict:
    """One drain of a backlog on a fresh table, dropped after it."""
    from django.conf import settings

    from scoring.domain import Status

    settings.DYNAMODB_TABLE = table
    settings.SCORE_HOLD_RULES = rules_on  # read by scoring.catalog.hold_rules() each batch
    store.table_ensure(name=table)
    backlog = write_backlog(store, Submission, count=count, players=players, rng=rng, elapsed_ms=PLAYED_MS)
    seconds = run_consumer(call_command, batch_size=batch_size)
    statuses = Counter(s.status for s in store.scores_get_many(submission_ids=backlog).values())
    assert sum(statuses.values()) == count and not statuses[Status.PENDING], \
        f"{table}: {statuses[Status.PENDING]} of {count} submissions left pending"
    store.table_delete(name=table)
    return {"rps": count / seconds, "held": statuses[Status.HELD]}


def measure_holds(*, rounds, count, players, **kwargs) -> list[dict]:
    """Rounds of two drains of the same backlog (same players and tasks, in
    the same order), hold rules on and off, each on a fresh table, so that
    every drain starts from the same state. The side that goes first
    alternates, after an unmeasured drain of each: the process's first drain
    pays for imports and new connections, which would count against
    whichever side went first."""
    for rules_on in (True, False):
        drain_holds(table=f"bench-holds-warm-up-{rules_on}", rules_on=rules_on, rng=random.Random(-1),
                    count=max(1, count // 10), players=players, **kwargs)
    rows = []
    for i in range(rounds):
        row = {}
        for rules_on in (True, False) if i % 2 == 0 else (False, True):
            side = "on" if rules_on else "off"
            row[side] = drain_holds(table=f"bench-holds-{i + 1}-{side}", rules_on=rules_on, rng=random.Random(i),
                                    count=count, players=players, **kwargs)
            row.setdefault("first", side)
            print(f"  [round {i + 1}] rules {side}: {row[side]['rps']:.1f} rec/s, {row[side]['held']} held",
                  flush=True)
        rows.append(row)
    return rows


def batch_size_shown(args) -> str:
    from django.conf import settings

    if args.batch_size:
        return f"batch size {args.batch_size:,}"
    return f"batch size {settings.STREAM_BATCH_SIZE:,} (the consumer's default)"


def report_holds(args, rows) -> None:
    from django.conf import settings

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"backlog: {args.count} submissions from {args.players} players, {batch_size_shown(args)}; "
          f"burst limit {settings.SCORE_HOLD_BURST_COUNT} in {settings.SCORE_HOLD_BURST_SECONDS:g} s")
    print(f"{'round':>5} {'first':>5} {'on rec/s':>9} {'off rec/s':>10} {'on/off':>7} {'held (on)':>10} "
          f"{'held (off)':>10}")
    for i, row in enumerate(rows, start=1):
        on, off = row["on"], row["off"]
        print(f"{i:>5} {row['first']:>5} {on['rps']:>9.1f} {off['rps']:>10.1f} {on['rps'] / off['rps']:>7.2f} "
              f"{on['held']:>10} {off['held']:>10}")
    ratios = [row["on"]["rps"] / row["off"]["rps"] for row in rows]
    print(f"median: on {statistics.median(r['on']['rps'] for r in rows):.1f} rec/s, "
          f"off {statistics.median(r['off']['rps'] for r in rows):.1f} rec/s")
    print(f"ratio on/off per round: {' '.join(f'{r:.2f}' for r in ratios)}")
    print(f"ratio on/off (median of rounds): {statistics.median(ratios):.2f} (target >= 0.90)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--players", type=int, default=1_000)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int,
                        help="the consumer's most records a batch (default: its own, settings.STREAM_BATCH_SIZE)")
    parser.add_argument("--holds", action="store_true", help="hold rules on vs off instead of the floor")
    parser.add_argument("--rounds", type=int, default=4, help="with --holds: on/off pairs")
    parser.add_argument("--hold-burst-count", type=int,
                        help="with --holds: SCORE_HOLD_BURST_COUNT (default: settings, 30)")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.count, args.players, args.prefill, args.batch_size, args.rounds = 200, 20, 1_000, 100, 2

    with moto_server() as (endpoint, _), tempfile.TemporaryDirectory() as tmp:
        env = django_env(endpoint, "bench-empty", f"{tmp}/catalog.sqlite3")
        if args.hold_burst_count:
            env["SCORE_HOLD_BURST_COUNT"] = str(args.hold_burst_count)
        manage(env, "migrate", "--noinput")
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        from scoring import store
        from scoring.domain import Submission

        if args.holds:
            rows = measure_holds(rounds=args.rounds, count=args.count, players=args.players,
                                 batch_size=args.batch_size, store=store, Submission=Submission,
                                 call_command=call_command)
            report_holds(args, rows)
            return 0
        kwargs = dict(count=args.count, players=args.players, batch_size=args.batch_size, store=store,
                      Submission=Submission, call_command=call_command)
        empty = measure("empty table", prefill=0, table="bench-empty", **kwargs)
        full = measure(f"{args.prefill:,} items", prefill=args.prefill, table="bench-full", **kwargs)
        report(args, empty, full)  # before stopping moto, which may take a while
    return 0


def report(args, empty, full) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"backlog: {args.count} submissions from {args.players} players, {batch_size_shown(args)}")
    print(f"{'table':<16} {'~items':>8} {'consumer rec/s':>15} {'floor rec/s':>12} {'ratio':>6}")
    for row in (empty, full):
        print(f"{row['label']:<16} {row['items'] or 0:>8} {row['consumer_rps']:>15.1f} {row['floor_rps']:>12.1f} "
              f"{row['consumer_rps'] / row['floor_rps']:>6.2f}")
    print(f"per-record cost, full vs empty table: {empty['consumer_rps'] / full['consumer_rps']:.2f}x "
          f"(1.00 = no growth)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
