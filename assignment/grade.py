"""Grade a class: ``python -m assignment.grade`` (what ``make grade`` runs).

The flow, one module per step:

1. take in (here): every student folder of ``submitted/`` is read into a task; a student whose
   saved result matches the current files (and the course) is not graded again;
2. fan out (``assignment.fan_out``): the tasks go to Dask workers, one per core by default (never
   more than the tasks) or on a cluster (``--scheduler``), each running one submission's pipeline
   (``assignment.grade_one``: repair, tampering scan, sandboxed nbgrader autograde, feedback).
   A cluster is checked first, before the gradebook is touched: a machine that cannot run this
   grader stops the run with one message (exit status 2), and nothing is written;
3. gradebook (``assignment.gradebook``): this process alone records each result in the
   gradebook (SQLite, or PostgreSQL with ``DB=``) as it arrives;
4. outputs (``assignment.outputs``): autograded notebooks, feedback HTML,
   ``autograded/<student>/grading.json`` (so a stopped run resumes where it was) and
   ``grades.csv``.
"""
import argparse
import hashlib
import os
import statistics
import sys
from contextlib import ExitStack

import nbformat

from . import ASSIGNMENT, ROOT
from .fan_out import ClusterProblem, checked_client, grade_many
from .grade_one import Task, course_bundle
from .feedback import write_again
from .gradebook import db_url, ensure_assignment, graded_by_hand, save_autograded, template_gradebook
from .outputs import (GradeRow, course_paths, failed_row, format_table, graded_row, load_record,
                      make_record, save_record, write_grades, write_graded_files)

#: Bump when grading changes in a way that makes saved results stale.
RECORD_VERSION = 2


class Interrupted(Exception):
    """The run was stopped (Ctrl-C) after ``graded`` of its ``tasks`` submissions were recorded."""

    def __init__(self, graded, tasks):
        super().__init__(graded, tasks)
        self.graded, self.tasks = graded, tasks

    def __str__(self):
        rest = self.tasks - self.graded
        return (f"interrupted: {self.graded} of the {self.tasks} submissions to grade were graded and are kept "
                f"(gradebook, autograded/, feedback/); run it again to grade the other {rest}. "
                "grades.csv is written when a run over the whole class ends.")


