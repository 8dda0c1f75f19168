"""striate: a compiled-kernel CNN engine.

* ``striate.ops`` -- the low-level API: convolution, pooling, normalization,
  activations, linear and loss functions on NumPy arrays (NCHW activations,
  OIHW weights), with the names and semantics of ``torch.nn.functional`` and
  a ``*_backward`` for every op.
* ``striate.reference`` -- plain NumPy (float64) implementations of every op,
  the oracle the kernels are tested against.
* ``striate.nn`` / ``striate.optim`` / ``striate.data`` -- layers, Sequential
  and functional models (``striate.Input``, ``striate.Model``) with
  ``summary``/``fit``/``evaluate``/``predict``/``save``, optimizers and
  schedulers, batching and augmentation; ``striate.load`` reads a checkpoint.
* ``python -m striate.bench`` -- time and accuracy of every op against the
  reference (and PyTorch, when installed).
"""

from . import _C
from . import _autotune, ops, reference
from . import init, nn, optim, data, datasets, models
from .checkpoint import load
from .init import manual_seed
from .nn import Input, Model, Sequential

__version__ = _C.__version__


def build_info():
    """What this build of striate has and uses, as a dict:

    version, compiler, openmp, isa_compiled (levels built into the kernels),
    isa_best (the best this CPU supports), isa_selected (the level in use:
    the best, unless STRIATE_ISA forces a lower one), sgemm_kernel (the GEMM
    microkernel in use), threads, cuda (whether CUDA kernels were built),
    sanitize (the -fsanitize= list of a sanitizer build, docs/robustness.md;
    "" normally).
    """
    return {
        "version": __version__,
        "compiler": _C.compiler(),
        "openmp": _C.openmp(),
        "isa_compiled": list(_C.isa_compiled()),
        "isa_best": _C.isa_best_supported(),
        "isa_selected": _C.isa_selected(),
        "sgemm_kernel": _C.sgemm_kernel(),
        "threads": _C.get_num_threads(),
        "cuda": False,
        "sanitize": _C.sanitize(),
    }


def set_num_threads(n):
    """Use ``n`` threads in the CPU kernels (results are bitwise identical for any n)."""
    import operator
    if isinstance(n, bool):
        raise TypeError(f"n must be an int, got bool {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an int, got {type(n).__name__} {n!r}") from None
    if not 1 <= n <= 4096:
        raise ValueError(f"set_num_threads: n must be between 1 and 4096, got {n}")
    _C.set_num_threads(n)


def get_num_threads():
    """The number of threads the CPU kernels use."""
    return _C.get_num_threads()


def set_autotune(enabled=True):
    """Time the applicable conv2d algorithms and keep the fastest (cuDNN's benchmark mode).

    When on, ``conv2d(..., algorithm="auto")`` (and ``conv2d_backward``) time
    every algorithm in :func:`striate.ops.conv2d_algorithms` the first time
    they see a configuration -- shapes, bias, stride, padding, dilation,
    groups, thread count, ISA level -- and use the winner from then on. The
    winners are saved in ``autotune.json`` in the user's cache folder
    (``STRIATE_CACHE_DIR`` overrides; :func:`autotune_cache_path`), so later
    runs start tuned. Off by default: then ``"auto"`` is the documented
    shape heuristic (:func:`striate.ops.conv2d_algorithm`).
    """
    if not isinstance(enabled, bool):
        raise TypeError(f"set_autotune: enabled must be a bool, got {type(enabled).__name__} {enabled!r}")
    _autotune.set_enabled(enabled)


def get_autotune():
    """Whether conv2d autotuning is on (see :func:`set_autotune`)."""
    return _autotune.enabled()


def autotune_cache_path():
    """The JSON file where autotuned conv2d algorithms are kept."""
    return _autotune.cache_path()


def empty_cache():
    """Free the transformed Winograd filters kept for inference (up to 64
    layers / 512 MB, held until evicted even after their model is gone);
    returns the bytes freed. They are rebuilt on the next call that needs
    them. Like ``torch.cuda.empty_cache``, only worth calling to hand
    memory back after a big model is done."""
    return int(_C.conv2d_filter_cache_clear())


def clear_autotune_cache():
    """Forget all autotuned choices, in memory and in the cache file."""
    _autotune.clear()


__all__ = ["ops", "reference", "nn", "optim", "init", "data", "datasets", "models", "Input",
           "Model", "Sequential", "load", "manual_seed", "build_info", "set_num_threads", "get_num_threads",
           "set_autotune", "get_autotune", "autotune_cache_path", "clear_autotune_cache", "empty_cache", "__version__"]
