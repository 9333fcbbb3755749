"""Versioned rules: a rules change's preview, and its exactly-once apply
through the stream, against a real moto server and Redis, with the seeded
catalog (Easy 10, Medium 25, Hard 50)."""

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F

from scoring import catalog, ranking, rules, store
from scoring.domain import PlayerTotal, Status, Submission, adjustment_id, count_key, rescore_delta
from scoring.drift import drifts_find
from scoring.live import LiveUpdater
from scoring.models import Difficulty, RulesChange, Task
from scoring.store.base import scan_client
from tests.records import stream_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
TASKS = ["warm-up-sums", "mixed-operations", "big-products", "mental-marathon"]  # Easy, Medium, Hard, Hard


def play(player: int, n: int, task: str) -> Submission:
    return Submission(id=f"p{player}-{n}", player_id=f"p{player}", player_name=f"Player {player}", task=task,
                      submitted_at=T0 + timedelta(seconds=player * 100 + n), verified_by="trusted:test")


def process(subs: list[Submission], *, live: LiveUpdater | None = None):
    """Put these submissions (or adjustments) on the table, as the API or a
    rules change does, and run their stream records through processing with
    the catalog as the consumer reads it."""
    for s in subs:
        if not store.scores_get_many(submission_ids=[s.id]):
            store.score_put(submission=s)
    return replay(subs, live=live)


def replay(subs: list[Submission], *, live: LiveUpdater | None = None):
    points_for, version = catalog.points_versioned()
    records = [stream_record(s, seq=str(i)) for i, s in enumerate(subs)]
    return rules_process(records, points_for, version, live)


def rules_process(records, points_for, version, live):
    from scoring import processing

    return processing.records_process(records, points_for=points_for, rules_version=version,
                                      on_commit=live.after_batch if live else None,
                                      adjustments_missed=rules.adjustments_missed_write)


def newcomer_plays(task: str) -> Submission:
    """The first game of a player with no TOTAL yet ("newcomer"), played
    now and on the table, its stream record not processed yet."""
    first = Submission(id="first", player_id="newcomer", player_name="Newcomer", task=task,
                       submitted_at=datetime.now(UTC), verified_by="trusted:test")
    store.score_put(submission=first)
    return first


def hard_raised_as_a_newcomer_plays(league, task: str):
    """The league counted; the catalog read, as a batch starting now reads
    it; then Hard raised to 60 retroactively (its scan passing a newcomer
    with no TOTAL yet); then the newcomer's first game of ``task`` on the
    table, not processed yet. Returns (the catalog as read, the change,
    the game)."""
    process(league)
    read = catalog.points_versioned()
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    return read, change, newcomer_plays(task)


def adjustments_of(change: RulesChange, players: list[str]) -> list[Submission]:
    found = store.scores_get_many(submission_ids=[adjustment_id(rules_change=change.pk, player_id=p)
                                                  for p in players])
    return list(found.values())


def totals(players) -> dict[str, PlayerTotal]:
    return store.totals_get_many(player_ids=list(players))


@pytest.fixture
def league():
    """Twelve players with a seeded random mix of tasks, all applied."""
    rng = random.Random(14)
    subs = [play(p, n, rng.choice(TASKS)) for p in range(12) for n in range(rng.randrange(1, 9))]
    return subs


# --- pure rules ---------------------------------------------------------------


