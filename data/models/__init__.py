"""Shipped models, installed as the package ``suite.models`` (see pyproject.toml).

One folder per app: model.safetensors, config.json (what rebuilds the model)
and card.json (data, command, seed, held-out metrics).
"""
