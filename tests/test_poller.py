"""I/O readiness: add_reader/remove_reader/add_writer/remove_writer.

Every test body runs on the stdlib selector loop (the referee) and on quickloop
(epoll, level-triggered), through the ``loop`` fixture from conftest.py.
"""
import errno
import os
import socket

import pytest
from support import run_until


# --------------------------------------------------------------------------- helpers

def spin(loop, iterations=5):
    """Run ``iterations`` complete loop iterations (a chain of call_soon callbacks).

    Any fd that is ready and registered is reported by the poller in each of
    these iterations, so "did not fire during spin()" means "not registered".
    """
    done = loop.create_future()

    def step(k):
        if k == 0:
            done.set_result(None)
        else:
            loop.call_soon(step, k - 1)

    loop.call_soon(step, iterations)
    run_until(loop, done)


@pytest.fixture
def sockpair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    fds = [r, w]
    yield fds
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


class FileLike:
    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd


# --------------------------------------------------------------------------- basic readiness

def test_reader_fires_on_socketpair_data(loop, sockpair):
    a, b = sockpair
    got = loop.create_future()

    def on_readable(sock, tag):
        loop.remove_reader(sock)
        got.set_result((tag, sock.recv(100)))

    assert loop.add_reader(a.fileno(), on_readable, a, "tag") is None
    b.send(b"hello")
    assert run_until(loop, got) == ("tag", b"hello")


def test_reader_fires_on_pipe_data(loop, pipe):
    r, w = pipe
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(r)
        got.set_result(os.read(r, 100))

    loop.add_reader(r, on_readable)
    os.write(w, b"data")
    assert run_until(loop, got) == b"data"


def test_reader_registered_before_data_waits_for_it(loop, sockpair):
    """The reader must not fire before data arrives; data sent later from a
    callback wakes the (otherwise idle) loop."""
    a, b = sockpair
    events = []
    got = loop.create_future()

    def on_readable():
        events.append("readable")
        loop.remove_reader(a)
        got.set_result(a.recv(100))

    def send():
        events.append("send")
        b.send(b"late")

    loop.add_reader(a, on_readable)
    spin(loop)
    assert events == []
    loop.call_soon(send)
    assert run_until(loop, got) == b"late"
    assert events == ["send", "readable"]


def test_reader_is_level_triggered_and_stops_after_remove(loop, sockpair):
    a, b = sockpair
    calls = []
    removed = []
    third = loop.create_future()

    def on_readable():
        # Never read the data: the fd stays readable, so a level-triggered
        # poller reports it again on every iteration.
        calls.append(1)
        if len(calls) == 3:
            removed.append(loop.remove_reader(a.fileno()))
            third.set_result(None)

    loop.add_reader(a.fileno(), on_readable)
    b.send(b"x")
    run_until(loop, third)
    assert removed == [True]
    spin(loop)
    assert len(calls) == 3, "reader ran after remove_reader()"
    # the data is still there: nothing consumed it
    assert a.recv(10) == b"x"


def test_writer_fires_on_writable_socket(loop, sockpair):
    a, b = sockpair
    got = loop.create_future()

    def on_writable(arg):
        loop.remove_writer(a.fileno())
        a.send(b"ping")
        got.set_result(arg)

    assert loop.add_writer(a.fileno(), on_writable, 42) is None
    assert run_until(loop, got) == 42
    assert b.recv(10) == b"ping"


def test_writer_fires_on_pipe_write_end(loop, pipe):
    r, w = pipe
    got = loop.create_future()

    def on_writable():
        loop.remove_writer(w)
        got.set_result(os.write(w, b"abc"))

    loop.add_writer(w, on_writable)
    assert run_until(loop, got) == 3
    assert os.read(r, 10) == b"abc"


def test_writer_is_level_triggered_and_stops_after_remove(loop, sockpair):
    a, b = sockpair
    calls = []
    removed = []
    third = loop.create_future()

    def on_writable():
        calls.append(1)
        if len(calls) == 3:
            removed.append(loop.remove_writer(a))
            third.set_result(None)

    loop.add_writer(a, on_writable)
    run_until(loop, third)
    assert removed == [True]
    spin(loop)
    assert len(calls) == 3, "writer ran after remove_writer()"


