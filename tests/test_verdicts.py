"""Verdicts outside the kernel: the kernel holds no reference code, stand-ins answer only their
check, speed is measured on the grader's clock, and whatever the kernel answers, a check fails
with a message rather than raising in the grader or passing."""
import copy
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assignment import SOURCE_DIR, boundary, verdicts
from assignment.mutants import reference_answers
from assignment.probes import KernelLink
from assignment.verdicts import Judge, judged_cells

from .judging import MASTER, JudgedKernel

ANSWERS = reference_answers()
FUNCTIONS = [ANSWERS[g] for g in ("fixed_sum_prod", "compute_sq_dists", "update_centroids",
                                  "associate_centroids", "rand_init", "k_means")]
#: Names of the instructor's reference code (grader_reference_code): none may reach the kernel.
REFERENCE_NAMES = ("_grader", "_ref_compute_sq_dists", "_ref_update_centroids", "_ref_associate_centroids",
                   "_ref_rand_init", "_lloyd_trajectory", "_allowed_lengths", "_check_elbow_plot",
                   "_check_cluster_scatters", "_reference_helpers", "_measure_vectorised", "_check_lloyd")
FUNCTION_CHECKS = [g for g in judged_cells(MASTER) if not g.startswith("act") and "vectorised" not in g
                   and not g.startswith("take_along")]

SNOOP = '''
import gc as _gc, sys as _sys, types as _types
SEEN = set()
def _snoop():
    frame = _sys._getframe(1)
    while frame is not None:
        SEEN.update(frame.f_globals)
        SEEN.update(frame.f_locals)
        frame = frame.f_back
    SEEN.update(getattr(o, "__name__", "") for o in _gc.get_objects() if isinstance(o, _types.FunctionType))
    SEEN.update(_sys.modules)
for _name in ("compute_sq_dists", "update_centroids", "associate_centroids", "rand_init", "k_means"):
    def _wrap(func):
        def snooping(*args, **kwargs):
            _snoop()
            return func(*args, **kwargs)
        snooping.__name__, snooping.snooping = func.__name__, True
        return snooping
    if not getattr(globals()[_name], "snooping", False):  # run again after a test: wrap once only
        globals()[_name] = _wrap(globals()[_name])
'''


@pytest.fixture(scope="module")
def correct_kernel():
    with JudgedKernel("import numpy as np", *FUNCTIONS, SNOOP) as kernel:
        yield kernel


def test_a_correct_notebook_passes_every_function_check_judged_outside(correct_kernel):
    failed = {g: correct_kernel.verdict(g) for g in FUNCTION_CHECKS}
    assert {g: o for g, o in failed.items() if o} == {}


def test_the_kernel_never_holds_reference_code_not_even_during_a_check(correct_kernel):
    for grade_id in FUNCTION_CHECKS:
        correct_kernel.verdict(grade_id)
    seen = json.loads(correct_kernel.run("import json; print(json.dumps(sorted(SEEN)))"))
    assert len(seen) > 100, "the snooping student functions were called"
    assert [name for name in REFERENCE_NAMES if name in seen] == []
    everything = correct_kernel.run(
        "import gc, types\n"
        "names = {getattr(o, '__name__', '') for o in gc.get_objects() if isinstance(o, (types.FunctionType, type))}\n"
        "texts = [o for o in gc.get_objects() if isinstance(o, str) and 'def _ref_' in o]\n"
        "print(sorted(n for n in names if n.startswith('_ref_') or n in ('_lloyd_trajectory', '_allowed_lengths')), len(texts))")
    assert everything.strip() == "[] 0"


