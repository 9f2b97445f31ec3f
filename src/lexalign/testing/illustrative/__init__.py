"""The one generator of invented input files (none of it is SWOW, WVS or GlobalOpinionQA data).

- ``swow``: the lexicon-based SWOW-EN raw, SWOW-ZH raw and pooled SWOW-EN strength files of
  ``data/illustrative/`` (the embedded default's norms), byte-for-byte reproducible;
- ``wvs``: the WVS-7 respondent file and the GlobalOpinionQA-shaped file of ``data/illustrative/wvs/``;
- ``synthetic``: SWOW-EN-shaped raw files of any size (Zipf-distributed pseudo-words, the raw file's
  noise), for the benchmarks and the GPU check;
- ``layout``: the SWOW layouts all of them copy, and the one writer of SWOW rows (R ``write.csv`` style).

Entry points: ``python data/illustrative/make_illustrative.py`` and
``python data/illustrative/wvs/make_illustrative.py`` rewrite the committed files.
"""
