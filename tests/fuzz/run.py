"""python -m tests.fuzz.run: run the C entry-point fuzzer (see README.md here).

    python -m tests.fuzz.run --seconds 60                  # atheris if installed
    python -m tests.fuzz.run --plain --seed 1 --iterations 20000
    python -m tests.fuzz.run --replay crash-<sha1>         # re-run one saved input
    python -m tests.fuzz.run --seconds 600 -- -max_len=4096 corpus/   # extra libFuzzer args

Exit status: 0 when nothing was found; 3 when a SystemError finding was seen
(the input is saved under --artifacts); a crash kills the process (negative
status / signal), after atheris/libFuzzer saved the input, or, in --plain mode,
after the input was written to <artifacts>/current-input (deleted on success).
"""
import argparse
import faulthandler
import hashlib
import os
import random
import signal
import sys
import time


def _save(artifacts, data, prefix):
    os.makedirs(artifacts, exist_ok=True)
    path = os.path.join(artifacts, f"{prefix}-{hashlib.sha1(data).hexdigest()}")
    with open(path, "wb") as f:
        f.write(data)
    return path


def run_plain(args, run_one):
    rng = random.Random(args.seed)
    deadline = time.monotonic() + args.seconds if args.seconds else None
    current = os.path.join(args.artifacts, "current-input")
    os.makedirs(args.artifacts, exist_ok=True)
    cur_fd = os.open(current, os.O_WRONLY | os.O_CREAT, 0o644) if args.save_current else -1
    if args.input_timeout:
        # a hung input: SIGALRM dumps the Python stack and kills the process
        faulthandler.register(signal.SIGALRM, chain=True)
    n = 0
    found = 0
    t0 = time.monotonic()
    while True:
        if args.iterations and n >= args.iterations:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        size = min(args.max_len, rng.choice((16, 64, 256, 1024, 4096)))
        data = rng.randbytes(rng.randint(1, size))
        if cur_fd >= 0:
            # overwritten each iteration: after a crash it holds the crashing input
            os.pwrite(cur_fd, data, 0)
            os.ftruncate(cur_fd, len(data))
        if args.input_timeout:
            signal.setitimer(signal.ITIMER_REAL, args.input_timeout)
        findings = run_one(data)
        if args.input_timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if findings:
            found += 1
            path = _save(args.artifacts, data, "finding")
            print(f"[{n}] finding, input saved to {path}:", file=sys.stderr)
            for line in findings[:5]:
                print("   ", line, file=sys.stderr)
            if found >= args.max_findings:
                break
        n += 1
        if args.verbose and n % 1000 == 0:
            print(f"{n} inputs, {time.monotonic() - t0:.1f} s", file=sys.stderr)
    if cur_fd >= 0:
        os.close(cur_fd)
        os.unlink(current)
    print(f"plain fuzzer: {n} inputs in {time.monotonic() - t0:.1f} s, seed {args.seed}, "
          f"{found} with findings")
    return 3 if found else 0


def run_atheris(args, run_one, extra):
    import atheris

    state = {"found": 0}

    def test_one_input(data):
        findings = run_one(data)
        if findings:
            # an exception in TestOneInput is an atheris "crash": it saves the input
            raise RuntimeError("quickloop fuzz finding:\n" + "\n".join(findings[:5]))

    argv = [sys.argv[0]]
    if args.seconds:
        argv.append(f"-max_total_time={int(args.seconds)}")
    if args.iterations:
        argv.append(f"-runs={args.iterations}")
    if args.seed is not None:
        argv.append(f"-seed={args.seed}")
    os.makedirs(args.artifacts, exist_ok=True)
    argv.append(f"-artifact_prefix={args.artifacts.rstrip('/')}/")
    if args.input_timeout:
        argv.append(f"-timeout={max(1, int(args.input_timeout))}")
    argv += extra
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()
    return 3 if state["found"] else 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=0, help="stop after this long")
    p.add_argument("--iterations", type=int, default=0, help="stop after this many inputs")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--plain", action="store_true",
                   help="random bytes, no atheris (the default when atheris is missing)")
    p.add_argument("--replay", metavar="FILE", nargs="+", help="run saved inputs and exit")
    p.add_argument("--artifacts", default="fuzz-artifacts", help="where inputs are saved")
    p.add_argument("--max-findings", type=int, default=1)
    p.add_argument("--no-save-current", dest="save_current", action="store_false",
                   help="(plain) do not write each input to <artifacts>/current-input")
    p.add_argument("--max-len", type=int, default=4096,
                   help="(plain) longest random input, in bytes")
    p.add_argument("--input-timeout", type=float, default=20,
                   help="seconds one input may take before it counts as a hang "
                        "(plain: SIGALRM, Python traceback, exit status 142; "
                        "atheris: libFuzzer's -timeout)")
    p.add_argument("--include-known", action="store_true",
                   help="do not steer around the known bugs listed in driver.KNOWN")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)

    if args.include_known:
        os.environ["QUICKLOOP_FUZZ_INCLUDE_KNOWN"] = "1"
    faulthandler.enable()
    if args.replay:
        from .driver import run_one
        rc = 0
        for path in args.replay:
            with open(path, "rb") as f:
                data = f.read()
            findings = run_one(data)
            print(f"{path}: {len(data)} bytes, {len(findings)} findings")
            for line in findings:
                print("   ", line)
            rc = rc or (3 if findings else 0)
        return rc

    if not args.seconds and not args.iterations:
        args.seconds = 60
    use_atheris = not args.plain
    if use_atheris:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed: using the plain random driver", file=sys.stderr)
            use_atheris = False
    if use_atheris:
        import atheris
        with atheris.instrument_imports(include=["quickloop", "asyncio", "tests.fuzz.driver"]):
            from .driver import run_one
        return run_atheris(args, run_one, extra)
    if args.seed is None:
        args.seed = random.randrange(2 ** 32)
    from .driver import run_one
    return run_plain(args, run_one)


if __name__ == "__main__":
    sys.exit(main())
