"""A real compressor: arithmetic coding driven by the text model as it learns the file (dynamic evaluation).

File format (``.lstm``), a 53-byte header then the payload::

    magic "SLM1" | model hash (the first 8 bytes of its weights' SHA-256) | lr, decay (float64) |
    segment (uint32) | characters (uint64) | bytes (uint64) | CRC-32 of the original (uint32) |
    method (uint8: 0 coded, 1 stored) | payload

all little-endian. "Stored" keeps the original bytes when coding would not make
them smaller (binary files: nearly every byte is an escape).

The bytes of any file are read as UTF-8 with Python's surrogateescape (an
undecodable byte becomes a lone surrogate, and writing back gives the same byte),
so any file round-trips: characters outside the model's vocabulary are coded as
an escape plus their code point (kernels/rangecoder.py). The text is coded a
segment at a time; after each segment the model takes its dynamic-evaluation
step on it (suite.dyneval), exactly as the decoder will after decoding it.

Determinism: the decoder must compute the encoder's frequencies bit for bit. It
does on the same machine with the same model and build (both run one compiled
function, and the adaptation runs the same BLAS calls on the same numbers);
another CPU, BLAS library, thread count or numba version can round differently.
The header's model hash and the CRC-32 of the original catch a mismatch: the
decoder then stops with an error and writes nothing, never a corrupt file.
"""
import struct
import zlib

import numpy as np

from suite.dyneval import Adaptation, AdaptiveLM

MAGIC = b"SLM1"
HEADER = struct.Struct("<4s8sddIQQIB")
CODED, STORED = 0, 1
TOTAL = 1 << 16
START = "\n"  # the implicit character before the text: a file starts where a line would


def settings_of(card):
    """The dynamic-evaluation settings the model's export chose on validation files (meta.adapt), else the
    defaults (suite.dyneval.Adaptation)."""
    try:
        return Adaptation.from_json((card.get("meta") or {})["adapt"])
    except (KeyError, TypeError, ValueError):
        return Adaptation()


def model_hash(model_dir=None):
    """The SHA-256 of a model folder's weights (config.json's weights_sha256; the weights file's own hash for an
    older checkpoint); the shipped text model without model_dir."""
    import hashlib
    import json
    from pathlib import Path

    from suite.shipped import default_model_dir

    folder = Path(model_dir or default_model_dir("text"))
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))["weights_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


class CompressError(ValueError):
    """A file that is not ours, a model or machine mismatch, a corrupt stream (one line)."""


def _points(text):
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.int64)


def _weights(lm, h, c):
    from suite.kernels.sampling import checked_generation_args

    w = lm.model.generation_weights()
    args = checked_generation_args(np.zeros(1, np.int64), 0, w["table0"], w["W_ih"], w["W_hh"], w["b"], w["W_out"],
                                   w["b_out"], h, c, 1.0, 0, None, w["cifg"], None)
    return args[2:8] + (args[13],)  # table0, W_ih, W_hh, b, W_out, b_out (tuples where per layer), cifg


class _Stream:
    """The model side shared by encoder and decoder: state, prediction, adaptation after each segment."""

    def __init__(self, model, vocab, settings):
        from suite.kernels.rangecoder import new_match, prime

        self.lm = AdaptiveLM(model, settings)
        L, H = model.config.layers, model.config.hidden
        self.h = np.zeros((L, H), np.float32)
        self.c = np.zeros((L, H), np.float32)
        self.w = _weights(self.lm, self.h, self.c)
        self.logits = np.empty(vocab.size, np.float32)
        self.previous = int(vocab.encode(START)[0])
        self.match = new_match()
        table0, W_ih, W_hh, b, W_out, b_out, cifg = self.w
        prime(self.previous, table0, W_ih, W_hh, b, W_out, b_out, self.h, self.c, cifg, self.logits)

    def code(self, encode, syms, points, coder, buf, progress=None):
        """Code (or decode) all of syms a segment at a time, adapting after each; returns the model's bits."""
        n, seg = len(syms), self.lm.settings.segment
        bits = 0.0
        for start in range(0, n, seg):
            bits += self.run(encode, syms, points, start, min(start + seg, n), coder, buf)
            if progress is not None:
                progress(min(start + seg, n), n)
        return bits

    def run(self, encode, syms, points, start, stop, coder, buf):
        from suite.kernels.rangecoder import code_tokens

        h0, c0 = self.h.copy(), self.c.copy()
        table0, W_ih, W_hh, b, W_out, b_out, cifg = self.w
        bits = code_tokens(encode, syms, points, start, stop, table0, W_ih, W_hh, b, W_out, b_out, self.h, self.c,
                           cifg, self.logits, coder, buf, TOTAL, *self.match)
        inputs = np.concatenate([[self.previous], syms[start:stop - 1]])
        self.lm.adapt(inputs, syms[start:stop], (h0[:, None, :], c0[:, None, :]))
        self.w = _weights(self.lm, self.h, self.c)
        self.previous = int(syms[stop - 1])
        return bits


