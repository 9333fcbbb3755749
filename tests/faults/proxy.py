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
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import urllib3

THROTTLED = json.dumps({
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "message": "The level of configured provisioned throughput for the table was exceeded.",
}).encode()


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.counts = {"pass": 0, "down": 0, "throttle": 0, "lost": 0}
        self.lose_answers = 0
        self._lock = threading.Lock()
        self.calls: list[tuple[str, str, bytes]] = []  # (mode, X-Amz-Target, body)
        self._http = urllib3.PoolManager(maxsize=32)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
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

    def close(self):
        self.server.shutdown()
        self.server.server_close()
