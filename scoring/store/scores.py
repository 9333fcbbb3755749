"""SCORE items: the API's one write, their outcomes, and their retries."""

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from django.conf import settings

from scoring.domain import (
    Decision,
    Outcome,
    Page,
    PlayerTotal,
    Review,
    Status,
    Submission,
    fold_rejection,
    listed_ids,
    retry_id,
    review_id,
)
from scoring.store.base import (
    ConditionFailed,
    SubmissionExists,
    call,
    call_if,
    items_get_many,
    items_put_many,
    paginate,
    query_all,
    scan_client,
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
    parse_iso,
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
    """A player's submissions, newest first, ``limit`` at a time (their
    adjustments share the index, for the ledger, and are left out)."""
    return _player_page(player_id=player_id, limit=limit, start_key=start_key,
                        filter_expression="attribute_not_exists(rules_change)")


def ledger_for_player(*, player_id: str, limit: int, start_key: dict | None = None) -> Page:
    """What a player's total is made of, newest first: their applied
    submissions and adjustments (the index holds both)."""
    return _player_page(player_id=player_id, limit=limit, start_key=start_key, filter_expression="#status = :applied",
                        names={"#status": "status"}, values={":applied": {"S": str(Status.APPLIED)}})


# Index entries a ledger or list read asks for at least, per Query: a
# filter that passes few of them then costs a few calls, not one per entry.
_PAGE_READ = 100


def _player_page(*, player_id: str, limit: int, start_key: dict | None, filter_expression: str,
                 names: dict | None = None, values: dict | None = None) -> Page:
    """Up to ``limit`` of the player's index entries that pass the filter.

    DynamoDB applies ``Limit`` before the filter, so one call can return
    fewer (even none) with more to come: ask again from where the last call
    stopped, so a page is short only at the end. Each call reads at least
    ``_PAGE_READ`` entries; when it finds more than the page needs, the page
    ends at its last item, and the next starts right after it (an index's
    position is the item's index and table keys).
    """
    items: list[dict] = []
    next_key = start_key
    while True:
        kwargs = {
            "TableName": table_name(),
            "IndexName": GSI_PLAYER_SCORES,
            "KeyConditionExpression": "GSI2PK = :pk",
            "FilterExpression": filter_expression,
            "ExpressionAttributeValues": {":pk": {"S": player_scores_pk(player_id)}, **(values or {})},
            "ScanIndexForward": False,
            "Limit": max(limit - len(items), _PAGE_READ),
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if next_key:
            kwargs["ExclusiveStartKey"] = next_key
        response = call("query", **kwargs)
        items += response.get("Items", [])
        next_key = response.get("LastEvaluatedKey")
        if len(items) > limit or (len(items) == limit and next_key is not None):
            items = items[:limit]
            next_key = {name: items[-1][name] for name in ("GSI2PK", "GSI2SK", "PK", "SK")}
        if next_key is None or len(items) >= limit:
            return Page(items=[submission_from_item(item) for item in items], next_key=next_key)


def player_score_ids(*, player_id: str) -> Iterator[str]:
    """The ids of every SCORE item in the player's index: their submissions
    and adjustments (not staff reviews, which the index leaves out). The
    index is eventually consistent: an item written a moment ago may be
    missing. For ``rebuild_totals``' check of one player."""
    for page in paginate("query", TableName=table_name(), IndexName=GSI_PLAYER_SCORES,
                         KeyConditionExpression="GSI2PK = :pk",
                         ExpressionAttributeValues={":pk": {"S": player_scores_pk(player_id)}},
                         ProjectionExpression="submission_id"):
        yield from (item["submission_id"]["S"] for item in page.get("Items", []))


def score_start_key_owner(start_key: dict) -> str | None:
    """The player a GSI2 position belongs to, to refuse a foreign cursor."""
    pk = start_key.get("GSI2PK", {}).get("S", "")
    return pk.removeprefix(PLAYER_PREFIX) if pk.startswith(PLAYER_PREFIX) else None


def scores_get_many(*, submission_ids: list[str]) -> dict[str, Submission]:
    """The current SCORE items for these ids (missing ones are left out)."""
    items = items_get_many([score_key(i) for i in dict.fromkeys(submission_ids)])
    return {s.id: s for s in map(submission_from_item, items)}


def scores_status_many(*, submission_ids: list[str]) -> dict[str, Status]:
    """The current status of the SCORE items for these ids (missing ones are
    left out): a read of two attributes, not of the whole items."""
    items = items_get_many([score_key(i) for i in dict.fromkeys(submission_ids)],
                           attributes=("submission_id", "status"))
    return {item["submission_id"]["S"]: Status(item["status"]["S"]) for item in items}


def scores_settled(*, total: PlayerTotal, besides: set[str],
                   statuses: dict[str, Status] | None = None) -> set[str]:
    """The ids ``total`` lists as decided (but for ``besides``, those being
    decided now) whose SCORE item shows the outcome, so its maps can forget
    them. ``statuses``: of SCOREs read after ``total``, including all of
    them (a missing one was deleted); None: read them now."""
    listed = listed_ids(total, besides=besides)
    if not listed:
        return set()
    if statuses is None:
        statuses = scores_status_many(submission_ids=listed)
    return {i for i in listed if statuses.get(i) is not Status.PENDING}


def scores_put_outcomes(*, submissions: list[Submission], reviewed: list[Submission] = ()) -> None:
    """Write outcomes onto SCORE items, 25 a call.

    Whole-item puts (BatchWriteItem takes no conditions or updates). Safe
    because the TOTAL item's ``pending`` map, not the SCORE item, is what
    guards the total; a later put for the same id carries the same outcome.
    These are MODIFY events on the stream, which the consumer's filter skips.

    Holds are the exception: a held submission moves on (staff review it),
    so a late duplicate of its ``held`` outcome, from a worker that paused
    past its lease, must not put it back. Each is a put conditional on the
    item still being pending. Holds are rare; the rest stays batched.

    The staff pages' pointers go first, in a call of their own: an outcome
    written without its pointer would never be listed (a replay skips a
    settled item). ``reviewed`` are held submissions a review in
    ``submissions`` decided: they, and the removal of their HELD pointers,
    are written before the reviews, so that a crash in between leaves the
    review pending, and its replay writes them again.
    """
    pointers = [held_pointer_item(s) for s in submissions if s.status is Status.HELD]
    pointers += [_rejected_pointer(s.id, s.processed_at) for s in submissions
                 if s.status is Status.REJECTED and s.review_of is None]
    if pointers:
        items_put_many(pointers)
    for held in (s for s in submissions if s.status is Status.HELD):
        if not call_if("put_item", TableName=table_name(), Item=submission_to_item(held),
                       ConditionExpression="#status = :pending", ExpressionAttributeNames={"#status": "status"},
                       ExpressionAttributeValues={":pending": {"S": str(Status.PENDING)}}):
            _held_pointer_drop_if_decided(held)
    if reviewed:
        items_put_many([submission_to_item(s) for s in reviewed],
                       delete_keys=[held_key(s.id, s.submitted_at) for s in reviewed])
    items_put_many([submission_to_item(s) for s in submissions if s.status is not Status.HELD])


def _held_pointer_drop_if_decided(held: Submission) -> None:
    """The pointer just written for a late duplicate of a hold: if the
    submission was decided meanwhile (a review applied or rejected it, and
    removed its pointer), it would come back for ever at the head of the
    review queue: take it away again. A submission still held keeps it."""
    current = score_get(submission_id=held.id)
    if current is None or current.status is not Status.HELD:
        call("delete_item", TableName=table_name(), Key=held_key(held.id, held.submitted_at))


def scores_scan(*, status: Status | None = None, consistent: bool = False,
                unreadable: Callable[[str, Exception], None] | None = None) -> Iterator[Submission]:
    """Every SCORE item, or those of one ``status``, for rebuilding totals and
    re-driving stranded submissions. A full scan: an ops tool. An item that
    is not a submission raises, or, with ``unreadable``, is passed to it
    (its PK and the error) and left out. ``consistent``: as last written
    (ConsistentRead)."""
    params = {"FilterExpression": "begins_with(PK, :p)", "ExpressionAttributeValues": {":p": {"S": SCORE_PREFIX}},
              "ConsistentRead": consistent}
    if status is not None:
        params["FilterExpression"] += " AND #status = :status"
        params["ExpressionAttributeValues"][":status"] = {"S": status.value}
        params["ExpressionAttributeNames"] = {"#status": "status"}  # a DynamoDB reserved word
    for page in paginate("scan", client=scan_client(), TableName=table_name(), **params):
        for item in page.get("Items", []):
            try:
                submission = submission_from_item(item)
            except (KeyError, TypeError, ValueError) as exc:
                if unreadable is None:
                    raise
                unreadable(item.get("PK", {}).get("S", "?"), exc)
                continue
            yield submission


def rejected_recent(*, limit: int) -> list[Submission]:
    """The most recently rejected submissions (one partition, newest first)."""
    response = call("query", TableName=table_name(), KeyConditionExpression="PK = :pk",
                     ExpressionAttributeValues={":pk": {"S": REJECTED_PK}}, ScanIndexForward=False, Limit=limit)
    ids = [pointer_submission_id(item) for item in response.get("Items", [])]
    found = scores_get_many(submission_ids=ids)
    return [found[i] for i in ids if i in found and found[i].status is Status.REJECTED]


def score_retry(*, submission_id: str, now: datetime, by: str | None = None) -> Submission | None:
    """Put a rejected submission through the pipeline again, exactly once.

    The retry is a new SCORE item (an INSERT on the stream, processed like
    any submission) whose id is derived from the original's, so a second
    retry of the same submission is refused by the conditional put: of two
    staff clicking at once, one wins. The original stays as it was, for the
    record. Only a rejected submission can be retried. The web role needs no
    write but its PutItem on SCORE items for this.

    - A review is not a completion: retrying one retries the submission it
      decided, under the same id, so a dead-lettered review and the
      submission it rejected offer one retry between them, not two.
    - A submission staff rejected in review stays rejected: a retry would
      overturn their decision.
    - The retry carries the evidence of play (the time taken), so the speed
      rule applies to it as it did to the original; the burst rule counts
      it at the time of the retry. A submission staff approved (whose
      approval was dead-lettered) carries the approval, and is not held
      again. An adjustment's retry re-scores as it did.
    - ``by``, the staff member, is recorded on the retry.
    """
    original = score_get(submission_id=submission_id)
    if original is not None and original.review_of is not None:
        original = score_get(submission_id=original.review_of)
    if original is None or original.status is not Status.REJECTED or original.review is Review.REJECT:
        return None
    if original.review is not None and score_get(submission_id=retry_id(review_id(original.id))):
        return None  # retried as its review, by a version that keyed such retries on the review's id
    common = {"id": retry_id(original.id), "player_id": original.player_id, "player_name": original.player_name,
              "task": original.task, "submitted_at": now, "retry_of": original.id, "retried_by": by}
    if original.is_adjustment:
        retry = Submission(**common, rules_change=original.rules_change, rescore=original.rescore,
                           summary=original.summary, reason=original.reason)
    else:
        retry = Submission(**common, challenge_id=original.challenge_id, elapsed_ms=original.elapsed_ms,
                           verified_by=original.verified_by, review=original.review,
                           reviewed_by=original.reviewed_by, review_note=original.review_note,
                           reviewed_at=original.reviewed_at)
    try:
        score_put(submission=retry)
    except SubmissionExists:
        return None
    return retry


def held_list(*, limit: int) -> list[Submission]:
    """Submissions held for review, oldest first (one partition), up to
    ``limit`` of them. A pointer whose submission is no longer held (a crash
    between a review's writes leaves one until its replay) is passed over,
    not counted against the limit."""
    held: list[Submission] = []
    pointers = query_all(HELD_PK, "")
    while len(held) < limit:
        page = [pointer_submission_id(item) for item in itertools.islice(pointers, 100)]
        if not page:
            break
        found = scores_get_many(submission_ids=page)
        held += [found[i] for i in page if i in found and found[i].status is Status.HELD]
    return held[:limit]


def adjustment_put(*, adjustment: Submission) -> bool:
    """Store a rules change's adjustment for one player, unless that
    player already has it (its id derives from the change and the player):
    False then. Applying a change twice adjusts once."""
    try:
        score_put(submission=adjustment)
    except SubmissionExists:
        return False
    return True


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


def retry_states(*, submission_ids: list[str]) -> tuple[set[str], set[str]]:
    """For the pipeline page's rows: those whose submission has a retry,
    and those staff rejected in review (no retry will be taken); a review
    answers for the submission it decided, as ``score_retry`` does."""
    items = scores_get_many(submission_ids=submission_ids)
    root = {i: items[i].review_of if i in items and items[i].review_of else i for i in submission_ids}
    originals = {**items, **scores_get_many(submission_ids=[r for r in set(root.values()) if r not in items])}
    retries = scores_get_many(submission_ids=[retry_id(r) for r in set(root.values())])
    retried = {s.retry_of for s in retries.values() if s.retry_of}
    final = {r for r, s in originals.items() if s.review is Review.REJECT}
    return ({i for i, r in root.items() if r in retried},
            {i for i, r in root.items() if r in final and r not in retried})


def _rejected_pointer(submission_id: str, processed_at: datetime) -> dict:
    """The staff page's pointer to a rejection, kept REJECTED_RETENTION_DAYS
    (then DynamoDB's TTL deletes it; the SCORE item stays)."""
    purge_at = int(processed_at.timestamp()) + int(settings.REJECTED_RETENTION_DAYS * 86400)
    return rejected_pointer_item(submission_id, processed_at, purge_at=purge_at)


def score_settle_failed(*, record: dict, error: str,
                        adjustments_missed: Callable[[dict[str, PlayerTotal], list[Decision]], object] | None = None,
                        ) -> None:
    """Give a dead-lettered submission an outcome, whatever its record holds.

    Rejected, committed in the player's TOTAL like any decision, unless the
    TOTAL already holds one for it (a failure after the commit point, or
    another worker on the same record): then that decision stands
    (``domain.fold_rejection``), so that the SCORE item never disagrees with
    the total. Only a pending item changes.

    A count that stands was committed by a batch that failed before its
    outcomes, perhaps before the step that writes the adjustment a
    retroactive change still owes it. ``adjustments_missed(totals,
    applied)`` (``rules.adjustments_missed_write``), if given, runs that
    step here, before the outcome is written, as the batch would have.
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

        def change(current: PlayerTotal | None, _retrying: bool):
            # The new TOTAL forgets what its SCOREs show settled, as a batch's does.
            settled = scores_settled(total=current, besides={submission_id}) if current else set()
            new, decided = fold_rejection(current, player_id=player_id, player_name=player_name,
                                          submission_id=submission_id, error=error, settled_ids=settled)
            return new, (decided, current)

        outcome, total = total_change(player_id=player_id, change=change)
        if outcome.status is Status.APPLIED and adjustments_missed is not None and "rules_change" not in item:
            counted = Submission(id=submission_id, player_id=player_id, player_name=player_name,
                                 task=item.get("task", {}).get("S", ""), submitted_at=datetime.now(UTC))
            adjustments_missed({player_id: total}, [
                Decision(counted, Status.APPLIED, points=outcome.points, rules_version=outcome.rules_version)])
    processed_at = datetime.now(UTC)
    if outcome.status is Status.HELD:  # committed as held before the failure: list it first
        held = Submission(id=submission_id, player_id=player_id or "", player_name="", task="",
                          submitted_at=parse_iso(item["submitted_at"]["S"]))
        call("put_item", TableName=table_name(), Item=held_pointer_item(held))
    if not _settle(item, outcome, processed_at):
        if outcome.status is Status.HELD:  # the pointer above, for an item decided meanwhile
            _held_pointer_drop_if_decided(held)
        return  # already settled
    if outcome.status is Status.REJECTED and "review_of" not in item:  # list it for the staff pipeline page
        call("put_item", TableName=table_name(), Item=_rejected_pointer(submission_id, processed_at))
    if "review_of" in item:
        _settle_reviewed(item, outcome, processed_at)


def _settle(item: dict, outcome: Outcome, processed_at: datetime, extra: dict | None = None,
            expect: Status = Status.PENDING) -> bool:
    """Set a SCORE item's outcome (and ``extra`` attributes, AttributeValue
    JSON) if its status is still ``expect``. False if it was not."""
    names = {"#status": "status"}
    values = {":s": {"S": str(outcome.status)}, ":t": {"S": iso(processed_at)}, ":expect": {"S": str(expect)}}
    sets = ["#status = :s", "processed_at = :t"]
    if outcome.status is Status.APPLIED:
        sets += ["points = :p", "rules_version = :v"]
        values[":p"] = {"N": str(outcome.points)}
        values[":v"] = {"N": str(outcome.rules_version)}
    elif outcome.status is Status.REJECTED:
        sets.append("#error = :e")
        names["#error"] = "error"
        values[":e"] = {"S": outcome.error or "Rejected."}
    else:
        sets.append("hold_reason = :h")
        values[":h"] = {"S": outcome.hold_reason or "held"}
    for n, (name, value) in enumerate((extra or {}).items()):
        sets.append(f"#x{n} = :x{n}")
        names[f"#x{n}"], values[f":x{n}"] = name, value
    return call_if("update_item", TableName=table_name(), Key={"PK": item["PK"], "SK": item["SK"]},
                   UpdateExpression="SET " + ", ".join(sets), ConditionExpression="#status = :expect",
                   ExpressionAttributeNames=names, ExpressionAttributeValues=values)


def _settle_reviewed(review: dict, outcome: Outcome, processed_at: datetime) -> None:
    """A dead-lettered review still decides its held submission: applied if
    the approval was committed, else rejected (staff can Retry it from the
    pipeline page), and off the review queue."""
    original_id = review["review_of"]["S"]
    original = call("get_item", TableName=table_name(), Key=score_key(original_id), ConsistentRead=True).get("Item")
    if not original:
        return
    if outcome.status is not Status.APPLIED:
        outcome = Outcome(Status.REJECTED, error=f"The review could not be applied: {outcome.error}")
    extra = {name: review[name] for name in ("review", "reviewed_by", "reviewed_at", "review_note") if name in review}
    if not _settle(original, outcome, processed_at, extra, expect=Status.HELD):
        return
    call("delete_item", TableName=table_name(), Key=held_key(original_id, parse_iso(original["submitted_at"]["S"])))
    if outcome.status is Status.REJECTED:
        call("put_item", TableName=table_name(), Item=_rejected_pointer(original_id, processed_at))
