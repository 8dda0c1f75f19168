"""Autotuning of ``conv2d(algorithm="auto")``: cuDNN's benchmark mode, persistent.

When enabled (:func:`striate.set_autotune`), the first forward or backward
call with a given configuration times every algorithm that applies and keeps
the fastest. The key is everything that changes the winner: input and weight
shapes, bias, stride, padding, dilation, groups, direction, thread count, ISA
level and striate's version (new kernels re-tune). Winners live in memory
and in ``autotune.json`` in the cache folder (``STRIATE_CACHE_DIR``, else the
platform's user cache folder), so later processes skip the timing.

The file is a cache, not user data: it is written atomically (temporary file
+ rename, merged with what other processes wrote meanwhile) and an unreadable
or foreign file is ignored with a warning, never an error.
"""

import json
import os
import sys
import tempfile
import threading
import time
import warnings

from . import _C

_FORMAT = "striate-autotune-1"
_FILE = "autotune.json"

_lock = threading.Lock()
_enabled = False
_memory = {}  # key -> algorithm name
_loaded_from = None  # the file _memory was merged from

# An algorithm whose first (warm-up) run is this many times slower than the
# best so far is not timed again: it cannot win, and on a large layer the
# direct loops can take seconds.
_HOPELESS = 3.0


def set_enabled(flag):
    global _enabled
    _enabled = bool(flag)


def enabled():
    return _enabled


def cache_dir():
    env = os.environ.get("STRIATE_CACHE_DIR")
    if env:
        return env
    try:
        import platformdirs
        return platformdirs.user_cache_dir("striate", appauthor=False)
    except ImportError:
        pass
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
        return os.path.join(base, "striate", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/striate")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "striate")


def cache_path():
    return os.path.join(cache_dir(), _FILE)


def _read_file(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as e:
        warnings.warn(f"striate autotune: ignoring unreadable cache {path}: {e}", RuntimeWarning,
                      stacklevel=4)
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or not isinstance(entries, dict):
        warnings.warn(f"striate autotune: ignoring {path}: not a {_FORMAT} file", RuntimeWarning,
                      stacklevel=4)
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str)}


def _ensure_loaded():
    global _loaded_from
    path = cache_path()
    if _loaded_from != path:
        for k, v in _read_file(path).items():
            _memory.setdefault(k, v)
        _loaded_from = path


def _write_file(key, algorithm):
    path = cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        entries = _read_file(path)  # merge what other processes saved meanwhile
        entries[key] = algorithm
        fd, tmp = tempfile.mkstemp(prefix=".autotune-", suffix=".tmp", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": _FORMAT, "entries": entries}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        warnings.warn(f"striate autotune: could not save {path}: {e} (kept in memory only)",
                      RuntimeWarning, stacklevel=4)


def _key(direction, args):
    x, w, b, stride, mode, pad, dil, groups = args[:8]
    return (f"conv2d {direction} x={tuple(x.shape)} w={tuple(w.shape)} bias={b is not None} "
            f"stride={tuple(stride)} padding={mode}{tuple(pad)} dilation={tuple(dil)} "
            f"groups={groups} threads={_C.get_num_threads()} isa={_C.isa_selected()} "
            f"version={_C.__version__}")


def lookup(direction, args):
    """The tuned algorithm for this configuration, or None if not tuned yet."""
    with _lock:
        _ensure_loaded()
        return _memory.get(_key(direction, args))


def pick(direction, args, candidates, run):
    """The algorithm to use for ``args`` (whose last entry is "auto"): the
    cached winner, else the fastest of ``candidates`` under ``run(args)``."""
    key = _key(direction, args)
    with _lock:
        _ensure_loaded()
        best = _memory.get(key)
    if best in candidates:
        return best
    # The heuristic's choice goes first, so hopeless candidates are cut short.
    first = _C.conv2d_algorithm(*args)
    order = [first] + [c for c in candidates if c != first]
    best, best_t = None, float("inf")
    for alg in order:
        a = args[:-1] + (alg,)
        t0 = time.perf_counter()
        run(a)  # warm-up: workspace, transformed-filter cache, page faults
        t = time.perf_counter() - t0
        if t < _HOPELESS * best_t:
            t0 = time.perf_counter()
            run(a)
            t = min(t, time.perf_counter() - t0)
        if t < best_t:
            best, best_t = alg, t
    with _lock:
        _memory[key] = best
        _write_file(key, best)
    return best


def clear():
    """Forget every tuned winner, in memory and on disk."""
    global _loaded_from
    with _lock:
        _memory.clear()
        try:
            os.remove(cache_path())
        except FileNotFoundError:
            pass
        _loaded_from = cache_path()  # nothing left to load
