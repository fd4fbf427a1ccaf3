"""python -m quickloop SCRIPT [ARGS...] | -m MODULE [ARGS...]

Run an unchanged asyncio program on quickloop: the quickloop policy is
installed, then the script runs as __main__ with sys.argv = [SCRIPT, ARGS...].
"""
import os
import runpy
import sys

from . import install

USAGE = "usage: python -m quickloop SCRIPT [ARGS...] | -m MODULE [ARGS...]"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        install()
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return 0
    script = argv[0]
    if not os.path.isfile(script):
        print(f"quickloop: can't open file {script!r}: no such file", file=sys.stderr)
        return 2
    install()
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
