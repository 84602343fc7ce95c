"""Layers that own parameters and gradients, on top of kernels/.

Each layer is a Module: forward(x) caches what backward needs (training mode),
backward(dy) returns dx and adds parameter gradients into Parameter.grad.
Checkpoints (safetensors + JSON config) and torch weight import live here too.
"""
from suite.nn.attention import AdditiveAttention
from suite.nn.checkpoint import CheckpointError, load_checkpoint, read_card, save_checkpoint
from suite.nn.conv import Conv2d, MaxPool2d, ReLU
from suite.nn.layers import Dropout, Embedding, Linear, make_rng
from suite.nn.module import Module, Parameter
from suite.nn.recurrent import GRU, KINDS, LSTM, LSTM_KINDS, RNN, Recurrent, RecurrentLayer
from suite.nn.torch_import import state_from_torch

__all__ = [
    "AdditiveAttention", "CheckpointError", "Conv2d", "Dropout", "Embedding", "GRU", "KINDS",
    "LSTM", "LSTM_KINDS", "Linear", "MaxPool2d", "Module", "Parameter", "RNN", "ReLU",
    "Recurrent", "RecurrentLayer", "load_checkpoint", "make_rng", "read_card",
    "save_checkpoint", "state_from_torch",
]
