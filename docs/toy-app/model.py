"""The toy network (one LSTM layer read out at the last step), its task, evaluation and export."""
from dataclasses import asdict, dataclass

import numpy as np

from suite.kernels.losses import mse_loss
from suite.nn import Linear, Module, Recurrent

MODEL_NAME = "ToySum"


@dataclass
class ToyConfig:
    hidden: int = 16  # LSTM units
    seed: int = 0


class ToyModel(Module):
    def __init__(self, config: ToyConfig):
        self.config = config
        self.rnn = Recurrent(1, config.hidden, seed=config.seed)
        self.head = Linear(config.hidden, 1, seed=config.seed + 1)

    def forward(self, x):
        """x (B, T) -> predicted sums (B,)."""
        y, _ = self.rnn.forward(np.ascontiguousarray(x.T[:, :, None], dtype=self.dtype))  # (T, B, H)
        self._shape = y.shape
        return self.head.forward(y[-1])[:, 0]

    def backward(self, dpred):
        dy = np.zeros(self._shape, dtype=self.dtype)  # (T, B, H): only the last step is read
        dy[-1] = self.head.backward(dpred[:, None])
        self.rnn.backward(dy)


class ToyTask:
    """The trainer's task: random batches of the train split; validation MSE."""

    def __init__(self, train, valid, batch_size=32):
        self.train, self.valid, self.batch_size = train, valid, batch_size

    def train_batch(self, rng):
        idx = rng.integers(0, len(self.train[0]), self.batch_size)
        return self.train[0][idx], self.train[1][idx]

    def loss_and_grad(self, model, batch):
        loss, dpred = mse_loss(model.forward(batch[0]), batch[1])
        model.backward(dpred)
        return float(loss), len(batch[1])

    def evaluate(self, model):
        return {"loss": evaluate(model, *self.valid)["mse"]}


def config_dict(config):
    return {"model": MODEL_NAME} | asdict(config)


def evaluate(model, x, y):
    pred = model.forward(x)
    return {"mse": float(np.mean((pred - y) ** 2)), "items": len(y)}


def load_model(model_dir):
    """(ToyModel, card) from a model folder; one-line CheckpointError otherwise."""
    from suite.shipped import load_app_model

    return load_app_model(model_dir, "toy", MODEL_NAME, lambda config, meta: ToyModel(ToyConfig(**config)))


def export_model(checkpoint_dir, export_dir, data_dir, export_command=None):
    """Publish a trained model with its card: MSE on the held-out test split beside the predict-0 baseline."""
    from suite.apps.toy.data import load_split, read_report
    from suite.card import make_card, reproduce_line, training_record
    from suite.shipped import publish_model

    model, card = load_model(checkpoint_dir)
    x, y = load_split(data_dir, "test")
    meta = card["meta"]
    training = training_record(checkpoint_dir, meta, export_command=export_command)
    result = make_card(
        "toy", f"LSTM ({model.config.hidden} units) read out at the last step", card["config"],
        {"source": str(data_dir), "report": read_report(data_dir)}, training,
        {"how": "mean squared error on the test split", "test": evaluate(model, x, y),
         "baseline_predict_zero": {"mse": float(np.mean(y ** 2))}},
        reproduce=reproduce_line("suite toy data build", training["command"], export_command))
    return publish_model(checkpoint_dir, export_dir, result)
