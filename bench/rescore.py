"""Benchmark: a retroactive rules change, its preview and its apply, against moto.

Preview. Tables of 10,000 and of 100,000 TOTAL items are written directly
(BatchWriteItem), each the TOTAL the real fold (``domain.fold_player``) makes
of a player's seeded random history: 1 to 100 submissions (mean about 9) of
the seeded catalog's eight tasks, played over three weeks, so ``counts``
holds a few ``task|points`` keys and the kept windows' keys, ``windows`` the
kept periods and ``recent`` the last 30 completions, as in play. Then, in
rounds that alternate which goes first, the real preview
(``scoring.rules.rules_preview`` of ``plan_points(difficulty_name="Hard",
points=60)``: ``store.totals_scan`` and ``domain.rescore_preview``) and a bare
read of the same items (the same paginated Scan with the same
FilterExpression, nothing done with the items). Goal: the preview at 100,000
players within 5 s; if moto's bare Scan alone takes longer than 5 s, within
1.5x that bare read.

Apply. A fresh table of 3,000 players (the same generator) and the real
retroactive apply: ``rules_change_apply`` (the catalog change in the
throwaway SQLite, then ``rules_change_adjust``: a Scan of the TOTALs and one
conditional PutItem of an adjustment SCORE item per affected player), then
the real consumer (``consume_scores --once``, in-process) folding every
adjustment into its TOTAL. Reported as adjustments/s, write and fold
together, beside the consumer's raw floor on the same records in the same
run, measured by ``bench/consumer.py``'s own ``run_floor`` (GetRecords and
one UpdateItem per record). Each apply round re-scores Hard again (+10
points) on a fresh table.

    python bench/rescore.py           # full run, about 40 minutes on 2 cores (moto scans slowly)
    python bench/rescore.py --smoke   # tiny run, for CI
"""

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402

from bench._stack import django_env, manage, moto_server  # noqa: E402
from bench.consumer import run_consumer, run_floor, skip_prefill, stream_shard  # noqa: E402

PREVIEW_GOAL_S = 5.0
BARE_FACTOR_GOAL = 1.5
HISTORY_DAYS = 21
RECENT_KEPT = 30  # SCORE_HOLD_BURST_COUNT's default: how many completions a TOTAL's ``recent`` keeps


# --- the TOTAL items ----------------------------------------------------------


def players_totals(*, players: int, points: dict[str, int], version: int, rng: random.Random,
                   now: datetime) -> list:
    """One TOTAL per player, as the real fold makes it from a seeded random
    history of applied submissions scored with ``points`` under rules
    ``version``, every one settled (``pending`` empty)."""
    from scoring.domain import Decision, PlayerTotal, Status, Submission, fold_player

    tasks = sorted(points)
    totals = []
    for p in range(players):
        player_id, name = f"p{p}", f"Player {p}"
        played = sorted(now - timedelta(seconds=rng.uniform(0, HISTORY_DAYS * 86400))
                        for _ in range(1 + min(int(rng.expovariate(1 / 8)), 99)))
        decisions = []
        for i, at in enumerate(played):
            task = rng.choice(tasks)
            decisions.append(Decision(Submission(id=f"{player_id}-{i}", player_id=player_id, player_name=name,
                                                 task=task, submitted_at=at), Status.APPLIED, points=points[task],
                                      rules_version=version))
        folded = fold_player(PlayerTotal(player_id, name), fresh=decisions, settled_ids=set()).new_total
        totals.append(replace(folded, pending={}, versions={}, version=len(played),
                              recent=[int(at.timestamp() * 1000) for at in played[-RECENT_KEPT:]]))
    return totals


def seed_table(store, *, table: str, players: int, points: dict[str, int], rng: random.Random) -> dict:
    """A fresh table holding ``players`` TOTAL items and nothing else."""
    from django.conf import settings

    from scoring import rules
    from scoring.domain import count_key_parse

    settings.DYNAMODB_TABLE = table
    store.table_ensure(name=table)
    start = time.perf_counter()
    totals = players_totals(players=players, points=points, version=rules.rules_version(), rng=rng,
                            now=datetime.now(UTC))
    items = [store.total_to_item(t) for t in totals]
    store.items_put_many(items)
    for t in totals:  # the invariant the rules change relies on: total = points x count over all time
        assert t.total == sum(n * count_key_parse(k)[2] for k, n in t.counts.items() if count_key_parse(k)[0] is None)
    return {"seconds": time.perf_counter() - start, "players": players, "points": sum(t.total for t in totals),
            "counts_keys": sum(len(t.counts) for t in totals) / players,
            "item_kb": sum(len(repr(item)) for item in items[:1000]) / min(players, 1000) / 1024}


# --- preview vs bare read -----------------------------------------------------


