"""Profiling driver: wall clock of task_spawn_cancel's body (100k tasks asleep,
all cancelled, gathered) on quickloop, 5 runs in one process, median; for
alternating two builds (PYTHONPATH=<build> python spawn_cancel_wall.py).
"""
import asyncio, quickloop, sys, gc, time, os
N = 100_000
async def sleeper(): await asyncio.sleep(3600)
async def main():
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    tasks = [loop.create_task(sleeper()) for _ in range(N)]
    await asyncio.sleep(0)
    for x in tasks: x.cancel()
    res = await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter() - t0
out = []
for rep in range(5):
    loop = quickloop.new_event_loop(); out.append(loop.run_until_complete(main())); loop.close()
out.sort(); print("median ms", round(out[2]*1e3), [round(x*1e3) for x in out])
