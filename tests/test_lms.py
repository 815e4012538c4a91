"""The LMS export: exact bytes for Canvas and Moodle, empty cells (never 0) for what has no grade."""
import csv
import io

import nbformat
import pytest

import assignment
from assignment import lms
from assignment.results import Result

from .conftest import run_module

ROSTER = [dict(zip(lms.ROSTER_FIELDS, row)) for row in [
    ("nunez", 'Núñez, José "Pepe"', "jose@example.edu", "101", "S1", "jnunez", "A"),
    ("obrien", "O'Brien-Łukasiewicz, Zoë", "zoe@example.edu", "102", "S2", "zobrien", "A, evening"),
    ("smith", "Smith, Alex", "alex@example.edu", "103", "S3", "asmith", "B"),
    ("absent", "Müller, Jürgen", "jm@example.edu", "104", "S4", "jmueller", "B"),
    ("tamper", "Lee, Kim", "kim@example.edu", "105", "S5", "klee", "B"),
    ("waiting", "Ng, Bo", "bo@example.edu", "106", "S6", "bng", "B"),
]]
RESULTS = [
    Result("nunez", "graded", "", 62.5, 64.0, {"t_a": (2.0, 2.0), "t_b": (0.0, 1.0)}),
    Result("obrien", "failed", "not valid notebook JSON"),
    Result("smith", "graded", "lost points in 42 cells", 0.0, 64.0, {"t_a": (0.0, 2.0), "t_b": (0.0, 1.0)}),
    Result("tamper", "flagged", "flagged for review: assigns np.isclose", 64.0, 64.0, {"t_a": (2.0, 2.0)}),
    Result("waiting", "needs_manual_grading", "", 40.0, 64.0, {"t_a": (2.0, 2.0), "essay": (None, 16.0)}),
]


@pytest.fixture
def grades():
    return lms.grades_for(ROSTER, RESULTS, ["t_a", "t_b"])


def test_no_submission_failed_and_unfinished_get_empty_cells_never_zero(grades):
    points = {g.student["student_id"]: g.points for g in grades}
    assert points == {"nunez": "62.5", "obrien": "", "smith": "0", "absent": "", "tamper": "64", "waiting": ""}
    notes = {g.student["student_id"]: g.note for g in grades}
    assert notes["absent"] == "no submission"
    assert notes["obrien"].startswith("failed: not valid notebook JSON")
    assert "16 points pending" in notes["waiting"]
    partial = {g.student["student_id"]: g.points for g in lms.grades_for(ROSTER, RESULTS, partial=True)}
    assert partial["waiting"] == "40" and partial["obrien"] == ""


def test_a_flagged_submission_keeps_its_score_and_is_listed_for_review(grades):
    """The scan is advice: the verdicts were decided outside the kernel, so the score stands."""
    tamper = next(g for g in grades if g.student["student_id"] == "tamper")
    assert tamper.points == "64" and "flagged for review: assigns np.isclose" in tamper.note


def test_canvas_file_bytes(grades):
    data = lms.to_csv(lms.canvas_rows(grades, 64.0, title="PA2 Clustering", assignment_id="4711"))
    assert data == (
        "Student,ID,SIS User ID,SIS Login ID,Section,PA2 Clustering (4711)\r\n"
        "Points Possible,,,,,64\r\n"
        '"Núñez, José ""Pepe""",101,S1,jnunez,A,62.5\r\n'
        '"O\'Brien-Łukasiewicz, Zoë",102,S2,zobrien,"A, evening",\r\n'
        '"Smith, Alex",103,S3,asmith,B,0\r\n'
        '"Müller, Jürgen",104,S4,jmueller,B,\r\n'
        '"Lee, Kim",105,S5,klee,B,64\r\n'
        '"Ng, Bo",106,S6,bng,B,\r\n').encode("utf-8")


def test_canvas_file_follows_the_import_rules(grades):
    """What Canvas's importer checks: 'Student' then 'ID' first, 'SIS Login ID', 'Section' closing
    the student columns, '<title> (<id>)', a 'Points Possible' row, six fields in every row."""
    rows = list(csv.reader(io.StringIO(lms.to_csv(lms.canvas_rows(grades, 64, assignment_id="9")).decode("utf-8"))))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[0][5] == "PA2 Clustering (9)"
    assert rows[1][0] == "Points Possible" and rows[1][1:5] == ["", "", "", ""]
    assert {len(r) for r in rows} == {6}
    assert [r[0] for r in rows[2:]] == [s["name"] for s in ROSTER]
    no_id = lms.canvas_rows(grades, 64, points_row=False)
    assert no_id[0][5] == "PA2 Clustering" and no_id[1][0] == ROSTER[0]["name"]


def test_moodle_file_bytes(grades):
    data = lms.to_csv(lms.moodle_rows(grades, title="PA2 Clustering"))
    assert data == (
        "Email address,PA2 Clustering,Feedback\r\n"
        "jose@example.edu,62.5,62.5 of 64 points. Checks failed: t_b.\r\n"
        "zoe@example.edu,,\r\n"
        "alex@example.edu,0,\"0 of 64 points. Checks failed: t_a, t_b.\"\r\n"
        "jm@example.edu,,\r\n"
        "kim@example.edu,64,64 of 64 points. Every automatic check passed.\r\n"
        "bo@example.edu,,\r\n").encode("utf-8")


