"""Likely mistakes: one sentence for a failed check whose values match a known mistake.

When a judged test cell fails (``assignment.verdicts``), the judge has recorded every call it made
of the student's functions in that cell (:class:`Call`: the inputs sent, what came back, what the
call left in its inputs, the instructor's helpers it called and their answers). :func:`recognise`
compares those values with what each known mistake of the catalogue would have returned on the
same inputs (square roots of the distances, a transposed matrix, a summed loss, ...). Only an exact
match names a mistake, and only one mistake: two that fit the same values give no hint.

Hints are recognised from values only, never from the student's source text, and the kernel is
never sent anything here. The values came from the student's kernel, so they are hostile data: a
recogniser that raises (or meets values it does not expect) gives no hint, and the grader goes on.
:data:`MISTAKES` is the list, which the README's table follows; ``tests/test_catalogue.py`` lists
which catalogue entry gets which hint.
"""
import html
import re
from dataclasses import dataclass, field

import nbformat
import numpy as np

#: The output metadata key that names the hint of a failed check (the report counts them).
METADATA_KEY = "pa2_hint"
PREFIX = "Likely mistake: "
_NO_VALUE = object()


@dataclass
class Call:
    """One call of a student function made by a judged cell, as plain data.

    Attributes
    ----------
    name : str
        The student function called.
    args, kwargs : list, dict
        Copies of the inputs sent.
    seed : int or None
        The seed of NumPy's generator set just before the call, if any.
    standins : list of str
        The instructor's helpers swapped in for the student's during the call.
    value : object
        What the call returned (``NO_VALUE`` when it raised or was unreadable).
    error : str or None
        The name of the error the call's answer reports (``CheckFailed`` for an error raised
        by the student's code, which ``run_quietly`` reports with its message).
    message : str
        The message of that error.
    after : list or None
        The inputs as the call left them (calls that may change their inputs), else None.
    helpers : list of tuple
        ``(name, args, value)`` of every stand-in call answered for this call, in order.
    """

    name: str
    args: list
    kwargs: dict
    seed: object = None
    standins: list = field(default_factory=list)
    value: object = _NO_VALUE
    error: object = None
    message: str = ""
    after: object = None
    helpers: list = field(default_factory=list)

    @property
    def returned(self):
        return self.value is not _NO_VALUE

    @property
    def raised(self):
        """The name of the error the student's code raised (from ``run_quietly``'s message), or None."""
        found = re.search(r"expected a result, got ([A-Za-z_]\w*)(?=:|\s\(|$)", self.message or "")
        return found.group(1) if found else None


NO_VALUE = _NO_VALUE


def snapshot(value, depth=0):
    """A copy of ``value`` made of arrays, lists, tuples, dicts and scalars (anything else kept as is)."""
    if depth > 32:
        return value
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        items = [snapshot(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {k: snapshot(v, depth + 1) for k, v in value.items()}
    return value


# -- comparing values -------------------------------------------------------------------------
def _floats(value):
    """``value`` as a float array, or None when it is not numbers."""
    if value is None or isinstance(value, (str, bytes, dict)):
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        return None
    return array if array.dtype == float else None


def close(got, expected, rtol=1e-6, atol=1e-8):
    """Same shape and values (nan where nan) of ``got`` and ``expected``."""
    a, b = _floats(got), _floats(expected)
    return (a is not None and b is not None and a.shape == b.shape
            and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)))


def _is_pair(value):
    return isinstance(value, (tuple, list)) and len(value) == 2


def _int_array(value):
    array = np.asarray(value)
    return array.dtype.kind in "iu"


# -- the known mistakes -----------------------------------------------------------------------
@dataclass(frozen=True)
class Mistake:
    """A known mistake.

    Attributes
    ----------
    id : str
        Its name in the feedback's metadata, the report and the tests.
    function : str
        The student function (or the act) whose checks can show it.
    sentence : str
        What the student reads: what the values show, and what to look at.
    test : callable
        ``test(call, right)`` on one recorded call (``right`` the reference function), or with
        ``kind="cell"`` ``test(calls, right)`` on all of them, or with ``kind="values"``
        ``test(values)`` on the cell's values (the notebook's variables it read, the grader's own,
        and ``_figures`` the figures the notebook showed).
    kind : str
        "call", "cell" or "values".
    cells : tuple of str
        The test cells (grade_id prefixes) where it is looked for; by default ``function + "_"``.
    """

    id: str
    function: str
    sentence: str
    test: object
    kind: str = "call"
    cells: tuple = ()

    def applies_to(self, grade_id):
        return grade_id.startswith(self.cells or (self.function + "_",))


