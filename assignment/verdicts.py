"""Verdicts outside the kernel: the master notebook's test cells, run in the grader's process.

Every test cell that carries points is judged here, never in the student's kernel. The cell's
code, as the master notebook holds it, runs in a namespace of the grader's own
(:class:`VerdictNamespace`) built from the master's ``checking_helpers`` and
``grader_reference_code`` cells, so the reference code and the expected values never enter the
kernel. Where the code names something of the notebook, the namespace asks the kernel through
the probe (``assignment.probes``):

* a function of the notebook (``compute_sq_dists``) becomes a :class:`KernelFunction`; calling it
  through ``run_quietly`` runs the student's code in the kernel on the inputs sent, and brings back
  what it returned, what it did to its inputs, its warnings, or the error it raised;
* a variable (``losst``, ``assoc``) is read as data; the figures shown (``shown_figures``) come
  back as plain data and are rebuilt by ``assignment.figures``;
* ``_grader.reference_helpers(...)`` swaps an instructor's helper in for the student's for the
  calls inside the block: the kernel gets forwarders that ask the grader, which answers here;
* ``_grader.seed(n)`` seeds NumPy's generator in the kernel; a stand-in answered here draws
  from the kernel's generator (its state travels with the call), as the helper it replaces would;
* each judged cell is entered in the notebook's figure record by its first line (its public
  docstring), as running it in the kernel would have, so the plot checks find their cells;
* the vectorisation checks count the student's lines in the kernel and time its calls from
  here, on a clock the kernel cannot touch.

The verdict is the cell's output: nothing (or what the check printed) when it passes, a
``CheckFailed: ... expected ..., got ...`` error when it fails, which nbgrader scores as ever.
"""
import builtins
import contextlib
import functools
import hashlib
import inspect
import io
import os
import secrets
import time
import traceback
import warnings

import nbformat
import numpy as np
from nbclient.exceptions import DeadKernelError

from . import boundary, hints, probe_runtime
from .figures import Unreadable, figure_log
from .probes import KernelStuck, ProbeFailed, TimeUp, helper_definitions

HELPERS_CELL = "checking_helpers"
REFERENCE_CELL = "grader_reference_code"


def judged_cells(master):
    """grade_id -> source of every test cell of ``master`` that carries points."""
    judged = {}
    for cell in master.cells:
        meta = cell.metadata.get("nbgrader", {})
        if (cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")
                and (meta.get("points") or 0) > 0):
            judged[meta["grade_id"]] = cell.source
    return judged


