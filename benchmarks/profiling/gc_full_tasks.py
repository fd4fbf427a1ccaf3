"""Profiling driver: one full collection's wall time with N tasks asleep in
asyncio.sleep(3600) (median of 5 gc.collect() calls, GC off otherwise), and
again once they are all cancelled and gathered.

Usage: python gc_full_tasks.py stdlib|uvloop|quickloop [N=100000]
"""
import asyncio, gc, quickloop, sys, time
kind, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 100000
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if kind == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
async def sleeper(): await asyncio.sleep(3600)
async def main():
    objs = [loop.create_task(sleeper()) for _ in range(n)]
    await asyncio.sleep(0)
    ts = []
    for _ in range(5):
        t = time.perf_counter(); gc.collect(); ts.append(time.perf_counter() - t)
    ntr = len(gc.get_objects())
    for t in objs: t.cancel()
    await asyncio.gather(*objs, return_exceptions=True)
    ts2 = []
    for _ in range(3):
        t = time.perf_counter(); gc.collect(); ts2.append(time.perf_counter() - t)
    print(kind, "tracked", ntr, "asleep full gc ms", round(sorted(ts)[2]*1e3, 1), "per obj ns", round(sorted(ts)[2]*1e9/ntr, 1), "| cancelled gc ms", round(sorted(ts2)[1]*1e3,1), len(gc.get_objects()))
gc.disable()
loop = mk[kind](); loop.run_until_complete(main()); loop.close()
