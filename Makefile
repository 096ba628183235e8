# postmortem: every target does its own set-up, idempotently.
#   make demo   set everything up, run the local incident end to end, print the report path
#   make test   set everything up, run the whole test suite
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP_PY   := $(VENV)/.installed
STAMP_NPM  := node_modules/.installed

.PHONY: setup demo test test-fast bench clean contracts browser

setup: $(STAMP_PY) $(STAMP_NPM) contracts

$(STAMP_PY): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "python: installing postmortem (editable) and its dependencies into $(VENV) (log: $(VENV)/install.log) ..."
	@{ $(PIP) install --upgrade pip && $(PIP) install -e ".[test]"; } > $(VENV)/install.log 2>&1 \
	  || { tail -n 40 $(VENV)/install.log; echo "pip install failed; the whole log is $(VENV)/install.log" >&2; exit 1; }
	@touch $@

# The tracked lock records anvil's optional package for every platform, so `npm install`
# installs exactly what it pins and leaves it byte-for-byte unchanged (checked on a fresh
# clone and on an existing node_modules). `npm install` rather than `npm ci`: ci would delete
# node_modules (and the anvil in use) each time the lock's timestamp changes.
$(STAMP_NPM): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	@git diff --quiet -- package-lock.json 2>/dev/null || \
	  echo "note: npm rewrote package-lock.json; please report it (git diff package-lock.json)" >&2
	@touch $@

# Compilation is cached under build/ by the hash of every input; a no-op when nothing changed.
contracts: $(STAMP_PY) $(STAMP_NPM)
	$(PY) -m postmortem.devchain.compile

demo: setup
	$(VENV)/bin/postmortem demo

# The report test opens the HTML in a real headless Chromium (Debian's package). Installed
# here when missing and when this user may (root with apt-get); otherwise that test says why
# it is skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian chromium for the report test ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "could not install chromium; the browser test will be skipped"; \
	  else echo "chromium not found; the browser test will be skipped (apt-get install chromium)"; fi; }

# pytest's exit 5 (no tests collected) must fail, never pass silently.
test: setup browser
	@$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# The tests that need no local chain (about two minutes on 2 cores): `chain` marks the others.
test-fast: $(STAMP_PY)
	@$(PY) -m pytest -q -m "not chain and not slow" $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Every benchmark beside its baseline; BENCH=full for the goal sizes (see benchmarks/README.md).
bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build data/devchain data/warehouse data/reports .pytest_cache
