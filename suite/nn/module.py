"""Parameters and the Module base class: the bookkeeping every layer shares.

A layer is a Module whose attributes are Parameters, other Modules, or lists of
Modules. That is all the structure there is: named_parameters() walks the
attributes in the order they were set, so names are stable and dotted like
torch's ("layers.0.fwd.W_ih").

Training protocol (no autograd, each layer writes its own backward):
  y = layer.forward(x)     # in training mode the layer keeps what backward needs
  dx = layer.backward(dy)  # returns dL/dx, ADDS dL/dparam into param.grad
A layer keeps one cache: backward pairs with the latest forward. In eval mode
forward keeps nothing (and may call faster inference kernels), so backward
after an eval forward is an error.
"""
import numpy as np

from suite.device import host, on_device


class Parameter:
    """A trainable array and its gradient (same shape and dtype, zero at start).

    value : np.ndarray, C-contiguous, float32 unless the module was cast with to().
    grad  : np.ndarray, accumulated by backward (+=), cleared by zero_grad().
    """

    __slots__ = ("value", "grad")

    def __init__(self, value, dtype=np.float32):
        self.value = np.array(value, dtype=dtype, order="C")  # always a private copy
        self.grad = np.zeros_like(self.value)

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Parameter(shape={self.value.shape}, dtype={self.value.dtype})"


class Module:
    """Base class: parameter discovery, train/eval mode, state dicts, dtype casts."""

    training = True  # class default; train()/eval() set it per instance

    # -- structure -----------------------------------------------------------------
    def _children(self):
        """(name, Module) for direct sub-modules, including items of lists/tuples."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def modules(self):
        """This module and every sub-module, depth first."""
        yield self
        for _, child in self._children():
            yield from child.modules()

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) for every parameter, each shared one once."""
        seen = set()
        for name, p in self._named_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _named_parameters(self, prefix):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self._children():
            yield from child._named_parameters(f"{prefix}{name}.")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    @property
    def dtype(self):
        """dtype of the parameters (float32 unless cast with to()); None if none."""
        for p in self.parameters():
            return p.value.dtype
        return None

    # -- training ------------------------------------------------------------------
    def zero_grad(self):
        for p in self.parameters():
            if on_device(p.grad):
                from suite.kernels.cuda import fill

                fill(p.grad, 0.0)
            else:
                p.grad[...] = 0

    def train(self, mode=True):
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, dtype):
        """Cast every parameter (value and grad) to dtype, e.g. float64 for gradient checks (on the host)."""
        if self.device != "cpu":
            raise ValueError("Module.to(dtype) casts host parameters: call to_device('cpu') first")
        for p in self.parameters():
            p.value = np.ascontiguousarray(p.value, dtype=dtype)
            p.grad = np.ascontiguousarray(p.grad, dtype=dtype)
        return self

    @property
    def device(self):
        """"cuda" when the parameters are device arrays (to_device), else "cpu"."""
        for p in self.parameters():
            return "cuda" if on_device(p.value) else "cpu"
        return "cpu"

    def to_device(self, device):
        """Move every parameter (value and grad) to "cuda" (device arrays: the layers then run the
        suite.kernels.cuda twins) or back to "cpu". State dicts and checkpoints are host arrays either way."""
        if device not in ("cpu", "cuda"):
            raise ValueError(f"Module.to_device: device must be 'cpu' or 'cuda', got {device!r}")
        for p in self.parameters():
            if device == "cuda":
                from suite.kernels.cuda import to_device, zeros

                p.value = to_device(p.value)
                p.grad = zeros(p.value.shape, p.value.dtype)
            else:
                p.value = np.ascontiguousarray(host(p.value))
                p.grad = np.ascontiguousarray(host(p.grad))
        return self

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- state dicts ---------------------------------------------------------------
    def state_dict(self):
        """{dotted name: copy of the parameter array}, in parameter order."""
        return {name: host(p.value).copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters (cast to each parameter's dtype).

        Shapes must always match. With strict=True every parameter must be present
        and no extra key may be; with strict=False missing and unexpected keys are
        skipped and returned as (missing, unexpected).
        Raises ValueError naming every missing/unexpected key and shape mismatch.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        problems = []
        for name, p in params.items():
            if name in state and np.shape(state[name]) != tuple(p.value.shape):
                problems.append(f"{name} has shape {tuple(np.shape(state[name]))}, "
                                f"model expects {tuple(p.value.shape)}")
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for name, p in params.items():
            if name in state:
                value = np.array(host(state[name]), dtype=p.value.dtype, order="C")
                if on_device(p.value):
                    from suite.kernels.cuda import to_device

                    value = to_device(value)
                p.value = value
        return missing, unexpected

    def __repr__(self):
        inner = ", ".join(f"{n}={tuple(p.shape)}" for n, p in self.named_parameters())
        return f"{type(self).__name__}({inner})"
