"""The graded class as data: one ``Result`` per graded submission, read for the report and the LMS export.

What a person decided comes from the gradebook (nbgrader's ``Gradebook`` API at
``gradebook.db_url(root)``): every cell's score, so manual grades entered in formgrader count.
What only the grader knows comes from ``autograded/<student>/grading.json``: ``failed`` (nothing
could be scored), the tampering scan's findings that make a submission ``flagged`` (the score
stands, since every verdict is decided outside the kernel), its notes, and the seconds grading
took; the status and reason are made from both, as ``grades.csv`` makes them. A failed submission has no score here, never 0.
"""
import json
from dataclasses import dataclass, field

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from . import ASSIGNMENT, NOTEBOOK, ROOT
from .gradebook import db_url, scores_in
from .outputs import course_paths, row_of

#: Statuses without a score. A ``flagged`` submission keeps its score: the verdicts are decided
#: outside the kernel, so the tampering scan only asks a person to look (assignment.tampering).
NOT_SCORED = ("failed",)
#: Cells of the grader's own machinery (the hidden reference code), not tests of the student.
GRADER_PREFIX = "grader_"


@dataclass
class Result:
    """One graded submission.

    ``cells`` maps grade_id -> (score, max_score); score is None while the cell waits for a
    manual grade. ``score`` is None for failed submissions (never 0).
    """
    student_id: str
    status: str
    reason: str
    score: float = None
    max_score: float = None
    cells: dict = field(default_factory=dict)
    seconds: float = None

    @property
    def counted(self):
        """Whether the scores may enter class statistics and the LMS (not failed)."""
        return self.status not in NOT_SCORED and self.score is not None

    @property
    def pending(self):
        """Points that still wait for a manual grade."""
        return sum(m for s, m in self.cells.values() if s is None)


def records(root=ROOT):
    """Map student_id -> grading record (``autograded/<student>/grading.json``), sorted by id."""
    paths = sorted((root / "autograded").glob("*/grading.json"))
    return {p.parent.name: json.loads(p.read_text()) for p in paths}


def _cell_scores(gb, student_id):
    notebook = gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, student_id)
    return {g.name: (None if g.needs_manual_grade else g.score, g.max_score) for g in notebook.grades}


def load(root=ROOT):
    """The ``Result`` of every submission that has a grading record, sorted by student_id."""
    results, paths = [], course_paths(root)
    with Gradebook(db_url(root)) as gb:
        for student_id, record in records(root).items():
            row = record["row"]
            result = Result(student_id, row["status"], row["reason"], seconds=record.get("seconds"))
            if row["status"] not in NOT_SCORED:
                try:
                    result.cells, scores = _cell_scores(gb, student_id), scores_in(gb, student_id)
                except MissingEntry:
                    result.status, result.reason = "failed", "autograded notebook missing from the gradebook"
                else:
                    result.score = sum(s for s, _ in result.cells.values() if s is not None)
                    result.max_score = sum(m for _, m in result.cells.values())
                    # the status and reason as grades.csv has them now: manual grades count, a flag stays
                    now = row_of(paths, student_id, scores, record.get("notes", []), record.get("flag", ""))
                    result.status, result.reason = now.status, now.reason
            results.append(result)
    return results


def test_cells(root=ROOT):
    """The autograded test cells, in notebook order: [(grade_id, target, points)].

    Test cells are grade cells that are not answers; the grader's own cells (``grader_*``) are
    left out. ``target`` is the answer cell the test checks: the longest answer grade_id that
    starts the test's grade_id (``update_centroids`` for ``update_centroids_empty_cluster``),
    else the test's first word (``act8`` for ``act8_k1_losses``).
    """
    release = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4).cells
    order = [c.metadata.get("nbgrader", {}).get("grade_id") for c in release]
    with Gradebook(db_url(root)) as gb:
        notebook = gb.find_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT)
        answers = {c.name for c in notebook.solution_cells}
        cells = [(c.name, c.max_score) for c in notebook.grade_cells
                 if c.name not in answers and not c.name.startswith(GRADER_PREFIX)]
    cells.sort(key=lambda cell: order.index(cell[0]) if cell[0] in order else len(order))
    return [(name, target_of(name, answers), points) for name, points in cells]


def target_of(grade_id, answers):
    """The answer a test checks: the longest of ``answers`` that prefixes ``grade_id`` + "_"."""
    prefixes = [a for a in answers if grade_id.startswith(a + "_")]
    return max(prefixes, key=len) if prefixes else grade_id.split("_")[0]
