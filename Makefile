# Two entry points for a fresh machine (Python 3.11 is all it needs):
#   make demo   creates .venv, installs the project, runs the main job on the embedded default:
#               the synthetic corpus, then the Task 1 and Task 2 benchmarks' smoke preset
#   make test   creates .venv, installs the project with test tools, runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-slow bench-corpus clean-cache

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m datamodules.synthetic --brief
	$(PY) benchmarks/task1.py --preset smoke
	$(PY) benchmarks/task2.py --preset smoke

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow

bench-corpus: $(VENV)/.installed
	$(PY) benchmarks/corpus_generation.py

clean-cache:
	rm -rf .cache
