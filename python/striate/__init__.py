"""striate: a compiled-kernel CNN engine.

* ``striate.ops`` -- the low-level API: convolution, pooling, normalization,
  activations, linear and loss functions on NumPy arrays (NCHW activations,
  OIHW weights), with the names and semantics of ``torch.nn.functional`` and
  a ``*_backward`` for every op.
* ``striate.reference`` -- plain NumPy (float64) implementations of every op,
  the oracle the kernels are tested against.
* ``python -m striate.bench`` -- time and accuracy of every op against the
  reference (and PyTorch, when installed).
"""

from . import _C
from . import ops, reference

__version__ = _C.__version__

__all__ = ["ops", "reference", "__version__"]
