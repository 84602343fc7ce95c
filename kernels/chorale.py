"""Four-part writing rules as compiled masks, and the generation loop that samples under them.

The loop is ``sampling._generate``'s (same LSTM step, same draw rule), with one
difference: before a voice slot is sampled, every token that would break a rule
given the notes already sounding is masked out and the rest renormalised.

What the rules are lives in one table, ``rules`` (int64), whose layout is fixed
here and whose values and meaning are set once in apps/music/rules.py:

    rules[0:8]    lowest and highest MIDI pitch of S, A, T, B (lo_S, hi_S, lo_A, ...)
    rules[8]      widest interval in semitones between S and A, and between A and T
    rules[9]      1: forbid parallel fifths and octaves (any two voices)
    rules[10]     1: forbid direct fifths and octaves into the outer voices (S and B move
                  the same way into a P5/P8, compound or not, the soprano by leap)
    rules[11]     widest melodic leap in semitones; rules[12] 1: forbid the tritone leap
    rules[13]     1: in minor, forbid the augmented second between the 6th and raised 7th degrees
    rules[14]     longest note in steps outside a fermata (a hold beyond it is refused)

Rules come in ranks, relaxed from the top when no token passes (a dead end):
rank 3 melodic, parallel and note-length rules, rank 2 crossing and spacing, rank 1 the
chord a cadence asks for. The range and the grammar (a hold names the pitch the
voice holds; no rests) are never relaxed. ``dropped[j]`` says how many ranks
were dropped to sample position j (0: every rule kept).

Parallels are judged as apps/music/stats.py counts them: between consecutive
steps where either voice of a pair starts a note, both move the same way and
the interval (upper minus lower, mod 12) is 7 at both or 0 at both.
"""
import numpy as np
from numba import njit

from suite.kernels.config import JIT
from suite.kernels.sampling import _sample_core, checked_generation_args, feed_token, output_logits

RULES_SIZE = 15
NO_CHORD = -1
NEG = -1e30


@njit(**JIT)
def _cls(interval):
    """The interval class the parallel rule compares: mod 12 upwards, 0 for a unison, -1 when crossed."""
    if interval > 0:
        return interval % 12
    if interval == 0:
        return 0
    return -1


@njit(**JIT)
def voice_ok(v, p, onset, prev, cur, cur_onset, bass_pc, upper_pcs, tonic, minor, rules, rank, held=0,
             fermata=False):
    """Whether voice v may take pitch p (onset: a new note; else a hold) at this step.

    held: the steps v's sounding note has lasted before this one; fermata: the step is under a fermata.

    prev (4,): the pitches sounding at the step before (-1 none); cur (4,), cur_onset (4,): this step's
    voices chosen so far (v's upper neighbours; -1 none). bass_pc / upper_pcs: the cadence chord asked
    for at this step, relative to the tonic (bass_pc NO_CHORD: none; upper_pcs a 12-bit set). Rules of
    rank above ``rank`` are not checked.
    """
    if p < rules[2 * v] or p > rules[2 * v + 1]:
        return False
    if not onset and p != prev[v]:
        return False  # a hold names the pitch the voice holds
    if rank >= 1 and bass_pc != NO_CHORD:
        pc = (p - tonic) % 12
        if v == 3:
            if pc != bass_pc:
                return False
        elif not (upper_pcs >> pc) & 1:
            return False
    if rank >= 2 and v > 0 and cur[v - 1] >= 0:
        if p > cur[v - 1]:
            return False  # crossing the voice above
        if v < 3 and cur[v - 1] - p > rules[8]:
            return False  # too wide a space below S or A
    if rank >= 3:
        if not onset and not fermata and held >= rules[14]:
            return False  # a note held too long
        if onset and prev[v] >= 0:
            leap = abs(p - prev[v])
            if leap > rules[11] or (rules[12] == 1 and leap == 6):
                return False
            if rules[13] == 1 and minor and leap == 3:
                a = (prev[v] - tonic) % 12
                b = (p - tonic) % 12
                if (a == 8 and b == 11) or (a == 11 and b == 8):
                    return False
        for u in range(v):
            if prev[u] < 0 or prev[v] < 0 or cur[u] < 0 or not (onset or cur_onset[u]):
                continue
            mu = cur[u] - prev[u]
            mv = p - prev[v]
            if mu == 0 or mv == 0 or (mu > 0) != (mv > 0):
                continue
            k1 = _cls(cur[u] - p)
            if k1 != 0 and k1 != 7:
                continue
            if rules[9] == 1 and _cls(prev[u] - prev[v]) == k1:
                return False  # parallel fifths or octaves
            if rules[10] == 1 and u == 0 and v == 3 and abs(mu) > 2:
                return False  # direct fifth or octave into the outer voices, soprano leaping
    return True


