"""Chaos: a retroactive rules change re-scores thousands of applied
submissions while the stream consumer is SIGKILLed at random moments, and
the change's own command is SIGKILLed mid-apply and resumed.

5,011 submissions by 1,000 players are applied under the seeded catalog
(Hard 50, hold rules off), by a consumer SIGKILLed in the middle of a
large batch it gathered from several reads, the one that takes over from
it (its first batch one record at a time), and one it hands over to. Then
`manage.py rules_change --difficulty Hard --points 60 --retroactive` runs
as a process against this test's own catalog: it is killed while it writes
the adjustments and finished with `--resume`, while a consumer with small
batches folds the adjustments into the TOTALs. That consumer is then
killed (and restarted) twice, at random moments while it folds them, with
hundreds still to fold; the second time in one of the large batches a
consumer gathers from several reads by default. Afterwards every total
equals the sum of its player's applied ledger (submissions and
adjustments), every Hard submission counts 60, each player with a Hard
submission has exactly one adjustment, and nothing is pending. Applying
the same change again (`--resume`, and the same command line) writes
nothing, and changes no SCORE item and no total.
"""

import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest

from scoring import store
from scoring.domain import Status, Submission, adjustment_id, count_key_parse
from tests.conftest import ROOT
from tests.e2e.chaos import log_tail, wait_for_log
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PLAYERS = 1_000
SUBMISSIONS = 5_000
CONSUMER_KILLS = 2
# The seeded catalog (Easy 10, Medium 25, Hard 50), and after the change.
BEFORE = {"warm-up-sums": 10, "mixed-operations": 25, "big-products": 50, "mental-marathon": 50}
HARD = {"big-products", "mental-marathon"}
AFTER = {task: 60 if task in HARD else points for task, points in BEFORE.items()}
CHANGE = ["--difficulty", "Hard", "--points", "60", "--retroactive", "--reason", "chaos", "--json", "--no-progress"]
# Small batches while the chaos lasts (the consumer's own writes share
# them): folding the adjustments takes long enough to kill the consumer in
# the middle of it, again and again. After the first kill, the consumer's
# default (up to 10,000 records, gathered from several reads while there is
# a backlog), so that the second kill lands in such a batch; the default to
# drain too.
CHAOS_BATCH = ("--batch-size", "10")
LARGE_BATCHES = ()
SCAN_READ_TIMEOUT = 30


class Catalog:
    """This test's own migrated catalog: a SQLite file every child process
    of the test reads (the session's ``catalog_db`` is shared with tests
    that expect Hard to be 50, so it must not change)."""

    def __init__(self, path):
        self.path = path

    def _query(self, sql: str) -> list[sqlite3.Row]:
        with sqlite3.connect(self.path, timeout=10) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql).fetchall()

    def changes(self) -> list[dict]:
        return [dict(r) for r in self._query("SELECT * FROM scoring_ruleschange ORDER BY id")]

    def hard_points(self) -> int:
        return self._query("SELECT points FROM scoring_difficulty WHERE name = 'Hard'")[0]["points"]


@pytest.fixture
def catalog(consumer_env, tmp_path, settings):
    path = tmp_path / "rescore-catalog.sqlite3"
    # moto takes over a second for a page of a scan (rules_change scans the
    # TOTALs, this test the SCOREs), more while a consumer keeps it busy:
    # past the 2 s read timeout that suits DynamoDB.
    settings.DYNAMODB_READ_TIMEOUT = SCAN_READ_TIMEOUT
    consumer_env.update({"DATABASE_URL": f"sqlite:///{path}", "SCORE_HOLD_RULES": "off",
                         "DYNAMODB_READ_TIMEOUT": str(SCAN_READ_TIMEOUT)})
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=consumer_env,
                   check=True)
    return Catalog(path)


def submit_all(rng: random.Random, players: list[int] | None = None) -> list[Submission]:
    """Every player plays at least once, the rest at random (or one
    submission each of ``players``). The SCORE items are those the API
    writes (``submission_to_item``, as ``score_put`` writes them), put 25 to
    a call for speed: each is an INSERT on the stream all the same. A
    player's submissions are adjacent, so a drain's batch folds most of them
    into one TOTAL write: draining 5,000 on moto takes seconds, not a
    minute."""
    if players is None:
        players = sorted([*range(PLAYERS), *(rng.randrange(PLAYERS) for _ in range(SUBMISSIONS - PLAYERS))])
    now = datetime.now(UTC)
    written = [Submission(id=str(uuid.uuid4()), player_id=f"p{p}", player_name=f"Player {p}",
                          task=rng.choice(list(BEFORE)), submitted_at=now, elapsed_ms=60_000,
                          verified_by="trusted:chaos") for p in players]
    store.items_put_many([store.submission_to_item(s) for s in written])
    return written


