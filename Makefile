# The verbs: install, run, test, bench, models, lint.
# Every install step lives here (pip into .venv, apt-get for Debian packages),
# so a clean clone needs only `make run` or `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the apps need: FluidSynth and a General MIDI soundfont render
# chorales (music falls back to its own synthesiser without them); espeak-ng and flite
# synthesise the speech app's training data (speech data build needs them); festival
# (festvox-kdlpc16k voice) makes the test set of a synthesiser training never heard. The handwriting
# fonts are the handwriting app's hands (training, validation and test hands: apps/handwriting/data.py HANDS);
# Tesseract is its peer (evaluate --against tesseract, the card, bench). gettext gives msgfmt, which checks
# every .po that `suite translate po` writes (tests). xz, bzip2 and zstd are the text compressor's peers
# (bench/bench_compress.py).
HANDWRITING_FONTS := fonts-comic-neue fonts-dancingscript fonts-breip fonts-dkg-handwriting fonts-sjfonts \
  fonts-ecolier-court fonts-dustin fonts-bwht fonts-humor-sans fonts-femkeklaver fonts-kristi \
  fonts-kaushanscript fonts-klee fonts-rufscript fonts-leckerli-one fonts-lobster fonts-lobstertwo \
  fonts-tomsontalks fonts-havana fonts-yusei-magic fonts-seto fonts-tlwg-purisa-ttf fonts-fantasque-sans \
  fonts-cabinsketch fonts-staypuft fonts-levien-typoscript fonts-okolaks fonts-urw-base35 fonts-ecolier-lignes-court \
  fonts-aenigma fonts-nanum-extra fonts-kiloji fonts-aoyagi-kouzan-t
# `make models` alone also needs TeX Live's font collection (1.4 GB installed): six of the handwriting app's
# training hands are there (apps/handwriting/data.py HANDS, stage 7); reading and the tests do not need it.
MODEL_APT_PACKAGES := texlive-fonts-extra
APT_PACKAGES := fluidsynth fluid-soundfont-gm espeak-ng flite festival festvox-kdlpc16k \
  tesseract-ocr tesseract-ocr-eng gettext zstd xz-utils bzip2 $(HANDWRITING_FONTS)

.PHONY: install test-deps run test bench lint models clean apt lab-table

install: $(VENV)/.installed

# compileall: our sources' bytecode, written once, so that every command imports it rather than compiling
# ~30 modules anew (where PYTHONDONTWRITEBYTECODE is set, as on this workplace's machines, Python would never
# write it: `suite --help` 0.26 -> 0.14 s, `handwriting read` of a line ~1.95 -> ~1.7 s on an AVX2 EPYC).
$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	$(BIN)/python -m compileall -q suite apps kernels
	$(BIN)/python -m suite.warm
	touch $@

# Test and benchmark extras: pytest, and torch as a reference only (CPU build on this disk).
test-deps: $(VENV)/.installed-test

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,torch]'
	touch $@

apt:
ifneq ($(strip $(APT_PACKAGES)),)
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends $$missing ) \
	  || echo "warning: could not apt-get install$$missing; music renders with its own synthesiser, speech data build needs espeak-ng and flite, handwriting data build its fonts"; \
	fi
endif

# The main job on the shipped default models: compose a chorale (out/chorale.mid,
# .wav, .png; rewritten on every run) and generate some Python.
run: install apt
	mkdir -p out
	$(BIN)/suite music compose -o out/chorale --seed 1 --force
	$(BIN)/suite text generate --prime "def " --length 400 --temperature 0.8 --seed 1
	$(BIN)/suite speech transcribe data/examples/go-three-zero-four-oh.wav
	$(BIN)/suite caption data/examples/shapes.png
	$(BIN)/suite handwriting read data/examples/handwriting-line.png data/examples/handwriting-page.png
	$(BIN)/suite handwriting write "Written by an LSTM" -o out/written.png --seed 1 --force
	$(BIN)/suite translate -i data/examples/messages.txt --to de
	$(BIN)/suite translate po data/examples/demo.pot --to fr -o out/demo-fr.po --force

# Two pytest workers (pytest-xdist), a test file each at a time (its fixtures built once): most tests compile or
# run one-threaded Python: on this workplace's 2-core machines 6.7 minutes (9 from a fresh clone, numba's cache
# cold) where one process took 10.
test: test-deps apt
	$(BIN)/pytest -n 2 --dist loadfile

# This workplace pins OPENBLAS_CORETYPE=Haswell (and an L2 size) on some CPUs for
# old OpenBLAS builds; tests and CI keep it. A benchmark may lift both for its own
# command: kernels/__init__.py then picks AVX-512 GEMMs where the CPU has them.
bench: test-deps
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_lstm.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_matmul.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_scratch.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_conv.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_transcribe.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_handwriting.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_caption_beam.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_translate.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_compress.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_score.py
	@env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python bench/bench_startup.py

