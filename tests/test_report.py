"""The class report: statistics, grouped failure messages, the HTML page and its screenshot."""
import csv
import json
import shutil
import struct

import nbformat
import pytest
from nbgrader.api import Gradebook

import assignment
from assignment import report, results
from assignment.screenshot import chromium_available, screenshot

from .conftest import run_module

ARTEFACTS = assignment.ROOT / "test-artifacts"


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_messages_that_differ_only_in_numbers_are_grouped():
    messages = ["CheckFailed: loss: expected 93.6 (float64), got 468 (int64)",
                "CheckFailed: loss: expected 1.5e-3 (float64), got -2 (int64)",
                "CheckFailed: k_means(X, 2, max_iters=7): expected 7 losses, got 9",
                "NameError: name 'act8' is not defined"]
    groups = report.group_messages(messages)
    assert groups[0] == ("CheckFailed: loss: expected # (float64), got # (int64)", 2, messages[0])
    assert report.normalise(messages[2]) == "CheckFailed: k_means(X, #, max_iters=#): expected # losses, got #"
    assert report.normalise(messages[3]) == messages[3]  # digits inside names stay
    assert len(groups) == 3


def test_only_the_graders_hints_in_test_cells_count_as_likely_mistakes():
    """A hint forged in an answer cell's outputs (the kernel's) or with an unknown id is not counted."""
    from assignment.hints import MISTAKES, hint_output
    known = MISTAKES[0]
    forged = nbformat.v4.new_output("display_data", data={"text/plain": "x"},
                                    metadata={"pa2_hint": "=HYPERLINK(\"http://x/\")"})
    def cell(grade_id, solution, *outputs):
        return nbformat.v4.new_code_cell("", outputs=list(outputs), metadata={"nbgrader": {
            "grade_id": grade_id, "grade": not solution, "solution": solution}})
    nb = nbformat.v4.new_notebook(cells=[cell("act7_k_means_k2", True, hint_output(known)),
                                         cell("compute_sq_dists_sanity", False, forged),
                                         cell("compute_sq_dists_matches_cdist", False, hint_output(known))])
    assert report.hints_shown(nb) == {"compute_sq_dists_matches_cdist": known.id}


@pytest.mark.parametrize("value, written", [
    ("=HYPERLINK(\"http://x/\")", "'=HYPERLINK(\"http://x/\")"), ("+1+cmd", "'+1+cmd"), ("@SUM(A1)", "'@SUM(A1)"),
    ("-2+3", "'-2+3"), ("-2.5", "-2.5"), ("+3", "+3"), ("lost points in 2 cells", "lost points in 2 cells"), (7, 7)])
def test_no_csv_cell_is_read_as_a_formula(value, written, tmp_path):
    """Text a spreadsheet would read as a formula gets an apostrophe; numbers stay numbers."""
    report.write_csv(tmp_path / "x.csv", ["v"], [{"v": value}])
    assert read_csv(tmp_path / "x.csv") == [{"v": str(written)}]


def test_discrimination_is_the_correlation_and_undefined_for_constants():
    # deviations (-2/3, 1/3, 1/3) and (-30, 10, 20): 30 / sqrt(6/9 * 1400)
    assert report.correlation([0, 1, 1], [10, 50, 60]) == pytest.approx(30 / (6 / 9 * 1400) ** 0.5)
    assert report.correlation([1, 1, 1], [10, 50, 60]) is None
    assert report.correlation([0], [3]) is None


def test_failed_submissions_are_left_out_of_statistics_not_counted_as_zero_and_flagged_ones_count():
    cells = [("f_check", "f", 2.0), ("f_sanity", "f", 0.0)]
    class_results = [
        results.Result("a", "graded", "", 10.0, 10.0, {"f_check": (2.0, 2.0), "f_sanity": (0.0, 0.0)}),
        results.Result("b", "graded", "", 4.0, 10.0, {"f_check": (0.0, 2.0), "f_sanity": (0.0, 0.0)}),
        results.Result("c", "failed", "not valid notebook JSON"),
        results.Result("d", "flagged", "assigns np.isclose", 10.0, 10.0, {"f_check": (2.0, 2.0)})]
    messages = {"b": {"f_check": "CheckFailed: expected 1, got 2", "f_sanity": "CheckFailed: expected 3, got 4"}}
    check, sanity = report.test_statistics(class_results, cells, messages)
    assert check.row() == {"grade_id": "f_check", "target": "f", "points": "2", "graded": 3, "passed": 2,
                           "pass_rate": "0.667", "mean_score": "1.333", "discrimination": "1.000"}
    assert (sanity.row()["passed"], sanity.row()["discrimination"]) == (1, "")  # 0 points: passed = no error
    rows = {r["student_id"]: r for r in report.student_rows(class_results, [check, sanity])}
    assert rows["c"]["score"] == "" and rows["d"]["score"] == "10"
    assert rows["a"]["score"] == "10" and rows["a"]["tests_passed"] == 1


def test_failure_messages_are_read_from_the_error_outputs():
    cell = nbformat.v4.new_code_cell("check()", metadata={"nbgrader": {"grade_id": "t1"}})
    cell.outputs = [nbformat.v4.new_output("error", ename="CheckFailed", evalue="x: expected 1, got 2", traceback=[])]
    quiet = nbformat.v4.new_code_cell("ok()", metadata={"nbgrader": {"grade_id": "t2"}})
    nb = nbformat.v4.new_notebook(cells=[cell, quiet])
    assert report.failure_messages(nb) == {"t1": "CheckFailed: x: expected 1, got 2"}


