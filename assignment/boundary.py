"""What crosses between the grader and the student's kernel, and how it is read.

Values travel as JSON text: plain Python values as tagged JSON, arrays and NumPy scalars in
NumPy's ``.npy`` format (base64), read with ``allow_pickle=False``. Nothing in this format can
run code when it is read. Whatever the kernel sends is untrusted: :func:`loads` checks the
schema and the limits below and raises :class:`BoundaryError` (never anything else) for data
that is malformed, too big or too deep.

``encode(value) -> JSON-able`` and ``decode(JSON-able) -> value`` round-trip ``None``, bools,
ints, floats (nan and inf included), complex numbers, strings, lists, tuples, dicts with string
keys, arrays of numbers, booleans or text (any shape), and NumPy scalars, keeping their types so
that failure messages describe them as before. Anything else becomes an :class:`Opaque` value
that keeps the type's name and a shortened ``repr``.

This module imports only the standard library and NumPy: the grader also runs its source inside
the student's kernel, to encode the kernel's answers.
"""
import base64
import io
import json
import math

import numpy as np

#: Limits on one message from the kernel: characters of JSON text, nesting depth, values in all.
MAX_TEXT = 64 * 2**20
MAX_DEPTH = 32
MAX_NODES = 200_000
#: Limits on one array (bytes of data) and one string (characters).
MAX_ARRAY_BYTES = 48 * 2**20
MAX_STRING = 2**20
#: Characters of ``repr`` kept for a value that is sent as an :class:`Opaque`.
REPR_CHARS = 300
#: Array kinds that may cross: booleans, integers, floats, complex numbers, text.
ARRAY_KINDS = frozenset("biufcUS")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


class BoundaryError(ValueError):
    """Data from the kernel that the grader will not read: malformed, too big or too deep."""


class Opaque:
    """A value that cannot cross as data (a generator, a custom object...): its type's name and
    its shortened ``repr``, for failure messages. Its class is named after the original type."""

    def __init__(self, text):
        self._text = text

    def __repr__(self):
        return self._text


_OPAQUE_TYPES = {}


def opaque(type_name, text):
    """An :class:`Opaque` whose ``type(...).__name__`` is ``type_name``."""
    if type_name not in _OPAQUE_TYPES:
        if len(_OPAQUE_TYPES) > 1000:
            _OPAQUE_TYPES.clear()
        _OPAQUE_TYPES[type_name] = type(type_name, (Opaque,), {})
    return _OPAQUE_TYPES[type_name](text)


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _opaque_of(value):
    try:
        text = repr(value)
    except Exception as error:  # a repr that raises is described, not propagated
        text = f"<{type(value).__name__} object (repr raised {type(error).__name__})>"
    name = "".join(ch for ch in type(value).__name__ if ch in _NAME_CHARS)[:80] or "object"
    return {"t": "opaque", "type": name, "repr": text[:REPR_CHARS]}


def too_big(value, _depth=0):
    """What is wrong with sending ``value`` when it is, or holds (in lists, tuples or dicts), an
    array over ``MAX_ARRAY_BYTES``; else None."""
    if isinstance(value, np.ndarray) and value.nbytes > MAX_ARRAY_BYTES:
        return (f"an array of shape {value.shape} and dtype {value.dtype}: {value.nbytes} bytes, "
                f"over the {MAX_ARRAY_BYTES} one message may carry")[:REPR_CHARS - 2]
    if _depth < MAX_DEPTH and type(value) in (list, tuple, dict):
        items = value.values() if type(value) is dict else value
        return next(filter(None, (too_big(item, _depth + 1) for item in items)), None)
    return None


def _oversized(array):
    """An array over ``MAX_ARRAY_BYTES`` as an :class:`Opaque` that says so, made without copying
    it: the other side would refuse it, and a grader asked for one (a stand-in's answer for a huge
    ``k``) would hold it several times over in memory while writing it."""
    return {"t": "opaque", "type": "ndarray", "repr": f"<{too_big(array)}>"}


def encode(value, _depth=0):
    """``value`` as JSON-able data (see the module's docstring for what keeps its type); never raises.
    An array over ``MAX_ARRAY_BYTES`` becomes an :class:`Opaque` naming its size."""
    if _depth > MAX_DEPTH:
        return _opaque_of(value)
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return {"t": kind.__name__, "v": value} if kind is not type(None) else {"t": "none"}
    if kind is int:
        return {"t": "int", "v": str(value)} if abs(value) < 10**300 else _opaque_of(value)
    if kind is float:
        return {"t": "float", "v": repr(value)}
    if kind is complex:
        return {"t": "complex", "v": [repr(value.real), repr(value.imag)]}
    if kind in (list, tuple):
        return {"t": kind.__name__, "v": [encode(item, _depth + 1) for item in value]}
    if kind is dict and all(type(key) is str for key in value):
        return {"t": "dict", "v": [[key, encode(item, _depth + 1)] for key, item in value.items()]}
    if isinstance(value, np.generic) and value.dtype.kind in ARRAY_KINDS:
        return {"t": "npscalar", "v": _npy(np.asarray(value))}
    if isinstance(value, np.ndarray) and value.dtype.kind in ARRAY_KINDS:
        return {"t": "ndarray", "v": _npy(np.asarray(np.ma.getdata(value)))} if not too_big(value) else _oversized(value)
    return _opaque_of(value)


def dumps(value):
    """``value`` as JSON text."""
    return json.dumps(encode(value), allow_nan=False, separators=(",", ":"))


