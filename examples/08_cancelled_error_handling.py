"""Example 8 -- "Task Cancellation with CancelledError Handling"

You can handle task cancellations explicitly using try-except blocks.

Fix: "The CancelledError is explicitly handled to cleanly cancel the task."

A task processes a batch of items, one per second.  Its try/except block
catches CancelledError explicitly: it records which item was interrupted,
puts that item back for later, and re-raises so the task ends up properly
cancelled.  main() catches the CancelledError when awaiting the task.
(Items are paced on absolute one-second deadlines, so late wake-ups on a busy
machine cannot drift the cancellation into a different item.)
"""
import asyncio


async def process_items(items, leftover):
    loop = asyncio.get_running_loop()
    deadline = loop.time()
    current = None
    try:
        while items:
            current = items.pop(0)
            print(f"processing {current}...")
            deadline += 1  # one second per item
            await asyncio.sleep(deadline - loop.time())
            print(f"processed {current}")
            current = None
    except asyncio.CancelledError:
        print(f"cancellation requested while processing {current}")
        if current is not None:
            leftover.append(current)
        leftover.extend(items)
        print("state saved, re-raising CancelledError")
        raise  # let the task end as cancelled
    else:
        print("all items processed")


async def main():
    items = ["item-1", "item-2", "item-3", "item-4", "item-5"]
    leftover = []
    task = asyncio.create_task(process_items(items, leftover))
    await asyncio.sleep(2.5)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("main: caught CancelledError from the task")
    print(f"main: task.cancelled() = {task.cancelled()}")
    print(f"main: left for later: {leftover}")


if __name__ == "__main__":
    asyncio.run(main())
