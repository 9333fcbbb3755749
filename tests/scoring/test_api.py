"""The score API against a real moto server: what it writes and what it refuses."""

import json

import pytest

from scoring import store
from scoring.domain import PlayerTotal
from scoring.models import Task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("table", "trusted")]

SCORES = "/api/scores/"


def submit(client, body=None, **extra):
    return client.post(SCORES, data=json.dumps(body if body is not None else {"task": "warm-up-sums"}),
                       content_type="application/json", **extra)


def test_submit_returns_202_and_writes_exactly_one_item(player_client, item_count, db_writes):
    before = item_count()
    with db_writes() as sql:
        response = submit(player_client)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["task"] == "warm-up-sums"
    assert set(body) >= {"id", "status", "task", "submitted_at"}
    assert item_count() == before + 1
    # The relational database is only read on this path: token and task lookups.
    assert sql.writes == []
    assert len(sql.captured_queries) >= 1


def test_submitted_item_is_a_pending_score_item(player, player_client, table):
    submission_id = submit(player_client).json()["id"]
    item = store.client().get_item(TableName=table, Key=store.score_key(submission_id))["Item"]
    assert item["PK"]["S"] == f"SCORE#{submission_id}"
    assert item["status"]["S"] == "pending"
    assert item["player_id"]["S"] == str(player.pk)
    assert item["player_name"]["S"] == "Ada"


def test_retry_with_same_idempotency_key_returns_original_and_writes_nothing(player_client, item_count):
    first = submit(player_client, HTTP_IDEMPOTENCY_KEY="attempt-1")
    count = item_count()
    retry = submit(player_client, HTTP_IDEMPOTENCY_KEY="attempt-1")
    assert first.status_code == 202
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert item_count() == count


def test_same_idempotency_key_from_two_players_are_two_submissions(player_client, other_player, item_count):
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    other_player.user_permissions.add(Permission.objects.get(codename="submit_trusted"))
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_player).key}")
    a = submit(player_client, HTTP_IDEMPOTENCY_KEY="k")
    b = submit(other, HTTP_IDEMPOTENCY_KEY="k")
    assert a.status_code == b.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert item_count() == 2


def test_reused_idempotency_key_for_another_task_is_refused(player_client, item_count):
    submit(player_client, HTTP_IDEMPOTENCY_KEY="k1")
    response = submit(player_client, {"task": "times-tables"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["detail"]
    assert item_count() == 1


def test_owner_reads_submission_with_status(player_client):
    created = submit(player_client).json()
    response = player_client.get(f"{SCORES}{created['id']}/")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["points"] is None


def test_applied_submission_shows_points(player_client, table):
    created = submit(player_client).json()
    store.client().update_item(
        TableName=table, Key=store.score_key(created["id"]),
        UpdateExpression="SET #s = :s, points = :p",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "applied"}, ":p": {"N": "10"}},
    )
    body = player_client.get(f"{SCORES}{created['id']}/").json()
    assert (body["status"], body["points"]) == ("applied", 10)


@pytest.mark.parametrize("reader", ["other", "anonymous"])
def test_someone_elses_submission_is_not_visible(player_client, other_player, api_client, reader):
    created = submit(player_client).json()
    if reader == "other":
        api_client.force_authenticate(other_player)
        expected = 404
    else:
        expected = 401
    response = api_client.get(f"{SCORES}{created['id']}/")
    assert response.status_code == expected
    assert "detail" in response.json()


def test_a_review_or_an_adjustment_is_not_one_of_the_players_submissions(player, player_client):
    """The SCORE items that are not the player's submissions are 404 here,
    as the list leaves them out: the ledger shows adjustments."""
    from dataclasses import replace

    from scoring.domain import Review, adjustment_id, review_id, utcnow

    played = store.score_get(submission_id=submit(player_client).json()["id"])
    review = replace(played, id=review_id(played.id), review_of=played.id, review=Review.APPROVE, reviewed_by="staff",
                     reviewed_at=utcnow())
    adjustment = replace(played, id=adjustment_id(rules_change=1, player_id=played.player_id), task="",
                         rules_change=1, rescore={"warm-up-sums": 12}, summary="Easy re-scored 10 → 12")
    store.score_put(submission=review)
    store.adjustment_put(adjustment=adjustment)
    assert player_client.get(f"{SCORES}{played.id}/").status_code == 200
    for other in (review, adjustment):
        response = player_client.get(f"{SCORES}{other.id}/")
        assert (response.status_code, response.json()) == (404, {"detail": "No such submission."})


def test_a_retry_staff_made_names_the_rejected_original(player, player_client):
    from scoring import processing
    from scoring.domain import utcnow
    from tests.records import stream_record

    original = store.score_get(submission_id=submit(player_client).json()["id"])
    processing.records_process([stream_record(original)], points_for=lambda task: None)  # unknown: rejected
    retry = store.score_retry(submission_id=original.id, now=utcnow())
    listed = {s["id"]: s for s in player_client.get(SCORES).json()["results"]}
    assert listed[retry.id]["retry_of"] == original.id
    assert (listed[original.id]["status"], listed[original.id]["retry_of"]) == ("rejected", None)


