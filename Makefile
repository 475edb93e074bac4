# adcourse — set-up, book, tests. Every target sets up .venv first (idempotent).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.adcourse-installed
SUBMISSIONS ?= submissions
GRADEBOOK   ?= gradebook.csv
GRADE_ARGS  ?=

.PHONY: help setup book test test-fast lab exercises grade bench browser clean

help:
	@echo "make book       set up .venv and build the HTML book (every chapter executed, strict)"
	@echo "make test       set up .venv and run the whole test suite (includes the strict book build)"
	@echo "make test-fast  unit tests only (no notebooks, no book, no browser)"
	@echo "make lab        JupyterLab at the repository root (exercises/ and book/; chapters open as notebooks)"
	@echo "make exercises  regenerate exercises/ from solutions/"
	@echo "make grade      grade SUBMISSIONS=folder into GRADEBOOK=gradebook.csv (GRADE_ARGS='--jobs 4 ...')"
	@echo "make bench      print timings"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e ".[book,dev]"
	@touch $(STAMP)

setup: $(STAMP)

book: setup
	$(PY) scripts/build_book.py

# Chromium for the headless-browser checks (Debian package; needs root, as on CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: install it (apt-get install chromium) for the browser tests"; exit 1; fi; }

test: setup browser
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not book and not notebooks and not browser"

# JupyterLab at the root, so that exercises/ and book/ are both reachable; the app settings in
# .jupyter/lab/settings/overrides.json make the chapters (book/*.md) open as notebooks
# (jupytext) by default. A user's own JupyterLab settings still take precedence.
LAB_SETTINGS := $(CURDIR)/.jupyter/lab/settings
lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) --LabApp.app_settings_dir=$(LAB_SETTINGS) \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

exercises: setup
	$(PY) -m adcourse.course.exercises

grade: setup
	@test -d "$(SUBMISSIONS)" || { echo "no folder $(SUBMISSIONS): make grade SUBMISSIONS=path/to/folder"; exit 1; }
	@command -v bwrap >/dev/null 2>&1 || echo "note: bubblewrap is missing (apt-get install bubblewrap): the notebooks will run without a sandbox"
	$(VENV)/bin/adcourse grade $(SUBMISSIONS) --out $(GRADEBOOK) $(GRADE_ARGS)

bench: setup
	$(PY) scripts/bench.py

clean:
	rm -rf book/_build book/_vendor .pytest_cache
