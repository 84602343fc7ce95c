"""The translation model: BiLSTM encoder -> additive attention -> LSTM decoder, on subwords.

Encoder: the source's subwords (sentencepiece, one joint vocabulary for
English, German and French; the first token is the target-language tag
``<2de>``/``<2fr>``, as Johnson et al. 2017 steer one model to several
languages) through an embedding and a stacked bidirectional LSTM; its
outputs at every position are the memory the decoder attends over, and their
mean (over the real positions) starts the decoder.

Decoder: suite.nn.decoder.AttentionDecoder (an LSTM, additive attention, a
second LSTM over [h; context], Luong's attentional output layer), trained by
teacher forcing with label smoothing; decoded by a beam search with Wu et al.'s
length penalty, batched over sentences and beams.

Placeholders never reach the model (apps/translate/placeholders.py): the model
reads and writes slot tokens, and unmask puts the originals back.
"""
import base64
from dataclasses import asdict, dataclass

import numpy as np

from suite.device import on_device, softmax_cross_entropy, take_last
from suite.nn import Dropout, Embedding, Linear, Module, Recurrent
from suite.nn.attention import AdditiveAttention
from suite.nn.decoder import AttentionDecoder, tanh, tanh_backward

MODEL_NAME = "AttentionSeq2Seq"
PAD, BOS, EOS, UNK = 0, 1, 2, 3
MAX_TOKENS = 80   # subwords a side in training; longer pairs are skipped
EVAL_LIMIT = 1500  # validation pairs scored at each evaluation


@dataclass
class TranslateConfig:
    vocab_size: int
    embed: int = 128
    enc_hidden: int = 160       # per direction
    enc_layers: int = 2
    hidden: int = 256           # decoder LSTMs
    attn: int = 128
    dropout: float = 0.2        # encoder between layers, decoder before the output layer, embeddings
    label_smoothing: float = 0.1
    context_lstm: bool = True
    seed: int = 0


