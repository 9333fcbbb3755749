"""Benchmark: fan-out of one leaderboard update to many websocket clients.

N clients (default 1,000) hold a socket on /ws/leaderboard/ to the real ASGI
server (uvicorn by default, or daphne), spread evenly over ``--servers``
processes on ports of their own. Updates are sent to their group through the
real Redis channel layer (the pub/sub layer by default, or channels_redis's
list-based "core" layer), as consume_scores sends them. The clock starts
just before each group_send and stops when a client has read the whole
frame. Prints the delivery latency p50/p95/p99/max over all deliveries, and
how many (socket, update) pairs never arrived within 10 s of the last send,
and the CPU seconds the web processes and the client processes spent while
the updates were sent.

Baseline, side by side in the same run on the same servers: the same
updates delivered to a single client (the per-message floor of the path).

The clients run in several processes (``--client-procs``), so that reading
10,000 sockets is not the bottleneck being measured. Each is a minimal
websocket client on uvloop: it answers pings, reads frames, and finds the
update's seq in the text without parsing the JSON; it offers no compression
(the servers are run without it, as deployed). Targets: p99 <= 100 ms for
1,000 clients on one server process, <= 1 s for more (10,000 on two), with
nothing missing.

    python bench/fanout.py
    python bench/fanout.py --clients 10000 --servers 2
    python bench/fanout.py --server daphne --layer core
    python bench/fanout.py --smoke [--servers 2]
"""

import argparse
import asyncio
import base64
import math
import multiprocessing
import os
import platform
import queue
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._stack import ASGI_SERVERS, live_stack, quantiles  # noqa: E402

FIRST_SEQ = 10_000
SEQ_FIELD = b'"seq": '


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


class Socket(asyncio.Protocol):
    """One websocket client: the handshake, then unmasked server frames.
    Records (seq, time read) for every delta that carries a seq."""

    def __init__(self, path: str, host: str, origin: str, client: "Clients"):
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode()
        self.client = client
        self.buffer = b""
        self.upgraded = False
        self.snapshot = False
        self.fragments: list[bytes] = []
        self.seen: set[int] = set()
        self.transport = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(exc)

    def data_received(self, data: bytes):
        now = time.time()
        buffer = self.buffer + data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self.transport.close()
                raise RuntimeError(f"handshake refused: {buffer[:200]!r}")
            self.upgraded, buffer = True, buffer[end + 4:]
        start = 0
        while len(buffer) - start >= 2:
            first, length = buffer[start], buffer[start + 1] & 0x7F
            header = 2
            if length == 126:
                if len(buffer) - start < 4:
                    break
                length, header = int.from_bytes(buffer[start + 2:start + 4], "big"), 4
            elif length == 127:
                if len(buffer) - start < 10:
                    break
                length, header = int.from_bytes(buffer[start + 2:start + 10], "big"), 10
            if len(buffer) - start < header + length:
                break
            payload = buffer[start + header:start + header + length]
            start += header + length
            self.frame(first, payload, now)
        self.buffer = buffer[start:]

    def frame(self, first: int, payload: bytes, now: float):
        opcode = first & 0x0F
        if opcode == 0x9:  # ping: answer with a masked pong, or the server closes the socket
            mask = os.urandom(4)
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask
                                 + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
            return
        if opcode == 0x8:
            self.transport.close()
            return
        if opcode not in (0x0, 0x1):
            return
        self.fragments.append(payload)
        if not first & 0x80:  # more fragments follow
            return
        text = b"".join(self.fragments) if len(self.fragments) > 1 else payload
        self.fragments = []
        if not self.snapshot:
            self.snapshot = True
            self.client.ready(self)
            return
        at = text.find(SEQ_FIELD)
        if at >= 0:
            end = at + len(SEQ_FIELD)
            stop = text.find(b",", end)
            seq = int(text[end:stop])
            if seq >= FIRST_SEQ and seq not in self.seen:
                self.seen.add(seq)
                self.client.received(seq, now)


