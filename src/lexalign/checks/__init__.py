"""Acceptance checks: does this installation meet its goals? (``lexalign check CHECK``; see README.md here)

Unlike the benchmarks (``bench/``: ratios against a baseline measured in the same run), a check answers
yes or no, on this machine or from a finished run, and exits 1 when the answer is no:

- ``gpu`` (:mod:`lexalign.checks.gpu`): the paper's GPU path through the rules' entry points (SFT, DPO and
  GRPO steps, ZeRO-2 on several GPUs, vLLM-colocated GRPO, HF and vLLM generation and WVS scoring for three
  chat formats), with throughput, peak memory and FLOP utilisation;
- ``default-run`` (:mod:`lexalign.checks.default_run`): the embedded default's goals, from the outputs
  and log of a finished ``snakemake`` run.

Reads the checkout's ``config/config.yaml``, illustrative norms and WVS file (gpu) or a workflow folder's
``.snakemake/log/`` and ``results/`` (default-run); writes only to a scratch folder and ``--out``.
"""
