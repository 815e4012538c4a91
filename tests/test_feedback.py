"""Feedback pages: as nbconvert renders them, and after grading by hand (make feedback)."""
import shutil

import nbformat

from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbgrader.api import Gradebook
from nbgrader.converters import GenerateFeedback

from assignment.exporters import (NBGRADER_TEMPLATES, NO_DESCRIPTION, TEMPLATES, FeedbackHTMLExporter,
                                  RememberingHighlight, _TemplateBytecode)
from assignment.grade_one import run_converter
from assignment.gradebook import course_config

from .conftest import hidden_code_lines, run_module

COMMENT = "Clear answer; say which axis the indices run along."


def test_feedback_after_manual_grading_shows_the_grades_and_comments_and_keeps_them_when_graded_again(
        graded_course, tmp_path):
    """make feedback shows a grade and comment entered by hand; a later make grade writes the page
    again with them for a submission graded again unchanged (--force), and without them for a
    changed one, whose grade by hand belongs to its old answer and awaits review again."""
    course = shutil.copytree(graded_course, tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    students = ("correct_alternative", "seed_transcript")
    with Gradebook(url) as gb:  # what a grader does in formgrader
        for student in students:
            grade = gb.find_grade("take_along_axis_explanation", "clustering", "pa2_clustering", student)
            grade.manual_score, grade.needs_manual_grade = 1.5, False
            comment = gb.find_comment("take_along_axis_explanation", "clustering", "pa2_clustering", student)
            comment.manual_comment = COMMENT
        gb.db.commit()
    pages = {s: course / "feedback" / s / "pa2_clustering" / "clustering.html" for s in students}
    assert COMMENT not in pages["correct_alternative"].read_text()
    result = run_module(course, "feedback")
    assert result.returncode == 0, result.stderr[-3000:]
    html = pages["correct_alternative"].read_text()
    assert COMMENT in html and "Score: 1.5 / 2.0" in html
    summary = BeautifulSoup(html, "html.parser").find(id="pa2-summary")
    row = next(tr for tr in summary.select("table.pa2-parts tr") if tr.a and tr.a["href"] == "#take_along_axis_explanation")
    assert "1.5 / 2" in row.get_text() and COMMENT in row.get_text(), row
    assert [line for line in hidden_code_lines() if line in html] == []
    assert COMMENT in pages["seed_transcript"].read_text()
    # the seed transcript's answer changes after the deadline; both are graded again in one run
    submitted = course / "submitted" / "seed_transcript" / "pa2_clustering" / "clustering.ipynb"
    notebook = nbformat.read(submitted, as_version=4)
    answer = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "take_along_axis_explanation")
    answer.source += "\n\nAnd a second thought, added after the deadline."
    nbformat.write(notebook, submitted)
    result = run_module(course, "grade", "--force", *students)
    assert result.returncode == 0, result.stderr[-3000:]
    again = pages["correct_alternative"].read_text()
    assert COMMENT in again and "Score: 1.5 / 2.0" in again, \
        "expected the grade and comment entered by hand on the unchanged page graded again, got a page without them"
    changed = pages["seed_transcript"].read_text()
    assert COMMENT not in changed and "Score: 1.5 / 2.0" not in changed, \
        "expected the old answer's grade by hand and comment off the changed submission's page"


class NbconvertExporter(HTMLExporter):
    """nbconvert's own exporter (with its second parse of the page), finding the course's templates."""

    def get_prefix_root_dirs(self):
        return [str(TEMPLATES), str(NBGRADER_TEMPLATES), *super().get_prefix_root_dirs()]


def page_elements(html):
    """Every element of an HTML page: its tag, its attributes (sorted) and its own text."""
    return [(tag.name, sorted((k, str(v)) for k, v in tag.attrs.items()), tag.string)
            for tag in BeautifulSoup(html, "html.parser").find_all(True)]


def test_feedback_pages_hold_what_nbconverts_exporter_writes(graded_course, tmp_path):
    """The course's feedback exporter writes nbconvert's page: same elements, attributes (alt texts too) and text."""
    course = shutil.copytree(graded_course, tmp_path / "course")
    page = course / "feedback" / "correct_alternative" / "pa2_clustering" / "clustering.html"
    pages = {}
    for label in ("nbconvert", "course"):
        config = course_config(course, f"sqlite:///{course / 'gradebook.db'}")
        if label == "nbconvert":
            config.GenerateFeedback.exporter_class = NbconvertExporter
            config.HTMLExporter.template_name = "pa2_feedback"
        ok, log = run_converter(GenerateFeedback, config, "correct_alternative")
        assert ok, log
        pages[label] = page.read_text()
    images = pages["nbconvert"].count("<img")
    assert images >= 5, f"expected the plots of Acts 7-10 as images, got {images}"
    assert pages["course"].count(f'alt="{NO_DESCRIPTION}"') == images, "expected an alt text on every image"
    expected, got = page_elements(pages["nbconvert"]), page_elements(pages["course"])
    first = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
    assert expected == got, (f"expected nbconvert's {len(expected)} elements, got {len(got)}; first difference: "
                             f"expected {expected[first:first + 1]}, got {got[first:first + 1]}")


