"""Differential test: every example and cancellation program, stdlib loop vs quickloop.

Each script in examples/[0-9]*.py and tests/programs/[a-z]*.py is plain asyncio
with deterministic stdout.  It is run in subprocesses

  * ``python SCRIPT``                       -- the stdlib loop (twice: determinism)
  * ``python tests/programs/_harness.py SCRIPT`` -- on quickloop, *verified*: the
    harness installs a recording subclass of quickloop.EventLoopPolicy and fails
    (exit 3, message on stderr) unless every loop created was a quickloop.Loop
    that ran iterations (``loop._iterations > 0``)
  * ``python -m quickloop SCRIPT``          -- the CLI for unchanged scripts

and the runs must agree: same stdout, exit code 0, empty stderr.

All subprocesses are started at once, the first time a test here needs one, so
the module takes roughly as long as the slowest script.  There are no timing
assertions; the only limit is a generous per-process timeout.
"""
import concurrent.futures
import difflib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO / "examples"
PROGRAMS_DIR = REPO / "tests" / "programs"
HARNESS = PROGRAMS_DIR / "_harness.py"
TIMEOUT = 60  # seconds per subprocess; the slowest script needs ~4 s

EXAMPLES = sorted(EXAMPLES_DIR.glob("[0-9]*.py"))
PROGRAMS = sorted(PROGRAMS_DIR.glob("[a-z]*.py"))
SCRIPTS = EXAMPLES + PROGRAMS

EXPECTED_EXAMPLES = [
    "01_basic_cancellation.py",
    "02_timeout_wait_for.py",
    "03_cancel_group.py",
    "04_cleanup.py",
    "05_long_running_loop.py",
    "06_shield.py",
    "07_context_manager.py",
    "08_cancelled_error_handling.py",
    "09_multiple_coroutines.py",
    "10_custom_timeout.py",
]

# mode -> argv after the interpreter (SCRIPT is appended)
MODES = {
    "stdlib": [],
    "stdlib-again": [],
    "harness": [str(HARNESS)],
    "cli": ["-m", "quickloop"],
}


def _rel(path):
    return str(Path(path).relative_to(REPO))


def _quickloop_pythonpath():
    """Where the subprocesses should import quickloop from.

    The same quickloop this test process sees (an installed one, or the
    in-place build under python/ via PYTHONPATH); python/ as a fallback so a
    missing build shows up as a clear import error in the harness.
    """
    try:
        import quickloop
    except Exception:  # noqa: BLE001
        return str(REPO / "python")
    files = getattr(quickloop, "__file__", None)
    if not files:
        return str(REPO / "python")
    return str(Path(files).resolve().parent.parent)


def _env():
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)  # debug mode logs slow callbacks: noise
    env.pop("PYTHONDEVMODE", None)
    env["PYTHONFAULTHANDLER"] = "1"  # a crash in the C core dumps a traceback
    env["PYTHONIOENCODING"] = "utf-8"
    paths = [_quickloop_pythonpath()]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class Run:
    def __init__(self, script, mode, argv, returncode, stdout, stderr, note=""):
        self.script, self.mode, self.argv = script, mode, argv
        self.returncode, self.stdout, self.stderr, self.note = returncode, stdout, stderr, note

    def describe(self):
        lines = [
            f"[{self.mode}] {' '.join(self.argv)}",
            f"  exit code: {self.returncode}{'  (' + self.note + ')' if self.note else ''}",
        ]
        if self.stderr:
            lines.append("  stderr:")
            lines += ["    " + ln for ln in self.stderr.rstrip("\n").splitlines()[-40:]]
        return "\n".join(lines)


def _run(script, mode, env):
    argv = [sys.executable, "-W", "default", *MODES[mode], _rel(script)]
    try:
        proc = subprocess.run(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, encoding="utf-8", errors="replace",
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Run(script, mode, argv, None, out, err, note=f"killed after {TIMEOUT} s timeout")
    return Run(script, mode, argv, proc.returncode, proc.stdout, proc.stderr)


# test function name -> modes it needs
NEEDS = {
    "test_stdlib_clean": ("stdlib",),
    "test_stdlib_deterministic": ("stdlib", "stdlib-again"),
    "test_quickloop_matches_stdlib": ("stdlib", "harness"),
    "test_cli_matches_stdlib": ("stdlib", "cli"),
}


class Runs:
    """Subprocess results keyed by (script, mode); each started at most once."""

    def __init__(self, keys):
        self._env = _env()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(keys)))
        self._futures = {}
        self._lock = threading.Lock()
        for key in sorted(keys):
            self._submit(key)

    def _submit(self, key):
        with self._lock:
            if key not in self._futures:
                self._futures[key] = self._pool.submit(_run, key[0], key[1], self._env)
            return self._futures[key]

    def get(self, script, mode):
        return self._submit((script, mode)).result()

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def runs(request):
    """Every subprocess the selected tests need, all started at once."""
    wanted = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        module = getattr(item, "module", None)
        if module is None or module.__name__ != __name__ or callspec is None:
            continue
        script = callspec.params.get("script")
        for mode in NEEDS.get(item.originalname, ()):
            wanted.add((script, mode))
    r = Runs(wanted)
    yield r
    r.close()


