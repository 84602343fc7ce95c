"""Next-character prediction (Karpathy's char-rnn) on Python source: training, generation, scoring.

data.py    the corpus builder (Python's stdlib source or any UTF-8 file or folder; skips counted
           by reason, split by file with a seeded hash, report.json) and the character vocabulary
model.py   suite.lm.TokenLM over characters: loading, and export with a card of held-out
           test bits/char beside an n-gram and xz
cli.py     `suite text`: data build, train, export, generate, score, cells
cells.py   which single LSTM cells track strings, comments, indentation, line position
           (cell states from suite.nn.Recurrent), drawn as HTML and PNG
"""
