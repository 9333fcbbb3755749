"""A body too large for any endpoint is refused by the web server before
Django reads it (gameapp/bodylimit.py): Django's ASGI handler would spool it
whole, to disk past a few megabytes, before anything else looked at it.
Against uvicorn, over a raw socket, as a client that does not stop sending
unless answered."""

import select
import socket
import time
from urllib.parse import urlsplit

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

CHUNK = b"x" * 65536


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def answered(sock: socket.socket) -> bytes:
    """What the server has sent so far, without waiting."""
    readable, _, _ = select.select([sock], [], [], 0)
    return sock.recv(65536) if readable else b""


def send_until_answered(sock: socket.socket, head: bytes, frame, most: int) -> tuple[bytes, int]:
    """Send ``head``, then ``CHUNK`` after ``CHUNK`` (each as ``frame(CHUNK)``
    puts it on the wire) until the server answers, or ``most`` bytes of body
    went unanswered; the answer, and the body bytes sent."""
    sock.sendall(head)
    sent = 0
    while sent < most:
        reply = answered(sock)
        if reply:
            return reply + rest_of(sock), sent
        try:
            sock.sendall(frame(CHUNK))
        except (BrokenPipeError, ConnectionResetError):
            break  # closed after its answer: read it below
        sent += len(CHUNK)
    return rest_of(sock), sent


def rest_of(sock: socket.socket) -> bytes:
    """Whatever the server sends until it closes the connection (it closes
    after a 413), within a deadline."""
    received = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        try:
            data = sock.recv(65536) if readable else b""
        except ConnectionResetError:  # closed with our unread body in its buffer: a reset
            break
        if readable and not data:
            break
        received += data
    return received


def test_a_declared_body_over_the_limit_is_refused_unread(web_server):
    web = web_server()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    with connect(web) as sock:
        # The head alone: a server that waited for the body would never answer.
        sock.sendall((f"POST /api/scores/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {100 * limit}\r\n\r\n").encode())
        reply = rest_of(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b'"detail": "Request body is too large: the limit is %d bytes."' % limit in reply


def test_a_streamed_body_over_the_limit_is_refused_once_it_passes_the_limit(web_server):
    web = web_server()
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    with connect(web) as sock:
        head = b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        reply, sent = send_until_answered(sock, head, lambda chunk: b"%x\r\n%s\r\n" % (len(chunk), chunk),
                                          most=20 * limit)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert limit < sent < 20 * limit


def test_a_body_under_the_limit_still_reaches_django(web_server):
    web = web_server()
    with connect(web) as sock:
        body = b"{" + b" " * 100_000 + b"}"
        sock.sendall(b"POST /api/scores/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reply = sock.recv(65536)
    # Django answered (the API's own limit and its authentication come after the server's).
    assert reply.startswith((b"HTTP/1.1 401", b"HTTP/1.1 403", b"HTTP/1.1 413")), reply[:200]
    assert b"the limit is %d bytes" % settings.DATA_UPLOAD_MAX_MEMORY_SIZE not in reply
