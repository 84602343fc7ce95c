"""Inference on the device (numba's CUDA simulator, set by tests/conftest.py): text generation and scoring,
music's samplers, and the beam searches of translate and caption give the host's ids, scores and hypotheses.

Each test runs one tiny model (random weights) on the host and a copy of it moved to the device, and compares
the two; the simulator runs a GPU thread as a Python thread, so every run is a few tokens long.
"""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from suite import device as dev
from suite import device_choice as choice
from tests.kernels.cuda.gpu import cuda_or_skip

pytestmark = pytest.mark.usefixtures("host_gemm_in_simulator")  # see tests/conftest.py

kc = cuda_or_skip()  # new device arrays start as NaN on the simulator: reads before writes fail here


def _on_device(model):
    """The model's weights really are device arrays (so the run compared below ran there)."""
    assert model.device == "cuda" and all(dev.on_device(p.value) for p in model.parameters())
    return model


def _pair(make):
    """(host model, device model) with the same weights, both in eval mode."""
    return make().eval(), _on_device(make().eval().to_device("cuda"))


def _token_lm(vocab_size, layers=2, sharpen=8.0):
    """A tiny TokenLM whose output layer is scaled up, so its draws are far from uniform and differ step to
    step (the comparison then sees whether each step's logits agree, not just the rng)."""
    from suite.lm import LMConfig, TokenLM

    model = TokenLM(LMConfig(vocab_size=vocab_size, embed=3, hidden=4, layers=layers, dropout=0.0, seed=1))
    model.head.W.value *= sharpen
    return model


# -- text ----------------------------------------------------------------------------------


def test_text_generation_draws_the_hosts_ids_on_the_device_across_chunks_and_forced_ids():
    cpu, gpu = _pair(lambda: _token_lm(7))
    forced = [-1, 3, -1, -1, -1, -1]  # step 1 emitted as given, without a draw
    runs = [np.concatenate(list(m.generate([1, 2, 5], 6, temperature=1.0, top_k=4, seed=3, chunk=4, forced=forced)))
            for m in (cpu, gpu)]
    np.testing.assert_array_equal(runs[1], runs[0])
    assert runs[0][1] == 3 and len(set(runs[0].tolist())) > 2  # forced kept, and the draws really vary


def test_text_scoring_gives_the_hosts_nats_on_the_device_with_the_state_carried_across_windows():
    from suite.lm import score_ids

    cpu, gpu = _pair(lambda: _token_lm(7))
    ids = np.random.default_rng(4).integers(0, 7, 15)
    want, got = (score_ids(m, ids, streams=1, window=6) for m in (cpu, gpu))  # three windows
    assert got == pytest.approx(want, rel=1e-5)
    assert want != pytest.approx(score_ids(cpu, ids[7:], streams=1), rel=1e-3)  # a different text scores otherwise


def test_text_generate_runs_with_device_cuda_on_the_cli_and_an_unwired_command_still_refuses(tmp_path):
    from suite.apps.text.data import Vocab
    from suite.cli import cli
    from suite.lm import config_dict
    from suite.nn.checkpoint import save_checkpoint

    assert choice.resolve("cuda", "text", "generate") == choice.resolve("cuda", "translate", "text") == "cuda"
    vocab = Vocab.from_text("abc de\n")
    model = _token_lm(vocab.size)
    save_checkpoint(tmp_path, model.state_dict(), config_dict(model.config),
                    meta={"app": "text", "vocab": vocab.to_json()})
    texts = []
    for device in ("cpu", "cuda"):
        res = CliRunner().invoke(cli, ["text", "generate", "--model", str(tmp_path), "--prime", "ab", "--length", "4",
                                       "--seed", "2", "--device", device, "--json"])
        assert res.exit_code == 0, res.output
        texts.append(json.loads(res.output)["text"])
    assert texts[1] == texts[0] and len(texts[0]) == 4
    res = CliRunner().invoke(cli, ["text", "compress", "x.py", "--model", str(tmp_path), "--device", "cuda"])
    assert res.exit_code == 2 and "`suite text compress` runs on the CPU only so far" in res.output


def test_text_cells_are_the_hosts_cell_states_on_the_device():
    from suite.apps.text.cells import cell_activations

    assert choice.resolve("cuda", "text", "cells") == "cuda"
    cpu, gpu = _pair(lambda: _token_lm(7))
    ids = np.random.default_rng(6).integers(0, 7, 9)
    want, got = cell_activations(cpu, ids), cell_activations(gpu, ids)
    assert len(got) == 2 and all(isinstance(a, np.ndarray) and a.shape == (9, 4) for a in got)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.abs(want[1][1:] - want[1][:-1]).max() > 1e-3  # the cells move from character to character


# -- music ---------------------------------------------------------------------------------


