"""Subscription fan-out: one execution per distinct (document, operation name,
variables, visibility), one serialized payload per event, and each member's frame
made by splicing its operation id in front of it.

Ten thousand boards watching the pipeline ask the same question with the same right
to the answer. Running the subscription once per board would read and serialize
every event ten thousand times; a group runs it once (with the first member's
context) and hands the same bytes to all of them.

Only event feeds without a replay are grouped (``GROUPED_FIELDS``, no ``after``):
a replay is one subscriber's own history, and a feed that starts with a snapshot
(a summary, a leaderboard) owes each newcomer its own first message. Those run alone,
as before.

A member never holds up the others: a send that completes at once (the socket's
buffer has room, the common case) costs no task; one that must wait is finished by
a task of the member's own while later frames queue behind it, up to the
subscription queue size. A member past that is closed with 1013, as a subscriber
that fell behind always was, and resumes with ``after``. On the server's own WebSocket
protocol (server/websocket.py) a send that need not wait is one ready-made frame,
made once per event for all members with the same operation id, written straight to
the transport when the socket's ``FrameGate`` is open.

An idle member holds no task: its operation's task is its ``ended`` future, which a
`complete` or the connection's end cancels (it leaves its group; the last to leave
stops it) and the group resolves when its feed ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from graphql import DocumentNode, FieldNode, OperationDefinitionNode, OperationType, parse
from starlette.websockets import WebSocketState
from strawberry.types.execution import PreExecutionError
from websockets.frames import Frame, Opcode

from models.users import Role, Viewer

logger = logging.getLogger("crmgraph.fanout")

# Feeds whose messages depend only on the event and the viewer's visibility: a member
# joining a running group misses nothing it would have had alone.
GROUPED_FIELDS = frozenset({"opportunityPhaseChanged", "targetAttainmentChanged"})
BEHIND = 1013
BEHIND_REASON = "subscriber fell behind; resubscribe with after"

Visibility = tuple[object, ...]
GroupKey = tuple[str, str | None, str, Visibility]


def visibility_key(viewer: Viewer) -> Visibility:
    """What every read policy a subscription's message can reach depends on, for this
    viewer: two viewers with the same key read exactly the same rows.

    Why it is sound, policy by policy (loaders/*.py ``visible_*``):

    - Staff (admin, manager, rep) read every account, contact, opportunity, lead,
      pipeline, user, team, activity and price: those depend on the role alone.
    - A rep reads targets, invoices, budgets and forecasts of ``team_mates``: itself
      and the members of its team. Its own user row is in its team, so for a rep
      with a team that set is the team's members: the team decides. A rep without
      one sees its own: keyed by user.
    - A manager and an admin read all targets, invoices and plans; only an admin reads
      the audit log: the role decides.
    - A partner reads what is shared with its org (``partner_org_id``) and, among
      users, itself (``user_id``): both are in the key. Its API keys act for the
      org's API user, so they share.
    - PERSONAL target groups depend on the owner, but no subscription message
      reaches a TargetGroup (only Query and mutation payloads do;
      tests/test_fanout.py walks the schema to keep it so).

    Whether a viewer may start the operation at all (trusted documents,
    introspection, cost, arguments) is checked per member before it joins, not here.
    """
    if viewer.role is Role.PARTNER:
        return (Role.PARTNER.value, viewer.partner_org_id, viewer.user_id)
    if viewer.role is Role.REP:
        if viewer.team_id is None:
            return (Role.REP.value, "user", viewer.user_id)
        return (Role.REP.value, "team", viewer.team_id)
    return (viewer.role.value,)


@lru_cache(maxsize=512)
def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query)
    except Exception:  # the normal path reports it, coded
        return None


def groupable(query: str, operation_name: str | None,
              variables: dict[str, Any] | None) -> bool:
    """A subscription with one root field from ``GROUPED_FIELDS``, without ``after``
    (given literally or through a variable): replays run alone."""
    document = _parsed(query)
    if document is None:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.SUBSCRIPTION:
        return False
    selections = operations[0].selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return False
    field = selections[0]
    return field.name.value in GROUPED_FIELDS and not field.directives and \
        all(argument.name.value != "after" for argument in field.arguments or ())


def group_key(query: str, operation_name: str | None, variables: dict[str, Any] | None,
              viewer: Viewer) -> GroupKey:
    # As a str: orjson's bytes keep their 2 KB output buffer, held by every member.
    return (query, operation_name,
            orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS).decode(),
            visibility_key(viewer))


class ProbeHub:
    """Stands in for the event hub while a newcomer's operation is checked: the whole
    pipeline runs for it (validation, trusted documents, cost, its arguments), and the
    feed then ends at once instead of waiting for events. An operation that ends
    without a message passed; one that sends something (errors) runs no further."""

    async def stream(self, topics: frozenset[str], *, after: int | None,
                     matches: Callable[[Any], bool] = lambda _e: True,
                     ) -> AsyncIterator[Any]:
        return
        yield  # an async generator that yields nothing


PROBE = ProbeHub()


_FINISHED = object()

_DISCONNECTED = WebSocketState.DISCONNECTED

# The scope extension under which the server's WebSocket protocol offers its FrameGate
# (server/websocket.py LeanWebSocketProtocol).
FRAMES = "crmgraph.frames"


class FrameGate:
    """A socket's way out for ready-made frames: its ``transport`` while ``open``,
    which its protocol keeps true exactly while a frame may be written at once:
    accepted, no close sent or received, connected, not applying back-pressure.

    An event reads this for each of ten thousand members, and only this: the checks
    behind ``open`` read five attributes of the protocol, its websockets connection
    and its transport, each a large object of its own: a loop doing those reads alone
    took 10-15 ms at 10,000 members, in cache misses, and the event's loop went 98-105
    -> 76-85 ms without them (bench/README.md item 13). The protocol answers them when
    its state changes instead.
    """

    __slots__ = ("open", "transport")

    def __init__(self, transport: Any) -> None:
        self.open = False
        self.transport = transport


def text_frame(text: str) -> bytes:
    """A server's (unmasked, uncompressed) text frame, as websockets would write it."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def _drive(step: Coroutine[Any, Any, None]) -> Any:
    """Run a coroutine until it first waits: what it waits on, or _FINISHED when it
    finished without waiting (no task was needed)."""
    try:
        return step.send(None)
    except StopIteration:
        return _FINISHED


async def finish(step: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Carry on, in a task, a coroutine ``_drive`` started, as a task would have."""
    while True:
        try:
            if waiting is None:  # a bare yield: asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                await waiting
        except BaseException as exc:  # cancelled, or the future failed: the coroutine decides
            try:
                waiting = step.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting = step.send(None)
        except StopIteration:
            return


class Member:
    """One subscriber in a group: its socket, its operation id spliced into each
    frame, and the frames a slow socket has not taken yet."""

    __slots__ = ("_backlog", "_sender", "behind", "capacity", "ended", "gate", "prefix",
                 "websocket")

    def __init__(self, operation_id: str, websocket: Any, capacity: int) -> None:
        self.websocket = websocket  # the starlette WebSocket
        # The protocol's gate, when it takes ready-made frames: those of one event are
        # then made once per operation id, not once per member.
        self.gate: FrameGate | None = (websocket.scope.get("extensions") or {}).get(FRAMES)
        # Interned: members with the same operation id share one string, which finds
        # this event's frame by identity, and stays in the cache from member to member.
        self.prefix = sys.intern('{"id":' + orjson.dumps(operation_id).decode() +
                                 ',"type":"next","payload":')
        self.capacity = capacity
        self._backlog: deque[str] | None = None
        self._sender: asyncio.Task[None] | None = None
        self.behind = False  # closed for falling behind: takes nothing more
        self.ended: asyncio.Future[list[Any] | None] = \
            asyncio.get_running_loop().create_future()

    def offer(self, payload: str, frames: dict[str, bytes]) -> None:
        """Never waits: a send that would, continues in a task of its own. ``frames``
        holds this event's frames by operation-id prefix, made by the first member
        that needs one."""
        if self.behind:
            return
        if self._backlog is not None:
            if len(self._backlog) >= self.capacity:
                self._fell_behind()
            else:  # the payload every member shares, not a frame of its own
                self._backlog.append(payload)
            return
        # Ten thousand members per event: every lookup here is paid ten thousand times.
        gate = self.gate
        if gate is not None and gate.open:
            frame = frames.get(self.prefix)
            if frame is None:
                frame = frames[self.prefix] = text_frame(self.prefix + payload + "}")
            try:
                gate.transport.write(frame)
                return
            except Exception:  # a transport closed under the gate: the ordinary way ends
                gate.open = False
        if self.websocket.application_state is _DISCONNECTED:
            return
        step = self._send(payload)
        waiting = _drive(step)
        if waiting is not _FINISHED:
            self._backlog = deque()
            self._sender = asyncio.create_task(self._drain(step, waiting))

    async def _send(self, payload: str) -> None:
        with contextlib.suppress(Exception):  # gone: its operation ends with the socket
            await self.websocket.send_text(self.prefix + payload + "}")

    async def _drain(self, step: Coroutine[Any, Any, None], waiting: Any) -> None:
        await finish(step, waiting)
        while self._backlog:
            await self._send(self._backlog.popleft())
        self._backlog = None
        self._sender = None

    def _fell_behind(self) -> None:
        self.behind = True
        self._backlog = None  # what it missed is replayed from the outbox with `after`
        if self._sender is not None:
            self._sender.cancel()
            self._sender = None
        # Held as the sender: a task nobody references may be collected mid-way.
        self._sender = asyncio.ensure_future(self._close_behind())

    async def _close_behind(self) -> None:
        with contextlib.suppress(Exception):  # closed already
            await self.websocket.close(BEHIND, BEHIND_REASON)

    async def flushed(self) -> None:
        """Every frame offered so far has been handed to the socket."""
        while self._sender is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._sender)
            if self._sender is not None and self._sender.done():
                self._sender = None

    def end(self, errors: list[Any] | None = None) -> None:
        if not self.ended.done():
            self.ended.set_result(errors)


class GroupSocket:
    """What the group's execution sees as its socket: closing it (a feed that fell
    behind, server/context.py close_socket) closes every member's."""

    def __init__(self, group: Group) -> None:
        self.group = group

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        for member in list(self.group.members):
            with contextlib.suppress(Exception):
                await member.websocket.close(code, reason)


@dataclass
class Counts:
    """For the tests and benchmarks: groups started, payloads serialized (one per
    execution result) and frames handed out."""
    groups_started: int = 0
    payloads: int = 0
    frames: int = 0


# The group's results: an ExecutionResult-like object (data, errors, extensions), or a
# PreExecutionError for an operation refused when the group started.
Starter = Callable[["Group"], Awaitable[AsyncIterator[Any]]]


class Group:
    def __init__(self, fanout: Fanout, key: GroupKey) -> None:
        self.fanout = fanout
        self.key = key
        self.members: dict[Member, None] = {}  # in order of joining
        self.task: asyncio.Task[None] | None = None
        self.socket = GroupSocket(self)

    async def run(self, start: Starter) -> None:
        errors: list[Any] | None = None
        try:
            results = await start(self)
            async with contextlib.aclosing(results):  # type: ignore[type-var]
                first = True
                async for result in results:
                    if first and _refused(result):
                        errors = [error.formatted for error in result.errors]
                        break
                    first = False
                    self.publish(result)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("a grouped subscription failed")
        finally:
            self.fanout._ended(self)
            for member in list(self.members):
                member.end(errors)

    def publish(self, result: Any) -> None:
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [error.formatted for error in result.errors]
        if getattr(result, "extensions", None):
            payload["extensions"] = result.extensions
        text = orjson.dumps(payload).decode()
        counts = self.fanout.counts
        counts.payloads += 1
        frames: dict[str, bytes] = {}
        for member in list(self.members):
            member.offer(text, frames)
        counts.frames += len(self.members)


def _refused(result: Any) -> bool:
    return isinstance(result, PreExecutionError)


class Fanout:
    """This process's groups, by key."""

    def __init__(self) -> None:
        self.groups: dict[GroupKey, Group] = {}
        self.counts = Counts()

    @property
    def members(self) -> int:
        return sum(len(group.members) for group in self.groups.values())

    def add(self, key: GroupKey, member: Member, start: Starter) -> Group:
        """Makes ``member`` one of the group of ``key``, started (with ``start``) if
        there is none; ``member.ended`` is resolved when the group's feed ends (None)
        or is refused (its errors)."""
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(self, key)
            group.members[member] = None
            self.counts.groups_started += 1
            group.task = asyncio.create_task(group.run(start), name="fanout-group")
        else:
            group.members[member] = None
        return group

    def leave(self, group: Group, member: Member) -> None:
        """The last member to leave stops the group."""
        group.members.pop(member, None)
        if not group.members and group.task is not None and not group.task.done():
            self._ended(group)
            group.task.cancel()

    def _ended(self, group: Group) -> None:
        # Taken out at once, not when its task finishes: a newcomer meanwhile starts a
        # group of its own rather than join one that is winding down.
        if self.groups.get(group.key) is group:
            del self.groups[group.key]