def test_writer_waits_while_socket_buffer_is_full(loop, sockpair):
    a, b = sockpair
    # fill a's send buffer (and b's receive buffer) completely
    chunk = b"x" * 65536
    try:
        while True:
            a.send(chunk)
    except BlockingIOError:
        pass
    calls = []
    got = loop.create_future()

    def on_writable():
        calls.append(1)
        loop.remove_writer(a)
        got.set_result(None)

    loop.add_writer(a, on_writable)
    spin(loop)
    assert calls == [], "writer fired while the socket was not writable"

    def drain():
        try:
            while True:
                if not b.recv(1 << 20):
                    break
        except BlockingIOError:
            pass

    loop.call_soon(drain)
    run_until(loop, got)
    assert calls == [1]


# --------------------------------------------------------------------------- remove_* return values

def test_remove_return_values(loop, sockpair):
    a, _ = sockpair
    fd = a.fileno()
    cb = lambda: None  # noqa: E731
    assert loop.remove_reader(fd) is False
    assert loop.remove_writer(fd) is False

    loop.add_reader(fd, cb)
    assert loop.remove_writer(fd) is False  # only a reader is registered
    assert loop.remove_reader(fd) is True
    assert loop.remove_reader(fd) is False

    loop.add_writer(fd, cb)
    assert loop.remove_reader(fd) is False  # only a writer is registered
    assert loop.remove_writer(fd) is True
    assert loop.remove_writer(fd) is False

    loop.add_reader(fd, cb)
    loop.add_writer(fd, cb)
    assert loop.remove_reader(fd) is True
    assert loop.remove_writer(fd) is True
    assert loop.remove_reader(fd) is False
    assert loop.remove_writer(fd) is False


def test_remove_on_closed_loop_returns_false_and_add_raises(loop, sockpair):
    a, _ = sockpair
    loop.add_reader(a, lambda: None)
    loop.add_writer(a, lambda: None)
    loop.close()
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    with pytest.raises(RuntimeError):
        loop.add_reader(a, lambda: None)
    with pytest.raises(RuntimeError):
        loop.add_writer(a, lambda: None)


def test_remove_writer_keeps_reader(loop, sockpair):
    a, b = sockpair
    reads, writes = [], []
    got = loop.create_future()

    def on_readable():
        reads.append(a.recv(100))
        loop.remove_reader(a)
        got.set_result(None)

    loop.add_reader(a, on_readable)
    loop.add_writer(a, writes.append, 1)
    assert loop.remove_writer(a) is True
    b.send(b"r")
    run_until(loop, got)
    assert reads == [b"r"]
    assert writes == []


# --------------------------------------------------------------------------- replacing callbacks

def test_replacing_reader_runs_only_new_callback(loop, sockpair):
    a, b = sockpair
    old, new = [], []
    got = loop.create_future()

    def new_cb(arg):
        new.append(arg)
        if len(new) == 3:
            removed.append(loop.remove_reader(a))
            removed.append(loop.remove_reader(a))
            got.set_result(None)

    removed = []
    loop.add_reader(a, old.append, "old")
    loop.add_reader(a.fileno(), new_cb, "new")
    b.send(b"x")
    run_until(loop, got)
    assert removed == [True, False]  # there was exactly one reader
    spin(loop)
    assert old == []
    assert new == ["new"] * 3


def test_replacing_writer_runs_only_new_callback(loop, sockpair):
    a, _ = sockpair
    old, new = [], []
    got = loop.create_future()

    def new_cb():
        new.append(1)
        loop.remove_writer(a)
        got.set_result(None)

    loop.add_writer(a, old.append, 1)
    loop.add_writer(a, new_cb)
    run_until(loop, got)
    spin(loop)
    assert old == []
    assert new == [1]


def test_replacing_reader_keeps_writer(loop, sockpair):
    a, b = sockpair
    writes = []
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(a)
        got.set_result(a.recv(10))

    def on_writable():
        writes.append(1)
        if len(writes) == 2:
            loop.remove_writer(a)

    loop.add_writer(a, on_writable)
    loop.add_reader(a, lambda: None)
    loop.add_reader(a, on_readable)  # replace the reader; the writer must survive
    b.send(b"z")
    assert run_until(loop, got) == b"z"
    spin(loop)
    assert writes == [1, 1]


