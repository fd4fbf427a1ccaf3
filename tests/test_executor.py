"""run_in_executor / set_default_executor / shutdown_default_executor.

Every test body runs on the stdlib loop (the referee) and on quickloop.
"""
import asyncio
import concurrent.futures
import threading

import pytest
from support import run_until


class Boom(Exception):
    pass


def add(a, b):
    return a + b


def where():
    return threading.get_ident(), threading.current_thread().name


class CountingExecutor(concurrent.futures.Executor):
    """Not a ThreadPoolExecutor: runs submissions synchronously."""

    def __init__(self):
        self.submitted = []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append((fn, args))
        f = concurrent.futures.Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001
            f.set_exception(exc)
        return f


# --------------------------------------------------------------------------- results

def test_run_in_executor_returns_value(loop):
    fut = loop.run_in_executor(None, add, 40, 2)
    assert asyncio.isfuture(fut)
    assert fut.get_loop() is loop
    assert run_until(loop, fut) == 42


def test_run_in_executor_runs_in_another_thread(loop):
    ident, name = run_until(loop, loop.run_in_executor(None, where))
    assert ident != threading.get_ident()
    assert name.startswith("asyncio")  # ThreadPoolExecutor(thread_name_prefix='asyncio')


def test_run_in_executor_awaited_from_coroutine(loop):
    async def main():
        results = await asyncio.gather(*[loop.run_in_executor(None, add, i, i) for i in range(50)])
        return results

    assert run_until(loop, main()) == [2 * i for i in range(50)]


def test_run_in_executor_exception_propagates(loop):
    def fail(msg):
        raise Boom(msg)

    fut = loop.run_in_executor(None, fail, "bad")
    with pytest.raises(Boom, match="bad"):
        run_until(loop, fut)

    async def main():
        try:
            await loop.run_in_executor(None, fail, "awaited")
        except Boom as exc:
            return str(exc)

    assert run_until(loop, main()) == "awaited"


def test_run_in_executor_wakes_blocked_loop(loop):
    """The job completes while the loop waits with nothing else to do."""
    release = threading.Event()
    loop.call_soon(release.set)

    def job():
        release.wait(10)
        return "done"

    assert run_until(loop, loop.run_in_executor(None, job)) == "done"


def test_run_in_executor_with_explicit_executor(loop):
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mine") as ex:
        ident, name = run_until(loop, loop.run_in_executor(ex, where))
    assert name.startswith("mine")


def test_run_in_executor_with_non_threadpool_executor(loop):
    ex = CountingExecutor()
    assert run_until(loop, loop.run_in_executor(ex, add, 1, 2)) == 3
    assert ex.submitted == [(add, (1, 2))]


def test_run_in_executor_coroutine_function_in_debug_mode(loop):
    async def coro_fn():
        pass

    loop.set_debug(True)
    with pytest.raises(TypeError):
        loop.run_in_executor(None, coro_fn)
    with pytest.raises(TypeError):
        loop.run_in_executor(None, 42)
    loop.set_debug(False)


def test_cancel_pending_executor_future(loop):
    """Cancelling the asyncio future cancels the (not yet started) job."""
    gate = threading.Event()
    ran = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as ex:
        blocker = loop.run_in_executor(ex, gate.wait, 10)
        pending = loop.run_in_executor(ex, ran.append, 1)
        pending.cancel()
        # the cancellation reaches the concurrent future through a loop
        # callback: let it run before the worker can pick up the job
        settled = loop.create_future()
        loop.call_soon(lambda: loop.call_soon(settled.set_result, None))
        run_until(loop, settled)
        gate.set()
        assert run_until(loop, blocker) is True
        with pytest.raises(asyncio.CancelledError):
            run_until(loop, pending)
    assert ran == []


# --------------------------------------------------------------------------- default executor

def test_set_default_executor_threadpool_is_used(loop):
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="custom-default")
    try:
        assert loop.set_default_executor(ex) is None
        ident, name = run_until(loop, loop.run_in_executor(None, where))
        assert name.startswith("custom-default")
    finally:
        ex.shutdown(wait=True)


def test_set_default_executor_non_threadpool_is_type_error(loop):
    # 3.11: TypeError('executor must be ThreadPoolExecutor instance')
    for bad in (CountingExecutor(), None, object(), concurrent.futures.Executor()):
        with pytest.raises(TypeError):
            loop.set_default_executor(bad)
    # the rejected executor did not become the default
    ident, name = run_until(loop, loop.run_in_executor(None, where))
    assert name.startswith("asyncio")


def test_threadpool_subclass_is_accepted(loop):
    class MyPool(concurrent.futures.ThreadPoolExecutor):
        pass

    ex = MyPool(max_workers=1, thread_name_prefix="subclass")
    try:
        loop.set_default_executor(ex)
        _, name = run_until(loop, loop.run_in_executor(None, where))
        assert name.startswith("subclass")
    finally:
        ex.shutdown(wait=True)


def test_shutdown_default_executor_then_run_in_executor_raises(loop):
    run_until(loop, loop.run_in_executor(None, add, 1, 1))  # create the default executor
    assert run_until(loop, loop.shutdown_default_executor()) is None
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, add, 1, 1)
    # an explicit executor is still fine
    ex = CountingExecutor()
    assert run_until(loop, loop.run_in_executor(ex, add, 2, 2)) == 4


def test_shutdown_default_executor_without_default_executor(loop):
    assert run_until(loop, loop.shutdown_default_executor()) is None
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, add, 1, 1)


def test_shutdown_default_executor_is_sticky_even_after_set_default_executor(loop):
    run_until(loop, loop.shutdown_default_executor())
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        loop.set_default_executor(ex)
        with pytest.raises(RuntimeError):
            loop.run_in_executor(None, add, 1, 1)
    finally:
        ex.shutdown(wait=True)


def test_shutdown_default_executor_waits_for_running_jobs(loop):
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(ex)
    started = threading.Event()
    release = threading.Event()
    finished = []

    def job():
        started.set()
        release.wait(10)
        finished.append(True)
        return "job"

    job_fut = loop.run_in_executor(None, job)
    assert started.wait(10)

    async def main():
        loop.call_soon(release.set)
        await loop.shutdown_default_executor()
        return list(finished)

    assert run_until(loop, main()) == [True]
    assert run_until(loop, job_fut) == "job"
    with pytest.raises(RuntimeError):
        ex.submit(add, 1, 1)  # really shut down


def test_close_shuts_down_default_executor(loop):
    ex = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    loop.set_default_executor(ex)
    assert run_until(loop, loop.run_in_executor(None, add, 3, 4)) == 7
    loop.close()
    with pytest.raises(RuntimeError):
        ex.submit(add, 1, 1)
    ex.shutdown(wait=True)


def test_run_in_executor_on_closed_loop_raises(loop):
    loop.close()
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, add, 1, 2)
    ex = CountingExecutor()
    with pytest.raises(RuntimeError):
        loop.run_in_executor(ex, add, 1, 2)
    assert ex.submitted == []
