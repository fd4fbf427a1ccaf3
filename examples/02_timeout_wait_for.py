"""Example 2 -- "Task Cancellation with Timeout"

You can cancel a task after a specific timeout using asyncio.wait_for.

Fix: "If the task takes longer than the specified timeout, it's cancelled
automatically."

A 5 s job is given a 2 s budget with asyncio.wait_for(): the job sees the
CancelledError that wait_for() delivers when the budget runs out, and the
caller gets a TimeoutError.  A 1 s job with the same budget finishes normally.
"""
import asyncio


async def long_task(name, duration):
    print(f"{name}: started, needs {duration} s")
    try:
        await asyncio.sleep(duration)
    except asyncio.CancelledError:
        print(f"{name}: cancelled by wait_for")
        raise
    print(f"{name}: finished")
    return f"{name} result"


async def main():
    # Takes longer than the timeout: cancelled automatically.
    task = asyncio.create_task(long_task("slow job", 5))
    try:
        await asyncio.wait_for(task, timeout=2)
    except asyncio.TimeoutError:
        print("slow job: timed out after 2 s")
    print(f"slow job: task.cancelled() = {task.cancelled()}")

    # Fits in the timeout: the result comes back untouched.
    result = await asyncio.wait_for(long_task("quick job", 1), timeout=2)
    print(f"quick job: got {result!r}")


if __name__ == "__main__":
    asyncio.run(main())
