"""The boundary between the student's kernel and the grader: values round-trip with their types,
and anything hostile (huge, deep, wrong types, pickles, NaN, negative sizes) is refused with a
BoundaryError, never another exception and never code run."""
import base64
import io
import json
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from assignment import boundary
from assignment.boundary import BoundaryError, decode, dumps, encode, loads

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.complex_numbers(), st.text(max_size=50))
arrays = hnp.arrays(dtype=st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                                    hnp.complex_number_dtypes()),
                    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5))
values = st.recursive(st.one_of(scalars, arrays),
                      lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                                              st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                      max_leaves=12)


def same(a, b):
    """Equal values of equal types (NaN equal to NaN), recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (float, complex, np.floating, np.complexfloating)):
        return a == b or (a != a and b != b) or (np.isnan(a) and np.isnan(b))
    return a == b


@SETTINGS
@given(values)
def test_values_round_trip_with_their_types(value):
    assert same(loads(dumps(value)), value)


@given(arrays)
@SETTINGS
def test_numpy_scalars_keep_their_dtype(array):
    scalar = array.reshape(-1)[0] if array.size else array.dtype.type(0)
    back = loads(dumps(scalar))
    assert type(back) is type(scalar) and same(np.asarray(back), np.asarray(scalar))


def test_other_objects_cross_as_their_type_name_and_repr():
    class Centroids:
        def __repr__(self):
            return "Centroids(3)"
    back = loads(dumps([Centroids(), (x for x in ()), {1: 2}, np.array([object()], dtype=object)]))
    assert [type(v).__name__ for v in back] == ["Centroids", "generator", "dict", "ndarray"]
    assert repr(back[0]) == "Centroids(3)" and isinstance(back[0], boundary.Opaque)


def test_a_repr_that_raises_is_described_not_raised():
    class Hostile:
        def __repr__(self):
            raise RuntimeError("no")
    assert "repr raised RuntimeError" in repr(loads(dumps(Hostile())))


def npy(array, **kwargs):
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return base64.b64encode(buffer.getvalue()).decode()


HOSTILE = {
    "not json": "{'t': 'none'}",
    "a bare number": "1e999999",
    "NaN constant": '{"t": "float", "v": NaN}',
    "untagged": '{"v": 1}',
    "unknown tag": '{"t": "module", "v": "os"}',
    "int as a float": '{"t": "int", "v": "1.5"}',
    "huge int": json.dumps({"t": "int", "v": "9" * 5000}),
    "float that is not a number": '{"t": "float", "v": "__import__(\'os\')"}',
    "complex of three parts": '{"t": "complex", "v": ["1", "2", "3"]}',
    "string of a list": '{"t": "str", "v": [1, 2]}',
    "list that is a dict": '{"t": "list", "v": {"a": 1}}',
    "dict with a number key": '{"t": "dict", "v": [[1, {"t": "none"}]]}',
    "pickled object array": json.dumps({"t": "ndarray", "v": npy(np.array([{1: 2}], dtype=object), allow_pickle=True)}),
    "raw pickle": json.dumps({"t": "ndarray", "v": base64.b64encode(pickle.dumps(np.arange(3))).decode()}),
    "pickle bomb payload": json.dumps({"t": "ndarray", "v": base64.b64encode(b"cos\nsystem\n(S'true'\ntR.").decode()}),
    "npy with a negative shape": json.dumps({"t": "ndarray", "v": base64.b64encode(
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }" + b" " * 53 + b"\n").decode()}),
    "npy shorter than its shape": json.dumps({"t": "ndarray", "v": npy(np.arange(100.0))[:60]}),
    "not base64": '{"t": "ndarray", "v": "!!!!"}',
    "empty array text": '{"t": "ndarray", "v": ""}',
    "npscalar of an array": json.dumps({"t": "npscalar", "v": npy(np.arange(3))}),
    "opaque with a code name": '{"t": "opaque", "type": "os.system(1)", "repr": "x"}',
    "too deep": '{"t": "list", "v": [' * 200 + ']}' * 200,
    "deeper than json": "[" * 100000 + "]" * 100000,
    "a string bigger than the limit": json.dumps({"t": "str", "v": "x" * (boundary.MAX_STRING + 1)}),
}


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_hostile_payloads_are_refused_with_a_boundary_error(what):
    with pytest.raises(BoundaryError):
        loads(HOSTILE[what])


def test_too_many_values_are_refused():
    with pytest.raises(BoundaryError, match="too many"):
        loads(dumps([[0] * 1000] * (boundary.MAX_NODES // 1000 + 1)))


def test_a_message_bigger_than_the_limit_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(boundary, "MAX_TEXT", 1000)
    with pytest.raises(BoundaryError, match="bigger than the limit"):
        loads(dumps("x" * 2000))


def test_an_array_bigger_than_the_limit_is_refused(monkeypatch):
    text = dumps(np.zeros(1000))
    monkeypatch.setattr(boundary, "MAX_ARRAY_BYTES", 100)
    with pytest.raises(BoundaryError):
        loads(text)


@SETTINGS
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.sampled_from(["t", "v", "type", "repr", "x"]),
                                                            inner, max_size=4)),
                    max_leaves=15))
def test_random_json_never_raises_anything_but_a_boundary_error(data):
    try:
        decode(data)
    except BoundaryError:
        pass


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_as_an_array_never_raise_anything_but_a_boundary_error(raw):
    for tag in ("ndarray", "npscalar"):
        try:
            decode({"t": tag, "v": base64.b64encode(b"\x93NUMPY" + raw).decode()})
        except BoundaryError:
            pass


def test_encode_keeps_what_it_cannot_carry_opaque_and_never_raises():
    class Explodes:
        def __repr__(self):
            raise SystemError("boom")
    nested = []
    for _ in range(100):
        nested = [nested]
    for value in (Explodes(), nested, 10**400, np.ma.masked_array([1.0, 2.0], mask=[0, 1]), {1: "a"}):
        assert isinstance(encode(value), dict)


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


@SETTINGS
@given(hnp.arrays(dtype=st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                                  hnp.unicode_string_dtypes(max_len=4)),
                  shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
       st.booleans())
def test_an_array_whose_header_was_read_before_is_what_np_load_reads(array, fortran):
    """A header remembered from NumPy's reader gives the array np.load gives: values, dtype, shape, order, writable."""
    array = np.asfortranarray(array) if fortran else array
    raw = _npy_bytes(array)
    text = base64.b64encode(raw).decode()
    first, again = decode({"t": "ndarray", "v": text}), decode({"t": "ndarray", "v": text})
    expected = np.load(io.BytesIO(raw), allow_pickle=False)
    for got in (first, again):
        assert got.dtype == expected.dtype and got.shape == expected.shape, f"expected {expected.dtype} {expected.shape}, got {got.dtype} {got.shape}"
        assert np.array_equal(got, expected, equal_nan=expected.dtype.kind in "fc")
        assert got.flags.writeable and got.flags.f_contiguous == expected.flags.f_contiguous


