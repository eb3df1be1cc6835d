"""Subscription fan-out on a running server: N WebSocket subscribers to one feed, one
phase move at a time.

    python -m bench.fanout --url http://127.0.0.1:8000 --token TOKEN --server-pid PID \\
        --subscribers 10000 [--events 5] [--batch 200] [--json out.json]

Opens N graphql-transport-ws connections from this one process (in batches), each
subscribed to opportunityPhaseChanged with the same document; reads the server's RSS
(/proc/PID/status) before connecting and once all are subscribed and idle: KB per idle
subscription. Then moves an open opportunity between two open phases over HTTP, one
event at a time: each subscriber's receive time after the mutation was sent gives p50
and p99 delivery, and the server's CPU from the mutation until the last delivery gives
CPU ms per event: the process's CPU clock (clock_getcpuclockid, in nanoseconds) for the
total, utime and stime (/proc/PID/stat, in 10 ms clock ticks) for its split. The first
move warms up and checks that every subscriber is in; the figures are of the others.

Then the kernel's floor under those figures (bench/sendfloor.py): the CPU of one send()
of a frame of the size the subscribers received on each of N loopback sockets whose
peers read in another process, with nothing else around it; our CPU per event is also
given as a ratio of it (`--no-floor` leaves it out).

The server must run on this machine (its /proc is read); `ulimit -n` must allow N
sockets on both ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench import sendfloor

FEED = """subscription Board { opportunityPhaseChanged {
  eventId kind changedAt amountDelta toPhase { name } fromPhase { name } changedBy { name }
  opportunity { name amount phase { name } owner { name } }
} }"""
FIND = """query { opportunities(first: 1, filter: {outcome: {eq: OPEN}}) { nodes {
  id version phase { id } pipeline { phases { id outcome } } } } }"""
MOVE = """mutation($input: MoveOpportunityPhaseInput!) { moveOpportunityPhase(input: $input) {
  opportunity { version } userErrors { code message } } }"""
TICKS = os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_ms(pid: int) -> tuple[float, float]:
    """User and system CPU ms the process has used, in clock ticks (10 ms)."""
    # Fields after the command name, which may hold spaces: utime and stime are 14, 15.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) * 1000 / TICKS, int(fields[12]) * 1000 / TICKS


class CpuClock:
    """The CPU ms a process has used, user and system together, read from its CPU-time
    clock (clock_getcpuclockid): to the nanosecond, where /proc's ticks count 10 ms
    steps, and an event's 100 ms would be read as 90, 100 or 110 by where the ticks
    fell. On a system without that clock, the ticks' sum."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        clock = ctypes.c_int()
        libc = ctypes.CDLL(None)
        found = libc.clock_getcpuclockid(pid, ctypes.byref(clock)) == 0
        self.clock: int | None = clock.value if found else None

    def ms(self) -> float:
        if self.clock is None:
            return sum(cpu_ms(self.pid))
        return time.clock_gettime(self.clock) * 1000


class TimedConnection(ClientConnection):
    """A connection that notes when bytes reach it: when the event loop hands them
    over, before they are parsed and the subscriber's reader is woken.

    All N subscribers are read by this one process. Timed in the reader, an event's
    delivery to the last of them included this process's parsing and waking of the
    N - 1 before it (the client's CPU per event, 340-500 ms for 10,000): a queue of
    ours, not the server's.
    """

    arrived = 0.0

    def data_received(self, data: bytes) -> None:
        self.arrived = time.perf_counter()
        super().data_received(data)


