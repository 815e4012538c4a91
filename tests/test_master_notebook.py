"""The master notebook runs top to bottom, every test passing, with nothing on stderr."""
import nbformat
import pytest
from nbclient import NotebookClient

from assignment import NOTEBOOK, SOURCE_DIR


@pytest.fixture(scope="module")
def executed_source():
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(SOURCE_DIR)}}).execute()
    return nb


def test_no_cell_raises(executed_source):
    errors = [(c.id, o.ename, o.evalue) for c in executed_source.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    # The only expected errors are caught and printed by the demo cells of Act 1.
    assert errors == []


def test_no_test_cell_writes_to_stderr(executed_source):
    noisy = [c.id for c in executed_source.cells if c.cell_type == "code"
             and c.metadata.get("nbgrader", {}).get("grade")
             for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert noisy == []


def test_every_grade_id_is_unique_and_tests_start_with_a_docstring():
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    meta = [c.metadata["nbgrader"] for c in nb.cells if "nbgrader" in c.metadata]
    ids = [m["grade_id"] for m in meta]
    assert len(ids) == len(set(ids))
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
             and not c.metadata["nbgrader"].get("solution")]
    assert tests and all(c.source.startswith('"""') for c in tests)


def test_test_cells_are_named_after_what_they_grade():
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    prefixes = ("compute_sq_dists_", "update_centroids_", "associate_centroids_", "rand_init_",
                "k_means_", "fixed_sum_prod_", "take_along_axis_", "act7_", "act8_", "act9_", "act10_",
                "grader_")
    tests = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
             if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]
    assert [t for t in tests if not t.startswith(prefixes)] == []
