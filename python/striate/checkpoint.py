"""Checkpoints: ``model.save(path)`` and ``striate.load(path)``.

One file holds the architecture and the weights: a NumPy ``.npz`` archive
(zip) with a JSON header member ``__striate__`` -- format tag, version, the
architecture as layer classes + constructor arguments + graph edges, and a
SHA-256 of every array -- and one ``.npy`` member per state-dict entry.

Safety: loading uses ``allow_pickle=False`` and rebuilds layers only from
striate's own layer registry, so a file can never run code. A truncated,
empty, foreign or tampered file raises ValueError naming the file. Saving
writes a temporary file in the same folder, fsyncs it and renames it over
the target, so an interrupted save leaves the previous checkpoint intact.
A save killed outright (SIGKILL, power loss) cannot remove its temporary
file, ``.NAME.HOST-PID-RANDOM.tmp``; the next save to NAME from the same host
deletes those whose process is gone. Saving over a file that is not a
checkpoint replaces it, as ``torch.save`` and ``np.save`` do.
"""

import hashlib
import json
import os
import secrets
import socket
import zipfile

import numpy as np

FORMAT = "striate-checkpoint"
VERSION = 1
_HEADER = "__striate__"


def layer_config(layer):
    from .nn.layers import LAYERS
    cls = type(layer).__name__
    if cls in ("Sequential", "Model"):
        return {"class": cls, "name": getattr(layer, "name", None), "config": _architecture(layer)}
    if LAYERS.get(cls) is not type(layer):
        raise TypeError(f"save: cannot save the custom layer {cls}; only striate.nn layers can be "
                        "rebuilt from a checkpoint (save its state_dict() instead)")
    return {"class": cls, "name": layer.name, "config": layer.get_config()}


def _architecture(model):
    from .nn.graph import Model, Sequential
    if isinstance(model, Sequential):
        return {"class": "Sequential", "name": model.name,
                "layers": [layer_config(m) for m in model.layers]}
    if isinstance(model, Model):
        return {"class": "Model", "name": model.name,
                "inputs": [{"shape": list(n.shape), "name": n.name} for n in model._inputs],
                "nodes": [{"layer": layer_config(layer), "inputs": srcs, "listed": listed}
                          for layer, srcs, listed, _ in model._steps],
                "outputs": list(model._outputs), "multi": list(model._multi)}
    raise TypeError(f"save: expected a striate Sequential or Model, got {type(model).__name__}")


def _build_layer(cfg):
    from .nn.layers import LAYERS
    cls = cfg["class"]
    if cls in ("Sequential", "Model"):
        net = build(cfg["config"])
        # The name is the state-dict prefix of the nested network's weights.
        object.__setattr__(net, "name", cfg.get("name"))
        return net
    if cls not in LAYERS:
        raise ValueError(f"unknown layer class {cls!r}")
    return LAYERS[cls](**cfg["config"], name=cfg.get("name"))


def build(arch):
    """A fresh (randomly initialized) model from an architecture dict."""
    from .nn.graph import Input, Model, Sequential, call_symbolic
    if arch["class"] == "Sequential":
        return Sequential(*[_build_layer(c) for c in arch["layers"]], name=arch.get("name"))
    if arch["class"] == "Model":
        nodes = [Input(tuple(i["shape"]), name=i.get("name")) for i in arch["inputs"]]
        n_in = len(nodes)
        for node in arch["nodes"]:
            ins = [nodes[s] for s in node["inputs"]]
            nodes.append(call_symbolic(_build_layer(node["layer"]),
                                       ins if node["listed"] else ins[0]))
        multi_in, multi_out = arch["multi"]
        outs = [nodes[i] for i in arch["outputs"]]
        return Model(nodes[:n_in] if multi_in else nodes[0], outs if multi_out else outs[0],
                     name=arch.get("name"))
    raise ValueError(f"unknown model class {arch['class']!r}")


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _temp_prefix(path):
    # Bounded so that prefix + host + pid + token stays within NAME_MAX.
    return "." + os.path.basename(path)[:100] + "."


