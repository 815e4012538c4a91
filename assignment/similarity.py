"""Pairs of submissions whose student-written code is unusually similar, for a person to look at.

copydetect (winnowed fingerprints of the token stream, with variable and function names
replaced, so renaming does not hide copying) compares the answer cells of every pair of
submissions. The code of the release's answer cells (the stubs every student starts from) is
boilerplate and never counts as shared. This only reports: it never changes a grade.
"""
import csv
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from copydetect import CopyDetector

from . import ASSIGNMENT, NOTEBOOK, ROOT
from .intake import nbgrader_meta, read_submission, repair

#: A pair is listed when at least this share of one submission's answer code is in the other.
THRESHOLD = 0.5
FIELDS = ["student_a", "student_b", "similarity_a", "similarity_b", "shared_tokens"]


@dataclass
class Pair:
    """Two submissions; ``similarity_a`` is the share of a's answer code found in b (0..1).

    ``code_a`` and ``code_b`` are the answer code as HTML, the shared parts in ``<span>``s.
    """
    student_a: str
    student_b: str
    similarity_a: float
    similarity_b: float
    shared_tokens: int
    code_a: str
    code_b: str


def answer_code(nb):
    """The code of a notebook's answer cells (nbgrader ``solution`` code cells), one string."""
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code" and nbgrader_meta(c).get("solution"))


def submission_code(root=ROOT):
    """Map student_id -> answer code of each readable submission in ``submitted/``.

    Each notebook is repaired against the release first (as for grading), so that answers
    whose nbgrader metadata was stripped are still found.
    """
    release = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    code = {}
    for folder in sorted(p for p in (root / "submitted").iterdir() if p.is_dir()):
        try:
            code[folder.name] = answer_code(repair(read_submission(folder), release).notebook)
        except Exception:  # a notebook that cannot be graded (its row in grades.csv says why): left out
            continue
    return code


def similar_pairs(code, boilerplate, threshold=THRESHOLD):
    """Pairs of ``code`` (student_id -> source) sharing more than ``threshold`` of one side.

    ``boilerplate`` is source whose fingerprints never count. Sorted, most similar first.
    """
    with tempfile.TemporaryDirectory(prefix="pa2-similarity-") as tmp:
        students, given = Path(tmp, "students"), Path(tmp, "boilerplate")
        students.mkdir()
        given.mkdir()
        (given / "release.py").write_text(boilerplate)
        for student_id, source in code.items():
            (students / f"{student_id}.py").write_text(source)
        detector = CopyDetector(test_dirs=[str(students)], boilerplate_dirs=[str(given)],
                                extensions=["py"], display_t=threshold, force_language="python",
                                autoopen=False, silent=True)
        detector.run()
        found = detector.get_copied_code_list() if len(code) > 1 else []
    pairs = []
    for sim_a, sim_b, file_a, file_b, html_a, html_b, tokens in found:
        a, b = Path(file_a).stem, Path(file_b).stem
        if a > b:  # copydetect's order follows the folder listing: make it alphabetical
            a, b, sim_a, sim_b, html_a, html_b = b, a, sim_b, sim_a, html_b, html_a
            # and keep its colours by side: the first student's shared code red, the second's green
            html_a = html_a.replace("'highlight-green'", "'highlight-red'")
            html_b = html_b.replace("'highlight-red'", "'highlight-green'")
        pairs.append(Pair(a, b, float(sim_a), float(sim_b), int(tokens), html_a, html_b))
    return sorted(pairs, key=lambda p: -max(p.similarity_a, p.similarity_b))


def find(root=ROOT, threshold=THRESHOLD):
    """The similar pairs among the submissions of the course at ``root``."""
    release = nbformat.read(root / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    return similar_pairs(submission_code(root), answer_code(release), threshold)


def write_csv(pairs, path):
    """``similarity.csv``: one row per pair, similarities rounded to 3 decimals."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FIELDS)
        for p in pairs:
            writer.writerow([p.student_a, p.student_b, f"{p.similarity_a:.3f}",
                             f"{p.similarity_b:.3f}", p.shared_tokens])
