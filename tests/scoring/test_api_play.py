"""Server-verified play through the API, against a real moto server: a
challenge is issued, answered and checked, and every refusal writes nothing.

The API's clock is the test's (``clock``): waiting out ``min_seconds`` or a
challenge's expiry is a step of the clock, not a sleep.
"""

import json
from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scoring import store
from scoring.challenges import OPS
from scoring.domain import Status
from scoring.models import Task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table")]

SCORES = "/api/scores/"
TASK = "warm-up-sums"  # Easy: 3 questions of "+", min_seconds 3


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def start(client, task=TASK) -> dict:
    response = client.post(f"/api/tasks/{task}/challenges/")
    assert response.status_code == 201, response.content
    return response.json()


def answers_to(challenge: dict) -> list[int]:
    """The right answers, worked out from the questions as a player would."""
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a // b}
    return [ops[q["op"]](q["a"], q["b"]) for q in challenge["questions"]]


def answer(client, challenge: dict, answers=None, *, task=None, **extra):
    body = {"task": task or challenge["task"], "challenge": challenge["challenge"],
            "answers": answers_to(challenge) if answers is None else answers}
    return client.post(SCORES, data=json.dumps(body), content_type="application/json", **extra)


def min_seconds(task=TASK) -> float:
    return Task.objects.get(slug=task).difficulty.min_seconds


def honest_seconds(task=TASK) -> float:
    """An honest pace: past min_seconds, and past the review time under
    which the hold rules would hold it (tests/scoring/test_quarantine.py)."""
    return Task.objects.get(slug=task).difficulty.review_seconds + 0.5


# --- issuing ------------------------------------------------------------------


def test_a_challenge_is_201_with_its_questions_and_writes_nothing(player_client, clock, item_count, db_writes):
    with db_writes() as sql:
        response = player_client.post("/api/tasks/division-drill/challenges/")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"challenge", "task", "questions", "issued_at", "expires_at", "min_seconds"}
    assert body["task"] == "division-drill"
    task = Task.objects.get(slug="division-drill")
    assert len(body["questions"]) == task.difficulty.question_count
    assert body["min_seconds"] == task.difficulty.min_seconds
    for q in body["questions"]:
        assert set(q) == {"a", "op", "b", "text"}  # never the answer
        assert q["op"] == "/" and q["a"] % q["b"] == 0  # the card promises division
        assert q["text"] == f"{q['a']} \u00f7 {q['b']}"
    issued = datetime.fromisoformat(body["issued_at"])
    assert issued == clock.now
    assert datetime.fromisoformat(body["expires_at"]) - issued == timedelta(minutes=15)
    assert item_count() == 0
    assert sql.writes == []


def test_each_challenge_asks_new_questions_of_the_tasks_operations(player_client, clock):
    first, second = start(player_client, "times-tables"), start(player_client, "times-tables")
    assert first["challenge"] != second["challenge"]
    for challenge in (first, second):
        assert {q["op"] for q in challenge["questions"]} == {"*"}
        assert all(2 <= q["a"] <= 10 and 2 <= q["b"] <= 10 for q in challenge["questions"])
    assert {q["op"] for q in start(player_client, "mixed-operations")["questions"]} <= set(OPS)


@pytest.mark.parametrize("slug", ["no-such-task", "%C2%9D"])
def test_a_challenge_of_an_unknown_task_is_404_json(player_client, slug):
    response = player_client.post(f"/api/tasks/{slug}/challenges/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown or inactive task."}


def test_a_challenge_needs_credentials(api_client):
    response = api_client.post(f"/api/tasks/{TASK}/challenges/")
    assert response.status_code == 401
    assert "detail" in response.json()


# --- an honest run ------------------------------------------------------------


def test_an_honest_run_is_accepted_with_its_evidence_and_applied_with_its_points(
        player, player_client, clock, table, run_consumer_once):
    challenge = start(player_client)
    clock.advance(honest_seconds())
    response = answer(player_client, challenge)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending" and body["verified_by"] == "challenge"
    item = store.client().get_item(TableName=table, Key=store.score_key(body["id"]))["Item"]
    assert item["verified_by"]["S"] == "challenge"
    assert int(item["elapsed_ms"]["N"]) == int(honest_seconds() * 1000)
    assert item["challenge_id"]["S"]
    assert item["player_id"]["S"] == str(player.pk)

    drain = run_consumer_once()
    assert drain.returncode == 0, drain.stderr[-3000:]
    applied = player_client.get(f"{SCORES}{body['id']}/").json()
    assert (applied["status"], applied["points"]) == ("applied", 10)
    assert store.totals_get_many(player_ids=[str(player.pk)])[str(player.pk)].total == 10


