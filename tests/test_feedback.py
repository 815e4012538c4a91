"""make feedback: after grading by hand, the feedback shows the manual scores and comments."""
import shutil

from nbgrader.api import Gradebook

from .conftest import hidden_code_lines, run_module

COMMENT = "Clear answer; say which axis the indices run along."


def test_feedback_after_manual_grading_shows_the_grades_and_comments(graded_course, tmp_path):
    course = shutil.copytree(graded_course, tmp_path / "course")
    url = f"sqlite:///{course / 'gradebook.db'}"
    with Gradebook(url) as gb:  # what a grader does in formgrader
        grade = gb.find_grade("take_along_axis_explanation", "clustering", "pa2_clustering", "correct_alternative")
        grade.manual_score, grade.needs_manual_grade = 1.5, False
        comment = gb.find_comment("take_along_axis_explanation", "clustering", "pa2_clustering", "correct_alternative")
        comment.manual_comment = COMMENT
        gb.db.commit()
    page = course / "feedback" / "correct_alternative" / "pa2_clustering" / "clustering.html"
    assert COMMENT not in page.read_text()
    result = run_module(course, "feedback")
    assert result.returncode == 0, result.stderr[-3000:]
    html = page.read_text()
    assert COMMENT in html and "Score: 1.5 / 2.0" in html
    assert [line for line in hidden_code_lines() if line in html] == []