class TranslateModel(AttentionDecoder, Module):
    def __init__(self, config: TranslateConfig):
        self.config = config
        rng = np.random.default_rng(config.seed)
        seed = lambda: int(rng.integers(2**31))  # noqa: E731
        self.src_embed = Embedding(config.vocab_size, config.embed, rng=rng)
        self.src_drop = Dropout(config.dropout, rng=np.random.default_rng(seed()))
        self.encoder = Recurrent(config.embed, config.enc_hidden, num_layers=config.enc_layers, bidirectional=True,
                                 dropout=config.dropout, seed=seed())
        self.mem_size = 2 * config.enc_hidden
        self.init = Linear(self.mem_size, 2 * config.hidden, rng=rng)
        self.embed = Embedding(config.vocab_size, config.embed, rng=rng)
        self.rnn = Recurrent(config.embed, config.hidden, seed=seed())
        self.attention = AdditiveAttention(config.hidden, self.mem_size, config.attn, rng=rng)
        self.rnn2 = (Recurrent(config.hidden + self.mem_size, config.hidden, seed=seed())
                     if config.context_lstm else None)
        self.combine = Linear(config.hidden + self.mem_size, config.hidden, rng=rng)
        self.drop = Dropout(config.dropout, rng=np.random.default_rng(seed()))
        self.out = Linear(config.hidden, config.vocab_size, rng=rng)

    # -- encoder -------------------------------------------------------------------------
    def encode(self, src, lengths):
        """src (S, B) ids, lengths (B,) -> memory (B, S, 2E), initial decoder state ((1,B,H), (1,B,H))."""
        x = self.src_drop.forward(self.src_embed.forward(src))
        y, _ = self.encoder.forward(x, lengths)  # (S, B, 2E), zero at padded steps
        H = self.config.hidden
        S, B, E2 = tuple(y.shape)
        if on_device(y):  # the same steps on the device's kernels
            from suite.kernels.cuda.elementwise import permute, time_mean

            memory = permute(y.reshape(S, B, E2, 1), (1, 0, 2, 3)).reshape(B, S, E2)  # (B, S, 2E)
            z = tanh(self.init.forward(time_mean(y, lengths)))  # (B, 2H)
        else:
            memory = np.ascontiguousarray(y.transpose(1, 0, 2))  # (B, S, 2E)
            mean = y.sum(axis=0) / lengths[:, None].astype(y.dtype)  # (B, 2E)
            z = np.tanh(self.init.forward(mean))  # (B, 2H)
        state = (take_last(z, 0, H).reshape(1, B, H), take_last(z, H, 2 * H).reshape(1, B, H))
        self._enc = (tuple(y.shape), lengths, z) if self.training else None
        return memory, state

    def encode_backward(self, dmemory, dstate0):
        (S, B, _), lengths, z = self._enc
        dz = tanh_backward(np.concatenate([dstate0[0][0], dstate0[1][0]], axis=1), z)  # (B, 2H)
        if on_device(z):
            from suite.kernels.cuda.elementwise import batch_major_plus

            dy = batch_major_plus(dmemory, self.init.backward(dz), lengths)  # (S, B, 2E)
        else:
            dmean = self.init.backward(dz) / lengths[:, None].astype(z.dtype)  # (B, 2E)
            dy = dmemory.transpose(1, 0, 2) + dmean[None]  # (S, B, 2E); padded steps' outputs were 0: the kernel ignores
        dx = self.encoder.backward(dy if on_device(dy) else np.ascontiguousarray(dy, dtype=self.dtype))
        self.src_embed.backward(self.src_drop.backward(dx))

    def loss_and_grad(self, src, src_len, inputs, targets):
        """Teacher-forced cross-entropy per target token (PAD ignored); with label smoothing when training.

        The loss returned is the plain NLL (comparable between training and validation); the gradient is
        the smoothed one: softmax - ((1 - e) onehot + e / V).
        """
        memory, state = self.encode(src, src_len)
        logits, _, _ = self.decode_step(inputs, state, memory, src_len)
        T, B, V = logits.shape
        flat_t = targets.reshape(-1)
        loss, count, dlogits = softmax_cross_entropy(logits.reshape(-1, V), flat_t, ignore_index=PAD)
        if self.training:
            eps = self.config.label_smoothing
            if eps > 0 and count and on_device(dlogits):
                from suite.kernels.cuda.elementwise import smooth_labels

                smooth_labels(dlogits, flat_t, PAD, eps, count)
            elif eps > 0 and count:
                rows = np.flatnonzero(flat_t != PAD)
                dlogits[rows] -= eps / V / count
                dlogits[rows, flat_t[rows]] += eps / count
            dmemory, dstate0 = self.decoder_backward(dlogits.reshape(T, B, V))
            self.encode_backward(dmemory, dstate0)
        return loss, count


def config_dict(config: TranslateConfig):
    return {"model": MODEL_NAME} | asdict(config)


# -- subwords ------------------------------------------------------------------------------
class Subwords:
    """The sentencepiece model (held in the card's meta as base64) and the language tags."""

    def __init__(self, model_bytes):
        import sentencepiece as spm

        self.model_bytes = bytes(model_bytes)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_bytes)
        self.size = self.sp.get_piece_size()
        from suite.apps.translate.data import LANG_TAG

        self.tags = {lang: self.sp.piece_to_id(tag) for lang, tag in LANG_TAG.items()}

    def encode_source(self, text, lang):
        return [self.tags[lang]] + self.sp.encode(text) + [EOS]

    def encode(self, text):
        return self.sp.encode(text)

    def decode(self, ids):
        return self.sp.decode([int(i) for i in ids if i > UNK])

    def to_meta(self):
        return base64.b64encode(self.model_bytes).decode("ascii")

    @classmethod
    def from_meta(cls, text):
        return cls(base64.b64decode(text.encode("ascii"), validate=True))