def test_reader_replaced_while_already_pending_in_same_iteration(loop):
    """Both fds are ready in the same poll; the callback of whichever runs first
    replaces the other's reader.  The old (already scheduled) callback must be
    cancelled; the new one runs on a later iteration (the fd is still readable)."""
    p1 = socket.socketpair()
    p2 = socket.socketpair()
    try:
        a1, b1 = p1
        a2, b2 = p2
        log = []
        got = loop.create_future()

        def replaced_cb(name):
            log.append(("new", name))
            loop.remove_reader(a1)
            loop.remove_reader(a2)
            got.set_result(None)

        def first(name, own_sock, other_sock, other_name):
            log.append(("old", name))
            loop.remove_reader(own_sock)
            if len(log) == 1:
                loop.add_reader(other_sock, replaced_cb, other_name)

        loop.add_reader(a1, first, "1", a1, a2, "2")
        loop.add_reader(a2, first, "2", a2, a1, "1")
        b1.send(b"x")
        b2.send(b"x")
        run_until(loop, got)
        assert len(log) == 2, log
        assert log[0][0] == "old"
        other = "2" if log[0][1] == "1" else "1"
        assert log[1] == ("new", other)
    finally:
        for s in p1 + p2:
            s.close()


def test_remove_reader_cancels_callback_already_pending_in_same_iteration(loop):
    p1 = socket.socketpair()
    p2 = socket.socketpair()
    try:
        a1, b1 = p1
        a2, b2 = p2
        ran = []
        removed = []

        def cb(name, other):
            ran.append(name)
            removed.append(loop.remove_reader(other))
            loop.remove_reader(a1 if name == "1" else a2)

        loop.add_reader(a1, cb, "1", a2)
        loop.add_reader(a2, cb, "2", a1)
        b1.send(b"x")
        b2.send(b"x")
        spin(loop)
        assert len(ran) == 1, f"removed reader still ran: {ran}"
        assert removed == [True]
    finally:
        for s in p1 + p2:
            s.close()


def test_reader_and_writer_on_same_fd_are_independent(loop, sockpair):
    a, b = sockpair
    reads, writes = [], []
    got = loop.create_future()

    def check():
        if len(reads) >= 2 and len(writes) >= 2 and not got.done():
            got.set_result(None)

    def on_readable():
        reads.append(1)
        check()

    def on_writable():
        writes.append(1)
        check()

    loop.add_reader(a, on_readable)
    loop.add_writer(a, on_writable)
    b.send(b"x")
    run_until(loop, got)

    # remove the reader: the writer keeps firing, the reader stops
    assert loop.remove_reader(a) is True
    n_reads = len(reads)
    n_writes = len(writes)
    spin(loop)
    assert len(reads) == n_reads
    assert len(writes) > n_writes

    # remove the writer, add the reader back: now only the reader fires
    assert loop.remove_writer(a) is True
    loop.add_reader(a, on_readable)
    n_reads = len(reads)
    n_writes = len(writes)
    spin(loop)
    assert len(reads) > n_reads
    assert len(writes) == n_writes
    assert loop.remove_reader(a) is True


# --------------------------------------------------------------------------- fd given as object

def test_fd_as_object_with_fileno(loop, sockpair):
    a, b = sockpair
    obj = FileLike(a.fileno())
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(obj)
        got.set_result(a.recv(10))

    loop.add_reader(obj, on_readable)
    b.send(b"obj")
    assert run_until(loop, got) == b"obj"

    # object and int name the same registration
    loop.add_reader(FileLike(a.fileno()), lambda: None)
    assert loop.remove_reader(a.fileno()) is True
    loop.add_reader(a.fileno(), lambda: None)
    assert loop.remove_reader(FileLike(a.fileno())) is True
    loop.add_writer(a, lambda: None)  # a socket object
    assert loop.remove_writer(FileLike(a.fileno())) is True
    assert loop.remove_writer(a) is False


# --------------------------------------------------------------------------- bad input

