"""add, mul, cat, dropout, mse_loss and the optimizer updates give bitwise
identical results for 1, 2 and 3 threads (tests/test_determinism.py's method:
one process per OMP_NUM_THREADS). Sizes are above the kernels' thresholds for
going parallel, and the mse_loss input spans many reduction blocks."""

import textwrap

from helpers import digests_per_thread_count

SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    from striate import ops

    rng = np.random.default_rng(0)
    def r(*s):
        return rng.standard_normal(s).astype(np.float32)

    out = []
    a, b, s = r(4, 48, 23, 29), r(4, 48, 23, 29), r(4, 48, 1, 1)
    g = r(*a.shape)
    out += [ops.add(a, b), *ops.add_backward(g, a, b)]
    out += [ops.mul(a, s), *ops.mul_backward(g, a, s), ops.mul(a, b), *ops.mul_backward(g, a, b)]
    xs = [r(4, c, 23, 29) for c in (16, 48, 8, 24)]
    y = ops.cat(xs, dim=1)
    out += [y, *ops.cat_backward(r(*y.shape), xs, dim=1)]
    out += [ops.cat([r(1, 2, 300, 100), r(1, 2, 300, 100)], dim=0)]
    for p in (0.1, 0.5):
        out += [ops.dropout(a, p=p, seed=12345), *ops.dropout_backward(g, a, p=p, seed=12345)]
    x, t = r(1_000_003), r(1_000_003)
    for red in ("mean", "sum", "none"):
        loss = ops.mse_loss(x, t, reduction=red)
        gl = r(*x.shape) if red == "none" else np.float32(0.5)
        out += [loss, *ops.mse_loss_backward(gl, x, t, reduction=red)]
    p, buf, m, v = r(300_000), np.zeros(300_000, np.float32), np.zeros(300_000, np.float32), \\
        np.zeros(300_000, np.float32)
    p2 = p.copy()
    for k in range(3):
        gr = r(300_000)
        ops.sgd_update(p, gr, buf, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4,
                       first_step=k == 0)
        ops.adam_update(p2, gr, m, v, step=k + 1, lr=0.01, weight_decay=0.1)
    out += [p, buf, p2, m, v]
    h = hashlib.sha256()
    for arr in out:
        h.update(np.ascontiguousarray(arr).tobytes())
    sys.stdout.write(h.hexdigest())
""")


def test_tensor_ops_are_bitwise_identical_for_any_thread_count():
    digests = digests_per_thread_count(SCRIPT)
    assert digests[0] and digests[0] == digests[1] == digests[2]
