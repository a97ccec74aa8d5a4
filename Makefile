# The two README commands: `make bench` (set up, measure the quick suite, report, recommend for
# the workload the quick suite measures on every device, SD1.5 at 256 px and its usual 50 guided
# steps, so this machine's own measured row stands beside the GPUs)
# and `make test` (set up, run the tests). Both create .venv on first use.
VENV    ?= .venv
PYTHON  ?= python3
# A CPU build of torch 2.13 installs from local disk on the dev machines; on a GPU machine
# override it, e.g. `make bench TORCH="torch --index-url https://download.pytorch.org/whl/cu128"`.
TORCH   ?= torch==2.13.0
SUITE   ?= quick
RESULTS ?= results
REPORT  ?= reports/quick
PIP      = $(VENV)/bin/python -m pip
SDBENCH  = $(VENV)/bin/sdbench

.PHONY: bench test setup lint clean-venv browser

# pip byte-compiles the ~19,000 Python files it installs one after another; compileall writes the
# same .pyc files on every core. As with pip, a file that does not compile (torch ships a few
# for newer Pythons) is left alone, so its exit status is ignored.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet --no-compile "$(TORCH)"
	$(PIP) install --quiet --no-compile -e ".[dev,ray,quant,offload]"
	-$(VENV)/bin/python -m compileall -q -j 0 "$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null
	touch $@

setup: $(VENV)/.installed

bench: setup
	$(SDBENCH) run $(SUITE) --out $(RESULTS)
	$(SDBENCH) report "$$(ls -t $(RESULTS)/*.parquet | head -n 1)" --out $(REPORT)
	$(SDBENCH) recommend --model sd15 --resolution 256 --batch-size 1 --precision fp16 --results $(RESULTS)
	@echo "report: $(REPORT)/index.html"

# Headless Chromium for the report's browser test (Debian package; skipped where apt is absent).
browser:
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium not installed: the browser test will be skipped"; }

# Test files run in TEST_WORKERS processes (pytest-xdist; a file stays in one process, so its
# module fixtures are built once), then the `serial` tests (real time, timing races) alone. The
# serial run collects only the files that say `mark.serial` (collecting every file costs tens of
# seconds); tests/conftest.py fails the parallel run if a serial test lives in any other file.
TEST_WORKERS ?= 2
SERIAL_FILES = $(shell grep -l "mark\.serial" tests/test_*.py)
test: setup browser
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow and not serial"
	$(VENV)/bin/python -m pytest -q -m "serial and not slow" $(SERIAL_FILES)

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean-venv:
	rm -rf $(VENV)
