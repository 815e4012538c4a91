"""Cheating does not pay: each cheat of tests/cheats.py, graded beside the honest but wrong base
submission it is built on, scores no automatic point above the base in any cell."""
import csv

import pytest
from nbgrader.api import MissingEntry

from assignment.gradebook import cell_scores
from assignment.mutants import automatic_cells

from .cheats import CHEATS, HONEST_TWINS, build
from .conftest import copy_course, run_module, set_cell_timeout

AUTO = automatic_cells()
FUNCTIONS = ("fixed_sum_prod", "compute_sq_dists", "update_centroids", "associate_centroids", "rand_init", "k_means")


@pytest.fixture(scope="module")
def cheat_course(tmp_path_factory):
    """The base and every cheat, graded in one run; the hanging cheat waits 12 s per cell, not 60."""
    course = copy_course(tmp_path_factory.mktemp("cheats"), submitted=False)
    set_cell_timeout(course, 12)
    for name in ("base", *CHEATS, *(f"twin_{cheat}" for cheat in HONEST_TWINS)):
        build(name, course / "submitted" / name)
    result = run_module(course, "grade")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with open(course / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"course": course, "rows": rows}


def auto_scores(course, student):
    """grade_id -> (score, max_score) of the automatic cells, or None when nothing was scored."""
    try:
        scores = cell_scores(student, f"sqlite:///{course / 'gradebook.db'}")
    except MissingEntry:
        return None
    return {g: s for g, s in scores.items() if g in AUTO}


def test_the_base_is_graded_and_loses_points_in_every_function(cheat_course):
    row = cheat_course["rows"]["base"]
    assert row["status"] != "failed" and row["score"] != "", row
    scores = auto_scores(cheat_course["course"], "base")
    assert scores is not None and set(scores) == AUTO
    for function in FUNCTIONS:
        lost = [g for g, (score, top) in scores.items() if g.startswith(function + "_") and score < top]
        assert lost, f"the base keeps every point of {function}: the cheats could not show a gain there"


def test_an_honest_twin_shows_what_its_cheat_forged(cheat_course):
    """A twin shows with plain code (no grader machinery) the figures its cheat forged or borrowed."""
    for cheat, cells in HONEST_TWINS.items():
        assert CHEATS[cheat][2] not in cells.values(), cheat
        assert all(("show()" in code or "plot_sample(" in code) and "_grader" not in code for code in cells.values())
        assert cheat_course["rows"][f"twin_{cheat}"]["status"] != "failed", cheat


@pytest.mark.parametrize("cheat", sorted(CHEATS))
def test_the_cheat_earns_nothing_over_the_base(cheat_course, cheat):
    what, grade_id, _ = CHEATS[cheat]
    course = cheat_course["course"]
    scores = auto_scores(course, cheat)
    if scores is None:  # grading failed: no score at all, so nothing earned
        assert cheat_course["rows"][cheat]["score"] == "", cheat_course["rows"][cheat]
        return
    base = auto_scores(course, f"twin_{cheat}" if cheat in HONEST_TWINS else "base")
    gained = {g: f"{base[g][0]:g} -> {scores[g][0]:g} of {scores[g][1]:g}"
              for g in sorted(AUTO) if scores[g][0] > base[g][0]}
    total = sum(scores[g][0] - base[g][0] for g in gained)
    assert not gained, (f"{cheat} ({what}; in cell {grade_id}) earned {total:g} points over the base in "
                        f"{len(gained)} cells: " + "; ".join(f"{g} {change}" for g, change in gained.items()))