def _forget_rendered():
    for memory in (FeedbackHTMLExporter.markdown_memory, RememberingHighlight.memory):
        memory.kept.clear()
    _TemplateBytecode.kept.clear()


def test_pages_rendered_from_the_workers_memories_are_the_pages_rendered_afresh(graded_course, tmp_path):
    """A worker remembers compiled templates and rendered cells; a page rendered after others is byte for byte the page rendered with nothing remembered."""
    course = shutil.copytree(graded_course, tmp_path / "course")
    config = course_config(course, f"sqlite:///{course / 'gradebook.db'}")

    def render(student):
        ok, log = run_converter(GenerateFeedback, config, student)
        assert ok, log
        return (course / "feedback" / student / "pa2_clustering" / "clustering.html").read_text()

    _forget_rendered()
    afresh = {student: render(student) for student in ("correct_alternative",)}
    remembered = len(FeedbackHTMLExporter.markdown_memory.kept), len(RememberingHighlight.memory.kept)
    assert min(remembered) > 20 and _TemplateBytecode.kept, f"expected cells and templates remembered, got {remembered}"
    render("seed_transcript")
    again = render("correct_alternative")
    assert again == afresh["correct_alternative"], "expected the same page from the memories, got a different one"
    _forget_rendered()
    assert render("seed_transcript") == (course / "feedback" / "seed_transcript" / "pa2_clustering" / "clustering.html").read_text()


def test_remembered_markdown_depends_on_the_cells_attachments():
    """Two cells with the same text but different attachments get their own HTML."""
    exporter = FeedbackHTMLExporter()
    text = "![plot](attachment:plot.png)"
    pages = [exporter.markdown2html({"cell": {"attachments": {"plot.png": {"image/png": data}}}}, text)
             for data in ("aGVsbG8=", "d29ybGQ=")]
    assert "aGVsbG8=" in pages[0] and "d29ybGQ=" in pages[1], f"expected each cell's own image, got {pages}"


def test_remembered_highlighting_depends_on_the_cells_magics_language():
    """The same code highlighted as Python and, for a cell whose metadata names another magics language, as that language."""
    highlight = RememberingHighlight(pygments_lexer="ipython3")
    code = "SELECT name FROM students"
    python, sql = highlight(code, metadata={"execution": {"t": 1}}), highlight(code, metadata={"magics_language": "sql"})
    assert python != sql, f"expected the SQL cell highlighted as SQL, got the same HTML: {sql}"
    assert highlight(code, metadata={"execution": {"t": 2}}) == python


def test_the_workers_memory_of_rendered_cells_stays_within_its_size():
    """A class of large answers does not grow a worker's memory of rendered cells past its limit."""
    from assignment.exporters import _Memory
    memory = _Memory(chars=10_000)
    for i in range(100):
        assert memory.get(f"cell {i}", lambda: "x" * 1_000) == "x" * 1_000
        assert memory.chars <= 10_000 and sum(len(k) + len(v) for k, v in memory.kept.items()) == memory.chars
    assert memory.get("cell 99", lambda: "rendered again") == "x" * 1_000, "expected the last cell remembered"


def test_a_feedback_rewrite_that_fails_keeps_the_page_written_while_grading(graded_course, tmp_path):
    """nbgrader's GenerateFeedback empties the student's feedback folder before it writes: when it
    then fails, the page the grader wrote is put back rather than lost."""
    from assignment.feedback import write_again
    course = shutil.copytree(graded_course, tmp_path / "course")
    page = course / "feedback" / "correct_alternative" / "pa2_clustering" / "clustering.html"
    written = page.read_bytes()
    # a notebook nbgrader finds, removes the old page for, then cannot read
    (course / "autograded" / "correct_alternative" / "pa2_clustering" / "clustering.ipynb").write_text("{not json")
    failed = write_again(course, f"sqlite:///{course / 'gradebook.db'}", ["correct_alternative"])
    assert list(failed) == ["correct_alternative"], f"expected the rewrite to fail, got {failed}"
    assert page.is_file() and page.read_bytes() == written, "expected the grader's page kept after a failed rewrite"
