"""Example 10 -- "Task Cancellation with Custom Timeout"

Implementing custom timeout handling with task cancellation.

Fix: "The task is cancelled automatically after the specified timeout."

run_with_timeout() is a hand-written alternative to asyncio.wait_for(): it
runs the coroutine as a task, waits for it with asyncio.wait(timeout=...),
and on expiry cancels the task, waits for it to finish cancelling and raises
a custom OperationTimeout.  The same policy is also shown with the
asyncio.timeout() context manager.
"""
import asyncio


class OperationTimeout(Exception):
    pass


async def run_with_timeout(coro, timeout, name):
    task = asyncio.create_task(coro)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if task in done:
        return task.result()
    print(f"{name}: no result after {timeout} s, cancelling")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    raise OperationTimeout(f"{name} timed out after {timeout} s")


async def operation(name, duration):
    print(f"{name}: started")
    try:
        await asyncio.sleep(duration)
    except asyncio.CancelledError:
        print(f"{name}: cancelled")
        raise
    print(f"{name}: completed")
    return f"{name} ok"


async def main():
    for name, duration, timeout in [("fast op", 1, 3), ("slow op", 5, 2)]:
        try:
            result = await run_with_timeout(operation(name, duration), timeout, name)
            print(f"main: {result!r}")
        except OperationTimeout as exc:
            print(f"main: {exc}")

    # The same policy with the built-in asyncio.timeout() context manager.
    try:
        async with asyncio.timeout(1) as cm:
            await operation("scoped op", 5)
    except TimeoutError:
        print(f"main: scoped op timed out (expired={cm.expired()})")


if __name__ == "__main__":
    asyncio.run(main())
