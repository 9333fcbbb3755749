"""A cap on request bodies under ASGI, before Django reads them.

Django's ASGI handler reads a request's whole body (into a temporary file
past FILE_UPLOAD_MAX_MEMORY_SIZE) before any middleware, authentication or
view runs, and uvicorn sets no limit of its own: an anonymous client could
fill the disk with a few large POSTs to any path. The WSGI handler
(gunicorn) reads a body only when a view asks for it, and then Django's
DATA_UPLOAD_MAX_MEMORY_SIZE caps its fields while FILE_UPLOAD_HANDLERS = []
drops any file part unstored; a body still costs its upload there, so cap
bodies at the load balancer or proxy as well. Nothing here takes a body
larger than Django's own limit for reading one (DATA_UPLOAD_MAX_MEMORY_SIZE);
the API's tighter limit (SCORE_MAX_BODY_BYTES) still applies after it.
"""

import json

from django.conf import settings


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: a 413 for an HTTP body over the limit, declared
    (Content-Length) or streamed (counted as it arrives), without reading
    the rest of it."""

    def __init__(self, app, limit: int | None = None):
        self.app = app
        self.limit = limit if limit is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.limit is None:
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(send)
        received = 0
        started = False

        async def receive_counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def send_tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_tracked)
        except _TooLarge:
            if not started:  # Django reads the body before it answers, so it has not
                await self._refuse(send)

    async def _refuse(self, send):
        body = json.dumps({"detail": f"Request body is too large: the limit is {self.limit} bytes."}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