def _string(data, what="a string"):
    if not isinstance(data, str) or len(data) > MAX_STRING:
        raise BoundaryError(f"expected {what} of at most {MAX_STRING} characters")
    return data


def _number(text):
    _string(text, "a number")
    if len(text) > 400:
        raise BoundaryError("a number too long to be real")
    try:
        return float(text)
    except ValueError:
        raise BoundaryError(f"not a number: {text[:40]!r}") from None


#: .npy (version 1.0) headers NumPy's reader has read, by their bytes: (dtype, shape, Fortran
#: order). The messages of one notebook repeat a few dozen headers, and parsing one is most of
#: the time ``np.load`` takes on a small array.
_HEADERS = {}
_NPY_MAGIC = b"\x93NUMPY\x01\x00"


def _header_end(raw):
    return 10 + int.from_bytes(raw[8:10], "little") if raw[:8] == _NPY_MAGIC and len(raw) >= 10 else None


def _remember_header(raw):
    """Keep NumPy's own reading of the version 1.0 header of ``raw``, which ``np.load`` just read."""
    end = _header_end(raw)
    if end is None or end > 4096:
        return
    stream = io.BytesIO(raw[:end])
    np.lib.format.read_magic(stream)
    shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    if len(_HEADERS) >= 1024:
        _HEADERS.clear()
    _HEADERS[raw[:end]] = (dtype, shape, fortran_order)


def _known_header_array(raw):
    """The array in ``raw`` if NumPy's reader read its header before and its data is exactly
    what the header says, as ``np.load`` would return it; else None (``np.load`` reads it)."""
    end = _header_end(raw)
    known = _HEADERS.get(raw[:end]) if end is not None else None
    if known is None:
        return None
    dtype, shape, fortran_order = known
    count = math.prod(shape)
    if dtype.itemsize == 0 or dtype.hasobject or len(raw) - end != count * dtype.itemsize:
        return None
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=end).copy()
    return array.reshape(shape[::-1]).transpose() if fortran_order else array.reshape(shape)


def _array(text, scalar):
    if not isinstance(text, str) or len(text) > (MAX_ARRAY_BYTES + 4096) * 4 // 3 + 4:
        raise BoundaryError("an array that is not text, or bigger than the limit")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise BoundaryError("an array that is not base64") from None
    if not raw:
        raise BoundaryError("an array that is empty or bigger than the limit")
    array = _known_header_array(raw)
    if array is None:
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as error:  # a malformed .npy: any error of the reader means "not readable"
            raise BoundaryError(f"an unreadable array ({type(error).__name__})") from None
        _remember_header(raw)
    if not isinstance(array, np.ndarray) or array.dtype.kind not in ARRAY_KINDS or array.dtype.hasobject:
        raise BoundaryError("an array of a kind that may not cross")
    if scalar:
        if array.ndim != 0:
            raise BoundaryError("a NumPy scalar that is not 0-dimensional")
        return array[()]
    return array


def decode(data, _depth=0, _count=None):
    """The value that :func:`encode` encoded as ``data``; :class:`BoundaryError` if malformed."""
    count = _count if _count is not None else [0]
    count[0] += 1
    if count[0] > MAX_NODES or _depth > MAX_DEPTH + 1:
        raise BoundaryError("too many values, or nested too deep")
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise BoundaryError("expected a tagged value")
    tag, value = data["t"], data.get("v")
    if tag == "none":
        return None
    if tag == "bool":
        if type(value) is not bool:
            raise BoundaryError("a bool that is not true or false")
        return value
    if tag == "int":
        if not isinstance(value, str) or not value.lstrip("-").isdigit() or len(value) > 301:
            raise BoundaryError("an int that is not digits")
        return int(value)
    if tag == "float":
        return _number(value)
    if tag == "complex":
        if not isinstance(value, list) or len(value) != 2:
            raise BoundaryError("a complex number that is not two numbers")
        return complex(_number(value[0]), _number(value[1]))
    if tag == "str":
        return _string(value)
    if tag in ("list", "tuple"):
        if not isinstance(value, list):
            raise BoundaryError(f"a {tag} that is not a list")
        items = [decode(item, _depth + 1, count) for item in value]
        return items if tag == "list" else tuple(items)
    if tag == "dict":
        if not isinstance(value, list) or not all(isinstance(p, list) and len(p) == 2 for p in value):
            raise BoundaryError("a dict that is not a list of pairs")
        return {_string(key, "a key"): decode(item, _depth + 1, count) for key, item in value}
    if tag in ("ndarray", "npscalar"):
        return _array(value, scalar=tag == "npscalar")
    if tag == "opaque":
        name = _string(data.get("type"), "a type name")
        if not name or len(name) > 80 or not set(name) <= _NAME_CHARS:
            raise BoundaryError("an opaque value with a malformed type name")
        return opaque(name, _string(data.get("repr"), "a repr")[:REPR_CHARS])
    raise BoundaryError(f"an unknown tag {tag[:40]!r}")


def _reject_constant(name):
    raise BoundaryError(f"JSON constant {name} is not allowed")


def loads_json(text):
    """Parse JSON ``text`` from the kernel within the size limit; :class:`BoundaryError` if not."""
    if not isinstance(text, (str, bytes)) or len(text) > MAX_TEXT:
        raise BoundaryError("a message that is not text, or bigger than the limit")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except BoundaryError:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError) as error:
        raise BoundaryError(f"not valid JSON ({type(error).__name__})") from None


def loads(text):
    """The value in JSON ``text`` from the kernel; :class:`BoundaryError` if it is not readable."""
    return decode(loads_json(text))
