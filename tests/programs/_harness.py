"""Run an unchanged asyncio script on quickloop and prove that it did.

Usage: python tests/programs/_harness.py SCRIPT [ARGS...]

Installs a subclass of quickloop.EventLoopPolicy that records every loop it
creates, runs SCRIPT with runpy as __main__ (as `python SCRIPT` would), then
checks that at least one loop was created, that every one of them is exactly
quickloop.Loop, and that each ran iterations (loop._iterations > 0).  Any
failed check is written to stderr and the exit code is 3.  The harness never
writes to stdout, so the script's stdout can be compared byte for byte with
a plain `python SCRIPT` run on the stdlib loop.
"""
import asyncio
import os
import runpy
import sys

HARNESS_EXIT = 3


def fail(msg):
    sys.stderr.write(f"quickloop harness: {msg}\n")
    sys.stderr.flush()
    os._exit(HARNESS_EXIT)


def main():
    if len(sys.argv) < 2:
        fail("usage: _harness.py SCRIPT [ARGS...]")
    script = os.path.abspath(sys.argv[1])

    try:
        import quickloop
    except Exception as exc:  # noqa: BLE001 - report anything, clearly
        fail(f"cannot import quickloop: {exc!r} (build it: make dev; PYTHONPATH=python)")
    for name in ("EventLoopPolicy", "Loop"):
        if not hasattr(quickloop, name):
            fail(f"quickloop has no attribute {name!r} (module file: "
                 f"{getattr(quickloop, '__file__', '?')}); is the C core built?")

    created = []

    class RecordingPolicy(quickloop.EventLoopPolicy):
        def new_event_loop(self):
            loop = super().new_event_loop()
            created.append(loop)
            return loop

    asyncio.set_event_loop_policy(RecordingPolicy())

    # Look like `python SCRIPT ARGS...` to the script.
    sys.argv = [script] + sys.argv[2:]
    sys.path[0] = os.path.dirname(script)
    exit_code = None
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:  # the script's own sys.exit(): check, then honour it
        exit_code = exc.code
    finally:
        sys.stdout.flush()

    check(quickloop, created)
    if exit_code is not None:
        sys.exit(exit_code)


def check(quickloop, created):
    if not created:
        fail("the script created no event loop through the policy")
    for i, loop in enumerate(created):
        if type(loop) is not quickloop.Loop:
            fail(f"loop #{i} is {type(loop).__module__}.{type(loop).__qualname__}, "
                 f"not quickloop.Loop")
        try:
            iterations = loop._iterations
        except Exception as exc:  # noqa: BLE001
            fail(f"loop #{i}: reading _iterations raised {exc!r}")
        if type(iterations) is not int:
            fail(f"loop #{i}: _iterations is {type(iterations).__name__}, not int")
        if iterations <= 0:
            fail(f"loop #{i}: _iterations == {iterations}, expected > 0")


if __name__ == "__main__":
    main()