class RaisingFileno:
    def __init__(self, exc):
        self.exc = exc

    def fileno(self):
        # A new exception per call: re-raising one instance would chain every
        # run's frames onto its __traceback__ (and show up as a leak).
        raise type(self.exc)(*self.exc.args)


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_negative_fd_is_value_error(loop, method):
    with pytest.raises(ValueError):
        getattr(loop, method)(-1, lambda: None)
    with pytest.raises(ValueError):
        getattr(loop, method)(FileLike(-5), lambda: None)


@pytest.mark.parametrize("method", ["remove_reader", "remove_writer"])
def test_negative_fd_remove_is_value_error(loop, method):
    with pytest.raises(ValueError):
        getattr(loop, method)(-1)


@pytest.mark.parametrize(
    "bad",
    ["abc", 1.5, None, object(), b"3", FileLike("not a number"),
     RaisingFileno(ValueError("closed")), RaisingFileno(TypeError("nope")),
     RaisingFileno(AttributeError("gone"))],
    ids=["str", "float", "None", "object", "bytes", "fileno-returns-str",
         "fileno-raises-ValueError", "fileno-raises-TypeError",
         "fileno-raises-AttributeError"])
@pytest.mark.parametrize("method", ["add_reader", "add_writer", "remove_reader", "remove_writer"])
def test_invalid_file_object_is_value_error(loop, method, bad):
    args = (lambda: None,) if method.startswith("add") else ()
    with pytest.raises(ValueError):
        getattr(loop, method)(bad, *args)


def test_fileno_raising_other_exception_propagates(loop):
    # the stdlib only translates AttributeError/TypeError/ValueError
    with pytest.raises(OSError):
        loop.add_reader(RaisingFileno(OSError(errno.EBADF, "bad")), lambda: None)


def test_fd_too_large_for_c_int_is_overflow_error_not_truncated(loop, sockpair):
    """2**32 + fd must not be silently truncated to fd (stdlib: OverflowError)."""
    a, b = sockpair
    hits = []
    with pytest.raises(OverflowError):
        loop.add_reader(2 ** 32 + a.fileno(), hits.append, 1)
    with pytest.raises(OverflowError):
        loop.add_writer(2 ** 32 + a.fileno(), hits.append, 2)
    b.send(b"x")
    spin(loop)
    assert hits == []
    assert loop.remove_reader(a) is False
    assert loop.remove_writer(a) is False
    assert loop.remove_reader(2 ** 32 + a.fileno()) is False


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_closed_fd_number_raises_ebadf(loop, method):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:
        getattr(loop, method)(r, lambda: None)
    assert type(info.value) is OSError
    assert info.value.errno == errno.EBADF
    # a failed registration leaves nothing behind
    assert loop.remove_reader(r) is False
    assert loop.remove_writer(r) is False


@pytest.mark.parametrize("method", ["add_reader", "add_writer"])
def test_regular_file_fd_raises_permission_error(loop, method, tmp_path):
    path = tmp_path / "regular.txt"
    path.write_bytes(b"content")
    with open(path, "rb") as f:
        with pytest.raises(PermissionError) as info:
            getattr(loop, method)(f.fileno(), lambda: None)
        assert info.value.errno == errno.EPERM
        assert loop.remove_reader(f.fileno()) is False
        assert loop.remove_writer(f.fileno()) is False
        # the same fd object form
        with pytest.raises(PermissionError):
            getattr(loop, method)(f, lambda: None)


# --------------------------------------------------------------------------- hang-up / close

def test_peer_close_makes_socket_readable(loop, sockpair):
    a, b = sockpair
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(a)
        got.set_result(a.recv(10))

    loop.add_reader(a, on_readable)
    spin(loop)
    assert not got.done()
    b.close()
    assert run_until(loop, got) == b""


def test_peer_shutdown_write_makes_socket_readable(loop, sockpair):
    a, b = sockpair
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(a)
        got.set_result(a.recv(10))

    loop.add_reader(a, on_readable)
    b.shutdown(socket.SHUT_WR)
    assert run_until(loop, got) == b""


def test_pipe_writer_close_makes_read_end_readable(loop, pipe):
    r, w = pipe
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(r)
        got.set_result(os.read(r, 10))

    loop.add_reader(r, on_readable)
    os.write(w, b"last")
    os.close(w)
    pipe.remove(w)
    assert run_until(loop, got) == b"last"
    # EOF after the data: readable again (HUP)
    got2 = loop.create_future()

    def on_eof():
        loop.remove_reader(r)
        got2.set_result(os.read(r, 10))

    loop.add_reader(r, on_eof)
    assert run_until(loop, got2) == b""