def _sq_parts(X, W):
    X, W = np.asarray(X, dtype=float), np.asarray(W, dtype=float)
    return np.sum(X ** 2, axis=1, keepdims=True), np.sum(W ** 2, axis=1, keepdims=True).T, X @ W.T


def _sq_dists(X, W):
    xx, ww, xw = _sq_parts(X, W)
    return xx + ww - 2 * xw


def _wrong_value(variant):
    """The call returned what ``variant(*args)`` gives, and that is not the right answer."""
    def test(call, right):
        return call.returned and close(call.value, variant(*call.args)) and not close(call.value, right(*call.args))
    return test


def _changed_input(index, variant):
    """The call left its input ``index`` as ``variant(input)``, which differs from the input."""
    def test(call, right):
        if call.after is None or len(call.after) <= index:
            return False
        before, after = call.args[index], call.after[index]
        made = variant(before)
        return made is not None and close(after, made) and not close(after, before)
    return test


def _shifted_test(call, right):
    """X (or W) came back as itself minus the same row in every row."""
    if call.after is None:
        return False
    for before, after in zip(call.args[:2], call.after[:2]):
        b, a = _floats(before), _floats(after)
        if b is None or a is None or b.shape != a.shape or b.ndim != 2 or len(b) < 2:
            continue
        shift = b - a
        if np.any(np.abs(shift[0]) > 1e-12) and np.allclose(shift, shift[0], rtol=1e-9, atol=1e-9):
            return True
    return False


def _permuted_rows(before, after):
    b, a = _floats(before), _floats(after)
    if b is None or a is None or b.shape != a.shape or b.ndim != 2 or np.array_equal(a, b):
        return False
    return np.array_equal(np.unique(a, axis=0, return_counts=True)[1], np.unique(b, axis=0, return_counts=True)[1]) \
        and np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0))


def _shuffled_test(call, right):
    """X came back with its rows reordered, or reached rand_init reordered."""
    if call.after is not None and _permuted_rows(call.args[0], call.after[0]):
        return True
    starts = [args for name, args, _ in call.helpers if name == "rand_init"]
    return bool(starts) and _permuted_rows(call.args[0], starts[0][0])


# update_centroids --------------------------------------------------------------------------------
def _cluster_parts(X, k, assoc):
    X = np.asarray(X, dtype=float)
    assoc = np.asarray(assoc).ravel().astype(int)
    counts = np.bincount(assoc, minlength=k)[:k]
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, assoc, X)
    return X, assoc, counts, sums


def _sums(X, k, assoc):
    return _cluster_parts(X, k, assoc)[3]


def _medians(X, k, assoc):
    X, assoc, counts, _ = _cluster_parts(X, k, assoc)
    return np.array([np.median(X[assoc == j], axis=0) if counts[j] else np.zeros(X.shape[1]) for j in range(k)])


def _nan_rows(call, right):
    X, k, assoc = call.args
    counts = _cluster_parts(X, k, assoc)[2]
    if not call.returned or counts.min() > 0:
        return False
    expected = right(*call.args).copy()
    expected[counts == 0] = np.nan
    return close(call.value, expected)


def _floor_division(call, right):
    X = np.asarray(call.args[0])
    means = right(*call.args)
    return (X.dtype.kind == "f" and call.returned and close(call.value, np.floor(means))
            and not close(call.value, means))


def _integer_centroids(call, right):
    X = np.asarray(call.args[0])
    means = right(*call.args)
    return (X.dtype.kind in "iu" and call.returned and _int_array(call.value)
            and (close(call.value, np.trunc(means)) or close(call.value, np.floor(means)))
            and not close(call.value, means))


def _k_from_assoc(call, right):
    k = call.args[1]
    means = right(*call.args)
    got = _floats(call.value) if call.returned else None
    return (got is not None and got.ndim == 2 and 0 < len(got) < k and got.shape[1] == means.shape[1]
            and close(got, means[:len(got)]))


def _point_for_empty(call, right):
    X, k, assoc = call.args
    X, _, counts, _ = _cluster_parts(X, k, assoc)
    got = _floats(call.value) if call.returned else None
    means = right(*call.args)
    if got is None or got.shape != means.shape or counts.min() > 0:
        return False
    full = counts > 0
    empty_rows = got[~full]
    return (close(got[full], means[full]) and not np.allclose(empty_rows, 0)
            and all(np.any(np.all(np.isclose(X, row), axis=1)) for row in empty_rows))


