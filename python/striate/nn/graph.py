"""Networks: ``Sequential`` and the functional ``Model`` over any DAG of layers.

A functional graph is built symbolically: ``x = striate.Input((C, H, W))``
is a Node, calling a layer on Nodes returns a Node whose per-sample shape is
inferred (a mismatch is a ValueError naming the layer and both shapes), and
``Model(inputs=x, outputs=y)`` orders the layers topologically once. Running
it walks that order forward and, for training, backward -- accumulating the
gradient of a node consumed by several layers (residual branches).
"""

import re
import weakref
from collections import OrderedDict

from .. import _C, ops
from .module import Module, inference, inference_active

# Output-buffer plans of training steps, per network (weakly: a plan dies
# with its network) and per input shape: {network: OrderedDict(key -> plan)}.
# A plan (_C.BufferPlan, src/binding/arrays.h) hands the k-th op output of a
# step the memory it had on the previous step with the same shapes, unless
# something still references it. A few shapes are kept per network (fit's
# last, smaller batch is a second one); the least recently used goes first.
_PLANS = weakref.WeakKeyDictionary()
_MAX_PLANS = 4


def _shapes_of(x):
    if isinstance(x, (list, tuple)):
        return tuple(tuple(getattr(a, "shape", ())) for a in x)
    return tuple(getattr(x, "shape", ()))


def buffer_plan(network, key):
    """The BufferPlan of ``network`` for ``key`` (created on first use)."""
    plans = _PLANS.get(network)
    if plans is None:
        plans = _PLANS[network] = OrderedDict()
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = _C.BufferPlan()
        while len(plans) > _MAX_PLANS:
            plans.popitem(last=False)
    else:
        plans.move_to_end(key)
    return plan


def _release_contexts(module):
    """Drop what every layer under ``module`` saved for a backward. A training
    forward overwrites each context anyway; dropping them first frees the
    last step's activations, so the plan can hand their memory out again."""
    module.__dict__.pop("_saved_ctx", None)
    for _, child in module.children():
        _release_contexts(child)


class Node:
    """A symbolic tensor: the output of ``layer`` applied to ``inputs`` (an
    Input node has no layer). ``shape`` is per sample (no batch axis)."""

    __slots__ = ("layer", "inputs", "shape", "name", "listed")

    def __init__(self, layer, inputs, shape, name=None, listed=False):
        self.layer, self.inputs, self.shape, self.name = layer, inputs, shape, name
        self.listed = listed  # the layer was called on a list of nodes (a merge)

    def __repr__(self):
        what = "Input" if self.layer is None else type(self.layer).__name__
        return f"Node({what}, shape={self.shape})"


def Input(shape, name=None):
    """A model input of per-sample ``shape`` (e.g. (C, H, W); the batch axis is implied)."""
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"Input: shape must be a tuple of ints, got {shape!r}") from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError(f"Input: shape must be a non-empty tuple of positive ints, got {shape}")
    return Node(None, [], shape, name)


def call_symbolic(layer, x):
    inputs = list(x) if isinstance(x, (list, tuple)) else [x]
    if isinstance(x, (list, tuple)):
        shape = layer.output_shape([n.shape for n in inputs])
    else:
        shape = layer.output_shape(x.shape)
    return Node(layer, inputs, tuple(int(d) for d in shape),
                listed=isinstance(x, (list, tuple)))


