"""Parameter and Module: the base of every layer and model.

A Module owns parameters (trainable arrays with a gradient), buffers (state
that is saved but not trained, such as batch norm's running statistics) and
child modules, all registered by attribute assignment as in PyTorch, so
``state_dict()`` keys are PyTorch's (``"weight"``, ``"0.running_mean"``...).

Leaf layers implement ``forward(x, training)`` -- which keeps what its
backward needs (references, not copies) -- ``backward(grad_out)`` returning the
input gradient and accumulating parameter gradients, and
``output_shape(in_shape)`` for per-sample shapes (no batch axis), used to
check a graph when it is built.
"""

import contextlib
import threading
from collections import OrderedDict

import numpy as np

from .. import ops


# Set while this thread runs inference (``model(x)``): layers then save
# nothing for a backward. Per thread, so a model can serve several threads
# while another one trains it.
_inference = threading.local()


@contextlib.contextmanager
def inference():
    """Run forwards in this thread without saving anything for a backward."""
    before = getattr(_inference, "on", False)
    _inference.on = True
    try:
        yield
    finally:
        _inference.on = before


def inference_active():
    return getattr(_inference, "on", False)


class Parameter:
    """A trainable float32 array ``data`` and its gradient ``grad`` (None until a backward)."""

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad=True):
        data = np.ascontiguousarray(data, dtype=np.float32)
        # Optimizers update .data in place: a read-only view (np.frombuffer, a
        # memory map) would fail at the first step, so copy it now.
        self.data = data if data.flags.writeable else data.copy()
        self.grad = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, requires_grad={self.requires_grad})"


def _to_numpy(value, key):
    """Arrays from a state dict: NumPy arrays, or torch tensors (any device)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = value.detach().cpu().numpy()
    if not isinstance(value, (np.ndarray, np.generic, int, float)):
        raise TypeError(f"load_state_dict: {key!r} must be an array, got {type(value).__name__}")
    return np.asarray(value)


class Module:
    """Base class of layers and models (PyTorch's ``nn.Module`` with an explicit backward)."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration -------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, value):
        """Saved in the state dict and moved with the model, but not trained."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def _set_buffer(self, name, value):
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    def children(self):
        """(name, module) pairs of the direct children, in registration order."""
        return list(self._modules.items())

    # -- parameters and state -----------------------------------------------
    def named_parameters(self, prefix=""):
        for name, p in self._parameters.items():
            yield prefix + name, p
        for cname, child in self.children():
            yield from child.named_parameters(f"{prefix}{cname}.")

    def parameters(self):
        """Every parameter (trainable or frozen), each once, in state-dict order."""
        seen = set()
        for _, p in self.named_parameters():
            if id(p) not in seen:
                seen.add(id(p))
                yield p

    def named_buffers(self, prefix=""):
        for name, b in self._buffers.items():
            yield prefix + name, b
        for cname, child in self.children():
            yield from child.named_buffers(f"{prefix}{cname}.")

    def num_parameters(self, trainable_only=False):
        """Number of scalar parameters (only those with requires_grad when trainable_only)."""
        return int(sum(p.data.size for p in self.parameters()
                       if p.requires_grad or not trainable_only))

    def zero_grad(self):
        """Forget accumulated gradients (set them to None, as PyTorch's default)."""
        for p in self.parameters():
            p.grad = None

    @property
    def requires_grad(self):
        """True when any parameter is trainable; assigning freezes or unfreezes all of them."""
        return any(p.requires_grad for p in self.parameters())

    @requires_grad.setter
    def requires_grad(self, flag):
        for p in self.parameters():
            p.requires_grad = bool(flag)

    def _state_items(self, prefix=""):
        """(key, owner, attribute, value) for every parameter and buffer, in
        PyTorch's order: a module's own parameters, its buffers, then children."""
        for name, p in self._parameters.items():
            yield prefix + name, self, name, p
        for name, b in self._buffers.items():
            yield prefix + name, self, name, b
        for cname, child in self.children():
            yield from child._state_items(f"{prefix}{cname}.")

    def state_dict(self):
        """An ordered dict of copies of every parameter and buffer, with PyTorch's key names."""
        out = OrderedDict()
        for key, _, _, v in self._state_items():
            out[key] = (v.data if isinstance(v, Parameter) else np.asarray(v)).copy()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (NumPy or torch tensors) into the parameters and buffers.

        Keys and shapes must match (``strict=False`` ignores missing and
        unexpected keys, not shape mismatches). Nothing is modified unless
        every array checks out. Returns (missing_keys, unexpected_keys).
        """
        own = OrderedDict((k, (owner, attr, v)) for k, owner, attr, v in self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for key, (owner, attr, target) in own.items():
            if key not in state_dict:
                continue
            value = _to_numpy(state_dict[key], key)
            current = target.data if isinstance(target, Parameter) else np.asarray(target)
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {value.shape} in the state "
                                 f"dict but {current.shape} in the model")
            staged.append((owner, attr, target, current.dtype, value))
        for owner, attr, target, dtype, value in staged:
            if isinstance(target, Parameter):
                target.data = np.array(value, dtype=np.float32, order="C")
                target.grad = None
            else:
                owner._set_buffer(attr, np.array(value, dtype=dtype, order="C"))
        return missing, unexpected

    # -- modes --------------------------------------------------------------
    def train(self, mode=True):
        object.__setattr__(self, "training", bool(mode))
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    # -- running ------------------------------------------------------------
    def forward(self, x, training=None):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def output_shape(self, in_shape):
        """Per-sample output shape for a per-sample input shape (no batch axis)."""
        return tuple(in_shape)

    def _mode(self, training):
        return self.training if training is None else bool(training)

    def __call__(self, x, *more, **kwargs):
        from .graph import Node, call_symbolic
        if isinstance(x, Node) or (isinstance(x, (list, tuple)) and x
                                   and all(isinstance(n, Node) for n in x)):
            return call_symbolic(self, x)
        return self.forward(x, *more, **kwargs)

    def extra_repr(self):
        return ""

    def _label(self):
        name = getattr(self, "name", None)
        return f"{type(self).__name__} {name!r}" if name else type(self).__name__

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self.children():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return lines[0] + (")" if len(lines) == 1 else "\n" + "\n".join(lines[1:]) + "\n)")


def accumulate(param, grad):
    """param.grad += grad (PyTorch's accumulation until zero_grad); frozen params keep None."""
    if not param.requires_grad or grad is None:
        return
    if param.grad is None:
        param.grad = grad
    else:
        param.grad = _add(param.grad, grad)


def _add(a, b):
    add = getattr(ops, "add", None)
    return add(a, b) if add is not None else a + b
