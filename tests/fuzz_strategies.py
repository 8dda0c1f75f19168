"""Hypothesis settings and strategies shared by the fuzz suites
(tests/test_fuzz_ops.py: every public op in ``striate.ops``;
tests/test_fuzz_nn.py: every layer in ``striate.nn.layers.LAYERS``).

Running
-------
* ``pytest`` runs a bounded, reproducible campaign: the ``striate-fuzz``
  profile registered here has ``derandomize=True`` (a fixed seed per test, so
  a failure is the same failure on every machine), ``max_examples`` =
  ``DEFAULT_EXAMPLES`` scaled per test (the whole fuzz suite adds well under a
  minute), ``deadline=None`` (timings on a shared machine are noise), no
  example database (nothing is written to the tree) and ``print_blob=True``
  (a failure prints the ``@reproduce_failure`` decorator that replays it).
* ``STRIATE_FUZZ_EXAMPLES=N pytest tests/test_fuzz_ops.py tests/test_fuzz_nn.py``
  runs a long campaign: N examples for *every* fuzz test, randomized
  (``derandomize=False``; pass ``--hypothesis-seed=S`` to repeat one).
  ``STRIATE_FUZZ_EXAMPLES`` also works with ``-k`` to aim at one op.

What is generated
-----------------
Valid calls: small shapes (batch 0-3, channels 1-8, spatial 1-12), every
parameter of the op within its documented domain (int / pair / list / NumPy
int spellings), every conv2d algorithm that applies, each ISA level the
machine runs (``helpers.ISA_LEVELS``) and 1-3 threads, inputs presented in
several layouts (float32 C-contiguous; a view into a NaN-filled guard buffer,
so an out-of-bounds read shows up as NaN in the result and a stray write as
a changed guard; float64; strided; Fortran order; negative strides; nested
lists), data that is Gaussian or small integers (ties for max pooling).
Results are compared with ``striate.reference`` (float64) with the
tolerances of the op's own test module.

Invalid calls: one argument of a valid call replaced by a bad value (wrong
type, bool, None, string, NaN, huge int, out-of-range value, wrong rank,
mismatched shape); the call must raise ValueError / TypeError / IndexError
(MemoryError only for absurd sizes) whose message names that argument.
"""

import contextlib
import os
import re

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import striate
from helpers import ISA_LEVELS
from striate import _C

# Examples per fuzz test in the bounded run (times the per-test weight).
DEFAULT_EXAMPLES = 30
_ENV = "STRIATE_FUZZ_EXAMPLES"
CAMPAIGN = int(os.environ[_ENV]) if os.environ.get(_ENV) else None

settings.register_profile(
    "striate-fuzz",
    max_examples=CAMPAIGN or DEFAULT_EXAMPLES,
    derandomize=CAMPAIGN is None,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
_PROFILE = settings.get_profile("striate-fuzz")


def fuzz_settings(weight=1.0):
    """The ``striate-fuzz`` profile as a test decorator; ``weight`` scales the
    bounded run's example count (cheap tests get more), a campaign ignores it."""
    n = CAMPAIGN or max(1, round(DEFAULT_EXAMPLES * weight))
    return settings(_PROFILE, max_examples=n)


# -- runtime: ISA level and thread count ---------------------------------------

ISAS = st.sampled_from(ISA_LEVELS)
THREADS = st.sampled_from([1, 2, 3])
SEEDS = st.integers(0, 2**32 - 1)


@contextlib.contextmanager
def runtime(isa, threads):
    """Run with this ISA level and thread count, restoring both afterwards."""
    before_isa, before_threads = _C.isa_selected(), striate.get_num_threads()
    _C.set_isa(isa)
    striate.set_num_threads(threads)
    try:
        yield
    finally:
        _C.set_isa(before_isa)
        striate.set_num_threads(before_threads)


# -- data ----------------------------------------------------------------------

KINDS = st.sampled_from(["normal", "normal", "ints"])


def make_data(rng, shape, kind="normal"):
    """float32 test data: Gaussian, or small integers (exact sums, many ties)."""
    if kind == "ints":
        return rng.integers(-3, 4, size=shape).astype(np.float32)
    if kind == "wide":  # magnitudes 1e-3 .. 1e3 (saturating activations, large logits)
        return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, size=shape)).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


# Every layout the ops accept; "guarded" and "c" are zero-copy, the others are converted.
LAYOUT_NAMES = ["c", "guarded", "guarded", "float64", "strided", "fortran", "negative", "list"]
LAYOUTS = st.lists(st.sampled_from(LAYOUT_NAMES), min_size=6, max_size=6)
_GUARD = 37  # guard elements each side: odd, so a kernel's vector over-read lands in it


