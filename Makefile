# pilive developer entry points. `make test` and `make demo` set up everything they need on a fresh
# Debian / Raspberry Pi OS machine: Debian packages (as root, or through sudo), a venv, the package.

VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
PYTEST_ARGS ?=
# Build tools for the C extensions (ring buffer; speexdsp's echo canceller) and the pi extras;
# the audio rig the tests run against.
APT_PACKAGES := build-essential pkg-config python3-dev python3-venv portaudio19-dev libsystemd-dev \
                libspeexdsp-dev \
                pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox valgrind systemd shellcheck tzdata \
                mosquitto
STAMP       := $(VENV)/.installed

.PHONY: help deps venv demo test test-slow test-system test-arm64 lint bench soak clean

help:
	@echo "make demo    set up, then run the whole daemon on simulated hardware against the emulator"
	@echo "make test    set up (apt packages, venv, package) and run the test suite"
	@echo "make test-arm64  the tests and the demo in an arm64 Debian root under qemu-user"
	@echo "make lint    ruff + mypy --strict"
	@echo "make bench   run every benchmark: one table, figures in bench.json"
	@echo "make soak    the whole daemon under faults for SOAK_MINUTES (default 10)"

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "need root or sudo to install:$$missing" >&2; exit 1; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml daemon/pilive/audio/_ringbuf.c daemon/pilive/audio/_speexdsp.c
	$(MAKE) deps
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[pi,test,lint]'
	touch $(STAMP)

venv: $(STAMP)

# pytest exits 5 when it collected nothing: for this project that is a broken suite, said plainly.
demo: $(STAMP)
	$(VENV)/bin/pilive demo

# A failing run explains itself: -ra (pyproject) ends the log with each failure's one-line
# summary, and TEST_REPORT (JUnit XML under out/, which CI keeps and git ignores) holds every
# failing test with its captured output and log.
TEST_REPORT ?= out/pytest-report.xml
test: $(STAMP)
	@mkdir -p $(dir $(TEST_REPORT)); \
	$(PY) -m pytest --junitxml=$(TEST_REPORT) -o junit_logging=all -o junit_log_passing_tests=false \
	  $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken" >&2; fi; \
	if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then echo "failures with their output: $(TEST_REPORT)" >&2; fi; \
	exit $$rc

# Boots systemd 252 in a container (debootstrap + systemd-nspawn) and installs the unit there.
test-system: $(STAMP)
	$(MAKE) deps APT_PACKAGES="debootstrap systemd-container"
	$(PY) -m pytest -m system tests/system $(PYTEST_ARGS)

# The suite and the demo on the Pi's architecture: a Debian bookworm arm64 root (debootstrap, built
# once and cached under /var/cache/pilive-arm64) run under qemu-user, pilive installed there as
# install.sh does. ARM64_ARGS=--subset=ci leaves out the slowest modules.
ARM64_ARGS ?=
test-arm64: $(STAMP)
	$(MAKE) deps APT_PACKAGES="debootstrap systemd-container qemu-user-static binfmt-support"
	$(PY) -m tests.arm64 $(ARM64_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check daemon tests
	$(VENV)/bin/ruff format --check daemon tests
	$(VENV)/bin/mypy --strict daemon/pilive
	shellcheck -s sh systemd/install.sh

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m tests.bench --json bench.json

SOAK_MINUTES ?= 10
soak: $(STAMP)
	$(PY) -m tests.soak --minutes $(SOAK_MINUTES)

clean:
	rm -rf $(VENV) build daemon/*.egg-info daemon/pilive/audio/*.so