def test_rescore_moves_counts_and_windows_and_composes_in_any_order():
    total = PlayerTotal("p", "P", total=110, counts={count_key("hard", 50): 2, count_key("easy", 10): 1,
                                                     count_key("hard", 50, "day:2026-12-03"): 1},
                        windows={"day:2026-12-03": 50})
    first = rescore_delta(total, rules_change=1, rescore={"hard": 60})
    assert (first.delta, first.submissions) == (20, 2)
    assert first.counts == {count_key("hard", 60, version=1): 2, count_key("easy", 10): 1,
                            count_key("hard", 60, "day:2026-12-03", version=1): 1}
    assert first.windows == {"day:2026-12-03": 60}
    # Change 2 (hard -> 70) arriving before change 1 re-scores from 50, and
    # change 1 then finds the task re-scored by a later change: nothing.
    second_first = rescore_delta(total, rules_change=2, rescore={"hard": 70})
    assert second_first.delta == 40
    after_both = rescore_delta(PlayerTotal("p", "P", counts=second_first.counts, rescored=second_first.rescored),
                               rules_change=1, rescore={"hard": 60})
    assert (after_both.delta, after_both.submissions) == (0, 0)
    # In order: 50 -> 60 -> 70 adds the same 40.
    in_order = rescore_delta(PlayerTotal("p", "P", counts=first.counts, rescored=first.rescored),
                             rules_change=2, rescore={"hard": 70})
    assert first.delta + in_order.delta == 40


# --- through the stream ---------------------------------------------------------


def test_a_retroactive_preview_predicts_the_apply_exactly(league, redis_url):
    live = LiveUpdater()
    process(league, live=live)
    players = sorted({s.player_id for s in league})
    before = totals(players)
    plan = rules.plan_points(difficulty_name="Hard", points=60)
    preview = rules.rules_preview(plan=plan)
    hard = [s for s in league if s.task in ("big-products", "mental-marathon")]
    assert preview.submissions_affected == len(hard)
    assert preview.players_affected == len({s.player_id for s in hard})
    assert preview.points_delta == 10 * len(hard)
    assert preview.moves, "the seeded league has rank changes to show"

    change = rules.rules_change_apply(plan=plan, mode=RulesChange.Mode.RETROACTIVE, reason="Hard was underpriced",
                                      actor="test")
    assert change.status == RulesChange.Status.APPLIED
    assert change.adjustments_written == preview.players_affected
    assert Difficulty.objects.get(name="Hard").points == 60
    adjustments = adjustments_of(change, players)
    assert len(adjustments) == preview.players_affected
    result = process(adjustments, live=live)
    assert len(result.applied) == len(adjustments)

    after = totals(players)
    board = {e.player_id: e for e in ranking.top("all", 100)[0]}
    for player in players:
        predicted = preview.changed.get(player)
        delta = after[player].total - before[player].total
        assert delta == (predicted.total_after - predicted.total_before if predicted else 0), player
        assert board[player].total == after[player].total
        if predicted is not None:
            assert board[player].rank == predicted.rank_after, player
    for row in preview.top_after:
        assert board[row.player_id].rank == row.rank_after
    # Every total is its ledger, adjustments included; the adjustment says
    # which change, and its outcome the version.
    assert drifts_find() == []
    stored = store.scores_get_many(submission_ids=[a.id for a in adjustments])
    for a in stored.values():
        assert a.status is Status.APPLIED and a.rules_version == change.pk and a.summary == "Hard re-scored 50 → 60"
        assert a.points == preview.changed[a.player_id].total_after - preview.changed[a.player_id].total_before


def test_applying_the_same_change_again_adjusts_once(league):
    process(league)
    players = sorted({s.player_id for s in league})
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    adjustments = adjustments_of(change, players)
    process(adjustments)
    once = {p: t.total for p, t in totals(players).items()}
    # Again: nothing written (the ids are the change's and the players'),
    # and a replay of the adjustments' records adds nothing either.
    assert rules.rules_change_adjust(change=change) == 0
    assert len(adjustments_of(change, players)) == len(adjustments)
    replay(adjustments)
    assert {p: t.total for p, t in totals(players).items()} == once
    assert drifts_find() == []


def test_the_adjustments_scan_reads_totals_as_last_written(league):
    # moto's reads are always consistent, so what is checked is the request:
    # DynamoDB's Scan is eventually consistent unless asked, and a TOTAL a
    # batch wrote just before the scan reached it would be read as it was.
    process(league)
    scans = []

    def seen(params, **_):
        scans.append(params.get("ConsistentRead"))

    client = scan_client()
    client.meta.events.register("provide-client-params.dynamodb.Scan", seen)
    try:
        rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                 mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.Scan", seen)
    # The preview's pages first (advisory), then every page of the
    # adjustments' own scan.
    assert True in scans
    assert set(scans[scans.index(True):]) == {True}


