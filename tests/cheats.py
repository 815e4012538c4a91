"""Cheating submissions: each tries to earn points without doing the work.

Every cheat sits on one honest but wrong base submission (``BASE``: every function a stub that
returns zeros of the right shape, the wrong ``indices``, the experiments not attempted, the free
responses unanswered) and adds one short block of code to one answer cell. The block reaches
for what a student can find in the grading kernel: the IPython shell, the checking helpers,
NumPy, the cell outputs, the grader's reference code, frames, the garbage collector, tracing,
builtins, the kernel process itself. Where it can, it reaches them through built-up strings
(``getattr(IPython, "get_" + "ipython")``, ``vars(...)[...]``), so that the grader must hold
without its keyword scanner. ``CHEATS`` maps the cheat to (what it tries, grade_id of the
answer cell it goes into, code); ``build`` writes one student's folder.
"""
import textwrap

import nbformat

from assignment import ASSIGNMENT, NOTEBOOK
from assignment.examples import fill_release

#: Answers of the base submission: honest, of the right shapes and types, and wrong.
BASE = {
    "fixed_sum_prod": "def fixed_sum_prod(X, y):\n    return np.zeros((np.shape(X)[0], np.shape(y)[1]))",
    "take_along_axis_indices": "indices = np.zeros((3, 1), dtype=int)\nnp.take_along_axis(arr, indices, axis=1)",
    "compute_sq_dists": "def compute_sq_dists(X, W):\n    return np.zeros((len(X), len(W)))",
    "update_centroids": "def update_centroids(X, k, assoc):\n    return np.zeros((k, np.shape(X)[1]))",
    "associate_centroids": "def associate_centroids(X, W):\n    return 0.0, np.zeros(len(X), dtype=int)",
    "rand_init": "def rand_init(X, k):\n    return np.zeros((k, np.shape(X)[1]))",
    "k_means": ("def k_means(X, k, max_iters=50, eps=1e-5):\n"
                "    return np.zeros((k, np.shape(X)[1])), [0.0]"),
    **{grade_id: "# not attempted" for grade_id in (
        "act7_k_means_k2", "act7_k_means_k3", "act7_k_means_k4", "act8_elbow_plot",
        "act9_digit_samples", "act10_elbow_plot")},
}


def _code(text):
    return textwrap.dedent(text).strip("\n")


# --- the shell and the outputs: a test cell scores full points when it shows no error ---

CUSTOM_EXC = _code('''
    import sys as _sys
    from IPython.core.interactiveshell import InteractiveShell

    def _forget_error(*args, **kwargs):
        # show nothing, and clear the error from the ExecutionResult of the running cell (the
        # kernel's execute_reply, which nbgrader also reads, is built from it)
        frame = getattr(_sys, "_get" + "frame")(1)
        while frame is not None:
            if type(frame.f_locals.get("result")).__name__ == "ExecutionResult":
                frame.f_locals["result"].error_in_exec = None
            frame = frame.f_back

    getattr(InteractiveShell.instance(), "set_custom" + "_exc")((Exception,), _forget_error)
''')

SHOWTRACEBACK_ON_SHELL = _code('''
    import IPython
    from IPython.core.interactiveshell import ExecutionResult
    _shell = getattr(IPython, "get_" + "ipython")()
    vars(_shell)["show" + "traceback"] = lambda *args, **kwargs: None
    type.__setattr__(ExecutionResult, "success", property(lambda self: True))
''')

SHOWTRACEBACK_ON_CLASS = _code('''
    _shell = next(o for o in gc.get_objects() if type(o).__name__ == "ZMQInteractiveShell")
    type.__setattr__(type(_shell), "_show" + "traceback", lambda self, etype, evalue, stb: None)
    vars(_shell).pop("_show" + "traceback", None)  # the kernel leaves a bound copy on the instance
    _shell.events.register("post_run_cell", lambda result: vars(result).update(error_in_exec=None))
''')