def _get(runs, script, mode):
    return runs.get(script, mode)


def _assert_clean(run):
    if run.returncode != 0 or run.stderr != "":
        what = "non-zero exit code" if run.returncode != 0 else "output on stderr"
        pytest.fail(f"{_rel(run.script)} [{run.mode}]: {what}\n{run.describe()}", pytrace=False)


def _assert_same_stdout(reference, other):
    if other.stdout != reference.stdout:
        diff = "\n".join(difflib.unified_diff(
            reference.stdout.splitlines(), other.stdout.splitlines(),
            fromfile=f"{reference.mode} stdout", tofile=f"{other.mode} stdout", lineterm="",
        ))
        pytest.fail(
            f"{_rel(other.script)}: stdout differs between {reference.mode} and {other.mode}\n"
            f"{diff}\n{other.describe()}",
            pytrace=False,
        )


script_params = pytest.mark.parametrize("script", SCRIPTS, ids=[_rel(p) for p in SCRIPTS])


@script_params
def test_stdlib_clean(runs, script):
    run = _get(runs, script, "stdlib")
    _assert_clean(run)
    assert run.stdout.strip(), f"{_rel(script)} printed nothing"


@script_params
def test_stdlib_deterministic(runs, script):
    first, again = _get(runs, script, "stdlib"), _get(runs, script, "stdlib-again")
    _assert_clean(first)
    _assert_clean(again)
    _assert_same_stdout(first, again)


@script_params
def test_quickloop_matches_stdlib(runs, script):
    """On a verified quickloop.Loop: same stdout, exit code 0, empty stderr."""
    ref, ql = _get(runs, script, "stdlib"), _get(runs, script, "harness")
    _assert_clean(ref)
    _assert_clean(ql)
    _assert_same_stdout(ref, ql)


@script_params
def test_cli_matches_stdlib(runs, script):
    """`python -m quickloop SCRIPT` gives the stdlib run's stdout."""
    ref, cli = _get(runs, script, "stdlib"), _get(runs, script, "cli")
    _assert_clean(ref)
    _assert_clean(cli)
    _assert_same_stdout(ref, cli)


# --- static checks on the examples themselves --------------------------------

SEED_TITLES = {
    "01": ("Basic Task Cancellation",
           "The CancelledError is caught, and the task is properly cleaned up after cancellation."),
    "02": ("Task Cancellation with Timeout",
           "If the task takes longer than the specified timeout, it's cancelled automatically."),
    "03": ("Canceling Multiple Tasks in a Group",
           "All tasks in the group are cancelled after a certain period, and exceptions are "
           "handled with return_exceptions=True."),
    "04": ("Cancelling Task with Cleanup",
           "The task handles cancellation during cleanup and ensures resources are released properly."),
    "05": ("Handling Cancellation in Long-Running Loops",
           "The task is cancelled during its execution, with proper handling of CancelledError."),
    "06": ("Using asyncio.shield() to Prevent Task Cancellation",
           "asyncio.shield() ensures that the task cannot be cancelled, even when task.cancel() is called."),
    "07": ("Canceling Tasks in a Context Manager",
           "The context manager ensures that all tasks in the group are cancelled as needed."),
    "08": ("Task Cancellation with CancelledError Handling",
           "The CancelledError is explicitly handled to cleanly cancel the task."),
    "09": ("Handling Task Cancellation in Multiple Coroutine Functions",
           "Both tasks are cancelled, and exceptions are managed with return_exceptions=True."),
    "10": ("Task Cancellation with Custom Timeout",
           "The task is cancelled automatically after the specified timeout."),
}


def test_all_ten_examples_present():
    assert [p.name for p in EXAMPLES] == EXPECTED_EXAMPLES


def test_programs_present():
    assert len(PROGRAMS) >= 8, [p.name for p in PROGRAMS]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_shape(path):
    import ast

    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    doc = " ".join((ast.get_docstring(tree) or "").split())
    title, fix = SEED_TITLES[path.name[:2]]
    assert f'"{title}"' in doc, f"docstring should quote the title {title!r}"
    assert " ".join(fix.split()) in doc, f"docstring should quote the Fix line {fix!r}"
    assert not re.search(r"^\s*(import|from)\s+quickloop\b", source, re.M), "examples must not import quickloop"
    last = tree.body[-1]
    assert isinstance(last, ast.If) and ast.unparse(last.test) == "__name__ == '__main__'"
    assert [ast.unparse(s) for s in last.body] == ["asyncio.run(main())"]
