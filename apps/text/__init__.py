"""The text app: next-character prediction (Karpathy's char-rnn) on Python source."""
