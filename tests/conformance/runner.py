"""Runner: one worker subprocess per module and configuration, tables, comparison.

    python -m tests.conformance [--loop quickloop|stdlib] [--types quickloop|stdlib|none]
                                [--modules test_tasks,test_futures,...|default|all|networking]
                                [--compare] [--json PATH] [--list-failures] [-j N]

Outcomes per test: pass, fail, error, skip, expected_failure / unexpected_success
(unittest's own decorator: counted as passed / failed), and two made by the
runner: a worker crash (segfault...) or hang during a test is an ``error``
with ``crash: "crash" | "timeout"``; the worker is restarted after that test.

Columns:
  ran       tests that were not skipped
  on-loop   of those, tests verified to have iterated a loop of the target kind
            (quickloop: a quickloop.Loop with _iterations > 0; stdlib: a
            _UnixSelectorEventLoop that polled); TestLoop/mocked-loop tests never count
  on-types  tests that instantiated the target Task/Future type
  listed    failed, and listed in tests/conformance_expected_failures.txt
  unexpl.   (--compare) passed on the stdlib reference, failed on the target, not listed
  xpass     listed but passed
  lost      (--compare) passed on the reference, skipped or not run on the target
  gap       (--compare) passed on both, iterated a stdlib loop in the reference,
            but no quickloop loop on quickloop (a stdlib loop built by the test itself)
"""
import argparse
import concurrent.futures
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import profiles

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ENTRY = HERE / "_entry.py"
EXPECTED_FAILURES = REPO / "tests" / "conformance_expected_failures.txt"

# Rough durations (s, stdlib) to start the slow modules first.
_WEIGHT = {"test_tasks": 20, "test_events": 60, "test_subprocess": 40, "test_ssl": 40,
           "test_sendfile": 20, "test_streams": 15, "test_base_events": 10,
           "test_taskgroups": 7, "test_sslproto": 10, "test_unix_events": 10}

PASSED = ("pass", "expected_failure")
FAILED = ("fail", "error", "unexpected_success")


# ---- expected failures -----------------------------------------------------

_XF_LINE = re.compile(r"^(?P<id>[A-Za-z_][\w.]*)\s*(?:#\s*(?P<reason>.*))?$")


def load_expected_failures(path):
    """{test id: reason}; raises ValueError on a malformed line."""
    entries = {}
    path = Path(path)
    if not path.exists():
        return entries
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _XF_LINE.match(line)
        if not m or m.group("id").count(".") < 2:
            raise ValueError(f"{path}:{n}: expected 'module.Class.test_name  # reason', got {raw!r}")
        entries[m.group("id")] = (m.group("reason") or "").strip()
    return entries


# ---- running one module ----------------------------------------------------

def _quickloop_path():
    """Folder to put on the workers' PYTHONPATH so they import the quickloop we see."""
    spec = None
    try:
        spec = importlib.util.find_spec("quickloop")
    except (ImportError, ValueError):
        pass
    if spec is not None and spec.origin:
        return str(Path(spec.origin).resolve().parent.parent)
    return str(REPO / "python")


def _worker_env(need_quickloop):
    env = dict(os.environ)
    paths = [str(REPO)]
    if need_quickloop:
        paths.insert(0, _quickloop_path())
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONFAULTHANDLER", "1")
    return env


def _tail(path, n=60):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-n:])


