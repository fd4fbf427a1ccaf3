"""Profiling driver: N tasks sleeping, then all cancelled and gathered, once
(the body of workloads.task_spawn_cancel); for callgrind, run at two N and
take the difference per task.

Usage: python spawn_cancel_n.py stdlib|uvloop|quickloop N [nogc]
"""
import asyncio, quickloop, sys, gc
N = int(sys.argv[2])
async def sleeper(): await asyncio.sleep(3600)
async def main():
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(sleeper()) for _ in range(N)]
    await asyncio.sleep(0)
    for t in tasks: t.cancel()
    res = await asyncio.gather(*tasks, return_exceptions=True)
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
if "nogc" in sys.argv: gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
