"""The steps of an operation run their extensions' hooks as Strawberry's own context
managers do (server/graphql.py ``_Step``): the same hooks, in the same order, told of
the same exceptions, with the same exception leaving the step. Each case runs through
Strawberry's OperationContextManager and through ours, and the two records must agree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import ExecutingContextManager, OperationContextManager

from server.graphql import _ExecutingHooks, _OperationHooks


class Boom(Exception):
    pass


class Other(Exception):
    pass


def _hooks(log: list[str], behaviour: dict[str, str]) -> list[SchemaExtension]:
    """Three extensions (sync, async, sync) whose on_operation and on_execute hooks
    log what they see and do what ``behaviour`` says for their name: "swallow" the
    exception thrown in, "replace" it with Other, "fail" before yielding, or "raise"
    Boom after a clean yield."""

    def sync_hook(name: str) -> Callable[[Any], Iterator[None]]:
        def hook(self: Any) -> Iterator[None]:
            log.append(f"{name} in")
            if behaviour.get(name) == "fail":
                raise Boom(f"{name} failed entering")
            try:
                yield
            except BaseException as exc:
                log.append(f"{name} saw {type(exc).__name__}")
                if behaviour.get(name) == "swallow":
                    return
                if behaviour.get(name) == "replace":
                    raise Other(name) from None
                raise
            finally:
                log.append(f"{name} out")
            if behaviour.get(name) == "raise":
                raise Boom(f"{name} raised leaving")

        return hook

    def async_hook(name: str) -> Callable[[Any], AsyncIterator[None]]:
        async def hook(self: Any) -> AsyncIterator[None]:
            log.append(f"{name} in")
            await asyncio.sleep(0)
            if behaviour.get(name) == "fail":
                raise Boom(f"{name} failed entering")
            try:
                yield
            except BaseException as exc:
                log.append(f"{name} saw {type(exc).__name__}")
                await asyncio.sleep(0)
                if behaviour.get(name) == "swallow":
                    return
                if behaviour.get(name) == "replace":
                    raise Other(name) from None
                raise
            finally:
                log.append(f"{name} out")
            if behaviour.get(name) == "raise":
                raise Boom(f"{name} raised leaving")

        return hook

    first = type("First", (SchemaExtension,), {"on_operation": sync_hook("first"),
                                                "on_execute": async_hook("first")})
    second = type("Second", (SchemaExtension,), {"on_operation": async_hook("second")})
    third = type("Third", (SchemaExtension,), {"on_operation": sync_hook("third"),
                                                "on_execute": sync_hook("third")})
    return [first(), second(), third()]


CASES = [
    ({}, None),
    ({}, Boom),
    ({}, asyncio.CancelledError),
    ({"third": "swallow"}, Boom),
    ({"first": "swallow"}, Boom),
    ({"second": "swallow"}, Boom),
    ({"third": "replace"}, Boom),
    ({"third": "replace", "first": "swallow"}, Boom),
    ({"second": "replace"}, None),
    ({"third": "raise"}, None),
    ({"third": "raise", "second": "swallow"}, None),
    ({"second": "fail"}, None),
    ({"first": "fail"}, None),
    ({"third": "fail"}, Boom),
]


async def _run(step: type[Any], behaviour: dict[str, str], body_raises: type[BaseException] | None
               ) -> tuple[list[str], str]:
    log: list[str] = []
    extensions = _hooks(log, behaviour)
    try:
        async with step(extensions):
            log.append("body")
            if body_raises is not None:
                raise body_raises("body")
    except BaseException as exc:  # what left the step, whatever it is
        context = type(exc.__context__).__name__ if exc.__context__ else "-"
        outcome = f"{type(exc).__name__}: {exc} (context {context})"
    else:
        outcome = "ok"
    # A hook entered before one that failed is left unfinished, and closed when it is
    # collected: an async one in a task of the loop's. Both managers leave it so.
    for _ in range(3):
        await asyncio.sleep(0)
    return log, outcome


@pytest.mark.parametrize(("behaviour", "body_raises"), CASES)
@pytest.mark.parametrize(("theirs", "ours"), [(OperationContextManager, _OperationHooks),
                                              (ExecutingContextManager, _ExecutingHooks)])
async def test_a_step_runs_its_hooks_as_strawberrys_context_managers_do(
        behaviour: dict[str, str], body_raises: type[BaseException] | None,
        theirs: type[Any], ours: type[Any]) -> None:
    expected = await _run(theirs, behaviour, body_raises)
    got = await _run(ours, behaviour, body_raises)
    assert got == expected
    assert ours.__mro__[1].__name__ == "_Step"  # the lean path, not Strawberry's


def test_a_step_entered_synchronously_runs_sync_hooks_and_refuses_async_ones() -> None:
    log: list[str] = []
    sync_only = [type("Sync", (SchemaExtension,), {
        "on_operation": lambda self: (yield log.append("in")),
    })()]
    with _OperationHooks(sync_only):
        log.append("body")
    assert log == ["in", "body"]
    with pytest.raises(RuntimeError, match="failed to complete synchronously"), \
            _OperationHooks(_hooks([], {})):
        pass
