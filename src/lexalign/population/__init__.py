"""The model as SWOW participants. Rule ``population`` (``simulate``): writes
``results/population/{model}/{lang}/{method}/T{t}/participants.csv`` in the language's SWOW layout; rule
``population_ingest`` ingests them with the human norms' code; rule ``population_compare`` (``compare``,
``graph``) writes ``compare.json`` and ``per_cue.parquet``: model norms against human norms."""
