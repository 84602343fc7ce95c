"""Four-part chorale composition: Bach chorales on a 16th-note grid, tokens for an LSTM.

data.py     the corpus builder: music21's Bach chorales parsed, normalised, split by hymn and
            cached (data/music/), the n-gram baseline; re-exports grid.py and tokens.py
grid.py     four voices on a 16th-note grid (Chorale), keys, normalisation and transposition
tokens.py   a chorale as a token stream and back (the fixed vocabulary, repairs on decoding)
model.py    the LSTM (suite.lm.TokenLM) over tokens: training task, loading, evaluation, export
compose.py  composing and harmonising with the model (under the rules, with the rewrite pass, or free);
            reading MIDI melodies and primers
rules.py    the rule table of four-part writing and the phrase plan (bars, fermatas, cadence chords);
            kernels/chorale.py applies them inside the compiled sampling loop
render.py   MIDI, audio (FluidSynth or our own additive synthesiser), piano-roll PNG
stats.py    statistics of compositions against the corpus (music21's VoiceLeadingQuartet beside ours)
cli.py      `suite music`: data build, train, export, evaluate, compose, harmonize
"""
