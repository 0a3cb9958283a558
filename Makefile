# One entry point. On a fresh machine:  make book   (the book)   and   make test   (the tests).
# Both create the virtual environment .venv and install everything on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The data mirror: ../shared/data when present (CI and development), else files are downloaded.
export UQLIB_DATA_MIRROR ?= $(wildcard $(abspath ../shared/data))

.PHONY: book book-fast test lint notebooks data benchmarks clean clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[book,dev]"
	touch $(STAMP)

data: $(STAMP)  ## resolve and verify every input file of data/manifest.toml
	$(PY) -m uqlib.paper.data

book: data  ## every notebook with the full profile, then render _build/html (each step timed); no benchmarks
	$(PY) -m uqlib.paper.book build --profile full

book-fast: data  ## the same with the notebooks' fast defaults
	$(PY) -m uqlib.paper.book build --profile fast

test: data  ## unit tests, then every notebook with its fast defaults (nbmake)
	$(PY) -m pytest tests notebooks --nbmake --nbmake-timeout=1200

lint: $(STAMP)  ## ruff on the library, tests, benchmarks and the notebooks' paired .py files
	$(PY) -m ruff check uqlib tests benchmarks notebooks/*.py

notebooks: $(STAMP)  ## write each notebook's .ipynb from its paired percent-format .py (the source)
	$(PY) -m jupytext --to ipynb --update notebooks/*.py

benchmarks: data  ## run every benchmark; each saves its figures with date, machine, load and commit
	$(PY) benchmarks/run_all.py

clean:  ## executed notebooks, results and the rendered book (caches stay)
	rm -rf _build book/notebooks results

clean-cache:  ## computed caches (design matrices, labels, active sets)
	rm -rf data/cache
