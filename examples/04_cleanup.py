"""Example 4 -- "Cancelling Task with Cleanup"

It's essential to perform cleanup operations when a task is cancelled.

Fix: "The task handles cancellation during cleanup and ensures resources are
released properly."

The task opens a (simulated) connection, sends a greeting and starts a long
upload.  When it is cancelled mid-upload, its finally block closes the
connection -- an asynchronous cleanup step that itself awaits -- before the
cancellation propagates.
"""
import asyncio


class Connection:
    def __init__(self, name):
        self.name = name
        self.is_open = False

    async def open(self):
        await asyncio.sleep(0.1)
        self.is_open = True
        print(f"{self.name}: opened")

    async def send(self, what, seconds):
        print(f"{self.name}: sending {what}")
        await asyncio.sleep(seconds)
        print(f"{self.name}: sent {what}")

    async def close(self):
        print(f"{self.name}: closing...")
        await asyncio.sleep(0.5)  # e.g. flush buffers, say goodbye to the peer
        self.is_open = False
        print(f"{self.name}: closed")


async def worker(conn):
    await conn.open()
    try:
        await conn.send("greeting", 1)
        await conn.send("large upload", 5)
    except asyncio.CancelledError:
        print("worker: cancelled, cleaning up")
        raise
    finally:
        await conn.close()  # runs whether we finished or were cancelled


async def main():
    conn = Connection("db-connection")
    task = asyncio.create_task(worker(conn))
    await asyncio.sleep(2.5)  # the greeting is through, the upload in flight
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("main: worker was cancelled")
    print(f"main: connection still open? {conn.is_open}")


if __name__ == "__main__":
    asyncio.run(main())