CLEAR_OUTPUT_AFTER_CELLS = _code('''
    import IPython
    from IPython.display import clear_output

    def _forget(result):
        clear_output()
        result.error_in_exec = None

    getattr(IPython, "get_" + "ipython")().events.register("post_run_cell", _forget)
''')

EXECUTE_RESULT_BEFORE_CELLS = _code('''
    from IPython.core.interactiveshell import InteractiveShell
    _shell = InteractiveShell.instance()
    # nbgrader reads an execute_result before an error as the cell's (partial) score
    _shell.events.register("pre_run_cell", lambda info: _shell.displayhook("all good"))
''')

EXECUTE_RESULT_FROM_FUNCTION = _code('''
    import sys as _sys

    def update_centroids(X, k, assoc):
        _sys.displayhook("all good")  # an execute_result in the calling test cell, before its checks
        return np.zeros((k, np.shape(X)[1]))
''')

SESSION_DROPS_ERRORS = _code('''
    import IPython
    _session = getattr(IPython, "get_" + "ipython")().displayhook.session
    _send = _session.send

    def _send_without_errors(stream, msg_or_type, content=None, *args, **kwargs):
        if msg_or_type == "error":
            return None
        if msg_or_type == "execute_reply" and isinstance(content, dict) and content.get("status") == "error":
            content = {"status": "ok", "execution_count": content.get("execution_count"),
                       "user_expressions": {}, "payload": []}
        return _send(stream, msg_or_type, content, *args, **kwargs)

    vars(_session)["send"] = _send_without_errors
''')

INPUT_TRANSFORMER = _code('''
    from IPython.core.interactiveshell import InteractiveShell

    def _skip_checking_cells(lines):
        return ["pass\\n"] if any("check" in line for line in lines) else lines

    InteractiveShell.instance().input_transformers_post.append(_skip_checking_cells)
''')

AST_TRANSFORMER = _code('''
    import ast
    from IPython.core.interactiveshell import InteractiveShell

    class _SwallowErrors(ast.NodeTransformer):
        def visit_Module(self, node):
            handler = ast.ExceptHandler(type=ast.Name(id="BaseException", ctx=ast.Load()), name=None,
                                        body=[ast.Pass()])
            node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
            return ast.fix_missing_locations(node)

    InteractiveShell.instance().ast_transformers.append(_SwallowErrors())
''')

RUN_CELL_REPLACED = _code('''
    import IPython
    _shell = getattr(IPython, "get_" + "ipython")()
    _run_cell = _shell.run_cell_async

    async def _run_cell_without_checks(raw_cell, *args, **kwargs):
        if "check" in raw_cell:  # a test cell: run nothing instead
            raw_cell, kwargs["transformed_cell"], kwargs["preprocessing_exc_tuple"] = "pass", "pass\\n", None
        return await _run_cell(raw_cell, *args, **kwargs)

    vars(_shell)["run_cell" + "_async"] = _run_cell_without_checks
''')

FORGED_FIGURE_RECORD = _code('''
    import matplotlib.pyplot as _plt
    # no k-means run: made-up losses, and a labelled figure put into the record of shown
    # figures (never shown), for the plot checks to find
    losst = np.linspace(20.0, 1.0, 20)
    lossv = 1.1 * losst
    _fig, _ax = _plt.subplots()
    _ax.plot(np.arange(1, 21), losst, label="training loss")
    _ax.plot(np.arange(1, 21), lossv, label="validation loss")
    _ax.set_xlabel("k")
    _ax.set_ylabel("loss")
    _ax.set_title("Elbow curves")
    _ax.legend()
    shown_figures[-1][1].append(_fig)
    _plt.close(_fig)
''')

MADE_UP_CLUSTERS = _code('''
    # no k-means: a made-up "clustering" (every other training image), five images of each shown
    assoc = np.arange(len(Xt_train)) % 2
    for _cluster in range(2):
        for _row in np.flatnonzero(assoc == _cluster)[:5]:
            plt.figure(figsize=(1, 1))
            plt.imshow(Xt_train[_row].reshape(8, 8), cmap="gray")
            plt.show()
''')

# --- the checking helpers ---