def _snake(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _type_str(layer):
    # A conv with a fused epilogue (fuse_for_inference) says so in summary().
    act = getattr(layer, "activation", None)
    name = type(layer).__name__
    return f"{name}+{ {'relu': 'ReLU'}.get(act, act)}" if isinstance(act, str) else name


def _shape_str(shape):
    return "×".join(str(d) for d in shape)


class Network(Module):
    """What Sequential and Model share: layers by name, summary, training
    (``fit``/``evaluate``/``predict``), checkpoints and freezing.

    ``model(x)`` on arrays runs inference (``forward(x, training=False)``:
    batch norm uses its running statistics, dropout is off, nothing is
    updated and nothing is saved for a backward, so several threads can
    share one model) whatever the mode; ``model.forward(x)`` follows ``train()`` /
    ``eval()`` (or an explicit ``training=``) and is the one to pair with
    ``backward``. Called on Nodes, a network is a layer of a functional graph.
    """

    def __call__(self, x, *more, **kwargs):
        from .graph import Node
        symbolic = isinstance(x, Node) or (isinstance(x, (list, tuple)) and x
                                           and all(isinstance(n, Node) for n in x))
        if symbolic or more or kwargs:
            return super().__call__(x, *more, **kwargs)
        with inference():
            return self.forward(x, training=False)

    def forward(self, x, training=None):
        """Run the network; a training forward (not inference, not inside an
        enclosing network's step) runs in a per-input-shape buffer plan: its
        activations reuse the previous step's memory where it is free."""
        training = self._mode(training)
        if not training or inference_active() or _C.buffer_plan_active():
            return self._forward(x, training)
        _release_contexts(self)
        with buffer_plan(self, ("forward", _shapes_of(x))):
            return self._forward(x, training)

    def backward(self, grad_out):
        """Gradients through the network (after a forward with training),
        planned like forward; parameter gradients accumulate until zero_grad."""
        if _C.buffer_plan_active():
            return self._backward(grad_out)
        with buffer_plan(self, ("backward", _shapes_of(grad_out))):
            return self._backward(grad_out)

    def buffer_plans(self):
        """{key: plan} of this network's buffer plans (``plan.allocated``,
        ``.reused``, ``.slots``, ``.nbytes``); ``key`` is ("forward" or
        "backward", shapes)."""
        return dict(_PLANS.get(self, {}))

    def release_buffers(self):
        """Free the planned step buffers (the next training step plans anew)."""
        _PLANS.pop(self, None)

    @property
    def layers(self):
        return [m for _, m in self.children()]

    def get_layer(self, name):
        if name not in self._modules:
            raise KeyError(f"no layer named {name!r}; layers: {list(self._modules)}")
        return self._modules[name]

    def freeze(self, up_to=None):
        """Freeze every layer (requires_grad False) up to and including ``up_to``
        (a layer name), or all layers when None. Returns the frozen names."""
        names = list(self._modules)
        if isinstance(up_to, int) and not isinstance(up_to, bool):
            up_to = str(up_to)  # a Sequential's layers are named "0", "1", ...
        if up_to is not None and up_to not in self._modules:
            raise KeyError(f"freeze: no layer named {up_to!r}; layers: {names}")
        frozen = names if up_to is None else names[:names.index(up_to) + 1]
        for n in frozen:
            self._modules[n].requires_grad = False
        return frozen

    def unfreeze(self):
        self.requires_grad = True

    # summary ----------------------------------------------------------------
    def _summary_rows(self, input_shape):
        raise NotImplementedError

    def summary(self, input_shape=None, print_fn=print):
        """Print and return a table: layer, type, per-sample output shape (C×H×W),
        parameters, and the totals -- the volumes lecture notes list."""
        rows = self._summary_rows(input_shape)
        header = ("Layer", "Type", "Output shape", "Params")
        table = [header] + [(n, t, _shape_str(s), f"{p:,}") for n, t, s, p in rows]
        widths = [max(len(r[i]) for r in table) for i in range(4)]
        fmt = lambda r: "  ".join((c.ljust(w) if i < 3 else c.rjust(w))  # noqa: E731
                                  for i, (c, w) in enumerate(zip(r, widths)))
        rule = "-" * len(fmt(header))
        total = self.num_parameters()
        trainable = self.num_parameters(trainable_only=True)
        lines = [rule, fmt(header), rule] + [fmt(r) for r in table[1:]] + [
            rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", rule]
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    # training (striate.nn.training) -------------------------------------------
    def fit(self, X, y, **kwargs):
        from .training import fit
        return fit(self, X, y, **kwargs)

    def evaluate(self, X, y, **kwargs):
        from .training import evaluate
        return evaluate(self, X, y, **kwargs)

    def predict(self, X, **kwargs):
        from .training import predict
        return predict(self, X, **kwargs)

    def save(self, path):
        from ..checkpoint import save
        save(self, path)


class Sequential(Network):
    """Layers applied in order (``torch.nn.Sequential``); state-dict keys "0.weight", ...

    The per-sample input shape is not declared: it is checked, with every
    layer's output shape, the first time each input shape is seen.
    """

    def __init__(self, *layers, name=None):
        super().__init__()
        object.__setattr__(self, "name", name)
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            self.append(layer, _index=i)
        object.__setattr__(self, "_checked", set())

    def append(self, layer, _index=None):
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: layer {len(self._modules)} must be a striate.nn "
                            f"Module, got {type(layer).__name__}")
        name = str(len(self._modules) if _index is None else _index)
        self._modules[name] = layer
        if getattr(layer, "name", None) is None and hasattr(layer, "_ctx"):
            object.__setattr__(layer, "name", name)
        object.__setattr__(self, "_checked", set())
        return self

    def __getitem__(self, i):
        return self.layers[i]

    def __setitem__(self, i, layer):
        """``model[i] = layer`` replaces layer i in place (e.g. a new classifier head),
        as in PyTorch; its state-dict keys keep the index ("11.weight")."""
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: a layer must be a striate.nn Module, got "
                            f"{type(layer).__name__}")
        key = list(self._modules)[i]  # IndexError for a bad index, as a list
        self._modules[key] = layer
        if getattr(layer, "name", None) is None and hasattr(layer, "_ctx"):
            object.__setattr__(layer, "name", key)
        object.__setattr__(self, "_checked", set())

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self.layers)

    def _shapes(self, in_shape):
        shapes = []
        s = tuple(in_shape)
        for layer in self.layers:
            s = tuple(layer.output_shape(s))
            shapes.append(s)
        return shapes

    def output_shape(self, in_shape):
        return self._shapes(in_shape)[-1] if len(self) else tuple(in_shape)

    def _forward(self, x, training):
        shape = getattr(x, "shape", None)
        if shape is not None and shape[1:] not in self._checked:
            self._shapes(shape[1:])  # clear errors before any kernel runs
            self._checked.add(shape[1:])
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def _backward(self, grad_out):
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def _summary_rows(self, input_shape):
        if input_shape is None:
            raise ValueError("Sequential.summary needs input_shape, e.g. (1, 32, 32)")
        rows = [("input", "Input", tuple(input_shape), 0)]
        for (name, layer), s in zip(self.children(), self._shapes(input_shape)):
            rows.append((name, _type_str(layer), s, layer.num_parameters()))
        return rows


