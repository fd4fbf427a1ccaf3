"""os.fork() with a loop: the loop keeps working in the child, and the child
must not be able to disturb the parent's poller.

The child always leaves through os._exit(); its verdict travels back to the
parent through a pipe (b"OK" or a traceback) plus its exit status.  A SIGALRM
safety net kills a stuck child, so a broken loop makes the test fail, not hang.

Checks the stdlib selector loop itself fails are marked quickloop-only, with
the reason: the stdlib epoll selector's epoll instance is *shared* with the
forked child (same open file description), so an EPOLL_CTL_DEL/MOD in the
child changes the parent's interest list too.
"""
import asyncio
import os
import platform
import signal
import threading
import time
import traceback

import pytest

from conftest import make_loop
from support import run_until

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

_EPOLL_SYSCALLS = {
    "x86_64": {"232", "281", "441"},
    "aarch64": {"22", "441"},
}.get(platform.machine())

SHARED_EPOLL_REASON = (
    "quickloop-only: the stdlib selector loop shares its epoll instance with a "
    "forked child, so the child's EPOLL_CTL_DEL also unregisters the parent's fd "
    "(see test_stdlib_shares_epoll_with_child, which shows this check catches it)")


# --------------------------------------------------------------------------- helpers

class ChildTimeout(Exception):
    pass


def spin(loop, iterations=5):
    done = loop.create_future()

    def step(k):
        if k == 0:
            done.set_result(None)
        else:
            loop.call_soon(step, k - 1)

    loop.call_soon(step, iterations)
    run_until(loop, done)


def wait_until_blocked_in_epoll(native_tid, limit=5.0):
    """Best effort condition wait (see test_wakeup.py)."""
    if _EPOLL_SYSCALLS is None:
        return False
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/self/task/{native_tid}/syscall") as f:
                if f.read().split()[0] in _EPOLL_SYSCALLS:
                    return True
        except (OSError, IndexError):
            return False
        time.sleep(0.001)
    return False


def read_all(fd):
    chunks = []
    while True:
        data = os.read(fd, 65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def child_entry(report_w, alarm=20):
    """First thing a forked child does."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(alarm)


def child_exit(report_w, ok, message=b""):
    try:
        os.write(report_w, (b"OK" if ok else b"FAIL\n") + message)
    finally:
        os._exit(0 if ok else 1)


def fork_and_run(child_fn):
    """Fork; run child_fn() in the child; return (exit_code, report text)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        ok = False
        msg = b""
        try:
            os.close(r)
            child_entry(w)
            child_fn()
            ok = True
        except BaseException:  # noqa: BLE001
            msg = traceback.format_exc().encode()
        finally:
            child_exit(w, ok, msg)
    os.close(w)
    try:
        report = read_all(r)
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), report.decode(errors="replace")


def assert_child_ok(code, report):
    assert code == 0 and report == "OK", f"child exit code {code}, report:\n{report}"


def loop_exercise(loop, inherited_r=None, inherited_w=None):
    """Run in the child: a timer, a cross-thread wake-up of the blocked loop,
    a reader on a new pipe and (optionally) a reader registered before fork."""
    futs = []

    # 1. a timer
    timer_fut = loop.create_future()
    loop.call_later(0.001, timer_fut.set_result, "timer")
    futs.append(timer_fut)

    # 2. call_soon_threadsafe from a thread while the loop is blocked
    thread_fut = loop.create_future()
    started = threading.Event()
    loop_tid = threading.get_native_id()

    def worker():
        started.wait(10)
        wait_until_blocked_in_epoll(loop_tid)
        loop.call_soon_threadsafe(thread_fut.set_result, "thread")

    # 3. a reader on a pipe created in the child
    r, w = os.pipe()
    reader_fut = loop.create_future()

    def on_readable():
        loop.remove_reader(r)
        reader_fut.set_result(os.read(r, 100).decode())

    loop.add_reader(r, on_readable)
    futs.append(reader_fut)

    # 4. the inherited registration
    if inherited_r is not None:
        inherited_fut = loop.create_future()

        def on_inherited():
            # Not removed in the child on purpose: with a shared epoll (stdlib)
            # that would unregister the parent's fd as well.  Reading the data
            # ends the (level-triggered) readiness.
            data = os.read(inherited_r, 100).decode()
            if not inherited_fut.done():
                inherited_fut.set_result(data)

        # replace the callback registered before fork by one that records here
        loop.add_reader(inherited_r, on_inherited)
        futs.append(inherited_fut)

    async def main():
        # wake-up first, with nothing else ready (timers are the only wake-up source)
        t = threading.Thread(target=worker)
        t.start()
        loop.call_soon(started.set)
        try:
            await thread_fut
        finally:
            t.join(10)
        os.write(w, b"reader")
        if inherited_w is not None:
            os.write(inherited_w, b"inherited")
        return [thread_fut.result()] + list(await asyncio.gather(*futs))

    try:
        res = run_until(loop, main())
    finally:
        os.close(r)
        os.close(w)
    expected = ["thread", "timer", "reader"]
    if inherited_r is not None:
        expected.append("inherited")
    assert res == expected, res


