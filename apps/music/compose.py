"""Composing and harmonising with the chorale LSTM; reading MIDI melodies and primers.

Composition samples in the normalised key (C major / A minor, the keys the
model was trained in, augmentation aside) and the result is transposed to the
requested key when written. The compiled loop (TokenLM.generate ->
kernels.sampling.lstm_generate) samples every token; tokens that must take a
given value (the soprano when harmonising, a primer melody) are *forced* in
that loop: emitted and fed back as if sampled, so the other voices are
conditioned on them. A model on the GPU runs the same loops one token at a time
through its layers there (suite.lm.step_loop), with each step's draw (and the
rules' mask) made as the compiled loop makes it, so a seed gives the same piece.

Under the rules (the default): a phrase plan (apps/music/rules.py) fixes the
bars, the fermatas and the end, forced into the stream; kernels/chorale.py masks
every voice token that would break a rule (and the cadence chords the plan asks
for); a few candidates are drawn and the one with the fewest rule faults, then
the likeliest, is kept; a rewrite pass resamples one voice over two beats where
a rule had to be relaxed (``_RuledSampler``).

Free (rules=False, the previous sampler). The model decides where a chorale ends (it emits <end> after a
cadence). To get about --bars bars, a few candidates are sampled with seeds
derived from --seed; each is cut at its own <end>, or else at its last phrase
end (the end of a fermata) on a tonic chord within the bars. Of the candidates
whose ending lands within a bar (or an eighth of the piece) of the target, the
one the model itself finds likeliest wins (sample and rerank); failing that,
the nearest; only when no candidate ends on a tonic chord is the piece cut at
exactly --bars bars. Harmonising reranks its candidates the same way.

Structure. Any token sequence decodes (tokens.decode_tokens repairs it); before
that, a held-note token naming the wrong pitch is read as a hold of the voice's
sounding pitch (``repair_holds``). Repairs are counted and reported.
"""
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from suite.apps.music.data import (
    BAR, END, FERMATA, REST, STEP, STEPS_PER_QUARTER, Chorale, decode_tokens, key_name, key_token, parse_key,
)
from suite.device import host

NORMALISED_TONIC = {"major": 0, "minor": 9}
MAX_CANDIDATES = 6  # draws per composition at most; a fixed number (never a time limit) keeps --seed exact
# Krumhansl & Kessler (1982) key profiles, tonic first: the standard key finder.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
SOPRANO_CENTRE = 69  # MIDI A4: about the corpus soprano's median once normalised


class MusicError(ValueError):
    """A bad input (file, key, length) with a one-line message for the user."""


# -- reading MIDI -------------------------------------------------------------------------

@dataclass
class Score:
    """Voices read from a MIDI file, on the 16th-note grid.

    pitch, onset : (T, V) with V = 1 (a melody) or 4 (S, A, T, B)
    key : (tonic, mode) from the file's key signature or the key finder
    """

    pitch: np.ndarray
    onset: np.ndarray
    steps_per_bar: int
    key: tuple
    key_source: str
    path: str = ""

    @property
    def n_steps(self):
        return len(self.pitch)

    @property
    def voices(self):
        return self.pitch.shape[1]


MAX_BARS = 256  # the longest piece read or written (compose --bars goes up to it too)


