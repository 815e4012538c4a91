"""The hidden tests against the catalogue of student implementations, through real nbgrader.

Every correct entry keeps full marks, every wrong entry loses points only in its own
function's tests with a clear message, every hidden test cell is failed by some wrong entry,
and grading is deterministic.
"""
import json
import re
import subprocess
import sys

import pytest

from assignment import mutants
from assignment.examples import parse_answers

from .judging import JudgedKernel

ENTRIES = mutants.catalogue()
TARGETS = {"fixed_sum_prod", "take_along_axis", "compute_sq_dists", "update_centroids",
           "associate_centroids", "rand_init", "k_means", "act7", "act8", "act8_plot", "act9",
           "act10", "act10_plot"}


def test_catalogue_is_large_and_well_formed():
    correct = [e for e in ENTRIES if e.expect == "correct"]
    wrong = [e for e in ENTRIES if e.expect == "wrong"]
    assert len(correct) >= 15 and len(wrong) >= 40
    assert all(e.target in TARGETS and e.why and e.answers for e in ENTRIES)
    assert len({e.name for e in ENTRIES}) == len(ENTRIES)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    return mutants.grade_entries(ENTRIES, tmp_path_factory.mktemp("mutants"))


def test_every_entry_gets_the_expected_outcome(outcomes):
    wrongly_judged = [(o.entry.name, o.verdict, o.failing) for o in outcomes if o.verdict != "ok"]
    assert wrongly_judged == [], mutants.format_table(outcomes)


BASELINE = json.loads((mutants.CATALOGUE_DIR / "baseline.json").read_text())


def numbers_out(message):
    return re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", message)


def test_every_entry_fails_the_cells_and_messages_of_the_baseline(outcomes):
    """tests/catalogue/baseline.json: the cells each entry failed, and their messages with the
    numbers left out, when the tests still ran inside the student's kernel. Judged outside, they
    stay the same. The experiment checks count only for entries that target an experiment: the
    others reach them through their own helpers, whose timing and random draws vary."""
    differ = {}
    for o in outcomes:
        mine = {g: numbers_out(o.messages.get(g, "")) for g in o.failing
                if o.entry.target.startswith("act") or not g.startswith(mutants.EXPERIMENT_CHECKS)}
        if mine != BASELINE[o.entry.name]:
            differ[o.entry.name] = sorted(set(mine.items()) ^ set(BASELINE[o.entry.name].items()))
    assert differ == {}
    assert set(BASELINE) == {e.name for e in ENTRIES}


def test_every_hidden_test_cell_catches_some_wrong_entry(outcomes):
    lines, ok = mutants.summary(outcomes)
    assert ok, "\n".join(lines)


def test_the_verdicts_can_fail():
    """The judge itself: a correct entry that lost points, or a wrong one that kept them, is reported."""
    correct = next(e for e in ENTRIES if e.expect == "correct")
    wrong = next(e for e in ENTRIES if e.expect == "wrong" and e.target == "k_means")
    assert mutants.Outcome(correct, {"k_means_zero_loss": (0, 1)}).verdict != "ok"
    assert mutants.Outcome(wrong, {"k_means_zero_loss": (1, 1)}).verdict != "ok"
    broken = mutants.Outcome(wrong, {"rand_init_rows_of_X": (0, 1)}, {"rand_init_rows_of_X": "CheckFailed: expected 1, got 2"})
    assert broken.verdict.startswith("isolation broken")
    unclear = mutants.Outcome(wrong, {"k_means_zero_loss": (0, 1)}, {"k_means_zero_loss": "IndexError: oops"})
    assert unclear.verdict.startswith("unclear")


def test_grading_the_same_submission_ten_times_gives_the_same_scores(tmp_path):
    picks = [e for e in ENTRIES if e.name in ("k_means_uses_global_rng_elsewhere", "rand_init_with_replacement")]
    outcomes = mutants.grade_entries(picks, tmp_path, copies=10)
    for entry in picks:
        runs = [o.scores for o in outcomes if o.entry is entry]
        assert len(runs) == 10 and all(r == runs[0] for r in runs), entry.name


def test_vectorised_checks_pass_fifty_times_while_the_other_core_is_busy():
    """The vectorisation checks, judged outside the kernel as make grade judges them (the
    student's calls timed from the grader), run 50 times for a correct vectorised answer in one
    kernel while a busy loop occupies the other core."""
    answers = parse_answers((mutants.ROOT / "examples" / "correct_alternative.cells").read_text())
    checks = ("compute_sq_dists_vectorised", "update_centroids_vectorised", "associate_centroids_vectorised")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with JudgedKernel("import numpy as np", answers["compute_sq_dists"], answers["update_centroids"],
                          answers["associate_centroids"]) as kernel:
            failures = [error.evalue for _ in range(50) for check in checks for error in kernel.verdict(check)]
    finally:
        busy.kill()
    assert failures == [], failures[:3]
