"""Quarantine: the hold rules, and staff review through the stream, against a
real moto server. Held submissions count nowhere; a review counts exactly
once, however often it is clicked or replayed."""

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scoring import processing, services, store
from scoring.domain import HoldRules, PlayerTotal, Review, Status, Submission, hold_decide, retry_id, review_id
from scoring.drift import drifts_find
from tests.records import stream_record

pytestmark = pytest.mark.usefixtures("table")

POINTS = {"easy": 10, "hard": 50}
RULES = HoldRules(burst_count=3, burst_window_ms=60_000, review_ms={"easy": 4_000, "hard": 20_000})
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def points_for(task):
    return POINTS.get(task)


def submission(n: int, *, player="p1", task="easy", at: float | None = None, elapsed_ms: int | None = 10_000):
    """The n-th completion, ``at`` seconds after T0 (default: n)."""
    return Submission(id=f"{player}-s{n}", player_id=player, player_name=player.upper(), task=task,
                      submitted_at=T0 + timedelta(seconds=n if at is None else at), elapsed_ms=elapsed_ms,
                      verified_by="challenge", challenge_id=uuid.uuid4().hex)


def put(*subs: Submission) -> list[dict]:
    for s in subs:
        store.score_put(submission=s)
    return [stream_record(s, seq=str(i)) for i, s in enumerate(subs)]


def process(records, rules=RULES):
    return processing.records_process(records, points_for=points_for, hold_rules=rules)


def total_of(player="p1") -> PlayerTotal | None:
    return store.totals_get_many(player_ids=[player]).get(player)


def status_of(sub_id: str) -> Status:
    return store.score_get(submission_id=sub_id).status


def review(sub_id: str, decision: Review, note="") -> dict | None:
    """Staff decide; returns the review's stream record, or None if refused."""
    if not services.submission_review(submission_id=sub_id, review=decision, reviewer="staff", note=note):
        return None
    return stream_record(store.score_get(submission_id=review_id(sub_id)), seq="r")


def applied_points(player="p1") -> int:
    """What the player's applied submissions are worth: the SCORE items that
    are theirs (a review is not), as the API lists them."""
    return sum(s.points for s in store.scores_scan()
               if s.player_id == player and s.review_of is None and s.status is Status.APPLIED)


# --- the rule, pure --------------------------------------------------------------


def test_the_burst_rule_holds_the_completion_past_the_limit_within_the_window():
    total = PlayerTotal(player_id="p1", player_name="P1", recent=[int((T0 + timedelta(seconds=s)).timestamp() * 1000)
                                                                  for s in (0, 10, 20)])
    reason = hold_decide(submission(30), total, RULES)
    assert reason.startswith("burst: 4 completions within 60 s")
    # Out of the window, the oldest no longer counts.
    assert hold_decide(submission(61), total, RULES) is None


def test_the_speed_rule_holds_a_verified_completion_under_the_review_time():
    total = PlayerTotal(player_id="p1", player_name="P1")
    assert hold_decide(submission(1, elapsed_ms=3_999), total, RULES).startswith("fast: answered in 4.0 s")
    assert hold_decide(submission(1, elapsed_ms=4_000), total, RULES) is None
    assert hold_decide(submission(1, elapsed_ms=None), total, RULES) is None  # a trusted client's: no timing


def test_no_rules_and_reviews_are_never_held():
    total = PlayerTotal(player_id="p1", player_name="P1", recent=[0] * 3)
    assert hold_decide(submission(1, elapsed_ms=1), total, None) is None
    reviewed = Submission(id="r", player_id="p1", player_name="P1", task="easy", submitted_at=T0, review_of="x",
                          review=Review.APPROVE)
    assert hold_decide(reviewed, total, RULES) is None


def test_the_decision_is_the_same_for_the_same_total():
    total = PlayerTotal(player_id="p1", player_name="P1", recent=[int(T0.timestamp() * 1000)] * 3)
    assert {hold_decide(submission(5), total, RULES) for _ in range(3)} == {hold_decide(submission(5), total, RULES)}


