"""The handwriting app: line and page images to text with conv blocks, a deep bidirectional LSTM and CTC; and
text to handwriting with a pen-stroke LSTM (Graves 2013).

    render.py  drawing line images: handwriting fonts with distortions, real digit scans, Hershey pen strokes
    lines.py   grey image -> ink, one line at the model's height, a page cut into lines (deskew, profiles)
    data.py    the corpus: texts, hands held out by split, the build, reading splits and a user's .gt.txt folders
    model.py   the network (conv+ReLU+pool -> BiLSTM -> characters), its CTC task (suite.ctc_task), the Reader,
               evaluation by set and hand (with Tesseract beside it), export with the model card
    strokes.py pen trajectories: Hershey script faces as (dx, dy, pen_up) sequences with jitter, drawn to PNG/SVG
    writer.py  the writer: soft-window LSTM -> LSTM -> mixture density output, its task, sampling with a bias,
               legibility read by the Reader, export with the model card (data/models/handwriting-writer)
    cli.py     `suite handwriting`: data build, train, export, evaluate, read; write, writer train/export
"""

READ_BEAM = 16
"""Prefixes the CTC beam search keeps by default (`read`, `evaluate`, `suite batch handwriting`, export's tuning and
scores). Chosen on validation with the stage-5 model: text-line CER 7.57 % at 8, 6.92 % at 16, 6.69 % at 32 (hand
delphine; domestic-manners and digits about the same); 16 costs about what 8 did before the n-gram LM's lookups were
compiled (suite.baselines)."""
