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

from assignment import hints, mutants
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


#: Entries graded COPIES times in the catalogue's class, to show that grading is deterministic:
#: one draws from NumPy's global generator outside rand_init, one draws with replacement.
REPEATED = ("k_means_uses_global_rng_elsewhere", "rand_init_with_replacement")
COPIES = 4


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every entry's Outcomes, the REPEATED ones COPIES times over, all graded in one class."""
    return mutants.grade_entries(ENTRIES, tmp_path_factory.mktemp("mutants"),
                                 copies=dict.fromkeys(REPEATED, COPIES))


@pytest.fixture(scope="module")
def outcomes(graded):
    """One Outcome per entry, in catalogue order."""
    first = {}
    for o in graded:
        first.setdefault(o.entry.name, o)
    return list(first.values())


def test_every_entry_gets_the_expected_outcome(outcomes):
    wrongly_judged = [(o.entry.name, o.verdict, o.failing) for o in outcomes if o.verdict != "ok"]
    assert wrongly_judged == [], mutants.format_table(outcomes)


BASELINE = json.loads((mutants.CATALOGUE_DIR / "baseline.json").read_text())


def numbers_out(message):
    """``message`` with every number as ``#`` and NumPy's padding out: ``[ 1.,  2.5 ]`` and
    ``[3.25, 4.]`` both read ``[#, #]``, so that other values of the same form compare equal."""
    text = re.sub(r"#\.(?![.#])", "#", re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", message))
    return re.sub(r"(?<=[\[(]) +| +(?=[,\])])", "", re.sub(r" {2,}", " ", text))


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


def test_the_copies_of_an_entry_are_graded_far_apart():
    """The class's grading order spreads each REPEATED entry's copies evenly through it: each
    copy is graded after other students than the one before it, wherever the workers are."""
    copies = dict.fromkeys(REPEATED, COPIES)
    students = mutants.class_students(ENTRIES, copies)
    order = mutants.spread_copies(students, copies)
    assert sorted(order) == sorted(student for student, _ in students)
    for name in REPEATED:
        places = sorted(order.index(f"{name}__{c}") for c in range(COPIES))
        gaps = [b - a for a, b in zip(places, places[1:])]
        assert min(gaps) >= len(ENTRIES) // COPIES - 1, f"expected the copies of {name} far apart, got places {places}"


def test_grading_the_same_submission_again_and_again_gives_the_same_scores(graded):
    """Each REPEATED entry, graded COPIES times spread through the rest of the class, gets the
    same scores, messages and hints every time."""
    for name in REPEATED:
        runs = [(o.scores, o.messages, o.hints, o.problem) for o in graded if o.entry.name == name]
        assert len(runs) == COPIES, f"expected {COPIES} gradings of {name}, got {len(runs)}"
        differing = [i for i, run in enumerate(runs) if run != runs[0]]
        assert differing == [], f"{name}: expected every grading like the first, got copies {differing} differing"


def test_vectorised_checks_pass_twenty_five_times_while_the_other_core_is_busy():
    """The vectorisation checks, judged outside the kernel as make grade judges them (the
    student's calls timed from the grader), run 25 times for a correct vectorised answer in one
    kernel while a busy loop occupies the other core."""
    answers = parse_answers((mutants.ROOT / "examples" / "correct_alternative.cells").read_text())
    checks = ("compute_sq_dists_vectorised", "update_centroids_vectorised", "associate_centroids_vectorised")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        with JudgedKernel("import numpy as np", answers["compute_sq_dists"], answers["update_centroids"],
                          answers["associate_centroids"]) as kernel:
            failures = [error.evalue for _ in range(25) for check in checks for error in kernel.verdict(check)]
    finally:
        busy.kill()
    assert failures == [], failures[:3]


#: The likely mistake each wrong entry is shown (tests/catalogue/wrong), by hint id
#: (assignment/hints.py), over every cell it fails. Entries not listed get no hint. Some entries
#: make two mistakes, and show both: update_centroids_integer_division sums into an array of X's
#: dtype and floor-divides; k_means_stops_at_first_iteration stops at once and has no guard
#: against a loss of 0.
EXPECTED_HINTS = {
    "fixed_sum_prod_column_sums": {"column_sums"},
    "indices_python_list": {"indices_list"},
    "indices_row_vector": {"indices_row"},
    "compute_sq_dists_flat_norms": {"flat_norms"},
    "compute_sq_dists_manhattan": {"manhattan"},
    "compute_sq_dists_missing_factor_2": {"missing_factor_2"},
    "compute_sq_dists_no_centroid_norms": {"no_centroid_norms"},
    "compute_sq_dists_plus_sign": {"plus_sign"},
    "compute_sq_dists_square_root": {"sqrt"},
    "compute_sq_dists_squares_X_in_place": {"squares_X_in_place"},
    "compute_sq_dists_transposed": {"transposed"},
    "update_centroids_integer_division": {"floor_division", "integer_centroids"},
    "update_centroids_k_from_assoc": {"k_from_assoc"},
    "update_centroids_list_comparison": {"list_assoc"},
    "update_centroids_median": {"medians"},
    "update_centroids_nan_for_empty": {"nan_for_empty"},
    "update_centroids_random_point_for_empty": {"point_for_empty"},
    "update_centroids_sorts_assoc_in_place": {"sorts_assoc_in_place"},
    "update_centroids_sums": {"cluster_sums"},
    "update_centroids_zeros_like_X": {"integer_centroids"},
    "associate_centroids_argmax": {"argmax"},
    "associate_centroids_column_assoc": {"column_assoc"},
    "associate_centroids_float_assoc": {"float_assoc"},
    "associate_centroids_mean_of_all": {"mean_of_all"},
    "associate_centroids_own_distances": {"own_distances"},
    "associate_centroids_root_loss": {"root_loss"},
    "associate_centroids_shifts_in_place": {"shifts_in_place"},
    "associate_centroids_summed_loss": {"summed_loss", "loss_summed"},
    "associate_centroids_swapped_outputs": {"swapped_outputs"},
    "rand_init_first_k": {"first_rows"},
    "rand_init_never_last_row": {"never_last_row"},
    "rand_init_returns_indices": {"row_numbers"},
    "rand_init_uniform_in_box": {"uniform_in_box"},
    "rand_init_unseeded_generator": {"unseeded"},
    "rand_init_with_replacement": {"with_replacement"},
    "k_means_absolute_stop": {"missed_relative_stop"},
    "k_means_divides_by_zero": {"divides_by_zero"},
    "k_means_drops_first_loss": {"drops_first_loss"},
    "k_means_first_check_too_late": {"checks_too_late"},
    "k_means_first_k_start": {"ignores_rand_init"},
    "k_means_never_stops_early": {"missed_relative_stop", "never_stops"},
    "k_means_never_updates": {"never_updates"},
    "k_means_one_iteration_too_many": {"one_too_many"},
    "k_means_only_last_loss": {"only_last_loss"},
    "k_means_shuffles_X_in_place": {"shuffles_X"},
    "k_means_stops_at_first_iteration": {"stops_at_once", "divides_by_zero"},
    "act8_sum_over_runs": {"runs_summed"},
    "act8_k_means_on_validation": {"validation_fit"},
    "act8_plot_k_from_0": {"k_from_0"},
    "act10_plot_bare": {"k_from_0"},
    "act8_plot_lossv_twice": {"lossv_twice"},
    "act8_plot_no_legend": {"labels_without_legend"},
}


def test_the_expected_hints_name_catalogue_entries_and_known_mistakes():
    assert set(EXPECTED_HINTS) <= {e.name for e in ENTRIES if e.expect == "wrong"}
    assert set().union(*EXPECTED_HINTS.values()) <= set(hints.BY_ID)
    own = [name for name, ids in EXPECTED_HINTS.items() if ids]
    assert len(own) >= 25, own


def test_each_wrong_entry_is_shown_its_own_likely_mistake_and_no_correct_entry_a_hint(outcomes):
    """Graded through nbgrader as make grade grades: the hints under the failed checks of every
    catalogue entry. No correct entry gets one; each wrong entry gets exactly its own (listed
    above), and the hint sits under a cell that failed."""
    shown = {o.entry.name: set(o.hints.values()) for o in outcomes}
    assert {o.entry.name: o.hints for o in outcomes if o.entry.expect == "correct" and o.hints} == {}
    wrong = {o.entry.name for o in outcomes if o.entry.expect == "wrong"}
    assert {n: shown[n] for n in wrong if shown[n] != EXPECTED_HINTS.get(n, set())} == {}
    assert [(o.entry.name, g) for o in outcomes for g in o.hints if g not in o.failing] == []
