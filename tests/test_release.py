"""The student release: generated from the source, free of answers, and failing validation."""
import subprocess
import sys

import nbformat
import pytest

from assignment import ASSIGNMENT, NOTEBOOK, RELEASE_DIR, SOURCE_DIR, release

from assignment.nbgrader_cli import nbgrader_env

from .conftest import copy_course


def cells_by_id(path):
    return {c.metadata.get("nbgrader", {}).get("grade_id", c.id): c
            for c in nbformat.read(path, as_version=4).cells}


def test_release_equals_a_fresh_generation(tmp_path):
    course = copy_course(tmp_path, submitted=False)
    (course / "release").rename(course / "release_committed")
    result = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT,
                             "--force"], cwd=course, env=nbgrader_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    fresh = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    committed = nbformat.read(RELEASE_DIR / NOTEBOOK, as_version=4)
    assert fresh == committed, "release/ is stale: run `make release` and commit it"
    assert (course / "release" / ASSIGNMENT / "simulated_data.npy").read_bytes() == \
        (RELEASE_DIR / "simulated_data.npy").read_bytes()


def test_release_holds_no_solution_no_hidden_test_and_no_model_answer():
    """Lines of the master notebook's solutions, hidden tests and model answers: each is in the
    source (else the check would prove nothing), and none is in the release."""
    source, text = (SOURCE_DIR / NOTEBOOK).read_text(), (RELEASE_DIR / NOTEBOOK).read_text()
    for marker in ["BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "Model answer",
                   "_ref_update_centroids", "_lloyd_trajectory", "one_hot @ X"]:
        assert marker in source, f"expected {marker!r} in the master notebook, got it nowhere"
        assert marker not in text, f"expected {marker!r} stripped from the release, got it there"


def test_every_solution_cell_of_the_source_is_stubbed_in_the_release():
    source, released = cells_by_id(SOURCE_DIR / NOTEBOOK), cells_by_id(RELEASE_DIR / NOTEBOOK)
    solutions = [i for i, c in source.items() if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(solutions) >= 20
    for grade_id in solutions:
        stub = released[grade_id].source
        assert "YOUR CODE HERE" in stub or "YOUR ANSWER HERE" in stub, grade_id


def test_hidden_test_cells_keep_only_their_docstring():
    source, released = cells_by_id(SOURCE_DIR / NOTEBOOK), cells_by_id(RELEASE_DIR / NOTEBOOK)
    hidden = [i for i, c in source.items() if "### BEGIN HIDDEN TESTS" in c.source]
    assert len(hidden) >= 25
    for grade_id in hidden:
        visible_part = source[grade_id].source.split("### BEGIN HIDDEN TESTS")[0].rstrip("\n")
        assert released[grade_id].source.rstrip("\n") == visible_part, grade_id


@pytest.mark.parametrize("where, should_pass", [("source", True), ("release", False)])
def test_nbgrader_validate_passes_the_source_and_fails_the_release(where, should_pass):
    notebook = (SOURCE_DIR if where == "source" else RELEASE_DIR) / NOTEBOOK
    passed, report = release.validate(notebook)
    assert passed == should_pass, report
