"""The human norms. Rule ``ingest`` (``ingest``): reads a SWOW raw participant or strength file and writes
``results/ingest/{lang}/associations.parquet`` and ``stats.json`` (cleaned, filtered, pooled, split by cue with
``split``). Rule ``template`` (``templates``): reads those and writes
``results/templates/{lang}/{sft,ranking,dpo,eval}.parquet`` in the norms' own language. ``ingest``'s readers
(and its SWOW-EN header) and ``templates``' prompts are shared with other stages."""
