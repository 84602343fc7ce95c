"""One trainer for every app: Adam, schedule, clipping, early stopping, checkpoints.

An app supplies a *task* with three methods:

    task.train_batch(rng)            -> batch     (rng: np.random.Generator for this step)
    task.loss_and_grad(model, batch) -> (loss, n) forward + backward in training mode
    task.evaluate(model)             -> dict      held-out metrics; must hold "loss" (lower is better)

The batch for step s is drawn from a generator seeded with (seed, s), so a run
resumed from a checkpoint sees exactly the batches an uninterrupted run would.

Layout of ``out_dir``:
    last/      model + optimizer + trainer state, rewritten every checkpoint_every steps
    best/      the model with the best validation loss so far (what apps ship)
    metrics.jsonl, curve.png
    .training.pid  while fit() runs: its process id (training_pid), so no other command clears the folder under it
"""
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from suite.device import host, kernels, on_device, zeros_like
from suite.fileio import replace_dir, write_json
from suite.nn.checkpoint import load_checkpoint, save_checkpoint
from suite.nn.layers import Dropout
from suite.progress import Progress


RUN_LOCK = ".training.pid"


def training_pid(out_dir):
    """The id of another live process training into ``out_dir`` (from its RUN_LOCK file), else None."""
    try:
        pid = int((Path(out_dir) / RUN_LOCK).read_text().strip())
    except (OSError, ValueError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return None  # left by a run that was killed outright
    except PermissionError:
        return pid  # alive, someone else's
    return pid


class ResumeError(ValueError):
    """A run that cannot be resumed: its checkpoint is damaged or was made with other settings."""


def recover_checkpoints(out_dir):
    """Repair what a run killed in the middle of a checkpoint swap left behind.

    replace_dir keeps the previous checkpoint as last.old until the new one is in
    place: with no last/, last.old is the intact checkpoint and becomes last/
    again. Half-written last.tmpN/ and best.tmpN/ folders are removed.
    """
    import shutil

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    for name in ("last", "best"):
        old = out_dir / f"{name}.old"
        if old.is_dir() and not (out_dir / name).exists() and (old / "config.json").exists():
            old.rename(out_dir / name)
        for tmp in out_dir.glob(f"{name}.tmp*"):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class TrainConfig:
    steps: int = 2000           # optimizer steps; early stopping may end sooner
    lr: float = 2e-3            # Adam; char-rnn's 2e-3 suits small LSTMs
    min_lr_ratio: float = 0.1   # cosine decay ends at lr * min_lr_ratio
    warmup: int = 100           # linear warm-up: Adam's first moments are noisy
    clip: float = 1.0           # global gradient-norm clip: LSTMs occasionally explode
    weight_decay: float = 0.0   # decoupled (AdamW)
    eval_every: int = 250
    checkpoint_every: int = 250
    patience: int = 0           # evaluations without improvement before stopping; 0 = never
    log_every: int = 10
    seed: int = 0

    def lr_at(self, step):
        """Learning rate for 0-based ``step``: linear warm-up, then cosine decay."""
        if self.warmup and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        span = max(self.steps - self.warmup, 1)
        progress = min((step - self.warmup) / span, 1.0)
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


class _StopFlag:
    """First Ctrl-C (or SIGTERM) asks the loop to stop after the current step; a second one aborts."""

    def __init__(self):
        self.set = False
        self._old = {}

    def _handler(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread: no handlers, Ctrl-C behaves as usual
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    def __init__(self, model, task, config, out_dir, model_config, meta=None, quiet=False,
                 stop_when=None, on_eval=None):
        """stop_when(metrics) -> bool ends training early (e.g. a task solved);
        on_eval(record) is called with every validation record (for CLI output)."""
        self.model = model
        self.task = task
        self.config = config
        self.out_dir = Path(out_dir)
        self.model_config = model_config
        self.meta = dict(meta or {})
        self.quiet = quiet
        self.stop_when = stop_when
        self.on_eval = on_eval
        self.params = dict(model.named_parameters())
        self.m = {name: zeros_like(p.value) for name, p in self.params.items()}  # where the parameters live
        self.v = {name: zeros_like(p.value) for name, p in self.params.items()}
        self.step = 0
        self.best = {"loss": float("inf"), "step": None}
        self.bad_evals = 0
        self.evals = []

    # -- checkpoints ---------------------------------------------------------------
    def _trainer_state(self):
        return {"step": self.step, "best": self.best, "bad_evals": self.bad_evals,
                "evals": self.evals, "train_config": asdict(self.config)}

    def _save_dir(self, name, write):
        """write(tmp) fills a new folder that then replaces out_dir/name whole; on any error it is removed."""
        import shutil

        tmp = self.out_dir / f"{name}.tmp{int(time.time() * 1e6)}"
        tmp.mkdir(parents=True)
        try:
            write(tmp)
            replace_dir(tmp, self.out_dir / name)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk leaves no half checkpoint behind
            raise

    def save_last(self):
        def write(tmp):
            save_checkpoint(tmp, self.model.state_dict(), self.model_config, meta=self.meta)
            optim_state = ({f"m.{k}": host(a) for k, a in self.m.items()}
                           | {f"v.{k}": host(a) for k, a in self.v.items()})  # host arrays from either device
            save_checkpoint(tmp / "optimizer", optim_state, {"kind": "adam"})
            write_json(tmp / "trainer.json", self._trainer_state())
        self._save_dir("last", write)

    def save_best(self):
        meta = self.meta | {"step": self.step, "valid": self.evals[-1] if self.evals else None}
        self._save_dir("best", lambda tmp: save_checkpoint(tmp, self.model.state_dict(), self.model_config,
                                                           meta=meta))

    def load_last(self):
        """Restore model, optimizer and trainer state from out_dir/last; ResumeError (one line) if it cannot."""
        from suite.nn.checkpoint import read_card

        recover_checkpoints(self.out_dir)
        last = self.out_dir / "last"
        hint = "; pass --force to start over"
        try:
            saved = read_card(last)["config"]
            asked = json.loads(json.dumps(self.model_config))  # as it was saved: tuples become lists
            if saved != asked:
                k = min(k for k in set(saved) | set(asked) if saved.get(k) != asked.get(k))
                raise ResumeError(f"{last}: the run was trained with {k}={saved.get(k)!r}, this command asks for "
                                  f"{k}={asked.get(k)!r}; resume with the run's settings{hint}")
            state, _ = load_checkpoint(last, expect=self.model.state_dict())
            optim_state, _ = load_checkpoint(last / "optimizer")
            trainer = json.loads((last / "trainer.json").read_text())
            step, best, bad_evals, evals = (trainer["step"], trainer["best"], trainer["bad_evals"], trainer["evals"])
            if not isinstance(step, int) or not isinstance(evals, list) or not isinstance(best, dict):
                raise ResumeError(f"{last / 'trainer.json'}: not a trainer state{hint}")
            moments = {name: (optim_state[f"m.{name}"], optim_state[f"v.{name}"]) for name in self.params}
        except ResumeError:
            raise
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise ResumeError(f"{last}: cannot resume ({' '.join(str(exc).split()) or type(exc).__name__}){hint}") \
                from None
        self.model.load_state_dict(state)
        for name, (m, v) in moments.items():
            if on_device(self.m[name]):
                self.m[name].copy_to_device(np.ascontiguousarray(m, dtype=self.m[name].dtype))
                self.v[name].copy_to_device(np.ascontiguousarray(v, dtype=self.v[name].dtype))
            else:
                self.m[name][...] = m
                self.v[name][...] = v
        self.step, self.best, self.bad_evals, self.evals = step, best, bad_evals, evals

    # -- the loop ------------------------------------------------------------------
    def _log(self, record):
        with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _evaluate(self):
        self.model.eval()
        metrics = self.task.evaluate(self.model)
        self.model.train()
        record = {"step": self.step, "split": "valid"} | {k: float(v) for k, v in metrics.items()}
        self.evals.append(record)
        self._log(record)
        if self.on_eval is not None:
            self.on_eval(record)
        improved = metrics["loss"] < self.best["loss"] - 1e-6
        if improved:
            self.best = {"loss": float(metrics["loss"]), "step": self.step}
            self.bad_evals = 0
            self.save_best()
        else:
            self.bad_evals += 1
        return metrics

    def _reseed_dropout(self, rng):
        """Dropout masks drawn from this step's generator, so a resumed run repeats them exactly."""
        for module in self.model.modules():
            if isinstance(module, Dropout):
                module.rng = np.random.default_rng(rng.integers(2**63))

    def _update(self, lr):
        grads = [p.grad for p in self.params.values()]
        optim = kernels("optim", grads[0] if grads else None)  # suite.kernels.optim, or its twin on the GPU
        norm = optim.clip_grad_norm(grads, self.config.clip) if self.config.clip > 0 else float("nan")
        for name, p in self.params.items():
            optim.adam_update(p.value, p.grad, self.m[name], self.v[name], self.step + 1, lr,
                        weight_decay=self.config.weight_decay)
        return norm

    def fit(self, resume=False):
        """Train until ``config.steps``, early stop, or Ctrl-C. Returns a summary dict."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        lock = self.out_dir / RUN_LOCK
        lock.write_text(f"{os.getpid()}\n")
        try:
            return self._fit(resume)
        finally:
            lock.unlink(missing_ok=True)

    def _fit(self, resume):
        cfg = self.config
        if resume:
            self.load_last()
        elif (self.out_dir / "metrics.jsonl").exists():
            (self.out_dir / "metrics.jsonl").unlink()
        progress = Progress(cfg.steps, "train", start=self.step, quiet=self.quiet)
        stopped = "steps"
        t0 = time.perf_counter()
        losses = []
        self.model.train()
        with _StopFlag() as stop:
            while self.step < cfg.steps:
                rng = np.random.default_rng([cfg.seed, self.step])
                batch = self.task.train_batch(rng)
                self._reseed_dropout(rng)
                self.model.zero_grad()
                loss, _ = self.task.loss_and_grad(self.model, batch)
                if not math.isfinite(loss):
                    stopped = "diverged"
                    break
                lr = cfg.lr_at(self.step)
                norm = self._update(lr)
                self.step += 1
                losses.append(loss)
                progress.update(1, loss=float(np.mean(losses[-50:])))
                if self.step % cfg.log_every == 0:
                    self._log({"step": self.step, "split": "train", "loss": float(np.mean(losses[-cfg.log_every:])),
                               "lr": lr, "grad_norm": float(norm), "steps_per_s": progress.rate(),
                               "elapsed_s": time.perf_counter() - t0})
                if self.step % cfg.eval_every == 0:
                    metrics = self._evaluate()
                    if cfg.patience and self.bad_evals >= cfg.patience:
                        stopped = "early_stopping"
                        break
                    if self.stop_when is not None and self.stop_when(metrics):
                        stopped = "target_reached"
                        break
                if self.step % cfg.checkpoint_every == 0:
                    self.save_last()
                if stop.set:
                    stopped = "interrupted"
                    break
        progress.close()
        if not self.evals or self.evals[-1]["step"] != self.step:
            self._evaluate()
        self.save_last()
        self.plot_curve()
        return {"stopped": stopped, "step": self.step, "best": self.best,
                "train_loss": float(np.mean(losses[-50:])) if losses else None,
                "elapsed_s": time.perf_counter() - t0, "out_dir": str(self.out_dir)}

    def plot_curve(self):
        from suite.plot import training_curve

        training_curve(self.out_dir / "metrics.jsonl", self.out_dir / "curve.png")
