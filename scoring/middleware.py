"""The API's side of Django's common middleware (its own module: the
middleware loads before DRF's settings, which import scoring.api_errors)."""

from django.http import JsonResponse
from django.middleware.common import CommonMiddleware
from django.urls import Resolver404, resolve


class ApiCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, with the API's errors as JSON:

    - No trailing-slash redirect under ``/api/``: a 301 turns a client's
      POST into a GET (of the submissions list, a 200), and under DEBUG
      Django raises instead. The 404 says where the slash goes.
    - A 404 from URL resolution under ``/api/`` is JSON, as DRF's own are.
    - A body sent chunked (no Content-Length) is refused with a 411: Django
      reads a body of Content-Length bytes, so it would see none and answer
      "This field is required.", which misleads.
    """

    def process_request(self, request):
        if (_is_api(request) and request.method in ("POST", "PUT", "PATCH") and not request.META.get("CONTENT_LENGTH")
                and "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()):
            return JsonResponse({"detail": "Send the request body with a Content-Length header: chunked bodies "
                                           "are not read."}, status=411)
        return super().process_request(request)

    def should_redirect_with_slash(self, request):
        return not _is_api(request) and super().should_redirect_with_slash(request)

    def process_response(self, request, response):
        response = super().process_response(request, response)
        if (response.status_code == 404 and _is_api(request)
                and not response.get("Content-Type", "").startswith("application/json")):
            detail = f"Not found: {request.path}."
            if not request.path.endswith("/") and _resolves(request.path_info + "/"):
                detail += f" API paths end with a slash: {request.path}/"
            return JsonResponse({"detail": detail}, status=404)
        return response


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def _resolves(path: str) -> bool:
    try:
        resolve(path)
    except Resolver404:
        return False
    return True
