"""The server tunes Python's cyclic garbage collector once it has started (server/app.py
tune_gc): start-up objects frozen out of its view, automatic collections only past a
million objects more alive, and the young collected on a clock (collect_garbage).
bench/ measures what it saves; here, that it is done."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from server.app import GC_EVERY_SECONDS, GC_THRESHOLDS


async def test_a_started_server_has_frozen_its_start_up_objects(app: Any) -> None:
    assert gc.get_threshold() == GC_THRESHOLDS
    # The schema and the tables are among the frozen objects: a few hundred thousand.
    assert gc.get_freeze_count() > 50_000


class _Cycle:
    def __init__(self) -> None:
        self.itself = self


async def test_cyclic_garbage_is_collected_on_a_clock(app: Any) -> None:
    """Far below the automatic threshold, a cycle left behind is still collected within
    a second or two: it does not wait for a million more objects."""
    cycle = _Cycle()
    collected = weakref.ref(cycle)
    del cycle
    assert collected() is not None  # reference counting alone cannot free a cycle
    for _ in range(int(3 * GC_EVERY_SECONDS / 0.1)):
        if collected() is None:
            break
        await asyncio.sleep(0.1)
    assert collected() is None