@pytest.fixture
def pipe():
    r, w = os.pipe()
    os.set_blocking(r, False)
    fds = [r, w]
    yield fds
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def wakeup_from_thread_works(loop, timeout=10.0):
    fut = loop.create_future()
    started = threading.Event()
    loop_tid = threading.get_native_id()

    def worker():
        started.wait(10)
        wait_until_blocked_in_epoll(loop_tid)
        loop.call_soon_threadsafe(fut.set_result, "woken")

    t = threading.Thread(target=worker)
    t.start()
    try:
        loop.call_soon(started.set)
        return run_until(loop, fut, timeout)
    finally:
        t.join(10)


# --------------------------------------------------------------------------- the loop in the child

def test_loop_works_in_child(loop, pipe):
    r, w = pipe
    parent_hits = []
    loop.add_reader(r, parent_hits.append, "parent-cb")
    spin(loop)  # the poller is initialised and has been used before fork

    code, report = fork_and_run(lambda: loop_exercise(loop, r, w))
    assert_child_ok(code, report)

    # the parent is unaffected: its own reader (the parent-cb) still fires
    assert parent_hits == []
    got = loop.create_future()

    def on_readable():
        loop.remove_reader(r)
        got.set_result(os.read(r, 100))

    loop.add_reader(r, on_readable)
    os.write(w, b"parent")
    assert run_until(loop, got) == b"parent"
    assert wakeup_from_thread_works(loop) == "woken"


def test_fresh_loop_created_in_child_works(loop_kind):
    def child():
        lp = make_loop(loop_kind)
        try:
            loop_exercise(lp)
        finally:
            lp.close()

    code, report = fork_and_run(child)
    assert_child_ok(code, report)


def test_loop_used_and_closed_in_child(loop_kind):
    """A loop created (and run) in the parent, forked, used and then closed in
    the child: close() in the child must not raise, the parent's loop is not closed."""
    lp = make_loop(loop_kind)
    try:
        spin(lp)

        def child():
            loop_exercise(lp)
            lp.close()
            assert lp.is_closed()

        code, report = fork_and_run(child)
        assert_child_ok(code, report)
        assert not lp.is_closed()
    finally:
        lp.close()


# --------------------------------------------------------------------------- no shared epoll

def _sentinel_round(loop, watched_w):
    """Write to the watched pipe and to a freshly registered sentinel pipe,
    run until the sentinel fired plus a few full iterations.  Both fds are
    readable before the loop runs, so a still-registered watched fd is
    reported in the same poll as the sentinel."""
    sr, sw = os.pipe()
    try:
        got = loop.create_future()

        def on_sentinel():
            loop.remove_reader(sr)
            os.read(sr, 10)
            got.set_result(None)

        loop.add_reader(sr, on_sentinel)
        os.write(watched_w, b"x")
        os.write(sw, b"s")
        run_until(loop, got)
        spin(loop)
    finally:
        os.close(sr)
        os.close(sw)


def test_child_remove_reader_does_not_unregister_parent(loop, loop_kind, pipe):
    if loop_kind == "stdlib":
        pytest.skip(SHARED_EPOLL_REASON)
    r, w = pipe
    fired = []

    def on_readable():
        fired.append(os.read(r, 100))
        loop.remove_reader(r)

    loop.add_reader(r, on_readable)
    spin(loop)

    def child():
        assert loop.remove_reader(r) is True
        assert loop.remove_reader(r) is False

    code, report = fork_and_run(child)
    assert_child_ok(code, report)

    _sentinel_round(loop, w)
    assert fired == [b"x"], "parent's reader did not fire after the child's remove_reader()"


def test_child_remove_writer_does_not_unregister_parent(loop, loop_kind, pipe):
    if loop_kind == "stdlib":
        pytest.skip(SHARED_EPOLL_REASON)
    r, w = pipe
    fired = []
    loop.add_writer(w, fired.append, "w")
    spin(loop)
    assert fired
    fired.clear()

    def child():
        assert loop.remove_writer(w) is True

    code, report = fork_and_run(child)
    assert_child_ok(code, report)
    spin(loop)
    assert fired, "parent's writer did not fire after the child's remove_writer()"
    assert loop.remove_writer(w) is True


def test_child_replacing_reader_does_not_disturb_parent(loop, loop_kind, pipe):
    """Child switches the parent's read-only fd to read+write (EPOLL_CTL_MOD on
    a shared epoll would make the parent see writability it never asked for
    and, after the child removes both, nothing at all)."""
    if loop_kind == "stdlib":
        pytest.skip(SHARED_EPOLL_REASON)
    r, w = pipe
    fired = []

    def on_readable():
        fired.append(os.read(r, 100))
        loop.remove_reader(r)

    loop.add_reader(r, on_readable)
    spin(loop)

    def child():
        loop.add_writer(r, lambda: None)
        loop.remove_writer(r)
        loop.remove_reader(r)

    code, report = fork_and_run(child)
    assert_child_ok(code, report)
    _sentinel_round(loop, w)
    assert fired == [b"x"]