class Presenter:
    """Presents float32 arrays to an op in the drawn layouts and checks afterwards
    that no input (or guard region around one) was modified."""

    def __init__(self, layouts):
        self.layouts = list(layouts) or ["c"]
        self.k = 0
        self.watch = []  # (buffer, snapshot)

    def _next(self):
        layout = self.layouts[self.k % len(self.layouts)]
        self.k += 1
        return layout

    def guarded(self, a):
        """A C-contiguous float32 view of ``a`` inside a NaN-filled buffer (the op
        uses it in place, no copy), watched for writes outside the view."""
        a = np.asarray(a, np.float32)
        buf = np.full(a.size + 2 * _GUARD, np.nan, np.float32)
        view = buf[_GUARD:_GUARD + a.size].reshape(a.shape)
        view[...] = a
        assert view.flags.c_contiguous and not view.flags.owndata
        return buf, view

    def inplace(self, a):
        """For arguments updated in place: the view is returned and only its guards watched."""
        buf, view = self.guarded(a)
        self.watch.append((buf, None))
        return view

    def __call__(self, a, layout=None):
        a = np.asarray(a, np.float32)
        layout = layout or self._next()
        if layout == "guarded":
            buf, out = self.guarded(a)
            self.watch.append((buf, buf.copy()))
            return out
        if layout == "float64":
            out = a.astype(np.float64)
        elif layout == "strided" and a.ndim:
            big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), np.float32)
            big[..., ::2] = a
            out = big[..., ::2]
        elif layout == "fortran" and a.ndim >= 2:  # asfortranarray makes 0-d arrays 1-d
            out = np.asfortranarray(a)
        elif layout == "negative" and a.ndim:
            out = np.flip(np.flip(a, -1).copy(), -1)
        elif layout == "list" and 0 < a.size <= 4096:  # an empty list loses the shape
            out = a.tolist()
        else:
            out = a.copy()
        if isinstance(out, np.ndarray):
            self.watch.append((out, out.copy()))
        return out

    def check(self):
        for buf, snap in self.watch:
            if snap is None:  # in-place argument: only the guards must be intact
                assert np.isnan(buf[:_GUARD]).all() and np.isnan(buf[-_GUARD:]).all(), \
                    "a write outside an in-place argument"
            else:
                assert np.array_equal(buf, snap, equal_nan=True), \
                    "an input (or the guard around it) was modified"


# -- argument spellings ----------------------------------------------------------

def spell_pair(draw, pair):
    """An (h, w) pair spelled as the API accepts it: an int when h == w, a
    tuple, a list, NumPy integers."""
    h, w = pair
    options = [(h, w), [h, w], (np.int64(h), np.int32(w))]
    if h == w:
        options += [h, np.int64(h)]
    return draw(st.sampled_from(options))


# -- invalid arguments -----------------------------------------------------------

BAD = ValueError, TypeError, IndexError


def names_argument(message, names):
    """True when the message names one of ``names`` as a word (so "x" is not
    found in "expected" or "3x3")."""
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message)
               for n in names)


def bad_ints(lo=1):
    """(value, exception) pairs an int argument with minimum ``lo`` must reject."""
    out = [(1.5, TypeError), (2.0, TypeError), (True, TypeError), ("2", TypeError),
           (float("nan"), TypeError), (np.float32(2), TypeError), (object(), TypeError),
           (lo - 1, ValueError), (-7, ValueError), (2**40 + 1, ValueError),
           (2**63, ValueError), (-(2**63) - 1, ValueError), (2**70, ValueError)]
    return out


def bad_pairs(lo=1):
    """Bad values for an int-or-pair argument (stride, padding, ...)."""
    out = bad_ints(lo) + [((lo, lo - 1), ValueError), ((lo, lo, lo), ValueError),
                          ([lo], ValueError), ((lo, 1.5), TypeError), ((lo, None), TypeError),
                          ((2**63, lo), ValueError), ((lo, "1"), TypeError)]
    return out


def bad_floats(finite=True):
    """Bad values for a real-number argument."""
    out = [(None, TypeError), ("0.1", TypeError), (True, TypeError), (1j, TypeError),
           ([0.1], TypeError)]
    if finite:
        out += [(float("nan"), ValueError), (float("inf"), ValueError)]
    return out


def bad_arrays(shape):
    """Bad values for a float array argument of this shape: wrong data types and
    wrong ranks (the rank errors only where the op fixes the rank)."""
    z = np.zeros(shape)
    return [(None, TypeError), ("abc", TypeError), (z.astype(np.complex64), TypeError),
            (z.astype(bool), TypeError), (z.astype(object), TypeError),
            ([[1.0, 2.0], [3.0]], TypeError), ({}, TypeError),
            (z.astype("datetime64[s]") if z.size else object(), TypeError)]


def assert_close_inf(actual, expected, what=""):
    """helpers.assert_close where infinities (max pooling's -inf for a window
    lying entirely in the padding) must match exactly and the finite entries
    are compared as usual."""
    from helpers import assert_close
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    inf = np.isinf(expected)
    np.testing.assert_array_equal(actual[inf], expected[inf], err_msg=what)
    assert_close(np.where(inf, 0, actual), np.where(inf, 0, expected), what=what)
