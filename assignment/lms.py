"""Export the grades as a CSV file that Canvas or Moodle imports.

Reads the gradebook and grading records (``results.py``) and the roster, ``roster.csv``:
``student_id, name, email, canvas_id, sis_user_id, sis_login_id, section`` (one row per
enrolled student; ``student_id`` is the folder name in ``submitted/``).

* **Canvas** (Grades > Import): columns ``Student, ID, SIS User ID, SIS Login ID, Section``,
  then the assignment column ``<title> (<Canvas assignment id>)``, and a ``Points Possible``
  row under the header. Canvas finds students by ``ID`` (its user id), then the SIS ids, then
  the name; the assignment by the id in brackets. Without an id the column is ``<title>``
  alone and Canvas matches the assignment by title (or creates it).
* **Moodle** (Grades > Import > CSV file): ``Email address`` (map it to "useremail"), the
  grade column ``<title>`` and ``Feedback`` (map it to the feedback of that grade item): the
  points, then one line per failed check, the feedback summary's lines shortened (its name, its
  message, the likely mistake; ``assignment/summary.py``), then the comments the graders wrote
  in formgrader, one line per part.

A student on the roster without a submission, a ``failed`` submission, and one whose manual
grading is not finished get an empty cell, never 0, and are listed on the console
(``--partial`` exports the points graded so far instead for the last kind). A ``flagged``
submission's score is exported (the verdicts are decided outside the student's kernel, so no
cheat moves them) and listed on the console for review. Files are UTF-8,
comma-separated, quoted by the ``csv`` module as RFC 4180 says (fields with commas, quotes or
line breaks in double quotes, quotes doubled), lines ending in CRLF.
"""
import argparse
import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from . import ASSIGNMENT, NOTEBOOK, ROOT, results
from .gradebook import db_url
from .summary import short_lines, summarise

TITLE = "PA2 Clustering"
ROSTER_FIELDS = ["student_id", "name", "email", "canvas_id", "sis_user_id", "sis_login_id", "section"]
CANVAS_FIELDS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@dataclass
class Grade:
    """What is exported for one roster student: ``points`` ("" for an empty cell) and why."""
    student: dict
    points: str
    feedback: str
    note: str = ""  # why the cell is empty (or partial), shown on the console


