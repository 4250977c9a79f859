# One command to set up and run the main job, one to set up and run the tests.
#   make run    -> creates .venv, installs noisyseg, runs the ADELE study on the built-in synthetic data
#   make test   -> creates .venv, installs noisyseg[test], runs the whole test suite
#   make trial  -> one training run (CE, synthetic data, morph noise) without Ray
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-noisyseg

.PHONY: setup run trial test smoke clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(PY) -m study.run search_spaces/adele.yaml --storage runs/quickstart-$$(date +%Y%m%d-%H%M%S)

trial: $(STAMP)
	$(PY) -m trainables.run examples/synthetic.yaml --out runs/trial-$$(date +%Y%m%d-%H%M%S)

smoke: $(STAMP)
	$(PY) -m trainables.run examples/tiny.yaml --out runs/smoke-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf runs .pytest_cache
