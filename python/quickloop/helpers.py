"""wait_for with Python 3.12's semantics, built on quickloop's C timeout.

3.12's wait_for awaits its argument in the caller's own task under a
timeout() instead of wrapping it in a new task (3.11), so a wait_for costs no
extra task and cancellation takes the same path as asyncio.timeout().
"""
import functools
from asyncio import events, exceptions, tasks

from ._core import timeout as _timeout


def _release_waiter(waiter, *args):
    if not waiter.done():
        waiter.set_result(None)


async def _cancel_and_wait(fut):
    """Cancel fut and wait until it is really done (not a timeout path)."""
    waiter = events.get_running_loop().create_future()
    cb = functools.partial(_release_waiter, waiter)
    fut.add_done_callback(cb)
    try:
        fut.cancel()
        await waiter
    finally:
        fut.remove_done_callback(cb)


async def wait_for(fut, timeout):
    """Wait for an awaitable to complete, with a timeout (3.12 semantics).

    On timeout the awaitable is cancelled and TimeoutError raised; if the
    waiting itself is cancelled, the awaitable is cancelled too.  A timeout of
    None waits forever; zero or less cancels at once unless already done.
    """
    if timeout is not None and timeout <= 0:
        fut = tasks.ensure_future(fut)
        if fut.done():
            return fut.result()
        await _cancel_and_wait(fut)
        try:
            return fut.result()
        except exceptions.CancelledError as exc:
            raise TimeoutError from exc
    async with _timeout(timeout):
        return await fut