def test_a_stand_in_answers_only_during_its_own_check(correct_kernel):
    """A student who keeps the forwarder that stood in for compute_sq_dists gets nothing from it
    after that check, nor in a check that swaps in other helpers."""
    correct_kernel.run(ANSWERS["associate_centroids"].replace(
        "def associate_centroids(X, W):", "def associate_centroids(X, W):\n    global CAPTURED\n    CAPTURED = compute_sq_dists"))
    assert correct_kernel.verdict("associate_centroids_worked_example") == []
    assert correct_kernel.run("print(compute_sq_dists is CAPTURED, CAPTURED.__name__)").split() == ["False", "compute_sq_dists"]
    reply = correct_kernel.execute("CAPTURED(np.zeros((2, 2)), np.zeros((1, 2)))", allow_stdin=False)
    assert reply["content"]["status"] == "error"
    correct_kernel.run("def k_means(X, k, max_iters=50, eps=1e-5):\n    return CAPTURED(X, X[:k]), [0.0]")
    try:
        [error] = correct_kernel.verdict("k_means_calls_helpers_in_order")
        assert "compute_sq_dists is not a stand-in of this check" in error.evalue, error.evalue
    finally:
        correct_kernel.run(ANSWERS["associate_centroids"], ANSWERS["k_means"], SNOOP)


@pytest.mark.parametrize("check, body, size", [
    ("k_means_matches_lloyd", "W = update_centroids(np.zeros((4, 2000)), 25000, np.zeros(4, dtype=int))\n"
                              "    return W[:k, :X.shape[1]], [0.0]", "400000000 bytes"),
    ("k_means_earliest_stop", "loss, assoc = associate_centroids(np.zeros((10**8, 0)), np.zeros((k, 0)))\n"
                              "    return np.zeros((k, X.shape[1])), [loss]", "800000000 bytes")])
def test_a_stand_in_asked_for_an_answer_too_big_to_send_never_writes_it_out(correct_kernel, check, body, size):
    """expected k_means' call of a stand-in for an answer the kernel could not read (400 MB of
    centroids; 800 MB of assignments inside a (loss, assoc) pair) to fail the check with its size
    named, and the grader to hold no copy of it, got the answer copied or written out"""
    status = Path("/proc/self/status")
    if not status.exists():
        pytest.skip("no /proc/self/status to read the peak memory from")
    kilobytes = lambda field: int(re.search(rf"^{field}:\s+(\d+) kB", status.read_text(), re.M).group(1))
    correct_kernel.run("def k_means(X, k, max_iters=50, eps=1e-5):\n    " + body)
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from what the grader holds now
    before = kilobytes("VmRSS")
    try:
        errors = correct_kernel.verdict(check)
        grown = (kilobytes("VmHWM") - before) / 1024
    finally:
        correct_kernel.run(ANSWERS["k_means"], SNOOP)
    assert len(errors) == 1 and f"{size}, over the" in errors[0].evalue, [e.evalue for e in errors]
    assert grown < 100, f"expected the grader's memory to stay as it was, got {grown:.0f} MB more at its peak"


def judged_with(kernel, name, source, grade_id):
    """The error messages of ``grade_id`` judged with ``source`` in place of the answer ``name``,
    which is put back afterwards."""
    kernel.run(source)
    try:
        return [e.evalue for e in kernel.verdict(grade_id)]
    finally:
        kernel.run(ANSWERS[name], SNOOP)


def test_an_input_changed_into_what_cannot_be_sent_back_is_never_taken_as_unchanged(correct_kernel):
    """expected compute_sq_dists, which turns X in place into raw bytes (an array that cannot cross,
    so X comes back as its repr alone, as one grown past what a message may carry would), to fail
    the check that its inputs are unchanged, got a pass: the grader's copy of X, never written
    back, still looked like the original"""
    errors = judged_with(correct_kernel, "compute_sq_dists", "def compute_sq_dists(X, W):\n"
                         "    D = ((X[:, None, :] - W[None, :, :]) ** 2).sum(axis=2)\n"
                         "    X.dtype = np.dtype('V8')\n"
                         "    return D", "compute_sq_dists_inputs_unchanged")
    assert len(errors) == 1 and "expected its array arguments left as arrays" in errors[0], errors