@pytest.mark.parametrize("submission_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "x" * 300])
def test_unknown_submission_is_404(player_client, table, submission_id):
    response = player_client.get(f"{SCORES}{submission_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No such submission."}


def test_list_is_newest_first_and_cursor_paginated(player_client, other_player, api_client):
    ids = [submit(player_client).json()["id"] for _ in range(5)]
    api_client.force_authenticate(other_player)
    submit(api_client)
    seen, url = [], f"{SCORES}?limit=2"
    while url:
        page = player_client.get(url).json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        url = page["next"]
    assert seen == list(reversed(ids))


def test_list_refuses_a_tampered_or_foreign_cursor(player_client, other_player, api_client):
    for _ in range(3):
        submit(player_client)
    next_url = player_client.get(f"{SCORES}?limit=1").json()["next"]
    cursor = next_url.split("cursor=")[1].split("&")[0]
    assert player_client.get(f"{SCORES}?cursor={cursor}x").status_code == 404
    api_client.force_authenticate(other_player)
    response = api_client.get(f"{SCORES}?cursor={cursor}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor."}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "bogus=1"])
def test_list_refuses_bad_query(player_client, table, query):
    response = player_client.get(f"{SCORES}?{query}")
    assert response.status_code == 400
    assert response.json()


@pytest.mark.parametrize(("path", "name"), [
    (SCORES, "cursor"), (SCORES, "limit"),
    ("/api/leaderboard/", "window"), ("/api/leaderboard/", "limit"),
    ("/api/leaderboard/me/", "window"), ("/api/leaderboard/me/", "around"),
])
def test_an_empty_query_parameter_is_400_naming_it(player_client, table, path, name):
    # DRF would take `?limit=` for no limit at all; the schema says a value
    # is at least one character.
    response = player_client.get(f"{path}?{name}=")
    assert response.status_code == 400
    assert response.json() == {name: ["This parameter may not be empty."]}


@pytest.mark.parametrize("cursor", ["%20abc", "abc%00", "not/a+cursor"])
def test_a_cursor_with_characters_no_cursor_has_is_400(player_client, table, cursor):
    response = player_client.get(f"{SCORES}?cursor={cursor}")
    assert response.status_code == 400
    assert "cursor" in response.json()


def test_tasks_lists_active_tasks_with_points(api_client):
    Task.objects.filter(slug="big-products").update(active=False)
    tasks = {t["slug"]: t for t in api_client.get("/api/tasks/").json()}
    assert "big-products" not in tasks
    assert tasks["warm-up-sums"]["points"] == 10
    assert tasks["warm-up-sums"]["difficulty"] == "Easy"


def test_leaderboard_is_empty_until_totals_exist(api_client, table):
    assert api_client.get("/api/leaderboard/").json() == []


def test_leaderboard_without_redis_reads_dynamodb_in_order_of_total_then_who_got_there_first(api_client, table):
    for player_id, name, total, reached in [("1", "late", 50, 2_000), ("2", "early", 50, 1_000),
                                            ("3", "low", 10, 500), ("4", "top", 900, 3_000)]:
        store.total_put_if_version(total=PlayerTotal(player_id=player_id, player_name=name, total=total, version=1,
                                                     reached_at_ms=reached), expected_version=0)
    body = api_client.get("/api/leaderboard/?limit=3").json()
    assert body == [
        {"rank": 1, "player_id": "4", "player": "top", "total": 900},
        {"rank": 2, "player_id": "2", "player": "early", "total": 50},
        {"rank": 3, "player_id": "1", "player": "late", "total": 50},
    ]


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
def test_leaderboard_refuses_bad_limit(api_client, table, limit):
    response = api_client.get(f"/api/leaderboard/?limit={limit}")
    assert response.status_code == 400
    assert "limit" in response.json()


def test_token_endpoint_returns_a_token_that_authenticates(api_client, player, table):
    response = api_client.post("/api/token/", {"username": "ada", "password": "pw-ada-123"}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert submit(api_client).status_code == 202


def test_token_endpoint_refuses_wrong_password(api_client, player):
    response = api_client.post("/api/token/", {"username": "ada", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_session_authenticated_browser_can_submit_with_csrf_token(player, table):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(player)
    refused = browser.post(SCORES, data='{"task": "warm-up-sums"}', content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    browser.get("/accounts/login/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    accepted = browser.post(SCORES, data='{"task": "warm-up-sums"}', content_type="application/json",
                            HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 202


def test_schema_and_docs_are_served(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/scores/" in schema.json()["paths"]
    assert api_client.get("/api/docs/").status_code == 200


@pytest.mark.parametrize("field", ["player_id", "player", "user"])
def test_a_player_can_only_submit_as_themselves(player, player_client, other_player, item_count, table, field):
    response = submit(player_client, {"task": "warm-up-sums", field: str(other_player.pk)})
    assert response.status_code == 400
    assert response.json() == {field: ["Unexpected field."]}
    assert item_count() == 0
    created = submit(player_client).json()
    item = store.client().get_item(TableName=table, Key=store.score_key(created["id"]))["Item"]
    assert item["player_id"]["S"] == str(player.pk)
