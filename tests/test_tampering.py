"""The tampering scan: what it finds, and that a worker parses each distinct cell once."""
from assignment import tampering
from assignment.examples import fill_release
from assignment.intake import is_student_cell
from assignment.mutants import reference_answers

TAMPERS = "import numpy as np\nnp.allclose = lambda *a, **k: True\n"


def test_a_second_submission_has_only_its_own_cells_parsed(monkeypatch):
    """The release's cells are the same in every submission: a worker parses them once, and a
    second submission costs only the cells its student wrote differently. Findings are alike."""
    parsed = []
    transform = tampering.TransformerManager.transform_cell
    monkeypatch.setattr(tampering.TransformerManager, "transform_cell",
                        lambda self, source: parsed.append(source) or transform(self, source))
    answers = reference_answers()
    honest = fill_release(answers)
    first = tampering.scan_notebook(honest, is_student_cell)
    before = len(parsed)
    cheat = fill_release({**answers, "compute_sq_dists": answers["compute_sq_dists"] + "\n" + TAMPERS})
    found = tampering.scan_notebook(cheat, is_student_cell)
    assert first == {}
    assert found == {"cell compute_sq_dists": ["assigns np.allclose"]}, found
    again = parsed[before:]
    assert len(again) == 1 and TAMPERS in again[0], f"expected only the changed cell parsed, got {len(again)} cells"
    assert tampering.scan_notebook(cheat, is_student_cell) == found