# --- through the processor -------------------------------------------------------


def test_a_scripted_burst_is_held_and_counts_nowhere():
    burst = [submission(n) for n in range(6)]  # six in six seconds; three are allowed a minute
    result = process(put(*burst))
    assert [d.submission.id for d in result.applied] == ["p1-s0", "p1-s1", "p1-s2"]
    assert [d.submission.id for d in result.held] == ["p1-s3", "p1-s4", "p1-s5"]
    assert total_of().total == 30
    held = store.score_get(submission_id="p1-s3")
    assert held.status is Status.HELD and held.points is None
    assert held.hold_reason.startswith("burst: 4 completions within 60 s")
    assert [s.id for s in store.held_list(limit=10)] == ["p1-s3", "p1-s4", "p1-s5"]
    assert [e.type for e in result.events].count("ScoreHeld") == 3


def test_a_burst_split_across_batches_is_held_the_same_way():
    burst = [submission(n) for n in range(6)]
    records = put(*burst)
    for record in records:
        process([record])
    assert [status_of(s.id) for s in burst] == [Status.APPLIED] * 3 + [Status.HELD] * 3
    assert total_of().total == 30


def test_a_replayed_burst_decides_the_same_and_counts_once(monkeypatch):
    records = put(*[submission(n) for n in range(5)])
    real = store.scores_put_outcomes
    monkeypatch.setattr(store, "scores_put_outcomes", lambda **kw: (_ for _ in ()).throw(store.StoreUnavailable("x")))
    with pytest.raises(store.StoreUnavailable):
        process(records)  # the TOTAL committed; no outcome was written
    monkeypatch.setattr(store, "scores_put_outcomes", real)
    result = process(records)
    assert (len(result.applied), len(result.held)) == (3, 2)
    assert total_of().total == 30
    assert set(total_of().held) == {"p1-s3", "p1-s4"}
    assert [status_of(f"p1-s{n}") for n in range(5)] == [Status.APPLIED] * 3 + [Status.HELD] * 2


def test_hold_rules_off_hold_nothing():
    result = process(put(*[submission(n, elapsed_ms=1) for n in range(6)]), rules=None)
    assert len(result.applied) == 6 and not result.held
    assert total_of().total == 60


# A batch writes its outcomes in steps (OUTCOMES_PER_STEP): one a step puts
# each review and the held submission it decides in steps of their own.
@pytest.mark.parametrize("outcomes_per_step", [1, processing.OUTCOMES_PER_STEP])
def test_staff_approve_some_and_reject_others_and_totals_equal_the_applied_points(monkeypatch, outcomes_per_step):
    monkeypatch.setattr(processing, "OUTCOMES_PER_STEP", outcomes_per_step)
    process(put(*[submission(n) for n in range(7)]))  # 3 applied, 4 held
    held = [s.id for s in store.held_list(limit=10)]
    assert len(held) == 4
    records = [review(held[0], Review.APPROVE), review(held[1], Review.APPROVE, note="checked the replay"),
               review(held[2], Review.REJECT, note="scripted"), review(held[3], Review.REJECT)]
    result = process(records)
    assert len(result.applied) == 2 and len(result.rejected) == 2 and not result.held
    assert [status_of(i) for i in held] == [Status.APPLIED, Status.APPLIED, Status.REJECTED, Status.REJECTED]
    approved = store.score_get(submission_id=held[1])
    assert (approved.points, approved.reviewed_by, approved.review_note) == (10, "staff", "checked the replay")
    assert approved.reviewed_at is not None and approved.review is Review.APPROVE
    assert store.score_get(submission_id=held[2]).error == "Rejected in review: scripted"
    assert total_of().total == applied_points() == 50
    assert drifts_find() == []
    assert store.held_list(limit=10) == []
    # The events name the submission the player knows, not the review item.
    assert sorted(e.submission_id for e in result.events) == sorted(held)