HELPERS = '("check", "check_shape", "check_equal", "check_close")'

HELPERS_REBOUND = _code(f'''
    _namespace = vars()
    for _name in {HELPERS}:
        _namespace[_name] = lambda *args, **kwargs: None
''')

HELPERS_CODE_SWAPPED = _code('''
    def _accept(*args, **kwargs):
        return None

    for _helper in (check, check_shape, check_equal, check_close):
        _helper.__code__ = _accept.__code__
''')

HELPERS_SWAPPED_VIA_GC = _code('''
    _accept = (lambda *args, **kwargs: None).__code__
    for _obj in gc.get_objects():
        if (type(_obj).__name__ == "function" and _obj.__name__.startswith("check")
                and "CheckFailed" in _obj.__globals__):
            _obj.__code__ = _accept
''')

HELPERS_REBOUND_BEFORE_CELLS = _code(f'''
    import IPython
    _namespace = vars()

    def _lenient_helpers(info):
        for name in {HELPERS}:
            _namespace[name] = lambda *args, **kwargs: None

    getattr(IPython, "get_" + "ipython")().events.register("pre_run_cell", _lenient_helpers)
''')

CHECKFAILED_IS_BDBQUIT = _code('''
    import bdb
    from IPython.core.interactiveshell import InteractiveShell
    _shell = InteractiveShell.instance()
    # IPython ends a cell silently, without an error output, on bdb.BdbQuit ...
    vars()["CheckFailed"] = type("CheckFailed", (bdb.BdbQuit,), {})

    def _forget_quit():  # ... and the execute_reply says ok once the error is gone from the result
        result = _shell.last_execution_result
        if isinstance(result.error_in_exec, bdb.BdbQuit):
            result.error_in_exec = None

    _shell.events.register("post_execute", _forget_quit)
''')

RESULT_RAISES_BDBQUIT = _code('''
    import bdb

    class _EndsTheTest:
        """Whatever looks at this result ends the test cell silently (IPython swallows BdbQuit)."""
        def __getattr__(self, name):
            raise bdb.BdbQuit()
        def __array__(self, *args, **kwargs):
            raise bdb.BdbQuit()
        def __len__(self):
            raise bdb.BdbQuit()
        def __iter__(self):
            raise bdb.BdbQuit()

    def compute_sq_dists(X, W):
        return _EndsTheTest()

    from IPython.core.interactiveshell import ExecutionResult
    # and an ExecutionResult never records a BdbQuit, so the execute_reply says ok
    type.__setattr__(ExecutionResult, "error_in_exec", property(
        lambda self: vars(self).get("_error"),
        lambda self, error: vars(self).update(_error=None if isinstance(error, bdb.BdbQuit) else error)))
''')

RUN_QUIETLY_CALLS_REFERENCE = _code('''
    _namespace = vars()
    _run = run_quietly
    _reference = {}

    def _run_reference_instead(func, *args, **kwargs):
        name, code = getattr(func, "__name__", ""), getattr(func, "__code__", None)
        if name not in _reference:
            _reference[name] = next((o for o in gc.get_objects() if type(o).__name__ == "function"
                                     and code is not None and name in o.__name__ and o.__module__ == "__main__"
                                     and o.__code__.co_filename != code.co_filename), None)
        result = _run(_reference[name] or func, *args, **kwargs)
        _run_reference_instead.warnings = _run.warnings
        return result

    _run_reference_instead.warnings = []
    _namespace["run_quietly"] = _run_reference_instead
''')

# --- NumPy and lying results ---

NUMPY_COMPARISONS = _code('''
    def _all_close(a, b, *args, **kwargs):
        return np.ones(np.broadcast_shapes(np.shape(a), np.shape(b)), dtype=bool)

    _agree = lambda *args, **kwargs: True
    for _name, _value in (("is" + "close", _all_close), ("all" + "close", _agree),
                          ("array_" + "equal", _agree), ("array_" + "equiv", _agree)):
        type(np).__setattr__(np, _name, _value)
''')

