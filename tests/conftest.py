"""Shared fixtures: a throw-away copy of the course in which nbgrader may write freely."""
import subprocess
import sys
from pathlib import Path

import pytest

import nbformat

import assignment
from assignment import cpu_groups
from assignment.nbgrader_cli import nbgrader_env

def hidden_code_lines():
    """The longer lines of the master notebook's hidden tests (feedback must show none)."""
    source = nbformat.read(assignment.SOURCE_DIR / assignment.NOTEBOOK, as_version=4)
    return [line.strip() for cell in source.cells if "### BEGIN HIDDEN TESTS" in cell.source
            for line in cell.source.split("### BEGIN HIDDEN TESTS")[1].splitlines()
            if len(line.strip()) > 30]


def remove_orphaned_semaphores(since):
    """Remove the multiprocessing semaphores in /dev/shm made since ``since`` (``time.time()``)
    that no live process maps: those of Dask processes a test killed with SIGKILL on purpose,
    whose resource tracker died with them. A mapping shows the file's inode (its name in
    ``/proc/<pid>/maps`` is the one it had when made), so inodes are compared. Returns the count."""
    orphans = {}
    for path in Path("/dev/shm").glob("sem.mp-*"):
        try:
            info = path.stat()
        except OSError:
            continue
        if info.st_mtime >= since:
            orphans[info.st_ino] = path
    for maps in Path("/proc").glob("[0-9]*/maps"):
        if not orphans:
            break
        try:
            lines = maps.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) >= 6 and fields[5].startswith("/dev/shm/"):
                orphans.pop(int(fields[4]), None)
    for path in orphans.values():
        path.unlink(missing_ok=True)
    return len(orphans)


@pytest.fixture(autouse=True)
def no_stale_cpu_groups():
    """After each test, remove the CPU groups of workers it killed on purpose (SIGKILL, or a
    SIGTERM to a whole Dask process group), which could not remove their own: grading removes
    them only when its next worker starts, which after the last test is never."""
    yield
    cpu_groups.remove_stale_groups()


COURSE_FILES = ("nbgrader_config.py", "assignment", "source", "release", "examples")


def copy_course(target, submitted=True):
    """Copy what nbgrader needs of the course into ``target`` (no gradebook, no outputs)."""
    return assignment.copy_course(target, COURSE_FILES + (("submitted",) if submitted else ()))


def run_module(course, module, *args, timeout=1800, env=None):
    """Run ``python -m assignment.<module>`` inside a course copy (``env``: extra variables);
    return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", f"assignment.{module}", *args], cwd=course,
                          env=nbgrader_env(env), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A course copy in which `python -m assignment.grade` has graded the example submissions.
    Its release is the committed one (tests/test_release.py and the clone of tests/test_cluster.py
    build and check it); grading records the assignment in the new gradebook itself, as after
    `make clean`."""
    course = copy_course(tmp_path_factory.mktemp("course"))
    result = run_module(course, "grade")
    assert result.returncode == 0, result.stdout + result.stderr
    return course


def set_cell_timeout(course, seconds, grace=5):
    """Give each cell ``seconds``, and a cell that ignores the interrupt ``grace`` more, in the
    course copy's nbgrader_config.py (hang tests run faster)."""
    config = course / "nbgrader_config.py"
    text = config.read_text()
    assert "c.Execute.timeout = 60" in text
    config.write_text(text.replace("c.Execute.timeout = 60", f"c.Execute.timeout = {seconds}")
                      + f"\nc.ExecuteRecordingProgress.interrupt_grace = {grace}\n")


#: A small class: the three examples and a notebook that cannot be read.
CLASS_STUDENTS = ("correct_alternative", "seed_transcript", "untouched_release", "invalid_json")


def class_course(target):
    """A course copy holding CLASS_STUDENTS (no gradebook yet: grading records the assignment)."""
    from .hostile import build
    course = copy_course(target)
    build("invalid_json", course / "submitted" / "invalid_json", {})
    assert sorted(p.name for p in (course / "submitted").iterdir()) == sorted(CLASS_STUDENTS)
    return course


def snapshot(course, url=None):
    """Everything grading decided for a course: rows, per-cell scores and feedback, by student."""
    import csv
    from assignment.gradebook import cell_scores
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    url = url or f"sqlite:///{course / 'gradebook.db'}"
    scores = {s: cell_scores(s, url) for s, row in rows.items() if row["status"] != "failed"}
    feedback = {p.parent.parent.name: p.read_text() for p in course.glob("feedback/*/*/*.html")}
    return {"rows": rows, "scores": scores, "feedback": feedback}


@pytest.fixture(scope="session")
def serial_class(tmp_path_factory):
    """CLASS_STUDENTS graded on one worker: the reference the parallel and distributed runs must equal."""
    course = class_course(tmp_path_factory.mktemp("serial"))
    result = run_module(course, "grade", "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    return {"course": course, **snapshot(course)}
