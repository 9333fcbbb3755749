"""Every API error is JSON: a 4xx saying what is wrong, or a 503/500 without a
stack trace. DRF's format is kept: ``{"detail": ...}`` or field errors."""

import logging
from io import BytesIO

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from scoring.store import StoreUnavailable

logger = logging.getLogger(__name__)

RETRY_AFTER_UNAVAILABLE = 2


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "request_too_large"


class ServiceUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The score store is unavailable. Nothing was saved; retry shortly."
    default_code = "store_unavailable"


def _read_limited(stream, parser_context) -> bytes:
    """The body, or RequestTooLarge past settings.SCORE_MAX_BODY_BYTES.

    Checked on the bytes actually read, so a lying or absent Content-Length
    does not get past it. (DRF 3.18 hands JSON and form parsers a copy of
    ``request.body``, which Django caps at DATA_UPLOAD_MAX_MEMORY_SIZE: larger
    bodies become RequestDataTooBig, answered 413 by the exception handler.)
    """
    limit = settings.SCORE_MAX_BODY_BYTES
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    if declared and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request body is {declared} bytes; the limit is {limit}.")
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise RequestTooLarge(f"Request body exceeds the limit of {limit} bytes.")
    return body


class LimitedJSONParser(JSONParser):
    """JSONParser that refuses bodies over settings.SCORE_MAX_BODY_BYTES, and
    JSON nested too deeply for the json module (a RecursionError, not a
    ValueError, so DRF would let it through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = _read_limited(stream, parser_context)
        if not body.strip():
            raise ParseError("Request body is empty; expected a JSON object.")
        try:
            return super().parse(BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class LimitedFormParser(FormParser):
    """FormParser with the same body limit, for /api/token/ (DRF's token
    endpoint takes form posts as well as JSON)."""

    def parse(self, stream, media_type=None, parser_context=None):
        return super().parse(BytesIO(_read_limited(stream, parser_context)), media_type, parser_context)


def exception_handler(exc, context):
    tried = getattr(exc, "submission_id", None)  # services.SubmissionUnconfirmed
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge(f"Request body exceeds the limit of {settings.SCORE_MAX_BODY_BYTES} bytes.")
    elif isinstance(exc, StoreUnavailable):
        logger.warning("DynamoDB unavailable: %s", exc)
        exc = ServiceUnavailable(UNCONFIRMED.format(id=tried) if tried else None)
    elif isinstance(exc, OperationalError | InterfaceError):
        # The database gone (connection refused or lost, locked, missing a
        # table): an outage to retry, as DynamoDB's is. The traceback is
        # logged all the same: on SQLite a missing migration or an SQL bug is
        # an OperationalError too. The connection is dropped, so the next
        # request opens a new one (one opened during the outage may never
        # work again).
        logger.warning("Database unavailable: %r", exc, exc_info=exc)
        connections.close_all()
        exc = ServiceUnavailable("The database is unavailable; try again shortly.")
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API error: a bug. Log it with its traceback; the client gets
        # JSON, never a stack trace.
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response({"detail": "Internal server error."}, status=500)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
        if tried:
            response.data["submission_id"] = tried
    return response


# A write DynamoDB did not confirm may have been stored: say so, and how to
# find out, rather than "nothing was saved".
UNCONFIRMED = ("The score store is unavailable and did not confirm submission {id}: it may or may not be "
               "saved. GET /api/scores/{id}/ to see, or resend the same request with the same challenge or "
               "the same Idempotency-Key, which cannot count it twice.")
