"""Four-part chorale composition: Bach chorales on a 16th-note grid, tokens for an LSTM.

data.py    the corpus (music21's Bach chorales), the grid and token representation,
           splits, cache, the n-gram baseline
render.py  MIDI, audio (FluidSynth or our own additive synthesiser), piano-roll PNG
stats.py   statistics of compositions against the corpus
"""
