"""call_soon_threadsafe: cross-thread wake-ups of a loop blocked in its poller.

Every test body runs on the stdlib loop (the referee) and on quickloop.
"""
import platform
import threading
import time

import pytest
import support


# x86_64: epoll_wait, epoll_pwait, epoll_pwait2 ; aarch64: epoll_pwait, epoll_pwait2
_EPOLL_SYSCALLS = {
    "x86_64": {"232", "281", "441"},
    "aarch64": {"22", "441"},
}.get(platform.machine())


def wait_until_blocked_in_epoll(native_tid, limit=5.0):
    """Best effort: wait until the thread ``native_tid`` sits in an epoll wait syscall.

    Reads /proc/self/task/<tid>/syscall (the current syscall number).  This is
    a condition wait, not a timing assumption: the test result does not depend
    on it, it only makes sure the interesting path (waking a *blocked* poller)
    is the one exercised.  Returns True if the blocked state was observed.
    """
    if _EPOLL_SYSCALLS is None:
        return False
    path = f"/proc/self/task/{native_tid}/syscall"
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                nr = f.read().split()[0]
        except (OSError, IndexError):
            return False
        if nr in _EPOLL_SYSCALLS:
            return True
        time.sleep(0.001)
    return False


def test_call_soon_threadsafe_wakes_blocked_loop(loop):
    fut = loop.create_future()
    started = threading.Event()
    observed = []
    loop_tid = threading.get_native_id()

    def worker():
        started.wait(10)
        observed.append(wait_until_blocked_in_epoll(loop_tid))
        loop.call_soon_threadsafe(fut.set_result, "woken")

    t = threading.Thread(target=worker)
    t.start()
    try:
        # no timers except the safety net (10 s); the loop blocks in its poller
        loop.call_soon(started.set)
        assert run_until(loop, fut, timeout=10.0) == "woken"
    finally:
        t.join(10)
    assert not t.is_alive()


def test_call_soon_threadsafe_wakes_blocked_loop_repeatedly(loop):
    """Several consecutive wake-ups: the wake-up mechanism must re-arm."""
    results = []
    for i in range(5):
        fut = loop.create_future()
        started = threading.Event()
        loop_tid = threading.get_native_id()

        def worker(fut=fut, started=started, i=i):
            started.wait(10)
            wait_until_blocked_in_epoll(loop_tid)
            loop.call_soon_threadsafe(fut.set_result, i)

        t = threading.Thread(target=worker)
        t.start()
        try:
            loop.call_soon(started.set)
            results.append(run_until(loop, fut, timeout=10.0))
        finally:
            t.join(10)
    assert results == list(range(5))


def test_call_soon_threadsafe_before_run_is_executed(loop):
    """Called from another thread while the loop is not running: runs on the next run."""
    got = []

    def worker():
        loop.call_soon_threadsafe(got.append, "x")

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    fut = loop.create_future()
    loop.call_soon(fut.set_result, None)
    run_until(loop, fut)
    assert got == ["x"]


def test_call_soon_threadsafe_from_loop_thread(loop):
    order = []
    fut = loop.create_future()

    def first():
        order.append(1)
        loop.call_soon_threadsafe(second, "arg")

    def second(arg):
        order.append(arg)
        fut.set_result(None)

    loop.call_soon(first)
    run_until(loop, fut)
    assert order == [1, "arg"]