@pytest.mark.parametrize("change", [b"", b"\x00" * 8, b"\x00" * 16])
def test_a_remembered_header_with_the_wrong_amount_of_data_is_read_by_numpy_or_refused(change):
    """Data shorter or longer than a remembered header says is left to NumPy's reader, which refuses what it cannot read."""
    raw = _npy_bytes(np.arange(6.0).reshape(3, 2))
    decode({"t": "ndarray", "v": base64.b64encode(raw).decode()})  # the header is now remembered
    for wrong in (raw[:-8] + change, raw + change):
        if wrong == raw:
            continue
        try:
            got = decode({"t": "ndarray", "v": base64.b64encode(wrong).decode()})
        except BoundaryError:
            continue
        assert np.array_equal(got, np.load(io.BytesIO(wrong), allow_pickle=False))


def test_an_array_too_big_to_send_crosses_as_its_size_without_being_copied():
    """expected an array over the limit to cross as an Opaque ndarray naming its size, with no
    copy of its data made (this one takes no memory: a broadcast zero), got it written out"""
    import tracemalloc
    huge = np.broadcast_to(np.float64(0), (boundary.MAX_ARRAY_BYTES // 8 + 1,))
    tracemalloc.start()
    try:
        sent = dumps(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"expected no copy of the array's {huge.nbytes} bytes, got a peak of {peak} bytes"
    got = loads(sent)
    assert type(got).__name__ == "ndarray" and not isinstance(got, np.ndarray), f"expected an Opaque, got {got!r}"
    assert f"{huge.nbytes} bytes, over the {boundary.MAX_ARRAY_BYTES}" in repr(got), repr(got)
    assert isinstance(loads(dumps(np.zeros(boundary.MAX_ARRAY_BYTES // 16))), np.ndarray), "half the limit still crosses"
    assert boundary.too_big((5.0, {"assoc": huge})) == boundary.too_big(huge), "one held in a pair is found too"
    assert boundary.too_big((5.0, np.zeros(3))) is None
