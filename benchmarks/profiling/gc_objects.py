"""Profiling driver: GC-tracked objects alive per task sleeping in asyncio.sleep(3600),
then per task once all are cancelled and gathered (the tasks and results held).

Usage: python gc_objects.py stdlib|uvloop|quickloop
"""
import asyncio, gc, quickloop, sys, collections
async def sleeper(): await asyncio.sleep(3600)
async def main():
    loop = asyncio.get_running_loop()
    gc.collect(); gc.disable()
    before = collections.Counter(type(o).__name__ for o in gc.get_objects())
    tasks = [loop.create_task(sleeper()) for _ in range(1000)]
    await asyncio.sleep(0)
    after = collections.Counter(type(o).__name__ for o in gc.get_objects())
    d = {k: (after[k]-before[k])/1000 for k in after if after[k]-before[k] >= 500}
    print(sys.argv[1], "asleep", round(sum(after.values())-sum(before.values()))/1000, d)
    for t in tasks: t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    done = collections.Counter(type(o).__name__ for o in gc.get_objects())
    d = {k: (done[k]-before[k])/1000 for k in done if done[k]-before[k] >= 500}
    print(sys.argv[1], "cancelled", round(sum(done.values())-sum(before.values()))/1000, d)
    del results; gc.enable()
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