def test_a_double_approval_counts_once():
    process(put(*[submission(n) for n in range(4)]))
    (held,) = [s.id for s in store.held_list(limit=10)]
    first = review(held, Review.APPROVE)
    assert review(held, Review.APPROVE) is None  # the double click: refused, nothing written
    assert review(held, Review.REJECT) is None  # another staff member, the other way: refused too
    process([first])
    process([first])  # the stream delivers it again
    assert total_of().total == applied_points() == 40
    assert review(held, Review.APPROVE) is None  # no longer held


def test_a_review_whose_batch_crashed_after_the_commit_counts_once(monkeypatch):
    process(put(*[submission(n) for n in range(4)]))
    (held,) = [s.id for s in store.held_list(limit=10)]
    record = review(held, Review.APPROVE)
    real = store.items_put_many
    calls = []

    def crash_after_the_held_one_is_written(items, **kwargs):
        calls.append(items)
        if len(calls) == 2:  # the held submission's outcome is written; the review's is not
            raise store.StoreUnavailable("crash")
        return real(items, **kwargs)

    monkeypatch.setattr("scoring.store.scores.items_put_many", crash_after_the_held_one_is_written)
    with pytest.raises(store.StoreUnavailable):
        process([record])
    assert status_of(held) is Status.APPLIED and status_of(review_id(held)) is Status.PENDING
    assert drifts_find() == []  # rebuild_totals counts the approval once, mid-crash too
    monkeypatch.setattr("scoring.store.scores.items_put_many", real)
    process([record])
    assert status_of(review_id(held)) is Status.APPLIED
    assert total_of().total == applied_points() == 40
    assert drifts_find() == []


def test_a_late_duplicate_of_a_hold_does_not_undo_its_review():
    """A worker paused past its lease writes its batch's outcomes late: the
    held one, after staff approved it and the approval applied. It stays
    applied, and stays off the review queue."""
    process(put(*[submission(n) for n in range(4)]))
    (held,) = store.held_list(limit=10)
    process([review(held.id, Review.APPROVE)])
    late = replace(held, processed_at=held.processed_at)
    store.scores_put_outcomes(submissions=[late])
    after = store.score_get(submission_id=held.id)
    assert (after.status, after.points, after.reviewed_by) == (Status.APPLIED, 10, "staff")
    assert store.held_list(limit=10) == []
    # Nor is its pointer back: every read of the queue would pass over it, for ever.
    from scoring.store.base import query_all
    from scoring.store.keys import HELD_PK

    assert list(query_all(HELD_PK, "")) == []
    assert total_of().total == applied_points() == 40


def test_a_held_outcome_lost_in_a_crash_is_written_and_listed_by_the_replay(monkeypatch):
    records = put(*[submission(n) for n in range(4)])
    real = store.scores.call_if

    def crash(*args, **kwargs):
        raise store.StoreUnavailable("crash before the held outcome")

    monkeypatch.setattr("scoring.store.scores.call_if", crash)
    with pytest.raises(store.StoreUnavailable):
        process(records)
    assert status_of("p1-s3") is Status.PENDING and store.held_list(limit=10) == []
    monkeypatch.setattr("scoring.store.scores.call_if", real)
    process(records)
    assert [s.id for s in store.held_list(limit=10)] == ["p1-s3"]
    assert total_of().total == 30


def test_an_approval_counts_in_the_window_it_was_played_in():
    process(put(*[submission(n) for n in range(4)]))
    (held,) = [s.id for s in store.held_list(limit=10)]
    process([review(held, Review.APPROVE)])
    assert total_of().windows["day:2026-12-03"] == 40


def test_only_a_held_submission_can_be_reviewed():
    process(put(submission(0)))
    assert review("p1-s0", Review.APPROVE) is None
    assert review("no-such-id", Review.REJECT) is None


# --- the staff review page -------------------------------------------------------


@pytest.fixture
def four_held():
    process(put(*[submission(n, elapsed_ms=10_000 + n) for n in range(7)]))
    held = [s.id for s in store.held_list(limit=10)]
    assert len(held) == 4
    return held


def decide(client, ids, decision, note=""):
    return client.post("/ops/review/decide/", {"submission": ids, "decision": decision, "note": note}, follow=True)