def test_two_changes_in_a_row_compose_even_when_their_adjustments_arrive_out_of_order(league):
    process(league)
    players = sorted({s.player_id for s in league})
    expected = {p: 0 for p in players}
    for s in league:
        expected[s.player_id] += {"warm-up-sums": 10, "mixed-operations": 25}.get(s.task, 70)
    first = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                     mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    second = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=70),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    assert second.pk > first.pk
    # The second change's adjustments are written from TOTALs that have not
    # folded the first's: the stream folds the second's first.
    process(adjustments_of(second, players))
    process(adjustments_of(first, players))
    assert {p: t.total for p, t in totals(players).items()} == {p: v for p, v in expected.items() if v}
    assert drifts_find() == []


def test_a_forward_change_leaves_the_past_alone_and_scores_later_submissions_anew(league):
    process(league)
    players = sorted({s.player_id for s in league})
    before = {p: t.total for p, t in totals(players).items()}
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.FORWARD, reason="from next week", actor="test")
    assert change.status == RulesChange.Status.APPLIED and change.adjustments_written == 0
    assert adjustments_of(change, players) == []
    assert {p: t.total for p, t in totals(players).items()} == before
    old = store.scores_get_many(submission_ids=[s.id for s in league])
    assert {s.rules_version for s in old.values()} == {0}
    later = play(0, 99, "big-products")
    process([later])
    scored = store.score_get(submission_id=later.id)
    assert (scored.points, scored.rules_version) == (60, change.pk)
    assert totals(["p0"])["p0"].total == before["p0"] + 60


def test_a_submission_decided_under_old_rules_but_counted_after_the_change_is_re_scored(league):
    """A batch that read the catalog before a retroactive change commits, and
    writes its TOTAL after that player's adjustment was folded."""
    process(league)
    points_for, version = catalog.points_versioned()  # read before the change
    hard_player = next(s.player_id for s in league if s.task == "big-products")
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    process(adjustments_of(change, [hard_player]))
    late = Submission(id="late", player_id=hard_player, player_name="late", task="big-products",
                      submitted_at=datetime.now(UTC), verified_by="trusted:test")
    store.score_put(submission=late)
    rules_process([stream_record(late)], points_for, version, None)
    scored = store.score_get(submission_id="late")
    assert (scored.points, scored.rules_version) == (60, change.pk)
    assert drifts_find() == []


def test_a_first_submission_of_a_task_counted_after_the_scan_passed_its_player_is_adjusted(league):
    """A batch reads the catalog, a retroactive change commits and its scan
    passes a player with no count of the task, then the batch writes that
    player's first one at the old points: the batch writes the adjustment
    the scan could not."""
    (points_for, version), change, first = hard_raised_as_a_newcomer_plays(league, "big-products")
    written = change.adjustments_written
    rules_process([stream_record(first)], points_for, version, None)
    scored = store.score_get(submission_id="first")
    assert (scored.points, scored.rules_version) == (50, version)  # decided under the old rules
    [adjustment] = adjustments_of(change, ["newcomer"])
    change.refresh_from_db()
    assert change.adjustments_written == written + 1
    process([adjustment])
    assert totals(["newcomer"])["newcomer"].total == 60
    # Nothing left owed: a resume writes nothing.
    assert rules.rules_change_adjust(change=change) == 0
    assert totals(["newcomer"])["newcomer"].total == 60
    assert drifts_find() == []


