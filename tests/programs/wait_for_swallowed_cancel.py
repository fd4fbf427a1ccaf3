"""wait_for() timing out a task that swallows one cancellation (3.11 semantics)."""
import asyncio


async def stubborn(log, value, swallow_times):
    """Ignores the first `swallow_times` cancellations, then finishes normally."""
    swallowed = 0
    while True:
        try:
            await asyncio.sleep(60)
            return "slept fully"
        except asyncio.CancelledError:
            if swallowed >= swallow_times:
                log.append("giving up")
                raise
            swallowed += 1
            log.append(f"swallowed cancellation #{swallowed}")
            # Do a little more (non-cancelled) work after swallowing, then return.
            await asyncio.sleep(0)
            await asyncio.sleep(0.01)
            return value


async def polite(log):
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        log.append("polite: cancelled")
        raise


async def main():
    # 1. The inner coroutine swallows wait_for's cancellation and returns a value:
    #    3.11's wait_for returns that value instead of raising TimeoutError.
    log = []
    try:
        result = await asyncio.wait_for(stubborn(log, "late value", 1), timeout=0.01)
        print(f"1: wait_for returned {result!r}")
    except TimeoutError:
        print("1: TimeoutError")
    print(f"1: log={log}")

    # 2. Same with an explicit task object, checking the task's final state.
    log = []
    task = asyncio.create_task(stubborn(log, 42, 1))
    try:
        result = await asyncio.wait_for(task, timeout=0.01)
        print(f"2: wait_for returned {result!r}")
    except TimeoutError:
        print("2: TimeoutError")
    print(f"2: done={task.done()} cancelled={task.cancelled()} log={log}")

    # 3. A polite coroutine: TimeoutError, chained from the CancelledError.
    log = []
    try:
        await asyncio.wait_for(polite(log), timeout=0.01)
    except TimeoutError as exc:
        print(f"3: TimeoutError, __cause__ is {type(exc.__cause__).__name__}")
    print(f"3: log={log}")

    # 4. The task swallows the cancellation and then raises its own error.
    async def swallow_then_fail():
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            raise ValueError("failed while being cancelled")

    try:
        await asyncio.wait_for(swallow_then_fail(), timeout=0.01)
    except ValueError as exc:
        print(f"4: ValueError {exc}")
    except TimeoutError:
        print("4: TimeoutError")

    # 5. timeout=0 with an unfinished awaitable: cancelled right away.
    log = []
    try:
        await asyncio.wait_for(polite(log), timeout=0)
    except TimeoutError:
        print(f"5: TimeoutError with timeout=0, log={log}")

    # 6. The waiter of wait_for is itself cancelled while the inner task
    #    swallows: the outer cancellation must still win.
    log = []
    inner = asyncio.create_task(stubborn(log, "inner value", 1))
    outer = asyncio.create_task(asyncio.wait_for(inner, timeout=60))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    outer.cancel()
    try:
        print(f"6: outer returned {await outer!r}")
    except asyncio.CancelledError:
        print("6: outer cancelled")
    print(f"6: inner done={inner.done()} cancelled={inner.cancelled()} log={log}")
    if inner.done() and not inner.cancelled():
        print(f"6: inner result={inner.result()!r}")


if __name__ == "__main__":
    asyncio.run(main())
