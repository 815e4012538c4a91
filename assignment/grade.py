"""Autograde every submission in submitted/, write feedback and grades.csv, print a summary.

For each student folder of ``submitted/``:

1. the notebook is found and read (a missing, misnamed, empty or broken notebook is ``failed``
   with a reason a person understands), repaired against the release (deleted or duplicated
   test cells, stripped metadata, changed points) into ``.grading/submitted/``, and its cells
   read for tampering with the grader;
2. ``nbgrader autograde`` grades the repaired copy in its own process, with the kernel in a
   sandbox (``assignment/sandbox.py``: no files of the course, no network, a memory cap);
3. ``nbgrader generate_feedback`` writes ``feedback/<student>/pa2_clustering/clustering.html``;
4. the result is saved in ``autograded/<student>/grading.json``, so a run that is stopped
   part way keeps what it finished: the next run grades only what is new or changed.

``grades.csv`` has one row per student: ``student_id, score, max_score, status, reason`` with
status ``graded``, ``needs_manual_grading`` (free responses or plots wait in formgrader),
``failed`` (nothing could be scored; the score is left empty, not 0) or ``flagged`` (graded, but
the code tampers with the grader: a person should look).
"""
import argparse
import csv
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from tqdm import tqdm

from . import ASSIGNMENT, GRADES_CSV, NOTEBOOK, ROOT, SUBMITTED_DIR
from .intake import SubmissionProblem, is_student_cell, prepare_submission
from .nbgrader_cli import run_nbgrader
from .sandbox import bwrap_works
from .tampering import describe_findings, scan_notebook

FIELDS = ["student_id", "score", "max_score", "status", "reason"]
#: Wall-clock limit for grading one submission; cells also time out one by one (nbgrader_config).
SUBMISSION_TIMEOUT = 20 * 60
#: Address-space cap of the nbgrader process of one submission (its kernel has its own cap).
NBGRADER_MEMORY_MB = 6144
KERNEL_NAME = "pa2-sandbox"
#: Bump when grading changes in a way that makes saved results stale.
RECORD_VERSION = 1


@dataclass
class GradeRow:
    student_id: str
    score: str
    max_score: str
    status: str
    reason: str


def course_paths(root=ROOT):
    return {"submitted": root / "submitted", "staging": root / ".grading" / "submitted",
            "autograded": root / "autograded", "db_url": f"sqlite:///{root / 'gradebook.db'}",
            "kernels": root / ".grading" / "kernels", "grades": root / "grades.csv"}


def student_ids(submitted_dir=SUBMITTED_DIR):
    """The folders of submitted/, one per student, sorted."""
    return sorted(p.name for p in submitted_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def fingerprint(folder, root=ROOT):
    """A hash of every file of a submission folder and of the master notebook (which holds
    the tests): a saved result is reused only while both are unchanged."""
    digest = hashlib.sha256(f"v{RECORD_VERSION}".encode())
    digest.update((root / "source" / ASSIGNMENT / NOTEBOOK).read_bytes())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def install_kernelspec(kernels_dir):
    """Write the sandboxed kernel's kernelspec under ``kernels_dir/kernels/``; return the dir."""
    spec_dir = kernels_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, str(Path(__file__).with_name("sandbox.py")), "{connection_file}"],
            "display_name": "PA2 grading (sandboxed)", "language": "python",
            "interrupt_mode": "message"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return kernels_dir