def _faulthandler_origin(text):
    """Deepest frame of the test's thread in a faulthandler dump, 'dir/file.py:LINE in func'.

    The thread that crashed is "Current thread"; after a timeout (no current
    thread) the one running the worker's test suite.
    """
    blocks, cur = [], None
    for ln in text.splitlines():
        if ln.startswith("Current thread") or ln.startswith("Thread 0x"):
            cur = [ln]
            blocks.append(cur)
        elif cur is not None and ln.startswith("  File "):
            cur.append(ln)
        else:
            cur = None
    if not blocks:
        return None
    chosen = next((b for b in blocks if b[0].startswith("Current thread")), None)
    if chosen is None:
        chosen = next((b for b in blocks if any("conformance/worker.py" in f for f in b)),
                      blocks[0])
    for frame in chosen[1:]:
        m = re.match(r'\s+File "([^"]+)", line (\d+) in (\S+)', frame)
        if m:
            parts = m.group(1).split("/")
            return f"{'/'.join(parts[-2:])}:{m.group(2)} in {m.group(3)}"
    return None


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(rc):
    if rc is not None and rc < 0:
        try:
            return signal.Signals(-rc).name
        except ValueError:
            return f"signal {-rc}"
    return f"exit status {rc}"


class ModuleRun:
    """Runs one module in worker subprocesses, restarting after a crashing/hanging test."""

    def __init__(self, module, loop, types, opts):
        self.module, self.loop, self.types, self.opts = module, loop, types, opts
        self.meta = None
        self.tests = {}        # id -> result event
        self.order = []
        self.fixtures = []
        self.crashes = []
        self.fatal = None
        self.incomplete = None  # reason the module did not run to the end
        self.restarts = 0
        self.elapsed = 0.0
        self.workdir = None

    @property
    def label(self):
        return f"{self.module} [loop={self.loop} types={self.types}]"

    def run(self):
        opts = self.opts
        t0 = time.monotonic()
        deadline = t0 + opts.module_timeout
        base = Path(opts.logs) if opts.logs else None
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(
            prefix=f"{self.module}-{self.loop}-{self.types}-", dir=str(base) if base else None))
        results = self.workdir / "results.jsonl"
        exclude = self.workdir / "exclude.txt"
        env = _worker_env(self.loop == "quickloop" or self.types == "quickloop")
        offset = 0
        for attempt in range(opts.max_restarts + 1):
            exclude.write_text("".join(i + "\n" for i in self.tests), encoding="utf-8")
            out_path = self.workdir / f"stdout.{attempt}.txt"
            err_path = self.workdir / f"stderr.{attempt}.txt"
            cmd = [sys.executable, str(ENTRY), "worker", "--module", self.module,
                   "--loop", self.loop, "--types", self.types, "--results", str(results),
                   "--exclude", str(exclude), "--per-test-timeout", str(opts.per_test_timeout)]
            timed_out = False
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                proc = subprocess.Popen(cmd, cwd=str(self.workdir), env=env, stdout=out,
                                        stderr=err, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
                try:
                    rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    timed_out = True
                    _kill_group(proc.pid)
                    rc = proc.wait()
                # Children a test left behind (subprocess tests) die with the group.
                _kill_group(proc.pid)
            events, offset = self._read_events(results, offset)
            running, done = self._absorb(events)
            if done:
                break
            if self.fatal is not None:
                break
            stderr_tail = _tail(err_path)
            if running is not None:
                hung = timed_out or "Timeout (" in stderr_tail
                if timed_out:
                    why = f"module time budget ({opts.module_timeout:.0f}s) exhausted in this test"
                elif hung:
                    why = f"hung for more than {opts.per_test_timeout:.0f}s (faulthandler timeout)"
                else:
                    why = f"worker crashed ({_signal_name(rc)}) in this test"
                self.tests[running] = {
                    "event": "result", "id": running, "outcome": "error",
                    "crash": "timeout" if hung else "crash",
                    "reason": why, "origin": _faulthandler_origin(stderr_tail),
                    "traceback": stderr_tail, "duration": None,
                }
                self.crashes.append({"id": running, "kind": "timeout" if hung else "crash",
                                     "returncode": rc})
                if timed_out:
                    self.incomplete = why
                    break
                self.restarts += 1
                continue
            # Died between tests (module import, class fixture, interpreter exit...)
            self.incomplete = (f"worker exited ({_signal_name(rc)}) outside any test"
                               + (" (module time budget exhausted)" if timed_out else ""))
            self.crashes.append({"id": None, "kind": "timeout" if timed_out else "crash",
                                 "returncode": rc, "stderr_tail": stderr_tail})
            break
        else:
            self.incomplete = f"gave up after {opts.max_restarts} worker restarts"
        self.elapsed = time.monotonic() - t0
        if not opts.logs:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self

    @staticmethod
    def _read_events(path, offset):
        events = []
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return events, offset
        # Only complete lines: a crash can cut the last one.
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events, offset + end

    def _absorb(self, events):
        running = None
        done = False
        for ev in events:
            kind = ev.get("event")
            if kind == "meta":
                if self.meta is None:
                    self.meta = ev
                else:
                    self.meta["n_tests_restart"] = ev.get("n_tests")
            elif kind == "start":
                running = ev["id"]
            elif kind == "result":
                if ev["id"] not in self.tests:
                    self.order.append(ev["id"])
                self.tests[ev["id"]] = ev
                if running == ev["id"]:
                    running = None
            elif kind == "fixture":
                self.fixtures.append(ev)
            elif kind == "fatal":
                self.fatal = ev.get("reason")
            elif kind == "done":
                done = True
        if running is not None and running not in self.order:
            self.order.append(running)
        return running, done

    # ---- numbers ------------------------------------------------------------

    def summary(self, expected):
        """Counts; ``expected`` is {id: reason} (empty for a stdlib reference run)."""
        s = {"total": 0, "ran": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
             "listed": 0, "xpass": 0, "unlisted_failures": 0, "crashes": len(self.crashes),
             "on_loop": 0, "on_ql_loop": 0, "on_stdlib_loop": 0, "on_types": 0,
             "fixture_errors": len(self.fixtures), "elapsed": round(self.elapsed, 1),
             "restarts": self.restarts, "incomplete": self.incomplete, "fatal": self.fatal}
        for tid, ev in self.tests.items():
            out = ev["outcome"]
            s["total"] += 1
            if out == "skip":
                s["skipped"] += 1
                continue
            s["ran"] += 1
            if out in PASSED:
                s["passed"] += 1
                if tid in expected:
                    s["xpass"] += 1
            else:
                if out == "error":
                    s["errors"] += 1
                else:
                    s["failed"] += 1
                if tid in expected:
                    s["listed"] += 1
                else:
                    s["unlisted_failures"] += 1
            s["on_ql_loop"] += bool(ev.get("on_ql_loop"))
            s["on_stdlib_loop"] += bool(ev.get("on_stdlib_loop"))
            s["on_types"] += bool(ev.get("on_types"))
        s["on_loop"] = s["on_ql_loop"] if self.loop == "quickloop" else s["on_stdlib_loop"]
        s["n_tests"] = self.meta.get("n_tests") if self.meta else None
        s["not_run"] = max(0, (s["n_tests"] or 0) - s["total"])
        return s

    def to_json(self, expected):
        return {"module": self.module, "loop": self.loop, "types": self.types,
                "meta": self.meta, "summary": self.summary(expected),
                "tests": [self.tests[i] for i in self.order if i in self.tests],
                "fixtures": self.fixtures, "crashes": self.crashes}


# ---- comparison ------------------------------------------------------------

def compare_module(ref, tgt, expected):
    """Per-module comparison of a stdlib reference run and a target run."""
    unexplained, listed, xpass, lost, gap, new_tests = [], [], [], [], [], []
    for tid in sorted(set(ref.tests) | set(tgt.tests)):
        r = ref.tests.get(tid)
        t = tgt.tests.get(tid)
        r_out = r["outcome"] if r else None
        t_out = t["outcome"] if t else None
        r_pass = r_out in PASSED
        if t_out in FAILED:
            if tid in expected:
                listed.append(tid)
            elif r_pass:
                unexplained.append(tid)
            elif r is None:
                new_tests.append(tid)
        elif t_out in PASSED:
            if tid in expected:
                xpass.append(tid)
            if r_pass and r.get("on_stdlib_loop") and tgt.loop == "quickloop" \
                    and not t.get("on_ql_loop"):
                gap.append(tid)
        elif r_pass:  # skipped on the target, or never ran there
            if t is None and tgt.incomplete and tid not in expected:
                unexplained.append(tid)
            else:
                lost.append(tid)
    if (tgt.fatal or (tgt.incomplete and not tgt.tests)) and not unexplained:
        unexplained.extend(i for i in ref.tests if ref.tests[i]["outcome"] in PASSED
                           and i not in expected and i not in tgt.tests)
    rs, ts = ref.summary({}), tgt.summary(expected)
    return {
        "module": tgt.module,
        "stdlib_passed": rs["passed"], "stdlib_ran": rs["ran"],
        "stdlib_on_loop": rs["on_stdlib_loop"],
        "ran": ts["ran"], "passed": ts["passed"], "failed": ts["failed"] + ts["errors"],
        "skipped": ts["skipped"], "listed": len(listed), "unexplained": len(unexplained),
        "xpass": len(xpass), "lost": len(lost), "gap": len(gap),
        "on_loop": ts["on_loop"], "on_types": ts["on_types"],
        "unexplained_ids": unexplained, "listed_ids": listed, "xpass_ids": xpass,
        "lost_ids": lost, "gap_ids": gap, "failing_on_both": [
            i for i in tgt.tests if tgt.tests[i]["outcome"] in FAILED
            and ref.tests.get(i, {}).get("outcome") in FAILED],
        "target_not_complete": tgt.fatal or tgt.incomplete,
        "reference_not_complete": ref.fatal or ref.incomplete,
    }


# ---- failure grouping ----------------------------------------------------------

def _norm(text):
    text = re.sub(r"0x[0-9a-fA-F]+", "0x…", text)
    text = re.sub(r"\b\d+(\.\d+)?\b", "N", text)
    return text


def cause_key(ev):
    reason = ev.get("reason") or "?"
    reason = re.sub(r"^subtest .*?: (?=\w+(Error|Exception|Exit|Interrupt|Warning)\b)", "", reason)
    exc = reason.split(":", 1)[0].strip()
    origin = ev.get("origin") or ""
    origin_nl = re.sub(r":\d+ in ", " in ", origin)
    if ev.get("crash"):
        return f"{ev['crash']}: {_norm(reason.split(' in this test')[0])} @ {origin_nl or '?'}"
    if exc in ("AssertionError", "AssertionError (unexpected)") or "Error" not in exc \
            and "Exception" not in exc:
        return f"{_norm(reason)[:120]}"
    return f"{exc} @ {origin_nl}"


def group_failures(runs_by_module, expected, comparisons=None):
    groups = {}
    for module, run in runs_by_module.items():
        comp = (comparisons or {}).get(module)
        for tid in run.order:
            ev = run.tests.get(tid)
            if not ev or ev["outcome"] not in FAILED:
                continue
            if tid in expected:
                tag = "listed"
            elif comp is None:
                tag = "unlisted"
            elif tid in comp["unexplained_ids"]:
                tag = "UNEXPLAINED"
            elif tid in comp["failing_on_both"]:
                tag = "fails on stdlib too"
            else:
                tag = "not in reference"
            groups.setdefault(cause_key(ev), []).append((tid, tag, ev))
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


# ---- printing ------------------------------------------------------------------

def _row(cells, widths):
    return "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                     for i, (c, w) in enumerate(zip(cells, widths)))


def print_run_table(runs, expected, title, file=sys.stdout):
    head = ["module", "total", "ran", "passed", "failed", "errors", "skipped", "listed",
            "xpass", "on-loop", "on-types", "time"]
    rows, tot = [], [0] * 10
    for run in runs:
        s = run.summary(expected)
        vals = [s["total"], s["ran"], s["passed"], s["failed"], s["errors"], s["skipped"],
                s["listed"], s["xpass"], s["on_loop"], s["on_types"]]
        tot = [a + b for a, b in zip(tot, vals)]
        note = ""
        if s["fatal"]:
            note = "  MODULE ERROR: " + s["fatal"].strip().splitlines()[-1]
        elif s["incomplete"]:
            note = f"  INCOMPLETE ({s['not_run']} tests not run): " + s["incomplete"]
        if s["crashes"]:
            note += f"  ({s['crashes']} crash/hang, {s['restarts']} restarts)"
        if s["fixture_errors"]:
            note += f"  ({s['fixture_errors']} fixture errors)"
        rows.append([run.module] + vals + [f"{s['elapsed']:.0f}s"] + [note])
    rows.append(["TOTAL"] + tot + ["", ""])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(title, file=file)
    print(_row(head, widths), file=file)
    print(_row(["-" * w for w in widths], widths), file=file)
    for r in rows:
        print(_row(r[:-1], widths) + (r[-1] if len(r) > len(head) else ""), file=file)
    print(file=file)


def print_compare_table(comparisons, modules, file=sys.stdout):
    head = ["module", "stdlib passed", "ql ran", "ql passed", "ql failed", "listed",
            "unexpl.", "xpass", "lost", "on-ql-loop", "on-ql-types", "gap"]
    keys = ["stdlib_passed", "ran", "passed", "failed", "listed", "unexplained", "xpass",
            "lost", "on_loop", "on_types", "gap"]
    rows, tot = [], [0] * len(keys)
    for m in modules:
        c = comparisons[m]
        vals = [c[k] for k in keys]
        tot = [a + b for a, b in zip(tot, vals)]
        note = ""
        if c["target_not_complete"]:
            note = "  quickloop run incomplete: " + str(c["target_not_complete"]).strip().splitlines()[-1]
        if c["reference_not_complete"]:
            note += "  stdlib run incomplete: " + str(c["reference_not_complete"]).strip().splitlines()[-1]
        rows.append([m] + vals + [note])
    rows.append(["TOTAL"] + tot + [""])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    print(_row(head, widths), file=file)
    print(_row(["-" * w for w in widths], widths), file=file)
    for r in rows:
        print(_row(r[:-1], widths) + r[-1], file=file)
    print(file=file)


def print_failures(groups, file=sys.stdout, max_ids=None):
    if not groups:
        print("No failures.", file=file)
        return
    n = sum(len(v) for _, v in groups)
    print(f"Failures on the target, grouped by apparent cause ({n} tests, {len(groups)} groups):",
          file=file)
    for key, items in groups:
        print(f"\n[{len(items)}] {key}", file=file)
        tid, tag, ev = items[0]
        if ev.get("reason"):
            print(f"    e.g. {tid}: {ev['reason'][:300]}", file=file)
        if ev.get("origin"):
            print(f"         at {ev['origin']}", file=file)
        shown = items if max_ids is None else items[:max_ids]
        for tid, tag, _ in shown:
            print(f"    - {tid}  [{tag}]", file=file)
        if len(shown) < len(items):
            print(f"    ... and {len(items) - len(shown)} more", file=file)
    print(file=file)


# ---- main --------------------------------------------------------------------

def parse_modules(spec):
    if not spec or spec == "default":
        return list(profiles.DEFAULT_MODULES)
    out = []
    for part in re.split(r"[,\s]+", spec.strip()):
        if not part:
            continue
        if part == "default":
            out += profiles.DEFAULT_MODULES
        elif part == "all":
            out += profiles.ALL_MODULES
        elif part == "networking":
            out += profiles.NETWORKING_MODULES
        else:
            name = part if part.startswith("test_") else "test_" + part
            name = name.rsplit(".", 1)[-1]
            out.append(name)
    seen, result = set(), []
    for m in out:
        if m not in seen:
            seen.add(m)
            result.append(m)
    return result


def build_parser():
    ap = argparse.ArgumentParser(
        prog="python -m tests.conformance",
        description="Run CPython's test.test_asyncio against quickloop (see tests/conformance/).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--loop", choices=("quickloop", "stdlib"), default="quickloop")
    ap.add_argument("--types", choices=("quickloop", "stdlib", "none"), default=None,
                    help="Task/Future types for the Conf_ type classes (default: as --loop)")
    ap.add_argument("--modules", default="default",
                    help="comma-separated module names, or default/all/networking "
                         f"(default: {','.join(profiles.DEFAULT_MODULES)})")
    ap.add_argument("--compare", action="store_true",
                    help="also run the stdlib reference (--loop stdlib --types stdlib) and compare")
    ap.add_argument("--json", metavar="PATH", help="write every result to PATH")
    ap.add_argument("--list-failures", action="store_true",
                    help="list the target's failures grouped by apparent cause")
    ap.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="modules run in parallel (default: %(default)s)")
    ap.add_argument("--module-timeout", type=float, default=1200.0,
                    help="seconds per module and configuration (default: %(default)s)")
    ap.add_argument("--per-test-timeout", type=float, default=120.0,
                    help="a test hanging longer is reported and skipped (default: %(default)s)")
    ap.add_argument("--max-restarts", type=int, default=25,
                    help="worker restarts per module after crashing tests (default: %(default)s)")
    ap.add_argument("--expected-failures", default=str(EXPECTED_FAILURES), metavar="PATH")
    ap.add_argument("--logs", metavar="DIR", help="keep the workers' output in DIR")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-module progress lines")
    return ap


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.types is None:
        args.types = args.loop
    modules = parse_modules(args.modules)
    unknown = [m for m in modules if m not in profiles.ALL_MODULES]
    if unknown:
        print(f"note: modules not in the known list, run with the generic (policy) profile: "
              f"{', '.join(unknown)}", file=sys.stderr)
    try:
        expected = load_expected_failures(args.expected_failures)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    target = (args.loop, args.types)
    reference = ("stdlib", "stdlib" if args.types != "none" else "none")
    configs = [target]
    if args.compare and reference != target:
        configs.append(reference)
    target_is_stdlib = target == ("stdlib", "stdlib") or target == ("stdlib", "none")
    xf = {} if target_is_stdlib else expected

    jobs = [(m, cfg) for cfg in configs for m in modules]
    jobs.sort(key=lambda j: -_WEIGHT.get(j[0], 1))
    runs = {}
    lock = threading.Lock()
    done_count = [0]

    def work(job):
        module, (loop, types) = job
        run = ModuleRun(module, loop, types, args).run()
        with lock:
            done_count[0] += 1
            if not args.quiet:
                s = run.summary(xf if (loop, types) == target else {})
                extra = ""
                if s["fatal"]:
                    extra = " MODULE ERROR"
                elif s["incomplete"]:
                    extra = " INCOMPLETE"
                print(f"[{done_count[0]}/{len(jobs)}] {run.label}: {s['total']} tests, "
                      f"{s['passed']} passed, {s['failed']} failed, {s['errors']} errors, "
                      f"{s['skipped']} skipped, on-loop {s['on_loop']}, on-types {s['on_types']}"
                      f", {s['elapsed']:.1f}s{extra}", file=sys.stderr, flush=True)
        return job, run

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for job, run in pool.map(work, jobs):
            runs[job] = run
    wall = time.monotonic() - t0

    tgt_runs = {m: runs[(m, target)] for m in modules}
    meta = next((r.meta for r in tgt_runs.values() if r.meta), {}) or {}
    print()
    print(f"quickloop conformance: CPython {sys.version.split()[0]} test.test_asyncio, "
          f"{len(modules)} modules, {wall:.0f}s wall")
    if args.loop == "quickloop" or args.types == "quickloop":
        print(f"  quickloop: {meta.get('quickloop_file')} ({meta.get('quickloop_version')})")
        if meta.get("iterations_supported") is False:
            print("  WARNING: quickloop.Loop has no _iterations: on-loop cannot be verified")
    print(f"  loop : {args.loop}")
    print(f"  types: {meta.get('types_label', args.types)}")
    if meta.get("types_tracking"):
        print("  types evidence: " + "; ".join(
            f"{k}: {v}" for k, v in meta["types_tracking"].items()))
    print()

    comparisons = None
    if args.compare and reference != target:
        comparisons = {m: compare_module(runs[(m, reference)], tgt_runs[m], expected)
                       for m in modules}
        print_run_table([runs[(m, reference)] for m in modules], {},
                        f"stdlib reference (loop=stdlib, types={reference[1]}):")
        print_run_table(list(tgt_runs.values()), xf,
                        f"target (loop={args.loop}, types={args.types}):")
        print("stdlib vs quickloop:")
        print_compare_table(comparisons, modules)
    else:
        print_run_table(list(tgt_runs.values()), xf,
                        f"loop={args.loop}, types={args.types}:")

    for m, run in tgt_runs.items():
        if run.fatal:
            print(f"{m}: could not be run:\n{run.fatal}")
        for fx in run.fixtures:
            print(f"{m}: fixture error {fx['id']}: {fx.get('reason')}")

    if comparisons:
        bad = [(m, c) for m, c in comparisons.items() if c["unexplained"]]
        xp = [(m, c) for m, c in comparisons.items() if c["xpass"]]
        if bad:
            n_bad = sum(c["unexplained"] for _, c in bad)
            print(f"UNEXPLAINED: {n_bad} tests passed on stdlib, failed on quickloop, not listed in "
                  f"{Path(args.expected_failures).name}"
                  + (" (tagged UNEXPLAINED below)" if args.list_failures else ":"))
            if not args.list_failures:
                shown = 0
                for m, c in bad:
                    for tid in c["unexplained_ids"]:
                        if shown == 40:
                            break
                        ev = tgt_runs[m].tests.get(tid) or {}
                        print(f"  {tid}: {(ev.get('reason') or 'not run')[:200]}")
                        shown += 1
                if shown < n_bad:
                    print(f"  ... and {n_bad - shown} more (--list-failures groups them all)")
            print()
        if xp:
            print("UNEXPECTED PASSES (listed as expected failures, passed):")
            for m, c in xp:
                for tid in c["xpass_ids"]:
                    print(f"  {tid}")
            print()
    elif xf:
        xp = [tid for run in tgt_runs.values() for tid in run.order
              if tid in xf and run.tests.get(tid, {}).get("outcome") in PASSED]
        if xp:
            print("UNEXPECTED PASSES (listed as expected failures, passed):")
            for tid in xp:
                print(f"  {tid}")
            print()

    if args.list_failures:
        print_failures(group_failures(tgt_runs, xf, comparisons))

    stale = sorted(tid for tid in expected
                   if tid.split(".", 1)[0] in modules
                   and not any(tid in r.tests for r in tgt_runs.values()))
    if stale and not target_is_stdlib:
        print(f"note: {len(stale)} expected-failure entries name tests that did not run: "
              + ", ".join(stale[:10]) + (" ..." if len(stale) > 10 else ""))

    if args.json:
        data = {
            "python": sys.version.split()[0],
            "modules": modules,
            "target": {"loop": args.loop, "types": args.types},
            "reference": ({"loop": reference[0], "types": reference[1]} if comparisons else None),
            "expected_failures": expected,
            "runs": {
                f"loop={loop},types={types}": {m: runs[(m, (loop, types))].to_json(
                    xf if (loop, types) == target else {}) for m in modules}
                for (loop, types) in configs
            },
            "comparison": comparisons,
            "wall_seconds": round(wall, 1),
        }
        Path(args.json).write_text(json.dumps(data, indent=1), encoding="utf-8")
        print(f"results written to {args.json}")

    if comparisons:
        failed = any(c["unexplained"] for c in comparisons.values())
    else:
        failed = any(run.summary(xf)["unlisted_failures"] or run.fatal or run.incomplete
                     for run in tgt_runs.values())
    return 1 if failed else 0
