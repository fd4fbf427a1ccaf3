"""Example 7 -- "Canceling Tasks in a Context Manager"

Using an async context manager allows you to manage task cancellation in a
clean way.

Fix: "The context manager ensures that all tasks in the group are cancelled
as needed."

TaskScope is an async context manager that owns the tasks created through
it.  On exit it cancels the ones still running and waits for them, so no
task outlives the block; tasks that already finished are left alone.
"""
import asyncio


class TaskScope:
    def __init__(self, name):
        self.name = name
        self.tasks = []

    async def __aenter__(self):
        print(f"{self.name}: entered")
        return self

    def create_task(self, coro):
        task = asyncio.create_task(coro)
        self.tasks.append(task)
        return task

    async def __aexit__(self, exc_type, exc, tb):
        pending = [t for t in self.tasks if not t.done()]
        print(f"{self.name}: exiting, cancelling {len(pending)} unfinished task(s)")
        for task in pending:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        print(f"{self.name}: all tasks finished")
        return False  # do not swallow exceptions from the block


async def job(name, duration):
    print(f"{name}: started")
    try:
        await asyncio.sleep(duration)
    except asyncio.CancelledError:
        print(f"{name}: cancelled by the context manager")
        raise
    print(f"{name}: completed")
    return name


async def main():
    async with TaskScope("scope") as scope:
        quick = scope.create_task(job("quick job", 1))
        slow = scope.create_task(job("slow job", 5))
        slower = scope.create_task(job("slower job", 6))
        await asyncio.sleep(2)
        print("main: leaving the block")

    for name, task in (("quick job", quick), ("slow job", slow), ("slower job", slower)):
        state = "cancelled" if task.cancelled() else f"result {task.result()!r}"
        print(f"main: {name} -> {state}")


if __name__ == "__main__":
    asyncio.run(main())