@pytest.mark.django_db
def test_the_review_page_is_for_staff_only(client, player):
    assert client.get("/ops/review/").status_code == 302
    client.force_login(player)
    assert "/admin/login/" in client.get("/ops/review/")["Location"]
    assert "/admin/login/" in client.post("/ops/review/decide/", {"decision": "approve"})["Location"]


@pytest.mark.django_db
def test_the_review_page_lists_held_submissions_with_their_evidence(admin_client, four_held):
    page = admin_client.get("/ops/review/").content.decode()
    for sub_id in four_held:
        assert f'data-submission-id="{sub_id}"' in page
    assert "10003 ms" in page  # time taken
    assert "burst: 4 completions within 60 s" in page
    assert page.count("easy · applied") >= 3  # the player's recent history


@pytest.mark.django_db
def test_staff_approve_and_reject_in_bulk_with_a_note_once(admin_client, four_held):
    response = decide(admin_client, four_held[:2], "approve", note="tournament final")
    assert "Approved 2 submission(s)" in response.content.decode()
    assert 'data-role="decided"' in response.content.decode()  # decided, waiting for the stream
    again = decide(admin_client, four_held[:2], "reject")  # a second click, the other way
    assert "2 submission(s) were no longer held or already decided" in again.content.decode()
    decide(admin_client, four_held[2:], "reject", note="scripted")
    reviews = [stream_record(store.score_get(submission_id=review_id(i)), seq=str(n)) for n, i in enumerate(four_held)]
    process(reviews)
    process(reviews)  # replayed
    assert [status_of(i) for i in four_held] == [Status.APPLIED] * 2 + [Status.REJECTED] * 2
    approved = store.score_get(submission_id=four_held[0])
    assert (approved.reviewed_by, approved.review_note) == ("admin", "tournament final")
    assert total_of().total == applied_points() == 50
    assert "Nothing is held." in admin_client.get("/ops/review/").content.decode()


@pytest.mark.django_db
def test_a_decision_without_a_choice_or_a_selection_changes_nothing(admin_client, four_held):
    assert "Choose approve or reject" in decide(admin_client, four_held, "maybe").content.decode()
    assert "Tick at least one" in decide(admin_client, [], "approve").content.decode()
    assert [status_of(i) for i in four_held] == [Status.HELD] * 4
    assert store.scores_get_many(submission_ids=[review_id(i) for i in four_held]) == {}


# --- dead letters ----------------------------------------------------------------


def dead_letter(record: dict) -> None:
    """The failure policy gives up on ``record`` at once and settles it."""
    from scoring.stream.policy import BatchRunner, FailurePolicy

    def fail(batch):
        raise ValueError("after commit")

    BatchRunner(fail, FailurePolicy(max_retry_attempts=0), sleep=lambda s: None).run([record])


def test_a_dead_letter_the_total_holds_as_held_is_settled_held_and_listed():
    records = put(*[submission(n) for n in range(4)])
    monkey_outcomes = store.scores_put_outcomes
    try:
        store.scores_put_outcomes = lambda **kw: (_ for _ in ()).throw(store.StoreUnavailable("crash"))
        with pytest.raises(store.StoreUnavailable):
            process(records)  # committed: three applied, one held; no outcome written
    finally:
        store.scores_put_outcomes = monkey_outcomes
    dead_letter(records[3])
    held = store.score_get(submission_id="p1-s3")
    assert held.status is Status.HELD and held.hold_reason.startswith("burst")
    assert [s.id for s in store.held_list(limit=10)] == ["p1-s3"]
    process([review("p1-s3", Review.APPROVE)])
    process(records)  # the rest settle
    assert total_of().total == applied_points() == 40


