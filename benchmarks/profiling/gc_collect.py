"""Profiling driver: three full collections with N pending timers or tasks.

Usage (GC off while arming; only gc_collect_main is measured, with a
simulated 8 MiB last-level cache, so the miss counts are repeatable):

    valgrind --tool=callgrind --cache-sim=yes --LL=8388608,16,64 \
        --collect-atstart=no --toggle-collect=gc_collect_main \
        python3.11 gc_collect.py stdlib|uvloop|quickloop timers|tasks 50000
"""
import asyncio, gc, quickloop, sys
kind, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if kind == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
async def sleeper(): await asyncio.sleep(3600)
async def main():
    if what == 'tasks':
        objs = [loop.create_task(sleeper()) for _ in range(n)]
    else:
        objs = [loop.call_later(3600, print) for _ in range(n)]
    await asyncio.sleep(0)
    for _ in range(3):
        gc.collect()
    for o in objs:
        o.cancel()
    if what == 'tasks':
        await asyncio.gather(*objs, return_exceptions=True)
gc.disable()
loop = mk[kind](); loop.run_until_complete(main()); loop.close()
