"""The JSON API. Views are thin: validate, call one service or selector, shape."""

import hashlib
import re

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from scoring import selectors, services, spectator, verification
from scoring.api_errors import LimitedFormParser, LimitedJSONParser
from scoring.domain import SUBMISSION_ID, utcnow
from scoring.serializers import (
    ActivityQuerySerializer,
    ActivitySerializer,
    ChallengeSerializer,
    LeaderboardEntrySerializer,
    LeaderboardHistoryQuerySerializer,
    LeaderboardHistorySerializer,
    LeaderboardMeQuerySerializer,
    LeaderboardMeSerializer,
    LeaderboardQuerySerializer,
    LedgerEntrySerializer,
    LedgerPageSerializer,
    PlayedSubmissionSerializer,
    SubmissionListQuerySerializer,
    SubmissionPageSerializer,
    SubmissionSerializer,
    TaskSerializer,
    TrustedSubmissionSerializer,
)
from scoring.throttling import CounterRateThrottle, CounterUserRateThrottle

# Printable ASCII without spaces, as Stripe and the IETF draft use. The
# schema states this very pattern and length, so both are written once here.
IDEMPOTENCY_KEY_MAX_LENGTH = 255
IDEMPOTENCY_KEY_PATTERN = rf"^[!-~]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

