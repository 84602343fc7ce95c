"""--device: resolution and its errors, and suite.nn layers on the device (numba's CUDA simulator, set by
tests/conftest.py) giving the host's numbers."""
import os
import subprocess
import sys

import numpy as np
import pytest

from suite import device as dev
from suite import device_choice as choice
from suite.nn import Dropout, Embedding, Linear


def test_resolve_cpu_auto_and_unknown(monkeypatch):
    assert choice.resolve("cpu", "caption", "describe") == "cpu"
    assert choice.resolve("auto", "caption", "describe") == "cpu"  # auto picks a GPU for training only
    assert choice.resolve("auto", "text", "train") == "cpu"        # the simulator is never picked by auto
    with pytest.raises(choice.DeviceError, match="unknown device 'tpu'"):
        choice.resolve("tpu")


def test_cuda_without_a_gpu_names_what_is_missing(monkeypatch):
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0")
    monkeypatch.setattr(choice, "_driver_present", lambda: False)
    with pytest.raises(choice.DeviceError, match="needs a usable NVIDIA GPU: no NVIDIA driver found.*--device cpu"):
        choice.resolve("cuda", "text", "train")
    assert choice.resolve("auto", "text", "train") == "cpu"


def test_cuda_on_a_command_that_runs_on_the_cpu_only_says_so():
    for app in ("text", "music", "speech", "handwriting", "caption", "translate"):
        assert choice.resolve("cuda", app, "train") == "cuda"  # the simulator stands in for a GPU here
    assert choice.resolve("cuda", "handwriting", "read") == choice.resolve("cuda", "speech", "transcribe") == "cuda"
    assert choice.resolve("cuda", "caption", "describe") == choice.resolve("cuda", "translate", "evaluate") == "cuda"
    with pytest.raises(choice.DeviceError, match="`suite text compress` runs on the CPU only so far"):
        choice.resolve("cuda", "text", "compress")


def test_cli_device_cuda_without_gpu_is_one_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if os.path.exists("/proc/driver/nvidia/version"):
        pytest.skip("this machine has an NVIDIA driver")
    for args in (["text", "train", "--device", "cuda", "--out", str(tmp_path / "run")],
                 ["caption", str(tmp_path / "x.png"), "--device", "cuda"]):
        r = subprocess.run([sys.executable, "-m", "suite.cli", *args], capture_output=True, text=True, env=env,
                           timeout=120)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: --device cuda needs a usable NVIDIA GPU"), r.stderr
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()


# -- layers on the device ----------------------------------------------------------------

from tests.kernels.cuda.gpu import cuda_or_skip  # noqa: E402

pytestmark = pytest.mark.usefixtures("host_gemm_in_simulator")  # see tests/conftest.py

kc = cuda_or_skip()  # new device arrays start as NaN on the simulator: reads before writes fail here


def _same_gradients(cpu, gpu):
    """Every parameter's gradient alike on both sides, and none of them zero (a real comparison)."""
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert np.abs(p.grad).sum() > 0, name
        np.testing.assert_allclose(dev.host(q.grad), p.grad, rtol=1e-8, atol=1e-10, err_msg=name)


def _pair(make):
    """(host module, device module) with the same weights, in float64: the device sums in other orders
    (atomics, tree reductions), and float64 leaves room for tight tolerances whatever the order."""
    a, b = make().to(np.float64), make().to(np.float64)
    b.to_device("cuda")
    assert b.device == "cuda" and a.device == "cpu"
    return a, b


