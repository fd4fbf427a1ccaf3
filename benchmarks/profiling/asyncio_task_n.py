"""Profiling driver: N tasks made by asyncio's own Task class (not the loop's
create_task), each awaiting sleep(0), gathered; GC disabled.  For callgrind,
run at N=10000 and 20000 and take the difference per task.

Usage: python asyncio_task_n.py LOOP N [eager]   (LOOP: stdlib, uvloop, quickloop;
eager: asyncio.Task(..., eager_start=True), Python 3.12+)
"""
import asyncio
import gc
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
kind, n = sys.argv[1], int(sys.argv[2])
eager = {"eager_start": True} if sys.argv[3:] == ["eager"] else {}
if kind == "quickloop":
    import quickloop
    loop = quickloop.new_event_loop()
elif kind == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
gc.disable()


async def leaf():
    await asyncio.sleep(0)


async def main():
    tasks = [asyncio.Task(leaf(), loop=loop, **eager) for _ in range(n)]
    await asyncio.gather(*tasks)


loop.run_until_complete(main())
loop.close()
