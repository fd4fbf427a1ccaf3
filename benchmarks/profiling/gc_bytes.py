"""Profiling driver: bytes of GC-tracked objects (sys.getsizeof, GC header
included) alive per task asleep in asyncio.sleep(3600), by type; a full
collection reads all of them.

Usage: python gc_bytes.py stdlib|uvloop|quickloop
"""
import asyncio, quickloop, sys, gc, collections
N = 2000
def snap():
    gc.collect()
    c = collections.Counter(); b = collections.Counter()
    for o in gc.get_objects():
        k = type(o).__name__; c[k] += 1; b[k] += sys.getsizeof(o)
    return c, b
async def sleeper(): await asyncio.sleep(3600)
async def main():
    loop = asyncio.get_running_loop()
    c0, b0 = snap()
    tasks = [loop.create_task(sleeper()) for _ in range(N)]
    await asyncio.sleep(0)
    c1, b1 = snap()
    d = {k: round((v - b0[k]) / N) for k, v in b1.items() if abs(c1[k] - c0[k]) >= N // 2}
    print(sys.argv[1], "bytes/task", sum(d.values()), d)
    for t in tasks: t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
