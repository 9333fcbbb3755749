"""Plain serializers: validate input, shape output. Scores live in DynamoDB,
so only the task catalog uses a ModelSerializer."""

from rest_framework import serializers

from scoring import spectator
from scoring.domain import WINDOWS
from scoring.models import MAX_QUESTIONS, Task


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare, naming them, instead of ignoring them."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unexpected field."] for name in unknown})
        return super().to_internal_value(data)


class StrictSlugField(serializers.SlugField):
    """A slug that must arrive as a JSON string; DRF would accept 123 as "123"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TrustedSubmissionSerializer(StrictSerializer):
    """A completion a trusted game server verified itself (the caller needs
    the permission ``scoring.submit_trusted``; a player is refused, 403)."""

    task = StrictSlugField(max_length=64, help_text="Slug of an active task.")


class StrictIntegerField(serializers.IntegerField):
    """An integer that must arrive as a JSON number; DRF would take "12"."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class FlatListField(serializers.ListField):
    """A ListField whose item errors are a list of strings ("Item 2: ..."),
    the API's field-error shape, not DRF's {index: [...]}."""

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as exc:
            detail = exc.detail
            if not isinstance(detail, dict):
                raise
            raise serializers.ValidationError(
                [f"Item {i}: {' '.join(map(str, errors))}" for i, errors in detail.items()]) from None


# Signed tokens are ~250 characters, more for a task with wide ranges
# (scoring/challenge_tokens.py).
CHALLENGE_TOKEN_MAX_LENGTH = 1024


class PlayedSubmissionSerializer(StrictSerializer):
    """A completion of a server-issued challenge: its token and the answers."""

    task = StrictSlugField(max_length=64, help_text="Slug of the challenge's task.")
    challenge = serializers.CharField(max_length=CHALLENGE_TOKEN_MAX_LENGTH, trim_whitespace=False,
                                      help_text="The `challenge` token from POST /api/tasks/{slug}/challenges/.")
    answers = FlatListField(child=StrictIntegerField(min_value=-(10**12), max_value=10**12),
                                    max_length=MAX_QUESTIONS, help_text="One answer per question, in order.")


