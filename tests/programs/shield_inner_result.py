"""shield(): outer cancelled, inner keeps running; its result/exception is retrieved later."""
import asyncio


async def compute(gate, value):
    await gate.wait()
    await asyncio.sleep(0)
    return value


async def explode(gate):
    await gate.wait()
    raise RuntimeError("inner failed after the outer was cancelled")


async def main():
    loop = asyncio.get_running_loop()

    # 1. Cancel the shield's outer future directly.
    gate = asyncio.Event()
    inner = asyncio.create_task(compute(gate, "inner result"))
    outer = asyncio.shield(inner)
    print(f"1: outer is inner? {outer is inner}")
    outer.cancel("stop waiting")
    await asyncio.sleep(0)
    print(f"1: outer.cancelled()={outer.cancelled()} inner.done()={inner.done()}")
    gate.set()
    print(f"1: await inner -> {await inner!r}")

    # 2. Cancel the task that awaits shield(); the inner result is picked up later.
    gate = asyncio.Event()
    inner = asyncio.create_task(compute(gate, 123))

    async def waiter():
        try:
            return await asyncio.shield(inner)
        except asyncio.CancelledError:
            print("2: waiter saw CancelledError")
            raise

    w = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    w.cancel()
    try:
        await w
    except asyncio.CancelledError:
        print(f"2: waiter cancelled; inner cancelled? {inner.cancelled()}")
    gate.set()
    done, pending = await asyncio.wait({inner})
    print(f"2: inner finished with {inner.result()!r}, pending={len(pending)}")

    # 3. Inner fails after the outer was cancelled: the exception stays on the
    #    inner task (retrieved here, so no 'exception was never retrieved').
    gate = asyncio.Event()
    inner = asyncio.create_task(explode(gate))
    outer = asyncio.shield(inner)
    outer.cancel()
    gate.set()
    try:
        await inner
    except RuntimeError as exc:
        print(f"3: inner raised {exc}")
    print(f"3: outer.cancelled()={outer.cancelled()}")

    # 4. Cancelling the inner task itself cancels the outer too.
    gate = asyncio.Event()
    inner = asyncio.create_task(compute(gate, "never"))
    outer = asyncio.shield(inner)
    await asyncio.sleep(0)
    inner.cancel()
    try:
        await outer
    except asyncio.CancelledError:
        print(f"4: outer cancelled because inner was: {inner.cancelled()}")

    # 5. Shield of an already-finished future returns it unchanged.
    fut = loop.create_future()
    fut.set_result("ready")
    print(f"5: shield(done future) is the future: {asyncio.shield(fut) is fut}")

    # 6. Shield inside wait_for: the timeout cancels the outer, the inner finishes.
    gate = asyncio.Event()
    inner = asyncio.create_task(compute(gate, "shielded from wait_for"))
    try:
        await asyncio.wait_for(asyncio.shield(inner), timeout=0.01)
    except TimeoutError:
        print(f"6: wait_for timed out; inner done? {inner.done()}")
    gate.set()
    print(f"6: inner -> {await inner!r}")

    # 7. Shield a coroutine (wrapped into a task) while the caller is cancelled
    #    several times; the work completes exactly once.
    runs = []

    async def work():
        runs.append("start")
        await asyncio.sleep(0.02)
        runs.append("end")
        return "work done"

    shielded = asyncio.shield(work())
    caller = asyncio.create_task(asyncio.wait_for(shielded, None))
    await asyncio.sleep(0)
    caller.cancel()
    caller.cancel()
    try:
        await caller
    except asyncio.CancelledError:
        print(f"7: caller cancelled, runs so far={runs}")
    while len(runs) < 2:  # no timing luck: poll until the shielded work ends
        await asyncio.sleep(0.005)
    print(f"7: runs after waiting={runs}")
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            print("7: left-over task", task.get_name(), task.done())


if __name__ == "__main__":
    asyncio.run(main())
