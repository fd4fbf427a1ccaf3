"""Example 1 -- "Basic Task Cancellation"

This example demonstrates how to cancel an asyncio task gracefully.

Fix: "The CancelledError is caught, and the task is properly cleaned up after
cancellation."

This is the tutorial's own code (indentation restored): the task sleeps for
5 s, main() cancels it after 2 s, the task reports the cancellation and
re-raises, and main() handles the CancelledError when awaiting the task.
"""
import asyncio


async def long_task():
    print("Task started")
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        print("Task was cancelled")
        raise


async def main():
    task = asyncio.create_task(long_task())
    await asyncio.sleep(2)  # Wait for a while
    task.cancel()  # Cancel the task
    try:
        await task
    except asyncio.CancelledError:
        print("Handled cancellation")


if __name__ == "__main__":
    asyncio.run(main())
