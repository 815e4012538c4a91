# PA2 Clustering course repository. `make` sets everything up and runs the main job:
# build and check the release, autograde submitted/, write feedback/ and grades.csv.
PYTHON3 ?= python3
VENV    := .venv
BIN     := $(abspath $(VENV))/bin
PYTHON  := $(BIN)/python
# nbgrader runs `alembic` when it creates the gradebook: the venv's bin/ must come first.
export PATH := $(BIN):$(PATH)
export MPLBACKEND := Agg
# DB=postgresql://user@host/db puts the gradebook on a database server (default: SQLite gradebook.db).
ifdef DB
export PA2_DB_URL := $(DB)
endif

# WORKERS=n grades on n local worker processes (default: one per core; never more than the submissions); SCHEDULER=tcp://host:8786
# sends the work to a running Dask cluster instead (README: Grading on several machines).
WORKERS   ?=
SCHEDULER ?=
GRADE_FLAGS = $(if $(WORKERS),--workers $(WORKERS)) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

.PHONY: all setup sandbox postgres scheduler worker check-cluster bench feedback exchange browser rubric data release examples grade mutants report report-screenshot feedback-screenshot export collect test clean

all: grade

## The pinned packages, then the course tooling itself (pyproject.toml) in editable mode: every
## program of the venv (dask scheduler and workers, nbgrader, jupyter, pytest) imports `assignment`
## from this clone, with no PYTHONPATH. setuptools (pinned) builds it, without a network.
## --no-deps: requirements.txt pins every package, and leaves out rfc3987-syntax (see the README's
## Dependencies); tests/test_venv.py checks with `pip check` that nothing else is missing.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON3) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable .
	touch $@

setup: $(VENV)/.installed sandbox exchange

# $(call apt_ensure,TEST,PACKAGE,NOTE): when the shell test TEST fails, install Debian's PACKAGE
# (as root with apt), and print NOTE if it is still missing. No commas in the arguments.
define apt_ensure
	@$(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && apt-get install -y -qq $(2)) >/dev/null 2>&1 || true; \
	  fi; \
	  $(1) >/dev/null 2>&1 || echo "note: $(3)"; }
endef

## bubblewrap sandboxes the grading kernel; install it where we may (root with apt), else warn.
sandbox:
	$(call apt_ensure,command -v bwrap,bubblewrap,bubblewrap (bwrap) is missing: grading will run student code without a sandbox (see README))

## The nbgrader exchange (nbgrader_config.py: Exchange.root), world-writable as nbgrader makes it,
## so formgrader opens without a warning and release_assignment / collect work without JupyterHub.
exchange:
	@mkdir -p exchange && chmod 0777 exchange

## Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	$(call apt_ensure,command -v chromium,chromium,chromium is missing: the browser tests will be skipped (apt install chromium))

## rubric/pa2_clustering.html: every manually graded cell's question, model answer and grading notes.
rubric: setup
	$(PYTHON) -m assignment.rubric

## Rewrite source/pa2_clustering/simulated_data.npy from its seeded generator.
data: setup
	$(PYTHON) -m assignment.data

