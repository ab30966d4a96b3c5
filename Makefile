# The two commands a user needs: `make test` (and, later, `make demo`).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test lint bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: $(VENV)/.installed
	$(PY) -m ruff format --check morphax tests benchmarks examples tools
	$(PY) -m ruff check morphax tests benchmarks examples tools
	$(PY) -m mypy
	$(PY) -m pytest -n 2 -q

bench: $(VENV)/.installed
	$(PY) benchmarks/symbolic_vs_pyglove.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
