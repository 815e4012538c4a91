"""The similarity report: a copy with renamed variables is found, independent work is not."""
import re

import nbformat

import assignment
from assignment import similarity
from assignment.examples import EXAMPLES_DIR, fill_release, parse_answers

from .conftest import copy_course

#: The local names of examples/correct_alternative.cells, renamed as a copying student might.
RENAMES = {"row_sums": "s", "x_norms": "xn", "w_norms": "wn", "membership": "onehot", "counts": "sizes",
           "totals": "sums", "centroids": "C", "filled": "nonempty", "dists": "D", "order": "perm",
           "history": "hist", "epoch": "it", "loss": "cost", "assoc": "labels"}


def renamed(source):
    return re.sub(r"\b(%s)\b" % "|".join(RENAMES), lambda m: RENAMES[m.group(1)], source)


def reference_answers():
    """The master notebook's solutions, as an answers dict for the release's answer cells."""
    source = nbformat.read(assignment.SOURCE_DIR / assignment.NOTEBOOK, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def submit(course, student_id, answers):
    path = course / "submitted" / student_id / assignment.ASSIGNMENT / assignment.NOTEBOOK
    path.parent.mkdir(parents=True)
    nbformat.write(fill_release(answers, course / "release" / assignment.ASSIGNMENT / assignment.NOTEBOOK), path)


def test_a_renamed_copy_is_paired_with_its_original_and_independent_work_is_not(tmp_path):
    course = copy_course(tmp_path / "course", submitted=False)
    original = parse_answers((EXAMPLES_DIR / "correct_alternative.cells").read_text())
    copied = {cell: renamed(text) for cell, text in original.items()}
    assert copied["update_centroids"] != original["update_centroids"]
    submit(course, "original", original)
    submit(course, "copier", copied)
    submit(course, "independent", reference_answers())
    submit(course, "untouched", {})
    pairs = similarity.find(course)
    assert [(p.student_a, p.student_b) for p in pairs] == [("copier", "original")]
    pair = pairs[0]
    assert min(pair.similarity_a, pair.similarity_b) > 0.9
    assert "highlight-red" in pair.code_a and "nonempty" in pair.code_a and "filled" in pair.code_b
    out = tmp_path / "similarity.csv"
    similarity.write_csv(pairs, out)
    assert out.read_text().splitlines()[0] == "student_a,student_b,similarity_a,similarity_b,shared_tokens"
    assert out.read_text().splitlines()[1].startswith("copier,original,")


def test_release_stubs_are_boilerplate():
    """Two untouched releases share only the stubs, which never count."""
    stub = similarity.answer_code(nbformat.read(assignment.RELEASE_DIR / assignment.NOTEBOOK, as_version=4))
    assert similarity.similar_pairs({"a": stub, "b": stub}, stub) == []
    assert len(similarity.similar_pairs({"a": stub, "b": stub}, "")) == 1