class Model(Network):
    """A functional model: ``Model(inputs=x, outputs=y)`` over Nodes built by
    calling layers on ``striate.Input``s. Several inputs/outputs are lists."""

    def __init__(self, inputs, outputs, name=None):
        super().__init__()
        object.__setattr__(self, "name", name)
        multi_in, multi_out = isinstance(inputs, (list, tuple)), isinstance(outputs, (list, tuple))
        ins = list(inputs) if multi_in else [inputs]
        outs = list(outputs) if multi_out else [outputs]
        for n in ins + outs:
            if not isinstance(n, Node):
                raise TypeError(f"Model: inputs and outputs must be Nodes, got {type(n).__name__}")
        for n in ins:
            if n.layer is not None:
                raise ValueError("Model: every input must be a striate.Input(...) node")
        order = self._toposort(outs)
        missing = [n for n in order if n.layer is None and all(n is not i for i in ins)]
        if missing:
            raise ValueError(f"Model: the outputs depend on an Input {missing[0].shape} that is not "
                             "among the model's inputs")
        index = {id(n): i for i, n in enumerate(ins)}
        steps = []
        used = set()
        for n in order:
            if n.layer is None:
                continue
            if id(n.layer) in used:
                raise ValueError(f"Model: layer {n.layer._label()} is used twice; create one "
                                 "layer per use (shared weights are not supported)")
            used.add(id(n.layer))
            index[id(n)] = len(ins) + len(steps)
            steps.append((n.layer, [index[id(i)] for i in n.inputs], n.listed, n.shape))
        self._name_layers([s[0] for s in steps])
        object.__setattr__(self, "_inputs", ins)
        object.__setattr__(self, "_steps", steps)
        object.__setattr__(self, "_outputs", [index[id(n)] for n in outs])
        object.__setattr__(self, "_multi", (multi_in, multi_out))

    @staticmethod
    def _toposort(outs):
        order, state = [], {}
        stack = [(n, False) for n in reversed(outs)]
        while stack:  # iterative DFS: deep nets do not hit the recursion limit
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            if state.get(id(n)) == "done":
                continue
            state[id(n)] = "done"
            stack.append((n, True))
            stack.extend((i, False) for i in reversed(n.inputs) if state.get(id(i)) != "done")
        # The DFS above emits a node after its inputs; dedupe keeps the first emission.
        seen, out = set(), []
        for n in order:
            if id(n) not in seen:
                seen.add(id(n))
                out.append(n)
        return out

    def _name_layers(self, layers):
        taken = {l.name for l in layers if l.name}
        if len(taken) != sum(1 for l in layers if l.name):
            names = [l.name for l in layers if l.name]
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"Model: two layers are named {dup!r}")
        counts = {}
        for layer in layers:
            if not layer.name:
                base = _snake(type(layer).__name__)
                k = counts.get(base, 0)
                name = base if k == 0 else f"{base}_{k}"
                while name in taken:
                    k += 1
                    name = f"{base}_{k}"
                counts[base] = k + 1
                object.__setattr__(layer, "name", name)
                taken.add(name)
            self._modules[layer.name] = layer

    @property
    def input_shapes(self):
        return [n.shape for n in self._inputs]

    def _forward(self, x, training):
        xs = list(x) if self._multi[0] else [x]
        if len(xs) != len(self._inputs):
            raise ValueError(f"Model expects {len(self._inputs)} inputs, got {len(xs)}")
        for i, (a, node) in enumerate(zip(xs, self._inputs)):
            shape = tuple(getattr(a, "shape", ()))
            if shape[1:] != node.shape:
                raise ValueError(f"Model input {i} must have shape (N, {', '.join(map(str, node.shape))}), "
                                 f"got {shape}")
        values = xs + [None] * len(self._steps)
        base = len(xs)
        for k, (layer, srcs, merge, _) in enumerate(self._steps):
            arg = [values[s] for s in srcs] if merge else values[srcs[0]]
            values[base + k] = layer.forward(arg, training)
        outs = [values[i] for i in self._outputs]
        return outs if self._multi[1] else outs[0]

    def _backward(self, grad_out):
        gs = list(grad_out) if self._multi[1] else [grad_out]
        grads = [None] * (len(self._inputs) + len(self._steps))
        for i, g in zip(self._outputs, gs):
            grads[i] = g if grads[i] is None else ops.add(grads[i], g)
        base = len(self._inputs)
        for k in range(len(self._steps) - 1, -1, -1):
            layer, srcs, merge, _ = self._steps[k]
            g = grads[base + k]
            if g is None:
                continue  # this branch does not reach the outputs being differentiated
            gin = layer.backward(g)
            gins = gin if merge else (gin,)
            for s, gi in zip(srcs, gins):
                grads[s] = gi if grads[s] is None else ops.add(grads[s], gi)
            grads[base + k] = None  # free as soon as it is consumed
        gx = grads[:base]
        return gx if self._multi[0] else gx[0]

    def output_shape(self, in_shape):
        outs = [self._steps[i - len(self._inputs)][3] if i >= len(self._inputs)
                else self._inputs[i].shape for i in self._outputs]
        return outs if self._multi[1] else outs[0]

    def _summary_rows(self, input_shape=None):
        rows = [(n.name or (f"input_{i}" if len(self._inputs) > 1 else "input"), "Input", n.shape, 0)
                for i, n in enumerate(self._inputs)]
        for layer, _, _, shape in self._steps:
            rows.append((layer.name, _type_str(layer), shape, layer.num_parameters()))
        return rows

    def replace(self, name, new_layer):
        """Return a new Model with layer ``name`` replaced by ``new_layer`` (e.g. a new
        classifier head for transfer learning); every other layer -- and its weights
        -- is shared with this model. Shapes are re-checked."""
        old = self.get_layer(name)
        if getattr(new_layer, "name", None) is None:
            object.__setattr__(new_layer, "name", name)
        nodes = [Node(None, [], n.shape, n.name) for n in self._inputs]
        for layer, srcs, merge, _ in self._steps:
            lay = new_layer if layer is old else layer
            ins = [nodes[s] for s in srcs]
            nodes.append(call_symbolic(lay, ins if merge else ins[0]))
        outs = [nodes[i] for i in self._outputs]
        return Model(nodes[:len(self._inputs)] if self._multi[0] else nodes[0],
                     outs if self._multi[1] else outs[0], name=self.name)

