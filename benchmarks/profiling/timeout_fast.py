"""Profiling driver: N sequential `async with asyncio.timeout(10): await fast()`
(env N; API=wait_for for `await asyncio.wait_for(fast(), 10)` instead).

Usage: python timeout_fast.py stdlib|uvloop|quickloop   (GC disabled: instruction counts)
"""
import asyncio, quickloop, sys, os
N = int(os.environ.get("N", 20000)); API = os.environ.get("API", "timeout")
async def fast(i):
    await asyncio.sleep(0)
    return i
async def main():
    total = 0
    if API == "timeout":
        for i in range(N):
            async with asyncio.timeout(10):
                total += await fast(i)
    else:
        for i in range(N):
            total += await asyncio.wait_for(fast(i), 10)
    assert total == N * (N - 1) // 2
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
import gc; gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
