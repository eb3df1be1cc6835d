"""FrameGate.write (subscriptions/fanout.py): a fan-out frame goes to its socket in one
``os.write`` while the transport holds nothing, and through the transport otherwise, so
the bytes on the wire keep the order they were written in. On uvloop, as the server
runs, and on asyncio's own loop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from subscriptions.fanout import FrameGate, direct_fd

RUNNERS: dict[str, Callable[[Coroutine[Any, Any, None]], None]] = {
    "uvloop": uvloop.run, "asyncio": asyncio.run}


class CountingTransport:
    """A real transport, with the writes that reach it counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)


async def _connected() -> tuple[CountingTransport, socket.socket, asyncio.Server]:
    accepted: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

    class Accepting(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.set_result(transport)  # type: ignore[arg-type]

    server = await asyncio.get_running_loop().create_server(Accepting, "127.0.0.1", 0)
    client = socket.socket()
    # Small buffers, so that the sends fill them within a few hundred frames.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(server.sockets[0].getsockname())
    transport = await asyncio.wait_for(accepted, 5)
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return CountingTransport(transport), client, server


async def _read(client: socket.socket, size: int) -> bytes:
    client.setblocking(False)
    received = bytearray()
    while len(received) < size:
        chunk = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(client, 65536), 5)
        assert chunk, "the connection closed early"
        received += chunk
    return bytes(received)


@pytest.mark.parametrize("loop", list(RUNNERS))
def test_a_frame_goes_to_the_socket_itself_unless_the_transport_holds_bytes(loop: str) -> None:
    async def scenario() -> None:
        transport, client, server = await _connected()
        try:
            gate = FrameGate(transport)
            assert gate.fd == transport.get_extra_info("socket").fileno()
            # Nothing buffered: each frame is one write of the socket's own.
            small = [b"frame %d;" % n for n in range(3)]
            for frame in small:
                gate.write(frame)
            assert transport.writes == []
            assert client.recv(4096) == b"".join(small)

            # Fill the socket (the peer reads nothing): the transport takes the rest.
            frames = [(b"%06d" % n) * 100 for n in range(400)]
            sent = 0
            while not transport.writes:
                gate.write(frames[sent])
                sent += 1
            # Make room in the socket without letting the loop flush the transport's
            # bytes: a frame written to the socket now would pass them.
            client.setblocking(True)
            drained = client.recv(2048)
            for frame in frames[sent:]:
                gate.write(frame)
            assert len(transport.writes) > 1  # the transport took every frame since
            expected = b"".join(frames)
            assert drained + await _read(client, len(expected) - len(drained)) == expected
        finally:
            client.close()
            server.close()

    RUNNERS[loop](scenario())


def test_a_tls_transport_is_written_through_its_encryption() -> None:
    class Tls:
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {"ssl_object": object(), "socket": socket.socket()}.get(name, default)

    class Plain:
        def __init__(self) -> None:
            self.sock = socket.socket()

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {"socket": self.sock}.get(name, default)

    assert direct_fd(Tls()) == -1
    plain = Plain()
    try:
        assert direct_fd(plain) == plain.sock.fileno()
    finally:
        plain.sock.close()