def test_a_repeated_challenge_answers_200_with_the_original_and_leaves_one_item(player_client, clock, item_count):
    challenge = start(player_client)
    clock.advance(min_seconds())
    first = answer(player_client, challenge)
    clock.advance(2)
    again = answer(player_client, challenge)
    with_key = answer(player_client, challenge, HTTP_IDEMPOTENCY_KEY="resend-1")
    assert first.status_code == 202, first.content
    assert again.status_code == with_key.status_code == 200
    assert again.json() == with_key.json() == first.json()
    assert item_count() == 1


def test_a_resend_after_the_challenge_expired_still_finds_the_original(player_client, clock, item_count):
    """A client whose answer was lost resends later: it learns the truth
    (counted), not a 410 that would make it think it was not."""
    challenge = start(player_client)
    clock.advance(min_seconds())
    first = answer(player_client, challenge, HTTP_IDEMPOTENCY_KEY="k")
    clock.advance(3600)
    again = answer(player_client, challenge, HTTP_IDEMPOTENCY_KEY="k")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    assert item_count() == 1


def test_a_challenge_keeps_the_terms_it_was_issued_with_when_staff_edit_its_task(player_client, clock):
    """The questions, their number and min_seconds travel in the token: an
    edit in admin applies to the challenges issued after it."""
    challenge = start(player_client)
    task = Task.objects.get(slug=TASK)
    task.ops, task.ranges = "*", {"factor": [50, 99]}
    task.save()
    task.difficulty.question_count, task.difficulty.min_seconds = 7, 600
    task.difficulty.save()
    clock.advance(challenge["min_seconds"])
    accepted = answer(player_client, challenge)
    assert accepted.status_code == 202, accepted.content
    fresh = start(player_client)
    assert (len(fresh["questions"]), fresh["min_seconds"]) == (7, 600)
    assert {q["op"] for q in fresh["questions"]} == {"*"}


def test_a_token_issued_before_terms_were_carried_is_checked_against_the_task_as_it_is(player_client, clock):
    from django.core import signing

    from scoring.challenge_tokens import SALT
    from scoring.selectors import task_cache_clear

    challenge = start(player_client)
    payload = signing.loads(challenge["challenge"], salt=SALT)
    del payload["q"]
    challenge["challenge"] = signing.dumps(payload, salt=SALT)
    clock.advance(min_seconds())
    assert answer(player_client, challenge).status_code == 202
    # Its questions are the task's as it is now: edited since, the old answers are wrong.
    stale = start(player_client)
    payload = signing.loads(stale["challenge"], salt=SALT)
    del payload["q"]
    stale["challenge"] = signing.dumps(payload, salt=SALT)
    Task.objects.filter(slug=TASK).update(ops="*", ranges={"factor": [50, 99]})
    task_cache_clear()
    clock.advance(min_seconds())
    refused = answer(player_client, stale)
    assert (refused.status_code, refused.json()["code"]) == (422, "wrong_answers")


def test_a_trusted_client_may_post_a_bare_task_and_is_named_on_the_item(trusted, player_client, table):
    response = player_client.post(SCORES, data=json.dumps({"task": TASK}), content_type="application/json")
    assert response.status_code == 202, response.content
    assert response.json()["verified_by"] == "trusted:ada"
    item = store.client().get_item(TableName=table, Key=store.score_key(response.json()["id"]))["Item"]
    assert item["verified_by"]["S"] == "trusted:ada"
    assert "challenge_id" not in item


def test_the_permission_is_one_the_admin_can_grant(admin_client, player):
    permission = Permission.objects.get(codename="submit_trusted", content_type__app_label="scoring")
    page = admin_client.get(f"/admin/auth/user/{player.pk}/change/")
    assert page.status_code == 200
    assert f'value="{permission.pk}"' in page.content.decode()


# --- refusals: each says what is wrong, and nothing is written ------------------


@pytest.fixture
def refused(item_count, db_writes):
    """Call with a request to make; checks that it wrote nothing anywhere."""

    def check(make_request):
        before = item_count()
        with db_writes() as sql:
            response = make_request()
        assert item_count() == before
        assert sql.writes == []
        return response

    return check


