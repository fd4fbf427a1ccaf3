"""Profiling driver: N TaskGroups of 100 sleeping children and one failing child (env N).

Usage: python taskgroup.py stdlib|uvloop|quickloop   (GC disabled: instruction counts)
"""
import asyncio, quickloop, sys, os
N = int(os.environ.get("N", 200)); K = 100
async def child(): await asyncio.sleep(3600)
async def failer():
    await asyncio.sleep(0); raise ValueError
async def main():
    for _ in range(N):
        try:
            async with asyncio.TaskGroup() as tg:
                for _ in range(K): tg.create_task(child())
                tg.create_task(failer())
        except* ValueError: pass
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
import gc; gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
