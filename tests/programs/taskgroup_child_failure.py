"""TaskGroup: one child fails, siblings are cancelled, ExceptionGroup reported."""
import asyncio


async def sibling(name, log):
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        log.append(f"{name} cancelled")
        raise


async def failing(name, steps, exc):
    for _ in range(steps):
        await asyncio.sleep(0)
    raise exc


async def cleanup_sibling(log):
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        log.append("cleanup: started")
        await asyncio.sleep(0)  # awaiting during cleanup is allowed
        log.append("cleanup: finished")
        raise


def show(label, eg):
    print(f"{label}: {type(eg).__name__} {eg.message!r}")
    for exc in eg.exceptions:
        print(f"{label}:   {type(exc).__name__}: {exc}")


async def main():
    # 1. One child fails; the two sleepers and the body get cancelled.
    log = []
    body_cancelled = False
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sibling("a", log))
            tg.create_task(failing("f", 2, ValueError("boom")))
            tg.create_task(sibling("b", log))
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                body_cancelled = True
                raise
    except* ValueError as eg:
        show("1", eg)
    print(f"1: log={sorted(log)} body_cancelled={body_cancelled}")
    print(f"1: main cancelling()={asyncio.current_task().cancelling()}")

    # 2. Two children fail at distinct, deterministic points.
    log = []
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(failing("x", 1, KeyError("first")))
            tg.create_task(failing("y", 1, TypeError("second")))
            tg.create_task(cleanup_sibling(log))
    except* KeyError as eg:
        show("2 KeyError part", eg)
    except* TypeError as eg:
        show("2 TypeError part", eg)
    print(f"2: log={log}")

    # 3. Failure while the group is already exiting (body finished normally).
    log = []
    try:
        async with asyncio.TaskGroup() as tg:
            t = tg.create_task(sibling("c", log))
            tg.create_task(failing("g", 3, RuntimeError("late failure")))
        print("3: unreachable")
    except* RuntimeError as eg:
        show("3", eg)
    print(f"3: log={log} c.cancelled()={t.cancelled()}")

    # 4. The body raises: children cancelled, body error in the group.
    log = []
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sibling("d", log))
            await asyncio.sleep(0)
            raise LookupError("from the body")
    except* LookupError as eg:
        show("4", eg)
    print(f"4: log={log}")

    # 5. The parent is cancelled from outside: children cancelled, CancelledError
    #    propagates (not wrapped in an ExceptionGroup).
    log = []

    async def parent():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sibling("e", log))
            tg.create_task(sibling("f", log))
            await asyncio.sleep(60)

    p = asyncio.create_task(parent())
    for _ in range(3):
        await asyncio.sleep(0)
    p.cancel()
    try:
        await p
    except asyncio.CancelledError:
        print(f"5: parent cancelled, log={sorted(log)}")

    # 6. A child failing with a BaseException subclass other than CancelledError.
    class Stop(BaseException):
        pass

    log = []
    try:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(sibling("h", log))
                tg.create_task(failing("s", 1, Stop("base exception")))
        except* Stop as eg:
            show("6", eg)
    except BaseException as exc:
        print(f"6: unwrapped {type(exc).__name__}: {exc}")
    print(f"6: log={log}")


if __name__ == "__main__":
    asyncio.run(main())
