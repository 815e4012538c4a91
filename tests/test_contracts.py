"""Every rule the hidden tests check is stated once, in the notebook's prose or a docstring.

``CONTRACTS`` lists each contract sentence of the master notebook with the graded test cells
that check it. The tests fail if a sentence is no longer in the notebook (reworded: update the
table with it), if a listed cell no longer exists, or if a test cell that gives points is
missing from the table (a rule tested but unstated).
"""
import nbformat
import pytest

from assignment import NOTEBOOK, SOURCE_DIR

#: (sentence as written in the notebook, whitespace aside; the grade_ids of the cells checking it)
CONTRACTS = [
    # Act 1
    ("For `X` of shape `(n, m)` and `y` of shape `(1, p)` it returns `Q` of shape `(n, p)` with "
     "`Q[i, j] = X[i, :].sum() * y[0, j]`. It must work for any such shapes, not only 3 x 3, and must "
     "not modify its inputs.", ["fixed_sum_prod_other_shapes"]),
    ("set `indices` so that `np.take_along_axis(arr, indices, axis=1)` returns exactly `[[1], [6], [8]]` "
     "(shape `(3, 1)`). Leave `arr` as it is.", ["take_along_axis_indices_picks_one_per_row"]),
    # the whole notebook
    ("Don't loop over data points in Python: the hidden tests time your functions on large inputs "
     "against a vectorised reference, and an answer more than about 30 times slower loses those points.",
     ["compute_sq_dists_vectorised", "update_centroids_vectorised", "associate_centroids_vectorised"]),
    ("Each function is graded on its own: the hidden tests of a function run it with the instructor's "
     "versions of the *other* helpers, so a bug in one function costs points only there and in the "
     "experiments of Acts 7 to 10, which run your own functions and are checked on what your cells "
     "compute and draw.",
     ["associate_centroids_worked_example", "k_means_matches_lloyd", "act7_scatter_plots", "act8_k1_losses",
      "act9_digit_images", "act10_k1_losses"]),
    # Act 2
    ("``sq_dists[i, j]`` is the squared distance from ``X[i]`` to ``W[j]``.",
     ["compute_sq_dists_matches_cdist"]),
    ("It must work for any `n`, `k` and `d` (1 included), accept integer arrays as well as floats, and "
     "must not modify its inputs.",
     ["compute_sq_dists_edge_shapes", "compute_sq_dists_integer_input", "compute_sq_dists_inputs_unchanged"]),
    # Act 3
    ("``W[j]`` is the mean of the points with ``assoc == j``, or all zeros if there are none.",
     ["update_centroids_matches_means"]),
    ("A cluster can end up with **no points**. Its row of the result must then be all zeros (not `nan`).",
     ["update_centroids_empty_cluster"]),
    ("`k` is given: the result always has `k` rows, even when the last clusters are empty.",
     ["update_centroids_empty_cluster"]),
    ("`assoc` may be a Python list or a NumPy array.", ["update_centroids_list_assoc"]),
    ("The means are floats even when `X` holds integers.", ["update_centroids_integer_input"]),
    ("It must work for any `n`, `k` and `d` (1 included) and must not modify `X` or `assoc`.",
     ["update_centroids_edge_shapes", "update_centroids_inputs_unchanged"]),
    ("Here, and **only** here, you may loop over the `k` clusters. Never loop over the `n` data points.",
     ["update_centroids_vectorised"]),
    # Act 4
    ("the loss is the **mean** over the points of their smallest squared distance, the formula above.",
     ["associate_centroids_worked_example", "associate_centroids_matches_brute_force"]),
    ("`assoc` is the index of the smallest entry in each row (ties go to the smaller index, as "
     "`np.argmin` does);", ["associate_centroids_matches_brute_force"]),
    ("Return `assoc` as a **1-D integer array** of length `n` (not `(n, 1)`), and the loss as a single "
     "number.", ["associate_centroids_output_types"]),
    ("It must work for any `n`, `k` and `d` (1 included) and must not modify `X` or `W`.",
     ["associate_centroids_edge_shapes", "associate_centroids_inputs_unchanged"]),
    # Act 5
    ("``k`` rows of ``X`` at distinct row indices, chosen with NumPy's global random generator.",
     ["rand_init_rows_of_X", "rand_init_distinct_rows", "rand_init_uses_np_random"]),
    ("Use NumPy's global random generator (`np.random.choice`, `np.random.permutation`, ...) so that "
     "`np.random.seed` makes runs reproducible.", ["rand_init_uses_np_random"]),
    ("Return the **points**, not their indices, and don't modify `X`.", ["rand_init_rows_of_X"]),
    # Act 6
    ("Start from `W = rand_init(X, k)` and repeat, for at most `max_iters` iterations:",
     ["k_means_calls_helpers_in_order", "k_means_runs_max_iters"]),
    ("$$\\frac{\\text{loss}_{t-1} - \\text{loss}_t}{\\text{loss}_t} < \\epsilon .$$",
     ["k_means_relative_stopping"]),
    ("Apply it from the third iteration on ($t = 2$ counting from 0; applying it from $t = 1$ on is also "
     "accepted).", ["k_means_earliest_stop", "k_means_relative_stopping"]),
    ("If the loss is exactly 0, nothing can improve any more: stop without dividing by zero, either at "
     "that iteration or at the first one where the test applies (both are accepted).", ["k_means_zero_loss"]),
    ("Stop at iteration ``t`` when ``(losses[t-1] - losses[t]) / losses[t] < eps``, tested from ``t = 2`` "
     "on (from ``t = 1`` is also accepted). A loss of 0 stops without a division, at once or when the "
     "test applies (both are accepted).",
     ["k_means_relative_stopping", "k_means_earliest_stop", "k_means_zero_loss"]),
    ("Maximum number of iterations (associate, then update).", ["k_means_runs_max_iters"]),
    ("Return `(W, losses)`: the final centroids (those that produced the last loss, or the ones updated "
     "from them: both are accepted) and the list (or 1-D array) of the losses of **every** iteration, in "
     "order.", ["k_means_matches_lloyd"]),
    ("It must work for any `1 <= k <= n`, for one feature and for integer `X`, and must not modify `X`.",
     ["k_means_edge_shapes", "k_means_inputs_unchanged"]),
    ("`k_means` must call your `rand_init`, `associate_centroids` and `update_centroids` by those names",
     ["k_means_calls_helpers_in_order"]),
    # Acts 7 to 10
    ("draw it with `plot_sample(Xt_train, assoc)`: one scatter plot per `k`, one colour per cluster.",
     ["act7_scatter_plots"]),
    ("Store the 20 means in two lists (or 1-D arrays) `losst` (training) and `lossv` (validation), with "
     "`losst[0]` for `k = 1`.", ["act8_k1_losses"]),
    ("the mean **validation** loss: the loss of the validation points `Xt_val` with the centroids learnt "
     "on the training set.", ["act8_k1_losses"]),
    ("Then draw **one well-labelled plot** of both curves against `k` (one figure: the values of `losst` "
     "and `lossv` at `k = 1, ..., 20`): axis labels, a title and a legend naming both curves.",
     ["act8_plot_data", "act8_plot_x_label", "act8_plot_y_label", "act8_plot_title", "act8_plot_legend"]),
    ("compute the cluster of every training image (call it `assoc`), and show five training images from "
     "each cluster", ["act9_digit_images"]),
    ("store the mean training and validation losses in `losst` and `lossv` again, and draw one "
     "well-labelled plot (checked as in Act 8).",
     ["act10_k1_losses", "act10_plot_data", "act10_plot_x_label", "act10_plot_y_label", "act10_plot_title",
      "act10_plot_legend"]),
]


