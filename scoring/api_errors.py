"""Every API error is JSON: a 4xx saying what is wrong, or a 503/500 without a
stack trace. DRF's format is kept: ``{"detail": ...}`` or field errors."""

import logging
from io import BytesIO

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser
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


class LimitedJSONParser(JSONParser):
    """JSONParser that refuses bodies over settings.SCORE_MAX_BODY_BYTES.

    DRF reads the raw stream, bypassing Django's DATA_UPLOAD_MAX_MEMORY_SIZE,
    so the limit is enforced here, on the bytes actually read (a lying or
    absent Content-Length does not get past it).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.SCORE_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"Request body is {declared} bytes; the limit is {limit}.")
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise RequestTooLarge(f"Request body exceeds the limit of {limit} bytes.")
        if not body.strip():
            raise ParseError("Request body is empty; expected a JSON object.")
        return super().parse(BytesIO(body), media_type, parser_context)


def exception_handler(exc, context):
    if isinstance(exc, StoreUnavailable):
        logger.warning("DynamoDB unavailable: %s", exc)
        exc = ServiceUnavailable()
    response = drf_exception_handler(exc, context)
    if response is None:
        # Not an API error: a bug. Log it with its traceback; the client gets
        # JSON, never a stack trace.
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=exc)
        return Response({"detail": "Internal server error."}, status=500)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = str(RETRY_AFTER_UNAVAILABLE)
    return response
