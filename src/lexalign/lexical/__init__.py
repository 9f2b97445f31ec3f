"""Tier 1. Rule ``lexical`` (``evaluate``): reads a model (and adapter), the evaluation prompts and the norms;
writes ``results/lexical/{model}/{lang}/{method}/scores.json``, ``generations.parquet``, ``per_cue.parquet``:
P@k, rank agreement, the psycholinguistic profile (``profile``). ``parse`` (the association-list parser,
shared with the ranking reward and the population norms) and ``score`` (``lexalign score-associations``)."""
