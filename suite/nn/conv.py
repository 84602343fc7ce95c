"""Convolutional layers on kernels/conv.py: Conv2d, ReLU, MaxPool2d (NCHW).

Conv2d keeps torch's weight layout, W of shape (out_channels, in_channels,
KH, KW), so weights compare with (and import from) torch.nn.Conv2d as they
are; the (in, out) rule of Linear is about y = x @ W, which a convolution
does not compute.
"""
import numpy as np

from suite.device import add_into, kernels, like, on_device
from suite.nn.layers import _need_cache, make_rng
from suite.nn.module import Module, Parameter


def _pair(name, value):
    """(kh, kw) from an int or a pair of ints, each >= 1."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class Conv2d(Module):
    """y = conv(x, W) + b over x of shape (B, in_channels, H, W).

    Initialisation: W normal with std sqrt(2 / fan_in), fan_in = in_channels*KH*KW
    (He et al. 2015), which keeps the activation variance constant through a
    stack of conv + ReLU layers (ReLU zeroes half of it; the 2 restores it).
    Bias zero.

    input_grad=False makes backward skip dx and return None: for a first
    layer, whose input is the data (saves a GEMM and the col2im).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None,
                 seed=0, input_grad=True):
        rng = make_rng(rng, seed)
        kh, kw = _pair("kernel_size", kernel_size)
        for name, value, minimum in (("in_channels", in_channels, 1),
                                     ("out_channels", out_channels, 1),
                                     ("stride", stride, 1), ("padding", padding, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < minimum:
                raise ValueError(f"Conv2d: {name} must be an integer >= {minimum}, got {value!r}")
        fan_in = in_channels * kh * kw
        std = np.sqrt(2.0 / fan_in)
        self.W = Parameter(rng.normal(0.0, std, (out_channels, in_channels, kh, kw)))  # (F, C, KH, KW)
        self.b = Parameter(np.zeros(out_channels))  # (F,)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride, self.padding = int(stride), int(padding)
        self.input_grad = bool(input_grad)
        self._x = None

    def forward(self, x):
        x = like(x, self.W.value)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d: input has shape {tuple(x.shape)}, expected "
                             f"(B, {self.in_channels}, H, W)")
        self._x = x if self.training else None
        return kernels("conv", x).conv2d_forward(x, self.W.value, self.b.value, self.stride, self.padding)

    def backward(self, dy):
        x = _need_cache(self, self._x)
        dy = like(dy, x)
        dx, dW, db = kernels("conv", x).conv2d_backward(dy, x, self.W.value, self.stride, self.padding,
                                                         need_dx=self.input_grad)
        add_into(self.W.grad, dW)
        add_into(self.b.grad, db)
        return dx


class ReLU(Module):
    """max(x, 0) elementwise; backward needs only the output, which it keeps."""

    def __init__(self):
        self._y = None

    def forward(self, x):
        y = kernels("conv", x).relu_forward(x)
        self._y = y if self.training else None
        return y

    def backward(self, dy):
        y = _need_cache(self, self._y)
        return kernels("conv", y).relu_backward(like(dy, y), y)


class MaxPool2d(Module):
    """Max over kernel x kernel windows every stride pixels (stride defaults to kernel),
    no padding, output size floor((H - kernel) / stride) + 1 as torch's default."""

    def __init__(self, kernel=2, stride=None):
        stride = kernel if stride is None else stride
        for name, value in (("kernel", kernel), ("stride", stride)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"MaxPool2d: {name} must be an integer >= 1, got {value!r}")
        self.kernel, self.stride = int(kernel), int(stride)
        self._cache = None

    def forward(self, x):
        x = x if on_device(x) else np.asarray(x)
        y, argmax = kernels("conv", x).maxpool2d_forward(x, self.kernel, self.stride)
        self._cache = (argmax, tuple(x.shape)) if self.training else None
        return y

    def backward(self, dy):
        argmax, x_shape = _need_cache(self, self._cache)
        return kernels("conv", argmax).maxpool2d_backward(dy, argmax, x_shape)
