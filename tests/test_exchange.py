"""The course exchange (nbgrader_config.py: Exchange.root) works without JupyterHub."""
import getpass
import os
import stat

from assignment import ASSIGNMENT, NOTEBOOK
from assignment.nbgrader_cli import run_nbgrader

from .conftest import copy_course


def test_release_fetch_submit_collect_through_the_course_exchange(tmp_path):
    """An instructor releases, a student on the same machine fetches and submits, the
    instructor collects: the submission lands in submitted/<user>/ as nbgrader's layout wants."""
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
