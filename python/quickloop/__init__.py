"""quickloop: a drop-in asyncio event loop written in C, built for fast cancellation.

    import quickloop
    quickloop.run(main())            # like asyncio.run, on a quickloop loop
    quickloop.install()              # make asyncio.run() & co. use quickloop
    loop = quickloop.new_event_loop()
"""
import asyncio

from ._core import (Future, Handle, Task, Timeout, TimerHandle, eager_task_factory,
                    shield, timeout, timeout_at)
from . import registry
from .helpers import wait_for
from .loop import Loop

__all__ = (
    "Loop", "new_event_loop", "EventLoopPolicy", "install", "run",
    "Future", "Task", "Handle", "TimerHandle", "Timeout",
    "shield", "timeout", "timeout_at", "wait_for", "eager_task_factory",
)
__version__ = "0.1.0"

registry.install()


def new_event_loop():
    """Return a new quickloop event loop."""
    return Loop()


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """The default asyncio policy, making quickloop loops."""

    _loop_factory = Loop

    def __repr__(self):
        return f"<{type(self).__module__}.{type(self).__qualname__}>"


def install():
    """Make asyncio create quickloop loops (asyncio.run, new_event_loop, ...)."""
    asyncio.set_event_loop_policy(EventLoopPolicy())


def run(main, *, debug=None):
    """Run a coroutine on a new quickloop loop, as asyncio.run() does."""
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(main)
