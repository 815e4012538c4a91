"""The rubric page holds every manually graded cell of the source with its model answer and notes."""
import re

import nbformat
import pytest
from bs4 import BeautifulSoup

import assignment
from assignment.rubric import SOLUTION_MARKERS, rubric_entries, write_rubric


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
        # every line of the cell as written in the source, model answer and grading notes alike,
        # but nbgrader's solution markers
        lines = [words(line) for line in source.splitlines() if words(line) and line.strip() not in SOLUTION_MARKERS]
        assert [line for line in lines if line not in rubric_text] == [], f"{grade_id}: model answer or notes missing"
    assert "BEGIN SOLUTION" not in rubric_text and "END SOLUTION" not in rubric_text, "expected no solution markers"
    twice = [e.grade_id for e in rubric_entries() if e.notes and rubric_text.count(words(e.notes)) != 1]
    assert twice == [], f"expected each cell's grading notes once, got them another number of times for {twice}"


def test_model_answers_and_grading_notes_are_told_apart(source_manual_cells):
    entries = rubric_entries()
    assert [e.grade_id for e in entries] == list(source_manual_cells)
    for entry in entries:
        if entry.cell_type == "markdown":
            assert entry.answer.startswith("**Model answer.**") and entry.notes.startswith("*Grading ("), entry.grade_id
            assert "*Grading" not in entry.answer
        else:  # the plots: the model solution code, its grading notes apart (shown once, after it)
            assert "plt." in entry.answer and "SOLUTION" not in entry.answer, entry.answer[:200]
            assert entry.notes.startswith("Grading (") and "Grading" not in entry.answer, entry.grade_id
        assert entry.question, f"{entry.grade_id}: the question before the cell is missing"