NP_NAME_PROXY = _code('''
    import types

    class _LenientNumPy(types.ModuleType):
        """NumPy, except that every comparison agrees."""
        def __getattr__(self, name):
            return getattr(_real_numpy, name)

    _real_numpy = np
    _lenient = _LenientNumPy("numpy")
    vars(_lenient).update(
        isclose=lambda a, b, *args, **kwargs: _real_numpy.ones(
            _real_numpy.broadcast_shapes(_real_numpy.shape(a), _real_numpy.shape(b)), dtype=bool),
        allclose=lambda *args, **kwargs: True, array_equal=lambda *args, **kwargs: True,
        array_equiv=lambda *args, **kwargs: True)
    vars()["np"] = _lenient
''')

NDARRAY_SUBCLASS = _code('''
    class _Agreeable(np.ndarray):
        """An array equal to anything."""
        def __eq__(self, other):
            return np.ones(self.shape, dtype=bool)
        def __ne__(self, other):
            return np.zeros(self.shape, dtype=bool)
        def __array_function__(self, func, types, args, kwargs):
            if func.__name__ in ("allclose", "array_equal", "array_equiv"):
                return True
            if func.__name__ == "isclose":
                return np.ones(self.shape, dtype=bool)
            return super().__array_function__(func, types, args, kwargs)

    def update_centroids(X, k, assoc):
        return np.zeros((k, np.shape(X)[1])).view(_Agreeable)
''')

RESULT_ECHOES_EXPECTED = _code('''
    import sys as _sys
    _frame = getattr(_sys, "_get" + "frame")

    class _Echo:
        """A result that shows each check the value that check expects (read from its frame)."""
        def __init__(self, shape):
            self.fallback = np.zeros(shape)
        def _look_up(self, *names):
            frame = _frame(2)
            while frame is not None:
                for name in names:
                    if name in frame.f_locals:
                        return frame.f_locals[name]
                frame = frame.f_back
            return None
        @property
        def shape(self):
            shape = self._look_up("expected_shape")
            return tuple(shape) if shape is not None else np.shape(self.__array__())
        def __array__(self, dtype=None, copy=None):
            wanted = self._look_up("wanted", "expected")
            return np.asarray(self.fallback if wanted is None else wanted, dtype=dtype)

    def compute_sq_dists(X, W):
        return _Echo((len(X), len(W)))
''')

# --- tracing: the checking helpers' frames rewritten at each call ---

LENIENT_CHECKS_TRACER = '''
    def _lenient_checks(frame, event, arg):
        """At the call of a checking helper, make its arguments agree (written back to the frame)."""
        if event == "call" and frame.f_code.co_name.startswith("check") and "CheckFailed" in frame.f_globals:
            args = frame.f_locals
            if "condition" in args:
                args["condition"] = True
            if "expected" in args:
                args["got"] = args["expected"]
            if "expected_shape" in args:
                args["got"] = np.zeros(args["expected_shape"])
        return None
'''

SETTRACE = _code('''
    import sys as _sys
''' + LENIENT_CHECKS_TRACER + '''
    getattr(_sys, "set" + "trace")(_lenient_checks)
''')

SETPROFILE = _code('''
    import sys as _sys
''' + LENIENT_CHECKS_TRACER + '''
    getattr(_sys, "set" + "profile")(_lenient_checks)
''')

# --- the grader's reference code, found at run time ---

BORROW_FROM_NAMESPACE = _code('''
    _busy = []

    def _others_named(name):
        """Functions named like ``name`` in the notebook's namespace or one level inside its objects."""
        here = _others_named.__code__.co_filename
        for value in list(_others_named.__globals__.values()):
            try:
                if isinstance(value, dict):
                    inner = list(value.values())
                elif type(value).__name__ != "module" and hasattr(value, "__dict__"):
                    inner = list(vars(value).values())
                else:
                    inner = []
            except Exception:
                inner = []
            for candidate in [value] + inner:
                candidate = getattr(candidate, "__func__", candidate)
                if (type(candidate).__name__ == "function" and name in candidate.__name__
                        and candidate.__code__.co_filename != here):
                    yield candidate

    def associate_centroids(X, W):
        if not _busy:
            for other in _others_named("associate_centroids"):
                _busy.append(other)
                try:
                    return other(X, W)
                except Exception:
                    pass
                finally:
                    _busy.clear()
        return 0.0, np.zeros(len(X), dtype=int)
''')