def test_many_threads_no_lost_wakeups(loop):
    n_threads = 8
    per_thread = 10_000
    total = n_threads * per_thread
    counts = [bytearray(per_thread) for _ in range(n_threads)]
    seen = [0]
    done = loop.create_future()
    go = threading.Event()

    def cb(t, i):
        counts[t][i] += 1
        seen[0] += 1
        if seen[0] == total:
            done.set_result(None)

    def worker(t):
        go.wait(10)
        for i in range(per_thread):
            loop.call_soon_threadsafe(cb, t, i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    try:
        loop.call_soon(go.set)
        run_until(loop, done, timeout=25.0)
    finally:
        go.set()
        for th in threads:
            th.join(25)
    # give anything still queued (a duplicate would be) a chance to run
    fut = loop.create_future()
    loop.call_soon(lambda: loop.call_soon(fut.set_result, None))
    run_until(loop, fut)
    assert seen[0] == total
    for t in range(n_threads):
        assert counts[t] == bytearray([1]) * per_thread, f"thread {t}: lost or duplicated callbacks"


def test_call_soon_threadsafe_preserves_per_thread_order(loop):
    n_threads = 4
    per_thread = 2000
    log = [[] for _ in range(n_threads)]
    seen = [0]
    done = loop.create_future()

    def cb(t, i):
        log[t].append(i)
        seen[0] += 1
        if seen[0] == n_threads * per_thread:
            done.set_result(None)

    def worker(t):
        for i in range(per_thread):
            loop.call_soon_threadsafe(cb, t, i)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    try:
        run_until(loop, done, timeout=20.0)
    finally:
        for th in threads:
            th.join(20)
    for t in range(n_threads):
        assert log[t] == list(range(per_thread))


def test_call_soon_threadsafe_on_closed_loop_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError):
        loop.call_soon_threadsafe(lambda: None)
    errors = []

    def worker():
        try:
            loop.call_soon_threadsafe(lambda: None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert len(errors) == 1 and type(errors[0]) is RuntimeError


def test_call_soon_threadsafe_checks_callback_in_debug_mode(loop):
    async def coro_fn():
        pass

    loop.set_debug(True)
    with pytest.raises(TypeError):
        loop.call_soon_threadsafe(coro_fn)
    with pytest.raises(TypeError):
        loop.call_soon_threadsafe(42)
    loop.set_debug(False)


def test_call_soon_threadsafe_handle_can_be_cancelled(loop):
    ran = []
    h = loop.call_soon_threadsafe(ran.append, "cancelled-one")
    loop.call_soon_threadsafe(ran.append, "kept")
    assert not h.cancelled()
    h.cancel()
    assert h.cancelled()
    fut = loop.create_future()
    loop.call_soon(lambda: loop.call_soon(fut.set_result, None))
    run_until(loop, fut)
    assert ran == ["kept"]


def test_call_soon_threadsafe_handle_cancelled_from_other_thread(loop):
    ran = []
    handles = []
    queued = threading.Event()

    def worker():
        handles.append(loop.call_soon_threadsafe(ran.append, "x"))
        handles[0].cancel()
        queued.set()

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert queued.is_set()
    fut = loop.create_future()
    loop.call_soon(lambda: loop.call_soon(fut.set_result, None))
    run_until(loop, fut)
    assert ran == []
    assert handles[0].cancelled()


def test_call_soon_threadsafe_passes_context(loop):
    import contextvars
    var = contextvars.ContextVar("var", default="default")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in-ctx")
    got = []
    fut = loop.create_future()

    def cb():
        got.append(var.get())
        fut.set_result(None)

    def worker():
        loop.call_soon_threadsafe(cb, context=ctx)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    run_until(loop, fut)
    assert got == ["in-ctx"]


def test_call_soon_threadsafe_exception_goes_to_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))
    fut = loop.create_future()

    def bad():
        raise ValueError("from threadsafe callback")

    def worker():
        loop.call_soon_threadsafe(bad)
        loop.call_soon_threadsafe(fut.set_result, "after")

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert run_until(loop, fut) == "after"
    finally:
        t.join(10)
    assert len(contexts) == 1
    assert isinstance(contexts[0]["exception"], ValueError)


def test_stop_via_call_soon_threadsafe_unblocks_run_forever(loop):
    started = threading.Event()
    loop_tid = threading.get_native_id()
    expired = []

    def worker():
        started.wait(10)
        wait_until_blocked_in_epoll(loop_tid)
        loop.call_soon_threadsafe(loop.stop)

    def expire():
        expired.append(True)
        loop.stop()

    t = threading.Thread(target=worker)
    t.start()
    timer = loop.call_later(10, expire)
    try:
        loop.call_soon(started.set)
        loop.run_forever()
    finally:
        timer.cancel()
        t.join(10)
    assert not expired, "run_forever was not woken by call_soon_threadsafe(loop.stop)"


def run_until(loop, fut, timeout=10.0):
    return support.run_until(loop, fut, timeout, why=": the loop was not woken up")