def applied_count(written: list[Submission]) -> int:
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    return sum(1 for s in stored.values() if s.status is Status.APPLIED)


def sums(written: list[Submission], points: dict[str, int]) -> dict[str, int]:
    totals = Counter()
    for s in written:
        totals[s.player_id] += points[s.task]
    return dict(totals)


def totals_now(players) -> dict[str, int]:
    return {p: t.total for p, t in store.totals_get_many(player_ids=list(players)).items()}


def progress(proc, count: str) -> int:
    """A count of a consumer's last progress line (written between
    batches, once a second here): ``read`` (stream records) or ``applied``."""
    found = re.findall(rf"(?:progress|final): .* {count}=(\d+) ", open(proc.log_path).read())
    return int(found[-1]) if found else 0


def rules_change(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "rules_change", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def start_rules_change(env: dict, log_path, *args: str) -> subprocess.Popen:
    """`manage.py rules_change` as a process to kill (its output in ``log_path``)."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "manage.py", "rules_change", *args], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path
    return proc


def drain(run_consumer_once) -> tuple[int, int, int]:
    """Drain the stream; (applied, rejected, dead-lettered) records."""
    result = run_consumer_once(*LARGE_BATCHES, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    final = re.search(r"final: .* applied=(\d+) rejected=(\d+) dlq=(\d+) ", result.stderr)
    assert final, result.stderr[-3000:]
    return tuple(map(int, final.groups()))


class Clock:
    """Prints what each phase took (shown with -s, or when the test fails):
    on moto a slow phase is worth knowing."""

    def __init__(self):
        self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"{what}: {now - self.last:.1f}s")
        self.last = now


def ledger() -> tuple[dict[str, int], list[Submission], list[Submission]]:
    """Σ points of each player's applied ledger entries (submissions and
    adjustments; reviews count on what they decided), and every SCORE item
    split into submissions and adjustments."""
    sums_, submissions, adjustments = Counter(), [], []
    for s in store.scores_scan():
        (adjustments if s.is_adjustment else submissions).append(s)
        if s.status is Status.APPLIED and s.review_of is None:
            sums_[s.player_id] += s.points or 0
    return dict(sums_), submissions, adjustments


def test_retroactive_rescore_survives_sigkills_and_applies_exactly_once(table, catalog, start_consumer,
                                                                        run_consumer_once, consumer_env, tmp_path):
    rng = random.Random(20261203)
    clock = Clock()
    # The submissions, applied by consumers with large batches. The first
    # applies a few, then meets the rest as a backlog, which it gathers into
    # one large batch from several reads (about 1,000 TOTAL writes: seconds
    # on moto), and is killed in the middle of it. The next, having taken
    # over from a dead holder, reads its first batch one record at a time
    # (a tenth of a second each on moto, hence its smaller batches), and is
    # stopped once past it; a third, taking the shard over as a handover,
    # applies the rest in large batches (in batches of 100, thousands of
    # submissions and the writes they make take minutes on moto).
    first = start_consumer(*LARGE_BATCHES, log_name="consumer-first.log")
    written = submit_all(rng, players=list(range(10)))
    wait_until(lambda: applied_count(written) == len(written), timeout=60, message=log_tail(first))
    written += submit_all(rng)
    time.sleep(rng.uniform(0.5, 2.0))  # the chaos moment, not a wait for anything
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    at_kill = applied_count(written)
    assert at_kill < len(written), f"the backlog was applied before the kill: {at_kill}"
    clock.lap(f"first consumer killed with {len(written) - at_kill} submissions to apply")
    second = start_consumer("--batch-size", "100", log_name="consumer-second.log")
    wait_for_log(second, "which died holding it")  # a takeover from a dead holder, not a handover
    wait_until(lambda: progress(second, "read") >= 100, timeout=120, message=log_tail(second))
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0, log_tail(second)()
    third = start_consumer(*LARGE_BATCHES, log_name="consumer-third.log")
    wait_until(lambda: applied_count(written) == len(written), timeout=240, interval=1, message=log_tail(third))
    assert "died holding it" not in open(third.log_path).read()  # handed over
    # A stream reader checkpoints a run of records it only skipped (such as
    # its own writes, which follow its last submission on the stream) at
    # most once a minute, and not when it stops: a consumer started after it
    # would first skip thousands of them, in small batches. One more
    # submission, written once the others are applied, moves the checkpoint
    # past them.
    written += submit_all(rng, players=[0])
    wait_until(lambda: applied_count(written) == len(written), timeout=60, message=log_tail(third))
    third.send_signal(signal.SIGTERM)
    assert third.wait(timeout=60) == 0, log_tail(third)()
    assert progress(third, "applied") > len(written) // 2, log_tail(third)()  # most of them, in large batches
    players = sorted({s.player_id for s in written})
    hard = Counter(s.player_id for s in written if s.task in HARD)
    assert len(players) == PLAYERS and len(hard) >= 900 and sum(hard.values()) >= 2_000
    stored = store.scores_get_many(submission_ids=[s.id for s in written])
    assert len(stored) == len(written) > 5_000
    clock.lap("write and drain")
    assert all(s.status is Status.APPLIED and s.points == BEFORE[s.task] for s in stored.values())
    assert totals_now(players) == sums(written, BEFORE)
    clock.lap("checked before")

    # A consumer on the stream while the change is made.
    consumer = start_consumer(*CHAOS_BATCH)
    wait_for_log(consumer, "Took the lease on")
    # The change: its RulesChange row and the new points commit first, then
    # it writes one adjustment per affected player. Killed in the middle of
    # that, once the first adjustments are on the stream.
    apply = start_rules_change(consumer_env, tmp_path / "apply.log", *CHANGE)
    change_id = wait_until(lambda: catalog.changes() and catalog.changes()[-1]["id"], timeout=60,
                           ignoring=(sqlite3.OperationalError,), message=log_tail(apply))
    ids = [adjustment_id(rules_change=change_id, player_id=p) for p in sorted(hard)]

    def statuses() -> Counter:
        """The statuses of the change's adjustments written so far."""
        return Counter(a.status for a in store.scores_get_many(submission_ids=ids).values())

    wait_until(lambda: statuses().total(), timeout=60, interval=0.2, message=log_tail(apply))
    time.sleep(rng.uniform(0.1, 0.6))  # the chaos moment, not a wait for anything
    apply.send_signal(signal.SIGKILL)
    assert apply.wait(timeout=10) == -signal.SIGKILL
    interrupted = catalog.changes()[-1]
    at_kill = statuses().total()
    assert interrupted["status"] == "applying" and 0 < at_kill < len(hard), (interrupted, at_kill)
    assert catalog.hard_points() == 60
    clock.lap(f"apply killed after {at_kill} of {len(hard)} adjustments")

    # Resumed, while the consumer keeps folding (the TOTALs the resume scans
    # change under it). It writes what the killed apply had not.
    resume = rules_change(consumer_env, "--resume", str(change_id), "--json", "--no-progress")
    assert resume.returncode == 0, resume.stderr[-3000:]
    resumed = json.loads(resume.stdout)
    assert (resumed["rules_change"], resumed["status"]) == (change_id, "applied")
    assert 0 < resumed["adjustments_written"] <= len(hard) and statuses().total() == len(hard), resumed
    clock.lap(f"resumed: {resumed}")
    # The consumer killed at a random moment once it is folding (more)
    # adjustments, with some still to fold, and started again; twice.
    kills = []
    folded = statuses()[Status.APPLIED]
    while len(kills) < CONSUMER_KILLS:
        # After a kill the next consumer waits out the dead one's lease (3 s).
        wait_for_log(consumer, "Took the lease on")

        def folding(since=folded) -> int:
            return (n := statuses()[Status.APPLIED]) > since and n

        folded = wait_until(folding, timeout=60, interval=0.25, message=log_tail(consumer))
        time.sleep(rng.uniform(0.1, 1.0))  # the chaos moment
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(timeout=10)
        kills.append(statuses())
        assert kills[-1][Status.PENDING] > 0, f"every adjustment was folded before kill #{len(kills)}: {kills}"
        consumer = start_consumer(*LARGE_BATCHES)
    clock.lap(f"consumer killed with {[k[Status.PENDING] for k in kills]} adjustments to fold")
    wait_for_log(consumer, "Took the lease on")  # SIGTERM before the handler is installed would just kill it
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0, log_tail(consumer)()
    # What the last consumer left, if anything (its large batches may have
    # folded every adjustment before it stopped).
    applied, rejected, dead = drain(run_consumer_once)
    assert rejected == dead == 0, (applied, rejected, dead)
    clock.lap("drained")

    assert catalog.changes()[-1]["status"] == "applied"
    expected = sums(written, AFTER)
    sums_, submissions, adjustments = ledger()
    # Nothing pending, nothing rejected: every submission applied, with the
    # points it was applied with (the adjustment carries the difference).
    assert Counter(s.status for s in submissions + adjustments) == {Status.APPLIED: len(written) + len(hard)}
    assert {s.id: s.points for s in submissions} == {s.id: BEFORE[s.task] for s in written}
    # One adjustment per player with a Hard submission, +10 for each.
    assert sorted(a.id for a in adjustments) == sorted(ids)
    assert {a.player_id: a.points for a in adjustments} == {p: 10 * n for p, n in hard.items()}
    assert {a.rules_version for a in adjustments} == {change_id}
    # Every total is its ledger, and counts every Hard submission as 60.
    totals = store.totals_get_many(player_ids=players)
    assert {p: t.total for p, t in totals.items()} == sums_ == expected
    for total in totals.values():
        counted = Counter()
        for key, n in total.counts.items():
            window, task, points = count_key_parse(key)
            if window is None:
                assert points == AFTER[task], (total.player_id, key)
                counted[task] += n
        assert counted == Counter(s.task for s in written if s.player_id == total.player_id)
    clock.lap("checked after")

    # Applying the same change again changes nothing: its adjustments are
    # there, and every TOTAL already folded them. Nothing new reaches the
    # stream (the drain applies nothing), and no SCORE item changes.
    before = {s.id: s for s in submissions + adjustments}
    again = rules_change(consumer_env, "--resume", str(change_id), "--json", "--no-progress")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["adjustments_written"] == resumed["adjustments_written"], again.stdout
    same = rules_change(consumer_env, *CHANGE)
    assert same.returncode == 2 and "already worth 60" in same.stderr, same
    assert len(catalog.changes()) == 1 and catalog.hard_points() == 60
    assert drain(run_consumer_once) == (0, 0, 0)
    assert store.scores_get_many(submission_ids=list(before)) == before
    assert totals_now(players) == expected
    clock.lap("applied again")