def read_midi(path, mode=None):
    """A Score from a MIDI file: one voice (a melody; the top note where notes overlap) or four.

    Notes are grouped by track (by channel in a one-track file), each group is
    one voice, voices are ordered by mean pitch, high to low. Times round to the
    nearest 16th. mode: "major"/"minor" to override the key finder's mode.
    Raises MusicError with one line for a missing, unreadable or unsuitable file.
    """
    import mido

    path = Path(path)
    if not path.exists():
        raise MusicError(f"{path}: no such file")
    if path.is_dir():
        raise MusicError(f"{path}: is a folder; give a MIDI file")
    try:
        midi = mido.MidiFile(str(path))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MusicError(f"{path}: not a readable MIDI file ({detail})") from None
    if midi.type == 2:
        raise MusicError(f"{path}: MIDI type 2 (independent sequences) is not supported")
    if not 0 < midi.ticks_per_beat < 0x8000:  # 0 is no timing at all; the top bit set means SMPTE frames
        kind = "SMPTE (frames per second)" if midi.ticks_per_beat >= 0x8000 else "0 ticks per beat"
        raise MusicError(f"{path}: timing is {kind}; give a MIDI file timed in ticks per beat (any notation "
                         "program or DAW exports one)")
    ticks_per_step = midi.ticks_per_beat / STEPS_PER_QUARTER
    max_ticks = MAX_BARS * 16 * ticks_per_step * 4  # bounded before any array is made (room for 4/2 and 12/8 bars)
    groups, signature, key_sig = {}, None, None
    for index, track in enumerate(midi.tracks):
        now, sounding = 0, {}
        for msg in track:
            now += msg.time
            if now > max_ticks:
                raise MusicError(f"{path}: longer than {MAX_BARS} bars (a note at tick {now:,}); give a shorter "
                                 "piece or cut it first")
            if msg.type == "time_signature" and signature is None:
                signature = (msg.numerator, msg.denominator)
            elif msg.type == "key_signature" and key_sig is None:
                key_sig = msg.key
            elif msg.type in ("note_on", "note_off"):
                voice = (index, msg.channel) if len(midi.tracks) > 1 else (0, msg.channel)
                if msg.type == "note_on" and msg.velocity > 0:
                    sounding[(voice, msg.note)] = now
                elif (voice, msg.note) in sounding:
                    start = sounding.pop((voice, msg.note))
                    groups.setdefault(voice, []).append((start, now, msg.note))
        for (voice, note), start in sounding.items():  # never released: ends with the track
            groups.setdefault(voice, []).append((start, now, note))
    groups = {v: notes for v, notes in groups.items() if notes}
    if not groups:
        raise MusicError(f"{path}: holds no notes")
    if len(groups) not in (1, 4):
        raise MusicError(f"{path}: has {len(groups)} voices (tracks or channels with notes); give a melody "
                         "(one voice) or a four-part chorale (four)")
    steps_per_bar = 16
    if signature is not None:
        numerator, denominator = signature
        steps_per_bar = max(1, round(numerator * 4 * STEPS_PER_QUARTER / denominator))
        if not 2 <= steps_per_bar <= 64:
            raise MusicError(f"{path}: time signature {numerator}/{denominator} is outside what chorales use "
                             "(a bar of 1/8 to 4 whole notes); fix the file's time signature")
    n_steps = max(max(int(round(end / ticks_per_step)) for _, end, _ in notes) for notes in groups.values())
    n_steps = max(n_steps, 1)
    if n_steps > MAX_BARS * steps_per_bar:
        raise MusicError(f"{path}: {n_steps / steps_per_bar:.0f} bars, longer than the {MAX_BARS} this suite reads; "
                         "give a shorter piece or cut it first")
    voices = []
    for notes in groups.values():
        pitch = np.full(n_steps, REST, np.int16)  # (T,)
        onset = np.zeros(n_steps, bool)
        for start, end, note in sorted(notes):
            a = int(round(start / ticks_per_step))
            b = max(int(round(end / ticks_per_step)), a + 1)
            if a >= n_steps:
                continue
            span = slice(a, b)
            higher = pitch[span] > note  # the top line wins where notes overlap (a melody from chords)
            pitch[span] = np.where(higher, pitch[span], note)
            onset[a] = onset[a] or not higher[0]
        voices.append((pitch, onset))
    voices.sort(key=lambda v: -v[0][v[0] != REST].mean())
    pitch = np.stack([p for p, _ in voices], axis=1)  # (T, V)
    onset = np.stack([o for _, o in voices], axis=1)  # (T, V)
    onset[0] = True
    if key_sig is not None and mode is None:
        minor = key_sig.endswith("m")
        tonic, found_mode = parse_key(key_sig[:-1] if minor else key_sig, "minor" if minor else "major")
        key, source = (tonic, found_mode), "key signature"
    else:
        key, source = find_key(pitch, mode), "key finder"
    return Score(pitch, onset, steps_per_bar, key, source, str(path))


def find_key(pitch, mode=None):
    """(tonic, mode) best correlated with the Krumhansl-Kessler profiles, weighting pitches by duration."""
    sounding = pitch[pitch != REST].astype(np.int64)
    histogram = np.bincount(sounding % 12, minlength=12).astype(float)
    best, best_r = (0, mode or "major"), -np.inf
    for m, profile in (("major", KK_MAJOR), ("minor", KK_MINOR)):
        if mode is not None and m != mode:
            continue
        for tonic in range(12):
            r = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1] if histogram.std() > 0 else 0.0
            if r > best_r + 1e-9:
                best, best_r = (tonic, m), r
    return best


# -- keys ---------------------------------------------------------------------------------

def shift_to(tonic_from, tonic_to):
    """The shift in [-6, 5] semitones that takes one tonic to another (stays near the register)."""
    return (int(tonic_to) - int(tonic_from) + 6) % 12 - 6


def resolve_key(key=None, mode=None, default_tonic=None):
    """(tonic, mode) from --key and --mode (either may be None). MusicError on a key that does not exist."""
    if mode is not None and mode not in ("major", "minor"):
        raise MusicError(f"unknown mode {mode!r}: use major or minor")
    if key is None:
        mode = mode or "major"
        return (NORMALISED_TONIC[mode] if default_tonic is None else default_tonic), mode
    try:
        return parse_key(key, mode)
    except ValueError as exc:
        raise MusicError(str(exc)) from None


