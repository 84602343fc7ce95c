"""Next-character prediction (Karpathy's char-rnn) on Python source: training, generation, scoring, compression.

data.py    the corpus builder (Python's stdlib source or any UTF-8 file or folder; skips counted
           by reason, split by file with a seeded hash, report.json) and the character vocabulary
model.py   suite.lm.TokenLM over characters: loading, and export with a card of held-out
           test bits/char beside an n-gram and xz, static and with dynamic evaluation
compress.py the .lstm file format: arithmetic coding (kernels/rangecoder.py) with the model adapting
           as it reads (suite.dyneval) and a match model, any bytes round-trip, checked by CRC-32
cli.py     `suite text`: data build, train, export, generate, score [--adapt], compress,
           decompress, cells
cells.py   which single LSTM cells track strings, comments, indentation, line position
           (cell states from suite.nn.Recurrent), drawn as HTML and PNG
"""
