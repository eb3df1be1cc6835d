"""Prometheus metrics, served at /metrics in the text exposition format 0.0.4.

A small registry of our own (prometheus_client is not a dependency): counters,
gauges and histograms with fixed label names, rendered on each scrape. One registry
per app (``create_app``), so several apps in one process (tests) never mix figures.

The figures are per process. With ``uvicorn --workers N`` every worker keeps its own
and a scrape reaches whichever worker accepts it: run one worker per container and
scale by replicas, or give each worker its own port to scrape. A worker's counters
start again at zero when it restarts, which Prometheus' ``rate()`` allows for.

Everything is updated from the event loop, so no locks. Labels are low-cardinality
by design: transport, operation type and error code, never the operation name (a
client chooses it) nor anything about the viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import re
import time
from collections.abc import Iterator
from typing import Any, TypeVar

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import StreamExecutionResult
from strawberry.types.graphql import OperationType

from server.logs import request_log, request_logger

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TRANSPORTS = ("http", "ws")
OPERATION_TYPES = ("query", "mutation", "subscription")
# Error codes are ours, but a label must never grow without bound: anything that is
# not a plain code is counted as OTHER.
ERROR_CODE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
# A client names its operation: the log keeps a readable prefix, not a megabyte.
MAX_NAME = 200

LabelKey = tuple[str, ...]


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class _Metric:
    kind = ""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = labels

    def _key(self, labels: dict[str, str]) -> LabelKey:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes the labels {self.label_names}, got {labels}")
        return tuple(str(labels[name]) for name in self.label_names)

    def lines(self) -> Iterator[str]:
        yield f"# HELP {self.name} {_escape_help(self.documentation)}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self.samples()

    def samples(self) -> Iterator[str]:  # pragma: no cover - every kind has its own
        raise NotImplementedError


class _Valued(_Metric):
    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> None:
        super().__init__(name, documentation, labels)
        self._values: dict[LabelKey, float] = {} if labels else {(): 0.0}

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterator[str]:
        for key in sorted(self._values):
            yield f"{self.name}{_labels(self.label_names, key)} {_number(self._values[key])}"


class Counter(_Valued):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def mirror(self, total: float, **labels: str) -> None:
        """For a total counted elsewhere (the event hub knows nothing of Prometheus)
        and read at scrape time."""
        self._values[self._key(labels)] = float(total)


class Gauge(_Valued):
    kind = "gauge"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    @contextlib.contextmanager
    def tracking(self, **labels: str) -> Iterator[None]:
        """Up while the block runs, down when it ends however it ends."""
        self.inc(**labels)
        try:
            yield
        finally:
            self.dec(**labels)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        super().__init__(name, documentation, labels)
        if "le" in labels:
            raise ValueError("'le' is the bucket label of a histogram")
        self.buckets = (*sorted(buckets), math.inf)
        self._counts: dict[LabelKey, list[int]] = {}
        self._sums: dict[LabelKey, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        counts = self._counts.setdefault(key, [0] * len(self.buckets))
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                counts[index] += 1
                break
        self._sums[key] = self._sums.get(key, 0.0) + value

    def touch(self, **labels: str) -> None:
        """Show a label set at zero before its first observation, so rates start at once."""
        key = self._key(labels)
        self._counts.setdefault(key, [0] * len(self.buckets))
        self._sums.setdefault(key, 0.0)

    def count(self, **labels: str) -> int:
        return sum(self._counts.get(self._key(labels), ()))

    def samples(self) -> Iterator[str]:
        names = (*self.label_names, "le")
        for key in sorted(self._counts):
            cumulative = 0
            for bound, count in zip(self.buckets, self._counts[key], strict=True):
                cumulative += count
                labels = _labels(names, (*key, _number(bound)))
                yield f"{self.name}_bucket{labels} {_number(cumulative)}"
            labels = _labels(self.label_names, key)
            yield f"{self.name}_sum{labels} {_number(self._sums[key])}"
            yield f"{self.name}_count{labels} {_number(cumulative)}"


M = TypeVar("M", bound=_Metric)


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def register(self, metric: M) -> M:
        if metric.name in self._metrics:
            raise ValueError(f"{metric.name} is registered already")
        self._metrics[metric.name] = metric
        return metric

    def exposition(self) -> str:
        return "".join(line + "\n" for metric in self._metrics.values()
                       for line in metric.lines())


class Metrics:
    """The figures crmgraph serves at /metrics."""

    def __init__(self) -> None:
        self.registry = registry = Registry()
        by_operation = ("transport", "operation_type")
        self.requests = registry.register(Counter(
            "crmgraph_requests_total",
            "GraphQL operations received, by transport and operation type (a subscription "
            "counts once, when it starts).", by_operation))
        self.errors = registry.register(Counter(
            "crmgraph_errors_total",
            "Errors in GraphQL results, by extensions.code.", ("code",)))
        self.duration = registry.register(Histogram(
            "crmgraph_request_duration_seconds",
            "Time to answer a GraphQL operation; for a subscription, the time until its "
            "event stream is open.", by_operation))
        self.websockets_open = registry.register(Gauge(
            "crmgraph_websockets_open", "WebSocket connections open on /graphql."))
        self.subscriptions_active = registry.register(Gauge(
            "crmgraph_subscriptions_active", "Subscriptions running over WebSocket."))
        self.events_published = registry.register(Counter(
            "crmgraph_events_published_total",
            "Events committed by this process and announced to the others."))
        self.events_delivered = registry.register(Counter(
            "crmgraph_events_delivered_total",
            "Events handed to this process's subscribers (after their filters), "
            "replayed ones included."))
        for transport in TRANSPORTS:
            for operation_type in OPERATION_TYPES:
                self.requests.inc(0, transport=transport, operation_type=operation_type)
                self.duration.touch(transport=transport, operation_type=operation_type)

    def websocket_open(self) -> contextlib.AbstractContextManager[None]:
        return self.websockets_open.tracking()

    def exposition(self, *, events: Any = None) -> str:
        """The text a scrape gets; ``events`` is the app's EventHub, whose totals are
        read now."""
        self.events_published.mirror(getattr(events, "published", 0))
        self.events_delivered.mirror(getattr(events, "delivered", 0))
        return self.registry.exposition()


async def metrics_endpoint(request: Request) -> Response:
    """GET /metrics. Open unless METRICS_TOKEN is set; then it takes that token as a
    bearer, so figures stay private where the port is reachable from outside."""
    token: str | None = request.app.state.settings.metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()):
            return Response("metrics need the METRICS_TOKEN bearer token\n", status_code=401,
                            media_type="text/plain; charset=utf-8",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    metrics: Metrics = request.app.state.metrics
    body = metrics.exposition(events=getattr(request.app.state, "events", None))
    return Response(body, media_type=CONTENT_TYPE)


def _operation_type(context: Any, failure: BaseException | None) -> str:
    if isinstance(failure, InvalidOperationTypeError):
        return failure.operation_type.value
    try:
        operation_type: OperationType = context.operation_type
    except Exception:  # no document, or no operation of the given name in it
        return "unknown"
    return operation_type.value


def _codes_of(result: object) -> list[str]:
    errors = getattr(result, "errors", None) or ()
    codes = []
    for error in errors:
        code = (getattr(error, "extensions", None) or {}).get("code")
        codes.append(code if isinstance(code, str) and ERROR_CODE.match(code) else "OTHER")
    return codes


def _refusal_code(failure: BaseException, operation_type: str) -> str:
    """The code the client gets for an operation refused by an exception (HTTP turns
    these into responses in server/http.py; these are its codes)."""
    if isinstance(failure, CannotGetOperationTypeError):
        return "BAD_USER_INPUT"
    if isinstance(failure, InvalidOperationTypeError):
        return "BAD_REQUEST" if operation_type == "subscription" else "METHOD_NOT_ALLOWED"
    if isinstance(failure, MissingQueryError):
        return "BAD_REQUEST"
    if isinstance(failure, GraphQLError):
        code = (failure.extensions or {}).get("code")
        if isinstance(code, str) and ERROR_CODE.match(code):
            return code
    return "INTERNAL_SERVER_ERROR"


def _cost_of(result: object) -> Any:
    extensions = getattr(result, "extensions", None)
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    return cost.get("requested") if isinstance(cost, dict) else None


class OperationTelemetry(SchemaExtension):
    """Times, counts and logs each operation: hooks per operation and per streamed
    result, never per field (a per-field hook costs 5-10x).

    First among the extensions, so it spans all the others. A query or mutation is
    counted, timed and logged when it ends. A subscription is counted and timed (to
    its open stream) when it starts, raises the active-subscriptions gauge while it
    runs, and is logged once when it ends, with its whole lifetime as duration_ms.
    Errors in a subscription's events are counted as each event goes out.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        self._started = 0.0
        self._subscription = False
        self._streamed = False
        self._stream_codes: dict[str, None] = {}
        self._cost: Any = None

    def on_operation(self) -> Iterator[None]:
        self._started = time.perf_counter()
        failure: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            failure = exc
            raise
        finally:
            self._finish(time.perf_counter() - self._started, failure)

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if _operation_type(context, None) != OperationType.SUBSCRIPTION.value:
            yield
            return
        self._subscription = True
        labels = self._labels("subscription")
        if self.metrics is not None:
            self.metrics.requests.inc(**labels)
            self.metrics.subscriptions_active.inc()
        yield
        if self.metrics is not None:
            self.metrics.duration.observe(time.perf_counter() - self._started, **labels)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        try:
            yield
        finally:
            # After the yield: ErrorCodes, later in the list, codes the result on its
            # way in. Also when the stream is closed while this result goes out.
            self._streamed = True
            if self._cost is None:
                self._cost = _cost_of(result)
            if isinstance(result, ExecutionResult):
                codes = _codes_of(result)
                self._count_errors(codes)
                self._stream_codes.update(dict.fromkeys(codes))

    def _labels(self, operation_type: str) -> dict[str, str]:
        websocket = getattr(self.execution_context.context, "websocket", None)
        return {"transport": "http" if websocket is None else "ws",
                "operation_type": operation_type}

    def _count_errors(self, codes: list[str]) -> None:
        if self.metrics is not None:
            for code in codes:
                self.metrics.errors.inc(code=code)

    def _finish(self, seconds: float, failure: BaseException | None) -> None:
        context = self.execution_context
        operation_type = _operation_type(context, failure)
        labels = self._labels(operation_type)
        if self._streamed:
            codes = list(self._stream_codes)
        else:
            codes = _codes_of(context.result)
            self._count_errors(codes)
        # A subscription the client stops, or a socket that closes, ends normally.
        if failure is not None and not isinstance(
                failure, (asyncio.CancelledError, GeneratorExit)):
            code = _refusal_code(failure, operation_type)
            codes.append(code)
            self._count_errors([code])
        if self.metrics is not None:
            if self._subscription:
                self.metrics.subscriptions_active.dec()
            else:
                self.metrics.requests.inc(**labels)
                self.metrics.duration.observe(seconds, **labels)
        if not request_logger.isEnabledFor(logging.INFO):
            return  # LOG_LEVEL above INFO: no line to write, none to build
        name = context.operation_name
        fields: dict[str, Any] = {
            "request_id": getattr(context.context, "request_id", None),
            "operation_name": name[:MAX_NAME] if isinstance(name, str) else None,
            **labels,
            "duration_ms": round(seconds * 1000, 3),
            "status": "error" if codes else "ok",
            "error_codes": list(dict.fromkeys(codes)),
            "cost": self._cost,
            "client": getattr(context.context, "client_id", None),
        }
        if self._streamed:
            request_log(fields)
            return
        # Over HTTP Strawberry adds the extensions' results (the cost among them) to
        # the result after this hook, in the same turn of the event loop: the line is
        # written on the next turn, when the result is whole.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # executed synchronously: no cost to wait for
            request_log(fields)
            return
        loop.call_soon(self._log_with_cost, fields)

    def _log_with_cost(self, fields: dict[str, Any]) -> None:
        fields["cost"] = _cost_of(self.execution_context.result)
        request_log(fields)
