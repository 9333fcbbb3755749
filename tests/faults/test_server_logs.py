"""LOG_FORMAT=json covers the web server's own lines too: uvicorn's start-up
and access lines come out as JSON objects like Django's, and a request for
an unknown host is a 400 for the client, not an error with a traceback in
the log."""

import json
from pathlib import Path

import pytest
import urllib3

from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def test_json_logs_hold_the_servers_lines_and_no_bad_host_tracebacks(web_server, tmp_path):
    web = web_server(LOG_FORMAT="json")
    http = urllib3.PoolManager()
    assert http.request("GET", f"{web}/healthz").status == 200
    assert http.request("GET", f"{web}/api/tasks/", headers={"Host": "scanner.example"}).status == 400
    log = next(Path(tmp_path).glob("web-*.log"))

    def records():
        lines = [line for line in log.read_text().splitlines() if line.strip()]
        parsed = [json.loads(line) for line in lines]  # every line: a JSON object, or this fails
        return parsed if sum(r.get("logger") == "uvicorn.access" for r in parsed) >= 2 else None

    logged = wait_until(records, timeout=10, interval=0.1, message=lambda: log.read_text()[-2000:])
    assert any(r["logger"] == "uvicorn.error" and "Application startup" in r["message"] or
               r["logger"] == "uvicorn.error" and "Uvicorn running" in r["message"] for r in logged), logged
    assert not any("DisallowedHost" in json.dumps(r) or "Traceback" in json.dumps(r) for r in logged), logged
