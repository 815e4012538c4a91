"""Likely mistakes (assignment/hints.py): recognised from the values a judged check saw, shown under
the failed check, never from the student's source text, and never a crash of the grader.
(tests/test_catalogue.py checks every catalogue entry's hint through nbgrader.)"""
import numpy as np
import pytest

from assignment import hints
from assignment.mutants import reference_answers

from .judging import JudgedKernel

ANSWERS = reference_answers()
CORRECT = [ANSWERS[g] for g in ("fixed_sum_prod", "compute_sq_dists", "update_centroids",
                                "associate_centroids", "rand_init", "k_means")]
#: Square roots of the squared distances, written without the word "sqrt" and with a loop: the
#: hint comes from what the function returns, not from how it is written.
ROOTS_WITHOUT_SQRT = '''
def compute_sq_dists(X, W):
    out = np.zeros((len(X), len(W)))
    for j in range(len(W)):
        out[:, j] = (((X - W[j]) ** 2).sum(axis=1)) ** 0.5
    return out
'''
#: Correct, though its source mentions np.sqrt and argmax.
CORRECT_MENTIONING_MISTAKES = '''
def compute_sq_dists(X, W):
    # not np.sqrt, not np.argmax, not the transpose .T of the result
    return np.sum((X[:, None, :] - W[None, :, :]) ** 2, axis=2)
'''


def hint_ids(outputs):
    return [o.metadata[hints.METADATA_KEY] for o in outputs if o.output_type == "display_data"
            and hints.METADATA_KEY in o.get("metadata", {})]


@pytest.fixture(scope="module")
def kernel():
    with JudgedKernel("import numpy as np", *CORRECT) as kernel:
        yield kernel


def test_a_failed_check_shows_the_likely_mistake_under_its_message(kernel):
    kernel.run(ROOTS_WITHOUT_SQRT)
    try:
        outputs = kernel.judge.judge("compute_sq_dists_matches_cdist", 60)
    finally:
        kernel.run(ANSWERS["compute_sq_dists"])
    assert [o.output_type for o in outputs] == ["error", "display_data"], outputs
    assert outputs[0].evalue.startswith("compute_sq_dists on X of shape") and "expected" in outputs[0].evalue
    assert hint_ids(outputs) == ["sqrt"]
    text = outputs[1].data["text/plain"]
    assert text.startswith("Likely mistake: these are the square roots of the squared distances"), text
    assert "<code>np.sqrt</code>" in outputs[1].data["text/html"]


def test_a_correct_function_gets_no_hint_whatever_its_source_says(kernel):
    kernel.run(CORRECT_MENTIONING_MISTAKES)
    try:
        outputs = [o for g in ("compute_sq_dists_matches_cdist", "compute_sq_dists_edge_shapes",
                               "compute_sq_dists_integer_input") for o in kernel.judge.judge(g, 60)]
    finally:
        kernel.run(ANSWERS["compute_sq_dists"])
    assert outputs == []


def test_a_check_failed_for_another_reason_than_a_known_mistake_gets_no_hint(kernel):
    kernel.run("def compute_sq_dists(X, W):\n    return np.ones((len(X), len(W)))")
    try:
        outputs = kernel.judge.judge("compute_sq_dists_matches_cdist", 60)
    finally:
        kernel.run(ANSWERS["compute_sq_dists"])
    assert [o.output_type for o in outputs] == ["error"] and hint_ids(outputs) == []


def test_the_judge_records_the_helpers_answers_so_k_means_mistakes_show(kernel):
    kernel.run(ANSWERS["k_means"].replace("W = update_centroids(X, k, assoc)", "new_W = update_centroids(X, k, assoc)"))
    try:
        outputs = kernel.judge.judge("k_means_matches_lloyd", 60)
    finally:
        kernel.run(ANSWERS["k_means"])
    assert hint_ids(outputs) == ["never_updates"], outputs
    [call] = [c for c in kernel.judge.calls if c.name == "k_means"]
    assert [name for name, *_ in call.helpers][:3] == ["rand_init", "associate_centroids", "update_centroids"]


def call(name, args, value, **fields):
    return hints.Call(name, list(args), {}, value=value, **fields)


X = np.arange(12, dtype=float).reshape(6, 2) ** 1.5
W = X[[0, 3]] + 0.5
REFERENCES = {"compute_sq_dists": lambda X, W: hints._sq_dists(X, W),
              "update_centroids": lambda X, k, assoc: np.array([X[np.asarray(assoc) == j].mean(axis=0)
                                                                if np.any(np.asarray(assoc) == j) else np.zeros(2)
                                                                for j in range(k)]),
              "associate_centroids": lambda X, W: (float(hints._sq_dists(X, W).min(axis=1).mean()),
                                                   hints._sq_dists(X, W).argmin(axis=1))}