UNCHANGED_ONLY_IF_RIGHT = "the inputs were left unchanged; the point also needs the right result"
TYPES_ONLY_IF_RIGHT = "the types are right; the point also needs the right values"


@pytest.mark.parametrize("grade_id, signature, body, message", [
    ("compute_sq_dists_inputs_unchanged", "X, W", "pass", UNCHANGED_ONLY_IF_RIGHT),
    ("compute_sq_dists_inputs_unchanged", "X, W", "return np.zeros((len(X), len(W)))", UNCHANGED_ONLY_IF_RIGHT),
    ("update_centroids_inputs_unchanged", "X, k, assoc", "pass", UNCHANGED_ONLY_IF_RIGHT),
    ("update_centroids_inputs_unchanged", "X, k, assoc", "return np.zeros((k, X.shape[1]))", UNCHANGED_ONLY_IF_RIGHT),
    ("associate_centroids_inputs_unchanged", "X, W", "pass", UNCHANGED_ONLY_IF_RIGHT),
    ("associate_centroids_inputs_unchanged", "X, W", "return 0.0, np.zeros(len(X), dtype=int)",
     UNCHANGED_ONLY_IF_RIGHT),
    ("k_means_inputs_unchanged", "X, k, max_iters=50, eps=1e-5", "pass", UNCHANGED_ONLY_IF_RIGHT),
    ("k_means_inputs_unchanged", "X, k, max_iters=50, eps=1e-5", "return X[:k].copy(), [1.0]",
     UNCHANGED_ONLY_IF_RIGHT),
    ("associate_centroids_output_types", "X, W", "return 0.0, np.zeros(len(X), dtype=int)", TYPES_ONLY_IF_RIGHT),
    ("associate_centroids_output_types", "X, W", "return 1.0, np.arange(len(X)) % len(W)", TYPES_ONLY_IF_RIGHT),
    ("k_means_earliest_stop", "X, k, max_iters=50, eps=1e-5", "return None, [1.0, 1.0]",
     "losses when the loss stays at 5.0: expected"),
    ("k_means_runs_max_iters", "X, k, max_iters=50, eps=1e-5", "return None, [0.0] * max_iters",
     "expected the falling losses associate_centroids returned"),
    ("k_means_runs_max_iters", "X, k, max_iters=50, eps=1e-5", "return None, [str(2.0 ** (59 - t)) for t in range(max_iters)]",
     "expected the falling losses associate_centroids returned"),
])
def test_a_property_of_the_result_earns_no_point_without_the_right_result(correct_kernel, grade_id, signature,
                                                                          body, message):
    """expected a stub (returning None, or made-up values of the right shape and type) to fail
    the check of its inputs left unchanged, of its result's types or of its number of iterations,
    got a pass: a stub that computes nothing earned the point"""
    name = next(f for f in ("compute_sq_dists", "update_centroids", "associate_centroids", "k_means")
                if grade_id.startswith(f + "_"))
    errors = judged_with(correct_kernel, name, f"def {name}({signature}):\n    {body}", grade_id)
    assert len(errors) == 1 and message in errors[0], errors


@pytest.mark.parametrize("loss", ["str(loss)", "np.array(loss, dtype=object)", "True"])
def test_a_loss_that_is_not_a_number_fails_the_output_types_check(correct_kernel, loss):
    """expected associate_centroids' loss as text, as an object or as a bool to fail
    associate_centroids_output_types, got a pass: np.isrealobj is True for them all"""
    errors = judged_with(correct_kernel, "associate_centroids",
                         ANSWERS["associate_centroids"].replace("def associate_centroids(", "def _right_associate(") +
                         f"\ndef associate_centroids(X, W):\n    loss, assoc = _right_associate(X, W)\n"
                         f"    return {loss}, assoc", "associate_centroids_output_types")
    assert len(errors) == 1 and "loss: expected a single number" in errors[0], errors