@njit(**JIT)
def _mask(logits, masked, v, prev, cur, cur_onset, bass_pc, upper_pcs, tonic, minor, rules, token_pitch,
          token_onset, held, fermata):
    """masked = logits where voice v may take the token, NEG elsewhere, at the highest rank that lets
    some token through; returns that rank (3: every rule kept)."""
    V = logits.shape[0]
    for rank in range(3, -1, -1):
        any_ok = False
        for i in range(V):
            p = token_pitch[i]
            if p >= 0 and voice_ok(v, p, token_onset[i] == 1, prev, cur, cur_onset, bass_pc, upper_pcs, tonic, minor,
                                   rules, rank, held, fermata):
                masked[i] = logits[i]
                any_ok = True
            else:
                masked[i] = NEG
        if any_ok:
            return rank
    return -1  # nothing in range: cannot happen with a vocabulary that spans the ranges


@njit(**JIT)
def ruled_token(j, logits, forced, voice, step, bass_pc, upper_pcs, fermata, tonic, minor, rules, token_pitch,
                token_onset, temperature, top_k, state, masked, probs, prev, cur, cur_onset, prev_len, cur_len,
                dropped):
    """Position j's id: forced[j], or drawn from logits (V,) (read only then) under the rules; then the
    voices' bookkeeping (prev, cur, cur_onset (4,), prev_len, cur_len (4,), updated in place) moves on.

    One step of ``_generate_ruled`` after its LSTM step, so a loop that computes logits elsewhere (a model on
    the GPU, apps/music/compose.py) makes the same choices; masked (V,) and probs (V,) float64 are scratch.
    """
    v = voice[j]
    if v == 0:  # a new step begins with its soprano
        prev[:] = cur
        prev_len[:] = cur_len
        cur[:] = -1
        cur_onset[:] = False
    if forced[j] >= 0:
        tok = forced[j]
    elif v >= 0:
        s = step[j]
        rank = _mask(logits, masked, v, prev, cur, cur_onset, bass_pc[s], upper_pcs[s], tonic, minor, rules,
                     token_pitch, token_onset, prev_len[v], fermata[s])
        dropped[j] = 3 - max(rank, 0)
        tok = _sample_core(masked, temperature, top_k, state, probs)
    else:
        tok = _sample_core(logits, temperature, top_k, state, probs)
    if v >= 0:
        cur[v] = token_pitch[tok] if token_pitch[tok] >= 0 else -1
        cur_onset[v] = token_onset[tok] == 1
        cur_len[v] = 1 if cur_onset[v] else prev_len[v] + 1
    return tok


def voice_state():
    """Fresh (prev, cur, cur_onset, prev_len, cur_len) for ``ruled_token``: no voice sounding yet."""
    return (np.full(4, -1, dtype=np.int64), np.full(4, -1, dtype=np.int64), np.zeros(4, dtype=np.bool_),
            np.zeros(4, dtype=np.int64), np.zeros(4, dtype=np.int64))