def bare_read(store) -> int:
    """What the preview reads, and nothing else: totals_scan's paginated Scan
    with its FilterExpression; the items are counted, not parsed."""
    from scoring.store.base import paginate
    from scoring.store.keys import PLAYER_PREFIX

    items = 0
    for page in paginate("scan", TableName=store.table_name(), FilterExpression="begins_with(PK, :p) AND SK = :sk",
                         ExpressionAttributeValues={":p": {"S": PLAYER_PREFIX}, ":sk": {"S": "TOTAL"}}):
        items += len(page.get("Items", []))
    return items


def timed(fn, moto: psutil.Process) -> dict:
    moto_cpu = sum(moto.cpu_times()[:2])
    cpu, start = time.process_time(), time.perf_counter()
    result = fn()
    return {"s": time.perf_counter() - start, "cpu": time.process_time() - cpu,
            "moto_cpu": sum(moto.cpu_times()[:2]) - moto_cpu, "result": result}


def measure_preview(store, *, players: int, rounds: int, plan, points, moto: psutil.Process) -> dict:
    from scoring import rules

    table = f"bench-rescore-{players}"
    seeded = seed_table(store, table=table, players=players, points=points, rng=random.Random(players))
    print(f"  [{players:,} players] seeded {players:,} TOTAL items in {seeded['seconds']:.1f}s "
          f"(~{seeded['item_kb']:.2f} KB and {seeded['counts_keys']:.1f} counts keys an item)", flush=True)
    sides = {"preview": lambda: rules.rules_preview(plan=plan), "bare": lambda: bare_read(store)}
    rows = []
    for i in range(rounds):
        row = {"first": "preview" if i % 2 == 0 else "bare"}
        for side in ("preview", "bare") if i % 2 == 0 else ("bare", "preview"):
            row[side] = timed(sides[side], moto)
        preview, read = row["preview"]["result"], row["bare"]["result"]
        assert preview.players == players and read == players, (preview.players, read, players)
        row["affected"] = preview.players_affected
        print(f"  [{players:,} players] round {i + 1}: preview {row['preview']['s']:.2f}s, "
              f"bare {row['bare']['s']:.2f}s", flush=True)
        rows.append(row)
    store.table_delete(name=table)
    return {"players": players, "rows": rows, "seeded": seeded}


# --- apply --------------------------------------------------------------------


def measure_apply(store, call_command, *, round_no: int, players: int, batch_size: int) -> dict:
    from scoring import rules
    from scoring.domain import Status, adjustment_id
    from scoring.models import RulesChange, Task

    points = dict(Task.objects.values_list("slug", "difficulty__points"))
    hard = points["big-products"]
    table = f"bench-rescore-apply-{round_no}"
    seeded = seed_table(store, table=table, players=players, points=points, rng=random.Random(-round_no))
    # Both readers start past the seeded TOTALs, as a consumer that kept up would.
    skip_prefill(store, prefill=players)
    _, _, shard = stream_shard(store)
    skipped = store.checkpoint_get(shard_id=shard).sequence_number
    store.checkpoint_put(shard_id=shard + "#floor", sequence_number=skipped)
    plan = rules.plan_points(difficulty_name="Hard", points=hard + 10)
    start = time.perf_counter()
    change = rules.rules_change_apply(plan=plan, mode=RulesChange.Mode.RETROACTIVE, reason="bench/rescore.py",
                                      actor="bench/rescore.py")
    write_s = time.perf_counter() - start
    fold_s = run_consumer(call_command, batch_size=batch_size)
    written = change.adjustments_written
    assert written == change.players_affected > 0, (written, change.players_affected)
    adjustments = store.scores_get_many(submission_ids=[adjustment_id(rules_change=change.pk, player_id=f"p{p}")
                                                        for p in range(players)])
    assert len(adjustments) == written and all(a.status is Status.APPLIED for a in adjustments.values()), \
        "adjustments left unapplied"
    after = sum(t.total for t in store.totals_scan())
    assert after == seeded["points"] + change.points_delta, (after, seeded["points"], change.points_delta)
    floor_s = run_floor(store, count=written)
    store.table_delete(name=table)
    row = {"change": change.summary, "players": players, "adjustments": written, "write_s": write_s,
           "fold_s": fold_s, "adj_rps": written / (write_s + fold_s), "fold_rps": written / fold_s,
           "floor_rps": written / floor_s}
    print(f"  [apply {round_no}] {change.summary}: {written} adjustments, write {write_s:.1f}s, fold {fold_s:.1f}s, "
          f"floor {floor_s:.1f}s", flush=True)
    return row


# --- report -------------------------------------------------------------------