def flat(text):
    return " ".join(text.split())


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)


def graded_tests(nb):
    """grade_id -> points of every test cell that gives points."""
    return {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")
            and c.metadata["nbgrader"].get("points", 0) > 0}


def test_every_listed_sentence_is_in_the_notebook(notebook):
    text = flat("\n".join(c.source for c in notebook.cells))
    missing = [sentence for sentence, _ in CONTRACTS if flat(sentence) not in text]
    assert missing == []


def test_every_listed_test_cell_exists(notebook):
    tests = graded_tests(notebook)
    unknown = sorted({g for _, ids in CONTRACTS for g in ids} - set(tests))
    assert unknown == []


def test_every_test_cell_checks_a_stated_rule(notebook):
    unstated = sorted(set(graded_tests(notebook)) - {g for _, ids in CONTRACTS for g in ids})
    assert unstated == []


def test_each_sentence_is_listed_once():
    sentences = [flat(s) for s, _ in CONTRACTS]
    assert len(sentences) == len(set(sentences))


def test_the_checks_can_fail(notebook):
    """A dropped sentence or an unknown cell would be reported."""
    text = flat("\n".join(c.source for c in notebook.cells))
    assert flat("Never stop before the third iteration") not in text
    assert "k_means_matches_sklearn" not in graded_tests(notebook)