def compress(model, vocab, model_sha256, data, settings, progress=None):
    """The .lstm bytes of ``data`` (bytes); (bytes, {"bits": the model's code length, "escapes", "chars",
    "method": "coded" or "stored"})."""
    from suite.kernels.rangecoder import finish, new_coder

    data = bytes(data)
    text = data.decode("utf-8", "surrogateescape")
    points = _points(text)
    syms = vocab.encode(text) if text else np.zeros(0, np.int64)
    n = len(syms)
    buf = np.zeros(6 * n + 16, np.uint8)
    coder = new_coder()
    bits = 0.0
    if n:
        bits = _Stream(model, vocab, settings).code(True, syms, points, coder, buf, progress)
    size = finish(coder, buf)
    method = CODED if size < len(data) else STORED
    head = HEADER.pack(MAGIC, bytes.fromhex(model_sha256)[:8], settings.lr, settings.decay, settings.segment, n,
                       len(data), zlib.crc32(data), method)
    body = buf[:size].tobytes() if method == CODED else data
    return head + body, {"bits": bits, "escapes": int(np.sum(syms == 0)), "chars": n,
                         "method": "coded" if method == CODED else "stored"}


def read_header(blob):
    """(header dict, payload bytes) of .lstm bytes; CompressError if they are not one."""
    if len(blob) < HEADER.size or not blob.startswith(MAGIC):
        raise CompressError("not a suite text-compressed file (no SLM1 header); give a file written by "
                            "`suite text compress`")
    _, model, lr, decay, segment, chars, size, crc, method = HEADER.unpack_from(blob)
    try:
        settings = Adaptation(lr, decay, segment)
    except ValueError:
        settings = None
    if settings is None or method not in (CODED, STORED):
        raise CompressError("the file's header is damaged; it cannot be decompressed")
    return {"model": model.hex(), "adapt": settings, "chars": chars, "bytes": size, "crc32": crc,
            "method": method}, blob[HEADER.size:]


def decompress(model, vocab, model_sha256, blob, progress=None):
    """The original bytes of .lstm ``blob``; CompressError on a model mismatch or when the result's CRC-32 or
    length differ (another machine's rounding, or a damaged file)."""
    header, payload = read_header(blob)
    if header["method"] == STORED:
        out = payload
    else:
        out = _decode(model, vocab, model_sha256, header, payload, progress)
    if out is None or len(out) != header["bytes"] or zlib.crc32(out) != header["crc32"]:
        raise CompressError("decompressed data fail the checksum: the file is damaged, or was compressed on a "
                            "machine that rounds differently (same model, other CPU/BLAS/numba); nothing written")
    return out


def _decode(model, vocab, model_sha256, header, payload, progress):
    from suite.kernels.rangecoder import new_coder

    if header["model"] != model_sha256[:16]:
        raise CompressError(f"compressed with model {header['model']}, this model is {model_sha256[:16]}; "
                            "decompress with the model that compressed it (--model)")
    settings = header["adapt"]
    n = int(header["chars"])
    # a character is at least 1 byte of the original, and costs at least log2(TOTAL / (TOTAL - 96)) > 1/500 bit
    if n > header["bytes"] or n > 4000 * (len(payload) + 4):
        raise CompressError("the file's header is damaged; it cannot be decompressed")
    syms = np.zeros(n, np.int64)
    points = np.zeros(n, np.int64)
    data = np.frombuffer(payload, np.uint8).copy()  # writable: one compiled function serves both directions
    coder = new_coder(data)
    if n:
        _Stream(model, vocab, settings).code(False, syms, points, coder, data, progress)
    try:
        table = np.concatenate([[0], [ord(ch) for ch in vocab.chars]]).astype(np.int64)
        codes = np.where(syms == 0, points, table[syms])
        if codes.size and codes.max() > 0x10FFFF:
            return None
        return codes.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass").encode("utf-8", "surrogateescape")
    except (ValueError, UnicodeError):
        return None
