"""Answers lost on their way back from DynamoDB (issue 13, "Honest answers
under load"): the SCORE item is written, but the API never hears so. Whatever
the client is told must still be true: 202 when botocore's retry meets the
item its lost call wrote, a 503 naming the id when no attempt is answered,
and a resend of the same request finds that one item, never a second."""

import json
import uuid
from datetime import timedelta

import pytest
import urllib3

from scoring import store, verification
from scoring.challenge_tokens import challenge_load
from scoring.domain import Status, challenge_submission_id, submission_id_new, utcnow
from scoring.models import Task

pytestmark = pytest.mark.slow

TASK = "warm-up-sums"
MAX_ATTEMPTS = 3  # the web process's DYNAMODB_MAX_ATTEMPTS, given to it explicitly

http = urllib3.PoolManager()


def api(method, url, token, body=None, idempotency_key=None):
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = http.request(method, url, body=None if body is None else json.dumps(body).encode(),
                            headers=headers, retries=False, timeout=30)
    return response, json.loads(response.data)


def player_id_of(web, token) -> str:
    """The token's player id in the web process, read from a challenge it
    issues. The children inherit this process's environment, SECRET_KEY
    included, so its signature checks out here (or the test fails here)."""
    response, issued = api("POST", f"{web}/api/tasks/{TASK}/challenges/", token)
    assert response.status == 201, issued
    return challenge_load(token=issued["challenge"], max_age_seconds=float("inf")).player_id


def submission_request(play, web, token):
    """(body, Idempotency-Key, the id the submission must get) for a trusted
    client's bare task, with or without a key, or for a played challenge."""
    player_id = player_id_of(web, token)
    if play == "challenge":
        # Issued a minute ago: past the Easy level's min_seconds (and its
        # review_seconds, so it is not held), well inside the TTL.
        issued = verification.challenge_new(player_id=player_id, task=Task.objects.get(slug=TASK),
                                            now=utcnow() - timedelta(seconds=60))
        challenge_id = challenge_load(token=issued.token, max_age_seconds=float("inf")).id
        body = {"task": TASK, "challenge": issued.token, "answers": [q.answer for q in issued.questions]}
        return body, None, challenge_submission_id(challenge_id)
    if play == "idempotency_key":
        key = f"lost-{uuid.uuid4()}"
        return {"task": TASK}, key, submission_id_new(player_id=player_id, idempotency_key=key)
    return {"task": TASK}, None, None  # a random id, known only from the answer


def score_puts(proxy) -> list[str]:
    """The proxy's fate ("pass", "lost") of each PutItem of a SCORE item."""
    return [mode for mode, target, body in proxy.calls if target.endswith("PutItem") and b'"SCORE#' in body]


def assert_counted_once(run_consumer_once, submission_id):
    drain = run_consumer_once()
    assert drain.returncode == 0, drain.stdout[-3000:] + drain.stderr[-3000:]
    [score] = store.scores_scan()
    assert (score.id, score.status) == (submission_id, Status.APPLIED), score
    assert score.points == 10  # warm-up-sums
    assert store.totals_get_many(player_ids=[score.player_id])[score.player_id].total == score.points


@pytest.mark.parametrize("play", ["trusted", "challenge"])
def test_a_lost_answer_retried_onto_its_own_item_answers_202(
        play, fault_proxy, web_server, api_token, run_consumer_once, db):
    web = web_server(DYNAMODB_ENDPOINT_URL=fault_proxy.url, DYNAMODB_MAX_ATTEMPTS=str(MAX_ATTEMPTS))
    body, key, expected_id = submission_request(play, web, api_token)

    fault_proxy.lose_answers = 1
    response, answer = api("POST", f"{web}/api/scores/", api_token, body, key)
    assert response.status == 202, answer  # it created the item: not a replay's 200
    # The first put was written and its answer lost; botocore's retry met the item.
    assert score_puts(fault_proxy) == ["lost", "pass"]
    if expected_id:
        assert answer["id"] == expected_id
    assert [s.id for s in store.scores_scan()] == [answer["id"]]
    assert response.headers["Location"] == f"/api/scores/{answer['id']}/"
    assert_counted_once(run_consumer_once, answer["id"])


@pytest.mark.parametrize("play", ["idempotency_key", "challenge"])
def test_every_answer_lost_gives_503_naming_the_id_and_a_resend_finds_it(
        play, fault_proxy, web_server, api_token, run_consumer_once, db):
    web = web_server(DYNAMODB_ENDPOINT_URL=fault_proxy.url, DYNAMODB_MAX_ATTEMPTS=str(MAX_ATTEMPTS))
    body, key, expected_id = submission_request(play, web, api_token)

    fault_proxy.lose_answers = MAX_ATTEMPTS
    response, answer = api("POST", f"{web}/api/scores/", api_token, body, key)
    assert response.status == 503, answer
    assert response.headers["Retry-After"]
    submission_id = answer["submission_id"]
    assert submission_id == expected_id
    assert f"GET /api/scores/{submission_id}/" in answer["detail"]
    assert score_puts(fault_proxy) == ["lost"] * MAX_ATTEMPTS
    assert fault_proxy.lose_answers == 0  # the proxy passes everything again
    written = store.score_get(submission_id=submission_id)
    assert written is not None and written.status is Status.PENDING  # the first attempt's write happened

    got, shown = api("GET", f"{web}/api/scores/{submission_id}/", api_token)
    assert got.status == 200, shown
    assert (shown["id"], shown["status"]) == (submission_id, "pending")

    again, resent = api("POST", f"{web}/api/scores/", api_token, body, key)
    assert again.status == 200, resent  # the original, not a second submission
    assert (resent["id"], resent["submitted_at"]) == (submission_id, shown["submitted_at"])
    assert score_puts(fault_proxy)[MAX_ATTEMPTS:] == ["pass"]
    assert [s.id for s in store.scores_scan()] == [submission_id]
    assert_counted_once(run_consumer_once, submission_id)
