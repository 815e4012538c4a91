"""The rubric page holds every manually graded cell of the source with its model answer and notes."""
import re

import nbformat
import pytest
from bs4 import BeautifulSoup

import assignment
from assignment.rubric import rubric_entries, write_rubric


def words(text):
    """The word tokens of ``text`` (markdown and HTML markup differ; the words do not)."""
    return " ".join(re.findall(r"\w+", text))


@pytest.fixture(scope="module")
def source_manual_cells():
    """grade_id -> (points, source) of the master notebook's manually graded cells, read directly."""
    nb = nbformat.read(assignment.SOURCE_DIR / assignment.NOTEBOOK, as_version=4)
    return {c.metadata.nbgrader.grade_id: (c.metadata.nbgrader.points, c.source) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.metadata.nbgrader.get("solution")}


@pytest.fixture(scope="module")
def rubric_text(tmp_path_factory):
    page = write_rubric(tmp_path_factory.mktemp("rubric") / "rubric.html")
    return words(BeautifulSoup(page.read_text(), "html.parser").get_text(" "))


def test_every_manual_cell_appears_with_its_model_answer_and_notes(source_manual_cells, rubric_text):
    assert source_manual_cells, "the source has no manually graded cells"
    for grade_id, (points, source) in source_manual_cells.items():
        assert f"{grade_id} {points:g} point" in rubric_text, grade_id
        # the whole cell as written in the source: model answer and grading notes alike
        assert words(source) in rubric_text, f"{grade_id}: model answer or notes missing"


def test_model_answers_and_grading_notes_are_told_apart(source_manual_cells):
    entries = rubric_entries()
    assert [e.grade_id for e in entries] == list(source_manual_cells)
    for entry in entries:
        if entry.cell_type == "markdown":
            assert entry.answer.startswith("**Model answer.**") and entry.notes.startswith("*Grading ("), entry.grade_id
            assert "*Grading" not in entry.answer
        else:  # the plots: the model solution code
            assert "### BEGIN SOLUTION" in entry.answer and "plt." in entry.answer
            assert bool(entry.notes) == ("# Grading" in entry.answer), entry.grade_id
        assert entry.question, f"{entry.grade_id}: the question before the cell is missing"
