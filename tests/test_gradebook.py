"""The gradebook module's shortcuts around nbgrader: they must change nothing but the time taken."""
import copy
import shutil
import subprocess

import pytest
from nbgrader.api import Gradebook
from nbgrader.dbutil import _temp_alembic_ini
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from assignment.gradebook import PRIVATE_GRADEBOOK_FOLDERS, SaveAutoGradesAtOnce, alembic_head
from assignment.nbgrader_cli import nbgrader_env


def test_new_gradebooks_get_the_schema_version_alembic_itself_reports(tmp_path):
    """alembic_head() is what nbgrader's own `alembic heads` process reports, and what a new gradebook is stamped with."""
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'probe.db'}") as ini:  # as nbgrader.api.get_alembic_version does
        printed = subprocess.run(["alembic", "-c", ini, "heads"], capture_output=True, text=True, check=True,
                                 env=nbgrader_env()).stdout
    expected = printed.split("\n")[0].split(" ")[0]
    assert expected and alembic_head() == expected, f"expected {expected!r}, got {alembic_head()!r}"
    with Gradebook(f"sqlite:///{tmp_path / 'new.db'}") as gb:
        stamped = gb.db.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert stamped == expected, f"expected a new gradebook stamped {expected!r}, got {stamped!r}"


def test_only_private_gradebooks_skip_waiting_for_the_disk(tmp_path):
    """A worker's private gradebook runs with synchronous=OFF; any other keeps SQLite's FULL (2)."""
    private, course = tmp_path / "pa2-grade-x", tmp_path / "course"
    private.mkdir(), course.mkdir()
    PRIVATE_GRADEBOOK_FOLDERS.add(str(private))
    try:
        modes = {}
        for label, folder in (("private", private), ("course", course)):
            with Gradebook(f"sqlite:///{folder / 'gradebook.db'}") as gb:
                modes[label] = gb.db.execute(text("PRAGMA synchronous")).scalar()
    finally:
        PRIVATE_GRADEBOOK_FOLDERS.discard(str(private))
    assert modes == {"private": 0, "course": 2}, f"expected private 0 and course 2, got {modes}"


def test_gradebooks_on_one_url_share_compiled_sql_but_never_a_connection(tmp_path):
    """Every Gradebook nbgrader opens on a url gets the same engine (its SQL compiled once), yet
    reads the file that is at the url when it opens: one replaced since, even while another
    Gradebook is still open, is never read through an old connection."""
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as first:
        first.add_student("before")
    left_open = Gradebook(url)
    assert [s.id for s in left_open.students] == ["before"]
    left_open.db.commit()  # its connection goes back to the engine's pool, if it has one
    compiled = len(left_open.engine._compiled_cache)
    (tmp_path / "gradebook.db").rename(tmp_path / "old.db")
    with Gradebook(url) as second:
        second.add_student("after")
        assert second.engine is left_open.engine is first.engine
        assert len(second.engine._compiled_cache) == compiled, "expected no SQL compiled again"
        assert [s.id for s in second.students] == ["after"], "expected the new file, not the one left open"
    left_open.close()
    with Gradebook(f"sqlite:///{tmp_path / 'old.db'}") as old:
        assert [s.id for s in old.students] == ["before"]


def _rows(url, student):
    with Gradebook(url) as gb:
        notebook = gb.find_submission_notebook("clustering", "pa2_clustering", student)
        return ({g.name: (g.auto_score, g.manual_score, g.needs_manual_grade) for g in notebook.grades},
                {c.name: c.auto_comment for c in notebook.comments})


def _failing_copy(notebook):
    """The notebook with its first passing automatic test cell failed, so saving changes a score."""
    import nbformat
    nb = nbformat.from_dict(copy.deepcopy(notebook))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
                and not c.metadata.nbgrader.get("solution") and c.metadata.nbgrader.get("points")
                and not any(o.output_type == "error" for o in c.outputs))
    cell.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue="expected 1, got 2", traceback=[])]
    return nb, cell.metadata.nbgrader.grade_id


def test_scores_saved_in_one_transaction_are_the_scores_nbgrader_saves(graded_course, tmp_path):
    """Saving an autograded notebook at once writes exactly what nbgrader's SaveAutoGrades writes, cell by cell."""
    import nbformat
    from nbgrader.preprocessors import SaveAutoGrades
    student = "correct_alternative"
    notebook = nbformat.read(graded_course / "autograded" / student / "pa2_clustering" / "clustering.ipynb", as_version=4)
    changed, grade_id = _failing_copy(notebook)
    saved, selects = {}, {}
    for label, saver in (("nbgrader", SaveAutoGrades), ("at once", SaveAutoGradesAtOnce)):
        url = f"sqlite:///{shutil.copy(graded_course / 'gradebook.db', tmp_path / (label + '.db'))}"
        before = _rows(url, student)
        statements = []
        count = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
        event.listen(Engine, "before_cursor_execute", count)
        try:
            saver().preprocess(copy.deepcopy(changed), {"nbgrader": {"db_url": url, "assignment": "pa2_clustering",
                                                                    "notebook": "clustering", "student": student}})
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        selects[label] = sum(s.lstrip().upper().startswith("SELECT") for s in statements)
        saved[label] = _rows(url, student)
    assert before[0][grade_id][0] > 0 and saved["nbgrader"][0][grade_id][0] == 0, "expected the failed cell to lose its points"
    assert saved["at once"] == saved["nbgrader"], f"expected nbgrader's rows, got {saved['at once']}"
    assert selects["at once"] <= 10 < 60 <= selects["nbgrader"], \
        f"expected at most 10 queries at once (nbgrader: one or more a cell), got {selects}"


def test_a_notebook_that_fails_to_save_leaves_the_gradebook_as_it_was(graded_course, tmp_path, monkeypatch):
    """A save that stops halfway writes nothing: no half-scored notebook in the gradebook."""
    import nbformat
    student = "correct_alternative"
    notebook = nbformat.read(graded_course / "autograded" / student / "pa2_clustering" / "clustering.ipynb", as_version=4)
    changed, _ = _failing_copy(notebook)
    url = f"sqlite:///{shutil.copy(graded_course / 'gradebook.db', tmp_path / 'gradebook.db')}"
    before = _rows(url, student)
    saver, seen = SaveAutoGradesAtOnce(), []

    def score_then_stop(cell, resources):
        seen.append(cell.metadata.nbgrader.grade_id)
        if len(seen) == 20:
            raise OSError("the disk is full")
        type(saver)._add_score(saver, cell, resources)
    monkeypatch.setattr(saver, "_add_score", score_then_stop)
    with pytest.raises(OSError):
        saver.preprocess(changed, {"nbgrader": {"db_url": url, "assignment": "pa2_clustering",
                                                "notebook": "clustering", "student": student}})
    assert _rows(url, student) == before, "expected the gradebook unchanged after a save that stopped"