def test_a_dead_lettered_approval_already_committed_applies_the_held_submission():
    process(put(*[submission(n) for n in range(4)]))
    record = review("p1-s3", Review.APPROVE)
    real = store.scores_put_outcomes
    try:
        store.scores_put_outcomes = lambda **kw: (_ for _ in ()).throw(store.StoreUnavailable("crash"))
        with pytest.raises(store.StoreUnavailable):
            process([record])  # the approval is committed in the TOTAL; no outcome written
    finally:
        store.scores_put_outcomes = real
    dead_letter(record)
    approved = store.score_get(submission_id="p1-s3")
    assert (approved.status, approved.points, approved.reviewed_by) == (Status.APPLIED, 10, "staff")
    assert store.held_list(limit=10) == []
    assert total_of().total == applied_points() == 40
    assert drifts_find() == []


def test_a_dead_lettered_review_never_committed_rejects_the_held_submission_for_a_retry():
    process(put(*[submission(n) for n in range(4)]))
    dead_letter(review("p1-s3", Review.APPROVE))
    original = store.score_get(submission_id="p1-s3")
    assert original.status is Status.REJECTED and original.error.startswith("The review could not be applied")
    assert store.held_list(limit=10) == []
    assert "p1-s3" in {s.id for s in store.rejected_recent(limit=10)}  # the pipeline page offers Retry
    assert total_of().total == applied_points() == 30


def retry(sub_id: str) -> Submission | None:
    """Staff retry from the pipeline page; the retry, or None if refused."""
    return store.score_retry(submission_id=sub_id, now=T0 + timedelta(hours=1), by="staff")


def test_a_submission_rejected_in_review_cannot_be_retried_by_its_id_or_its_reviews():
    process(put(*[submission(n) for n in range(4)]))
    process([review("p1-s3", Review.REJECT, note="scripted")])
    assert status_of(review_id("p1-s3")) is Status.REJECTED  # the review item is rejected too
    assert retry("p1-s3") is None
    assert retry(review_id("p1-s3")) is None  # a review is not a completion to score afresh
    assert total_of().total == applied_points() == 30


def test_a_dead_lettered_review_and_its_submission_give_one_retry_between_them():
    process(put(*[submission(n, elapsed_ms=10_000 + n) for n in range(4)]))
    dead_letter(review("p1-s3", Review.APPROVE))
    first = retry(review_id("p1-s3"))  # the Retry of the dead letter's row...
    assert retry("p1-s3") is None  # ...and of the rejected submission's row: one retry
    again = retry(review_id("p1-s3"))
    assert again is None
    retried = store.score_get(submission_id=first.id)
    assert (retried.retry_of, retried.retried_by) == ("p1-s3", "staff")
    # The evidence of play goes with it: the hold rules judge it as they did the original.
    assert (retried.elapsed_ms, retried.verified_by) == (10_003, "challenge")
    record = stream_record(retried, seq="t")
    process([record])
    process([record])
    assert status_of(retried.id) is Status.APPLIED
    assert total_of().total == applied_points() == 40
    assert drifts_find() == []


def test_a_retry_keeps_the_evidence_so_the_speed_rule_still_holds_it():
    fast = submission(1, elapsed_ms=1_000)
    store.score_put(submission=fast)
    processing.records_process([stream_record(fast, seq="1")], points_for=lambda task: None, hold_rules=RULES)
    assert status_of(fast.id) is Status.REJECTED  # an unknown task, say; since mapped
    process([stream_record(retry(fast.id), seq="t")])
    held = store.score_get(submission_id=store.held_list(limit=10)[0].id)
    assert (held.retry_of, held.status) == (fast.id, Status.HELD) and held.hold_reason.startswith("fast")
    assert total_of().total == 0


def test_the_retry_of_an_approval_that_was_dead_lettered_is_not_held_again():
    fast = submission(1, elapsed_ms=1_000)  # held by the speed rule
    process(put(fast))
    assert status_of(fast.id) is Status.HELD
    dead_letter(review(fast.id, Review.APPROVE, note="seen it played"))
    assert status_of(fast.id) is Status.REJECTED
    retried = retry(fast.id)
    assert (retried.review, retried.reviewed_by, retried.review_note) == (Review.APPROVE, "staff", "seen it played")
    process([stream_record(retried, seq="t")])
    assert status_of(retried.id) is Status.APPLIED
    assert total_of().total == applied_points() == 10


