"""Example 9 -- "Handling Task Cancellation in Multiple Coroutine Functions"

You can manage cancellations in tasks that are waiting for multiple async
functions.

Fix: "Both tasks are cancelled, and exceptions are managed with
return_exceptions=True."

Two tasks each run a pipeline that awaits several async functions in turn
(fetch, parse, store).  After 2 s both are cancelled -- each at a different
stage -- and asyncio.gather(..., return_exceptions=True) collects both
CancelledErrors as values instead of raising.
"""
import asyncio


async def fetch(name, seconds):
    print(f"{name}: fetching")
    await asyncio.sleep(seconds)
    return f"<{name} payload>"


async def parse(name, payload, seconds):
    print(f"{name}: parsing {payload}")
    await asyncio.sleep(seconds)
    return {"source": name}


async def store(name, record, seconds):
    print(f"{name}: storing {record}")
    await asyncio.sleep(seconds)
    return f"{name} stored"


async def pipeline(name, fetch_s, parse_s, store_s):
    stage = "fetch"
    try:
        payload = await fetch(name, fetch_s)
        stage = "parse"
        record = await parse(name, payload, parse_s)
        stage = "store"
        return await store(name, record, store_s)
    except asyncio.CancelledError:
        print(f"{name}: cancelled during {stage}")
        raise


async def main():
    task_a = asyncio.create_task(pipeline("A", 1, 3, 1))  # will be parsing at 2 s
    task_b = asyncio.create_task(pipeline("B", 4, 1, 1))  # still fetching at 2 s
    await asyncio.sleep(2)

    print("main: cancelling both tasks")
    task_a.cancel()
    task_b.cancel()
    results = await asyncio.gather(task_a, task_b, return_exceptions=True)
    for name, result in zip("AB", results):
        print(f"main: task {name} -> {type(result).__name__}")
    print(f"main: both cancelled? {task_a.cancelled() and task_b.cancelled()}")


if __name__ == "__main__":
    asyncio.run(main())
