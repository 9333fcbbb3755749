"""Benchmark: POST /api/scores/ against raw boto3 PutItem, side by side.

Both write the same SCORE item (the played path's evidence included) with
the same conditional PutItem to the same local DynamoDB (a moto server
process), at the same client concurrency. The
ratio API/raw shows what the API layer (web server, Django, DRF, token auth,
rate limit, task lookup, and on the verified path the challenge's HMAC and
answers) costs on top of the one write it must make. Target: >= 0.8.

The verified path (the default) posts played challenges: tokens the server
signed (issued here, with the web's SECRET_KEY, a minute in the past so
that min_seconds has passed) and their right answers, one per request,
made before the clock starts. ``--path trusted`` posts a bare task as a
trusted client (scoring.submit_trusted).

    python bench/api_submit.py                 # full run, verified path
    python bench/api_submit.py --path trusted  # the bare path of a trusted client
    python bench/api_submit.py --smoke         # a few requests, for CI
"""

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
import urllib3  # noqa: E402

from bench._stack import web_stack  # noqa: E402


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU time (user+system) so far of each named group of processes and
    their children (gunicorn's workers); the client is counted alone."""
    out = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            try:
                proc = psutil.Process(pid)
                family = [proc] if name == "client" else [proc, *proc.children(recursive=True)]
                for p in family:
                    times = p.cpu_times()
                    total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        out[name] = total
    return out


def machine_busy(before, after, elapsed: float) -> tuple[float, float]:
    """Cores the whole machine kept busy, and the share of its CPU time the
    hypervisor took (steal), between two psutil.cpu_times() readings."""
    # guest time is already inside user time on Linux
    delta = {field: getattr(after, field) - getattr(before, field) for field in before._fields
             if not field.startswith("guest")}
    total = sum(delta.values())
    steal = delta.get("steal", 0.0)
    busy = total - delta["idle"] - delta.get("iowait", 0.0) - steal
    return busy / elapsed, 100 * steal / total if total else 0.0


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """A distribution-free interval for the median: the narrowest pair of
    order statistics [k-th smallest, k-th largest] that holds the median with
    at least ``confidence`` (binomial, p = 1/2), and its exact coverage. None
    when there are too few values for it."""
    ordered, n = sorted(values), len(values)
    best = None
    for k in range(1, n // 2 + 1):
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2 ** n
        if coverage < confidence:
            break
        best = (ordered[k - 1], ordered[n - k], coverage)
    return best


def run_load(label: str, call, *, requests: int, concurrency: int, pids: dict | None = None) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = iter(range(requests))

    def worker():
        local = []
        while True:
            with lock:
                if next(remaining, None) is None:
                    break
            start = time.perf_counter()
            call()
            local.append(time.perf_counter() - start)
        with lock:
            latencies.extend(local)

    cpu_before = cpu_seconds(pids or {})
    machine_before = psutil.cpu_times()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - start
    busy, steal = machine_busy(machine_before, psutil.cpu_times(), elapsed)
    cpu_after = cpu_seconds(pids or {})
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    cpu_ms = {name: (cpu_after[name] - cpu_before[name]) * 1000 / len(latencies) for name in cpu_after}
    return {"label": label, "n": len(latencies), "rps": len(latencies) / elapsed,
            "p50": q[49] * 1000, "p99": q[98] * 1000, "cpu_ms": cpu_ms, "busy": busy, "steal": steal}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000, help="requests per measured phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10,
                        help="raw/API pairs; the side that goes first alternates")
    parser.add_argument("--warmup", type=int, default=400, help="unmeasured requests per side first")
    parser.add_argument("--server", choices=["gunicorn", "uvicorn", "daphne"], default="gunicorn",
                        help="web server in front of the API (default: gunicorn, which "
                             "docs/deploy.md recommends for HTTP)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (1: the sync worker)")
    parser.add_argument("--no-redis", dest="redis", action="store_false",
                        help="keep the rate-limit counters in each process's memory instead of in Redis")
    parser.add_argument("--path", choices=["verified", "trusted"], default="verified",
                        help="what the API side posts: played challenges (default) or a bare task")
    parser.add_argument("--smoke", action="store_true", help="tiny run to prove the benchmark works")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.concurrency, args.rounds, args.warmup = 40, 2, 2, 20

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gameapp.settings.base")
    with web_stack(server=args.server, workers=args.workers, threads=args.threads, redis=args.redis) as stack:
        web_url, env, token = stack.web_url, stack.env, stack.token
        pids = {**stack.pids, "client": [os.getpid()]}
        os.environ.update({k: env[k] for k in ("DYNAMODB_ENDPOINT_URL", "DYNAMODB_TABLE", "AWS_ACCESS_KEY_ID",
                                               "AWS_SECRET_ACCESS_KEY", "SECRET_KEY", "DATABASE_URL")})
        import django

        django.setup()
        from datetime import timedelta

        from rest_framework.authtoken.models import Token

        from scoring import store, verification
        from scoring.domain import Submission, submission_id_new, utcnow
        from scoring.models import Task

        ddb = store.client()
        # urllib3 is what botocore uses underneath the raw side, so the two
        # clients cost about the same; the CPU columns show it.
        http = urllib3.PoolManager(maxsize=args.concurrency, timeout=30)
        api_url = f"{web_url}/api/scores/"
        api_headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        bodies = iter(())
        if args.path == "verified":
            player_id = str(Token.objects.get(key=token).user_id)
            task = Task.objects.select_related("difficulty").get(slug="warm-up-sums")
            issued_at = utcnow() - timedelta(seconds=60)
            total = 2 * args.warmup + args.rounds * args.requests
            challenges = (verification.challenge_new(player_id=player_id, task=task, now=issued_at)
                          for _ in range(total))
            bodies = iter([json.dumps({"task": task.slug, "challenge": c.token,
                                       "answers": [q.answer for q in c.questions]}).encode() for c in challenges])
        bare = json.dumps({"task": "warm-up-sums"}).encode()
        body_lock = threading.Lock()

        def api_body():
            with body_lock:
                return next(bodies, bare)

        # The raw side writes the item the API writes, with the same
        # parameters as store.score_put: the played path's evidence
        # (challenge id, time taken, verified_by), or a trusted client's
        # verified_by. Until 2026-12-07 it wrote the item without them (a
        # quarter smaller, which moto stores faster).
        if args.path == "verified":
            def evidence():
                return {"challenge_id": secrets.token_hex(16), "elapsed_ms": 60_000,
                        "verified_by": verification.VERIFIED_BY_CHALLENGE}
        else:
            def evidence():
                return {"verified_by": "trusted:bench"}

        def raw_put():
            submission = Submission(id=submission_id_new(player_id="1", idempotency_key=None), player_id="1",
                                    player_name="bench", task="warm-up-sums", submitted_at=utcnow(), **evidence())
            ddb.put_item(TableName=env["DYNAMODB_TABLE"], Item=store.submission_to_item(submission),
                         ConditionExpression="attribute_not_exists(PK)", ReturnValuesOnConditionCheckFailure="ALL_OLD")

        def api_post():
            response = http.request("POST", api_url, body=api_body(), headers=api_headers)
            if response.status != 202:
                raise RuntimeError(f"API answered {response.status}: {response.data[:200]!r}")

        # Warm both paths (connections, imports, each gunicorn worker's first
        # requests) before anything is measured.
        run_load("warm-up", raw_put, requests=args.warmup, concurrency=args.concurrency)
        run_load("warm-up", api_post, requests=args.warmup, concurrency=args.concurrency)
        # Rounds alternate which side goes first (raw, API / API, raw / ...),
        # so a drift in the machine's speed during the run favours neither.
        pairs = []
        for i in range(args.rounds):
            sides = [("raw PutItem", raw_put), ("API POST", api_post)]
            measured = {label: run_load(label, call, requests=args.requests, concurrency=args.concurrency, pids=pids)
                        for label, call in (sides if i % 2 == 0 else sides[::-1])}
            pairs.append((measured["raw PutItem"], measured["API POST"]))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {platform.system()} {platform.release()}")
    print(f"{args.requests} requests x {args.rounds} rounds per side, concurrency {args.concurrency}")
    shape = f", {args.workers} workers x {args.threads} threads" if args.server == "gunicorn" else ""
    print(f"API side: {'played challenges (verified path)' if args.path == 'verified' else 'bare task (trusted)'}")
    print(f"server: {args.server}" + shape
          + f"; rate-limit counters in {'Redis' if args.redis else 'process memory'}")
    print(f"{'phase':<12} {'round':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   CPU ms/request: client web moto"
          "   machine: busy cores, steal %")
    for i, pair in enumerate(pairs, start=1):
        for row in pair:
            cpu = row["cpu_ms"]
            print(f"{row['label']:<12} {i:>5} {row['rps']:>8.1f} {row['p50']:>8.2f} {row['p99']:>8.2f}"
                  f"   {cpu['client']:>18.2f} {cpu['web']:>4.2f} {cpu['moto']:>4.2f}"
                  f"   {row['busy']:>19.2f} {row['steal']:>7.1f}")
    raw_rps = statistics.median(raw["rps"] for raw, _ in pairs)
    api_rps = statistics.median(api["rps"] for _, api in pairs)
    # Each round's two sides ran back to back, so a round's ratio is the
    # figure least moved by the machine's speed drifting during the run.
    round_ratios = [api["rps"] / raw["rps"] for raw, api in pairs]
    print(f"median throughput: raw {raw_rps:.1f} req/s, API {api_rps:.1f} req/s")
    print(f"ratio per round: {' '.join(f'{r:.2f}' for r in round_ratios)}")
    print(f"ratio API/raw throughput (median of rounds): {statistics.median(round_ratios):.2f} (target >= 0.80)")
    interval = median_interval(round_ratios)
    if interval:
        low, high, coverage = interval
        print(f"the median of this run's rounds lies in {low:.2f}-{high:.2f} ({coverage:.1%} confidence, "
              "order statistics)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