# DRF's error shapes, which api_errors keeps: {"detail": "..."}, or field
# errors {"<field>": ["...", ...]}. A refused play adds its `code` (and, for
# wrong answers, the indexes in `wrong`); a 503 on submit from the score
# store names the `submission_id` it tried.
ERROR = OpenApiResponse(
    response={
        "type": "object",
        "properties": {
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "wrong": {"type": "array", "items": {"type": "integer"}},
            "submission_id": {"type": "string"},
        },
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
    description="JSON error: `{\"detail\": ...}` (with a `code` when play is refused) or field errors.",
)

# What a refused play answers: the check that failed, in the order they run.
PLAY_REFUSAL_STATUS = {
    verification.ChallengeInvalid: status.HTTP_400_BAD_REQUEST,
    verification.ChallengeNotYours: status.HTTP_403_FORBIDDEN,
    verification.ChallengeTaskMismatch: status.HTTP_400_BAD_REQUEST,
    verification.ChallengeExpired: status.HTTP_410_GONE,
    verification.TooFast: status.HTTP_422_UNPROCESSABLE_ENTITY,
    verification.WrongAnswers: status.HTTP_422_UNPROCESSABLE_ENTITY,
    verification.PlayRequired: status.HTTP_403_FORBIDDEN,
}

SUBMISSION_REQUEST = PolymorphicProxySerializer(
    component_name="SubmissionCreate",
    serializers=[PlayedSubmissionSerializer, TrustedSubmissionSerializer],
    resource_type_field_name=None,
)
TRUSTED_PERMISSION = "scoring.submit_trusted"


class StrictSerializerSchema(OpenApiSerializerExtension):
    """A StrictSerializer refuses fields it does not declare: its schema says
    so (``additionalProperties: false``). Registered by being defined."""

    target_class = "scoring.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for an operation. 401 is on every one, those open to
    anyone too: a bad token is refused before the view runs. So is 406: the
    API answers JSON only, whatever the Accept header asks for. And 503:
    the database that holds tokens, sessions and the catalog may be
    unavailable (that one says when to retry, in Retry-After)."""
    return {code: ERROR for code in sorted({401, 406, 503, *statuses})}


class SubmissionRateThrottle(CounterUserRateThrottle):
    """Per-player submission rate, read from settings.SCORE_SUBMIT_RATE at
    request time (DRF's default reads its rates once, at import)."""

    scope = "submissions"

    def get_rate(self):
        return settings.SCORE_SUBMIT_RATE


def _player(request) -> tuple[str, str]:
    user = request.user
    return str(user.pk), user.get_full_name() or user.get_username()


class ChallengeRateThrottle(CounterUserRateThrottle):
    scope = "challenges"

    def get_rate(self):
        return settings.CHALLENGE_RATE


class ChallengeCreateView(APIView):
    throttle_classes = [ChallengeRateThrottle]

    @extend_schema(
        operation_id="challenges_create",
        request=None,
        responses={201: ChallengeSerializer, **_errors(403, 404, 429)},
        description="Start a challenge of an active task: its questions, and a signed token to send back "
        "with the answers to POST /api/scores/. Nothing is stored; the token is the challenge.",
    )
    def post(self, request, slug: str):
        task = selectors.task_get_active(slug=slug)
        if task is None:
            raise NotFound("Unknown or inactive task.")
        player_id, _ = _player(request)
        issued = verification.challenge_new(player_id=player_id, task=task, now=utcnow())
        return Response({
            "challenge": issued.token,
            "task": issued.task,
            "questions": [q.as_dict() for q in issued.questions],
            "issued_at": _iso(issued.issued_at),
            "expires_at": _iso(issued.expires_at),
            "min_seconds": issued.min_seconds,
        }, status=status.HTTP_201_CREATED)


def _iso(moment) -> str:
    return serializers.DateTimeField().to_representation(moment)


class ScoreListCreateView(APIView):
    def get_throttles(self):
        return [SubmissionRateThrottle()] if self.request.method == "POST" else []

    @extend_schema(
        operation_id="scores_create",
        request=SUBMISSION_REQUEST,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                type={"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH,
                      "pattern": IDEMPOTENCY_KEY_PATTERN},
                location=OpenApiParameter.HEADER,
                required=False,
                description="Retrying with the same key returns the original submission. "
                f"1-{IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters without spaces.",
            ),
            OpenApiParameter(
                "Location",
                location=OpenApiParameter.HEADER,
                required=True,
                response=[200, 202],
                description="The submission's URL (GET it for its status).",
            ),
        ],
        # 403: a browser's session without its CSRF token.
        responses={202: OpenApiResponse(SubmissionSerializer, description="Accepted: a new, pending submission."),
                   200: OpenApiResponse(SubmissionSerializer, description="A replay: the original submission."),
                   **_errors(400, 403, 410, 413, 415, 422, 429, 503)},
        description="Submit a task completion: a played challenge (`task`, `challenge`, `answers`), or, "
        "for a trusted game server with the permission `scoring.submit_trusted`, a bare `task`. "
        "Answers 202 with a pending submission; a repeat of the same challenge, or of the same "
        "Idempotency-Key, answers 200 with the original. Refused play: 400 (bad token, or another "
        "task's), 403 (another player's challenge, or a bare task from a player), 410 (expired), "
        "422 (faster than `min_seconds`, or wrong answers: `wrong` lists their indexes). "
        "A 503 from the score store names the `submission_id` it tried: GET it, or resend the same "
        "request. One from the database (before anything is written) names none: resend it.",
    )
    def post(self, request):
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise ValidationError({"Idempotency-Key": [
                f"Must be 1-{IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters without spaces."]})
        data = request.data
        played = isinstance(data, dict) and ("challenge" in data or "answers" in data)
        serializer = (PlayedSubmissionSerializer if played else TrustedSubmissionSerializer)(data=data)
        serializer.is_valid(raise_exception=True)
        player_id, player_name = _player(request)
        trusted_by = None
        if not played and request.user.has_perm(TRUSTED_PERMISSION):
            trusted_by = request.user.get_username()
        try:
            submission, created = services.submission_create(
                player_id=player_id,
                player_name=player_name,
                task_slug=serializer.validated_data["task"],
                idempotency_key=key,
                challenge=serializer.validated_data.get("challenge"),
                answers=serializer.validated_data.get("answers"),
                trusted_by=trusted_by,
            )
        except services.TaskNotAvailable:
            raise ValidationError({"task": ["Unknown or inactive task."]}) from None
        except verification.PlayRefused as exc:
            body = {"detail": exc.detail, "code": exc.code}
            if isinstance(exc, verification.WrongAnswers):
                body["wrong"] = exc.wrong
            return Response(body, status=PLAY_REFUSAL_STATUS[type(exc)])
        except services.IdempotencyConflict:
            return Response(
                {"detail": "This Idempotency-Key was already used for a different request."},
                status=status.HTTP_422_UNPROCESSABLE_ENTITY,
            )
        body = SubmissionSerializer(submission).data
        return Response(
            body,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
            headers={"Location": reverse("score-detail", args=[submission.id])},
        )

    @extend_schema(
        operation_id="scores_list",
        parameters=[SubmissionListQuerySerializer],
        responses={200: SubmissionPageSerializer, **_errors(400, 404, 503)},
        description="The caller's submissions, newest first. Follow `next` for more.",
    )
    def get(self, request):
        query = SubmissionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        player_id, _ = _player(request)
        try:
            items, next_cursor = selectors.submission_list(
                player_id=player_id, limit=query.validated_data["limit"], cursor=query.validated_data.get("cursor")
            )
        except selectors.InvalidCursor:
            raise NotFound("Invalid cursor.") from None
        return Response({"next": _next_url(request, next_cursor),
                         "results": SubmissionSerializer(items, many=True).data})


