"""Reference-leak checking for pytest, like CPython's ``regrtest -R 3:3``.

Load it explicitly (``make refleak`` does)::

    python -m pytest -p tests.refleak.plugin [--refleak=3:3] ...

On a debug build of CPython (one with ``sys.gettotalrefcount``) every selected
test is run ``WARMUP + RUNS`` extra times before its normal, reported run.  Each
extra run is the full pytest protocol: function-scoped fixtures are set up and
torn down again (module/session-scoped ones are kept, as for consecutive tests).
After each run the plugin clears the caches regrtest clears, calls
``gc.collect()`` and reads ``sys.gettotalrefcount()``, ``sys.getallocatedblocks()``
and the number of open file descriptors.  The deltas over the RUNS measured runs
are checked as regrtest does: a count is suspect when it grew by at least 1 in
**every** measured run (``[3, 0, 0]`` or ``[8, -8, 1]`` is noise, ``[5, 5, 6]`` is
not); a suspect is measured over RUNS more runs and the test fails only if the
count grows in every one of those too.  The failure shows the deltas, the
gc-tracked types whose number grew, and the allocation sites (tracemalloc) that
kept growing.

Before a test's extra runs, the objects alive so far are moved to gc's permanent
generation (gc.freeze()), so that each gc.collect() only walks what the test
made: on the debug build that makes the check tens of times cheaper.

A test that fails, errors or skips in an extra run is not checked (its normal
run reports the failure).  On a non-debug interpreter the plugin does nothing.
It works under pytest-xdist (results travel in the reports' user_properties).

Tests that cannot be repeated meaningfully are deselected by default (a whole
excluded file is not collected): see DEFAULT_EXCLUDES, with a reason per
pattern.  ``--refleak-exclude=PATTERN`` adds one (fnmatch on the node id, or on
its file part), ``--refleak-no-default-excludes`` drops the defaults.
``--refleak-report=FILE`` writes one JSON line per test.
"""
import collections
import fnmatch
import gc
import json
import os
import sys
import time

import pytest

# (pattern, why it cannot be repeated meaningfully).  A pattern matches a node
# id ("tests/test_x.py::test_name[param]") or its file part.
DEFAULT_EXCLUDES = [
    ("tests/test_examples.py", "runs every example in a subprocess"),
    ("tests/test_conformance.py", "runs CPython's asyncio test suite in subprocesses"),
    ("tests/test_integration.py", "aiohttp servers and an external load-generator process"),
    ("tests/test_fork.py", "fork()s the interpreter"),
    ("tests/test_benchmarks.py", "benchmark runs: timing-based, slow"),
    ("tests/test_signals.py", "process-wide signal handlers and delivered signals"),
    ("tests/test_fuzz_differential.py", "random (Hypothesis) programs and a fuzzer subprocess"),
    ("tests/test_entrypoints.py::test_module_*", "python -m quickloop in a subprocess"),
    ("tests/test_task.py::test_cancel_await_cycle_raises_recursion_error*", "runs in a subprocess"),
    ("tests/test_network.py::*subprocess*", "spawns child processes"),
    ("tests/test_network.py::*signal*", "process-wide signal handlers and delivered signals"),
    ("tests/test_faults.py::*fork*", "fork()s the interpreter"),
    ("tests/test_faults.py::*signal*", "process-wide signal handlers and delivered signals"),
    ("tests/test_faults.py::test_100k_*", "load test: 100,000 tasks per run, minutes per check "
                                          "on the debug build"),
    # Drops a transport with its socket open to see the ResourceWarning: every run
    # grows by the same count on the stdlib loop's own transport (160 refs with the
    # test's warnings.catch_warnings block, 20 without it), so the growth is the
    # warning machinery's, not a quickloop leak the checker could tell apart.
    ("tests/test_transport.py::test_unclosed_transport_resource_warning*",
     "emits ResourceWarnings on purpose; grows alike on the stdlib loop's transport"),
]

