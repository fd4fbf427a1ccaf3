# The one place for quickloop's commands.  The two that matter:
#   make run    install into .venv and run the examples on quickloop, then a benchmark summary
#   make test   install into .venv with the test extra and run every test
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test check build dev bench bench-compare curves asan soak fuzz clean venv versions versions-debian

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

venv: $(PY)

# Non-editable install: tests and examples import exactly what a user gets.
run: $(PY)
	$(PIP) install '.[bench]'
	@for f in examples/[0-9]*.py; do echo "== $$f"; $(PY) -m quickloop $$f || exit 1; done
	$(PY) -m benchmarks --summary

# wrk (Debian's package): the http_wrk benchmark's tests drive a real server with it.
test: $(PY)
	$(call apt_ensure,wrk)
	$(PIP) install '.[test]'
	$(PY) -m pytest -q

# In-place build for development: PYTHONPATH=python makes it importable.
dev:
	$(PYTHON) setup.py -q build_ext --inplace --build-lib python

build: $(PY)
	$(PIP) install .

# The full suite, interleaved across loops; rewrites benchmarks/RESULTS.md,
# the ratio chart and the JSON. Run on a quiet machine.  wrk (Debian's
# package) drives the HTTP workload, which is skipped without it.
bench: $(PY)
	$(call apt_ensure,wrk)
	$(PIP) install '.[bench]'
	$(PY) -m benchmarks --json benchmarks/results.json --results

# The same run, checked against the committed table instead of replacing it:
# lists every ratio that moved beyond both runs' spread (benchmarks/compare.py).
bench-compare: $(PY)
	$(call apt_ensure,wrk)
	$(PIP) install '.[bench]'
	$(PY) -m benchmarks --compare benchmarks/results.json

# Cost per operation against the number of pending timers and tasks.
curves: $(PY)
	$(PIP) install '.[bench]'
	$(PY) -m benchmarks --curves

# AddressSanitizer + UBSan build in its own venv (.venv keeps the plain build),
# whole suite under it; any ASan or UBSan report aborts the process and fails it.
ASAN_VENV ?= .venv-asan
ASAN_PY   := $(ASAN_VENV)/bin/python
ASAN_PIP  := $(ASAN_PY) -m pip --disable-pip-version-check -q
$(ASAN_PY):
	$(PYTHON) -m venv $(ASAN_VENV)
	$(ASAN_PIP) install --upgrade pip setuptools wheel

asan: $(ASAN_PY)
	$(ASAN_PIP) install '.[test]'
	QUICKLOOP_SANITIZE=1 $(ASAN_PIP) install --no-build-isolation --force-reinstall --no-deps .
	@so=$$(find $(ASAN_VENV) -name '_core*.so' -path '*quickloop*'); \
		nm -D --undefined-only $$so | grep -q __asan_init \
		|| { echo "$$so is not an ASan build"; exit 1; }; echo "ASan build: $$so"
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
		$(ASAN_PY) -m pytest -q -p no:cacheprovider

# The other CPython versions quickloop supports (3.12, 3.13): on each one found
# on the machine (pyenv's versions, or python3.X on PATH), quickloop is built
# with -Werror in a venv of its own and the whole suite runs there, CPython's
# own test.test_asyncio of that version included (tests/test_conformance.py).
# A version that is not installed is named and skipped: the machine's CPython
# is 3.11.  The recipe is one shell line, so the probe runs once per call.
OTHER_PYTHONS ?= $(shell for v in 3.12 3.13; do \
	p=$$(ls -d $(HOME)/.pyenv/versions/$$v.*/bin/python$$v 2>/dev/null | tail -n 1); \
	[ -n "$$p" ] || p=$$(command -v python$$v 2>/dev/null); \
	[ -n "$$p" ] && "$$p" -c 'import test.test_asyncio' 2>/dev/null && echo "$$p"; done; true)
