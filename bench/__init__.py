"""lexalign benchmarks: ``python -m bench`` (see bench/README.md).

Each benchmark module exposes ``NAME``, ``TITLE`` and ``run(ctx) -> list[Result]``; every speed figure
is a ratio against a baseline measured in the same run on the same machine.
"""
