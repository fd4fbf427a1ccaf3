"""What every workload module shares: the result type, the registry entry,
the check and skip exceptions, and the timed runner of a coroutine body.

Every workload has the signature ``workload(loop, n) -> Measured`` where
``loop`` is a fresh, not-running event loop (the runner creates and closes
it) and ``n`` is the size.  A workload registered with ``wants_loop_name``
also gets ``loop_name=`` (the suite's name for the loop, e.g. "uvloop"), for
work that must build the same kind of loop in another process.
"""
import gc
import time

__all__ = ["CheckFailed", "Measured", "SkipWorkload", "Workload", "check", "run_checked", "run_timed"]


class CheckFailed(AssertionError):
    """A workload's result is wrong: the loop under test misbehaved."""


class SkipWorkload(Exception):
    """The workload cannot run here (a missing tool or module): the runner
    reports it as skipped with this reason, not as a failure."""


class Measured(tuple):
    """``(ops, elapsed)`` plus an ``extra`` dict of workload-specific figures."""

    def __new__(cls, ops, elapsed, extra=None):
        self = super().__new__(cls, (ops, elapsed))
        self.extra = dict(extra or {})
        return self

    @property
    def ops(self):
        return self[0]

    @property
    def elapsed(self):
        return self[1]


class Workload:
    """Registry entry: the function plus its sizes and unit of work.

    ``requires`` is an optional zero-argument callable returning None when
    the workload can run here, else the reason it cannot (checked once per
    run, before any loop).  ``min_size`` is the smallest size ``--scale``
    can shrink it to."""

    def __init__(self, name, func, full, summary, unit, doc, title="", requires=None, wants_loop_name=False,
                 min_size=2):
        self.name = name
        self.title = title  # one line for --list
        self.func = func
        self.full = full  # size for the full run
        self.summary = summary  # size for --summary
        self.unit = unit  # what one "op" is
        self.doc = doc
        self.requires = requires
        self.wants_loop_name = wants_loop_name
        self.min_size = min_size

    def size(self, summary=False, scale=1.0):
        base = self.summary if summary else self.full
        return max(self.min_size, int(base * scale))

    def unavailable(self):
        """None if the workload can run here, else why not."""
        return self.requires() if self.requires else None


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def run_checked(loop, body):
    """``loop.run_until_complete(body())``; its result.

    Any context that reaches the loop's exception handler meanwhile (a
    callback that raised, a task exception never retrieved, ...) fails the
    workload."""
    errors = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        result = loop.run_until_complete(body())
        # Unretrieved task exceptions are only reported when the task dies.
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    if errors:
        first = errors[0]
        raise CheckFailed(
            f"{len(errors)} error(s) reached the loop's exception handler; first: "
            f"{first.get('message')!r} {first.get('exception')!r}"
        )
    return result


def run_timed(loop, body):
    """Run ``await body()`` on ``loop``; return (its result, seconds).

    The clock starts and stops inside the running loop, so creating,
    starting, stopping and closing the loop are not timed.  Errors reaching
    the loop's exception handler fail the workload (see run_checked)."""

    async def main():
        t0 = time.perf_counter()
        result = await body()
        t1 = time.perf_counter()
        return result, t1 - t0

    return run_checked(loop, main)


def quickloop_missing():
    """requires= for workloads calling quickloop's helpers directly."""
    try:
        import quickloop
    except ImportError as e:
        return f"quickloop not importable ({e})"
    for name in ("eager_task_factory", "shield", "timeout", "wait_for"):
        if not hasattr(quickloop, name):
            return f"quickloop has no {name} (extension not built?)"
    return None