def test_roster_problems_are_named(tmp_path):
    bad = tmp_path / "roster.csv"
    bad.write_text("student_id,name,email\na,A,a@x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing columns canvas_id"):
        lms.read_roster(bad)
    twice = tmp_path / "twice.csv"
    twice.write_text(",".join(lms.ROSTER_FIELDS) + "\na,A,a@x,1,s,l,x\na,B,b@x,2,s,l,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="listed twice: a"):
        lms.read_roster(twice)


def test_the_example_roster_is_read_as_written():
    roster = lms.read_roster(assignment.ROOT / "roster.csv")
    names = [r["name"] for r in roster]
    assert any("," in n for n in names) and any('"' in n for n in names) and any(not n.isascii() for n in names)


def test_export_of_the_graded_examples(graded_course):
    result = run_module(graded_course, "lms", "canvas", "--roster", str(assignment.ROOT / "roster.csv"),
                        "--canvas-assignment-id", "4711", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    path = graded_course / "exports" / "pa2_clustering_canvas.csv"
    assert f"wrote {path}" in result.stdout
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"))))
    grades = {r["student_id"]: r for r in csv.DictReader(open(graded_course / "grades.csv"))}
    roster = lms.read_roster(assignment.ROOT / "roster.csv")
    exported = {s["student_id"]: row[5] for s, row in zip(roster, rows[2:])}
    for student_id, cell in exported.items():
        grade = grades.get(student_id)
        if grade is None or grade["status"] != "graded":
            assert cell == "" and student_id in result.stdout  # listed on the console
        else:
            assert float(cell) == float(grade["score"])
    assert "no_submission" in result.stdout and exported["no_submission"] == ""


def test_moodle_feedback_column_holds_the_summarys_lines(graded_course):
    """Each failed check of the feedback summary, shortened, one line each (with --partial the seed
    transcript, still waiting for manual grading, is exported)."""
    from assignment.gradebook import cell_scores
    from assignment.summary import short_lines, summarise
    result = run_module(graded_course, "lms", "moodle", "--roster", str(assignment.ROOT / "roster.csv"),
                        "--partial", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = list(csv.DictReader(io.StringIO((graded_course / "exports" / "pa2_clustering_moodle.csv")
                                           .read_bytes().decode("utf-8"))))
    roster = {s["email"]: s["student_id"] for s in lms.read_roster(assignment.ROOT / "roster.csv")}
    feedback = {roster[r["Email address"]]: r["Feedback"] for r in rows}
    notebook = nbformat.read(graded_course / "autograded" / "seed_transcript" / "pa2_clustering" / "clustering.ipynb",
                             as_version=4)
    lines = short_lines(summarise(notebook, cell_scores("seed_transcript", f"sqlite:///{graded_course / 'gradebook.db'}")))
    assert lines and feedback["seed_transcript"].splitlines()[2:] == [f"- {line}" for line in lines]
    assert "Likely mistake: " in feedback["seed_transcript"]
    assert feedback["correct_alternative"].endswith("Every automatic check passed.")


def test_moodle_feedback_column_holds_the_graders_comments(graded_course, tmp_path):
    """A comment a grader wrote in formgrader reaches the student through Moodle's Feedback column."""
    import shutil
    from nbgrader.api import Gradebook
    course = tmp_path / "course"
    for part in ("assignment", "release", "submitted", "autograded"):
        shutil.copytree(graded_course / part, course / part)
    shutil.copy(graded_course / "gradebook.db", course / "gradebook.db")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        comment = gb.find_comment("take_along_axis_explanation", "clustering", "pa2_clustering", "correct_alternative")
        comment.manual_comment = "Say which axis the indices run along."
        other = gb.find_comment("compute_sq_dists", "clustering", "pa2_clustering", "correct_alternative")
        other.manual_comment = "Neat broadcasting.\nMind the clipping."  # an answer with no points, two lines
        gb.db.commit()
    result = run_module(course, "lms", "moodle", "--roster", str(assignment.ROOT / "roster.csv"), "--partial", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = list(csv.DictReader(io.StringIO((course / "exports" / "pa2_clustering_moodle.csv").read_bytes().decode("utf-8"))))
    roster = {s["email"]: s["student_id"] for s in lms.read_roster(assignment.ROOT / "roster.csv")}
    feedback = {roster[r["Email address"]]: r["Feedback"] for r in rows}["correct_alternative"]
    comments = feedback.split("Comments from the graders:\n", 1)[-1].splitlines()
    assert comments == ["- Act 1B: free response: Say which axis the indices run along.",
                        "- compute_sq_dists: Neat broadcasting. Mind the clipping."], \
        f"expected both of the graders' comments, one line each in notebook order, got {feedback!r}"
