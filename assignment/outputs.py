"""What grading leaves on disk: autograded notebooks, feedback, per-student records, grades.csv.

``grades.csv`` has one row per student: ``student_id, score, max_score, status, reason`` with
status ``graded``, ``needs_manual_grading`` (free responses wait in formgrader), ``failed``
(nothing could be scored: the score is left empty, never 0) or ``flagged`` (graded, but the
code tampers with the grader: a person should look).
"""
import csv
import json
import os
import re
from dataclasses import asdict, dataclass

import nbformat
from nbgrader.api import MissingEntry

from . import ASSIGNMENT, NOTEBOOK
from .gradebook import submission_scores
from .summary import plural

FIELDS = ["student_id", "score", "max_score", "status", "reason"]


@dataclass
class GradeRow:
    student_id: str
    score: str
    max_score: str
    status: str
    reason: str


def course_paths(root):
    """Where the course at ``root`` keeps submissions and what grading writes."""
    return {"submitted": root / "submitted", "autograded": root / "autograded",
            "feedback": root / "feedback", "grades": root / "grades.csv", "cache": root / ".grading"}


def write_atomically(path, text):
    """Write ``text`` (str or bytes) to ``path`` so that a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        partial.write_bytes(text)
    else:
        partial.write_text(text)
    os.replace(partial, path)


def autograded_path(paths, student_id):
    return paths["autograded"] / student_id / ASSIGNMENT / NOTEBOOK


def feedback_path(paths, student_id):
    return paths["feedback"] / student_id / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")


def record_path(paths, student_id):
    return paths["autograded"] / student_id / "grading.json"


#: The files of nbgrader's exchange that go with a submission's autograded notebook and feedback:
#: ``nbgrader release_feedback`` reads both beside each feedback page, and files its copy under a
#: hash of the secret, which only the student's own ``fetch_feedback`` knows to look for.
EXCHANGE_FILES = ("timestamp.txt", "submission_secret.txt")
#: Bigger than any that nbgrader writes: a larger one is the student's own and is not copied.
EXCHANGE_FILE_LIMIT = 4096


def write_graded_files(paths, graded, files):
    """Write the autograded notebook and the feedback of one result (where it has them), each with
    the exchange's files of the submission (``files``: paths in the student's folder -> bytes), as
    nbgrader's ``autograde`` and ``generate_feedback`` copy them."""
    exchange = {}
    for name in EXCHANGE_FILES:
        content = files.get(f"{ASSIGNMENT}/{name}")
        if content is not None and len(content) <= EXCHANGE_FILE_LIMIT:
            exchange[name] = content
    for written, path in ((graded.notebook, autograded_path(paths, graded.student_id)),
                          (graded.feedback, feedback_path(paths, graded.student_id))):
        if written:
            write_atomically(path, written)
            for name in EXCHANGE_FILES:
                if name in exchange:
                    write_atomically(path.with_name(name), exchange[name])
                else:
                    path.with_name(name).unlink(missing_ok=True)


def timed_out_cells(notebook):
    """grade_ids (or numbers) of the cells of an autograded notebook that ran out of time."""
    found = []
    for number, cell in enumerate(notebook.cells, start=1):
        for output in cell.get("outputs", []):
            if output.output_type == "error" and ("Timeout" in output.ename or "endless loop" in output.evalue):
                found.append(cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{number}")
                break
    return found


#: C0 and C1 control characters (and DEL): in a reason they could rewrite the instructor's
#: terminal line ("\r", escape sequences) or hide what follows.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: What a spreadsheet reads as the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def printable(text):
    """``text`` with each control character written as its escape (``\x1b``), a tab or newline as a space."""
    return CONTROL.sub(lambda m: " " if m.group() in "\t\n" else repr(m.group())[1:-1], text)


def spreadsheet_safe(value):
    """A CSV cell that no spreadsheet reads as a formula: a text starting with =, +, -, @, tab or
    carriage return gets a leading apostrophe (OWASP's advice); numbers, signed ones too, stay."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def failed_row(student_id, problem, notes, flag):
    """The row of a submission that could not be scored: empty score, never 0."""
    flagged = [f"flagged for review: {flag}"] if flag else []
    return GradeRow(student_id, "", "", "failed", printable("; ".join([problem] + flagged + notes)))


def graded_row(url, paths, student_id, notes, flag):
    """The row of an autograded submission, read from the gradebook (so manual grades count)."""
    try:
        scores = submission_scores(url, student_id)
    except MissingEntry:
        return GradeRow(student_id, "", "", "failed", "autograded notebook missing from the gradebook")
    return row_of(paths, student_id, scores, notes, flag)


def row_of(paths, student_id, scores, notes, flag):
    """The row of an autograded submission whose gradebook :class:`~.gradebook.Scores` are
    ``scores``: its status, and a reason made of the answers awaiting manual grading, the cells
    that lost points or ran out of time, the grading ``notes`` and the tampering ``flag``."""
    waiting = "awaits" if len(scores.pending) == 1 else "await"
    reasons = ([f"{plural(len(scores.pending), 'answer')} ({plural(sum(scores.pending), 'point')}) {waiting} manual grading"]
               if scores.pending else [])
    if scores.lost:
        reasons.append(f"lost points in {plural(len(scores.lost), 'cell')}")
    notebook_file = autograded_path(paths, student_id)
    timed_out = timed_out_cells(nbformat.read(notebook_file, as_version=4)) if notebook_file.exists() else []
    if timed_out:
        reasons.append(f"cells stopped for taking too long: {', '.join(timed_out[:5])}")
    row = GradeRow(student_id, f"{scores.score:g}", f"{scores.max_score:g}",
                   "needs_manual_grading" if scores.pending else "graded", printable("; ".join(reasons + notes)))
    if flag:
        row.status = "flagged"
        row.reason = printable("; ".join(filter(None, [f"flagged for review: {flag}", row.reason])))
    return row


def save_record(paths, student_id, record):
    """Remember one student's result in ``autograded/<student>/grading.json``."""
    write_atomically(record_path(paths, student_id), json.dumps(record, indent=1))


def load_record(paths, student_id):
    """The student's saved result (a dict), or None when there is none or it cannot be read
    (then the submission is graded again and the record written anew, rather than the run stopping)."""
    try:
        record = json.loads(record_path(paths, student_id).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def make_record(fingerprint, row, graded):
    return {"fingerprint": fingerprint, "row": asdict(row), "notes": graded.notes, "flag": graded.flag,
            "problem": graded.problem, "seconds": graded.seconds, "worker": graded.worker,
            "sandboxed": graded.sandboxed, "kernels": graded.kernels, "shared_cpu": graded.shared_cpu}


def write_grades(rows, path):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([spreadsheet_safe(getattr(row, f)) for f in FIELDS])


def format_table(rows, width=140):
    """The rows as an aligned text table (also used for the README); long reasons are cut."""
    table = [FIELDS] + [[getattr(r, f) for f in FIELDS] for r in rows]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(FIELDS) - 1)]
    lines = []
    for line in table:
        head = "  ".join(str(v).ljust(w) for v, w in zip(line, widths))
        reason = str(line[-1])
        room = max(20, width - len(head) - 2)
        lines.append(f"{head}  {reason if len(reason) <= room else reason[:room - 3] + '...'}".rstrip())
    return "\n".join(lines)