def report(args, previews: list[dict], applies: list[dict], plan) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}; load average before the run {args.load_before}")
    print(f"preview of {plan.summary_for('retroactive')} ({', '.join(sorted(plan.rescore))}); "
          f"{args.rounds} rounds per size, the side that goes first alternating")
    print(f"{'players':>8} {'round':>5} {'first':>7} {'preview s':>9} {'bare s':>7} {'ratio':>6} "
          f"{'CPU s: preview':>14} {'bare':>5} {'moto (preview)':>14} {'moto (bare)':>11}")
    for size in previews:
        for i, row in enumerate(size["rows"], start=1):
            p, b = row["preview"], row["bare"]
            print(f"{size['players']:>8} {i:>5} {row['first']:>7} {p['s']:>9.2f} {b['s']:>7.2f} "
                  f"{p['s'] / b['s']:>6.2f} {p['cpu']:>14.2f} {b['cpu']:>5.2f} {p['moto_cpu']:>14.2f} "
                  f"{b['moto_cpu']:>11.2f}")
    print(f"{'players':>8} {'affected':>8} {'preview s':>9} {'bare s':>7} {'ratio':>6}  (medians of rounds)")
    for size in previews:
        size["preview_s"] = statistics.median(r["preview"]["s"] for r in size["rows"])
        size["bare_s"] = statistics.median(r["bare"]["s"] for r in size["rows"])
        size["ratio"] = statistics.median(r["preview"]["s"] / r["bare"]["s"] for r in size["rows"])
        print(f"{size['players']:>8} {size['rows'][0]['affected']:>8} {size['preview_s']:>9.2f} "
              f"{size['bare_s']:>7.2f} {size['ratio']:>6.2f}")
    largest = previews[-1]
    if largest["bare_s"] <= PREVIEW_GOAL_S:
        met = largest["preview_s"] <= PREVIEW_GOAL_S
        print(f"goal at {largest['players']} players: preview <= {PREVIEW_GOAL_S:g} s: "
              f"{largest['preview_s']:.2f} s: {'met' if met else 'NOT met'}")
    else:
        met = largest["ratio"] <= BARE_FACTOR_GOAL
        print(f"goal at {largest['players']} players: moto's bare scan takes {largest['bare_s']:.2f} s "
              f"(> {PREVIEW_GOAL_S:g} s), so preview <= {BARE_FACTOR_GOAL:g}x bare: {largest['ratio']:.2f}x: "
              f"{'met' if met else 'NOT met'} (preview {largest['preview_s']:.2f} s)")
    print(f"apply: {applies[0]['players']} players a round, consumer batch size {args.batch_size}")
    print(f"{'round':>5} {'adjustments':>11} {'write s':>7} {'fold s':>6} {'adjustments/s':>13} "
          f"{'fold rec/s':>10} {'floor rec/s':>11} {'ratio':>6}")
    for i, row in enumerate(applies, start=1):
        print(f"{i:>5} {row['adjustments']:>11} {row['write_s']:>7.1f} {row['fold_s']:>6.1f} {row['adj_rps']:>13.1f} "
              f"{row['fold_rps']:>10.1f} {row['floor_rps']:>11.1f} {row['adj_rps'] / row['floor_rps']:>6.2f}")
    adj = statistics.median(r["adj_rps"] for r in applies)
    floor = statistics.median(r["floor_rps"] for r in applies)
    ratio = statistics.median(r["adj_rps"] / r["floor_rps"] for r in applies)
    fold_ratio = statistics.median(r["fold_rps"] / r["floor_rps"] for r in applies)
    print(f"apply throughput (medians of rounds): {adj:.1f} adjustments/s (write and fold) against a floor of "
          f"{floor:.1f} rec/s: ratio {ratio:.2f}; the fold alone {fold_ratio:.2f} of the floor", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="players per preview table")
    parser.add_argument("--rounds", type=int, default=4, help="preview/bare pairs per size")
    parser.add_argument("--apply-players", type=int, default=3_000)
    parser.add_argument("--apply-rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.rounds, args.apply_players, args.apply_rounds, args.batch_size = [100, 200], 2, 100, 1, 100
    args.load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())

    with moto_server() as (endpoint, moto_pid), tempfile.TemporaryDirectory() as tmp:
        # A throwaway catalog: the apply changes Hard's points in it.
        env = django_env(endpoint, "bench-rescore", f"{tmp}/catalog.sqlite3")
        manage(env, "migrate", "--noinput")
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        from scoring import rules, store
        from scoring.models import Task

        moto = psutil.Process(moto_pid)
        points = dict(Task.objects.values_list("slug", "difficulty__points"))
        plan = rules.plan_points(difficulty_name="Hard", points=60)
        previews = [measure_preview(store, players=n, rounds=args.rounds, plan=plan, points=points, moto=moto)
                    for n in args.sizes]
        applies = [measure_apply(store, call_command, round_no=i, players=args.apply_players,
                                 batch_size=args.batch_size) for i in range(1, args.apply_rounds + 1)]
        report(args, previews, applies, plan)  # before stopping moto, which may take a while
    return 0


if __name__ == "__main__":
    sys.exit(main())
