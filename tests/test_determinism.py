"""Every op gives bitwise identical results for any thread count.

The kernels split work over independent outputs only (never a reduction), so
OMP_NUM_THREADS must not change a single bit. Each thread count runs in its
own process because OpenMP reads the variable at start-up.
"""

import textwrap

from helpers import digests_per_thread_count

SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from striate import ops

    rng = np.random.default_rng(0)
    def r(*s):
        return rng.standard_normal(s).astype(np.float32)

    x, w, b = r(3, 8, 17, 19), r(12, 4, 3, 3), r(12)
    out = []
    for alg in ("direct", "im2col"):
        kw = dict(stride=(2, 1), padding=1, groups=2, algorithm=alg)
        y = ops.conv2d(x, w, b, **kw)
        out += [y, *ops.conv2d_backward(r(*y.shape), x, w, b, **kw)]
    for f, kw in [(ops.max_pool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
                  (ops.avg_pool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
                  (ops.adaptive_avg_pool2d, dict(output_size=(5, 7))),
                  (ops.local_response_norm, dict(size=5)),
                  (ops.relu, {}), (ops.sigmoid, {}), (ops.tanh, {}),
                  (ops.softmax, dict(dim=1)), (ops.log_softmax, dict(dim=3))]:
        y = f(x, **kw)
        out += [y, *getattr(ops, f.__name__ + "_backward")(r(*y.shape), x, **kw)]
    rm, rv, g = np.zeros(8, np.float32), np.ones(8, np.float32), r(8)
    out += [ops.batch_norm(x, rm, rv, g, g, training=True), rm, rv]
    out += ops.batch_norm_backward(r(*x.shape), x, rm, rv, g, g, training=True)[::3]
    lw, lb = r(10, 19), r(10)
    z = ops.linear(x, lw, lb)
    out += [z, *ops.linear_backward(r(*z.shape), x, lw, lb)]
    a, bm = r(77, 300), r(300, 45)
    out += [ops.matmul(a, bm), *ops.matmul_backward(r(77, 45), a, bm)]
    logits, t = r(300, 10), rng.integers(0, 10, 300)
    out += [ops.cross_entropy(logits, t), ops.cross_entropy_backward(1.0, logits, t)[0]]
    h = hashlib.sha256()
    for a in out:
        if a is not None:
            h.update(np.ascontiguousarray(a).tobytes())
    sys.stdout.write(h.hexdigest())
""")


def test_results_are_bitwise_identical_for_any_thread_count():
    digests = digests_per_thread_count(SCRIPT)
    assert digests[0] and digests[0] == digests[1] == digests[2]
