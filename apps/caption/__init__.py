"""Image captioning (Show, Attend and Tell) on the procedural shapes world.

scenes.py  the shapes world: scenes, the caption grammar, its parser, BLEU and object/size/relation metrics
data.py    rendering, the model's (3, 64, 64) input pixels (files opened by suite.images), the dataset
           builder (suite.databuild: npz splits, PNGs + captions.tsv, report.json), Flickr8k-style user data
           with 5 % held out; re-exports scenes.py
model.py   CNN encoder -> additive attention -> LSTM decoder, the training task, the vocabulary, beam and
           greedy decoding, evaluation beside nearest-neighbour and most-frequent baselines, export with
           its card (suite.card)
plot.py    the attention picture: where each word looked
cli.py     `suite caption`: describe (the default), data build, train, export, evaluate
"""