def nbgrader_error(output):
    """The most useful line of an nbgrader log that reports a failure."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [re.sub(r"^\[\w+App \| (ERROR|WARNING)\]\s*", "", l) for l in lines
              if "| ERROR]" in l or "Error" in l]
    return (errors[-1] if errors else (lines[-1] if lines else "no output"))[:300]


KERNEL_DIED = ("the kernel died while running the notebook (os._exit, a crash in compiled code, "
               "or the memory cap)")
#: What a cell that killed the kernel is replaced with when the notebook is graded again.
KILLED_CELL_STUB = ('raise RuntimeError("This cell stopped the grading kernel (os._exit, a crash '
                    'or running out of memory), so the grader did not run it.")')


def autograde(student_id, paths, sandbox):
    """Autograde the staged copy of one submission.

    Returns (None, None) on success, else (why it failed, the cell that was running when the
    kernel died, as recorded by ``ExecuteRecordingProgress``, or None).
    """
    runtime = Path(tempfile.mkdtemp(prefix="pa2-kernel-"))
    progress = runtime / "progress.json"
    env_extra = {"JUPYTER_PATH": str(paths["kernels"]), "TMPDIR": str(runtime),
                 "PA2_SANDBOX": "bwrap" if sandbox else "none", "PA2_PROGRESS_FILE": str(progress)}
    args = ["autograde", ASSIGNMENT, "--student", student_id, "--force",
            f"--CourseDirectory.submitted_directory={paths['staging']}",
            f"--Execute.kernel_name={KERNEL_NAME}", "--KernelManager.transport=ipc",
            f"--KernelManager.ip={runtime / 'kernel'}"]
    try:
        result = run_nbgrader(*args, timeout=SUBMISSION_TIMEOUT, check=False, env_extra=env_extra,
                              memory_mb=NBGRADER_MEMORY_MB, cwd=paths["submitted"].parent)
        output = result.stdout + result.stderr
        if result.returncode == 0 and (paths["autograded"] / student_id / ASSIGNMENT / NOTEBOOK).exists():
            return None, None
        if "DeadKernelError" in output or "Kernel died" in output:
            culprit = json.loads(progress.read_text()) if progress.exists() else None
            return KERNEL_DIED, culprit
        return f"nbgrader autograde failed: {nbgrader_error(output)}", None
    except Exception as error:  # the whole submission ran out of time, say
        return f"autograding stopped: {type(error).__name__}"[:300], None
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def skip_killer_cell(student_id, paths, culprit):
    """Replace the student cell that killed the kernel in the staged notebook.

    Returns the cell's label, or None when the cell is not the student's (a test cell whose
    call of a student function killed the kernel cannot be left out).
    """
    path = paths["staging"] / student_id / ASSIGNMENT / NOTEBOOK
    nb = nbformat.read(path, as_version=4)
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("id") == culprit.get("id"):
            if cell.cell_type != "code" or not is_student_cell(cell.metadata.get("nbgrader", {})):
                return None
            cell.source = KILLED_CELL_STUB
            nbformat.write(nb, path)
            return cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{number}"
    return None


def generate_feedback(student_id, paths):
    """Write the feedback HTML; return None or a reason it failed."""
    result = run_nbgrader("generate_feedback", ASSIGNMENT, "--student", student_id, "--force",
                          check=False, cwd=paths["submitted"].parent)
    if result.returncode != 0:
        return f"feedback failed: {nbgrader_error(result.stdout + result.stderr)}"
    return None


def cell_scores(student_id, db_url=course_paths()["db_url"]):
    """Map grade_id -> (score or None if ungraded, max_score) for one autograded submission."""
    with Gradebook(db_url) as gb:
        notebook = gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, student_id)
        return {g.name: (g.score if not g.needs_manual_grade else None, g.max_score)
                for g in notebook.grades}


def timed_out_cells(student_id, paths):
    """grade_ids (or numbers) of the cells of the autograded notebook that ran out of time."""
    nb = nbformat.read(paths["autograded"] / student_id / ASSIGNMENT / NOTEBOOK, as_version=4)
    found = []
    for number, cell in enumerate(nb.cells, start=1):
        for output in cell.get("outputs", []):
            if output.output_type == "error" and ("Timeout" in output.ename or "endless loop" in output.evalue):
                found.append(cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{number}")
                break
    return found


def gradebook_row(student_id, paths, notes):
    """The grades.csv row of a student whose autograding succeeded."""
    with Gradebook(paths["db_url"]) as gb:
        submission = gb.find_submission(ASSIGNMENT, student_id)
        score, max_score = submission.score, submission.max_score
        grades = [g for nb in submission.notebooks for g in nb.grades]
        pending = [g.max_score for g in grades if g.needs_manual_grade]
        lost = sorted(g.name for g in grades if not g.needs_manual_grade and g.score < g.max_score)
    status = "needs_manual_grading" if pending else "graded"
    reasons = [f"{len(pending)} answers ({sum(pending):g} points) await manual grading"] if pending else []
    if lost:
        reasons.append(f"lost points in {len(lost)} cells")
    timed_out = timed_out_cells(student_id, paths)
    if timed_out:
        reasons.append(f"cells stopped for taking too long: {', '.join(timed_out[:5])}")
    return GradeRow(student_id, f"{score:g}", f"{max_score:g}", status, "; ".join(reasons + notes))


def graded_row(student_id, paths, notes, flag):
    """The row of a graded submission, read from the gradebook (so manual grades count)."""
    try:
        row = gradebook_row(student_id, paths, notes)
    except MissingEntry:
        return GradeRow(student_id, "", "", "failed", "autograded notebook missing from the gradebook")
    if flag:
        row.status = "flagged"
        row.reason = "; ".join(filter(None, [f"flagged for review: {flag}", row.reason]))
    return row


def grade_one(student_id, paths, sandbox, feedback=True):
    """Grade one submission from scratch; return its row and what to remember about it."""
    try:
        repairs, notebook = prepare_submission(paths["submitted"] / student_id,
                                               paths["staging"] / student_id)
    except SubmissionProblem as problem:
        return GradeRow(student_id, "", "", "failed", str(problem)), {}
    memo = {"notes": [f"repaired: {note}" for note in repairs],
            "flag": describe_findings(scan_notebook(notebook, is_student_cell))}
    problem, culprit = autograde(student_id, paths, sandbox)
    skipped = []
    while problem == KERNEL_DIED and culprit and len(skipped) < 3:
        label = skip_killer_cell(student_id, paths, culprit)
        if label is None:
            problem += f", in test cell {culprit.get('grade_id')}; nothing could be scored"
            break
        skipped.append(label)
        problem, culprit = autograde(student_id, paths, sandbox)
    if skipped:
        memo["notes"].append(f"graded again without cell {', '.join(skipped)}, which stopped the kernel")
    if problem == KERNEL_DIED:
        problem += "; nothing could be scored"
    if problem:
        flag = [f"flagged for review: {memo['flag']}"] if memo["flag"] else []
        return GradeRow(student_id, "", "", "flagged" if flag else "failed",
                        "; ".join(flag + [problem] + memo["notes"])), memo
    if feedback:
        problem = generate_feedback(student_id, paths)
        if problem:
            memo["notes"].append(problem)
    return graded_row(student_id, paths, memo["notes"], memo["flag"]), memo


def assignment_in_gradebook(db_url):
    """Whether ``nbgrader generate_assignment`` has recorded the assignment's cells."""
    with Gradebook(db_url) as gb:
        try:
            return bool(gb.find_assignment(ASSIGNMENT).notebooks)
        except MissingEntry:
            return False


