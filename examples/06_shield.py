"""Example 6 -- "Using asyncio.shield() to Prevent Task Cancellation"

You can use asyncio.shield() to protect a task from cancellation.

Fix: "asyncio.shield() ensures that the task cannot be cancelled, even when
task.cancel() is called."

main() awaits a critical 3 s operation through asyncio.shield() from a
waiter task.  After 1 s the waiter is cancelled: its await raises
CancelledError, but the shielded operation keeps running, and main() later
collects its result.
"""
import asyncio


async def critical_operation():
    print("critical: started (3 s of work that must not be interrupted)")
    await asyncio.sleep(3)
    print("critical: finished")
    return "data saved"


async def waiter(critical):
    try:
        result = await asyncio.shield(critical)
    except asyncio.CancelledError:
        print("waiter: my await was cancelled, the shielded task goes on")
        raise
    print(f"waiter: got {result!r}")


async def main():
    critical = asyncio.create_task(critical_operation())
    task = asyncio.create_task(waiter(critical))
    await asyncio.sleep(1)

    print("main: calling task.cancel()")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("main: waiter task cancelled")
    print(f"main: critical task done? {critical.done()}")

    result = await critical  # the shielded work completes anyway
    print(f"main: critical task result = {result!r}, cancelled? {critical.cancelled()}")


if __name__ == "__main__":
    asyncio.run(main())
