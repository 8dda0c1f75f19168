"""Argument normalization shared by the ``striate.ops`` wrappers.

Only Python-level concerns live here (array conversion, int-or-pair
arguments, type errors). Value checks -- ranges, shapes, compatibility --
are done once, in the C++ op layer, for every caller.
"""

import numbers
import operator

import numpy as np

# Python ints beyond this cannot be passed to C++ int64 parameters; the op
# layer rejects anything above 2**40 with a message of its own.
_INT64_SAFE = 2**62


def as_float32(a, name):
    """Return ``a`` as a float32 C-contiguous ndarray (no copy if it already is).

    Real floating and integer arrays (and array-likes) are converted; bool,
    complex, object and string data raise TypeError rather than being
    reinterpreted.
    """
    if type(a) is np.ndarray and a.dtype == np.float32 and a.flags.c_contiguous:
        return a
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{name} must be an array of real numbers: {e}") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real floating or integer array, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=np.float32, order="C")


def as_optional_float32(a, name):
    return None if a is None else as_float32(a, name)


def as_int64(a, name):
    """Integer class indices as an int64 C-contiguous array."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as e:
        raise TypeError(f"{name} must be an array of integers: {e}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (class indices), got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= _INT64_SAFE:
        raise IndexError(f"{name} holds the value {int(arr.max())}, far outside any class range")
    return np.asarray(arr, dtype=np.int64, order="C")


def as_int(v, name):
    """A Python int from an int-like (int, NumPy integer); bool and float are TypeErrors."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {v!r}")
    try:
        v = operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}") from None
    if abs(v) > _INT64_SAFE:
        raise ValueError(f"{name} = {v} is absurdly large")
    return v


def as_pair(v, name):
    """An int or a sequence of two ints -> (int, int)."""
    if isinstance(v, (tuple, list, np.ndarray)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        return as_int(v[0], name), as_int(v[1], name)
    v = as_int(v, name)
    return v, v


def as_float(v, name):
    """A Python float from a real number (not bool)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(v).__name__} {v!r}")
    return float(v)


def as_bool(v, name):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(v).__name__} {v!r}")
    return bool(v)


def as_str(v, name):
    if not isinstance(v, str):
        raise TypeError(f"{name} must be a string, got {type(v).__name__} {v!r}")
    return v
