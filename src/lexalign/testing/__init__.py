"""Offline test material: the tiny chat model (``tiny_model``) the tests and ``.test/`` train and evaluate."""
