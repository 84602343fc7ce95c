"""A toy app, the template for a new one: an LSTM that learns the sum of a sequence of numbers.

data.py   the data build: sequences drawn per item (suite.databuild), one npz per split, the report
model.py  the network (suite.nn layers), the trainer's task, evaluation, loading and export with its card
cli.py    `suite toy`: data build, train, export, predict (parses, calls, reports; nothing else)
"""