lint: test-deps
	$(BIN)/python -m compileall -q kernels suite apps tests bench

# Retrain every shipped model with the commands their cards record (about 12 hours
# on 2 cores; speech and caption were trained side by side, one core each). The --minutes caps make the step reached depend on the machine's
# speed; each card records the step its model reached.
models: install apt
	$(MAKE) apt APT_PACKAGES="$(MODEL_APT_PACKAGES)"
	$(BIN)/suite text data build
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite text train --steps 14000 --minutes 100 --quiet --force
	$(BIN)/suite text export runs/text --out data/models/text --force
	$(BIN)/suite music data build
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite music train --seq-len 256 --batch-size 16 --steps 3600 --minutes 48 \
	  --eval-every 250 --quiet --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite music train --seq-len 256 --batch-size 16 --steps 6000 --minutes 24 \
	  --eval-every 250 --lr 1e-3 --no-augment --quiet --resume
	$(BIN)/suite music export runs/music --out data/models/music --force
	$(BIN)/suite speech data build --force
	# stage 1 ran before --non-speech existed (= --non-speech 0); stages 2-3 add non-speech clips
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite speech train --steps 8000 --minutes 62 --non-speech 0 --eval-every 500 \
	  --quiet --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite speech train --resume --steps 10000 --minutes 15 --non-speech 0.1 \
	  --eval-every 500 --quiet
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite speech train --resume --steps 11000 --minutes 12 --non-speech 0.1 \
	  --eval-every 500 --quiet
	# stage 4: fine-tune on a corpus twice the size (its first 16,000 train utterances, and every
	# valid/test utterance and voice, are the ones above: each item is seeded by (seed, split, index))
	$(BIN)/suite speech data build --n-train 32000 --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite speech train --init runs/speech/best --out runs/speech-ft --steps 4500 \
	  --minutes 75 --lr 5e-4 --non-speech 0.1 --eval-every 500 --quiet --force
	# stage 5: fine-tune again on the same corpus. The shipped chain rebuilt it for this stage, with half of its
	# babble noise speech-shaped (data.SHAPED_BABBLE); stages 1-4 ran on corpora whose babble was all talkers,
	# so rerunning them with today's code differs a little from what the shipped model saw
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite speech train --init runs/speech-ft/best --out runs/speech-ft2 --steps 3800 \
	  --minutes 75 --lr 5e-4 --non-speech 0.1 --eval-every 500 --quiet --force
	$(BIN)/suite speech export runs/speech-ft2 --out data/models/speech --force
	$(BIN)/suite caption data build --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite caption train --first-caption-only --steps 12000 --minutes 48 --eval-every 500 --quiet --force
	$(BIN)/suite caption export runs/caption/last --out data/models/caption --input-blur 0 --force
	# caption stage 2, the shipped model: the run above, trained without three colour-shape pairs, is the
	# compositional experiment (its card is kept in docs/caption-combo-experiment-card.json); a fine-tune from it
	# on every pair is shipped (its best validation checkpoint)
	$(BIN)/suite caption data build --all-combos --out data/caption-all --force
	OPENBLAS_NUM_THREADS=2 $(BIN)/suite caption train --data data/caption-all --init data/models/caption \
	  --first-caption-only --steps 4000 --minutes 30 --lr 5e-4 --eval-every 500 --quiet --force --out runs/caption-all
	$(BIN)/suite caption export runs/caption-all --out data/models/caption --data data/caption-all --input-blur 0 --force
	# caption stage 3: the widened renderer (32-512 px, backgrounds, shades, rotation, blur, JPEG) and counting (a
	# fifth of the scenes hold two of one description), every pair; a fine-tune of stage 2 whose vocabulary grows by
	# the counting words; the held-out styles alt, sketch and dark are never drawn in training. It overfitted the
	# 20,000 images (validation loss lowest at step 6,000, rising after) and was stopped by hand (Ctrl-C) at 11,500
	$(BIN)/suite caption data build --all-combos --twins 0.2 --out data/caption-count --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite caption train --data data/caption-count --init data/models/caption \
	  --first-caption-only --steps 14000 --minutes 80 --lr 1e-3 --eval-every 500 --quiet --force --out runs/caption-count
	# stage 4: the same world with 80,000 training images (its first 20,000, and every other
	# split, are stage 3's: items are seeded by split and index), from stage 3's best checkpoint
	$(BIN)/suite caption data build --all-combos --twins 0.2 --n 80000 --out data/caption-count80 --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite caption train --data data/caption-count80 --init runs/caption-count/best \
	  --first-caption-only --steps 20000 --minutes 55 --lr 7e-4 --eval-every 1000 --quiet --force \
	  --out runs/caption-count80
	$(BIN)/suite caption export runs/caption-count80 --out data/models/caption --data data/caption-count80 --input-blur 0 --force
	# stage 5, the shipped model: a quarter of the training images draw their shapes hollow (--outlines 0.25; only
	# the train split changes, every other split is stage 4's byte for byte), fine-tuned from stage 4; 32 min on one
	# core, best validation loss at step 8,000
	$(BIN)/suite caption data build --all-combos --twins 0.2 --outlines 0.25 --n 80000 --out data/caption-hollow --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite caption train --data data/caption-hollow \
	  --init data/models/caption --first-caption-only --steps 16000 --minutes 45 --lr 5e-4 --eval-every 1000 \
	  --quiet --force --out runs/caption-hollow
	$(BIN)/suite caption export runs/caption-hollow --out data/models/caption --data data/caption-hollow --input-blur 0 --force
	# caption stage 6: the same world with 240,000 training scenes (the first 80,000 and every other split are
	# stage 5's byte for byte), fine-tuned from stage 5; 67 min on one core, best validation loss at its last step
	$(BIN)/suite caption data build --all-combos --twins 0.2 --outlines 0.25 --n 240000 --out data/caption-big --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite caption train --data data/caption-big \
	  --init data/models/caption --first-caption-only --steps 20000 --minutes 66 --lr 5e-4 --eval-every 1000 \
	  --quiet --force --out runs/caption-big
	$(BIN)/suite caption export runs/caption-big --out data/models/caption --data data/caption-big --input-blur 0 --force
	# caption stage 7, the shipped model: 480,000 training scenes (the first 240,000 and every other split are
	# stage 6's byte for byte), fine-tuned from stage 6; 53 min on one core, best validation loss at step 18,000
	$(BIN)/suite caption data build --all-combos --twins 0.2 --outlines 0.25 --n 480000 --out data/caption-huge --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite caption train --data data/caption-huge \
	  --init data/models/caption --first-caption-only --steps 19000 --minutes 62 --lr 5e-4 --eval-every 1000 \
	  --quiet --force --out runs/caption-huge
	# export chooses the input blur on validation (0.5); the stages before it keep 0, as they were trained and
	# exported before the blur existed, so each fine-tune reads the images its weights were trained on
	$(BIN)/suite caption export runs/caption-huge --out data/models/caption --data data/caption-huge --force
	# handwriting, stage 1: 11 training hands (the shipped chain built data/handwriting before the nine later hands
	# of apps/handwriting/data.py HANDS existed, so rerunning it today trains stage 1 on all 20); stopped by hand
	# (Ctrl-C) at step 5,117 when validation CER stalled, its best checkpoint (step 4,000) carried on in stage 2
	$(BIN)/suite handwriting data build --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite handwriting train --steps 10500 --minutes 80 --eval-every 1000 --lm-order 6 \
	  --quiet --force
	# stage 2: fine-tune on a corpus drawn with all 20 training hands (same validation and test sets)
	$(BIN)/suite handwriting data build --out data/handwriting-more --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-more --init runs/handwriting/best \
	  --out runs/handwriting-ft --steps 8500 --minutes 62 --lr 7e-4 --eval-every 1000 --lm-order 6 --quiet --force
	# stage 3: fine-tune on a corpus with eight more hands and the fonts-aenigma display faces Tesseract reads (same
	# validation and test sets); its best validation checkpoint is shipped
	$(BIN)/suite handwriting data build --out data/handwriting-wide --force
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-wide --init runs/handwriting-ft/last \
	  --out runs/handwriting-wide --steps 9000 --minutes 62 --lr 7e-4 --eval-every 1000 --lm-order 6 --quiet --force
	$(BIN)/suite handwriting export runs/handwriting-wide --out data/models/handwriting --data data/handwriting-wide \
	  --force
	# stage 4: from stage 3's exported model, the same corpus with half the lines drawn narrower or wider
	# and with smaller glyphs (--geometry); stopped by its time limit at step 6,000, also its best
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-wide \
	  --init data/models/handwriting --out runs/handwriting-geo --geometry 0.5 --steps 8500 --minutes 62 --lr 5e-4 \
	  --eval-every 1000 --lm-order 6 --force
	$(BIN)/suite handwriting export runs/handwriting-geo --out data/models/handwriting --data data/handwriting-wide \
	  --force
	# stage 5: four more training hands (Nanum Brush and Pen Script, kiloji, Aoyagi Kouzan; validation and
	# test files unchanged), from stage 4's exported model; its time limit stopped it, and --resume ran it to its end.
	# Export refits the character LM at order 7 (chosen on validation) and chooses the reading width on validation
	$(BIN)/suite handwriting data build --out data/handwriting-hands --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-hands \
	  --init data/models/handwriting --out runs/handwriting-hands --geometry 0.5 --steps 8500 --minutes 62 --lr 5e-4 \
	  --eval-every 1000 --lm-order 6 --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-hands \
	  --init data/models/handwriting --out runs/handwriting-hands --geometry 0.5 --steps 8500 --minutes 30 --lr 5e-4 \
	  --eval-every 1000 --lm-order 6 --resume
	$(BIN)/suite handwriting export runs/handwriting-hands --out data/models/handwriting --data data/handwriting-hands \
	  --lm-order 7 --force
	# stage 6: half of the training font lines drawn a character at a time, each letter its own size, tilt,
	# lift and spacing (--glyph-jitter 0.5; validation and test files unchanged), from stage 5's exported model
	$(BIN)/suite handwriting data build --out data/handwriting-jitter --glyph-jitter 0.5 --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-jitter \
	  --init data/models/handwriting --out runs/handwriting-jitter --geometry 0.5 --steps 6500 --minutes 65 --lr 5e-4 \
	  --eval-every 1000 --lm-order 6 --force
	$(BIN)/suite handwriting export runs/handwriting-jitter --out data/models/handwriting --data data/handwriting-jitter \
	  --lm-order 7 --force
	# stage 7: six more training hands from texlive-fonts-extra (MODEL_APT_PACKAGES: Miama, Brush Script, Calligra,
	# French school cursive, Augie, Jana Skrivana; the shipped chain's stages 1-6 ran before they were in HANDS, so a
	# rerun of those stages today draws them too), the same jitter, from stage 6's exported model
	$(BIN)/suite handwriting data build --out data/handwriting-tex --glyph-jitter 0.5 --force
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-tex \
	  --init data/models/handwriting --out runs/handwriting-tex --geometry 0.5 --steps 6500 --minutes 70 --lr 5e-4 \
	  --eval-every 1000 --lm-order 6 --force
	$(BIN)/suite handwriting export runs/handwriting-tex --out data/models/handwriting --data data/handwriting-tex \
	  --lm-order 7 --force
	# stage 8 (shipped): the same corpus, half of the training lines redrawn each time they are met (--warp 0.5: a
	# random slant of up to 0.25 either way and a random grid distortion), from stage 7's exported model
	OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 $(BIN)/suite handwriting train --data data/handwriting-tex \
	  --init data/models/handwriting --out runs/handwriting-warp --geometry 0.5 --warp 0.5 --steps 5500 --minutes 70 \
	  --lr 5e-4 --eval-every 1000 --lm-order 6 --force
	$(BIN)/suite handwriting export runs/handwriting-warp --out data/models/handwriting --data data/handwriting-tex \
	  --lm-order 7 --force
	# handwriting writer (Graves 2013 synthesis): Hershey script strokes jittered afresh every step, English pieces
	# of the reader's training texts; its legibility is read by the reader exported above
	OPENBLAS_NUM_THREADS=1 $(BIN)/suite handwriting writer train --steps 12000 --minutes 70 --quiet --force
	$(BIN)/suite handwriting writer export runs/handwriting-writer --out data/models/handwriting-writer --force
	# translate: one run, both languages in one model (a target-language tag leads the source)
	$(BIN)/suite translate data build --force
	OPENBLAS_NUM_THREADS=2 $(BIN)/suite translate train --steps 5000 --minutes 70 --eval-every 500 --quiet --force
	# stage 2: a second cosine cycle from stage 1's best checkpoint (same data, subwords and architecture)
	OPENBLAS_NUM_THREADS=2 $(BIN)/suite translate train --init runs/translate/best --out runs/translate-2 --steps 3500 \
	  --minutes 50 --lr 1e-3 --eval-every 500 --quiet --force
	$(BIN)/suite translate export runs/translate-2 --out data/models/translate --force

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The README's adding-problem table: solve rate by cell kind and T, with training time.
LAB_RUNS := lstm:100 gru:100 rnn:100 peephole:100 cifg:100 lstm:200 gru:200 rnn:200 lstm:500 rnn:500 lstm:1000 rnn:1000
lab-table: install
	mkdir -p runs/lab
	rm -f runs/lab/table.jsonl
	for run in $(LAB_RUNS); do \
	  cell=$${run%%:*}; T=$${run##*:}; \
	  $(BIN)/suite lab adding --cell $$cell --T $$T --steps 3000 --seed 0 --quiet --json --force \
	    --out runs/lab/adding-$$cell-T$$T >> runs/lab/table.jsonl || exit 1; \
	done
	cat runs/lab/table.jsonl
