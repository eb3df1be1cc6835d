"""What every subscription shares: the `after` cursor, closing a subscriber that fell
behind, and coalescing bursts of changes into one refreshed message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from loaders.errors import BadUserInput
from schema.context import Info


def after_event(value: str | None) -> int | None:
    """An `after:` argument: the eventId a client saw last."""
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadUserInput(f"after takes an eventId, not {value!r}")
    return int(value)


async def close_behind(info: Info) -> None:
    """A subscriber too far behind is closed with 1013 (try again later): a
    graphql-ws client reconnects and resumes with `after`."""
    with contextlib.suppress(Exception):
        await info.context.close_socket(1013, "subscriber fell behind; resubscribe with after")


async def bursts(changes: AsyncIterator[Any], interval: float) -> AsyncIterator[None]:
    """Once per burst of changes: after a change, whatever else arrives within
    ``interval`` seconds belongs to the same burst.

    The wait for the next change is never cancelled by the interval running out
    (cancelling it would end ``changes`` for good); it carries over to the next burst.
    Errors of ``changes`` (Overflowed) propagate.
    """
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(changes))
            await pending
            pending = None
            deadline = loop.time() + interval
            while (left := deadline - loop.time()) > 0:
                pending = asyncio.ensure_future(anext(changes))
                done, _ = await asyncio.wait({pending}, timeout=left)
                if not done:
                    break  # the wait goes on into the next burst
                pending.result()
                pending = None
            yield
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        with contextlib.suppress(RuntimeError):
            await changes.aclose()  # type: ignore[attr-defined]
