"""Worker: runs one test_asyncio module in this process, one JSON line per event.

Started by the runner (``_entry.py worker --module test_tasks --loop quickloop
--types quickloop --results FILE``); not meant to be used by hand, though it
can be.  Events written to FILE, each flushed at once so a crash loses nothing:

    {"event": "meta", ...}                    configuration actually used
    {"event": "start", "id": ...}             a test is starting
    {"event": "result", "id": ..., "outcome": ..., ...}
    {"event": "fixture", "id": ..., ...}      setUpClass/tearDownModule... errors
    {"event": "fatal", "reason": ...}         the module could not be run at all
    {"event": "done", ...}                    the whole module ran

A test that hangs longer than --per-test-timeout makes faulthandler dump every
thread's traceback to stderr and exit the process; the runner then reports that
test as a timeout and restarts the worker after it (--exclude).
"""
import argparse
import asyncio
import faulthandler
import importlib
import json
import os
import sys
import time
import traceback
import unittest
import warnings
from asyncio import futures, tasks

from . import profiles
from .tracking import TRACKER

ID_PREFIX = "test.test_asyncio."
MAX_TRACEBACK = 8000


class Context:
    """The target of this run: loop factory, policy factory, Task/Future types."""

    def __init__(self, loop_kind, types_kind, quickloop):
        self.loop_kind = loop_kind
        self.types_kind = types_kind
        self.quickloop = quickloop
        self.task_type = self.future_type = None
        self.types_label = "none"
        self.types_fallback = False
        if types_kind == "stdlib":
            self.task_type, self.future_type = tasks._CTask, futures._CFuture
            self.types_label = "asyncio C types (_asyncio.Task/_asyncio.Future)"
        elif types_kind == "quickloop":
            ql_task = getattr(quickloop, "Task", None)
            ql_future = getattr(quickloop, "Future", None)
            self.task_type = ql_task or tasks._CTask
            self.future_type = ql_future or futures._CFuture
            missing = [n for n, t in (("Task", ql_task), ("Future", ql_future)) if t is None]
            self.types_fallback = bool(missing)
            self.types_label = f"{_qualname(self.task_type)}/{_qualname(self.future_type)}"
            if missing:
                self.types_label += (
                    " (FALLBACK: quickloop has no " + "/".join(missing)
                    + " yet, using asyncio's C types)"
                )

    def new_loop(self):
        if self.loop_kind == "quickloop":
            return self.quickloop.new_event_loop()
        return asyncio.SelectorEventLoop()

    def new_policy(self):
        if self.loop_kind == "quickloop":
            return self.quickloop.EventLoopPolicy()
        return asyncio.DefaultEventLoopPolicy()


def _qualname(t):
    return f"{t.__module__}.{t.__qualname__}"


def short_id(test):
    tid = test.id()
    if tid.startswith(ID_PREFIX):
        return tid[len(ID_PREFIX):]
    return tid.replace("(" + ID_PREFIX, "(")


def _trim(text):
    if text is None or len(text) <= MAX_TRACEBACK:
        return text
    half = MAX_TRACEBACK // 2
    return text[:half] + "\n[... traceback trimmed ...]\n" + text[-half:]


def summarize_traceback(text):
    """(last line, deepest frame 'dir/file.py:LINE in func') of a formatted traceback."""
    if not text:
        return None, None
    lines = [ln for ln in text.rstrip().splitlines() if ln.strip()]
    reason = None
    frames = [i for i, ln in enumerate(lines) if ln.lstrip().startswith('File "')]
    if frames:
        # The exception line follows the last frame's source lines: the first
        # line of a multi-line message ("AssertionError: {} != {...}").
        for ln in lines[frames[-1] + 1:]:
            if not ln.startswith(" "):
                reason = ln.strip()
                break
    if reason is None:
        for ln in reversed(lines):
            if not ln.startswith(" ") and not ln.startswith("Traceback"):
                reason = ln.strip()
                break
    origin = None
    for ln in reversed(lines):
        s = ln.strip()
        if s.startswith('File "') and "/unittest/" not in s:
            try:
                path, rest = s[6:].split('", line ', 1)
                lineno, _, func = rest.partition(", in ")
                parts = path.replace("\\", "/").split("/")
                origin = f"{'/'.join(parts[-2:])}:{lineno} in {func}"
            except ValueError:
                origin = s
            break
    return reason, origin