class Clients:
    """The sockets of one client process."""

    def __init__(self, expected: int):
        self.expected = expected
        self.sockets: list[Socket] = []
        self.snapshots = 0
        self.all_ready = asyncio.Event()
        self.deliveries: list[tuple[int, float]] = []
        self.all_received = asyncio.Event()

    def ready(self, socket):
        self.snapshots += 1
        if self.snapshots == self.target:
            self.all_ready.set()

    def received(self, seq, now):
        self.deliveries.append((seq, now))
        if len(self.deliveries) == self.target * self.expected:
            self.all_received.set()

    async def open(self, urls: list[str], *, rate: float):
        """Connect to ``urls`` in turn, about ``rate`` sockets a second."""
        loop = asyncio.get_running_loop()
        self.target = len(urls)
        started = time.monotonic()
        for i, url in enumerate(urls):
            parts = urlparse(url)
            origin = f"http://{parts.hostname}:{parts.port}"

            def factory(parts=parts, origin=origin):
                return Socket(f"{parts.path}?{parts.query}", parts.netloc, origin, self)

            for attempt in range(5):
                try:
                    _, socket = await loop.create_connection(factory, parts.hostname, parts.port)
                    break
                except OSError:  # a full accept backlog: try again shortly
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5)
            self.sockets.append(socket)
            await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))


def client_process(urls: list[str], updates: int, rate: float, events: multiprocessing.Queue,
                   stop: multiprocessing.Event) -> None:
    """Hold ``urls``' sockets: report ready, then the deliveries, once all
    arrived or once told to stop."""
    import uvloop

    async def main():
        clients = Clients(updates)
        await clients.open(urls, rate=rate)
        try:
            await asyncio.wait_for(clients.all_ready.wait(), timeout=120)
        except TimeoutError:
            closed = sum(socket.closed.done() for socket in clients.sockets)
            events.put(("failed", f"{clients.snapshots} of {len(urls)} snapshots after 120 s; {closed} closed"))
            return
        events.put(("ready", len(urls)))
        started = resource.getrusage(resource.RUSAGE_SELF)
        loop = asyncio.get_running_loop()
        stopping = loop.run_in_executor(None, stop.wait)
        received = asyncio.ensure_future(clients.all_received.wait())
        await asyncio.wait([stopping, received], return_when=asyncio.FIRST_COMPLETED)
        missing = len(urls) * updates - len(clients.deliveries)
        closed = sum(socket.closed.done() for socket in clients.sockets)
        used = resource.getrusage(resource.RUSAGE_SELF)
        cpu = used.ru_utime + used.ru_stime - started.ru_utime - started.ru_stime
        events.put(("done", clients.deliveries, missing, closed, cpu))
        await stopping
        for socket in clients.sockets:
            socket.transport.close()

    uvloop.run(main())


def channel_layer(kind: str, redis_url: str):
    """The layer the servers use (gameapp/settings/base.py), built the same way."""
    host = {"address": redis_url, "socket_timeout": 15.0, "socket_connect_timeout": 5}
    if kind == "pubsub":
        from gameapp.channel_layer import RedisPubSubChannelLayer

        return RedisPubSubChannelLayer(hosts=[host])
    from channels_redis.core import RedisChannelLayer

    return RedisChannelLayer(hosts=[host])