def _zeros_for_list(call, right):
    X, k, assoc = call.args
    got = _floats(call.value) if call.returned else None
    means = right(*call.args)
    return (isinstance(assoc, list) and got is not None and got.shape == means.shape
            and np.all(got == 0) and not np.allclose(means, 0))


def _sorted_assoc(assoc):
    return np.sort(np.asarray(assoc))


# associate_centroids -----------------------------------------------------------------------------
def _pair_test(loss_of, assoc_of=None):
    """The call returned (loss, assoc) with the loss ``loss_of(D)`` and assoc ``assoc_of(D)``
    (the right assoc when None), D the squared distances; and that is not the right answer."""
    def test(call, right):
        if not call.returned or not _is_pair(call.value):
            return False
        X, W = call.args
        D = _sq_dists(X, W)
        loss, assoc = call.value
        want_assoc = np.argmin(D, axis=1) if assoc_of is None else assoc_of(X, W, D)
        good_loss, good_assoc = right(X, W)
        return (close(loss, loss_of(X, W, D)) and np.ndim(loss) == 0 and np.shape(assoc) == want_assoc.shape
                and np.array_equal(np.asarray(assoc), want_assoc)
                and not (close(loss, good_loss) and np.array_equal(np.asarray(assoc), good_assoc)))
    return test


def _closest(D):
    return D[np.arange(len(D)), np.argmin(D, axis=1)]


def _column_assoc(call, right):
    if not call.returned or not _is_pair(call.value):
        return False
    good = right(*call.args)[1]
    assoc = np.asarray(call.value[1])
    return assoc.shape == (len(good), 1) and np.array_equal(assoc.ravel(), good)


def _float_assoc(call, right):
    if not call.returned or not _is_pair(call.value):
        return False
    good = right(*call.args)[1]
    assoc = np.asarray(call.value[1])
    return assoc.shape == good.shape and assoc.dtype.kind == "f" and np.array_equal(assoc, good)


def _swapped_pair(call, right):
    if not call.returned or not _is_pair(call.value):
        return False
    loss, assoc = right(*call.args)
    first, second = call.value
    return (np.shape(first) == assoc.shape and np.array_equal(np.asarray(first), assoc)
            and close(second, loss) and np.ndim(second) == 0)


def _own_distances(X, W):
    xx, ww, xw = _sq_parts(X, W)
    return xx + ww - xw


# rand_init ---------------------------------------------------------------------------------------
def _row_numbers(call, right):
    X, k = call.args[:2]
    got = np.asarray(call.value) if call.returned else None
    return (got is not None and got.shape == (k,) and _int_array(got) and np.ndim(X) == 2
            and len(set(got.tolist())) == k and got.min() >= 0 and got.max() < len(X))


def _rows_of(X, W):
    """The row of X each row of W is (None when one is not a row of X)."""
    X, W = _floats(X), _floats(W)
    if X is None or W is None or W.ndim != 2 or X.ndim != 2 or W.shape[1] != X.shape[1]:
        return None
    rows = []
    for w in W:
        found = np.flatnonzero(np.all(X == w, axis=1))
        if len(found) == 0:
            return None
        rows.append(int(found[0]))
    return rows


def _repeated_row(call, right):
    X, k = call.args[:2]
    if not call.returned or len(np.unique(np.asarray(X), axis=0)) != len(X):
        return False
    rows = _rows_of(X, call.value)
    return rows is not None and len(rows) == k and len(set(rows)) < k


def _seeded_draw(draw):
    """The call, made just after np.random.seed(s), returned ``draw(RandomState(s), X, k)``."""
    def test(call, right):
        if call.seed is None or not call.returned:
            return False
        X, k = call.args[:2]
        made = draw(np.random.RandomState(call.seed), np.asarray(X), k)
        return made is not None and close(call.value, made)
    return test


def _uniform_in_box(state, X, k):
    return state.uniform(X.min(axis=0), X.max(axis=0), size=(k, X.shape[1]))


def _never_last(state, X, k):
    return X[state.choice(len(X) - 1, k, replace=False)] if k < len(X) else None