def test_pipe_reader_close_makes_write_end_writable(loop, pipe):
    """Closing the read end: the write end reports readiness (EPOLLERR) and a
    write then fails with EPIPE."""
    r, w = pipe
    got = loop.create_future()

    def on_writable():
        loop.remove_writer(w)
        try:
            os.write(w, b"x")
        except OSError as exc:
            got.set_result(exc.errno)
        else:
            got.set_result(None)

    os.close(r)
    pipe.remove(r)
    loop.add_writer(w, on_writable)
    assert run_until(loop, got) == errno.EPIPE


def test_fd_closed_while_registered_then_number_reused(loop):
    """Close a registered fd, remove its (stale) registration, open a new fd
    that gets the same number and register it: the new reader works."""
    a, b = socket.socketpair()
    stale = []
    loop.add_reader(a.fileno(), stale.append, "stale")
    fd = a.fileno()
    a.close()
    b.close()
    # removing a registration whose fd was closed must not raise
    assert loop.remove_reader(fd) is True
    c, d = socket.socketpair()
    try:
        assert c.fileno() == fd, "test precondition: fd number reused"
        got = loop.create_future()

        def on_readable():
            loop.remove_reader(c)
            got.set_result(c.recv(10))

        loop.add_reader(c.fileno(), on_readable)
        d.send(b"reused")
        assert run_until(loop, got) == b"reused"
        assert stale == []
    finally:
        c.close()
        d.close()


def test_fd_number_reused_before_removing_stale_registration(loop):
    """Same as above but the new fd already exists when the stale registration
    is removed (the fd number now names a different, unregistered file).

    Only a reader: with reader+writer the stdlib's remove_reader() does an
    EPOLL_CTL_MOD on the new file and raises FileNotFoundError, so that case
    is not pinned down here."""
    a, b = socket.socketpair()
    loop.add_reader(a.fileno(), lambda: None)
    fd = a.fileno()
    a.close()
    b.close()
    c, d = socket.socketpair()
    try:
        assert c.fileno() == fd, "test precondition: fd number reused"
        assert loop.remove_reader(fd) is True
        assert loop.remove_reader(fd) is False
        got = loop.create_future()

        def on_readable():
            loop.remove_reader(c)
            got.set_result(c.recv(10))

        loop.add_reader(c, on_readable)
        d.send(b"new")
        assert run_until(loop, got) == b"new"
    finally:
        c.close()
        d.close()


# --------------------------------------------------------------------------- errors in callbacks

def test_raising_reader_goes_to_exception_handler_and_loop_continues(loop, sockpair):
    a, b = sockpair
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append((lp, ctx)))
    calls = []
    got = loop.create_future()

    def on_readable():
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("boom in reader")
        loop.remove_reader(a)
        got.set_result(a.recv(10))

    loop.add_reader(a, on_readable)
    b.send(b"after")
    # the reader stays registered after raising; level-triggered -> called again
    assert run_until(loop, got) == b"after"
    assert len(contexts) == 1
    lp, ctx = contexts[0]
    assert lp is loop
    assert isinstance(ctx["exception"], ZeroDivisionError)
    assert str(ctx["exception"]) == "boom in reader"
    # the stdlib's context for a failing callback: message + exception + handle
    assert ctx["message"].startswith("Exception in callback")
    assert "handle" in ctx


def test_raising_writer_goes_to_exception_handler_and_loop_continues(loop, sockpair):
    a, _ = sockpair
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    other = []
    got = loop.create_future()

    def on_writable():
        loop.remove_writer(a)
        raise KeyError("boom in writer")

    loop.add_writer(a, on_writable)
    loop.call_soon(lambda: loop.call_soon(lambda: loop.call_soon(got.set_result, "alive")))
    loop.call_soon(other.append, 1)
    assert run_until(loop, got) == "alive"
    assert other == [1]
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], KeyError)


# --------------------------------------------------------------------------- scale

