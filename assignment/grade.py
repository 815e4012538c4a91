"""Autograde every submission in submitted/, write feedback and grades.csv, print a summary.

Each submission is autograded by its own ``nbgrader autograde`` process, so one broken
notebook cannot stop the batch: its row in grades.csv says ``failed`` and why, instead of a
silent 0.0. ``grades.csv`` has one row per student with ``student_id, score, max_score,
status, reason``; status is ``graded``, ``needs_manual_grading`` (free responses or plots await
an instructor in formgrader) or ``failed``.
"""
import argparse
import csv
import re
import sys
from dataclasses import dataclass

from nbgrader.api import Gradebook, MissingEntry
from tqdm import tqdm

from . import ASSIGNMENT, AUTOGRADED_DIR, GRADES_CSV, NOTEBOOK, ROOT, SUBMITTED_DIR
from .nbgrader_cli import run_nbgrader

DB_URL = f"sqlite:///{ROOT / 'gradebook.db'}"
FIELDS = ["student_id", "score", "max_score", "status", "reason"]
#: Wall-clock limit for grading one submission; cells also time out one by one (nbgrader_config).
SUBMISSION_TIMEOUT = 15 * 60


@dataclass
class GradeRow:
    student_id: str
    score: str
    max_score: str
    status: str
    reason: str


def student_ids(submitted_dir=SUBMITTED_DIR):
    """The folders of submitted/, one per student, sorted."""
    return sorted(p.name for p in submitted_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def nbgrader_error(output):
    """The most useful line of an nbgrader log that reports a failure."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [re.sub(r"^\[\w+App \| (ERROR|WARNING)\]\s*", "", l) for l in lines
              if "| ERROR]" in l or "Error" in l]
    return (errors[-1] if errors else (lines[-1] if lines else "no output"))[:300]


def autograde(student_id):
    """Autograde one submission; return None on success or a reason it failed."""
    if not (SUBMITTED_DIR / student_id / ASSIGNMENT / NOTEBOOK).exists():
        return f"no {ASSIGNMENT}/{NOTEBOOK} in the submission"
    try:
        result = run_nbgrader("autograde", ASSIGNMENT, "--student", student_id, "--force",
                              timeout=SUBMISSION_TIMEOUT, check=False)
    except Exception as error:  # a timeout of the whole submission, say
        return f"autograding stopped: {type(error).__name__}: {error}"[:300]
    if result.returncode != 0 or not (AUTOGRADED_DIR / student_id / ASSIGNMENT / NOTEBOOK).exists():
        return f"nbgrader autograde failed: {nbgrader_error(result.stdout + result.stderr)}"
    return None


def generate_feedback(student_id):
    """Write feedback/<student>/pa2_clustering/clustering.html; return None or a reason it failed."""
    result = run_nbgrader("generate_feedback", ASSIGNMENT, "--student", student_id, "--force",
                          check=False)
    if result.returncode != 0:
        return f"feedback failed: {nbgrader_error(result.stdout + result.stderr)}"
    return None


def cell_scores(student_id, db_url=DB_URL):
    """Map grade_id -> (score or None if ungraded, max_score) for one autograded submission."""
    with Gradebook(db_url) as gb:
        notebook = gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, student_id)
        return {g.name: (g.score if not g.needs_manual_grade else None, g.max_score)
                for g in notebook.grades}


def gradebook_row(student_id, db_url=DB_URL):
    """The grades.csv row of a student whose autograding succeeded."""
    with Gradebook(db_url) as gb:
        submission = gb.find_submission(ASSIGNMENT, student_id)
        score, max_score = submission.score, submission.max_score
        grades = [g for nb in submission.notebooks for g in nb.grades]
        pending = [g.max_score for g in grades if g.needs_manual_grade]
        lost = sorted(g.name for g in grades if not g.needs_manual_grade and g.score < g.max_score)
    if pending:
        status = "needs_manual_grading"
        reason = f"{len(pending)} answers ({sum(pending):g} points) await manual grading"
    else:
        status, reason = "graded", ""
    if lost:
        reason = "; ".join(filter(None, [reason, f"lost points in {len(lost)} cells"]))
    return GradeRow(student_id, f"{score:g}", f"{max_score:g}", status, reason)


def failed_row(student_id, reason):
    return GradeRow(student_id, "", "", "failed", reason)


def assignment_in_gradebook(db_url=DB_URL):
    """Whether ``nbgrader generate_assignment`` has recorded the assignment's cells."""
    with Gradebook(db_url) as gb:
        try:
            return bool(gb.find_assignment(ASSIGNMENT).notebooks)
        except MissingEntry:
            return False


def grade_all(students=None, feedback=True, progress=True):
    """Autograde, write feedback for, and return the grades.csv rows of ``students``."""
    if not assignment_in_gradebook():
        raise SystemExit("the gradebook has no pa2_clustering yet: run `make release` first")
    rows = []
    students = student_ids() if students is None else students
    for student_id in tqdm(students, desc="autograding", unit="submission", disable=not progress):
        problem = autograde(student_id)
        if problem is None:
            try:
                row = gradebook_row(student_id)
            except MissingEntry:
                row = failed_row(student_id, "autograded notebook missing from the gradebook")
        else:
            row = failed_row(student_id, problem)
        if feedback and row.status != "failed":
            problem = generate_feedback(student_id)
            if problem:
                row.reason = "; ".join(filter(None, [row.reason, problem]))
        rows.append(row)
    return rows


def write_grades(rows, path=GRADES_CSV):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([getattr(row, f) for f in FIELDS])


def format_table(rows):
    """The rows as an aligned text table (also used for the README)."""
    table = [FIELDS] + [[getattr(r, f) for f in FIELDS] for r in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(FIELDS))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip()
                     for line in table)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("students", nargs="*", help="student ids (default: all of submitted/)")
    parser.add_argument("--no-feedback", action="store_true", help="skip the feedback HTML")
    args = parser.parse_args(argv)
    rows = grade_all(args.students or None, feedback=not args.no_feedback)
    write_grades(rows)
    print(format_table(rows))
    print(f"\nwrote {GRADES_CSV.relative_to(ROOT)}; feedback in feedback/<student>/{ASSIGNMENT}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