# -- tokens -------------------------------------------------------------------------------

def step_structure(n_steps, steps_per_bar, pickup=0, fermata=None):
    """Per step the delimiter token and whether a fermata mark follows."""
    downbeat = (np.arange(n_steps) - pickup) % steps_per_bar == 0
    fermata = np.zeros(n_steps, bool) if fermata is None else fermata
    return [(BAR if downbeat[t] else STEP, bool(fermata[t])) for t in range(n_steps)]


def voice_token(pitch, onset):
    return "R" if pitch == REST else f"{int(pitch)}{'' if onset else '~'}"


def forced_tokens(vocab, pitch, onset, steps_per_bar, fermata=None):
    """(forced ids, slot voice) for a grid of 1 or 4 voices.

    forced: the token ids, -1 where a voice is unknown (sampled); slot voice:
    the voice (0-3) a position holds, -1 for a delimiter or fermata.
    """
    n, voices = pitch.shape
    forced, slot = [], []
    for t, (delim, has_fermata) in enumerate(step_structure(n, steps_per_bar, 0, fermata)):
        forced.append(vocab.index[delim])
        slot.append(-1)
        if has_fermata:
            forced.append(vocab.fermata_id)
            slot.append(-1)
        for v in range(4):
            forced.append(vocab.index[voice_token(pitch[t, v], onset[t, v])] if v < voices else -1)
            slot.append(v)
    return np.array(forced, np.int64), np.array(slot, np.int64)


class _SlotRepair:
    """Keeps sampled voice slots voice tokens: a special token sampled where a voice belongs
    (rare for a trained model) becomes that voice's previous pitch, held (or a rest)."""

    def __init__(self, vocab, slot):
        self.vocab, self.slot = vocab, slot
        self.previous = [REST] * 4
        self.count = 0

    def __call__(self, pos, tok):
        if pos >= len(self.slot) or self.slot[pos] < 0:
            return tok
        v = int(self.slot[pos])
        if tok < self.vocab.rest_id:
            self.count += 1
            tok = int(self.vocab.voice_id(self.previous[v], held=self.previous[v] != REST))
        token = self.vocab.tokens[tok]
        self.previous[v] = REST if token == "R" else int(token.rstrip("~"))
        return tok


# -- composing ----------------------------------------------------------------------------

@dataclass
class Composition:
    """A composed or harmonised chorale. grid is in the normalised key; write it with key_transpose."""

    grid: Chorale
    key: tuple               # (tonic, mode) the files are written in
    key_transpose: int       # semitones from the grid to the files
    repairs: dict
    tokens: int              # tokens of the chosen candidate, primer included
    seconds: float           # sampling time, all candidates
    candidates: int = 1
    ending: str = "end"      # "end" (the model's <end>), "phrase" (cut after a fermata), "cut" (cut at --bars)
    primer_steps: int = 0
    info: dict = field(default_factory=dict)

    @property
    def key_name(self):
        return key_name(*self.key)

    @property
    def bars(self):
        return self.grid.n_steps / self.grid.steps_per_bar


def _cuts(vocab, ids, first, target_steps):
    """Ways to end a candidate at or after position ``first``: [(steps, kind, end position)].

    kind "end": the model's <end>; "phrase": just after a fermata run (a phrase
    end); "cut": exactly target_steps steps. ids[:position] + <end> is the piece.
    """
    tokens = vocab.decode(ids)
    out, step, fermata_before, fermata_now = [], 0, False, False
    for i, tok in enumerate(tokens):
        if tok == END:
            if step <= target_steps and i >= first:
                out.append((step, "end", i))
            return out
        if tok in (BAR, STEP):
            fermata_before, fermata_now = fermata_now, False
            if fermata_before and i >= first and step <= target_steps:
                out.append((step, "phrase", i))
            step += 1
            if step > target_steps:
                out.append((target_steps, "cut", i))
                return out
        elif tok == FERMATA:
            fermata_now = True
            if fermata_before and out and out[-1][1] == "phrase" and out[-1][2] == i - 1:
                out.pop()  # the fermata run goes on: not its end yet
    return out


