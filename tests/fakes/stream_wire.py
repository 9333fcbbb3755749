"""The wire shapes of the fake streams client (tests/fakes/streams.py): what
boto3's ``dynamodbstreams`` client returns and raises, apart from the records.

* Errors are ClientError subclasses, one per error code, reachable both as
  ``except ClientError`` and as ``except client.exceptions.<Code>``.
* Shard iterators are opaque strings; a malformed one is a ValidationException.
* Sequence numbers are strings of 21 digits or more; every response carries
  ``ResponseMetadata``.
"""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any, NoReturn

from botocore.exceptions import ClientError

# The errors DescribeStream, GetShardIterator and GetRecords can return, plus ValidationException.
ERROR_CODES = (
    "ExpiredIteratorException",
    "InternalServerError",
    "LimitExceededException",
    "ResourceNotFoundException",
    "TrimmedDataAccessException",
    "ValidationException",
)
_ITERATOR_PREFIX = "fakeiter:"


class Exceptions:
    """Like ``client.exceptions``: one ClientError subclass per error code."""

    def __init__(self) -> None:
        for code in ERROR_CODES:
            setattr(self, code, type(code, (ClientError,), {}))

    def throw(self, op: str, code: str, message: str) -> NoReturn:
        """Raise ``code`` as botocore does for a failed ``op``."""
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": metadata(400)}
        raise getattr(self, code)(error, op)


def iterator_encode(arn: str, shard_id: str, position: int, issued_at: float) -> str:
    # The nonce keeps two iterators for the same position distinct, as on AWS.
    payload = {"a": arn, "s": shard_id, "p": position, "t": issued_at, "n": secrets.token_hex(2)}
    return _ITERATOR_PREFIX + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def iterator_decode(iterator: Any) -> tuple[str, str, int, float] | None:
    """(stream ARN, shard id, position, issue time), or None if malformed."""
    try:
        if not isinstance(iterator, str) or not iterator.startswith(_ITERATOR_PREFIX):
            return None
        payload = json.loads(base64.urlsafe_b64decode(iterator[len(_ITERATOR_PREFIX) :].encode()))
        arn, shard_id, position, issued_at = payload["a"], payload["s"], payload["p"], payload["t"]
        if not (isinstance(arn, str) and isinstance(shard_id, str) and isinstance(position, int)):
            return None
        return arn, shard_id, position, float(issued_at)
    except (ValueError, KeyError, TypeError):
        return None


def seq_format(seq: int) -> str:
    return f"{seq:021d}"


def metadata(status: int = 200) -> dict:
    request_id = secrets.token_hex(16).upper()
    return {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0}