def _first_rows_always(calls, right):
    calls = [c for c in calls if c.name == "rand_init" and c.returned]
    return len(calls) >= 10 and all(close(c.value, np.asarray(c.args[0])[:c.args[1]]) for c in calls) \
        and any(c.args[1] < len(c.args[0]) for c in calls)


def _same_seed_differs(calls, right):
    by_seed = {}
    for c in calls:
        if c.name == "rand_init" and c.returned and c.seed is not None:
            by_seed.setdefault((c.seed, c.args[1], len(c.args[0])), []).append(c.value)
    return any(len(values) > 1 and not all(close(v, values[0]) for v in values[1:]) for values in by_seed.values())


# k_means -----------------------------------------------------------------------------------------
def _helper_values(call, name):
    return [value for helper, _, value in call.helpers if helper == name]


def _seen_losses(call):
    """The losses the instructor's associate_centroids gave this k_means call, in order."""
    return [float(v[0]) for v in _helper_values(call, "associate_centroids")]


def _losses_of(call):
    return call.value[1] if call.returned and _is_pair(call.value) else None


def _max_iters(call):
    if len(call.args) > 2:
        return call.args[2]
    return call.kwargs.get("max_iters", 50)


def _eps(call):
    if len(call.args) > 3:
        return call.args[3]
    return call.kwargs.get("eps", 1e-5)


def _stop_points(losses, eps):
    """Iterations t at which the relative test stops (or may stop: a loss of 0, from t = 1 on)."""
    return [t for t in range(1, len(losses))
            if losses[t] == 0 or (losses[t - 1] - losses[t]) / losses[t] < eps]


def _only_last(call, right):
    losses, seen = _losses_of(call), _seen_losses(call)
    return losses is not None and np.ndim(losses) == 0 and len(seen) > 1 and close(losses, seen[-1])


def _drops_first(call, right):
    losses, seen = _losses_of(call), _seen_losses(call)
    return (losses is not None and np.ndim(losses) == 1 and len(seen) >= 2 and len(losses) == len(seen) - 1
            and close(losses, seen[1:]) and not close(seen[1:], seen[:-1]))


def _never_updates(call, right):
    if not {"associate_centroids", "update_centroids"} <= set(call.standins):
        return False
    given = [args[1] for name, args, _ in call.helpers if name == "associate_centroids"]
    updated = _helper_values(call, "update_centroids")
    return (len(given) >= 2 and all(close(W, given[0]) for W in given[1:])
            and any(not close(W, given[0]) for W in updated))


def _ignores_rand_init(call, right):
    return ("rand_init" in call.standins and "associate_centroids" in call.standins
            and not _helper_values(call, "rand_init") and bool(_seen_losses(call)))


def _one_too_many(call, right):
    return len(_seen_losses(call)) == _max_iters(call) + 1


def _stops_at_once(call, right):
    seen = _seen_losses(call)
    return (len(seen) == 1 and _max_iters(call) > 1 and seen[0] != 0
            and (call.error is not None or (_losses_of(call) is not None and np.ndim(_losses_of(call)) == 1)))


def _constant_losses_run_on(call, right):
    seen = _seen_losses(call)
    return 4 <= len(seen) < _max_iters(call) and all(s == seen[0] for s in seen)


def _missed_stop(call, right):
    """It ran past an iteration where the relative test stops, on losses that do not all stay equal."""
    seen = _seen_losses(call)
    stops = [t for t in _stop_points(seen, _eps(call)) if t >= 2]
    return bool(stops) and len(seen) > stops[0] + 1 and len(seen) >= _max_iters(call) and len(set(seen)) > 1


def _never_stops(call, right):
    seen = _seen_losses(call)
    return len(seen) >= _max_iters(call) > 3 and len(set(seen)) == 1


def _divides_by_zero(call, right):
    seen = _seen_losses(call)
    return call.raised == "ZeroDivisionError" and bool(seen) and seen[-1] == 0


# fixed_sum_prod ----------------------------------------------------------------------------------
def _outer_of_row_sums(X, y):
    return np.sum(np.asarray(X, dtype=float), axis=1, keepdims=True) @ np.asarray(y, dtype=float)


def _column_sums(X, y):
    return np.sum(np.asarray(X, dtype=float), axis=0, keepdims=True).T @ np.asarray(y, dtype=float)


# take_along_axis and the experiments --------------------------------------------------------------
def _indices_list(values):
    return isinstance(values.get("indices"), list)


