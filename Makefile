# One command to set up and run the main job, one to set up and run the tests.
#   make run    -> creates .venv, installs noisyseg, runs the ADELE study on the built-in synthetic data
#   make resume -> continues the latest quick start after an interruption
#   make test   -> creates .venv, installs noisyseg[test], runs the whole test suite
#   make trial  -> one training run (CE, synthetic data, morph noise) without Ray
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-noisyseg

.PHONY: setup run resume trial test smoke clean

# pip's full output goes to $(PIPLOG); on a failure its last lines are printed and make stops.
PIPLOG := $(VENV)/pip-install.log
PIP = $(PY) -m pip install --disable-pip-version-check --no-color

$(STAMP): pyproject.toml
	@echo "creating $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "installing noisyseg[test] into $(VENV) (log: $(PIPLOG))"
	@( $(PIP) --upgrade pip && $(PIP) -e ".[test]" ) >$(PIPLOG) 2>&1 \
	  || { echo "pip install failed; last lines of $(PIPLOG):" >&2; grep -v "^WARNING: Location" $(PIPLOG) | tail -n 30 >&2; exit 1; }
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	@root=runs/quickstart-$$(date +%Y%m%d-%H%M%S); \
	echo "running the ADELE study (search_spaces/adele.yaml) into $$root/ (after an interruption: make resume)"; \
	$(PY) -m study.run search_spaces/adele.yaml --storage $$root

resume: $(STAMP)
	@exp=$$(ls -d runs/quickstart-*/*/study.yaml 2>/dev/null | sort | tail -n 1); \
	if [ -z "$$exp" ]; then echo "make resume: no quick start under runs/ to continue; run make run" >&2; exit 2; fi; \
	echo "continuing $$(dirname $$exp)"; \
	$(PY) -m study.run $$(dirname $$exp) --resume

trial: $(STAMP)
	$(PY) -m trainables.run examples/synthetic.yaml --out runs/trial-$$(date +%Y%m%d-%H%M%S)

smoke: $(STAMP)
	$(PY) -m trainables.run examples/tiny.yaml --out runs/smoke-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	@echo "running the test suite"
	@$(PY) -m pytest

clean:
	rm -rf runs .pytest_cache