def test_a_review_retried_under_its_own_id_by_an_older_version_is_not_retried_again():
    process(put(*[submission(n) for n in range(4)]))
    dead_letter(review("p1-s3", Review.APPROVE))
    legacy = Submission(id=retry_id(review_id("p1-s3")), player_id="p1", player_name="P1", task="easy",
                        submitted_at=T0, retry_of=review_id("p1-s3"))
    store.score_put(submission=legacy)  # what the older code wrote for a review's Retry
    assert retry("p1-s3") is None
    assert retry(review_id("p1-s3")) is None


@pytest.mark.django_db
def test_the_pipeline_page_says_which_rows_are_retried_and_which_are_final(admin_client):
    process(put(*[submission(n) for n in range(5)]))
    held = sorted(s.id for s in store.held_list(limit=10))
    assert held == ["p1-s3", "p1-s4"]
    for sequence, (held_id, decision) in enumerate([("p1-s3", Review.APPROVE), ("p1-s4", Review.REJECT)], 901):
        record = review(held_id, decision)
        record["dynamodb"]["SequenceNumber"] = str(sequence)
        dead_letter(record)
        store.dlq_put(record=record, error="boom", attempts=1)  # listed as the pipeline's consumer would
    retry(review_id("p1-s3"))  # from the review's dead-letter row
    page = admin_client.get("/ops/pipeline/").content.decode()

    def cell(row_attribute: str) -> str:
        start = page.index(row_attribute)
        return page[start:page.index("</tr>", start)]

    assert 'data-role="retried"' in cell('data-sequence="901"')  # the review's row
    assert 'data-role="retried"' in cell('data-submission-id="p1-s3"')
    for row in ('data-sequence="902"', 'data-submission-id="p1-s4"'):
        assert 'data-role="final"' in cell(row) and 'data-action="retry"' not in cell(row)


def test_a_retried_adjustment_is_the_same_adjustment_again():
    adjustment = Submission(id="adj-1", player_id="p1", player_name="P1", task="", submitted_at=T0,
                            rules_change=7, rescore={"easy": 12}, summary="Easy re-scored 10 → 12")
    (record,) = put(adjustment)
    dead_letter(record)
    assert status_of("adj-1") is Status.REJECTED
    retried = store.score_get(submission_id=retry("adj-1").id)
    assert (retried.rules_change, retried.rescore, retried.summary, retried.task) == (7, {"easy": 12},
                                                                                      "Easy re-scored 10 → 12", "")


@pytest.mark.django_db
def test_deciding_and_retrying_need_the_review_permission(client, four_held, django_user_model):
    from django.contrib.auth.models import Permission

    staff = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(staff)
    page = client.get("/ops/review/").content.decode()
    assert 'data-role="no-permission"' in page and 'name="submission"' not in page
    assert decide(client, four_held[:1], "approve").status_code == 403
    assert client.post("/ops/pipeline/retry/p1-s0/").status_code == 403
    assert status_of(four_held[0]) is Status.HELD
    staff.user_permissions.add(Permission.objects.get(codename="review_submissions"))
    staff = django_user_model.objects.get(pk=staff.pk)  # a fresh permission cache
    client.force_login(staff)
    assert "Approved 1 submission(s)" in decide(client, four_held[:1], "approve").content.decode()


@pytest.mark.django_db
def test_a_decision_on_something_that_is_not_an_id_is_refused_plainly(admin_client, four_held):
    response = decide(admin_client, ["x" * 3000, four_held[0]], "approve")
    assert response.status_code == 200
    assert "not a submission id" in response.content.decode()
    assert status_of(four_held[0]) is Status.HELD  # nothing decided, not even the good one


@pytest.mark.django_db
def test_the_queue_names_a_rejection_waiting_for_the_stream(admin_client, four_held):
    decide(admin_client, [four_held[0]], "reject")
    assert "Rejected by admin, applying" in admin_client.get("/ops/review/").content.decode()
