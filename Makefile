# PA2 Clustering course repository. `make` sets everything up and runs the main job:
# build and check the release, autograde submitted/, write feedback/ and grades.csv.
PYTHON3 ?= python3
VENV    := .venv
BIN     := $(abspath $(VENV))/bin
PYTHON  := $(BIN)/python
# nbgrader runs `alembic` when it creates the gradebook: the venv's bin/ must come first.
export PATH := $(BIN):$(PATH)
export MPLBACKEND := Agg

.PHONY: all setup data release examples grade mutants test clean

all: grade

$(VENV)/.installed: requirements.txt
	$(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

setup: $(VENV)/.installed

## Rewrite source/pa2_clustering/simulated_data.npy from its seeded generator.
data: setup
	$(PYTHON) -m assignment.data

## Data check, nbgrader generate_assignment, nbgrader validate (source passes, release fails).
release: setup
	$(PYTHON) -m assignment.release

## Rebuild submitted/ from the answer files in examples/ and the release.
examples: setup
	$(PYTHON) -m assignment.examples

## Autograde everything in submitted/, write feedback/ and grades.csv, print a summary.
grade: release
	$(PYTHON) -m assignment.grade

## Grade every entry of the catalogue of student implementations through nbgrader.
mutants: setup
	$(PYTHON) -m assignment.mutants

test: setup
	$(PYTHON) -m pytest -q tests

clean:
	rm -rf autograded/*/ feedback/*/ gradebook.db grades.csv .mutants
