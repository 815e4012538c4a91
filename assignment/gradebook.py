"""The gradebook: where it is, and every read and write of it by the grading tooling.

nbgrader's ``db_url``: SQLite ``gradebook.db`` in the course root by default, or the URL in the
environment variable ``PA2_DB_URL`` (``make ... DB=postgresql://...`` sets it), which
``nbgrader_config.py`` passes to formgrader and nbgrader's own commands as well.
"""
import functools
import hashlib
import os
import shutil
import sqlite3
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbgrader
import nbgrader.api
from alembic.script import ScriptDirectory
from nbgrader.api import BaseCell, Comment, Grade, Gradebook, MissingEntry
from nbgrader.converters import GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import SaveAutoGrades
from nbgrader.utils import capture_log, parse_utc
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SAWarning
from sqlalchemy.pool import NullPool
from traitlets.config.loader import PyFileConfigLoader

from . import ASSIGNMENT, NOTEBOOK, ROOT

DB_URL_VARIABLE = "PA2_DB_URL"
# nbgrader's gradebook code trips SQLAlchemy 2's autoflush warnings; they say nothing to a grader.
warnings.filterwarnings("ignore", category=SAWarning)


@functools.cache
def alembic_head():
    """The schema version nbgrader stamps into every new gradebook, read in this process.

    nbgrader's ``get_alembic_version`` starts an ``alembic heads`` process for it (2 s, most of
    the time it takes to create a gradebook, and ``alembic`` on PATH); this reads the same head
    from nbgrader's own migration scripts. ``tests/test_gradebook.py`` checks that both agree.
    """
    return ScriptDirectory(os.path.join(os.path.dirname(nbgrader.__file__), "alembic")).get_current_head()


nbgrader.api.get_alembic_version = alembic_head


@functools.lru_cache(maxsize=8)
def _engine_kept_for(url, **kwargs):
    """The engine of every ``Gradebook`` nbgrader opens on ``url`` in this process (the last 8 urls).

    nbgrader makes a new engine for each ``Gradebook``, and an engine keeps the SQL it compiled
    to itself: a worker opens about ten gradebooks per submission, the coordinator several per
    result, and each compiled the same queries again (0.09 s of a worker's CPU per submission).
    Only the engine is kept, with its compiled SQL, never a connection: an SQLite file is
    opened for each session and closed after it (``NullPool``), and ``Gradebook.close`` disposes
    of a server's connections as before. So each ``Gradebook`` reads whatever file is at the url
    when it is opened, as when it made its own engine.
    """
    if make_url(url).get_backend_name() == "sqlite":
        kwargs["poolclass"] = NullPool
    return create_engine(url, **kwargs)


nbgrader.api.create_engine = _engine_kept_for


#: Folders of this process's private, throw-away gradebooks (a worker's copy of the template).
PRIVATE_GRADEBOOK_FOLDERS = set()


@event.listens_for(Engine, "connect")
def _private_gradebook_without_fsync(connection, record):
    """A private gradebook lives for one submission and is rebuilt from the template if lost:
    SQLite need not wait for the disk there (nbgrader commits after every cell). Any other
    gradebook, the course's above all, keeps SQLite's defaults."""
    if not PRIVATE_GRADEBOOK_FOLDERS or not isinstance(connection, sqlite3.Connection):
        return
    path = connection.execute("PRAGMA database_list").fetchone()[2]
    if any(path.startswith(folder + os.sep) for folder in PRIVATE_GRADEBOOK_FOLDERS):
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = MEMORY")


def db_url(root=ROOT):
    """The gradebook URL of the course at ``root``: ``$PA2_DB_URL`` or ``sqlite:///<root>/gradebook.db``."""
    return os.environ.get(DB_URL_VARIABLE) or f"sqlite:///{root / 'gradebook.db'}"


def notebook_id():
    return NOTEBOOK[:-len(".ipynb")]


