"""Run each example under valgrind memcheck (make valgrind).

    python tests/refleak/valgrind_examples.py [--python PY] [EXAMPLE.py ...]

Every program in examples/ (or the ones given) runs as ``PY -m quickloop
EXAMPLE`` under::

    valgrind --tool=memcheck --error-exitcode=1 --leak-check=full
             --errors-for-leak-kinds=definite --show-leak-kinds=definite
             --suppressions=tests/refleak/valgrind-python.supp

with PYTHONMALLOC=malloc (so that every Python object is a malloc block memcheck
tracks).  PY defaults to the interpreter running this script, which must have
quickloop installed (make valgrind uses .venv).  Logs: build/valgrind/NAME.log.

Before that, the standard library and quickloop's Python files are compiled to
*hash-based* .pyc files in a separate cache (PYTHONPYCACHEPREFIX=
build/valgrind/pycache), used by the runs under valgrind: importing a
timestamp-based .pyc calls int.from_bytes() on its zero flags field, which on
CPython 3.11 leaves an uninitialised digit that memcheck then reports all over
the interpreter loop (see valgrind-python.supp).  Hash-based .pyc files have
non-zero flags, so that false positive never starts.

An example fails when valgrind reports any error that the suppressions do not
cover (invalid read/write/free, use of uninitialised values, a definitely lost
block) or when the program itself exits non-zero.  Each error is shown with its
stack, marked [_core] when quickloop's C extension is on it.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPP = os.path.join(ROOT, "tests", "refleak", "valgrind-python.supp")
LOGDIR = os.path.join(ROOT, "build", "valgrind")
PYCACHE = os.path.join(LOGDIR, "pycache")

PRECOMPILE = r"""
import compileall, os, re, sys, sysconfig, py_compile, quickloop
mode = py_compile.PycInvalidationMode.CHECKED_HASH
skip = re.compile(r"[/\\](site-packages|dist-packages|test|tests|idlelib|lib2to3|tkinter|turtledemo|ensurepip)[/\\]")
ok = compileall.compile_dir(sysconfig.get_paths()["stdlib"], quiet=2, rx=skip, workers=0,
                            invalidation_mode=mode)
ok &= compileall.compile_dir(os.path.dirname(quickloop.__file__), quiet=2, invalidation_mode=mode)
sys.exit(0 if ok else 1)
"""

VALGRIND = [
    "valgrind", "--tool=memcheck", "--error-exitcode=1",
    "--leak-check=full", "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
    "--num-callers=40", f"--suppressions={SUPP}",
    "--fullpath-after=",  # frames show csrc/NAME.c, to tell quickloop's own
]


def in_core(record):
    """Whether quickloop's extension is on the error's stack."""
    return any("_core.cpython" in ln or "csrc/" in ln for ln in record)


ERROR_START = re.compile(
    r"^(Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised"
    r"|Syscall param|Source and destination overlap|Argument '.*' of function"
    r"|\S.* bytes in \S+ blocks are definitely lost)")


def parse(log_text):
    """The error records of a memcheck log (each a list of lines), and the summary."""
    records, cur = [], None
    summary = {}
    for raw in log_text.splitlines():
        m = re.match(r"^==\d+== ?(.*)$", raw)
        if not m:
            continue
        line = m.group(1)
        if cur is not None:
            if line.strip() == "":
                records.append(cur)
                cur = None
            else:
                cur.append(line)
            continue
        if ERROR_START.match(line):
            cur = [line]
            continue
        m = re.search(r"ERROR SUMMARY: (\d+) errors from (\d+) contexts", line)
        if m:
            summary["errors"], summary["contexts"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"(definitely|indirectly|possibly) lost: ([\d,]+) bytes in ([\d,]+) blocks", line)
        if m:
            summary[m.group(1)] = (int(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")))
    if cur:
        records.append(cur)
    return records, summary


def run_one(python, example):
    name = os.path.splitext(os.path.basename(example))[0]
    log = os.path.join(LOGDIR, name + ".log")
    env = dict(os.environ, PYTHONMALLOC="malloc", PYTHONPYCACHEPREFIX=PYCACHE,
               PYTHONDONTWRITEBYTECODE="1")
    t0 = time.monotonic()
    proc = subprocess.run(VALGRIND + [f"--log-file={log}", python, "-m", "quickloop", example],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    elapsed = time.monotonic() - t0
    with open(log) as f:
        text = f.read()
    records, summary = parse(text)
    return name, proc, elapsed, log, records, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("examples", nargs="*")
    args = ap.parse_args()
    examples = args.examples or sorted(glob.glob(os.path.join(ROOT, "examples", "[0-9]*.py")))
    os.makedirs(LOGDIR, exist_ok=True)
    t0 = time.monotonic()
    # Some stdlib files do not compile (lib2to3 test data, ...): not an error here.
    subprocess.run([args.python, "-c", PRECOMPILE], cwd=ROOT, check=False,
                   env=dict(os.environ, PYTHONPYCACHEPREFIX=PYCACHE),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"hash-based .pyc files in {os.path.relpath(PYCACHE, ROOT)} "
          f"({time.monotonic() - t0:.0f} s)")
    failed = 0
    for example in examples:
        name, proc, elapsed, log, records, summary = run_one(args.python, example)
        errors = summary.get("errors")
        definite = summary.get("definitely", (0, 0))
        n_core = sum(1 for r in records if in_core(r))
        # valgrind's exit code is 1 for an error, otherwise the program's own.
        ok = errors == 0 and proc.returncode == 0
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {errors} errors "
              f"({n_core} with _core on the stack), definitely lost {definite[0]} B "
              f"in {definite[1]} blocks, possibly lost {summary.get('possibly', (0, 0))[0]} B, "
              f"exit {proc.returncode}, {elapsed:.0f} s  [{os.path.relpath(log, ROOT)}]")
        if errors is None:
            print("    (no ERROR SUMMARY in the log: did valgrind run?)")
        if not ok and errors == 0:
            print("    the program failed under valgrind; its output:")
            print("    " + proc.stdout[-2000:].replace("\n", "\n    "))
        for r in records:
            tag = "[_core] " if in_core(r) else ""
            print(f"    {tag}{r[0]}")
            for ln in r[1:25]:
                print(f"      {ln}")
    print(f"valgrind: {len(examples) - failed} of {len(examples)} examples clean")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