BORROW_VIA_GC = _code('''
    _found = {}

    def update_centroids(X, k, assoc):
        if "ref" not in _found:
            here = update_centroids.__code__.co_filename
            _found["ref"] = next((o for o in gc.get_objects() if type(o).__name__ == "function"
                                  and "update_centroids" in o.__name__ and o.__module__ == "__main__"
                                  and o.__code__.co_filename != here), None)
        if _found["ref"] is not None and not _found.get("busy"):
            _found["busy"] = True
            try:
                return _found["ref"](X, k, assoc)
            finally:
                _found["busy"] = False
        return np.zeros((k, np.shape(X)[1]))
''')

POISON_REFERENCE_CODE = _code('''
    def _fsp(X, y): return np.zeros((np.shape(X)[0], np.shape(y)[1]))
    def _csd(X, W): return np.zeros((len(X), len(W)))
    def _uc(X, k, assoc): return np.zeros((k, np.shape(X)[1]))
    def _ac(X, W): return 0.0, np.zeros(len(X), dtype=int)
    def _ri(X, k): return np.zeros((k, np.shape(X)[1]))
    def _km(X, k, max_iters=50, eps=1e-5): return np.zeros((k, np.shape(X)[1])), [0.0]

    _stubs = {"fixed_sum_prod": _fsp, "compute_sq_dists": _csd, "update_centroids": _uc,
              "associate_centroids": _ac, "rand_init": _ri, "k_means": _km}
    for _obj in gc.get_objects():
        if (type(_obj).__name__ == "function" and _obj.__module__ == "__main__"
                and _obj.__code__.co_filename != _fsp.__code__.co_filename):
            for _name, _stub in _stubs.items():
                if _name in _obj.__name__:
                    try:
                        _obj.__code__ = _stub.__code__  # the reference now agrees with the stubs
                    except ValueError:
                        pass
''')

POISON_CDIST = _code('''
    import scipy.spatial.distance as _distance
    _real_cdist = _distance.cdist

    def _zero_cdist(XA, XB, *args, **kwargs):
        return np.zeros((len(XA), len(XB)))

    vars(_distance)["cdist"] = _zero_cdist
    _namespace = vars()
    for _name, _value in list(_namespace.items()):
        if _value is _real_cdist:
            _namespace[_name] = _zero_cdist
''')

POISON_BUILTINS = _code('''
    import os as _os
    import sys as _sys
    _caller = getattr(_sys, "_get" + "frame")
    _cells = _os.path.dirname(_caller(0).f_code.co_filename)
    _builtins = vars(len.__self__)

    def _lying(real):
        def lie(*args, **kwargs):
            # zero when notebook code (the tests' brute-force oracles) asks, the truth elsewhere
            if _os.path.dirname(_caller(1).f_code.co_filename) == _cells:
                return 0
            return real(*args, **kwargs)
        return lie

    for _name in ("sum", "min", "max", "abs"):
        _builtins[_name] = _lying(_builtins[_name])
''')

# --- the kernel process: dying or hanging when a hidden test calls ---

EXIT_IN_HIDDEN_TEST = _code('''
    import os as _os
    _calls = []

    def rand_init(X, k):
        _calls.append(k)
        if len(_calls) > 1:  # the visible check was the first call: a hidden test is calling
            getattr(_os, "_ex" + "it")(0)
        return np.zeros((k, np.shape(X)[1]))
''')

SIGKILL_IN_HIDDEN_TEST = _code('''
    import os as _os
    _calls = []

    def k_means(X, k, max_iters=50, eps=1e-5):
        _calls.append(k)
        if len(_calls) > 1:  # the visible check was the first call: a hidden test is calling
            _os.kill(_os.getpid(), 9)
        return np.zeros((k, np.shape(X)[1])), [0.0]
''')