# Debian bookworm's debug interpreter is 3.11.2; the suite expects the stdlib's
# asyncio of 3.11.7: asyncio.timeout()/wait_for() (state checks, TimeoutError
# chained from the CancelledError, cancelling() counts) and the read-pipe
# transport's is_reading().  The tests that run those stdlib parts fail on it,
# leak or no leak; quickloop's own helpers ("quickloop" impl) are checked.
if sys.version_info < (3, 11, 7):
    _why = f"stdlib asyncio.timeout/wait_for of {sys.version.split()[0]} differ from 3.11.7's"
    DEFAULT_EXCLUDES += [
        ("tests/test_helpers.py::test_timeout_expiry[[]*-asyncio-*[]]", _why),
        ("tests/test_helpers.py::test_timeout_cancelling_count_already_raised[[]*-asyncio[]]", _why),
        ("tests/test_helpers.py::test_reschedule_state_errors[[]*-asyncio[]]", _why),
        ("tests/test_helpers.py::test_enter_twice[[]*-asyncio[]]", _why),
        ("tests/test_helpers.py::test_wait_for_times_out[[]*-asyncio-*[]]", _why),
        ("tests/test_network.py::test_read_pipe[[]*[]]",
         f"asyncio's read-pipe transport of {sys.version.split()[0]} has no is_reading()"),
    ]


def pytest_addoption(parser):
    group = parser.getgroup("refleak", "reference-leak checking (debug CPython only)")
    group.addoption("--refleak", default="3:3", metavar="WARMUP:RUNS",
                    help="extra runs per test: WARMUP unmeasured, then RUNS measured (default 3:3)")
    group.addoption("--refleak-exclude", action="append", default=[], metavar="PATTERN",
                    help="also deselect tests whose node id (or file) matches this fnmatch pattern")
    group.addoption("--refleak-no-default-excludes", action="store_true",
                    help="do not deselect the default list of non-repeatable tests")
    group.addoption("--refleak-report", default=None, metavar="FILE",
                    help="write the per-test results (deltas, leaks) to FILE as JSON")


def _enabled(config):
    return hasattr(sys, "gettotalrefcount")


def pytest_configure(config):
    if not _enabled(config):
        return
    try:
        warmup, runs = (int(x) for x in config.getoption("refleak").split(":"))
    except ValueError:
        raise pytest.UsageError("--refleak wants WARMUP:RUNS, e.g. 3:3")
    if warmup < 1 or runs < 2:
        raise pytest.UsageError("--refleak needs WARMUP >= 1 and RUNS >= 2")
    config.pluginmanager.register(RefleakChecker(config, warmup, runs), "refleak-checker")


def pytest_report_header(config):
    if not _enabled(config):
        return "refleak: disabled (no sys.gettotalrefcount: not a debug build of CPython)"
    return f"refleak: on, --refleak={config.getoption('refleak')} (warm-up:measured runs per test)"


# ---- measuring --------------------------------------------------------------

def _fd_count():
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus listdir's own fd
    except OSError:
        return 0


def _abc_classes():
    import abc
    import collections.abc as cabc
    seen, todo = set(), [getattr(cabc, n) for n in cabc.__all__]
    todo += [abc.ABC]
    while todo:
        cls = todo.pop()
        if cls in seen or not isinstance(cls, abc.ABCMeta):
            continue
        seen.add(cls)
        try:
            todo.extend(type.__subclasses__(cls))
        except TypeError:
            pass
    return seen


def _clear_caches():
    """What regrtest's dash_R_cleanup() clears that a test run may fill, then gc."""
    import linecache
    import re
    import struct
    for cls in _abc_classes():
        try:
            cls._abc_caches_clear()
        except Exception:
            pass
    sys._clear_type_cache()
    re.purge()
    struct._clearcache()
    linecache.clearcache()
    typing = sys.modules.get("typing")
    if typing is not None:
        for f in getattr(typing, "_cleanups", ()):
            f()
    for name in ("urllib.parse",):
        mod = sys.modules.get(name)
        if mod is not None:
            mod.clear_cache()
    gc.collect()
    gc.collect()


def _counts():
    _clear_caches()
    quickened = getattr(sys, "_getquickenedcount", lambda: 0)()
    return (sys.gettotalrefcount(), sys.getallocatedblocks() - quickened, _fd_count())


KINDS = ("refs", "blocks", "fds")


def _leaks(deltas):
    # regrtest's check_rc_deltas: growth in *every* measured run.
    return all(d >= 1 for d in deltas)


def _type_counts():
    # A plain dict of str -> int is not gc-tracked, so earlier results do not
    # show up in later counts.
    gc.collect()
    counts = {}
    for o in gc.get_objects():
        t = type(o)
        key = f"{t.__module__}.{t.__qualname__}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _higher_scope_finalizers(item):
    """(finalizer list, its length) of the non-function-scoped fixtures of item."""
    marks = []
    info = getattr(item, "_fixtureinfo", None)
    for fixturedefs in getattr(info, "name2fixturedefs", {}).values():
        for fd in fixturedefs:
            fins = getattr(fd, "_finalizers", None)
            if isinstance(fins, list) and getattr(fd, "scope", "function") != "function":
                marks.append((fins, len(fins)))
    return marks