def test_a_late_count_whose_adjustment_the_scan_wrote_is_re_scored_by_it_and_not_written_twice(league):
    """The player had a Hard game when the scan passed, so the scan wrote
    the adjustment; the batch's write of it is refused and not counted, and
    folding it re-scores the late game with the others."""
    process(league)
    player = next(s.player_id for s in league if s.task == "big-products")
    hard = sum(1 for s in league if s.player_id == player and s.task in ("big-products", "mental-marathon"))
    before = totals([player])[player].total
    points_for, version = catalog.points_versioned()
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    [adjustment] = adjustments_of(change, [player])
    late = Submission(id="late", player_id=player, player_name="late", task="big-products",
                      submitted_at=datetime.now(UTC), verified_by="trusted:test")
    store.score_put(submission=late)
    rules_process([stream_record(late)], points_for, version, None)
    assert store.score_get(submission_id="late").points == 50
    assert adjustments_of(change, [player]) == [adjustment]
    written = change.adjustments_written
    change.refresh_from_db()
    assert change.adjustments_written == written
    process([adjustment])
    assert totals([player])[player].total == before + 10 * hard + 60
    assert drifts_find() == []


def test_a_late_count_owed_by_two_changes_gets_both_adjustments(league):
    process(league)
    points_for, version = catalog.points_versioned()
    changes = [rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=points),
                                        mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
               for points in (60, 70)]
    first = newcomer_plays("big-products")
    rules_process([stream_record(first)], points_for, version, None)
    adjustments = [adjustment for change in changes for adjustment in adjustments_of(change, ["newcomer"])]
    assert [a.rules_change for a in adjustments] == [c.pk for c in changes]
    process(adjustments[::-1])  # the later change's first: the earlier one then adds nothing
    assert totals(["newcomer"])["newcomer"].total == 70
    assert drifts_find() == []


def replayed_by(consumer: str, record: dict) -> None:
    """Process ``record`` as the Lambda handler or consume_scores' worker
    does, with the catalog as it is now."""
    from scoring import lambda_handler
    from tests.fakes.clock import Clock
    from tests.fakes.streams import FakeDynamoDBStreams
    from tests.scoring.test_worker import Live, worker

    if consumer == "lambda":
        assert lambda_handler.handler({"Records": [record]}, None) == {"batchItemFailures": []}
    else:
        worker(FakeDynamoDBStreams(), Clock(), Live()).process([record])


@pytest.mark.parametrize("consumer", ["lambda", "worker"])
def test_a_batch_that_crashed_before_writing_the_missed_adjustment_writes_it_when_replayed(league, consumer):
    """The crash falls after the TOTAL write and before the adjustment: the
    redelivery (which reads the new catalog) finds the decision standing in
    the TOTAL, with its old rules version, and writes it."""
    from scoring import processing

    (points_for, version), change, first = hard_raised_as_a_newcomer_plays(league, "mental-marathon")

    def crash(totals, applied):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        processing.records_process([stream_record(first)], points_for=points_for, rules_version=version,
                                   adjustments_missed=crash)
    assert totals(["newcomer"])["newcomer"].total == 50
    assert store.score_get(submission_id="first").status is Status.PENDING
    assert adjustments_of(change, ["newcomer"]) == []
    replayed_by(consumer, stream_record(first))
    scored = store.score_get(submission_id="first")
    assert (scored.status, scored.points, scored.rules_version) == (Status.APPLIED, 50, version)
    [adjustment] = adjustments_of(change, ["newcomer"])
    replayed_by(consumer, stream_record(adjustment))
    assert totals(["newcomer"])["newcomer"].total == 60
    assert drifts_find() == []


