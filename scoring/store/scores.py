"""SCORE items: the API's one write, their outcomes, and their retries."""

from collections.abc import Iterator
from datetime import UTC, datetime

from django.conf import settings

from scoring.domain import Outcome, Page, Review, Status, Submission, fold_rejection, retry_id, review_id
from scoring.store.base import (
    ConditionFailed,
    SubmissionExists,
    call,
    call_if,
    items_get_many,
    items_put_many,
    paginate,
    query_all,
    table_name,
)
from scoring.store.keys import (
    GSI_PLAYER_SCORES,
    HELD_PK,
    PLAYER_PREFIX,
    REJECTED_PK,
    SCORE_PREFIX,
    held_key,
    held_pointer_item,
    iso,
    player_scores_pk,
    pointer_submission_id,
    rejected_pointer_item,
    score_key,
    submission_from_item,
    submission_id_of_record,
    submission_to_item,
)
from scoring.store.totals import total_change


def score_put(*, submission: Submission) -> None:
    """Store a new SCORE item; the only write the API ever makes.

    Conditional on the id being new. If it is not, raises SubmissionExists
    carrying the stored item, which DynamoDB returns with the failure, so an
    idempotent retry costs one call and writes nothing.
    """
    try:
        call(
            "put_item",
            TableName=table_name(),
            Item=submission_to_item(submission),
            ConditionExpression="attribute_not_exists(PK)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ConditionFailed as exc:
        item = exc.item
        existing = submission_from_item(item) if item else score_get(submission_id=submission.id)
        raise SubmissionExists(existing) from None


def score_get(*, submission_id: str) -> Submission | None:
    """The submission with this id, or None."""
    response = call("get_item", TableName=table_name(), Key=score_key(submission_id), ConsistentRead=True)
    item = response.get("Item")
    return submission_from_item(item) if item else None


def score_list_for_player(*, player_id: str, limit: int, start_key: dict | None = None) -> Page:
    """A player's submissions, newest first, ``limit`` at a time."""
    kwargs = {
        "TableName": table_name(),
        "IndexName": GSI_PLAYER_SCORES,
        "KeyConditionExpression": "GSI2PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": player_scores_pk(player_id)}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    response = call("query", **kwargs)
    items = [submission_from_item(item) for item in response.get("Items", [])]
    next_key = response.get("LastEvaluatedKey")
    return Page(items=items, next_key=next_key)


def score_start_key_owner(start_key: dict) -> str | None:
    """The player a GSI2 position belongs to, to refuse a foreign cursor."""
    pk = start_key.get("GSI2PK", {}).get("S", "")
    return pk.removeprefix(PLAYER_PREFIX) if pk.startswith(PLAYER_PREFIX) else None


def scores_get_many(*, submission_ids: list[str]) -> dict[str, Submission]:
    """The current SCORE items for these ids (missing ones are left out)."""
    items = items_get_many([score_key(i) for i in dict.fromkeys(submission_ids)])
    return {s.id: s for s in map(submission_from_item, items)}


def scores_put_outcomes(*, submissions: list[Submission], reviewed: list[Submission] = ()) -> None:
    """Write outcomes onto SCORE items, 25 a call.

    Whole-item puts (BatchWriteItem takes no conditions or updates). Safe
    because the TOTAL item's ``pending`` map, not the SCORE item, is what
    guards the total; a later put for the same id carries the same outcome.
    These are MODIFY events on the stream, which the consumer's filter skips.

    ``reviewed`` are held submissions a review in ``submissions`` decided:
    they and the removal of their HELD pointers are written first, so that
    a crash in between leaves the review pending, and its replay writes
    them again.
    """
    if reviewed:
        items_put_many([submission_to_item(s) for s in reviewed],
                       delete_keys=[held_key(s.id, s.submitted_at) for s in reviewed])
    items = [submission_to_item(s) for s in submissions]
    items += [_rejected_pointer(s.id, s.processed_at) for s in submissions
              if s.status is Status.REJECTED and s.review_of is None]
    items += [held_pointer_item(s) for s in submissions if s.status is Status.HELD]
    items_put_many(items)


def scores_scan() -> Iterator[Submission]:
    """Every SCORE item, for rebuilding totals. A full scan: an ops tool."""
    for page in paginate("scan", TableName=table_name(), FilterExpression="begins_with(PK, :p)",
                         ExpressionAttributeValues={":p": {"S": SCORE_PREFIX}}):
        for item in page.get("Items", []):
            yield submission_from_item(item)


def rejected_recent(*, limit: int) -> list[Submission]:
    """The most recently rejected submissions (one partition, newest first)."""
    response = call("query", TableName=table_name(), KeyConditionExpression="PK = :pk",
                     ExpressionAttributeValues={":pk": {"S": REJECTED_PK}}, ScanIndexForward=False, Limit=limit)
    ids = [pointer_submission_id(item) for item in response.get("Items", [])]
    found = scores_get_many(submission_ids=ids)
    return [found[i] for i in ids if i in found and found[i].status is Status.REJECTED]


def score_retry(*, submission_id: str, now: datetime) -> Submission | None:
    """Put a rejected submission through the pipeline again, exactly once.

    The retry is a new SCORE item (an INSERT on the stream, processed like
    any submission) whose id is derived from the original's, so a second
    retry of the same submission is refused by the conditional put: of two
    staff clicking at once, one wins. The original stays as it was, for the
    record. Only a rejected submission can be retried. The web role needs no
    write but its PutItem on SCORE items for this.
    """
    original = score_get(submission_id=submission_id)
    if original is None or original.status is not Status.REJECTED:
        return None
    retry = Submission(id=retry_id(original.id), player_id=original.player_id, player_name=original.player_name,
                       task=original.task, submitted_at=now, retry_of=original.id)
    try:
        score_put(submission=retry)
    except SubmissionExists:
        return None
    return retry


def held_list(*, limit: int) -> list[Submission]:
    """Submissions held for review, oldest first (one partition)."""
    ids = []
    for item in query_all(HELD_PK, ""):
        ids.append(pointer_submission_id(item))
        if len(ids) >= limit:
            break
    found = scores_get_many(submission_ids=ids)
    return [found[i] for i in ids if i in found and found[i].status is Status.HELD]


def score_review(*, submission_id: str, review: Review, reviewer: str, note: str,
                 now: datetime) -> Submission | None:
    """Approve or reject a held submission, exactly once.

    The review is a new SCORE item (an INSERT on the stream, processed like
    a retry) whose id derives from the held one's, so a second review of it,
    a double click or another staff member's, is refused by the conditional
    put: one wins. It carries the held submission's play time, so that an
    approval counts in the leaderboard windows it was played in.
    """
    original = score_get(submission_id=submission_id)
    if original is None or original.status is not Status.HELD:
        return None
    decision = Submission(id=review_id(original.id), player_id=original.player_id,
                          player_name=original.player_name, task=original.task,
                          submitted_at=original.submitted_at, review_of=original.id, review=review,
                          reviewed_by=reviewer, review_note=note or None, reviewed_at=now)
    try:
        score_put(submission=decision)
    except SubmissionExists:
        return None
    return decision


def retried_ids(*, submission_ids: list[str]) -> set[str]:
    """Which of these submissions already have a retry."""
    retries = scores_get_many(submission_ids=[retry_id(i) for i in submission_ids])
    return {s.retry_of for s in retries.values() if s.retry_of}


def _rejected_pointer(submission_id: str, processed_at: datetime) -> dict:
    """The staff page's pointer to a rejection, kept REJECTED_RETENTION_DAYS
    (then DynamoDB's TTL deletes it; the SCORE item stays)."""
    purge_at = int(processed_at.timestamp()) + int(settings.REJECTED_RETENTION_DAYS * 86400)
    return rejected_pointer_item(submission_id, processed_at, purge_at=purge_at)


def score_settle_failed(*, record: dict, error: str) -> None:
    """Give a dead-lettered submission an outcome, whatever its record holds.

    Rejected, committed in the player's TOTAL like any decision, unless the
    TOTAL already holds one for it (a failure after the commit point, or
    another worker on the same record): then that decision stands
    (``domain.fold_rejection``), so that the SCORE item never disagrees with
    the total. Only a pending item changes.
    """
    submission_id = submission_id_of_record(record)
    if submission_id is None:
        return
    # Field by field, not submission_from_item: the record may be here because
    # its item cannot be parsed.
    item = call("get_item", TableName=table_name(), Key=score_key(submission_id), ConsistentRead=True).get("Item")
    if not item or item.get("status", {}).get("S") != str(Status.PENDING):
        return
    player_id = item.get("player_id", {}).get("S")
    outcome = Outcome(Status.REJECTED, error=error)
    if player_id:  # without one the item is too broken to have been counted anywhere
        player_name = item.get("player_name", {}).get("S", player_id)
        outcome = total_change(player_id=player_id, change=lambda current, _retrying: fold_rejection(
            current, player_id=player_id, player_name=player_name, submission_id=submission_id, error=error))
    processed_at = datetime.now(UTC)
    if outcome.status is Status.APPLIED:
        values = {":s": {"S": "applied"}, ":p": {"N": str(outcome.points)}}
        update, names = "SET #status = :s, points = :p, processed_at = :t", {"#status": "status"}
    else:
        values = {":s": {"S": "rejected"}, ":e": {"S": outcome.error}}
        update, names = "SET #status = :s, #error = :e, processed_at = :t", {"#status": "status", "#error": "error"}
    values[":t"] = {"S": iso(processed_at)}
    values[":pending"] = {"S": "pending"}
    if not call_if("update_item", TableName=table_name(), Key=score_key(submission_id), UpdateExpression=update,
                   ConditionExpression="#status = :pending", ExpressionAttributeNames=names,
                   ExpressionAttributeValues=values):
        return  # already settled
    if outcome.status is Status.REJECTED:  # list it for the staff pipeline page
        call("put_item", TableName=table_name(), Item=_rejected_pointer(submission_id, processed_at))
