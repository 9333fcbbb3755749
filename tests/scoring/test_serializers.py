"""The submit path's output serializer answers exactly what DRF's own would."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from rest_framework import serializers

from scoring.domain import Status, Submission
from scoring.serializers import PlainOutputSerializer, SubmissionSerializer

SUBMITTED = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)

SUBMISSIONS = [
    Submission(id="a1", player_id="1", player_name="ada", task="warm-up-sums", submitted_at=SUBMITTED),
    Submission(id="a2", player_id="1", player_name="ada", task="warm-up-sums", submitted_at=SUBMITTED,
               status=Status.APPLIED, points=10, processed_at=SUBMITTED + timedelta(seconds=2)),
    Submission(id="a3", player_id="1", player_name="ada", task="gone", submitted_at=SUBMITTED,
               status=Status.REJECTED, error="Unknown task: gone",
               processed_at=datetime(2026, 11, 27, 11, 0, tzinfo=timezone(timedelta(hours=2)))),
]


@pytest.mark.parametrize("submission", SUBMISSIONS, ids=lambda s: s.status.value)
def test_submission_output_equals_drf_generic_output(submission):
    fast = SubmissionSerializer(submission).data
    generic = serializers.Serializer.to_representation(SubmissionSerializer(submission), submission)
    assert dict(fast) == dict(generic)
    assert list(fast) == list(SubmissionSerializer().fields)


def test_many_uses_the_same_output():
    data = SubmissionSerializer(SUBMISSIONS, many=True).data
    assert [row["status"] for row in data] == ["pending", "applied", "rejected"]
    assert data[2]["processed_at"] == "2026-11-27T09:00:00Z"


def test_a_field_with_a_source_is_refused_when_the_class_is_made():
    with pytest.raises(TypeError, match="fields with a source are not supported: name"):
        class Renamed(PlainOutputSerializer):
            name = serializers.CharField(source="player_name")