def test_a_count_dead_lettered_after_its_total_write_still_gets_its_missed_adjustment(league, monkeypatch):
    """The batch wrote the newcomer's TOTAL, then DynamoDB went away before
    the missed-adjustment step, for longer than STREAM_MAX_RECORD_AGE:
    dead-lettering settles the record with the count that stands, and runs
    the step first, as the batch would have. The database being down at
    that step stops the settling, not the dead letter, which is sent once."""
    from django.db import OperationalError

    from scoring.stream import worker as worker_module
    from tests.fakes.clock import Clock
    from tests.fakes.streams import FakeDynamoDBStreams
    from tests.scoring.test_worker import Live, worker

    read, change, first = hard_raised_as_a_newcomer_plays(league, "mental-marathon")
    monkeypatch.setattr(worker_module, "points_versioned", lambda: read)  # the batch read the rules before it
    real, calls = worker_module.adjustments_missed_write, []
    outages = [store.StoreUnavailable("DynamoDB went away"), OperationalError("the database went away")]

    def step(totals, applied):
        calls.append(sorted(totals))
        if len(calls) <= len(outages):
            raise outages[len(calls) - 1]
        return real(totals, applied)

    monkeypatch.setattr(worker_module, "adjustments_missed_write", step)
    dead_letters = []
    monkeypatch.setattr(store, "dlq_put", lambda **kw: dead_letters.append(kw["record"]))
    consumer = worker(FakeDynamoDBStreams(), Clock(), Live(), max_record_age=3600)
    clock = Clock()
    consumer.runner.clock = clock
    record = stream_record(first, created=datetime.fromtimestamp(clock.now, UTC))
    with pytest.raises(store.StoreUnavailable):
        consumer.runner.run([record])  # an outage: the worker waits it out, then runs the batch again
    assert totals(["newcomer"])["newcomer"].total == 50
    assert adjustments_of(change, ["newcomer"]) == []
    clock.now += 3601  # the outage outlasted the record's age
    with pytest.raises(catalog.CatalogUnavailable):
        consumer.runner.run([record])
    assert store.score_get(submission_id="first").status is Status.PENDING
    consumer.runner.run([record])
    assert consumer.runner.dead_lettered == 1 and dead_letters == [record]
    assert calls == [["newcomer"]] * 3
    scored = store.score_get(submission_id="first")
    assert (scored.status, scored.points) == (Status.APPLIED, 50)
    [adjustment] = adjustments_of(change, ["newcomer"])
    process([adjustment])
    assert totals(["newcomer"])["newcomer"].total == 60
    assert drifts_find() == []


def test_a_dead_lettered_count_whose_adjustment_step_fails_is_settled_and_resume_writes_it(league, caplog):
    """The step fails with a bug, in the batch and again in dead-lettering:
    the record is settled with its count all the same, the failure is
    logged with its repair, and ``rules_change --resume`` writes the
    adjustment."""
    from scoring import processing
    from scoring.stream.policy import BatchRunner, FailurePolicy

    (points_for, version), change, first = hard_raised_as_a_newcomer_plays(league, "mental-marathon")

    def step(totals, applied):
        raise RuntimeError("a bug")

    def batch(records):
        processing.records_process(records, points_for=points_for, rules_version=version, adjustments_missed=step)

    runner = BatchRunner(batch, FailurePolicy(max_retry_attempts=0), adjustments_missed=step)
    runner.run([stream_record(first)])
    assert runner.dead_lettered == 1
    assert "rules_change --resume" in caplog.text
    scored = store.score_get(submission_id="first")
    assert (scored.status, scored.points) == (Status.APPLIED, 50)
    assert adjustments_of(change, ["newcomer"]) == []
    assert rules.rules_change_adjust(change=change) == 1
    process(adjustments_of(change, ["newcomer"]))
    assert totals(["newcomer"])["newcomer"].total == 60
    assert drifts_find() == []


def test_only_late_decisions_of_re_scored_tasks_owe_an_adjustment():
    from scoring.domain import Decision

    def applied(player, task, version, points):
        submission = Submission(id=f"{player}-{task}", player_id=player, player_name=player, task=task,
                                submitted_at=T0)
        return Decision(submission, Status.APPLIED, points=points, rules_version=version)

    def total(player, *counts):
        return PlayerTotal(player_id=player, player_name=player,
                           counts={count_key(t, p, None, v): 1 for t, p, v in counts})

    decisions = [applied("old", "big-products", 3, 50), applied("new", "big-products", 5, 60),
                 applied("easy", "warm-up-sums", 3, 10), applied("same", "big-products", 3, 60),
                 applied("scanned", "big-products", 4, 60)]
    totals = {"old": total("old", ("big-products", 50, 3)), "new": total("new", ("big-products", 60, 5)),
              "easy": total("easy", ("warm-up-sums", 10, 3)), "same": total("same", ("big-products", 60, 3)),
              "scanned": total("scanned", ("big-products", 50, 3), ("big-products", 60, 4))}
    from scoring.domain import rescore_missed

    # Change 4 re-scores Hard to 60: only "old" still counts Hard at 50 from
    # before it because of this batch ("same" scored 60 already, "new" after
    # it, "easy" no Hard; "scanned" counted this batch's game under change 4
    # itself, and its older game was there for the change's scan to see).
    assert rescore_missed(totals, decisions, rules_change=4, rescore={"big-products": 60}) == ["old"]
    assert rescore_missed(totals, decisions, rules_change=3, rescore={"big-products": 60}) == []