def test_linear_forward_backward_match_the_host():
    rng = np.random.default_rng(0)
    cpu, gpu = _pair(lambda: Linear(5, 3, seed=1))
    x = rng.standard_normal((2, 4, 5)).astype(np.float32)
    dy = rng.standard_normal((2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(dev.host(gpu.forward(x)), cpu.forward(x), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(dev.host(gpu.backward(dy)), cpu.backward(dy), rtol=1e-9, atol=1e-11)
    gpu.backward(dy), cpu.backward(dy)  # gradients accumulate on both sides
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        np.testing.assert_allclose(dev.host(q.grad), p.grad, rtol=1e-9, atol=1e-11, err_msg=name)


def test_embedding_sums_repeated_ids_on_the_device():
    cpu, gpu = _pair(lambda: Embedding(6, 3, seed=2))
    ids = np.array([[1, 4], [1, 1], [5, 0]])
    dy = np.random.default_rng(3).standard_normal((3, 2, 3)).astype(np.float32)
    np.testing.assert_allclose(dev.host(gpu.forward(ids)), cpu.forward(ids))
    gpu.backward(dev.to_device(dy))
    cpu.backward(dy)
    np.testing.assert_allclose(dev.host(gpu.W.grad), cpu.W.grad, rtol=1e-12, atol=1e-14)
    assert np.abs(cpu.W.grad[1]).sum() > 0  # id 1 three times: a real sum was compared


def test_dropout_draws_the_same_masks_on_both_sides():
    x = np.ones((4, 5), np.float32)
    a, b = Dropout(0.5, seed=7), Dropout(0.5, seed=7)
    ya, yb = a.forward(x), dev.host(b.forward(dev.to_device(x)))
    np.testing.assert_array_equal(ya, yb)
    assert 0 < (ya == 0).sum() < x.size
    np.testing.assert_array_equal(a.backward(x), dev.host(b.backward(dev.to_device(x))))


def test_state_dict_is_host_arrays_and_loads_onto_the_device():
    cpu, gpu = _pair(lambda: Linear(3, 2, seed=4))
    state = gpu.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    other = Linear(3, 2, seed=99).to_device("cuda")
    other.load_state_dict(cpu.state_dict())
    assert dev.on_device(other.W.value)
    np.testing.assert_array_equal(dev.host(other.W.value), cpu.W.value)
    other.to_device("cpu")
    assert isinstance(other.W.value, np.ndarray) and other.device == "cpu"
    with pytest.raises(ValueError, match="to_device\\('cpu'\\) first"):
        gpu.to(np.float64)


# -- whole models and the trainer on the device ------------------------------------------


def _train_tiny_lm(out, device, steps=2):
    from suite.lm import LMConfig, StreamTask, TokenLM
    from suite.train import TrainConfig, Trainer

    ids = np.random.default_rng(5).integers(0, 5, 200)
    # float64: Adam divides each gradient by its own size, so on a weight whose gradient nearly cancels, float32
    # rounding (the device sums in another order: atomics, reductions) would become a whole step's difference
    model = TokenLM(LMConfig(vocab_size=5, embed=3, hidden=4, layers=2, dropout=0.2, seed=1)).to(np.float64)
    if device == "cuda":
        model.to_device("cuda")
    task = StreamTask(ids[:188], ids[188:], seq_len=4, batch_size=3)  # 12 validation ids: the simulator is slow
    trainer = Trainer(model, task, TrainConfig(steps=steps, lr=0.05, warmup=0, eval_every=steps, seed=0), out,
                      model_config={"model": "TokenLM"}, meta={}, quiet=True)
    trainer.fit()
    return model, trainer


def test_a_language_model_trains_on_the_device_as_on_the_host_and_its_checkpoint_loads_on_the_host(tmp_path):
    from suite.lm import LMConfig, TokenLM
    from suite.nn.checkpoint import load_checkpoint

    cpu, cpu_trainer = _train_tiny_lm(tmp_path / "cpu", "cpu")
    gpu, gpu_trainer = _train_tiny_lm(tmp_path / "gpu", "cuda")
    assert gpu.device == "cuda"
    # same data, dropout masks, Adam steps and validation: the same weights and scores to rounding
    np.testing.assert_allclose(gpu_trainer.evals[-1]["loss"], cpu_trainer.evals[-1]["loss"], rtol=1e-10)
    for (name, p), (_, q) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert dev.host(q.value).dtype == np.float64
        np.testing.assert_allclose(dev.host(q.value), p.value, rtol=1e-9, atol=1e-10, err_msg=name)
    start = TokenLM(LMConfig(vocab_size=5, embed=3, hidden=4, layers=2, dropout=0.2, seed=1))
    assert any(not np.allclose(p.value, q.value) for p, q in zip(start.parameters(), cpu.parameters()))
    # the trained weights were compared, not the initial ones; and the device's checkpoint is host arrays
    state, _ = load_checkpoint(tmp_path / "gpu" / "last")
    for name, value in gpu.state_dict().items():
        assert isinstance(state[name], np.ndarray)
        np.testing.assert_array_equal(state[name], value)
    optim, _ = load_checkpoint(tmp_path / "gpu" / "last" / "optimizer")
    assert optim and all(isinstance(v, np.ndarray) for v in optim.values())


def _same_ctc_training_step(cpu, gpu, feats, lengths):
    """One CTC training step of a (host, device) pair of models: the same loss and every gradient alike."""
    from suite.ctc import ctc_loss_mean

    targets, target_lengths = np.array([[1, 2], [3, 0]]), np.array([2, 1])
    losses = []
    for model in (cpu, gpu):
        logits, steps = model.forward(feats, lengths)
        loss, dlogits = ctc_loss_mean(logits, targets, steps, target_lengths)
        model.backward(dlogits)
        losses.append(loss)
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-10)
    _same_gradients(cpu, gpu)


def test_the_speech_network_and_ctc_loss_give_the_hosts_gradients_on_the_device():
    from suite.apps.speech.model import SpeechConfig, SpeechModel
    rng = np.random.default_rng(6)
    config = SpeechConfig(feature_dim=3, vocab_size=4, stack=2, hidden=3, layers=2, proj=2, dropout=0.0, seed=2)
    cpu, gpu = _pair(lambda: SpeechModel(config))
    feats = rng.standard_normal((8, 2, 3)).astype(np.float32)
    lengths = np.array([8, 5])
    _same_ctc_training_step(cpu, gpu, feats, lengths)


def test_the_handwriting_network_conv_to_bilstm_gives_the_hosts_gradients_on_the_device():
    from suite.apps.handwriting.model import HandwritingConfig, HandwritingModel
    rng = np.random.default_rng(7)
    config = HandwritingConfig(vocab_size=4, height=8, channels=[2, 2], hidden=2, layers=1, dropout=0.0, seed=3)
    cpu, gpu = _pair(lambda: HandwritingModel(config))
    feats = rng.uniform(0, 255, (12, 2, 8)).astype(np.float32)  # (W, B, rows) ink columns
    lengths = np.array([12, 9])
    _same_ctc_training_step(cpu, gpu, feats, lengths)
    # reading (`handwriting read` on a GPU): eval mode, the inference kernels, each line's own steps on the host
    from suite.ctc_task import split_logits

    lines = [feats[:12, 0], feats[:5, 1]]
    for want, got in zip(split_logits(cpu.eval(), lines), split_logits(gpu.eval(), lines)):
        assert isinstance(got, np.ndarray) and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_permute_matches_numpy_transpose():
    from suite.kernels.cuda.elementwise import permute

    a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    for axes in ((3, 0, 1, 2), (1, 2, 3, 0), (0, 1, 2, 3), (2, 0, 3, 1)):
        np.testing.assert_array_equal(dev.host(permute(dev.to_device(a), axes)), a.transpose(axes))


def test_attention_layer_gives_the_hosts_context_and_gradients_on_the_device():
    from suite.nn import AdditiveAttention

    rng = np.random.default_rng(8)
    cpu, gpu = _pair(lambda: AdditiveAttention(3, 4, 5, seed=9))
    memory = rng.standard_normal((2, 6, 4)).astype(np.float32)
    lengths = np.array([6, 3])
    query = rng.standard_normal((3, 2, 3)).astype(np.float32)
    dcontext = rng.standard_normal((3, 2, 4)).astype(np.float32)
    outs = []
    for layer in (cpu, gpu):
        layer.set_memory(memory, lengths)
        context, alpha = layer.forward(query)
        dquery = layer.backward(dcontext)
        outs.append([dev.host(a) for a in (context, alpha, dquery, layer.dmemory)])
    for name, a, b in zip(("context", "alpha", "dquery", "dmemory"), *outs):
        np.testing.assert_allclose(b, a, rtol=1e-8, atol=1e-10, err_msg=name)
    _same_gradients(cpu, gpu)


def test_the_caption_network_cnn_attention_decoder_gives_the_hosts_loss_and_gradients_on_the_device():
    from suite.apps.caption.model import CaptionConfig, CaptionModel

    rng = np.random.default_rng(10)
    config = CaptionConfig(vocab_size=6, input_size=8, channels=[2], embed=3, hidden=3, attn=3, dropout=0.2, seed=4)
    cpu, gpu = _pair(lambda: CaptionModel(config))
    images = rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    inputs = np.array([[1, 1], [3, 4], [5, 0]])
    targets = np.array([[3, 4], [5, 2], [2, 0]])
    losses = [model.loss_and_grad(images, inputs, targets)[0] for model in (cpu, gpu)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-10)
    _same_gradients(cpu, gpu)


def test_the_translate_network_gives_the_hosts_loss_and_smoothed_gradients_on_the_device():
    from suite.apps.translate.model import TranslateConfig, TranslateModel

    config = TranslateConfig(vocab_size=7, embed=3, enc_hidden=2, enc_layers=1, hidden=3, attn=3, dropout=0.2,
                             label_smoothing=0.1, seed=5)
    cpu, gpu = _pair(lambda: TranslateModel(config))
    src = np.array([[3, 4], [5, 6], [4, 0]])  # (S, B), the second source one token shorter
    src_len = np.array([3, 2])
    inputs = np.array([[1, 1], [3, 4], [5, 0]])
    targets = np.array([[3, 4], [5, 2], [2, 0]])
    losses = [model.loss_and_grad(src, src_len, inputs, targets)[0] for model in (cpu, gpu)]
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-10)
    _same_gradients(cpu, gpu)