class PlainOutputSerializer(serializers.Serializer):
    """Output of an object's plain attributes, each formatted by its declared
    field, without DRF's deep copy of every field for every instance.

    That copy is most of a small serializer's cost (~0.2 ms for
    SubmissionSerializer, on every POST /api/scores/). Fields may not have a
    ``source``; a test holds the output equal to DRF's own.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        sourced = sorted(name for name, field in cls._declared_fields.items() if field.source not in (None, name))
        if sourced:
            raise TypeError(f"{cls.__name__}: fields with a source are not supported: {', '.join(sourced)}")

    def to_representation(self, instance):
        out = {}
        for name, field in self._declared_fields.items():
            value = getattr(instance, name)
            out[name] = None if value is None else field.to_representation(value)
        return out


class SubmissionSerializer(PlainOutputSerializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "applied", "rejected", "held"],
                                     help_text="`held`: under staff review before it counts.")
    task = serializers.CharField()
    submitted_at = serializers.DateTimeField()
    points = serializers.IntegerField(allow_null=True, required=False, help_text="Set once applied.")
    error = serializers.CharField(allow_null=True, required=False, help_text="Set once rejected.")
    processed_at = serializers.DateTimeField(allow_null=True, required=False)
    hold_reason = serializers.CharField(allow_null=True, required=False,
                                        help_text="Why it was held for review, if it was.")
    verified_by = serializers.CharField(allow_null=True, required=False,
                                        help_text='"challenge", or "trusted:<username>" for a trusted client.')
    retry_of = serializers.CharField(allow_null=True, required=False,
                                     help_text="For a rejected submission staff sent through again: the "
                                               "original's id (the original stays rejected, for the record).")


class QuestionSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    op = serializers.ChoiceField(choices=["+", "-", "*", "/"])
    b = serializers.IntegerField()
    text = serializers.CharField(help_text="As a person reads it, e.g. `12 × 7`.")


class ChallengeSerializer(serializers.Serializer):
    challenge = serializers.CharField(help_text="Opaque signed token: send it back with the answers.")
    task = serializers.CharField()
    questions = QuestionSerializer(many=True)
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    min_seconds = serializers.FloatField(help_text="Answers sent sooner after issue are refused (422).")


class SubmissionPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    results = SubmissionSerializer(many=True)


class QuerySerializer(StrictSerializer):
    """Query parameters. An empty one (``?limit=``) is refused, not taken as
    absent, as DRF would for an optional field: the schema says a value is
    at least one character, and ``?cursor=`` is a client bug worth naming."""

    def to_internal_value(self, data):
        getlist = getattr(data, "getlist", None)
        empty = sorted(
            name for name in self.fields
            if name in data and "" in (getlist(name) if getlist else [data[name]])
        )
        if empty:
            raise serializers.ValidationError({name: ["This parameter may not be empty."] for name in empty})
        return super().to_internal_value(data)


# A `next` cursor is signed with django.core.signing (selectors.submission_list):
# URL-safe base64, with ":" between its parts and "." in front when compressed.
CURSOR_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class SubmissionListQuerySerializer(QuerySerializer):
    # Whitespace is not trimmed: it is not in a cursor, so it is a 400 as the
    # schema's pattern says.
    cursor = serializers.RegexField(CURSOR_PATTERN, required=False, max_length=2048, trim_whitespace=False,
                                    help_text="From a page's `next`; opaque.")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)


class LeaderboardQuerySerializer(QuerySerializer):
    window = serializers.ChoiceField(choices=WINDOWS, default="all", required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=10)


class LeaderboardMeQuerySerializer(QuerySerializer):
    window = serializers.ChoiceField(choices=WINDOWS, default="all", required=False)
    around = serializers.IntegerField(required=False, min_value=0, max_value=50, default=2)


class LeaderboardEntrySerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    player_id = serializers.CharField()
    player = serializers.CharField()
    total = serializers.IntegerField()


class LeaderboardMeSerializer(serializers.Serializer):
    window = serializers.CharField()
    me = LeaderboardEntrySerializer(allow_null=True)
    around = LeaderboardEntrySerializer(many=True)


class TaskSerializer(serializers.ModelSerializer):
    difficulty = serializers.CharField(source="difficulty.name")
    points = serializers.IntegerField(source="difficulty.points")

    class Meta:
        model = Task
        fields = ["slug", "title", "description", "difficulty", "points"]


class LedgerEntrySerializer(PlainOutputSerializer):
    kind = serializers.ChoiceField(choices=["submission", "adjustment"],
                                   help_text="`submission`: an applied submission; `adjustment`: what a "
                                   "retroactive rules change did to the total.")
    id = serializers.CharField()
    points = serializers.IntegerField(help_text="What it added to the total (an adjustment's delta; may be negative).")
    balance = serializers.IntegerField(help_text="The total just after it.")
    applied_at = serializers.DateTimeField(allow_null=True)
    rules_version = serializers.IntegerField(help_text="The rules version it was scored under (0: the first rules).")
    rank = serializers.IntegerField(allow_null=True, help_text="The all-time rank just after it, when known.")
    task = serializers.CharField(allow_null=True, help_text="submission: the task's slug.")
    task_title = serializers.CharField(allow_null=True)
    difficulty = serializers.CharField(allow_null=True, help_text="submission: the task's difficulty under its "
                                       "rules version.")
    submitted_at = serializers.DateTimeField(help_text="When the task was played, or the adjustment made: the "
                                             "ledger's order.")
    rules_change = serializers.IntegerField(allow_null=True, help_text="adjustment: the rules change's id.")
    summary = serializers.CharField(allow_null=True, help_text='adjustment: e.g. "Hard 50 → 60".')
    reason = serializers.CharField(allow_null=True, help_text="adjustment: why, as the admin gave it.")


class LedgerPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    total = serializers.IntegerField(help_text="What the whole ledger sums to: the player's total.")
    results = LedgerEntrySerializer(many=True)


# --- the spectator dashboard (scoring.spectator) ------------------------------

class LeaderboardHistoryQuerySerializer(QuerySerializer):
    window = serializers.ChoiceField(choices=WINDOWS, default="all", required=False)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=spectator.HISTORY_PLAYERS,
                                     default=spectator.HISTORY_PLAYERS, help_text="How many of the top players.")


class HistoryPointSerializer(PlainOutputSerializer):
    at = serializers.DateTimeField(help_text="When the ledger entry was played (or the adjustment made).")
    total = serializers.IntegerField(help_text="The player's total in the window just after it.")


class HistorySeriesSerializer(PlainOutputSerializer):
    player_id = serializers.CharField()
    player = serializers.CharField()
    rank = serializers.IntegerField()
    total = serializers.IntegerField(help_text="On the board now: the last point's total.")
    base = serializers.IntegerField(help_text="The total before the first point: 0 unless `truncated`.")
    truncated = serializers.BooleanField(help_text=f"The player has more than the newest "
                                         f"{spectator.HISTORY_ENTRIES} entries in the window; older ones are "
                                         "left out.")
    points = HistoryPointSerializer(many=True, help_text="Oldest first.")


class LeaderboardHistorySerializer(serializers.Serializer):
    window = serializers.ChoiceField(choices=WINDOWS)
    since = serializers.DateTimeField(allow_null=True, help_text="When the window's period began (UTC); null "
                                      "for all time.")
    entries_per_player = serializers.IntegerField(help_text="The most ledger entries read per player.")
    series = HistorySeriesSerializer(many=True, help_text="Best first.")


class ActivityQuerySerializer(QuerySerializer):
    limit = serializers.IntegerField(required=False, min_value=1, max_value=spectator.ACTIVITY_RECENT_MAX,
                                     default=20, help_text="How many recent completions.")
    minutes = serializers.IntegerField(required=False, min_value=1, max_value=spectator.ACTIVITY_MINUTES_MAX,
                                       default=30, help_text="How many minutes of counts, this one included.")


class ActivityItemSerializer(serializers.Serializer):
    player_id = serializers.CharField()
    player = serializers.CharField()
    task = serializers.CharField()
    task_title = serializers.CharField()
    points = serializers.IntegerField()
    at = serializers.DateTimeField(help_text="When it was played.")


class ActivityMinuteSerializer(serializers.Serializer):
    minute = serializers.DateTimeField(help_text="The minute's start (UTC).")
    count = serializers.IntegerField(help_text="Completions applied in it.")


class ActivitySerializer(serializers.Serializer):
    recent = ActivityItemSerializer(many=True, help_text="Applied completions, newest first.")
    per_minute = ActivityMinuteSerializer(many=True, help_text="Oldest first.")
