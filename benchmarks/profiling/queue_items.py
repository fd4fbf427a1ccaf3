"""Profiling driver: N items from a producer to a consumer task through
asyncio.Queue(maxsize=64) (env N).

Usage: python queue.py stdlib|uvloop|quickloop   (GC disabled: instruction counts)
"""
import asyncio, quickloop, sys, os
N = int(os.environ.get("N", 100000))
async def producer(q):
    for i in range(N):
        await q.put(i)
    await q.put(None)
async def consumer(q):
    while await q.get() is not None:
        pass
async def main():
    q = asyncio.Queue(maxsize=64)
    await asyncio.gather(producer(q), consumer(q))
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
import gc; gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
