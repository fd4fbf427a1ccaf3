"""Every asyncio.AbstractEventLoop method, exercised: networking, TLS, pipes, subprocesses.

quickloop.Loop inherits asyncio's selector-loop transports, which register their
fds with the C core.  Every test body runs on the stdlib loop (the referee) and on
quickloop through the ``loop`` / ``loop_kind`` fixtures of conftest.py, with the
same expected observable results: data, exceptions and their messages, protocol
callback order.  Expected values are CPython 3.11's asyncio behaviour.

Everything is on loopback (127.0.0.1, ::1 when available) or on Unix sockets in a
short temporary directory.  Nothing sleeps for timing luck: waits are on futures,
bounded by asyncio.wait_for(TIMEOUT).  The certificates in tests/netdata/ are
CPython's test certificates (see tests/netdata/README.md).
"""
import asyncio
import concurrent.futures
import errno
import inspect
import io
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import threading

import pytest

TIMEOUT = 10.0
HOST = "127.0.0.1"
NETDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "netdata")
CERTFILE = os.path.join(NETDATA, "keycert3.pem")  # key + cert for "localhost"
CAFILE = os.path.join(NETDATA, "pycacert.pem")  # the CA that signed it
PUBLIC_METHODS = sorted(n for n in dir(asyncio.AbstractEventLoop) if not n.startswith("_"))


def _has_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


HAS_IPV6 = _has_ipv6()


# ---- helpers ----------------------------------------------------------------


def run(loop, coro, *, timeout=TIMEOUT, errors=None):
    """Run coro on loop, bounded by timeout; fail on anything the loop logged.

    Pass a list as ``errors`` to collect the exception-handler contexts instead.
    """
    logged = [] if errors is None else errors
    loop.set_exception_handler(lambda lp, ctx: logged.append(ctx))
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        loop.set_exception_handler(None)
        if errors is None:
            assert not logged, [
                (ctx.get("message"), repr(ctx.get("exception"))) for ctx in logged
            ]


def server_ssl_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERTFILE)
    return ctx


def client_ssl_context():
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=CAFILE)
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    return ctx


