"""The caption app."""
