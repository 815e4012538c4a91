"""Autograding the example submissions: exact per-test scores, grades.csv and feedback."""
import csv

import nbformat
import pytest

from assignment import NOTEBOOK, SOURCE_DIR
from assignment.gradebook import cell_scores
from assignment.mutants import automatic_cells

from .conftest import hidden_code_lines

SOURCE = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
GRADED = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in SOURCE.cells
          if c.metadata.get("nbgrader", {}).get("grade")}
AUTO = automatic_cells()
MANUAL = {g for g, m in GRADED.items() if m.get("solution")}

# What the seed transcript's bugs cost, cell by cell, and why.
SEED_TRANSCRIPT_FAILS = {
    "update_centroids_empty_cluster",        # 0/0 gives a row of nan
    "update_centroids_vectorised",           # list comprehension over every point
    "associate_centroids_worked_example",    # loss summed (468) instead of averaged (93.6)
    "associate_centroids_matches_brute_force",
    "associate_centroids_edge_shapes",
    "associate_centroids_output_types",      # the summed loss: right types count only with right values
    "associate_centroids_inputs_unchanged",  # the summed loss: unchanged inputs count only with a right result
    "associate_centroids_vectorised",        # the summed loss: a wrong result is never timed
    "k_means_matches_lloyd",                 # returns only the last loss, never updates W
    "k_means_calls_helpers_in_order",
    "k_means_relative_stopping",
    "k_means_earliest_stop",
    "k_means_runs_max_iters",
    "k_means_zero_loss",
    "k_means_edge_shapes",
    "k_means_inputs_unchanged",
    "act7_scatter_plots",                    # Act 7 prints the results but draws no plot
    "act8_k1_losses",                        # built on the broken k_means and summed loss
    "act9_digit_images",                     # k_means never moves W: its assoc is no clustering
    "act10_k1_losses",
}
SEED_TRANSCRIPT_UNANSWERED = {"act9_clusters_answer"}  # the transcript has no answer there


def db_url(course):
    return f"sqlite:///{course / 'gradebook.db'}"


def grades_csv(course):
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_correct_alternative_keeps_every_automatic_point(graded_course):
    scores = cell_scores("correct_alternative", db_url(graded_course))
    lost = {g: s for g, s in scores.items() if g in AUTO and s[0] != s[1]}
    assert lost == {}
    assert {g for g, (score, _) in scores.items() if score is None} == MANUAL


def test_untouched_release_scores_zero_everywhere(graded_course):
    scores = cell_scores("untouched_release", db_url(graded_course))
    assert {g: s for g, s in scores.items() if s[0] != 0} == {}
    assert set(scores) == set(GRADED)


def test_seed_transcript_loses_exactly_the_points_of_its_bugs(graded_course):
    scores = cell_scores("seed_transcript", db_url(graded_course))
    failed = {g for g, (score, top) in scores.items() if score is not None and score < top}
    assert failed == SEED_TRANSCRIPT_FAILS | SEED_TRANSCRIPT_UNANSWERED
    assert all(scores[g][0] == 0 for g in failed)
    assert {g for g, (score, _) in scores.items() if score is None} == MANUAL - SEED_TRANSCRIPT_UNANSWERED


def test_grades_csv_has_a_status_for_every_student(graded_course):
    rows = grades_csv(graded_course)
    total_auto = sum(GRADED[g]["points"] for g in AUTO)
    total = sum(m["points"] for m in GRADED.values())
    assert rows["correct_alternative"]["status"] == "needs_manual_grading"
    assert float(rows["correct_alternative"]["score"]) == total_auto
    assert rows["untouched_release"]["status"] == "graded"
    assert float(rows["untouched_release"]["score"]) == 0
    assert rows["seed_transcript"]["status"] == "needs_manual_grading"
    lost = sum(GRADED[g]["points"] for g in SEED_TRANSCRIPT_FAILS)
    assert float(rows["seed_transcript"]["score"]) == total_auto - lost
    assert {float(r["max_score"]) for r in rows.values()} == {total}


@pytest.mark.parametrize("student", ["seed_transcript", "untouched_release"])
def test_feedback_shows_messages_but_not_hidden_code(graded_course, student):
    html = (graded_course / "feedback" / student / "pa2_clustering" / "clustering.html").read_text()
    assert "CheckFailed: " in html and "expected" in html
    hidden_code = hidden_code_lines()
    assert hidden_code
    leaked = [line for line in hidden_code if line in html]
    assert leaked == []
    assert "Traceback (most recent call last)" not in html.split("checking_helpers")[0]


@pytest.mark.parametrize("corrupt", ["duplicate_grade_id", "points_missing", "bad_schema_version"])
def test_metadata_checked_once_per_cell_still_refuses_a_corrupt_notebook(corrupt):
    """A cell seen valid before does not excuse the notebook: duplicate grade ids, and any changed metadata, are checked again."""
    from nbgrader.nbgraderformat import ValidationError
    from nbgrader.nbgraderformat.common import SchemaMismatchError
    from assignment.preprocessors import CheckCellMetadataOnce
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    check = CheckCellMetadataOnce()
    check.preprocess(nb, {})  # every cell of the master notebook is now remembered as valid
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    if corrupt == "duplicate_grade_id":
        graded[1].metadata.nbgrader.grade_id = graded[0].metadata.nbgrader.grade_id
    elif corrupt == "points_missing":
        del graded[0].metadata.nbgrader["points"]
    else:
        graded[0].metadata.nbgrader.schema_version = 1
    with pytest.raises((ValidationError, SchemaMismatchError)):
        check.preprocess(nb, {})


def test_the_course_validates_each_notebook_once_per_pass_and_still_refuses_an_invalid_one(tmp_path):
    """nbgrader's passes check the notebook against the schema once, after their last
    preprocessor, not after each one; a preprocessor that breaks the notebook still fails the pass."""
    from nbconvert.exporters import NotebookExporter
    from nbconvert.preprocessors import Preprocessor
    from nbformat import ValidationError

    from assignment import ROOT
    from assignment.gradebook import course_config

    checked = []

    class Breaks(Preprocessor):
        def preprocess(self, nb, resources):
            nb.cells[0]["metadata"] = "not a mapping"
            return nb, resources

    class Counts(NotebookExporter):
        def _validate_preprocessor(self, nbc, preprocessor):
            checked.append(type(preprocessor).__name__)
            return super()._validate_preprocessor(nbc, preprocessor)

    config = course_config(ROOT, f"sqlite:///{tmp_path / 'gradebook.db'}")
    exporter = Counts(config=config)
    for step in ("ClearOutputPreprocessor", "ClearMetadataPreprocessor"):
        exporter.register_preprocessor(f"nbconvert.preprocessors.{step}", enabled=True)
    exporter.from_notebook_node(SOURCE)
    assert checked == ["ClearMetadataPreprocessor"], f"expected one check after the last pass, got {checked}"
    exporter.register_preprocessor(Breaks, enabled=True)
    with pytest.raises(ValidationError):
        exporter.from_notebook_node(SOURCE)