def read_roster(path):
    """The roster rows as dicts; raises ValueError naming missing columns or duplicate ids."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [f for f in ROSTER_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        rows = list(reader)
    ids = [r["student_id"] for r in rows]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"{path}: student_id listed twice: {', '.join(duplicates)}")
    return rows


def _feedback(result, test_names, found=None):
    """The feedback text: the points, then the failed checks, then the graders' comments.

    ``found`` is ``(lines, comments)`` from :func:`feedback_lines`: the summary's lines (one per
    failed check, shortened: name, message, likely mistake) and the comments as "part: comment";
    without it, the failed checks' grade_ids.
    """
    failed = [g for g in test_names if g in result.cells and result.cells[g][0] is not None
              and result.cells[g][0] < result.cells[g][1]]
    text = f"{result.score:g} of {result.max_score:g} points."
    pending = f" {result.pending:g} points of answers graded by hand are still to come." if result.pending else ""
    if found is not None:
        lines, comments = found
        text += pending + ("\nChecks failed:\n" + "\n".join(f"- {line}" for line in lines)
                           if lines else " Every automatic check passed.")
        return text + ("\nComments from the graders:\n" + "\n".join(f"- {c}" for c in comments) if comments else "")
    text += f" Checks failed: {', '.join(failed)}." if failed else " Every automatic check passed."
    return text + pending


def feedback_lines(class_results, root=ROOT):
    """student_id -> (the feedback summary's short lines (assignment/summary.py), the graders'
    comments as "part: comment"), for every counted submission whose autograded notebook is there."""
    found = {}
    with Gradebook(db_url(root)) as gb:
        for result in class_results:
            path = root / "autograded" / result.student_id / ASSIGNMENT / NOTEBOOK
            if not (result.counted and path.exists()):
                continue
            try:
                notebook = gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, result.student_id)
                comments = {c.name: c.manual_comment for c in notebook.comments if c.manual_comment}  # not nbgrader's "No response."
            except MissingEntry:
                comments = {}
            notebook_node = nbformat.read(path, as_version=4)
            summary = summarise(notebook_node, result.cells, comments)
            found[result.student_id] = (short_lines(summary), comment_lines(notebook_node, summary, comments))
    return found


def comment_lines(nb, summary, comments):
    """The graders' ``comments`` (grade_id -> text) as "part: comment", one line each, in notebook
    order: any cell's comment (formgrader has a box under each answer and test, with points or
    not), named by its part where it is an answer graded by hand, else by its grade_id."""
    names = {part.anchor: part.name for part in summary.parts if part.manual}  # a manual part is anchored at its cell
    order = [cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") for cell in nb.cells]
    ranked = sorted(comments.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order))
    return [f"{names.get(grade_id, grade_id)}: {' '.join(str(text).split())}" for grade_id, text in ranked]




def grades_for(roster, class_results, test_names=(), partial=False, lines=None):
    """One Grade per roster student, in roster order (``lines``: :func:`feedback_lines`)."""
    by_id = {r.student_id: r for r in class_results}
    grades = []
    for student in roster:
        result = by_id.get(student["student_id"])
        if result is None:
            grades.append(Grade(student, "", "", "no submission"))
        elif not result.counted:
            grades.append(Grade(student, "", "", f"{result.status}: {result.reason}"))
        elif result.pending and not partial:
            grades.append(Grade(student, "", "", f"manual grading not finished ({result.pending:g} points pending)"))
        else:
            note = f"partial: {result.pending:g} manual points not yet graded" if result.pending else ""
            if result.status == "flagged":  # the score stands; the scan asks a person to look
                note = "; ".join(filter(None, [note, f"score exported, {result.reason}"]))
            grades.append(Grade(student, f"{result.score:g}",
                                _feedback(result, test_names, (lines or {}).get(result.student_id)), note))
    return grades


def canvas_rows(grades, points_possible, title=TITLE, assignment_id=None, points_row=True):
    """The rows of a Canvas gradebook import file."""
    column = f"{title} ({assignment_id})" if assignment_id else title
    rows = [CANVAS_FIELDS + [column]]
    if points_row:
        rows.append(["Points Possible", "", "", "", "", f"{points_possible:g}"])
    for g in grades:
        s = g.student
        rows.append([s["name"], s["canvas_id"], s["sis_user_id"], s["sis_login_id"], s["section"], g.points])
    return rows


def moodle_rows(grades, title=TITLE):
    """The rows of a Moodle CSV grade import file."""
    return [["Email address", title, "Feedback"]] + [[g.student["email"], g.points, g.feedback] for g in grades]


def to_csv(rows):
    """``rows`` as CSV bytes: UTF-8, RFC 4180 quoting (only where needed), CRLF line ends."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def export(lms, roster_path, out_dir, assignment_id=None, partial=False, root=ROOT):
    """Write ``<out_dir>/<assignment>_<lms>.csv``; return (its path, the grades, graded ids not on the roster)."""
    class_results = results.load(root)
    test_names = [name for name, _, _ in results.test_cells(root)]
    roster = read_roster(roster_path)
    grades = grades_for(roster, class_results, test_names, partial, feedback_lines(class_results, root))
    if lms == "canvas":
        points = max((r.max_score for r in class_results if r.max_score), default=0)
        rows = canvas_rows(grades, points, assignment_id=assignment_id)
    else:
        rows = moodle_rows(grades)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{ASSIGNMENT}_{lms}.csv"
    path.write_bytes(to_csv(rows))
    unknown = sorted({r.student_id for r in class_results} - {s["student_id"] for s in roster})
    return path, grades, unknown


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lms", choices=["canvas", "moodle"])
    parser.add_argument("--roster", default=str(ROOT / "roster.csv"), help="default: roster.csv")
    parser.add_argument("--out", default=str(ROOT / "exports"), help="folder to write to (default: exports/)")
    parser.add_argument("--canvas-assignment-id", default="",
                        help="Canvas's id of the assignment (the number in its URL); default: none, "
                             "Canvas then matches the column by its title")
    parser.add_argument("--partial", action="store_true",
                        help="export the points graded so far for submissions still waiting for manual grading")
    args = parser.parse_args(argv)
    path, grades, unknown = export(args.lms, Path(args.roster), Path(args.out),
                                   args.canvas_assignment_id or None, args.partial)
    empty = [g for g in grades if g.points == ""]
    if empty:
        print(f"{len(empty)} of {len(grades)} students get an empty cell (not 0):")
        for g in empty:
            print(f"  {g.student['student_id']} ({g.student['name']}): {g.note}")
    for g in grades:
        if g.points and g.note:
            print(f"  {g.student['student_id']}: {g.note}")
    if unknown:
        print(f"graded but not on the roster, not exported: {', '.join(unknown)}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