def test_many_fds(loop):
    pairs = [socket.socketpair() for _ in range(200)]
    try:
        fired = []
        got = loop.create_future()
        expected = set(range(0, 200, 2))

        def on_readable(i, sock):
            assert loop.remove_reader(sock) is True
            fired.append((i, sock.recv(10)))
            if len(fired) == len(expected):
                got.set_result(None)

        for i, (a, _) in enumerate(pairs):
            a.setblocking(False)
            loop.add_reader(a, on_readable, i, a)
        for i in sorted(expected):
            pairs[i][1].send(str(i).encode())
        run_until(loop, got)
        spin(loop)
        assert sorted(i for i, _ in fired) == sorted(expected)
        assert all(data == str(i).encode() for i, data in fired)
        # the odd ones are still registered and fire once written
        fired.clear()
        expected = set(range(1, 200, 2))
        got = loop.create_future()
        for i in sorted(expected):
            pairs[i][1].send(str(i).encode())
        run_until(loop, got)
        assert sorted(i for i, _ in fired) == sorted(expected)
        for a, _ in pairs:
            assert loop.remove_reader(a) is False
    finally:
        for a, b in pairs:
            a.close()
            b.close()


# --------------------------------------------------------------------------- busy iterations

def test_busy_loop_without_watched_fds_skips_polls(loop_kind):
    """With work ready and no fd watched, an iteration makes no epoll call:
    only the wake-up fd could be reported, and a loop that does not block
    needs no wake-up."""
    if loop_kind != "quickloop":
        pytest.skip("quickloop's own counters")
    from conftest import make_loop
    loop = make_loop(loop_kind)
    try:
        spin(loop, 10)
        iterations, polls = loop._iterations, loop._polls
        spin(loop, 1000)
        assert loop._iterations - iterations >= 1000
        assert loop._polls - polls <= 3
    finally:
        loop.close()


def test_busy_loop_with_watched_fd_polls_every_iteration(loop_kind, sockpair):
    if loop_kind != "quickloop":
        pytest.skip("quickloop's own counters")
    from conftest import make_loop
    loop = make_loop(loop_kind)
    try:
        loop.add_reader(sockpair[0].fileno(), lambda: None)
        iterations, polls = loop._iterations, loop._polls
        spin(loop, 100)
        assert loop._polls - polls == loop._iterations - iterations
        loop.remove_reader(sockpair[0].fileno())
        iterations, polls = loop._iterations, loop._polls
        spin(loop, 100)
        assert loop._polls - polls <= 3
    finally:
        loop.close()


def test_reader_fires_while_loop_is_busy(loop, sockpair):
    """Data arriving while callbacks keep the loop busy is reported at the
    next iteration's poll, as on the selector loop."""
    a, b = sockpair
    seen = []
    fired_at = []
    done = loop.create_future()

    def on_readable():
        seen.append(a.recv(100))
        fired_at.append(count[0])
        loop.remove_reader(a.fileno())

    count = [0]

    def step():
        count[0] += 1
        if count[0] == 10:
            b.send(b"ping")
        if fired_at or count[0] > 10_000:
            done.set_result(None)
        else:
            loop.call_soon(step)

    loop.add_reader(a.fileno(), on_readable)
    loop.call_soon(step)
    run_until(loop, done)
    assert seen == [b"ping"]
    assert fired_at and fired_at[0] <= 12


def test_threadsafe_calls_during_and_after_busy_iterations(loop):
    """call_soon_threadsafe from another thread reaches a busy loop that
    skips its polls, and then a loop blocked in epoll with a wake-up that
    was signalled but never drained while busy."""
    import threading

    during = threading.Event()
    got = []
    done_busy = loop.create_future()
    woken = loop.create_future()

    def worker():
        loop.call_soon_threadsafe(got.append, "during")
        during.set()
        for _ in range(100):
            loop.call_soon_threadsafe(got.append, "more")

    def step(k):
        if "during" in got or k > 10_000_000:
            done_busy.set_result(k)
        else:
            loop.call_soon(step, k + 1)

    t = threading.Thread(target=worker)
    loop.call_soon(t.start)
    loop.call_soon(step, 0)
    run_until(loop, done_busy)
    t.join()
    assert during.is_set()

    t2 = threading.Thread(target=lambda: loop.call_soon_threadsafe(woken.set_result, "woken"))
    loop.call_soon(t2.start)
    assert run_until(loop, woken) == "woken"
    t2.join()