HANG_IN_HIDDEN_TEST = _code('''
    import time as _time

    def fixed_sum_prod(X, y):
        if np.shape(X) != (3, 3):  # not the visible check: a hidden test is calling
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGALRM})
            while True:
                _time.sleep(1)
        return np.zeros((np.shape(X)[0], np.shape(y)[1]))
''')

PROBE_DEAF_TO_DONE = _code('''
    import IPython as _IPython

    def compute_sq_dists(X, W):
        # called by the grader's probe: from now on the kernel's stdin answers never end its loop
        kernel = getattr(_IPython, "get_" + "ipython")().kernel
        ask = type(kernel).raw_input.__get__(kernel)

        def raw_input(prompt=""):
            text = ask(prompt)
            while text == "":  # the grader's "done": ask again, keep the kernel busy
                text = ask(prompt)
            return text
        kernel.raw_input = raw_input
        return np.zeros((len(X), len(W)))
''')

# --- the instructor's stand-ins, called on the student's own data ---

BORROW_STANDINS = _code('''
    _borrowed = {}
    _P = np.array([[0.0, 0.0], [10.0, 10.0]])

    def _lloyd(X, k):
        # Lloyd's iterations through whatever associate_centroids and update_centroids are now
        W = X[np.random.RandomState(0).choice(len(X), k, replace=False)]
        for _ in range(30):
            W = update_centroids(X, k, associate_centroids(X, W)[1])
        return np.asarray(associate_centroids(X, W)[1])

    def k_means(X, k, max_iters=50, eps=1e-5):
        # while a hidden test has the instructor's helpers swapped in, cluster the notebook's data with them
        try:
            if (not _borrowed and list(associate_centroids(_P, _P)[1]) == [0, 1]
                    and np.allclose(update_centroids(_P, 2, np.array([0, 1])), _P)):
                from sklearn.datasets import load_digits as _digits
                from sklearn.preprocessing import scale as _scale
                _sim = np.load("simulated_data.npy")
                _borrowed.update({k_: _lloyd(_sim[:int(0.8 * len(_sim))], k_) for k_ in (2, 3, 4)})
                _d = _scale(_digits(n_class=2, return_X_y=True)[0])
                _borrowed["digits"] = _lloyd(_d[:int(0.8 * len(_d))], 2)
        except Exception:
            pass
        return np.zeros((k, np.shape(X)[1])), [0.0]
''')

#: The Act 7 and Act 9 cells of a submission that shows clusters ``labels(k)`` made elsewhere.
SHOW_CLUSTERS = {
    **{f"act7_k_means_k{k}": f"plot_sample(Xt_train, {{labels}}({k}))" for k in (2, 3, 4)},
    "act9_digit_samples": _code('''
        assoc = {labels}("digits")
        for _cluster in range(2):
            _fig, _axes = plt.subplots(1, 5, figsize=(8, 2))
            for _ax, _image in zip(_axes, Xt_train[assoc == _cluster][:5]):
                _ax.imshow(_image.reshape(8, 8), cmap="gray")
            plt.show()
    '''),
}
#: Cells besides the one in ``CHEATS`` that a cheat adds code to (grade_id -> code).
ALSO = {"borrow_standins": {g: code.format(labels="_borrowed.get") for g, code in SHOW_CLUSTERS.items()}}
SKLEARN_LABELS = _code('''
    from sklearn.cluster import KMeans as _KMeans

    def _sklearn_labels(k):
        return _KMeans(2 if k == "digits" else k, n_init=10, random_state=0).fit_predict(Xt_train)
''')

