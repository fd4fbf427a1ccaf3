"""Example 5 -- "Handling Cancellation in Long-Running Loops"

If your task runs in a loop, cancel the loop gracefully by catching
CancelledError.

Fix: "The task is cancelled during its execution, with proper handling of
CancelledError."

A worker loops forever doing one unit of work per second.  main() lets it
run for 3.5 s and cancels it; the worker catches the CancelledError around
its loop, reports how far it got, and re-raises.

The loop ticks on absolute deadlines (start + n seconds) rather than chaining
sleep(1) calls, so late wake-ups on a busy machine cannot accumulate and
shift which iteration the cancellation lands in.
"""
import asyncio


async def worker():
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    iteration = 0
    try:
        while True:
            iteration += 1
            print(f"worker: iteration {iteration}")
            next_tick += 1  # one iteration per second, without drift
            await asyncio.sleep(next_tick - loop.time())
    except asyncio.CancelledError:
        print(f"worker: cancelled during iteration {iteration}, stopping the loop")
        raise
    finally:
        print("worker: loop exited")


async def main():
    task = asyncio.create_task(worker())
    await asyncio.sleep(3.5)
    print("main: cancelling the worker")
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("main: worker stopped cleanly")


if __name__ == "__main__":
    asyncio.run(main())