def _indices_row(values):
    indices = values.get("indices")
    return isinstance(indices, np.ndarray) and indices.shape == (1, 3)


def _k1_expected(values):
    train, centre = np.asarray(values["_train"], dtype=float), np.asarray(values["_centre"], dtype=float)
    return float(np.mean(np.sum((train - centre) ** 2, axis=1))), len(train)


def _first_loss(values, name):
    array = _floats(values.get(name))
    return float(array[0]) if array is not None and array.ndim == 1 and len(array) else None


def _times_first_loss(factor_of):
    """losst[0] is ``factor_of(n)`` times the right k = 1 loss (n the training points), factor > 1."""
    def test(values):
        expected, n = _k1_expected(values)
        got, factor = _first_loss(values, "losst"), factor_of(n)
        return got is not None and factor > 1 and expected > 0 and np.isclose(got, factor * expected, rtol=1e-6)
    return test


def _validation_own_mean(values):
    expected, _ = _k1_expected(values)
    val = np.asarray(values["_val"], dtype=float)
    own = float(np.mean(np.sum((val - val.mean(axis=0)) ** 2, axis=1)))
    lossv, losst = _first_loss(values, "lossv"), _first_loss(values, "losst")
    right = float(np.mean(np.sum((val - np.asarray(values["_centre"], dtype=float)) ** 2, axis=1)))
    return (lossv is not None and losst is not None and np.isclose(losst, expected, rtol=1e-6)
            and np.isclose(lossv, own, rtol=1e-6) and not np.isclose(own, right, rtol=1e-6))


def _plot_marks(values):
    """(act, [(x, y, artist)] of every curve the act's plot cell drew), from the cell's figures."""
    figures = values.get("_figures")
    act = values.get("_act")
    if figures is None or act not in ("Act 8", "Act 10"):
        return act, None
    between, plot_cells, marks = values["_figures_between"], values["_PLOT_CELLS"], values["_marks"]
    return act, [(x, y, artist, ax) for figure in between(*plot_cells[act]) for ax in figure.axes
                 for x, y, artist in marks(ax)]


def _curves_of(found, values, name):
    wanted = _floats(values.get(name))
    return [(x, y, a, ax) for x, y, a, ax in found
            if wanted is not None and y.shape == wanted.shape and np.allclose(y, wanted, rtol=1e-6, atol=1e-9)]


def _k_from_0(values):
    _, found = _plot_marks(values)
    if not found:
        return False
    curves = [c for name in ("losst", "lossv") for c in _curves_of(found, values, name)]
    return (len(_curves_of(found, values, "losst")) > 0 and len(_curves_of(found, values, "lossv")) > 0
            and all(np.array_equal(x, np.arange(len(x))) for x, *_ in curves))


def _lossv_twice(values):
    _, found = _plot_marks(values)
    return bool(found) and not _curves_of(found, values, "losst") and len(_curves_of(found, values, "lossv")) >= 2 \
        and not np.allclose(_floats(values.get("losst")), _floats(values.get("lossv")))


def _labels_without_legend(values):
    _, found = _plot_marks(values)
    if not found:
        return False
    axes = {id(ax): ax for *_, ax in found}.values()
    labelled = [a for *_, a, _ax in found if not str(a.get_label()).startswith("_")]
    no_legend = all(ax.get_legend() is None and not ax.figure.legends for ax in axes)
    return len(labelled) >= 2 and no_legend