def _remove_stale_temps(path, folder, host):
    """Delete the temporary files of earlier saves to ``path`` whose process
    died mid-save (same host, pid no longer running): nothing can finish them."""
    if os.name != "posix":
        return  # os.kill(pid, 0) would terminate the process on Windows
    prefix = _temp_prefix(path)
    try:
        entries = [e.name for e in os.scandir(folder)
                   if e.name.startswith(prefix) and e.name.endswith(".tmp")]
    except OSError:
        return
    for name in entries:
        parts = name[len(prefix):-len(".tmp")].rsplit("-", 2)
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
            continue
        try:
            os.kill(int(parts[1]), 0)
            continue  # alive (maybe saving right now)
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError, OSError):
            continue  # alive under another user, or not a pid: leave it
        try:
            os.unlink(os.path.join(folder, name))
        except OSError:
            pass


def save(model, path):
    """Write ``model`` (architecture + weights + buffers) to ``path`` atomically."""
    path = os.fspath(path)
    state = model.state_dict()
    header = {"format": FORMAT, "version": VERSION, "architecture": _architecture(model),
              "training": bool(model.training),
              "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "sha256": _digest(v)}
                         for k, v in state.items()}}
    from . import __version__
    header["striate_version"] = __version__
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    folder = os.path.dirname(os.path.abspath(path))
    # Host and pid in the name let a later save tell a dead save's leftover
    # from one in progress (_remove_stale_temps).
    host = socket.gethostname().replace(os.sep, "_")[:64]
    tmp = os.path.join(folder, f"{_temp_prefix(path)}{host}-{os.getpid()}-{secrets.token_hex(8)}.tmp")
    _remove_stale_temps(path, folder, host)
    # Not mkstemp: its 0600 mode would survive the rename; O_EXCL with 0666
    # lets the umask decide, as for any file the user writes.
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:  # name the user's path, not the temporary one
        raise type(e)(e.errno, f"cannot save {path}: {e.strerror} (in folder {folder})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{_HEADER: blob}, **{f"w/{k}": v for k, v in state.items()})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _member(z, name):
    """An array member; NpzFile hands back raw bytes for a member that is not a
    .npy file, which no checkpoint writes."""
    a = z[name]
    if not isinstance(a, np.ndarray):
        raise ValueError(f"member {name!r} is not a .npy array")
    return a


def load(path):
    """The model saved at ``path`` (see :meth:`striate.nn.Sequential.save`)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile) or _HEADER not in z.files:
                raise ValueError("no striate header")
            blob = _member(z, _HEADER)
            if blob.dtype != np.uint8 or blob.ndim != 1:
                raise ValueError("the header is not a JSON byte string")
            header = json.loads(blob.tobytes().decode("utf-8"))
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                got = header.get("format") if isinstance(header, dict) else None
                raise ValueError(f"format is {got!r}, not {FORMAT!r}")
            if header.get("version") != VERSION:
                raise ValueError(f"checkpoint version {header.get('version')} is not supported "
                                 f"(this striate reads version {VERSION})")
            state = {}
            for key, meta in header["arrays"].items():
                a = _member(z, f"w/{key}")
                if (str(a.dtype) != meta["dtype"] or list(a.shape) != meta["shape"]
                        or _digest(a) != meta["sha256"]):
                    raise ValueError(f"array {key!r} does not match its recorded checksum")
                state[key] = a
            model = build(header["architecture"])
            # Inside the try: an architecture that disagrees with the arrays is a bad file too.
            model.load_state_dict(state)
    except FileNotFoundError:
        raise
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError, AttributeError, IndexError) as e:  # malformed header fields
        raise ValueError(f"{path}: not a valid striate checkpoint ({type(e).__name__}: {e})") from None
    model.train(bool(header.get("training", False)))
    return model
