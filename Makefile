# The one place for quickloop's commands.  The two that matter:
#   make run    install into .venv and run the examples on quickloop, then a benchmark summary
#   make test   install into .venv with the test extra and run every test
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test build dev bench curves asan clean venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

venv: $(PY)

# Non-editable install: tests and examples import exactly what a user gets.
run: $(PY)
	$(PIP) install '.[bench]'
	@for f in examples/[0-9]*.py; do echo "== $$f"; $(PY) -m quickloop $$f || exit 1; done
	$(PY) -m benchmarks --summary

test: $(PY)
	$(PIP) install '.[test]'
	$(PY) -m pytest -q

# In-place build for development: PYTHONPATH=python makes it importable.
dev:
	$(PYTHON) setup.py -q build_ext --inplace --build-lib python

build: $(PY)
	$(PIP) install .

# The full suite, interleaved across loops; rewrites benchmarks/RESULTS.md,
# the ratio chart and the JSON. Run on a quiet machine.
bench: $(PY)
	$(PIP) install '.[bench]'
	$(PY) -m benchmarks --json benchmarks/results.json --results

# Cost per operation against the number of pending timers and tasks.
curves: $(PY)
	$(PIP) install '.[bench]'
	$(PY) -m benchmarks --curves

# AddressSanitizer + UBSan build, whole suite under it.
asan: $(PY)
	$(PIP) install '.[test]'
	QUICKLOOP_SANITIZE=1 $(PIP) install --no-build-isolation --force-reinstall --no-deps .
	ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
		$(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf build *.egg-info python/quickloop/*.so $(VENV)
