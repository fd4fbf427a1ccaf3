"""Example 3 -- "Canceling Multiple Tasks in a Group"

You can cancel multiple tasks within a task group.

Fix: "All tasks in the group are cancelled after a certain period, and
exceptions are handled with return_exceptions=True."

A group of workers with different durations is started; after 2 s every
task still running in the group is cancelled, and
asyncio.gather(..., return_exceptions=True) collects the outcome of each
one (a result or the CancelledError) without raising.
"""
import asyncio


async def worker(n, duration):
    print(f"worker {n}: started ({duration} s of work)")
    try:
        await asyncio.sleep(duration)
    except asyncio.CancelledError:
        print(f"worker {n}: cancelled")
        raise
    print(f"worker {n}: done")
    return f"worker {n} result"


async def main():
    durations = [1, 3, 4, 5]
    group = [asyncio.create_task(worker(n, d)) for n, d in enumerate(durations, 1)]

    await asyncio.sleep(2)  # the group's time budget
    print("time is up: cancelling the group")
    for task in group:
        task.cancel()  # a no-op for tasks that already finished

    results = await asyncio.gather(*group, return_exceptions=True)
    for n, result in enumerate(results, 1):
        if isinstance(result, asyncio.CancelledError):
            print(f"worker {n}: outcome = cancelled")
        else:
            print(f"worker {n}: outcome = {result!r}")
    cancelled = sum(task.cancelled() for task in group)
    print(f"{cancelled} of {len(group)} tasks were cancelled")


if __name__ == "__main__":
    asyncio.run(main())
