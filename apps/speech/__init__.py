"""The speech app."""
