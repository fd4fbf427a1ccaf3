"""CPython's own test.test_asyncio on quickloop, checked against the stdlib reference.

One subprocess runs the conformance runner (tests/conformance/) with --compare:
every module twice, in worker subprocesses of its own (the CPython tests mutate
global state: policies, child watchers, signal handlers, threads), two at a time:

  * the stdlib reference: --loop stdlib --types stdlib
  * quickloop:            --loop quickloop --types quickloop

Then, per module: no test that passed on the stdlib reference may fail (or crash,
hang, or not run) on quickloop unless it is listed in
tests/conformance_expected_failures.txt, and if the reference ran tests on a real
stdlib loop, the quickloop run must have *verifiably* iterated quickloop loops
(``loop._iterations > 0``; tests on test_utils.TestLoop never count).

Modules: the default list (every module) unless
QUICKLOOP_CONFORMANCE_MODULES names others, e.g.

    QUICKLOOP_CONFORMANCE_MODULES=test_events,test_streams pytest tests/test_conformance.py
    QUICKLOOP_CONFORMANCE_MODULES=default,networking ...    (also: all)

QUICKLOOP_CONFORMANCE_TIMEOUT (seconds, default 1200) bounds the whole run,
QUICKLOOP_CONFORMANCE_TEST_TIMEOUT (default 120) one test (a hang is reported as
that test's error and the module goes on), QUICKLOOP_CONFORMANCE_JOBS (default 2)
the modules run in parallel.
Full results: python -m tests.conformance --compare --list-failures
"""
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENTRY = REPO / "tests" / "conformance" / "_entry.py"
EXPECTED = REPO / "tests" / "conformance_expected_failures.txt"


def _load_conformance():
    spec = importlib.util.spec_from_file_location("_quickloop_conformance_entry", ENTRY)
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    entry.load_package()
    return (importlib.import_module(entry.PACKAGE + ".profiles"),
            importlib.import_module(entry.PACKAGE + ".runner"))


profiles, runner = _load_conformance()

MODULES = runner.parse_modules(os.environ.get("QUICKLOOP_CONFORMANCE_MODULES", "").strip()
                               or "default")
TIMEOUT = float(os.environ.get("QUICKLOOP_CONFORMANCE_TIMEOUT", "1200"))
JOBS = int(os.environ.get("QUICKLOOP_CONFORMANCE_JOBS", "2"))
PER_TEST = float(os.environ.get("QUICKLOOP_CONFORMANCE_TEST_TIMEOUT", "120"))
TARGET = "loop=quickloop,types=quickloop"
REFERENCE = "loop=stdlib,types=stdlib"

# The first test pays for the whole run (module-scoped fixture): pytest-timeout's
# per-test default (pyproject.toml) is far too short for it.
if importlib.util.find_spec("pytest_timeout") is not None:
    pytestmark = [pytest.mark.timeout(TIMEOUT + 120)]


def _quickloop_pythonpath():
    """The quickloop this process sees (installed, or python/ via PYTHONPATH)."""
    spec = importlib.util.find_spec("quickloop")
    if spec is None or not spec.origin:
        return None
    return str(Path(spec.origin).resolve().parent.parent)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    ql_path = _quickloop_pythonpath()
    if ql_path is None:
        pytest.fail("quickloop is not importable (build it: make dev; PYTHONPATH=python)")
    out = tmp_path_factory.mktemp("conformance") / "conformance.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ql_path] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    per_module = max(60.0, TIMEOUT - 30)
    cmd = [sys.executable, str(ENTRY), "runner", "--compare", "--list-failures",
           "--modules", ",".join(MODULES), "--json", str(out), "-j", str(JOBS),
           "--module-timeout", str(per_module), "--per-test-timeout", str(PER_TEST), "-q"]
    try:
        proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"conformance runner did not finish in {TIMEOUT:.0f}s\n"
                    f"{(exc.stdout or '')[-4000:] if isinstance(exc.stdout, str) else ''}")
    if not out.exists():
        pytest.fail(f"conformance runner wrote no report (exit {proc.returncode})\n"
                    f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")
    data = json.loads(out.read_text(encoding="utf-8"))
    data["_stdout"] = proc.stdout
    # Shown by pytest -s / -rA: the tables the runner printed.
    print(proc.stdout)
    return data


def _why(tests_by_id, tid):
    ev = tests_by_id.get(tid)
    if ev is None:
        return "not run"
    s = f"{ev['outcome']}: {(ev.get('reason') or '')[:300]}"
    if ev.get("origin"):
        s += f"  (at {ev['origin']})"
    return s


def test_expected_failures_file_is_well_formed():
    entries = runner.load_expected_failures(EXPECTED)  # raises on a malformed line
    lines = [ln.split("#", 1)[0].strip() for ln in EXPECTED.read_text().splitlines()]
    ids = [ln for ln in lines if ln]
    assert len(ids) == len(set(ids)), "duplicate entries in conformance_expected_failures.txt"
    unknown = sorted(i for i in entries if i.split(".", 1)[0] not in profiles.ALL_MODULES)
    assert not unknown, f"entries naming modules the runner does not know: {unknown}"


@pytest.mark.parametrize("module", MODULES)
def test_module_conforms(report, module):
    ref = report["runs"][REFERENCE][module]
    tgt = report["runs"][TARGET][module]
    comp = report["comparison"][module]
    tgt_tests = {t["id"]: t for t in tgt["tests"]}

    assert not ref["summary"]["fatal"], f"stdlib reference could not run {module}:\n" \
        + ref["summary"]["fatal"]
    assert not tgt["summary"]["fatal"], f"quickloop run could not run {module}:\n" \
        + tgt["summary"]["fatal"]

    if comp["unexplained"]:
        lines = [f"  {tid}: {_why(tgt_tests, tid)}" for tid in comp["unexplained_ids"]]
        incomplete = tgt["summary"]["incomplete"]
        pytest.fail(
            f"{module}: {comp['unexplained']} test(s) passed on the stdlib loop but failed on "
            f"quickloop and are not listed in {EXPECTED.name}"
            + (f" (quickloop run incomplete: {incomplete})" if incomplete else "") + ":\n"
            + "\n".join(lines)
            + "\n(details: python -m tests.conformance --compare --list-failures "
              f"--modules {module})",
            pytrace=False)

    for label, run in (("stdlib reference", ref), ("quickloop", tgt)):
        s = run["summary"]
        assert not s["incomplete"], (
            f"{module}: the {label} run did not complete ({s['not_run']} tests not run): "
            f"{s['incomplete']}")

    # Verified, not assumed: the quickloop run really used quickloop loops.
    if ref["summary"]["on_stdlib_loop"] > 0:
        assert tgt["summary"]["on_ql_loop"] > 0, (
            f"{module}: {ref['summary']['on_stdlib_loop']} tests iterated a stdlib loop in the "
            "reference, but no test iterated a quickloop loop: the runner did not put the "
            "module on quickloop")

    if comp["xpass"]:
        warnings.warn(f"{module}: listed as expected failures but passed on quickloop "
                      f"(remove from {EXPECTED.name}): {', '.join(comp['xpass_ids'])}",
                      stacklevel=1)
