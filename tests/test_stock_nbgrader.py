"""Plain ``nbgrader autograde`` on this course grades in the kernel, as nbgrader always does: it
never gives an honest submission a point that ``make grade`` (verdicts outside the kernel) would
not give, and ``make grade`` never runs a test or the reference code in the kernel."""
import shutil

import nbformat

from assignment import ASSIGNMENT, NOTEBOOK
from assignment.gradebook import cell_scores
from assignment.mutants import automatic_cells
from assignment.nbgrader_cli import run_nbgrader

STUDENTS = ("correct_alternative", "seed_transcript")


def test_plain_nbgrader_autograde_gives_honest_submissions_the_same_points(graded_course, tmp_path):
    url = f"sqlite:///{graded_course / 'gradebook.db'}"
    ours = {s: cell_scores(s, url) for s in STUDENTS}
    course = tmp_path / "course"
    for part in ("assignment", "source", "release", "submitted", "nbgrader_config.py", "gradebook.db"):
        copy = shutil.copytree if (graded_course / part).is_dir() else shutil.copy
        copy(graded_course / part, course / part)
    for student in STUDENTS:
        run_nbgrader("autograde", ASSIGNMENT, "--student", student, "--force", cwd=course, timeout=600)
    url = f"sqlite:///{course / 'gradebook.db'}"
    auto = automatic_cells()
    for student in STUDENTS:
        stock = cell_scores(student, url)
        assert {g: stock[g] for g in auto} == {g: ours[student][g] for g in auto}, student
        # stock nbgrader ran the test cells in the kernel (they have execution counts) ...
        nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / NOTEBOOK, as_version=4)
        assert all(c.execution_count for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in auto)


def test_make_grade_runs_no_test_and_no_reference_code_in_the_kernel(graded_course):
    auto = automatic_cells()
    for student in STUDENTS:
        nb = nbformat.read(graded_course / "autograded" / student / ASSIGNMENT / NOTEBOOK, as_version=4)
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        assert [g for g in auto if cells[g].execution_count is not None] == [], "judged outside, never run in the kernel"
        assert cells["grader_reference_code"].execution_count is None and cells["grader_reference_code"].outputs == []
