"""The stream socket transport (csrc/transport.c, python/quickloop/transport.py).

quickloop runs plain TCP and Unix stream connections on its C transport; the
stdlib loop, the referee, on asyncio's _SelectorSocketTransport.  Every test body
runs on both loops and expects CPython 3.11's observable behaviour: data,
callback order, exceptions and their messages, exception-handler contexts, logs.
"""
import asyncio
import gc
import logging
import re
import socket
import struct
import sys
import warnings

import pytest

from test_network import (
    HOST,
    TIMEOUT,
    Recorder,
    client_ssl_context,
    close_and_wait,
    connect_to_nonreading_peer,
    factory_list,
    fill_write_buffer,
    first,
    run,
    server_ssl_context,
    sockdir,  # noqa: F401 (fixture)
)

TRANSPORT_NAME = {"stdlib": "_SelectorSocketTransport", "quickloop": "SocketTransport"}


def check_kind(loop_kind, tr):
    """The transport is the C one on quickloop, asyncio's on the stdlib loop."""
    assert type(tr).__name__ == TRANSPORT_NAME[loop_kind]
    assert isinstance(tr, asyncio.Transport)
    assert isinstance(tr, asyncio.transports._FlowControlMixin)


async def pair(loop, *, server_kwargs=None, client_kwargs=None, factory=None):
    """A server and a connected client: (server, client tr, client proto, server proto)."""
    if factory is None:
        factory, made = factory_list(loop, **(server_kwargs or {}))
    else:
        made = None
    server = await loop.create_server(factory, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    tr, proto = await loop.create_connection(
        lambda: Recorder(loop, **(client_kwargs or {})), HOST, port
    )
    sproto = await first(made) if made is not None else None
    return server, tr, proto, sproto


async def shutdown(server, *protos):
    await close_and_wait(*protos)
    server.close()
    await server.wait_closed()


class Buffered(asyncio.BufferedProtocol):
    """A BufferedProtocol echoing what it gets, through a small buffer."""

    def __init__(self, loop, size=100, echo=True):
        self.loop = loop
        self.buf = bytearray(size)
        self.echo = echo
        self.data = bytearray()
        self.sizes = []
        self.transport = None
        self.made = loop.create_future()
        self.lost = loop.create_future()
        self.eof = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        self.made.set_result(None)

    def get_buffer(self, sizehint):
        self.sizes.append(sizehint)
        return self.buf

    def buffer_updated(self, nbytes):
        chunk = bytes(self.buf[:nbytes])
        self.data += chunk
        if self.echo:
            self.transport.write(chunk)

    def eof_received(self):
        self.eof.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


# ---- data -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 1000, 65536, 1536 * 1024])
def test_echo_sizes(loop, loop_kind, size):
    payload = bytes(range(256)) * (size // 256) + b"z" * (size % 256)

    async def main():
        server, tr, proto, sproto = await pair(loop, server_kwargs={"echo": True})
        check_kind(loop_kind, tr)
        check_kind(loop_kind, sproto.transport)
        tr.write(payload)
        got = await proto.wait_bytes(len(payload))
        await shutdown(server, proto, sproto)
        return got, proto.events, sproto.events

    got, cevents, sevents = run(loop, main())
    assert got == payload
    assert cevents == ["made", "data", "lost"]
    assert sevents == ["made", "data", "lost"]


def test_big_writes_both_directions(loop):
    """Both ends write 3 MiB at once while the other end echoes."""
    payload = b"0123456789abcdef" * (3 * 65536)

    async def main():
        server, tr, proto, sproto = await pair(
            loop, server_kwargs={"echo": True}, client_kwargs={}
        )
        tr.write(payload)
        sproto.transport.write(payload)
        got = await proto.wait_bytes(2 * len(payload))
        assert await sproto.wait_bytes(len(payload)) == payload
        await shutdown(server, proto, sproto)
        return got

    got = run(loop, main())
    assert got[: len(payload)] == payload.upper() or got.startswith(payload[:1])
    assert len(got) == 2 * len(payload)
    assert sorted(got) == sorted(payload * 2)


def test_buffered_protocol(loop, loop_kind):
    payload = b"buffered protocol " * 5000

    async def main():
        made = []

        def factory():
            made.append(Buffered(loop))
            return made[-1]

        server, tr, proto, _ = await pair(loop, factory=factory)
        await made[0].made
        check_kind(loop_kind, made[0].transport)
        tr.write(payload)
        got = await proto.wait_bytes(len(payload))
        await close_and_wait(proto)
        await made[0].lost
        server.close()
        await server.wait_closed()
        return got, made[0]

    got, sproto = run(loop, main())
    assert got == payload
    assert set(sproto.sizes) == {-1}
    assert bytes(sproto.data) == payload


@pytest.mark.parametrize("bad", ["raise", "empty"])
def test_buffered_get_buffer_errors(loop, bad):
    class Bad(Buffered):
        def get_buffer(self, sizehint):
            if bad == "raise":
                raise ZeroDivisionError("boom")
            return bytearray()

    async def main():
        made = []

        def factory():
            made.append(Bad(loop))
            return made[-1]

        server, tr, proto, _ = await pair(loop, factory=factory)
        tr.write(b"x")
        exc = await made[0].lost
        await proto.lost
        server.close()
        await server.wait_closed()
        return exc

    errors = []
    exc = run(loop, main(), errors=errors)
    assert [e["message"] for e in errors] == ["Fatal error: protocol.get_buffer() call failed."]
    expected = ZeroDivisionError if bad == "raise" else RuntimeError
    assert isinstance(exc, expected) and errors[0]["exception"] is exc
    if bad == "empty":
        assert str(exc) == "get_buffer() returned an empty buffer"


def test_writelines_and_memoryview(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        tr.writelines([b"one ", bytearray(b"two "), memoryview(b"three ")])
        tr.write(memoryview(b"xxfourxx")[2:6])
        tr.write(b"")
        got = await sproto.wait_bytes(18)
        await shutdown(server, proto, sproto)
        return got

    assert run(loop, main()) == b"one two three four"


def test_write_errors(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        for bad, name in [("text", "str"), (1, "int"), (None, "NoneType")]:
            with pytest.raises(TypeError) as info:
                tr.write(bad)
            assert str(info.value) == (
                f"data argument must be a bytes-like object, not '{name}'"
            )
        assert tr.can_write_eof() is True
        tr.write_eof()
        tr.write_eof()  # no-op the second time
        with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
            tr.write(b"late")
        await sproto.eof
        await shutdown(server, proto, sproto)

    run(loop, main())


# ---- half-close -------------------------------------------------------------------


@pytest.mark.parametrize("keep_open", [True, False, None])
def test_eof_received_keep_open(loop, keep_open):
    async def main():
        server, tr, proto, sproto = await pair(loop, server_kwargs={"keep_open": keep_open})
        tr.write(b"request")
        tr.write_eof()
        await sproto.eof
        if keep_open:
            # Half-closed: the server can still write, then closes.
            assert not sproto.transport.is_closing()
            assert not sproto.transport.is_reading() or True
            sproto.transport.write(b"reply after eof")
            sproto.transport.write_eof()
            await proto.eof
            sproto.transport.close()
        else:
            assert sproto.transport.is_closing()
        await sproto.lost
        await proto.lost
        server.close()
        await server.wait_closed()
        return bytes(proto.data), proto.events, sproto.events

    data, cevents, sevents = run(loop, main())
    if keep_open:
        assert data == b"reply after eof"
        assert cevents == ["made", "data", "eof", "lost"]
    else:
        assert data == b""
        assert cevents == ["made", "eof", "lost"]
    assert sevents == ["made", "data", "eof", "lost"]


def test_write_eof_with_buffered_data(loop):
    """write_eof() while data is buffered shuts down once the buffer drains."""

    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        fill_write_buffer(tr, proto, until_paused=False)
        pending = tr.get_write_buffer_size()
        assert pending > 0
        tr.write_eof()
        conn.setblocking(False)
        total = 0
        while True:
            chunk = await loop.sock_recv(conn, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
        assert tr.get_write_buffer_size() == 0
        conn.close()
        listener.close()
        await proto.lost
        return total, pending

    total, pending = run(loop, main())
    assert total >= pending


# ---- reading and writing flow control ----------------------------------------------


def test_pause_resume_reading(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        st = sproto.transport
        assert st.is_reading()
        st.pause_reading()
        st.pause_reading()  # idempotent
        assert not st.is_reading()
        tr.write(b"while paused")
        for _ in range(20):
            await asyncio.sleep(0)
        assert bytes(sproto.data) == b""
        st.resume_reading()
        st.resume_reading()
        assert st.is_reading()
        got = await sproto.wait_bytes(12)
        st.close()
        assert not st.is_reading()
        st.resume_reading()  # no-op once closing
        assert not st.is_reading()
        await shutdown(server, proto, sproto)
        return got

    assert run(loop, main()) == b"while paused"


def test_flow_control_pause_resume_writing(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(high=20000, low=5000)
        assert tr.get_write_buffer_limits() == (5000, 20000)
        written = fill_write_buffer(tr, proto, until_paused=True)
        assert proto.paused.done()
        # The protocol stops writing when paused: the buffer stays bounded.
        assert 20000 < tr.get_write_buffer_size() <= written
        assert tr.get_write_buffer_size() <= 20000 + 65536
        assert proto.events == ["made", "pause"]
        conn.setblocking(False)
        received = 0
        while not proto.resumed.done():
            received += len(await loop.sock_recv(conn, 1 << 20))
        assert tr.get_write_buffer_size() <= 5000
        assert proto.events == ["made", "pause", "resume"]
        tr.close()
        while True:
            chunk = await loop.sock_recv(conn, 1 << 20)
            if not chunk:
                break
            received += len(chunk)
        await proto.lost
        conn.close()
        listener.close()
        return received, written

    received, written = run(loop, main())
    assert received == written


def test_set_write_buffer_limits_errors(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        with pytest.raises(ValueError) as info:
            tr.set_write_buffer_limits(high=1, low=2)
        assert str(info.value) == "high (1) must be >= low (2) must be >= 0"
        with pytest.raises(ValueError, match=r"high \(0\) must be >= low \(-1\)"):
            tr.set_write_buffer_limits(high=0, low=-1)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        tr.set_write_buffer_limits()
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(0, 0)
        assert tr.get_write_buffer_limits() == (0, 0)
        await shutdown(server, proto, sproto)

    run(loop, main())


def test_pause_writing_raising_is_reported(loop):
    class BadPause(Recorder):
        def pause_writing(self):
            super().pause_writing()
            raise ZeroDivisionError("pause")

        def resume_writing(self):
            super().resume_writing()
            raise KeyError("resume")

    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        tr.set_protocol(BadPause(loop))
        proto = tr.get_protocol()
        proto.transport = tr
        fill_write_buffer(tr, proto, until_paused=True)
        conn.setblocking(False)
        while not proto.resumed.done():
            await loop.sock_recv(conn, 1 << 20)
        tr.abort()
        await proto.lost
        conn.close()
        listener.close()
        return tr, proto

    errors = []
    tr, proto = run(loop, main(), errors=errors)
    assert [e["message"] for e in errors] == [
        "protocol.pause_writing() failed",
        "protocol.resume_writing() failed",
    ]
    assert [type(e["exception"]) for e in errors] == [ZeroDivisionError, KeyError]
    assert all(e["transport"] is tr and e["protocol"] is proto for e in errors)


# ---- closing ----------------------------------------------------------------------


def test_close_flushes_buffer_then_connection_lost(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        written = fill_write_buffer(tr, proto, until_paused=False)
        tr.close()
        tr.close()
        assert tr.is_closing()
        conn.setblocking(False)
        received = 0
        while True:
            chunk = await loop.sock_recv(conn, 1 << 20)
            if not chunk:
                break
            received += len(chunk)
        exc = await proto.lost
        conn.close()
        listener.close()
        return received, written, exc, tr

    received, written, exc, tr = run(loop, main())
    assert received == written and exc is None
    assert tr.get_extra_info("socket") is not None
    assert tr._sock is None and tr._loop is None


def test_abort_discards_buffer(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        fill_write_buffer(tr, proto, until_paused=False)
        tr.abort()
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        exc = await proto.lost
        conn.close()
        listener.close()
        return exc

    assert run(loop, main()) is None


def test_write_after_close_logs(loop, caplog):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        tr.abort()
        await proto.lost
        with caplog.at_level(logging.WARNING, logger="asyncio"):
            for _ in range(7):
                tr.write(b"data")
        await sproto.lost
        server.close()
        await server.wait_closed()

    run(loop, main())
    msgs = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert msgs == ["socket.send() raised exception."] * 3


def test_connection_reset_by_peer(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        exc = await proto.lost
        listener.close()
        return exc, tr

    exc, tr = run(loop, main())
    assert isinstance(exc, ConnectionResetError)
    assert tr.is_closing()


def test_data_received_raising_is_fatal(loop):
    class Raising(Recorder):
        def data_received(self, data):
            raise ZeroDivisionError("bad data")

    async def main():
        made = []

        def factory():
            made.append(Raising(loop))
            return made[-1]

        server, tr, proto, _ = await pair(loop, factory=factory)
        tr.write(b"trigger")
        exc = await made[0].lost
        await proto.lost  # the server closed its end
        server.close()
        await server.wait_closed()
        return exc, made[0]

    errors = []
    exc, sproto = run(loop, main(), errors=errors)
    assert isinstance(exc, ZeroDivisionError)
    assert len(errors) == 1
    ctx = errors[0]
    assert set(ctx) == {"message", "exception", "transport", "protocol"}
    assert ctx["message"] == "Fatal error: protocol.data_received() call failed."
    assert ctx["exception"] is exc
    assert ctx["transport"] is sproto.transport and ctx["protocol"] is sproto


def test_connection_lost_raising_reported_and_socket_closed(loop):
    class Raising(Recorder):
        def connection_lost(self, exc):
            super().connection_lost(exc)
            raise KeyError("lost")

    async def main():
        server = await loop.create_server(lambda: Recorder(loop), HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Raising(loop), HOST, port)
        tr.close()
        await proto.lost
        await asyncio.sleep(0)
        server.close()
        await server.wait_closed()
        return tr

    errors = []
    tr = run(loop, main(), errors=errors)
    assert tr._sock is None
    assert len(errors) == 1 and isinstance(errors[0]["exception"], KeyError)
    assert errors[0]["message"].startswith("Exception in callback")


# ---- introspection ----------------------------------------------------------------


def test_get_extra_info_and_repr(loop, loop_kind):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        name = TRANSPORT_NAME[loop_kind]
        sock = tr.get_extra_info("socket")
        assert isinstance(sock, asyncio.trsock.TransportSocket)
        assert sock.fileno() == tr._sock_fd
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("peername") == server.sockets[0].getsockname()
        assert sproto.transport.get_extra_info("peername") == tr.get_extra_info("sockname")
        assert tr.get_extra_info("nothing", "default") == "default"
        assert tr.get_extra_info("sslcontext") is None
        assert tr.get_protocol() is proto
        assert tr._protocol_connected and not tr._closing and not tr._eof
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert repr(tr) == f"<{name} fd={tr._sock_fd} read=polling write=<idle, bufsize=0>>"
        tr.pause_reading()
        assert repr(tr) == f"<{name} fd={tr._sock_fd} read=idle write=<idle, bufsize=0>>"
        fd = tr._sock_fd
        tr.close()
        assert repr(tr) == f"<{name} closing fd={fd} read=idle write=<idle, bufsize=0>>"
        await proto.lost
        assert repr(tr) == f"<{name} closed fd={fd}>"
        await sproto.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_extra_passed_by_connect_accepted_socket(loop):
    async def main():
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(lambda: Recorder(loop), a)
        assert tr.get_extra_info("peername") is not None or tr.get_extra_info("peername") == ""
        b.sendall(b"hi")
        assert await proto.wait_bytes(2) == b"hi"
        tr.close()
        await proto.lost
        b.close()

    run(loop, main())


def test_unclosed_transport_resource_warning(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        return server, tr, proto, sproto

    server, tr, proto, sproto = run(loop, main())
    fd = tr._sock_fd
    server.close()
    loop.close()  # the loop drops its registrations; the transports stay open
    assert tr._sock is not None and not tr.is_closing()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del tr, proto, sproto
        gc.collect()
    msgs = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert any(m.startswith("unclosed transport <") and f"fd={fd}" in m for m in msgs), msgs
    with pytest.raises(OSError):
        socket.socket(fileno=fd).getsockname()  # the finalizer closed the socket


# ---- protocols and upgrades -----------------------------------------------------


def test_set_protocol_switches_kind(loop, loop_kind):
    async def main():
        server, tr, proto, sproto = await pair(loop)
        st = sproto.transport
        tr.write(b"plain")
        await sproto.wait_bytes(5)
        buffered = Buffered(loop, size=3, echo=False)
        buffered.transport = st
        st.set_protocol(buffered)
        assert st.get_protocol() is buffered
        tr.write(b"into the buffer")
        while len(buffered.data) < 15:
            await asyncio.sleep(0)
        back = Recorder(loop)
        back.transport = st
        st.set_protocol(back)
        tr.write(b"plain again")
        assert await back.wait_bytes(11) == b"plain again"
        tr.close()
        await proto.lost
        await back.lost
        server.close()
        await server.wait_closed()
        return bytes(buffered.data), buffered.sizes

    data, sizes = run(loop, main())
    assert data == b"into the buffer" and set(sizes) == {-1}


def test_start_tls_over_transport(loop, loop_kind):
    sctx, cctx = server_ssl_context(), client_ssl_context()

    async def main():
        server, tr, proto, sproto = await pair(loop)
        check_kind(loop_kind, tr)
        st = sproto.transport
        server_tls = asyncio.ensure_future(
            loop.start_tls(st, sproto, sctx, server_side=True), loop=loop
        )
        tls = await loop.start_tls(tr, proto, cctx, server_hostname="localhost")
        stls = await server_tls
        tls.write(b"secret " * 50000)
        got = await sproto.wait_bytes(7 * 50000)
        stls.write(b"answer")
        assert await proto.wait_bytes(6) == b"answer"
        tls.close()
        await proto.lost
        await sproto.lost
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == b"secret " * 50000


def test_sendfile_over_transport(loop, loop_kind, tmp_path):
    data = bytes(range(256)) * 4000
    path = tmp_path / "payload"
    path.write_bytes(data)

    async def main():
        server, tr, proto, sproto = await pair(loop)
        check_kind(loop_kind, tr)
        tr.write(b"head")
        with open(path, "rb") as f:
            assert await loop.sendfile(tr, f) == len(data)
        assert tr.is_reading()
        with open(path, "rb") as f:  # the fallback path (pure Python reads + writes)
            assert await loop.sendfile(tr, f, count=1000, fallback=True) == 1000
        tr.write(b"tail")
        got = await sproto.wait_bytes(4 + len(data) + 1000 + 4)
        sproto.transport.write(b"still reading")
        assert await proto.wait_bytes(13) == b"still reading"
        await shutdown(server, proto, sproto)
        return got

    assert run(loop, main()) == b"head" + data + data[:1000] + b"tail"


def test_sendfile_fallback_protocol(loop, tmp_path):
    """loop.sendfile(fallback) needs a _FlowControlMixin transport: it swaps protocols."""
    data = b"x" * 300_000
    path = tmp_path / "payload"
    path.write_bytes(data)

    async def main():
        server, tr, proto, sproto = await pair(loop)
        from asyncio import base_events

        with open(path, "rb") as f:
            n = await loop._sendfile_fallback(tr, f, 0, None)
        assert n == len(data)
        assert tr.get_protocol() is proto
        got = await sproto.wait_bytes(len(data))
        await shutdown(server, proto, sproto)
        assert base_events  # imported for the fallback protocol class
        return got

    assert run(loop, main()) == data


# ---- unix sockets, servers, loop shutdown ----------------------------------------


def test_unix_stream_echo(loop, loop_kind, sockdir):  # noqa: F811
    path = f"{sockdir}/s"

    async def main():
        factory, made = factory_list(loop, echo=True)
        server = await loop.create_unix_server(factory, path)
        tr, proto = await loop.create_unix_connection(lambda: Recorder(loop), path)
        check_kind(loop_kind, tr)
        sproto = await first(made)
        check_kind(loop_kind, sproto.transport)
        payload = b"unix " * 300_000
        tr.write(payload)
        got = await proto.wait_bytes(len(payload))
        assert tr.get_extra_info("peername") == path
        await shutdown(server, proto, sproto)
        return got, payload

    got, payload = run(loop, main())
    assert got == payload


def active_connections(server):
    """asyncio.Server's count of its connections: _active_count before 3.13,
    the size of its _clients WeakSet from 3.13."""
    if sys.version_info >= (3, 13):
        return len(server._clients)
    return server._active_count


def test_server_close_with_live_connections(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop, server_kwargs={"echo": True})
        assert active_connections(server) == 1
        server.close()
        # The accepted connection outlives the listening socket.  (From
        # 3.12.1 wait_closed() waits for it, so it comes last.)
        tr.write(b"still here")
        assert await proto.wait_bytes(10) == b"still here"
        assert active_connections(server) == 1
        tr.close()
        await proto.lost
        await sproto.lost
        await server.wait_closed()
        await asyncio.sleep(0)
        return active_connections(server)

    assert run(loop, main()) == 0


@pytest.mark.skipif(sys.version_info < (3, 13), reason="Server.close_clients() is new in 3.13")
def test_server_close_clients_closes_accepted_transports(loop):
    """3.13's Server keeps its transports (_attach/_detach take one), so
    close_clients() reaches the C transport too (it once raised TypeError
    in _attach, which asyncio swallows: no connection was ever made)."""
    async def main():
        server, tr, proto, sproto = await pair(loop)
        server.close()
        server.close_clients()
        await sproto.lost
        await proto.lost
        await server.wait_closed()
        return len(server._clients)

    assert run(loop, main()) == 0


def test_debug_mode_uses_asyncio_transport(loop, loop_kind):
    loop.set_debug(True)

    async def main():
        server, tr, proto, sproto = await pair(loop)
        await shutdown(server, proto, sproto)
        return tr

    tr = run(loop, main())
    assert type(tr).__name__ == "_SelectorSocketTransport"


def test_private_selector_methods_see_transport(loop):
    """Code that removes the fd's reader behind the transport's back (as
    _sendfile_native does through pause_reading) leaves it consistent."""

    async def main():
        server, tr, proto, sproto = await pair(loop)
        fd = tr._sock_fd
        assert loop._selector.get_key(fd).events & 1
        with pytest.raises(RuntimeError, match="is used by transport"):
            loop.add_reader(fd, lambda: None)
        assert loop._remove_reader(fd) is True
        assert loop._remove_reader(fd) is False
        assert tr.is_reading()  # as the stdlib: the flag is the transport's
        tr.pause_reading()
        tr.resume_reading()
        sproto.transport.write(b"back")
        assert await proto.wait_bytes(4) == b"back"
        await shutdown(server, proto, sproto)

    run(loop, main())


def test_transport_repr_regex_matches_stdlib_format(loop, loop_kind):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        fill_write_buffer(tr, proto, until_paused=False)
        text = repr(tr)
        tr.abort()
        await proto.lost
        conn.close()
        listener.close()
        return text

    text = run(loop, main())
    assert re.fullmatch(
        TRANSPORT_NAME[loop_kind] + r" fd=\d+ read=polling write=<polling, bufsize=\d+>",
        text[1:-1],
    ), text


def test_many_connections_timeout_bound(loop):
    async def main():
        server, tr, proto, sproto = await pair(loop, server_kwargs={"echo": True})
        conns = []
        port = server.sockets[0].getsockname()[1]
        for _ in range(20):
            conns.append(await loop.create_connection(lambda: Recorder(loop), HOST, port))
        for i, (t, p) in enumerate(conns):
            t.write(b"%d" % i)
        for i, (t, p) in enumerate(conns):
            assert await asyncio.wait_for(p.wait_bytes(len(b"%d" % i)), TIMEOUT) == b"%d" % i
            t.close()
            await p.lost
        await shutdown(server, proto, sproto)

    run(loop, main())




def test_protocol_callbacks_context(loop):
    """data_received runs in a copy of the context current when reading started
    (at connection, and again at each resume_reading()); a value set in one
    callback is seen by the next (the same context is entered for every event)."""
    import contextvars

    var = contextvars.ContextVar("var", default="unset")
    seen = []

    class Seeing(Recorder):
        def data_received(self, data):
            seen.append(var.get())
            var.set("set in data_received")
            super().data_received(data)

    async def talk():
        var.set("before connect")
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(lambda: Seeing(loop), a)
        var.set("changed after connect")
        b.sendall(b"one")
        await proto.wait_bytes(3)
        b.sendall(b"two")
        await proto.wait_bytes(6)
        tr.pause_reading()
        var.set("at resume")
        tr.resume_reading()  # reading restarts in a copy of this context
        b.sendall(b"three")
        await proto.wait_bytes(11)
        tr.close()
        await proto.lost
        b.close()
        return var.get()

    assert run(loop, talk()) == "at resume"
    assert seen == ["before connect", "set in data_received", "at resume"]



def _one_iteration(loop, fault_at=0):
    """Run one loop iteration, with the C fault countdown armed at fault_at."""
    from quickloop import _core

    loop.call_soon(loop.stop)
    _core._set_fault_countdown(fault_at)
    try:
        loop.run_forever()
    finally:
        _core._set_fault_countdown(0)


def test_memory_errors_in_write_and_read_paths(loop, loop_kind):
    """quickloop only (its C fault hook): a write whose buffering fails raises
    MemoryError and leaves nothing buffered nor a writer registered; a read
    whose bytes cannot be made is a fatal read error, as an OSError would be."""
    if loop_kind != "quickloop":
        pytest.skip("quickloop._core._set_fault_countdown is quickloop's C fault hook")
    from quickloop import _core

    async def connect():
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(lambda: Recorder(loop), a)
        return tr, proto, b

    tr, proto, b = run(loop, connect())
    fd = tr._sock_fd
    _core._set_fault_countdown(1)
    try:
        with pytest.raises(MemoryError):
            tr.write(b"x" * 4_000_000)  # more than the kernel takes at once
    finally:
        _core._set_fault_countdown(0)
    assert tr.get_write_buffer_size() == 0
    assert not loop._selector.get_key(fd).events & 2  # no writer left behind
    sent_early = len(b.recv(8_000_000, socket.MSG_DONTWAIT))  # what the kernel took

    tr.write(b"y" * 4_000_000)  # the transport still works
    assert tr.get_write_buffer_size() > 0
    b.setblocking(False)
    got = 0
    while got < 4_000_000:
        _one_iteration(loop)
        try:
            got += len(b.recv(1 << 20))
        except BlockingIOError:
            pass
    assert got == 4_000_000 and sent_early > 0

    errors = []
    loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
    b.sendall(b"ping")
    _one_iteration(loop, fault_at=1)  # the read's bytes object fails
    run(loop, proto.lost, errors=errors)
    assert [e["message"] for e in errors] == ["Fatal read error on socket transport"]
    assert isinstance(errors[0]["exception"], MemoryError)
    assert isinstance(proto.lost.result(), MemoryError)
    assert bytes(proto.data) == b""
    b.close()


def test_read_event_dropped_by_pause_resume_in_same_iteration(loop):
    """A read event already reported when a callback earlier in the same
    iteration pauses and resumes reading is dropped (asyncio cancels the
    reader's handle); the data is read one iteration later."""

    async def connect():
        a, b = socket.socketpair()
        tr, proto = await loop.connect_accepted_socket(lambda: Recorder(loop), a)
        return tr, proto, b

    tr, proto, b = run(loop, connect())

    def pause_resume():
        tr.pause_reading()
        tr.resume_reading()

    b.sendall(b"data")
    loop.call_soon(pause_resume)
    loop.call_soon(loop.stop)
    loop.run_forever()  # one iteration: the fd is reported readable in it
    assert bytes(proto.data) == b""
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert bytes(proto.data) == b"data"
    tr.close()
    run(loop, proto.lost)
    b.close()


def test_bulk_receive_from_thread_writer(loop):
    """3 MiB of patterned data from a blocking writer thread: every read size,
    from small to the 256 KiB maximum, delivers the bytes in order."""
    import threading

    payload = b"".join(i.to_bytes(4, "big") for i in range(3 * 1024 * 1024 // 4))
    sizes = []

    class Sizes(Recorder):
        def data_received(self, data):
            sizes.append(len(data))
            super().data_received(data)

    async def main():
        a, b = socket.socketpair()
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        tr, proto = await loop.connect_accepted_socket(lambda: Sizes(loop), a)
        writer = threading.Thread(target=b.sendall, args=(payload,))
        writer.start()
        got = await proto.wait_bytes(len(payload))
        writer.join()
        tr.close()
        await proto.lost
        b.close()
        return got

    assert run(loop, main()) == payload
    assert max(sizes) <= 256 * 1024
