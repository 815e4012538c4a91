"""Grade the catalogue of student implementations through the real grading path.

Every entry of ``tests/catalogue/{correct,wrong}/*.cells`` replaces a few cells of a complete
reference submission (the release with the source's solutions filled in). The resulting
notebooks are graded exactly as ``make grade`` grades (``assignment.grade``: repair, tampering
scan, sandboxed ``nbgrader autograde``) in a throw-away course folder, on parallel workers, and the
scores checked against the entry's expectation:

* a ``correct`` entry keeps every automatic point;
* a ``wrong`` entry loses points, and only in the tests of its ``# target:`` function (or in
  the checks of the experiments of Acts 7 to 10, which run the student's own helpers);
* every failing test says ``CheckFailed: ... expected ..., got ...``.

Entry format: comment lines ``# target: <function or act>`` and ``# why: <text>``, optionally
``# fails: <grade_id>, ...`` (then exactly those test cells must fail), then blocks
``### cell: <grade_id>`` as in ``examples/`` (see ``assignment.examples``).
"""
import argparse
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import ASSIGNMENT, NOTEBOOK, ROOT, SOURCE_DIR, copy_course
from .examples import fill_release, parse_answers
from .grade import grade_all
from .gradebook import cell_scores
from .hints import hint_of

CATALOGUE_DIR = ROOT / "tests" / "catalogue"
#: Checks of the experiments of Acts 7 to 10, which run the student's own helpers (grade_id prefixes).
EXPERIMENT_CHECKS = ("act7_", "act8_", "act9_", "act10_")
COURSE_FILES = ("nbgrader_config.py", "assignment", "source", "release")


@dataclass
class Entry:
    name: str
    expect: str          # "correct" or "wrong"
    target: str
    why: str
    answers: dict
    fails: frozenset = frozenset()  # when given, exactly these test cells must fail


@dataclass
class Outcome:
    entry: Entry
    scores: dict = field(default_factory=dict)    # grade_id -> (score, max_score), automatic cells
    messages: dict = field(default_factory=dict)  # grade_id -> error line of a failing cell
    hints: dict = field(default_factory=dict)     # grade_id -> id of the likely mistake shown under it
    problem: str = ""                             # grading failed altogether

    @property
    def failing(self):
        return sorted(g for g, (s, m) in self.scores.items() if s < m)

    @property
    def points_lost(self):
        return sum(m - s for s, m in self.scores.values())

    @property
    def verdict(self):
        """'ok' when the outcome matches the entry's expectation, else what went wrong."""
        if self.problem:
            return f"not graded: {self.problem}"
        if self.entry.expect == "correct":
            return "ok" if not self.failing else "a correct entry lost points"
        if not self.failing:
            return "a wrong entry kept full marks"
        outside = [g for g in self.failing
                   if not g.startswith((self.entry.target,) + EXPERIMENT_CHECKS)]
        if outside:
            return f"isolation broken: also failed {', '.join(outside)}"
        if self.entry.fails and set(self.failing) != self.entry.fails:
            return f"expected to fail exactly {', '.join(sorted(self.entry.fails))}"
        unclear = [g for g, m in self.messages.items()
                   if not (m.startswith("CheckFailed: ") and "expected" in m and "got" in m)]
        if unclear:
            return f"unclear failure message in {', '.join(unclear)}"
        return "ok"


def read_entry(path):
    text = path.read_text()
    header = dict(re.findall(r"^# (target|why|fails): (.+)$", text, flags=re.M))
    if "target" not in header:
        raise ValueError(f"{path} has no '# target:' line")
    fails = frozenset(g.strip() for g in header.get("fails", "").split(",") if g.strip())
    return Entry(path.stem, path.parent.name, header["target"], header.get("why", ""),
                 parse_answers(text), fails)


def catalogue(directory=CATALOGUE_DIR):
    return [read_entry(p) for kind in ("correct", "wrong")
            for p in sorted((directory / kind).glob("*.cells"))]