M = Mistake
MISTAKES = [
    # take_along_axis
    M("indices_list", "take_along_axis", "indices is a Python list, which `np.take_along_axis` does not take: "
      "make it a NumPy array with `np.array(...)`", _indices_list, kind="values"),
    M("indices_row", "take_along_axis", "indices has shape (1, 3): its one row is broadcast to every row of "
      "arr, so each row takes all three columns; one index per row needs shape (3, 1)", _indices_row, kind="values"),
    # the experiments
    M("runs_summed", "act8", "losst[0] is 20 times too large: average the 20 runs (`np.mean`), don't add them up",
      _times_first_loss(lambda n: 20), kind="values", cells=("act8_k1_losses", "act10_k1_losses")),
    M("loss_summed", "act8", "losst[0] is n times too large: the loss is the mean of the squared distances, "
      "not their sum (see `associate_centroids`)", _times_first_loss(lambda n: n), kind="values",
      cells=("act8_k1_losses", "act10_k1_losses")),
    M("validation_fit", "act8", "lossv[0] measures the validation points from their own mean: run k-means on "
      "the training points only, then `associate_centroids(Xt_val, W)`", _validation_own_mean, kind="values",
      cells=("act8_k1_losses", "act10_k1_losses")),
    M("k_from_0", "act8_plot", "the curves are drawn at k = 0, ..., 19: give the ks too, "
      "`plt.plot(range(1, 21), losst)`", _k_from_0, kind="values", cells=("act8_plot_data", "act10_plot_data")),
    M("lossv_twice", "act8_plot", "lossv is drawn twice and losst not at all: the training curve should "
      "plot losst", _lossv_twice, kind="values", cells=("act8_plot_data", "act10_plot_data")),
    M("labels_without_legend", "act8_plot", "the curves have labels but no legend is shown: call `plt.legend()`",
      _labels_without_legend, kind="values", cells=("act8_plot_legend", "act10_plot_legend")),

    # fixed_sum_prod
    M("column_sums", "fixed_sum_prod", "these are the sums of the columns (`axis=0`): sum each row, "
      "`np.sum(X, axis=1, keepdims=True)`", _wrong_value(_column_sums)),
    # compute_sq_dists
    M("sqrt", "compute_sq_dists", "these are the square roots of the squared distances: did you take `np.sqrt`?",
      _wrong_value(lambda X, W: np.sqrt(np.maximum(_sq_dists(X, W), 0)))),
    M("transposed", "compute_sq_dists", "the rows of the result are swapped with its columns: "
      "return the (n, k) matrix, one row per point, not its transpose",
      _wrong_value(lambda X, W: _sq_dists(X, W).T)),
    M("missing_factor_2", "compute_sq_dists", "the cross term is too small by half: the expansion is "
      "`||x||^2 + ||w||^2 - 2 x.w`, did you forget the 2?",
      _wrong_value(lambda X, W: (lambda xx, ww, xw: xx + ww - xw)(*_sq_parts(X, W)))),
    M("plus_sign", "compute_sq_dists", "the cross term has the wrong sign: the expansion is "
      "`||x||^2 + ||w||^2 - 2 x.w`, with a minus",
      _wrong_value(lambda X, W: (lambda xx, ww, xw: xx + ww + 2 * xw)(*_sq_parts(X, W)))),
    M("no_centroid_norms", "compute_sq_dists", "the squared norms of the centroids are missing: "
      "add `||w||^2`, a row of k values, to every row", _wrong_value(lambda X, W: (
          lambda xx, ww, xw: xx - 2 * xw)(*_sq_parts(X, W)))),
    M("manhattan", "compute_sq_dists", "these are sums of absolute differences (Manhattan distances): "
      "square the differences instead of taking `np.abs`", _wrong_value(lambda X, W: np.abs(
          np.asarray(X, dtype=float)[:, None, :] - np.asarray(W, dtype=float)[None, :, :]).sum(axis=2))),
    M("flat_norms", "compute_sq_dists", "the squared norms were added as flat 1-D vectors, so they line up "
      "with the columns: keep the points' norms a column with `keepdims=True`",
      _wrong_value(lambda X, W: (lambda xx, ww, xw: xx.ravel() + ww.ravel() - 2 * xw)(*_sq_parts(X, W)))),
    M("squares_X_in_place", "compute_sq_dists", "X came back squared: `np.square(X, out=X)` (or `X **= 2`) "
      "writes into the caller's array; compute `X ** 2` into a new one", _changed_input(0, lambda X: np.asarray(X) ** 2)),
    # update_centroids
    M("cluster_sums", "update_centroids", "these are the sums of the clusters' points: divide each by "
      "the number of points in its cluster to get the mean", _wrong_value(_sums)),
    M("medians", "update_centroids", "these are the medians of the clusters: the centroid is the mean (`np.mean`)",
      _wrong_value(_medians)),
    M("nan_for_empty", "update_centroids", "the clusters without points got nan (the mean of nothing): "
      "give them a row of zeros", _nan_rows),
    M("floor_division", "update_centroids", "the means are rounded down to whole numbers: divide with `/`, "
      "not `//`", _floor_division),
    M("integer_centroids", "update_centroids", "the centroids came back as an integer array, which cuts the "
      "means to whole numbers: make them floats, e.g. `np.zeros((k, d))` (not `np.zeros_like(X)` "
      "or `dtype=X.dtype` for integer X)", _integer_centroids),
    M("k_from_assoc", "update_centroids", "fewer rows than k: the last clusters have no points, so "
      "`assoc.max() + 1` is too small; make k rows", _k_from_assoc),
    M("point_for_empty", "update_centroids", "an empty cluster got a data point instead of a row of zeros",
      _point_for_empty),
    M("list_assoc", "update_centroids", "every centroid is zero when assoc is a Python list: "
      "`assoc == j` on a list is one False, not one per point; use `np.asarray(assoc)` first", _zeros_for_list),
    M("sorts_assoc_in_place", "update_centroids", "assoc came back sorted: `assoc.sort()` sorts the caller's "
      "array; use `np.argsort` or `np.sort`, which make new arrays", _changed_input(2, _sorted_assoc)),
    # associate_centroids
    M("argmax", "associate_centroids", "assoc picks the farthest centroid: use `np.argmin`, not `np.argmax`",
      _pair_test(lambda X, W, D: D[np.arange(len(D)), np.argmax(D, axis=1)].mean(),
                 lambda X, W, D: np.argmax(D, axis=1))),
    M("summed_loss", "associate_centroids", "the loss is n times too large: the loss is the mean, not the sum",
      _pair_test(lambda X, W, D: _closest(D).sum())),
    M("root_loss", "associate_centroids", "the loss is a mean of distances, not of squared distances: "
      "don't take `np.sqrt`", _pair_test(lambda X, W, D: np.sqrt(np.maximum(_closest(D), 0)).mean())),
    M("mean_of_all", "associate_centroids", "the loss averages the distances to every centroid: average "
      "only each point's distance to its closest centroid", _pair_test(lambda X, W, D: D.mean())),
    M("own_distances", "associate_centroids", "the distances behind the loss and assoc lack the 2 of "
      "`- 2 x.w`: call `compute_sq_dists`", _pair_test(lambda X, W, D: _closest(_own_distances(X, W)).mean(),
                                                     lambda X, W, D: np.argmin(_own_distances(X, W), axis=1))),
    M("column_assoc", "associate_centroids", "assoc has shape (n, 1): return a flat array of shape (n,), "
      "as `np.argmin(D, axis=1)` gives it", _column_assoc),
    M("float_assoc", "associate_centroids", "assoc holds floats: the cluster numbers must be integers, "
      "as `np.argmin` returns them", _float_assoc),
    M("swapped_outputs", "associate_centroids", "the two results are swapped: return `(loss, assoc)`, "
      "in that order", _swapped_pair),
    M("shifts_in_place", "associate_centroids", "X or W came back shifted: `X -= ...` changes the caller's "
      "array; write `X = X - ...` to make a new one", _shifted_test),
    # rand_init
    M("row_numbers", "rand_init", "these are row numbers, not rows: return the rows themselves, `X[rows]`",
      _row_numbers),
    M("with_replacement", "rand_init", "a row was picked twice: `np.random.choice(n, k)` draws with "
      "replacement; pass `replace=False`", _repeated_row),
    M("uniform_in_box", "rand_init", "these are random points in the box around the data, not data points: "
      "pick k rows of X", _seeded_draw(_uniform_in_box)),
    M("never_last_row", "rand_init", "the last row is never picked: draw from all n rows, "
      "`np.random.choice(len(X), k, replace=False)`", _seeded_draw(_never_last)),
    M("first_rows", "rand_init", "rand_init always returns the first k rows: pick the rows at random with "
      "`np.random.choice`", _first_rows_always, kind="cell"),
    M("unseeded", "rand_init", "`np.random.seed` does not reproduce your picks: draw with NumPy's global "
      "generator (`np.random.choice`), not a new `np.random.default_rng()` or Python's `random`",
      _same_seed_differs, kind="cell"),
    # k_means
    M("only_last_loss", "k_means", "losses is one number, the last loss: return the list of the loss of "
      "every iteration", _only_last),
    M("drops_first_loss", "k_means", "the loss of the first iteration is missing: record the loss of every "
      "iteration, the first one included", _drops_first),
    M("never_updates", "k_means", "the centroids never move: every call of `associate_centroids` gets the "
      "starting W; assign what `update_centroids` returns to W", _never_updates),
    M("ignores_rand_init", "k_means", "k_means never called `rand_init`: start from `W = rand_init(X, k)`",
      _ignores_rand_init),
    M("one_too_many", "k_means", "k_means ran max_iters + 1 iterations: loop `for t in range(max_iters)`",
      _one_too_many),
    M("stops_at_once", "k_means", "k_means stopped after its first iteration, with no earlier loss to "
      "compare with: apply the relative test from t = 2 on", _stops_at_once),
    M("checks_too_late", "k_means", "the loss did not change, yet k_means went on past t = 2: apply the "
      "test from t = 2 on (`t >= 2`, not `t > 2`)", _constant_losses_run_on),
    M("missed_relative_stop", "k_means", "k_means went on after the loss fell by less than eps relative to "
      "itself: stop when `(losses[t-1] - losses[t]) / losses[t] < eps`, a relative test", _missed_stop),
    M("never_stops", "k_means", "the loss did not change at all, yet k_means ran all max_iters iterations: "
      "stop when `(losses[t-1] - losses[t]) / losses[t] < eps`", _never_stops),
    M("divides_by_zero", "k_means", "the loss reached 0 and k_means divided by it: test `loss == 0` "
      "before the relative test", _divides_by_zero),
    M("shuffles_X", "k_means", "the rows of X were reordered: `np.random.shuffle(X)` shuffles the caller's "
      "array; leave X as it is (`rand_init` already picks at random)", _shuffled_test),
]
del M
BY_ID = {m.id: m for m in MISTAKES}
#: The student functions the instructor's reference code answers for.
FUNCTIONS = ("fixed_sum_prod", "compute_sq_dists", "update_centroids", "associate_centroids", "rand_init", "k_means")


