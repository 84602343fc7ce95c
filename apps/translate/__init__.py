"""The translate app: English software messages into German or French; gettext catalogs filled for review.

    data.py          the corpus: pairs from the installed .mo catalogs (whole domains held out), users' TSV or .po
                     pairs, the joint sentencepiece subwords
    placeholders.py  what is copied, never translated: printf codes, {name}, markup, accelerators, edges
    memory.py        the translation memory: the training pairs, looked up by edit distance (the baseline, and
                     what `suite translate` gives for a message it nearly holds)
    model.py         the network (BiLSTM encoder, additive attention, LSTM decoder), its training task, the batched
                     beam search, the Translator, evaluation beside the copy and translation-memory baselines, export
    po.py            filling the untranslated entries of a .po/.pot, every other byte kept
    plot.py          the alignment picture of one message
    cli.py           `suite translate`: text (the default), po, data build, train, export, evaluate
"""
