"""Tier 2, the World Values Survey. Rule ``wvs_humans`` (``humans``, files read by ``sources/``): writes
``results/wvs/humans.parquet`` and ``humans.json``. Rule ``wvs`` (``evaluate``): reads a model (and adapter)
and the humans table, writes ``results/wvs/{model}/{lang}/{method}/{framing}-{mode}/metrics.json`` and
``answers.parquet``: answer distributions (``scoring``, ``vllm``), prompts (``prompts``, ``norms``), refusal
classes (``refusal``), metrics (``metrics``, ``compare``)."""