def reference_answers():
    """grade_id -> source of every solution cell of the master notebook, markers removed."""
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            answers[meta["grade_id"]] = "\n".join(
                line for line in cell.source.splitlines()
                if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
    return answers


def automatic_cells():
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution") and c.metadata["nbgrader"]["points"] > 0}


def make_course(folder, submissions):
    """A course folder holding ``submissions`` (student -> notebook)."""
    copy_course(folder, COURSE_FILES)
    for student, nb in submissions.items():
        path = folder / "submitted" / student / ASSIGNMENT / NOTEBOOK
        path.parent.mkdir(parents=True)
        nbformat.write(nb, path)
    return folder


def grade_course(folder, workers=None, order=None):
    """Grade every student of the course ``folder`` as ``make grade`` does (repair, tampering
    scan, sandboxed nbgrader autograde on parallel workers), in ``order`` (default: by name);
    return their rows by student."""
    rows = grade_all(order, feedback=False, progress=False, force=True, root=folder, workers=workers)
    return {row.student_id: row for row in rows}


def class_students(entries, copies):
    """``(student, entry)`` pairs, in catalogue order: an entry's ``copies[name]`` copies (default
    one) are students ``<name>__<i>``, one after another."""
    return [(f"{e.name}__{c}" if copies.get(e.name, 1) > 1 else e.name, e)
            for e in entries for c in range(copies.get(e.name, 1))]


def spread_copies(students, copies):
    """The student ids of ``students`` (``(student, entry)`` pairs, an entry's copies one after
    another) in grading order: an entry's ``copies[name]`` copies spread evenly through the class
    from its place, so that each copy is graded after other students than the copy before it
    (while an entry has fewer copies than the class has entries; copies of two entries that
    land on the same place keep the order of ``students``)."""
    firsts = [student for student, entry in students if copies.get(entry.name, 1) == 1 or student.endswith("__0")]
    place = {student: index for index, student in enumerate(firsts)}
    for student, entry in students:
        if student not in place:
            count, copy = copies[entry.name], int(student.rsplit("__", 1)[1])
            place[student] = (place[f"{entry.name}__0"] + copy * len(firsts) / count) % len(firsts) + 0.5
    return sorted(place, key=place.__getitem__)


def collect(folder, student, entry, auto_cells):
    """The Outcome of one student of a graded course folder."""
    outcome = Outcome(entry)
    try:
        scores = cell_scores(student, f"sqlite:///{folder / 'gradebook.db'}")
        outcome.scores = {g: s for g, s in scores.items() if g in auto_cells}
    except Exception as error:
        outcome.problem = f"{type(error).__name__}: {error}"[:200]
        return outcome
    graded = nbformat.read(folder / "autograded" / student / ASSIGNMENT / NOTEBOOK, as_version=4)
    for cell in graded.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in outcome.failing:
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            outcome.messages[grade_id] = (f"{errors[0].ename}: {errors[0].evalue}" if errors
                                          else "no error output")
        hint = hint_of(cell)
        if grade_id and hint:
            outcome.hints[grade_id] = hint[0]
    return outcome


def grade_entries(entries, workdir, workers=None, copies=None):
    """Autograde ``entries`` on ``workers`` processes (default: one per core), in one class, and
    return their Outcomes in order. ``copies`` maps an entry's name to how many times it is
    graded (default once); its copies are students ``<name>__<i>``, spread through the class
    (:func:`spread_copies`)."""
    base = reference_answers()
    auto_cells = automatic_cells()
    copies = copies or {}
    students = class_students(entries, copies)
    folder = make_course(workdir / "course", {s: fill_release({**base, **e.answers}) for s, e in students})
    rows = grade_course(folder, workers, spread_copies(students, copies))
    found = []
    for student, entry in students:
        if rows[student].status in ("failed", "flagged"):
            found.append(Outcome(entry, problem=f"{rows[student].status}: {rows[student].reason}"[:300]))
        else:
            found.append(collect(folder, student, entry, auto_cells))
    return found


def format_table(outcomes):
    rows = [("entry", "expected", "target", "lost", "failing test cells", "verdict")]
    for o in outcomes:
        rows.append((o.entry.name, o.entry.expect, o.entry.target, f"{o.points_lost:g}",
                     ", ".join(o.failing) or "-", o.verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)


def summary(outcomes):
    """Lines of the summary, and whether everything held."""
    correct = [o for o in outcomes if o.entry.expect == "correct"]
    wrong = [o for o in outcomes if o.entry.expect == "wrong"]
    caught = {g for o in wrong for g in o.failing}
    auto_cells = automatic_cells()
    uncaught = sorted(auto_cells - caught)
    lines = [
        f"correct entries keeping full marks: {sum(o.verdict == 'ok' for o in correct)}/{len(correct)}",
        f"wrong entries losing points, only in their own tests, with clear messages: "
        f"{sum(o.verdict == 'ok' for o in wrong)}/{len(wrong)}",
        f"hidden test cells failed by at least one wrong entry: {len(auto_cells) - len(uncaught)}"
        f"/{len(auto_cells)}" + (f" (never failed: {', '.join(uncaught)})" if uncaught else ""),
    ]
    return lines, all(o.verdict == "ok" for o in outcomes) and not uncaught


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these entries (default: all)")
    parser.add_argument("--workers", type=int, default=None, help="default: one per core")
    parser.add_argument("--keep", type=Path, help="grade in this folder and keep it")
    args = parser.parse_args(argv)
    entries = [e for e in catalogue() if not args.names or e.name in args.names]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pa2-mutants-"))
    try:
        outcomes = grade_entries(entries, workdir, workers=args.workers)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(outcomes))
    lines, ok = summary(outcomes)
    print("\n" + "\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
