"""Every bad input gets a clear JSON error, and nothing is written anywhere."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from scoring.models import Task

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted")]

SCORES = "/api/scores/"


@pytest.fixture
def assert_nothing_written(item_count, db_writes):
    """Run a request and check it wrote to neither DynamoDB nor the database."""

    def check(request):
        before = item_count()
        with db_writes() as sql:
            response = request()
        assert item_count() == before, "a refused request wrote to DynamoDB"
        assert sql.writes == [], "a refused request wrote to the database"
        assert response["Content-Type"].startswith("application/json")
        return response

    return check


def post(client, raw: bytes | str, content_type="application/json", path=SCORES, **extra):
    return lambda: client.post(path, data=raw, content_type=content_type, **extra)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"task": "no-such-task"}, "task", "Unknown or inactive task."),
        ({}, "task", "This field is required."),
        ({"task": 123}, "task", "Enter a valid"),
        ({"task": None}, "task", "This field may not be null."),
        ({"task": ["warm-up-sums"]}, "task", "Enter a valid"),
        ({"task": "has spaces!"}, "task", "Enter a valid"),
        ({"task": "warm-up-sums", "points": 1000}, "points", "Unexpected field."),
        ([{"task": "warm-up-sums"}], "non_field_errors", "Expected a dictionary"),
    ],
)
def test_invalid_body_is_400_with_field_error(player_client, assert_nothing_written, body, field, message):
    response = assert_nothing_written(post(player_client, json.dumps(body)))
    assert response.status_code == 400
    assert message in response.json()[field][0]


def test_inactive_task_is_400(player_client, assert_nothing_written):
    Task.objects.filter(slug="warm-up-sums").update(active=False)
    response = assert_nothing_written(post(player_client, '{"task": "warm-up-sums"}'))
    assert response.status_code == 400
    assert response.json() == {"task": ["Unknown or inactive task."]}


@pytest.mark.parametrize("raw", ['{"task": ', "not json", " ", '{"task": "warm-up-sums"} trailing'])
def test_malformed_json_is_400(player_client, assert_nothing_written, raw):
    response = assert_nothing_written(post(player_client, raw))
    assert response.status_code == 400
    assert response.json()["detail"]


def test_empty_body_is_400_naming_the_missing_field(player_client, assert_nothing_written):
    response = assert_nothing_written(post(player_client, ""))
    assert response.status_code == 400
    assert response.json() == {"task": ["This field is required."]}


def test_oversized_body_is_413(player_client, assert_nothing_written, settings):
    raw = json.dumps({"task": "warm-up-sums", "pad": "x" * settings.SCORE_MAX_BODY_BYTES})
    response = assert_nothing_written(post(player_client, raw))
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


@pytest.mark.parametrize("path", [SCORES, "/api/token/"])
def test_deeply_nested_json_is_400_not_a_recursion_error(player_client, assert_nothing_written, path):
    # Within the size limit, deep enough to overflow the json module's recursion.
    response = assert_nothing_written(post(player_client, "[" * 2000 + "]" * 2000, path=path))
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


@pytest.mark.parametrize("path", [SCORES, "/api/token/"])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("size", [5000, 3_000_000])  # over SCORE_MAX_BODY_BYTES; over DATA_UPLOAD_MAX_MEMORY_SIZE
def test_oversized_body_is_413_on_every_endpoint(player_client, assert_nothing_written, path, content_type, size):
    raw = "username=ada&password=" + "x" * size
    response = assert_nothing_written(post(player_client, raw, content_type, path=path))
    if path == SCORES and content_type != "application/json":
        assert response.status_code == 415  # the media type is refused before the body is read
        return
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_token_refuses_multipart_with_415(api_client, assert_nothing_written):
    raw = "--xyz\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nada\r\n--xyz--\r\n"
    response = assert_nothing_written(post(api_client, raw, "multipart/form-data; boundary=xyz", path="/api/token/"))
    assert response.status_code == 415


def test_token_accepts_a_form_post_under_the_limit(api_client, player):
    response = api_client.post("/api/token/", "username=ada&password=pw-ada-123",
                               content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.json()["token"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(player_client, assert_nothing_written, content_type):
    response = assert_nothing_written(post(player_client, '{"task": "warm-up-sums"}', content_type))
    assert response.status_code == 415
    assert "Unsupported media type" in response.json()["detail"]


@pytest.mark.parametrize("auth", [None, "Token not-a-real-token", "Basic YWRhOnB3"])
def test_unauthenticated_is_401(assert_nothing_written, auth):
    client = APIClient()
    if auth:
        client.credentials(HTTP_AUTHORIZATION=auth)
    response = assert_nothing_written(post(client, '{"task": "warm-up-sums"}'))
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"]


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "caf\u00e9"])
def test_bad_idempotency_key_is_400(player_client, assert_nothing_written, key):
    response = assert_nothing_written(post(player_client, '{"task": "warm-up-sums"}', HTTP_IDEMPOTENCY_KEY=key))
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()


def test_throttled_player_gets_429_with_retry_after(player_client, assert_nothing_written, settings):
    from django.core.cache import cache

    cache.clear()
    settings.SCORE_SUBMIT_RATE = "2/hour"
    assert post(player_client, '{"task": "warm-up-sums"}')().status_code == 202
    assert post(player_client, '{"task": "warm-up-sums"}')().status_code == 202
    response = assert_nothing_written(post(player_client, '{"task": "warm-up-sums"}'))
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "throttled" in response.json()["detail"]
    cache.clear()


def test_dynamodb_unreachable_is_503_json(player_client, settings, db_writes):
    from tests.conftest import free_port

    settings.DYNAMODB_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    with db_writes() as sql:
        response = post(player_client, '{"task": "warm-up-sums"}')()
    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    assert "unavailable" in body["detail"]
    # The id it tried, which the client can GET (404 here: nothing was stored).
    assert body["submission_id"] in body["detail"]
    assert sql.writes == []


class ThrottlingDynamoDB(BaseHTTPRequestHandler):
    """Answers every call the way DynamoDB does when a table is over capacity."""

    calls = 0

    def do_POST(self):
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_dynamodb_throttling_is_503_after_bounded_retries(player_client, settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ThrottlingDynamoDB)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ThrottlingDynamoDB.calls = 0
        settings.DYNAMODB_ENDPOINT_URL = f"http://127.0.0.1:{server.server_port}"
        response = post(player_client, '{"task": "warm-up-sums"}')()
    finally:
        server.shutdown()
    assert response.status_code == 503
    assert "unavailable" in response.json()["detail"]
    assert ThrottlingDynamoDB.calls == settings.DYNAMODB_MAX_ATTEMPTS


def test_unexpected_error_is_500_json_without_traceback(player_client, monkeypatch):
    from scoring import services

    def boom(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "submission_create", boom)
    response = post(player_client, '{"task": "warm-up-sums"}')()
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}


@pytest.mark.parametrize("debug", [False, True])
def test_a_post_without_the_trailing_slash_is_a_json_404_saying_where_it_goes(
        player_client, assert_nothing_written, settings, debug):
    # Not a 301: a client following it would GET the submissions list (a
    # 200, the API's "already stored"); under DEBUG Django would raise.
    settings.DEBUG = debug
    response = assert_nothing_written(post(player_client, '{"task": "warm-up-sums"}', path="/api/scores"))
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found: /api/scores. API paths end with a slash: /api/scores/"}


def test_an_unknown_api_path_is_a_json_404(player_client):
    response = player_client.get("/api/nope/")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found: /api/nope/."}
    assert player_client.get("/play").status_code == 301  # pages keep Django's redirect to the slash


def test_a_chunked_body_is_411_not_read_as_empty(player_client, assert_nothing_written):
    response = assert_nothing_written(post(player_client, '{"task": "warm-up-sums"}', CONTENT_LENGTH="",
                                           HTTP_TRANSFER_ENCODING="chunked"))
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]


@pytest.mark.django_db
def test_a_file_posted_to_a_form_is_dropped_not_spooled_to_disk(client, settings, monkeypatch):
    """No view takes a file: under any server, a large file part of a form
    post must not become a temporary file on the web's disk."""
    from django.core.files import uploadedfile

    def spooled(*args, **kwargs):
        raise AssertionError("a file part was written to a temporary file")

    monkeypatch.setattr(uploadedfile.TemporaryUploadedFile, "__init__", spooled)
    big = uploadedfile.SimpleUploadedFile("big.bin", b"x" * (settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 1))
    response = client.post("/accounts/login/", {"username": "ada", "password": "wrong", "file": big})
    assert response.status_code == 200 and "correct username and password" in response.content.decode()