def record_path(student_id, paths):
    return paths["autograded"] / student_id / "grading.json"


def grade_all(students=None, feedback=True, progress=True, force=False, root=ROOT, sandbox=None):
    """Grade ``students`` (default: all of submitted/) and return their rows.

    A student whose saved result matches the current files of their submission is not graded
    again unless ``force``.
    """
    paths = course_paths(root)
    if not assignment_in_gradebook(paths["db_url"]):
        raise SystemExit("the gradebook has no pa2_clustering yet: run `make release` first")
    install_kernelspec(paths["kernels"])
    sandbox = bwrap_works() if sandbox is None else sandbox
    if not sandbox:
        print("warning: bubblewrap (bwrap) is not usable here: student code runs without a sandbox "
              "(memory cap only); see the README", file=sys.stderr)
    students = student_ids(paths["submitted"]) if students is None else students
    rows = []
    for student_id in tqdm(students, desc="grading", unit="submission", disable=not progress):
        folder = paths["submitted"] / student_id
        stamp = fingerprint(folder, root)
        record = record_path(student_id, paths)
        if not force and record.exists():
            saved = json.loads(record.read_text())
            if saved.get("fingerprint") == stamp:
                row = GradeRow(**saved["row"])
                if row.score != "":  # graded: scores may have changed in formgrader since
                    row = graded_row(student_id, paths, saved["notes"], saved["flag"])
                rows.append(row)
                continue
        row, memo = grade_one(student_id, paths, sandbox, feedback)
        record.parent.mkdir(parents=True, exist_ok=True)
        partial = record.with_suffix(".tmp")
        partial.write_text(json.dumps({"fingerprint": stamp, "row": asdict(row), **memo}, indent=1))
        os.replace(partial, record)  # atomic: a killed run leaves no half-written record
        rows.append(row)
    return rows


def write_grades(rows, path=GRADES_CSV):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for row in rows:
            writer.writerow([getattr(row, f) for f in FIELDS])


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("students", nargs="*", help="student ids (default: all of submitted/)")
    parser.add_argument("--no-feedback", action="store_true", help="skip the feedback HTML")
    parser.add_argument("--force", action="store_true", help="grade again even if nothing changed")
    args = parser.parse_args(argv)
    rows = grade_all(args.students or None, feedback=not args.no_feedback, force=args.force)
    paths = course_paths()
    if not args.students:
        write_grades(rows, paths["grades"])
    print(format_table(rows))
    print(f"\nwrote {paths['grades'].relative_to(ROOT)} (full reasons there); "
          f"feedback in feedback/<student>/{ASSIGNMENT}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