def test_vectorisation_is_timed_on_the_graders_clock():
    """A loop over the points that hides itself from the line count in the kernel (tracing turned
    off, the kernel's clock frozen) is still too slow on the grader's clock."""
    loop = ('import sys, time\n'
            'sys.settrace = lambda *a: None\n'
            'time.perf_counter = time.monotonic = lambda: 0.0\n'
            'def compute_sq_dists(X, W):\n'
            '    Wl = W.tolist()\n'
            '    return np.array([[(a - c) ** 2 + (b - d) ** 2 for c, d in Wl] for a, b in X.tolist()])\n')
    with JudgedKernel("import numpy as np", loop) as kernel:
        [error] = kernel.verdict("compute_sq_dists_vectorised")
    assert error.ename == "CheckFailed" and "points: expected at most" in error.evalue, error.evalue


def test_a_kernel_that_answers_timed_calls_before_running_them_is_still_too_slow():
    """A loop over the points that, when timed, sends the probe's "ok" at once and serves the
    grader's other requests itself until the loop ends, must not pass: a timed call's answer
    must carry the right result for new points, which only the work gives."""
    relay = ('import sys, json\n'
             'sys.settrace = lambda *a: None\n'
             'def compute_sq_dists(X, W):\n'
             '    frame, names = sys._getframe(1), set()\n'
             '    while frame is not None:\n'
             '        names.add(frame.f_code.co_name); frame = frame.f_back\n'
             '    if "_timed_call" in names:\n'
             '        probe, ask = sys.modules["_pa2_probe"], get_ipython().kernel.raw_input\n'
             '        text = ask(probe.ANSWER_PROMPT + \'{"ok":true,"sizes":[900000],"dots":[0.0]}\')\n'
             '        while text != "":\n'
             '            request = json.loads(text)\n'
             '            reply = ({"ok": True, "sizes": [900000], "dots": [0.0]} if request.get("op") == "timed_call"\n'
             '                     else probe.answer(text))\n'
             '            text = ask(probe.ANSWER_PROMPT + json.dumps(reply))\n'
             '    return np.array([[float(np.sum((x - w) ** 2)) for w in W] for x in X])\n')
    with JudgedKernel("import numpy as np", relay) as kernel:
        errors = kernel.verdict("compute_sq_dists_vectorised")
    assert errors and "on 300000 points: expected the right result" in errors[0].evalue, \
        f"expected the loop found out, got {[e.evalue for e in errors] or 'a pass'}"


def test_a_time_counts_only_for_the_right_result():
    """A fast function with a wrong result fails the vectorisation check, saying why."""
    wrong = "def compute_sq_dists(X, W):\n    return np.sum((X[:, None, :] - W[None, :, :]) ** 2, axis=2) + 1.0\n"
    with JudgedKernel("import numpy as np", wrong) as kernel:
        [error] = kernel.verdict("compute_sq_dists_vectorised")
    assert "points: expected the right result" in error.evalue, error.evalue
    assert "times only right answers" in error.evalue, error.evalue


def test_a_correct_function_that_copies_its_inputs_or_names_them_is_timed_alike():
    """The stand-in's answer sent ahead serves a call on copies of the timed arguments, or on
    the same arguments by name, as it serves the arguments themselves."""
    copies = ("def associate_centroids(X, W):\n"
              "    X, W = np.array(X, dtype=float), np.array(W, dtype=float)\n"
              "    D = compute_sq_dists(X=X, W=W)\n"
              "    return D.min(axis=1).mean(), D.argmin(axis=1)\n")
    with JudgedKernel("import numpy as np", ANSWERS["compute_sq_dists"], copies) as kernel:
        assert kernel.verdict("associate_centroids_vectorised") == []


