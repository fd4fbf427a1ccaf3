"""task.cancel(msg): the message reaches the coroutine and whoever awaits the task."""
import asyncio


async def sleeper(started):
    started.set()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError as exc:
        print(f"inside: args={exc.args!r}")
        raise


async def catches_and_reraises_new():
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        raise asyncio.CancelledError("replaced message")


async def main():
    # 1. message seen inside the task and by the awaiter
    started = asyncio.Event()
    task = asyncio.create_task(sleeper(started))
    await started.wait()
    print(f"cancel() returned {task.cancel('why')}")
    print(f"cancelling()={task.cancelling()} done={task.done()}")
    try:
        await task
    except asyncio.CancelledError as exc:
        print(f"awaiter: args={exc.args!r}")
    print(f"cancelled()={task.cancelled()}")
    try:
        task.result()
    except asyncio.CancelledError as exc:
        print(f"result(): args={exc.args!r}")
    try:
        task.exception()
    except asyncio.CancelledError as exc:
        print(f"exception(): args={exc.args!r}")
    print(f"cancel() after done returned {task.cancel('again')}")

    # 2. cancelled before it ever ran: the coroutine never starts
    ran = []

    async def never():
        ran.append(1)

    task = asyncio.create_task(never())
    task.cancel("before start")
    try:
        await task
    except asyncio.CancelledError as exc:
        print(f"before start: args={exc.args!r} ran={ran}")

    # 3. two cancel() calls: the first message wins? (whatever asyncio says)
    task = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    task.cancel("first")
    task.cancel("second")
    print(f"double cancel: cancelling()={task.cancelling()}")
    try:
        await task
    except asyncio.CancelledError as exc:
        print(f"double cancel: args={exc.args!r}")

    # 4. a plain Future cancelled with a message
    fut = asyncio.get_running_loop().create_future()
    fut.cancel("future msg")
    try:
        await fut
    except asyncio.CancelledError as exc:
        print(f"future: args={exc.args!r}")

    # 5. the coroutine replaces the CancelledError with its own
    task = asyncio.create_task(catches_and_reraises_new())
    await asyncio.sleep(0)
    task.cancel("original")
    try:
        await task
    except asyncio.CancelledError as exc:
        print(f"replaced: args={exc.args!r} cancelled()={task.cancelled()}")

    # 6. message of a task cancelled while awaiting another task
    inner = asyncio.create_task(asyncio.sleep(3600))
    outer = asyncio.create_task(asyncio.wait_for(inner, None))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    outer.cancel("outer msg")
    try:
        await outer
    except asyncio.CancelledError as exc:
        print(f"outer: args={exc.args!r}")
    await asyncio.sleep(0)
    print(f"inner cancelled too: {inner.cancelled()}")
    try:
        inner.result()
    except asyncio.CancelledError as exc:
        print(f"inner: args={exc.args!r}")


if __name__ == "__main__":
    asyncio.run(main())
