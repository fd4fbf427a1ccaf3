"""gather() cancelled from outside: children cancelled, outcomes per return_exceptions."""
import asyncio


async def child(name, gate, log, swallow=False):
    try:
        await gate.wait()
        return f"{name} ok"
    except asyncio.CancelledError:
        log.append(f"{name} cancelled")
        if swallow:
            return f"{name} swallowed"
        raise


async def settle(n=3):
    for _ in range(n):
        await asyncio.sleep(0)


async def run_case(label, return_exceptions, swallow_b=False, cancel_via="gather"):
    log = []
    gate = asyncio.Event()
    kids = [asyncio.create_task(child(n, gate, log, swallow=(swallow_b and n == "b"))) for n in "abc"]
    g = asyncio.gather(*kids, return_exceptions=return_exceptions)
    holder = asyncio.create_task(asyncio.wait_for(g, None))
    await settle()
    if cancel_via == "gather":
        print(f"{label}: g.cancel() -> {g.cancel('stop')}")
    else:
        print(f"{label}: holder.cancel() -> {holder.cancel()}")
    try:
        print(f"{label}: holder returned {await holder!r}")
    except asyncio.CancelledError:
        print(f"{label}: holder cancelled")
    print(f"{label}: gather done={g.done()} cancelled={g.cancelled()}")
    if g.done() and not g.cancelled():
        print(f"{label}: gather exception={g.exception()!r}")
    print(f"{label}: kids cancelled={[k.cancelled() for k in kids]} log={log}")


async def main():
    await run_case("1 plain", return_exceptions=False)
    await run_case("2 return_exceptions", return_exceptions=True)
    await run_case("3 one child swallows", return_exceptions=False, swallow_b=True)
    await run_case("4 swallow + return_exceptions", return_exceptions=True, swallow_b=True)
    await run_case("5 cancel the awaiting task", return_exceptions=True, cancel_via="holder")

    # 6. A child cancelled on its own (not via gather).
    log = []
    gate = asyncio.Event()
    kids = [asyncio.create_task(child(n, gate, log)) for n in "xy"]
    g = asyncio.gather(*kids, return_exceptions=True)
    await settle()
    kids[0].cancel()
    await settle()
    gate.set()
    results = await g
    print(f"6: results={[type(r).__name__ if isinstance(r, BaseException) else r for r in results]}")

    # 7. Same without return_exceptions: the gather raises CancelledError,
    #    the other child keeps running and is collected afterwards.
    log = []
    gate = asyncio.Event()
    kids = [asyncio.create_task(child(n, gate, log)) for n in "xy"]
    g = asyncio.gather(*kids)
    await settle()
    kids[0].cancel()
    try:
        await g
    except asyncio.CancelledError:
        print(f"7: gather raised CancelledError; y done={kids[1].done()}")
    gate.set()
    print(f"7: y -> {await kids[1]!r}")

    # 8. Cancelling a gather after it finished is a no-op.
    fut = asyncio.gather(asyncio.sleep(0, "r1"), asyncio.sleep(0, "r2"))
    print(f"8: {await fut} cancel-after-done -> {fut.cancel()}")

    # 9. Empty gather cancelled before it is awaited.
    g = asyncio.gather()
    print(f"9: empty gather done={g.done()} cancel -> {g.cancel()} result={g.result()}")


if __name__ == "__main__":
    asyncio.run(main())
