"""The probe: the grader's only code inside the student's kernel. It answers requests with data.

The grader (``assignment.probes``) installs this module in the kernel as ``_pa2_probe`` (again
after a restart, or when the notebook broke it), built from three sources run in one namespace:
the boundary's codec (``assignment/boundary.py``), the checking helpers of the master notebook's
``checking_helpers`` cell (``run_quietly``, ``CheckFailed``, ...; visible to every student), and
this file. None of them holds reference code, expected values or verdicts: the probe calls the
student's code on the inputs it is given, or reads the notebook's variables and the figures it
showed, and hands back plain data. A student can tamper with all of it; that only changes what
the kernel reports about the student's own work, which the grader then judges.

The grader starts ``serve_loop()`` for each run of consecutive judged cells: it asks for
requests (JSON) over the kernel's stdin channel and sends each answer as the prompt of its next
ask. While a student function runs, the names the check swaps for stand-ins (``standins``) are
bound to forwarders that ask the grader over the kernel's stdin channel (the same channel as
``input()``) and return its answer, so the instructor's helpers stay outside.
"""
import builtins
import contextlib
import io
import json
import os
import sys
import sysconfig
import warnings

import numpy as np

if "encode" not in globals():  # outside the kernel (tests, tools): the codec from the package
    from assignment.boundary import decode, encode