def student_ids(submitted_dir):
    """The folders of submitted/, one per student, sorted."""
    return sorted(p.name for p in submitted_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_task(folder, feedback=True):
    """A :class:`Task` holding every file of a student's folder; a symbolic link is not followed
    (it could name a file of the instructor's, which the student's kernel would then read)."""
    files = {p.relative_to(folder).as_posix(): p.read_bytes()
             for p in sorted(folder.rglob("*"))
             if p.is_file() and not p.is_symlink() and ".ipynb_checkpoints" not in p.parts}
    return Task(folder.name, files, feedback)


def fingerprint(task, course):
    """A hash of a submission's files and of the course: a saved result is reused only while both are unchanged."""
    digest = hashlib.sha256(f"v{RECORD_VERSION}:{course.digest}".encode())
    for name, content in sorted(task.files.items()):
        digest.update(name.encode("utf-8", "surrogateescape") + b"\0" + content)  # any file name, even undecodable
    return digest.hexdigest()


def grade_all(students=None, feedback=True, progress=True, force=False, root=ROOT, workers=None,
              scheduler=None):
    """Grade ``students`` (default: all of submitted/) and return their rows, in order.

    ``workers`` local worker processes (default: one per core; never more than the submissions to
    grade), or the Dask cluster at
    ``scheduler``. A student whose saved result matches the current files is not graded
    again unless ``force``; their row is read again from the gradebook (manual grades).
    Raises :class:`ClusterProblem`, having written nothing, when a machine of the cluster at
    ``scheduler`` cannot grade.
    """
    with ExitStack() as stack:
        # the cluster is checked before anything is written: a machine that cannot grade stops the run here
        client = stack.enter_context(checked_client(scheduler)) if scheduler else None
        return _grade_all(students, feedback, progress, force, root, workers, scheduler, client)


def longest_first(tasks, seconds):
    """``tasks`` in the order to grade them: those that took longest when last graded first.

    With the longest first, a run ends with short submissions on every worker, instead of one
    worker still on a hanging notebook while the others wait (the longest-processing-time rule).
    ``seconds`` maps a student id to the seconds its last grading took; a task without them
    counts as the median of those known. Ties keep their order: with nothing known, the order
    is unchanged.
    """
    known = {student: s for student, s in seconds.items() if isinstance(s, (int, float)) and s > 0}
    typical = statistics.median(known.values()) if known else 0
    return sorted(tasks, key=lambda task: known.get(task.student_id, typical), reverse=True)


def _grade_all(students, feedback, progress, force, root, workers, scheduler, client):
    paths, url = course_paths(root), db_url(root)
    ensure_assignment(url, root)
    course = course_bundle(root, template_gradebook(root, paths["cache"]))
    students = student_ids(paths["submitted"]) if students is None else students
    rows, tasks, stamps, unsandboxed, unchanged, notes, seconds = {}, [], {}, [], set(), {}, {}
    for student_id in students:
        try:
            task = read_task(paths["submitted"] / student_id, feedback)
            stamps[student_id] = fingerprint(task, course)
        except (OSError, ValueError) as error:  # one unreadable folder never stops the class
            rows[student_id] = failed_row(student_id, f"the submission's files could not be read: {error}"[:300],
                                          [], "")
            continue
        saved = load_record(paths, student_id)
        seconds[student_id] = saved.get("seconds") if saved else None
        if saved and saved.get("fingerprint") == stamps[student_id]:
            unchanged.add(student_id)
        if not force and student_id in unchanged:
            row = GradeRow(**saved["row"])
            if not saved.get("problem"):  # scores may have changed in formgrader since
                row = graded_row(url, paths, student_id, saved["notes"], saved["flag"])
            rows[student_id] = row
        else:
            tasks.append(task)

    def keep(task, graded):
        write_graded_files(paths, graded, task.files)
        if graded.problem:
            row = failed_row(task.student_id, graded.problem, graded.notes, graded.flag)
        else:
            save_autograded(url, task.student_id, nbformat.reads(graded.notebook, as_version=4), graded.timestamp,
                            same_submission=task.student_id in unchanged)
            row = graded_row(url, paths, task.student_id, graded.notes, graded.flag)
        if not graded.sandboxed:
            unsandboxed.append(task.student_id)
        if graded.kernels.startswith("fresh ("):  # warm kernels were wanted, and the worker said why not
            notes.setdefault(f"graded with fresh kernels, not warm ones: {graded.kernels[len('fresh ('):-1]}",
                             []).append(task.student_id)
        if graded.shared_cpu:
            notes.setdefault(f"graded by workers that shared the cores as plain processes ({graded.shared_cpu}): "
                             "a notebook that keeps the cores busy could slow the timed checks of others graded "
                             "beside it (README: Grading a class)", []).append(task.student_id)
        save_record(paths, task.student_id, make_record(stamps[task.student_id], row, graded))
        rows[task.student_id] = row
        recorded.append(task.student_id)

    recorded = []
    try:
        grade_many(longest_first(tasks, seconds), course, keep, scheduler=scheduler, workers=workers,
                   progress=progress, client=client)
    except KeyboardInterrupt:  # a result cut off mid-way has no record yet: it is graded again next time
        raise Interrupted(len(recorded), len(tasks)) from None
    if feedback:  # a page written from the automatic scores alone, where the gradebook holds more
        # only the very submissions graded before: a changed one's grades by hand are marked for
        # review again (save_autograded), and belong to its old answers
        by_hand = graded_by_hand(url, [s for s in recorded if s in unchanged and rows[s].status != "failed"])
        unwritten = write_again(root, url, by_hand)
        if len(by_hand) > len(unwritten):
            print(f"note: {len(by_hand) - len(unwritten)} submissions graded again have grades entered by hand: "
                  "their feedback was written again with them", file=sys.stderr)
        for student_id, why in sorted(unwritten.items()):
            print(f"warning: the feedback of {student_id} could not be written again with the grades entered by "
                  f"hand ({why}); run make feedback", file=sys.stderr)
    if unsandboxed:
        print(f"warning: bubblewrap (bwrap) was not usable where {len(unsandboxed)} submissions were graded: "
              "student code ran without a sandbox (memory cap only); see the README", file=sys.stderr)
    for what, names in sorted(notes.items()):
        print(f"note: {len(names)} submissions were {what}", file=sys.stderr)
    return [rows[s] for s in students]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("students", nargs="*", help="student ids (default: all of submitted/)")
    parser.add_argument("--no-feedback", action="store_true", help="skip the feedback HTML")
    parser.add_argument("--force", action="store_true", help="grade again even if nothing changed")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS") or 0) or None,
                        help="local worker processes (default: one per core; never more than the submissions to grade; env WORKERS)")
    parser.add_argument("--scheduler", default=os.environ.get("SCHEDULER") or None,
                        help="address of a running Dask scheduler, e.g. tcp://host:8786 (env SCHEDULER)")
    args = parser.parse_args(argv)
    try:
        rows = grade_all(args.students or None, feedback=not args.no_feedback, force=args.force,
                         workers=args.workers, scheduler=args.scheduler)
    except ClusterProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except Interrupted as stop:
        print(f"\n{stop}", file=sys.stderr)
        return 130  # as a shell reports a command stopped by SIGINT
    except KeyboardInterrupt:  # while the class was read, before any submission went to a worker
        print("\ninterrupted before the grading began: nothing was graded in this run", file=sys.stderr)
        return 130
    paths = course_paths(ROOT)
    grades = paths["grades"].relative_to(ROOT)
    if not args.students:
        write_grades(rows, paths["grades"])
    print(format_table(rows))
    print(f"\nwrote {grades} (full reasons there)" if not args.students else
          f"\n{grades} is left as it was: only a run over the whole class writes it",
          f"feedback in feedback/<student>/{ASSIGNMENT}/", sep="; ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
