# The two commands a user needs: `make test` and `make demo`.
# `make test` runs lint, types and every test not marked slow; `make test-slow`
# runs the slow ones (CI runs both: .ci/run). Contributors iterating on a
# change: `make test-fast` (lint, then the tests not marked slow, stopping at
# the first failure).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test test-slow test-fast demo bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: $(VENV)/.installed
	$(PY) -m ruff format --check morphax tests benchmarks examples tools
	$(PY) -m ruff check morphax tests benchmarks examples tools
	$(PY) -m mypy
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow"

# The heavier tests (one-shot end to end and resume, SIGKILLed drivers, ...).
test-slow: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadgroup -q -m slow

# Fast feedback: lint, and every test not marked slow (doctests included), stop at the first failure.
test-fast: $(VENV)/.installed
	$(PY) -m ruff format --check morphax tests benchmarks examples tools
	$(PY) -m ruff check morphax tests benchmarks examples tools
	$(PY) -m pytest -q -x -m "not slow"

# A real architecture search on the embedded 8x8 digits: regularized evolution
# over a CNN space, every child trained with JAX. Rerunning resumes the study.
demo: $(VENV)/.installed
	mkdir -p demo-output
	$(VENV)/bin/morphax search --space cnn --algorithm evolution --population 8 \
		--trials 20 --epochs 3 --lr 1e-2 --max-depth 2 --widths 8,16,32 \
		--store demo-output/study.db --plot demo-output/study.png

bench: $(VENV)/.installed
	$(PY) benchmarks/symbolic_vs_pyglove.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis demo-output