#: The prompts of the probe's stdin requests: a stand-in's call, the first ask for a request,
#: an answer (with the ask for the next request), and the reply that ends the loop.
STANDIN_PROMPT = "\x00pa2-standin\x00"
REQUEST_PROMPT = "\x00pa2-request\x00"
ANSWER_PROMPT = "\x00pa2-answer\x00"
DONE = ""
#: Code of the probe itself, never counted as the student's.
PROBE_FILE = "<pa2-probe>"
_LIBRARIES = tuple(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")) + ("<frozen", PROBE_FILE)
_synced_rng = [None]  # NumPy's generator state as the grader last saw it, after a stand-in's call
_timed_args = []  # the arguments of the timed call under way
_prepared = {}  # stand-in name -> (its answer on the next timed call's arguments, padded; its parameters; what else it holds for)
_answers = {}  # stand-in name -> (its answer on the timed call's arguments; its parameters; what else it holds for)


def _namespace():
    return get_ipython().user_ns  # noqa: F821 (the kernel's IPython shell)


def _failure(error):
    return {"ok": False, "error": type(error).__name__[:80], "message": str(error)[:20000]}


def same_generator_state(one, other):
    """Whether two states of NumPy's legacy generator (``np.random.get_state()``) are the same."""
    return (one is not None and other is not None and one[0] == other[0] and tuple(one[2:]) == tuple(other[2:])
            and np.array_equal(one[1], other[1]))


def _ask_grader(name, args, kwargs):
    """A stand-in's call: send it to the grader, return its answer or raise its error.

    The stand-in draws from this kernel's generator, as the helper it replaces would: its state
    goes with the call, unless it is the state the grader last saw (``_synced_rng``), and comes
    back when the call drew from it. A call on the arguments of the timed call under way (the
    same values, by position or by name, or changed in a way the grader says the answer does not
    depend on) takes the answer the grader sent ahead (:func:`_prepare`).
    """
    if name in _answers:
        sent = _sent_ahead(_answers[name], args, kwargs)
        if sent is not None:
            return sent
    request = json.dumps({"name": name, "args": encode(list(args)), "kwargs": encode(dict(kwargs))})
    state = np.random.get_state()
    rng = "null" if same_generator_state(state, _synced_rng[0]) else json.dumps(encode(state))
    reply = json.loads(get_ipython().kernel.raw_input(STANDIN_PROMPT + request[:-1] + ',"rng":' + rng + "}"))  # noqa: F821
    if "rng" in reply:
        np.random.set_state(decode(reply["rng"]))
    _synced_rng[0] = np.random.get_state() if reply.get("ok") else None
    if reply.get("ok"):
        return decode(reply["value"])
    error = getattr(builtins, str(reply.get("error")), None)
    if not (isinstance(error, type) and issubclass(error, Exception)):
        error = type(str(reply.get("error", "Error")), (Exception,), {})
    raise error(reply.get("message", ""))


def _sent_ahead(answer, args, kwargs):
    """The answer sent ahead, ``answer = (value, parameters, also)``, for a call with ``args`` and
    ``kwargs``, or None when it does not hold for them. It holds for the timed call's arguments
    (the same values, in order), and, as ``also`` says of the stand-in: ``"swapped"``, for its two
    arguments in the other order (the answer transposed: distances from W to X); ``"common_shift"``,
    for every argument moved by the same vector (distances between ``X - c`` and ``W - c``)."""
    value, parameters, also = answer
    try:
        bound = _bound(args, kwargs, parameters)
        if bound is None or len(bound) != len(_timed_args):
            return None
        orders = [(bound, value)]
        if "swapped" in also and len(bound) == 2:
            orders.append((bound[::-1], value.T))
        for order, result in orders:
            if all(got is want or (np.shape(got) == np.shape(want) and np.array_equal(got, want))
                   for got, want in zip(order, _timed_args)) or ("common_shift" in also and _shifted(order)):
                return result.copy()
    except (TypeError, ValueError):
        pass
    return None


def _bound(args, kwargs, parameters):
    """``args`` and ``kwargs`` bound to ``parameters``, in order; None when they do not fit."""
    if len(args) > len(parameters) or set(kwargs) - set(parameters[len(args):]):
        return None
    bound = list(args) + [kwargs[p] for p in parameters[len(args):] if p in kwargs]
    return bound if len(bound) == len(parameters) else None


def _shifted(values):
    """Whether ``values`` are the timed call's array arguments all moved by one finite row
    vector, at most 1000 times the arguments' own scale (a larger one would round their numbers
    away), each row to within 1e-9 of that scale."""
    shift = None
    for got, want in zip(values, _timed_args):
        want, got = np.asarray(want, dtype=float), np.asarray(got)
        if want.ndim != 2 or got.shape != want.shape or not len(want) or got.dtype.kind not in "biuf":
            return False
        scale = 1 + np.abs(want).max()
        moved = got - want
        shift = moved[0] if shift is None else shift
        if not (np.all(np.isfinite(shift)) and np.abs(shift).max() <= 1e3 * scale
                and np.abs(moved - shift).max() <= 1e-9 * scale):
            return False
    return shift is not None


def _forwarder(name):
    def standin(*args, **kwargs):
        return _ask_grader(name, args, kwargs)
    standin.__name__ = standin.__qualname__ = name
    return standin


@contextlib.contextmanager
def _standins(names):
    """Bind each of ``names`` in the notebook to a forwarder to the grader, for the block only."""
    namespace, missing = _namespace(), object()
    saved = {name: namespace.get(name, missing) for name in names}
    namespace.update({name: _forwarder(name) for name in names})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                namespace.pop(name, None)
            else:
                namespace[name] = value


def _function(name):
    value = _namespace().get(name)
    if not callable(value):
        raise NameError(f"name {name!r} is not defined")
    return value


def _get(request):
    namespace = _namespace()
    if request["name"] not in namespace:
        return {"ok": True, "kind": "missing"}
    value = namespace[request["name"]]
    if callable(value):
        return {"ok": True, "kind": "callable"}
    return {"ok": True, "kind": "value", "value": encode(value)}


def _call(request):
    """Call a student function through the notebook's ``run_quietly``, as the tests always did."""
    func, args, kwargs = _function(request["name"]), decode(request["args"]), decode(request["kwargs"])
    with _standins(request.get("standins", [])):
        try:
            value = run_quietly(func, *args, copy_inputs=request.get("copy_inputs", True), **kwargs)  # noqa: F821
        except CheckFailed as error:  # noqa: F821
            return {**_failure(error), "warnings": list(run_quietly.warnings)}  # noqa: F821
    answer = {"ok": True, "value": encode(value), "warnings": list(run_quietly.warnings)}  # noqa: F821
    if not request.get("copy_inputs", True):  # the check looks at what the call did to its inputs
        answer["args"] = encode(list(args))
    return answer


def _count_lines(request):
    """How many lines of notebook code (not library code, not the probe) the call executes."""
    func, args = _function(request["name"]), decode(request["args"])
    count = [0]

    def count_lines(frame, event, arg):
        if event == "line":
            count[0] += 1
        return count_lines

    def on_call(frame, event, arg):
        return None if frame.f_code.co_filename.startswith(_LIBRARIES) else count_lines

    previous = sys.gettrace()
    with _standins(request.get("standins", [])), warnings.catch_warnings(), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        sys.settrace(on_call)
        try:
            func(*args)
        finally:
            sys.settrace(previous)
    return {"ok": True, "lines": count[0]}


def fresh_spec(args):
    """What :func:`fresh_args` needs to make new arguments like ``args``: float arrays become
    normal draws of their shape, mean and spread, integer arrays uniform draws of their shape
    and range, and plain numbers stay as they are. Raises ``TypeError`` for anything else."""
    spec = []
    for arg in args:
        if isinstance(arg, np.ndarray) and arg.dtype.kind == "f" and arg.size:
            spec.append({"kind": "normal", "shape": list(arg.shape), "loc": float(arg.mean()),
                         "scale": float(arg.std()) or 1.0})
        elif isinstance(arg, np.ndarray) and arg.dtype.kind in "iu" and arg.size:
            spec.append({"kind": "integers", "shape": list(arg.shape), "low": int(arg.min()),
                         "high": int(arg.max()) + 1})
        elif type(arg) in (int, float, bool):
            spec.append({"kind": "value", "value": arg})
        else:
            raise TypeError(f"cannot make new arguments like {type(arg).__name__}")
    return spec


def fresh_args(spec, seed):
    """New arguments drawn from ``spec`` (see :func:`fresh_spec`) with the generator ``seed``:
    the grader and the kernel make the same ones from the same seed."""
    rng, args = np.random.Generator(np.random.PCG64(int(seed))), []
    for item in spec:
        if item["kind"] == "normal":
            args.append(rng.normal(float(item["loc"]), float(item["scale"]), size=tuple(map(int, item["shape"]))))
        elif item["kind"] == "integers":
            args.append(rng.integers(int(item["low"]), int(item["high"]), size=tuple(map(int, item["shape"]))))
        else:
            args.append(item["value"])
    return args


def numbers(value, parts):
    """The numbers of ``value`` as float vectors, one for each of its ``parts`` (a tuple or list
    of that length, else one array or number), or None when it does not hold them."""
    try:
        if parts == 1:
            return [np.ravel(np.asarray(np.ma.getdata(value), dtype=float))]
        if isinstance(value, (tuple, list)) and len(value) == parts:
            return [np.ravel(np.asarray(np.ma.getdata(part), dtype=float)) for part in value]
    except (TypeError, ValueError):
        pass
    return None


def fingerprint_weights(seed, size):
    """The weights of a fingerprint: ``size`` numbers in [-0.5, 0.5) drawn with ``seed``."""
    return np.random.Generator(np.random.PCG64(int(seed))).random(size) - 0.5


def part_weights(vectors, seed):
    """Each of ``vectors``' share of the weights drawn with ``seed``."""
    weights = fingerprint_weights(seed, sum(v.size for v in vectors))
    return np.split(weights, np.cumsum([v.size for v in vectors])[:-1])


def fingerprint(value, parts, seed):
    """``(sizes, dots)``: for each part of ``value`` (see :func:`numbers`), its size and
    ``w @ v``, for ``v`` its numbers and ``w`` its share of the weights drawn with ``seed``;
    ``([], [])`` when it holds no numbers in that form. Only the whole result gives the right dots."""
    vectors = numbers(value, parts)
    if vectors is None:
        return [], []
    return [int(v.size) for v in vectors], [float(w @ v) for w, v in zip(part_weights(vectors, seed), vectors)]


def pad(key, size):
    """``size`` 64-bit words of Philox-4x64-10 keyed with the 128-bit ``key``: a pad that tells
    nothing of the data it hides until the key is known."""
    return np.random.Philox(key=int(key)).random_raw(int(size))


def _prepare(request):
    """Keep stand-ins' answers on the next timed call's arguments, sent ahead so that moving
    them is not timed: float arrays as their bits XOR a pad (:func:`pad`), whose key comes only
    with the timed request. Until then they tell nothing about the arguments or the result.

    Each comes as a file of raw 64-bit words that the grader wrote in the folder of the kernel's
    sockets (``{"file": path, "shape": [...]}``): megabytes move as a copy of bytes, not as
    base64 inside JSON inside a JSON message. The file is read once and removed."""
    _prepared.clear()
    for name, (sent, parameters, also) in request["answers"].items():
        path, shape = str(sent["file"]), tuple(int(n) for n in sent["shape"])
        try:
            with open(path, "rb") as handle:
                padded = np.fromfile(handle, dtype=np.uint64)
        finally:
            os.remove(path)
        if padded.size == int(np.prod(shape)):
            _prepared[str(name)] = (padded.reshape(shape), [str(p) for p in parameters], [str(a) for a in also])
    return {"ok": True}


def _timed_call(request):
    """One call of a student function on new arguments made here from the request's seed, for
    the grader to time. The answer is the result's fingerprint, which the grader checks against
    the reference's: it cannot be sent before the work is done."""
    func, args = _function(request["name"]), fresh_args(request["spec"], request["arguments_seed"])
    # as made (only answers sent ahead use them): a function that changes its X in place has other X
    _timed_args[:] = [np.copy(arg) if _prepared and isinstance(arg, np.ndarray) else arg for arg in args]
    for name, (padded, parameters, also) in _prepared.items():
        key = request["pad_keys"][name]
        _answers[name] = ((padded ^ pad(key, padded.size).reshape(padded.shape)).view(np.float64), parameters, also)
    _prepared.clear()
    try:
        with _standins(request.get("standins", [])), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            value = func(*args)
            sizes, dots = fingerprint(value, int(request["parts"]), request["weights_seed"])
    finally:
        _timed_args.clear()
        _answers.clear()
    return {"ok": True, "sizes": sizes, "dots": [dot if np.isfinite(dot) else None for dot in dots],
            "got": _summary(value)[:300]}  # noqa: F821 (the checking helpers' _summary)


def _mark(request):
    """Record a judged test cell in the notebook's figure record, as running it here would have:
    the plot checks find the figures shown between two cells by their first lines."""
    record = _namespace().get("shown_figures")
    if hasattr(record, "append") and request.get("first_line") is not None:
        record.append((str(request["first_line"]), []))
    return {"ok": True}


def _floats_or_empty(values):
    try:
        return np.ravel(np.asarray(np.ma.getdata(values), dtype=float))
    except (TypeError, ValueError):
        return None


def _rgba(colour):
    from matplotlib.colors import to_rgba
    try:
        return np.array(to_rgba(colour), dtype=float)
    except (TypeError, ValueError):
        return np.zeros(4)


def _texts(legend):
    return None if legend is None else [str(t.get_text()) for t in legend.get_texts()]


def _describe_axes(ax):
    lines = []
    for line in ax.get_lines():
        x, y = _floats_or_empty(line.get_xdata()), _floats_or_empty(line.get_ydata())
        if x is None:
            x, y = (np.ravel(column) for column in np.asarray(line.get_xydata(), dtype=float).T)
        lines.append({"x": x, "y": y if y is not None else np.zeros(0), "label": str(line.get_label()),
                      "markerfacecolor": _rgba(line.get_markerfacecolor())})
    collections = []
    for artist in ax.collections:
        offsets = _floats_or_empty(artist.get_offsets())
        collections.append({
            "offsets": None if offsets is None else np.asarray(artist.get_offsets(), dtype=float),
            "facecolors": np.asarray(artist.get_facecolors(), dtype=float).reshape(-1, 4),
            "edgecolors": np.asarray(artist.get_edgecolors(), dtype=float).reshape(-1, 4),
            "label": str(artist.get_label())})
    images = []
    for image in ax.get_images():
        array = image.get_array()
        images.append(np.asarray(array, dtype=float) if array is not None and np.size(array) <= 4096 else None)
    return {"lines": lines, "collections": collections, "images": images,
            "xlabel": str(ax.get_xlabel()), "ylabel": str(ax.get_ylabel()),
            "titles": {loc: str(ax.get_title(loc)) for loc in ("center", "left", "right")},
            "legend": _texts(ax.get_legend())}


def _describe_figure(figure):
    return {"axes": [_describe_axes(ax) for ax in figure.axes], "suptitle": str(figure.get_suptitle()),
            "legends": [_texts(legend) for legend in figure.legends]}


def _figures(request):
    """Every cell the notebook recorded (the start of its source) with the figures it showed."""
    cells = []
    for source, figures in list(_namespace().get("shown_figures", [])):
        cells.append([str(source).lstrip()[:200], [_describe_figure(figure) for figure in figures]])
    return {"ok": True, "cells": encode(cells)}


OPERATIONS = {"get": _get, "call": _call, "count_lines": _count_lines, "prepare": _prepare,
              "timed_call": _timed_call, "figures": _figures, "mark": _mark}


def answer(text):
    """The answer (a dict) to the grader's request ``text`` (JSON). A request may carry
    ``seed`` (NumPy's generator is seeded first) and ``mark`` (the first line of the judged cell
    it starts, entered in the figure record first)."""
    try:
        request = json.loads(text)
        if request.get("seed") is not None:
            np.random.seed(int(request["seed"]))
        if request.get("mark") is not None:  # a judged cell's first request enters it in the figure record
            _mark({"first_line": request["mark"]})
        return OPERATIONS[request["op"]](request)
    except KeyboardInterrupt:  # the grader's interrupt: its time ran out
        raise
    except BaseException as error:  # a student function that raised, exited or was stopped
        return _failure(error)


class _Unread(io.TextIOBase):
    """Where the serving loop's own printing goes: nowhere, as nobody reads the output of the
    probe's executions. Without the kernel's streams, the two flushes of each ``raw_input`` (a
    round trip to the kernel's IO thread each) cost nothing."""

    def writable(self):
        return True

    def write(self, text):
        return len(text)


def serve_loop():
    """Answer the grader's requests until it sends DONE. Everything goes over the kernel's stdin
    channel: the loop asks for a request, and sends each answer as the prompt of its next ask.
    Student code printing inside a request is captured by ``run_quietly`` as always; what else is
    printed while the loop serves is dropped (see :class:`_Unread`)."""
    ask = get_ipython().kernel.raw_input  # noqa: F821
    streams, sys.stdout, sys.stderr = (sys.stdout, sys.stderr), _Unread(), _Unread()
    try:
        text = ask(REQUEST_PROMPT)
        while text != DONE:
            text = ask(ANSWER_PROMPT + json.dumps(answer(text), separators=(",", ":")))
    finally:
        sys.stdout, sys.stderr = streams