# -- training task -------------------------------------------------------------------------
def prepare_pairs(rows, sub):
    """Masked and encoded training pairs: list of (src ids, tgt ids, lang); pairs that disagree or are too
    long are left out. Returns (pairs, Counter of why left out)."""
    from collections import Counter

    from suite.apps.translate.placeholders import mask, mask_target

    out, skipped = [], Counter()
    for r in rows:
        m = mask(r["src"])
        if m.copy:
            skipped["nothing to translate"] += 1
            continue
        t = mask_target(m, r["tgt"])
        if t is None:
            skipped["placeholders disagree"] += 1
            continue
        s_ids, t_ids = sub.encode_source(m.text, r["lang"]), sub.encode(t)
        if len(s_ids) > MAX_TOKENS or len(t_ids) + 1 > MAX_TOKENS or not t_ids:
            skipped[f"over {MAX_TOKENS} subwords"] += 1
            continue
        out.append((np.array(s_ids, np.int64), np.array(t_ids, np.int64), r["lang"]))
    return out, skipped


def make_batch(pairs):
    """(src (S, B), src_len (B,), inputs (T, B) = BOS + target, targets (T, B) = target + EOS), PAD-padded."""
    from suite.batching import pad_time_major

    src, src_len = pad_time_major([p[0] for p in pairs], pad_value=PAD, dtype=np.int64)
    inputs, _ = pad_time_major([np.concatenate([[BOS], p[1]]) for p in pairs], pad_value=PAD, dtype=np.int64)
    targets, _ = pad_time_major([np.concatenate([p[1], [EOS]]) for p in pairs], pad_value=PAD, dtype=np.int64)
    return src, src_len, inputs, targets


