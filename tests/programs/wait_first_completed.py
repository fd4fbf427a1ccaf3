"""asyncio.wait(return_when=FIRST_COMPLETED / FIRST_EXCEPTION), then cancel the rest."""
import asyncio


async def worker(name, gate, log, fail=False):
    try:
        await gate.wait()
    except asyncio.CancelledError:
        log.append(f"{name} cancelled")
        raise
    if fail:
        raise ValueError(f"{name} failed")
    return f"{name} result"


def names(tasks, by):
    return sorted(by[t] for t in tasks)


async def main():
    # 1. FIRST_COMPLETED with event gates: exactly one finishes first.
    log = []
    gates = {n: asyncio.Event() for n in "abcd"}
    tasks = {asyncio.create_task(worker(n, gates[n], log)): n for n in "abcd"}
    await asyncio.sleep(0)
    gates["c"].set()
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    print(f"1: done={names(done, tasks)} pending={names(pending, tasks)}")
    for t in pending:
        t.cancel()
    results = await asyncio.gather(*pending, return_exceptions=True)
    print(f"1: pending outcomes={[type(r).__name__ for r in results]}")
    print(f"1: log={sorted(log)} result={next(iter(done)).result()!r}")

    # 2. FIRST_COMPLETED with timers; the fastest wins by a wide margin.
    async def nap(name, seconds):
        await asyncio.sleep(seconds)
        return name

    tasks = {asyncio.create_task(nap(n, s)): n for n, s in [("slow", 30), ("fast", 0.01), ("slower", 60)]}
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    print(f"2: done={names(done, tasks)} pending={names(pending, tasks)}")
    for t in pending:
        t.cancel()
    done2, pending2 = await asyncio.wait(pending)
    print(f"2: after cancel all done={len(pending2) == 0} "
          f"cancelled={sorted(tasks[t] for t in done2 if t.cancelled())}")

    # 3. FIRST_EXCEPTION: one raises, the rest are cancelled and awaited.
    log = []
    gates = {n: asyncio.Event() for n in "xyz"}
    tasks = {asyncio.create_task(worker(n, gates[n], log, fail=(n == "y"))): n for n in "xyz"}
    await asyncio.sleep(0)
    gates["y"].set()
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    failed = [t for t in done if t.exception() is not None]
    print(f"3: done={names(done, tasks)} failed with {failed[0].exception()!r}")
    for t in pending:
        t.cancel()
    await asyncio.wait(pending)
    print(f"3: log={sorted(log)}")

    # 4. timeout with nothing done: everything pending, then cancelled.
    log = []
    gate = asyncio.Event()
    tasks = {asyncio.create_task(worker(n, gate, log)): n for n in "pq"}
    done, pending = await asyncio.wait(tasks, timeout=0.01, return_when=asyncio.FIRST_COMPLETED)
    print(f"4: done={len(done)} pending={names(pending, tasks)}")
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    print(f"4: log={sorted(log)}")

    # 5. The waiter of asyncio.wait() is cancelled: the waited tasks are NOT.
    log = []
    gate = asyncio.Event()
    tasks = {asyncio.create_task(worker(n, gate, log)): n for n in "mn"}
    waiter = asyncio.create_task(asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED))
    await asyncio.sleep(0)
    waiter.cancel()
    try:
        await waiter
    except asyncio.CancelledError:
        print(f"5: waiter cancelled; tasks cancelled={[t.cancelled() for t in tasks]}")
    gate.set()
    print(f"5: results={sorted(await asyncio.gather(*tasks))} log={log}")

    # 6. A task already done before wait(): returned immediately.
    fut = asyncio.get_running_loop().create_future()
    fut.set_result(1)
    other = asyncio.create_task(asyncio.sleep(60))
    done, pending = await asyncio.wait({fut, other}, return_when=asyncio.FIRST_COMPLETED)
    print(f"6: done has fut={fut in done} pending has other={other in pending}")
    other.cancel()
    await asyncio.wait({other})
    print(f"6: other.cancelled()={other.cancelled()}")

    # 7. as_completed: take the first, cancel the remainder.
    gates = [asyncio.Event() for _ in range(3)]
    log = []
    tasks = [asyncio.create_task(worker(f"ac{i}", g, log)) for i, g in enumerate(gates)]
    await asyncio.sleep(0)
    gates[2].set()
    for first in asyncio.as_completed(tasks):
        print(f"7: first={await first!r}")
        break
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(f"7: log={sorted(log)}")


if __name__ == "__main__":
    asyncio.run(main())