def _draw(model, vocab, prime, forced, slot, budget, temperature, seed, target_steps, min_steps=0,
          chunk=96, retries=4):
    """Sample one candidate: ids (prime included) up to <end> or one step past target_steps.

    An <end> before min_steps grid steps is resampled (up to ``retries`` times,
    then accepted): the chunk is run again from its start state with the ids
    before the <end> forced, so the compiled loop redraws only that position.
    Returns (ids, voice-slot repairs).
    """
    from suite.kernels.sampling import lstm_generate, new_rng

    rng = new_rng(seed)
    if model.device == "cuda":  # the same loop through the layers on the device (suite.lm.device_generate)
        from suite.lm import device_generate

        state = None  # zeros

        def run(feed, n, want):
            return device_generate(model, feed, n, state, temperature, 0, rng, want)
    else:
        w = model.generation_weights()
        h = np.zeros((model.config.layers, model.config.hidden), np.float32)  # (L, H)
        state = (h, np.zeros_like(h))

        def run(feed, n, want):
            out, h_next, c_next, _ = lstm_generate(feed, n, w["table0"], w["W_ih"], w["W_hh"], w["b"], w["W_out"],
                                                   w["b_out"], *state, temperature=temperature, rng=rng,
                                                   cifg=w["cifg"], forced=want)
            return out, (h_next, c_next)
    forced_all = np.full(budget, -1, np.int64)  # (budget,)
    if forced is not None:
        forced_all[:min(len(forced), budget)] = forced[:budget]
    n_forced = 0 if forced is None else len(forced)
    ids = list(prime)
    steps = sum(1 for tok in prime if tok in (vocab.bar_id, vocab.step_id))
    repair = _SlotRepair(vocab, slot if slot is not None else np.zeros(0, np.int64))
    feed, pos = np.asarray(prime, np.int64), 0
    while pos < budget:
        n = min(chunk, budget - pos)
        want = forced_all[pos:pos + n].copy()
        for attempt in range(retries + 1):
            out, state_next = run(feed, n, want)
            early = _early_end(vocab, out, pos, n_forced, steps, min_steps)
            if early is None or attempt == retries:
                break
            want[:early] = out[:early]  # keep what came before; redraw from the <end> on
        for tok in out.tolist():
            tok = repair(pos, tok)
            in_forced = pos < n_forced
            pos += 1
            ids.append(tok)
            delimiter = tok in (vocab.bar_id, vocab.step_id)
            steps += delimiter
            if in_forced:
                continue  # the primer's structure is fixed: no ending inside it
            if tok == vocab.end_id or (delimiter and steps > target_steps):
                return np.array(ids, np.int64), repair.count
        feed, state = out[-1:], state_next
    return np.array(ids, np.int64), repair.count


def _early_end(vocab, out, pos, n_forced, steps, min_steps):
    """Index in out of an <end> that comes before min_steps grid steps (after the primer), or None."""
    for j, tok in enumerate(out.tolist()):
        if tok in (vocab.bar_id, vocab.step_id):
            steps += 1
        elif tok == vocab.end_id and pos + j >= n_forced:
            return j if steps < min_steps else None
    return None


def repair_holds(tokens):
    """Tokens with every "held" voice token made to hold what that voice sounded the step before.

    The model decides hold-or-strike well but, early in training especially,
    sometimes names a neighbouring pitch on a hold ("66~" after 65). The
    decoder would strike that pitch as a new 16th note; reading the token as
    the hold it was meant to be keeps the rhythm. A hold after a rest (or at
    the start) becomes a struck note. Returns (tokens, number changed).
    """
    out, changed = [], 0
    previous, current, v = [None] * 4, [None] * 4, 0
    for tok in tokens:
        if tok in (BAR, STEP):
            previous, current, v = current, list(current), 0
        elif tok is not None and (tok == "R" or tok.rstrip("~").isdigit()):
            if tok.endswith("~") and v < 4:
                pitch = int(tok[:-1])
                if previous[v] is None or previous[v] == REST:
                    tok, changed = str(pitch), changed + 1
                elif previous[v] != pitch:
                    tok, changed = f"{previous[v]}~", changed + 1
            if v < 4:
                current[v] = REST if tok == "R" else int(tok.rstrip("~"))
            v += 1
        out.append(tok)
    return out, changed


def mean_log_likelihood(model, sequences, first):
    """Mean log-probability (nats per token) the model gives each sequence's tokens from ``first`` on.

    One batched forward pass over all sequences (padded; padding is not scored).
    """
    T = max(len(s) for s in sequences)
    batch = np.zeros((T, len(sequences)), np.int64)  # (T, N)
    for n, seq in enumerate(sequences):
        batch[:len(seq), n] = seq
    logits, _ = model.forward(batch[:-1])  # (T-1, N, V)
    logits = host(logits).astype(np.float64)  # a model on the device: its logits copied back
    logits -= logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, batch[1:, :, None], axis=-1)[..., 0]  # (T-1, N)
    out = []
    for n, seq in enumerate(sequences):
        span = picked[max(first - 1, 0):len(seq) - 1, n]
        out.append(float(span.mean()) if span.size else 0.0)
    return np.array(out)