def test_two_mistakes_that_fit_the_same_values_give_no_hint(monkeypatch):
    """A value that two mistakes explain names neither."""
    X1, W1 = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])
    assert hints.recognise("compute_sq_dists_edge_shapes", [call("compute_sq_dists", (X1, W1), np.array([[5.0]]))],
                           REFERENCES).id == "sqrt"
    both = hints.Mistake("sqrt_again", "compute_sq_dists", "s", hints.BY_ID["sqrt"].test)
    monkeypatch.setattr(hints, "MISTAKES", hints.MISTAKES + [both])
    monkeypatch.setitem(hints.BY_ID, "sqrt_again", both)
    assert hints.recognise("compute_sq_dists_edge_shapes",
                           [call("compute_sq_dists", (X1, W1), np.array([[5.0]]))], REFERENCES) is None


def test_a_recogniser_that_raises_gives_no_hint_and_the_others_still_work(monkeypatch):
    def broken(call, right):
        raise MemoryError("a recogniser meeting hostile values")
    monkeypatch.setattr(hints, "MISTAKES", [hints.Mistake("broken", "compute_sq_dists", "never shown", broken)]
                        + hints.MISTAKES)
    calls = [call("compute_sq_dists", (X, W), np.sqrt(hints._sq_dists(X, W)))]
    assert hints.recognise("compute_sq_dists_matches_cdist", calls, REFERENCES).id == "sqrt"
    monkeypatch.setattr(hints, "MISTAKES", hints.MISTAKES[:1])
    assert hints.hint_outputs("compute_sq_dists_matches_cdist", calls, REFERENCES) == []

    def raising(*args):
        raise RuntimeError("anything")
    monkeypatch.setattr(hints, "recognise", raising)
    assert hints.hint_outputs("compute_sq_dists_matches_cdist", calls, REFERENCES) == []


HOSTILE_VALUES = [None, "text", b"bytes", {"a": 1}, [1, [2, [3]]], (np.nan, np.inf), np.full((3, 3), np.nan),
                  np.zeros((0, 2)), np.array(["a", "b"]), 10 ** 400, -1, [[1, 2], [3]], np.zeros((2, 2, 2)),
                  (np.zeros(5), "loss"), object()]


@pytest.mark.parametrize("value", HOSTILE_VALUES, ids=range(len(HOSTILE_VALUES)))
def test_whatever_a_call_returned_the_recognisers_never_raise(value):
    args = {"fixed_sum_prod": (X, W[:1]), "compute_sq_dists": (X, W), "update_centroids": (X, 2, [0, 1, 0, 1, 0, 1]),
            "associate_centroids": (X, W), "rand_init": (X, 2), "k_means": (X, 2)}
    for mistake in hints.MISTAKES:
        grade_id = (mistake.cells[0] if mistake.cells else mistake.function + "_matches")
        made = call(mistake.function, args.get(mistake.function, ()), value, seed=3, after=[value, value, value],
                    helpers=[("associate_centroids", (X, value), value), ("rand_init", (value, 2), value)],
                    standins=["associate_centroids", "rand_init", "update_centroids"])
        values = {"indices": value, "losst": value, "lossv": value, "_train": X, "_val": X, "_centre": value,
                  "_figures": value}
        hints.recognise(grade_id, [made, made], REFERENCES, values)  # no exception


def test_hint_of_reads_the_hint_back_from_a_cell():
    output = hints.hint_output(hints.BY_ID["summed_loss"])
    assert hints.hint_of({"outputs": [output]}) == ("summed_loss", "the loss is n times too large: the loss is the "
                                                                    "mean, not the sum")
    assert hints.hint_of({"outputs": []}) is None


@pytest.mark.parametrize("message, raised", [
    ("f(x): expected a result, got ZeroDivisionError: division by zero", "ZeroDivisionError"),
    ("f(x): expected a result, got ValueError", "ValueError"),
    ("f(x): expected a result, got NotImplementedError (is this answer still to write?)", "NotImplementedError"),
    ("f(x): expected a result within 10 s, got none (an endless loop?)", None),
    ("f(x): expected shape (3, 1), got [[1, 2]]", None)])
def test_a_calls_error_is_read_from_run_quietlys_message(message, raised):
    """The error a student's call raised comes from run_quietly's message, with or without an error message of its own."""
    call = hints.Call("f", [], {}, error="CheckFailed", message=message)
    assert call.raised == raised, f"expected {raised}, got {call.raised} from {message!r}"