def course_config(course, url):
    """The nbgrader configuration of the course folder ``course`` (its nbgrader_config.py),
    rooted there and with the gradebook ``url``."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = url
    config.CourseDirectory.assignment_id = ASSIGNMENT
    return config


def _generate_assignment(root, url):
    """Run nbgrader's GenerateAssignment in a throw-away copy of the course at ``root``,
    recording the assignment in the gradebook ``url`` (the repository's release/ is untouched)."""
    with tempfile.TemporaryDirectory(prefix="pa2-generate-") as folder:
        course = Path(folder)
        shutil.copy2(root / "nbgrader_config.py", course / "nbgrader_config.py")
        shutil.copytree(root / "source", course / "source", ignore=shutil.ignore_patterns("__pycache__"))
        config = course_config(course, url)
        app = GenerateAssignment(coursedir=CourseDirectory(config=config), config=config)
        app.force, app.create_assignment = True, True
        result = capture_log(app)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('log', '')}{result.get('error', '')}")


def has_assignment(url):
    """Whether the gradebook ``url`` has recorded the assignment's notebooks and cells."""
    with Gradebook(url) as gb:
        try:
            return bool(gb.find_assignment(ASSIGNMENT).notebooks)
        except MissingEntry:
            return False


def ensure_assignment(url, root=ROOT):
    """Record the assignment in the gradebook ``url`` if it is not there yet (a new database)."""
    if not has_assignment(url):
        _generate_assignment(root, url)


def template_gradebook(root=ROOT, cache=None):
    """Bytes of an SQLite gradebook holding only the assignment: each worker grades against a
    private copy of it. Cached in ``cache`` (a folder) by the hash of the source notebook."""
    digest = hashlib.sha256((root / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()).hexdigest()[:16]
    cached = Path(cache or root / ".grading") / f"template-{digest}.db"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="pa2-template-") as folder:
            built = Path(folder) / "gradebook.db"
            _generate_assignment(root, f"sqlite:///{built}")
            shutil.copy2(built, cached.with_suffix(".tmp"))
            os.replace(cached.with_suffix(".tmp"), cached)
    return cached.read_bytes()


def rows_by_cell(session, model, submitted_notebook_id):
    """cell name -> the ``model`` rows (nbgrader's ``Grade`` or ``Comment``) of one submitted
    notebook, read in one query (nbgrader reads each row with its own, and each row's cell name
    with another). A name two cells share (a grade cell and a task cell may) is left out: which
    row nbgrader picks for it is nbgrader's to say."""
    rows = {}
    for row, name in (session.query(model, BaseCell.name).join(BaseCell, BaseCell.id == model.cell_id)
                      .filter(model.notebook_id == submitted_notebook_id)):
        rows[name] = None if name in rows else row
    return {name: row for name, row in rows.items() if row is not None}