def test_test_cells_name_their_target():
    answers = {"k_means", "update_centroids", "act8_elbow_plot"}
    assert results.target_of("update_centroids_empty_cluster", answers) == "update_centroids"
    assert results.target_of("act8_k1_losses", answers) == "act8"


@pytest.fixture(scope="module")
def reported(graded_course):
    result = run_module(graded_course, "report", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return graded_course / "reports" / assignment.ASSIGNMENT


def test_report_statistics_agree_with_grades_csv(reported, graded_course):
    grades = {r["student_id"]: r for r in read_csv(graded_course / "grades.csv")}
    students = {r["student_id"]: r for r in read_csv(reported / "students.csv")}
    assert {s: r["score"] for s, r in students.items()} == {s: r["score"] for s, r in grades.items()}
    tests = read_csv(reported / "tests.csv")
    assert [t["grade_id"] for t in tests] == [g for g, _, _ in results.test_cells(graded_course)]
    assert all(int(t["graded"]) == len(grades) for t in tests)
    # no manual grades yet: the automatic points of all tests add up to the scores
    # (mean_score has 3 decimals: each row may be off by 0.0005 per submission)
    automatic = sum(float(t["mean_score"]) * int(t["graded"]) for t in tests)
    assert automatic == pytest.approx(sum(float(r["score"]) for r in grades.values()),
                                      abs=0.0005 * len(grades) * len(tests))
    for t in tests:
        assert 0 <= int(t["passed"]) <= int(t["graded"])


def test_report_page_shows_charts_messages_and_time(reported):
    page = (reported / "report.html").read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == 2
    assert "NotImplementedError" in page  # the untouched release fails with it
    for heading in ("Failed and flagged submissions", "Most common failure messages", "Similar answer code"):
        assert heading in page
    assert "Grading t" in page


@pytest.mark.skipif(not chromium_available(), reason="chromium is missing (make browser)")
def test_report_opens_in_chromium(reported):
    png = screenshot(reported / "report.html", ARTEFACTS / "report.png")
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1200 and height > 1500  # the whole page, charts and tables included


def test_a_flagged_submission_is_listed_for_review_and_still_counted(graded_course, tmp_path):
    """Give one graded example a tampering finding in its record: it is listed for review, and
    its score, decided outside the kernel, still counts."""
    course = tmp_path / "course"
    for part in ("assignment", "release", "submitted", "autograded"):
        shutil.copytree(graded_course / part, course / part)
    shutil.copy(graded_course / "gradebook.db", course / "gradebook.db")
    record_path = course / "autograded" / "untouched_release" / "grading.json"
    record = json.loads(record_path.read_text())
    record["flag"] = "cell k_means: assigns np.isclose"  # what the tampering scan found
    record_path.write_text(json.dumps(record))
    out = report.build(course)
    students = {r["student_id"]: r for r in read_csv(out / "students.csv")}
    assert students["untouched_release"]["score"] == "0" and students["untouched_release"]["status"] == "flagged"
    assert {int(t["graded"]) for t in read_csv(out / "tests.csv")} == {len(students)}
    assert "assigns np.isclose" in (out / "report.html").read_text(encoding="utf-8")


def test_the_reason_is_read_as_grades_csv_has_it_after_grading_by_hand(graded_course, tmp_path):
    """A student whose free responses were all graded by hand after make grade: the report says
    graded with no answer awaiting manual grading, not the reason saved when grading ran."""
    course = tmp_path / "course"
    for part in ("assignment", "release", "submitted", "autograded"):
        shutil.copytree(graded_course / part, course / part)
    shutil.copy(graded_course / "gradebook.db", course / "gradebook.db")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for grade in gb.find_submission("pa2_clustering", "correct_alternative").notebooks[0].grades:
            if grade.needs_manual_grade:
                grade.manual_score, grade.needs_manual_grade = grade.max_score, False
        gb.db.commit()
    students = {r["student_id"]: r for r in read_csv(report.build(course) / "students.csv")}
    row = students["correct_alternative"]
    assert row["status"] == "graded" and "await" not in row["reason"], \
        f"expected graded with nothing awaiting manual grading, got {row['status']}: {row['reason']}"


def test_mistakes_are_counted_per_student():
    counts = report.mistake_counts({"a": {"t1": "sqrt", "t2": "sqrt", "t3": "argmax"}, "b": {"t2": "sqrt"}, "c": {}})
    assert [(m, n, cells) for m, _, n, cells in counts] == [("sqrt", 2, ["t1", "t2"]), ("argmax", 1, ["t3"])]
    assert counts[0][1].startswith("these are the square roots")


def test_report_counts_the_likely_mistakes_of_the_class(reported, graded_course):
    shown = {}
    for path in sorted((graded_course / "autograded").glob("*/pa2_clustering/clustering.ipynb")):
        for mistake in set(report.hints_shown(nbformat.read(path, as_version=4)).values()):
            shown[mistake] = shown.get(mistake, 0) + 1
    assert shown, "the seed transcript's mistakes should be recognised"
    rows = read_csv(reported / "mistakes.csv")
    assert {r["mistake"]: int(r["students"]) for r in rows} == shown
    page = (reported / "report.html").read_text(encoding="utf-8")
    assert "Likely mistakes" in page and all(r["mistake"] in page for r in rows)