class Subscriber:
    """One connection and the times its `next` messages arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.arrivals: list[float] = []
        self.errors: list[str] = []
        self.frame_bytes = 0  # the last `next` message's frame, header included
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for message in self.ws:
                # The last bytes this connection received: those of this message, the
                # only one in flight while an event is delivered (a ping that comes
                # right after it can only make the delivery later).
                now = self.ws.arrived  # type: ignore[attr-defined]
                text = message if isinstance(message, str) else message.decode()
                if '"type":"next"' in text:
                    if '"errors"' in text:
                        self.errors.append(text[:500])
                    self.arrivals.append(now)
                    self.frame_bytes = frame_size(len(text.encode()))
                elif '"type":"ping"' in text:
                    await self.ws.send('{"type":"pong"}')
                elif '"type":"error"' in text or '"type":"complete"' in text:
                    self.errors.append(text[:500])


async def subscribe(ws_url: str, token: str) -> Subscriber:
    ws = await connect(ws_url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                       ping_interval=None, max_size=2**20, open_timeout=60,
                       create_connection=TimedConnection)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"not acknowledged: {ack}")
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": FEED}}))
    return Subscriber(ws)


async def graphql(http: httpx.AsyncClient, query: str,
                  variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}})
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise RuntimeError(f"{response.status_code}: {body}")
    return dict(body["data"])


class Mover:
    """Moves one open opportunity between two open phases of its pipeline."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.id = ""
        self.version = 0
        self.phases: list[str] = []
        self.at = 0

    async def find(self) -> None:
        nodes = (await graphql(self.http, FIND))["opportunities"]["nodes"]
        if not nodes:
            raise RuntimeError("no open opportunity to move: seed the database")
        node = nodes[0]
        self.id, self.version = node["id"], node["version"]
        current = node["phase"]["id"]
        others = [p["id"] for p in node["pipeline"]["phases"]
                  if p["outcome"] == "OPEN" and p["id"] != current]
        if not others:
            raise RuntimeError("the opportunity's pipeline has one open phase only")
        self.phases = [others[0], current]

    async def move(self) -> None:
        phase = self.phases[self.at % 2]
        self.at += 1
        payload = (await graphql(self.http, MOVE, {"input": {
            "id": self.id, "phaseId": phase, "expectedVersion": self.version}}
        ))["moveOpportunityPhase"]
        if payload["userErrors"]:
            raise RuntimeError(f"the move was refused: {payload['userErrors']}")
        self.version = payload["opportunity"]["version"]


async def one_event(subscribers: list[Subscriber], mover: Mover, clock: CpuClock,
                    within: float) -> tuple[list[float], float, tuple[float, float], float]:
    """Delivery times (ms after the mutation was sent) of the subscribers that got the
    event within ``within`` seconds, the server CPU ms it took (in all; then user and
    system, in ticks), and this client's CPU ms meanwhile: all subscribers read in one
    process, so past some point the delivery times are this process's, not the
    server's."""
    pid = clock.pid
    counts = [len(s.arrivals) for s in subscribers]
    total_before, cpu_before = clock.ms(), cpu_ms(pid)
    client_before = time.process_time()
    sent = time.perf_counter()
    await mover.move()
    deadline = sent + within
    while time.perf_counter() < deadline:
        if all(len(s.arrivals) > n for s, n in zip(subscribers, counts, strict=True)):
            break
        await asyncio.sleep(0.005)
    total, cpu_after = clock.ms() - total_before, cpu_ms(pid)
    client = (time.process_time() - client_before) * 1000
    cpu = (cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1])
    delays = [(s.arrivals[n] - sent) * 1000 for s, n in zip(subscribers, counts, strict=True)
              if len(s.arrivals) > n]
    return delays, total, cpu, client