class LedgerView(APIView):
    @extend_schema(
        operation_id="ledger_list",
        parameters=[SubmissionListQuerySerializer],
        responses={200: LedgerPageSerializer, **_errors(400, 404, 503)},
        description="What the caller's total is made of, newest first: applied submissions, and the "
        "adjustments rules changes made. The entries sum to `total`; each says the `balance` after it. "
        "Follow `next` for more; a bad cursor is a 404.",
    )
    def get(self, request):
        query = SubmissionListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        player_id, _ = _player(request)
        try:
            entries, next_cursor, total = selectors.ledger_page(
                player_id=player_id, limit=query.validated_data["limit"], cursor=query.validated_data.get("cursor"))
        except selectors.InvalidCursor:
            raise NotFound("Invalid cursor.") from None
        return Response({"next": _next_url(request, next_cursor), "total": total,
                         "results": LedgerEntrySerializer(entries, many=True).data})


def _next_url(request, cursor: str | None) -> str | None:
    """This request's URL with ``cursor`` in place: a page's ``next``."""
    if not cursor:
        return None
    params = request.query_params.copy()
    params["cursor"] = cursor
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


class ScoreDetailView(APIView):
    @extend_schema(
        operation_id="scores_retrieve",
        responses={200: SubmissionSerializer, **_errors(404, 503)},
        description="One of the caller's submissions. Anyone else's is a 404.",
    )
    def get(self, request, submission_id: str):
        player_id, _ = _player(request)
        submission = None
        if SUBMISSION_ID.fullmatch(submission_id):
            submission = selectors.submission_get(player_id=player_id, submission_id=submission_id)
        if submission is None:
            raise NotFound("No such submission.")
        return Response(SubmissionSerializer(submission).data)


class TaskListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="tasks_list", responses={200: TaskSerializer(many=True), **_errors()})
    def get(self, request):
        return Response(TaskSerializer(selectors.task_list_active(), many=True).data)


class LeaderboardView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="leaderboard_retrieve",
        parameters=[LeaderboardQuerySerializer],
        responses={200: LeaderboardEntrySerializer(many=True), **_errors(400, 503)},
        description="The top players of a window (all time, this ISO week, today; UTC), best first. "
        "Ties go to whoever got there first.",
    )
    def get(self, request):
        query = LeaderboardQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            entries = selectors.leaderboard_top(window=query.validated_data["window"],
                                                limit=query.validated_data["limit"])
        except selectors.LeaderboardUnavailable:
            raise LeaderboardUnavailableError() from None
        return Response(LeaderboardEntrySerializer(entries, many=True).data)


class LeaderboardUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The live leaderboard is unavailable (Redis). Try again shortly."
    default_code = "leaderboard_unavailable"


class LeaderboardMeView(APIView):
    @extend_schema(
        operation_id="leaderboard_me",
        parameters=[LeaderboardMeQuerySerializer],
        responses={200: LeaderboardMeSerializer, **_errors(400, 503)},
        description="The caller's rank in a window and the players around them; `me` is null "
        "until the caller has points in that window.",
    )
    def get(self, request):
        query = LeaderboardMeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        window = query.validated_data["window"]
        player_id, _ = _player(request)
        try:
            me, near = selectors.leaderboard_around(window=window, player_id=player_id,
                                                    k=query.validated_data["around"])
        except selectors.LeaderboardUnavailable:
            raise LeaderboardUnavailableError() from None
        return Response({"window": window, "me": me, "around": near})