def test_stand_in_answers_sent_ahead_go_as_a_file_the_kernel_reads_once(correct_kernel, monkeypatch):
    """The distances sent ahead for associate_centroids (megabytes) go as a file in the link's
    shared folder, not inside the JSON request; the kernel removes it once read."""
    sent = []
    request = correct_kernel.link.request

    def spy(op, **fields):
        if op == "prepare":
            sent.append((len(json.dumps(fields)), fields["answers"]))
        return request(op, **fields)
    monkeypatch.setattr(correct_kernel.link, "request", spy)
    assert correct_kernel.verdict("associate_centroids_vectorised") == []
    assert sent, "no stand-in answer was sent ahead"
    for size, answers in sent:
        [(name, (file, parameters, also))] = answers.items()
        assert name == "compute_sq_dists" and parameters == ["X", "W"] and also == ["common_shift", "swapped"]
        assert np.prod(file["shape"]) >= 900_000 and size < 1000, (file["shape"], size)
        assert Path(file["file"]).parent == Path(correct_kernel.link.shared_folder)
    assert list(Path(correct_kernel.link.shared_folder).iterdir()) == []



#: Correct associate_centroids that ask for distances on other arguments than the timed call's:
#: the data centred (as scikit-learn does before its distances), or from W to X, transposed.
CENTRED = """
def associate_centroids(X, W):
    X, W = np.asarray(X, dtype=float), np.asarray(W, dtype=float)
    centre = X.mean(axis=0)
    sq_dists = compute_sq_dists(X - centre, W - centre)
    assoc = np.argmin(sq_dists, axis=1)
    return float(sq_dists[np.arange(len(X)), assoc].mean()), assoc
"""
SWAPPED = """
def associate_centroids(X, W):
    sq_dists = compute_sq_dists(W, X).T
    assoc = np.argmin(sq_dists, axis=1)
    return float(sq_dists[np.arange(len(sq_dists)), assoc].mean()), assoc
"""


@pytest.mark.parametrize("answer", [CENTRED, SWAPPED], ids=["centred", "swapped"])
def test_a_correct_function_that_centres_its_data_or_swaps_the_arguments_gets_the_answers_sent_ahead(
        correct_kernel, answer):
    """Before, each such call went to the grader and back (300 000 points both ways, about
    0.3 s) and the correct function failed its vectorisation check."""
    correct_kernel.run(answer)
    try:
        for grade_id in ("associate_centroids_matches_brute_force", "associate_centroids_vectorised"):
            assert correct_kernel.verdict(grade_id) == [], grade_id
    finally:
        correct_kernel.run(ANSWERS["associate_centroids"], SNOOP)



def test_a_function_that_moves_its_x_in_place_is_not_given_the_answers_for_the_x_it_was_given(correct_kernel):
    """Wrong: it centres X in place and forgets W. The answers sent ahead are for the points as
    they were made, so its timed call's distances come from the grader, and its result is wrong."""
    correct_kernel.run("def associate_centroids(X, W):\n"
                       "    X -= X.mean(axis=0)\n"
                       "    D = compute_sq_dists(X, W)\n"
                       "    return D.min(axis=1).mean(), D.argmin(axis=1)\n")
    judge, rng = correct_kernel.judge, np.random.default_rng(6)
    reference = judge.ns["_grader"]
    try:
        with judge.ns["_reference_helpers"](compute_sq_dists=reference.compute_sq_dists):
            with pytest.raises(Exception, match="associate_centroids"):
                judge.timed_right_call("associate_centroids", verdicts.KernelFunction(judge, "associate_centroids"),
                                       reference.associate_centroids,
                                       (rng.normal(size=(2000, 2)) + 5, rng.normal(size=(3, 2))))
    finally:
        correct_kernel.run(ANSWERS["associate_centroids"], SNOOP)


