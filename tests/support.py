"""Shared test utilities: the run-until safety net, the SIGALRM watchdog for a
loop that may block, and CPython 3.12's
asyncio.wait_for, the referee for quickloop.wait_for (3.11's wait_for runs
the awaitable in a task of its own; 3.12's, which quickloop follows, in the
caller's task under asyncio.timeout)."""
import asyncio
import contextlib
import functools
import signal
from asyncio import events, exceptions, tasks, timeouts

import pytest


@contextlib.contextmanager
def alarm_watchdog(seconds=10.0):
    """Fail (instead of hanging) if a blocked loop is never woken up."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"watchdog: the loop was still blocked after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_until(loop, aw, timeout=10.0, why=""):
    """loop.run_until_complete(aw), with a call_later safety net that stops
    the loop, cancels aw and fails the test after ``timeout`` seconds (a
    hang becomes a failure; the bound is generous, never a timing check)."""
    fut = asyncio.ensure_future(aw, loop=loop)
    expired = []

    def expire():
        if not fut.done():
            expired.append(True)
            loop.stop()

    timer = loop.call_later(timeout, expire)
    try:
        return loop.run_until_complete(fut)
    except RuntimeError:
        if expired:
            fut.cancel()
            pytest.fail(f"timed out after {timeout}s waiting for {fut!r}{why}")
        raise
    finally:
        timer.cancel()


# --- wait_for: copied from CPython 3.12 Lib/asyncio/tasks.py ---------------

def _release_waiter(waiter, *args):
    if not waiter.done():
        waiter.set_result(None)


async def _cancel_and_wait(fut):
    """Cancel the *fut* future or task and wait until it completes."""

    loop = events.get_running_loop()
    waiter = loop.create_future()
    cb = functools.partial(_release_waiter, waiter)
    fut.add_done_callback(cb)

    try:
        fut.cancel()
        # We cannot wait on *fut* directly to make
        # sure _cancel_and_wait itself is reliably cancellable.
        await waiter
    finally:
        fut.remove_done_callback(cb)


async def ref_wait_for(fut, timeout):
    """3.12's asyncio.wait_for (verbatim apart from the docstring)."""
    # The special case for timeout <= 0 is for the following case:
    #
    # async def test_waitfor():
    #     func_started = False
    #
    #     async def func():
    #         nonlocal func_started
    #         func_started = True
    #
    #     try:
    #         await asyncio.wait_for(func(), 0)
    #     except asyncio.TimeoutError:
    #         assert not func_started
    #     else:
    #         assert False
    #
    # The ensure_future call below is what makes this work.
    if timeout is not None and timeout <= 0:
        fut = tasks.ensure_future(fut)

        if fut.done():
            return fut.result()

        await _cancel_and_wait(fut)
        try:
            return fut.result()
        except exceptions.CancelledError as exc:
            raise TimeoutError from exc

    async with timeouts.timeout(timeout):
        return await fut
