"""The kernel's floor under fan-out: the CPU of one send() of one frame on each of N
loopback TCP sockets, with nothing else around it.

    python -m bench.sendfloor --sockets 10000 [--frame-bytes 420] [--repeats 5] [--json out]

Our server writes each subscriber's frame to its own socket (subscriptions/fanout.py);
on loopback a send() also runs the receiving side's TCP and wakes its reader, in the
sender's system time. This measures what that alone costs: N sockets accepted here
(TCP_NODELAY and non-blocking, as uvloop's transports are), their peers connected from a
child process that reads them with epoll, as bench/fanout.py's client does. Each
repetition sends one frame of ``--frame-bytes`` (a text frame header and filler) on
every socket and reads this process's user and system CPU (getrusage) around the loop;
the child says when it has read the round, the next starts after a pause with every
peer idle again. The figures are the medians of the repetitions.

The soft limit of open files is raised to the hard limit in both processes: each holds
its own N sockets.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# About the size of bench/fanout.py's frames; it passes the size it received.
DEFAULT_FRAME_BYTES = 420


def raise_open_files(needed: int) -> None:
    """The soft limit of open files up to the hard one; refuses when even that is short
    of ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"bench.sendfloor: {needed} open files needed, the hard limit "
                         f"is {hard}")


def text_frame(size: int) -> bytes:
    """A server's unmasked text frame of ``size`` bytes in all, header included."""
    if size < 2:
        raise ValueError("a frame has at least its 2-byte header")
    if size - 2 < 126:
        return bytes((0x81, size - 2)) + b"x" * (size - 2)
    if size - 4 < 2**16:
        return bytes((0x81, 126)) + (size - 4).to_bytes(2, "big") + b"x" * (size - 4)
    return bytes((0x81, 127)) + (size - 10).to_bytes(8, "big") + b"x" * (size - 10)


def peer(port: int, sockets: int, frame_bytes: int) -> None:
    """The child: connects ``sockets`` times, says "ready", then reads with epoll and
    says "round" each time every socket's share of one more round has arrived. Ends
    when every socket is closed by the other side."""
    raise_open_files(sockets + 50)
    connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(sockets)]
    poller = select.epoll()
    for connection in connections:
        connection.setblocking(False)
        poller.register(connection.fileno(), select.EPOLLIN)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    per_round = sockets * frame_bytes
    received = 0
    rounds = 0
    open_ = sockets
    while open_:
        for fd, _events in poller.poll():
            data = os.read(fd, 65536)
            if not data:
                poller.unregister(fd)
                open_ -= 1
                continue
            received += len(data)
        while received >= (rounds + 1) * per_round:
            rounds += 1
            out.write("round\n")
            out.flush()
    out.write(f"received {received}\n")
    out.flush()


def measure(sockets: int, frame_bytes: int = DEFAULT_FRAME_BYTES, repeats: int = 5,
            pause: float = 0.3) -> dict[str, Any]:
    """Opens ``sockets`` loopback connections to a child process and sends one frame on
    each, ``repeats`` times; this process's CPU ms per round, medians and each."""
    raise_open_files(sockets + 50)
    frame = text_frame(frame_bytes)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.sendfloor", "--peer", str(listener.getsockname()[1]),
         "--sockets", str(sockets), "--frame-bytes", str(frame_bytes)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    connections: list[socket.socket] = []
    users: list[float] = []
    systems: list[float] = []
    try:
        while len(connections) < sockets:
            connection, _ = listener.accept()
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.setblocking(False)
            connections.append(connection)
        _expect(child, "ready")
        for _ in range(repeats):
            time.sleep(pause)  # every peer back asleep in epoll_wait, as subscribers are
            before = resource.getrusage(resource.RUSAGE_SELF)
            for connection in connections:
                connection.send(frame)
            after = resource.getrusage(resource.RUSAGE_SELF)
            users.append((after.ru_utime - before.ru_utime) * 1000)
            systems.append((after.ru_stime - before.ru_stime) * 1000)
            _expect(child, "round")
    finally:
        for connection in connections:
            connection.close()
        listener.close()
    received = child.stdout.readline().split()
    child.wait(timeout=60)
    totals = [u + s for u, s in zip(users, systems, strict=True)]
    return {
        "sockets": sockets,
        "frame_bytes": frame_bytes,
        "repeats": repeats,
        "cpu_ms": round(statistics.median(totals), 1),
        "user_cpu_ms": round(statistics.median(users), 1),
        "system_cpu_ms": round(statistics.median(systems), 1),
        "cpu_ms_each": [round(t, 1) for t in totals],
        # Bytes the peers read in all: every frame of every round arrived.
        "received_bytes": int(received[1]) if received[:1] == ["received"] else None,
    }


def _expect(child: subprocess.Popen[str], word: str) -> None:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != word:
        child.kill()
        raise RuntimeError(f"the peers said {line!r} (exit {child.wait()}), not {word!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sendfloor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--frame-bytes", type=int, default=DEFAULT_FRAME_BYTES,
                        help="the frame's size, header included")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--peer", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.peer is not None:
        peer(args.peer, args.sockets, args.frame_bytes)
        return 0
    figures = measure(args.sockets, args.frame_bytes, args.repeats)
    print(f"{figures['sockets']} sockets, {figures['frame_bytes']}-byte frames: "
          f"{figures['cpu_ms']} ms CPU per round ({figures['user_cpu_ms']} user, "
          f"{figures['system_cpu_ms']} system), median of {figures['repeats']}", file=sys.stderr)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run())