def _is_function_fixture_finish(fin):
    func = getattr(fin, "func", None)  # functools.partial(FixtureDef.finish, request=...)
    owner = getattr(func, "__self__", None)
    return (getattr(func, "__name__", "") == "finish"
            and getattr(owner, "scope", None) == "function")


def _format_frames(traceback):
    """The frames of a tracemalloc traceback, oldest first, without pytest's own."""
    import linecache
    lines = []
    for frame in traceback:  # oldest to most recent
        if frame.filename == __file__ or any(
                part in frame.filename for part in ("/_pytest/", "/pluggy/")):
            continue
        src = linecache.getline(frame.filename, frame.lineno).strip()
        lines.append(f"{frame.filename}:{frame.lineno}: {src}")
    return lines[-8:]


class RefleakChecker:
    """Runs the checks (in the test process, or in each pytest-xdist worker) and
    collects the results from the reports (in the test process or xdist controller)."""

    def __init__(self, config, warmup, runs):
        self.config = config
        self.warmup = warmup
        self.runs = runs
        self.patterns = [] if config.getoption("refleak_no_default_excludes") else list(DEFAULT_EXCLUDES)
        self.patterns += [(p, "--refleak-exclude") for p in config.getoption("refleak_exclude")]
        self.excluded = collections.Counter()    # pattern -> number of tests deselected
        self.checks = {}                          # nodeid -> result, in the process that ran it
        self.results = {}                         # nodeid -> result, from the reports
        self.in_extra_run = False

    # -- selection --

    def _exclusion(self, nodeid):
        file_part = nodeid.split("::", 1)[0]
        for pat, why in self.patterns:
            if fnmatch.fnmatchcase(nodeid, pat) or fnmatch.fnmatchcase(file_part, pat):
                return pat
        return None

    def pytest_ignore_collect(self, collection_path, config):
        # A whole excluded file is not even imported (test_fuzz_differential.py
        # needs Hypothesis, which is not in the debug venv).
        try:
            rel = collection_path.relative_to(config.rootpath).as_posix()
        except ValueError:
            return None
        for pat, why in self.patterns:
            if "::" not in pat and fnmatch.fnmatchcase(rel, pat):
                self.excluded[pat] = -1  # not collected: no count
                if hasattr(config, "workeroutput"):
                    config.workeroutput["refleak_excluded"] = dict(self.excluded)
                return True
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        keep, drop = [], []
        # pytest-timeout's limit covers the whole protocol, extra runs included.
        factor = self.warmup + 2 * self.runs + 1
        for item in items:
            pat = self._exclusion(item.nodeid)
            if pat is None:
                keep.append(item)
                marker = item.get_closest_marker("timeout")
                if marker is not None and marker.args and isinstance(marker.args[0], (int, float)):
                    item.add_marker(pytest.mark.timeout(marker.args[0] * factor, *marker.args[1:],
                                                        **marker.kwargs), append=False)
            else:
                drop.append(item)
                self.excluded[pat] += 1
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        if hasattr(config, "workeroutput"):  # an xdist worker: tell the controller
            config.workeroutput["refleak_excluded"] = dict(self.excluded)

    # -- running --

    def _run_once(self, item):
        from _pytest.runner import runtestprotocol
        # The capture and logging plugins append each phase's output to
        # item._report_sections: keep only the normal run's, or they would grow.
        sections = getattr(item, "_report_sections", None)
        n_sections = len(sections) if sections is not None else 0
        n_props = len(item.user_properties)
        # A function-scoped fixture that uses a higher-scoped one (tmp_path ->
        # tmp_path_factory) leaves a finish() partial on the latter's finalizer
        # list at every setup, until that scope ends: drop those of the extra runs.
        marks = _higher_scope_finalizers(item)
        # nextitem=item.parent: tear down the function-level fixtures only.
        try:
            reports = runtestprotocol(item, log=False, nextitem=item.parent)
        finally:
            if sections is not None:
                del sections[n_sections:]
            del item.user_properties[n_props:]
            for fins, n in marks:
                added = fins[n:]
                del fins[n:]
                fins.extend(f for f in added if not _is_function_fixture_finish(f))
        for rep in reports:
            if rep.failed:
                return "failed"
            if rep.skipped:
                return "skipped"
        return "ok"

    def _check(self, item):
        # Objects older than this test go to the permanent generation: every
        # gc.collect() (a dozen per test here, and the tests' own) then only
        # walks what the test created.  That makes the check several times
        # faster on the debug build; the counts are not affected.
        gc.collect()
        gc.freeze()
        # One loop with everything preallocated: between two readings the only
        # objects the bookkeeping creates or frees are the readings themselves
        # (one tuple in, one out), so they do not show up as growth or shrinkage.
        w, n = self.warmup, self.runs
        deltas = [[0] * (w + 2 * n) for _ in KINDS]
        before = _counts()
        for i in range(w + 2 * n):
            status = self._run_once(item)
            if status != "ok":
                phase = "a warm-up" if i < w else "a measured"
                return {"status": f"not checked ({status} in {phase} run)"}
            after = _counts()
            deltas[0][i] = after[0] - before[0]
            deltas[1][i] = after[1] - before[1]
            deltas[2][i] = after[2] - before[2]
            before = after
            # After the measured runs, go on with as many confirmation runs only
            # if a count grew in every one of them: a one-off (a dict resize, a
            # cache filled late) must grow again to be reported.
            if i == w + n - 1 and not any(_leaks(d[w:w + n]) for d in deltas):
                break
        res = {"status": "checked"}
        for kind, d in zip(KINDS, deltas):
            res[kind] = d[w:w + n]
        suspects = [k for k in KINDS if _leaks(res[k])]
        if not suspects:
            return res
        res["confirm"] = {kind: d[w + n:] for kind, d in zip(KINDS, deltas)}
        leaked = [k for k in suspects if _leaks(res["confirm"][k])]
        if not leaked:
            res["unconfirmed"] = suspects
            return res
        res["status"] = "leaked"
        res["leaked"] = leaked
        res.update(self._diagnose(item))
        return res

    def _diagnose(self, item):
        """More runs: which gc-tracked types, and which allocation sites (tracemalloc),
        grew in each of two consecutive runs."""
        import tracemalloc
        out = {}
        try:
            counts = [_type_counts()]
            for _ in range(2):
                self._run_once(item)
                _clear_caches()
                counts.append(_type_counts())
            t0, t1, t2 = counts
            grew = {k: (t1.get(k, 0) - t0.get(k, 0), t2.get(k, 0) - t1.get(k, 0))
                    for k in set(t1) | set(t2)}
            grew = {k: v for k, v in grew.items() if v[0] >= 1 and v[1] >= 1}
            out["types"] = sorted(grew.items(), key=lambda kv: -kv[1][1])[:15]

            snaps = []
            tracemalloc.start(25)
            try:
                for _ in range(3):  # one call site: the tracebacks must compare equal
                    self._run_once(item)
                    _clear_caches()
                    snaps.append(tracemalloc.take_snapshot())
            finally:
                tracemalloc.stop()
            flt = [tracemalloc.Filter(False, tracemalloc.__file__),
                   tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
                   tracemalloc.Filter(False, __file__)]
            s1, s2, s3 = (s.filter_traces(flt) for s in snaps)
            d12 = {st.traceback: st for st in s2.compare_to(s1, "traceback")}
            sites = []
            for st in s3.compare_to(s2, "traceback"):
                prev = d12.get(st.traceback)
                if st.count_diff >= 1 and prev is not None and prev.count_diff >= 1:
                    sites.append((st.count_diff, st.size_diff, _format_frames(st.traceback)))
            sites.sort(key=lambda s: -s[0])
            out["sites"] = sites[:8]
        except Exception as exc:  # diagnosis is best effort
            out["diagnose_error"] = repr(exc)
        return out

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.in_extra_run = True
        t0 = time.perf_counter()
        try:
            self.checks[item.nodeid] = res = self._check(item)
        finally:
            self.in_extra_run = False
        res["seconds"] = round(time.perf_counter() - t0, 2)
        return None  # the normal, reported run follows

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        if self.in_extra_run:
            return
        rep = outcome.get_result()
        res = self.checks.get(item.nodeid)
        if res is None or not (call.when == "call" or (call.when == "setup" and not rep.passed)):
            return
        # user_properties travel from an xdist worker to the controller.
        rep.user_properties.append(("refleak", json.dumps(res, default=str)))
        if call.when == "call" and res["status"] == "leaked" and rep.passed:
            rep.outcome = "failed"
            rep.longrepr = self._describe(item.nodeid, res)

    def pytest_runtest_logreport(self, report):
        for name, value in report.user_properties:
            if name == "refleak":
                self.results[report.nodeid] = json.loads(value)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        out = getattr(node, "workeroutput", None) or {}
        for pat, n in out.get("refleak_excluded", {}).items():
            # every worker collects (and deselects) the same tests
            self.excluded[pat] = n if n < 0 else max(self.excluded[pat], n)

    # -- reporting --

    def _describe(self, nodeid, res):
        lines = [f"reference leak ({', '.join(res['leaked'])}) in {nodeid}: "
                 f"deltas over {self.runs} runs after {self.warmup} warm-ups: "
                 f"refs {res['refs']}, blocks {res['blocks']}, fds {res['fds']}; "
                 f"confirmed over {self.runs} more: " +
                 ", ".join(f"{k} {res['confirm'][k]}" for k in KINDS)]
        if res.get("types"):
            lines.append("gc-tracked objects whose number grew in both of 2 more runs:")
            lines += [f"    {name}: +{a}, +{b}" for name, (a, b) in res["types"]]
        else:
            lines.append("no gc-tracked type grew (the leaked objects are not gc-tracked: "
                         "ints, strings, bytes, or C objects without Py_TPFLAGS_HAVE_GC)")
        if res.get("sites"):
            lines.append("allocation sites (tracemalloc) still growing in 2 more runs:")
            for count, size, tb in res["sites"]:
                lines.append(f"  +{count} blocks, {size:+d} B per run, allocated at:")
                lines += ["    " + ln for ln in tb]
        if res.get("diagnose_error"):
            lines.append(f"(diagnosis failed: {res['diagnose_error']})")
        return "\n".join(lines)

    def pytest_terminal_summary(self, terminalreporter):
        if hasattr(self.config, "workerinput"):  # an xdist worker: the controller reports
            return
        tr = terminalreporter
        tr.section("refleak")
        status = collections.Counter(v["status"].split(" (")[0] for v in self.results.values())
        skipped = sum(1 for v in self.results.values() if "skipped" in v["status"])
        leaked = [k for k, v in self.results.items() if v["status"] == "leaked"]
        tr.write_line(
            f"--refleak={self.warmup}:{self.runs}: {status['checked'] + status['leaked']} tests "
            f"checked, {len(leaked)} leaking; not checked: {skipped} skipped, "
            f"{status['not checked'] - skipped} failed in an extra run; "
            f"{sum(n for n in self.excluded.values() if n > 0)} deselected by the exclusion "
            f"list, {sum(1 for n in self.excluded.values() if n < 0)} files not collected")
        for pat, why in self.patterns:
            n = self.excluded[pat]
            if n:
                count = "file" if n < 0 else f"{n:4d}"
                tr.write_line(f"  excluded {count:>4}  {pat}  ({why})")
        for k in leaked:
            v = self.results[k]
            tr.write_line(f"LEAK {k}: " + ", ".join(
                f"{kind} {v[kind]} {v['confirm'][kind]}" for kind in KINDS), red=True)
        unconfirmed = [k for k, v in self.results.items() if v.get("unconfirmed")]
        if unconfirmed:
            tr.write_line(f"{len(unconfirmed)} tests grew in every measured run but not in the "
                          f"{self.runs} confirmation runs (not reported as leaks):")
            for k in unconfirmed:
                v = self.results[k]
                tr.write_line(f"  {k}: " + ", ".join(
                    f"{kind} {v[kind]} {v['confirm'][kind]}" for kind in v["unconfirmed"]))
        if not self.results:
            return
        slow = sorted(self.results.items(), key=lambda kv: -kv[1].get("seconds", 0))[:10]
        total = sum(v.get("seconds", 0) for v in self.results.values())
        tr.write_line(f"time in the extra runs: {total:.0f} s; slowest: " + ", ".join(
            f"{k.split('/')[-1]} {v.get('seconds', 0):.1f} s" for k, v in slow))
        report = self.config.getoption("refleak_report")
        if report:
            with open(report, "w") as f:
                f.write(json.dumps({"warmup": self.warmup, "runs": self.runs,
                                    "excluded": dict(self.excluded)}) + "\n")
                for k, v in sorted(self.results.items()):
                    f.write(json.dumps({"nodeid": k, **v}, default=str) + "\n")
            tr.write_line(f"results written to {report} (JSON lines)")
