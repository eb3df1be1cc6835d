"""The fan-out bench's send floor (bench/sendfloor.py) at a tiny scale: no database, two
processes and fifty loopback sockets."""

from __future__ import annotations

import subprocess
import sys

from websockets.frames import Frame, Opcode

from bench import sendfloor
from bench.fanout import CpuClock, frame_size, with_floor

# A child that spends the CPU ms it is told on each line, then says so.
BURNER = """
import sys, time
for line in sys.stdin:
    until = time.process_time() + float(line) / 1000
    while time.process_time() < until:
        pass
    print("done", flush=True)
"""


def test_the_floor_sends_every_frame_and_reports_the_cpu_the_bench_reads() -> None:
    figures = sendfloor.measure(50, frame_bytes=300, repeats=2, pause=0.05)
    # The peers read every byte of every round: the sends measured were all made.
    assert figures["received_bytes"] == 50 * 300 * 2
    assert (figures["sockets"], figures["frame_bytes"], figures["repeats"]) == (50, 300, 2)
    assert len(figures["cpu_ms_each"]) == 2
    assert figures["cpu_ms"] > 0
    assert figures["user_cpu_ms"] >= 0
    assert figures["system_cpu_ms"] >= 0

    ours = {"server_cpu_ms_per_event": 140.0, "server_system_cpu_ms_per_event": 90.0,
            "memory_kb_per_idle_subscription": 19.5}
    beside = with_floor(ours, {**figures, "cpu_ms": 100.0})
    assert list(beside)[:3] == ["server_cpu_ms_per_event", "server_system_cpu_ms_per_event",
                                "floor_cpu_ms_per_event"]
    assert beside["cpu_over_floor"] == 1.4
    assert beside["send_floor"]["received_bytes"] == 50 * 300 * 2


def test_the_floors_frames_are_the_size_of_the_frames_measured() -> None:
    for payload in (10, 123, 124, 125, 126, 400, 65_535, 70_000):
        text = "x" * payload
        written = Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
        assert frame_size(payload) == len(written), payload
        assert sendfloor.text_frame(len(written)) == written, payload


def test_the_fanouts_cpu_clock_reads_another_process_to_the_millisecond() -> None:
    """/proc's utime and stime count 10 ms ticks: an event's CPU read from them moves in
    steps of 10. The bench reads the server's CPU clock instead: 3 ms spent by another
    process read as 3 ms, not 0 or 10."""
    child = subprocess.Popen([sys.executable, "-c", BURNER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        clock = CpuClock(child.pid)
        assert clock.clock is not None
        spent = []
        for ms in ("0", "3", "3", "3"):  # the first once the child has started
            before = clock.ms()
            child.stdin.write(f"{ms}\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"
            spent.append(clock.ms() - before)
        spent = spent[1:]
        # The 3 ms, and the little the child took to read its line and answer.
        assert all(3.0 <= ms < 4.5 for ms in spent), spent
    finally:
        child.kill()
        child.wait()