class LeaderboardHistoryView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="leaderboard_history",
        parameters=[LeaderboardHistoryQuerySerializer],
        responses={200: LeaderboardHistorySerializer, **_errors(400, 503)},
        description="The top players of a window (at most "
        f"{spectator.HISTORY_PLAYERS}) and each one's total over time, from their ledger: a point per "
        f"entry, oldest first, ending at the board's total. At most the newest {spectator.HISTORY_ENTRIES} "
        "entries a player; a player with more is `truncated`, their line starting from `base`.",
    )
    def get(self, request):
        query = LeaderboardHistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        window, limit = query.validated_data["window"], query.validated_data["limit"]
        # The same for every viewer, and up to ten ledger reads: computed at
        # most once every HISTORY_CACHE_SECONDS per window and size, however
        # many spectators open the page (a shared cache: Redis, as deployed).
        key = f"leaderboard-history:{window}:{limit}"
        body = cache.get(key)
        if body is None:
            try:
                since, series = spectator.leaderboard_history(window=window, players=limit)
            except selectors.LeaderboardUnavailable:
                raise LeaderboardUnavailableError() from None
            body = LeaderboardHistorySerializer({
                "window": window, "since": since, "entries_per_player": spectator.HISTORY_ENTRIES, "series": series,
            }).data
            cache.set(key, body, spectator.HISTORY_CACHE_SECONDS)
        return Response(body)


class ActivityUnavailableError(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The live activity is unavailable (Redis). Try again shortly."
    default_code = "activity_unavailable"


class ActivityView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="activity_retrieve",
        parameters=[ActivityQuerySerializer],
        responses={200: ActivitySerializer, **_errors(400, 503)},
        description="The latest applied completions (newest first) and how many were applied each "
        "minute of the last `minutes` (oldest first, this minute included), as the consumer records them.",
    )
    def get(self, request):
        query = ActivityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        try:
            overview = spectator.activity_overview(recent=query.validated_data["limit"],
                                                   minutes=query.validated_data["minutes"])
        except spectator.ActivityUnavailable:
            raise ActivityUnavailableError() from None
        return Response(ActivitySerializer(overview).data)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()


class LoginAddressRateThrottle(CounterRateThrottle):
    """Password guesses per client address, whatever the username: one
    address trying a common password on many accounts (spraying)."""

    scope = "login_address"

    def get_rate(self):
        return settings.LOGIN_IP_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginRateThrottle(CounterRateThrottle):
    """Password guesses per client address and username, for /api/token/."""

    scope = "login"

    def get_rate(self):
        return settings.LOGIN_RATE

    def get_cache_key(self, request, view):
        data = request.data if isinstance(request.data, dict) else {}  # a JSON list is a 400 later, not a 500
        # Hashed: a username may hold any character, a cache key may not.
        username = hashlib.sha256(str(data.get("username", "")).lower().encode()).hexdigest()[:16]
        return self.cache_format % {"scope": self.scope, "ident": f"{self.get_ident(request)}:{username}"}


class ThrottledObtainAuthToken(ObtainAuthToken):
    """DRF's token endpoint, rate limited like the login form, with the API's
    body limit (DRF's own parsers read whatever is sent)."""

    # As DRF's empty tuple, but drf-spectacular reads AllowAny as "no
    # credentials needed" and says so in the schema.
    permission_classes = [AllowAny]
    throttle_classes = [LoginAddressRateThrottle, LoginRateThrottle]
    parser_classes = [LimitedJSONParser, LimitedFormParser]

    @extend_schema(
        operation_id="token_create",
        # 400: a wrong username or password, or a malformed body;
        # 403: a browser's session without its CSRF token.
        responses={200: TokenResponseSerializer, **_errors(400, 403, 413, 415, 429)},
        description="Exchange a username and password for the API token to send as "
        "`Authorization: Token <token>`.",
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


# OpenAPI links, which drf-spectacular has no decorator for: (operationId,
# status) -> {link name: link}. They tell a client, and schemathesis's
# stateful tests, where the ids in a response lead.
LINKS = {
    ("scores_create", status_code): {
        "GetSubmission": {
            "operationId": "scores_retrieve",
            "parameters": {"submission_id": "$response.body#/id"},
            "description": "The submission just made (or, for a replay, the original).",
        }
    }
    for status_code in ("200", "202")
}


# Operations whose body is a oneOf of shapes: drf-spectacular marks a body
# required only from a serializer's own required fields.
REQUIRED_BODIES = {"scores_create"}


def schema_add_links(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS): adds LINKS
    to the responses they start from, and marks REQUIRED_BODIES required."""
    for operations in result["paths"].values():
        for operation in operations.values():
            if operation.get("operationId") in REQUIRED_BODIES and "requestBody" in operation:
                operation["requestBody"]["required"] = True
            for status_code, response in operation.get("responses", {}).items():
                links = LINKS.get((operation.get("operationId"), status_code))
                if links:
                    response["links"] = links
    return result