def test_child_closing_loop_keeps_parent_reader(loop, pipe):
    r, w = pipe
    fired = []

    def on_readable():
        fired.append(os.read(r, 100))
        loop.remove_reader(r)

    loop.add_reader(r, on_readable)
    spin(loop)

    def child():
        loop.close()

    code, report = fork_and_run(child)
    assert_child_ok(code, report)
    assert not loop.is_closed()
    _sentinel_round(loop, w)
    assert fired == [b"x"]


def test_child_closing_loop_keeps_parent_wakeup(loop, loop_kind):
    if loop_kind == "stdlib":
        pytest.skip(
            "quickloop-only: the stdlib loop's close() in the child unregisters the "
            "shared self-pipe from the shared epoll, so the parent's "
            "call_soon_threadsafe() no longer wakes a blocked parent loop")
    spin(loop)

    def child():
        loop.close()

    code, report = fork_and_run(child)
    assert_child_ok(code, report)
    assert wakeup_from_thread_works(loop, timeout=10.0) == "woken"


def test_stdlib_shares_epoll_with_child(pipe):
    """Referee self-check: the sentinel check above really detects a shared
    epoll -- on the stdlib loop the child's remove_reader() unregisters the
    parent's fd.  (If a future CPython fixes this, this test says so.)"""
    loop = make_loop("stdlib")
    try:
        r, w = pipe
        fired = []
        loop.add_reader(r, fired.append, "fired")
        spin(loop)
        code, report = fork_and_run(lambda: loop.remove_reader(r))
        assert_child_ok(code, report)
        _sentinel_round(loop, w)
        assert fired == [], "stdlib no longer shares epoll with the child"
    finally:
        loop.close()


# --------------------------------------------------------------------------- fork inside a callback

def test_fork_inside_running_callback(loop):
    """Fork from inside a callback while the loop runs.  In the child the
    callback returns into the (still running) loop, which must keep working:
    a reader (the go-pipe, written by the parent after it stopped its loop),
    then a timer, a cross-thread wake-up and another reader.  The child leaves
    through os._exit() from inside a callback."""
    parent_pid = os.getpid()
    report_r, report_w = os.pipe()
    go_r, go_w = os.pipe()
    forked = loop.create_future()

    def child_fail(msg):
        child_exit(report_w, False, msg.encode())

    def child_body():
        def on_go():
            loop.remove_reader(go_r)
            os.read(go_r, 10)
            # run the second phase as a task on the (running) child loop
            task = loop.create_task(child_phase2())
            task.add_done_callback(child_done)

        loop.add_reader(go_r, on_go)

    async def child_phase2():
        futs = []
        timer_fut = loop.create_future()
        loop.call_later(0.001, timer_fut.set_result, "timer")
        thread_fut = loop.create_future()
        started = threading.Event()
        loop_tid = threading.get_native_id()

        def worker():
            started.wait(10)
            wait_until_blocked_in_epoll(loop_tid)
            loop.call_soon_threadsafe(thread_fut.set_result, "thread")

        t = threading.Thread(target=worker)
        t.start()
        loop.call_soon(started.set)
        try:
            await thread_fut
        finally:
            t.join(10)
        r, w = os.pipe()
        reader_fut = loop.create_future()

        def on_readable():
            loop.remove_reader(r)
            reader_fut.set_result(os.read(r, 100).decode())

        loop.add_reader(r, on_readable)
        os.write(w, b"reader")
        futs = [timer_fut, reader_fut]
        res = [thread_fut.result()] + list(await asyncio.gather(*futs))
        os.close(r)
        os.close(w)
        # (no get_running_loop() check: in 3.11 the running-loop record carries
        # the pid that set it, so it reads as "no running loop" in the child)
        return res

    def child_done(task):
        if task.cancelled():
            child_fail("child task cancelled")
        elif task.exception() is not None:
            exc = task.exception()
            child_fail("".join(traceback.format_exception(exc)))
        elif task.result() != ["thread", "timer", "reader"]:
            child_fail(f"unexpected result {task.result()!r}")
        else:
            child_exit(report_w, True)

    def forker():
        pid = os.fork()
        if pid == 0:
            try:
                os.close(report_r)
                os.close(go_w)
                child_entry(report_w)
                loop.set_exception_handler(
                    lambda lp, ctx: child_fail(f"exception handler called: {ctx!r}"))
                loop.call_later(15, child_fail, "child safety net expired")
                child_body()
            except BaseException:  # noqa: BLE001
                child_fail(traceback.format_exc())
            return  # back into the running loop, in the child
        forked.set_result(pid)

    loop.call_soon(forker)
    try:
        pid = run_until(loop, forked)
    finally:
        if os.getpid() != parent_pid:  # the child escaped its loop: never run pytest here
            child_fail("child left run_until_complete()")
    os.close(report_w)
    try:
        os.write(go_w, b"g")  # parent's loop is stopped now
        os.close(go_w)
        report = read_all(report_r).decode(errors="replace")
    finally:
        os.close(report_r)
        os.close(go_r)
    _, status = os.waitpid(pid, 0)
    assert_child_ok(os.waitstatus_to_exitcode(status), report)
    # and the parent's loop still works
    assert wakeup_from_thread_works(loop) == "woken"