def refusing_socket(family=socket.AF_INET, host=HOST):
    """A bound, never-listening TCP socket: connecting to its address is refused."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    return s


@pytest.fixture
def sockdir():
    """A short temporary directory for Unix socket paths (sun_path is 108 bytes)."""
    path = tempfile.mkdtemp(prefix="qlnet", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Recorder(asyncio.Protocol):
    """A stream protocol recording its callbacks in order.

    ``events`` holds 'made', 'data' (consecutive data_received calls collapse into
    one, since chunking is up to the kernel), 'eof', 'pause', 'resume', 'lost'.
    """

    def __init__(self, loop, *, echo=False, upper=False, eof_reply=None, keep_open=None):
        self.loop = loop
        self.echo = echo
        self.upper = upper
        self.eof_reply = eof_reply
        self.keep_open = keep_open
        self.transport = None
        self.events = []
        self.data = bytearray()
        self.made = loop.create_future()
        self.eof = loop.create_future()
        self.lost = loop.create_future()
        self.paused = loop.create_future()
        self.resumed = loop.create_future()
        self._waiters = []

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport
        self.made.set_result(transport)

    def data_received(self, data):
        assert type(data) is bytes
        if not self.events or self.events[-1] != "data":
            self.events.append("data")
        self.data += data
        if self.echo:
            self.transport.write(data.upper() if self.upper else data)
        self._wake()

    def eof_received(self):
        self.events.append("eof")
        self.eof.set_result(None)
        if self.eof_reply is not None:
            self.transport.write(self.eof_reply + bytes(self.data))
            self.transport.close()
        return self.keep_open

    def pause_writing(self):
        self.events.append("pause")
        if not self.paused.done():
            self.paused.set_result(None)

    def resume_writing(self):
        self.events.append("resume")
        if not self.resumed.done():
            self.resumed.set_result(None)

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)
        self._wake()

    def _wake(self):
        for n, fut in list(self._waiters):
            if (len(self.data) >= n or self.lost.done()) and not fut.done():
                fut.set_result(None)

    async def wait_bytes(self, n):
        """Wait until n bytes in total were received (or the connection was lost)."""
        fut = self.loop.create_future()
        self._waiters.append((n, fut))
        self._wake()
        await fut
        self._waiters.remove((n, fut))
        return bytes(self.data)


class Made(list):
    """The protocols a factory made; ``created`` resolves with the first one."""

    def __init__(self, loop):
        super().__init__()
        self.created = loop.create_future()

    def append(self, proto):
        super().append(proto)
        if not self.created.done():
            self.created.set_result(proto)


def factory_list(loop, **kwargs):
    """A protocol factory making Recorders, and the list of what it made."""
    made = Made(loop)

    def factory():
        proto = Recorder(loop, **kwargs)
        made.append(proto)
        return proto

    return factory, made


async def first(made):
    """The first protocol a server made, once it is connected."""
    proto = await made.created
    await proto.made
    return proto


async def echo_server(loop, host=HOST, **kwargs):
    factory, made = factory_list(loop, echo=True, upper=True)
    server = await loop.create_server(factory, host, 0, **kwargs)
    return server, made


async def close_and_wait(*protos):
    for p in protos:
        if p.transport is not None and not p.transport.is_closing():
            p.transport.close()
    for p in protos:
        await p.lost


async def recv_exactly(loop, sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = await loop.sock_recv(sock, n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


async def recv_until_eof(loop, sock):
    buf = bytearray()
    while True:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            return bytes(buf)
        buf += chunk


async def connect_to_nonreading_peer(loop):
    """A client transport whose peer (a raw socket the test holds) does not read.

    Both ends get small kernel buffers so the transport's own buffer fills fast.
    Returns (listener, conn, transport, protocol).
    """
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    listener.bind((HOST, 0))
    listener.listen(1)
    listener.setblocking(False)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.setblocking(False)
    accepting = asyncio.ensure_future(loop.sock_accept(listener), loop=loop)
    await loop.sock_connect(client, listener.getsockname())
    conn, _ = await accepting
    tr, proto = await loop.create_connection(lambda: Recorder(loop), sock=client)
    return listener, conn, tr, proto


def fill_write_buffer(tr, proto, *, until_paused):
    """Write until the transport buffers (or pauses the protocol); bounded."""
    chunk = b"f" * 65536
    written = 0
    while written < 64 * 1024 * 1024:
        tr.write(chunk)
        written += len(chunk)
        if until_paused and proto.paused.done():
            break
        if not until_paused and tr.get_write_buffer_size() > 0:
            break
    return written


# ---- every method exists, and every method has a test ------------------------

# METHOD -> tests of this module that call it (directly, as ``.METHOD(``).
COVERAGE = {
    "add_reader": ["test_add_remove_reader_writer"],
    "add_writer": ["test_add_remove_reader_writer"],
    "remove_reader": ["test_add_remove_reader_writer"],
    "remove_writer": ["test_add_remove_reader_writer"],
    "add_signal_handler": ["test_add_remove_signal_handler"],
    "remove_signal_handler": ["test_add_remove_signal_handler"],
    "call_at": ["test_call_soon_later_at_threadsafe_time"],
    "call_later": ["test_call_soon_later_at_threadsafe_time"],
    "call_soon": ["test_call_soon_later_at_threadsafe_time", "test_run_forever_stop_close"],
    "call_soon_threadsafe": ["test_call_soon_later_at_threadsafe_time"],
    "time": ["test_call_soon_later_at_threadsafe_time"],
    "call_exception_handler": ["test_exception_handlers"],
    "default_exception_handler": ["test_exception_handlers"],
    "get_exception_handler": ["test_exception_handlers"],
    "set_exception_handler": ["test_exception_handlers"],
    "close": ["test_run_forever_stop_close"],
    "is_closed": ["test_run_forever_stop_close"],
    "is_running": ["test_run_forever_stop_close"],
    "run_forever": ["test_run_forever_stop_close"],
    "run_until_complete": ["test_run_forever_stop_close"],
    "stop": ["test_run_forever_stop_close"],
    "create_future": ["test_futures_tasks_task_factory"],
    "create_task": ["test_futures_tasks_task_factory"],
    "get_task_factory": ["test_futures_tasks_task_factory"],
    "set_task_factory": ["test_futures_tasks_task_factory"],
    "get_debug": ["test_debug_executors_asyncgens"],
    "set_debug": ["test_debug_executors_asyncgens", "test_sock_methods_errors"],
    "run_in_executor": ["test_debug_executors_asyncgens"],
    "set_default_executor": ["test_debug_executors_asyncgens"],
    "shutdown_default_executor": ["test_debug_executors_asyncgens"],
    "shutdown_asyncgens": ["test_debug_executors_asyncgens"],
    "getaddrinfo": ["test_getaddrinfo_getnameinfo"],
    "getnameinfo": ["test_getaddrinfo_getnameinfo"],
    "create_connection": [
        "test_create_connection_host_port_echo",
        "test_create_connection_sock",
        "test_create_connection_local_addr",
        "test_create_connection_refused",
        "test_create_connection_happy_eyeballs",
        "test_create_connection_argument_errors",
        "test_create_connection_ssl",
        "test_create_connection_ssl_verification_fails",
        "test_ssl_handshake_timeout_expires",
        "test_ssl_shutdown_timeout_expires",
        "test_ipv6_connection",
    ],
    "create_server": [
        "test_create_server_backlog_reuse_port",
        "test_create_server_start_serving_false",
        "test_create_server_several_hosts",
        "test_server_serve_forever_cancelled",
        "test_server_close_wait_closed_async_with",
    ],
    "create_unix_connection": ["test_unix_connection_and_server"],
    "create_unix_server": ["test_unix_connection_and_server"],
    "connect_accepted_socket": ["test_connect_accepted_socket"],
    "create_datagram_endpoint": [
        "test_datagram_echo_remote_addr",
        "test_datagram_reuse_port_allow_broadcast",
        "test_datagram_error_received",
    ],
    "start_tls": ["test_start_tls_upgrade"],
    "sendfile": ["test_sendfile_native", "test_sendfile_fallback"],
    "sock_accept": ["test_sock_tcp_methods"],
    "sock_connect": ["test_sock_tcp_methods", "test_sock_methods_errors"],
    "sock_recv": ["test_sock_tcp_methods", "test_sock_methods_errors"],
    "sock_recv_into": ["test_sock_tcp_methods"],
    "sock_sendall": ["test_sock_tcp_methods"],
    "sock_recvfrom": ["test_sock_udp_methods"],
    "sock_recvfrom_into": ["test_sock_udp_methods"],
    "sock_sendto": ["test_sock_udp_methods"],
    "sock_sendfile": ["test_sock_sendfile"],
    "connect_read_pipe": ["test_read_pipe", "test_write_pipe"],
    "connect_write_pipe": ["test_write_pipe", "test_write_pipe_broken"],
    "subprocess_exec": ["test_subprocess_exec_protocol"],
    "subprocess_shell": ["test_subprocess_shell_protocol"],
}


def test_every_abstract_method_is_implemented(loop):
    assert len(PUBLIC_METHODS) >= 50
    missing, stubs = [], []
    for name in PUBLIC_METHODS:
        impl = getattr(type(loop), name, None)
        if impl is None or not callable(getattr(loop, name)):
            missing.append(name)
        elif impl is getattr(asyncio.AbstractEventLoop, name):
            stubs.append(name)
    assert missing == []
    assert stubs == [], "still AbstractEventLoop's NotImplementedError stubs"


def test_every_method_has_a_test(loop):
    assert sorted(COVERAGE) == PUBLIC_METHODS
    module = sys.modules[__name__]
    for name, tests in COVERAGE.items():
        assert hasattr(loop, name)
        assert tests, name
        sources = []
        for test_name in tests:
            fn = getattr(module, test_name, None)
            assert callable(fn) and test_name.startswith("test_"), test_name
            sources.append(inspect.getsource(fn))
        assert any(f".{name}(" in src for src in sources), (
            f"none of {tests} calls .{name}(")


# ---- the loop core ----------------------------------------------------------


def test_run_forever_stop_close(loop):
    seen = []
    assert not loop.is_running() and not loop.is_closed()
    loop.call_soon(lambda: seen.append(("running", loop.is_running())))
    loop.call_soon(lambda: loop.stop())
    loop.call_soon(lambda: seen.append("after stop, same iteration"))
    loop.run_forever()
    assert seen == [("running", True), "after stop, same iteration"]
    assert not loop.is_running()

    async def answer():
        await asyncio.sleep(0)
        return 42

    assert loop.run_until_complete(answer()) == 42
    fut = loop.create_future()
    loop.call_soon(fut.set_exception, KeyError("k"))
    with pytest.raises(KeyError):
        loop.run_until_complete(fut)
    loop.close()
    assert loop.is_closed()
    loop.close()  # idempotent
    coro = answer()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.run_forever()


def test_call_soon_later_at_threadsafe_time(loop):
    order = []

    async def main():
        done = loop.create_future()
        t0 = loop.time()
        assert isinstance(t0, float)
        loop.call_later(0.02, order.append, "later")
        h = loop.call_at(t0 + 0.01, order.append, "at")
        assert h.when() == t0 + 0.01
        loop.call_soon(order.append, "soon1")
        loop.call_soon(order.append, "soon2")
        cancelled = loop.call_soon(order.append, "cancelled")
        cancelled.cancel()
        def from_thread():
            loop.call_soon_threadsafe(order.append, "threadsafe")

        thread = threading.Thread(target=from_thread)
        thread.start()
        loop.call_later(0.03, done.set_result, None)
        await done
        await loop.run_in_executor(None, thread.join)
        assert loop.time() >= t0

    run(loop, main())
    assert [x for x in order if x != "threadsafe"] == ["soon1", "soon2", "at", "later"]
    assert order.count("threadsafe") == 1


def test_futures_tasks_task_factory(loop):
    created = []

    def factory(lp, coro, **kwargs):
        task = asyncio.Task(coro, loop=lp, **kwargs)
        created.append(task)
        return task

    async def child(x):
        await asyncio.sleep(0)
        return x * 2

    async def main():
        fut = loop.create_future()
        assert isinstance(fut, asyncio.Future) and fut.get_loop() is loop
        loop.call_soon(fut.set_result, "ok")
        assert await fut == "ok"
        t = loop.create_task(child(1), name="plain")
        assert t.get_name() == "plain"
        assert await t == 2
        assert loop.get_task_factory() is None
        loop.set_task_factory(factory)
        assert loop.get_task_factory() is factory
        t2 = loop.create_task(child(5))
        assert created == [t2]
        assert await t2 == 10
        loop.set_task_factory(None)
        assert loop.get_task_factory() is None
        with pytest.raises(TypeError, match="task factory must be a callable or None"):
            loop.set_task_factory(1)

    run(loop, main())


def test_exception_handlers(loop, caplog):
    seen = []

    def handler(lp, ctx):
        seen.append((lp is loop, ctx["message"], type(ctx.get("exception"))))

    def boom():
        raise ZeroDivisionError("boom")

    async def main():
        assert loop.get_exception_handler() is None
        loop.set_exception_handler(handler)
        assert loop.get_exception_handler() is handler
        loop.call_exception_handler({"message": "custom"})
        loop.call_soon(boom)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        loop.set_exception_handler(None)
        with pytest.raises(TypeError, match="A callable object or None is expected, got 1"):
            loop.set_exception_handler(1)
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            loop.default_exception_handler({"message": "from default", "extra": "xyz"})
            loop.call_exception_handler({"message": "no handler installed"})

    loop.run_until_complete(main())
    assert seen[0] == (True, "custom", type(None))
    assert seen[1][0] is True and seen[1][2] is ZeroDivisionError
    assert seen[1][1].startswith("Exception in callback")
    assert len(seen) == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert any("from default" in m and "extra: 'xyz'" in m for m in messages), messages
    assert any("no handler installed" in m for m in messages), messages


def test_debug_executors_asyncgens(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append("agen")

    async def main():
        loop.set_debug(True)
        assert loop.get_debug() is True
        loop.set_debug(False)
        assert loop.get_debug() is False
        assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qlnet-pool")
        with pytest.raises(TypeError, match="executor must be ThreadPoolExecutor instance"):
            loop.set_default_executor(object())
        loop.set_default_executor(pool)
        name = await loop.run_in_executor(None, lambda: threading.current_thread().name)
        assert name.startswith("qlnet-pool")
        explicit = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="qlnet-expl")
        name = await loop.run_in_executor(
            explicit, lambda: threading.current_thread().name)
        assert name.startswith("qlnet-expl")
        explicit.shutdown(wait=True)
        await loop.shutdown_default_executor()
        with pytest.raises(RuntimeError, match="Executor shutdown has been called"):
            await loop.run_in_executor(None, sum, [1])
        g = agen()
        assert await g.__anext__() == 1
        await loop.shutdown_asyncgens()  # closes the suspended generator
        assert finalized == ["agen"]
        with pytest.raises(StopAsyncIteration):
            await g.__anext__()

    run(loop, main())


def test_add_remove_reader_writer(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    events = []

    async def main():
        writable = loop.create_future()
        readable = loop.create_future()

        def on_writable(tag):
            events.append(("writable", tag))
            assert loop.remove_writer(a) is True
            writable.set_result(None)

        def on_readable(tag):
            data = b.recv(100)
            events.append(("readable", tag, data))
            if not readable.done():
                readable.set_result(None)

        loop.add_writer(a, on_writable, "a")
        await writable
        assert loop.remove_writer(a) is False
        loop.add_reader(b.fileno(), on_readable, "b")
        a.send(b"hello")
        await readable
        assert loop.remove_reader(b.fileno()) is True
        assert loop.remove_reader(b.fileno()) is False

    try:
        run(loop, main())
    finally:
        a.close()
        b.close()
    assert events == [("writable", "a"), ("readable", "b", b"hello")]


def test_add_remove_signal_handler(loop):
    got = []

    async def main():
        fired = loop.create_future()

        def handler(tag):
            got.append(tag)
            fired.set_result(None)

        loop.add_signal_handler(signal.SIGUSR1, handler, "usr1")
        os.kill(os.getpid(), signal.SIGUSR1)
        await fired
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
        assert loop.remove_signal_handler(signal.SIGUSR1) is False
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        with pytest.raises(RuntimeError, match=f"sig {int(signal.SIGKILL)} cannot be caught"):
            loop.add_signal_handler(signal.SIGKILL, handler, "kill")

        async def coro():
            pass

        with pytest.raises(TypeError, match="coroutines cannot be used with add_signal_handler"):
            loop.add_signal_handler(signal.SIGUSR2, coro)

    run(loop, main())
    assert got == ["usr1"]


# ---- name resolution --------------------------------------------------------


def test_getaddrinfo_getnameinfo(loop):
    async def main():
        for host, port, kw in [
            (HOST, 80, dict(type=socket.SOCK_STREAM)),
            ("localhost", 8080, dict(family=socket.AF_INET, type=socket.SOCK_DGRAM)),
            (None, 0, dict(type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)),
        ]:
            got = await loop.getaddrinfo(host, port, **kw)
            assert got == socket.getaddrinfo(host, port, **kw)
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("not-an-address", 80, flags=socket.AI_NUMERICHOST)
        flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        assert await loop.getnameinfo((HOST, 80), flags) == (HOST, "80")
        assert await loop.getnameinfo((HOST, 443), flags) == socket.getnameinfo((HOST, 443), flags)

    run(loop, main())


# ---- create_connection ------------------------------------------------------


def test_create_connection_host_port_echo(loop):
    async def main():
        server, made = await echo_server(loop)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Recorder(loop), HOST, port)
        assert isinstance(tr, asyncio.Transport) and proto.transport is tr
        tr.write(b"hello ")
        tr.writelines([b"wor", bytearray(b"ld"), memoryview(b"!")])
        assert await proto.wait_bytes(12) == b"HELLO WORLD!"
        sproto = await first(made)
        assert bytes(sproto.data) == b"hello world!"
        # get_extra_info on both ends
        sock = tr.get_extra_info("socket")
        assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM
        assert tr.get_extra_info("sockname") == sock.getsockname()
        assert tr.get_extra_info("peername") == (HOST, port)
        assert sproto.transport.get_extra_info("peername") == tr.get_extra_info("sockname")
        assert tr.get_extra_info("sslcontext") is None
        assert tr.get_extra_info("no-such-key", "dflt") == "dflt"
        assert tr.is_reading() and not tr.is_closing()
        assert tr.get_protocol() is proto
        tr.close()
        assert tr.is_closing()
        assert await proto.lost is None
        assert await sproto.lost is None
        server.close()
        await server.wait_closed()
        return proto.events, sproto.events

    client_events, server_events = run(loop, main())
    assert client_events == ["made", "data", "lost"]
    assert server_events == ["made", "data", "eof", "lost"]


def test_create_connection_sock(loop):
    async def main():
        server, made = await echo_server(loop)
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, server.sockets[0].getsockname())
        tr, proto = await loop.create_connection(lambda: Recorder(loop), sock=sock)
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        tr.write(b"via sock")
        assert await proto.wait_bytes(8) == b"VIA SOCK"
        with pytest.raises(ValueError, match="host/port and sock can not be specified"):
            await loop.create_connection(lambda: Recorder(loop), HOST, 1, sock=sock)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(ValueError, match="A Stream Socket was expected"):
            await loop.create_connection(lambda: Recorder(loop), sock=udp)
        udp.close()
        await close_and_wait(proto)
        assert sock.fileno() == -1  # the transport owned it
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_create_connection_local_addr(loop):
    async def main():
        server, made = await echo_server(loop)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(
            lambda: Recorder(loop), HOST, port, local_addr=(HOST, 0))
        local = tr.get_extra_info("sockname")
        assert local[0] == HOST and local[1] != 0
        sproto = await first(made)
        assert sproto.transport.get_extra_info("peername") == local
        # a local address that is already in use by a listening socket
        taken = server.sockets[0].getsockname()
        with pytest.raises(OSError) as info:
            await loop.create_connection(
                lambda: Recorder(loop), HOST, port, local_addr=taken)
        assert info.value.errno == errno.EADDRINUSE
        await close_and_wait(proto)
        await sproto.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_create_connection_refused(loop):
    r1, r2 = refusing_socket(), refusing_socket()
    a1, a2 = r1.getsockname(), r2.getsockname()

    async def fake_getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", a1),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", a2)]

    async def main():
        with pytest.raises(ConnectionRefusedError) as info:
            await loop.create_connection(lambda: Recorder(loop), *a1)
        assert str(info.value) == f"[Errno {errno.ECONNREFUSED}] Connect call failed {a1!r}"
        loop.getaddrinfo = fake_getaddrinfo
        with pytest.raises(OSError) as info:
            await loop.create_connection(lambda: Recorder(loop), "two.invalid", 80)
        assert str(info.value) == (
            f"Multiple exceptions: [Errno {errno.ECONNREFUSED}] Connect call failed {a1!r}, "
            f"[Errno {errno.ECONNREFUSED}] Connect call failed {a2!r}")
        with pytest.raises(OSError, match="^Multiple exceptions: "):
            await loop.create_connection(
                lambda: Recorder(loop), "two.invalid", 80, happy_eyeballs_delay=0.05)

    try:
        run(loop, main())
    finally:
        r1.close()
        r2.close()


def test_create_connection_happy_eyeballs(loop):
    # addresses that refuse come first (an IPv6 one too when ::1 exists)
    refusing = [refusing_socket()]
    if HAS_IPV6:
        refusing.insert(0, refusing_socket(socket.AF_INET6, "::1"))
    calls = []

    async def main():
        server, made = await echo_server(loop)
        good = server.sockets[0].getsockname()

        async def fake_getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
            calls.append((host, port))
            bad = [(s.family, socket.SOCK_STREAM, 6, "", s.getsockname()) for s in refusing]
            return bad + [(socket.AF_INET, socket.SOCK_STREAM, 6, "", good)]

        loop.getaddrinfo = fake_getaddrinfo
        results = []
        for kwargs in (dict(happy_eyeballs_delay=0.25),
                       dict(happy_eyeballs_delay=0.25, interleave=1),
                       dict()):
            tr, proto = await loop.create_connection(
                lambda: Recorder(loop), "multi.invalid", 4242, **kwargs)
            results.append(tr.get_extra_info("peername"))
            tr.write(b"eyeballs")
            assert await proto.wait_bytes(8) == b"EYEBALLS"
            await close_and_wait(proto)
        server.close()
        await server.wait_closed()
        return results, good

    try:
        results, good = run(loop, main())
    finally:
        for s in refusing:
            s.close()
    assert results == [good, good, good]
    assert calls == [("multi.invalid", 4242)] * 3


def test_create_connection_argument_errors(loop):
    async def main():
        factory = lambda: Recorder(loop)  # noqa: E731
        with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
            await loop.create_connection(factory, HOST, 1, server_hostname="x")
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
            await loop.create_connection(factory, HOST, 1, ssl_handshake_timeout=1)
        with pytest.raises(ValueError, match="ssl_shutdown_timeout is only meaningful with ssl"):
            await loop.create_connection(factory, HOST, 1, ssl_shutdown_timeout=1)
        with pytest.raises(ValueError, match="host and port was not specified and no sock"):
            await loop.create_connection(factory)
        with socket.socket() as sock:
            with pytest.raises(ValueError, match="You must set server_hostname when using ssl"):
                await loop.create_connection(factory, sock=sock, ssl=True)

    run(loop, main())


# ---- TLS --------------------------------------------------------------------


def test_create_connection_ssl(loop):
    sctx, cctx = server_ssl_context(), client_ssl_context()

    async def main():
        server, made = await echo_server(loop, ssl=sctx, ssl_handshake_timeout=TIMEOUT)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(
            lambda: Recorder(loop), HOST, port, ssl=cctx, server_hostname="localhost",
            ssl_handshake_timeout=TIMEOUT, ssl_shutdown_timeout=TIMEOUT)
        tr.write(b"secret")
        assert await proto.wait_bytes(6) == b"SECRET"
        sproto = await first(made)
        assert tr.get_extra_info("sslcontext") is cctx
        assert sproto.transport.get_extra_info("sslcontext") is sctx
        ssl_object = tr.get_extra_info("ssl_object")
        assert isinstance(ssl_object, ssl.SSLObject)
        assert ssl_object.server_hostname == "localhost"
        peercert = tr.get_extra_info("peercert")
        assert ("commonName", "localhost") in [x for rdn in peercert["subject"] for x in rdn]
        assert tr.get_extra_info("cipher") == ssl_object.cipher()
        assert tr.get_extra_info("peername") == (HOST, port)
        assert tr.get_extra_info("socket").getpeername() == (HOST, port)
        assert tr.can_write_eof() is False
        # a bigger payload crosses several TLS records
        payload = bytes(range(256)) * 1024
        tr.write(payload)
        got = await proto.wait_bytes(6 + len(payload))
        assert got[6:] == payload.upper()
        tr.close()
        assert await proto.lost is None
        assert await sproto.lost is None
        server.close()
        await server.wait_closed()
        return proto.events, sproto.events

    client_events, server_events = run(loop, main())
    # a TLS close is a close_notify exchange: the closing side sees the peer's EOF too
    assert client_events == ["made", "data", "eof", "lost"]
    assert server_events == ["made", "data", "eof", "lost"]


def test_create_connection_ssl_verification_fails(loop):
    sctx = server_ssl_context()

    async def main():
        server, made = await echo_server(loop, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        # the right CA but the wrong name
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            await loop.create_connection(
                lambda: Recorder(loop), HOST, port, ssl=client_ssl_context(),
                server_hostname="not-localhost")
        # no CA that knows the server's certificate
        no_ca = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
            await loop.create_connection(
                lambda: Recorder(loop), HOST, port, ssl=no_ca, server_hostname="localhost")
        server.close()
        await server.wait_closed()
        return made

    errors = []
    made = run(loop, main(), errors=errors)
    assert len(made) == 2  # made at accept time, but never connected:
    assert [p.events for p in made] == [[], []]
    for ctx in errors:  # only handshake failures may be reported
        assert isinstance(ctx.get("exception"), (ssl.SSLError, ConnectionError)), ctx


def test_ssl_handshake_timeout_expires(loop):
    async def main():
        # a plain TCP server that never answers the ClientHello
        factory, made = factory_list(loop)
        server = await loop.create_server(factory, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionAbortedError) as info:
            await loop.create_connection(
                lambda: Recorder(loop), HOST, port, ssl=client_ssl_context(),
                server_hostname="localhost", ssl_handshake_timeout=0.2)
        sproto = await first(made)
        assert await sproto.lost is None  # the client aborted the TCP connection
        assert sproto.data.startswith(b"\x16\x03")  # it did send a TLS handshake record
        server.close()
        await server.wait_closed()
        return str(info.value)

    msg = run(loop, main())
    assert msg == "SSL handshake is taking longer than 0.2 seconds: aborting the connection"


def test_ssl_shutdown_timeout_expires(loop):
    sctx, cctx = server_ssl_context(), client_ssl_context()

    async def main():
        server, made = await echo_server(loop, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(
            lambda: Recorder(loop), HOST, port, ssl=cctx, server_hostname="localhost",
            ssl_shutdown_timeout=0.2)
        tr.write(b"x")
        await proto.wait_bytes(1)
        sproto = await first(made)
        # the server stops reading: it never answers the client's close_notify
        sproto.transport.pause_reading()
        tr.close()
        exc = await proto.lost
        sproto.transport.abort()
        await sproto.lost
        server.close()
        await server.wait_closed()
        return exc

    exc = run(loop, main())
    assert isinstance(exc, asyncio.TimeoutError) and str(exc) == "SSL shutdown timed out"


def test_start_tls_upgrade(loop):
    sctx, cctx = server_ssl_context(), client_ssl_context()

    class StartTLSServer(Recorder):
        def __init__(self, loop):
            super().__init__(loop)
            self.tls = loop.create_future()

        def data_received(self, data):
            if not self.tls.done() and data == b"STARTTLS\n" and not self.data:
                self.data += data
                self.loop.create_task(self.upgrade())
            else:
                super().data_received(data)

        async def upgrade(self):
            self.transport.write(b"OK\n")
            plain = self.transport
            self.transport = await self.loop.start_tls(plain, self, sctx, server_side=True)
            self.tls.set_result((plain, self.transport))

    async def main():
        made = []

        def factory():
            made.append(StartTLSServer(loop))
            return made[-1]

        server = await loop.create_server(factory, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Recorder(loop), HOST, port)
        with pytest.raises(TypeError, match="sslcontext is expected to be an instance"):
            await loop.start_tls(tr, proto, object())
        tr.write(b"STARTTLS\n")
        assert await proto.wait_bytes(3) == b"OK\n"
        tls = await loop.start_tls(tr, proto, cctx, server_hostname="localhost",
                                   ssl_handshake_timeout=TIMEOUT)
        assert tls is not tr and tls.get_protocol() is proto
        assert tr.get_extra_info("sslcontext") is None
        assert tls.get_extra_info("sslcontext") is cctx
        tls.write(b"over tls")
        sproto = made[0]
        splain, stls = await sproto.tls
        assert stls is not splain and stls.get_protocol() is sproto
        assert stls.get_extra_info("sslcontext") is sctx
        assert splain.get_extra_info("sslcontext") is None
        assert await sproto.wait_bytes(17) == b"STARTTLS\nover tls"
        stls.write(b"reply over tls")
        assert await proto.wait_bytes(17) == b"OK\nreply over tls"
        tls.close()
        assert await proto.lost is None
        assert await sproto.lost is None
        server.close()
        await server.wait_closed()
        return proto.events, sproto.events

    client_events, server_events = run(loop, main())
    assert client_events == ["made", "data", "eof", "lost"]
    assert server_events == ["made", "data", "eof", "lost"]


# ---- servers ----------------------------------------------------------------


def test_create_server_backlog_reuse_port(loop):
    async def main():
        s1, _ = await echo_server(loop, backlog=5, reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        s2 = await loop.create_server(lambda: Recorder(loop), HOST, port, reuse_port=True)
        for srv in (s1, s2):
            sock = srv.sockets[0]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
            assert sock.getsockname() == (HOST, port)
        with pytest.raises(OSError) as info:
            await loop.create_server(lambda: Recorder(loop), HOST, port)
        assert info.value.errno == errno.EADDRINUSE
        assert "error while attempting to bind on address" in str(info.value)
        for srv in (s1, s2):
            srv.close()
            await srv.wait_closed()

    run(loop, main())


def test_create_server_start_serving_false(loop):
    async def main():
        server, made = await echo_server(loop, start_serving=False)
        assert not server.is_serving()
        sock = server.sockets[0]
        addr = sock.getsockname()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0
        probe = socket.socket()
        probe.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(probe, addr)  # bound, not yet listening
        probe.close()
        await server.start_serving()
        assert server.is_serving()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        await server.start_serving()  # idempotent
        tr, proto = await loop.create_connection(lambda: Recorder(loop), *addr)
        tr.write(b"late")
        assert await proto.wait_bytes(4) == b"LATE"
        await close_and_wait(proto)
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_create_server_several_hosts(loop):
    hosts = [HOST, "localhost"]
    expected = set()
    for h in hosts:
        for fam, _, _, _, sa in socket.getaddrinfo(
                h, 0, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE):
            expected.add((fam, sa[0]))

    async def main():
        server, made = await echo_server(loop, host=hosts)
        got = sorted((s.family, s.getsockname()[0]) for s in server.sockets)
        for i, s in enumerate(server.sockets):
            tr, proto = await loop.create_connection(
                lambda: Recorder(loop), *s.getsockname()[:2])
            tr.write(b"host%d" % i)
            assert await proto.wait_bytes(5) == b"HOST%d" % i
            await close_and_wait(proto)
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == sorted(expected)


def test_server_serve_forever_cancelled(loop):
    async def main():
        server, made = await echo_server(loop, start_serving=False)
        addr = server.sockets[0].getsockname()
        assert server.get_loop() is loop
        serving = loop.create_task(server.serve_forever())
        await asyncio.sleep(0)  # serve_forever() starts serving in its first step
        reader, writer = await asyncio.open_connection(*addr)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"PING"
        assert server.is_serving()
        with pytest.raises(RuntimeError, match="is already being awaited on serve_forever"):
            await server.serve_forever()
        serving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await serving
        assert not server.is_serving()
        assert server.sockets == ()
        # an accepted connection outlives its server
        writer.write(b"still")
        assert await reader.readexactly(5) == b"STILL"
        writer.close()
        await writer.wait_closed()
        probe = socket.socket()
        probe.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(probe, addr)
        probe.close()

    run(loop, main())


def test_server_close_wait_closed_async_with(loop):
    async def main():
        server, made = await echo_server(loop)
        assert isinstance(server, asyncio.AbstractServer)
        socks = server.sockets
        assert isinstance(socks, tuple) and len(socks) == 1
        assert isinstance(socks[0], asyncio.trsock.TransportSocket)
        addr = socks[0].getsockname()
        async with server as entered:
            assert entered is server
            assert server.is_serving()
            tr, proto = await loop.create_connection(lambda: Recorder(loop), *addr)
            tr.write(b"in")
            assert await proto.wait_bytes(2) == b"IN"
            # From 3.12.1 leaving the block waits for every connection to
            # close (wait_closed() does), so close this one first.
            await close_and_wait(proto)
        assert not server.is_serving()
        assert server.sockets == ()
        await server.wait_closed()
        server.close()  # idempotent

        other, _ = await echo_server(loop)
        other.close()
        assert not other.is_serving()
        await other.wait_closed()

    run(loop, main())


@pytest.mark.skipif(not HAS_IPV6, reason="no ::1")
def test_ipv6_connection(loop):
    async def main():
        server, made = await echo_server(loop, host="::1")
        sock = server.sockets[0]
        assert sock.family == socket.AF_INET6
        port = sock.getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Recorder(loop), "::1", port)
        assert tr.get_extra_info("peername")[:2] == ("::1", port)
        tr.write(b"six")
        assert await proto.wait_bytes(3) == b"SIX"
        await close_and_wait(proto)
        server.close()
        await server.wait_closed()

    run(loop, main())


# ---- Unix sockets, accepted sockets, datagrams --------------------------------


def test_unix_connection_and_server(loop, sockdir):
    path = os.path.join(sockdir, "s.sock")

    async def main():
        factory, made = factory_list(loop, echo=True, upper=True)
        server = await loop.create_unix_server(factory, path, backlog=10)
        assert os.path.exists(path)
        assert server.sockets[0].family == socket.AF_UNIX
        assert server.sockets[0].getsockname() == path
        tr, proto = await loop.create_unix_connection(lambda: Recorder(loop), path)
        tr.write(b"unix")
        assert await proto.wait_bytes(4) == b"UNIX"
        assert tr.get_extra_info("peername") == path
        assert tr.get_extra_info("socket").family == socket.AF_UNIX
        sproto = await first(made)
        assert sproto.transport.get_extra_info("sockname") == path
        assert tr.can_write_eof()
        tr.write_eof()
        await sproto.eof
        await close_and_wait(proto)
        await sproto.lost
        # sock= variants
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.setblocking(False)
        await loop.sock_connect(raw, path)
        tr2, proto2 = await loop.create_unix_connection(lambda: Recorder(loop), sock=raw)
        tr2.write(b"raw")
        assert await proto2.wait_bytes(3) == b"RAW"
        await close_and_wait(proto2)
        with pytest.raises(OSError) as info:
            await loop.create_unix_connection(
                lambda: Recorder(loop), os.path.join(sockdir, "missing.sock"))
        assert info.value.errno == errno.ENOENT
        server.close()
        await server.wait_closed()
        return proto.events, sproto.events

    client_events, server_events = run(loop, main())
    assert client_events == ["made", "data", "lost"]
    assert server_events == ["made", "data", "eof", "lost"]
    # Python < 3.13 leaves the socket file behind when the server closes
    assert os.path.exists(path) == (sys.version_info < (3, 13))


def test_connect_accepted_socket(loop):
    async def main():
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, peer = await accepting
        assert peer == client.getsockname()
        str_, sproto = await loop.connect_accepted_socket(
            lambda: Recorder(loop, echo=True, upper=True), conn)
        assert str_.get_extra_info("peername") == peer
        ctr, cproto = await loop.create_connection(lambda: Recorder(loop), sock=client)
        ctr.write(b"accepted")
        assert await cproto.wait_bytes(8) == b"ACCEPTED"
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(ValueError, match="A Stream Socket was expected"):
            await loop.connect_accepted_socket(lambda: Recorder(loop), udp)
        udp.close()
        await close_and_wait(cproto)
        await sproto.lost
        listener.close()
        return sproto.events

    assert run(loop, main()) == ["made", "data", "eof", "lost"]


class DatagramRecorder(asyncio.DatagramProtocol):
    def __init__(self, loop, *, echo=False):
        self.loop = loop
        self.echo = echo
        self.transport = None
        self.events = []
        self.datagrams = []
        self.errors = []
        self.got = loop.create_future()
        self.error = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")
        self.transport = transport

    def datagram_received(self, data, addr):
        self.events.append("datagram")
        self.datagrams.append((data, addr))
        if self.echo:
            self.transport.sendto(data.upper(), addr)
        if not self.got.done():
            self.got.set_result(None)

    def error_received(self, exc):
        self.events.append("error")
        self.errors.append(exc)
        if not self.error.done():
            self.error.set_result(exc)

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost.set_result(exc)


def test_datagram_echo_remote_addr(loop):
    async def main():
        str_, sproto = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(loop, echo=True), local_addr=(HOST, 0))
        addr = str_.get_extra_info("sockname")
        assert str_.get_extra_info("peername") is None
        assert str_.get_extra_info("socket").type == socket.SOCK_DGRAM
        ctr, cproto = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(loop), remote_addr=addr)
        assert ctr.get_extra_info("peername") == addr
        ctr.sendto(b"ping")
        await cproto.got
        assert cproto.datagrams == [(b"PING", addr)]
        assert sproto.datagrams == [(b"ping", ctr.get_extra_info("sockname"))]
        with pytest.raises(ValueError, match="Invalid address: must be None or"):
            ctr.sendto(b"x", (HOST, 9))
        # an unconnected client, sending to an explicit address
        utr, uproto = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(loop), family=socket.AF_INET)
        utr.sendto(b"pong", addr)
        await uproto.got
        assert uproto.datagrams == [(b"PONG", addr)]
        assert utr.get_write_buffer_size() == 0
        for tr, proto in ((ctr, cproto), (utr, uproto), (str_, sproto)):
            tr.close()
            assert tr.is_closing()
            assert await proto.lost is None
        return cproto.events, sproto.events

    client_events, server_events = run(loop, main())
    assert client_events == ["made", "datagram", "lost"]
    assert server_events == ["made", "datagram", "datagram", "lost"]


def test_datagram_reuse_port_allow_broadcast(loop):
    async def main():
        t1, p1 = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(loop), local_addr=(HOST, 0), reuse_port=True,
            allow_broadcast=True)
        addr = t1.get_extra_info("sockname")
        t2, p2 = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(loop), local_addr=addr, reuse_port=True)
        assert t2.get_extra_info("sockname") == addr
        s1, s2 = t1.get_extra_info("socket"), t2.get_extra_info("socket")
        assert s1.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        assert s1.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) != 0
        assert s2.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 0
        with pytest.raises(OSError) as info:
            await loop.create_datagram_endpoint(
                lambda: DatagramRecorder(loop), local_addr=addr)
        assert info.value.errno == errno.EADDRINUSE
        for tr, proto in ((t1, p1), (t2, p2)):
            tr.close()
            await proto.lost

    run(loop, main())


def test_datagram_error_received(loop):
    async def main():
        # a UDP port nobody listens on: connected sends get ICMP port unreachable
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 0))
        dead = probe.getsockname()
        probe.close()
        tr, proto = await loop.create_datagram_endpoint(
            lambda: DatagramRecorder(loop), remote_addr=dead)
        tr.sendto(b"anyone?")
        exc = await proto.error
        assert isinstance(exc, ConnectionRefusedError)
        assert not tr.is_closing()  # error_received does not close the transport
        tr.abort()
        assert await proto.lost is None
        return proto.events

    events = run(loop, main())
    assert events[0] == "made" and events[-1] == "lost"
    assert set(events[1:-1]) == {"error"}


# ---- sendfile -----------------------------------------------------------------


def _payload_file(tmp_path, size=300_000):
    data = bytes(i * 7 % 251 for i in range(size))
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    return path, data


def test_sendfile_native(loop, tmp_path):
    path, data = _payload_file(tmp_path)

    async def main():
        factory, made = factory_list(loop)
        server = await loop.create_server(factory, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Recorder(loop), HOST, port)
        with open(path, "rb") as f:
            assert await loop.sendfile(tr, f) == len(data)
            assert f.tell() == len(data)
            assert await loop.sendfile(tr, f, offset=10, count=1000) == 1000
            assert f.tell() == 1010
        with open(path, "r") as ftext:
            with pytest.raises(ValueError, match="binary mode"):
                await loop.sendfile(tr, ftext)
        tr.write(b"tail")  # the transport still works after sendfile
        tr.write_eof()
        sproto = await first(made)
        await sproto.eof
        got = bytes(sproto.data)
        await close_and_wait(proto)
        await sproto.lost
        server.close()
        await server.wait_closed()
        return got

    assert run(loop, main()) == data + data[10:1010] + b"tail"


def test_sendfile_fallback(loop, tmp_path):
    path, data = _payload_file(tmp_path, 100_000)
    sctx, cctx = server_ssl_context(), client_ssl_context()

    async def main():
        factory, made = factory_list(loop)
        server = await loop.create_server(factory, HOST, 0)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(lambda: Recorder(loop), HOST, port)
        # not a regular file: native sendfile is impossible
        with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
            await loop.sendfile(tr, io.BytesIO(data), fallback=False)
        assert await loop.sendfile(tr, io.BytesIO(data), fallback=True) == len(data)
        tr.write_eof()
        sproto = await first(made)
        await sproto.eof
        assert bytes(sproto.data) == data
        await close_and_wait(proto, sproto)
        server.close()
        await server.wait_closed()

        # TLS transports only support the fallback
        factory, made = factory_list(loop)
        server = await loop.create_server(factory, HOST, 0, ssl=sctx)
        port = server.sockets[0].getsockname()[1]
        tr, proto = await loop.create_connection(
            lambda: Recorder(loop), HOST, port, ssl=cctx, server_hostname="localhost")
        with open(path, "rb") as f:
            with pytest.raises(RuntimeError, match="fallback is disabled and native sendfile"):
                await loop.sendfile(tr, f, fallback=False)
            assert await loop.sendfile(tr, f, offset=5, count=50_000) == 50_000
            assert f.tell() == 50_005
        sproto = await first(made)
        await sproto.wait_bytes(50_000)
        assert bytes(sproto.data) == data[5:50_005]
        await close_and_wait(proto)
        await sproto.lost
        server.close()
        await server.wait_closed()

    run(loop, main())


# ---- sock_* -------------------------------------------------------------------


def test_sock_tcp_methods(loop):
    payload = os.urandom(500_000)

    async def main():
        listener = socket.socket()
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.setblocking(False)
        client = socket.socket()
        client.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        assert await loop.sock_connect(client, listener.getsockname()) is None
        conn, peer = await accepting
        assert peer == client.getsockname()
        assert conn.gettimeout() == 0.0  # accepted sockets are non-blocking
        # sock_connect resolves a host name (with the socket's family)
        other = socket.socket()
        other.setblocking(False)
        accepting = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(other, ("localhost", listener.getsockname()[1]))
        conn2, peer2 = await accepting
        assert peer2 == other.getsockname() and other.getpeername() == listener.getsockname()
        other.close()
        conn2.close()
        # sock_sendall of more than the kernel buffers, read concurrently
        sent, got = await asyncio.gather(
            loop.sock_sendall(client, payload), recv_exactly(loop, conn, len(payload)))
        assert sent is None and got == payload
        # sock_recv_into, including a partial nbytes
        await loop.sock_sendall(conn, b"0123456789")
        buf = bytearray(16)
        n = 0
        while n < 10:
            n += await loop.sock_recv_into(client, memoryview(buf)[n:10])
        assert bytes(buf[:10]) == b"0123456789"
        # a pending sock_recv completes when data arrives
        pending = loop.create_task(loop.sock_recv(conn, 100))
        await asyncio.sleep(0)
        assert not pending.done()
        await loop.sock_sendall(client, b"late")
        assert await pending == b"late"
        # cancelling a pending sock_recv leaves the socket usable
        pending = loop.create_task(loop.sock_recv(conn, 100))
        await asyncio.sleep(0)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        await loop.sock_sendall(client, b"after cancel")
        assert await recv_exactly(loop, conn, 12) == b"after cancel"
        client.shutdown(socket.SHUT_WR)
        assert await loop.sock_recv(conn, 100) == b""
        assert await loop.sock_recv_into(conn, bytearray(4)) == 0
        for s in (client, conn, listener):
            s.close()

    run(loop, main())


def test_sock_udp_methods(loop):
    async def main():
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (a, b):
            s.bind((HOST, 0))
            s.setblocking(False)
        receiving = loop.create_task(loop.sock_recvfrom(b, 100))
        await asyncio.sleep(0)
        assert not receiving.done()
        assert await loop.sock_sendto(a, b"datagram", b.getsockname()) == 8
        assert await receiving == (b"datagram", a.getsockname())
        await loop.sock_sendto(a, b"into-me", b.getsockname())
        buf = bytearray(32)
        n, addr = await loop.sock_recvfrom_into(b, buf)
        assert (bytes(buf[:n]), addr) == (b"into-me", a.getsockname())
        await loop.sock_sendto(a, b"truncated", b.getsockname())
        buf = bytearray(32)
        n, addr = await loop.sock_recvfrom_into(b, buf, 5)
        assert (n, bytes(buf[:n]), addr) == (5, b"trunc", a.getsockname())
        await loop.sock_sendto(b, b"back", a.getsockname())
        assert await loop.sock_recvfrom(a, 2) == (b"ba", b.getsockname())
        a.close()
        b.close()

    run(loop, main())


def test_sock_sendfile(loop, tmp_path):
    path, data = _payload_file(tmp_path, 200_000)

    async def main():
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        with open(path, "rb") as f:
            sent, got = await asyncio.gather(
                loop.sock_sendfile(a, f), recv_exactly(loop, b, len(data)))
            assert sent == len(data) and got == data
            sent, got = await asyncio.gather(
                loop.sock_sendfile(a, f, 100, 1000), recv_exactly(loop, b, 1000))
            assert sent == 1000 and got == data[100:1100]
            assert f.tell() == 1100
        with pytest.raises(asyncio.SendfileNotAvailableError, match="not a regular file"):
            await loop.sock_sendfile(a, io.BytesIO(data), fallback=False)
        sent, got = await asyncio.gather(
            loop.sock_sendfile(a, io.BytesIO(data[:5000])), recv_exactly(loop, b, 5000))
        assert sent == 5000 and got == data[:5000]
        with pytest.raises(ValueError, match="count must be a positive integer"):
            await loop.sock_sendfile(a, io.BytesIO(data), 0, 0)
        a.close()
        b.close()

    run(loop, main())


def test_sock_methods_errors(loop):
    async def main():
        refusing = refusing_socket()
        s = socket.socket()
        s.setblocking(False)
        with pytest.raises(ConnectionRefusedError):
            await loop.sock_connect(s, refusing.getsockname())
        s.close()
        refusing.close()
        blocking = socket.socket()
        loop.set_debug(True)
        try:
            with pytest.raises(ValueError, match="the socket must be non-blocking"):
                await loop.sock_recv(blocking, 10)
        finally:
            loop.set_debug(False)
        blocking.close()
        with pytest.raises(TypeError, match="Socket cannot be of type SSLSocket"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ssock = ctx.wrap_socket(socket.socket(), server_hostname="localhost",
                                    do_handshake_on_connect=False)
            try:
                await loop.sock_recv(ssock, 10)
            finally:
                ssock.close()

    run(loop, main())


# ---- pipes ----------------------------------------------------------------------


def test_read_pipe(loop):
    rfd, wfd = os.pipe()

    async def main():
        rpipe = os.fdopen(rfd, "rb", 0)
        tr, proto = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        assert tr.get_extra_info("pipe") is rpipe
        assert tr.is_reading()
        os.write(wfd, b"line 1\n")
        assert await proto.wait_bytes(7) == b"line 1\n"
        tr.pause_reading()
        assert not tr.is_reading()
        tr.resume_reading()
        assert tr.is_reading()
        os.write(wfd, b"line 2\n")
        os.close(wfd)
        assert await proto.lost is None
        assert bytes(proto.data) == b"line 1\nline 2\n"
        assert tr.is_closing()
        return proto.events

    assert run(loop, main()) == ["made", "data", "eof", "lost"]


def test_write_pipe(loop):
    rfd, wfd = os.pipe()
    payload = os.urandom(300_000)  # more than a pipe holds: it must be buffered

    async def main():
        wpipe = os.fdopen(wfd, "wb", 0)
        rpipe = os.fdopen(rfd, "rb", 0)
        wtr, wproto = await loop.connect_write_pipe(lambda: Recorder(loop), wpipe)
        assert wtr.get_extra_info("pipe") is wpipe
        assert wtr.can_write_eof()
        wtr.write(payload)
        assert wtr.get_write_buffer_size() > 0
        rtr, rproto = await loop.connect_read_pipe(lambda: Recorder(loop), rpipe)
        wtr.write_eof()  # closes once the buffer is flushed
        assert wtr.is_closing()
        assert await wproto.lost is None
        assert await rproto.lost is None
        assert bytes(rproto.data) == payload
        return wproto.events, rproto.events

    wevents, revents = run(loop, main())
    assert wevents == ["made", "pause", "resume", "lost"]
    assert revents == ["made", "data", "eof", "lost"]


def test_write_pipe_broken(loop):
    rfd, wfd = os.pipe()

    async def main():
        wtr, wproto = await loop.connect_write_pipe(
            lambda: Recorder(loop), os.fdopen(wfd, "wb", 0))
        wtr.write(b"x" * 300_000)
        assert wtr.get_write_buffer_size() > 0
        os.close(rfd)  # the reader goes away with data still buffered
        exc = await wproto.lost
        assert wtr.is_closing()
        return type(exc), wproto.events

    exc_type, events = run(loop, main())
    assert exc_type is BrokenPipeError
    assert events == ["made", "pause", "lost"]


# ---- subprocesses -----------------------------------------------------------------

CHILD = ("import sys; data = sys.stdin.buffer.read(); "
         "sys.stdout.buffer.write(data.upper()); sys.stderr.write('err'); sys.exit(7)")


class SubprocessRecorder(asyncio.SubprocessProtocol):
    def __init__(self, loop):
        self.events = []
        self.data = {1: b"", 2: b""}
        self.exited = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.events.append("made")

    def pipe_data_received(self, fd, data):
        self.data[fd] += data

    def pipe_connection_lost(self, fd, exc):
        self.events.append(("pipe_lost", fd, exc))

    def process_exited(self):
        self.events.append("exited")
        self.exited.set_result(None)

    def connection_lost(self, exc):
        self.events.append(("lost", exc))
        self.lost.set_result(exc)


def _check_subprocess_events(events, fds):
    assert events[0] == "made"
    assert events[-1] == ("lost", None)
    assert sorted(e for e in events[1:-1] if e != "exited") == [
        ("pipe_lost", fd, None) for fd in fds]
    assert events.count("exited") == 1


def test_subprocess_exec_streams(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", CHILD, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.pid > 0
        out, err = await proc.communicate(b"hello child")
        return out, err, proc.returncode

    assert run(loop, main()) == (b"HELLO CHILD", b"err", 7)


def test_subprocess_shell_streams(loop):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "read x; echo \"got:$x\"; echo oops 1>&2; exit 3",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(b"shell-in\n")
        killed = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(60)")
        killed.kill()
        return out, err, proc.returncode, await killed.wait()

    assert run(loop, main()) == (b"got:shell-in\n", b"oops\n", 3, -signal.SIGKILL)


def test_subprocess_exec_protocol(loop):
    async def main():
        tr, proto = await loop.subprocess_exec(
            lambda: SubprocessRecorder(loop), sys.executable, "-c", CHILD,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert tr.get_pid() > 0
        stdin = tr.get_pipe_transport(0)
        stdin.write(b"via protocol")
        stdin.close()
        assert await proto.lost is None
        assert tr.get_returncode() == 7
        tr.close()
        with pytest.raises(ValueError, match="universal_newlines must be False"):
            await loop.subprocess_exec(lambda: SubprocessRecorder(loop), sys.executable,
                                       universal_newlines=True)
        with pytest.raises(ValueError, match="shell must be False"):
            await loop.subprocess_exec(lambda: SubprocessRecorder(loop), sys.executable,
                                       shell=True)
        return proto.data, proto.events

    data, events = run(loop, main())
    assert data == {1: b"VIA PROTOCOL", 2: b"err"}
    _check_subprocess_events(events, (0, 1, 2))


def test_subprocess_shell_protocol(loop):
    async def main():
        tr, proto = await loop.subprocess_shell(
            lambda: SubprocessRecorder(loop), "echo out; echo err 1>&2; exit 5",
            stdin=None, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert await proto.lost is None
        assert tr.get_returncode() == 5
        tr.close()
        with pytest.raises(ValueError, match="cmd must be a string"):
            await loop.subprocess_shell(lambda: SubprocessRecorder(loop), ["echo", "x"])
        with pytest.raises(ValueError, match="bufsize must be 0"):
            await loop.subprocess_shell(lambda: SubprocessRecorder(loop), "true", bufsize=1)
        return proto.data, proto.events

    data, events = run(loop, main())
    assert data == {1: b"out\n", 2: b"err\n"}
    _check_subprocess_events(events, (1, 2))


# ---- streams ----------------------------------------------------------------------


async def _upper_lines(reader, writer):
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.write(b"bye")
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _stream_dialogue(reader, writer):
    writer.write(b"one\n")
    writer.writelines([b"tw", b"o\n"])
    await writer.drain()
    first_ = await reader.readline()
    second = await reader.readuntil(b"\n")
    writer.write_eof()
    rest = await reader.read()
    writer.close()
    await writer.wait_closed()
    return first_, second, rest, reader.at_eof()


def test_streams_tcp(loop):
    async def main():
        server = await asyncio.start_server(_upper_lines, HOST, 0)
        addr = server.sockets[0].getsockname()
        reader, writer = await asyncio.open_connection(*addr)
        assert writer.get_extra_info("peername") == addr
        result = await _stream_dialogue(reader, writer)
        reader, writer = await asyncio.open_connection(*addr)
        writer.write_eof()
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await reader.readexactly(10)
        assert info.value.partial == b"bye" and info.value.expected == 10
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return result

    assert run(loop, main()) == (b"ONE\n", b"TWO\n", b"bye", True)


def test_streams_unix(loop, sockdir):
    path = os.path.join(sockdir, "streams.sock")

    async def main():
        server = await asyncio.start_unix_server(_upper_lines, path)
        reader, writer = await asyncio.open_unix_connection(path)
        result = await _stream_dialogue(reader, writer)
        server.close()
        await server.wait_closed()
        return result

    assert run(loop, main()) == (b"ONE\n", b"TWO\n", b"bye", True)


def test_streams_start_tls(loop):
    sctx, cctx = server_ssl_context(), client_ssl_context()

    async def handler(reader, writer):
        assert await reader.readline() == b"STARTTLS\n"
        writer.write(b"OK\n")
        await writer.drain()
        await writer.start_tls(sctx)
        await _upper_lines(reader, writer)

    async def main():
        server = await asyncio.start_server(handler, HOST, 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"STARTTLS\n")
        assert await reader.readline() == b"OK\n"
        await writer.start_tls(cctx, server_hostname="localhost")
        assert writer.get_extra_info("sslcontext") is cctx
        writer.write(b"secure\n")
        assert await reader.readline() == b"SECURE\n"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()

    run(loop, main())


# ---- transports: flow control, buffered protocols, closing ---------------------------


def test_transport_pause_resume_reading(loop):
    async def main():
        factory, made = factory_list(loop)
        server = await loop.create_server(factory, HOST, 0)
        addr = server.sockets[0].getsockname()
        tr, proto = await loop.create_connection(lambda: Recorder(loop), *addr)
        sproto = await first(made)
        str_ = sproto.transport
        assert str_.is_reading()
        str_.pause_reading()
        str_.pause_reading()  # idempotent
        assert not str_.is_reading()
        tr.write(b"while paused")
        # barrier: data sent after the write above has been dispatched
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        a.send(b"!")
        assert await loop.sock_recv(b, 1) == b"!"
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        a.close()
        b.close()
        assert bytes(sproto.data) == b""  # nothing delivered while paused
        str_.resume_reading()
        str_.resume_reading()  # idempotent
        assert str_.is_reading()
        assert await sproto.wait_bytes(12) == b"while paused"
        await close_and_wait(proto)
        await sproto.lost
        assert not str_.is_reading()  # a closed transport does not read
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_transport_write_buffer_limits(loop):
    async def main():
        server, made = await echo_server(loop)
        addr = server.sockets[0].getsockname()
        tr, proto = await loop.create_connection(lambda: Recorder(loop), *addr)
        assert tr.get_write_buffer_limits() == (16 * 1024, 64 * 1024)
        tr.set_write_buffer_limits(high=1000)
        assert tr.get_write_buffer_limits() == (250, 1000)
        tr.set_write_buffer_limits(low=100)
        assert tr.get_write_buffer_limits() == (100, 400)
        tr.set_write_buffer_limits(high=500, low=20)
        assert tr.get_write_buffer_limits() == (20, 500)
        with pytest.raises(ValueError, match=r"high \(100\) must be >= low \(200\) must be >= 0"):
            tr.set_write_buffer_limits(high=100, low=200)
        assert tr.get_write_buffer_limits() == (20, 500)
        assert tr.get_write_buffer_size() == 0
        await close_and_wait(proto)
        server.close()
        await server.wait_closed()

    run(loop, main())


def test_transport_pause_resume_writing(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        tr.set_write_buffer_limits(high=65536, low=16384)
        written = fill_write_buffer(tr, proto, until_paused=True)
        assert proto.paused.done(), "pause_writing never called"
        assert tr.get_write_buffer_size() > 65536
        assert proto.events == ["made", "pause"]
        got = await recv_exactly(loop, conn, written)  # the peer reads now
        assert len(got) == written and set(got) == {ord("f")}
        await proto.resumed
        assert tr.get_write_buffer_size() == 0
        tr.close()
        assert await proto.lost is None
        conn.close()
        listener.close()
        return proto.events

    assert run(loop, main()) == ["made", "pause", "resume", "lost"]


def test_buffered_protocol(loop):
    payload = os.urandom(200_000)

    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(4096)
            self.data = bytearray()
            self.events = []
            self.sizes = []
            self.lost = loop.create_future()

        def connection_made(self, transport):
            self.events.append("made")
            self.transport = transport

        def get_buffer(self, sizehint):
            if not self.events or self.events[-1] != "buffer":
                self.events.append("buffer")
            return self.buf

        def buffer_updated(self, nbytes):
            assert 0 < nbytes <= len(self.buf)
            self.sizes.append(nbytes)
            self.data += self.buf[:nbytes]

        def eof_received(self):
            self.events.append("eof")

        def connection_lost(self, exc):
            self.events.append("lost")
            self.lost.set_result(exc)

    async def main():
        async def send_and_close(reader, writer):
            writer.write(payload)
            await writer.drain()
            writer.close()
            await writer.wait_closed()

        server = await asyncio.start_server(send_and_close, HOST, 0)
        tr, proto = await loop.create_connection(
            Buffered, *server.sockets[0].getsockname())
        assert await proto.lost is None
        server.close()
        await server.wait_closed()
        return proto

    proto = run(loop, main())
    assert bytes(proto.data) == payload
    assert len(proto.sizes) >= len(payload) // 4096
    assert proto.events == ["made", "buffer", "eof", "lost"]


def test_transport_abort(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        written = fill_write_buffer(tr, proto, until_paused=False)
        assert tr.get_write_buffer_size() > 0
        tr.abort()  # drops what is buffered
        assert tr.is_closing()
        assert await proto.lost is None
        tr.write(b"ignored after abort")
        got = await recv_until_eof(loop, conn)
        conn.close()
        listener.close()
        return written, len(got), proto.events

    written, received, events = run(loop, main())
    assert 0 < received < written
    assert events == ["made", "lost"]


def test_transport_write_eof_half_close(loop):
    async def main():
        factory, made = factory_list(loop, eof_reply=b"reply:", keep_open=True)
        server = await loop.create_server(factory, HOST, 0)
        tr, proto = await loop.create_connection(
            lambda: Recorder(loop), *server.sockets[0].getsockname())
        tr.write(b"hello")
        assert tr.can_write_eof() is True
        tr.write_eof()
        tr.write_eof()  # idempotent
        assert not tr.is_closing()  # half-closed: still reading
        with pytest.raises(RuntimeError, match=r"Cannot call write\(\) after write_eof\(\)"):
            tr.write(b"more")
        sproto = await first(made)
        assert await proto.lost is None
        assert await sproto.lost is None
        assert bytes(sproto.data) == b"hello"
        assert bytes(proto.data) == b"reply:hello"
        server.close()
        await server.wait_closed()
        return proto.events, sproto.events

    client_events, server_events = run(loop, main())
    assert server_events == ["made", "data", "eof", "lost"]
    assert client_events == ["made", "data", "eof", "lost"]


def test_transport_close_flushes_buffer(loop):
    async def main():
        listener, conn, tr, proto = await connect_to_nonreading_peer(loop)
        written = fill_write_buffer(tr, proto, until_paused=False)
        tr.write(b"END")
        written += 3
        assert tr.get_write_buffer_size() > 0
        tr.close()
        assert tr.is_closing()
        tr.close()  # idempotent
        got = await recv_until_eof(loop, conn)  # every byte, then EOF
        assert await proto.lost is None
        conn.close()
        listener.close()
        return written, got, proto.events

    written, got, events = run(loop, main())
    assert len(got) == written and got.endswith(b"fEND")
    assert events == ["made", "lost"]