@njit(**JIT)
def _generate_ruled(prime, n_steps, table0, W_ih, W_hh, b, W_out, b_out, h, c, temperature, top_k, state, cifg,
                    forced, voice, step, bass_pc, upper_pcs, fermata, tonic, minor, rules, token_pitch, token_onset, ids,
                    dropped):
    L = h.shape[0]
    V = W_out.shape[1]
    z = np.empty(table0.shape[1], dtype=table0.dtype)
    logits = np.empty(V, dtype=table0.dtype)
    masked = np.empty(V, dtype=table0.dtype)
    probs = np.empty(V, dtype=np.float64)
    peep = np.zeros((3, h.shape[1]), dtype=table0.dtype)
    c_new = np.empty(h.shape[1], dtype=table0.dtype)
    prev = np.full(4, -1, dtype=np.int64)
    cur = np.full(4, -1, dtype=np.int64)
    cur_onset = np.zeros(4, dtype=np.bool_)
    prev_len = np.zeros(4, dtype=np.int64)  # steps each voice's note has sounded, up to the step before
    cur_len = np.zeros(4, dtype=np.int64)
    P = prime.shape[0]
    for t in range(P - 1 + n_steps):
        tok = prime[t] if t < P else ids[t - P]
        feed_token(tok, table0, W_ih, W_hh, b, h, c, cifg, z, c_new, peep)
        if t < P - 1:
            continue
        j = t - (P - 1)
        if forced[j] < 0:
            output_logits(h[L - 1], W_out, b_out, logits)
        ids[j] = ruled_token(j, logits, forced, voice, step, bass_pc, upper_pcs, fermata, tonic, minor, rules,
                             token_pitch, token_onset, temperature, top_k, state, masked, probs, prev, cur, cur_onset,
                             prev_len, cur_len, dropped)


def generate_ruled(prime, table0, W_ih, W_hh, b, W_out, b_out, h0, c0, forced, voice, step, bass_pc, upper_pcs,
                   fermata, tonic, minor, rules, token_pitch, token_onset, temperature=1.0, top_k=0, rng=None,
                   cifg=False):
    """Sample a chorale's voice slots under the rules; every other position is forced.

    forced, voice, step (n,): per position after prime, the id to emit (-1: sample), the voice (0-3) the
    position holds (-1 for a delimiter, fermata or end), and its grid step (index into bass_pc, upper_pcs:
    the cadence chord asked for, see ``voice_ok``; and fermata: whether the step is under one). token_pitch (V,): a voice token's MIDI pitch (-1 a
    rest, -2 not a voice token); token_onset (V,): 1 for a new note or rest, 0 for a hold. The other
    arguments are ``sampling.lstm_generate``'s.

    Returns (ids (n,), dropped (n,) int64: the rule ranks dropped to sample each position, 0..3, see the module
    docstring; 0 where nothing was sampled).
    """
    forced = np.ascontiguousarray(forced, dtype=np.int64)
    n = len(forced)
    voice = np.ascontiguousarray(voice, dtype=np.int64)
    step = np.ascontiguousarray(step, dtype=np.int64)
    bass_pc = np.ascontiguousarray(bass_pc, dtype=np.int64)
    upper_pcs = np.ascontiguousarray(upper_pcs, dtype=np.int64)
    fermata = np.ascontiguousarray(fermata, dtype=np.bool_)
    rules = np.ascontiguousarray(rules, dtype=np.int64)
    token_pitch = np.ascontiguousarray(token_pitch, dtype=np.int64)
    token_onset = np.ascontiguousarray(token_onset, dtype=np.int64)
    if voice.shape != (n,) or step.shape != (n,):
        raise ValueError(f"forced, voice and step must have one length, got {n}, {voice.shape}, {step.shape}")
    if rules.shape != (RULES_SIZE,):
        raise ValueError(f"rules has shape {rules.shape}, expected ({RULES_SIZE},)")
    if n and (voice.max() > 3 or voice.min() < -1):
        raise ValueError("voice must hold -1 (not a voice) or 0..3")
    if n and (step[voice >= 0].min(initial=0) < 0 or step.max(initial=0) >= len(bass_pc)
              or len(upper_pcs) != len(bass_pc) or len(fermata) != len(bass_pc)):
        raise ValueError("step must index bass_pc, upper_pcs and fermata (one entry per grid step)")
    args = checked_generation_args(prime, n, table0, W_ih, W_hh, b, W_out, b_out, h0, c0, temperature, top_k, rng,
                                   cifg, forced)
    V = args[2].shape[0]
    if token_pitch.shape != (V,) or token_onset.shape != (V,):
        raise ValueError(f"token_pitch and token_onset need one entry per token ({V})")
    ids = np.empty(n, dtype=np.int64)
    dropped = np.zeros(n, dtype=np.int64)
    _generate_ruled(*args, voice, step, bass_pc, upper_pcs, fermata, int(tonic), bool(minor), rules, token_pitch,
                    token_onset, ids, dropped)
    return ids, dropped
