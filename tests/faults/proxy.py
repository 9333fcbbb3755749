"""A DynamoDB-speaking HTTP proxy in front of the moto server, for injecting faults.

Real HTTP on both sides: the code under test talks to it exactly as to AWS.
Modes: ``pass`` forwards every call; ``down`` drops connections without an
answer (DynamoDB unreachable); ``throttle`` answers every call the way
DynamoDB does when over capacity (HTTP 400,
``ProvisionedThroughputExceededException``), which botocore retries.

In ``pass`` mode, ``lose_answers = N`` loses the answers of the next N
PutItem calls (X-Amz-Target ending in ``PutItem``): each is forwarded to
moto, so the write really happens, and then the connection is dropped
without an answer, as ``down`` does: an answer lost on its way back.
botocore retries such a call, and the retry meets the item it wrote. Other
calls pass. A lost answer is recorded (``counts``, ``calls``) as ``lost``.

``hold(match)`` stops the next call for which ``match(target, body)`` is
true before it reaches moto, until the test releases it: forwarded then,
or dropped without an answer (the caller was killed while it waited, and
the call never arrived). It pins a process at an exact point between two
DynamoDB calls, to kill it there or to change the world under it.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import urllib3

THROTTLED = json.dumps({
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded.",
}).encode()


# How long a held call waits for the test to release it before it is dropped.
HOLD_SECONDS = 120


class Hold:
    """A call held by the proxy: ``reached`` is set once it arrived."""

    def __init__(self, match):
        self.match = match
        self.reached = threading.Event()
        self._released = threading.Event()
        self._forward = True

    def release(self, *, forward: bool = True) -> None:
        self._forward = forward
        self._released.set()

    def wait_released(self, timeout: float) -> bool:
        """True if the call is to be forwarded."""
        return self._released.wait(timeout) and self._forward


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.counts = {"pass": 0, "down": 0, "throttle": 0, "lost": 0}
        self.lose_answers = 0
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, bytes]] = []  # (mode, X-Amz-Target, body)
        self._holds: list[Hold] = []  # not reached yet
        self._every_hold: list[Hold] = []
        self._http = urllib3.PoolManager(maxsize=32)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                with proxy._lock:
                    hold = next((h for h in proxy._holds if h.match(target, body)), None)
                    if hold is not None:
                        proxy._holds.remove(hold)
                if hold is not None:
                    hold.reached.set()
                    if not hold.wait_released(timeout=HOLD_SECONDS):
                        self.close_connection = True
                        self.connection.close()  # never forwarded, never answered
                        return
                with proxy._lock:  # one request thread at a time takes one of the lost answers
                    mode = proxy.mode
                    if mode == "pass" and proxy.lose_answers > 0 and target.endswith("PutItem"):
                        proxy.lose_answers -= 1
                        mode = "lost"
                    proxy.counts[mode] += 1
                    proxy.calls.append((mode, target, body))
                if mode == "down":
                    self.close_connection = True
                    self.connection.close()  # no answer at all
                    return
                if mode == "throttle":
                    self._answer(400, THROTTLED, "application/x-amz-json-1.0")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                upstream = proxy._http.request("POST", proxy.upstream + self.path, body=body, headers=headers,
                                               retries=False, timeout=30)
                if mode == "lost":
                    self.close_connection = True
                    self.connection.close()  # written upstream, but no answer comes back
                    return
                self._answer(upstream.status, upstream.data, upstream.headers.get("Content-Type", "application/json"))

            def _answer(self, status, data, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hold(self, match) -> Hold:
        """Hold the next call for which ``match(target, body)`` is true."""
        hold = Hold(match)
        with self._lock:
            self._holds.append(hold)
            self._every_hold.append(hold)
        return hold

    def close(self):
        with self._lock:
            for hold in self._every_hold:  # a call still held is dropped
                if not hold._released.is_set():
                    hold.release(forward=False)
        self.server.shutdown()
        self.server.server_close()