class SaveAutoGradesAtOnce(SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades``, writing a notebook's scores and comments in one transaction.

    nbgrader commits after every cell (about 60 here). Each commit ends the transaction and
    expires every object read, so the next cell reads them again: about 0.15 s of CPU a notebook,
    paid by the coordinator for every submission, and a half-written notebook in the gradebook if
    the process stops between two cells. Here nbgrader's per-cell commit only flushes, and one
    commit ends the notebook. nbgrader also finds each cell's grade and comment with a query of
    its own (about 80 a notebook); here the notebook's grades and comments are read in two
    queries first, and nbgrader's lookups are answered from them. What is written, and how, is
    nbgrader's.
    """

    def preprocess(self, nb, resources):
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.db_url = resources["nbgrader"]["db_url"]
        self.gradebook = Gradebook(self.db_url)
        with self.gradebook:
            session = self.gradebook.db
            submitted = self.gradebook.find_submission_notebook(self.notebook_id, self.assignment_id, self.student_id)
            for lookup, model in (("find_grade", Grade), ("find_comment", Comment)):
                setattr(self.gradebook, lookup, self._lookup(rows_by_cell(session, model, submitted.id),
                                                             getattr(self.gradebook, lookup)))
            session.commit = session.flush  # nbgrader's per-cell commits (an attribute of this session only)
            try:
                nb, resources = super(SaveAutoGrades, self).preprocess(nb, resources)  # the cells, as nbgrader does
            except BaseException:
                del session.commit
                session.rollback()
                raise
            del session.commit
            session.commit()
        return nb, resources

    @staticmethod
    def _lookup(rows, nbgrader_lookup):
        """nbgrader's ``find_grade`` or ``find_comment`` for this notebook: from ``rows``, and
        from nbgrader's own query for a cell they lack (which raises MissingEntry as ever)."""
        def find(cell_name, notebook, assignment, student):
            row = rows.get(cell_name)
            return row if row is not None else nbgrader_lookup(cell_name, notebook, assignment, student)
        return find


def save_autograded(url, student_id, notebook, timestamp="", same_submission=False):
    """Record one autograded notebook (a NotebookNode) in the gradebook ``url``.

    nbgrader's own ``SaveAutoGrades`` scores the cells (in one transaction:
    :class:`SaveAutoGradesAtOnce`), exactly as ``nbgrader autograde`` does, and never
    overwrites manual grades: a cell graded by hand is marked for review
    again. When the submission is the very one graded before (``same_submission``, a forced
    regrade), a cell graded by hand whose automatic score did not change stays graded.
    """
    with Gradebook(url) as gb:
        gb.update_or_create_student(student_id)
        stamp = {"timestamp": parse_utc(timestamp)} if timestamp else {}
        gb.update_or_create_submission(ASSIGNMENT, student_id, **stamp)
        submitted = gb.find_submission_notebook(notebook_id(), ASSIGNMENT, student_id).id
        before = {name: (g.auto_score, g.manual_score, g.needs_manual_grade)
                  for name, g in rows_by_cell(gb.db, Grade, submitted).items()} if same_submission else {}
    resources = {"nbgrader": {"db_url": url, "assignment": ASSIGNMENT, "notebook": notebook_id(),
                              "student": student_id}}
    SaveAutoGradesAtOnce().preprocess(notebook, resources)
    if not same_submission:
        return
    with Gradebook(url) as gb:
        for name, grade in rows_by_cell(gb.db, Grade, submitted).items():
            auto, manual, pending = before[name]
            if manual is not None and not pending and grade.auto_score == auto:
                grade.needs_manual_grade = False
        gb.db.commit()


@dataclass
class Scores:
    """One submission's scores as the gradebook has them now (manual grades included)."""
    score: float
    max_score: float
    pending: list          # max scores of the cells that await manual grading
    lost: list             # grade_ids of automatic cells that lost points


def submission_scores(url, student_id):
    """The :class:`Scores` of a student's submission; raises MissingEntry if there is none."""
    with Gradebook(url) as gb:
        return scores_in(gb, student_id)


def scores_in(gb, student_id):
    """The :class:`Scores` of a student's submission, read through the open Gradebook ``gb``;
    raises MissingEntry if there is none."""
    submission = gb.find_submission(ASSIGNMENT, student_id)
    grades = [g for nb in submission.notebooks for g in nb.grades]
    return Scores(submission.score, submission.max_score,
                  [g.max_score for g in grades if g.needs_manual_grade],
                  sorted(g.name for g in grades if not g.needs_manual_grade and g.score < g.max_score))


def graded_by_hand(url, student_ids):
    """The students among ``student_ids`` whose submission has a score or a comment entered by hand."""
    found = []
    with Gradebook(url) as gb:
        for student_id in student_ids:
            try:
                notebooks = gb.find_submission(ASSIGNMENT, student_id).notebooks
            except MissingEntry:
                continue
            if any(g.manual_score is not None for nb in notebooks for g in nb.grades) or \
                    any(c.manual_comment for nb in notebooks for c in nb.comments):
                found.append(student_id)
    return found


def cell_scores(student_id, url=None):
    """Map grade_id -> (score, or None while it awaits manual grading, max_score)."""
    with Gradebook(url or db_url()) as gb:
        notebook = gb.find_submission_notebook(notebook_id(), ASSIGNMENT, student_id)
        return {g.name: (g.score if not g.needs_manual_grade else None, g.max_score) for g in notebook.grades}