def test_moving_a_task_re_scores_only_that_task(league):
    process(league)
    players = sorted({s.player_id for s in league})
    before = {p: t.total for p, t in totals(players).items()}
    change = rules.rules_change_apply(plan=rules.plan_move(task_slug="warm-up-sums", difficulty_name="Hard"),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="harder than it looks", actor="t")
    assert Task.objects.get(slug="warm-up-sums").difficulty.name == "Hard"
    process(adjustments_of(change, players))
    for player, total in totals(players).items():
        warmups = sum(1 for s in league if s.player_id == player and s.task == "warm-up-sums")
        assert total.total == before[player] + 40 * warmups


def test_a_plain_save_of_new_points_records_a_forward_change():
    hard = Difficulty.objects.get(name="Hard")
    hard.points = 55
    hard.save()
    change = RulesChange.objects.latest()
    assert (change.mode, change.before, change.after) == ("forward", {"points": 50}, {"points": 55})
    assert change.rescore == {"big-products": 55, "mental-marathon": 55}
    assert catalog.points_versioned()[1] == change.pk
    hard.save()  # no change of points: no rules change
    assert RulesChange.objects.count() == 1


def test_a_bulk_update_of_points_records_a_forward_change_per_row():
    updated = Difficulty.objects.filter(name__in=["Easy", "Hard"]).update(points=F("points") + 5)
    assert updated == 2
    changes = {c.summary.split()[0]: c for c in RulesChange.objects.all()}
    assert {name: (c.mode, c.before, c.after) for name, c in changes.items()} == {
        "Easy": ("forward", {"points": 10}, {"points": 15}), "Hard": ("forward", {"points": 50}, {"points": 55})}
    assert catalog.points_versioned()[1] == RulesChange.objects.latest().pk
    assert Difficulty.objects.get(name="Hard").points == 55
    # Other fields stay one UPDATE, with no rules change.
    Difficulty.objects.update(min_seconds=7.0)
    assert RulesChange.objects.count() == 2


def test_moving_tasks_in_bulk_records_a_change_per_task():
    hard = Difficulty.objects.get(name="Hard")
    Task.objects.filter(slug="warm-up-sums").values("slug").update(difficulty=hard)
    times_tables = Task.objects.get(slug="times-tables")
    times_tables.difficulty = hard
    Task.objects.bulk_update([times_tables], ["difficulty"])
    hard.tasks.add(Task.objects.get(slug="quick-subtraction"))  # a related manager updates in bulk too
    rescored = [c.rescore for c in RulesChange.objects.order_by("pk")]
    assert rescored == [{"warm-up-sums": 50}, {"times-tables": 50}, {"quick-subtraction": 50}]
    assert RulesChange.objects.latest().before == {"difficulty": "Easy", "points": 10}
    assert {"warm-up-sums", "times-tables", "quick-subtraction"} <= set(hard.tasks.values_list("slug", flat=True))