def cpu_seconds(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def measure(stack, *, clients: int, updates: int, gap: float, layer: str, procs: int, rate: float) -> dict:
    """Open ``clients`` sockets over the stack's servers from ``procs``
    processes, send ``updates``, and collect what arrived."""
    ctx = multiprocessing.get_context("spawn")
    events, stop = ctx.Queue(), ctx.Event()
    urls = [f"{stack.ws_urls[i % len(stack.ws_urls)]}/ws/leaderboard/?window=all" for i in range(clients)]
    procs = max(1, min(procs, clients))
    workers = [ctx.Process(target=client_process, args=(urls[i::procs], updates, rate / procs, events, stop))
               for i in range(procs)]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            event = events.get(timeout=clients / rate + 180)
            if event[0] != "ready":
                raise RuntimeError(f"a client process failed: {event[1]}")
        web_cpu = cpu_seconds(stack.pids["web"])
        sent = asyncio.run(send_updates(stack.redis_url, layer=layer, updates=updates, gap=gap))
        deadline = time.monotonic() + 10
        results = []
        while len(results) < len(workers):
            try:
                event = events.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                stop.set()
                continue
            results.append(event)
        web_cpu = cpu_seconds(stack.pids["web"]) - web_cpu
        stop.set()
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    latencies = [at - sent[seq] for _, deliveries, *_ in results for seq, at in deliveries]
    return {"clients": clients, "latencies": latencies, "missing": sum(r[2] for r in results),
            "closed": sum(r[3] for r in results), "web_cpu": web_cpu, "client_cpu": sum(r[4] for r in results)}


async def send_updates(redis_url: str, *, layer: str, updates: int, gap: float) -> dict[int, float]:
    channel_layer_ = channel_layer(layer, redis_url)
    sent = {}
    top = [{"rank": r, "player_id": str(r), "player": f"Player {r}", "total": 1000 - r} for r in range(1, 11)]
    # One update before the clock runs, which the clients do not count: the
    # first send would also time the sender's connection, and the servers'
    # first delivery their first use of the path.
    for i in range(-1, updates):
        seq = FIRST_SEQ + i
        sent[seq] = time.time()
        await channel_layer_.group_send("leaderboard.all", {
            "type": "leaderboard.delta", "window": "all", "seq": seq, "changes": [], "joined": [], "left": [],
            "top": top, "pipeline": {"lag_ms": 120, "as_of": "2026-01-01T00:00:00Z"}, "sent_at": sent[seq]})
        await asyncio.sleep(gap)
    await channel_layer_.flush()
    return sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=1, help="ASGI server processes, a port each")
    parser.add_argument("--server", choices=ASGI_SERVERS, default="uvicorn")
    parser.add_argument("--layer", choices=["pubsub", "core"], default="pubsub", help="CHANNEL_LAYER")
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between updates")
    parser.add_argument("--client-procs", type=int, default=None,
                        help="client processes (default: one per 2,500 sockets, at least 2)")
    parser.add_argument("--connect-rate", type=float, default=500.0, help="new sockets a second, all processes")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.updates, args.gap = 20 * args.servers, 3, 0.3
    procs = args.client_procs or max(2, math.ceil(args.clients / 2500))
    target_ms = 100 if args.clients <= 1000 else 1000
    limit = raise_fd_limit()  # before the servers start: they inherit it
    load_before = os.getloadavg()
    with live_stack(players=1, server=args.server, servers=args.servers, consumer=False,
                    extra_env={"CHANNEL_LAYER": args.layer}) as stack:
        runs = [measure(stack, clients=clients, updates=args.updates, gap=args.gap, layer=args.layer, procs=p,
                        rate=args.connect_rate)
                for clients, p in ((1, 1), (args.clients, procs))]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"open-file limit {limit}; load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{args.updates} updates, {args.gap:g} s apart, through Redis ({args.layer} layer) and {args.servers} "
          f"{args.server} process(es); {procs} client processes")
    print(f"{'clients':>8} {'deliveries':>10} {'missing':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
          f"{'web CPU s':>9} {'client CPU s':>12}")
    for run in runs:
        q = quantiles(run["latencies"]) if len(run["latencies"]) > 1 else {k: math.nan for k in
                                                                          ("p50", "p95", "p99", "max")}
        print(f"{run['clients']:>8} {len(run['latencies']):>10} {run['missing']:>8} {q['p50']:>7.1f} "
              f"{q['p95']:>7.1f} {q['p99']:>7.1f} {q['max']:>7.1f} {run['web_cpu']:>9.2f} {run['client_cpu']:>12.2f}")
    single, many = (quantiles(run["latencies"])["p99"] for run in runs)
    closed = runs[1]["closed"]
    met = many <= target_ms and runs[1]["missing"] == 0
    print(f"sockets closed by the server: {closed}")
    print(f"ratio p99 {args.clients} clients / 1 client: {many / single:.1f}; target p99 <= {target_ms} ms with "
          f"nothing missing: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