def frame_size(payload: int) -> int:
    """A server's WebSocket frame of a ``payload``-byte message, its header included."""
    return payload + (2 if payload < 126 else 4 if payload < 2**16 else 10)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ws_url = args.url.replace("http://", "ws://").replace("https://", "wss://") + "/graphql"
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=60) as http:
        mover = Mover(http)
        await mover.find()
        await asyncio.sleep(1)
        rss_before = rss_kb(args.server_pid)
        subscribers: list[Subscriber] = []
        started = time.perf_counter()
        for first in range(0, args.subscribers, args.batch):
            size = min(args.batch, args.subscribers - first)
            subscribers += await asyncio.gather(
                *(subscribe(ws_url, args.token) for _ in range(size)))
        connect_seconds = time.perf_counter() - started
        print(f"{len(subscribers)} subscribed in {connect_seconds:.1f} s", file=sys.stderr)
        await asyncio.sleep(args.settle)  # the last subscribes finish joining
        rss_idle = rss_kb(args.server_pid)
        # N connections are a few million objects of this process: a collection of the
        # oldest generation walking them all during an event (hundreds of ms) would be
        # timed as the server's delivery. They stay out of the collector's view.
        gc.collect()
        gc.freeze()

        clock = CpuClock(args.server_pid)
        warm, _, _, _ = await one_event(subscribers, mover, clock, args.timeout)
        if len(warm) < len(subscribers):
            print(f"warm-up: {len(warm)} of {len(subscribers)} received", file=sys.stderr)
        delays: list[float] = []
        cpus: list[float] = []
        user: list[float] = []
        system: list[float] = []
        received: list[int] = []
        clients: list[float] = []
        idle: list[float] = []
        for _ in range(args.events):
            idle_before, idle_from = clock.ms(), time.perf_counter()
            await asyncio.sleep(args.pause)
            idle.append((clock.ms() - idle_before) / (time.perf_counter() - idle_from))
            event_delays, total, cpu, client = await one_event(subscribers, mover, clock,
                                                               args.timeout)
            delays += event_delays
            cpus.append(total)
            clients.append(client)
            user.append(cpu[0])
            system.append(cpu[1])
            received.append(len(event_delays))
            print(f"event: {len(event_delays)} received, p50 "
                  f"{percentile(event_delays, 0.5):.0f} ms, p99 "
                  f"{percentile(event_delays, 0.99):.0f} ms, server CPU {total:.1f} ms "
                  f"({cpu[1]:.0f} ms system), client CPU {client:.0f} ms", file=sys.stderr)
        errors = [e for s in subscribers for e in s.errors]
        for subscriber in subscribers:
            subscriber.reader.cancel()
        await asyncio.gather(*(s.ws.close() for s in subscribers), return_exceptions=True)
    return {
        "subscribers": len(subscribers),
        "received": min(received) if received else 0,
        "events": args.events,
        "delivery_p50_ms": round(percentile(delays, 0.5), 1),
        "delivery_p99_ms": round(percentile(delays, 0.99), 1),
        "server_cpu_ms_per_event": round(statistics.median(cpus), 1) if cpus else None,
        "server_cpu_ms_per_event_each": [round(c, 1) for c in cpus],
        "server_user_cpu_ms_per_event": round(statistics.median(user), 1) if user else None,
        # In the kernel: one send() per socket, on loopback the receiver's side too.
        "server_system_cpu_ms_per_event": round(statistics.median(system), 1) if system else None,
        # The server's CPU per second between events (pings and pongs of N sockets), which
        # the CPU per event also holds for as long as the event takes to reach everyone.
        "server_idle_cpu_ms_per_s": round(statistics.median(idle), 1) if idle else None,
        "frame_bytes": max((s.frame_bytes for s in subscribers), default=0),
        # This process's CPU over the same time: the receiving side of the figures.
        "client_cpu_ms_per_event": round(statistics.median(clients), 1) if clients else None,
        "memory_kb_per_idle_subscription": round(
            (rss_idle - rss_before) / max(1, len(subscribers)), 2),
        "server_rss_kb_before": rss_before,
        "server_rss_kb_idle": rss_idle,
        "connect_seconds": round(connect_seconds, 1),
        "errors": errors[:5],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="a bearer token (an admin's)")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--batch", type=int, default=200, help="connections opened at once")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds to wait after the last subscribe")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between events")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds an event may take to reach everyone")
    parser.add_argument("--floor-repeats", type=int, default=5,
                        help="rounds of the send floor (bench/sendfloor.py); the median")
    parser.add_argument("--no-floor", action="store_true",
                        help="leave out the send floor")
    parser.add_argument("--json", type=Path, help="write the figures here")
    return parser.parse_args(argv)


def with_floor(figures: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    """``figures`` with the send floor's beside the server's CPU per event."""
    ours = figures["server_cpu_ms_per_event"]
    beside = {
        "floor_cpu_ms_per_event": floor["cpu_ms"],
        "floor_user_cpu_ms_per_event": floor["user_cpu_ms"],
        "floor_system_cpu_ms_per_event": floor["system_cpu_ms"],
        "cpu_over_floor": round(ours / floor["cpu_ms"], 2)
        if ours is not None and floor["cpu_ms"] > 0 else None,
    }
    out: dict[str, Any] = {}
    for name, value in figures.items():
        out[name] = value
        if name == "server_system_cpu_ms_per_event":
            out.update(beside)
    out["send_floor"] = floor
    return out


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.subscribers + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.subscribers + 1000), hard))
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        figures = asyncio.run(main(args))
    else:
        figures = uvloop.run(main(args))
    if not args.no_floor and figures["subscribers"]:
        # After the subscribers closed: the floor's sockets are on top of none of theirs.
        figures = with_floor(figures, sendfloor.measure(
            figures["subscribers"], figures["frame_bytes"] or sendfloor.DEFAULT_FRAME_BYTES,
            args.floor_repeats))
        print(f"send floor: {figures['floor_cpu_ms_per_event']} ms CPU per event "
              f"({figures['floor_system_cpu_ms_per_event']} ms system); ours "
              f"{figures['cpu_over_floor']}x", file=sys.stderr)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["received"] == figures["subscribers"] else 1


if __name__ == "__main__":
    sys.exit(run())
