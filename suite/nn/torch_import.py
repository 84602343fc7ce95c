"""Import torch.nn.LSTM / GRU / RNN weights into a Recurrent's state dict.

torch stores weight_ih_l{k}{_reverse} as (G*H, D), weight_hh as (G*H, R) and
weight_hr as (P, H); we store the transposes (x @ W layout). The gate order is
the same (LSTM i, f, g, o; GRU r, z, n), so no blocks move. The two LSTM/RNN
biases only ever appear as a sum, so they become one b; the GRU keeps b_ih and
b_hh apart because its n gate multiplies the recurrent part (and b_hh) by r.

torch is never imported here: pass a module (anything with .state_dict()) or
a mapping of tensors or arrays.
"""
import numpy as np

TORCH_KINDS = ("lstm", "lstmp", "gru", "rnn")
_MODES = {"lstm": "LSTM", "lstmp": "LSTM", "gru": "GRU", "rnn": "RNN_TANH"}


def _to_numpy(t):
    if hasattr(t, "detach"):  # a torch tensor (possibly on a GPU, possibly requiring grad)
        t = t.detach().cpu().numpy()
    return np.asarray(t)


def state_from_torch(source, kind, num_layers, bidirectional, proj_size=0, dtype=np.float32):
    """Convert torch recurrent weights to Recurrent(kind=...) state-dict names.

    Parameters
    ----------
    source : torch.nn.LSTM | torch.nn.GRU | torch.nn.RNN | mapping of name -> tensor/array
    kind : {"lstm", "lstmp", "gru", "rnn"}
        torch has no peephole or CIFG cells, so those kinds cannot be imported.
    num_layers : int
    bidirectional : bool
    proj_size : int
        torch.nn.LSTM's proj_size (0 = none).
    dtype : numpy dtype of the result.

    Returns
    -------
    dict[str, np.ndarray]
        e.g. "layers.0.fwd.W_ih" (D, G*H), ready for Recurrent.load_state_dict.

    Raises
    ------
    ValueError
        For an unsupported kind (or a relu RNN), a missing torch weight, or a
        torch weight that the given configuration does not account for.
    """
    if kind not in TORCH_KINDS:
        raise ValueError(f"state_from_torch: kind must be one of {', '.join(TORCH_KINDS)} "
                         f"(torch has no {kind!r} cell)")
    if kind == "lstmp" and not proj_size:
        raise ValueError("state_from_torch: kind='lstmp' needs proj_size > 0")
    mode = getattr(source, "mode", None)  # torch.nn.RNNBase records its cell type
    if mode is not None and mode != _MODES[kind]:
        hint = " (only tanh RNNs are supported)" if mode == "RNN_RELU" else ""
        raise ValueError(f"state_from_torch: the torch module is {mode}, which is not "
                         f"kind={kind!r}{hint}")
    sd = source.state_dict() if hasattr(source, "state_dict") else source
    arrays = {k: _to_numpy(v) for k, v in sd.items()}
    used = set()

    def take(key, required=True):
        if key not in arrays:
            if required:
                raise ValueError(f"state_from_torch: missing {key} (have: {', '.join(arrays)})")
            return None
        used.add(key)
        return arrays[key].astype(np.float64)

    out = {}
    directions = [("", "fwd"), ("_reverse", "bwd")] if bidirectional else [("", "fwd")]
    for layer in range(num_layers):
        for suffix, ours in directions:
            tail = f"_l{layer}{suffix}"
            prefix = f"layers.{layer}.{ours}."
            W_ih = take("weight_ih" + tail)  # (G*H, D)
            W_hh = take("weight_hh" + tail)  # (G*H, R)
            b_ih = take("bias_ih" + tail, required=False)  # absent when bias=False
            b_hh = take("bias_hh" + tail, required=False)
            zeros = np.zeros(W_ih.shape[0])
            b_ih = zeros if b_ih is None else b_ih
            b_hh = zeros if b_hh is None else b_hh
            out[prefix + "W_ih"] = W_ih.T  # (D, G*H)
            out[prefix + "W_hh"] = W_hh.T  # (R, G*H)
            if kind == "gru":
                out[prefix + "b_ih"] = b_ih
                out[prefix + "b_hh"] = b_hh
            else:
                out[prefix + "b"] = b_ih + b_hh
            if proj_size:
                out[prefix + "W_hr"] = take("weight_hr" + tail).T  # (H, P)
    extra = [k for k in arrays if k not in used]
    if extra:
        raise ValueError(f"state_from_torch: torch weights not accounted for by kind={kind!r}, "
                         f"num_layers={num_layers}, bidirectional={bidirectional}, "
                         f"proj_size={proj_size}: {', '.join(extra)}")
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in out.items()}