def test_an_answer_sent_ahead_holds_only_for_the_calls_its_stand_in_declares():
    from assignment import probe_runtime
    rng = np.random.default_rng(5)
    X, W, shift = rng.normal(size=(50, 2)), rng.normal(size=(3, 2)), np.array([3.5, -20.0])
    value = ((X[:, None] - W[None]) ** 2).sum(axis=2)
    both = (value, ["X", "W"], ["common_shift", "swapped"])
    probe_runtime._timed_args[:] = [X, W]
    try:
        def sent(answer, *args, **kwargs):
            return probe_runtime._sent_ahead(answer, args, kwargs)
        assert np.array_equal(sent(both, X.copy(), W=W.tolist()), value)
        assert np.array_equal(sent(both, X - shift, W - shift), value)
        assert np.array_equal(sent(both, W, X), value.T)
        assert np.array_equal(sent(both, W + shift, X + shift), value.T)
        assert sent(both, X - shift, W) is None  # not one shift for all: the grader answers it
        for far in (1e20, np.inf, np.nan):  # a shift that rounds the points away, or none at all
            assert sent(both, X + far, W + far) is None, far
            assert sent(both, X + far, W[::-1] + far) is None, far
        assert sent(both, np.full_like(X, 1e20), np.full_like(W, 1e20)) is None
        assert sent(both, X[::-1], W) is None
        assert sent((value, ["X", "W"], []), X - shift, W - shift) is None
        assert sent((value, ["X", "W"], ["common_shift"]), W, X) is None
        for odd in (("a", None), (X,), (X, W, W), ([[1.0], [2.0, 3.0]], W), (X.astype(complex) + 1j, W)):
            assert sent(both, *odd) is None, odd
    finally:
        probe_runtime._timed_args.clear()


def test_a_file_the_kernel_plants_where_answers_are_sent_ahead_is_not_written_through(correct_kernel, monkeypatch,
                                                                                       tmp_path):
    """A kernel that knew the name of the next file sent ahead and put a link to a file of the
    grader's machine there gets the check failed; the file it pointed at is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("the grader's own file")
    folder = Path(correct_kernel.link.shared_folder)
    monkeypatch.setattr("assignment.verdicts.secrets.token_hex", lambda n: "known")
    (folder / "pa2-ahead-known").symlink_to(victim)
    try:
        [error] = correct_kernel.verdict("associate_centroids_vectorised")
    finally:
        (folder / "pa2-ahead-known").unlink()
    assert "sent ahead: expected a new file for the kernel, got FileExistsError" in error.evalue, error.evalue
    assert victim.read_text() == "the grader's own file"


#: Right, but its first three calls on the timed size take 0.12 s more: over the limit of a reference
#: that took 4 ms (0.08 s), under three times it.
#: The master's compute_sq_dists, slow in its first three calls on the timed points.
SLOW_AT_FIRST = (ANSWERS["compute_sq_dists"].replace("def compute_sq_dists(", "def _fast_sq_dists(") +
                 "\n_slow_calls = [0]\n"
                 "def compute_sq_dists(X, W):\n"
                 "    if len(X) == 300000 and _slow_calls[0] < 3:\n"
                 "        _slow_calls[0] += 1\n"
                 "        import time; time.sleep(0.12)\n"
                 "    return _fast_sq_dists(X, W)\n")


def test_a_worker_times_each_reference_once_and_again_only_for_a_retry(correct_kernel, monkeypatch):
    """The vectorisation check's reference is timed in a worker's first notebook; the next
    notebooks start from the least time measured, and a student too slow against it is timed again
    against a fresh measurement, as before. Other checks' code is timed anew."""
    monkeypatch.setattr("assignment.verdicts._REFERENCE_SECONDS", {})
    timed = []
    steady = Judge._steady_reference_time

    def counting(self, best_time, func, args, repeat):
        def timing(*a, **kw):
            seconds = best_time(*a, **kw)
            timed.append((func.__name__, seconds))
            return seconds
        return steady(self, timing, func, args, repeat)
    monkeypatch.setattr(Judge, "_steady_reference_time", counting)
    correct_kernel.run(ANSWERS["compute_sq_dists"])  # not the snooping one: each call of it walks every object
    assert correct_kernel.verdict("compute_sq_dists_vectorised") == []
    assert [name for name, _ in timed] == ["_ref_compute_sq_dists"]
    [(key, cached)] = verdicts._REFERENCE_SECONDS.items()
    assert cached == timed[0][1] and key[2] == 3 and key[3][0] == ((300000, 2), "<f8")

    verdicts._REFERENCE_SECONDS[key] = 1.0  # a limit of 15 s: no retry, whatever the machine does
    next_notebook = Judge(MASTER, correct_kernel.link, str(SOURCE_DIR))
    assert [o for o in next_notebook.judge("compute_sq_dists_vectorised", 60) if o.output_type == "error"] == []
    assert len(timed) == 1, f"expected the reference timed once in this worker, got {timed}"

    verdicts._REFERENCE_SECONDS[key] = 0.004
    correct_kernel.run(SLOW_AT_FIRST)
    try:
        retried = Judge(MASTER, correct_kernel.link, str(SOURCE_DIR))
        assert [o for o in retried.judge("compute_sq_dists_vectorised", 60) if o.output_type == "error"] == []
        assert correct_kernel.run("print(_slow_calls[0])").strip() == "3"
        assert [name for name, _ in timed] == ["_ref_compute_sq_dists"] * 2, "expected a fresh time for the retry"
        assert verdicts._REFERENCE_SECONDS[key] == min(0.004, timed[-1][1])
    finally:
        correct_kernel.run(ANSWERS["compute_sq_dists"])

    other = copy.deepcopy(MASTER)
    [cell] = [c for c in other.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "grader_reference_code"]
    cell.source += "\n# another version of the checks\n"
    assert [o for o in Judge(other, correct_kernel.link, str(SOURCE_DIR)).judge("compute_sq_dists_vectorised", 60)
            if o.output_type == "error"] == []
    assert len(timed) >= 3 and len(verdicts._REFERENCE_SECONDS) == 2, "expected other checks' references timed anew"
    correct_kernel.run(SNOOP)