def test_a_consumer_killed_between_a_late_count_and_its_adjustment_writes_it_when_restarted(
        table, catalog, moto_server, start_consumer, consumer_env):
    """The race of a retroactive change with a batch, pinned with the fault
    proxy, and a SIGKILL at the one point the batch must survive: its TOTAL
    written with the old points, the change's adjustment not yet.

    A consumer reads the catalog (Hard 50) for a newcomer's first Hard game
    and is held at its TOTAL write. Meanwhile the change commits and scans
    the TOTALs, and finds nothing for the newcomer. The TOTAL is then
    written (50), and the consumer, which now sees the change, sends the
    newcomer's adjustment: held, and the consumer is SIGKILLed. The next
    consumer replays the batch and writes the adjustment, and the total
    ends at 60, once."""
    from tests.faults.proxy import FaultProxy

    def put_of(key: dict):
        def match(target: str, body: bytes) -> bool:
            if not target.endswith(".PutItem"):
                return False
            item = json.loads(body)["Item"]
            return all(item.get(k) == v for k, v in key.items())

        return match

    proxy = FaultProxy(moto_server)
    try:
        through_proxy = {"DYNAMODB_ENDPOINT_URL": proxy.url}
        total_held = proxy.hold(put_of(store.total_key("newcomer")))
        consumer = start_consumer(env=through_proxy, log_name="consumer-late.log")
        wait_for_log(consumer, "Took the lease on")
        first = Submission(id=str(uuid.uuid4()), player_id="newcomer", player_name="Newcomer", task="big-products",
                           submitted_at=datetime.now(UTC), elapsed_ms=60_000, verified_by="trusted:chaos")
        store.score_put(submission=first)
        assert total_held.reached.wait(60), log_tail(consumer)()

        applied = rules_change(consumer_env, *CHANGE)  # to moto directly, while the batch is held
        assert applied.returncode == 0, applied.stderr[-3000:]
        change = json.loads(applied.stdout)
        assert change["adjustments_written"] == 0, change  # the newcomer had no TOTAL for its scan
        adjustment = adjustment_id(rules_change=change["rules_change"], player_id="newcomer")
        adjustment_held = proxy.hold(put_of(store.score_key(adjustment)))
        total_held.release()
        assert adjustment_held.reached.wait(60), log_tail(consumer)()
        consumer.send_signal(signal.SIGKILL)
        assert consumer.wait(timeout=10) == -signal.SIGKILL
        adjustment_held.release(forward=False)  # it died sending it
        assert totals_now(["newcomer"]) == {"newcomer": 50}
        assert store.score_get(submission_id=first.id).status is Status.PENDING
        assert store.score_get(submission_id=adjustment) is None

        restarted = start_consumer(env=through_proxy, log_name="consumer-restarted.log")
        wait_until(lambda: (a := store.score_get(submission_id=adjustment)) and a.status is Status.APPLIED,
                   timeout=60, message=log_tail(restarted))
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0, log_tail(restarted)()
    finally:
        proxy.close()
    scored = store.score_get(submission_id=first.id)
    assert (scored.status, scored.points, scored.rules_version) == (Status.APPLIED, 50, 0)
    assert store.score_get(submission_id=adjustment).points == 10
    assert totals_now(["newcomer"]) == {"newcomer": 60} == ledger()[0]
    assert catalog.changes()[-1]["adjustments_written"] == 1
