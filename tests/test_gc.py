"""The server tunes Python's cyclic garbage collector once it has started (server/app.py
tune_gc): start-up objects frozen out of its view, the youngest generation collected
every 50,000 objects more alive (the older ones rarely). bench/ measures what it saves;
here, that it is done."""

from __future__ import annotations

import gc
from typing import Any

from server.app import GC_THRESHOLDS


async def test_a_started_server_has_frozen_its_start_up_objects(app: Any) -> None:
    assert gc.get_threshold() == GC_THRESHOLDS
    # The schema and the tables are among the frozen objects: a few hundred thousand.
    assert gc.get_freeze_count() > 50_000