#: Plain loops over the points (lists, not NumPy rows), compiled under a file name the kernel's
#: line count takes for library code: only the grader's clock can tell.
HIDDEN_LOOPS = '''
_loops = """
import numpy as np
def compute_sq_dists(X, W):
    Wl = W.tolist()
    return np.array([[(a - c) ** 2 + (b - d) ** 2 for c, d in Wl] for a, b in X.tolist()])
def update_centroids(X, k, assoc):
    s = [[0.0, 0.0] for _ in range(k)]; n = [0] * k
    for (a, b), j in zip(X.tolist(), assoc.tolist()):
        t = s[j]; t[0] += a; t[1] += b; n[j] += 1
    return np.array([[t[0] / max(c, 1), t[1] / max(c, 1)] for t, c in zip(s, n)])
def associate_centroids(X, W):
    a, loss = [], 0.0
    for row in compute_sq_dists(X, W).tolist():
        m = min(row); a.append(row.index(m)); loss += m
    return loss / len(X), np.array(a)
"""
exec(compile(_loops, "<frozen loops>", "exec"), globals())
'''


def test_a_plain_python_loop_hidden_from_the_line_count_is_too_slow():
    """A plain loop over the points, which the kernel's line count does not see, fails each
    vectorisation check on the grader's clock, with the right result."""
    with JudgedKernel("import numpy as np", HIDDEN_LOOPS) as kernel:
        verdicts = {function: [e.evalue for e in kernel.verdict(f"{function}_vectorised")]
                    for function in ("compute_sq_dists", "update_centroids", "associate_centroids")}
    passed = {f: errors or "a pass" for f, errors in verdicts.items()
              if not (errors and "points: expected at most" in errors[0])}
    assert passed == {}, f"expected each loop found too slow, got {passed}"


