"""Profiling driver: 100k tasks sleeping, then all cancelled and gathered, ROUNDS times.

Usage: python spawn_cancel.py stdlib|uvloop|quickloop [ROUNDS] [nogc]
"""
import asyncio, quickloop, sys, time
N = 100_000
async def sleeper(): await asyncio.sleep(3600)
async def main():
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 5):
        tasks = [loop.create_task(sleeper()) for _ in range(N)]
        await asyncio.sleep(0)
        for t in tasks: t.cancel()
        res = await asyncio.gather(*tasks, return_exceptions=True)
    print(sys.argv[1], 'task_spawn_cancel: %.2fs' % (time.perf_counter() - t0))
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
import gc
if "nogc" in sys.argv: gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