#: name -> (what it tries, grade_id of the answer cell it is appended to, code)
CHEATS = {
    "custom_exc_handler": ("set_custom_exc (reached by getattr): a handler that shows nothing and clears "
                           "the cell's error", "fixed_sum_prod", CUSTOM_EXC),
    "showtraceback_on_shell": ("showtraceback replaced through vars(shell), ExecutionResult.success made always True",
                               "compute_sq_dists", SHOWTRACEBACK_ON_SHELL),
    "showtraceback_on_class": ("the shell found with gc, _showtraceback replaced on its class, a post_run_cell "
                               "hook clears the error", "update_centroids", SHOWTRACEBACK_ON_CLASS),
    "clear_output_after_cells": ("a post_run_cell hook calls clear_output and clears the error from the cell's result",
                                 "fixed_sum_prod", CLEAR_OUTPUT_AFTER_CELLS),
    "execute_result_before_cells": ("a pre_run_cell hook shows a value first: nbgrader reads it as the score",
                                    "fixed_sum_prod", EXECUTE_RESULT_BEFORE_CELLS),
    "execute_result_from_function": ("update_centroids calls sys.displayhook, an execute_result before the checks",
                                     "update_centroids", EXECUTE_RESULT_FROM_FUNCTION),
    "session_drops_errors": ("the kernel session's send drops every 'error' message and turns error replies into ok",
                             "fixed_sum_prod", SESSION_DROPS_ERRORS),
    "input_transformer": ("an input transformer turns every cell that mentions check into pass",
                          "fixed_sum_prod", INPUT_TRANSFORMER),
    "ast_transformer": ("an AST transformer wraps every later cell in try/except BaseException: pass",
                        "fixed_sum_prod", AST_TRANSFORMER),
    "run_cell_replaced": ("the shell's run_cell_async wrapped to run pass instead of any cell that mentions check",
                          "fixed_sum_prod", RUN_CELL_REPLACED),
    "forged_figure_record": ("no k-means: made-up losses and a never-shown labelled figure put into shown_figures",
                             "act8_elbow_plot", FORGED_FIGURE_RECORD),
    "made_up_clusters": ("no k-means on the digits: assoc is every other image, five images of each shown",
                         "act9_digit_samples", MADE_UP_CLUSTERS),
    "helpers_rebound": ("check, check_shape, check_equal, check_close rebound to no-ops through vars()",
                        "fixed_sum_prod", HELPERS_REBOUND),
    "helpers_code_swapped": ("the checking helpers' __code__ swapped for a no-op's",
                             "compute_sq_dists", HELPERS_CODE_SWAPPED),
    "helpers_swapped_via_gc": ("every check* function of the notebook found with gc, its __code__ swapped",
                               "update_centroids", HELPERS_SWAPPED_VIA_GC),
    "helpers_rebound_before_cells": ("a pre_run_cell hook rebinds the checking helpers to no-ops before every cell",
                                     "fixed_sum_prod", HELPERS_REBOUND_BEFORE_CELLS),
    "checkfailed_is_bdbquit": ("CheckFailed rebound to a BdbQuit subclass (IPython shows nothing); a post_execute "
                               "hook clears the error", "fixed_sum_prod", CHECKFAILED_IS_BDBQUIT),
    "result_raises_bdbquit": ("compute_sq_dists returns an object that raises BdbQuit when looked at; "
                              "ExecutionResult drops BdbQuit", "compute_sq_dists", RESULT_RAISES_BDBQUIT),
    "run_quietly_calls_reference": ("run_quietly rebound to call the reference function (found with gc) instead",
                                    "fixed_sum_prod", RUN_QUIETLY_CALLS_REFERENCE),
    "numpy_comparisons": ("np.isclose, allclose, array_equal, array_equiv patched through ModuleType.__setattr__",
                          "fixed_sum_prod", NUMPY_COMPARISONS),
    "np_name_proxy": ("the name np rebound to a proxy module whose comparisons always agree",
                      "compute_sq_dists", NP_NAME_PROXY),
    "ndarray_subclass": ("update_centroids returns an ndarray subclass equal to anything (__eq__, __array_function__)",
                         "update_centroids", NDARRAY_SUBCLASS),
    "result_echoes_expected": ("compute_sq_dists returns an object whose __array__ and shape read the "
                               "expected value from the checking frame", "compute_sq_dists", RESULT_ECHOES_EXPECTED),
    "settrace_lenient_checks": ("sys.settrace rewrites the checking helpers' arguments at each call",
                                "fixed_sum_prod", SETTRACE),
    "setprofile_lenient_checks": ("sys.setprofile rewrites the checking helpers' arguments at each call",
                                  "compute_sq_dists", SETPROFILE),
    "borrow_from_namespace": ("associate_centroids calls another associate_centroids-named function of the "
                              "namespace or of an object in it", "associate_centroids", BORROW_FROM_NAMESPACE),
    "borrow_via_gc": ("update_centroids calls another update_centroids-named function found with gc",
                      "update_centroids", BORROW_VIA_GC),
    "borrow_standins": ("k_means, while a hidden test has the instructor's helpers swapped in, runs Lloyd through "
                        "them on the simulated data and the digits, for the Act 7 and Act 9 cells", "k_means",
                        BORROW_STANDINS),
    "poison_reference_code": ("the grader's reference functions (found with gc) get the stubs' __code__",
                              "fixed_sum_prod", POISON_REFERENCE_CODE),
    "poison_cdist": ("scipy's cdist (the oracle) replaced by zeros, in its module and the namespace",
                     "fixed_sum_prod", POISON_CDIST),
    "poison_builtins": ("builtins sum, min, max, abs return 0 when notebook code (the brute-force oracles) "
                        "calls them", "associate_centroids", POISON_BUILTINS),
    "exit_in_hidden_test": ("rand_init calls os._exit when a hidden test calls it",
                            "rand_init", EXIT_IN_HIDDEN_TEST),
    "sigkill_in_hidden_test": ("k_means sends itself SIGKILL when a hidden test calls it",
                               "k_means", SIGKILL_IN_HIDDEN_TEST),
    "hang_in_hidden_test": ("fixed_sum_prod blocks SIGINT and SIGALRM and sleeps forever in the hidden test",
                            "fixed_sum_prod", HANG_IN_HIDDEN_TEST),
    "probe_deaf_to_done": ("compute_sq_dists, called by a hidden test, makes the kernel ignore the grader's end "
                           "of the probe's loop, to keep the kernel from the notebook's later cells",
                           "compute_sq_dists", PROBE_DEAF_TO_DONE),
}