class RecordingResult(unittest.TestResult):
    def __init__(self, ctx, emit, per_test_timeout):
        super().__init__()
        self.ctx = ctx
        self.emit = emit
        self.per_test_timeout = per_test_timeout
        self.cur = None
        self.counts = {}

    # ---- test boundaries --------------------------------------------------

    def startTest(self, test):
        super().startTest(test)
        tid = short_id(test)
        self.cur = {"id": tid, "outcome": None, "reason": None, "origin": None,
                    "traceback": None, "t0": time.monotonic()}
        self.emit({"event": "start", "id": tid})
        if self.per_test_timeout:
            faulthandler.dump_traceback_later(self.per_test_timeout, exit=True)
        # Many modules reset the policy in tearDown/tearDownModule: every test
        # starts with a fresh target policy.
        asyncio.set_event_loop_policy(self.ctx.new_policy())
        TRACKER.start(tid)

    def stopTest(self, test):
        if self.per_test_timeout:
            faulthandler.cancel_dump_traceback_later()
        rec = TRACKER.stop()
        cur, self.cur = self.cur, None
        if cur is not None:
            if cur["outcome"] is None:
                cur["outcome"] = "error"
                cur["reason"] = "no outcome reported by unittest"
            duration = time.monotonic() - cur.pop("t0")
            event = {"event": "result", **cur, "duration": round(duration, 3)}
            if rec is not None:
                event.update(rec.summary())
            self.counts[cur["outcome"]] = self.counts.get(cur["outcome"], 0) + 1
            self.emit(event)
        super().stopTest(test)

    # ---- outcomes ---------------------------------------------------------

    _RANK = {None: 0, "pass": 1, "expected_failure": 1, "skip": 2,
             "fail": 3, "unexpected_success": 3, "error": 4}

    def _set(self, test, outcome, err=None, reason=None):
        if self.cur is None or isinstance(test, unittest.suite._ErrorHolder):
            tb = self._exc_info_to_string(err, test) if err is not None else None
            r, origin = summarize_traceback(tb)
            self.emit({"event": "fixture", "id": short_id(test), "outcome": outcome,
                       "reason": reason or r, "origin": origin, "traceback": _trim(tb)})
            return
        cur = self.cur
        if self._RANK[outcome] < self._RANK[cur["outcome"]]:
            return
        if self._RANK[outcome] == self._RANK[cur["outcome"]] and cur["reason"]:
            return  # keep the first error of equal rank
        cur["outcome"] = outcome
        if err is not None:
            tb = self._exc_info_to_string(err, test)
            r, origin = summarize_traceback(tb)
            cur["traceback"] = _trim(tb)
            cur["reason"] = (reason + ": " + r) if reason and r else (r or reason)
            cur["origin"] = origin
        elif reason is not None:
            cur["reason"] = reason

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "pass")

    def addError(self, test, err):
        super().addError(test, err)
        self._set(test, "error", err)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip", reason=str(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "expected_failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "unexpected_success", reason="unexpected success (@expectedFailure)")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            return
        kind = "fail" if issubclass(err[0], test.failureException) else "error"
        self._set(test, kind, err, reason=f"subtest {subtest._subDescription()}")


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


def _import_quickloop(retries):
    """The lead rebuilds often: a momentarily missing/half-written .so is retried."""
    last = None
    for attempt in range(retries + 1):
        try:
            import quickloop  # noqa: PLC0415
            return quickloop
        except Exception as exc:  # noqa: BLE001
            last = exc
            for name in [m for m in sys.modules if m == "quickloop" or m.startswith("quickloop.")]:
                del sys.modules[name]
            if attempt < retries:
                time.sleep(2)
    raise last


def build_suite(mod, drop, exclude):
    loader = unittest.TestLoader()
    tests = []
    for test in _flatten(loader.loadTestsFromModule(mod)):
        if type(test).__name__ in drop:
            continue
        if short_id(test) in exclude:
            continue
        tests.append(test)
    return tests


def main(argv=None):
    ap = argparse.ArgumentParser(prog="conformance-worker")
    ap.add_argument("--module", required=True)
    ap.add_argument("--loop", choices=("quickloop", "stdlib"), default="quickloop")
    ap.add_argument("--types", choices=("quickloop", "stdlib", "none"), default="quickloop")
    ap.add_argument("--results", required=True, help="JSON-lines output file (appended)")
    ap.add_argument("--exclude", help="file with test ids (one per line) not to run")
    ap.add_argument("--per-test-timeout", type=float, default=300.0)
    ap.add_argument("--import-retries", type=int, default=5)
    ap.add_argument("--list", action="store_true", help="only list the test ids")
    args = ap.parse_args(argv)

    out = open(args.results, "a", encoding="utf-8")  # noqa: SIM115

    def emit(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    faulthandler.enable()
    started = time.monotonic()
    try:
        quickloop = None
        if args.loop == "quickloop" or args.types == "quickloop":
            quickloop = _import_quickloop(args.import_retries)
        ctx = Context(args.loop, args.types, quickloop)
        TRACKER.instrument_stdlib_loops()
        if quickloop is not None:
            TRACKER.instrument_quickloop(quickloop)
        types_tracking = None
        if ctx.task_type is not None:
            types_tracking = TRACKER.instrument_types(ctx.task_type, ctx.future_type)
        # Import under the target policy, as module-level code may make loops.
        asyncio.set_event_loop_policy(ctx.new_policy())
        mod = importlib.import_module(ID_PREFIX + args.module)
        drop = profiles.prepare(mod, args.module, ctx)
        exclude = set()
        if args.exclude and os.path.exists(args.exclude):
            with open(args.exclude, encoding="utf-8") as f:
                exclude = {ln.strip() for ln in f if ln.strip()}
        tests = build_suite(mod, drop, exclude)
    except BaseException:  # noqa: BLE001
        emit({"event": "fatal", "reason": traceback.format_exc(limit=20)})
        out.close()
        return 2

    if args.list:
        for test in tests:
            print(short_id(test))
        return 0

    emit({
        "event": "meta",
        "module": args.module,
        "loop": args.loop,
        "types": args.types,
        "types_label": ctx.types_label,
        "types_fallback": ctx.types_fallback,
        "quickloop_file": getattr(quickloop, "__file__", None),
        "quickloop_version": getattr(quickloop, "__version__", None),
        "iterations_supported": TRACKER.iterations_supported,
        "types_tracking": types_tracking,
        "n_tests": len(tests),
        "excluded": len(exclude),
        "dropped_classes": sorted(drop),
        "python": sys.version.split()[0],
    })

    # As `python -m unittest` does when no -W option is given.
    if not sys.warnoptions:
        warnings.simplefilter("default")
    result = RecordingResult(ctx, emit, args.per_test_timeout)
    result.startTestRun()
    unittest.TestSuite(tests).run(result)
    result.stopTestRun()
    emit({"event": "done", "elapsed": round(time.monotonic() - started, 3),
          "counts": result.counts})
    out.close()
    sys.stdout.flush()
    sys.stderr.flush()
    # Do not let a thread or a child watcher leaked by a test keep the process
    # alive at interpreter shutdown: everything is recorded already.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