def cell_source(master, grade_id):
    return next(c.source for c in master.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


class CellTimedOut(Exception):
    """The judged cell ran out of its time (the kernel was interrupted and answered)."""


class KernelFunction:
    """A function of the student's notebook, called in the kernel through the probe."""

    def __init__(self, judge, name):
        self.judge, self.__name__ = judge, name

    def __repr__(self):
        return f"<function {self.__name__}>"

    def __call__(self, *args, **kwargs):
        return self.judge.call(self, args, kwargs, copy_inputs=True)


class KernelFigures:
    """``shown_figures`` of the notebook: read from the kernel when the check iterates over it."""

    def __init__(self, judge):
        self.judge, self.log = judge, None

    def __iter__(self):
        if self.log is None:  # read once until the notebook runs another cell
            answer = self.judge.request("figures", what="the figures the notebook showed")
            self.judge.raise_failure(answer)
            try:
                self.log = figure_log(boundary.decode(answer.get("cells")))
            except (boundary.BoundaryError, Unreadable) as error:
                raise self.judge.failure(f"the figures the notebook showed: expected a readable record, got {error}")
        return iter(self.log)


class VerdictNamespace(dict):
    """The globals of the judged cells: the grader's names first, then the notebook's, read
    from the kernel on first use (builtins stay Python's own)."""

    def __init__(self, judge):
        super().__init__()
        self.judge, self.fetched, self.functions = judge, {}, {}  # values; functions and missing names

    def __missing__(self, name):
        if hasattr(builtins, name) or name.startswith("__"):
            raise KeyError(name)
        if name not in self.fetched and name not in self.functions:
            value = self.judge.fetch(name)
            (self.functions if isinstance(value, KernelFunction) or value is _MISSING else self.fetched)[name] = value
        value = self.functions[name] if name in self.functions else self.fetched[name]
        if value is _MISSING:
            raise KeyError(name)
        return value

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default


_MISSING = object()


#: The vectorised references' best CPU seconds measured in this worker, by what was timed (see
#: :meth:`Judge._steady_reference_time`).
_REFERENCE_SECONDS = {}


def _fingerprint_tolerances(expected, parts, seed):
    """For each part of ``expected``, how far the fingerprint of values ``np.allclose`` to it
    (rtol 1e-6, atol 1e-9, as the notebook's ``_same_values``) can be from its own."""
    vectors = probe_runtime.numbers(expected, parts)
    return [float(np.abs(w) @ (1e-9 + 1e-6 * np.abs(v))) * 1.01 + 1e-12
            for w, v in zip(probe_runtime.part_weights(vectors, seed), vectors)]


def _write_back(target, value):
    """Make the grader's argument ``target`` what the call left in the kernel (``value``)."""
    try:
        if hasattr(target, "shape") and hasattr(value, "shape"):
            if target.shape != value.shape:
                target.resize(value.shape, refcheck=False)
            target[...] = value
        elif isinstance(target, list) and isinstance(value, list):
            target[:] = value
        elif isinstance(target, dict) and isinstance(value, dict):
            target.clear()
            target.update(value)
    except (TypeError, ValueError):
        if hasattr(target, "fill"):
            target.fill(0)  # changed beyond what the grader can mirror: it is certainly not unchanged


class Judge:
    """Judges the test cells of one notebook, outside its kernel.

    Parameters
    ----------
    master : nbformat.NotebookNode
        The master notebook (source of every test, helper and reference).
    link : assignment.probes.KernelLink
        The running kernel.
    data_dir : str
        The folder of the assignment's data files (the tests load them by name).

    ``unanswered`` holds the grade_ids of the answer cells the notebook left as released (they
    raised ``NotImplementedError``): a check of one of them gets no likely mistake, since what it
    found came from the notebook's own examples, not from the student.
    """

    def __init__(self, master, link, data_dir):
        self.link, self.data_dir = link, data_dir
        self.unanswered = set()
        self.seed = self.mark = None
        self.calls, self._calling = [], None  # the student-function calls of the cell judged (for hints)
        self._read_seed = None
        self.sources = judged_cells(master)
        self.ns = VerdictNamespace(self)
        helpers, references = cell_source(master, HELPERS_CELL), cell_source(master, REFERENCE_CELL)
        self._code = hashlib.sha256(f"{helpers}\0{references}".encode()).hexdigest()
        self._timed_here = set()  # the references timed for this notebook (a second time is a retry)
        with self._in_data_dir():
            exec(compile(helper_definitions(helpers), f"<{HELPERS_CELL}>", "exec"), self.ns)
            exec(compile(references, f"<{REFERENCE_CELL}>", "exec"), self.ns)
        self._install_overrides()

    # -- the grader's versions of the helpers that reach into the notebook ------------------
    def _install_overrides(self):
        ns = self.ns
        local_run, local_lines, local_timed = ns["run_quietly"], ns["_notebook_lines_run"], ns["_timed_right_call"]
        local_best = ns["_best_time"]

        def run_quietly(func, *args, copy_inputs=True, **kwargs):
            if isinstance(func, KernelFunction):
                return self.call(func, args, kwargs, copy_inputs=copy_inputs)
            return local_run(func, *args, copy_inputs=copy_inputs, **kwargs)  # NumPy's own, on notebook data

        @contextlib.contextmanager
        def time_limit(seconds):
            owner = object()
            key = self.link.limit(seconds, owner)
            try:
                yield
            except TimeUp as up:
                if up.limit is not owner:
                    raise
                raise ns["CallTimedOut"]() from None
            finally:
                self.link.unlimit(key)

        @contextlib.contextmanager
        def reference_helpers(**replacements):
            saved = dict(self.link.standins)
            self.link.standins.update({name: self._recorded(name, func) for name, func in replacements.items()})
            try:
                yield
            finally:
                self.link.standins.clear()
                self.link.standins.update(saved)

        def notebook_lines_run(func, *args):
            if not isinstance(func, KernelFunction):
                return local_lines(func, *args)
            answer = self.request("count_lines", what=f"{func.__name__}: the lines it runs", name=func.__name__,
                                  args=boundary.encode(list(args)), standins=sorted(self.link.standins))
            self.raise_failure(answer)
            lines = answer.get("lines")
            if type(lines) is not int or lines < 0:
                raise self.failure(f"{func.__name__}: expected a count of the lines it runs, got {lines!r:.80}")
            return lines

        def timed_right_call(name, func, reference, args):
            if not isinstance(func, KernelFunction):
                return local_timed(name, func, reference, args)
            return self.timed_right_call(name, func, reference, args)

        def best_time(func, *args, repeat=5):
            return self._steady_reference_time(local_best, func, args, repeat)

        def seed(value):  # the kernel's generator, just before the next request (stand-ins draw from it too)
            self.seed = int(value)

        self.figures = KernelFigures(self)
        ns.update(run_quietly=run_quietly, time_limit=time_limit, _reference_helpers=reference_helpers,
                  _notebook_lines_run=notebook_lines_run, _timed_right_call=timed_right_call, _best_time=best_time,
                  shown_figures=self.figures)
        ns["run_quietly"].warnings = []
        ns["_grader"].reference_helpers = reference_helpers
        ns["_grader"].seed = seed

    # -- requests -------------------------------------------------------------------------
    def failure(self, message):
        return self.ns["CheckFailed"](message)

    def notebook_ran(self):
        """The notebook ran a cell of its own: what was read from it may have changed."""
        self.ns.fetched.clear()
        self.ns.functions.clear()
        self.figures.log = None

    def hand_back(self):
        """Free the kernel for a cell of the notebook's own: end the probe's serving loop, which
        stays open across consecutive judged cells, and forget what was read from the kernel.
        Raises ``KernelStuck`` when the probe does not stop (the caller restarts the kernel)."""
        self.notebook_ran()
        self.link.finish()

    def request(self, op, what, **fields):
        """The probe's answer to ``op``; a check failure naming ``what`` when there is none.
        Any request but a read may run student code, which may change what was read."""
        if op not in ("get", "figures"):
            self.ns.fetched.clear()
        seed, self.seed = self.seed, None
        mark, self.mark = self.mark, None  # the cell's entry in the figure record goes first
        if op not in ("get", "figures"):
            self._read_seed = None
        elif seed is not None:
            self._read_seed = seed  # seeded by a read, which draws nothing: still the state of the next call
        try:
            return self.link.request(op, seed=seed, mark=mark, **fields)
        except ProbeFailed as problem:
            raise self.failure(f"{what}: expected an answer from the notebook's kernel, got none ({problem})") from None

    def timed_right_call(self, name, func, reference, args):
        """Seconds of one call of ``func`` in the kernel on new arguments like ``args``, on the
        grader's clock; a check failure unless it returned what ``reference`` returns for them.

        The kernel makes the arguments from a seed sent with the timed request, and answers with
        a fingerprint of the result (:func:`probe_runtime.fingerprint`, its weights drawn from a
        second seed): so it cannot answer before the work is done, nor reuse a result worked out
        before the request. The seconds leave out what the grader measures itself doing alike,
        and the kernel cannot skip: making the arguments and the fingerprint. These are the
        grader's CPU seconds, not its wall clock: a kernel that crowds the machine with busy
        processes, or stops the grader, cannot make them grow. Taking the pads off the stand-ins'
        answers sent ahead (:meth:`_send_ahead`) counts as the function's time: a kernel could skip it.
        """
        seed, weights = secrets.randbits(64), secrets.randbits(64)
        spec = probe_runtime.fresh_spec(args)
        start = time.thread_time()
        fresh = probe_runtime.fresh_args(spec, seed)
        making = time.thread_time() - start
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = reference(*fresh)
        parts = len(expected) if isinstance(expected, tuple) else 1
        start = time.thread_time()
        sizes, dots = probe_runtime.fingerprint(expected, parts, weights)
        printing = time.thread_time() - start
        tolerances = _fingerprint_tolerances(expected, parts, weights)
        pad_keys = self._send_ahead(fresh)
        start = time.perf_counter()
        answer = self.request("timed_call", what=f"{func.__name__}: a timed call", name=func.__name__, spec=spec,
                              arguments_seed=seed, weights_seed=weights, pad_keys=pad_keys, parts=parts,
                              standins=sorted(self.link.standins))
        seconds = time.perf_counter() - start
        self.raise_failure(answer)
        got = answer.get("dots")
        if not (answer.get("sizes") == sizes and isinstance(got, list) and len(got) == len(dots)
                and all(type(g) is float and abs(g - d) <= t for g, d, t in zip(got, dots, tolerances))):
            raise self.failure(self.ns["_wrong_timed_result"](name, len(fresh[0]), str(answer.get("got"))[:300]))
        return max(seconds - making - printing, 0.0)

    def _steady_reference_time(self, best_time, func, args, repeat):
        """``best_time(func, *args, repeat=repeat)``: the vectorised reference's CPU seconds,
        which the vectorisation checks scale into the student's time limit.

        The first time a notebook asks for ``func`` on arguments of these shapes, the answer is
        the least this worker has measured for it (with these checks' code): the reference's
        steady time, which a busy machine only makes look longer. Only the first measurement in
        a worker is made then. A second request in the same notebook is a retry (the student was
        too slow against that limit), and is measured afresh, as every request was before; what it
        measures is kept when it is less.
        """
        key = (self._code, getattr(func, "__qualname__", repr(func)), repeat,
               tuple((a.shape, a.dtype.str) if isinstance(a, np.ndarray) else repr(a) for a in args))
        retry = key in self._timed_here
        self._timed_here.add(key)
        if key in _REFERENCE_SECONDS and not retry:
            return _REFERENCE_SECONDS[key]
        seconds = best_time(func, *args, repeat=repeat)
        _REFERENCE_SECONDS[key] = min(seconds, _REFERENCE_SECONDS.get(key, seconds))
        return seconds

    def _send_ahead(self, fresh):
        """Send the kernel, before a timed call on ``fresh``, each stand-in's answer on those
        arguments that is a float array, XOR a pad (:func:`probe_runtime.pad`) with the
        stand-in's parameter names: moving it is then not timed, and it tells nothing until the
        timed request brings the pads' keys, which this returns.

        The padded words go in a file for the kernel (:meth:`KernelLink.file_for_kernel`), which
        the kernel removes once read."""
        keys, padded = {}, {}
        try:
            for name, standin in sorted(self.link.standins.items()):
                state = np.random.get_state()
                try:
                    value = standin(*fresh)
                except Exception:  # not a call the stand-in answers: the kernel asks as usual, if it calls it so
                    continue
                finally:
                    drew = not probe_runtime.same_generator_state(state, np.random.get_state())
                    np.random.set_state(state)
                if drew or not isinstance(value, np.ndarray) or value.dtype != np.float64:
                    continue
                keys[name] = secrets.randbits(128)
                words = np.ascontiguousarray(value).view(np.uint64) ^ probe_runtime.pad(
                    keys[name], value.size).reshape(value.shape)
                try:
                    path = self.link.file_for_kernel(words)
                except OSError as error:  # something the kernel put there: never written through
                    raise self.failure(f"{name}'s answers, sent ahead: expected a new file for the kernel, got "
                                       f"{type(error).__name__}: {error.strerror}") from None
                also = getattr(inspect.unwrap(standin), "sent_ahead_also_for", ())
                also = [also] if isinstance(also, str) else [str(a) for a in also]
                padded[name] = [{"file": path, "shape": list(value.shape)}, list(inspect.signature(standin).parameters),
                                also]
            if padded:
                self.raise_failure(self.request("prepare", what="the stand-ins' answers, sent ahead", answers=padded))
        finally:
            for sent, *_ in padded.values():  # the kernel removed it, unless it failed before that
                with contextlib.suppress(OSError):
                    os.remove(sent["file"])
        return keys

    def raise_failure(self, answer):
        """Raise the error a request's answer reports (as the kernel named it), if any."""
        if answer.get("ok"):
            return
        name, message = str(answer.get("error", "Error"))[:80], str(answer.get("message", "(no message)"))
        if name == "CheckFailed":
            raise self.failure(message)
        error = getattr(builtins, name, None)
        if not (isinstance(error, type) and issubclass(error, Exception)):
            error = type(name if name.isidentifier() else "Error", (Exception,), {})
        raise error(message)

    def fetch(self, name):
        """The notebook's ``name``: a :class:`KernelFunction`, its value, or ``_MISSING``."""
        answer = self.request("get", what=f"the notebook's {name}", name=name)
        kind = answer.get("kind")
        if kind == "missing":
            return _MISSING
        if kind == "callable":
            return KernelFunction(self, name)
        try:
            return boundary.decode(answer.get("value"))
        except boundary.BoundaryError as error:
            raise self.failure(f"the notebook's {name}: expected readable data, got {error}") from None

    def call(self, func, args, kwargs, copy_inputs):
        """``run_quietly(func, *args, **kwargs)`` in the kernel: its value, or its failure raised here."""
        record = hints.Call(func.__name__, hints.snapshot(list(args)), hints.snapshot(dict(kwargs)),
                            seed=self.seed if self.seed is not None else self._read_seed,
                            standins=sorted(self.link.standins))
        self.calls.append(record)
        self._calling = record
        try:
            answer = self.request("call", what=f"{func.__name__}(...)", name=func.__name__,
                                  args=boundary.encode(list(args)), kwargs=boundary.encode(dict(kwargs)),
                                  copy_inputs=copy_inputs, standins=sorted(self.link.standins))
        finally:
            self._calling = None
        if not answer.get("ok"):
            record.error, record.message = str(answer.get("error", "Error"))[:80], str(answer.get("message", ""))[:300]
        caught = answer.get("warnings", [])
        self.ns["run_quietly"].warnings = ([str(w)[:500] for w in caught[:100]]
                                           if isinstance(caught, list) else ["(unreadable warnings)"])
        self.raise_failure(answer)
        try:
            value = boundary.decode(answer.get("value"))
            after = boundary.decode(answer["args"]) if not copy_inputs else None
        except (boundary.BoundaryError, KeyError) as error:
            raise self.failure(f"{func.__name__}(...): expected a readable result, got {error}") from None
        if after is not None:
            for target, changed in zip(args, after if isinstance(after, list) else []):
                if isinstance(target, np.ndarray) and not isinstance(changed, np.ndarray):  # never mirrored as unchanged
                    raise self.failure(f"{func.__name__}(...): expected its array arguments left as arrays it could "
                                       f"send back, got {changed!r:.200}")
                _write_back(target, changed)
        record.value, record.after = value, (hints.snapshot(after) if isinstance(after, list) else None)
        return value

    def _recorded(self, name, func):
        """The stand-in ``func``, recording each answer it gives for the student call being made."""
        def standin(*args, **kwargs):
            value = func(*args, **kwargs)
            if self._calling is not None and not boundary.too_big(value):  # one too big is refused, never copied
                self._calling.helpers.append((name, hints.snapshot(args), hints.snapshot(value)))
            return value
        standin.__wrapped__ = func  # its signature is func's
        return standin

    def _references(self):
        """The instructor's reference functions, by the name of the student function they answer for."""
        grader = dict.get(self.ns, "_grader")
        return {name: getattr(grader, name, None) for name in hints.FUNCTIONS}

    def _values(self):
        """The judged cell's values, for hints: the grader's, the notebook's it read, its figures."""
        return {**dict(self.ns), **self.ns.fetched, "_figures": self.figures.log}

    # -- judging one cell -----------------------------------------------------------------
    @contextlib.contextmanager
    def _in_data_dir(self):
        here = os.getcwd()
        os.chdir(self.data_dir)
        try:
            yield
        finally:
            os.chdir(here)

    def _run_check(self, grade_id):
        exec(compile(self.sources[grade_id], f"<test cell {grade_id}>", "exec"), self.ns)

    def _mark_unasked(self, grade_id):
        """Enter a check that asked the kernel nothing in the figure record all the same (the
        others' entry went with their first request)."""
        if self.mark is not None:
            self.raise_failure(self.request("mark", what="the notebook's figure record"))

    def judge(self, grade_id, seconds):
        """Run the test cell ``grade_id`` here; return its outputs (nbformat output nodes).

        Raises :class:`CellTimedOut` when the cell's ``seconds`` ran out, and lets the link's
        ``KernelStuck`` and nbclient's ``DeadKernelError`` through (the caller handles them).
        """
        self.link.standins.clear()
        self.link.answered = 0
        self.figures.log = None
        self.calls = []
        self.mark = self.sources[grade_id].lstrip().split("\n", 1)[0]  # its docstring: public
        self.link.deadlines.clear()
        self.link.limit(seconds, "cell")
        printed = io.StringIO()
        self.ns["print"] = functools.partial(print, file=printed)  # the check's own, not the process's stdout
        outputs = []
        try:
            with self._in_data_dir(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for step in (self._run_check, self._mark_unasked):
                    try:
                        step(grade_id)
                    except TimeUp as up:
                        if up.limit == "cell":
                            raise CellTimedOut() from None
                        raise
                    except (KernelStuck, DeadKernelError):  # not a verdict: the caller restarts or gives up
                        raise
                    except Exception as error:  # the check failed: that is its verdict (the first error)
                        if not outputs:
                            outputs.append(_error_output(error))
                            if not any(grade_id.startswith(answer + "_") for answer in self.unanswered):
                                outputs.extend(hints.hint_outputs(grade_id, self.calls, self._references(),
                                                                  self._values()))
        finally:
            self.mark = None
            self.link.deadlines.clear()
            self.link.standins.clear()
        if printed.getvalue():
            outputs.insert(0, nbformat.v4.new_output("stream", name="stdout", text=printed.getvalue()))
        return outputs


def _error_output(error):
    """An nbformat error output for ``error``, its traceback cut to the check's own frames."""
    name, message = type(error).__name__, str(error)
    frames = [line for line in traceback.format_exception(error) if "<test cell" in line or "<grader_reference" in line]
    return nbformat.v4.new_output("error", ename=name, evalue=message,
                                  traceback=frames[-20:] + [f"{name}: {message}"])
