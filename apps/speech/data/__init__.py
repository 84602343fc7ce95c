"""Synthetic speech for a CTC recogniser: text, voices, synthesis, augmentation, features, corpus.

No recorded corpus is reachable here, so the corpus is synthesised: random
transcripts over a small vocabulary (connected digits, "oh" for zero, and ten
commands) spoken by espeak-ng (English accents x voice variants, random rate and
pitch) and flite, then augmented (speed, silence, reverb, telephone band, noise).

Held-out voices, not held-out sentences, make the test honest: split_voices keeps
whole espeak variants (a held-out variant is never heard in any accent in train)
and one whole flite speaker out of training. An optional third engine that never
appears in training (festival, `build_unseen_test`) measures how far the model
carries to a synthesiser it has not heard at all.

The modules (this package re-exports their public names, so
``from suite.apps.speech.data import X`` is all a caller needs):

    text.py      the alphabet (id 0 the CTC blank), normalize, encode/decode, random transcripts
    synth.py     espeak-ng, flite and festival voices, synthesize, the held-out voice split
    noise.py     augmentation (speed, silence, gain, reverb, telephone, noise at an SNR), non-speech clips
    features.py  log-mel features, per-utterance normalised
    corpus.py    build_corpus and build_unseen_test
    splits.py    reading a built corpus back (load_split -> Split)
    user.py      a user's own recordings: transcript TSVs and the LibriSpeech layout

Corpus layout (build_corpus)::

    out_dir/report.json              report: counts, voices per split, conditions, config, timing
                                     (corpus.json in builds before the shared data-build toolkit)
    out_dir/train.npz, valid.npz     float16 log-mel features concatenated + offsets + text/voice/condition
    out_dir/test/clean/*.wav         held-out voices as real audio (16 kHz PCM), transcripts.tsv beside them
    out_dir/test/snr20/*.wav         the same utterances with noise at 20 dB SNR
    out_dir/test/unseen-festival/    (when festival is installed) another synthesiser, never trained on
    out_dir/test/snr20-other-noise/  (when festival is installed) test/clean under noise kinds training never mixes in
    out_dir/test/utterances.tsv      file, voice, rate, pitch, text of each test utterance

The test set is audio so evaluation goes through exactly the path a user's files
take (load_audio -> features). Every item draws its randomness from its own seed
(seed, split, index), so the corpus is the same whatever the number of workers.
"""
from suite.apps.speech.audio import AudioError, load_audio
from suite.apps.speech.data.corpus import (OTHER_NOISE, OTHER_NOISE_KINDS, TEST_CONDITIONS, build_corpus,
                                           build_unseen_test, read_corpus_report)
from suite.apps.speech.data.features import FEATURES, feature_dim, features
from suite.apps.speech.data.noise import (NOISE_KINDS, NON_SPEECH_KINDS, PAD_SECONDS, SHAPED_BABBLE, SPEED_RANGE,
                                          TRAIN_SNR, VALID_CONDITIONS, active_power, add_noise, augment,
                                          condition_name, non_speech, parse_condition)
from suite.apps.speech.data.splits import Split, load_split
from suite.apps.speech.data.synth import SynthError, festival_voices, list_voices, split_voices, synthesize
from suite.apps.speech.data.text import (ALPHABET, BLANK, COMMANDS, CTC_ALPHABET, DIGIT_WORDS, VOCABULARY, decode,
                                         encode, normalize, random_transcript)
from suite.apps.speech.data.user import read_librispeech, read_tsv_dataset, write_tsv_dataset
from suite.databuild import DataError

DatasetError = DataError  # the name speech used before suite.databuild's one error class

__all__ = [
    "ALPHABET", "BLANK", "CTC_ALPHABET", "DIGIT_WORDS", "COMMANDS", "VOCABULARY", "normalize", "encode", "decode",
    "random_transcript",
    "SynthError", "list_voices", "festival_voices", "split_voices", "synthesize",
    "SPEED_RANGE", "PAD_SECONDS", "NOISE_KINDS", "SHAPED_BABBLE", "TRAIN_SNR", "VALID_CONDITIONS",
    "NON_SPEECH_KINDS", "parse_condition", "condition_name", "augment", "add_noise", "active_power", "non_speech",
    "FEATURES", "feature_dim", "features",
    "DataError", "DatasetError", "build_corpus", "build_unseen_test", "read_corpus_report", "TEST_CONDITIONS",
    "OTHER_NOISE", "OTHER_NOISE_KINDS", "load_split", "Split", "read_tsv_dataset", "read_librispeech",
    "write_tsv_dataset", "AudioError", "load_audio",
]