def test_music_samplers_draw_the_hosts_tokens_on_the_device_under_the_rules_and_free():
    from suite.apps.music import compose
    from suite.apps.music.data import Vocab
    from suite.apps.music.rules import Plan

    vocab = Vocab()
    cpu, gpu = _pair(lambda: _token_lm(vocab.size, layers=1, sharpen=20.0))
    # one grid step, a cadence under a fermata asking for a C major chord: 7 tokens, 4 voice slots
    plan = Plan(16, 0, np.array([True]), [(0, "authentic")], np.array([0]), np.array([1 << 0 | 1 << 4 | 1 << 7]))
    forced, voice, step = compose._structure(vocab, plan)
    draws = [compose._RuledSampler(m, vocab, 0, "major", plan, forced, voice, step, 1.0).draw(forced, 5)
             for m in (cpu, gpu)]
    np.testing.assert_array_equal(draws[1][0], draws[0][0])  # ids
    np.testing.assert_array_equal(draws[1][1], draws[0][1])  # rule ranks dropped per position
    assert (voice >= 0).sum() == 4 and len(set(draws[0][0][2:][voice >= 0].tolist())) > 2
    # the free sampler: chunks of 3 through the compiled loop's state hand-over
    free = [compose._draw(m, vocab, [vocab.start_id, 5], None, None, 4, 1.0, 3, 100, chunk=3) for m in (cpu, gpu)]
    np.testing.assert_array_equal(free[1][0], free[0][0])
    assert len(free[0][0]) == 6


# -- beam searches -------------------------------------------------------------------------


def _same_hypotheses(cpu_hyps, gpu_hyps):
    """Per input, the same (tokens, log_prob, score, attention) hypotheses in the same order."""
    assert len(gpu_hyps) == len(cpu_hyps)
    for want, got in zip(cpu_hyps, gpu_hyps):
        assert [h[0] for h in got] == [h[0] for h in want]
        for (_, lp, score, att), (_, lp2, score2, att2) in zip(want, got):
            assert (lp2, score2) == pytest.approx((lp, score), rel=1e-5)
            assert isinstance(att2, np.ndarray)
            np.testing.assert_allclose(att2, att, rtol=1e-5, atol=1e-7)


def test_translate_beam_search_gives_the_hosts_hypotheses_on_the_device():
    from suite.apps.translate.model import TranslateConfig, TranslateModel, beam_search_batch

    config = TranslateConfig(vocab_size=7, embed=3, enc_hidden=2, enc_layers=1, hidden=3, attn=3, dropout=0.2, seed=5)

    def make():
        model = TranslateModel(config).to(np.float64)  # float64: near-tied beams keep one order on both sides
        model.out.W.value *= 6.0
        return model

    cpu, gpu = _pair(make)
    src = np.array([[3, 4], [5, 6], [4, 0]])  # (S, B), the second source one token shorter
    src_len = np.array([3, 2])
    runs = [beam_search_batch(m, src, src_len, beam=2, max_len=np.array([3, 3]), nbest=2) for m in (cpu, gpu)]
    _same_hypotheses(*runs)
    assert len({tuple(h[0]) for hyps in runs[0] for h in hyps}) > 1


def test_caption_beam_search_and_greedy_captions_give_the_hosts_on_the_device():
    from suite.apps.caption.model import CaptionConfig, CaptionModel, Vocab, caption_image, greedy_batch

    config = CaptionConfig(vocab_size=6, input_size=8, channels=[2], embed=3, hidden=3, attn=3, dropout=0.2, seed=4)

    def make():
        model = CaptionModel(config).to(np.float64)
        model.out.W.value *= 6.0
        model.out.b.value[0] = -1e3  # never PAD
        return model

    cpu, gpu = _pair(make)
    vocab = Vocab(["red", "circle"])
    images = np.random.default_rng(11).uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    beams = [caption_image(m, vocab, images[0], beam=2, max_len=3) for m in (cpu, gpu)]
    _same_hypotheses([[(b["tokens"], b["log_prob"], b["log_prob"], b["attention"]) for b in run] for run in beams[:1]],
                     [[(b["tokens"], b["log_prob"], b["log_prob"], b["attention"]) for b in run] for run in beams[1:]])
    assert [b["caption"] for b in beams[1]] == [b["caption"] for b in beams[0]] and len(beams[0]) == 2
    # greedy (beam 1, `caption evaluate --beam 1`) in a batch: its own part is the argmax of each step's logits
    # copied back (the numbers behind them are compared above); this tiny model says "circle" every step
    greedy = [greedy_batch(m, images, max_len=3) for m in (cpu, gpu)]
    assert greedy[1] == greedy[0] == [[5, 5, 5], [5, 5, 5]]