def assert_refused(response, status: int, code: str, *, says: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    assert says in body["detail"]
    return body


def test_a_tampered_token_is_400(player_client, clock, refused):
    challenge = start(player_client)
    clock.advance(min_seconds())
    token = challenge["challenge"]
    forged = {**challenge, "challenge": token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")}
    response = refused(lambda: answer(player_client, forged, answers_to(challenge)))
    assert_refused(response, 400, "challenge_invalid", says="not one this server issued")


@pytest.mark.parametrize("token", ["not-a-token", "x" * 512])
def test_a_malformed_token_is_400(player_client, refused, token):
    body = {"task": TASK, "challenge": token, "answers": [1, 2, 3]}
    response = refused(lambda: player_client.post(SCORES, data=json.dumps(body), content_type="application/json"))
    assert_refused(response, 400, "challenge_invalid", says="Invalid challenge")


def test_another_players_challenge_is_403(player_client, other_player, clock, refused):
    theirs = start(client_for(other_player))
    clock.advance(min_seconds())
    response = refused(lambda: answer(player_client, theirs))
    assert_refused(response, 403, "challenge_not_yours", says="another player")


def test_a_challenge_for_another_task_is_400(player_client, clock, refused):
    challenge = start(player_client)
    clock.advance(60)
    response = refused(lambda: answer(player_client, challenge, task="times-tables"))
    assert_refused(response, 400, "challenge_task_mismatch", says="'warm-up-sums', not 'times-tables'")


def test_an_expired_challenge_is_410(player_client, clock, refused):
    challenge = start(player_client)
    clock.advance(15 * 60 + 1)
    response = refused(lambda: answer(player_client, challenge))
    assert_refused(response, 410, "challenge_expired", says="start a new one")


def test_answering_faster_than_min_seconds_is_422(player_client, clock, refused):
    challenge = start(player_client)
    clock.advance(min_seconds() - 0.5)
    response = refused(lambda: answer(player_client, challenge))
    assert_refused(response, 422, "too_fast", says=f"; this challenge takes at least {min_seconds():g} s.")


def test_wrong_answers_are_422_naming_which(player_client, clock, refused):
    challenge = start(player_client)
    clock.advance(min_seconds())
    answers = answers_to(challenge)
    answers[1] += 1
    response = refused(lambda: answer(player_client, challenge, answers))
    body = assert_refused(response, 422, "wrong_answers", says="1 of 3 answers is wrong")
    assert body["wrong"] == [1]


def test_the_wrong_number_of_answers_is_422(player_client, clock, refused):
    challenge = start(player_client)
    clock.advance(min_seconds())
    response = refused(lambda: answer(player_client, challenge, answers_to(challenge)[:2]))
    body = assert_refused(response, 422, "wrong_answers", says="Expected 3 answers, got 2")
    assert body["wrong"] == [0, 1, 2]


def test_a_bare_task_from_a_player_is_403_play_the_challenge(player_client, refused):
    response = refused(lambda: player_client.post(SCORES, data=json.dumps({"task": TASK}),
                                                  content_type="application/json"))
    assert_refused(response, 403, "play_required", says="Play the challenge")


def test_the_checks_run_in_order(player_client, other_player, clock, refused):
    """Another player's challenge, for another task, expired and answered
    wrong: the first check that fails is the one reported."""
    theirs = start(client_for(other_player))
    clock.advance(3600)
    response = refused(lambda: answer(player_client, theirs, [0, 0, 0], task="times-tables"))
    assert_refused(response, 403, "challenge_not_yours", says="another player")


@pytest.mark.parametrize(("body", "field"), [
    ({"task": TASK, "challenge": "t"}, "answers"),
    ({"task": TASK, "answers": [1]}, "challenge"),
    ({"task": TASK, "challenge": "t", "answers": ["12"]}, "answers"),
    ({"task": TASK, "challenge": "t", "answers": [True]}, "answers"),
    ({"task": TASK, "challenge": "t", "answers": 12}, "answers"),
])
def test_a_malformed_played_submission_is_400_naming_the_field(player_client, refused, body, field):
    response = refused(lambda: player_client.post(SCORES, data=json.dumps(body), content_type="application/json"))
    assert response.status_code == 400
    errors = response.json()[field]
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)


def test_an_answer_counts_once_however_the_player_resends(player, player_client, clock, run_consumer_once):
    challenge = start(player_client)
    clock.advance(honest_seconds())
    ids = {answer(player_client, challenge).json()["id"] for _ in range(3)}
    assert len(ids) == 1
    assert run_consumer_once().returncode == 0
    stored = store.score_get(submission_id=ids.pop())
    assert stored.status is Status.APPLIED
    assert store.totals_get_many(player_ids=[str(player.pk)])[str(player.pk)].total == 10