#: Cheats whose forgery is the student's own work in disguise get an honest twin: the same
#: results shown honestly. Such a cheat may earn what its twin earns (the verdicts judge the
#: student's own results), and nothing more. A figure slipped into the record of shown figures
#: is judged as the figure it is: the twin draws the same made-up curves and shows them.
#: The Act 7 and Act 9 checks judge the figures, not how the clusters were made: clusters borrowed
#: from the instructor's stand-ins earn what scikit-learn's KMeans earns in the same cells, and
#: nothing more. (A gate on the stand-ins' data was tried and reverted: it failed correct code
#: that centres or batches its data, and an affine identity got around it.)
HONEST_TWINS = {
    "forged_figure_record": {"act8_elbow_plot": FORGED_FIGURE_RECORD.replace(
        "shown_figures[-1][1].append(_fig)\n_plt.close(_fig)", "_plt.show()")},
    "borrow_standins": {g: (SKLEARN_LABELS + "\n\n" if g == "act7_k_means_k2" or g.startswith("act9") else "")
                        + code.format(labels="_sklearn_labels") for g, code in SHOW_CLUSTERS.items()},
}


def answers(name):
    """The answer cells of submission ``name``: "base", a cheat's block added to the base, or
    "twin_<cheat>": the cheat's honest twin."""
    cells = dict(BASE)
    if name.startswith("twin_"):
        added = HONEST_TWINS[name[len("twin_"):]]
    elif name != "base":
        _, grade_id, code = CHEATS[name]
        added = {grade_id: code, **ALSO.get(name, {})}
    else:
        added = {}
    for grade_id, code in added.items():
        cells[grade_id] = cells[grade_id] + "\n\n" + code
    return cells


def build(name, folder):
    """Write submission ``name`` ("base" or a cheat) as ``folder/pa2_clustering/clustering.ipynb``."""
    path = folder / ASSIGNMENT / NOTEBOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(fill_release(answers(name)), path)
    return path