versions:
	@set -e; pythons="$(OTHER_PYTHONS)"; \
	for v in 3.12 3.13; do case "$$pythons" in *python$$v*) ;; \
		*) echo "versions: no CPython $$v with test.test_asyncio on this machine, skipped";; esac; done; \
	for p in $$pythons; do \
		v=$$("$$p" -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		echo "== CPython $$v ($$p): build with -Werror, the whole suite"; \
		[ -x .venv-$$v/bin/python ] || "$$p" -m venv .venv-$$v; \
		.venv-$$v/bin/python -m pip --disable-pip-version-check -q install '.[test]'; \
		.venv-$$v/bin/python -m pytest -q -p no:cacheprovider; \
	done

# By hand, not in CI (it needs root, mounts and a few minutes of downloads):
# the whole suite on a Debian release's CPython, in a debootstrap chroot of
# its own under $(DEBIAN_ROOT).  Debian trixie's python3.13 is 3.13.5, the
# only 3.13 after 3.13.0 this machine can get (README, "Python versions").
# pip inside the chroot does not trust this host's TLS proxy, so the test
# wheels are fetched here and installed there from a folder.
DEBIAN_SUITE ?= trixie
DEBIAN_PY    ?= python3.13
DEBIAN_ROOT  ?= .debian-$(DEBIAN_SUITE)
versions-debian: $(PY)
	$(call apt_ensure,debootstrap)
	[ -x $(DEBIAN_ROOT)/usr/bin/$(DEBIAN_PY) ] || $(SUDO) debootstrap --variant=minbase \
		--include=$(DEBIAN_PY),$(DEBIAN_PY)-dev,$(DEBIAN_PY)-venv,lib$(DEBIAN_PY)-testsuite,gcc,libc6-dev \
		$(DEBIAN_SUITE) $(DEBIAN_ROOT) http://deb.debian.org/debian
	rm -rf $(DEBIAN_ROOT)/root/wheels $(DEBIAN_ROOT)/root/ql && mkdir -p $(DEBIAN_ROOT)/root/ql
	$(PY) -m pip download -q -d $(DEBIAN_ROOT)/root/wheels --only-binary=:all: \
		--python-version $$($(SUDO) chroot $(DEBIAN_ROOT) $(DEBIAN_PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
		pytest pytest-timeout hypothesis setuptools wheel
	git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -C $(DEBIAN_ROOT)/root/ql -xf -
	@set -e; root=$(DEBIAN_ROOT); \
	$(SUDO) mount -t proc proc $$root/proc; $(SUDO) mount --bind /dev $$root/dev; \
	trap '$(SUDO) umount $$root/dev $$root/proc' EXIT; \
	$(SUDO) chroot $$root sh -ec 'cd /root/ql; $(DEBIAN_PY) -VV; \
		[ -x /opt/venv/bin/python ] || $(DEBIAN_PY) -m venv /opt/venv; \
		export PIP_FIND_LINKS= PIP_CONFIG_FILE=/dev/null; \
		/opt/venv/bin/pip -q install --no-index --find-links /root/wheels pytest pytest-timeout hypothesis setuptools wheel; \
		/opt/venv/bin/pip -q install --no-index --no-build-isolation .; \
		/opt/venv/bin/python -m pytest -q -p no:cacheprovider'

# The README's second command and CI's (.ci/run): every test on the plain
# build, then the whole suite under ASan+UBSan, then the reference-leak run on
# debug CPython, then CPython's asyncio tests on the other supported versions.
check: test asan refleak versions

# Soak: mixed load on one loop; RSS and live objects must stay flat (exit 1 if they grow).
SOAK_MINUTES ?= 10
SOAK_LOOP    ?= quickloop
soak: $(PY)
	$(PIP) install .
	@mkdir -p build
	$(PY) tests/soak.py --minutes $(SOAK_MINUTES) --loop $(SOAK_LOOP) --report build/soak.json

# Coverage-guided fuzzing of the C entry points (atheris if installed, else a
# plain random driver); FUZZ_SECONDS long. tests/fuzz/ says how to run it under ASan.
FUZZ_SECONDS ?= 300
fuzz: $(PY)
	$(PIP) install '.[test]' atheris || $(PIP) install '.[test]'
	$(PY) -m tests.fuzz.run --seconds $(FUZZ_SECONDS)

clean:
	rm -rf build *.egg-info python/quickloop/*.so $(VENV) $(ASAN_VENV) $(DBG_VENV) .venv-3.1[23]

# ---- leak checking (targets added; see tests/refleak/) -------------------------
# make refleak: Debian's debug CPython (python3.11-dbg, installed with apt-get if
# missing), a venv with it ($(DBG_VENV)), quickloop built into it, and the test
# suite with reference-leak checking like regrtest -R 3:3 (tests/refleak/plugin.py):
# each test runs 3 warm-up + 3 measured times; a test whose total refcount,
# allocated blocks or open fds grow in every measured run (and again in 3
# confirmation runs) fails.  Non-repeatable tests (subprocesses, fork, signals,
# benchmarks) are deselected: DEFAULT_EXCLUDES in the plugin.  Results, one JSON
# line per test: build/refleak.jsonl.
# make valgrind: every example under valgrind memcheck (PYTHONMALLOC=malloc) with
# the quickloop installed in $(VENV); fails on any error or definitely lost block
# (tests/refleak/valgrind_examples.py; logs in build/valgrind/).
DBG_PYTHON   ?= /usr/bin/python3.11-dbg
DBG_VENV     ?= .venv-dbg
DBG_PY       := $(DBG_VENV)/bin/python
DBG_PIP      := PYTHONWARNINGS=ignore $(DBG_PY) -m pip --disable-pip-version-check -q
DBG_APT      := python3.11-dbg libpython3.11-dbg python3.11-dev libpython3.11-dev python3.11-venv
REFLEAK_JOBS ?= 2
REFLEAK_ARGS ?= --refleak=3:3
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# $(call apt_ensure,packages): apt-get install those not installed yet.
define apt_ensure
	@missing=; for p in $(1); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q ' installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "apt-get install:$$missing"; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

.PHONY: refleak refleak-deps valgrind

refleak-deps:
	$(call apt_ensure,$(DBG_APT))

$(DBG_PY): | refleak-deps
	$(DBG_PYTHON) -m venv $(DBG_VENV)
	$(DBG_PIP) install --upgrade pip setuptools wheel

refleak: refleak-deps $(DBG_PY)
	$(DBG_PY) -c 'import sys; sys.gettotalrefcount' || { echo "$(DBG_PY) is not a debug build"; exit 1; }
	$(DBG_PIP) install pytest pytest-timeout pytest-xdist
	$(DBG_PIP) install --no-build-isolation --force-reinstall --no-deps .
	@mkdir -p build
	$(DBG_PY) -m pytest -q -p no:cacheprovider -p tests.refleak.plugin -o timeout=1200 \
		-n $(REFLEAK_JOBS) $(REFLEAK_ARGS) --refleak-report=build/refleak.jsonl

valgrind: $(PY)
	$(call apt_ensure,valgrind)
	$(PIP) install .
	$(PY) tests/refleak/valgrind_examples.py