class TranslateTask:
    """Trainer task: batches of pairs of similar length (drawn at random, sorted within a pool of 32 batches);
    validation NLL per target subword and greedy chrF on the first 200 validation pairs."""

    def __init__(self, train_pairs, valid_pairs, sub, valid_rows, batch_size=64):
        self.train, self.valid, self.sub = train_pairs, valid_pairs[:EVAL_LIMIT], sub
        self.valid_rows = valid_rows
        self.batch_size = min(batch_size, len(train_pairs))
        self._queue = []

    def train_batch(self, rng):
        if not self._queue:
            pool = rng.choice(len(self.train), size=min(32 * self.batch_size, len(self.train)), replace=False)
            pool = sorted(pool, key=lambda i: len(self.train[i][0]) + rng.random())
            batches = [pool[i:i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
            self._queue = [batches[i] for i in rng.permutation(len(batches))]
        return make_batch([self.train[i] for i in self._queue.pop()])

    def loss_and_grad(self, model, batch):
        return model.loss_and_grad(*batch)

    def evaluate(self, model):
        total, count = 0.0, 0
        order = sorted(range(len(self.valid)), key=lambda i: len(self.valid[i][0]))
        for start in range(0, len(order), 128):
            loss, n = model.loss_and_grad(*make_batch([self.valid[i] for i in order[start:start + 128]]))
            total += loss * n
            count += n
        out = {"loss": total / max(count, 1)}
        if self.valid_rows:
            rows = self.valid_rows[:200]
            reader = model
            if model.device != "cpu":  # decoding runs on the host: a host copy of the weights of this moment
                reader = TranslateModel(model.config)
                reader.load_state_dict(model.state_dict())
            hyps = Translator(reader, self.sub, beam=1).translate([r["src"] for r in rows], [r["lang"] for r in rows])
            out["chrf"] = chrf([h["text"] for h in hyps], [r["tgt"] for r in rows])
        return out


def chrf(hyps, refs):
    import sacrebleu

    return round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2)


# -- decoding ------------------------------------------------------------------------------
def beam_search_batch(model, src, src_len, beam=5, max_len=None, length_penalty=0.6, nbest=1):
    """Beam search over B source sentences at once (suite.beam.attention_beam_search): per sentence, up to
    ``nbest`` (tokens, log_prob, score, attention (len + 1, S)) best first; max_len 2 S + 10 (at most 200)."""
    from suite.beam import attention_beam_search

    memory, state = model.encode(src, src_len)
    if max_len is None:
        max_len = np.minimum(2 * src_len + 10, 200)
    return attention_beam_search(model, memory, state, src_len, beam=beam, max_len=max_len,
                                 length_penalty=length_penalty, nbest=nbest, bos=BOS, eos=EOS)


def recall(line, hit, threshold):
    """The memory's answer for ``line``, given its nearest entry ``hit`` = (similarity, stored translation) or None:
    the stored translation, with the line's own indentation and trailing blanks, when it is at least ``threshold``
    similar (None: never) and holds exactly the line's placeholders; else None (the network translates)."""
    from suite.apps.translate.placeholders import preserved

    if hit is None or threshold is None or hit[0] < threshold or not preserved(line, hit[1]):
        return None
    lead, trail = line[:len(line) - len(line.lstrip(" \t"))], line[len(line.rstrip(" \t")):]
    return lead + hit[1].strip(" \t") + trail


class Translator:
    """Messages -> translations: mask, encode, beam search in batches, decode, unmask.

    A message of several lines is translated line by line (as the corpus pairs were made). With a ``memory``
    (apps/translate/memory.py) and a ``threshold``, a line whose nearest stored source is at least that
    similar, and whose stored translation holds exactly its placeholders, takes the stored translation.
    """

    def __init__(self, model, sub, beam=5, length_penalty=0.6, batch=32, nbest=1, memory=None, threshold=None):
        self.model, self.sub = model, sub
        self.beam, self.length_penalty, self.batch, self.nbest = beam, length_penalty, batch, nbest
        self.memory, self.threshold = memory, threshold

    def _recall(self, line, lang):
        """(similarity, stored translation) for a line the memory knows well enough, else None."""
        if self.memory is None or self.threshold is None:
            return None
        hit = self.memory.nearest(line, lang, self.threshold)
        text = recall(line, hit and (hit[0], hit[2]), self.threshold)
        return None if text is None else (hit[0], text)

    def translate(self, texts, langs, progress=None):
        """[{"source", "text", "log_prob", "nbest", "memory", "attention", "pieces"}] per text; "memory" is the
        lowest similarity of the lines the memory gave (None: the model translated every line)."""
        from suite.apps.translate.placeholders import mask, unmask
        from suite.batching import pad_time_major

        if isinstance(langs, str):
            langs = [langs] * len(texts)
        segments = []  # (text index, masked, lang, recalled or None)
        for i, (text, lang) in enumerate(zip(texts, langs)):
            for line in text.split("\n"):
                m = mask(line)
                segments.append((i, m, lang, None if m.copy else self._recall(line, lang)))
        work = [j for j, (_, m, _, hit) in enumerate(segments) if not m.copy and hit is None]
        encoded = {j: np.array(self.sub.encode_source(segments[j][1].text, segments[j][2])[:4 * MAX_TOKENS])
                   for j in work}
        work.sort(key=lambda j: len(encoded[j]))
        results = {}
        for start in range(0, len(work), self.batch):
            chunk = work[start:start + self.batch]
            src, src_len = pad_time_major([encoded[j] for j in chunk], pad_value=PAD, dtype=np.int64)
            hyps = beam_search_batch(self.model, src, src_len, beam=self.beam,
                                     length_penalty=self.length_penalty, nbest=self.nbest)
            for j, h in zip(chunk, hyps):
                results[j] = h
            if progress is not None:
                progress(min(start + self.batch, len(work)), len(work))
        parts = [[] for _ in texts]
        for j, (i, m, lang, hit) in enumerate(segments):
            if m.copy:
                parts[i].append({"text": m.source, "log_prob": 0.0, "nbest": [m.source]})
            elif hit is not None:
                parts[i].append({"text": hit[1], "log_prob": 0.0, "nbest": [hit[1]], "memory": hit[0]})
            else:
                nbest = [unmask(self.sub.decode(toks), m, lang) for toks, _, _, _ in results[j]]
                toks, logp, _, att = results[j][0]
                parts[i].append({"text": nbest[0], "log_prob": logp, "nbest": nbest, "attention": att,
                                 "pieces": [self.sub.sp.id_to_piece(int(x)) for x in toks]})
        out = []
        for text, ps in zip(texts, parts):
            one = ps[0] if len(ps) == 1 else {}
            recalled = [p["memory"] for p in ps if "memory" in p]
            out.append({"source": text, "text": "\n".join(p["text"] for p in ps),
                        "log_prob": round(float(sum(p["log_prob"] for p in ps)), 4),
                        "nbest": one.get("nbest") or ["\n".join(p["text"] for p in ps)],
                        "memory": round(min(recalled), 4) if recalled else None,
                        "attention": one.get("attention"), "pieces": one.get("pieces")})
        return out


# -- loading -------------------------------------------------------------------------------
def build_model(config, meta):
    return TranslateModel(TranslateConfig(**config))


def load_model(model_dir):
    """(TranslateModel, Subwords, card) from a model folder; one-line CheckpointError otherwise."""
    from suite.nn.checkpoint import CheckpointError
    from suite.shipped import load_app_model

    model, card = load_app_model(model_dir, "translate", MODEL_NAME, build_model)
    meta = card["meta"]
    try:
        sub = Subwords.from_meta(meta["subwords"])
    except Exception as exc:  # noqa: BLE001 - sentencepiece raises RuntimeError/OSError/ValueError on a bad proto
        raise CheckpointError(f"{model_dir}: meta.subwords is not a sentencepiece model "
                              f"({' '.join(str(exc).split())[:80]})") from None
    if sub.size != model.config.vocab_size:
        raise CheckpointError(f"{model_dir}: the subword model has {sub.size} pieces, the network expects "
                              f"{model.config.vocab_size}")
    langs = meta.get("languages")
    if not isinstance(langs, list) or not langs or not all(x in sub.tags and sub.tags[x] > UNK for x in langs):
        raise CheckpointError(f"{model_dir}: meta.languages must list the languages the model translates into "
                              f"(of {', '.join(sub.tags)})")
    dec = meta.get("decoding") if meta.get("decoding") is not None else {}
    lp, threshold = dec.get("length_penalty", 0.6) if isinstance(dec, dict) else None, \
        dec.get("memory_threshold") if isinstance(dec, dict) else None
    if not isinstance(dec, dict) or not _number(lp, 0.0, 5.0) or not (threshold is None or _number(threshold, 0, 1)):
        raise CheckpointError(f"{model_dir}: meta.decoding must be {{\"length_penalty\": 0..5, \"memory_threshold\": "
                              "0..1 or null}; use the model folder as it was exported")
    model.memory = None
    if meta.get("memory") is not None:
        from suite.apps.translate.memory import Memory

        try:
            model.memory = Memory.from_meta(meta["memory"])
        except Exception as exc:  # noqa: BLE001 - base64, zlib and JSON each raise their own
            raise CheckpointError(f"{model_dir}: meta.memory is not a translation memory "
                                  f"({' '.join(str(exc).split())[:80]}); use the model folder as it was exported") \
                from None
    return model, sub, card


def _number(x, lo, hi):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and lo <= x <= hi


def translator_for(model, sub, card, beam=5, nbest=1, memory=True):
    """The Translator a model folder's card describes: its length penalty, and its memory at its threshold."""
    dec = card["meta"].get("decoding") or {}
    return Translator(model, sub, beam=max(beam, nbest), nbest=nbest,
                      length_penalty=float(dec.get("length_penalty", 0.6)),
                      memory=getattr(model, "memory", None) if memory else None,
                      threshold=dec.get("memory_threshold"))


# -- evaluation ----------------------------------------------------------------------------
def scores(hyps, refs):
    """sacrebleu chrF and BLEU with their signatures."""
    import sacrebleu

    bleu, chrf_ = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    return {"chrf": round(chrf_.corpus_score(hyps, [refs]).score, 2),
            "bleu": round(bleu.corpus_score(hyps, [refs]).score, 2),
            "signatures": {"chrf": str(chrf_.get_signature()), "bleu": str(bleu.get_signature())}}


LENGTH_BINS = ((1, 3), (4, 8), (9, 16), (17, 1000))  # source words


def run_systems(model, sub, rows, memory, lang, beam=5, length_penalty=0.6, progress=None):
    """Translate ``rows`` ({src, tgt}) by the model alone, and look each source up in ``memory``: (model
    hypotheses, memory hits (similarity, target) with None for no entry, model seconds)."""
    import time

    srcs = [r["src"] for r in rows]
    t0 = time.perf_counter()
    hyps = [h["text"] for h in Translator(model, sub, beam=beam, length_penalty=length_penalty)
            .translate(srcs, lang, progress=progress)]
    seconds = time.perf_counter() - t0
    hits = []
    for s in srcs:
        hit = memory.nearest(s, lang)
        hits.append(None if hit is None else (hit[0], hit[2]))
    return hyps, hits, seconds


def combine(srcs, hyps, hits, threshold):
    """What Translator gives with the memory at ``threshold``: the stored translation where the nearest source
    is at least that similar and keeps the placeholders, else the model's (threshold None: the model's)."""
    recalled = (recall(s, hit, threshold) for s, hit in zip(srcs, hits))
    return [h if r is None else r for h, r in zip(hyps, recalled)]


THRESHOLDS = (None, 1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5)


def choose_threshold(runs):
    """The memory threshold (of THRESHOLDS) with the best mean chrF over languages; runs: [(rows, hyps, hits)].
    Returns (threshold, {str(threshold): mean chrF})."""
    table = {}
    for t in THRESHOLDS:
        values = [chrf(combine([r["src"] for r in rows], hyps, hits, t), [r["tgt"] for r in rows])
                  for rows, hyps, hits in runs]
        table[str(t)] = round(sum(values) / len(values), 2)
    best = max(THRESHOLDS, key=lambda t: (table[str(t)], t is None))
    return best, table


def evaluate_rows(model, sub, rows, memory, lang, beam=5, length_penalty=0.6, threshold=None, progress=None):
    """The model alone, the model with the memory at ``threshold``, the memory alone (always its nearest
    entry: the baseline) and copying the source, on ``rows`` ({src, tgt, domain}) of one language: chrF/BLEU
    overall, by domain and by source length; placeholder preservation; sentences a second (the model)."""
    from collections import defaultdict

    from suite.apps.translate.placeholders import placeholders_of, preserved

    srcs, refs = [r["src"] for r in rows], [r["tgt"] for r in rows]
    hyps, hits, seconds = run_systems(model, sub, rows, memory, lang, beam, length_penalty, progress)
    tm = [hit[1] if hit is not None else s for s, hit in zip(srcs, hits)]
    systems = {"model": hyps, "model_with_memory": combine(srcs, hyps, hits, threshold), "memory": tm, "copy": srcs}
    report = {"pairs": len(rows), "memory_threshold": threshold,
              "from_memory": sum(a != b for a, b in zip(systems["model_with_memory"], hyps))}
    for name, h in systems.items():
        report[name] = scores(h, refs)
    report["model"]["sentences_per_second"] = round(len(rows) / seconds, 2)
    groups = defaultdict(list)
    for i, r in enumerate(rows):
        groups["domain", r.get("domain", "-")].append(i)
        n = len(r["src"].split())
        groups["length", next(f"{a}-{b}" if b < 1000 else f"{a}+" for a, b in LENGTH_BINS if a <= n <= b)].append(i)
    for (kind, key), idx in sorted(groups.items()):
        report.setdefault(f"by_{kind}", {})[key] = {
            "pairs": len(idx), **{name: {k: v for k, v in scores([h[i] for i in idx], [refs[i] for i in idx]).items()
                                         if k != "signatures"} for name, h in systems.items()}}
    with_ph = [i for i, s in enumerate(srcs) if placeholders_of(s)]
    report["placeholders"] = {"messages": len(with_ph), **{
        name: round(sum(preserved(srcs[i], h[i]) for i in with_ph) / max(len(with_ph), 1), 4)
        for name, h in systems.items() if name != "copy"}}
    report["examples"] = [{"src": srcs[i], "ref": refs[i], "model": hyps[i], "memory": tm[i]}
                          for i in range(0, len(rows), max(1, len(rows) // 8))][:8]
    return report


def describe_model(config):
    return (f"subwords ({config.vocab_size}, joint en/de/fr) -> {config.enc_layers}-layer BiLSTM encoder "
            f"({config.enc_hidden} a direction) -> additive attention -> LSTM decoder ({config.hidden}, context LSTM), "
            "beam search with length penalty")


def export_model(checkpoint, out, data_dir, command=None, export_command=None, beam=5, progress_for=None,
                 limit=None, memory_rows=None):
    """Publish a checkpoint to ``out`` with its card and its translation memory.

    The memory is the training split of ``data_dir`` (or ``memory_rows``: a user's own training pairs); its
    threshold is chosen on the validation split, then the model alone, the model with the memory, the memory
    alone and the copy baseline are scored on the test split (whole domains training never saw), per
    language. Without data (data_dir None) the model ships without metrics, and with the memory at exact
    matches only.
    """
    from pathlib import Path

    from suite.apps.translate.data import load_split
    from suite.apps.translate.memory import Memory
    from suite.card import make_card, reproduce_chain, training_record
    from suite.shipped import publish_model_with_meta

    model, sub, card = load_model(checkpoint)
    meta = dict(card["meta"])
    dec = dict(meta.get("decoding") or {})
    lp = float(dec.get("length_penalty", 0.6))
    langs = meta["languages"]
    have_data = data_dir is not None and (Path(data_dir) / "test.jsonl").exists()
    if have_data:
        memory_rows = load_split(data_dir, "train")
    memory = Memory.from_rows([r for r in memory_rows or [] if r["lang"] in langs])
    metrics, threshold = {}, 1.0
    if have_data:
        valid, test = load_split(data_dir, "valid"), load_split(data_dir, "test")
        runs = []
        for lang in langs:
            rows = [r for r in valid if r["lang"] == lang][:limit]
            if rows:
                hyps, hits, _ = run_systems(model, sub, rows, memory, lang, beam, lp,
                                            progress_for(f"validation {lang}") if progress_for else None)
                runs.append((rows, hyps, hits))
        threshold, table = choose_threshold(runs)
        metrics["valid_memory_threshold_chrf"] = table
        metrics["test"] = {}
        for lang in langs:
            rows = [r for r in test if r["lang"] == lang][:limit]
            if rows:
                metrics["test"][lang] = evaluate_rows(
                    model, sub, rows, memory, lang, beam=beam, length_penalty=lp, threshold=threshold,
                    progress=progress_for(f"test {lang}") if progress_for else None)
    dec |= {"beam": beam, "memory_threshold": threshold}
    meta |= {"decoding": dec, "memory": memory.to_meta(), "memory_pairs": len(memory)}
    data = dict(meta.get("data") or {})
    report = data.pop("report", None) or {}
    data["report"] = {k: report.get(k) for k in ("counts", "catalogs", "dropped_pairs", "skipped_catalogs",
                                                  "eval_only", "valid_domains", "test_domains", "vocab_size",
                                                  "command") if k in report}
    training = training_record(checkpoint, meta, command, export_command)
    result = make_card(
        "translate", describe_model(model.config), card["config"], data, training,
        {"how": f"beam {beam}; test = every pair of the held-out domains "
                f"{', '.join(data['report'].get('test_domains') or [])} (software training never read); "
                "model = the network alone; model_with_memory = what `suite translate` does: the stored "
                "translation where the nearest training source is at least memory_threshold similar (chosen on "
                "validation) and keeps the placeholders, else the network; memory = the baseline, always the "
                "nearest training pair's target (edit distance); copy = the source itself; sentences_per_second: "
                "the network on one core over the whole test split", **metrics},
        reproduce_chain(data["report"].get("command"), training["command"], export_command),
        decoding=dec)
    return publish_model_with_meta(model, card["config"], meta, out, result)