def _fix_wrong_value_factories():
    """``_wrong_value(variant)`` ignores its first argument: build the tests here."""


def _safe(test, *args):
    try:
        return bool(test(*args))
    except Exception:  # values from the kernel: anything unexpected is no match
        return False


def recognise(grade_id, calls, references, values=None):
    """The :class:`Mistake` that the failed cell ``grade_id``'s values show, or None.

    Parameters
    ----------
    grade_id : str
        The failed test cell.
    calls : list of Call
        The calls of student functions the cell made, in order.
    references : dict
        name -> the instructor's reference function (``compute_sq_dists``, ...).
    values : dict, optional
        The cell's values: the notebook's variables it read, the grader's own variables, and
        ``_figures``, the figures the notebook showed (when the cell read them).

    Returns
    -------
    Mistake or None
        The one mistake matched (by the earliest call that matches any, for call mistakes);
        None when none or more than one match.
    """
    candidates = [m for m in MISTAKES if m.applies_to(grade_id)]
    if not candidates:
        return None
    function = candidates[0].function
    act = re.match(r"act(\d+)_", grade_id)
    values = dict(values or {}, _act=f"Act {act.group(1)}" if act else None)
    right = references.get(function) or (_outer_of_row_sums if function == "fixed_sum_prod" else None)
    mine = [c for c in calls if c.name == function]
    found = {m.id for m in candidates if m.kind == "cell" and _safe(m.test, mine, right)}
    found |= {m.id for m in candidates if m.kind == "values" and _safe(m.test, values)}
    if found:
        return BY_ID[found.pop()] if len(found) == 1 else None
    for call in mine:
        found = {m.id for m in candidates if m.kind == "call" and _safe(m.test, call, right)}
        if found:
            return BY_ID[found.pop()] if len(found) == 1 else None
    return None


def hint_output(mistake):
    """The nbformat output that shows ``mistake``'s sentence under the failed check."""
    text = html.escape(mistake.sentence)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return nbformat.v4.new_output(
        "display_data",
        data={"text/plain": PREFIX + mistake.sentence.replace("`", ""),
              "text/html": f'<div class="pa2-hint"><strong>Likely mistake:</strong> {text}</div>'},
        metadata={METADATA_KEY: mistake.id})


def hint_outputs(grade_id, calls, references, values=None):
    """``[hint_output(...)]`` for the failed cell, or ``[]``; never raises."""
    try:
        mistake = recognise(grade_id, calls, references, values)
    except Exception:
        return []
    return [hint_output(mistake)] if mistake is not None else []


def hint_of(cell):
    """(mistake id, sentence) of the hint among ``cell``'s outputs, or None."""
    for output in cell.get("outputs", []):
        mistake_id = output.get("metadata", {}).get(METADATA_KEY)
        if output.get("output_type") == "display_data" and isinstance(mistake_id, str):
            text = output.get("data", {}).get("text/plain", "")
            return mistake_id, text[len(PREFIX):] if text.startswith(PREFIX) else text
    return None