def compose(model, vocab, bars=16, key=None, mode=None, temperature=1.0, seed=0, primer=None,
            max_candidates=MAX_CANDIDATES, rules=True, rewrite=0):
    """A new chorale of ``bars`` bars (see the module docstring).

    rules: sample under the voice-leading rules and a phrase plan (``_compose_ruled``); False: the free sampler,
    which chooses its own length and structure (kept to measure what the rules change). rewrite: windows the
    rewrite pass resamples at random, besides those where a rule had to be relaxed (_RuledSampler.rewrite).

    primer: a Score (1 voice: a melody whose A, T, B are sampled under the
    forced soprano; 4 voices: a chorale's beginning), continued, appearing once.
    The primer's mode is the piece's (--mode, when given, picks the primer's
    tonic for that mode); key defaults to the primer's, else C major / A minor.
    """
    if bars < 1:
        raise MusicError(f"--bars must be at least 1, got {bars}")
    if primer is not None:
        if mode is not None and mode != primer.key[1]:
            primer = Score(primer.pitch, primer.onset, primer.steps_per_bar, find_key(primer.pitch, mode),
                           "key finder", primer.path)
        tonic, mode = resolve_key(key, primer.key[1], default_tonic=primer.key[0])
    else:
        tonic, mode = resolve_key(key, mode)
    home = NORMALISED_TONIC[mode]
    if rules:
        return _compose_ruled(model, vocab, bars, (tonic, mode), temperature, seed, primer, max_candidates, rewrite)
    prefix = [vocab.start_id, vocab.index[key_token(home, mode)]]
    forced = slot = None
    steps_per_bar = primer.steps_per_bar if primer is not None else 16
    target_steps = bars * steps_per_bar
    n_primer = 0
    if primer is not None:
        n_primer = primer.n_steps
        if n_primer > target_steps:
            raise MusicError(f"the primer is {n_primer / steps_per_bar:g} bars ({n_primer} sixteenths), longer "
                             f"than the {bars} bars asked for; ask for more --bars or use a shorter primer")
        pitch, _ = _normalised_voices(primer, vocab, home)
        primed, slot = forced_tokens(vocab, pitch, primer.onset, steps_per_bar)
        if primer.voices == 4:
            prefix += primed.tolist()
            slot = None
        else:
            forced = primed
    first = len(prefix) + (0 if forced is None else len(forced))  # no ending inside the primer
    # A step is 5 or 6 tokens; the draw stops one step past the target.
    budget = max((target_steps - n_primer + 2) * 6 + (0 if forced is None else len(forced)), 8)
    t0 = time.perf_counter()
    tolerance = max(steps_per_bar, target_steps // 8)
    endings, cuts = [], []  # per draw: its latest tonic ending, its hard cut: (steps, kind, ids, slot repairs)
    for i in range(max_candidates):
        ids, fixed = _draw(model, vocab, prefix, forced, slot, budget, temperature, seed * 1000 + i, target_steps,
                           min_steps=int(0.75 * target_steps))
        options = sorted(_cuts(vocab, ids, first, target_steps), key=lambda o: (o[1] == "cut", -o[0], -o[2]))
        for steps, kind, end in options:
            if kind == "cut":
                cuts.append((steps, kind, ids[:end], fixed))
                break
            grid, _ = decode_tokens(ids[:end], vocab, default_key=(home, mode))
            if _final_tonic(grid, home, mode):
                endings.append((steps, kind, ids[:end], fixed))
                break
    drawn = max_candidates
    # A tonic ending within a bar (or an eighth) of the target; else one at least 3/4 of the way;
    # else a hard cut at the target. Among those, the draw the model finds likeliest (mean
    # log-probability of its sampled tokens): sample and rerank, a cheap step towards the mode.
    good = ([p for p in endings if p[0] >= target_steps - tolerance]
            or [p for p in endings if p[0] >= 0.75 * target_steps] or cuts or endings)
    best = None
    if good:
        best = good[int(np.argmax(mean_log_likelihood(model, [p[2] for p in good], first)))]
        slot_repairs = best[3]
    seconds = time.perf_counter() - t0
    if best is None:  # no draw reached the primer's end (cannot happen with forcing; kept for safety)
        best, slot_repairs = (0, "end", ids, 0), 0
    _, kind, ids, _ = best
    tokens, holds = repair_holds(vocab.decode(ids) + [END])
    grid, repairs = decode_tokens(tokens, default_key=(home, mode), steps_per_bar=steps_per_bar)
    if holds:
        repairs["hold_pitch"] = holds
    if slot_repairs:
        repairs["voice_slot"] = slot_repairs
    grid = replace(grid, tonic=home, mode=mode)
    return Composition(grid, (tonic, mode), shift_to(home, tonic), repairs, len(ids) - 2, seconds, drawn, kind,
                       n_primer, {"target_steps": target_steps})


def _structure(vocab, plan, voices=None, onsets=None):
    """(forced, voice, step) per token of a planned chorale: delimiters, fermata marks and <end> forced; the voice
    slots sampled (-1) except where ``voices`` (n, k) gives the first k voices' pitches (with ``onsets``) for its n
    steps: a melody, or a primer's beginning."""
    forced, voice, step = [], [], []
    for t in range(plan.n_steps):
        downbeat = (t - plan.pickup) % plan.steps_per_bar == 0
        marks = [vocab.bar_id if downbeat else vocab.step_id] + ([vocab.fermata_id] if plan.fermata[t] else [])
        for mark in marks:
            forced.append(mark)
            voice.append(-1)
            step.append(t)
        for v in range(4):
            given = voices is not None and t < len(voices) and v < voices.shape[1]
            forced.append(vocab.index[voice_token(voices[t, v], onsets[t, v])] if given else -1)
            voice.append(v)
            step.append(t)
    forced.append(vocab.end_id)
    voice.append(-1)
    step.append(plan.n_steps - 1)
    return np.array(forced, np.int64), np.array(voice, np.int64), np.array(step, np.int64)


REWRITE_WIDTH = 8       # steps of one voice resampled at a time by the rewrite pass (two beats)
REWRITE_PROPOSALS = 4   # resamplings of a window, the one with the fewest faults and then the likeliest kept


class _RuledSampler:
    """Sampling under the rules (kernels/chorale.py) for one model, key and plan, and the rewrite pass."""

    def __init__(self, model, vocab, home, mode, plan, forced, voice, step, temperature):
        from suite.apps.music.rules import rule_array, token_tables

        self.model, self.vocab, self.home, self.mode, self.plan = model, vocab, home, mode, plan
        self.forced, self.voice, self.step, self.temperature = forced, voice, step, temperature
        self.w = None if model.device == "cuda" else model.generation_weights()  # device: _draw_on_device
        self.h = np.zeros((model.config.layers, model.config.hidden), np.float32)
        self.prefix = np.array([vocab.start_id, vocab.index[key_token(home, mode)]], np.int64)
        self.token_pitch, self.token_onset = token_tables(vocab)
        self.rules = rule_array()

    def draw(self, forced, seed):
        """(ids with the prefix, ranks dropped per position after it) of one draw with ``forced`` fixed."""
        from suite.kernels.chorale import generate_ruled

        if self.w is None:
            return self._draw_on_device(forced, seed)
        w, plan = self.w, self.plan
        ids, dropped = generate_ruled(self.prefix, w["table0"], w["W_ih"], w["W_hh"], w["b"], w["W_out"], w["b_out"],
                                      self.h, self.h, forced, self.voice, self.step, plan.bass_pc, plan.upper_pcs,
                                      plan.fermata, self.home, self.mode == "minor", self.rules, self.token_pitch,
                                      self.token_onset, temperature=self.temperature, rng=seed, cifg=w["cifg"])
        return np.concatenate([self.prefix, ids]), dropped

    def _draw_on_device(self, forced, seed):
        """draw() for a model on the device: the network steps there (suite.lm.step_loop); each voice slot's
        logits come back and are masked and drawn on the host by the compiled loop's own step
        (kernels.chorale.ruled_token), from the same rng, so a seed gives the host's ids for the same logits."""
        from suite.kernels.chorale import ruled_token, voice_state
        from suite.kernels.sampling import _check_temperature_top_k, new_rng
        from suite.lm import step_loop

        plan, V = self.plan, self.model.config.vocab_size
        temperature, top_k = _check_temperature_top_k(self.temperature, 0)
        forced = np.ascontiguousarray(forced, np.int64)
        rng = new_rng(seed)
        dtype = self.model.dtype
        scratch = np.empty(V, dtype), np.empty(V, np.float64)  # masked logits, probabilities
        voices = voice_state()
        dropped = np.zeros(len(forced), np.int64)
        unused = np.zeros(V, dtype)  # a forced position reads no logits
        chords = (np.ascontiguousarray(plan.bass_pc, np.int64), np.ascontiguousarray(plan.upper_pcs, np.int64),
                  np.ascontiguousarray(plan.fermata, np.bool_))

        def choose(j, logits):
            row = host(logits())[0] if forced[j] < 0 else unused  # (V,)
            return ruled_token(j, row, forced, self.voice, self.step, *chords, self.home, self.mode == "minor",
                               self.rules, self.token_pitch, self.token_onset, temperature, top_k, rng, *scratch,
                               *voices, dropped)

        ids, _ = step_loop(self.model, self.prefix, len(forced), None, choose)
        return np.concatenate([self.prefix, ids]), dropped

    def decode(self, ids):
        grid, repairs = decode_tokens(self.vocab.decode(ids), default_key=(self.home, self.mode),
                                      steps_per_bar=self.plan.steps_per_bar)
        return replace(grid, tonic=self.home, mode=self.mode), dict(repairs)

    def best(self, draws):
        """Index of the draw with the fewest rule faults (stats.rule_faults), then the likeliest to the model."""
        from suite.apps.music.stats import rule_faults

        faults = [rule_faults(self.decode(ids)[0]) for ids, _ in draws]
        likelihood = mean_log_likelihood(self.model, [ids for ids, _ in draws], len(self.prefix)) \
            if len(draws) > 1 else [0.0]
        return min(range(len(draws)), key=lambda i: (faults[i], -likelihood[i])), faults

    def rewrite(self, ids, dropped, seed, extra=0):
        """The rewrite pass (pseudo-Gibbs, DeepBach's manner, with the forward model rescoring): one voice over
        REWRITE_WIDTH steps resampled under the rules with everything else fixed, REWRITE_PROPOSALS times, and the
        best of those and the current piece kept (fewest faults, then likeliest). Windows: around every slot where
        a rule had to be relaxed (a corner the left-to-right pass painted itself into), then ``extra`` at random.
        Returns (ids, dropped, {"windows", "accepted"})."""
        rng = np.random.default_rng([seed, 23])
        sampled = self.forced < 0
        corners = [(int(self.voice[j]), int(self.step[j])) for j in np.flatnonzero(dropped > 0)]
        free_slots = np.flatnonzero(sampled)
        picks = [(int(self.voice[j]), int(self.step[j])) for j in rng.choice(free_slots, min(extra, len(free_slots)),
                                                                                replace=False)] if extra else []
        accepted = 0
        for k, (v, centre) in enumerate(corners + picks):
            lo = max(centre - REWRITE_WIDTH // 2, 0)
            window = sampled & (self.voice == v) & (self.step >= lo) & (self.step < lo + REWRITE_WIDTH)
            forced = np.where(window, -1, ids[len(self.prefix):])
            draws = [(ids, dropped)] + [self.draw(forced, seed * 1000 + 500 + k * REWRITE_PROPOSALS + i)
                                        for i in range(REWRITE_PROPOSALS)]
            best, _ = self.best(draws)
            if best:
                ids, new = draws[best]
                dropped = np.where(window, new, dropped)
                accepted += 1
        return ids, dropped, {"windows": len(corners) + len(picks), "accepted": accepted}


def _draws_ruled(model, vocab, home, mode, plan, forced, voice, step, temperature, seed, candidates, rewrite=0):
    """``candidates`` chorales sampled under the rules, the best kept (_RuledSampler.best), then the rewrite pass
    (``rewrite`` random windows besides the corners). Returns (grid, repairs, info, tokens, seconds)."""
    t0 = time.perf_counter()
    sampler = _RuledSampler(model, vocab, home, mode, plan, forced, voice, step, temperature)
    draws = [sampler.draw(forced, seed * 1000 + i) for i in range(candidates)]
    best, faults = sampler.best(draws)
    dropped_first = draws[best][1]
    ids, dropped, rewrites = sampler.rewrite(*draws[best], seed, rewrite)
    grid, repairs = sampler.decode(ids)
    from suite.apps.music.stats import rule_faults

    info = {"relaxed": np.bincount(dropped_first[forced < 0], minlength=4).tolist(),
            "faults_before_rewrite": int(faults[best]), "faults": rule_faults(grid), "rewrite": rewrites,
            "cadences_planned": [k for _, k in plan.cadences]}
    return grid, repairs, info, len(ids) - 2, time.perf_counter() - t0


def _compose_ruled(model, vocab, bars, key, temperature, seed, primer, candidates, rewrite=0):
    """compose() under the rules: a phrase plan (rules.plan) fixes bars, fermatas, cadences and the end, so the
    piece has exactly ``bars`` bars; only the voices are sampled."""
    from suite.apps.music.rules import plan as phrase_plan

    tonic, mode = key
    home = NORMALISED_TONIC[mode]
    steps_per_bar = primer.steps_per_bar if primer is not None else 16
    voices = onsets = soprano = None
    n_primer = 0
    if primer is not None:
        n_primer = primer.n_steps
        if n_primer > bars * steps_per_bar:
            raise MusicError(f"the primer is {n_primer / steps_per_bar:g} bars ({n_primer} sixteenths), longer "
                             f"than the {bars} bars asked for; ask for more --bars or use a shorter primer")
        voices, _ = _normalised_voices(primer, vocab, home)
        onsets = primer.onset
        soprano = np.where(voices[:, 0] != REST, (voices[:, 0] - home) % 12, -1)
    shape = phrase_plan(bars, mode, np.random.default_rng([seed, 17]), steps_per_bar=steps_per_bar,
                        pickup=0 if primer is not None else None, soprano_pcs=soprano)
    forced, voice, step = _structure(vocab, shape, voices, onsets)
    grid, repairs, info, tokens, seconds = _draws_ruled(model, vocab, home, mode, shape, forced, voice, step,
                                                        temperature, seed, candidates, rewrite)
    return Composition(grid, (tonic, mode), shift_to(home, tonic), repairs, tokens, seconds, candidates, "plan",
                       n_primer, {"target_steps": shape.n_steps, **info})


def _final_tonic(grid, tonic, mode):
    from suite.apps.music.stats import _final_tonic as final_tonic

    return bool(final_tonic(grid, tonic, mode))


def _normalised_voices(score, vocab, home):
    """(pitches moved to the normalised key, the shift): a melody also moves to the soprano's octave."""
    shift = shift_to(score.key[0], home)
    pitch = score.pitch.astype(np.int64)
    sounding = pitch != REST
    if score.voices == 1 and sounding.any():
        centre = np.median(pitch[sounding]) + shift
        shift += 12 * int(round((SOPRANO_CENTRE - centre) / 12))
    moved = np.where(sounding, pitch + shift, REST)
    if sounding.any():
        low, high = moved[sounding].min(), moved[sounding].max()
        if low < vocab.pitch_min or high > vocab.pitch_max:
            raise MusicError(f"{score.path}: notes span MIDI {low - shift}..{high - shift}, too wide for the "
                             "model's range")
    return moved, shift


def harmonize(model, vocab, melody, temperature=1.0, seed=0, candidates=4, rules=True, rewrite=0):
    """Alto, tenor and bass under a soprano line (a one-voice Score); the soprano is kept exactly.

    The soprano tokens (and every delimiter) are forced in the compiled sampling
    loop; only the A, T, B slots are sampled, ``candidates`` times, and the
    draw the model finds likeliest is kept. The final note carries a fermata,
    as a chorale's last chord does. Under the rules (the default) A, T and B keep
    them (kernels/chorale.py), the best of the draws has the fewest faults, and
    the melody's long notes and its end become phrase ends with the cadence the
    tune allows there (rules.melody_plan). The result is written in the melody's
    own key and octave (key_transpose undoes the normalisation).
    """
    if melody.voices != 1:
        melody = Score(melody.pitch[:, :1], melody.onset[:, :1], melody.steps_per_bar, melody.key,
                       melody.key_source, melody.path)
    tonic, mode = melody.key
    home = NORMALISED_TONIC[mode]
    pitch, shift = _normalised_voices(melody, vocab, home)
    if rules:
        from suite.apps.music.rules import melody_plan

        soprano = np.where(pitch[:, 0] != REST, (pitch[:, 0] - home) % 12, -1)
        shape = melody_plan(melody.steps_per_bar, mode, melody.onset[:, 0], soprano)
        forced, voice, step = _structure(vocab, shape, pitch[:, :1], melody.onset[:, :1])
        grid, repairs, info, tokens, seconds = _draws_ruled(model, vocab, home, mode, shape, forced, voice, step,
                                                            temperature, seed, candidates, rewrite)
        return Composition(grid, (tonic, mode), -shift, repairs, tokens, seconds, candidates, "end", melody.n_steps,
                           {"forced": int((forced >= 0).sum()), "sampled": int((forced < 0).sum()), **info})
    fermata = np.zeros(melody.n_steps, bool)
    fermata[np.flatnonzero(melody.onset[:, 0])[-1]:] = True
    forced, slot = forced_tokens(vocab, pitch, melody.onset, melody.steps_per_bar, fermata)
    forced = np.append(forced, vocab.end_id)
    slot = np.append(slot, -1)
    prefix = [vocab.start_id, vocab.index[key_token(home, mode)]]
    t0 = time.perf_counter()
    draws = [_draw(model, vocab, prefix, forced, slot, len(forced), temperature, seed * 1000 + i, melody.n_steps + 1)
             for i in range(candidates)]
    if len(draws) > 1:
        same_length = [d for d in draws if len(d[0]) == len(prefix) + len(forced)] or draws
        ids, fixed = same_length[int(np.argmax(mean_log_likelihood(model, [d[0] for d in same_length],
                                                                   len(prefix))))]
    else:
        ids, fixed = draws[0]
    seconds = time.perf_counter() - t0
    tokens, holds = repair_holds(vocab.decode(ids))
    grid, repairs = decode_tokens(tokens, default_key=(home, mode), steps_per_bar=melody.steps_per_bar)
    if holds:
        repairs["hold_pitch"] = holds
    if fixed:
        repairs["voice_slot"] = fixed
    grid = replace(grid, tonic=home, mode=mode)
    return Composition(grid, (tonic, mode), -shift, repairs, len(ids) - 2, seconds, candidates, "end", melody.n_steps,
                       {"forced": int((forced >= 0).sum()), "sampled": int((forced < 0).sum())})
