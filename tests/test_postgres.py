"""A PostgreSQL gradebook: the same grades as SQLite, manual grades kept, two graders at once.

The server is Debian's PostgreSQL, started here: ``initdb`` in a temporary folder as the
unprivileged ``postgres`` user (when the tests run as root), listening on 127.0.0.1 and a Unix
socket in that folder, stopped at the end.
"""
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from nbgrader.api import Gradebook
from sqlalchemy import create_engine, text

from assignment.gradebook import cell_scores, ensure_assignment
from assignment.nbgrader_cli import nbgrader_env
from assignment.sandbox import bwrap_works

from .conftest import CLASS_STUDENTS, class_course, run_module, snapshot
from .hostile import after_act7, good_notebook, write
from .test_fan_out import assert_same_grading, free_port, stop_group

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(not BINARIES, reason="PostgreSQL is not installed (make postgres)")


def as_postgres(command, check=True):
    """Run a server command as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=check, capture_output=True, text=True)


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL server of our own; yields a function making a new empty database's URL."""
    folder = Path(tempfile.mkdtemp(prefix="pa2-postgres-"))  # in /tmp: the postgres user must reach it
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (folder, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    bin_dir = BINARIES[-1]
    port = free_port()
    as_postgres([f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    admin = None
    try:  # from here on the server is stopped whatever fails
        as_postgres([f"{bin_dir}/pg_ctl", "-D", str(data), "-w", "-l", str(folder / "server.log"), "-o",
                     f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets}", "start"])
        admin = create_engine(f"postgresql://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")

        def new_database(name):
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            return f"postgresql://postgres@127.0.0.1:{port}/{name}"

        yield new_database
    finally:
        if admin is not None:
            admin.dispose()
        # check=False: if the start failed there is nothing to stop
        as_postgres([f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_class(postgres_server, tmp_path_factory):
    """CLASS_STUDENTS graded into a PostgreSQL gradebook."""
    url = postgres_server("pa2_class")
    course = class_course(tmp_path_factory.mktemp("postgres_class"))
    result = run_module(course, "grade", env={"PA2_DB_URL": url})
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (course / "gradebook.db").exists() or _sqlite_is_empty(course)
    return {"course": course, "url": url}


def _sqlite_is_empty(course):
    """Whether the course's SQLite gradebook, if one was made, holds no submission: grading wrote them to PostgreSQL."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return not gb.students


def test_postgres_gradebook_holds_the_same_grades_as_sqlite(postgres_class, serial_class):
    found = snapshot(postgres_class["course"], postgres_class["url"])
    assert_same_grading(found, serial_class)


def test_a_manual_grade_survives_grading_again(postgres_class):
    course, url = postgres_class["course"], postgres_class["url"]
    env = {"PA2_DB_URL": url}
    manual = [g for g, (score, _) in cell_scores("correct_alternative", url).items() if score is None]
    assert manual
    with Gradebook(url) as gb:  # what formgrader does when a grader scores a cell
        for name in manual:
            grade = gb.find_grade(name, "clustering", "pa2_clustering", "correct_alternative")
            grade.manual_score = grade.max_score - 1 if grade.max_score > 1 else grade.max_score
            grade.needs_manual_grade = False
        gb.db.commit()
    expected = {g: s for g, s in cell_scores("correct_alternative", url).items()}
    assert all(expected[g][0] is not None for g in manual)
    # grade again as it is, then from scratch (--force), then again (which rewrites grades.csv)
    for args in ((), ("--force", "correct_alternative"), ()):
        result = run_module(course, "grade", *args, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert cell_scores("correct_alternative", url) == expected, args
        if not args:
            row = snapshot(course, url)["rows"]["correct_alternative"]
            assert row["status"] == "graded" and float(row["score"]) == sum(s for s, _ in expected.values())


def test_two_graders_grading_different_students_at_once(postgres_server, serial_class, tmp_path):
    """Two coordinators, each grading half of the class into one PostgreSQL gradebook at the same time."""
    url = postgres_server("pa2_two_graders")
    course = class_course(tmp_path / "two_graders")
    env = nbgrader_env({"PA2_DB_URL": url})
    halves = (["correct_alternative", "invalid_json"], ["seed_transcript", "untouched_release"])
    ensure_assignment(url, course)  # as `make release` does before anyone grades
    graders = []
    try:
        for half in halves:
            graders.append(subprocess.Popen(
                [sys.executable, "-m", "assignment.grade", "--workers", "1", "--force", *half], cwd=course,
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True))
        for grader in graders:
            out, err = grader.communicate(timeout=900)
            assert grader.returncode == 0, err[-3000:]
    finally:
        for grader in graders:
            stop_group(grader)
    engine = create_engine(url)
    with engine.connect() as connection:
        counts = dict(connection.execute(text(
            "SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY student_id")).all())
    engine.dispose()
    graded = [s for s in CLASS_STUDENTS if serial_class["rows"][s]["status"] != "failed"]
    assert counts == {s: 1 for s in graded}
    for student in graded:
        assert cell_scores(student, url) == serial_class["scores"][student], student


PROBE = '''
import os, socket
print("PROBE url:", os.environ.get("PA2_DB_URL"))
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=3).close()
    print("PROBE database: reachable")
except OSError:
    print("PROBE database: unreachable")
'''


def test_the_grading_kernel_gets_no_credentials_and_no_network(postgres_server, tmp_path):
    url = postgres_server("pa2_probe")
    port = url.rsplit(":", 1)[1].split("/")[0]
    course = class_course(tmp_path / "probe")
    write(course / "submitted" / "probe", good_notebook(act7_k_means_k2=after_act7(PROBE.replace("PORT", port))))
    result = run_module(course, "grade", "probe", env={"PA2_DB_URL": url})
    assert result.returncode == 0, result.stderr[-3000:]
    graded = (course / "autograded" / "probe" / "pa2_clustering" / "clustering.ipynb").read_text()
    assert "PROBE url: None" in graded
    if bwrap_works():
        assert "PROBE database: unreachable" in graded
    with Gradebook(url) as gb:  # while the coordinator did record the grades there
        assert gb.find_submission("pa2_clustering", "probe").score > 0
