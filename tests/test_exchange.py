"""The course exchange (nbgrader_config.py: Exchange.root) works without JupyterHub."""
import getpass
import os
import stat

from assignment import ASSIGNMENT, NOTEBOOK
from assignment.nbgrader_cli import run_nbgrader

from .conftest import copy_course, run_module


def test_release_fetch_submit_collect_through_the_course_exchange(tmp_path):
    """An instructor releases, a student on the same machine fetches and submits, the
    instructor collects: the submission lands in submitted/<user>/ as nbgrader's layout wants.
    Then the README's loop goes on: the grader's feedback, and again after `make feedback`, goes
    back through the exchange with `nbgrader release_feedback`, and the student fetches it."""
    course = copy_course(tmp_path / "course", submitted=False)
    run_nbgrader("release_assignment", ASSIGNMENT, cwd=course)
    exchange = course / "exchange"
    assert stat.S_IMODE(os.stat(exchange).st_mode) == 0o777, "students must be able to write to the exchange"
    assert (exchange / "pa2_clustering_course" / "outbound" / ASSIGNMENT / NOTEBOOK).is_file()

    student = tmp_path / "student"
    student.mkdir()
    where = ["--course", "pa2_clustering_course", f"--Exchange.root={exchange}"]
    run_nbgrader("fetch_assignment", ASSIGNMENT, *where, cwd=student)
    answered = (student / ASSIGNMENT / NOTEBOOK).read_text().replace("YOUR ANSWER HERE", "Four clusters.", 1)
    (student / ASSIGNMENT / NOTEBOOK).write_text(answered)
    run_nbgrader("submit", ASSIGNMENT, *where, cwd=student)

    run_nbgrader("collect", ASSIGNMENT, cwd=course)
    collected = course / "submitted" / getpass.getuser() / ASSIGNMENT / NOTEBOOK
    assert collected.read_text() == answered

    user = getpass.getuser()
    graded = run_module(course, "grade", "--workers", "1")  # one submission
    assert graded.returncode == 0, graded.stdout + graded.stderr
    for step in ("the grader's feedback", "make feedback"):
        if step == "make feedback":
            made = run_module(course, "feedback")
            assert made.returncode == 0, made.stdout + made.stderr
        page = course / "feedback" / user / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
        for name in ("timestamp.txt", "submission_secret.txt"):
            submitted = (course / "submitted" / user / ASSIGNMENT / name).read_text()
            beside = page.with_name(name)
            assert beside.is_file() and beside.read_text() == submitted, \
                f"expected {name} beside {step}'s page as submitted, got {beside.read_text() if beside.is_file() else 'none'}"
        run_nbgrader("release_feedback", ASSIGNMENT, cwd=course)
        run_nbgrader("fetch_feedback", ASSIGNMENT, *where, cwd=student)
        fetched = sorted((student / ASSIGNMENT / "feedback").glob(f"*/{NOTEBOOK.replace('.ipynb', '.html')}"))
        assert [p.read_text() for p in fetched] == [page.read_text()], \
            f"expected the student to fetch {step}'s page, got {[str(p) for p in fetched]}"