## Data check, nbgrader generate_assignment, nbgrader validate (source passes, release fails).
## A file target: rebuilt only when what it is made from changed (the master notebook and its data,
## the course config, the course tooling, the installed packages), so grading again pays nothing for
## it. A release that fails its checks is deleted (.DELETE_ON_ERROR), so the next run builds it again.
RELEASE        := release/pa2_clustering/clustering.ipynb
RELEASE_INPUTS := $(wildcard source/pa2_clustering/*) nbgrader_config.py $(wildcard assignment/*.py) $(VENV)/.installed
.DELETE_ON_ERROR:
$(RELEASE): $(RELEASE_INPUTS)
	$(PYTHON) -m assignment.release
	@touch $@

release: setup $(RELEASE)

## Rebuild submitted/ from the answer files in examples/ and the release.
examples: setup
	$(PYTHON) -m assignment.examples

## Autograde everything in submitted/ on every core (or the cluster at SCHEDULER), write
## feedback/ and grades.csv, print a summary. With SCHEDULER the cluster is checked first, so that
## a machine that cannot grade stops the run before release or grading write anything.
grade: $(if $(SCHEDULER),check-cluster) release
	$(PYTHON) -m assignment.grade $(GRADE_FLAGS)

## Whether the scheduler and every worker at SCHEDULER run this grader (same assignment/ files);
## else one message naming each machine that cannot and what to run there, and exit status 2.
check-cluster: setup
	@test -n "$(SCHEDULER)" || { echo "usage: make check-cluster SCHEDULER=tcp://host:8786"; exit 2; }
	$(PYTHON) -m assignment.fan_out $(SCHEDULER)

## After grading by hand in formgrader: write every student's feedback again from the gradebook.
feedback: setup
	$(PYTHON) -m assignment.feedback

## The scheduler of a grading cluster, on one host that the grading machines and the coordinator
## reach at HOST:PORT (README: Grading on several machines). A submission that kills 3 workers in a
## row is given up, as on the local cluster (2 allowed failures: ALLOWED_FAILURES in assignment/fan_out.py).
HOST ?=
PORT ?= 8786
scheduler: setup
	DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=2 DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION=1.0 $(BIN)/dask scheduler $(if $(HOST),--host $(HOST)) --port $(PORT) --no-dashboard

## A Dask worker for a grading cluster: run on each grading machine, in its clone of this repository.
worker: setup
	@test -n "$(SCHEDULER)" || { echo "usage: make worker SCHEDULER=tcp://host:8786"; exit 2; }
	$(BIN)/dask worker $(SCHEDULER) --nworkers $(or $(WORKERS),$$(nproc)) --nthreads 1 --no-dashboard --preload assignment.warm_kernels

## Stock nbgrader against this grader on a class of N submissions (default 40): prints the ratios.
bench: setup release
	$(PYTHON) -m assignment.bench $(if $(N),--size $(N))

## PostgreSQL from Debian's packages, for the tests of a PostgreSQL gradebook (started by the tests).
postgres:
	$(call apt_ensure,ls /usr/lib/postgresql/*/bin/initdb,postgresql,PostgreSQL is missing: its tests will be skipped (apt install postgresql))

## Grade every entry of the catalogue of student implementations through nbgrader.
mutants: setup
	$(PYTHON) -m assignment.mutants $(if $(WORKERS),--workers $(WORKERS))

## After grading. ROSTER: student_id, name, email, canvas_id, sis_user_id, sis_login_id, section.
ROSTER ?= roster.csv
LMS    ?= canvas
## The number in the Canvas assignment's URL; empty (the default): Canvas matches the column by its title.
CANVAS_ASSIGNMENT_ID ?=

## reports/pa2_clustering/: tests.csv, students.csv, similarity.csv and report.html.
report: grade
	$(PYTHON) -m assignment.report

## docs/report.png, the README's picture of the report, taken by headless chromium.
report-screenshot: report browser
	$(PYTHON) -m assignment.screenshot reports/pa2_clustering/report.html docs/report.png --height 1250

## docs/feedback-summary.png, the README's picture of the summary on the seed transcript's feedback page.
feedback-screenshot: grade browser
	$(PYTHON) -m assignment.screenshot feedback/seed_transcript/pa2_clustering/clustering.html docs/feedback-summary.png --width 900 --selector '#pa2-summary'

## exports/pa2_clustering_$(LMS).csv for Canvas (LMS=canvas) or Moodle (LMS=moodle); prints where.
export: grade
	$(PYTHON) -m assignment.lms $(LMS) --roster $(ROSTER) $(if $(CANVAS_ASSIGNMENT_ID),--canvas-assignment-id $(CANVAS_ASSIGNMENT_ID))

## make collect ZIP=submissions.zip: a Canvas "Download submissions" zip into submitted/<student_id>/.
collect: setup
	@test -n "$(ZIP)" || { echo "usage: make collect ZIP=submissions.zip"; exit 2; }
	$(PYTHON) -m assignment.collect $(ZIP) --roster $(ROSTER)

test: setup browser postgres
	$(PYTHON) -m pytest -q --durations=15 tests

clean:
	rm -rf autograded/*/ feedback/*/ gradebook.db grades.csv .grading
