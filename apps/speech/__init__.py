"""The speech app: speech to text with a deep bidirectional LSTM and CTC, trained on synthesised speech.

    audio.py  reading any audio file (mono, 16 kHz), cutting long recordings at silences
    data/     the corpus: transcripts and alphabet, synthesis, augmentation, features, the build,
              reading splits back, a user's TSV/LibriSpeech folders (see data/__init__.py)
    model.py  the network (stacked frames -> BiLSTM -> characters), its CTC task (on suite.ctc_task),
              the Transcriber, evaluation of test folders, export with the model card
    cli.py    `suite speech`: data build, train, export, evaluate, transcribe
"""
