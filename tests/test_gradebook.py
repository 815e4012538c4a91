"""The gradebook module's shortcuts around nbgrader: they must change nothing but the time taken."""
import subprocess

from nbgrader.api import Gradebook
from nbgrader.dbutil import _temp_alembic_ini
from sqlalchemy import text

from assignment.gradebook import PRIVATE_GRADEBOOK_FOLDERS, alembic_head
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