# --- the command ------------------------------------------------------------------


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("rules_change", *args, "--no-progress", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_preview_json_has_the_documented_keys_and_writes_nothing(league, item_count, db_writes):
    process(league)
    items = item_count()
    with db_writes() as writes:
        shown = json.loads(run("--difficulty", "Hard", "--points", "60", "--retroactive", "--preview", "--json"))
    assert writes.writes == []
    assert item_count() == items
    assert {"players_affected", "submissions_affected", "points_delta", "top_before", "top_after",
            "moves"} <= set(shown)
    assert shown["points_delta"] == 10 * sum(1 for s in league if s.task in ("big-products", "mental-marathon"))
    assert Difficulty.objects.get(name="Hard").points == 50


def test_apply_json_prints_the_change_id(league):
    process(league)
    shown = json.loads(run("--task", "division-drill", "--move-to", "Easy", "--forward", "--reason", "r", "--json"))
    change = RulesChange.objects.get(pk=shown["rules_change"])
    assert (change.mode, change.reason, change.task.slug) == ("forward", "r", "division-drill")


@pytest.mark.parametrize(("args", "says"), [
    (["--difficulty", "Impossible", "--points", "5", "--forward"], "No difficulty named 'Impossible'"),
    (["--task", "no-such-task", "--move-to", "Hard", "--forward"], "No task with slug 'no-such-task'"),
    (["--task", "warm-up-sums", "--move-to", "Legendary", "--forward"], "No difficulty named 'Legendary'"),
    (["--difficulty", "Hard", "--points", "0", "--forward"], "positive whole number"),
    (["--difficulty", "Hard", "--points", "-5", "--retroactive"], "positive whole number"),
    (["--difficulty", "Hard", "--points", "99999999999999999999", "--forward"], "positive whole number up to"),
    (["--resume", "1", "--preview"], "--resume takes no --preview"),
    (["--resume", "999"], "No rules change #999"),
    (["--difficulty", "Hard", "--points", "60"], "Say --retroactive or --forward"),
    (["--difficulty", "Hard", "--points", "50", "--forward"], "nothing to change"),
])
def test_bad_input_is_a_clear_error_with_status_2(args, says):
    with pytest.raises(CommandError, match=says) as raised:
        run(*args)
    assert raised.value.returncode == 2
    assert RulesChange.objects.count() == 0


def test_a_late_adjustment_leaves_submissions_scored_under_a_later_forward_change(league):
    """Retroactive Hard 50 -> 60, then forward Hard -> 70 and a Hard game
    at 70, all before the first change's adjustment is folded: it re-scores
    the old games to 60 and leaves the 70 alone."""
    process(league)
    player = next(s.player_id for s in league if s.task == "big-products")
    old_hard = sum(1 for s in league if s.player_id == player and s.task in ("big-products", "mental-marathon"))
    before = totals([player])[player].total
    retro = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                     mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=70),
                             mode=RulesChange.Mode.FORWARD, reason="", actor="test")
    later = Submission(id="later", player_id=player, player_name="x", task="big-products",
                       submitted_at=datetime.now(UTC), verified_by="trusted:test")
    process([later])
    assert store.score_get(submission_id="later").points == 70
    process(adjustments_of(retro, [player]))
    assert totals([player])[player].total == before + 10 * old_hard + 70
    # And writing the retroactive change's adjustments again finds nothing.
    assert rules.rules_change_adjust(change=retro) == 0
    assert drifts_find() == []


def test_a_dead_lettered_adjustment_is_written_again_by_a_resume(league):
    """An adjustment the stream dead-lettered (rejected: e.g. its record
    grew too old) re-scored nothing; writing the change's adjustments again
    retries it, and the retry counts."""
    process(league)
    player = next(s.player_id for s in league if s.task == "big-products")
    before = totals([player])[player].total
    change = rules.rules_change_apply(plan=rules.plan_points(difficulty_name="Hard", points=60),
                                      mode=RulesChange.Mode.RETROACTIVE, reason="", actor="test")
    [adjustment] = adjustments_of(change, [player])
    store.score_settle_failed(record=stream_record(adjustment), error="record too old")
    assert store.score_get(submission_id=adjustment.id).status is Status.REJECTED
    assert totals([player])[player].total == before
    assert rules.rules_change_adjust(change=change) >= 1
    from scoring.domain import retry_id

    retry = store.score_get(submission_id=retry_id(adjustment.id))
    assert retry.retry_of == adjustment.id and retry.rules_change == change.pk
    process([retry])
    hard = sum(1 for s in league if s.player_id == player and s.task in ("big-products", "mental-marathon"))
    assert totals([player])[player].total == before + 10 * hard
    assert rules.rules_change_adjust(change=change) == 0
    assert drifts_find() == []
