"""Offline test material, shared by the tests, the benchmarks (``bench/``) and the checks (``lexalign.checks``).

- ``tiny_model``: the tiny chat model the tests and ``.test/`` train and evaluate;
- ``illustrative``: the one generator of invented input files (the committed SWOW and WVS files of
  ``data/illustrative/``, synthetic SWOW-EN files of any size);
- ``workspace``: what a benchmark or check works in (size, scratch, cache, checkout) and the inputs it builds
  (prepared models, SFT and evaluation tables through the project's own stages, the project's SFT trainer);
- ``measure``: measured figures (``Result``) and calls timed in a fresh interpreter.

Reads only what it is given and the checkout's ``config/config.yaml``; writes where it is told.
"""