#: A kernel that wakes 40 busy processes, each in its own session, whenever it has answered (the
#: grader then makes the next arguments and fingerprint, and leaves that time out) and stops them
#: when the next request arrives (its own loop then has the machine to itself).
CROWDS_THE_GRADER = r'''
import os, signal, subprocess
_hogs = [subprocess.Popen(["timeout", "60", "sh", "-c", "while :; do :; done"], start_new_session=True).pid
         for _ in range(40)]
def _signal_hogs(sig):
    for pid in _hogs:
        try:
            os.killpg(pid, sig)
        except OSError:
            pass
_signal_hogs(signal.SIGSTOP)
_kernel = get_ipython().kernel
_send, _recv = _kernel.session.send, _kernel.session.recv
def _send_hook(stream, msg_or_type, content=None, *a, **kw):
    sent = _send(stream, msg_or_type, content, *a, **kw)
    if msg_or_type == "input_request" and str((content or {}).get("prompt", "")).startswith("\x00pa2-answer"):
        _signal_hogs(signal.SIGCONT)
    return sent
def _recv_hook(*a, **kw):
    got = _recv(*a, **kw)
    if a and a[0] is _kernel.stdin_socket and got != (None, None):
        _signal_hogs(signal.SIGSTOP)
    return got
_kernel.session.send, _kernel.session.recv = _send_hook, _recv_hook
'''


def test_a_kernel_that_crowds_the_machine_while_the_grader_works_gains_nothing(monkeypatch):
    """Busy processes that run only while the grader works (timing the reference, making the
    arguments and the fingerprint) cannot stretch what it measures: its own CPU time."""
    monkeypatch.setattr("assignment.verdicts._REFERENCE_SECONDS", {})  # this worker's first notebook: timed here
    with JudgedKernel("import numpy as np", HIDDEN_LOOPS, CROWDS_THE_GRADER) as kernel:
        try:
            errors = kernel.verdict("compute_sq_dists_vectorised")
        finally:
            kernel.run("_signal_hogs(signal.SIGKILL)")
    assert errors and "points: expected at most" in errors[0].evalue, \
        f"expected the loop found too slow, got {[e.evalue for e in errors] or 'a pass'}"


class HostileLink(KernelLink):
    """The grader's link, reading ``answer`` as the kernel's answer to every request (what a
    broken or forged probe could send)."""

    def __init__(self, answer):
        self.answer, self.standins, self.deadlines, self.answered = answer, {}, {}, 0
        self.installed, self.serving, self.cpu_wait, self._keys = True, None, None, itertools.count()

    def _send(self, text):
        return self.answer


ANSWERS_FROM_A_BROKEN_KERNEL = st.one_of(
    st.dictionaries(st.sampled_from(["ok", "kind", "value", "cells", "lines", "warnings", "error", "message", "args"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.floats(),
                              st.lists(st.integers(), max_size=3),
                              st.sampled_from([{"t": "ndarray", "v": "AAAA"}, {"t": "int", "v": "5"},
                                               {"t": "list", "v": []}, {"t": "opaque", "type": "x", "repr": "y"},
                                               {"t": "float", "v": "nan"}])),
                    max_size=6),
    st.just({"ok": True, "kind": "value", "value": boundary.encode(np.zeros((3, 2)))}),
    st.just({"ok": True, "kind": "callable", "value": boundary.encode(np.full((2, 2), np.nan))}),
)
CHECKED = ["compute_sq_dists_matches_cdist", "update_centroids_empty_cluster", "associate_centroids_worked_example",
           "rand_init_uses_np_random", "k_means_matches_lloyd", "compute_sq_dists_vectorised", "act8_k1_losses",
           "act8_plot_legend", "act7_scatter_plots", "act9_digit_images"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANSWERS_FROM_A_BROKEN_KERNEL, st.sampled_from(CHECKED))
def test_whatever_the_kernel_answers_the_check_fails_with_a_message_and_the_grader_goes_on(answer, grade_id):
    judge = Judge(MASTER, HostileLink(answer), str(SOURCE_DIR))
    outputs = judge.judge(grade_id, seconds=30)
    errors = [o for o in outputs if o.output_type == "error"]
    assert errors, f"{grade_id} passed on the answer {answer!r}"
    assert errors[0].evalue, errors[0]

