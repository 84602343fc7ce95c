"""The attention decoder that caption and translate share (Luong-style output, GNMT-style context LSTM).

An LSTM reads the previous tokens; additive attention (suite.nn.attention)
reads the memory (image regions, encoder states) with its output as the
query; an optional second LSTM reads [h; context], so it remembers where
earlier tokens looked (attention between decoder layers, as in GNMT, Wu et al.
2016: our stand-in for Luong's input feeding, which would force a Python loop
over steps in training); the attentional hidden state tanh(W [h; context])
predicts the next token (Luong et al. 2015). Training runs the LSTMs over the
whole target at once (teacher forcing), on the sequence kernels.

A model mixes in AttentionDecoder and owns the layers under these names
(the parameter names of its checkpoints): ``embed`` (Embedding), ``rnn``
(Recurrent over embed), ``attention`` (AdditiveAttention), ``rnn2``
(Recurrent over hidden + memory size, or None), ``combine`` (Linear from
hidden + memory size to hidden), ``drop`` (Dropout) and ``out`` (Linear to
the vocabulary).
"""
import numpy as np

from suite.device import add_into, concat_last, on_device, take_last


def _split(a, H):
    """(a[..., :H], a[..., H:]) as C-contiguous arrays, where a lives."""
    return take_last(a, 0, H), take_last(a, H, tuple(a.shape)[-1])


def tanh(z):
    """np.tanh, or its device kernel."""
    if on_device(z):
        from suite.kernels.cuda.elementwise import tanh as device_tanh

        return device_tanh(z)
    return np.tanh(z)


def tanh_backward(g, a):
    """g * (1 - a * a) for a = tanh(z), where a lives."""
    if on_device(a):
        from suite.kernels.cuda.elementwise import tanh_backward as device_tanh_backward

        return device_tanh_backward(g, a)
    return g * (1.0 - a * a)


class AttentionDecoder:
    def decode_step(self, words, state, memory, lengths=None):
        """words (T, B) ids, state -> logits (T, B, V), new state, attention (T, B, N).

        state is (first LSTM's state, second LSTM's state or None), or the first LSTM's state alone;
        lengths (B,) the valid memory items per row (None: all). memory None: attend over the memory of the
        call before (a decoding loop whose memory rows stay put saves projecting the keys at every step).
        """
        state1, state2 = state if len(state) == 2 and isinstance(state[0], tuple) else (state, None)
        if memory is not None:
            self.attention.set_memory(memory, lengths)
        y, state1 = self.rnn.forward(self.embed.forward(words), state=state1)  # (T, B, H)
        context, alpha = self.attention.forward(y)  # (T, B, K), (T, B, N)
        if self.rnn2 is not None:
            y, state2 = self.rnn2.forward(concat_last([y, context]), state=state2)  # (T, B, H)
        a = tanh(self.combine.forward(concat_last([y, context])))  # (T, B, H)
        self._dec = (tuple(y.shape), a) if self.training else None
        logits = self.output_logits(a, context)  # (T, B, V)
        return logits, (state1, state2), alpha

    def output_logits(self, a, context):
        """The next token's logits (T, B, V) from the attentional state a (T, B, H); ``context`` (T, B, K) is there
        for a model whose output also reads the attended memory directly (caption's factored output)."""
        return self.out.forward(self.drop.forward(a))

    def output_backward(self, dlogits):
        """Backprop output_logits: (d a, d context or None)."""
        return self.drop.backward(self.out.backward(dlogits)), None

    def decoder_backward(self, dlogits):
        """Backprop the latest training decode_step: (dmemory (B, N, K), d initial state of the first LSTM)."""
        (T, B, H), a = self._dec
        da, dcontext_out = self.output_backward(dlogits)
        dy, dcontext = _split(self.combine.backward(tanh_backward(da, a)), H)  # from (T, B, H + K)
        if dcontext_out is not None:
            add_into(dcontext, dcontext_out)
        if self.rnn2 is not None:
            dy, dcontext2 = _split(self.rnn2.backward(dy), H)  # from (T, B, H + K)
            add_into(dcontext, dcontext2)
        add_into(dy, self.attention.backward(dcontext))
        self.embed.backward(self.rnn.backward(dy))
        return self.attention.dmemory, self.rnn.dstate0
