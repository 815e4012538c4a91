"""Shared fixtures: a throw-away copy of the course in which nbgrader may write freely."""
import subprocess
import sys

import pytest

import nbformat

import assignment
from assignment.nbgrader_cli import nbgrader_env

def hidden_code_lines():
    """The longer lines of the master notebook's hidden tests (feedback must show none)."""
    source = nbformat.read(assignment.SOURCE_DIR / assignment.NOTEBOOK, as_version=4)
    return [line.strip() for cell in source.cells if "### BEGIN HIDDEN TESTS" in cell.source
            for line in cell.source.split("### BEGIN HIDDEN TESTS")[1].splitlines()
            if len(line.strip()) > 30]


COURSE_FILES = ("nbgrader_config.py", "assignment", "source", "release", "examples")


def copy_course(target, submitted=True):
    """Copy what nbgrader needs of the course into ``target`` (no gradebook, no outputs)."""
    return assignment.copy_course(target, COURSE_FILES + (("submitted",) if submitted else ()))


def run_module(course, module, *args, timeout=1800):
    """Run ``python -m assignment.<module>`` inside a course copy; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", f"assignment.{module}", *args], cwd=course,
                          env=nbgrader_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A course copy in which `make release grade` has graded the example submissions."""
    course = copy_course(tmp_path_factory.mktemp("course"))
    result = run_module(course, "release")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_module(course, "grade")
    assert result.returncode == 0, result.stdout + result.stderr
    return course
