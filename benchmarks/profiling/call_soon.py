"""Profiling driver: N call_soon(cb, i) callbacks in batches of 10k (env N).

Usage: python call_soon.py stdlib|uvloop|quickloop [nogc]
"""
import asyncio, quickloop, sys, time
N = int(__import__("os").environ.get("N", 2_000_000))
def cb(i): pass
async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    def driver(start):
        end = min(start + 10000, N)
        for i in range(start, end): loop.call_soon(cb, i)
        if end < N: loop.call_soon(driver, end)
        else: loop.call_soon(done.set_result, None)
    t0 = time.perf_counter()
    loop.call_soon(driver, 0); await done
    print(sys.argv[1], '%.0f ns/callback' % ((time.perf_counter() - t0) / N * 1e9))
mk = {'quickloop': quickloop.new_event_loop, 'stdlib': asyncio.new_event_loop}
if sys.argv[1] == 'uvloop':
    import uvloop; mk['uvloop'] = uvloop.new_event_loop
import gc
if "nogc" in sys.argv: gc.disable()
loop = mk[sys.argv[1]](); loop.run_until_complete(main()); loop.close()
