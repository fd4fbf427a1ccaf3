"""cancelling()/uncancel() bookkeeping under nested asyncio.timeout() blocks."""
import asyncio


def state(label):
    task = asyncio.current_task()
    print(f"{label}: cancelling()={task.cancelling()}")


async def inner_fires():
    # Outer deadline far away, inner deadline expires: only the inner block
    # converts its CancelledError to TimeoutError, and uncancel() resets the count.
    async with asyncio.timeout(60) as outer:
        try:
            async with asyncio.timeout(0.01) as inner:
                await asyncio.sleep(60)
        except TimeoutError:
            state("inner fired, caught TimeoutError")
        print(f"inner.expired()={inner.expired()} outer.expired()={outer.expired()}")
        await asyncio.sleep(0)  # still cancellable normally afterwards
    state("after outer block")


async def outer_fires():
    # Outer deadline earlier than inner: the inner block must let the
    # CancelledError through (it is not its own), the outer one converts it.
    try:
        async with asyncio.timeout(0.01) as outer:
            try:
                async with asyncio.timeout(60) as inner:
                    await asyncio.sleep(60)
            except asyncio.CancelledError:
                state("inner block passed CancelledError through")
                print(f"inner.expired()={inner.expired()}")
                raise
    except TimeoutError:
        state("outer converted to TimeoutError")
        print(f"outer.expired()={outer.expired()}")


async def timeout_plus_external_cancel(cm, started):
    # The timeout fires *and* someone else cancels us in the same iteration:
    # the timeout must not swallow the external cancellation.
    try:
        async with cm:
            started.set()
            try:
                await asyncio.sleep(60)
            finally:
                state("external+timeout, in finally")
    except TimeoutError:
        state("external+timeout, TimeoutError")
    except asyncio.CancelledError:
        state("external+timeout, CancelledError propagated")
        raise
    return "finished normally"


async def manual_uncancel():
    task = asyncio.current_task()
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        state("manual: caught")
        print(f"uncancel() -> {task.uncancel()}")
        state("manual: after uncancel")
    await asyncio.sleep(0)
    return "survived"


async def reschedule():
    async with asyncio.timeout(None) as cm:
        print(f"when() with None: {cm.when()}")
        cm.reschedule(asyncio.get_running_loop().time() + 0.01)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            state("rescheduled deadline hit")
            raise
    print("unreachable")


async def main():
    await asyncio.create_task(inner_fires())
    await asyncio.create_task(outer_fires())

    loop = asyncio.get_running_loop()
    for order in ("timeout first", "cancel first"):
        print(f"-- external+timeout, {order}")
        cm = asyncio.timeout(60)
        started = asyncio.Event()
        task = asyncio.create_task(timeout_plus_external_cancel(cm, started))
        await started.wait()
        if order == "timeout first":
            cm.reschedule(loop.time() - 1)  # expires on the next iteration
            task.cancel()
        else:
            task.cancel()
            cm.reschedule(loop.time() - 1)
        try:
            print(f"result={await task!r}")
        except asyncio.CancelledError:
            print(f"task.cancelled()={task.cancelled()} cancelling()={task.cancelling()}")
        print(f"cm.expired()={cm.expired()}")

    task = asyncio.create_task(manual_uncancel())
    await asyncio.sleep(0)
    task.cancel()
    print(f"manual: cancelling() from outside={task.cancelling()}")
    print(f"manual: result={await task!r} cancelling()={task.cancelling()}")

    try:
        await asyncio.create_task(reschedule())
    except TimeoutError:
        print("reschedule: TimeoutError")

    # Same nesting in the main task itself.
    state("main before")
    try:
        async with asyncio.timeout(0.01):
            async with asyncio.timeout(0.02):
                await asyncio.sleep(60)
    except TimeoutError:
        state("main after nested timeouts")


if __name__ == "__main__":
    asyncio.run(main())
